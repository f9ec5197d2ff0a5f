//! Reports in the SQLite file: folding complete days of the event log into the `report_*` tables (the
//! rollups of the hourly cells, see `cells::Rollup`), reading cells
//! back (plus the not yet folded tail, computed on the fly), the retention purge and the audit trail.
//!
//! Folding works per site and per *day*: the events from one `day_started` (or the start of the log) up to
//! the next. A day is folded only once it is over (its next `day_started` is committed), in one
//! transaction that also writes the new watermark (`report_folded.seq`) and blanks the day's ticket
//! tokens. So every event is either folded exactly once or in the tail, and a report is always
//! `stored cells + facts of the tail`. The daemon's writer is not involved: it only appends events.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Datelike, Duration, NaiveDate, SecondsFormat, TimeZone, Utc};
pub use rusqlite::Connection;
use rusqlite::{OpenFlags, OptionalExtension, params};
use serde_json::{Value, json};
use vuoro_engine::Event;
use vuoro_engine::config::Hall;

use crate::cells::{Cell, CellKey, Cells, Dist, Rollup, SiteInfo, add_facts};
use crate::facts::{Folder, facts_for};
use crate::report::{Group, Query, Table, build};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("stored data is not readable: {0}")]
    Corrupt(String),
}

pub type Result<T> = std::result::Result<T, Error>;

/// Event rows deleted per statement, so that the daemon's writer never waits long for the lock.
const DELETE_BATCH: usize = 5_000;

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A read-write connection for folding, purging and the audit trail. The schema must be current (the
/// daemon's store migrates it on start; `vuoro_store::open` does too).
pub fn open_rw(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(StdDuration::from_secs(10))?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    // Freed space is zeroed, so purged rows and blanked tokens do not linger in the file.
    conn.pragma_update(None, "secure_delete", "ON")?;
    Ok(conn)
}

/// A read-only connection for reports (`vuoro report` on a live database is safe).
pub fn open_ro(path: &Path) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(StdDuration::from_secs(10))?;
    Ok(conn)
}

fn has_report_tables(conn: &Connection) -> Result<bool> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'report_month_hours'",
            [],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// How far a site's log is folded: events up to this seq are in the stored rollups.
pub fn folded_seq(conn: &Connection, site: &str) -> Result<u64> {
    if !has_report_tables(conn)? {
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

/// Every site that has events.
fn sites_with_events(conn: &Connection) -> Result<Vec<String>> {
    let mut stmt = conn.prepare("SELECT DISTINCT site FROM events")?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}

/// A site's events after `after`, in order.
pub fn site_events_after(conn: &Connection, site: &str, after: u64) -> Result<Vec<Event>> {
    site_events(conn, site, after, u64::MAX)
}

/// A site's events with `after < seq < before`, in order. (`+site` keeps SQLite on the seq range
/// instead of the whole site's index.)
fn site_events(conn: &Connection, site: &str, after: u64, before: u64) -> Result<Vec<Event>> {
    let mut stmt = conn.prepare_cached(
        "SELECT data FROM events WHERE seq > ?1 AND seq < ?2 AND +site = ?3 ORDER BY seq",
    )?;
    let before = i64::try_from(before).unwrap_or(i64::MAX);
    let rows = stmt.query_map(params![after as i64, before, site], |r| {
        r.get::<_, String>(0)
    })?;
    let mut out = Vec::new();
    for row in rows {
        out.push(serde_json::from_str(&row?).map_err(|e| Error::Corrupt(format!("event: {e}")))?);
    }
    Ok(out)
}

/// What a fold did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FoldStats {
    pub days: usize,
    pub events: usize,
    pub cells: usize,
    pub tokens_blanked: usize,
    /// The longest write transaction, in milliseconds (the daemon's writer may wait that long).
    pub lock_ms: u64,
}

/// Folds every complete day not folded yet, one transaction per site and day.
pub fn fold(conn: &mut Connection, cfg: &Hall) -> Result<FoldStats> {
    let mut stats = FoldStats::default();
    for site in sites_with_events(conn)? {
        let wm = folded_seq(conn, &site)?;
        let mut day_starts: Vec<u64> = {
            let mut stmt = conn.prepare_cached(
                "SELECT seq FROM events WHERE seq > ?1 AND +site = ?2 AND kind = 'day_started' ORDER BY seq",
            )?;
            // The day that starts right after the watermark (with its own day_started) is not over.
            let rows = stmt.query_map(params![wm as i64 + 1, site], |r| r.get::<_, i64>(0))?;
            rows.map(|r| r.map(|x| x as u64))
                .collect::<std::result::Result<_, _>>()?
        };
        // A site no longer configured gets no more events: its last day is complete as it is.
        if cfg.site(&site).is_none() {
            let last: i64 = conn.query_row(
                "SELECT COALESCE(MAX(seq), 0) FROM events WHERE site = ?1",
                [&site],
                |r| r.get(0),
            )?;
            if last as u64 > wm {
                day_starts.push(last as u64 + 1);
            }
        }
        let mut from = wm;
        for d in day_starts {
            let s = fold_day(conn, cfg, &site, from, d)?;
            stats.days += s.days;
            stats.events += s.events;
            stats.cells += s.cells;
            stats.tokens_blanked += s.tokens_blanked;
            stats.lock_ms = stats.lock_ms.max(s.lock_ms);
            from = d - 1;
        }
    }
    Ok(stats)
}

/// Folds the site's events `after < seq < before` (one complete day) and moves the watermark to
/// `before - 1`. Computed outside the write transaction; written in one short one, which first checks
/// that nobody folded the day meanwhile.
fn fold_day(
    conn: &mut Connection,
    cfg: &Hall,
    site: &str,
    after: u64,
    before: u64,
) -> Result<FoldStats> {
    let events = site_events(conn, site, after, before)?;
    let facts = facts_for(&events, None);
    let mut cells = Cells::new();
    add_facts(&mut cells, &facts, &SiteInfo::new(cfg));
    let issued: Vec<u64> = events
        .iter()
        .filter(|e| matches!(e.kind, vuoro_engine::EventKind::TicketIssued { .. }))
        .map(|e| e.seq)
        .collect();
    let last_at = events.last().map_or_else(Utc::now, |e| e.at);
    let t0 = std::time::Instant::now();
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let now_wm: u64 = tx
        .query_row(
            "SELECT seq FROM report_folded WHERE site = ?1",
            [site],
            |r| r.get::<_, i64>(0),
        )
        .optional()?
        .unwrap_or(0) as u64;
    if now_wm != after {
        // Another process folded it first.
        return Ok(FoldStats::default());
    }
    let mut stored = 0;
    for rollup in Rollup::ALL {
        let rows = rollup.of(&cells);
        stored += rows.len();
        for (k, c) in &rows {
            upsert_cell(&tx, rollup, k, c)?;
        }
    }
    let mut blanked = 0;
    {
        let mut stmt = tx.prepare_cached(
            "UPDATE events SET data = json_set(data, '$.token', '', '$.idempotency', NULL)
             WHERE seq = ?1 AND json_extract(data, '$.token') <> ''",
        )?;
        for seq in &issued {
            blanked += stmt.execute([*seq as i64])?;
        }
    }
    blank_snapshot_tokens(&tx, site, before - 1)?;
    tx.execute(
        "INSERT INTO report_folded (site, seq, at) VALUES (?1, ?2, ?3)
         ON CONFLICT(site) DO UPDATE SET seq = excluded.seq, at = excluded.at",
        params![site, (before - 1) as i64, ts(last_at)],
    )?;
    tx.commit()?;
    Ok(FoldStats {
        days: 1,
        events: events.len(),
        cells: stored,
        tokens_blanked: blanked,
        lock_ms: t0.elapsed().as_millis() as u64,
    })
}

/// The measures, in table column order after the key columns.
const MEASURES: &str = "arrivals, called, served, no_shows, cancelled, day_ended, transfers, pass_ons,
    wait_sum, within_target, service_sum, open_secs, busy_secs, site_open_secs, wait_dist, service_dist";

impl Rollup {
    fn table(self) -> &'static str {
        match self {
            Rollup::Days => "report_days",
            Rollup::DaysShort => "report_days_short",
            Rollup::Hours => "report_hours",
            Rollup::Months => "report_months",
            Rollup::MonthHours => "report_month_hours",
        }
    }
    /// Key columns in table order: site, date, [hour], service, [counter, staff], unit.
    fn key_columns(self) -> Vec<&'static str> {
        let mut k = vec!["site", "date"];
        if self.has_hour() {
            k.push("hour");
        }
        k.push("service");
        if self.has_people() {
            k.extend(["counter", "staff"]);
        }
        k.push("unit");
        k
    }
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
    let keys = rollup.key_columns();
    let n = keys.len() + 16;
    let marks: Vec<String> = (1..=n).map(|i| format!("?{i}")).collect();
    let mut stmt = tx.prepare_cached(&format!(
        "INSERT OR REPLACE INTO {} ({}, {MEASURES}) VALUES ({})",
        rollup.table(),
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
    };
    Ok((key, cell))
}

fn read_cell(conn: &Connection, rollup: Rollup, k: &CellKey) -> Result<Option<Cell>> {
    let keys = rollup.key_columns();
    let cond: Vec<String> = keys
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{c} = ?{}", i + 1))
        .collect();
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {}, {MEASURES} FROM {} WHERE {}",
        keys.join(", "),
        rollup.table(),
        cond.join(" AND ")
    ))?;
    Ok(stmt
        .query_row(rusqlite::params_from_iter(key_values(rollup, k)), |r| {
            row_cell(rollup, r)
        })
        .optional()?
        .map(|(_, c)| c))
}

/// Stored cells of a site between two local dates (inclusive; for the monthly forms, months whose
/// first day is in the range), in the given rollup.
pub fn stored_cells(
    conn: &Connection,
    rollup: Rollup,
    site: &str,
    from: NaiveDate,
    to: NaiveDate,
    mut f: impl FnMut(CellKey, Cell),
) -> Result<()> {
    if !has_report_tables(conn)? {
        return Ok(());
    }
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {}, {MEASURES} FROM {} WHERE site = ?1 AND date >= ?2 AND date <= ?3",
        rollup.key_columns().join(", "),
        rollup.table()
    ))?;
    let rows = stmt.query_map(params![site, from.to_string(), to.to_string()], |r| {
        row_cell(rollup, r)
    })?;
    for row in rows {
        let (k, c) = row?;
        f(k, c);
    }
    Ok(())
}

/// Where a report's stored cells come from: whole months from a monthly form where the group does not
/// need days, the rest day by day. (rollup, first date, last date)
pub fn plan(q: &Query) -> Vec<(Rollup, NaiveDate, NaiveDate)> {
    let (daily, monthly) = match q.group {
        Group::Counter | Group::Staff => (Rollup::Days, Some(Rollup::Months)),
        Group::Hour => (Rollup::Hours, Some(Rollup::MonthHours)),
        _ => (Rollup::DaysShort, None),
    };
    let Some(monthly) = monthly else {
        return vec![(daily, q.from, q.to)];
    };
    // Whole months inside [from, to].
    let first_whole = if q.from.day() == 1 {
        q.from
    } else {
        next_month(q.from)
    };
    let after_last_whole = next_month(q.to)
        .pred_opt()
        .filter(|end| *end == q.to)
        .map_or_else(|| q.to.with_day(1).expect("day 1"), |_| next_month(q.to));
    if first_whole >= after_last_whole {
        return vec![(daily, q.from, q.to)];
    }
    let mut out = Vec::new();
    if q.from < first_whole {
        out.push((daily, q.from, first_whole.pred_opt().expect("date")));
    }
    out.push((
        monthly,
        first_whole,
        after_last_whole.pred_opt().expect("date"),
    ));
    if after_last_whole <= q.to {
        out.push((daily, after_last_whole, q.to));
    }
    out
}

fn next_month(d: NaiveDate) -> NaiveDate {
    let first = d.with_day(1).expect("day 1");
    first
        .checked_add_months(chrono::Months::new(1))
        .expect("a later month")
}

/// Hourly cells of what is not folded yet (today, normally), computed from the events, provisional at
/// `now`.
pub fn tail_cells(conn: &Connection, cfg: &Hall, site: &str, now: DateTime<Utc>) -> Result<Cells> {
    let wm = folded_seq(conn, site)?;
    let events = site_events(conn, site, wm, u64::MAX)?;
    let mut cells = Cells::new();
    if events.is_empty() {
        return Ok(cells);
    }
    let mut folder = Folder::default();
    let mut facts = Vec::new();
    for ev in &events {
        folder.push(ev, &mut facts);
    }
    folder.finish_open(now, &mut facts);
    add_facts(&mut cells, &facts, &SiteInfo::new(cfg));
    Ok(cells)
}

/// A report: stored cells of the range plus the tail.
pub fn report(conn: &Connection, cfg: &Hall, q: &Query, now: DateTime<Utc>) -> Result<Table> {
    report_with_tail(conn, cfg, q, |site| {
        // The tail only matters when the range reaches the days not folded yet.
        match first_tail_date(conn, cfg, site)? {
            Some(d) if d <= q.to => tail_cells(conn, cfg, site, now),
            _ => Ok(Cells::new()),
        }
    })
}

/// A report whose tail (hourly cells of what is not folded) comes from `tail`, e.g. a cache.
pub fn report_with_tail(
    conn: &Connection,
    cfg: &Hall,
    q: &Query,
    mut tail: impl FnMut(&str) -> Result<Cells>,
) -> Result<Table> {
    let plan = plan(q);
    let finest = plan[0].0;
    let daily = if finest.monthly() {
        match finest {
            Rollup::Months => Rollup::Days,
            _ => Rollup::Hours,
        }
    } else {
        finest
    };
    let mut all: Vec<(CellKey, Cell)> = Vec::new();
    let mut open_days: HashSet<(String, NaiveDate)> = HashSet::new();
    for site in &q.sites {
        for (rollup, from, to) in &plan {
            stored_cells(conn, *rollup, site, *from, *to, |k, c| all.push((k, c)))?;
        }
        let t = tail(site)?;
        if q.group == Group::Hour {
            // Days with arrivals, for the busiest hours' "per day".
            let mut stmt = conn.prepare_cached(
                "SELECT DISTINCT date FROM report_days_short
                 WHERE site = ?1 AND date >= ?2 AND date <= ?3 AND arrivals > 0",
            )?;
            if has_report_tables(conn)? {
                let rows = stmt
                    .query_map(params![site, q.from.to_string(), q.to.to_string()], |r| {
                        r.get::<_, String>(0)
                    })?;
                for d in rows {
                    if let Ok(d) = d?.parse() {
                        open_days.insert((site.clone(), d));
                    }
                }
            }
            for (k, c) in &t {
                if c.arrivals > 0 && k.date >= q.from && k.date <= q.to {
                    open_days.insert((site.clone(), k.date));
                }
            }
        }
        all.extend(daily.of(&t));
    }
    let open_days = (q.group == Group::Hour).then_some(open_days.len());
    Ok(build(cfg, q, all, open_days))
}

/// The local date of the first event not folded yet, if any.
fn first_tail_date(conn: &Connection, cfg: &Hall, site: &str) -> Result<Option<NaiveDate>> {
    let wm = folded_seq(conn, site)?;
    let at: Option<String> = conn
        .query_row(
            "SELECT at FROM events WHERE seq > ?1 AND +site = ?2 ORDER BY seq LIMIT 1",
            params![wm as i64, site],
            |r| r.get(0),
        )
        .optional()?;
    let tz = SiteInfo::new(cfg).tz(site);
    Ok(at
        .and_then(|a| a.parse::<DateTime<Utc>>().ok())
        .map(|a| a.with_timezone(&tz).date_naive()))
}

/// Blanks the ticket tokens of `site` in snapshots taken up to `seq` (that day is over; a snapshot
/// taken later holds the new day's tickets and is left alone).
fn blank_snapshot_tokens(tx: &Connection, site: &str, seq: u64) -> Result<usize> {
    let snaps: Vec<(i64, String)> = {
        let mut stmt = tx.prepare("SELECT seq, state FROM snapshots WHERE seq <= ?1")?;
        let rows = stmt.query_map([seq as i64], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<std::result::Result<_, _>>()?
    };
    let mut changed = 0;
    for (sseq, state) in snaps {
        let mut v: Value =
            serde_json::from_str(&state).map_err(|e| Error::Corrupt(format!("snapshot: {e}")))?;
        let mut touched = false;
        if let Some(tickets) = v
            .pointer_mut(&format!("/sites/{site}/tickets"))
            .and_then(Value::as_object_mut)
        {
            for t in tickets.values_mut() {
                if t.get("token")
                    .and_then(Value::as_str)
                    .is_some_and(|s| !s.is_empty())
                {
                    t["token"] = json!("");
                    touched = true;
                }
            }
        }
        if let Some(idem) = v
            .pointer_mut(&format!("/sites/{site}/idempotency"))
            .and_then(Value::as_object_mut)
            && !idem.is_empty()
        {
            idem.clear();
            touched = true;
        }
        if touched {
            tx.execute(
                "UPDATE snapshots SET state = ?1 WHERE seq = ?2",
                params![v.to_string(), sseq],
            )?;
            changed += 1;
        }
    }
    Ok(changed)
}

/// What a purge did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PurgeStats {
    pub fold: FoldStats,
    pub events_deleted: usize,
    pub requests_deleted: usize,
    /// Event deletion was skipped: no snapshot yet (start-up replays the whole log then).
    pub no_snapshot: bool,
    /// Per site: events before this instant (local midnight) were eligible.
    pub cutoffs: Vec<(String, DateTime<Utc>)>,
}

/// The first instant whose ticket-level detail is kept: local midnight `retention_days` days before
/// the local date of `now`.
pub fn cutoff(tz: &chrono_tz::Tz, now: DateTime<Utc>, retention_days: u32) -> DateTime<Utc> {
    local_midnight(
        tz,
        now.with_timezone(tz).date_naive() - Duration::days(retention_days as i64),
    )
}

/// The instant a local date begins (the first existing local time of it, across a clock change).
pub fn local_midnight(tz: &chrono_tz::Tz, day: NaiveDate) -> DateTime<Utc> {
    let m = day.and_hms_opt(0, 0, 0).expect("midnight");
    tz.from_local_datetime(&m)
        .earliest()
        .or_else(|| tz.from_local_datetime(&(m + Duration::hours(1))).earliest())
        .map_or_else(|| m.and_utc(), |x| x.with_timezone(&Utc))
}

/// Folds what is complete, then deletes ticket-level detail older than `retention_days` (local days):
/// event rows that are folded and older than every kept snapshot (start-up needs the newest snapshot and
/// every event after it, so nothing at or after the oldest kept snapshot is touched), and audited requests.
pub fn purge(
    conn: &mut Connection,
    cfg: &Hall,
    now: DateTime<Utc>,
    retention_days: u32,
) -> Result<PurgeStats> {
    let mut stats = PurgeStats {
        fold: fold(conn, cfg)?,
        ..PurgeStats::default()
    };
    let oldest_snapshot: Option<i64> =
        conn.query_row("SELECT MIN(seq) FROM snapshots", [], |r| r.get(0))?;
    let info = SiteInfo::new(cfg);
    match oldest_snapshot {
        None => stats.no_snapshot = true,
        Some(snap) => {
            for site in sites_with_events(conn)? {
                let wm = folded_seq(conn, &site)? as i64;
                let bound = wm.min(snap - 1);
                let cut = cutoff(&info.tz(&site), now, retention_days);
                stats.cutoffs.push((site.clone(), cut));
                loop {
                    let n = conn.execute(
                        "DELETE FROM events WHERE seq IN (SELECT seq FROM events
                           WHERE site = ?1 AND at < ?2 AND seq <= ?3 LIMIT ?4)",
                        params![site, ts(cut), bound, DELETE_BATCH as i64],
                    )?;
                    stats.events_deleted += n;
                    if n < DELETE_BATCH {
                        break;
                    }
                }
            }
        }
    }
    let req_cut = now - Duration::days(retention_days as i64);
    stats.requests_deleted =
        conn.execute("DELETE FROM audit_requests WHERE at < ?1", [ts(req_cut)])?;
    Ok(stats)
}

// ---- audit trail ---------------------------------------------------------------------------------

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

pub fn record_request(conn: &Connection, r: &RequestRecord) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO audit_requests (at, actor_kind, actor_id, site, method, path, status, client, user_agent)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
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
    Ok(())
}

#[derive(Debug, Clone)]
pub struct AuditQuery {
    pub site: Option<String>,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub user: Option<String>,
    pub limit: usize,
}

/// Staff and device actions (events whose actor is a user or a device) and audited requests, oldest
/// first. Ticket tokens and idempotency keys are left out. The bool: more matched than `limit`.
pub fn audit(conn: &Connection, q: &AuditQuery) -> Result<(Vec<Value>, bool)> {
    let limit = q.limit as i64 + 1;
    let mut out: Vec<(String, u64, Value)> = Vec::new();
    {
        let mut sql = String::from(
            "SELECT seq, at, site, kind, data FROM events WHERE at >= ?1 AND at < ?2
               AND json_extract(data, '$.actor.kind') IN ('user', 'device')",
        );
        if q.site.is_some() {
            sql.push_str(" AND site = ?3");
        } else {
            sql.push_str(" AND ?3 IS NULL");
        }
        if q.user.is_some() {
            sql.push_str(" AND json_extract(data, '$.actor.id') = ?4");
        } else {
            sql.push_str(" AND ?4 IS NULL");
        }
        sql.push_str(" ORDER BY at, seq LIMIT ?5");
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt.query_map(params![ts(q.from), ts(q.to), q.site, q.user, limit], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
            ))
        })?;
        for row in rows {
            let (seq, at, site, kind, data) = row?;
            let mut d: Value = serde_json::from_str(&data)
                .map_err(|e| Error::Corrupt(format!("event {seq}: {e}")))?;
            let actor = d.get("actor").cloned().unwrap_or(Value::Null);
            if let Some(o) = d.as_object_mut() {
                for k in ["seq", "at", "site", "actor", "kind", "token", "idempotency"] {
                    o.remove(k);
                }
            }
            out.push((
                at.clone(),
                seq as u64,
                json!({"source": "event", "seq": seq, "at": at, "site": site, "action": kind,
                       "actor": actor, "details": d}),
            ));
        }
    }
    if has_report_tables(conn)? {
        let mut sql = String::from(
            "SELECT id, at, actor_kind, actor_id, site, method, path, status, client, user_agent
             FROM audit_requests WHERE at >= ?1 AND at < ?2",
        );
        if q.site.is_some() {
            sql.push_str(" AND (site = ?3 OR site IS NULL)");
        } else {
            sql.push_str(" AND ?3 IS NULL");
        }
        if q.user.is_some() {
            sql.push_str(" AND actor_id = ?4");
        } else {
            sql.push_str(" AND ?4 IS NULL");
        }
        sql.push_str(" ORDER BY at, id LIMIT ?5");
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt.query_map(params![ts(q.from), ts(q.to), q.site, q.user, limit], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, String>(6)?,
                r.get::<_, i64>(7)?,
                r.get::<_, Option<String>>(8)?,
                r.get::<_, Option<String>>(9)?,
            ))
        })?;
        for row in rows {
            let (id, at, kind, actor, site, method, path, status, client, ua) = row?;
            out.push((
                at.clone(),
                id as u64,
                json!({"source": "request", "at": at, "site": site,
                       "action": format!("{method} {path}"), "status": status,
                       "actor": {"kind": kind, "id": actor}, "client": client, "user_agent": ua}),
            ));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    let truncated = out.len() > q.limit;
    out.truncate(q.limit);
    Ok((out.into_iter().map(|x| x.2).collect(), truncated))
}

/// Sites a reader may compare: those whose every unit they may see.
pub fn comparable_sites(cfg: &Hall, units: Option<&HashSet<String>>) -> Vec<String> {
    cfg.sites
        .iter()
        .filter(|s| units.is_none_or(|u| s.units.iter().all(|x| u.contains(x.id.as_str()))))
        .map(|s| s.id.to_string())
        .collect()
}

/// Counts of rows per table, for the measurement command and `vuoro purge`.
pub fn table_counts(conn: &Connection) -> Result<HashMap<&'static str, i64>> {
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
    ] {
        let n: i64 = conn
            .query_row(&format!("SELECT COUNT(*) FROM {t}"), [], |r| r.get(0))
            .unwrap_or(-1);
        m.insert(t, n);
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Group;

    fn q(group: Group, from: &str, to: &str) -> Query {
        Query {
            sites: vec!["s".into()],
            from: from.parse().unwrap(),
            to: to.parse().unwrap(),
            group,
            units: None,
            lang: None,
        }
    }

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn whole_months_come_from_the_monthly_forms_and_the_edges_day_by_day() {
        assert_eq!(
            plan(&q(Group::Staff, "2026-01-15", "2026-03-10")),
            vec![
                (Rollup::Days, d("2026-01-15"), d("2026-01-31")),
                (Rollup::Months, d("2026-02-01"), d("2026-02-28")),
                (Rollup::Days, d("2026-03-01"), d("2026-03-10")),
            ]
        );
        assert_eq!(
            plan(&q(Group::Counter, "2026-01-01", "2026-12-31")),
            vec![(Rollup::Months, d("2026-01-01"), d("2026-12-31"))]
        );
        assert_eq!(
            plan(&q(Group::Hour, "2026-02-01", "2026-02-28")),
            vec![(Rollup::MonthHours, d("2026-02-01"), d("2026-02-28"))]
        );
        assert_eq!(
            plan(&q(Group::Hour, "2026-02-02", "2026-02-28")),
            vec![(Rollup::Hours, d("2026-02-02"), d("2026-02-28"))]
        );
        assert_eq!(
            plan(&q(Group::Service, "2026-01-01", "2026-12-31")),
            vec![(Rollup::DaysShort, d("2026-01-01"), d("2026-12-31"))]
        );
    }
}
