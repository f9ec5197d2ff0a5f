//! `notices`: a day's tickets with notices, compressed. Kiosks take `size` tickets (default 10,000) of one
//! service at a steady pace; with notices on, each ticket's customer gives an SMS number at once; staff at
//! many counters (added to the demo hall) call them at the same pace, each keeping its customer called for
//! `HOLD` (the walk to the counter) before finishing. An SMS gateway in this process (a real HTTP server on
//! 127.0.0.1) takes every notice. Rounds with and without notices are interleaved, each on a fresh daemon,
//! so that a change in the machine's speed falls on both.
//!
//! Reports the outbox's lag (from a call's answer to its "called" SMS reaching the gateway: p50, p99, max),
//! every called ticket's SMS arriving once while it was still called (a later one is dropped as too late,
//! and counted missing), and the issue path's p99 with notices against without.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use vuoro_client::Http;

use crate::stats::Samples;
use crate::{DEMO_CONFIG, Daemon, Opts, Report, TempDir, ms};

const SITE: &str = "iso-omena";
const SERVICE: &str = "joint-service";

/// What the gateway received: each SMS's number and text, with when it arrived.
#[derive(Default)]
struct Received(Mutex<Vec<(String, String, Instant)>>);

/// A minimal HTTP/1.1 gateway: reads each request's body, answers 200, keeps the connection.
async fn gateway(received: Arc<Received>) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let received = received.clone();
            tokio::spawn(async move {
                let (r, mut w) = sock.into_split();
                let mut r = BufReader::new(r);
                loop {
                    let mut len = 0usize;
                    let mut line = String::new();
                    // Head.
                    loop {
                        line.clear();
                        match r.read_line(&mut line).await {
                            Ok(0) | Err(_) => return,
                            Ok(_) => {}
                        }
                        if line == "\r\n" {
                            break;
                        }
                        if let Some((k, v)) = line.split_once(':')
                            && k.eq_ignore_ascii_case("content-length")
                        {
                            len = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0; len];
                    if r.read_exact(&mut body).await.is_err() {
                        return;
                    }
                    let at = Instant::now();
                    if let Ok(v) = serde_json::from_slice::<Value>(&body) {
                        received.0.lock().expect("lock").push((
                            v["to"].as_str().unwrap_or_default().to_string(),
                            v["text"].as_str().unwrap_or_default().to_string(),
                            at,
                        ));
                    }
                    let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-type: application/json\r\n\r\n{}";
                    if w.write_all(ok).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    Ok(addr)
}

/// The demo hall with `counters` more counters for the service, and notices through `gateway` when given.
fn config(gateway: Option<SocketAddr>, counters: usize) -> String {
    let mut c = DEMO_CONFIG.to_string();
    for i in 0..counters {
        c.push_str(&format!(
            "\n[[site.counter]]\nid = \"bench-{i}\"\nunit = \"yhteispalvelu\"\n\
             name = {{ fi = \"Piste {i}\", sv = \"Punkt {i}\", en = \"Desk {i}\" }}\n\
             services = [{{ service = \"{SERVICE}\" }}]\n"
        ));
    }
    if let Some(g) = gateway {
        c.push_str(&format!(
            "\n[notify]\nnear_people = 3\nnear_minutes = 0\n\
             [notify.sms]\nurl = \"http://{g}/send\"\nbody = '{{\"to\":\"{{to}}\",\"text\":\"{{text}}\"}}'\n\
             per_second = 10000\ntimeout_seconds = 5\n"
        ));
    }
    c
}

/// One round's figures.
struct Round {
    issue: Samples,
    lag: Samples,
    /// Called tickets whose "called" SMS did not arrive and was not dropped as too late (lost), those
    /// dropped as too late (the customer was at the counter before it went out), and "called" SMS that
    /// arrived more than once.
    missing: usize,
    late: usize,
    doubled: usize,
    near: usize,
    errors: u64,
    secs: f64,
}

async fn round(
    opts: &Opts,
    tickets: u64,
    pace: f64,
    hold: Duration,
    notices: bool,
) -> anyhow::Result<Round> {
    // Enough counters that each can keep its customer called for `hold` at this pace.
    let counters = ((pace * hold.as_secs_f64() * 1.25).ceil() as usize).max(1);
    let received = Arc::new(Received::default());
    let gw = if notices {
        Some(gateway(received.clone()).await?)
    } else {
        None
    };
    let dir = TempDir::new("notices")?;
    let daemon = Daemon::start(opts.mode, &config(gw, counters), &dir.0).await?;
    let addr = daemon.addr;
    let kiosk = vuoro_client::demo_device_token(addr, "kiosk-3").await?;
    let errors = Arc::new(AtomicU64::new(0));
    let issued = Arc::new(AtomicU64::new(0));
    // Ticket id -> its customer's number and when the contact was stored (the PUT's answer). Ticket
    // numbers come round again in a long day; ids and phone numbers do not.
    let contacted: Arc<Mutex<HashMap<u64, (String, Instant)>>> = Arc::default();
    let limit = Duration::from_secs_f64(tickets as f64 / pace * 3.0 + 30.0);
    let t0 = Instant::now();
    let deadline = t0 + limit;

    // Kiosks: 4 clients, together `pace` tickets per second.
    let kiosks = 4;
    let mut issue_tasks = Vec::new();
    for k in 0..kiosks {
        let (kiosk, errors, issued, contacted) = (
            kiosk.clone(),
            errors.clone(),
            issued.clone(),
            contacted.clone(),
        );
        issue_tasks.push(tokio::spawn(async move {
            let mut h = Http::with_token(addr, &kiosk);
            let mut phone = Http::new(addr);
            let mut lat = Samples::default();
            let every = Duration::from_secs_f64(kiosks as f64 / pace);
            let start = Instant::now() + Duration::from_secs_f64(k as f64 / pace);
            let mut n = 0u32;
            loop {
                let i = issued.fetch_add(1, Ordering::Relaxed);
                if i >= tickets || Instant::now() > deadline {
                    break;
                }
                tokio::time::sleep_until((start + every * n).into()).await;
                n += 1;
                let t = Instant::now();
                let r = h
                    .post(
                        &format!("/api/v1/sites/{SITE}/tickets"),
                        &json!({"service": SERVICE, "lang": "fi"}),
                    )
                    .await;
                let r = match r {
                    Ok(r) if r.status == 201 => r,
                    _ => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                };
                lat.push(t.elapsed());
                if notices {
                    let token = r.json()["token"].as_str().unwrap_or_default().to_string();
                    let number = format!("+35840{:07}", i);
                    let body = json!({ "sms": number }).to_string();
                    let put = phone
                        .request(
                            "PUT",
                            &format!("/api/v1/tickets/{token}/contact"),
                            Some(body.as_bytes()),
                            &[],
                        )
                        .await;
                    if put.is_ok_and(|p| p.status == 200) {
                        let id = r.json()["id"].as_u64().unwrap_or_default();
                        contacted
                            .lock()
                            .expect("lock")
                            .insert(id, (number, Instant::now()));
                    } else {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            lat
        }));
    }

    // Counters: together they call at the same pace, each keeping its customer called for `hold`, as long
    // as tickets come.
    // (ticket id, when call-next was sent, when its answer came).
    let calls: Arc<Mutex<Vec<(u64, Instant, Instant)>>> = Arc::default();
    let staff = vuoro_client::login(addr, "agent2", "demo").await?;
    let mut call_tasks = Vec::new();
    for c in 0..counters {
        let (calls, errors, issued, staff) =
            (calls.clone(), errors.clone(), issued.clone(), staff.clone());
        call_tasks.push(tokio::spawn(async move {
            let mut h = Http::with_token(addr, &staff);
            let path = |verb: &str| format!("/api/v1/counters/bench-{c}/{verb}");
            if !h
                .post(&path("open"), &json!({}))
                .await
                .is_ok_and(|r| r.status == 200)
            {
                errors.fetch_add(1, Ordering::Relaxed);
                return;
            }
            let every = Duration::from_secs_f64(counters as f64 / pace);
            let start = Instant::now() + Duration::from_secs_f64(c as f64 / pace + 0.2);
            let mut n = 0u32;
            let mut idle_since: Option<Instant> = None;
            while Instant::now() < deadline {
                tokio::time::sleep_until((start + every * n).into()).await;
                n += 1;
                let sent = Instant::now();
                let r = match h.post(&path("call-next"), &json!({})).await {
                    Ok(r) => r,
                    Err(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                };
                let at = Instant::now();
                if r.status == 200 {
                    idle_since = None;
                    let id = r.json()["ticket"]["id"].as_u64().unwrap_or_default();
                    calls.lock().expect("lock").push((id, sent, at));
                    tokio::time::sleep(hold).await;
                    if !h
                        .post(&path("finish"), &json!({}))
                        .await
                        .is_ok_and(|r| r.status == 200)
                    {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                } else if issued.load(Ordering::Relaxed) >= tickets {
                    // Nobody waits and nobody will come.
                    let since = *idle_since.get_or_insert(at);
                    if since.elapsed() > every * 2 {
                        break;
                    }
                }
            }
        }));
    }
    let mut issue = Samples::default();
    for t in issue_tasks {
        issue.0.extend(t.await?.0);
    }
    for t in call_tasks {
        t.await?;
    }
    let secs = t0.elapsed().as_secs_f64();
    // Let the outbox finish (bounded).
    let calls = calls.lock().expect("lock").clone();
    let mut lag = Samples::default();
    let mut missing: usize = 0;
    let mut late: usize = 0;
    let mut doubled = 0;
    let mut near = 0;
    if notices {
        let settle = Instant::now() + Duration::from_secs(15);
        loop {
            let got = received
                .0
                .lock()
                .expect("lock")
                .iter()
                .filter(|(_, text, _)| text.contains("on vuorosi"))
                .count();
            if got >= calls.len() || Instant::now() > settle {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let got = received.0.lock().expect("lock").clone();
        // Each customer's number is their own: "called" SMS by number.
        let mut called: HashMap<String, Vec<Instant>> = HashMap::new();
        for (to, text, at) in got.iter() {
            if text.contains("on vuorosi") {
                called.entry(to.clone()).or_default().push(*at);
            } else if text.contains("vuorosi on pian") {
                near += 1;
            }
        }
        let contacted = contacted.lock().expect("lock").clone();
        for (id, sent, at) in &calls {
            // A ticket called before its customer's number was stored has nothing to be told.
            let Some((phone, stored)) = contacted.get(id) else {
                continue;
            };
            if stored > sent {
                continue;
            }
            match called.get(phone).map(Vec::as_slice) {
                Some([arrived]) => lag.push(arrived.saturating_duration_since(*at)),
                Some([arrived, ..]) => {
                    doubled += 1;
                    lag.push(arrived.saturating_duration_since(*at));
                }
                _ => missing += 1,
            }
        }
    }
    daemon.stop().await?;
    if notices {
        // The outbox itself, once the daemon has stopped: "called" notices dropped as too late.
        let conn = rusqlite::Connection::open(dir.0.join("vuoro.sqlite"))?;
        late = conn.query_row(
            "SELECT COUNT(*) FROM notices WHERE kind = 'called' AND state = 'dropped'",
            [],
            |r| r.get::<_, i64>(0),
        )? as usize;
        missing = missing.saturating_sub(late);
    }
    Ok(Round {
        issue,
        lag,
        missing,
        late,
        doubled,
        near,
        errors: errors.load(Ordering::Relaxed),
        secs,
    })
}

pub async fn run(opts: &Opts) -> anyhow::Result<Report> {
    let tickets = opts
        .size
        .as_ref()
        .and_then(|s| s.first().copied())
        .unwrap_or(if opts.smoke { 200 } else { 10_000 })
        // One series of 9,999 numbers a day.
        .min(9_999);
    let pace = if opts.smoke { 50.0 } else { 100.0 };
    let hold = Duration::from_millis(if opts.smoke { 500 } else { 1000 });
    let rounds = opts.runs.unwrap_or(if opts.smoke { 1 } else { 2 });
    let mut report = Report::new("notices");
    let mut data = Vec::new();
    let mut worst_ratio: f64 = 0.0;
    let mut worst_lag: f64 = 0.0;
    for i in 0..rounds {
        let mut without = round(opts, tickets, pace, hold, false).await?;
        let mut with = round(opts, tickets, pace, hold, true).await?;
        let (p99_without, p99_with) = (without.issue.pct_ms(99.0), with.issue.pct_ms(99.0));
        let ratio = if p99_without > 0.0 {
            p99_with / p99_without
        } else {
            1.0
        };
        worst_ratio = worst_ratio.max(ratio);
        let lag99 = with.lag.pct_ms(99.0);
        worst_lag = worst_lag.max(lag99);
        report.row(
            format!("round {} issue p99 without / with notices", i + 1),
            format!("{} / {} ({ratio:.2})", ms(p99_without), ms(p99_with)),
        );
        report.row(
            format!("round {} outbox lag p50 / p99 / max", i + 1),
            format!(
                "{} / {} / {} over {} calls ({} too late), {} near notices, {:.0} s",
                ms(with.lag.pct_ms(50.0)),
                ms(lag99),
                ms(with.lag.max_ms()),
                with.lag.len(),
                with.late,
                with.near,
                with.secs
            ),
        );
        for (what, r) in [("without", &without), ("with", &with)] {
            if r.errors > 0 {
                report.problems.push(format!(
                    "round {} {what}: {} failed requests",
                    i + 1,
                    r.errors
                ));
            }
        }
        if with.missing > 0 || with.doubled > 0 {
            report.problems.push(format!(
                "round {}: {} called tickets' SMS were lost, {} arrived more than once",
                i + 1,
                with.missing,
                with.doubled
            ));
        }
        data.push(json!({
            "tickets": tickets, "pace": pace, "hold_ms": hold.as_millis() as u64,
            "issue_p99_ms_without": p99_without, "issue_p99_ms_with": p99_with,
            "issue_p50_ms_without": without.issue.pct_ms(50.0), "issue_p50_ms_with": with.issue.pct_ms(50.0),
            "lag_p50_ms": with.lag.pct_ms(50.0), "lag_p99_ms": lag99, "lag_max_ms": with.lag.max_ms(),
            "calls": with.lag.len(), "near": with.near, "lost": with.missing, "late": with.late, "doubled": with.doubled,
        }));
    }
    let late: u64 = data.iter().map(|d| d["late"].as_u64().unwrap_or(0)).sum();
    report.check(
        "called notices too late to send (all rounds)",
        late.to_string(),
        "0",
        late == 0,
    );
    report.check(
        "outbox lag p99 (worst round)",
        ms(worst_lag),
        "< 1000 ms",
        worst_lag < 1000.0,
    );
    report.check(
        "issue p99 with notices / without (worst round)",
        format!("{worst_ratio:.2}"),
        "<= 1.10",
        worst_ratio <= 1.10,
    );
    report.data = json!({ "rounds": data });
    Ok(report)
}
