//! `connections`: holds N idle WebSocket clients, each subscribed to the site's calls like a phone or a
//! display, and reads the daemon's resident memory (VmRSS) before and after: memory per idle client.
//! Then checks that every client is still there (a ping each, a pong each). Clients connect from several
//! loopback source addresses (127.0.0.x) so that 50,000 do not run out of ephemeral ports.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;
use tokio::sync::{Semaphore, mpsc};

use crate::fanout::{contains, source_ip};
use crate::rawws::RawWs;
use crate::{BENCH_CONFIG, BENCH_SITE, Daemon, Opts, Report, TempDir};

/// Files a process needs besides its sockets to clients (the database, the listener, the runtime).
const FILES_SPARE: u64 = 200;

pub async fn run(opts: &Opts) -> anyhow::Result<Report> {
    let sizes = opts.size.clone().unwrap_or(if opts.smoke {
        vec![300]
    } else {
        vec![10_000, 50_000]
    });
    let mut report = Report::new("connections");
    let files = crate::open_files_limit();
    report.row("open-files limit", files.to_string());
    let mut data = Vec::new();
    for &n in &sizes {
        // Each side holds one socket per client, within its own open-files limit (the daemon, a child,
        // inherits this one). Above it, connections would only fail and be retried until the time limit.
        if files < n + FILES_SPARE {
            report.check(
                format!("N={n}: held"),
                format!("not run: open-files limit {files} < {}", n + FILES_SPARE),
                format!("{n}"),
                false,
            );
            data.push(json!({"clients": n, "skipped": "open-files limit", "limit": files}));
            continue;
        }
        let n = n as usize;
        let dir = TempDir::new("conn")?;
        let daemon = Daemon::start(opts.mode, BENCH_CONFIG, &dir.0).await?;
        let addr = daemon.addr;
        // Warm up: the runtime's threads, the first WebSocket, the snapshot code.
        {
            let mut ws = RawWs::connect(addr, None).await?;
            ws.subscribe(&format!("calls:{BENCH_SITE}")).await?;
            ws.next_text().await?;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let rss_before = daemon.rss_kib()?;
        let held = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let first_error = Arc::new(std::sync::Mutex::new(None::<String>));
        let gate = Arc::new(Semaphore::new(256));
        let (pong_tx, mut pong_rx) = mpsc::unbounded_channel::<()>();
        let mut pingers = Vec::with_capacity(n);
        let mut tasks = Vec::with_capacity(n);
        let t0 = Instant::now();
        for i in 0..n {
            let (ping_tx, mut ping_rx) = mpsc::channel::<()>(1);
            pingers.push(ping_tx);
            let (held, failed, gate, first_error, pong_tx) = (
                held.clone(),
                failed.clone(),
                gate.clone(),
                first_error.clone(),
                pong_tx.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let connected = {
                    let _p = gate.acquire().await.expect("semaphore");
                    let mut attempt = 0;
                    loop {
                        attempt += 1;
                        match hold(addr, i).await {
                            Ok(ws) => break Ok(ws),
                            Err(e) if attempt >= 5 => break Err(e),
                            Err(_) => tokio::time::sleep(Duration::from_millis(100 * attempt)).await,
                        }
                    }
                };
                let mut ws = match connected {
                    Ok(ws) => ws,
                    Err(e) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        first_error.lock().expect("lock").get_or_insert(format!("{e:#}"));
                        return;
                    }
                };
                held.fetch_add(1, Ordering::Relaxed);
                // Idle: read whatever comes (heartbeats); answer the bench's ping request.
                loop {
                    tokio::select! {
                        m = ws.next_text() => {
                            match m {
                                Ok(t) if contains(t, b"\"type\":\"pong\"") => { let _ = pong_tx.send(()); }
                                Ok(_) => {}
                                Err(_) => { held.fetch_sub(1, Ordering::Relaxed); return; }
                            }
                        }
                        p = ping_rx.recv() => {
                            if p.is_none() { return; }
                            if ws.send_text(r#"{"type":"ping"}"#).await.is_err() {
                                held.fetch_sub(1, Ordering::Relaxed);
                                return;
                            }
                        }
                    }
                }
            }));
        }
        let limit = Duration::from_secs(60 + n as u64 / 250);
        while (held.load(Ordering::Relaxed) + failed.load(Ordering::Relaxed)) < n as u64
            && t0.elapsed() < limit
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let connect_s = t0.elapsed().as_secs_f64();
        // Let the daemon settle (buffers of the handshakes and snapshots freed).
        tokio::time::sleep(Duration::from_secs(2)).await;
        let rss_after = daemon.rss_kib()?;
        let holding = held.load(Ordering::Relaxed);
        // Everyone still there: a ping each, a pong each.
        for p in &pingers {
            let _ = p.try_send(());
        }
        let mut pongs = 0u64;
        let pong_deadline = Instant::now() + Duration::from_secs(30 + n as u64 / 1000);
        while pongs < holding {
            match tokio::time::timeout_at(pong_deadline.into(), pong_rx.recv()).await {
                Ok(Some(())) => pongs += 1,
                _ => break,
            }
        }
        let still = held.load(Ordering::Relaxed);
        drop(pingers);
        for t in &tasks {
            t.abort();
        }
        for t in tasks {
            let _ = t.await;
        }
        let ready_after = daemon.ready_after;
        daemon.stop().await.context("stop")?;
        let _ = ready_after;

        let per = (rss_after.saturating_sub(rss_before)) as f64 * 1024.0 / holding.max(1) as f64;
        let fails = failed.load(Ordering::Relaxed);
        report.row(
            format!("N={n}: held"),
            format!("{holding} in {connect_s:.1} s"),
        );
        report.row(
            format!("N={n}: daemon RSS"),
            format!("{} -> {} MiB", rss_before / 1024, rss_after / 1024),
        );
        if n >= 10_000 {
            report.check(
                format!("N={n}: per idle client"),
                format!("{:.1} KB", per / 1000.0),
                "<= 10 KB",
                per <= 10_000.0,
            );
        } else {
            report.row(
                format!("N={n}: per idle client"),
                format!("{:.1} KB", per / 1000.0),
            );
        }
        report.check(
            format!("N={n}: answered a ping"),
            format!("{pongs} of {n}"),
            "all",
            pongs == n as u64 && still == n as u64,
        );
        if fails > 0 || pongs < n as u64 {
            report.problems.push(format!(
                "N={n}: {fails} failed to connect, {pongs} of {n} answered; first error: {}",
                first_error
                    .lock()
                    .expect("lock")
                    .clone()
                    .unwrap_or_default()
            ));
        }
        data.push(json!({
            "clients": n, "held": holding, "failed": fails, "pongs": pongs, "connect_s": connect_s,
            "rss_kib_before": rss_before, "rss_kib_after": rss_after, "bytes_per_client": per,
            "load": crate::loadavg(),
        }));
    }
    report.data = json!({"runs": data});
    Ok(report)
}

async fn hold(addr: std::net::SocketAddr, i: usize) -> anyhow::Result<RawWs> {
    let mut ws = RawWs::connect(addr, Some(source_ip(i))).await?;
    ws.subscribe(&format!("calls:{BENCH_SITE}")).await?;
    let t = tokio::time::timeout(Duration::from_secs(30), ws.next_text())
        .await
        .context("no snapshot in time")??;
    anyhow::ensure!(contains(t, b"\"type\":\"snapshot\""), "expected a snapshot");
    ws.shrink();
    Ok(ws)
}
