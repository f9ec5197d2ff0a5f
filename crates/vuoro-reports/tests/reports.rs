//! Reports from a scripted day driven through the real engine with chosen times, checked against numbers
//! worked out by hand (in the comments); folding against computing live; token blanking; the retention
//! purge with a moved clock, and that the daemon can still start from what the purge left.

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use rusqlite::{Connection, OpenFlags};
use serde_json::Value;
use vuoro_engine::config::Hall;
use vuoro_engine::{
    Actor, Command, CounterVerb, Engine, Outcome, Position, ReturnTo, TicketId, TicketRef,
    TransferTarget,
};
use vuoro_reports::cli::query;
use vuoro_reports::store;
use vuoro_store::Database;

const DEMO: &str = include_str!("../../../config/demo.toml");
const SITE: &str = "iso-omena";

struct Dir(PathBuf);
impl Dir {
    fn new(tag: &str) -> Dir {
        let p = std::env::temp_dir().join(format!(
            "vuoro-reports-{tag}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Dir(p)
    }
    fn db(&self) -> PathBuf {
        self.0.join("vuoro.sqlite")
    }
    /// The file itself, read-only, to look at what is stored.
    fn raw(&self) -> Connection {
        Connection::open_with_flags(self.db(), OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap()
    }
}
impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The engine driven at chosen local times, every event committed to a real store.
struct Sim {
    cfg: Arc<Hall>,
    engine: Engine,
    store: Arc<dyn Database>,
    tz: Tz,
    date: NaiveDate,
    tokens: Vec<String>,
    n: u64,
}

impl Sim {
    fn new(db: &std::path::Path, date: NaiveDate) -> Sim {
        let cfg = Arc::new(Hall::parse(DEMO).unwrap());
        let tz: Tz = "Europe/Helsinki".parse().unwrap();
        let start = local(&tz, date, "07:00");
        Sim {
            engine: Engine::new(cfg.clone(), start),
            cfg,
            store: vuoro_store::open(db).unwrap(),
            tz,
            date,
            tokens: Vec::new(),
            n: 0,
        }
    }

    fn at(&self, hm: &str) -> DateTime<Utc> {
        local(&self.tz, self.date, hm)
    }

    fn run(&mut self, hm: &str, actor: Actor, cmd: Command) -> Outcome {
        let now = self.at(hm);
        self.run_at(now, actor, cmd)
    }

    fn run_at(&mut self, now: DateTime<Utc>, actor: Actor, cmd: Command) -> Outcome {
        let before = self.engine.last_seq();
        let out = self
            .engine
            .handle(cmd.clone(), now, &actor)
            .unwrap_or_else(|e| panic!("{cmd:?} at {now}: {e}"));
        let events = self.engine.take_events();
        self.store.append(before, &events, None).unwrap();
        out
    }

    fn issue(&mut self, hm: &str, service: &str) -> TicketId {
        self.n += 1;
        let token = format!("{:032x}", 0xfeed_0000_0000_u64 + self.n);
        self.tokens.push(token.clone());
        let out = self.run(
            hm,
            Actor::device("kiosk-1"),
            Command::Issue {
                site: SITE.parse().unwrap(),
                service: service.parse().unwrap(),
                lang: "fi".into(),
                priority: Default::default(),
                token: token.parse().unwrap(),
                channel: vuoro_engine::Channel::Kiosk,
                idempotency: Some(format!("key-{}", self.n)),
            },
        );
        match out {
            Outcome::Ticket { id, .. } => id,
            o => panic!("{o:?}"),
        }
    }

    fn verb(&mut self, hm: &str, user: &str, counter: &str, verb: CounterVerb) {
        self.run(
            hm,
            Actor::user(user),
            Command::Counter {
                counter: counter.parse().unwrap(),
                verb,
            },
        );
    }

    fn call(&mut self, hm: &str, user: &str, counter: &str, t: TicketId) {
        self.verb(hm, user, counter, CounterVerb::Call(TicketRef::Id(t)));
    }

    fn finish(&mut self, hm: &str, user: &str, counter: &str) {
        self.verb(
            hm,
            user,
            counter,
            CounterVerb::Finish {
                next_service: None,
                position: Position::Original,
            },
        );
    }

    /// Lets time pass to `now` (rolls the day over when past midnight).
    fn tick(&mut self, now: DateTime<Utc>) {
        self.run_at(now, Actor::system(), Command::Tick);
    }

    fn snapshot(&mut self) -> u64 {
        let seq = self.engine.last_seq();
        self.store
            .append(seq, &[], Some((seq, self.engine.state())))
            .unwrap();
        seq
    }
}

fn local(tz: &Tz, date: NaiveDate, hm: &str) -> DateTime<Utc> {
    let t = chrono::NaiveTime::parse_from_str(hm, "%H:%M").unwrap();
    tz.from_local_datetime(&date.and_time(t))
        .earliest()
        .unwrap()
        .with_timezone(&Utc)
}

fn monday() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 3, 2).unwrap()
}

/// The scripted day (local times, Monday 2 March 2026). Counters: c1 (Kela, agent1) 08:00-12:00,
/// c2 (Kela, agent3) 09:00-11:00, c5 (joint service, agent2) 08:00-10:00.
fn scripted_day(sim: &mut Sim) {
    use CounterVerb::*;
    sim.verb("08:00", "agent1", "c1", Open);
    sim.verb("08:00", "agent2", "c5", Open);
    let t1 = sim.issue("08:05", "joint-service");
    let t2 = sim.issue("08:06", "joint-service");
    let t3 = sim.issue("08:07", "kela-general");
    // T3: called after 2 min, does not come.
    sim.call("08:09", "agent1", "c1", t3);
    sim.call("08:10", "agent2", "c5", t1);
    sim.verb("08:11", "agent2", "c5", Start);
    sim.verb("08:12", "agent1", "c1", NoShow);
    let _t4 = sim.issue("08:15", "kela-general");
    let t5 = sim.issue("08:16", "kela-general");
    sim.finish("08:20", "agent2", "c5");
    sim.call("08:20", "agent2", "c5", t2);
    // T5: called after 4 min, transferred to Kela families, waits 40 min there, served 10 min at c2.
    sim.call("08:20", "agent1", "c1", t5);
    sim.verb("08:20", "agent1", "c1", Start);
    sim.verb("08:21", "agent2", "c5", Start);
    sim.verb(
        "08:25",
        "agent1",
        "c1",
        Transfer {
            ticket: None,
            to: TransferTarget::Service("kela-families".parse().unwrap()),
            position: Position::Original,
        },
    );
    // T4: the customer cancels.
    let token4 = sim.tokens[3].clone();
    sim.run(
        "08:25",
        Actor::public(),
        Command::Cancel {
            token: token4.parse().unwrap(),
        },
    );
    // T2: served 9 min, passed on to parking, waits 10 min there, served 5 min.
    sim.verb(
        "08:30",
        "agent2",
        "c5",
        Finish {
            next_service: Some("parking".parse().unwrap()),
            position: Position::Original,
        },
    );
    let t8 = sim.issue("08:30", "kela-general");
    // T8: called after 1 min, no-show, brought back to the queue, called again and served 5 min.
    sim.call("08:31", "agent1", "c1", t8);
    sim.verb("08:35", "agent1", "c1", NoShow);
    sim.verb(
        "08:40",
        "agent1",
        "c1",
        Return {
            ticket: TicketRef::Id(t8),
            to: ReturnTo::Queue,
        },
    );
    sim.call("08:40", "agent2", "c5", t2);
    sim.verb("08:40", "agent2", "c5", Start);
    sim.call("08:45", "agent1", "c1", t8);
    sim.verb("08:45", "agent1", "c1", Start);
    sim.finish("08:45", "agent2", "c5");
    sim.finish("08:50", "agent1", "c1");
    let t7 = sim.issue("08:50", "joint-service");
    let t6 = sim.issue("09:00", "joint-service");
    sim.verb("09:00", "agent3", "c2", Open);
    // T7: called after 10 min, parked after 5 min of service, back at 09:20, done at 09:30 (15 min).
    sim.call("09:00", "agent2", "c5", t7);
    sim.verb("09:00", "agent2", "c5", Start);
    sim.verb("09:05", "agent2", "c5", Park);
    sim.call("09:05", "agent3", "c2", t5);
    sim.verb("09:06", "agent3", "c2", Start);
    sim.finish("09:16", "agent3", "c2");
    sim.verb(
        "09:20",
        "agent2",
        "c5",
        Return {
            ticket: TicketRef::Id(t7),
            to: ReturnTo::Counter,
        },
    );
    sim.finish("09:30", "agent2", "c5");
    sim.verb("10:00", "agent2", "c5", Close);
    sim.verb("11:00", "agent3", "c2", Close);
    sim.verb("12:00", "agent1", "c1", Close);
    // T6 is still waiting when the day ends.
    let _ = t6;
}

fn row<'a>(t: &'a Value, key: &str, val: &str) -> &'a Value {
    t["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r[key] == val)
        .unwrap_or_else(|| panic!("no row {key}={val} in {t:#}"))
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("{v} is not a number"))
}

fn close(a: &Value, b: f64) {
    assert!(
        (num(a) - b).abs() < 0.006,
        "{a} is not {b} (to two decimals)"
    );
}

fn report(
    db: &dyn Database,
    cfg: &Hall,
    group: &str,
    from: NaiveDate,
    to: NaiveDate,
    now: DateTime<Utc>,
) -> Value {
    let q = query(cfg, Some(SITE), from, to, group, Some("en".into())).unwrap();
    store::report(db, cfg, &q, now).unwrap().to_json()
}

fn check_scripted_day(db: &dyn Database, cfg: &Hall, now: DateTime<Utc>) {
    let d = monday();
    let by_service = report(db, cfg, "service", d, d, now);
    let js = row(&by_service, "service", "joint-service");
    // Arrivals T1 T2 T6 T7; waits 5, 14, 10 min; served T1 T2 (passed on) T7 in 9, 9, 15 min; T6 day ended.
    assert_eq!(js["arrivals"], 4);
    assert_eq!(js["called"], 3);
    assert_eq!(js["served"], 3);
    assert_eq!(js["pass_ons"], 1);
    assert_eq!(js["day_ended"], 1);
    assert_eq!(js["no_shows"], 0);
    close(&js["wait_mean_minutes"], 29.0 / 3.0);
    close(&js["wait_median_minutes"], 10.0);
    close(&js["wait_p90_minutes"], 13.2); // 10 + 0.8 * (14 - 10)
    close(&js["within_target_share"], 1.0);
    close(&js["service_mean_minutes"], 11.0);
    close(&js["service_median_minutes"], 9.0);
    assert_eq!(js["unit"], "yhteispalvelu");
    assert_eq!(js["service_name"], "Advice and errands");
    let kg = row(&by_service, "service", "kela-general");
    // Arrivals T3 T4 T5 T8; waits 2, 4, 1 min; T3 no-show, T4 cancelled, T5 transferred, T8 served 5 min.
    assert_eq!(kg["arrivals"], 4);
    assert_eq!(kg["called"], 3);
    assert_eq!(kg["served"], 1);
    assert_eq!(kg["no_shows"], 1);
    assert_eq!(kg["cancelled"], 1);
    assert_eq!(kg["transfers"], 1);
    close(&kg["wait_mean_minutes"], 7.0 / 3.0);
    close(&kg["wait_median_minutes"], 2.0);
    close(&kg["wait_p90_minutes"], 3.6);
    close(&kg["service_mean_minutes"], 5.0);
    let kf = row(&by_service, "service", "kela-families");
    // T5 after its transfer: no new arrival, waited 40 min (target 25: not within), served 10 min.
    assert_eq!(kf["arrivals"], 0);
    assert_eq!(kf["called"], 1);
    close(&kf["wait_mean_minutes"], 40.0);
    close(&kf["within_target_share"], 0.0);
    close(&kf["service_mean_minutes"], 10.0);
    let pk = row(&by_service, "service", "parking");
    assert_eq!(pk["arrivals"], 0);
    assert_eq!(pk["served"], 1);
    close(&pk["wait_mean_minutes"], 10.0);

    let by_counter = report(db, cfg, "counter", d, d, now);
    // c5 open 2 h, busy 10 + 10 + 5 + 5 + 10 = 40 min. c1 open 4 h, busy 3 + 5 + 4 + 5 = 17 min.
    // c2 open 2 h, busy 11 min.
    let c5 = row(&by_counter, "counter", "c5");
    close(&c5["open_hours"], 2.0);
    close(&c5["busy_hours"], 40.0 / 60.0);
    close(&c5["idle_hours"], 80.0 / 60.0);
    close(&c5["idle_share"], 2.0 / 3.0);
    assert_eq!(c5["served"], 4);
    assert!(c5["arrivals"].is_null());
    let c1 = row(&by_counter, "counter", "c1");
    close(&c1["open_hours"], 4.0);
    close(&c1["busy_hours"], 17.0 / 60.0);
    assert_eq!(c1["served"], 1);
    assert_eq!(c1["no_shows"], 1);
    assert_eq!(c1["transfers"], 1);
    let c2 = row(&by_counter, "counter", "c2");
    close(&c2["busy_hours"], 11.0 / 60.0);

    let by_staff = report(db, cfg, "staff", d, d, now);
    let a2 = row(&by_staff, "staff", "agent2");
    assert_eq!(a2["served"], 4);
    close(&a2["idle_hours"], 80.0 / 60.0);
    let a3 = row(&by_staff, "staff", "agent3");
    assert_eq!(a3["served"], 1);
    close(&a3["open_hours"], 2.0);

    let by_day = report(db, cfg, "day", d, d + Duration::days(1), now);
    let day = row(&by_day, "date", "2026-03-02");
    assert_eq!(day["arrivals"], 8);
    assert_eq!(day["served"], 6);
    // The site was open 08:00-12:00: 8 visits in 4 hours.
    close(&day["opening_hours"], 4.0);
    close(&day["visits_per_opening_hour"], 2.0);
    let next = row(&by_day, "date", "2026-03-03");
    assert_eq!(next["arrivals"], 0, "every day of the range is listed");

    let by_hour = report(db, cfg, "hour", d, d, now);
    assert_eq!(row_num(&by_hour, "hour", 8)["arrivals"], 7);
    assert_eq!(row_num(&by_hour, "hour", 9)["arrivals"], 1);
    assert_eq!(by_hour["busiest_hours"][0]["hour"], 8);
    close(&by_hour["busiest_hours"][0]["arrivals_per_day"], 7.0);
}

fn row_num<'a>(t: &'a Value, key: &str, val: i64) -> &'a Value {
    t["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r[key] == val)
        .unwrap_or_else(|| panic!("no row {key}={val}"))
}

#[test]
fn a_scripted_day_gives_the_numbers_worked_out_by_hand_live_and_folded() {
    let dir = Dir::new("day");
    let mut sim = Sim::new(&dir.db(), monday());
    scripted_day(&mut sim);
    let cfg = sim.cfg.clone();
    let db = vuoro_store::open_read_only(&dir.db()).unwrap();
    let conn = dir.raw();
    // Live: the day is not over, nothing is folded, the report comes from the events; T6 still waits.
    let evening = sim.at("20:00");
    let live = report(&*db, &cfg, "service", monday(), monday(), evening);
    let js = row(&live, "service", "joint-service");
    assert_eq!(js["arrivals"], 4);
    assert_eq!(js["called"], 3);
    assert_eq!(js["day_ended"], 0);
    let c5 = row(
        &report(&*db, &cfg, "counter", monday(), monday(), evening),
        "counter",
        "c5",
    )
    .clone();
    close(&c5["open_hours"], 2.0);

    // The next day starts: T6 ends as day_ended. Not folded yet: computed from the events.
    sim.tick(local(&sim.tz, monday() + Duration::days(1), "00:00") + Duration::seconds(30));
    check_scripted_day(&*db, &cfg, evening + Duration::days(1));
    // Folded: the same numbers from the aggregates.
    let rw = vuoro_store::open(&dir.db()).unwrap();
    let stats = store::fold(&*rw, &cfg).unwrap();
    assert_eq!(stats.days, 1);
    assert_eq!(stats.tokens_blanked, 8);
    assert_eq!(
        store::fold(&*rw, &cfg).unwrap().days,
        0,
        "folding twice adds nothing"
    );
    check_scripted_day(&*db, &cfg, evening + Duration::days(3));

    // The stored tokens of the ended day are gone, and the log still loads.
    let n: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM events WHERE kind = 'ticket_issued' AND json_extract(data, '$.token') <> ''",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 0);
    let raw: String = conn
        .query_row("SELECT group_concat(data, ' ') FROM events", [], |r| {
            r.get(0)
        })
        .unwrap();
    for t in &sim.tokens {
        assert!(!raw.contains(t.as_str()), "token {t} is still stored");
    }
    let loaded = vuoro_store::open(&dir.db()).unwrap().load().unwrap();
    let mut e = Engine::new(cfg.clone(), sim.at("07:00"));
    for ev in &loaded.events {
        e.apply(ev);
    }
    assert_eq!(e.state().sites[SITE].date, monday() + Duration::days(1));
    assert!(e.ticket_by_token("").is_none());
}

#[test]
fn supervisors_see_only_their_units_and_csv_has_a_header_bom_and_dot_decimals() {
    let dir = Dir::new("scope");
    let mut sim = Sim::new(&dir.db(), monday());
    scripted_day(&mut sim);
    let cfg = sim.cfg.clone();
    let db = vuoro_store::open_read_only(&dir.db()).unwrap();
    let mut q = query(&cfg, Some(SITE), monday(), monday(), "service", None).unwrap();
    q.units = Some(["kela".to_string()].into_iter().collect());
    let t = store::report(&*db, &cfg, &q, sim.at("20:00")).unwrap();
    let j = t.to_json();
    let services: Vec<&str> = j["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["service"].as_str().unwrap())
        .collect();
    assert_eq!(services, ["kela-general", "kela-families"]);
    q.group = vuoro_reports::Group::Day;
    let day = store::report(&*db, &cfg, &q, sim.at("20:00"))
        .unwrap()
        .to_json();
    assert_eq!(day["rows"][0]["arrivals"], 4, "only Kela's arrivals");
    assert!(
        day["rows"][0]["opening_hours"].is_null(),
        "site-wide hours are not a one-unit figure"
    );

    q.group = vuoro_reports::Group::Service;
    q.units = None;
    let csv = store::report(&*db, &cfg, &q, sim.at("20:00"))
        .unwrap()
        .to_csv();
    assert!(csv.starts_with("\u{feff}service,service_name,unit,arrivals,"));
    let lines: Vec<&str> = csv.trim_start_matches('\u{feff}').split("\r\n").collect();
    let header: Vec<&str> = lines[0].split(',').collect();
    let js: Vec<&str> = lines
        .iter()
        .find(|l| l.starts_with("joint-service,"))
        .unwrap()
        .split(',')
        .collect();
    let col = |name: &str| js[header.iter().position(|h| *h == name).unwrap()];
    assert_eq!(col("service_name"), "Neuvonta ja asiointi");
    assert_eq!(col("arrivals"), "4");
    assert_eq!(col("wait_mean_minutes"), "9.67");
    assert_eq!(col("within_target_share"), "1.000");
    assert_eq!(col("open_hours"), "", "no value is an empty cell");
}

/// A few tickets a day at `date`, the day rolled over at the end.
fn small_day(sim: &mut Sim, date: NaiveDate) {
    use CounterVerb::*;
    sim.date = date;
    sim.verb("08:00", "agent1", "c1", Open);
    for hm in ["08:10", "09:10", "10:10"] {
        let t = sim.issue(hm, "kela-general");
        let call = format!("{}:20", &hm[..2]);
        let done = format!("{}:30", &hm[..2]);
        sim.call(&call, "agent1", "c1", t);
        sim.finish(&done, "agent1", "c1");
    }
    sim.verb("16:00", "agent1", "c1", Close);
    sim.tick(local(&sim.tz, date + Duration::days(1), "00:00"));
}

fn count(conn: &Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

#[test]
fn purge_keeps_aggregates_deletes_detail_past_retention_and_never_what_start_up_needs() {
    let dir = Dir::new("purge");
    let first = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
    let mut sim = Sim::new(&dir.db(), first);
    let mut snapshot_seq = 0;
    for i in 0..40 {
        small_day(&mut sim, first + Duration::days(i));
        if i == 34 {
            snapshot_seq = sim.snapshot();
        }
    }
    let cfg = sim.cfg.clone();
    let last = first + Duration::days(39);
    let db = vuoro_store::open_read_only(&dir.db()).unwrap();
    let conn = dir.raw();
    let whole = |db: &dyn Database| {
        let q = query(&cfg, Some(SITE), first, last, "day", None).unwrap();
        store::report(db, &cfg, &q, Utc::now()).unwrap().to_json()
    };
    let before = whole(&*db);
    assert_eq!(before["rows"].as_array().unwrap().len(), 40);
    assert_eq!(before["rows"][0]["arrivals"], 3);
    // Staff, counter and hour reports over January (a whole month: the monthly forms) and into
    // February (day by day): 3 visits a day, 8:10, 9:10 and 10:10, each called after 10 minutes.
    let by = |db: &dyn Database, group: &str, from: NaiveDate| {
        let q = query(&cfg, Some(SITE), from, last, group, None).unwrap();
        store::report(db, &cfg, &q, Utc::now()).unwrap().to_json()
    };
    for from in [first, first + Duration::days(3)] {
        let days = (last - from).num_days() + 1;
        let staff = by(&*db, "staff", from);
        let a1 = row(&staff, "staff", "agent1");
        assert_eq!(a1["served"], 3 * days, "from {from}");
        close(&a1["wait_mean_minutes"], 10.0);
        close(&a1["open_hours"], 8.0 * days as f64);
        let counter = by(&*db, "counter", from);
        assert_eq!(row(&counter, "counter", "c1")["called"], 3 * days);
        let hours = by(&*db, "hour", from);
        for h in [8, 9, 10] {
            assert_eq!(row_num(&hours, "hour", h)["arrivals"], days);
        }
        close(&hours["busiest_hours"][0]["arrivals_per_day"], 1.0);
        assert_eq!(hours["busiest_hours"][0]["hour"], 8);
    }
    let staff_before = by(&*db, "staff", first);

    // "Now" is 15 Feb 2026 10:00 local: 30 days back is 16 Jan; detail before 16 Jan 00:00 local goes.
    let now = local(
        &sim.tz,
        NaiveDate::from_ymd_opt(2026, 2, 15).unwrap(),
        "10:00",
    );
    let rw = vuoro_store::open(&dir.db()).unwrap();
    let s = store::purge(&*rw, &cfg, now, 30).unwrap();
    assert!(s.events_deleted > 0);
    let cut = local(
        &sim.tz,
        NaiveDate::from_ymd_opt(2026, 1, 16).unwrap(),
        "00:00",
    );
    assert_eq!(s.cutoffs, vec![(SITE.to_string(), cut)]);
    let cut_s = cut.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    assert_eq!(
        count(
            &conn,
            &format!("SELECT COUNT(*) FROM events WHERE at < '{cut_s}'")
        ),
        0,
        "nothing older than the retention is left"
    );
    // The day that starts exactly at the cutoff (its day_started event at 00:00:00.000) is kept whole.
    assert_eq!(
        count(
            &conn,
            &format!("SELECT COUNT(*) FROM events WHERE at = '{cut_s}' AND kind = 'day_started'")
        ),
        1
    );
    let oldest_kept: String = conn
        .query_row("SELECT MIN(at) FROM events", [], |r| r.get(0))
        .unwrap();
    assert_eq!(oldest_kept, cut_s);
    // The aggregates answer exactly as before.
    assert_eq!(whole(&*db), before);
    assert_eq!(by(&*db, "staff", first), staff_before);

    // Much later: everything folded and older than the retention would go, but the events after the
    // oldest kept snapshot stay, because start-up replays them.
    let much_later = now + Duration::days(400);
    let s = store::purge(&*rw, &cfg, much_later, 30).unwrap();
    assert!(s.events_deleted > 0);
    assert_eq!(
        count(
            &conn,
            &format!("SELECT COUNT(*) FROM events WHERE seq >= {snapshot_seq}")
        ),
        count(&conn, "SELECT COUNT(*) FROM events"),
        "only the snapshot's own event and those after it remain"
    );
    assert!(count(&conn, "SELECT COUNT(*) FROM events") > 0);
    assert_eq!(whole(&*db), before, "aggregates survive every purge");

    // The daemon's start-up still works: newest snapshot + every event after it, without a gap.
    let loaded = vuoro_store::open(&dir.db()).unwrap().load().unwrap();
    let (seq, state) = loaded.snapshot.unwrap();
    assert_eq!(seq, snapshot_seq);
    let mut e = Engine::from_snapshot(cfg.clone(), state, now);
    for ev in &loaded.events {
        assert_eq!(ev.seq, e.last_seq() + 1, "no gap after the snapshot");
        e.apply(ev);
    }
    assert_eq!(e.last_seq(), sim.engine.last_seq());
    assert_eq!(
        e.state().sites[SITE].date,
        sim.engine.state().sites[SITE].date
    );
}

#[test]
fn without_a_snapshot_purge_deletes_no_event() {
    let dir = Dir::new("nosnap");
    let first = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
    let mut sim = Sim::new(&dir.db(), first);
    for i in 0..3 {
        small_day(&mut sim, first + Duration::days(i));
    }
    let cfg = sim.cfg.clone();
    let rw = vuoro_store::open(&dir.db()).unwrap();
    let conn = dir.raw();
    let n = count(&conn, "SELECT COUNT(*) FROM events");
    let s = store::purge(&*rw, &cfg, Utc::now() + Duration::days(1000), 1).unwrap();
    assert!(s.no_snapshot);
    assert_eq!(s.events_deleted, 0);
    assert_eq!(count(&conn, "SELECT COUNT(*) FROM events"), n);
    assert_eq!(s.fold.days, 3, "it still folds and blanks tokens");
}

#[test]
fn tokens_in_a_snapshot_of_an_ended_day_are_blanked_and_the_snapshot_still_loads() {
    let dir = Dir::new("snaptok");
    let mut sim = Sim::new(&dir.db(), monday());
    let cfg = sim.cfg.clone();
    sim.verb("08:00", "agent1", "c1", CounterVerb::Open);
    let t = sim.issue("08:10", "kela-general");
    sim.snapshot();
    let token = sim.tokens[0].clone();
    let rw = vuoro_store::open(&dir.db()).unwrap();
    store::fold(&*rw, &cfg).unwrap();
    let snap: String = dir
        .raw()
        .query_row("SELECT state FROM snapshots", [], |r| r.get(0))
        .unwrap();
    assert!(snap.contains(&token), "today's ticket keeps its token");
    sim.call("08:20", "agent1", "c1", t);
    sim.tick(local(&sim.tz, monday() + Duration::days(1), "00:00"));
    store::fold(&*rw, &cfg).unwrap();
    let snap: String = dir
        .raw()
        .query_row("SELECT state FROM snapshots", [], |r| r.get(0))
        .unwrap();
    assert!(
        !snap.contains(&token),
        "the ended day's token is gone from the snapshot"
    );
    let loaded = vuoro_store::open(&dir.db()).unwrap().load().unwrap();
    let state = loaded.snapshot.unwrap().1;
    let mut e = Engine::from_snapshot(cfg, state, sim.at("09:00"));
    for ev in &loaded.events {
        e.apply(ev);
    }
    assert!(e.ticket_by_token(&token).is_none());
    assert!(e.ticket_by_token("").is_none());
}
