//! Report tables: cells summed by one dimension (site, service, unit, counter, staff member, hour of day,
//! day, week, month) into rows of figures, rendered as JSON or CSV.
//!
//! Definitions (docs/reports.md explains them for the people who run a hall):
//! - waiting time: from joining a queue to the first call in it; mean, median and 90th percentile (linear
//!   interpolation between the nearest ranks, as spreadsheets' MEDIAN and PERCENTILE.INC do);
//! - within target: share of called stints whose wait was at most the service's `target_wait_minutes`;
//! - service time: at a counter from `start` (or from the call when never started) to `finish`;
//! - idle: a counter open with no ticket called or served there.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{Datelike, Duration, NaiveDate};
use serde_json::{Map, Value, json};
use vuoro_engine::config::{Hall, Site, text_in};

use crate::cells::{Cell, CellKey};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    Site,
    Service,
    Unit,
    Counter,
    Staff,
    Hour,
    Day,
    Week,
    Month,
}

impl Group {
    pub fn parse(s: &str) -> Option<Group> {
        Some(match s {
            "site" => Group::Site,
            "service" => Group::Service,
            "unit" => Group::Unit,
            "counter" => Group::Counter,
            "staff" => Group::Staff,
            "hour" => Group::Hour,
            "day" => Group::Day,
            "week" => Group::Week,
            "month" => Group::Month,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Group::Site => "site",
            Group::Service => "service",
            Group::Unit => "unit",
            Group::Counter => "counter",
            Group::Staff => "staff",
            Group::Hour => "hour",
            Group::Day => "day",
            Group::Week => "week",
            Group::Month => "month",
        }
    }
    fn is_time(self) -> bool {
        matches!(
            self,
            Group::Site | Group::Hour | Group::Day | Group::Week | Group::Month
        )
    }
}

/// What a report covers. Dates are local to each site and inclusive.
#[derive(Debug, Clone)]
pub struct Query {
    /// One site, or every configured site (group `site` only).
    pub sites: Vec<String>,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub group: Group,
    /// The units the reader may see; None: every unit.
    pub units: Option<HashSet<String>>,
    /// Language of names.
    pub lang: Option<String>,
}

impl Query {
    /// The reader sees every unit of `site`: site-wide figures (opening hours) are theirs too.
    pub fn site_wide(&self, site: &Site) -> bool {
        self.units
            .as_ref()
            .is_none_or(|u| site.units.iter().all(|x| u.contains(x.id.as_str())))
    }

    /// Whether a cell is within the reader's scope.
    pub fn sees(&self, site: &Site, unit: &str) -> bool {
        if unit.is_empty() {
            return self.site_wide(site);
        }
        self.units.as_ref().is_none_or(|u| u.contains(unit))
    }
}

/// One cell of the output.
#[derive(Debug, Clone, PartialEq)]
pub enum V {
    Str(String),
    Int(i64),
    /// A decimal with this many places.
    Dec(f64, u8),
    Null,
}

impl V {
    fn json(&self) -> Value {
        match self {
            V::Str(s) => json!(s),
            V::Int(i) => json!(i),
            V::Dec(f, places) => {
                let p = 10f64.powi(*places as i32);
                json!((f * p).round() / p)
            }
            V::Null => Value::Null,
        }
    }
    fn csv(&self) -> String {
        match self {
            V::Str(s) => csv_field(s),
            V::Int(i) => i.to_string(),
            // Rounded as in JSON (half away from zero), then written with exactly that many places.
            V::Dec(f, places) => {
                let p = 10f64.powi(*places as i32);
                format!("{:.*}", *places as usize, (f * p).round() / p)
            }
            V::Null => String::new(),
        }
    }
}

fn csv_field(s: &str) -> String {
    // Cells a spreadsheet would run as a formula are prefixed with an apostrophe (CSV injection).
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// A finished report.
#[derive(Debug, Clone)]
pub struct Table {
    pub query: Query,
    pub columns: Vec<&'static str>,
    pub rows: Vec<Vec<V>>,
    /// Hours of the day with the most arrivals per open day, busiest first (at most three); group `hour`
    /// only.
    pub busiest_hours: Vec<BusyHour>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BusyHour {
    pub hour: u8,
    pub arrivals_per_day: f64,
    pub wait_mean_minutes: Option<f64>,
}

/// A hasher for the whole seconds of a distribution: one multiplication (the default SipHash made
/// year-long reports twice as slow).
#[derive(Default)]
pub struct SecondsHasher(u64);

impl std::hash::Hasher for SecondsHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ b as u64).wrapping_mul(0x517c_c1b7_2722_0a95);
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.0 = (n as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// Count per whole second.
pub type Counts = HashMap<u32, u64, std::hash::BuildHasherDefault<SecondsHasher>>;

/// Running sums for one row.
#[derive(Debug, Default)]
struct Acc {
    c: Cell,
    unit: String,
    wait: Counts,
    service: Counts,
}

impl Acc {
    fn add(&mut self, cell: &Cell) {
        let c = &mut self.c;
        c.arrivals += cell.arrivals;
        c.called += cell.called;
        c.served += cell.served;
        c.no_shows += cell.no_shows;
        c.cancelled += cell.cancelled;
        c.day_ended += cell.day_ended;
        c.transfers += cell.transfers;
        c.pass_ons += cell.pass_ons;
        c.wait_sum += cell.wait_sum;
        c.within_target += cell.within_target;
        c.service_sum += cell.service_sum;
        c.open_secs += cell.open_secs;
        c.busy_secs += cell.busy_secs;
        c.site_open_secs += cell.site_open_secs;
        c.feedback += cell.feedback;
        c.feedback_sum += cell.feedback_sum;
        for &(v, n) in &cell.wait.0 {
            *self.wait.entry(v).or_default() += n as u64;
        }
        for &(v, n) in &cell.service.0 {
            *self.service.entry(v).or_default() += n as u64;
        }
    }
}

/// The p-th quantile (0..=1) of a distribution, interpolating linearly between the nearest ranks.
pub fn quantile(dist: &Counts, p: f64) -> Option<f64> {
    quantiles(dist, &[p])[0]
}

/// Several quantiles of one distribution, sorting it once.
pub fn quantiles(dist: &Counts, ps: &[f64]) -> Vec<Option<f64>> {
    let mut pairs: Vec<(u32, u64)> = dist.iter().map(|(v, n)| (*v, *n)).collect();
    pairs.sort_unstable();
    let n: u64 = pairs.iter().map(|x| x.1).sum();
    // The value at a 0-based rank.
    let at = |rank: u64| -> f64 {
        let mut seen = 0;
        for &(v, c) in &pairs {
            seen += c;
            if rank < seen {
                return v as f64;
            }
        }
        pairs.last().map_or(0.0, |x| x.0 as f64)
    };
    ps.iter()
        .map(|p| {
            if n == 0 {
                return None;
            }
            let h = (n - 1) as f64 * p;
            let lo = h.floor() as u64;
            let frac = h - lo as f64;
            let a = at(lo);
            if frac == 0.0 {
                return Some(a);
            }
            Some(a + frac * (at(lo + 1) - a))
        })
        .collect()
}

fn minutes(secs: Option<f64>) -> V {
    secs.map_or(V::Null, |s| V::Dec(s / 60.0, 2))
}

fn hours(secs: i64) -> V {
    V::Dec(secs as f64 / 3600.0, 2)
}

/// The key of a row, and its label columns.
type RowKey = (String, String);

/// Builds a report from cells. `cells` yields every cell of the sites and dates of the query (stored
/// and live); cells outside the query's scope are skipped here.
/// `open_days`: days with arrivals in the range (for the busiest hours' "per day"); None: counted from
/// the cells' dates.
pub fn build(
    cfg: &Hall,
    q: &Query,
    cells: impl IntoIterator<Item = (CellKey, Cell)>,
    open_days: Option<usize>,
) -> Table {
    let mut rows: BTreeMap<RowKey, Acc> = BTreeMap::new();
    // Hour of day -> (arrivals, waits) and the dates with arrivals, for the busiest hours.
    let mut by_hour: BTreeMap<u8, Cell> = BTreeMap::new();
    let mut open_dates: HashSet<(String, NaiveDate)> = HashSet::new();
    for (k, c) in cells {
        if k.date < q.from || k.date > q.to || !q.sites.contains(&k.site) {
            continue;
        }
        let Some(site) = cfg.site(&k.site) else {
            continue;
        };
        if !q.sees(site, &k.unit) {
            continue;
        }
        if c.arrivals > 0 {
            open_dates.insert((k.site.clone(), k.date));
        }
        if q.group == Group::Hour && (c.arrivals > 0 || c.called > 0) {
            let h = by_hour.entry(k.hour).or_default();
            h.arrivals += c.arrivals;
            h.called += c.called;
            h.wait_sum += c.wait_sum;
        }
        let key: Option<RowKey> = match q.group {
            Group::Site => Some((k.site.clone(), String::new())),
            Group::Service => (!k.service.is_empty()).then(|| (k.service.clone(), String::new())),
            Group::Unit => (!k.unit.is_empty()).then(|| (k.unit.clone(), String::new())),
            Group::Counter => (!k.counter.is_empty()).then(|| (k.counter.clone(), String::new())),
            Group::Staff => (!k.staff.is_empty()).then(|| (k.staff.clone(), String::new())),
            Group::Hour => Some((format!("{:02}", k.hour), String::new())),
            Group::Day => Some((k.date.to_string(), String::new())),
            Group::Week => Some((week_start(k.date).to_string(), String::new())),
            Group::Month => Some((month_start(k.date).to_string(), String::new())),
        };
        if let Some(key) = key {
            let acc = rows.entry(key).or_default();
            if acc.unit.is_empty() {
                acc.unit.clone_from(&k.unit);
            }
            acc.add(&c);
        }
    }
    // Every period of the range appears in time groups, with zeros where nothing happened.
    match q.group {
        Group::Day | Group::Week | Group::Month => {
            let mut d = q.from;
            while d <= q.to {
                let key = match q.group {
                    Group::Day => d.to_string(),
                    Group::Week => week_start(d).to_string(),
                    _ => month_start(d).to_string(),
                };
                rows.entry((key, String::new())).or_default();
                d += Duration::days(1);
            }
        }
        Group::Site => {
            for s in &q.sites {
                if let Some(site) = cfg.site(s)
                    && q.site_wide(site)
                {
                    rows.entry((s.clone(), String::new())).or_default();
                }
            }
        }
        _ => {}
    }
    let mut ordered: Vec<(RowKey, Acc)> = rows.into_iter().collect();
    let first_site = q.sites.first().and_then(|s| cfg.site(s));
    let position = |key: &str| -> usize {
        let Some(site) = first_site else { return 0 };
        match q.group {
            Group::Service => site.services.iter().position(|s| s.id == key),
            Group::Unit => site.units.iter().position(|s| s.id == key),
            Group::Counter => site.counters.iter().position(|s| s.id == key),
            Group::Site => cfg.sites.iter().position(|s| s.id == key),
            _ => Some(0),
        }
        .unwrap_or(usize::MAX)
    };
    ordered.sort_by(|a, b| position(&a.0.0).cmp(&position(&b.0.0)).then(a.0.cmp(&b.0)));

    let lang = q
        .lang
        .clone()
        .or_else(|| first_site.map(|s| s.default_language().to_string()))
        .unwrap_or_else(|| "fi".into());
    let mut columns: Vec<&'static str> = match q.group {
        Group::Site => vec!["site", "site_name"],
        Group::Service => vec!["service", "service_name", "unit"],
        Group::Unit => vec!["unit", "unit_name"],
        Group::Counter => vec!["counter", "counter_name", "unit"],
        Group::Staff => vec!["staff"],
        Group::Hour => vec!["hour"],
        Group::Day => vec!["date"],
        Group::Week => vec!["week_start", "week"],
        Group::Month => vec!["month_start", "month"],
    };
    columns.extend([
        "arrivals",
        "called",
        "served",
        "no_shows",
        "cancelled",
        "day_ended",
        "transfers",
        "pass_ons",
        "wait_mean_minutes",
        "wait_median_minutes",
        "wait_p90_minutes",
        "within_target_share",
        "service_mean_minutes",
        "service_median_minutes",
        "open_hours",
        "busy_hours",
        "idle_hours",
        "idle_share",
        "opening_hours",
        "visits_per_opening_hour",
        "feedback",
        "feedback_mean",
    ]);
    let name_of = |t: &vuoro_engine::config::Text| -> String {
        text_in(t, &lang, first_site.map_or("fi", |s| s.default_language())).to_string()
    };
    let mut out_rows = Vec::with_capacity(ordered.len());
    for ((key, _), acc) in ordered {
        let mut r: Vec<V> = Vec::with_capacity(columns.len());
        match q.group {
            Group::Site => {
                r.push(V::Str(key.clone()));
                r.push(V::Str(
                    cfg.site(&key).map(|s| name_of(&s.name)).unwrap_or_default(),
                ));
            }
            Group::Service => {
                let svc = first_site.and_then(|s| s.service(&key));
                r.push(V::Str(key.clone()));
                r.push(V::Str(svc.map(|s| name_of(&s.name)).unwrap_or_default()));
                r.push(V::Str(acc.unit.clone()));
            }
            Group::Unit => {
                let u = first_site.and_then(|s| s.unit(&key));
                r.push(V::Str(key.clone()));
                r.push(V::Str(u.map(|u| name_of(&u.name)).unwrap_or_default()));
            }
            Group::Counter => {
                let c = first_site.and_then(|s| s.counter(&key));
                r.push(V::Str(key.clone()));
                r.push(V::Str(c.map(|c| name_of(&c.name)).unwrap_or_default()));
                r.push(V::Str(acc.unit.clone()));
            }
            Group::Staff => r.push(V::Str(key.clone())),
            Group::Hour => r.push(V::Int(key.parse().unwrap_or(0))),
            Group::Day => r.push(V::Str(key.clone())),
            Group::Week => {
                let d: NaiveDate = key.parse().expect("a date key");
                let w = d.iso_week();
                r.push(V::Str(key.clone()));
                r.push(V::Str(format!("{}-W{:02}", w.year(), w.week())));
            }
            Group::Month => {
                r.push(V::Str(key.clone()));
                r.push(V::Str(key[..7].to_string()));
            }
        }
        let c = &acc.c;
        let per_ticket = !matches!(q.group, Group::Counter | Group::Staff);
        r.push(if per_ticket {
            V::Int(c.arrivals)
        } else {
            V::Null
        });
        for n in [
            c.called,
            c.served,
            c.no_shows,
            c.cancelled,
            c.day_ended,
            c.transfers,
            c.pass_ons,
        ] {
            r.push(V::Int(n));
        }
        let mean = |sum: i64, n: i64| (n > 0).then(|| sum as f64 / n as f64);
        r.push(minutes(mean(c.wait_sum, c.called)));
        let waits = quantiles(&acc.wait, &[0.5, 0.9]);
        r.push(minutes(waits[0]));
        r.push(minutes(waits[1]));
        r.push(if c.called > 0 {
            V::Dec(c.within_target as f64 / c.called as f64, 3)
        } else {
            V::Null
        });
        let served_n: u64 = acc.service.values().sum();
        r.push(minutes(mean(c.service_sum, served_n as i64)));
        r.push(minutes(quantile(&acc.service, 0.5)));
        let counter_time = !matches!(q.group, Group::Service);
        if counter_time {
            r.push(hours(c.open_secs));
            r.push(hours(c.busy_secs));
            r.push(hours(c.open_secs - c.busy_secs));
            r.push(if c.open_secs > 0 {
                V::Dec((c.open_secs - c.busy_secs) as f64 / c.open_secs as f64, 3)
            } else {
                V::Null
            });
        } else {
            r.extend([V::Null, V::Null, V::Null, V::Null]);
        }
        if q.group.is_time()
            && q.sites
                .iter()
                .any(|s| cfg.site(s).is_some_and(|s| q.site_wide(s)))
        {
            r.push(hours(c.site_open_secs));
            r.push(if c.site_open_secs > 0 {
                V::Dec(c.arrivals as f64 / (c.site_open_secs as f64 / 3600.0), 2)
            } else {
                V::Null
            });
        } else {
            r.extend([V::Null, V::Null]);
        }
        // Feedback is kept per service, unit and counter; per staff member only where every site of the
        // report has `feedback_by_staff` on.
        let by_staff = q
            .sites
            .iter()
            .all(|s| cfg.site(s).is_some_and(|s| s.feedback_by_staff));
        if q.group == Group::Staff && !by_staff {
            r.extend([V::Null, V::Null]);
        } else {
            r.push(V::Int(c.feedback));
            r.push(if c.feedback > 0 {
                V::Dec(c.feedback_sum as f64 / c.feedback as f64, 2)
            } else {
                V::Null
            });
        }
        out_rows.push(r);
    }

    let days = open_days.unwrap_or(open_dates.len()).max(1) as f64;
    let mut busiest: Vec<BusyHour> = by_hour
        .iter()
        .filter(|(_, c)| c.arrivals > 0)
        .map(|(h, c)| BusyHour {
            hour: *h,
            arrivals_per_day: c.arrivals as f64 / days,
            wait_mean_minutes: (c.called > 0).then(|| c.wait_sum as f64 / c.called as f64 / 60.0),
        })
        .collect();
    busiest.sort_by(|a, b| {
        b.arrivals_per_day
            .total_cmp(&a.arrivals_per_day)
            .then(a.hour.cmp(&b.hour))
    });
    busiest.truncate(3);
    Table {
        query: q.clone(),
        columns,
        rows: out_rows,
        busiest_hours: busiest,
    }
}

/// Monday of the ISO week of `d`.
pub fn week_start(d: NaiveDate) -> NaiveDate {
    d - Duration::days(d.weekday().num_days_from_monday() as i64)
}

pub fn month_start(d: NaiveDate) -> NaiveDate {
    d.with_day(1).expect("day 1 exists")
}

impl Table {
    pub fn to_json(&self) -> Value {
        let rows: Vec<Value> = self
            .rows
            .iter()
            .map(|r| {
                let mut m = Map::new();
                for (c, v) in self.columns.iter().zip(r) {
                    m.insert((*c).to_string(), v.json());
                }
                Value::Object(m)
            })
            .collect();
        let busiest: Vec<Value> = self
            .busiest_hours
            .iter()
            .map(|b| {
                json!({"hour": b.hour,
                       "arrivals_per_day": (b.arrivals_per_day * 100.0).round() / 100.0,
                       "wait_mean_minutes": b.wait_mean_minutes.map(|w| (w * 100.0).round() / 100.0)})
            })
            .collect();
        let mut out = json!({
            "sites": self.query.sites,
            "site": if self.query.sites.len() == 1 { json!(self.query.sites[0]) } else { Value::Null },
            "from": self.query.from,
            "to": self.query.to,
            "group": self.query.group.as_str(),
            "columns": self.columns,
            "rows": rows,
        });
        if self.query.group == Group::Hour {
            out["busiest_hours"] = json!(busiest);
        }
        out
    }

    /// CSV: UTF-8 with a byte order mark (so that spreadsheets read the letters right), comma separated,
    /// a header row, CRLF line ends (RFC 4180), ISO dates, decimals with a dot, empty for "no value".
    pub fn to_csv(&self) -> String {
        let mut s = String::from("\u{feff}");
        s.push_str(&self.columns.join(","));
        s.push_str("\r\n");
        for r in &self.rows {
            let line: Vec<String> = r.iter().map(V::csv).collect();
            s.push_str(&line.join(","));
            s.push_str("\r\n");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dist(values: &[u32]) -> Counts {
        let mut m = Counts::default();
        for v in values {
            *m.entry(*v).or_default() += 1;
        }
        m
    }

    #[test]
    fn quantiles_interpolate_like_a_spreadsheet() {
        // MEDIAN(1,2,3,4) = 2.5; PERCENTILE.INC({1,2,3,4}, 0.9) = 3.7
        let d = dist(&[4, 1, 3, 2]);
        assert_eq!(quantile(&d, 0.5), Some(2.5));
        assert!((quantile(&d, 0.9).unwrap() - 3.7).abs() < 1e-9);
        assert_eq!(quantile(&dist(&[7]), 0.9), Some(7.0));
        assert_eq!(quantile(&dist(&[]), 0.5), None);
        // Repeated values: 10,10,10,40 -> median 10, p90 = 10 + 0.7 * 30 = 31
        let d = dist(&[10, 10, 40, 10]);
        assert_eq!(quantile(&d, 0.5), Some(10.0));
        assert!((quantile(&d, 0.9).unwrap() - 31.0).abs() < 1e-9);
    }

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=cmd|' /C calc'!A0"), "'=cmd|' /C calc'!A0");
        assert_eq!(V::Dec(1.0 / 3.0, 2).csv(), "0.33");
        // 2.625 is exact in binary: JSON and CSV both round it up.
        assert_eq!(V::Dec(2.625, 2).csv(), "2.63");
        assert_eq!(V::Dec(2.625, 2).json(), json!(2.63));
        assert_eq!(V::Null.csv(), "");
    }

    #[test]
    fn weeks_start_on_monday_and_months_on_the_first() {
        let d = NaiveDate::from_ymd_opt(2026, 3, 5).unwrap(); // a Thursday
        assert_eq!(week_start(d), NaiveDate::from_ymd_opt(2026, 3, 2).unwrap());
        assert_eq!(month_start(d), NaiveDate::from_ymd_opt(2026, 3, 1).unwrap());
    }
}
