//! The reports' side of the store, through `vuoro_store::Database` only: folding complete days of the event
//! log into the rollups (see `cells::Rollup`), reading cells back (plus the not yet folded tail, computed
//! on the fly), the retention purge and the audit trail.
//!
//! Folding works per site and per *day*: the events from one `day_started` (or the start of the log) up to
//! the next. A day is folded only once it is over (its next `day_started` is committed); the store writes
//! its rollups, the new watermark and the day's blanked ticket tokens in one transaction
//! (`Database::store_day`). So every event is either folded exactly once or in the tail, and a report is
//! always `stored cells + facts of the tail`. The daemon's writer is not involved: it only appends events.

use std::collections::HashSet;

use chrono::{DateTime, Datelike, Duration, NaiveDate, SecondsFormat, TimeZone, Utc};
use serde_json::{Value, json};
use vuoro_engine::config::Hall;
use vuoro_store::{AuditQuery, Database, FoldedDay, StoreError};

use crate::cells::{Cell, CellKey, Cells, Rollup, SiteInfo, add_facts};
use crate::facts::{Folder, facts_for};
use crate::report::{Group, Query, Table, build};

pub type Result<T> = std::result::Result<T, StoreError>;

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
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
pub fn fold(db: &dyn Database, cfg: &Hall) -> Result<FoldStats> {
    let mut stats = FoldStats::default();
    for site in db.sites_with_events()? {
        let wm = db.folded_seq(&site)?;
        // The day that starts right after the watermark (with its own day_started) is not over.
        let mut day_starts = db.day_starts(&site, wm + 1)?;
        // A site no longer configured gets no more events: its last day is complete as it is.
        if cfg.site(&site).is_none() {
            let last = db.site_last_seq(&site)?;
            if last > wm {
                day_starts.push(last + 1);
            }
        }
        let mut from = wm;
        for d in day_starts {
            let s = fold_day(db, cfg, &site, from, d)?;
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
/// `before - 1`. Computed here; written by the store in one short transaction, which first checks that
/// nobody folded the day meanwhile.
fn fold_day(
    db: &dyn Database,
    cfg: &Hall,
    site: &str,
    after: u64,
    before: u64,
) -> Result<FoldStats> {
    let events = db.site_events(site, after, before)?;
    let facts = facts_for(&events, None);
    let mut cells = Cells::new();
    add_facts(&mut cells, &facts, &SiteInfo::new(cfg));
    let rollups: Vec<(Rollup, Cells)> = Rollup::ALL.iter().map(|r| (*r, r.of(&cells))).collect();
    let stored = rollups.iter().map(|(_, c)| c.len()).sum();
    let day = FoldedDay {
        site,
        after,
        through: before - 1,
        at: events.last().map_or_else(Utc::now, |e| e.at),
        rollups,
    };
    let Some(done) = db.store_day(&day)? else {
        // Another process folded it first.
        return Ok(FoldStats::default());
    };
    Ok(FoldStats {
        days: 1,
        events: events.len(),
        cells: stored,
        tokens_blanked: done.tokens_blanked,
        lock_ms: done.lock_ms,
    })
}

/// Stored cells of a site between two local dates (inclusive; for the monthly forms, months whose
/// first day is in the range), in the given rollup.
pub fn stored_cells(
    db: &dyn Database,
    rollup: Rollup,
    site: &str,
    from: NaiveDate,
    to: NaiveDate,
    mut f: impl FnMut(CellKey, Cell),
) -> Result<()> {
    db.rollup_cells(rollup, site, from, to, &mut f)
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
pub fn tail_cells(db: &dyn Database, cfg: &Hall, site: &str, now: DateTime<Utc>) -> Result<Cells> {
    let wm = db.folded_seq(site)?;
    let events = db.site_events(site, wm, u64::MAX)?;
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
pub fn report(db: &dyn Database, cfg: &Hall, q: &Query, now: DateTime<Utc>) -> Result<Table> {
    report_with_tail(db, cfg, q, |site| {
        // The tail only matters when the range reaches the days not folded yet.
        match first_tail_date(db, cfg, site)? {
            Some(d) if d <= q.to => tail_cells(db, cfg, site, now),
            _ => Ok(Cells::new()),
        }
    })
}

/// A report whose tail (hourly cells of what is not folded) comes from `tail`, e.g. a cache.
pub fn report_with_tail(
    db: &dyn Database,
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
            stored_cells(db, *rollup, site, *from, *to, |k, c| all.push((k, c)))?;
        }
        let t = tail(site)?;
        if q.group == Group::Hour {
            // Days with arrivals, for the busiest hours' "per day".
            for d in db.days_with_arrivals(site, q.from, q.to)? {
                open_days.insert((site.clone(), d));
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
fn first_tail_date(db: &dyn Database, cfg: &Hall, site: &str) -> Result<Option<NaiveDate>> {
    let wm = db.folded_seq(site)?;
    let tz = SiteInfo::new(cfg).tz(site);
    Ok(db
        .first_event_at(site, wm)?
        .map(|a| a.with_timezone(&tz).date_naive()))
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
    db: &dyn Database,
    cfg: &Hall,
    now: DateTime<Utc>,
    retention_days: u32,
) -> Result<PurgeStats> {
    let mut stats = PurgeStats {
        fold: fold(db, cfg)?,
        ..PurgeStats::default()
    };
    let info = SiteInfo::new(cfg);
    match db.oldest_snapshot()? {
        None => stats.no_snapshot = true,
        Some(snap) => {
            for site in db.sites_with_events()? {
                let cut = cutoff(&info.tz(&site), now, retention_days);
                stats.cutoffs.push((site.clone(), cut));
                // Folded, and before the oldest kept snapshot.
                let Some(before_snapshot) = snap.checked_sub(1) else {
                    continue;
                };
                let bound = db.folded_seq(&site)?.min(before_snapshot);
                stats.events_deleted += db.delete_events(&site, cut, bound)?;
            }
        }
    }
    stats.requests_deleted = db.delete_requests(now - Duration::days(retention_days as i64))?;
    Ok(stats)
}

// ---- audit trail ---------------------------------------------------------------------------------

/// Staff and device actions (events whose actor is a user or a device) and audited requests, oldest
/// first. Ticket tokens and idempotency keys are left out. The bool: more matched than `q.limit`.
pub fn audit(db: &dyn Database, q: &AuditQuery) -> Result<(Vec<Value>, bool)> {
    let one_more = AuditQuery {
        limit: q.limit + 1,
        ..q.clone()
    };
    let mut out: Vec<(String, u64, Value)> = Vec::new();
    for ev in db.audited_events(&one_more)? {
        let at = ts(ev.at);
        let mut details = serde_json::to_value(&ev)
            .map_err(|e| StoreError::Corrupt(format!("event {}: {e}", ev.seq)))?;
        if let Some(o) = details.as_object_mut() {
            for k in ["seq", "at", "site", "actor", "kind", "token", "idempotency"] {
                o.remove(k);
            }
        }
        out.push((
            at.clone(),
            ev.seq,
            json!({"source": "event", "seq": ev.seq, "at": at, "site": ev.site,
                   "action": ev.kind.name(), "actor": ev.actor, "details": details}),
        ));
    }
    for (id, r) in db.audited_requests(&one_more)? {
        let at = ts(r.at);
        out.push((
            at.clone(),
            id,
            json!({"source": "request", "at": at, "site": r.site,
                   "action": format!("{} {}", r.method, r.path), "status": r.status,
                   "actor": {"kind": r.actor_kind, "id": r.actor_id}, "client": r.client,
                   "user_agent": r.user_agent}),
        ));
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
