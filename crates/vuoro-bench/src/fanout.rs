//! `fanout`: N WebSocket subscribers on `calls:{site}`; one agent calls the next ticket in a loop. For
//! each call: the time from just before the call request is sent until the last subscriber has the
//! `ticket_called` message. Every subscriber must get every call: losses and resyncs (a fresh snapshot
//! because the subscriber's queue overflowed) are counted.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use memchr::memmem::Finder;
use serde_json::{Value, json};
use tokio::sync::{Notify, Semaphore};
use vuoro_client::Http;

use crate::rawws::RawWs;
use crate::stats::Samples;
use crate::{BENCH_CONFIG, BENCH_KIOSK_TOKEN, BENCH_SITE, Daemon, Opts, Report, TempDir, ms};

struct Slot {
    received: AtomicU32,
    first_ns: AtomicU64,
    last_ns: AtomicU64,
}

struct Shared {
    base: Instant,
    subscribers: u32,
    slots: Vec<Slot>,
    got: Vec<AtomicU32>,
    resyncs: AtomicU64,
    ready: AtomicU32,
    all_ready: Notify,
    complete: Notify,
}

impl Shared {
    fn now_ns(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }
}

/// Source address for the i-th client: 127.0.0.1 .. 127.0.0.x, 20,000 each (ephemeral ports run out
/// at about 28,000 per source address).
pub fn source_ip(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + (i / 20_000) as u8))
}

pub async fn run(opts: &Opts) -> anyhow::Result<Report> {
    let sizes = opts.size.clone().unwrap_or(if opts.smoke {
        vec![20, 200]
    } else {
        vec![100, 1_000, 10_000]
    });
    let mut report = Report::new("fanout");
    let mut data = Vec::new();
    report.row("open-files limit", crate::open_files_limit().to_string());
    for &n in &sizes {
        let calls = opts.calls.unwrap_or(if opts.smoke {
            20
        } else if n >= 10_000 {
            200
        } else {
            400
        });
        let (rows, d, problems) = one(opts, n as usize, calls).await?;
        for (what, value, target, ok) in rows {
            match (target.is_empty(), ok) {
                (true, _) => report.row(format!("N={n}: {what}"), value),
                (false, ok) => report.check(format!("N={n}: {what}"), value, target, ok),
            }
        }
        report.problems.extend(problems);
        data.push(d);
    }
    report.data = json!({"runs": data});
    Ok(report)
}

/// The caller's loop: each call and its answer time, then a wait until every subscriber has it.
async fn call_loop(
    addr: std::net::SocketAddr,
    token: String,
    shared: Arc<Shared>,
    calls: usize,
    connected: usize,
    n: usize,
) -> anyhow::Result<(Vec<u64>, Samples, usize)> {
    let mut agent = Http::with_token(addr, &token);
    let mut sent = vec![0u64; calls];
    let mut call_http = Samples::default();
    let mut timeouts = 0;
    let per_call_limit = Duration::from_millis(2_000 + n as u64 / 2);
    for (k, s) in sent.iter_mut().enumerate() {
        let t = Instant::now();
        *s = shared.now_ns();
        let r = agent
            .post("/api/v1/counters/c1/call-next", &json!({}))
            .await
            .context("call-next")?;
        call_http.push(t.elapsed());
        if r.status != 200 {
            bail!(
                "call-next {k}: {} {}",
                r.status,
                String::from_utf8_lossy(&r.body)
            );
        }
        let slot = &shared.slots[k];
        let done = tokio::time::timeout(per_call_limit, async {
            while (slot.received.load(Ordering::Acquire) as usize) < connected {
                tokio::select! {
                    _ = shared.complete.notified() => {}
                    _ = tokio::time::sleep(Duration::from_millis(5)) => {}
                }
            }
        })
        .await;
        if done.is_err() {
            timeouts += 1;
        }
        // A hall's calls are seconds apart; a short pause keeps one call's fan-out out of the next's.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok((sent, call_http, timeouts))
}

type Rows = Vec<(String, String, String, bool)>;

async fn one(opts: &Opts, n: usize, calls: usize) -> anyhow::Result<(Rows, Value, Vec<String>)> {
    let dir = TempDir::new("fanout")?;
    let daemon = Daemon::start(opts.mode, BENCH_CONFIG, &dir.0).await?;
    let addr = daemon.addr;
    let load_before = crate::loadavg();

    // Tickets to call: A0001 .. in call order.
    let mut kiosk = Http::with_token(addr, BENCH_KIOSK_TOKEN);
    for _ in 0..calls {
        let r = kiosk
            .post(
                &format!("/api/v1/sites/{BENCH_SITE}/tickets"),
                &json!({"service": "s-a", "lang": "fi"}),
            )
            .await?;
        if r.status != 201 {
            bail!("issue: {} {}", r.status, String::from_utf8_lossy(&r.body));
        }
    }
    let token = vuoro_client::login(addr, "agent", "demo").await?;
    let mut agent = Http::with_token(addr, &token);
    let r = agent.post("/api/v1/counters/c1/open", &json!({})).await?;
    drop(agent);
    if r.status != 200 {
        bail!("open c1: {}", r.status);
    }

    let shared = Arc::new(Shared {
        base: Instant::now(),
        subscribers: n as u32,
        slots: (0..calls)
            .map(|_| Slot {
                received: AtomicU32::new(0),
                first_ns: AtomicU64::new(u64::MAX),
                last_ns: AtomicU64::new(0),
            })
            .collect(),
        got: (0..n).map(|_| AtomicU32::new(0)).collect(),
        resyncs: AtomicU64::new(0),
        ready: AtomicU32::new(0),
        all_ready: Notify::new(),
        complete: Notify::new(),
    });
    let connect_errors = Arc::new(AtomicU64::new(0));
    let gate = Arc::new(Semaphore::new(256));
    let t_connect = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let shared = shared.clone();
        let gate = gate.clone();
        let connect_errors = connect_errors.clone();
        tasks.push(tokio::spawn(async move {
            let mut ws = {
                let _permit = gate.acquire().await.expect("semaphore");
                let mut attempt = 0;
                let ws = loop {
                    attempt += 1;
                    match subscribe(addr, source_ip(i)).await {
                        Ok(ws) => break Some(ws),
                        Err(_) if attempt < 5 => {
                            tokio::time::sleep(Duration::from_millis(50 * attempt)).await
                        }
                        Err(_) => break None,
                    }
                };
                let Some(ws) = ws else {
                    connect_errors.fetch_add(1, Ordering::Relaxed);
                    return;
                };
                ws
            };
            if shared.ready.fetch_add(1, Ordering::AcqRel) + 1 == shared.subscribers {
                shared.all_ready.notify_one();
            }
            ws.shrink();
            while let Ok(text) = ws.next_text().await {
                if SNAPSHOT.find(text).is_some() {
                    shared.resyncs.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                if CALLED.find(text).is_none() {
                    continue;
                }
                let Some(k) = call_number(text) else {
                    continue;
                };
                let now = shared.now_ns();
                if let Some(slot) = shared.slots.get(k.wrapping_sub(1)) {
                    slot.first_ns.fetch_min(now, Ordering::Relaxed);
                    slot.last_ns.fetch_max(now, Ordering::Relaxed);
                    shared.got[i].fetch_add(1, Ordering::Relaxed);
                    if slot.received.fetch_add(1, Ordering::AcqRel) + 1 == shared.subscribers {
                        shared.complete.notify_one();
                    }
                }
            }
        }));
    }
    // All subscribed (each has its snapshot), or as many as could within the time limit.
    let connect_limit = Duration::from_secs(60 + n as u64 / 200);
    let _ = tokio::time::timeout(connect_limit, async {
        while shared.ready.load(Ordering::Acquire) + (connect_errors.load(Ordering::Relaxed) as u32)
            < n as u32
        {
            tokio::select! {
                _ = shared.all_ready.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
    })
    .await;
    let connected = shared.ready.load(Ordering::Acquire) as usize;
    let connect_s = t_connect.elapsed().as_secs_f64();
    let rss_connected = daemon.rss_kib().unwrap_or(0);
    tokio::time::sleep(Duration::from_millis(200)).await;

    // The calls, one at a time: the next only after everyone has this one (or the time limit passed).
    // The caller has a thread and runtime of its own, like a desk on another machine, so that its answer
    // time does not include a wait behind the subscribers' tasks in the load generator.
    let cpu_before = crate::daemon::cpu_ms(daemon.pid).unwrap_or(0);
    let bench_cpu_before = crate::daemon::cpu_ms(std::process::id()).unwrap_or(0);
    let caller = {
        let shared = shared.clone();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("fanout-caller".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                let res = match rt {
                    Ok(rt) => rt.block_on(call_loop(addr, token, shared, calls, connected, n)),
                    Err(e) => Err(e.into()),
                };
                let _ = done_tx.send(res);
            })?;
        done_rx
    };
    let (sent, mut call_http, timeouts) = caller.await.context("the caller thread ended")??;
    let cpu = crate::daemon::cpu_ms(daemon.pid).unwrap_or(0) - cpu_before;
    let bench_cpu = crate::daemon::cpu_ms(std::process::id()).unwrap_or(0) - bench_cpu_before;
    // Stragglers.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let load_after = crate::loadavg();
    let rss_after = daemon.rss_kib().unwrap_or(0);
    for t in &tasks {
        t.abort();
    }
    for t in tasks {
        let _ = t.await;
    }
    daemon.stop().await?;

    let mut last = Samples::default();
    let mut first = Samples::default();
    let mut complete = 0;
    for (k, slot) in shared.slots.iter().enumerate() {
        let l = slot.last_ns.load(Ordering::Relaxed);
        if slot.received.load(Ordering::Relaxed) as usize == connected && l >= sent[k] {
            complete += 1;
            last.push(Duration::from_nanos(l - sent[k]));
            first.push(Duration::from_nanos(
                slot.first_ns.load(Ordering::Relaxed) - sent[k],
            ));
        }
    }
    let delivered: u64 = shared
        .got
        .iter()
        .map(|g| g.load(Ordering::Relaxed) as u64)
        .sum();
    let expected = (connected * calls) as u64;
    let losses = expected.saturating_sub(delivered) + (n - connected) as u64 * calls as u64;
    let resyncs = shared.resyncs.load(Ordering::Relaxed);
    let target = match n {
        0..=100 => 5.0,
        101..=1_000 => 25.0,
        _ => 100.0,
    };
    let (p50, p99, max) = (last.pct_ms(50.0), last.pct_ms(99.0), last.max_ms());
    let rows: Rows = vec![
        (
            "subscribed".into(),
            format!("{connected} in {connect_s:.1} s"),
            String::new(),
            true,
        ),
        ("calls".into(), calls.to_string(), String::new(), true),
        (
            "CPU per delivery (daemon + load generator)".into(),
            if opts.mode == crate::Mode::Child {
                let per = |ms: u64| ms as f64 * 1000.0 / (connected * calls).max(1) as f64;
                format!("{:.1} + {:.1} µs", per(cpu), per(bench_cpu))
            } else {
                "in-process".into()
            },
            String::new(),
            true,
        ),
        ("to last p50".into(), ms(p50), String::new(), true),
        (
            "to last p99".into(),
            ms(p99),
            format!("< {target} ms"),
            p99 < target && complete > 0,
        ),
        ("to last max".into(), ms(max), String::new(), true),
        (
            "to first p50".into(),
            ms(first.pct_ms(50.0)),
            String::new(),
            true,
        ),
        (
            "call-next answer p50".into(),
            ms(call_http.pct_ms(50.0)),
            String::new(),
            true,
        ),
        (
            "losses".into(),
            format!("{losses} of {}", n * calls),
            "0".into(),
            losses == 0,
        ),
        ("resyncs".into(), resyncs.to_string(), String::new(), true),
        (
            "daemon RSS".into(),
            format!(
                "{} MiB connected, {} MiB after",
                rss_connected / 1024,
                rss_after / 1024
            ),
            String::new(),
            true,
        ),
        (
            "load".into(),
            format!("{load_before} -> {load_after}"),
            String::new(),
            true,
        ),
    ];
    let mut problems = Vec::new();
    if connected < n {
        problems.push(format!("N={n}: only {connected} subscribers connected"));
    }
    if losses > 0 {
        problems.push(format!(
            "N={n}: {losses} call deliveries lost ({timeouts} calls timed out)"
        ));
    }
    let d = json!({
        "subscribers": n, "connected": connected, "calls": calls, "p50_ms": p50, "p99_ms": p99, "max_ms": max,
        "first_p50_ms": first.pct_ms(50.0), "call_http_p50_ms": call_http.pct_ms(50.0),
        "losses": losses, "resyncs": resyncs, "timeouts": timeouts, "connect_s": connect_s,
        "rss_kib_connected": rss_connected, "load_before": load_before, "load_after": load_after,
    });
    Ok((rows, d, problems))
}

/// Connects, subscribes to the site's calls and waits for the snapshot.
async fn subscribe(addr: std::net::SocketAddr, local: IpAddr) -> anyhow::Result<RawWs> {
    let mut ws = RawWs::connect(addr, Some(local)).await?;
    ws.subscribe(&format!("calls:{BENCH_SITE}")).await?;
    let text = tokio::time::timeout(Duration::from_secs(30), ws.next_text())
        .await
        .context("no snapshot in time")??;
    if !contains(text, b"\"type\":\"snapshot\"") {
        bail!("expected a snapshot first");
    }
    Ok(ws)
}

pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(hay, needle).is_some()
}

// Searchers built once: building one per message costs a twentieth of the load generator's time.
static SNAPSHOT: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(br#""type":"snapshot""#));
static CALLED: LazyLock<Finder<'static>> =
    LazyLock::new(|| Finder::new(br#""kind":"ticket_called""#));
static NUMBER: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(br#""number":""#));

/// The call order of a called number ("A0042" -> 42) in an event's text.
fn call_number(text: &[u8]) -> Option<usize> {
    let from = NUMBER.find(text)? + NUMBER.needle().len();
    let rest = &text[from..];
    let end = memchr::memchr(b'"', rest)?;
    std::str::from_utf8(rest.get(1..end)?).ok()?.parse().ok()
}
