//! `staff`: what authenticating a staff request costs against a kiosk's. Clients take a ticket and cancel
//! it again, in turns as a kiosk device without a printer (kiosk-3) and as a signed-in agent (agent1),
//! against one daemon running its own embedded demo hall (so the same scenario runs against any build).
//! Reports the daemon's CPU per pair and pairs per second for each, and their ratio.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use serde_json::json;
use vuoro_client::Http;

use crate::{Daemon, Opts, Report, TempDir};

/// One round: `pairs` issue-and-cancel pairs over `clients` connections with `token`. (daemon CPU µs per
/// pair, pairs per second, errors)
async fn round(daemon: &Daemon, token: &str, pairs: u64, clients: usize) -> (f64, f64, u64) {
    let next = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let cpu0 = crate::daemon::cpu_ms(daemon.pid).unwrap_or(0);
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (next, errors, addr, token) =
            (next.clone(), errors.clone(), daemon.addr, token.to_string());
        tasks.push(tokio::spawn(async move {
            let mut h = Http::with_token(addr, &token);
            while next.fetch_add(1, Ordering::Relaxed) < pairs {
                let r = h
                    .post(
                        "/api/v1/sites/iso-omena/tickets",
                        &json!({"service": "kela-families", "lang": "fi"}),
                    )
                    .await;
                let r = match r {
                    Ok(r) if r.status == 201 => r,
                    _ => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                };
                let t = r.json()["token"].as_str().unwrap_or_default().to_string();
                let c = h.delete(&format!("/api/v1/tickets/{t}")).await;
                if !c.is_ok_and(|c| c.status == 200) {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let secs = t0.elapsed().as_secs_f64();
    let cpu_ms = crate::daemon::cpu_ms(daemon.pid).unwrap_or(0) - cpu0;
    (
        cpu_ms as f64 * 1000.0 / pairs as f64,
        pairs as f64 / secs,
        errors.load(Ordering::Relaxed),
    )
}

pub async fn run(opts: &Opts) -> anyhow::Result<Report> {
    let pairs = opts
        .size
        .as_ref()
        .and_then(|s| s.first().copied())
        .unwrap_or(if opts.smoke { 200 } else { 20_000 });
    let clients = opts.clients.unwrap_or(16);
    let rounds = opts.runs.unwrap_or(if opts.smoke { 1 } else { 3 });
    let dir = TempDir::new("staff")?;
    let daemon = Daemon::start(opts.mode, "", &dir.0).await?;
    let kiosk = vuoro_client::demo_device_token(daemon.addr, "kiosk-3").await?;
    let staff = vuoro_client::login(daemon.addr, "agent1", "demo").await?;
    let mut report = Report::new("staff");
    let mut figures = Vec::new();
    // Interleaved, so that a change in the machine's speed falls on both.
    for i in 0..rounds {
        let k = round(&daemon, &kiosk, pairs, clients).await;
        let s = round(&daemon, &staff, pairs, clients).await;
        for (who, (us, rate, errors)) in [("kiosk", k), ("staff", s)] {
            report.row(
                format!("round {} {who}", i + 1),
                format!("{us:.0} µs daemon CPU per pair, {rate:.0} pairs/s"),
            );
            if errors > 0 {
                report
                    .problems
                    .push(format!("{who}: {errors} failed requests"));
            }
        }
        figures
            .push(json!({"kiosk_us": k.0, "kiosk_rate": k.1, "staff_us": s.0, "staff_rate": s.1}));
    }
    let ratios: Vec<f64> = figures
        .iter()
        .map(|f| f["staff_us"].as_f64().unwrap_or(0.0) / f["kiosk_us"].as_f64().unwrap_or(1.0))
        .collect();
    let worst = ratios.iter().cloned().fold(0.0, f64::max);
    report.check(
        "staff CPU per pair / kiosk CPU per pair (worst round)",
        format!("{worst:.2}"),
        "<= 1.5",
        worst <= 1.5,
    );
    report.data = json!({"pairs": pairs, "clients": clients, "rounds": figures});
    daemon.stop().await?;
    Ok(report)
}
