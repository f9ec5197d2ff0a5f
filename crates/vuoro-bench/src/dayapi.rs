//! `day --api`: the same synthetic hall day, shorter: through the daemon's HTTP API and WebSocket, with
//! the clock compressed (default 360 times: the twelve-hour day in about two minutes). A kiosk takes each
//! ticket when its customer arrives; one task per counter calls, starts, serves (sleeps the compressed
//! service time), marks no-shows and closes after the last customer; a hall display follows
//! `calls:{site}`. Checks the end state through the API (every ticket finished or a no-show, every call
//! seen on the display). The daemon reads the real clock and estimates in whole real minutes, so the
//! accuracy of the estimate is measured by the engine-driven variant, not here.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tokio::sync::Notify;
use vuoro_client::{Http, Ws};

use crate::day::{CLOSES, OPENS, plan};
use crate::stats::Samples;
use crate::{DEMO_CONFIG, Daemon, Opts, Report, TempDir, ms};

const SITE: &str = "iso-omena";

pub async fn run(opts: &Opts) -> anyhow::Result<Report> {
    let visits = opts
        .size
        .as_ref()
        .and_then(|s| s.first().copied())
        .unwrap_or(if opts.smoke { 300 } else { 4_500 }) as usize;
    let speed: f64 = if opts.smoke { 5_760.0 } else { 360.0 };
    let arrivals = Arc::new(plan(visits, 1000));
    let dir = TempDir::new("dayapi")?;
    let daemon = Daemon::start(opts.mode, DEMO_CONFIG, &dir.0).await?;
    let addr = daemon.addr;
    let cfg = vuoro_engine::Hall::parse(DEMO_CONFIG).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let counters: Vec<String> = cfg.sites[0]
        .counters
        .iter()
        .map(|c| c.id.to_string())
        .collect();
    let staff = vuoro_client::login(addr, "supervisor", "demo").await?;
    let kiosk_token = vuoro_client::demo_device_token(addr, "kiosk-3").await?;

    // The hall display.
    let mut display = Ws::connect(addr, None).await?;
    display.subscribe(&format!("calls:{SITE}"), None).await?;
    let snap = display.next(Duration::from_secs(5)).await?;
    anyhow::ensure!(snap["type"] == "snapshot", "display: expected a snapshot");
    let seen_calls = Arc::new(AtomicU64::new(0));
    let seen = seen_calls.clone();
    let display_task = tokio::spawn(async move {
        while let Ok(m) = display.next(Duration::from_secs(3600)).await {
            if m["event"]["kind"] == "ticket_called" {
                seen.fetch_add(1, Ordering::Relaxed);
            }
        }
    });

    let t0 = Instant::now();
    let day_len = Duration::from_secs_f64(((CLOSES - OPENS) as f64) * 3600.0 / speed);
    let deadline = t0 + day_len + Duration::from_secs(120);
    let arrived = Arc::new(Notify::new());
    let kiosk_done = Arc::new(AtomicBool::new(false));
    let calls_made = Arc::new(AtomicU64::new(0));

    let number_to_arrival: Arc<std::sync::Mutex<std::collections::HashMap<String, usize>>> =
        Arc::default();
    // Kiosk: each customer at their (compressed) time; it records which plan each number belongs to.
    let kiosk = {
        let arrivals = arrivals.clone();
        let n2a = number_to_arrival.clone();
        let arrived = arrived.clone();
        let kiosk_done = kiosk_done.clone();
        tokio::spawn(async move {
            let mut h = Http::with_token(addr, &kiosk_token);
            let mut lat = Samples::default();
            let mut issued: Vec<(usize, Value)> = Vec::new();
            let mut errors = Vec::new();
            for (i, a) in arrivals.iter().enumerate() {
                let at = t0 + Duration::from_secs_f64(a.at_s / speed);
                tokio::time::sleep_until(at.into()).await;
                let t = Instant::now();
                let body = json!({"service": a.service, "lang": "fi",
                    "priority": if a.priority == vuoro_engine::Priority::Assist { "assist" } else { "normal" }});
                match h
                    .post(&format!("/api/v1/sites/{SITE}/tickets"), &body)
                    .await
                {
                    Ok(r) if r.status == 201 => {
                        lat.push(t.elapsed());
                        let v = r.json();
                        if let Some(n) = v["number"].as_str() {
                            n2a.lock().expect("lock").insert(n.to_string(), i);
                        }
                        issued.push((i, v));
                    }
                    Ok(r) => errors.push(format!("{} {}", r.status, r.code())),
                    Err(e) => errors.push(format!("{e:#}")),
                }
                arrived.notify_waiters();
            }
            kiosk_done.store(true, Ordering::Release);
            arrived.notify_waiters();
            (lat, issued, errors)
        })
    };

    // Counters.
    let mut tasks = Vec::new();
    for counter in &counters {
        let (counter, staff, arrivals, arrived, kiosk_done, calls_made, n2a) = (
            counter.clone(),
            staff.clone(),
            arrivals.clone(),
            arrived.clone(),
            kiosk_done.clone(),
            calls_made.clone(),
            number_to_arrival.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut h = Http::with_token(addr, &staff);
            let mut lat = Samples::default();
            let r = post(&mut h, &counter, "open").await?;
            anyhow::ensure!(r.status == 200, "open {counter}: {}", r.status);
            loop {
                if Instant::now() > deadline {
                    bail!("counter {counter}: the day did not end in time");
                }
                // Read before asking: a 204 means the day is over only if every ticket had been issued
                // before the question (a ticket issued between a 204 and this flag would be missed).
                let day_issued = kiosk_done.load(Ordering::Acquire);
                let t = Instant::now();
                let r = post(&mut h, &counter, "call-next").await?;
                lat.push(t.elapsed());
                match r.status {
                    200 => {
                        calls_made.fetch_add(1, Ordering::Relaxed);
                        let v = r.json();
                        let number = v["ticket"]["number"].as_str().unwrap_or("").to_string();
                        let i = n2a.lock().expect("lock").get(&number).copied();
                        // The customer's plan, by number (unknown only in a race with the kiosk's answer).
                        let (walk, service, no_show) = match i {
                            Some(i) => {
                                let a = &arrivals[i];
                                (a.walk_s, a.service_s, a.no_show)
                            }
                            None => (20.0, 120.0, false),
                        };
                        if no_show {
                            tokio::time::sleep(Duration::from_secs_f64(60.0 / speed)).await;
                            let r = post(&mut h, &counter, "no-show").await?;
                            anyhow::ensure!(r.status == 200, "no-show: {}", r.status);
                            continue;
                        }
                        tokio::time::sleep(Duration::from_secs_f64(walk / speed)).await;
                        let r = post(&mut h, &counter, "start").await?;
                        anyhow::ensure!(r.status == 200, "start: {} {}", r.status, r.code());
                        tokio::time::sleep(Duration::from_secs_f64(service / speed)).await;
                    }
                    204 => {
                        if day_issued {
                            let r = post(&mut h, &counter, "close").await?;
                            anyhow::ensure!(r.status == 200, "close: {}", r.status);
                            return Ok(lat);
                        }
                        let _ = tokio::time::timeout(Duration::from_millis(50), arrived.notified())
                            .await;
                    }
                    s => bail!("call-next {counter}: {s} {}", r.code()),
                }
            }
        }));
    }
    let (issue_lat, issued, kiosk_errors) = kiosk.await?;
    let mut call_lat = Samples::default();
    let mut problems: Vec<String> = kiosk_errors.into_iter().take(5).collect();
    for t in tasks {
        match t.await? {
            Ok(l) => call_lat.0.extend(l.0),
            Err(e) => problems.push(format!("{e:#}")),
        }
    }
    let elapsed = t0.elapsed();
    tokio::time::sleep(Duration::from_millis(300)).await;
    display_task.abort();

    // End state through the API.
    let mut h = Http::with_token(addr, &staff);
    let r = h.get(&format!("/api/v1/sites/{SITE}/tickets")).await?;
    let list = r.json()["tickets"].as_array().cloned().context("tickets")?;
    let count = |s: &str| list.iter().filter(|t| t["state"] == s).count();
    let (finished, no_show) = (count("finished"), count("no_show"));
    let open = list.len() - finished - no_show - count("cancelled");
    if list.len() != issued.len() {
        problems.push(format!(
            "{} issued but the site lists {}",
            issued.len(),
            list.len()
        ));
    }
    if open > 0 {
        problems.push(format!("{open} tickets did not end"));
    }
    let calls = calls_made.load(Ordering::Relaxed);
    let seen = seen_calls.load(Ordering::Relaxed);
    if seen != calls {
        problems.push(format!("{calls} calls made but the display saw {seen}"));
    }
    daemon.stop().await?;

    let mut issue_lat = issue_lat;
    let mut report = Report::new("day --api");
    report.row("clock", format!("{speed:.0}x real time"));
    report.row("tickets issued", issued.len().to_string());
    report.row(
        "finished / no-shows / open",
        format!("{finished} / {no_show} / {open}"),
    );
    report.row(
        "calls made / seen on the display",
        format!("{calls} / {seen}"),
    );
    report.row("elapsed", format!("{:.1} s", elapsed.as_secs_f64()));
    report.row(
        "issue answer p50 / p99",
        format!(
            "{} / {}",
            ms(issue_lat.pct_ms(50.0)),
            ms(issue_lat.pct_ms(99.0))
        ),
    );
    report.row(
        "counter verb answer p50 / p99",
        format!(
            "{} / {}",
            ms(call_lat.pct_ms(50.0)),
            ms(call_lat.pct_ms(99.0))
        ),
    );
    report.check(
        "end state",
        if problems.is_empty() {
            "consistent"
        } else {
            "INCONSISTENT"
        },
        "consistent",
        problems.is_empty(),
    );
    report.data = json!({
        "visits": visits, "speed": speed, "issued": issued.len(), "finished": finished, "no_shows": no_show,
        "calls": calls, "seen": seen, "elapsed_s": elapsed.as_secs_f64(),
    });
    report.problems = problems;
    Ok(report)
}

async fn post(h: &mut Http, counter: &str, verb: &str) -> anyhow::Result<vuoro_client::Response> {
    h.post(&format!("/api/v1/counters/{counter}/{verb}"), &json!({}))
        .await
}
