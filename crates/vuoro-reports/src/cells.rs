//! Aggregates: visit facts summed into cells, one per site, local date, local hour, service, counter and
//! staff member. Cells are what is kept for good after ticket-level detail has been purged; every report is
//! a sum of cells. They hold counts, sums and the distribution of waiting and service times (how many
//! waited N seconds), and nothing that tells one visit from another.

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use vuoro_engine::config::Hall;

use crate::facts::{Fact, Outcome};

pub use vuoro_store::rollup::{Cell, CellKey, Cells, Dist, Rollup};

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
    /// The site counts feedback per staff member too (`feedback_by_staff`).
    fn feedback_by_staff(&self, site: &str) -> bool {
        self.cfg.site(site).is_some_and(|s| s.feedback_by_staff)
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
            Fact::Feedback(f) => {
                // Kept with the service, its unit and the counter; with the staff member only where the
                // site's config says so.
                let tz = info.tz(&f.site);
                let (date, hour) = local_slot(&tz, f.at);
                let key = CellKey {
                    site: f.site.clone(),
                    date,
                    hour,
                    service: f.service.clone(),
                    counter: f.counter.clone().unwrap_or_default(),
                    staff: if info.feedback_by_staff(&f.site) {
                        f.staff.clone().unwrap_or_default()
                    } else {
                        String::new()
                    },
                    unit: info.service_unit(&f.site, &f.service),
                };
                let c = cells.entry(key).or_default();
                c.feedback += 1;
                c.feedback_sum += f.rating as i64;
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
