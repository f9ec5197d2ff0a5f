//! Upgrades: a database of every earlier schema version opens with the current code, is migrated, and
//! keeps its tickets. `tests/fixtures/schema-N.sqlite` is a small database at version N (migrations 1..N
//! of the list, then a day's events and a snapshot written by the engine); one exists for every version.
//!
//! A new migration needs its fixture: `cargo test -p vuoro-store --test upgrades -- --ignored
//! write_missing_fixtures` writes the fixtures that are missing and never rewrites one that exists, so each
//! keeps the events in the shape the engine wrote them when it was made.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{Connection, params};
use vuoro_engine::config::Hall;
use vuoro_engine::{Actor, Command, CounterVerb, Engine, TicketRef, TicketState};
use vuoro_store::sqlite::migrations::MIGRATIONS;

const DEMO: &str = include_str!("../../../config/demo.toml");
const SITE: &str = "iso-omena";
/// The tickets every fixture holds, in issue order: (token, service).
const TICKETS: [(&str, &str); 5] = [
    ("f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1", "kela-general"),
    ("f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2", "kela-general"),
    ("f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3", "parking"),
    ("f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4", "parking"),
    ("f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5", "kela-general"),
];
/// A session stored in every fixture, live until 2030.
const SESSION: &str = "5e55105e55105e55105e55105e55105e55105e55105e55105e55105e55105e55";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn fixture(version: usize) -> PathBuf {
    fixtures().join(format!("schema-{version}.sqlite"))
}

fn hall() -> Arc<Hall> {
    Arc::new(Hall::parse(DEMO).unwrap())
}

/// Monday 2 March 2026, 10:00 in Helsinki.
fn morning() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 8, 0, 0).unwrap()
}

/// Writes a database at `version`: migrations 1..=version, then the engine's events (a counter opened,
/// five tickets, the first called), a snapshot after the third ticket, and a staff session.
fn write_fixture(path: &Path, version: usize) {
    let conn = Connection::open(path).unwrap();
    conn.pragma_update(None, "journal_mode", "DELETE").unwrap();
    for (i, sql) in MIGRATIONS[..version].iter().enumerate() {
        conn.execute_batch(sql).unwrap();
        conn.pragma_update(None, "user_version", (i + 1) as i64)
            .unwrap();
    }
    let mut engine = Engine::new(hall(), morning());
    let mut at = morning();
    let mut run = |engine: &mut Engine, actor: Actor, cmd: Command| {
        at += chrono::Duration::minutes(3);
        let out = engine.handle(cmd, at, &actor).unwrap();
        for ev in engine.take_events() {
            conn.execute(
                "INSERT INTO events (seq, at, site, kind, ticket, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    ev.seq as i64,
                    ev.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                    ev.site.as_str(),
                    ev.kind.name(),
                    ev.kind.ticket().map(|t| t as i64),
                    serde_json::to_string(&ev).unwrap()
                ],
            )
            .unwrap();
        }
        out
    };
    let open = Command::Counter {
        counter: "c1".parse().unwrap(),
        verb: CounterVerb::Open,
    };
    run(&mut engine, Actor::user("agent1"), open);
    let mut first = None;
    for (i, (token, service)) in TICKETS.iter().enumerate() {
        let out = run(
            &mut engine,
            Actor::device("kiosk-3"),
            Command::Issue {
                site: SITE.parse().unwrap(),
                service: service.parse().unwrap(),
                lang: "fi".into(),
                priority: Default::default(),
                token: token.parse().unwrap(),
                channel: vuoro_engine::Channel::Kiosk,
                idempotency: Some(format!("fixture-{i}")),
            },
        );
        if let vuoro_engine::Outcome::Ticket { id, .. } = out {
            first.get_or_insert(id);
        }
        if i == 2 {
            let seq = engine.last_seq();
            conn.execute(
                "INSERT INTO snapshots (seq, at, state) VALUES (?1, ?2, ?3)",
                params![
                    seq as i64,
                    morning().to_rfc3339(),
                    serde_json::to_string(engine.state()).unwrap()
                ],
            )
            .unwrap();
        }
    }
    let call = Command::Counter {
        counter: "c1".parse().unwrap(),
        verb: CounterVerb::Call(TicketRef::Id(first.unwrap())),
    };
    run(&mut engine, Actor::user("agent1"), call);
    conn.execute(
        "INSERT INTO sessions (token_sha256, username, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
        params![
            SESSION,
            "agent1",
            morning().to_rfc3339(),
            "2030-01-01T00:00:00+00:00"
        ],
    )
    .unwrap();
}

#[test]
#[ignore = "writes the fixtures of new schema versions into the source tree"]
fn write_missing_fixtures() {
    std::fs::create_dir_all(fixtures()).unwrap();
    for version in 1..=MIGRATIONS.len() {
        let path = fixture(version);
        if !path.exists() {
            write_fixture(&path, version);
            eprintln!("wrote {}", path.display());
        }
    }
}

#[test]
fn a_database_of_every_earlier_schema_opens_migrated_with_its_tickets() {
    let known = MIGRATIONS.len();
    for version in 1..=known {
        let src = fixture(version);
        assert!(
            src.exists(),
            "no fixture for schema {version}: run `cargo test -p vuoro-store --test upgrades -- --ignored write_missing_fixtures` and commit it"
        );
        assert_eq!(
            vuoro_store::schema_version(&src).unwrap(),
            (version as u32, known as u32)
        );
        // A copy: opening migrates it.
        let dir =
            std::env::temp_dir().join(format!("vuoro-upgrade-{version}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let db = dir.join("vuoro.sqlite");
        std::fs::copy(&src, &db).unwrap();

        let store = vuoro_store::open(&db).unwrap();
        assert_eq!(
            vuoro_store::schema_version(&db).unwrap(),
            (known as u32, known as u32),
            "schema {version} migrated"
        );
        let loaded = store.load().unwrap();
        let (seq, state) = loaded.snapshot.expect("the fixture's snapshot");
        let mut engine = Engine::from_snapshot(hall(), state, morning());
        assert_eq!(engine.last_seq(), seq);
        for ev in &loaded.events {
            engine.apply(ev);
        }
        assert_eq!(engine.last_seq(), store.last_seq().unwrap());
        let site = engine.site_state(SITE).unwrap();
        let mut tickets: Vec<_> = site.tickets.values().collect();
        tickets.sort_by_key(|t| t.id);
        assert_eq!(tickets.len(), TICKETS.len(), "schema {version}");
        for (t, (token, service)) in tickets.iter().zip(TICKETS) {
            assert_eq!(t.token.as_str(), token, "schema {version}");
            assert_eq!(t.service.as_str(), service, "schema {version}");
            assert!(engine.ticket_by_token(token).is_some());
        }
        assert_eq!(tickets[0].state, TicketState::Called, "schema {version}");
        assert!(
            tickets[1..].iter().all(|t| t.state == TicketState::Waiting),
            "schema {version}"
        );
        let numbers: Vec<&str> = tickets.iter().map(|t| t.number.as_str()).collect();
        let mut unique = numbers.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), numbers.len(), "{numbers:?}");
        let sessions = store.live_sessions(morning()).unwrap();
        assert_eq!(sessions.len(), 1, "schema {version}");
        assert_eq!(sessions[0].username, "agent1");
        // The migrated database takes new events after the old ones.
        let before = engine.last_seq();
        engine
            .handle(
                Command::Issue {
                    site: SITE.parse().unwrap(),
                    service: "parking".parse().unwrap(),
                    lang: "fi".into(),
                    priority: Default::default(),
                    token: "f6f6f6f6f6f6f6f6f6f6f6f6f6f6f6f6".parse().unwrap(),
                    channel: vuoro_engine::Channel::Kiosk,
                    idempotency: None,
                },
                morning() + chrono::Duration::hours(1),
                &Actor::device("kiosk-3"),
            )
            .unwrap();
        store.append(before, &engine.take_events(), None).unwrap();
        assert!(store.last_seq().unwrap() > before);
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn a_database_of_a_newer_schema_is_refused_and_not_changed() {
    let dir = std::env::temp_dir().join(format!("vuoro-upgrade-newer-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("vuoro.sqlite");
    let newest = fixture(MIGRATIONS.len());
    std::fs::copy(&newest, &db).unwrap();
    let newer = MIGRATIONS.len() + 1;
    Connection::open(&db)
        .unwrap()
        .pragma_update(None, "user_version", newer as i64)
        .unwrap();
    let bytes = std::fs::read(&db).unwrap();
    for err in [
        vuoro_store::open(&db).err().unwrap(),
        vuoro_store::open_read_only(&db).err().unwrap(),
    ] {
        assert_eq!(
            err.to_string(),
            format!(
                "made by a newer Vuoro (schema {newer}, this one knows {}): upgrade Vuoro or restore a backup",
                MIGRATIONS.len()
            )
        );
    }
    assert!(
        std::fs::read(&db).unwrap() == bytes,
        "the file is as it was"
    );
    assert!(
        !Path::new(&format!("{}-wal", db.display())).exists(),
        "not put in WAL mode"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
