//! The `Database` trait's typed operations against a real SQLite file: the event log and snapshots, token
//! blanking (every other field of the stored events and snapshots left as it was), the rollups, the
//! retention purge, staff sessions, the audit rows, and a store opened read-only.

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use rusqlite::{Connection, OpenFlags};
use serde_json::Value;
use vuoro_engine::{
    Actor, Command, CounterVerb, Engine, Event, EventKind, Outcome, TicketId, TicketRef,
};
use vuoro_store::rollup::{Cell, CellKey, Cells, Dist, Rollup};
use vuoro_store::{
    AuditQuery, ConfigVersion, Database, DeviceSeen, DeviceToken, DeviceTokenSource, FoldedDay,
    RequestRecord, Session, StoreError,
};

const DEMO: &str = include_str!("../../../config/demo.toml");
const HALL: &str = "iso-omena";
const POPUP: &str = "popup";

/// A second site in the same time zone, so that blanking one site's day can be seen to leave the other's
/// tokens alone.
const POPUP_SITE: &str = r#"
[[site]]
id = "popup"
name = { fi = "Liikkuva palvelupiste", sv = "Mobil servicepunkt", en = "Mobile service point" }
timezone = "Europe/Helsinki"
languages = ["fi", "sv", "en"]
always_open = true

[[site.unit]]
id = "liikkuva"
name = { fi = "Liikkuva palvelu", sv = "Mobil service", en = "Mobile service" }

[[site.series]]
letter = "M"

[[site.service]]
id = "popup-advice"
unit = "liikkuva"
series = "M"
name = { fi = "Neuvonta", sv = "Rådgivning", en = "Advice" }

[[site.counter]]
id = "popup-1"
unit = "liikkuva"
name = { fi = "Piste 1", sv = "Punkt 1", en = "Desk 1" }
services = [{ service = "popup-advice" }]
"#;

struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        let p = std::env::temp_dir().join(format!("vuoro-store-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Dir(p)
    }
    fn db(&self) -> PathBuf {
        self.0.join("vuoro.sqlite")
    }
    fn open(&self) -> Arc<dyn Database> {
        vuoro_store::open(&self.db()).unwrap()
    }
    /// The file itself, read-only, to see what is stored.
    fn raw(&self) -> Connection {
        Connection::open_with_flags(self.db(), OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap()
    }
    /// Every stored event as its JSON text, by seq.
    fn event_rows(&self) -> Vec<(u64, String)> {
        let c = self.raw();
        let mut stmt = c
            .prepare("SELECT seq, data FROM events ORDER BY seq")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }
    /// Every stored snapshot as its JSON text, by seq.
    fn snapshot_rows(&self) -> Vec<(u64, String)> {
        let c = self.raw();
        let mut stmt = c
            .prepare("SELECT seq, state FROM snapshots ORDER BY seq")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn monday() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 3, 2).unwrap()
}

/// A local time in Helsinki in early March (UTC+2).
fn local(date: NaiveDate, h: u32, m: u32) -> DateTime<Utc> {
    Utc.from_utc_datetime(&date.and_hms_opt(h, m, 0).unwrap()) - Duration::hours(2)
}

/// The real engine, every event committed to the store as the daemon's writer does.
struct Hall {
    engine: Engine,
    db: Arc<dyn Database>,
    tokens: Vec<String>,
}

impl Hall {
    fn new(db: Arc<dyn Database>) -> Hall {
        let cfg =
            Arc::new(vuoro_engine::config::Hall::parse(&format!("{DEMO}{POPUP_SITE}")).unwrap());
        Hall {
            engine: Engine::new(cfg, local(monday(), 7, 0)),
            db,
            tokens: Vec::new(),
        }
    }

    fn run(&mut self, now: DateTime<Utc>, actor: Actor, cmd: Command) -> Outcome {
        let before = self.engine.last_seq();
        let out = self.engine.handle(cmd, now, &actor).unwrap();
        let events = self.engine.take_events();
        self.db.append(before, &events, None).unwrap();
        out
    }

    fn issue(&mut self, now: DateTime<Utc>, site: &str, service: &str) -> TicketId {
        let token = format!("{:032x}", 0xbeef_0000_u64 + self.tokens.len() as u64);
        self.tokens.push(token.clone());
        let out = self.run(
            now,
            Actor::device("kiosk-1"),
            Command::Issue {
                site: site.parse().unwrap(),
                service: service.parse().unwrap(),
                lang: "fi".into(),
                priority: Default::default(),
                token: token.parse().unwrap(),
                channel: vuoro_engine::Channel::Kiosk,
                idempotency: Some(format!("key-{}", self.tokens.len())),
            },
        );
        match out {
            Outcome::Ticket { id, .. } => id,
            o => panic!("{o:?}"),
        }
    }

    fn snapshot(&mut self) -> u64 {
        let seq = self.engine.last_seq();
        self.db
            .append(seq, &[], Some((seq, self.engine.state())))
            .unwrap();
        seq
    }
}

/// An event of `site` at `at` that touches no ticket.
fn plain(seq: u64, site: &str, at: DateTime<Utc>, actor: Actor) -> Event {
    Event {
        seq,
        at,
        site: site.parse().unwrap(),
        actor,
        kind: EventKind::CounterClosed {
            counter: format!("c{seq}").parse().unwrap(),
        },
    }
}

#[test]
fn the_log_appends_without_gaps_loads_from_the_newest_snapshot_and_reads_ranges() {
    let dir = Dir::new("log");
    let db = dir.open();
    let t0 = local(monday(), 8, 0);
    let at = |seq: u64| t0 + Duration::seconds(seq as i64);
    let site = |seq: u64| if seq.is_multiple_of(2) { "a" } else { "b" };
    let evs: Vec<Event> = (1..=6)
        .map(|s| plain(s, site(s), at(s), Actor::system()))
        .collect();
    db.append(0, &evs[..2], None).unwrap();
    assert!(matches!(
        db.append(2, &evs[3..4], None),
        Err(StoreError::Gap { last: 2, got: 4 })
    ));
    assert_eq!(db.last_seq().unwrap(), 2, "the refused append left nothing");
    let engine = Engine::new(
        Arc::new(vuoro_engine::config::Hall::parse(DEMO).unwrap()),
        local(monday(), 7, 0),
    );
    db.append(2, &evs[2..3], Some((3, engine.state()))).unwrap();
    db.append(3, &evs[3..], None).unwrap();
    drop(db);

    let db = dir.open();
    let loaded = db.load().unwrap();
    let (seq, state) = loaded.snapshot.unwrap();
    assert_eq!(seq, 3);
    assert_eq!(
        &state,
        engine.state(),
        "the snapshot comes back as it went in"
    );
    assert_eq!(loaded.events, evs[3..].to_vec());
    assert_eq!(db.events_after(1, 2).unwrap(), evs[1..3].to_vec());
    assert_eq!(db.site_events("a", 2, 6).unwrap(), vec![evs[3].clone()]);
    let mut sites = db.sites_with_events().unwrap();
    sites.sort();
    assert_eq!(sites, ["a", "b"]);
    assert_eq!(db.site_last_seq("b").unwrap(), 5);
    assert_eq!(db.site_last_seq("nowhere").unwrap(), 0);
    assert_eq!(db.first_event_at("b", 3).unwrap(), Some(at(5)));
    assert_eq!(db.first_event_at("b", 5).unwrap(), None);
    assert_eq!(db.oldest_snapshot().unwrap(), Some(3));
}

#[test]
fn blanking_a_day_clears_its_tokens_and_leaves_every_other_stored_field_as_it_was() {
    let dir = Dir::new("blank");
    let db = dir.open();
    let mut hall = Hall::new(db.clone());
    let day = monday();
    hall.run(
        local(day, 8, 0),
        Actor::user("agent1"),
        Command::Counter {
            counter: "c1".parse().unwrap(),
            verb: CounterVerb::Open,
        },
    );
    let first = hall.issue(local(day, 8, 10), HALL, "kela-general");
    hall.issue(local(day, 8, 20), HALL, "kela-general");
    hall.issue(local(day, 8, 30), POPUP, "popup-advice");
    hall.run(
        local(day, 8, 40),
        Actor::user("agent1"),
        Command::Counter {
            counter: "c1".parse().unwrap(),
            verb: CounterVerb::Call(TicketRef::Id(first)),
        },
    );
    hall.issue(local(day, 9, 0), HALL, "kela-general");
    let midday = hall.snapshot();
    // The day rolls over at local midnight; the next day's snapshot holds the new day.
    hall.run(
        local(day + Duration::days(1), 0, 0) + Duration::seconds(30),
        Actor::system(),
        Command::Tick,
    );
    hall.issue(local(day + Duration::days(1), 8, 0), HALL, "kela-general");
    let next_day = hall.snapshot();

    let day_starts = db.day_starts(HALL, 0).unwrap();
    assert_eq!(day_starts.len(), 1, "{day_starts:?}");
    let through = day_starts[0] - 1;
    assert!(midday <= through && next_day > through);
    let events_before = dir.event_rows();
    let snapshots_before = dir.snapshot_rows();
    let hall_day_issued: Vec<u64> = db
        .site_events(HALL, 0, through + 1)
        .unwrap()
        .into_iter()
        .filter(|e| matches!(e.kind, EventKind::TicketIssued { .. }))
        .map(|e| e.seq)
        .collect();
    assert_eq!(hall_day_issued.len(), 3);

    let done = db
        .store_day(&FoldedDay {
            site: HALL,
            after: 0,
            through,
            at: local(day, 23, 0),
            rollups: Vec::new(),
        })
        .unwrap()
        .expect("the day is stored");
    assert_eq!(done.tokens_blanked, 3);
    assert_eq!(done.snapshots_blanked, 1);
    assert_eq!(db.folded_seq(HALL).unwrap(), through);

    // Events: the hall's issued tickets of that day lost their token and idempotency key and nothing
    // else; every other event is byte for byte what it was.
    let events_after = dir.event_rows();
    assert_eq!(events_before.len(), events_after.len());
    for ((seq, before), (_, after)) in events_before.iter().zip(&events_after) {
        if hall_day_issued.contains(seq) {
            let mut b: Value = serde_json::from_str(before).unwrap();
            let a: Value = serde_json::from_str(after).unwrap();
            assert_ne!(b["token"], "", "event {seq} had a token");
            assert_eq!(a["token"], "", "event {seq}");
            assert_eq!(a["idempotency"], Value::Null, "event {seq}");
            b["token"] = Value::from("");
            b["idempotency"] = Value::Null;
            assert_eq!(a, b, "event {seq}: only the token and the key changed");
        } else {
            assert_eq!(before, after, "event {seq} is untouched");
        }
    }
    let stored = events_after
        .iter()
        .map(|e| e.1.as_str())
        .collect::<String>();
    for (i, token) in hall.tokens.iter().enumerate() {
        // Tokens 0, 1 and 3 are the hall's of the ended day; 2 is the pop-up's; 4 is the next day's.
        assert_eq!(
            stored.contains(token.as_str()),
            i == 2 || i == 4,
            "token {i}"
        );
    }

    // Snapshots: the one of the ended day lost the hall's tokens and keys, nothing else (the pop-up's
    // tickets keep theirs); the next day's is untouched.
    let snapshots_after = dir.snapshot_rows();
    assert_eq!(snapshots_after.len(), 2);
    assert_eq!(snapshots_after[1], snapshots_before[1], "the next day's");
    assert_eq!(snapshots_after[0].0, midday);
    let mut expect: Value = serde_json::from_str(&snapshots_before[0].1).unwrap();
    let tickets = expect["sites"][HALL]["tickets"].as_object_mut().unwrap();
    assert_eq!(tickets.len(), 3);
    for t in tickets.values_mut() {
        t["token"] = Value::from("");
    }
    expect["sites"][HALL]["idempotency"] = serde_json::json!({});
    let popup_tokens = expect["sites"][POPUP]["tickets"]
        .as_object()
        .unwrap()
        .values()
        .filter(|t| t["token"] != "")
        .count();
    assert_eq!(popup_tokens, 1);
    let got: Value = serde_json::from_str(&snapshots_after[0].1).unwrap();
    assert_eq!(got, expect);

    // Folded once: a second folder of the same day writes nothing.
    let again = FoldedDay {
        site: HALL,
        after: 0,
        through,
        at: local(day, 23, 0),
        rollups: Vec::new(),
    };
    assert_eq!(db.store_day(&again).unwrap(), None);
    assert_eq!(dir.event_rows(), events_after);

    // Start-up still works from what is stored.
    let loaded = db.load().unwrap();
    let (seq, state) = loaded.snapshot.unwrap();
    assert_eq!(seq, next_day);
    let mut e = Engine::from_snapshot(hall.engine.config().clone(), state, Utc::now());
    for ev in &loaded.events {
        e.apply(ev);
    }
    assert_eq!(e.last_seq(), hall.engine.last_seq());
}

fn key(date: &str, hour: u8, counter: &str) -> CellKey {
    CellKey {
        site: "s".parse().unwrap(),
        date: date.parse().unwrap(),
        hour,
        service: "svc".parse().unwrap(),
        counter: counter.parse().unwrap(),
        staff: format!("staff-{counter}"),
        unit: "u".into(),
    }
}

fn cell(arrivals: i64, waits: &[i64]) -> Cell {
    let mut wait = Dist::default();
    for w in waits {
        wait.add(*w);
    }
    Cell {
        arrivals,
        called: waits.len() as i64,
        wait_sum: waits.iter().sum(),
        open_secs: 3600,
        wait,
        ..Cell::default()
    }
}

fn folded_day<'a>(site: &'a str, after: u64, through: u64, hourly: &Cells) -> FoldedDay<'a> {
    FoldedDay {
        site,
        after,
        through,
        at: Utc::now(),
        rollups: Rollup::ALL.iter().map(|r| (*r, r.of(hourly))).collect(),
    }
}

fn read(db: &dyn Database, rollup: Rollup, from: &str, to: &str) -> Vec<(CellKey, Cell)> {
    let mut out = Vec::new();
    db.rollup_cells(
        rollup,
        "s",
        from.parse().unwrap(),
        to.parse().unwrap(),
        &mut |k, c| out.push((k, c)),
    )
    .unwrap();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn rollups_keep_each_form_add_up_across_days_and_are_stored_once() {
    let dir = Dir::new("rollups");
    let db = dir.open();
    // 2 March: two hours at two counters. 3 March: counter time only (no arrivals).
    let day1: Cells = [
        (key("2026-03-02", 8, "c1"), cell(2, &[60, 120])),
        (key("2026-03-02", 9, "c1"), cell(1, &[30])),
        (key("2026-03-02", 9, "c2"), cell(1, &[60])),
    ]
    .into_iter()
    .collect();
    let day2: Cells = [(key("2026-03-03", 8, "c1"), cell(0, &[]))]
        .into_iter()
        .collect();
    assert!(
        db.store_day(&folded_day("s", 0, 10, &day1))
            .unwrap()
            .is_some()
    );
    assert!(
        db.store_day(&folded_day("s", 10, 20, &day2))
            .unwrap()
            .is_some()
    );
    assert_eq!(db.folded_seq("s").unwrap(), 20);
    assert_eq!(db.folded_seq("other").unwrap(), 0);

    // Per day with counter and staff: the hours summed per counter.
    let days = read(&*db, Rollup::Days, "2026-03-02", "2026-03-02");
    assert_eq!(days.len(), 2);
    assert_eq!(days[0].0, Rollup::Days.key(&key("2026-03-02", 0, "c1")));
    assert_eq!(days[0].1.arrivals, 3);
    assert_eq!(days[0].1.wait.0, vec![(30, 1), (60, 1), (120, 1)]);
    assert_eq!(days[0].1.open_secs, 7200);
    // Per hour without people: the two counters of 9:00 in one row.
    let hours = read(&*db, Rollup::Hours, "2026-03-02", "2026-03-03");
    assert_eq!(
        hours
            .iter()
            .map(|(k, c)| (k.hour, c.arrivals))
            .collect::<Vec<_>>(),
        [(8, 2), (9, 2), (8, 0)]
    );
    assert!(
        hours
            .iter()
            .all(|(k, _)| k.counter.is_empty() && k.staff.is_empty())
    );
    // Per month: both days added into one row per counter, the distributions merged.
    let months = read(&*db, Rollup::Months, "2026-03-01", "2026-03-31");
    assert_eq!(months.len(), 2);
    let c1 = &months[0];
    assert_eq!(c1.0.date.to_string(), "2026-03-01");
    assert_eq!(
        (c1.1.arrivals, c1.1.called, c1.1.open_secs),
        (3, 3, 3 * 3600)
    );
    assert_eq!(c1.1.wait.0, vec![(30, 1), (60, 1), (120, 1)]);
    let short = read(&*db, Rollup::DaysShort, "2026-03-01", "2026-03-31");
    assert_eq!(short.len(), 2);
    assert_eq!(
        read(&*db, Rollup::MonthHours, "2026-03-01", "2026-03-31").len(),
        2
    );
    assert_eq!(
        db.days_with_arrivals(
            "s",
            "2026-03-01".parse().unwrap(),
            "2026-03-31".parse().unwrap()
        )
        .unwrap(),
        ["2026-03-02".parse::<NaiveDate>().unwrap()]
    );

    // A day stored again by a folder that started from an old watermark adds nothing.
    assert_eq!(db.store_day(&folded_day("s", 0, 10, &day1)).unwrap(), None);
    assert_eq!(
        read(&*db, Rollup::Months, "2026-03-01", "2026-03-31"),
        months
    );
}

#[test]
fn purge_deletes_only_old_folded_rows_in_batches_and_old_requests() {
    let dir = Dir::new("purge");
    let db = dir.open();
    let t0 = local(monday(), 0, 0);
    // 12,000 events of site a, one a second, then 100 of site b at the same times.
    let mut evs: Vec<Event> = (1..=12_000)
        .map(|s| plain(s, "a", t0 + Duration::seconds(s as i64), Actor::system()))
        .collect();
    evs.extend((12_001..=12_100).map(|s| plain(s, "b", t0, Actor::system())));
    db.append(0, &evs, None).unwrap();

    // Older than t0 + 11,000 s and at most seq 10,500: the first 10,500 (more than two batches).
    let cut = t0 + Duration::seconds(11_000);
    assert_eq!(db.delete_events("a", cut, 10_500).unwrap(), 10_500);
    let left = db.events_after(0, usize::MAX).unwrap();
    assert_eq!(left.len(), 1_600);
    assert_eq!(left[0].seq, 10_501);
    assert!(
        left.iter().filter(|e| e.site == "b").count() == 100,
        "site b is another site"
    );
    // Now older than the cut only: 10,501 ..= 10,999.
    assert_eq!(db.delete_events("a", cut, u64::MAX >> 1).unwrap(), 499);
    assert_eq!(db.site_events("a", 0, u64::MAX).unwrap()[0].seq, 11_000);
    assert_eq!(db.delete_events("a", cut, 20_000).unwrap(), 0);

    let request = |hours: i64| RequestRecord {
        at: t0 + Duration::hours(hours),
        actor_kind: "user".into(),
        actor_id: Some("admin".into()),
        site: None,
        method: "GET".into(),
        path: "/api/v1/reports".into(),
        status: 200,
        client: Some("10.0.0.1".into()),
        user_agent: None,
    };
    db.record_requests(&[request(1), request(2), request(3)])
        .unwrap();
    assert_eq!(db.delete_requests(t0 + Duration::hours(2)).unwrap(), 1);
    let q = AuditQuery {
        site: None,
        from: t0,
        to: t0 + Duration::days(1),
        user: None,
        limit: 10,
    };
    let kept: Vec<RequestRecord> = db
        .audited_requests(&q)
        .unwrap()
        .into_iter()
        .map(|r| r.1)
        .collect();
    assert_eq!(kept, [request(2), request(3)]);
    let counts = db.table_counts().unwrap();
    assert_eq!((counts["events"], counts["audit_requests"]), (1_101, 2));
}

#[test]
fn sessions_are_stored_listed_while_live_and_deleted() {
    let dir = Dir::new("sessions");
    let db = dir.open();
    let now = Utc.with_ymd_and_hms(2026, 3, 2, 8, 0, 0).unwrap();
    let session = |hash: &str, hours: i64| Session {
        token_sha256: hash.into(),
        username: format!("user-{hash}"),
        created_at: now - Duration::hours(1),
        expires_at: now + Duration::hours(hours),
        rights: (hash == "b").then(|| r#"{"roles":["agent"]}"#.to_string()),
        last_used_at: None,
    };
    for s in [session("a", 8), session("b", 8), session("old", -1)] {
        db.create_session(&s).unwrap();
    }
    let mut live = db.live_sessions(now).unwrap();
    live.sort_by(|a, b| a.token_sha256.cmp(&b.token_sha256));
    assert_eq!(live, [session("a", 8), session("b", 8)]);
    db.delete_session("a").unwrap();
    assert_eq!(db.purge_sessions(now).unwrap(), 1);
    drop(db);
    let db = dir.open();
    assert_eq!(db.live_sessions(now).unwrap(), [session("b", 8)]);
    db.sessions_used(&[("b".into(), now + Duration::minutes(5))])
        .unwrap();
    assert_eq!(
        db.live_sessions(now).unwrap()[0].last_used_at,
        Some(now + Duration::minutes(5))
    );
    // Signing out everywhere: every session of the user.
    db.create_session(&session("c", 8)).unwrap();
    assert_eq!(db.delete_user_sessions("user-b").unwrap(), 1);
    assert_eq!(db.live_sessions(now).unwrap(), [session("c", 8)]);
    assert_eq!(db.live_sessions(now + Duration::hours(9)).unwrap(), []);
}

#[test]
fn an_enrolment_code_works_once_before_it_expires_and_revoking_refuses_every_token() {
    let dir = Dir::new("devices");
    let db = dir.open();
    let now = Utc.with_ymd_and_hms(2026, 3, 2, 8, 0, 0).unwrap();
    let token = |hash: &str, at| DeviceToken {
        token_sha256: hash.into(),
        device: String::new(),
        source: DeviceTokenSource::Enrolled,
        created_at: at,
        created_by: "admin".into(),
        revoked_at: None,
        revoked_by: None,
        last_seen_at: None,
        last_seen_from: None,
    };
    db.create_enrol_code(
        "code-1",
        "kiosk-1",
        "admin",
        now,
        now + Duration::minutes(10),
    )
    .unwrap();
    // A second code for the same device replaces the first.
    db.create_enrol_code(
        "code-2",
        "kiosk-1",
        "admin",
        now,
        now + Duration::minutes(10),
    )
    .unwrap();
    assert_eq!(db.enrol("code-1", None, &token("t1", now)).unwrap(), None);
    // A code for another device is refused, and stays for its own.
    assert_eq!(
        db.enrol("code-2", Some("kiosk-2"), &token("t2", now))
            .unwrap(),
        None
    );
    assert_eq!(
        db.enrol(
            "code-2",
            Some("kiosk-1"),
            &token("t2", now + Duration::minutes(1))
        )
        .unwrap(),
        Some("kiosk-1".to_string())
    );
    // Once only.
    assert_eq!(
        db.enrol("code-2", None, &token("t3", now + Duration::minutes(2)))
            .unwrap(),
        None
    );
    // Expired: refused, and nothing stored.
    db.create_enrol_code(
        "code-4",
        "kiosk-2",
        "admin",
        now,
        now + Duration::minutes(10),
    )
    .unwrap();
    assert_eq!(
        db.enrol("code-4", None, &token("t4", now + Duration::minutes(10)))
            .unwrap(),
        None
    );
    let tokens = db.device_tokens().unwrap();
    assert_eq!(tokens.len(), 1);
    assert_eq!(
        (tokens[0].token_sha256.as_str(), tokens[0].device.as_str()),
        ("t2", "kiosk-1")
    );
    assert_eq!(tokens[0].source, DeviceTokenSource::Enrolled);
    db.devices_seen(&[
        DeviceSeen {
            token_sha256: "t2".into(),
            device: "kiosk-1".into(),
            at: now + Duration::minutes(5),
            from: "10.0.0.7".into(),
        },
        DeviceSeen {
            token_sha256: "cfg".into(),
            device: "kiosk-1".into(),
            at: now + Duration::minutes(6),
            from: "10.0.0.8".into(),
        },
    ])
    .unwrap();
    let seen: Vec<_> = db
        .device_tokens()
        .unwrap()
        .into_iter()
        .map(|t| (t.token_sha256, t.source, t.last_seen_from))
        .collect();
    assert_eq!(
        seen,
        [
            (
                "t2".to_string(),
                DeviceTokenSource::Enrolled,
                Some("10.0.0.7".to_string())
            ),
            (
                "cfg".to_string(),
                DeviceTokenSource::Config,
                Some("10.0.0.8".to_string())
            ),
        ]
    );
    // Revoking takes every token of the device, the config file's included, and any code not yet used.
    db.create_enrol_code(
        "code-5",
        "kiosk-1",
        "admin",
        now,
        now + Duration::minutes(30),
    )
    .unwrap();
    assert_eq!(
        db.revoke_device("kiosk-1", Some("cfg"), "admin", now + Duration::minutes(7))
            .unwrap(),
        2
    );
    assert_eq!(
        db.enrol("code-5", None, &token("t5", now + Duration::minutes(8)))
            .unwrap(),
        None
    );
    drop(db);
    let db = dir.open();
    let tokens = db.device_tokens().unwrap();
    assert_eq!(tokens.len(), 2);
    assert!(
        tokens
            .iter()
            .all(|t| t.revoked_at == Some(now + Duration::minutes(7))
                && t.revoked_by.as_deref() == Some("admin"))
    );
}

#[test]
fn config_versions_are_numbered_kept_and_read_back_newest_first() {
    let dir = Dir::new("config-versions");
    let db = dir.open();
    let now = Utc.with_ymd_and_hms(2026, 3, 2, 8, 0, 0).unwrap();
    assert_eq!(db.latest_config(None).unwrap(), None);
    let v = |text: &str, source: &str, minutes: i64| ConfigVersion {
        version: 0,
        text: text.into(),
        sha256: format!("sha-{text}"),
        source: source.into(),
        created_at: now + Duration::minutes(minutes),
        created_by: if source == "file" {
            "config file".into()
        } else {
            "admin".into()
        },
    };
    assert_eq!(db.add_config_version(&v("a", "file", 0)).unwrap(), 1);
    assert_eq!(db.add_config_version(&v("b", "console", 1)).unwrap(), 2);
    assert_eq!(db.add_config_version(&v("c", "api", 2)).unwrap(), 3);
    drop(db);
    let db = dir.open();
    let latest = db.latest_config(None).unwrap().unwrap();
    assert_eq!(
        (
            latest.version,
            latest.text.as_str(),
            latest.created_by.as_str()
        ),
        (3, "c", "admin")
    );
    assert_eq!(latest.created_at, now + Duration::minutes(2));
    assert_eq!(db.latest_config(Some("file")).unwrap().unwrap().text, "a");
    assert_eq!(db.config_version(2).unwrap().unwrap().source, "console");
    assert_eq!(db.config_version(9).unwrap(), None);
    let list: Vec<(u64, String)> = db
        .config_versions(2)
        .unwrap()
        .into_iter()
        .map(|v| (v.version, v.text))
        .collect();
    assert_eq!(list, [(3, String::new()), (2, String::new())]);
}

#[test]
fn the_audit_reads_events_of_users_and_devices_and_requests_by_site_user_and_time() {
    let dir = Dir::new("audit");
    let db = dir.open();
    let t0 = local(monday(), 8, 0);
    let evs = vec![
        plain(1, "a", t0, Actor::user("agent1")),
        plain(2, "a", t0 + Duration::minutes(1), Actor::device("kiosk-1")),
        plain(3, "a", t0 + Duration::minutes(2), Actor::system()),
        plain(4, "b", t0 + Duration::minutes(3), Actor::user("agent1")),
        plain(5, "a", t0 + Duration::minutes(4), Actor::public()),
        plain(6, "a", t0 + Duration::minutes(5), Actor::user("agent2")),
        plain(7, "a", t0 + Duration::days(1), Actor::user("agent1")),
    ];
    db.append(0, &evs, None).unwrap();
    let q = |site: Option<&str>, user: Option<&str>, limit: usize| AuditQuery {
        site: site.map(str::to_string),
        from: t0,
        to: t0 + Duration::hours(1),
        user: user.map(str::to_string),
        limit,
    };
    let seqs = |q: AuditQuery| -> Vec<u64> {
        db.audited_events(&q)
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect()
    };
    assert_eq!(seqs(q(None, None, 10)), [1, 2, 4, 6]);
    assert_eq!(seqs(q(Some("a"), None, 10)), [1, 2, 6]);
    assert_eq!(seqs(q(None, Some("agent1"), 10)), [1, 4]);
    assert_eq!(seqs(q(None, None, 2)), [1, 2]);
    assert_eq!(db.audited_events(&q(None, None, 1)).unwrap()[0], evs[0]);

    let request = |minutes: i64, site: Option<&str>, user: &str| RequestRecord {
        at: t0 + Duration::minutes(minutes),
        actor_kind: "user".into(),
        actor_id: Some(user.into()),
        site: site.map(str::to_string),
        method: "POST".into(),
        path: "/api/v1/counters/c1/open".into(),
        status: 200,
        client: Some("10.1.2.3".into()),
        user_agent: Some("test".into()),
    };
    let records = [
        request(0, Some("a"), "agent1"),
        request(1, None, "admin"),
        request(2, Some("b"), "agent1"),
        request(90, Some("a"), "agent1"),
    ];
    db.record_requests(&records).unwrap();
    let got = |q: AuditQuery| -> Vec<RequestRecord> {
        db.audited_requests(&q)
            .unwrap()
            .into_iter()
            .map(|r| r.1)
            .collect()
    };
    assert_eq!(got(q(None, None, 10)), records[..3]);
    assert_eq!(
        got(q(Some("a"), None, 10)),
        [records[0].clone(), records[1].clone()],
        "a site's requests and those of no site"
    );
    assert_eq!(
        got(q(None, Some("agent1"), 10)),
        [records[0].clone(), records[2].clone()]
    );
    assert_eq!(got(q(None, None, 1)), records[..1]);
}

#[test]
fn a_store_opened_read_only_reads_and_refuses_every_write() {
    let dir = Dir::new("readonly");
    assert!(matches!(
        vuoro_store::open_read_only(&dir.db()),
        Err(StoreError::NotFound(_))
    ));
    let db = dir.open();
    let t0 = local(monday(), 8, 0);
    db.append(0, &[plain(1, "a", t0, Actor::system())], None)
        .unwrap();
    let ro = vuoro_store::open_read_only(&dir.db()).unwrap();
    assert_eq!(ro.last_seq().unwrap(), 1);
    assert_eq!(ro.events_after(0, 10).unwrap().len(), 1);
    let refused = |r: Result<(), StoreError>| matches!(r, Err(StoreError::ReadOnly));
    assert!(refused(ro.append(
        1,
        &[plain(2, "a", t0, Actor::system())],
        None
    )));
    assert!(refused(
        ro.delete_events("a", t0 + Duration::days(1), 10)
            .map(|_| ())
    ));
    assert!(refused(ro.create_session(&Session {
        token_sha256: "x".into(),
        username: "u".into(),
        created_at: t0,
        expires_at: t0,
        rights: None,
        last_used_at: None,
    })));
    assert!(refused(
        ro.store_day(&folded_day("a", 0, 1, &Cells::new()))
            .map(|_| ())
    ));
    // The reads it served still see the writer's later commits.
    db.append(1, &[plain(2, "a", t0, Actor::system())], None)
        .unwrap();
    assert_eq!(ro.last_seq().unwrap(), 2);
}

fn notice(key: &str, ticket: u64, address: &str, at: DateTime<Utc>) -> vuoro_store::NewNotice {
    vuoro_store::NewNotice {
        key: key.into(),
        site: HALL.into(),
        ticket,
        kind: "called".into(),
        number: format!("A{ticket:03}"),
        channel: vuoro_store::NoticeChannel::Sms,
        address: address.into(),
        address_key: format!("key-{address}"),
        lang: "fi".into(),
        text: format!("A{ticket:03}: on vuorosi"),
        at,
        dropped: None,
    }
}

#[test]
fn notices_are_decided_once_forget_their_address_when_they_end_and_contacts_end_with_the_ticket() {
    use vuoro_store::{Contact, NoticeChannel, NoticeOutcome, NoticeState};
    let dir = Dir::new("notices");
    let db = dir.open();
    let now = local(monday(), 10, 0);
    assert_eq!(db.consumer_seq("notices").unwrap(), None);
    db.put_contact(&Contact {
        site: HALL.into(),
        ticket: 7,
        channel: NoticeChannel::Sms,
        address: "+358401234567".into(),
        address_key: "key-+358401234567".into(),
        created_at: now,
    })
    .unwrap();
    assert_eq!(db.contacts().unwrap().len(), 1);

    // The same decision twice (a restart replaying events) is stored once; the consumer's seq only grows.
    let first = db
        .decide_notices(
            &[notice("k7", 7, "+358401234567", now)],
            &[],
            Some(("notices", 40)),
        )
        .unwrap();
    assert_eq!(first.len(), 1);
    let again = db
        .decide_notices(
            &[notice("k7", 7, "+358401234567", now)],
            &[],
            Some(("notices", 30)),
        )
        .unwrap();
    assert!(again.is_empty());
    assert_eq!(db.consumer_seq("notices").unwrap(), Some(40));
    let counts = db
        .notice_counts(HALL, 7, "key-+358401234567", now - Duration::hours(1))
        .unwrap();
    assert_eq!((counts.ticket, counts.address_today), (1, 1));
    assert_eq!(db.notices_since(now - Duration::days(3)).unwrap(), 1);

    // Due now, retried later, then sent: the address is gone from the row.
    let due = db.due_notices(NoticeChannel::Sms, now, 10).unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].address.as_deref(), Some("+358401234567"));
    db.finish_notice(
        due[0].id,
        &NoticeOutcome::Retry {
            at: now + Duration::seconds(5),
            reason: "gateway answered 503".into(),
        },
        now,
    )
    .unwrap();
    assert!(
        db.due_notices(NoticeChannel::Sms, now, 10)
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        db.next_notice_at(NoticeChannel::Sms).unwrap(),
        Some(now + Duration::seconds(5))
    );
    db.finish_notice(due[0].id, &NoticeOutcome::Sent, now)
        .unwrap();
    assert!(
        db.finish_notice(due[0].id, &NoticeOutcome::Sent, now)
            .is_err(),
        "sent once"
    );
    let sent = db
        .notices(HALL, NoticeState::Sent, now - Duration::hours(1), 10)
        .unwrap();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].address, None);
    assert_eq!(sent[0].attempts, 2);

    // A dropped decision is stored as such and does not count against the limits.
    db.decide_notices(
        &[vuoro_store::NewNotice {
            dropped: Some("over the limit".into()),
            ..notice("k8", 8, "+358401234567", now)
        }],
        &[(HALL.into(), 7)],
        None,
    )
    .unwrap();
    let dropped = db
        .notices(HALL, NoticeState::Dropped, now - Duration::hours(1), 10)
        .unwrap();
    assert_eq!(dropped[0].reason.as_deref(), Some("over the limit"));
    assert_eq!(dropped[0].address, None);
    assert_eq!(
        db.notice_counts(HALL, 8, "key-+358401234567", now - Duration::hours(1))
            .unwrap()
            .ticket,
        0
    );
    assert_eq!(
        db.notices_since(now - Duration::days(3)).unwrap(),
        1,
        "dropped ones do not count"
    );
    // The ended ticket's contact is gone, and no number is left anywhere in the file.
    assert!(db.contacts().unwrap().is_empty());
    let raw = dir.raw();
    let left: i64 = raw
        .query_row(
            "SELECT (SELECT COUNT(*) FROM notices WHERE address IS NOT NULL) + (SELECT COUNT(*) FROM contacts)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(left, 0);

    db.opt_out("key-x", now).unwrap();
    db.opt_out("key-x", now).unwrap();
    assert!(db.opted_out("key-x").unwrap());
    assert!(!db.opted_out("key-y").unwrap());
}

#[test]
fn a_stopped_contact_drops_its_pending_notices_and_secrets_are_made_once() {
    use vuoro_store::{NoticeChannel, NoticeState};
    let dir = Dir::new("notice-stop");
    let db = dir.open();
    let now = local(monday(), 10, 0);
    db.decide_notices(
        &[
            notice("a", 1, "+358401234567", now),
            vuoro_store::NewNotice {
                channel: NoticeChannel::Email,
                ..notice("b", 1, "a@example.fi", now)
            },
            notice("c", 2, "+358401234568", now),
        ],
        &[],
        None,
    )
    .unwrap();
    let dropped = db
        .drop_pending_notices(HALL, 1, Some(NoticeChannel::Sms), "stopped", now)
        .unwrap();
    assert_eq!(dropped, 1);
    let due = db.due_notices(NoticeChannel::Sms, now, 10).unwrap();
    assert_eq!(due.len(), 1, "only the other ticket's SMS is still due");
    assert_eq!(due[0].ticket, 2);
    assert_eq!(
        db.due_notices(NoticeChannel::Email, now, 10).unwrap().len(),
        1
    );
    let gone = db
        .notices(HALL, NoticeState::Dropped, now - Duration::hours(1), 10)
        .unwrap();
    assert_eq!(
        (gone[0].address.as_deref(), gone[0].reason.as_deref()),
        (None, Some("stopped"))
    );

    // A secret is made once: later offers do not replace it, and it is in the database (in a backup).
    assert_eq!(db.secret("k", &[1, 2, 3]).unwrap(), vec![1, 2, 3]);
    assert_eq!(db.secret("k", &[9, 9, 9]).unwrap(), vec![1, 2, 3]);
    drop(db);
    assert_eq!(dir.open().secret("k", &[7]).unwrap(), vec![1, 2, 3]);
}
