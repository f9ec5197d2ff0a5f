//! `issue`: many concurrent kiosk clients take tickets over HTTP (keep-alive), each answer only after the
//! ticket is committed (group commit, synchronous=FULL). Measures tickets per second and the latency each
//! client saw, then checks in the database that every acknowledged ticket is there. The clients send the
//! kiosk's request as it is on the wire, built once per service (`rawhttp`), and check each answer's
//! status and that its body is the ticket.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::rawhttp::{RawHttp, post_json};
use crate::stats::Samples;
use crate::{BENCH_CONFIG, BENCH_KIOSK_TOKEN, BENCH_SITE, Daemon, Opts, Report, TempDir, ms};

pub async fn run(opts: &Opts) -> anyhow::Result<Report> {
    let total = opts
        .size
        .as_ref()
        .and_then(|s| s.first().copied())
        .unwrap_or(if opts.smoke { 500 } else { 300_000 });
    let clients = opts.clients.unwrap_or(if opts.smoke { 16 } else { 64 });
    let limit = if opts.smoke {
        Duration::from_secs(20)
    } else {
        Duration::from_secs(120)
    };
    let services: Vec<String> = vuoro_engine::Hall::parse(BENCH_CONFIG)
        .map_err(|e| anyhow::anyhow!("{e:?}"))?
        .sites[0]
        .services
        .iter()
        .map(|s| s.id.to_string())
        .collect();
    let dir = TempDir::new("issue")?;
    let daemon = Daemon::start(opts.mode, BENCH_CONFIG, &dir.0).await?;
    let addr = daemon.addr;
    // The kiosk's request for each service, as bytes.
    let path = format!("/api/v1/sites/{BENCH_SITE}/tickets");
    let requests: Arc<Vec<Vec<u8>>> = Arc::new(
        services
            .iter()
            .map(|svc| {
                let body = json!({"service": svc, "lang": "fi"}).to_string();
                post_json(addr, &path, BENCH_KIOSK_TOKEN, &body)
            })
            .collect(),
    );
    let rss_before = daemon.rss_kib().unwrap_or(0);
    let load_before = crate::loadavg();
    let cpu_before = crate::daemon::cpu_ms(daemon.pid).unwrap_or(0);
    let bench_cpu_before = crate::daemon::cpu_ms(std::process::id()).unwrap_or(0);
    let commits_before = commits(addr).await?;

    let next = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now();
    let deadline = t0 + limit;
    let mut tasks = Vec::new();
    for c in 0..clients {
        let next = next.clone();
        let errors = errors.clone();
        let requests = requests.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = None;
            let mut lat = Samples::default();
            let mut first_error = None;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total || Instant::now() > deadline {
                    break;
                }
                // Spread over the services so that no queue grows absurdly long.
                let request = &requests[(i as usize + c) % requests.len()];
                let t = Instant::now();
                let answer = match &mut conn {
                    Some(h) => Ok(h),
                    None => RawHttp::connect(addr).await.map(|h| conn.insert(h)),
                };
                let failure = match answer {
                    Ok(h) => match h.exchange(request).await {
                        Ok(r) if r.status == 201 && r.body.starts_with(b"{\"id\":") => {
                            lat.push(t.elapsed());
                            None
                        }
                        Ok(r) => Some(format!("{} {}", r.status, String::from_utf8_lossy(r.body))),
                        Err(e) => {
                            conn = None;
                            Some(format!("{e:#}"))
                        }
                    },
                    Err(e) => Some(format!("{e:#}")),
                };
                if let Some(f) = failure {
                    errors.fetch_add(1, Ordering::Relaxed);
                    first_error.get_or_insert(f);
                }
                // A failing daemon must not turn this into a busy loop.
                if errors.load(Ordering::Relaxed) > 1000 {
                    break;
                }
            }
            (lat, first_error)
        }));
    }
    let mut lat = Samples::default();
    let mut first_error = None;
    for t in tasks {
        let (l, e) = t.await?;
        lat.0.extend(l.0);
        if first_error.is_none() {
            first_error = e;
        }
    }
    let elapsed = t0.elapsed();
    let commits = commits(addr).await? - commits_before;
    let rss_after = daemon.rss_kib().unwrap_or(0);
    let load_after = crate::loadavg();
    let cpu = crate::daemon::cpu_ms(daemon.pid).unwrap_or(0) - cpu_before;
    let bench_cpu = crate::daemon::cpu_ms(std::process::id()).unwrap_or(0) - bench_cpu_before;
    let data = daemon.data.clone();
    daemon.stop().await?;

    // Durable: every acknowledged ticket is in the event log.
    let conn = rusqlite::Connection::open_with_flags(
        data.join("vuoro.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )?;
    let stored: u64 = conn.query_row(
        "SELECT COUNT(*) FROM events WHERE kind = 'ticket_issued'",
        [],
        |r| r.get::<_, i64>(0),
    )? as u64;

    let ok = lat.len() as u64;
    let rate = ok as f64 / elapsed.as_secs_f64();
    let (p50, p99, max) = (lat.pct_ms(50.0), lat.pct_ms(99.0), lat.max_ms());
    let errs = errors.load(Ordering::Relaxed);
    let mut r = Report::new("issue");
    r.row("clients", clients.to_string());
    r.row("tickets acknowledged", ok.to_string());
    r.row("elapsed", format!("{:.2} s", elapsed.as_secs_f64()));
    r.check(
        "durable tickets/s",
        format!("{rate:.0}"),
        ">= 20000",
        rate >= 20_000.0,
    );
    r.row("latency p50", ms(p50));
    r.check("latency p99", ms(p99), "< 10 ms", p99 < 10.0);
    r.row("latency max", ms(max));
    if opts.mode == crate::Mode::Child {
        r.row(
            "daemon CPU per ticket",
            format!("{:.0} µs", cpu as f64 * 1000.0 / ok.max(1) as f64),
        );
        r.row(
            "load generator CPU per ticket",
            format!("{:.0} µs", bench_cpu as f64 * 1000.0 / ok.max(1) as f64),
        );
    }
    r.row(
        "tickets per commit",
        format!(
            "{:.1} ({commits} commits)",
            ok as f64 / commits.max(1) as f64
        ),
    );
    r.row("errors", errs.to_string());
    r.row("in the event log", stored.to_string());
    r.row(
        "daemon RSS",
        format!("{} -> {} MiB", rss_before / 1024, rss_after / 1024),
    );
    r.row("load average", format!("{load_before} -> {load_after}"));
    if errs > 0 {
        r.problems.push(format!(
            "{errs} requests failed, first: {}",
            first_error.unwrap_or_default()
        ));
    }
    if stored < ok {
        r.problems.push(format!(
            "{ok} tickets acknowledged but only {stored} in the event log"
        ));
    }
    r.data = json!({
        "clients": clients, "tickets": ok, "elapsed_s": elapsed.as_secs_f64(), "tickets_per_s": rate,
        "p50_ms": p50, "p99_ms": p99, "max_ms": max, "errors": errs, "stored": stored,
        "commits": commits, "daemon_cpu_ms": cpu, "bench_cpu_ms": bench_cpu, "rss_kib_before": rss_before, "rss_kib_after": rss_after, "load_before": load_before, "load_after": load_after,
    });
    Ok(r)
}

/// Group commits so far, from the daemon's metrics.
async fn commits(addr: std::net::SocketAddr) -> anyhow::Result<u64> {
    let m = vuoro_client::Http::new(addr).get("/metrics").await?;
    let text = String::from_utf8_lossy(&m.body);
    text.lines()
        .find_map(|l| l.strip_prefix("vuoro_commits_total ")?.trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no vuoro_commits_total in the daemon's metrics"))
}
