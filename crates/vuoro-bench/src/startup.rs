//! `startup`: a database holding a year of hall days (about 1.6 million tickets, written through
//! vuoro-store in large transactions from the engine's own events, ending with a snapshot the way the
//! daemon writes one), then the time from starting the daemon until /readyz answers, and its idle RSS.
//! Between runs the database is put back as generated (what a run's daemon added is deleted), so every
//! run starts from the same file.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{Duration as Dur, Utc};
use serde_json::json;
use vuoro_engine::Engine;

use crate::day::{local, plan, simulate_day};
use crate::stats::spread;
use crate::{DEMO_CONFIG, Daemon, Mode, Opts, Report, TempDir, ms};

/// What `generate` wrote.
pub struct Generated {
    pub days: usize,
    pub tickets: usize,
    pub events: u64,
    pub last_seq: u64,
    pub seconds: f64,
    pub bytes: u64,
}

/// Writes `days` simulated days ending yesterday into a fresh database in `dir`.
pub fn generate(dir: &std::path::Path, days: usize, visits: usize) -> anyhow::Result<Generated> {
    let t0 = Instant::now();
    let cfg =
        Arc::new(vuoro_engine::Hall::parse(DEMO_CONFIG).map_err(|e| anyhow::anyhow!("{e:?}"))?);
    let site = cfg.sites[0].clone();
    let path = dir.join("vuoro.sqlite");
    let store = vuoro_store::open(&path).context("open store")?;
    let today = site.local_date(Utc::now());
    let first = today - Dur::days(days as i64);
    let mut engine = Engine::new(cfg.clone(), local(&site, first, 7, 0));
    let mut batch: Vec<vuoro_engine::Event> = Vec::with_capacity(120_000);
    let mut committed = 0u64;
    let mut tickets = 0;
    for d in 0..days {
        let date = first + Dur::days(d as i64);
        let arrivals = plan(visits, 7_000 + d as u64);
        let out = simulate_day(
            &mut engine,
            &site.id,
            date,
            &arrivals,
            7_000 + d as u64,
            false,
            &mut |evs| {
                batch.extend(evs);
                if batch.len() >= 100_000 {
                    store.append(committed, &batch, None)?;
                    committed = batch.last().map_or(committed, |e| e.seq);
                    batch.clear();
                }
                Ok(())
            },
        )?;
        tickets += out.issued;
        anyhow::ensure!(out.errors.is_empty(), "day {date}: {:?}", out.errors);
    }
    if !batch.is_empty() {
        store.append(committed, &batch, None)?;
        committed = batch.last().map_or(committed, |e| e.seq);
    }
    // The final snapshot, as the daemon writes one (core.rs: the engine state at its last seq).
    store.append(committed, &[], Some((committed, engine.state())))?;
    drop(store);
    let bytes = std::fs::metadata(&path)?.len()
        + std::fs::metadata(dir.join("vuoro.sqlite-wal")).map_or(0, |m| m.len());
    Ok(Generated {
        days,
        tickets,
        events: committed,
        last_seq: committed,
        seconds: t0.elapsed().as_secs_f64(),
        bytes,
    })
}

/// Puts the database back to what `generate` wrote.
fn reset(dir: &std::path::Path, last_seq: u64) -> anyhow::Result<()> {
    let c = rusqlite::Connection::open(dir.join("vuoro.sqlite"))?;
    c.execute("DELETE FROM events WHERE seq > ?1", [last_seq as i64])?;
    c.execute("DELETE FROM snapshots WHERE seq > ?1", [last_seq as i64])?;
    c.execute("DELETE FROM sessions", [])?;
    c.pragma_update(None, "wal_checkpoint", "TRUNCATE")?;
    Ok(())
}

pub async fn run(opts: &Opts) -> anyhow::Result<Report> {
    let days = opts
        .size
        .as_ref()
        .and_then(|s| s.first().copied())
        .unwrap_or(if opts.smoke { 3 } else { 365 }) as usize;
    let visits = if opts.smoke { 300 } else { 4_500 };
    let runs = opts.runs.unwrap_or(if opts.smoke { 1 } else { 5 });
    let dir = TempDir::new("startup")?;
    let path = dir.0.clone();
    let g = tokio::task::spawn_blocking(move || generate(&path, days, visits)).await??;
    let mut report = Report::new("startup");
    report.row(
        "history",
        format!(
            "{} days, {} tickets, {} events",
            g.days, g.tickets, g.events
        ),
    );
    report.row(
        "generated",
        format!(
            "in {:.1} s ({:.0} events/s), {:.0} MiB on disk",
            g.seconds,
            g.events as f64 / g.seconds,
            g.bytes as f64 / 1048576.0
        ),
    );
    let mut ready = Vec::new();
    let mut rss = Vec::new();
    for _ in 0..runs {
        reset(&dir.0, g.last_seq)?;
        let d = Daemon::start(opts.mode, DEMO_CONFIG, &dir.0).await?;
        ready.push(d.ready_after.as_secs_f64() * 1000.0);
        tokio::time::sleep(Duration::from_secs(1)).await;
        rss.push(d.rss_kib()? as f64 / 1024.0);
        d.stop().await?;
    }
    let (r_med, r_lo, r_hi) = spread(&ready);
    let (m_med, m_lo, m_hi) = spread(&rss);
    report.check(
        "ready after",
        format!("{} ({}..{}, {runs} runs)", ms(r_med), ms(r_lo), ms(r_hi)),
        "< 1 s",
        r_hi < 1000.0,
    );
    let note = if opts.mode == Mode::InProcess {
        " (in-process: includes the bench)"
    } else {
        ""
    };
    report.check(
        "idle RSS",
        format!("{m_med:.1} MiB ({m_lo:.1}..{m_hi:.1}){note}"),
        "< 30 MB",
        m_hi * 1.048576 < 30.0 || opts.mode == Mode::InProcess,
    );
    report.row("load", crate::loadavg());
    report.data = json!({
        "days": g.days, "tickets": g.tickets, "events": g.events, "generate_s": g.seconds, "db_bytes": g.bytes,
        "ready_ms": ready, "rss_mib": rss,
    });
    Ok(report)
}
