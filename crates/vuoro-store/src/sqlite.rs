//! The SQLite backend of `Database`: one file, WAL with `synchronous=FULL` (a commit that returned is on
//! disk), its schema in `migrations`.
//!
//! SQLite lets one connection write at a time; the others wait for the lock up to their busy timeout. Each
//! kind of work has its own connection, so that none queues behind another inside the process:
//! - the log's: the daemon's writer thread appends through it, one transaction per batch;
//! - the maintenance connection: folded days, the retention purge, the audit records; with
//!   `secure_delete`, so purged rows and blanked tokens are overwritten in the file;
//! - the sessions': sign-in, sign-out, expiry;
//! - the notices': contacts, the outbox, the post-commit consumers' reached seqs (`notices`);
//! - the notices' senders' outcomes, batched, with `synchronous=NORMAL`;
//! - read-only connections, one taken from a small pool for each read (start-up, reports, the audit
//!   trail), so reads never wait for a write.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use rusqlite::types::Type;
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};
use vuoro_engine::{Event, State};

use crate::rollup::{Cell, CellKey, Dist, Rollup};
use crate::{
    AuditQuery, Contact, Database, DayStored, FoldedDay, Loaded, NewNotice, Notice, NoticeChannel,
    NoticeCounts, NoticeOutcome, NoticeState, RequestRecord, Result, Session, StoreError, blank,
};

mod identity;
pub mod migrations;
mod notices;

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> StoreError {
        StoreError::Other(Box::new(e))
    }
}

/// Event rows deleted per statement, so that the daemon's writer never waits long for the lock.
const DELETE_BATCH: usize = 5_000;
/// Read-only connections kept for the next read.
const READERS_KEPT: usize = 4;

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn corrupt(what: impl std::fmt::Display, e: serde_json::Error) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

/// Vuoro's database in one SQLite file.
pub struct Sqlite {
    path: PathBuf,
    /// The log's connection; None when open read-only. Every mutex here is a std one: it is held for one
    /// operation on its connection by a thread or a blocking task, never across an `.await`.
    log: Option<Mutex<Connection>>,
    /// Opened at first use, like `sessions`.
    maintenance: Mutex<Option<Connection>>,
    sessions: Mutex<Option<Connection>>,
    notices: Mutex<Option<Connection>>,
    /// The notices' senders' outcomes: `synchronous=NORMAL` (see `Database::finish_notices`).
    outcomes: Mutex<Option<Connection>>,
    readers: Mutex<Vec<Connection>>,
}

fn pragmas(conn: &Connection) -> Result<()> {
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

fn open_maintenance(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    // Freed space is zeroed, so purged rows and blanked tokens do not linger in the file.
    conn.pragma_update(None, "secure_delete", "ON")?;
    Ok(conn)
}

fn open_sessions(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    pragmas(&conn)?;
    Ok(conn)
}

fn open_outcomes(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    pragmas(&conn)?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(conn)
}

fn open_reader(path: &Path) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(10))?;
    Ok(conn)
}

/// The database's schema version, refused when it is newer than this program knows.
fn known_version(conn: &Connection) -> Result<usize> {
    let known = migrations::MIGRATIONS.len();
    let version = conn.pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0))?;
    let version = usize::try_from(version).unwrap_or(usize::MAX);
    if version > known {
        return Err(StoreError::TooNew {
            found: u32::try_from(version).unwrap_or(u32::MAX),
            known: known as u32,
        });
    }
    Ok(version)
}

fn migrate(conn: &mut Connection) -> Result<()> {
    let version = known_version(conn)?;
    for (i, sql) in migrations::MIGRATIONS.iter().enumerate().skip(version) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
        tracing::info!(version = i + 1, "database migrated");
    }
    Ok(())
}

/// The schema version of the database at `path` and the newest this program knows, read-only.
pub fn schema_version(path: &Path) -> Result<(u32, u32)> {
    if !path.exists() {
        return Err(StoreError::NotFound(path.display().to_string()));
    }
    let conn = open_reader(path)?;
    let version = conn.pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0))?;
    Ok((
        u32::try_from(version).unwrap_or(u32::MAX),
        migrations::MIGRATIONS.len() as u32,
    ))
}

/// `dest` with `.partial` added to its name: where a copy is written before it is renamed into place.
fn partial_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    dest.with_file_name(name)
}

impl Sqlite {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Sqlite> {
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        // Before anything writes to the file (setting WAL mode does): a newer schema is left untouched.
        known_version(&conn)?;
        pragmas(&conn)?;
        migrate(&mut conn)?;
        // Checkpoint regularly so the WAL does not grow without bound under constant readers.
        conn.pragma_update(None, "wal_autocheckpoint", 4000)?;
        Ok(Sqlite {
            path: path.to_path_buf(),
            log: Some(Mutex::new(conn)),
            maintenance: Mutex::new(None),
            sessions: Mutex::new(None),
            notices: Mutex::new(None),
            outcomes: Mutex::new(None),
            readers: Mutex::new(Vec::new()),
        })
    }

    /// Opens an existing database for reading only, as it is (no migration).
    pub fn open_read_only(path: &Path) -> Result<Sqlite> {
        if !path.exists() {
            return Err(StoreError::NotFound(path.display().to_string()));
        }
        let reader = open_reader(path)?;
        known_version(&reader)?;
        Ok(Sqlite {
            path: path.to_path_buf(),
            log: None,
            maintenance: Mutex::new(None),
            sessions: Mutex::new(None),
            notices: Mutex::new(None),
            outcomes: Mutex::new(None),
            readers: Mutex::new(vec![reader]),
        })
    }

    /// Runs `f` on a read-only connection from the pool (a new one when the pool is empty).
    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let pooled = self.readers.lock().expect("lock").pop();
        let conn = match pooled {
            Some(c) => c,
            None => open_reader(&self.path)?,
        };
        let out = f(&conn);
        let mut pool = self.readers.lock().expect("lock");
        if pool.len() < READERS_KEPT {
            pool.push(conn);
        }
        out
    }

    /// Runs `f` on the write connection in `slot`, opened with `open` at first use.
    fn write<T>(
        &self,
        slot: &Mutex<Option<Connection>>,
        open: fn(&Path) -> Result<Connection>,
        f: impl FnOnce(&mut Connection) -> Result<T>,
    ) -> Result<T> {
        if self.log.is_none() {
            return Err(StoreError::ReadOnly);
        }
        let mut conn = slot.lock().expect("lock");
        if conn.is_none() {
            *conn = Some(open(&self.path)?);
        }
        f(conn.as_mut().expect("opened above"))
    }

    fn maintain<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        self.write(&self.maintenance, open_maintenance, f)
    }

    fn session_conn<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        self.write(&self.sessions, open_sessions, f)
    }

    fn notice_conn<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        self.write(&self.notices, open_sessions, f)
    }
}

fn has_table(conn: &Connection, name: &str) -> Result<bool> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [name],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

fn parse_time(s: &str) -> Result<DateTime<Utc>> {
    s.parse()
        .map_err(|e| StoreError::Corrupt(format!("time '{s}': {e}")))
}

fn events_after(conn: &Connection, seq: u64, limit: usize) -> Result<Vec<Event>> {
    let mut stmt =
        conn.prepare_cached("SELECT seq, data FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2")?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    query_events(&mut stmt, params![seq as i64, limit])
}

/// The events a `SELECT seq, data FROM events ...` statement finds, decoded into the engine's type.
fn query_events(
    stmt: &mut rusqlite::Statement<'_>,
    params: impl rusqlite::Params,
) -> Result<Vec<Event>> {
    let rows = stmt.query_map(params, |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
    })?;
    rows.map(|row| {
        let (seq, data) = row?;
        serde_json::from_str(&data).map_err(|e| corrupt(format_args!("event {seq}"), e))
    })
    .collect()
}

fn folded(conn: &Connection, site: &str) -> Result<u64> {
    if !has_table(conn, "report_folded")? {
        return Ok(0);
    }
    Ok(conn
        .query_row(
            "SELECT seq FROM report_folded WHERE site = ?1",
            [site],
            |r| r.get::<_, i64>(0),
        )
        .optional()?
        .unwrap_or(0) as u64)
}

/// Forgets the tokens of `site`'s tickets in the snapshots taken up to `seq`; how many changed.
fn blank_snapshots(tx: &Connection, site: &str, seq: u64) -> Result<usize> {
    let snaps: Vec<(i64, String)> = {
        let mut stmt = tx.prepare("SELECT seq, state FROM snapshots WHERE seq <= ?1")?;
        let rows = stmt.query_map([seq as i64], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<std::result::Result<_, _>>()?
    };
    let mut changed = 0;
    for (sseq, text) in snaps {
        let mut state: State =
            serde_json::from_str(&text).map_err(|e| corrupt(format_args!("snapshot {sseq}"), e))?;
        if blank::forget_site_tokens(&mut state, site) {
            let text = serde_json::to_string(&state)
                .map_err(|e| corrupt(format_args!("snapshot {sseq}"), e))?;
            tx.execute(
                "UPDATE snapshots SET state = ?1 WHERE seq = ?2",
                params![text, sseq],
            )?;
            changed += 1;
        }
    }
    Ok(changed)
}

type SessionRow = (
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
);

fn session_row(r: &rusqlite::Row) -> rusqlite::Result<SessionRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    ))
}

/// The audit query's filters as SQL: `?3` is the site, `?4` the user (NULL when not filtered).
fn audit_filters(q: &AuditQuery, site: &str, user: &str) -> String {
    let mut sql = String::new();
    sql.push_str(if q.site.is_some() {
        site
    } else {
        " AND ?3 IS NULL"
    });
    sql.push_str(if q.user.is_some() {
        user
    } else {
        " AND ?4 IS NULL"
    });
    sql
}

impl Database for Sqlite {
    fn load(&self) -> Result<Loaded> {
        self.read(|conn| {
            // One read transaction: the snapshot and the events after it are of one moment.
            let tx = conn.unchecked_transaction()?;
            let newest: Option<(i64, String)> = tx
                .query_row(
                    "SELECT seq, state FROM snapshots ORDER BY seq DESC LIMIT 1",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let snapshot = match newest {
                None => None,
                Some((seq, text)) => Some((
                    seq as u64,
                    serde_json::from_str::<State>(&text)
                        .map_err(|e| corrupt(format_args!("snapshot {seq}"), e))?,
                )),
            };
            let after = snapshot.as_ref().map_or(0, |s| s.0);
            let events = events_after(&tx, after, usize::MAX)?;
            Ok(Loaded { snapshot, events })
        })
    }

    fn last_seq(&self) -> Result<u64> {
        self.read(|conn| {
            Ok(
                conn.query_row("SELECT COALESCE(MAX(seq), 0) FROM events", [], |r| {
                    r.get::<_, i64>(0)
                })? as u64,
            )
        })
    }

    fn append(
        &self,
        last_seq: u64,
        events: &[Event],
        snapshot: Option<(u64, &State)>,
    ) -> Result<()> {
        let Some(log) = &self.log else {
            return Err(StoreError::ReadOnly);
        };
        let snapshot = match snapshot {
            Some((seq, state)) => Some((
                seq,
                serde_json::to_string(state).map_err(|e| corrupt("snapshot", e))?,
            )),
            None => None,
        };
        let mut conn = log.lock().expect("lock");
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO events (seq, at, site, kind, ticket, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for (expect, ev) in (last_seq + 1..).zip(events) {
                if ev.seq != expect {
                    return Err(StoreError::Gap {
                        last: expect - 1,
                        got: ev.seq,
                    });
                }
                let data = serde_json::to_string(ev)
                    .map_err(|e| corrupt(format_args!("event {expect}"), e))?;
                stmt.execute(params![
                    ev.seq as i64,
                    ts(ev.at),
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
            tx.execute(
                "DELETE FROM snapshots WHERE seq NOT IN (SELECT seq FROM snapshots ORDER BY seq DESC LIMIT 2)",
                [],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    fn events_after(&self, seq: u64, limit: usize) -> Result<Vec<Event>> {
        self.read(|conn| events_after(conn, seq, limit))
    }

    fn site_events(&self, site: &str, after: u64, before: u64) -> Result<Vec<Event>> {
        self.read(|conn| {
            // `+site` keeps SQLite on the seq range instead of the whole site's index.
            let mut stmt = conn.prepare_cached(
                "SELECT seq, data FROM events WHERE seq > ?1 AND seq < ?2 AND +site = ?3 ORDER BY seq",
            )?;
            let before = i64::try_from(before).unwrap_or(i64::MAX);
            query_events(&mut stmt, params![after as i64, before, site])
        })
    }

    fn sites_with_events(&self) -> Result<Vec<String>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached("SELECT DISTINCT site FROM events")?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            Ok(rows.collect::<std::result::Result<_, _>>()?)
        })
    }

    fn day_starts(&self, site: &str, after: u64) -> Result<Vec<u64>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT seq FROM events WHERE seq > ?1 AND +site = ?2 AND kind = 'day_started' ORDER BY seq",
            )?;
            let rows = stmt.query_map(params![after as i64, site], |r| r.get::<_, i64>(0))?;
            let mut out = Vec::new();
            for row in rows {
                out.push(row? as u64);
            }
            Ok(out)
        })
    }

    fn site_last_seq(&self, site: &str) -> Result<u64> {
        self.read(|conn| {
            Ok(conn.query_row(
                "SELECT COALESCE(MAX(seq), 0) FROM events WHERE site = ?1",
                [site],
                |r| r.get::<_, i64>(0),
            )? as u64)
        })
    }

    fn first_event_at(&self, site: &str, after: u64) -> Result<Option<DateTime<Utc>>> {
        self.read(|conn| {
            let at: Option<String> = conn
                .query_row(
                    "SELECT at FROM events WHERE seq > ?1 AND +site = ?2 ORDER BY seq LIMIT 1",
                    params![after as i64, site],
                    |r| r.get(0),
                )
                .optional()?;
            at.as_deref().map(parse_time).transpose()
        })
    }

    fn oldest_snapshot(&self) -> Result<Option<u64>> {
        self.read(|conn| {
            let seq: Option<i64> =
                conn.query_row("SELECT MIN(seq) FROM snapshots", [], |r| r.get(0))?;
            Ok(seq.map(|s| s as u64))
        })
    }

    fn create_session(&self, s: &Session) -> Result<()> {
        self.session_conn(|conn| {
            conn.execute(
                "INSERT INTO sessions (token_sha256, username, created_at, expires_at, rights, last_used_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    s.token_sha256,
                    s.username,
                    s.created_at.to_rfc3339(),
                    s.expires_at.to_rfc3339(),
                    s.rights,
                    s.last_used_at.map(|t| t.to_rfc3339())
                ],
            )?;
            Ok(())
        })
    }

    fn live_sessions(&self, now: DateTime<Utc>) -> Result<Vec<Session>> {
        self.session_conn(|conn| {
            let mut stmt = conn.prepare(
                "SELECT token_sha256, username, created_at, expires_at, rights, last_used_at FROM sessions",
            )?;
            let rows = stmt.query_map([], session_row)?;
            let mut out = Vec::new();
            for row in rows {
                let (token_sha256, username, created, expires, rights, used) = row?;
                // A row whose times do not read is no live session.
                if let (Ok(created_at), Ok(expires_at)) =
                    (parse_time(&created), parse_time(&expires))
                    && expires_at > now
                {
                    out.push(Session {
                        token_sha256,
                        username,
                        created_at,
                        expires_at,
                        rights,
                        last_used_at: used.as_deref().and_then(|u| parse_time(u).ok()),
                    });
                }
            }
            Ok(out)
        })
    }

    fn delete_session(&self, token_sha256: &str) -> Result<()> {
        self.session_conn(|conn| {
            conn.execute(
                "DELETE FROM sessions WHERE token_sha256 = ?1",
                [token_sha256],
            )?;
            Ok(())
        })
    }

    fn purge_sessions(&self, now: DateTime<Utc>) -> Result<usize> {
        self.session_conn(|conn| {
            Ok(conn.execute(
                "DELETE FROM sessions WHERE expires_at <= ?1",
                [now.to_rfc3339()],
            )?)
        })
    }

    fn sessions_used(&self, used: &[(String, DateTime<Utc>)]) -> Result<()> {
        self.session_conn(|conn| {
            let tx = conn.transaction()?;
            {
                let mut stmt = tx.prepare_cached(
                    "UPDATE sessions SET last_used_at = ?2 WHERE token_sha256 = ?1",
                )?;
                for (hash, at) in used {
                    stmt.execute(params![hash, at.to_rfc3339()])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
    }

    fn delete_user_sessions(&self, username: &str) -> Result<usize> {
        self.session_conn(|conn| {
            Ok(conn.execute("DELETE FROM sessions WHERE username = ?1", [username])?)
        })
    }

    fn add_config_version(&self, v: &crate::ConfigVersion) -> Result<u64> {
        self.session_conn(|conn| identity::add_config_version(conn, v))
    }

    fn latest_config(&self, source: Option<&str>) -> Result<Option<crate::ConfigVersion>> {
        self.read(|conn| identity::latest_config(conn, source))
    }

    fn config_version(&self, version: u64) -> Result<Option<crate::ConfigVersion>> {
        self.read(|conn| identity::config_version(conn, version))
    }

    fn config_versions(&self, limit: usize) -> Result<Vec<crate::ConfigVersion>> {
        self.read(|conn| identity::config_versions(conn, limit))
    }

    fn create_enrol_code(
        &self,
        code_sha256: &str,
        device: &str,
        by: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<()> {
        self.session_conn(|conn| {
            identity::create_enrol_code(conn, code_sha256, device, by, now, expires_at)
        })
    }

    fn enrol(
        &self,
        code_sha256: &str,
        device: Option<&str>,
        token: &crate::DeviceToken,
    ) -> Result<Option<String>> {
        self.session_conn(|conn| identity::enrol(conn, code_sha256, device, token))
    }

    fn device_tokens(&self) -> Result<Vec<crate::DeviceToken>> {
        self.read(identity::device_tokens)
    }

    fn revoke_device(
        &self,
        device: &str,
        config_token: Option<&str>,
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<usize> {
        self.session_conn(|conn| identity::revoke_device(conn, device, config_token, by, at))
    }

    fn devices_seen(&self, seen: &[crate::DeviceSeen]) -> Result<()> {
        self.session_conn(|conn| identity::devices_seen(conn, seen))
    }

    fn record_requests(&self, records: &[RequestRecord]) -> Result<()> {
        self.maintain(|conn| {
            let tx = conn.transaction()?;
            {
                let mut stmt = tx.prepare_cached(
                    "INSERT INTO audit_requests (at, actor_kind, actor_id, site, method, path, status, client, user_agent)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                )?;
                for r in records {
                    stmt.execute(params![
                        ts(r.at),
                        r.actor_kind,
                        r.actor_id,
                        r.site,
                        r.method,
                        r.path,
                        r.status,
                        r.client,
                        r.user_agent
                    ])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
    }

    fn audited_events(&self, q: &AuditQuery) -> Result<Vec<Event>> {
        self.read(|conn| {
            let sql = format!(
                "SELECT seq, data FROM events WHERE at >= ?1 AND at < ?2
                   AND json_extract(data, '$.actor.kind') IN ('user', 'device'){}
                 ORDER BY at, seq LIMIT ?5",
                audit_filters(
                    q,
                    " AND site = ?3",
                    " AND json_extract(data, '$.actor.id') = ?4"
                )
            );
            let mut stmt = conn.prepare(&sql)?;
            let limit = i64::try_from(q.limit).unwrap_or(i64::MAX);
            query_events(
                &mut stmt,
                params![ts(q.from), ts(q.to), q.site, q.user, limit],
            )
        })
    }

    fn feedback_events(
        &self,
        site: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Event>> {
        self.read(|conn| {
            let mut stmt = conn.prepare(
                "SELECT seq, data FROM events
                 WHERE site = ?1 AND at >= ?2 AND at < ?3 AND kind = 'feedback_given'
                 ORDER BY seq LIMIT ?4",
            )?;
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            query_events(&mut stmt, params![site, ts(from), ts(to), limit])
        })
    }

    fn audited_requests(&self, q: &AuditQuery) -> Result<Vec<(u64, RequestRecord)>> {
        self.read(|conn| {
            if !has_table(conn, "audit_requests")? {
                return Ok(Vec::new());
            }
            let sql = format!(
                "SELECT id, at, actor_kind, actor_id, site, method, path, status, client, user_agent
                 FROM audit_requests WHERE at >= ?1 AND at < ?2{} ORDER BY at, id LIMIT ?5",
                audit_filters(q, " AND (site = ?3 OR site IS NULL)", " AND actor_id = ?4")
            );
            let mut stmt = conn.prepare(&sql)?;
            let limit = i64::try_from(q.limit).unwrap_or(i64::MAX);
            let rows =
                stmt.query_map(params![ts(q.from), ts(q.to), q.site, q.user, limit], |r| {
                    let at = r.get::<_, String>(1)?;
                    let at = parse_time(&at).map_err(|e| {
                        rusqlite::Error::FromSqlConversionFailure(1, Type::Text, Box::new(e))
                    })?;
                    Ok((
                        r.get::<_, i64>(0)?,
                        RequestRecord {
                            at,
                            actor_kind: r.get(2)?,
                            actor_id: r.get(3)?,
                            site: r.get(4)?,
                            method: r.get(5)?,
                            path: r.get(6)?,
                            status: r.get(7)?,
                            client: r.get(8)?,
                            user_agent: r.get(9)?,
                        },
                    ))
                })?;
            let mut out = Vec::new();
            for row in rows {
                let (id, record) = row?;
                out.push((id as u64, record));
            }
            Ok(out)
        })
    }

    fn folded_seq(&self, site: &str) -> Result<u64> {
        self.read(|conn| folded(conn, site))
    }

    fn store_day(&self, day: &FoldedDay) -> Result<Option<DayStored>> {
        // The day's issued tickets with their tokens forgotten, read and rewritten before the write
        // transaction (only a folder changes them, and a second folder finds the watermark moved).
        let blanked: Vec<(i64, String)> = self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT seq, data FROM events
                 WHERE seq > ?1 AND seq <= ?2 AND +site = ?3 AND kind = 'ticket_issued' ORDER BY seq",
            )?;
            let rows = stmt.query_map(
                params![day.after as i64, day.through as i64, day.site],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)),
            )?;
            let mut out = Vec::new();
            for row in rows {
                let (seq, data) = row?;
                let mut ev: Event = serde_json::from_str(&data)
                    .map_err(|e| corrupt(format_args!("event {seq}"), e))?;
                if blank::forget_event_token(&mut ev) {
                    let data = serde_json::to_string(&ev)
                        .map_err(|e| corrupt(format_args!("event {seq}"), e))?;
                    out.push((seq, data));
                }
            }
            Ok(out)
        })?;
        self.maintain(|conn| {
            let t0 = Instant::now();
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if folded(&tx, day.site)? != day.after {
                return Ok(None);
            }
            for (rollup, cells) in &day.rollups {
                for (k, c) in cells {
                    upsert_cell(&tx, *rollup, k, c)?;
                }
            }
            {
                let mut stmt = tx.prepare_cached("UPDATE events SET data = ?1 WHERE seq = ?2")?;
                for (seq, data) in &blanked {
                    stmt.execute(params![data, seq])?;
                }
            }
            let snapshots_blanked = blank_snapshots(&tx, day.site, day.through)?;
            tx.execute(
                "INSERT INTO report_folded (site, seq, at) VALUES (?1, ?2, ?3)
                 ON CONFLICT(site) DO UPDATE SET seq = excluded.seq, at = excluded.at",
                params![day.site, day.through as i64, ts(day.at)],
            )?;
            tx.commit()?;
            Ok(Some(DayStored {
                tokens_blanked: blanked.len(),
                snapshots_blanked,
                lock_ms: t0.elapsed().as_millis() as u64,
            }))
        })
    }

    fn rollup_cells(
        &self,
        rollup: Rollup,
        site: &str,
        from: NaiveDate,
        to: NaiveDate,
        f: &mut dyn FnMut(CellKey, Cell),
    ) -> Result<()> {
        self.read(|conn| {
            if !has_table(conn, table(rollup))? {
                return Ok(());
            }
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {}, {MEASURES} FROM {} WHERE site = ?1 AND date >= ?2 AND date <= ?3",
                key_columns(rollup).join(", "),
                table(rollup)
            ))?;
            let rows = stmt.query_map(params![site, from.to_string(), to.to_string()], |r| {
                row_cell(rollup, r)
            })?;
            for row in rows {
                let (k, c) = row?;
                f(k, c);
            }
            Ok(())
        })
    }

    fn days_with_arrivals(
        &self,
        site: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<NaiveDate>> {
        self.read(|conn| {
            if !has_table(conn, "report_days_short")? {
                return Ok(Vec::new());
            }
            let mut stmt = conn.prepare_cached(
                "SELECT DISTINCT date FROM report_days_short
                 WHERE site = ?1 AND date >= ?2 AND date <= ?3 AND arrivals > 0",
            )?;
            let rows = stmt.query_map(params![site, from.to_string(), to.to_string()], |r| {
                r.get::<_, String>(0)
            })?;
            let mut out = Vec::new();
            for d in rows {
                let d = d?;
                out.push(
                    d.parse()
                        .map_err(|e| StoreError::Corrupt(format!("date '{d}': {e}")))?,
                );
            }
            Ok(out)
        })
    }

    fn delete_events(&self, site: &str, before: DateTime<Utc>, through: u64) -> Result<usize> {
        let mut deleted = 0;
        loop {
            // One statement at a time, the connection taken for each.
            let n = self.maintain(|conn| {
                Ok(conn.execute(
                    "DELETE FROM events WHERE seq IN (SELECT seq FROM events
                       WHERE site = ?1 AND at < ?2 AND seq <= ?3 LIMIT ?4)",
                    params![site, ts(before), through as i64, DELETE_BATCH as i64],
                )?)
            })?;
            deleted += n;
            if n < DELETE_BATCH {
                return Ok(deleted);
            }
        }
    }

    fn delete_requests(&self, before: DateTime<Utc>) -> Result<usize> {
        self.maintain(|conn| {
            Ok(conn.execute("DELETE FROM audit_requests WHERE at < ?1", [ts(before)])?)
        })
    }

    fn table_counts(&self) -> Result<HashMap<&'static str, i64>> {
        self.read(|conn| {
            let mut m = HashMap::new();
            for t in [
                "events",
                "snapshots",
                "report_days",
                "report_days_short",
                "report_hours",
                "report_months",
                "report_month_hours",
                "audit_requests",
                "sessions",
                "contacts",
                "notices",
            ] {
                let n: i64 = conn
                    .query_row(&format!("SELECT COUNT(*) FROM {t}"), [], |r| r.get(0))
                    .unwrap_or(-1);
                m.insert(t, n);
            }
            Ok(m)
        })
    }

    fn consumer_seq(&self, name: &str) -> Result<Option<u64>> {
        self.read(|conn| {
            if !has_table(conn, "consumers")? {
                return Ok(None);
            }
            notices::consumer_seq(conn, name)
        })
    }

    fn put_contact(&self, contact: &Contact) -> Result<()> {
        self.notice_conn(|conn| notices::put_contact(conn, contact))
    }

    fn delete_contacts(
        &self,
        site: &str,
        ticket: u64,
        channel: Option<NoticeChannel>,
    ) -> Result<usize> {
        self.notice_conn(|conn| notices::delete_contacts(conn, site, ticket, channel))
    }

    fn contacts(&self) -> Result<Vec<Contact>> {
        self.notice_conn(|conn| notices::contacts(conn))
    }

    fn decide_notices(
        &self,
        new: &[NewNotice],
        ended: &[(String, u64)],
        reached: Option<(&str, u64)>,
    ) -> Result<Vec<Notice>> {
        self.notice_conn(|conn| notices::decide(conn, new, ended, reached))
    }

    fn due_notices(
        &self,
        channel: NoticeChannel,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Notice>> {
        self.notice_conn(|conn| notices::due(conn, channel, now, limit))
    }

    fn next_notice_at(&self, channel: NoticeChannel) -> Result<Option<DateTime<Utc>>> {
        self.notice_conn(|conn| notices::next_at(conn, channel))
    }

    fn finish_notices(&self, outcomes: &[(i64, NoticeOutcome)], now: DateTime<Utc>) -> Result<()> {
        self.write(&self.outcomes, open_outcomes, |conn| {
            notices::finish_many(conn, outcomes, now)
        })
    }

    fn finish_notice(&self, id: i64, outcome: &NoticeOutcome, now: DateTime<Utc>) -> Result<()> {
        self.notice_conn(|conn| notices::finish(conn, id, outcome, now))
    }

    fn notice_counts(
        &self,
        site: &str,
        ticket: u64,
        address_key: &str,
        day: DateTime<Utc>,
    ) -> Result<NoticeCounts> {
        self.notice_conn(|conn| notices::counts(conn, site, ticket, address_key, day))
    }

    fn notices_since(&self, since: DateTime<Utc>) -> Result<u32> {
        self.notice_conn(|conn| notices::since(conn, since))
    }

    fn notices(
        &self,
        site: &str,
        state: NoticeState,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Notice>> {
        self.read(|conn| notices::by_state(conn, site, state, since, limit))
    }

    fn notice_totals(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<(NoticeChannel, NoticeState, u64)>> {
        self.read(|conn| notices::totals(conn, since))
    }

    fn forget_all_addresses(&self, reason: &str, now: DateTime<Utc>) -> Result<(usize, usize)> {
        self.notice_conn(|conn| notices::forget_all(conn, reason, now))
    }

    fn drop_pending_notices(
        &self,
        site: &str,
        ticket: u64,
        channel: Option<NoticeChannel>,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<usize> {
        self.notice_conn(|conn| notices::drop_pending(conn, site, ticket, channel, reason, now))
    }

    fn secret(&self, name: &str, fresh: &[u8]) -> Result<Vec<u8>> {
        self.notice_conn(|conn| notices::secret(conn, name, fresh))
    }

    fn opt_out(&self, address_key: &str, at: DateTime<Utc>) -> Result<()> {
        self.notice_conn(|conn| notices::opt_out(conn, address_key, at))
    }

    fn opted_out(&self, address_key: &str) -> Result<bool> {
        self.notice_conn(|conn| notices::opted_out(conn, address_key))
    }

    fn backup_to(&self, dest: &Path) -> Result<()> {
        let partial = partial_path(dest);
        match std::fs::remove_file(&partial) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(StoreError::Other(Box::new(e)));
            }
            _ => {}
        }
        // A connection of its own: VACUUM INTO reads in one read transaction (WAL: the writer goes on
        // committing meanwhile) and writes a compact copy without the free pages.
        let conn = open_reader(&self.path)?;
        let written = conn
            .execute("VACUUM INTO ?1", [partial.to_string_lossy()])
            .map_err(StoreError::from)
            .and_then(|_| {
                let io = |e: std::io::Error| StoreError::Other(Box::new(e));
                std::fs::File::open(&partial)
                    .and_then(|f| f.sync_all())
                    .map_err(io)?;
                std::fs::rename(&partial, dest).map_err(io)?;
                if let Some(dir) = dest.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::File::open(dir)
                        .and_then(|f| f.sync_all())
                        .map_err(io)?;
                }
                Ok(())
            });
        if written.is_err() {
            let _ = std::fs::remove_file(&partial);
        }
        written
    }

    fn integrity_problems(&self) -> Result<Vec<String>> {
        self.read(|conn| {
            let mut stmt = conn.prepare("PRAGMA integrity_check")?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            let rows: Vec<String> = rows.collect::<std::result::Result<_, _>>()?;
            Ok(rows.into_iter().filter(|r| r != "ok").collect())
        })
    }

    fn snapshots(&self) -> Result<Vec<(u64, State)>> {
        self.read(|conn| {
            let mut stmt = conn.prepare("SELECT seq, state FROM snapshots ORDER BY seq")?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
            let mut out = Vec::new();
            for row in rows {
                let (seq, text) = row?;
                let state = serde_json::from_str(&text)
                    .map_err(|e| corrupt(format_args!("snapshot {seq}"), e))?;
                out.push((seq as u64, state));
            }
            Ok(out)
        })
    }
}

// ---- the rollups' tables ---------------------------------------------------------------------------

/// The measures, in table column order after the key columns.
const MEASURES: &str = "arrivals, called, served, no_shows, cancelled, day_ended, transfers, pass_ons,
    wait_sum, within_target, service_sum, open_secs, busy_secs, site_open_secs, wait_dist, service_dist,
    feedback, feedback_sum";

/// The table of a rollup.
fn table(rollup: Rollup) -> &'static str {
    match rollup {
        Rollup::Days => "report_days",
        Rollup::DaysShort => "report_days_short",
        Rollup::Hours => "report_hours",
        Rollup::Months => "report_months",
        Rollup::MonthHours => "report_month_hours",
    }
}

/// Key columns in table order: site, date, [hour], service, [counter, staff], unit.
fn key_columns(rollup: Rollup) -> Vec<&'static str> {
    let mut k = vec!["site", "date"];
    if rollup.has_hour() {
        k.push("hour");
    }
    k.push("service");
    if rollup.has_people() {
        k.extend(["counter", "staff"]);
    }
    k.push("unit");
    k
}

fn key_values(rollup: Rollup, k: &CellKey) -> Vec<rusqlite::types::Value> {
    let mut v: Vec<rusqlite::types::Value> = vec![k.site.clone().into(), k.date.to_string().into()];
    if rollup.has_hour() {
        v.push((k.hour as i64).into());
    }
    v.push(k.service.clone().into());
    if rollup.has_people() {
        v.push(k.counter.clone().into());
        v.push(k.staff.clone().into());
    }
    v.push(k.unit.clone().into());
    v
}

fn upsert_cell(tx: &Connection, rollup: Rollup, k: &CellKey, c: &Cell) -> Result<()> {
    let mut c = c.clone();
    if let Some(old) = read_cell(tx, rollup, k)? {
        c.merge(&old);
    }
    let keys = key_columns(rollup);
    let n = keys.len() + 18;
    let marks: Vec<String> = (1..=n).map(|i| format!("?{i}")).collect();
    let mut stmt = tx.prepare_cached(&format!(
        "INSERT OR REPLACE INTO {} ({}, {MEASURES}) VALUES ({})",
        table(rollup),
        keys.join(", "),
        marks.join(", ")
    ))?;
    let mut values = key_values(rollup, k);
    for v in [
        c.arrivals,
        c.called,
        c.served,
        c.no_shows,
        c.cancelled,
        c.day_ended,
        c.transfers,
        c.pass_ons,
        c.wait_sum,
        c.within_target,
        c.service_sum,
        c.open_secs,
        c.busy_secs,
        c.site_open_secs,
    ] {
        values.push(v.into());
    }
    values.push(c.wait.encode().into());
    values.push(c.service.encode().into());
    values.push(c.feedback.into());
    values.push(c.feedback_sum.into());
    stmt.execute(rusqlite::params_from_iter(values))?;
    Ok(())
}

/// A stored row as a cell, read in the rollup's column order.
fn row_cell(rollup: Rollup, r: &rusqlite::Row) -> rusqlite::Result<(CellKey, Cell)> {
    let text = |i: usize| -> rusqlite::Result<String> { Ok(r.get_ref(i)?.as_str()?.to_string()) };
    let date = r.get_ref(1)?.as_str()?;
    let date = date.parse().map_err(|_| {
        rusqlite::Error::InvalidColumnType(1, "date".into(), rusqlite::types::Type::Text)
    })?;
    let mut i = 2;
    let hour = if rollup.has_hour() {
        i += 1;
        r.get::<_, u8>(2)?
    } else {
        0
    };
    let service = text(i)?;
    i += 1;
    let (counter, staff) = if rollup.has_people() {
        i += 2;
        (text(i - 2)?, text(i - 1)?)
    } else {
        (String::new(), String::new())
    };
    let unit = text(i)?;
    let o = i + 1;
    let key = CellKey {
        site: text(0)?,
        date,
        hour,
        service,
        counter,
        staff,
        unit,
    };
    let blob = |i: usize| -> rusqlite::Result<Dist> {
        Ok(Dist::decode(r.get_ref(i)?.as_blob()?).unwrap_or_default())
    };
    let cell = Cell {
        arrivals: r.get(o)?,
        called: r.get(o + 1)?,
        served: r.get(o + 2)?,
        no_shows: r.get(o + 3)?,
        cancelled: r.get(o + 4)?,
        day_ended: r.get(o + 5)?,
        transfers: r.get(o + 6)?,
        pass_ons: r.get(o + 7)?,
        wait_sum: r.get(o + 8)?,
        within_target: r.get(o + 9)?,
        service_sum: r.get(o + 10)?,
        open_secs: r.get(o + 11)?,
        busy_secs: r.get(o + 12)?,
        site_open_secs: r.get(o + 13)?,
        wait: blob(o + 14)?,
        service: blob(o + 15)?,
        feedback: r.get(o + 16)?,
        feedback_sum: r.get(o + 17)?,
    };
    Ok((key, cell))
}

fn read_cell(conn: &Connection, rollup: Rollup, k: &CellKey) -> Result<Option<Cell>> {
    let keys = key_columns(rollup);
    let cond: Vec<String> = keys
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{c} = ?{}", i + 1))
        .collect();
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {}, {MEASURES} FROM {} WHERE {}",
        keys.join(", "),
        table(rollup),
        cond.join(" AND ")
    ))?;
    Ok(stmt
        .query_row(rusqlite::params_from_iter(key_values(rollup, k)), |r| {
            row_cell(rollup, r)
        })
        .optional()?
        .map(|(_, c)| c))
}
