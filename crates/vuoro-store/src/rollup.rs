//! The reports' rollups as stored: a cell's key (site, local date, hour, service, counter, staff member,
//! unit) and its numbers, the distributions of waiting and service times and their compact encoding, and
//! the five forms (`Rollup`) cells are kept in. The reports fold facts into cells (vuoro-reports); the
//! store keeps them (`Database::store_day`, `Database::rollup_cells`).

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};

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
    /// Feedback answers after finished visits, and the sum of their ratings (1..=5 each).
    pub feedback: i64,
    pub feedback_sum: i64,
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
        self.feedback += o.feedback;
        self.feedback_sum += o.feedback_sum;
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
}
