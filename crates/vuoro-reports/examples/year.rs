//! Measurement: a generated year in a busy hall, then report timings.
//!
//!     cargo run --release -p vuoro-reports --example year -- --dir /tmp/vuoro-year
//!
//! The demo hall with every counter tripled (63 counters, two shifts of staff a day) gets about 4,400
//! visits a day, 08:00-20:00, for 365 days (~1.6 million tickets): issued, called, started, finished,
//! with no-shows, cancellations, transfers and pass-ons, all through the real engine with simulated
//! times and committed to a real store with snapshots, like the daemon. After each day, the daemon's
//! maintenance runs (fold, then purge with a 30-day retention). Then reports over the whole year are
//! timed, each group in JSON and CSV. It prints what it measured; it asserts nothing.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use vuoro_engine::config::{Counter, Hall};
use vuoro_engine::{
    Actor, Command, CounterVerb, Engine, Outcome, Position, ServiceId, TicketToken, TransferTarget,
    UnitId,
};
use vuoro_reports::{cli::query, store};

const DEMO: &str = include_str!("../../../config/demo.toml");
const SITE: &str = "iso-omena";

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn exp(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.unit()).ln()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    Arrive(usize),
    Free(usize),
    Start(usize),
    Done(usize),
    NoShow(usize),
    Transfer(usize),
    Cancel(TicketToken),
    Shift(usize),
    Close(usize),
}

struct Args {
    dir: PathBuf,
    days: i64,
    visits: u32,
    retention: u32,
    /// Only time the reports on a database generated before.
    reports_only: bool,
}

fn args() -> Args {
    let mut a = Args {
        dir: std::env::temp_dir().join("vuoro-year"),
        days: 365,
        visits: 4400,
        retention: 30,
        reports_only: false,
    };
    let v: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < v.len() {
        let val = v.get(i + 1).cloned().unwrap_or_default();
        match v[i].as_str() {
            "--dir" => a.dir = val.into(),
            "--days" => a.days = val.parse().expect("--days N"),
            "--visits" => a.visits = val.parse().expect("--visits N"),
            "--retention" => a.retention = val.parse().expect("--retention N"),
            "--reports-only" => {
                a.reports_only = true;
                i += 1;
                continue;
            }
            other => panic!("unknown argument {other}"),
        }
        i += 2;
    }
    a
}

struct Sim {
    engine: Engine,
    store: std::sync::Arc<dyn vuoro_store::Database>,
    pending: Vec<vuoro_engine::Event>,
    committed: u64,
    since_snapshot: u64,
    events_total: u64,
    tickets_total: u64,
}

impl Sim {
    fn run(&mut self, now: DateTime<Utc>, actor: &Actor, cmd: Command) -> Option<Outcome> {
        let out = self.engine.handle(cmd, now, actor).ok();
        self.pending.extend(self.engine.take_events());
        out
    }
    fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let n = self.pending.len() as u64;
        self.since_snapshot += n;
        self.events_total += n;
        let seq = self.engine.last_seq();
        let snap = self.since_snapshot >= 20_000;
        self.store
            .append(
                self.committed,
                &self.pending,
                snap.then(|| (seq, self.engine.state())),
            )
            .expect("append");
        if snap {
            self.since_snapshot = 0;
        }
        self.committed = seq;
        self.pending.clear();
    }
}

fn main() {
    let a = args();
    std::fs::create_dir_all(&a.dir).expect("dir");
    let db = a.dir.join("vuoro.sqlite");
    if !a.reports_only {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
        }
    }
    let mut cfg = Hall::parse(DEMO).expect("demo config");
    // Triple the counters: c1, c1-b, c1-c, ...
    {
        let site = &mut cfg.sites[0];
        let base: Vec<Counter> = site.counters.clone();
        for suffix in ["b", "c"] {
            for c in &base {
                let mut c2 = c.clone();
                c2.id = format!("{}-{suffix}", c.id).parse().expect("an id");
                site.counters.push(c2);
            }
        }
    }
    let cfg = Arc::new(cfg);
    let site = cfg.site(SITE).expect("site").clone();
    let tz: Tz = site.tz();
    let services: Vec<ServiceId> = site.services.iter().map(|s| s.id.clone()).collect();
    let svc_index: HashMap<ServiceId, usize> = services
        .iter()
        .enumerate()
        .map(|(i, s)| (s.clone(), i))
        .collect();
    let mean_secs: Vec<f64> = site
        .services
        .iter()
        .map(|s| s.expected_service_minutes * 60.0)
        .collect();
    // Demand per service: counters that list it first, divided by its service time, so that load is even.
    let mut weight = vec![0.0f64; services.len()];
    for c in &site.counters {
        let i = svc_index[&c.services[0].service];
        weight[i] += 1.0 / mean_secs[i];
    }
    let total_w: f64 = weight.iter().sum();
    let counters: Vec<Counter> = site.counters.clone();
    let serves: Vec<Vec<usize>> = counters
        .iter()
        .map(|c| c.services.iter().map(|s| svc_index[&s.service]).collect())
        .collect();
    let unit_services: HashMap<UnitId, Vec<usize>> = {
        let mut m: HashMap<UnitId, Vec<usize>> = HashMap::new();
        for (i, s) in site.services.iter().enumerate() {
            m.entry(s.unit.clone()).or_default().push(i);
        }
        m
    };
    // Hourly profile 08-20: busier late morning and early afternoon.
    let profile = [0.6, 1.0, 1.3, 1.3, 1.0, 1.1, 1.2, 1.0, 0.9, 0.8, 0.5, 0.3];
    let psum: f64 = profile.iter().sum();

    let first = NaiveDate::from_ymd_opt(2025, 1, 1).expect("date");
    let local = |d: NaiveDate, secs: i64| -> DateTime<Utc> {
        let t = d.and_hms_opt(0, 0, 0).expect("t") + Duration::seconds(secs);
        tz.from_local_datetime(&t)
            .earliest()
            .expect("local")
            .with_timezone(&Utc)
    };
    let mut sim = Sim {
        engine: Engine::new(cfg.clone(), local(first, 7 * 3600)),
        store: vuoro_store::open(&db).expect("store"),
        pending: Vec::new(),
        committed: 0,
        since_snapshot: 0,
        events_total: 0,
        tickets_total: 0,
    };
    let rw = sim.store.clone();
    let mut rng = Rng(7);
    let mut token_n: u64 = 0;
    let mut fold_ms: Vec<f64> = Vec::new();
    let mut lock_ms: Vec<f64> = Vec::new();
    let mut purge_ms: Vec<f64> = Vec::new();
    let mut deleted_total = 0usize;
    let kiosk = Actor::device("kiosk-1");
    let t_gen = Instant::now();
    println!(
        "Generating {} days of ~{} visits/day on {} counters into {}",
        a.days,
        a.visits,
        counters.len(),
        db.display()
    );
    for day in 0..a.days {
        if a.reports_only {
            break;
        }
        let d = first + Duration::days(day);
        let mut q: BinaryHeap<Reverse<(DateTime<Utc>, u64, Ev)>> = BinaryHeap::new();
        let mut n = 0u64;
        let mut push = |q: &mut BinaryHeap<Reverse<(DateTime<Utc>, u64, Ev)>>, t, e| {
            n += 1;
            q.push(Reverse((t, n, e)));
        };
        // Arrivals.
        for (h, p) in profile.iter().enumerate() {
            let count = (a.visits as f64 * p / psum).round() as u32;
            for _ in 0..count {
                let secs = (8 + h as i64) * 3600 + (rng.unit() * 3600.0) as i64;
                let mut x = rng.unit() * total_w;
                let mut s = 0;
                while s + 1 < weight.len() && x >= weight[s] {
                    x -= weight[s];
                    s += 1;
                }
                push(&mut q, local(d, secs), Ev::Arrive(s));
            }
        }
        let users: Vec<[String; 2]> = (0..counters.len())
            .map(|i| {
                [
                    format!("staff-{:03}", i * 2),
                    format!("staff-{:03}", i * 2 + 1),
                ]
            })
            .collect();
        for i in 0..counters.len() {
            push(&mut q, local(d, 8 * 3600), Ev::Shift(i));
            push(&mut q, local(d, 14 * 3600), Ev::Shift(i));
            push(&mut q, local(d, 20 * 3600), Ev::Close(i));
        }
        let mut shift = vec![0usize; counters.len()];
        let mut open = vec![false; counters.len()];
        let mut busy = vec![false; counters.len()];
        let mut pending_shift = vec![false; counters.len()];
        let mut closing = vec![false; counters.len()];
        let mut idle: Vec<bool> = vec![false; counters.len()];
        let mut last_flush = local(d, 0);
        // The last day stops at 14:00, not rolled over: "today so far" is then computed from its events.
        let partial = day == a.days - 1;
        let stop = local(d, 14 * 3600);
        while let Some(Reverse((t, _, ev))) = q.pop() {
            if partial && t > stop {
                break;
            }
            if t - last_flush > Duration::minutes(15) {
                sim.flush();
                last_flush = t;
            }
            let user = |i: usize, shift: &[usize]| Actor::user(&users[i][shift[i].min(1)]);
            match ev {
                Ev::Arrive(s) => {
                    token_n += 1;
                    let token: TicketToken = format!("{:032x}", 0xa000_0000_0000_u64 + token_n)
                        .parse()
                        .expect("a token");
                    let out = sim.run(
                        t,
                        &kiosk,
                        Command::Issue {
                            site: SITE.parse().expect("an id"),
                            service: services[s].clone(),
                            lang: "fi".into(),
                            priority: Default::default(),
                            token: token.clone(),
                            channel: vuoro_engine::Channel::Kiosk,
                            idempotency: None,
                        },
                    );
                    if out.is_some() {
                        sim.tickets_total += 1;
                        if rng.unit() < 0.02 {
                            let after = Duration::seconds(rng.exp(900.0) as i64 + 60);
                            push(&mut q, t + after, Ev::Cancel(token));
                        }
                        wake(&serves, &mut idle, s, t, &mut q, &mut push);
                    }
                }
                Ev::Cancel(token) => {
                    sim.run(t, &Actor::public(), Command::Cancel { token });
                }
                Ev::Shift(i) => {
                    if busy[i] {
                        pending_shift[i] = true;
                        continue;
                    }
                    do_shift(
                        &mut sim,
                        &counters[i].id,
                        i,
                        t,
                        &mut shift,
                        &mut open,
                        &users,
                    );
                    idle[i] = false;
                    push(&mut q, t, Ev::Free(i));
                }
                Ev::Close(i) => {
                    if busy[i] {
                        closing[i] = true;
                        continue;
                    }
                    if open[i] {
                        sim.run(
                            t,
                            &user(i, &shift),
                            Command::Counter {
                                counter: counters[i].id.clone(),
                                verb: CounterVerb::Close,
                            },
                        );
                        open[i] = false;
                    }
                    idle[i] = false;
                }
                Ev::Free(i) => {
                    busy[i] = false;
                    if closing[i] {
                        closing[i] = false;
                        push(&mut q, t, Ev::Close(i));
                        continue;
                    }
                    if pending_shift[i] {
                        pending_shift[i] = false;
                        push(&mut q, t, Ev::Shift(i));
                        continue;
                    }
                    if !open[i] {
                        continue;
                    }
                    let out = sim.run(
                        t,
                        &user(i, &shift),
                        Command::Counter {
                            counter: counters[i].id.clone(),
                            verb: CounterVerb::CallNext,
                        },
                    );
                    match out {
                        Some(Outcome::Counter {
                            ticket: Some(_), ..
                        }) => {
                            busy[i] = true;
                            idle[i] = false;
                            if rng.unit() < 0.05 {
                                push(&mut q, t + Duration::seconds(120), Ev::NoShow(i));
                            } else {
                                push(
                                    &mut q,
                                    t + Duration::seconds(20 + (rng.unit() * 40.0) as i64),
                                    Ev::Start(i),
                                );
                            }
                        }
                        _ => idle[i] = true,
                    }
                }
                Ev::Start(i) => {
                    sim.run(
                        t,
                        &user(i, &shift),
                        Command::Counter {
                            counter: counters[i].id.clone(),
                            verb: CounterVerb::Start,
                        },
                    );
                    let s = serves[i][0];
                    if rng.unit() < 0.03 {
                        push(&mut q, t + Duration::seconds(90), Ev::Transfer(i));
                    } else {
                        let secs = rng.exp(mean_secs[s]).clamp(30.0, 5400.0) as i64;
                        push(&mut q, t + Duration::seconds(secs), Ev::Done(i));
                    }
                }
                Ev::Done(i) => {
                    let unit = &counters[i].unit;
                    let next = (rng.unit() < 0.04)
                        .then(|| {
                            let others: Vec<usize> = unit_services[unit]
                                .iter()
                                .copied()
                                .filter(|&x| x != serves[i][0])
                                .collect();
                            (!others.is_empty())
                                .then(|| others[(rng.next() % others.len() as u64) as usize])
                        })
                        .flatten();
                    let cur_service = current_service(&sim.engine, &counters[i].id);
                    let next =
                        next.filter(|&x| Some(x) != cur_service.map(|c| svc_index[c.as_str()]));
                    let ok = sim.run(
                        t,
                        &user(i, &shift),
                        Command::Counter {
                            counter: counters[i].id.clone(),
                            verb: CounterVerb::Finish {
                                next_service: next.map(|x| services[x].clone()),
                                position: Position::Original,
                            },
                        },
                    );
                    if ok.is_none() {
                        sim.run(
                            t,
                            &user(i, &shift),
                            Command::Counter {
                                counter: counters[i].id.clone(),
                                verb: CounterVerb::Finish {
                                    next_service: None,
                                    position: Position::Original,
                                },
                            },
                        );
                    } else if let Some(x) = next {
                        wake(&serves, &mut idle, x, t, &mut q, &mut push);
                    }
                    push(&mut q, t + Duration::seconds(15), Ev::Free(i));
                }
                Ev::NoShow(i) => {
                    sim.run(
                        t,
                        &user(i, &shift),
                        Command::Counter {
                            counter: counters[i].id.clone(),
                            verb: CounterVerb::NoShow,
                        },
                    );
                    push(&mut q, t + Duration::seconds(5), Ev::Free(i));
                }
                Ev::Transfer(i) => {
                    let unit = &counters[i].unit;
                    let cur = current_service(&sim.engine, &counters[i].id);
                    let target = unit_services[unit]
                        .iter()
                        .copied()
                        .find(|&x| Some(services[x].as_str()) != cur.as_deref())
                        .unwrap_or(serves[i][0]);
                    let ok = sim.run(
                        t,
                        &user(i, &shift),
                        Command::Counter {
                            counter: counters[i].id.clone(),
                            verb: CounterVerb::Transfer {
                                ticket: None,
                                to: TransferTarget::Service(services[target].clone()),
                                position: Position::Back,
                            },
                        },
                    );
                    if ok.is_none() {
                        push(&mut q, t, Ev::Done(i));
                        continue;
                    }
                    wake(&serves, &mut idle, target, t, &mut q, &mut push);
                    push(&mut q, t + Duration::seconds(10), Ev::Free(i));
                }
            }
        }
        if partial {
            sim.flush();
            break;
        }
        // The day rolls over just after midnight; the daemon's maintenance runs at 01:00.
        sim.run(
            local(d + Duration::days(1), 30),
            &Actor::system(),
            Command::Tick,
        );
        sim.flush();
        let t0 = Instant::now();
        let f = store::fold(&*rw, &cfg).expect("fold");
        fold_ms.push(t0.elapsed().as_secs_f64() * 1000.0);
        lock_ms.push(f.lock_ms as f64);
        let t0 = Instant::now();
        let s = store::purge(&*rw, &cfg, local(d + Duration::days(1), 3600), a.retention)
            .expect("purge");
        purge_ms.push(t0.elapsed().as_secs_f64() * 1000.0);
        deleted_total += s.events_deleted;
        if (day + 1) % 30 == 0 || day + 1 == a.days {
            println!(
                "  day {:>3} ({d}): {:>9} tickets, {:>10} events so far, {:.0} s",
                day + 1,
                sim.tickets_total,
                sim.events_total,
                t_gen.elapsed().as_secs_f64()
            );
        }
    }
    let last = first + Duration::days(a.days - 1);
    if !a.reports_only {
        print_generation(&sim, t_gen, &fold_ms, &lock_ms, &purge_ms, deleted_total);
    }
    drop(rw);
    let ro = vuoro_store::open_read_only(&db).expect("ro");
    let counts = ro.table_counts().expect("counts");
    let size = |p: &str| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    println!(
        "Database: {:.1} MB (+ WAL {:.1} MB); rows: events {}, snapshots {}; report_days {}, report_days_short {}, report_hours {}, report_months {}, report_month_hours {}",
        size(&db.display().to_string()) as f64 / 1e6,
        size(&format!("{}-wal", db.display())) as f64 / 1e6,
        counts["events"],
        counts["snapshots"],
        counts["report_days"],
        counts["report_days_short"],
        counts["report_hours"],
        counts["report_months"],
        counts["report_month_hours"]
    );

    println!("\nReports over the whole year ({first} to {last}), best and worst of 5 runs:");
    let now = local(last, 14 * 3600);
    for group in [
        "site", "service", "unit", "counter", "staff", "hour", "day", "week", "month",
    ] {
        let site = (group != "site").then_some(SITE);
        let q = query(&cfg, site, first, last, group, None).expect("query");
        let mut times = Vec::new();
        let mut csv_times = Vec::new();
        let mut rows = 0;
        let mut arrivals = 0i64;
        for _ in 0..5 {
            let t0 = Instant::now();
            let table = store::report(&*ro, &cfg, &q, now).expect("report");
            let j = table.to_json().to_string();
            times.push(t0.elapsed().as_secs_f64() * 1000.0);
            let t0 = Instant::now();
            let table = store::report(&*ro, &cfg, &q, now).expect("report");
            let c = table.to_csv();
            csv_times.push(t0.elapsed().as_secs_f64() * 1000.0);
            rows = table.rows.len();
            arrivals = table.to_json()["rows"].as_array().map_or(0, |r| {
                r.iter().map(|x| x["arrivals"].as_i64().unwrap_or(0)).sum()
            });
            let _ = (j.len(), c.len());
        }
        println!(
            "  group={group:<8} {rows:>4} rows, {arrivals:>8} arrivals: JSON {:>6.0} ms / {:>6.0} ms, CSV {:>6.0} ms / {:>6.0} ms",
            min(&times),
            max(&times),
            min(&csv_times),
            max(&csv_times)
        );
    }
    let today_now = local(last, 14 * 3600);
    let q = query(&cfg, Some(SITE), last, last, "service", None).expect("query");
    let mut times = Vec::new();
    let mut arrivals = 0;
    for _ in 0..5 {
        let t0 = Instant::now();
        let t = store::report(&*ro, &cfg, &q, today_now).expect("report");
        times.push(t0.elapsed().as_secs_f64() * 1000.0);
        arrivals = t.to_json()["rows"].as_array().map_or(0, |r| {
            r.iter().map(|x| x["arrivals"].as_i64().unwrap_or(0)).sum()
        });
    }
    println!(
        "  today so far (08:00-14:00, not folded: computed from {} arrivals' events): {:.0} ms / {:.0} ms",
        arrivals,
        min(&times),
        max(&times)
    );
    let month_from = last - Duration::days(29);
    let q = query(&cfg, Some(SITE), month_from, last, "day", None).expect("query");
    let t0 = Instant::now();
    let t = store::report(&*ro, &cfg, &q, now).expect("report");
    println!(
        "  last 30 days by day: {} rows in {:.0} ms",
        t.rows.len(),
        t0.elapsed().as_secs_f64() * 1000.0
    );
}

fn current_service(e: &Engine, counter: &str) -> Option<String> {
    let st = e.site_state(SITE)?;
    let id = st.counters.get(counter)?.current?;
    st.tickets.get(&id).map(|t| t.service.to_string())
}

#[allow(clippy::too_many_arguments)]
fn do_shift(
    sim: &mut Sim,
    counter: &str,
    i: usize,
    t: DateTime<Utc>,
    shift: &mut [usize],
    open: &mut [bool],
    users: &[[String; 2]],
) {
    if open[i] {
        shift[i] = 1;
    }
    let who = Actor::user(&users[i][shift[i]]);
    sim.run(
        t,
        &who,
        Command::Counter {
            counter: counter.parse().unwrap(),
            verb: CounterVerb::Open,
        },
    );
    open[i] = true;
}

/// Wakes one idle counter that serves `s`.
fn wake(
    serves: &[Vec<usize>],
    idle: &mut [bool],
    s: usize,
    t: DateTime<Utc>,
    q: &mut BinaryHeap<Reverse<(DateTime<Utc>, u64, Ev)>>,
    push: &mut impl FnMut(&mut BinaryHeap<Reverse<(DateTime<Utc>, u64, Ev)>>, DateTime<Utc>, Ev),
) {
    if let Some(i) = (0..idle.len()).find(|&i| idle[i] && serves[i].contains(&s)) {
        idle[i] = false;
        push(q, t + Duration::seconds(10), Ev::Free(i));
    }
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}
fn max(v: &[f64]) -> f64 {
    v.iter().copied().fold(0.0, f64::max)
}
fn min(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::INFINITY, f64::min)
}

fn print_generation(
    sim: &Sim,
    t_gen: Instant,
    fold_ms: &[f64],
    lock_ms: &[f64],
    purge_ms: &[f64],
    deleted_total: usize,
) {
    println!(
        "\nGenerated {} tickets, {} events in {:.0} s",
        sim.tickets_total,
        sim.events_total,
        t_gen.elapsed().as_secs_f64()
    );
    println!(
        "Daily maintenance: fold {:.0} ms mean, {:.0} ms max (write transaction {:.0} ms mean, {:.0} ms max); purge (incl. fold check) {:.0} ms mean, {:.0} ms max; {} events deleted in all",
        mean(fold_ms),
        max(fold_ms),
        mean(lock_ms),
        max(lock_ms),
        mean(purge_ms),
        max(purge_ms),
        deleted_total
    );
}
