//! Aggregates: visit facts summed into cells, one per site, local date, local hour, service, counter and
//! staff member. Cells are what is kept for good after ticket-level detail has been purged; every report is
//! a sum of cells. They hold counts, sums and the distribution of waiting and service times (how many
//! waited N seconds), and nothing that tells one visit from another.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use vuoro_engine::config::Hall;

use crate::facts::{Fact, Outcome};

/// Where a cell's numbers belong. `service`, `counter` and `staff` are "" when they do not apply: an
/// arrival has no counter yet; counter time has no service; the site's open time has neither. `unit` is
/// the service's unit (the counter's for counter time; "" for the site's open time).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CellKey {
    pub site: String,
    pub date: NaiveDate,
    pub hour: u8,
    pub service: String,
    pub counter: String,
    pub staff: String,
    pub unit: String,
}

/// The forms cells are stored in. Each drops what some reports do not need, so that a report over a
/// long range reads few rows: a year of the busy hall is ~1.6 million visits but a few thousand rows in
/// the monthly forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rollup {
    /// Per day, every dimension but the hour (counter and staff reports over part of a month).
    Days,
    /// Per day, service and unit only (service, unit, site and time-series reports).
    DaysShort,
    /// Per day and hour, service and unit only (hour reports over part of a month).
    Hours,
    /// Per month (`date` is its first day), every dimension but the hour.
    Months,
    /// Per month and hour, service and unit only.
    MonthHours,
}

impl Rollup {
    pub const ALL: [Rollup; 5] = [
        Rollup::Days,
        Rollup::DaysShort,
        Rollup::Hours,
        Rollup::Months,
        Rollup::MonthHours,
    ];

    /// The cell keeps its hour.
    pub fn has_hour(self) -> bool {
        matches!(self, Rollup::Hours | Rollup::MonthHours)
    }
    /// The cell keeps its counter and staff member.
    pub fn has_people(self) -> bool {
        matches!(self, Rollup::Days | Rollup::Months)
    }
    pub fn monthly(self) -> bool {
        matches!(self, Rollup::Months | Rollup::MonthHours)
    }

    pub fn key(self, k: &CellKey) -> CellKey {
        CellKey {
            site: k.site.clone(),
            date: if self.monthly() {
                k.date.with_day(1).expect("day 1")
            } else {
                k.date
            },
            hour: if self.has_hour() { k.hour } else { 0 },
            service: k.service.clone(),
            counter: if self.has_people() {
                k.counter.clone()
            } else {
                String::new()
            },
            staff: if self.has_people() {
                k.staff.clone()
            } else {
                String::new()
            },
            unit: k.unit.clone(),
        }
    }

    /// Hourly cells summed into this rollup.
    pub fn of(self, cells: &Cells) -> Cells {
        let mut out = Cells::new();
        for (k, c) in cells {
            out.entry(self.key(k)).or_default().merge(c);
        }
        out
    }
}

/// The numbers of one cell.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cell {
    /// New visits (tickets issued).
    pub arrivals: i64,
    /// Stints called at least once (each has a waiting time).
    pub called: i64,
    /// Stints finished or passed on.
    pub served: i64,
    pub no_shows: i64,
    /// Cancelled by the customer.
    pub cancelled: i64,
    /// Still open when the day ended.
    pub day_ended: i64,
    /// Moved by staff to another queue or counter.
    pub transfers: i64,
    /// Served and passed on to another service in the same visit.
    pub pass_ons: i64,
    pub wait_sum: i64,
    /// Called within the service's `target_wait_minutes`.
    pub within_target: i64,
    pub service_sum: i64,
    /// Counter time: open, and busy (a ticket called or served there).
    pub open_secs: i64,
    pub busy_secs: i64,
    /// The site's time with at least one counter open.
    pub site_open_secs: i64,
    pub wait: Dist,
    pub service: Dist,
}

impl Cell {
    pub fn merge(&mut self, o: &Cell) {
        self.arrivals += o.arrivals;
        self.called += o.called;
        self.served += o.served;
        self.no_shows += o.no_shows;
        self.cancelled += o.cancelled;
        self.day_ended += o.day_ended;
        self.transfers += o.transfers;
        self.pass_ons += o.pass_ons;
        self.wait_sum += o.wait_sum;
        self.within_target += o.within_target;
        self.service_sum += o.service_sum;
        self.open_secs += o.open_secs;
        self.busy_secs += o.busy_secs;
        self.site_open_secs += o.site_open_secs;
        self.wait.merge(&o.wait);
        self.service.merge(&o.service);
    }
}

/// A distribution of whole seconds: sorted (value, count) pairs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dist(pub Vec<(u32, u32)>);

impl Dist {
    pub fn add(&mut self, secs: i64) {
        let v = secs.clamp(0, u32::MAX as i64) as u32;
        match self.0.binary_search_by_key(&v, |p| p.0) {
            Ok(i) => self.0[i].1 += 1,
            Err(i) => self.0.insert(i, (v, 1)),
        }
    }

    pub fn merge(&mut self, o: &Dist) {
        if o.0.is_empty() {
            return;
        }
        if self.0.is_empty() {
            self.0 = o.0.clone();
            return;
        }
        let mut out = Vec::with_capacity(self.0.len() + o.0.len());
        let (mut i, mut j) = (0, 0);
        while i < self.0.len() || j < o.0.len() {
            match (self.0.get(i), o.0.get(j)) {
                (Some(a), Some(b)) if a.0 == b.0 => {
                    out.push((a.0, a.1 + b.1));
                    i += 1;
                    j += 1;
                }
                (Some(a), Some(b)) if a.0 < b.0 => {
                    out.push(*a);
                    i += 1;
                }
                (Some(_), Some(b)) | (None, Some(b)) => {
                    out.push(*b);
                    j += 1;
                }
                (Some(a), None) => {
                    out.push(*a);
                    i += 1;
                }
                (None, None) => unreachable!(),
            }
        }
        self.0 = out;
    }

    /// Compact bytes: LEB128 varints, the values delta-coded.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(self.0.len() * 3);
        let mut prev = 0u32;
        for &(v, n) in &self.0 {
            put_varint(&mut b, v - prev);
            put_varint(&mut b, n);
            prev = v;
        }
        b
    }

    pub fn decode(b: &[u8]) -> Option<Dist> {
        let mut out = Vec::new();
        let mut i = 0;
        let mut prev = 0u32;
        while i < b.len() {
            let d = get_varint(b, &mut i)?;
            let n = get_varint(b, &mut i)?;
            prev = prev.checked_add(d)?;
            out.push((prev, n));
        }
        Some(Dist(out))
    }

    /// Calls `f(value, count)` for each pair without building a `Dist` (the fast path for reports).
    pub fn for_each_encoded(b: &[u8], mut f: impl FnMut(u32, u32)) {
        let mut i = 0;
        let mut prev = 0u32;
        while i < b.len() {
            let (Some(d), Some(n)) = (get_varint(b, &mut i), get_varint(b, &mut i)) else {
                return;
            };
            prev = prev.saturating_add(d);
            f(prev, n);
        }
    }
}

fn put_varint(b: &mut Vec<u8>, mut v: u32) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            b.push(byte);
            return;
        }
        b.push(byte | 0x80);
    }
}

fn get_varint(b: &[u8], i: &mut usize) -> Option<u32> {
    let mut v = 0u32;
    let mut shift = 0;
    loop {
        let byte = *b.get(*i)?;
        *i += 1;
        v |= ((byte & 0x7f) as u32).checked_shl(shift)?;
        if byte & 0x80 == 0 {
            return Some(v);
        }
        shift += 7;
        if shift > 28 {
            return None;
        }
    }
}

pub type Cells = BTreeMap<CellKey, Cell>;

/// What the aggregation needs to know of a site: its time zone, each service's unit and target wait,
/// each counter's unit. Taken from the configuration when the facts are folded.
pub struct SiteInfo<'a> {
    cfg: &'a Hall,
}

impl<'a> SiteInfo<'a> {
    pub fn new(cfg: &'a Hall) -> SiteInfo<'a> {
        SiteInfo { cfg }
    }
    pub fn tz(&self, site: &str) -> Tz {
        self.cfg.site(site).map_or(chrono_tz::UTC, |s| s.tz())
    }
    fn service_unit(&self, site: &str, service: &str) -> String {
        self.cfg
            .site(site)
            .and_then(|s| s.service(service))
            .map(|s| s.unit.to_string())
            .unwrap_or_default()
    }
    fn counter_unit(&self, site: &str, counter: &str) -> String {
        self.cfg
            .site(site)
            .and_then(|s| s.counter(counter))
            .map(|c| c.unit.to_string())
            .unwrap_or_default()
    }
    fn target_secs(&self, site: &str, service: &str) -> i64 {
        self.cfg
            .site(site)
            .and_then(|s| s.service(service))
            .map_or(20, |s| s.target_wait_minutes) as i64
            * 60
    }
}

fn local_slot(tz: &Tz, at: DateTime<Utc>) -> (NaiveDate, u8) {
    let l = at.with_timezone(tz);
    (l.date_naive(), l.hour() as u8)
}

/// The start of the next local hour after `at` (hour boundaries are where offsets change, so adding an
/// hour to the start of the current local hour is right across daylight saving changes too).
fn next_hour(tz: &Tz, at: DateTime<Utc>) -> DateTime<Utc> {
    let l = at.with_timezone(tz);
    let into = Duration::seconds(l.minute() as i64 * 60 + l.second() as i64)
        + Duration::nanoseconds(l.nanosecond() as i64 % 1_000_000_000);
    at - into + Duration::hours(1)
}

/// The next local midnight after `at`.
fn next_midnight(tz: &Tz, at: DateTime<Utc>) -> DateTime<Utc> {
    let d = at.with_timezone(tz).date_naive() + Duration::days(1);
    let m = d.and_hms_opt(0, 0, 0).expect("midnight");
    tz.from_local_datetime(&m)
        .earliest()
        .map_or(at + Duration::days(1), |x| x.with_timezone(&Utc))
}

/// Splits [from, to) into pieces within one local hour each; clipped at the local midnight after `from`
/// (a counter left open overnight, or a daemon that was down, does not make a day longer than it is).
fn hour_pieces(tz: &Tz, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<(NaiveDate, u8, i64)> {
    let to = to.min(next_midnight(tz, from));
    let mut out = Vec::new();
    let mut t = from;
    while t < to {
        let end = next_hour(tz, t).min(to);
        let (d, h) = local_slot(tz, t);
        let secs = (end - t).num_milliseconds();
        if secs > 0 {
            out.push((d, h, secs));
        }
        t = end;
    }
    // Whole seconds per piece, so that the pieces add up to the rounded span.
    let mut acc_ms = 0i64;
    let mut acc_s = 0i64;
    for p in &mut out {
        acc_ms += p.2;
        let s = acc_ms / 1000 - acc_s;
        acc_s += s;
        p.2 = s;
    }
    out
}

/// Adds facts to cells.
pub fn add_facts(cells: &mut Cells, facts: &[Fact], info: &SiteInfo) {
    for f in facts {
        match f {
            Fact::Stint(s) => {
                let tz = info.tz(&s.site);
                let (date, hour) = local_slot(&tz, s.queued_at);
                let unit = info.service_unit(&s.site, &s.service);
                if s.arrival {
                    let key = CellKey {
                        site: s.site.clone(),
                        date,
                        hour,
                        service: s.service.clone(),
                        counter: String::new(),
                        staff: String::new(),
                        unit: unit.clone(),
                    };
                    cells.entry(key).or_default().arrivals += 1;
                }
                if s.called_at.is_none() && s.outcome == Outcome::Open {
                    continue;
                }
                let key = CellKey {
                    site: s.site.clone(),
                    date,
                    hour,
                    service: s.service.clone(),
                    counter: s.counter.clone().unwrap_or_default(),
                    staff: s.staff.clone().unwrap_or_default(),
                    unit,
                };
                let c = cells.entry(key).or_default();
                if let Some(w) = s.wait_secs() {
                    c.called += 1;
                    c.wait_sum += w;
                    c.wait.add(w);
                    if w <= info.target_secs(&s.site, &s.service) {
                        c.within_target += 1;
                    }
                }
                match s.outcome {
                    Outcome::Finished | Outcome::PassedOn => {
                        c.served += 1;
                        if s.outcome == Outcome::PassedOn {
                            c.pass_ons += 1;
                        }
                        if let Some(secs) = s.service_secs {
                            c.service_sum += secs;
                            c.service.add(secs);
                        }
                    }
                    Outcome::Transferred => c.transfers += 1,
                    Outcome::NoShow => c.no_shows += 1,
                    Outcome::Cancelled => c.cancelled += 1,
                    Outcome::DayEnded => c.day_ended += 1,
                    Outcome::Open => {}
                }
            }
            Fact::Counter(span) => {
                let tz = info.tz(&span.site);
                let unit = info.counter_unit(&span.site, &span.counter);
                for (date, hour, secs) in hour_pieces(&tz, span.from, span.to) {
                    let key = CellKey {
                        site: span.site.clone(),
                        date,
                        hour,
                        service: String::new(),
                        counter: span.counter.clone(),
                        staff: span.staff.clone().unwrap_or_default(),
                        unit: unit.clone(),
                    };
                    let c = cells.entry(key).or_default();
                    c.open_secs += secs;
                    if span.busy {
                        c.busy_secs += secs;
                    }
                }
            }
            Fact::SiteOpen(span) => {
                let tz = info.tz(&span.site);
                for (date, hour, secs) in hour_pieces(&tz, span.from, span.to) {
                    let key = CellKey {
                        site: span.site.clone(),
                        date,
                        hour,
                        service: String::new(),
                        counter: String::new(),
                        staff: String::new(),
                        unit: String::new(),
                    };
                    cells.entry(key).or_default().site_open_secs += secs;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dist_encodes_merges_and_decodes() {
        let mut a = Dist::default();
        for v in [5, 300, 5, 70_000, 0] {
            a.add(v);
        }
        assert_eq!(a.0, vec![(0, 1), (5, 2), (300, 1), (70_000, 1)]);
        let mut b = Dist::default();
        b.add(300);
        b.add(1);
        a.merge(&b);
        assert_eq!(a.0, vec![(0, 1), (1, 1), (5, 2), (300, 2), (70_000, 1)]);
        let bytes = a.encode();
        assert_eq!(Dist::decode(&bytes), Some(a.clone()));
        let mut seen = Vec::new();
        Dist::for_each_encoded(&bytes, |v, n| seen.push((v, n)));
        assert_eq!(seen, a.0);
        assert_eq!(Dist::decode(&[0x80]), None, "a cut varint is refused");
    }

    #[test]
    fn spans_split_into_local_hours_across_a_dst_change_and_stop_at_midnight() {
        let tz: Tz = "Europe/Helsinki".parse().unwrap();
        // 2026-03-29: clocks go from 03:00 to 04:00 local (01:00 UTC).
        let from: DateTime<Utc> = "2026-03-29T00:30:00Z".parse().unwrap(); // 02:30 local (+2)
        let to: DateTime<Utc> = "2026-03-29T01:45:00Z".parse().unwrap(); // 04:45 local (+3)
        let p = hour_pieces(&tz, from, to);
        let d = NaiveDate::from_ymd_opt(2026, 3, 29).unwrap();
        assert_eq!(p, vec![(d, 2, 1800), (d, 4, 2700)]);
        // A counter left open overnight counts until local midnight only.
        let from: DateTime<Utc> = "2026-03-02T21:30:00Z".parse().unwrap(); // 23:30 local
        let to: DateTime<Utc> = "2026-03-03T06:00:00Z".parse().unwrap();
        let p = hour_pieces(&tz, from, to);
        assert_eq!(
            p,
            vec![(NaiveDate::from_ymd_opt(2026, 3, 2).unwrap(), 23, 1800)]
        );
    }
}
