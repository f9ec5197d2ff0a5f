//! Vuoro's durable store, the one owner of the database: every table, every migration and every query are
//! behind the `Database` trait, whose operations speak the engine's and the reports' types. Nothing above
//! it (the daemon, the reports) knows which database it talks to; `open` picks the backend.
//!
//! - `sqlite`: the SQLite backend (WAL with `synchronous=FULL`: a commit that returned is on disk), with
//!   its versioned migrations.
//! - `rollup`: the reports' cells and the five forms they are kept in.
//! - `blank`: forgetting ticket tokens in stored events and snapshots, on the engine's types.
//!
//! The event log has one writer (the daemon's writer thread, which batches many commands into one
//! `append`: one transaction per batch, group commit); start-up loads the newest snapshot and replays only
//! the events after it. The reports fold complete days into the rollups with `store_day`, which also
//! forgets the day's ticket tokens, and purge old detail with `delete_events` and `delete_requests`.
//! `backup_to` copies the whole database while the writer goes on; a database of a newer schema than
//! this program knows is refused (`StoreError::TooNew`) before anything is written to it.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use vuoro_engine::{Event, State};

pub mod blank;
pub mod rollup;
pub mod sqlite;

use rollup::{Cell, CellKey, Cells, Rollup};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// There is no database where one was expected (a read-only open of a missing file).
    #[error("no database at {0}")]
    NotFound(String),
    /// A write on a store opened read-only.
    #[error("the database is open read-only")]
    ReadOnly,
    #[error("stored data is not readable: {0}")]
    Corrupt(String),
    #[error("event {got} does not follow {last}: the log would have a gap")]
    Gap { last: u64, got: u64 },
    /// The database was made by a newer Vuoro. Nothing was written to it.
    #[error(
        "made by a newer Vuoro (schema {found}, this one knows {known}): upgrade Vuoro or restore a backup"
    )]
    TooNew { found: u32, known: u32 },
    /// The backend failed (I/O, a lock held too long, a full disk).
    #[error("database: {0}")]
    Other(#[source] Box<dyn std::error::Error + Send + Sync>),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// Opens (creating if needed) the database at `path`, brings its schema up to date, and returns it
/// behind the trait. The one place that names a backend.
pub fn open(path: &Path) -> Result<Arc<dyn Database>> {
    Ok(Arc::new(sqlite::Sqlite::open(path)?))
}

/// Opens an existing database for reading only: no migration, every write refused (`ReadOnly`). Safe on
/// a database the daemon is writing (`vuoro report`).
pub fn open_read_only(path: &Path) -> Result<Arc<dyn Database>> {
    Ok(Arc::new(sqlite::Sqlite::open_read_only(path)?))
}

/// What start-up needs: the newest snapshot (seq and state), if any, and every event after it.
pub struct Loaded {
    pub snapshot: Option<(u64, State)>,
    pub events: Vec<Event>,
}

/// A staff session. Only a SHA-256 of the session token is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub token_sha256: String,
    pub username: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// A staff request that is not an event (a sign-in, a report download), for the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    pub at: DateTime<Utc>,
    pub actor_kind: String,
    pub actor_id: Option<String>,
    pub site: Option<String>,
    pub method: String,
    /// The path, with any ticket token replaced; the query string only where it holds no secret.
    pub path: String,
    pub status: u16,
    /// The client's address.
    pub client: Option<String>,
    pub user_agent: Option<String>,
}

/// Which audit rows to read: `from <= at < to`, of one site (requests without a site too) and one user
/// if named, oldest first, at most `limit`.
#[derive(Debug, Clone)]
pub struct AuditQuery {
    pub site: Option<String>,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub user: Option<String>,
    pub limit: usize,
}

/// One complete day of a site, folded: the site's events `after < seq <= through` summed into each
/// rollup. `at` is the time of the day's last event.
pub struct FoldedDay<'a> {
    pub site: &'a str,
    pub after: u64,
    pub through: u64,
    pub at: DateTime<Utc>,
    pub rollups: Vec<(Rollup, Cells)>,
}

/// What `store_day` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayStored {
    /// `ticket_issued` events whose token (and idempotency key) was cleared.
    pub tokens_blanked: usize,
    /// Snapshots whose tickets of the site lost their tokens.
    pub snapshots_blanked: usize,
    /// How long the write transaction held the database (the daemon's writer may wait that long).
    pub lock_ms: u64,
}

/// Every table of Vuoro's database and every operation on them, typed. Synchronous: the daemon calls it
/// from its writer thread and from blocking tasks. An implementation is shared (`Arc<dyn Database>`) by
/// the writer, the sign-in path, the reports and the maintenance task, and keeps reads off the writer's
/// way (SQLite: read-only connections of their own).
pub trait Database: Send + Sync {
    // ---- the event log and snapshots ----

    /// The newest snapshot and every event after it, in order.
    fn load(&self) -> Result<Loaded>;

    /// Highest committed seq (0 when empty).
    fn last_seq(&self) -> Result<u64>;

    /// Appends `events` (which must continue the log after `last_seq` without a gap) and optionally a
    /// snapshot (its seq and the state), in one transaction; keeps the two newest snapshots. When this
    /// returns Ok, all of it is durable; when it fails, none of it is stored.
    fn append(
        &self,
        last_seq: u64,
        events: &[Event],
        snapshot: Option<(u64, &State)>,
    ) -> Result<()>;

    /// Up to `limit` events after `seq`, in order.
    fn events_after(&self, seq: u64, limit: usize) -> Result<Vec<Event>>;

    /// A site's events with `after < seq < before`, in order.
    fn site_events(&self, site: &str, after: u64, before: u64) -> Result<Vec<Event>>;

    /// Every site that has events in the log.
    fn sites_with_events(&self) -> Result<Vec<String>>;

    /// The seqs of a site's `day_started` events after `after`, in order.
    fn day_starts(&self, site: &str, after: u64) -> Result<Vec<u64>>;

    /// The seq of a site's last event (0 when it has none).
    fn site_last_seq(&self, site: &str) -> Result<u64>;

    /// When the site's first event after `after` happened, if there is one.
    fn first_event_at(&self, site: &str, after: u64) -> Result<Option<DateTime<Utc>>>;

    /// The seq of the oldest snapshot kept, if any.
    fn oldest_snapshot(&self) -> Result<Option<u64>>;

    // ---- staff sessions ----

    fn create_session(&self, session: &Session) -> Result<()>;

    /// Every session not expired at `now`.
    fn live_sessions(&self, now: DateTime<Utc>) -> Result<Vec<Session>>;

    fn delete_session(&self, token_sha256: &str) -> Result<()>;

    /// Deletes the sessions expired at `now`; how many.
    fn purge_sessions(&self, now: DateTime<Utc>) -> Result<usize>;

    // ---- the audit trail ----

    /// Stores the records in one transaction.
    fn record_requests(&self, records: &[RequestRecord]) -> Result<()>;

    /// Events caused by a user or a device (`actor.kind`), matching the query, by time then seq.
    fn audited_events(&self, q: &AuditQuery) -> Result<Vec<Event>>;

    /// Recorded requests matching the query, by time then id: (id, record).
    fn audited_requests(&self, q: &AuditQuery) -> Result<Vec<(u64, RequestRecord)>>;

    // ---- the reports' rollups ----

    /// How far a site's log is folded: its events up to this seq are in the rollups (0: none).
    fn folded_seq(&self, site: &str) -> Result<u64>;

    /// Stores one folded day in one transaction: adds its cells to the rollups, forgets the tokens of the
    /// site's `ticket_issued` events in the day and of the site's tickets in snapshots taken up to
    /// `through` (a later snapshot holds the next day), and moves the site's watermark to `through`.
    /// None, with nothing written, when the watermark is no longer `after` (another folder was first).
    fn store_day(&self, day: &FoldedDay) -> Result<Option<DayStored>>;

    /// Calls `f` with every stored cell of a site in one rollup between two local dates (inclusive; for
    /// the monthly forms, months whose first day is in the range).
    fn rollup_cells(
        &self,
        rollup: Rollup,
        site: &str,
        from: NaiveDate,
        to: NaiveDate,
        f: &mut dyn FnMut(CellKey, Cell),
    ) -> Result<()>;

    /// The site's dates between `from` and `to` (inclusive) with arrivals, from the rollups.
    fn days_with_arrivals(
        &self,
        site: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<NaiveDate>>;

    // ---- retention ----

    /// Deletes a site's events older than `before` with `seq <= through`, a batch at a time so that the
    /// writer never waits long; how many.
    fn delete_events(&self, site: &str, before: DateTime<Utc>, through: u64) -> Result<usize>;

    /// Deletes audited requests older than `before`; how many.
    fn delete_requests(&self, before: DateTime<Utc>) -> Result<usize>;

    /// Rows per table, for measurements and `vuoro purge`.
    fn table_counts(&self) -> Result<HashMap<&'static str, i64>>;

    // ---- backup and checks ----

    /// Writes a consistent copy of the whole database to `dest` (replacing it) while the writer goes on:
    /// the copy is made from one read transaction, so it holds every commit before it began and none
    /// after, and the writer is not held up. The copy is written beside `dest` and renamed into place
    /// once complete and on disk, so `dest` is never a partial copy.
    fn backup_to(&self, dest: &Path) -> Result<()>;

    /// The backend's own check of the file (SQLite: `PRAGMA integrity_check`): what is wrong, empty when
    /// nothing is.
    fn integrity_problems(&self) -> Result<Vec<String>>;

    /// Every kept snapshot, oldest first.
    fn snapshots(&self) -> Result<Vec<(u64, State)>>;
}

/// The schema version of the database at `path` and the newest this program knows, read without
/// changing the file.
pub fn schema_version(path: &Path) -> Result<(u32, u32)> {
    sqlite::schema_version(path)
}
