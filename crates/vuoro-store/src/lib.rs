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
    /// The rights a single sign-on issuer's claims gave (JSON, read by the daemon's auth); None for a user
    /// of the config file, whose rights are the config's.
    pub rights: Option<String>,
    /// When a request last used it, as last stored (None: not since it was opened).
    pub last_used_at: Option<DateTime<Utc>>,
}

/// A device's token, kept as its SHA-256: one enrolled with a one-time code, or the record that a token
/// of the config file was revoked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceToken {
    pub token_sha256: String,
    pub device: String,
    pub source: DeviceTokenSource,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub revoked_at: Option<DateTime<Utc>>,
    pub revoked_by: Option<String>,
    pub last_seen_at: Option<DateTime<Utc>>,
    pub last_seen_from: Option<String>,
}

/// A version of the config's text: the config file's as read at a start, or one changed through the
/// admin console or API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigVersion {
    pub version: u64,
    pub text: String,
    pub sha256: String,
    /// `file`, `api` or `console`.
    pub source: String,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
}

/// A device token's use: which token, whose, when and from which address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceSeen {
    pub token_sha256: String,
    pub device: String,
    pub at: DateTime<Utc>,
    pub from: String,
}

/// Where a device token came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceTokenSource {
    /// Handed to the device when it entered a one-time enrolment code.
    Enrolled,
    /// The config file's `token_sha256` (kept here only once it is revoked).
    Config,
}

impl DeviceTokenSource {
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceTokenSource::Enrolled => "enrolled",
            DeviceTokenSource::Config => "config",
        }
    }
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

/// How a customer asked to be told: an SMS number, an e-mail address, or a browser's push subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NoticeChannel {
    Sms,
    Email,
    Push,
}

impl NoticeChannel {
    pub const ALL: [NoticeChannel; 3] = [
        NoticeChannel::Sms,
        NoticeChannel::Email,
        NoticeChannel::Push,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NoticeChannel::Sms => "sms",
            NoticeChannel::Email => "email",
            NoticeChannel::Push => "push",
        }
    }

    pub fn parse(s: &str) -> Option<NoticeChannel> {
        NoticeChannel::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// A ticket's contact for notices: kept only while the ticket lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    pub site: String,
    pub ticket: u64,
    pub channel: NoticeChannel,
    /// The number (E.164), the e-mail address or the push subscription (JSON).
    pub address: String,
    /// A keyed hash of the address, for the per-address limits and the opt-outs (the address itself is
    /// forgotten when the ticket ends).
    pub address_key: String,
    pub created_at: DateTime<Utc>,
}

/// A notice decided and not yet in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNotice {
    /// Unique per notice: the same decision made again (after a restart) is the same key, stored once.
    pub key: String,
    pub site: String,
    pub ticket: u64,
    /// `near`, `called`, `closed`.
    pub kind: String,
    /// The ticket's number (as printed).
    pub number: String,
    pub channel: NoticeChannel,
    pub address: String,
    pub address_key: String,
    pub lang: String,
    pub text: String,
    pub at: DateTime<Utc>,
    /// Stored as dropped, with this reason, instead of pending (over a limit, or opted out).
    pub dropped: Option<String>,
}

/// Where a notice is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeState {
    /// Waiting to be sent (again at `next_at`).
    Pending,
    Sent,
    /// Given up after its retries, or refused by the provider.
    Failed,
    /// Not sent: too late to matter, or over a limit.
    Dropped,
}

impl NoticeState {
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeState::Pending => "pending",
            NoticeState::Sent => "sent",
            NoticeState::Failed => "failed",
            NoticeState::Dropped => "dropped",
        }
    }

    pub fn parse(s: &str) -> Option<NoticeState> {
        [
            NoticeState::Pending,
            NoticeState::Sent,
            NoticeState::Failed,
            NoticeState::Dropped,
        ]
        .into_iter()
        .find(|c| c.as_str() == s)
    }
}

/// A notice in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub id: i64,
    pub key: String,
    pub site: String,
    pub ticket: u64,
    pub kind: String,
    pub number: String,
    pub channel: NoticeChannel,
    /// None once the notice has ended (sent, failed or dropped): the address is forgotten then.
    pub address: Option<String>,
    pub lang: String,
    pub text: String,
    pub state: NoticeState,
    pub attempts: u32,
    pub next_at: DateTime<Utc>,
    /// Why it failed, was dropped, or was last put off.
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub done_at: Option<DateTime<Utc>>,
}

/// What became of a sending attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoticeOutcome {
    Sent,
    /// Try again at `at` (a provider busy, down or slow).
    Retry {
        at: DateTime<Utc>,
        reason: String,
    },
    Failed {
        reason: String,
    },
    Dropped {
        reason: String,
    },
}

/// Notices counted for the limits: not dropped ones (decided, sent or pending).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NoticeCounts {
    /// Of this ticket, ever.
    pub ticket: u32,
    /// To this address since the day began.
    pub address_today: u32,
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

    /// Deletes every session of `username`; how many.
    fn delete_user_sessions(&self, username: &str) -> Result<usize>;

    /// Records when sessions were last used: (token hash, time).
    fn sessions_used(&self, used: &[(String, DateTime<Utc>)]) -> Result<()>;

    // ---- the config's versions ----

    /// Stores a new version of the config's text (its `version` is ignored); answers its number.
    fn add_config_version(&self, v: &ConfigVersion) -> Result<u64>;

    /// The newest version, or the newest of `source` when given.
    fn latest_config(&self, source: Option<&str>) -> Result<Option<ConfigVersion>>;

    /// One version.
    fn config_version(&self, version: u64) -> Result<Option<ConfigVersion>>;

    /// The newest `limit` versions, newest first, without their texts (`text` empty).
    fn config_versions(&self, limit: usize) -> Result<Vec<ConfigVersion>>;

    // ---- devices ----

    /// Stores a one-time enrolment code for `device` (its SHA-256), valid until `expires_at`. Earlier codes
    /// of the same device stop working.
    fn create_enrol_code(
        &self,
        code_sha256: &str,
        device: &str,
        by: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<()>;

    /// Takes a one-time code: when it is known and not expired at `token.created_at`, deletes it and
    /// stores `token` for the code's device, in one transaction, and answers the device; else None and
    /// nothing changes. With `device`, a code for another device is refused too (and kept). Expired codes
    /// are deleted on the way.
    fn enrol(
        &self,
        code_sha256: &str,
        device: Option<&str>,
        token: &DeviceToken,
    ) -> Result<Option<String>>;

    /// Every device token kept (enrolled ones, revoked ones).
    fn device_tokens(&self) -> Result<Vec<DeviceToken>>;

    /// Revokes every token of `device`: the enrolled ones, and `config_token` (the config file's hash)
    /// when given, which is recorded as revoked. How many tokens it revoked.
    fn revoke_device(
        &self,
        device: &str,
        config_token: Option<&str>,
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<usize>;

    /// Records when and from where tokens were last used.
    fn devices_seen(&self, seen: &[DeviceSeen]) -> Result<()>;

    // ---- the audit trail ----

    /// Stores the records in one transaction.
    fn record_requests(&self, records: &[RequestRecord]) -> Result<()>;

    /// Events caused by a user or a device (`actor.kind`), matching the query, by time then seq.
    fn audited_events(&self, q: &AuditQuery) -> Result<Vec<Event>>;

    /// A site's `feedback_given` events with `from <= at < to` still in the log (ticket-level detail,
    /// kept for the retention period), by seq, at most `limit`.
    fn feedback_events(
        &self,
        site: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Event>>;

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

    // ---- notices: contacts, the outbox, consumers' progress ----

    /// The last seq the post-commit consumer `name` recorded, None when it never did.
    fn consumer_seq(&self, name: &str) -> Result<Option<u64>>;

    /// Stores a ticket's contact for one channel, replacing the one it had.
    fn put_contact(&self, contact: &Contact) -> Result<()>;

    /// Forgets a ticket's contacts (of one channel, or all); how many there were.
    fn delete_contacts(
        &self,
        site: &str,
        ticket: u64,
        channel: Option<NoticeChannel>,
    ) -> Result<usize>;

    /// Every stored contact (read at start).
    fn contacts(&self) -> Result<Vec<Contact>>;

    /// In one transaction: stores the notices whose key is new (a key already stored is left as it is),
    /// forgets the contacts of the tickets in `ended`, and, with `reached`, records that the consumer of
    /// that name has handled every event up to that seq. Returns the notices stored.
    fn decide_notices(
        &self,
        notices: &[NewNotice],
        ended: &[(String, u64)],
        reached: Option<(&str, u64)>,
    ) -> Result<Vec<Notice>>;

    /// Pending notices of `channel` due by `now`, oldest first, at most `limit`.
    fn due_notices(
        &self,
        channel: NoticeChannel,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Notice>>;

    /// The earliest `next_at` of a pending notice of `channel`.
    fn next_notice_at(&self, channel: NoticeChannel) -> Result<Option<DateTime<Utc>>>;

    /// Records what became of an attempt to send notice `id`. A notice that ends (sent, failed, dropped)
    /// forgets its address.
    fn finish_notice(&self, id: i64, outcome: &NoticeOutcome, now: DateTime<Utc>) -> Result<()>;

    /// Records several attempts' outcomes in one transaction (see `finish_notice`); one for a notice that
    /// is no longer pending is skipped. Written without waiting for the disk (SQLite `synchronous=NORMAL`):
    /// a power cut may lose the last outcomes, and those notices are then sent again under the same
    /// idempotency key; a crash of the daemon alone loses nothing.
    fn finish_notices(&self, outcomes: &[(i64, NoticeOutcome)], now: DateTime<Utc>) -> Result<()>;

    /// The counts the per-ticket and per-address limits need, in a day that began at `day`.
    fn notice_counts(
        &self,
        site: &str,
        ticket: u64,
        address_key: &str,
        day: DateTime<Utc>,
    ) -> Result<NoticeCounts>;

    /// Notices decided since `since`, everywhere, dropped ones not counted (the monthly cap).
    fn notices_since(&self, since: DateTime<Utc>) -> Result<u32>;

    /// A site's notices of one state since `since`, newest first, at most `limit`.
    fn notices(
        &self,
        site: &str,
        state: NoticeState,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Notice>>;

    /// Notices by state since `since`, everywhere (for /metrics).
    fn notice_totals(&self, since: DateTime<Utc>)
    -> Result<Vec<(NoticeChannel, NoticeState, u64)>>;

    /// Forgets every contact and drops every pending notice with `reason` (notices switched off): no
    /// address is left. Returns (contacts, notices) forgotten.
    fn forget_all_addresses(&self, reason: &str, now: DateTime<Utc>) -> Result<(usize, usize)>;

    /// Drops a ticket's pending notices (of one channel, or all) with `reason`, forgetting their
    /// addresses. Returns how many.
    fn drop_pending_notices(
        &self,
        site: &str,
        ticket: u64,
        channel: Option<NoticeChannel>,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<usize>;

    /// The deployment's secret `name`: the stored one, or `fresh`, stored now, when there is none yet (in
    /// the database, so that a backup carries it: a restored hall keeps its keys).
    fn secret(&self, name: &str, fresh: &[u8]) -> Result<Vec<u8>>;

    /// Records that the address behind `address_key` asked for no more notices.
    fn opt_out(&self, address_key: &str, at: DateTime<Utc>) -> Result<()>;

    /// Whether the address behind `address_key` asked for no more notices.
    fn opted_out(&self, address_key: &str) -> Result<bool>;

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
