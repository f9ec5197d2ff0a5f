//! `day`: a synthetic day of an Iso Omena-like hall (the demo config: 17 services, 20 counters), driven
//! through the engine with a simulated clock (deterministic: same seed, same day), faster than real time.
//! Customers arrive over the opening hours with a morning peak, a lunch peak and an evening tail; each
//! counter calls the next ticket as soon as it is free, the customer walks up (or does not come: a
//! no-show), is served for a time drawn per service, and so on until the queues are empty after closing.
//!
//! It checks the end state (every ticket ended, nothing waiting, every counter closed, a replay of the
//! events gives the same state) and measures how good the estimated wait given at issue time was against
//! the wait that followed: mean absolute error in minutes, and relative to the mean wait.
//!
//! `--api` runs a shorter variant through the daemon's HTTP API and WebSocket (see `api_day`).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;

use anyhow::{Context, bail};
use chrono::{DateTime, Duration as Dur, NaiveDate, NaiveTime, TimeZone, Utc};
use serde_json::json;
use vuoro_engine::config::Site;
use vuoro_engine::{Actor, Command, CounterVerb, Engine, Event, Outcome, Priority, TicketState};

use crate::{DEMO_CONFIG, Opts, Report};

/// A small deterministic random source (SplitMix64): no dependency, same numbers everywhere.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.f64()
    }
    /// Log-normal with the given mean and shape `sigma` (coefficient of variation about 0.66 at 0.6).
    pub fn lognormal(&mut self, mean: f64, sigma: f64) -> f64 {
        let u1 = self.f64().max(1e-12);
        let u2 = self.f64();
        let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
        let mu = mean.ln() - sigma * sigma / 2.0;
        (mu + sigma * z).exp()
    }
    pub fn token(&mut self) -> String {
        format!("{:016x}{:016x}", self.next_u64(), self.next_u64())
    }
}

/// The day's mix: service, tickets per 3,620 (scaled to the day's visits), mean service minutes. Twenty
/// counters over twelve hours fit about 4,500 tickets only with brisk service (a mean of about 2.3
/// minutes): the library desk, the lab and the info points carry the volume, Kela and the clinics
/// the long visits.
pub const MIX: &[(&str, f64, f64)] = &[
    ("kela-general", 280.0, 4.8),
    ("kela-families", 60.0, 6.4),
    ("kela-appointment", 30.0, 8.0),
    ("joint-service", 400.0, 2.8),
    ("city-housing", 40.0, 6.4),
    ("parking", 300.0, 1.6),
    ("child-clinic", 50.0, 8.8),
    ("maternity-clinic", 50.0, 8.8),
    ("mental-health", 40.0, 11.2),
    ("substance-abuse", 35.0, 11.2),
    ("lab-sample", 650.0, 1.3),
    ("xray", 120.0, 3.6),
    ("health-advice", 120.0, 3.6),
    ("library-help", 850.0, 0.8),
    ("digital-help", 25.0, 4.8),
    ("youth-services", 150.0, 2.8),
    ("culture-info", 420.0, 1.0),
];

/// Share of the day's arrivals per opening hour, 08..20: a morning peak (10-12), a lunch peak (12-14)
/// and an evening tail.
pub const ARRIVALS_BY_HOUR: [f64; 12] = [
    0.055, 0.085, 0.115, 0.115, 0.105, 0.100, 0.090, 0.085, 0.080, 0.070, 0.055, 0.045,
];

pub const OPENS: u32 = 8;
pub const CLOSES: u32 = 20;
/// No new tickets in the last quarter hour.
const LAST_TICKET_MIN_BEFORE_CLOSE: i64 = 15;
const NO_SHOW_RATE: f64 = 0.03;
const ASSIST_RATE: f64 = 0.03;

/// One customer: when (seconds after opening), for what, and how long the service will take.
#[derive(Debug, Clone)]
pub struct Arrival {
    pub at_s: f64,
    pub service: String,
    pub priority: Priority,
    pub service_s: f64,
    pub walk_s: f64,
    pub no_show: bool,
}

/// The day's customers, sorted by arrival time. Deterministic for a seed.
pub fn plan(visits: usize, seed: u64) -> Vec<Arrival> {
    let mut rng = Rng::new(seed);
    let weight: f64 = MIX.iter().map(|m| m.1).sum();
    let mut out = Vec::with_capacity(visits);
    let last_s = ((CLOSES - OPENS) as f64) * 3600.0 - LAST_TICKET_MIN_BEFORE_CLOSE as f64 * 60.0;
    let mut carry = 0.0;
    for (h, share) in ARRIVALS_BY_HOUR.iter().enumerate() {
        let exact = visits as f64 * share + carry;
        let n = exact.round();
        carry = exact - n;
        for _ in 0..n as usize {
            let at_s = (h as f64 + rng.f64()) * 3600.0;
            if at_s >= last_s {
                continue;
            }
            let mut pick = rng.f64() * weight;
            let (service, _, mean_min) = MIX
                .iter()
                .find(|m| {
                    pick -= m.1;
                    pick < 0.0
                })
                .unwrap_or(&MIX[0]);
            out.push(Arrival {
                at_s,
                service: service.to_string(),
                priority: if rng.f64() < ASSIST_RATE {
                    Priority::Assist
                } else {
                    Priority::Normal
                },
                service_s: rng.lognormal(mean_min * 60.0, 0.6).max(20.0),
                walk_s: rng.range(10.0, 30.0),
                no_show: rng.f64() < NO_SHOW_RATE,
            });
        }
    }
    out.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    Open(usize),
    Arrive(usize),
    Call(usize),
    Start(usize),
    NoShow(usize),
    /// Closing time: idle counters close.
    Closing,
}

/// What one simulated day did.
#[derive(Debug, Default, Clone)]
pub struct DayOutcome {
    pub issued: usize,
    pub finished: usize,
    pub no_shows: usize,
    pub cancelled: usize,
    pub events: usize,
    pub commands: usize,
    /// (estimate given at issue, actual wait until first called), minutes, for each called ticket.
    pub estimates: Vec<(f64, f64, String)>,
    pub errors: Vec<String>,
    pub last_call_local: Option<NaiveTime>,
}

/// Local time on `date` at the site, as UTC.
pub fn local(site: &Site, date: NaiveDate, h: u32, m: u32) -> DateTime<Utc> {
    site.tz()
        .from_local_datetime(&date.and_hms_opt(h, m, 0).expect("valid time"))
        .earliest()
        .expect("a local time that exists")
        .with_timezone(&Utc)
}

/// Runs one day on `engine` (which may carry earlier days). Every event goes to `sink` in order, in
/// batches. With `measure`, records the estimate at issue and the wait that followed for each ticket.
pub fn simulate_day(
    engine: &mut Engine,
    site_id: &str,
    date: NaiveDate,
    arrivals: &[Arrival],
    seed: u64,
    measure: bool,
    sink: &mut dyn FnMut(Vec<Event>) -> anyhow::Result<()>,
) -> anyhow::Result<DayOutcome> {
    let cfg = engine.config().clone();
    let site = cfg.site(site_id).context("no such site")?;
    let open_at = local(site, date, OPENS, 0);
    let close_at = local(site, date, CLOSES, 0);
    let counters: Vec<&vuoro_engine::config::Counter> = site.counters.iter().collect();
    let mut rng = Rng::new(seed.wrapping_mul(31).wrapping_add(7));
    let mut heap: BinaryHeap<Reverse<(i64, u64, Step)>> = BinaryHeap::new();
    let mut n = 0u64;
    let mut push = |heap: &mut BinaryHeap<_>, at: DateTime<Utc>, s: Step| {
        n += 1;
        heap.push(Reverse((at.timestamp_millis(), n, s)));
    };
    for (i, _) in counters.iter().enumerate() {
        push(&mut heap, open_at, Step::Open(i));
    }
    push(&mut heap, close_at, Step::Closing);
    for (i, a) in arrivals.iter().enumerate() {
        push(
            &mut heap,
            open_at + Dur::milliseconds((a.at_s * 1000.0) as i64),
            Step::Arrive(i),
        );
    }
    let kiosk = Actor::device("kiosk-1");
    let agents: Vec<Actor> = counters
        .iter()
        .map(|c| Actor::user(&format!("agent-{}", c.id)))
        .collect();
    let mut idle = vec![false; counters.len()];
    let mut closed = vec![false; counters.len()];
    // ticket id -> (arrival index, issued at, estimate in minutes)
    let mut tickets: HashMap<u64, (usize, DateTime<Utc>, Option<f64>)> = HashMap::new();
    let mut called_once: std::collections::HashSet<u64> = std::collections::HashSet::new();
    let mut current: Vec<Option<u64>> = vec![None; counters.len()];
    let mut out = DayOutcome::default();
    let mut steps = 0usize;
    while let Some(Reverse((ms, _, step))) = heap.pop() {
        steps += 1;
        if steps > arrivals.len() * 20 + 10_000 {
            bail!("the simulated day did not end (more than {steps} steps)");
        }
        let now = DateTime::<Utc>::from_timestamp_millis(ms).expect("time");
        out.commands += 1;
        match step {
            Step::Open(c) => {
                engine.handle(
                    Command::Counter {
                        counter: counters[c].id.clone(),
                        verb: CounterVerb::Open,
                    },
                    now,
                    &agents[c],
                )?;
                push(&mut heap, now, Step::Call(c));
            }
            Step::Arrive(i) => {
                let a = &arrivals[i];
                let res = engine.handle(
                    Command::Issue {
                        site: site.id.clone(),
                        service: a.service.parse()?,
                        lang: "fi".into(),
                        priority: a.priority,
                        token: rng.token().parse()?,
                        channel: vuoro_engine::Channel::Kiosk,
                        idempotency: None,
                    },
                    now,
                    &kiosk,
                );
                match res {
                    Ok(Outcome::Ticket { id, .. }) => {
                        out.issued += 1;
                        let eta = if measure {
                            let t = engine.ticket(&site.id, id).expect("issued");
                            engine.ticket_view(t, None).eta_minutes.map(f64::from)
                        } else {
                            None
                        };
                        tickets.insert(id, (i, now, eta));
                        // Wake one idle counter that serves this service.
                        if let Some(c) = (0..counters.len()).find(|&c| {
                            idle[c]
                                && !closed[c]
                                && counters[c].services.iter().any(|s| s.service == a.service)
                        }) {
                            idle[c] = false;
                            push(&mut heap, now + Dur::seconds(5), Step::Call(c));
                        }
                    }
                    Ok(_) => out.errors.push("issue gave no ticket".into()),
                    Err(e) => out.errors.push(format!("issue {}: {e}", a.service)),
                }
            }
            Step::Call(c) => {
                let res = engine.handle(
                    Command::Counter {
                        counter: counters[c].id.clone(),
                        verb: CounterVerb::CallNext,
                    },
                    now,
                    &agents[c],
                )?;
                match res {
                    Outcome::Counter {
                        ticket: Some(id), ..
                    } => {
                        current[c] = Some(id);
                        let Some(&(i, issued, eta)) = tickets.get(&id) else {
                            bail!("called an unknown ticket {id}");
                        };
                        if called_once.insert(id)
                            && let Some(eta) = eta
                        {
                            let waited = (now - issued).num_milliseconds() as f64 / 60_000.0;
                            out.estimates
                                .push((eta, waited, arrivals[i].service.clone()));
                        }
                        let a = &arrivals[i];
                        if a.no_show {
                            push(&mut heap, now + Dur::seconds(60), Step::NoShow(c));
                        } else {
                            push(
                                &mut heap,
                                now + Dur::milliseconds((a.walk_s * 1000.0) as i64),
                                Step::Start(c),
                            );
                        }
                        out.last_call_local = Some(now.with_timezone(&site.tz()).time());
                    }
                    _ => {
                        current[c] = None;
                        if now >= close_at {
                            engine.handle(
                                Command::Counter {
                                    counter: counters[c].id.clone(),
                                    verb: CounterVerb::Close,
                                },
                                now,
                                &agents[c],
                            )?;
                            closed[c] = true;
                        } else {
                            idle[c] = true;
                        }
                    }
                }
            }
            Step::Start(c) => {
                engine.handle(
                    Command::Counter {
                        counter: counters[c].id.clone(),
                        verb: CounterVerb::Start,
                    },
                    now,
                    &agents[c],
                )?;
                let id = current[c].context("start without a ticket")?;
                let i = tickets[&id].0;
                push(
                    &mut heap,
                    now + Dur::milliseconds((arrivals[i].service_s * 1000.0) as i64),
                    Step::Call(c),
                );
            }
            Step::Closing => {}
            Step::NoShow(c) => {
                engine.handle(
                    Command::Counter {
                        counter: counters[c].id.clone(),
                        verb: CounterVerb::NoShow,
                    },
                    now,
                    &agents[c],
                )?;
                current[c] = None;
                push(&mut heap, now + Dur::seconds(5), Step::Call(c));
            }
        }
        // Counters idle at closing time close (the ones serving close after their last customer).
        if now >= close_at {
            for c in 0..counters.len() {
                if idle[c] && !closed[c] {
                    idle[c] = false;
                    push(&mut heap, now, Step::Call(c));
                }
            }
        }
        let evs = engine.take_events();
        out.events += evs.len();
        if !evs.is_empty() {
            sink(evs)?;
        }
    }
    let st = engine.site_state(&site.id).context("site state")?;
    for t in st.tickets.values() {
        match t.state {
            TicketState::Finished => out.finished += 1,
            TicketState::NoShow => out.no_shows += 1,
            TicketState::Cancelled => out.cancelled += 1,
            s => out
                .errors
                .push(format!("ticket {} is still {}", t.number, s.as_str())),
        }
    }
    for (id, c) in &st.counters {
        if c.open {
            out.errors.push(format!("counter {id} is still open"));
        }
    }
    if out.finished + out.no_shows != out.issued {
        out.errors.push(format!(
            "{} issued but {} finished and {} no-shows",
            out.issued, out.finished, out.no_shows
        ));
    }
    Ok(out)
}

/// Mean absolute error, mean signed error (estimate minus actual), mean actual wait, p90 absolute error.
pub fn accuracy(est: &[(f64, f64, String)]) -> (f64, f64, f64, f64) {
    if est.is_empty() {
        return (0.0, 0.0, 0.0, 0.0);
    }
    let n = est.len() as f64;
    let mae = est.iter().map(|(e, a, _)| (e - a).abs()).sum::<f64>() / n;
    let bias = est.iter().map(|(e, a, _)| e - a).sum::<f64>() / n;
    let mean = est.iter().map(|(_, a, _)| a).sum::<f64>() / n;
    let mut abs: Vec<f64> = est.iter().map(|(e, a, _)| (e - a).abs()).collect();
    abs.sort_by(|a, b| a.total_cmp(b));
    let p90 = abs[((abs.len() as f64 * 0.9).ceil() as usize).clamp(1, abs.len()) - 1];
    (mae, bias, mean, p90)
}

/// The simulated date: a Tuesday.
pub fn sim_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 24).expect("date")
}

pub async fn run(opts: &Opts) -> anyhow::Result<Report> {
    if opts.api {
        return crate::dayapi::run(opts).await;
    }
    let visits = opts
        .size
        .as_ref()
        .and_then(|s| s.first().copied())
        .unwrap_or(if opts.smoke { 600 } else { 4_500 }) as usize;
    let days = if opts.smoke {
        1
    } else {
        opts.runs.unwrap_or(5)
    };
    let cfg =
        Arc::new(vuoro_engine::Hall::parse(DEMO_CONFIG).map_err(|e| anyhow::anyhow!("{e:?}"))?);
    let site_id = cfg.sites[0].id.clone();
    let mut report = Report::new("day");
    let mut all = Vec::new();
    let mut maes = Vec::new();
    let mut problems = Vec::new();
    let mut total_events = 0;
    let t0 = std::time::Instant::now();
    let mut per_day = Vec::new();
    // One engine for all the days, as a daemon keeps its averages from day to day; the first day (a
    // week before) only warms it up and is not measured.
    let start = local(&cfg.sites[0], sim_date() - Dur::days(7), 7, 0);
    let mut engine = Engine::new(cfg.clone(), start);
    let warm = plan(visits, 999);
    simulate_day(
        &mut engine,
        &site_id,
        sim_date() - Dur::days(7),
        &warm,
        999,
        false,
        &mut |_| Ok(()),
    )?;
    for d in 0..days {
        let date = sim_date() + Dur::days(d as i64 * 7);
        let seed = 1000 + d as u64;
        let arrivals = plan(visits, seed);
        let before = engine.clone();
        let mut events = Vec::new();
        let out = simulate_day(
            &mut engine,
            &site_id,
            date,
            &arrivals,
            seed,
            true,
            &mut |e| {
                events.extend(e);
                Ok(())
            },
        )?;
        // Replaying the day's events gives the same state: the day is deterministic and complete.
        let mut replay = before;
        for e in &events {
            replay.apply(e);
        }
        if replay.state() != engine.state() {
            problems.push(format!("day {d}: replaying the events gives another state"));
        }
        problems.extend(out.errors.iter().map(|e| format!("day {d}: {e}")));
        let (mae, bias, mean, p90) = accuracy(&out.estimates);
        maes.push(mae);
        total_events += out.events;
        per_day.push(json!({
            "date": date.to_string(), "issued": out.issued, "finished": out.finished, "no_shows": out.no_shows,
            "events": out.events, "mae_min": mae, "bias_min": bias, "mean_wait_min": mean, "p90_abs_err_min": p90,
            "last_call": out.last_call_local.map(|t| t.to_string()),
        }));
        if d == 0 {
            report.row("visits (tickets) per day", out.issued.to_string());
            report.row(
                "finished / no-shows / left open",
                format!(
                    "{} / {} / {}",
                    out.finished,
                    out.no_shows,
                    out.issued - out.finished - out.no_shows
                ),
            );
            report.row(
                "last call (local)",
                out.last_call_local
                    .map_or("-".into(), |t| t.format("%H:%M").to_string()),
            );
        }
        all.extend(out.estimates);
    }
    let secs = t0.elapsed().as_secs_f64();
    let (mae, bias, mean, p90) = accuracy(&all);
    let (med, lo, hi) = crate::stats::spread(&maes);
    report.row("days simulated", days.to_string());
    report.row(
        "engine speed",
        format!(
            "{:.0} events/s ({:.0}x real time)",
            total_events as f64 / secs,
            days as f64 * 13.0 * 3600.0 / secs
        ),
    );
    report.row("mean wait", format!("{mean:.1} min"));
    report.check(
        "estimate MAE",
        format!("{mae:.2} min (days {med:.2}, {lo:.2}..{hi:.2})"),
        "<= 3 min",
        mae <= 3.0,
    );
    report.row(
        "estimate MAE relative to mean wait",
        format!("{:.0} %", 100.0 * mae / mean.max(1e-9)),
    );
    report.row("estimate bias (est - actual)", format!("{bias:+.2} min"));
    report.row("estimate p90 abs error", format!("{p90:.1} min"));
    // Per service, the worst few.
    let mut by: HashMap<&str, Vec<(f64, f64, String)>> = HashMap::new();
    for e in &all {
        by.entry(e.2.as_str()).or_default().push(e.clone());
    }
    let mut per_service: Vec<(String, f64, f64, usize)> = by
        .iter()
        .map(|(s, v)| {
            let (m, _, w, _) = accuracy(v);
            (s.to_string(), m, w, v.len())
        })
        .collect();
    per_service.sort_by(|a, b| b.1.total_cmp(&a.1));
    for (s, m, w, n) in per_service.iter().take(4) {
        report.row(
            format!("  MAE {s}"),
            format!("{m:.1} min (mean wait {w:.1}, n={n})"),
        );
    }
    report.problems = problems;
    report.data = json!({
        "visits": visits, "days": days, "mae_min": mae, "bias_min": bias, "mean_wait_min": mean, "p90_abs_err_min": p90,
        "per_day": per_day,
        "per_service": per_service.iter().map(|(s, m, w, n)| json!({"service": s, "mae_min": m, "mean_wait_min": w, "n": n})).collect::<Vec<_>>(),
    });
    Ok(report)
}
