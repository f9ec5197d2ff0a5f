//! Vuoro's durable store: the event log, state snapshots and staff sessions in one SQLite file.
//!
//! WAL with `synchronous=FULL`: a commit that returned is on disk. One connection writes (the daemon's
//! writer thread, which batches many commands into one transaction: group commit); others only read.
//! Start-up loads the newest snapshot and replays only the events after it.

use std::path::Path;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use vuoro_engine::Event;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("stored data is not readable: {0}")]
    Corrupt(String),
    #[error("event {got} does not follow {last}: the log would have a gap")]
    Gap { last: u64, got: u64 },
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// Versioned migrations: index i brings the schema from version i to i + 1. Never edit one that shipped.
const MIGRATIONS: &[&str] = &[
    // 1: the event log, snapshots, sessions.
    "CREATE TABLE events (
        seq INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        site TEXT NOT NULL,
        kind TEXT NOT NULL,
        ticket INTEGER,
        data TEXT NOT NULL
     );
     CREATE INDEX events_site_at ON events(site, at);
     CREATE TABLE snapshots (
        seq INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        state TEXT NOT NULL
     );
     CREATE TABLE sessions (
        token_sha256 TEXT PRIMARY KEY,
        username TEXT NOT NULL,
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL
     );",
    // 2: reports (vuoro-reports, docs/reports.md): hourly aggregates folded from the event log, how far
    // each site's log is folded, and the audit trail of staff requests that are not events.
    "CREATE TABLE report_cells (
        site TEXT NOT NULL,
        date TEXT NOT NULL,
        hour INTEGER NOT NULL,
        service TEXT NOT NULL,
        counter TEXT NOT NULL,
        staff TEXT NOT NULL,
        unit TEXT NOT NULL,
        arrivals INTEGER NOT NULL,
        called INTEGER NOT NULL,
        served INTEGER NOT NULL,
        no_shows INTEGER NOT NULL,
        cancelled INTEGER NOT NULL,
        day_ended INTEGER NOT NULL,
        transfers INTEGER NOT NULL,
        pass_ons INTEGER NOT NULL,
        wait_sum INTEGER NOT NULL,
        within_target INTEGER NOT NULL,
        service_sum INTEGER NOT NULL,
        open_secs INTEGER NOT NULL,
        busy_secs INTEGER NOT NULL,
        site_open_secs INTEGER NOT NULL,
        wait_dist BLOB NOT NULL,
        service_dist BLOB NOT NULL,
        PRIMARY KEY (site, date, hour, service, counter, staff)
     ) WITHOUT ROWID;
     CREATE TABLE report_folded (
        site TEXT PRIMARY KEY,
        seq INTEGER NOT NULL,
        at TEXT NOT NULL
     );
     CREATE TABLE audit_requests (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        actor_kind TEXT NOT NULL,
        actor_id TEXT,
        site TEXT,
        method TEXT NOT NULL,
        path TEXT NOT NULL,
        status INTEGER NOT NULL,
        client TEXT,
        user_agent TEXT
     );
     CREATE INDEX audit_requests_at ON audit_requests(at);",
    // 3: reports kept as two rollups instead of one hourly table with every dimension (a year of that
    // is too many rows to read fast): per day with counter and staff, per hour with service and unit.
    // The days are folded again from the events still in the log.
    "DROP TABLE report_cells;
     DELETE FROM report_folded;
     CREATE TABLE report_days (
        site TEXT NOT NULL,
        date TEXT NOT NULL,
        service TEXT NOT NULL,
        counter TEXT NOT NULL,
        staff TEXT NOT NULL,
        unit TEXT NOT NULL,
        arrivals INTEGER NOT NULL,
        called INTEGER NOT NULL,
        served INTEGER NOT NULL,
        no_shows INTEGER NOT NULL,
        cancelled INTEGER NOT NULL,
        day_ended INTEGER NOT NULL,
        transfers INTEGER NOT NULL,
        pass_ons INTEGER NOT NULL,
        wait_sum INTEGER NOT NULL,
        within_target INTEGER NOT NULL,
        service_sum INTEGER NOT NULL,
        open_secs INTEGER NOT NULL,
        busy_secs INTEGER NOT NULL,
        site_open_secs INTEGER NOT NULL,
        wait_dist BLOB NOT NULL,
        service_dist BLOB NOT NULL,
        PRIMARY KEY (site, date, service, counter, staff, unit)
     ) WITHOUT ROWID;
     CREATE TABLE report_hours (
        site TEXT NOT NULL,
        date TEXT NOT NULL,
        hour INTEGER NOT NULL,
        service TEXT NOT NULL,
        unit TEXT NOT NULL,
        arrivals INTEGER NOT NULL,
        called INTEGER NOT NULL,
        served INTEGER NOT NULL,
        no_shows INTEGER NOT NULL,
        cancelled INTEGER NOT NULL,
        day_ended INTEGER NOT NULL,
        transfers INTEGER NOT NULL,
        pass_ons INTEGER NOT NULL,
        wait_sum INTEGER NOT NULL,
        within_target INTEGER NOT NULL,
        service_sum INTEGER NOT NULL,
        open_secs INTEGER NOT NULL,
        busy_secs INTEGER NOT NULL,
        site_open_secs INTEGER NOT NULL,
        wait_dist BLOB NOT NULL,
        service_dist BLOB NOT NULL,
        PRIMARY KEY (site, date, hour, service, unit)
     ) WITHOUT ROWID;",
    // 4: more rollups, so that a report over a year reads a few thousand rows: per day with service and
    // unit only, per month with every dimension, per month and hour. Everything is folded again from
    // the events still in the log.
    "DELETE FROM report_days;
     DELETE FROM report_hours;
     DELETE FROM report_folded;
     CREATE TABLE report_days_short (
        site TEXT NOT NULL,
        date TEXT NOT NULL,
        service TEXT NOT NULL,
        unit TEXT NOT NULL,
        arrivals INTEGER NOT NULL,
        called INTEGER NOT NULL,
        served INTEGER NOT NULL,
        no_shows INTEGER NOT NULL,
        cancelled INTEGER NOT NULL,
        day_ended INTEGER NOT NULL,
        transfers INTEGER NOT NULL,
        pass_ons INTEGER NOT NULL,
        wait_sum INTEGER NOT NULL,
        within_target INTEGER NOT NULL,
        service_sum INTEGER NOT NULL,
        open_secs INTEGER NOT NULL,
        busy_secs INTEGER NOT NULL,
        site_open_secs INTEGER NOT NULL,
        wait_dist BLOB NOT NULL,
        service_dist BLOB NOT NULL,
        PRIMARY KEY (site, date, service, unit)
     ) WITHOUT ROWID;
     CREATE TABLE report_months (
        site TEXT NOT NULL,
        date TEXT NOT NULL,
        service TEXT NOT NULL,
        counter TEXT NOT NULL,
        staff TEXT NOT NULL,
        unit TEXT NOT NULL,
        arrivals INTEGER NOT NULL,
        called INTEGER NOT NULL,
        served INTEGER NOT NULL,
        no_shows INTEGER NOT NULL,
        cancelled INTEGER NOT NULL,
        day_ended INTEGER NOT NULL,
        transfers INTEGER NOT NULL,
        pass_ons INTEGER NOT NULL,
        wait_sum INTEGER NOT NULL,
        within_target INTEGER NOT NULL,
        service_sum INTEGER NOT NULL,
        open_secs INTEGER NOT NULL,
        busy_secs INTEGER NOT NULL,
        site_open_secs INTEGER NOT NULL,
        wait_dist BLOB NOT NULL,
        service_dist BLOB NOT NULL,
        PRIMARY KEY (site, date, service, counter, staff, unit)
     ) WITHOUT ROWID;
     CREATE TABLE report_month_hours (
        site TEXT NOT NULL,
        date TEXT NOT NULL,
        hour INTEGER NOT NULL,
        service TEXT NOT NULL,
        unit TEXT NOT NULL,
        arrivals INTEGER NOT NULL,
        called INTEGER NOT NULL,
        served INTEGER NOT NULL,
        no_shows INTEGER NOT NULL,
        cancelled INTEGER NOT NULL,
        day_ended INTEGER NOT NULL,
        transfers INTEGER NOT NULL,
        pass_ons INTEGER NOT NULL,
        wait_sum INTEGER NOT NULL,
        within_target INTEGER NOT NULL,
        service_sum INTEGER NOT NULL,
        open_secs INTEGER NOT NULL,
        busy_secs INTEGER NOT NULL,
        site_open_secs INTEGER NOT NULL,
        wait_dist BLOB NOT NULL,
        service_dist BLOB NOT NULL,
        PRIMARY KEY (site, date, hour, service, unit)
     ) WITHOUT ROWID;",
];

fn pragmas(conn: &Connection) -> Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

/// Opens (creating if needed) the database at `path` and brings its schema up to date.
pub fn open(path: &Path) -> Result<Writer> {
    let mut conn = Connection::open(path)?;
    pragmas(&conn)?;
    migrate(&mut conn)?;
    // Checkpoint regularly so the WAL does not grow without bound under constant readers.
    conn.pragma_update(None, "wal_autocheckpoint", 4000)?;
    Ok(Writer { conn })
}

/// A read-only connection for queries that must not wait for the writer.
pub fn open_reader(path: &Path) -> Result<Reader> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(Reader { conn })
}

fn migrate(conn: &mut Connection) -> Result<()> {
    let version: usize =
        conn.pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0))? as usize;
    if version > MIGRATIONS.len() {
        return Err(StoreError::Corrupt(format!(
            "database schema {version} is newer than this program knows ({})",
            MIGRATIONS.len()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
        tracing::info!(version = i + 1, "database migrated");
    }
    Ok(())
}

/// What start-up needs: the newest snapshot (if any) and the events after it.
pub struct Loaded {
    pub snapshot: Option<(u64, String)>,
    pub events: Vec<Event>,
}

/// The one connection that writes.
pub struct Writer {
    conn: Connection,
}

impl Writer {
    /// The newest snapshot and every event after it, in order.
    pub fn load(&self) -> Result<Loaded> {
        let snapshot: Option<(u64, String)> = self
            .conn
            .query_row(
                "SELECT seq, state FROM snapshots ORDER BY seq DESC LIMIT 1",
                [],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)),
            )
            .optional()?;
        let after = snapshot.as_ref().map_or(0, |s| s.0);
        let events = events_after(&self.conn, after, usize::MAX)?;
        Ok(Loaded { snapshot, events })
    }

    /// Highest committed seq (0 when empty).
    pub fn last_seq(&self) -> Result<u64> {
        Ok(self
            .conn
            .query_row("SELECT COALESCE(MAX(seq), 0) FROM events", [], |r| {
                r.get::<_, i64>(0)
            })? as u64)
    }

    /// Appends `events` (which must continue the log without a gap) and optionally a snapshot, in one
    /// transaction. When this returns Ok, all of it is durable.
    pub fn append(
        &mut self,
        last_seq: u64,
        events: &[Event],
        snapshot: Option<(u64, &str)>,
    ) -> Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached("INSERT INTO events (seq, at, site, kind, ticket, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")?;
            for (expect, ev) in (last_seq + 1..).zip(events) {
                if ev.seq != expect {
                    return Err(StoreError::Gap {
                        last: expect - 1,
                        got: ev.seq,
                    });
                }
                let data =
                    serde_json::to_string(ev).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                stmt.execute(params![
                    ev.seq as i64,
                    ev.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                    ev.site.as_str(),
                    ev.kind.name(),
                    ev.kind.ticket().map(|t| t as i64),
                    data
                ])?;
            }
        }
        if let Some((seq, state)) = snapshot {
            tx.execute(
                "INSERT OR REPLACE INTO snapshots (seq, at, state) VALUES (?1, ?2, ?3)",
                params![seq as i64, Utc::now().to_rfc3339(), state],
            )?;
            // Keep the two newest snapshots.
            tx.execute("DELETE FROM snapshots WHERE seq NOT IN (SELECT seq FROM snapshots ORDER BY seq DESC LIMIT 2)", [])?;
        }
        tx.commit()?;
        Ok(())
    }

    pub fn connection(&self) -> &Connection {
        &self.conn
    }
}

/// A read-only connection.
pub struct Reader {
    conn: Connection,
}

impl Reader {
    pub fn events_after(&self, seq: u64, limit: usize) -> Result<Vec<Event>> {
        events_after(&self.conn, seq, limit)
    }

    pub fn connection(&self) -> &Connection {
        &self.conn
    }
}

fn events_after(conn: &Connection, seq: u64, limit: usize) -> Result<Vec<Event>> {
    let mut stmt =
        conn.prepare_cached("SELECT data FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2")?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = stmt.query_map(params![seq as i64, limit], |r| r.get::<_, String>(0))?;
    let mut out = Vec::new();
    for row in rows {
        let data = row?;
        out.push(
            serde_json::from_str(&data).map_err(|e| StoreError::Corrupt(format!("event: {e}")))?,
        );
    }
    Ok(out)
}

/// Staff sessions: only a SHA-256 of each session token is stored.
pub struct Sessions {
    conn: Connection,
}

impl Sessions {
    pub fn open(path: &Path) -> Result<Sessions> {
        let conn = Connection::open(path)?;
        pragmas(&conn)?;
        Ok(Sessions { conn })
    }

    pub fn create(
        &self,
        token_sha256: &str,
        username: &str,
        now: DateTime<Utc>,
        expires: DateTime<Utc>,
    ) -> Result<()> {
        self.conn.execute(
            "INSERT INTO sessions (token_sha256, username, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
            params![token_sha256, username, now.to_rfc3339(), expires.to_rfc3339()],
        )?;
        Ok(())
    }

    /// Every live session: (token hash, username, expiry).
    pub fn live(&self, now: DateTime<Utc>) -> Result<Vec<(String, String, DateTime<Utc>)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT token_sha256, username, expires_at FROM sessions")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (hash, user, exp) = row?;
            if let Ok(exp) = exp.parse::<DateTime<Utc>>()
                && exp > now
            {
                out.push((hash, user, exp));
            }
        }
        Ok(out)
    }

    pub fn delete(&self, token_sha256: &str) -> Result<()> {
        self.conn.execute(
            "DELETE FROM sessions WHERE token_sha256 = ?1",
            [token_sha256],
        )?;
        Ok(())
    }

    pub fn purge_expired(&self, now: DateTime<Utc>) -> Result<usize> {
        Ok(self.conn.execute(
            "DELETE FROM sessions WHERE expires_at <= ?1",
            [now.to_rfc3339()],
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vuoro_engine::{Actor, EventKind};

    fn ev(seq: u64) -> Event {
        Event {
            seq,
            at: Utc::now(),
            site: "s".parse().unwrap(),
            actor: Actor::system(),
            kind: EventKind::CounterClosed {
                counter: format!("c{seq}").parse().unwrap(),
            },
        }
    }

    #[test]
    fn append_load_and_gap_refusal() {
        let dir = std::env::temp_dir().join(format!("vuoro-store-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.sqlite");
        let _ = std::fs::remove_file(&path);
        let mut w = open(&path).unwrap();
        w.append(0, &[ev(1), ev(2)], None).unwrap();
        w.append(2, &[ev(3)], Some((3, "{\"x\":1}"))).unwrap();
        assert!(matches!(
            w.append(3, &[ev(5)], None),
            Err(StoreError::Gap { .. })
        ));
        // The failed append left nothing behind.
        assert_eq!(w.last_seq().unwrap(), 3);
        w.append(3, &[ev(4)], None).unwrap();
        drop(w);
        let w = open(&path).unwrap();
        let loaded = w.load().unwrap();
        assert_eq!(loaded.snapshot.as_ref().map(|s| s.0), Some(3));
        assert_eq!(
            loaded.events.iter().map(|e| e.seq).collect::<Vec<_>>(),
            vec![4]
        );
        let r = open_reader(&path).unwrap();
        assert_eq!(r.events_after(1, 10).unwrap().len(), 3);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
