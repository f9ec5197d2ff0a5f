//! End-to-end tests of reports, public wait times, the audit trail, retention and logs.
//!
//! A scripted day (two sites: the hall and a pop-up service point) is driven through the real engine with
//! chosen times and committed to a fresh data folder; then the real daemon serves it. The right answers
//! are worked out in this file from the script's own table, not by the code under test.

use std::collections::{BTreeMap, HashMap};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, NaiveTime, TimeZone, Utc};
use serde_json::{Value, json};
use vuoro_engine::config::Hall;
use vuoro_engine::{
    Actor, Command, CounterVerb, Engine, Outcome, Position, TicketRef, TransferTarget,
};
use vuoro_tests::*;

const SITE: &str = "iso-omena";
const POPUP: &str = "popup-senior-centre";
/// Not "demo": the demo banner prints that one on purpose.
const SECRET_PASSWORD: &str = "plum-Kettle-42-orbit";

/// The demo hall plus a pop-up service point, a supervisor of Kela only and an admin whose password
/// is not the demo one.
fn config() -> String {
    let hash = vuoro_server::auth::hash_password(SECRET_PASSWORD);
    format!(
        r#"{DEMO}
[[user]]
username = "kelasup"
password_hash = "$argon2id$v=19$m=19456,t=2,p=1$dOtiQnk24qiKJVnjN4xv0Q$psLb6z51L61eSuH1qfkv9wO74+KrDbYPGeTwXh6gV60"
roles = ["supervisor"]
units = ["kela"]

[[user]]
username = "auditor"
password_hash = "{hash}"
roles = ["admin"]

[[site]]
id = "{POPUP}"
name = {{ fi = "Liikkuva palvelupiste: palvelukeskus", sv = "Mobil servicepunkt: servicecentralen", en = "Mobile service point: senior centre" }}
timezone = "Europe/Helsinki"
languages = ["fi", "sv", "en"]
always_open = true

[[site.unit]]
id = "liikkuva"
name = {{ fi = "Liikkuva palvelu", sv = "Mobil service", en = "Mobile service" }}

[[site.series]]
letter = "M"

[[site.service]]
id = "popup-advice"
unit = "liikkuva"
series = "M"
name = {{ fi = "Neuvonta", sv = "Rådgivning", en = "Advice" }}

[[site.counter]]
id = "popup-1"
unit = "liikkuva"
name = {{ fi = "Piste 1", sv = "Punkt 1", en = "Desk 1" }}
services = [{{ service = "popup-advice" }}]
"#
    )
}

fn day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 3, 2).unwrap()
}

/// A local time in Helsinki in early March (UTC+2, before summer time begins on 29 March).
fn at(date: NaiveDate, hms: &str) -> DateTime<Utc> {
    let t = NaiveTime::parse_from_str(hms, "%H:%M:%S")
        .or_else(|_| NaiveTime::parse_from_str(hms, "%H:%M"))
        .unwrap();
    Utc.from_utc_datetime(&date.and_time(t)) - chrono::Duration::hours(2)
}

/// How a stint (one ticket's time in one queue) ends.
#[derive(Debug, Clone, PartialEq)]
enum End {
    Finished,
    PassOn(&'static str),
    Transfer(&'static str),
    NoShow,
    Cancelled,
    DayEnded,
}

/// One stint of the script. `new`: it starts with a ticket being issued (a visit); otherwise it
/// continues the previous stint of the same ticket.
#[derive(Debug, Clone)]
struct Stint {
    site: &'static str,
    ticket: &'static str,
    service: &'static str,
    new: bool,
    queued: String,
    called: Option<(String, &'static str)>,
    started: Option<String>,
    ended: Option<String>,
    end: End,
}

#[allow(clippy::too_many_arguments)]
fn stint(
    ticket: &'static str,
    service: &'static str,
    new: bool,
    queued: &str,
    called: Option<(&str, &'static str)>,
    started: Option<&str>,
    ended: Option<&str>,
    end: End,
) -> Stint {
    Stint {
        site: SITE,
        ticket,
        service,
        new,
        queued: queued.into(),
        called: called.map(|(t, c)| (t.into(), c)),
        started: started.map(Into::into),
        ended: ended.map(Into::into),
        end,
    }
}

/// (site, counter, staff, opens, closes)
type Shift = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
);

#[rustfmt::skip]
fn script() -> (Vec<Stint>, Vec<Shift>) {
    use End::*;
    let mut s = vec![
        stint("A", "kela-general", true, "08:05", Some(("08:08", "c1")), Some("08:09"), Some("08:20"), Finished),
        stint("B", "kela-general", true, "08:06", Some(("08:20", "c1")), Some("08:21"), Some("08:35"), Transfer("kela-families")),
        stint("B", "kela-families", false, "08:35", Some(("09:10", "c2")), Some("09:11"), Some("09:25"), Finished),
        stint("C", "kela-general", true, "08:07", Some(("08:35", "c1")), None, Some("08:38"), NoShow),
        stint("D", "kela-general", true, "08:30", None, None, Some("08:45"), Cancelled),
        stint("E", "joint-service", true, "08:01", Some(("08:02", "c5")), Some("08:03"), Some("08:12"), PassOn("parking")),
        stint("E", "parking", false, "08:12", Some(("08:12:30", "c5")), Some("08:13"), Some("08:18"), Finished),
        stint("F", "joint-service", true, "08:10", Some(("08:18", "c5")), Some("08:19"), Some("08:40"), Finished),
        stint("G", "joint-service", true, "09:00", None, None, None, DayEnded),
        stint("H", "mental-health", true, "08:50", None, None, None, DayEnded),
        // I waits exactly Kela's target of 25 minutes: within the target.
        stint("I", "kela-general", true, "09:00", Some(("09:25", "c1")), Some("09:26"), Some("09:45"), Finished),
        stint("J", "joint-service", true, "09:05", Some(("09:06", "c5")), Some("09:06:30"), Some("09:20"), Finished),
    ];
    // The pop-up: nine visits between 10:00 and 13:00, each called 5 minutes after arriving.
    const POP: [&str; 9] = ["P1", "P2", "P3", "P4", "P5", "P6", "P7", "P8", "P9"];
    for (i, label) in POP.iter().enumerate() {
        let q = 10 * 60 + 5 + 20 * i as u32;
        let hm = |m: u32| format!("{:02}:{:02}", m / 60, m % 60);
        let mut st = stint(label, "popup-advice", true, &hm(q), None, Some(&hm(q + 6)), Some(&hm(q + 15)), Finished);
        st.site = POPUP;
        st.called = Some((hm(q + 5), "popup-1"));
        s.push(st);
    }
    let shifts = vec![
        (SITE, "c1", "agent1", "08:00", "12:00"),
        (SITE, "c5", "agent2", "08:00", "10:00"),
        (SITE, "c2", "agent3", "09:00", "11:00"),
        (POPUP, "popup-1", "agent4", "10:00", "13:00"),
    ];
    (s, shifts)
}

/// Drives the engine through the script and commits every event to a fresh store in `data`; then
/// lets the day end (the next day starts just after midnight).
fn write_scripted_day(cfg: &Arc<Hall>, data: &std::path::Path) -> HashMap<&'static str, String> {
    let (stints, shifts) = script();
    // (time, rank, order, what): at one instant, ends come before calls at the same counter.
    enum Act {
        Open(&'static str, &'static str),
        Close(&'static str, &'static str),
        Issue(usize),
        End(usize),
        Call(usize),
        Start(usize),
    }
    let mut acts: Vec<(DateTime<Utc>, u8, usize, Act)> = Vec::new();
    for (i, (_, c, staff, open, close)) in shifts.iter().enumerate() {
        acts.push((at(day(), open), 0, i, Act::Open(c, staff)));
        acts.push((at(day(), close), 5, i, Act::Close(c, staff)));
    }
    for (i, s) in stints.iter().enumerate() {
        if s.new {
            acts.push((at(day(), &s.queued), 1, i, Act::Issue(i)));
        }
        if let Some(e) = &s.ended {
            acts.push((at(day(), e), 2, i, Act::End(i)));
        }
        if let Some((c, _)) = &s.called {
            acts.push((at(day(), c), 3, i, Act::Call(i)));
        }
        if let Some(st) = &s.started {
            acts.push((at(day(), st), 4, i, Act::Start(i)));
        }
    }
    acts.sort_by_key(|a| (a.0, a.1, a.2));
    let mut engine = Engine::new(cfg.clone(), at(day(), "07:00"));
    let store = vuoro_store::open(&data.join("vuoro.sqlite")).unwrap();
    let mut ids: HashMap<&str, u64> = HashMap::new();
    let mut tokens: HashMap<&'static str, String> = HashMap::new();
    let staff_of = |counter: &str| shifts.iter().find(|s| s.1 == counter).map(|s| s.2).unwrap();
    let mut n = 0u64;
    for (t, _, _, act) in acts {
        let mut issuing = None;
        let (actor, cmd) = match act {
            Act::Open(c, staff) => (
                Actor::user(staff),
                Command::Counter {
                    counter: c.parse().unwrap(),
                    verb: CounterVerb::Open,
                },
            ),
            Act::Close(c, staff) => (
                Actor::user(staff),
                Command::Counter {
                    counter: c.parse().unwrap(),
                    verb: CounterVerb::Close,
                },
            ),
            Act::Issue(i) => {
                n += 1;
                let token = format!("{:032x}", 0x5eed_0000_u64 + n);
                tokens.insert(stints[i].ticket, token.clone());
                issuing = Some(stints[i].ticket);
                (
                    Actor::device("kiosk-1"),
                    Command::Issue {
                        site: stints[i].site.parse().unwrap(),
                        service: stints[i].service.parse().unwrap(),
                        lang: "fi".into(),
                        priority: Default::default(),
                        token: token.parse().unwrap(),
                        channel: vuoro_engine::Channel::Kiosk,
                        idempotency: None,
                    },
                )
            }
            Act::Call(i) => {
                let (_, c) = stints[i].called.clone().unwrap();
                let id = ids[stints[i].ticket];
                (
                    Actor::user(staff_of(c)),
                    Command::Counter {
                        counter: c.parse().unwrap(),
                        verb: CounterVerb::Call(TicketRef::Id(id)),
                    },
                )
            }
            Act::Start(i) => {
                let (_, c) = stints[i].called.clone().unwrap();
                (
                    Actor::user(staff_of(c)),
                    Command::Counter {
                        counter: c.parse().unwrap(),
                        verb: CounterVerb::Start,
                    },
                )
            }
            Act::End(i) => {
                let s = &stints[i];
                let counter = s.called.as_ref().map(|c| c.1);
                let verb = match &s.end {
                    End::Finished => CounterVerb::Finish {
                        next_service: None,
                        position: Position::Original,
                    },
                    End::PassOn(to) => CounterVerb::Finish {
                        next_service: Some((*to).parse().unwrap()),
                        position: Position::Original,
                    },
                    End::Transfer(to) => CounterVerb::Transfer {
                        ticket: None,
                        to: TransferTarget::Service((*to).parse().unwrap()),
                        position: Position::Original,
                    },
                    End::NoShow => CounterVerb::NoShow,
                    End::Cancelled => {
                        let token = tokens[s.ticket].clone();
                        let out = engine
                            .handle(
                                Command::Cancel {
                                    token: token.parse().unwrap(),
                                },
                                t,
                                &Actor::public(),
                            )
                            .unwrap();
                        assert!(matches!(out, Outcome::Ticket { .. }));
                        commit(&mut engine, &*store);
                        continue;
                    }
                    End::DayEnded => unreachable!("a day-ended stint has no end in the script"),
                };
                let c = counter.expect("ends at a counter");
                (
                    Actor::user(staff_of(c)),
                    Command::Counter {
                        counter: c.parse().unwrap(),
                        verb,
                    },
                )
            }
        };
        let out = engine
            .handle(cmd, t, &actor)
            .unwrap_or_else(|e| panic!("script step at {t}: {e}"));
        if let (Outcome::Ticket { id, .. }, Some(label)) = (out, issuing) {
            ids.insert(label, id);
        }
        commit(&mut engine, &*store);
    }
    // The day ends: the next one starts just after midnight (G and H end as day_ended).
    engine
        .handle(
            Command::Tick,
            at(day() + chrono::Duration::days(1), "00:00:20"),
            &Actor::system(),
        )
        .unwrap();
    commit(&mut engine, &*store);
    tokens
}

fn commit(engine: &mut Engine, store: &dyn vuoro_store::Database) {
    let events = engine.take_events();
    if events.is_empty() {
        return;
    }
    let before = events[0].seq - 1;
    store.append(before, &events, None).unwrap();
}

// ---- the right answers, worked out from the script ----------------------------------------------

fn secs(hms: &str) -> f64 {
    (at(day(), hms) - at(day(), "00:00")).num_seconds() as f64
}

/// PERCENTILE.INC: linear interpolation between the closest ranks.
fn percentile(values: &[f64], p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let h = (v.len() - 1) as f64 * p;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(v.len() - 1);
    Some(v[lo] + (h - lo as f64) * (v[hi] - v[lo]))
}

#[derive(Debug, Default)]
struct Expected {
    arrivals: i64,
    called: i64,
    served: i64,
    no_shows: i64,
    cancelled: i64,
    day_ended: i64,
    transfers: i64,
    pass_ons: i64,
    waits: Vec<f64>,
    within: i64,
    services: Vec<f64>,
}

fn target_minutes(cfg: &Hall, site: &str, service: &str) -> f64 {
    cfg.site(site)
        .unwrap()
        .service(service)
        .unwrap()
        .target_wait_minutes as f64
}

/// Expected figures per key, `key` picking the row a stint belongs to.
fn expected_by(
    cfg: &Hall,
    site: &str,
    key: impl Fn(&Stint) -> Option<String>,
) -> BTreeMap<String, Expected> {
    let (stints, shifts) = script();
    let mut m: BTreeMap<String, Expected> = BTreeMap::new();
    for s in stints.iter().filter(|s| s.site == site) {
        let Some(k) = key(s) else { continue };
        let e = m.entry(k).or_default();
        if s.new {
            e.arrivals += 1;
        }
        if let Some((c, _)) = &s.called {
            e.called += 1;
            let w = secs(c) - secs(&s.queued);
            e.waits.push(w);
            if w <= target_minutes(cfg, site, s.service) * 60.0 {
                e.within += 1;
            }
        }
        match s.end {
            End::Finished | End::PassOn(_) => {
                e.served += 1;
                let from = s
                    .started
                    .clone()
                    .unwrap_or_else(|| s.called.clone().unwrap().0);
                e.services
                    .push(secs(s.ended.as_ref().unwrap()) - secs(&from));
                if matches!(s.end, End::PassOn(_)) {
                    e.pass_ons += 1;
                }
            }
            End::Transfer(_) => e.transfers += 1,
            End::NoShow => e.no_shows += 1,
            End::Cancelled => e.cancelled += 1,
            End::DayEnded => e.day_ended += 1,
        }
    }
    let _ = shifts;
    m
}

/// Counter time per counter: open, and busy from each call to the stint's end there.
fn counter_time(site: &str) -> BTreeMap<&'static str, (f64, f64)> {
    let (stints, shifts) = script();
    let mut m = BTreeMap::new();
    for (s, c, _, open, close) in shifts.iter().filter(|x| x.0 == site) {
        let _ = s;
        let busy: f64 = stints
            .iter()
            .filter(|st| st.called.as_ref().is_some_and(|x| x.1 == *c))
            .map(|st| secs(st.ended.as_ref().unwrap()) - secs(&st.called.as_ref().unwrap().0))
            .sum();
        m.insert(*c, (secs(close) - secs(open), busy));
    }
    m
}

/// Hours with at least one counter of the site open (the union of the shifts).
fn opening_hours(site: &str) -> f64 {
    let (_, shifts) = script();
    let mut spans: Vec<(f64, f64)> = shifts
        .iter()
        .filter(|s| s.0 == site)
        .map(|s| (secs(s.3), secs(s.4)))
        .collect();
    spans.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let mut total = 0.0;
    let mut cur: Option<(f64, f64)> = None;
    for (a, b) in spans {
        cur = match cur {
            Some((ca, cb)) if a <= cb => Some((ca, cb.max(b))),
            Some((ca, cb)) => {
                total += cb - ca;
                Some((a, b))
            }
            None => Some((a, b)),
        };
    }
    if let Some((a, b)) = cur {
        total += b - a;
    }
    total / 3600.0
}

fn close_to(got: &Value, want: Option<f64>, what: &str) {
    match want {
        None => assert!(got.is_null(), "{what}: expected no value, got {got}"),
        Some(w) => {
            let g = got
                .as_f64()
                .unwrap_or_else(|| panic!("{what}: {got} is not a number"));
            assert!((g - w).abs() <= 0.0051, "{what}: got {g}, expected {w:.4}");
        }
    }
}

fn check_row(row: &Value, e: &Expected, what: &str, per_ticket: bool) {
    let int = |k: &str| {
        row[k]
            .as_i64()
            .unwrap_or_else(|| panic!("{what}.{k} = {}", row[k]))
    };
    if per_ticket {
        assert_eq!(int("arrivals"), e.arrivals, "{what}: arrivals");
    } else {
        assert!(row["arrivals"].is_null(), "{what}: arrivals do not apply");
    }
    assert_eq!(int("called"), e.called, "{what}: called");
    assert_eq!(int("served"), e.served, "{what}: served");
    assert_eq!(int("no_shows"), e.no_shows, "{what}: no_shows");
    assert_eq!(int("cancelled"), e.cancelled, "{what}: cancelled");
    assert_eq!(int("day_ended"), e.day_ended, "{what}: day_ended");
    assert_eq!(int("transfers"), e.transfers, "{what}: transfers");
    assert_eq!(int("pass_ons"), e.pass_ons, "{what}: pass_ons");
    let mean = |v: &[f64]| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
    close_to(
        &row["wait_mean_minutes"],
        mean(&e.waits).map(|x| x / 60.0),
        &format!("{what}: wait mean"),
    );
    close_to(
        &row["wait_median_minutes"],
        percentile(&e.waits, 0.5).map(|x| x / 60.0),
        &format!("{what}: wait median"),
    );
    close_to(
        &row["wait_p90_minutes"],
        percentile(&e.waits, 0.9).map(|x| x / 60.0),
        &format!("{what}: wait p90"),
    );
    close_to(
        &row["within_target_share"],
        (e.called > 0).then(|| e.within as f64 / e.called as f64),
        &format!("{what}: within target"),
    );
    close_to(
        &row["service_mean_minutes"],
        mean(&e.services).map(|x| x / 60.0),
        &format!("{what}: service mean"),
    );
    close_to(
        &row["service_median_minutes"],
        percentile(&e.services, 0.5).map(|x| x / 60.0),
        &format!("{what}: service median"),
    );
}

fn rows_by<'a>(report: &'a Value, key: &str) -> HashMap<String, &'a Value> {
    report["rows"]
        .as_array()
        .unwrap_or_else(|| panic!("no rows in {report}"))
        .iter()
        .map(|r| {
            (
                r[key]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| r[key].to_string()),
                r,
            )
        })
        .collect()
}

async fn get_json(h: &mut Http, path: &str) -> Value {
    let r = h.get(path).await.unwrap();
    assert_eq!(
        r.status,
        200,
        "{path}: {}",
        String::from_utf8_lossy(&r.body)
    );
    r.json()
}

const RANGE: &str = "from=2026-03-02&to=2026-03-02";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_of_a_scripted_day_match_the_numbers_worked_out_from_the_script() {
    let dir = TempDir::new("reports-day");
    let src = config();
    let cfg = Arc::new(Hall::parse(&src).unwrap());
    write_scripted_day(&cfg, &dir.0);
    let app = spawn_app_in(&src, &dir.0).await;
    let sup = login(app.addr, "supervisor", "demo").await.unwrap();
    let mut h = Http::with_token(app.addr, &sup);

    // By service.
    let r = get_json(
        &mut h,
        &format!("/api/v1/reports?site={SITE}&{RANGE}&group=service&lang=en"),
    )
    .await;
    let rows = rows_by(&r, "service");
    let want = expected_by(&cfg, SITE, |s| Some(s.service.to_string()));
    assert_eq!(
        rows.len(),
        want.len(),
        "one row per service with figures: {r:#}"
    );
    for (svc, e) in &want {
        check_row(rows[svc.as_str()], e, svc, true);
    }
    assert_eq!(
        rows["mental-health"]["service_name"], "Mental health services",
        "staff see real names"
    );

    // By unit, counter, staff member.
    let r = get_json(
        &mut h,
        &format!("/api/v1/reports?site={SITE}&{RANGE}&group=unit"),
    )
    .await;
    let rows = rows_by(&r, "unit");
    let units: HashMap<&str, &str> = cfg
        .site(SITE)
        .unwrap()
        .services
        .iter()
        .map(|s| (s.id.as_str(), s.unit.as_str()))
        .collect();
    for (unit, e) in expected_by(&cfg, SITE, |s| Some(units[s.service].to_string())) {
        check_row(rows[unit.as_str()], &e, &unit, true);
    }
    let r = get_json(
        &mut h,
        &format!("/api/v1/reports?site={SITE}&{RANGE}&group=counter"),
    )
    .await;
    let rows = rows_by(&r, "counter");
    let times = counter_time(SITE);
    for (counter, e) in expected_by(&cfg, SITE, |s| s.called.as_ref().map(|c| c.1.to_string())) {
        let row = rows[counter.as_str()];
        check_row(row, &e, &counter, false);
        let (open, busy) = times[counter.as_str()];
        close_to(
            &row["open_hours"],
            Some(open / 3600.0),
            &format!("{counter}: open"),
        );
        close_to(
            &row["busy_hours"],
            Some(busy / 3600.0),
            &format!("{counter}: busy"),
        );
        close_to(
            &row["idle_hours"],
            Some((open - busy) / 3600.0),
            &format!("{counter}: idle"),
        );
        close_to(
            &row["idle_share"],
            Some((open - busy) / open),
            &format!("{counter}: idle share"),
        );
    }
    let r = get_json(
        &mut h,
        &format!("/api/v1/reports?site={SITE}&{RANGE}&group=staff"),
    )
    .await;
    let rows = rows_by(&r, "staff");
    let (_, shifts) = script();
    let staff_of = |c: &str| shifts.iter().find(|s| s.1 == c).unwrap().2.to_string();
    for (staff, e) in expected_by(&cfg, SITE, |s| s.called.as_ref().map(|c| staff_of(c.1))) {
        check_row(rows[staff.as_str()], &e, &staff, false);
    }

    // By day: the whole site, with opening hours from the counters and visits per opening hour.
    let r = get_json(
        &mut h,
        &format!("/api/v1/reports?site={SITE}&from=2026-03-01&to=2026-03-03&group=day"),
    )
    .await;
    let rows = rows_by(&r, "date");
    assert_eq!(rows.len(), 3, "every day of the range has a row");
    let all = expected_by(&cfg, SITE, |_| Some(String::new()));
    let e = &all[""];
    check_row(rows["2026-03-02"], e, "the day", true);
    let hours = opening_hours(SITE);
    close_to(
        &rows["2026-03-02"]["opening_hours"],
        Some(hours),
        "opening hours",
    );
    close_to(
        &rows["2026-03-02"]["visits_per_opening_hour"],
        Some(e.arrivals as f64 / hours),
        "visits per hour",
    );
    assert_eq!(rows["2026-03-01"]["arrivals"], 0);

    // By hour of the day: arrivals counted in the hour they joined the queue; the busiest first.
    let r = get_json(
        &mut h,
        &format!("/api/v1/reports?site={SITE}&{RANGE}&group=hour"),
    )
    .await;
    let (stints, _) = script();
    let mut per_hour: BTreeMap<i64, i64> = BTreeMap::new();
    for s in stints.iter().filter(|s| s.site == SITE && s.new) {
        *per_hour.entry(s.queued[..2].parse().unwrap()).or_default() += 1;
    }
    for row in r["rows"].as_array().unwrap() {
        let hour = row["hour"].as_i64().unwrap();
        assert_eq!(
            row["arrivals"].as_i64().unwrap(),
            per_hour.get(&hour).copied().unwrap_or(0),
            "hour {hour}"
        );
    }
    let busiest = per_hour.iter().max_by_key(|(h, n)| (**n, -**h)).unwrap();
    assert_eq!(r["busiest_hours"][0]["hour"].as_i64(), Some(*busiest.0));

    // A supervisor of Kela sees Kela only; an agent sees no reports.
    let kela = login(app.addr, "kelasup", "demo").await.unwrap();
    let r = get_json(
        &mut Http::with_token(app.addr, &kela),
        &format!("/api/v1/reports?site={SITE}&{RANGE}&group=service"),
    )
    .await;
    let services: Vec<&str> = r["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["service"].as_str().unwrap())
        .collect();
    assert_eq!(services, ["kela-general", "kela-families"]);
    let agent = login(app.addr, "agent1", "demo").await.unwrap();
    let r = Http::with_token(app.addr, &agent)
        .get(&format!("/api/v1/reports?site={SITE}&{RANGE}"))
        .await
        .unwrap();
    assert_eq!(r.status, 403);
    let r = Http::new(app.addr)
        .get(&format!("/api/v1/reports?site={SITE}&{RANGE}"))
        .await
        .unwrap();
    assert_eq!(r.status, 401);
    let r = h
        .get(&format!(
            "/api/v1/reports?site={SITE}&from=2026-03-05&to=2026-03-01"
        ))
        .await
        .unwrap();
    assert_eq!(r.status, 422);
    let r = h
        .get(&format!(
            "/api/v1/reports?site={SITE}&from=March&to=2026-03-01"
        ))
        .await
        .unwrap();
    assert_eq!(r.status, 400);
    let r = h
        .get(&format!(
            "/api/v1/reports?site={SITE}&{RANGE}&group=weekday"
        ))
        .await
        .unwrap();
    assert_eq!((r.status, r.code()), (422, "invalid".to_string()));

    // Sites compared, the pop-up included: visits per hour of counters open.
    let admin = login(app.addr, "admin", "demo").await.unwrap();
    let r = get_json(
        &mut Http::with_token(app.addr, &admin),
        &format!("/api/v1/reports?{RANGE}&group=site"),
    )
    .await;
    let rows = rows_by(&r, "site");
    for site in [SITE, POPUP] {
        let arrivals = expected_by(&cfg, site, |_| Some(String::new()))[""].arrivals;
        let hours = opening_hours(site);
        assert_eq!(rows[site]["arrivals"].as_i64(), Some(arrivals), "{site}");
        close_to(&rows[site]["opening_hours"], Some(hours), site);
        close_to(
            &rows[site]["visits_per_opening_hour"],
            Some(arrivals as f64 / hours),
            site,
        );
    }
    // The hall's supervisor does not supervise the pop-up's unit: only the hall is compared for them.
    let r = get_json(&mut h, &format!("/api/v1/reports?{RANGE}&group=site")).await;
    assert_eq!(rows_by(&r, "site").keys().collect::<Vec<_>>(), [SITE]);

    // The ended day's ticket tokens are blanked in the database once the maintenance has folded it.
    let db = dir.0.join("vuoro.sqlite");
    let mut blanked = false;
    for _ in 0..100 {
        let c =
            rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .unwrap();
        let left: i64 = c
            .query_row("SELECT COUNT(*) FROM events WHERE kind = 'ticket_issued' AND json_extract(data, '$.token') <> ''", [], |r| r.get(0))
            .unwrap();
        if left == 0 {
            blanked = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(blanked, "the ended day's tokens are still stored");
    // Folded, the figures are the same.
    let r = get_json(
        &mut h,
        &format!("/api/v1/reports?site={SITE}&{RANGE}&group=service"),
    )
    .await;
    let rows = rows_by(&r, "service");
    for (svc, e) in &want {
        check_row(rows[svc.as_str()], e, &format!("{svc} (folded)"), true);
    }
    app.stop().await;
}

/// Splits one CSV line (RFC 4180: quoted fields may hold commas and doubled quotes).
fn csv_fields(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut cur)),
            (c, _) => cur.push(c),
        }
    }
    out.push(cur);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_parses_back_with_the_right_types_and_the_same_numbers_as_json() {
    let dir = TempDir::new("reports-csv");
    let src = config();
    let cfg = Arc::new(Hall::parse(&src).unwrap());
    write_scripted_day(&cfg, &dir.0);
    let app = spawn_app_in(&src, &dir.0).await;
    let sup = login(app.addr, "supervisor", "demo").await.unwrap();
    let mut h = Http::with_token(app.addr, &sup);
    for group in ["service", "day", "counter", "hour", "week", "month"] {
        let q = format!("/api/v1/reports?site={SITE}&from=2026-03-01&to=2026-03-03&group={group}");
        let json = get_json(&mut h, &q).await;
        for how in ["format", "accept"] {
            let r = match how {
                "format" => h.get(&format!("{q}&format=csv")).await.unwrap(),
                _ => h
                    .request("GET", &q, None, &[("Accept", "text/csv")])
                    .await
                    .unwrap(),
            };
            assert_eq!(r.status, 200);
            assert_eq!(r.header("content-type"), Some("text/csv; charset=utf-8"));
            assert!(r.header("content-disposition").unwrap().contains(".csv"));
            let text = String::from_utf8(r.body.clone()).expect("UTF-8");
            let text = text
                .strip_prefix('\u{feff}')
                .expect("starts with a byte order mark");
            assert!(text.ends_with("\r\n"));
            let lines: Vec<&str> = text.trim_end_matches("\r\n").split("\r\n").collect();
            let header = csv_fields(lines[0]);
            let cols: Vec<String> = json["columns"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_str().unwrap().to_string())
                .collect();
            assert_eq!(header, cols, "{group}: header row");
            assert_eq!(
                lines.len() - 1,
                json["rows"].as_array().unwrap().len(),
                "{group}: one line per row"
            );
            for (line, row) in lines[1..].iter().zip(json["rows"].as_array().unwrap()) {
                let fields = csv_fields(line);
                assert_eq!(fields.len(), header.len(), "{group}: {line}");
                for (name, f) in header.iter().zip(&fields) {
                    let want = &row[name.as_str()];
                    if name == "date" || name.ends_with("_start") {
                        let d = NaiveDate::parse_from_str(f, "%Y-%m-%d")
                            .unwrap_or_else(|_| panic!("{name} = {f:?} is not an ISO date"));
                        assert_eq!(want.as_str(), Some(d.to_string().as_str()));
                    } else if want.is_null() {
                        assert_eq!(f, "", "{group}.{name}: no value is an empty cell");
                    } else if want.is_i64() {
                        assert_eq!(
                            f.parse::<i64>()
                                .unwrap_or_else(|_| panic!("{name} = {f:?}")),
                            want.as_i64().unwrap(),
                            "{group}.{name}"
                        );
                    } else if want.is_f64() {
                        assert!(!f.contains(','), "{name}: a dot, never a comma");
                        let v: f64 = f.parse().unwrap_or_else(|_| {
                            panic!("{group}.{name} = {f:?} is not a plain decimal")
                        });
                        assert!(
                            (v - want.as_f64().unwrap()).abs() < 0.0051,
                            "{group}.{name}: {v} vs {want}"
                        );
                    } else {
                        assert_eq!(Some(f.as_str()), want.as_str(), "{group}.{name}");
                    }
                }
            }
        }
    }
    // Names in the language asked for, in UTF-8.
    let r = h
        .get(&format!(
            "/api/v1/reports?site={SITE}&{RANGE}&group=service&format=csv&lang=sv"
        ))
        .await
        .unwrap();
    let text = String::from_utf8(r.body).unwrap();
    assert!(
        text.contains("\r\nkela-general,FPA:s förmåner,kela,"),
        "{text}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_waits_need_no_login_and_keep_sensitive_services_under_their_neutral_group() {
    let dir = TempDir::new("reports-public");
    let app = spawn_app_in(DEMO, &dir.0).await;
    let token = demo_device_token(app.addr, "kiosk-1").await.unwrap();
    let mut k = Http::with_token(app.addr, &token);
    for service in [
        "kela-general",
        "kela-general",
        "mental-health",
        "substance-abuse",
        "lab-sample",
    ] {
        let r = k
            .post(
                &format!("/api/v1/sites/{SITE}/tickets"),
                &json!({"service": service}),
            )
            .await
            .unwrap();
        assert_eq!(r.status, 201);
    }
    let mut anon = Http::new(app.addr);
    let r = anon
        .get(&format!("/api/v1/public/sites/{SITE}/waits"))
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    let body = r.json();
    let text = body.to_string();
    for word in [
        "mental-health",
        "substance-abuse",
        "lab-sample",
        "xray",
        "Mielenterveys",
        "Päihde",
        "näytteenotto",
        "token",
        "priority",
        "agent",
    ] {
        assert!(
            !text.contains(word),
            "'{word}' is on the public page: {text}"
        );
    }
    let services: HashMap<&str, &Value> = body["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["id"].as_str().unwrap(), s))
        .collect();
    assert_eq!(services["kela-general"]["waiting"], 2);
    assert_eq!(
        services["group-h"]["waiting"], 2,
        "mental health and substance abuse, merged"
    );
    assert_eq!(services["group-h"]["name"]["fi"], "Terveyspalvelut");
    assert_eq!(services["group-l"]["waiting"], 1);
    assert_eq!(services["kela-general"]["unit_name"]["sv"], "FPA");
    assert!(
        services["kela-general"]["eta_minutes"].is_null(),
        "no counter is open in this test"
    );
    assert_eq!(services["kela-general"]["eta_reason"], "no_counter_open");
    assert_eq!(services["kela-general"]["open"], true);
    assert_eq!(body["site"]["timezone"], "Europe/Helsinki");
    let r = anon
        .get("/api/v1/public/sites/nowhere/waits")
        .await
        .unwrap();
    assert_eq!(r.status, 404);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_trail_says_who_did_what_when_and_from_where_and_only_admins_read_it() {
    let dir = TempDir::new("reports-audit");
    let src = config();
    let cfg = Arc::new(Hall::parse(&src).unwrap());
    write_scripted_day(&cfg, &dir.0);
    let app = spawn_app_in(&src, &dir.0).await;
    let admin = login(app.addr, "auditor", SECRET_PASSWORD).await.unwrap();
    let mut a = Http::with_token(app.addr, &admin);
    // The scripted day: agent2's actions, each with when and where.
    let r = get_json(
        &mut a,
        &format!("/api/v1/audit?site={SITE}&{RANGE}&user=agent2"),
    )
    .await;
    let entries = r["entries"].as_array().unwrap();
    let (stints, _) = script();
    // agent2 at c5: open, close, and a call, (a start) and an end per stint there.
    let at_c5: Vec<&Stint> = stints
        .iter()
        .filter(|s| s.called.as_ref().is_some_and(|c| c.1 == "c5"))
        .collect();
    let want = 2 + at_c5.len() * 2 + at_c5.iter().filter(|s| s.started.is_some()).count();
    assert_eq!(entries.len(), want, "{r:#}");
    for e in entries {
        assert_eq!(e["actor"], json!({"kind": "user", "id": "agent2"}));
        assert!(e["at"].as_str().unwrap().starts_with("2026-03-02T"));
        assert_eq!(e["source"], "event");
    }
    assert!(
        entries
            .iter()
            .any(|e| e["action"] == "counter_opened" && e["details"]["counter"] == "c5")
    );
    // Kiosk actions carry the device.
    let r = get_json(
        &mut a,
        &format!("/api/v1/audit?site={SITE}&{RANGE}&user=kiosk-1"),
    )
    .await;
    let issued = r["entries"].as_array().unwrap();
    assert_eq!(
        issued.len(),
        stints.iter().filter(|s| s.new && s.site == SITE).count()
    );
    assert!(
        issued
            .iter()
            .all(|e| e["actor"]["kind"] == "device" && e["action"] == "ticket_issued")
    );
    assert!(
        !r.to_string().contains("5eed"),
        "no ticket token in the audit trail"
    );

    // Today: a supervisor's actions and report download are recorded with the client's address.
    let sup = login(app.addr, "supervisor", "demo").await.unwrap();
    let mut s = Http::with_token(app.addr, &sup);
    assert_eq!(
        s.post("/api/v1/counters/c1/open", &json!({}))
            .await
            .unwrap()
            .status,
        200
    );
    assert_eq!(
        s.post(
            &format!("/api/v1/sites/{SITE}/services/parking/accepting"),
            &json!({"accepting": false})
        )
        .await
        .unwrap()
        .status,
        200
    );
    assert_eq!(
        s.get(&format!("/api/v1/reports?site={SITE}&group=day&format=csv"))
            .await
            .unwrap()
            .status,
        200
    );
    let bad = Http::new(app.addr)
        .post(
            "/api/v1/auth/login",
            &json!({"username": "supervisor", "password": "not-it"}),
        )
        .await
        .unwrap();
    assert_eq!(bad.status, 401);
    let r = get_json(
        &mut a,
        &format!("/api/v1/audit?site={SITE}&user=supervisor"),
    )
    .await;
    let entries = r["entries"].as_array().unwrap();
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for want in [
        "POST /api/v1/auth/login",
        "counter_opened",
        "POST /api/v1/counters/c1/open",
        "service_accepting",
        "POST /api/v1/sites/iso-omena/services/parking/accepting",
    ] {
        assert!(actions.contains(&want), "{want} missing in {actions:?}");
    }
    assert!(
        actions
            .iter()
            .any(|a| a.starts_with("GET /api/v1/reports?site=iso-omena"))
    );
    let req = entries
        .iter()
        .find(|e| e["action"] == "POST /api/v1/counters/c1/open")
        .unwrap();
    assert_eq!(req["client"], "127.0.0.1");
    assert_eq!(req["status"], 200);
    assert_eq!(req["site"], SITE);
    // The failed sign-in is there, without the name typed.
    let r = get_json(&mut a, "/api/v1/audit").await;
    let failed: Vec<&Value> = r["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "POST /api/v1/auth/login" && e["status"] == 401)
        .collect();
    assert_eq!(failed.len(), 1);
    assert!(failed[0]["actor"]["id"].is_null());
    assert!(!r.to_string().contains("not-it"));
    assert!(!r.to_string().contains(&sup));
    // Only admins.
    let r = s.get("/api/v1/audit").await.unwrap();
    assert_eq!(r.status, 403);
    assert_eq!(
        Http::new(app.addr)
            .get("/api/v1/audit")
            .await
            .unwrap()
            .status,
        401
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_with_a_moved_clock_keeps_the_reports_and_the_daemon_starts_again() {
    let dir = TempDir::new("reports-purge");
    let src = config();
    let cfg = Arc::new(Hall::parse(&src).unwrap());
    write_scripted_day(&cfg, &dir.0);
    let cfg_file = dir.0.join("vuoro.toml");
    std::fs::write(&cfg_file, &src).unwrap();
    let app = spawn_app_in(&src, &dir.0).await;
    let sup = login(app.addr, "supervisor", "demo").await.unwrap();
    let q = format!("/api/v1/reports?site={SITE}&{RANGE}&group=service");
    let before = get_json(&mut Http::with_token(app.addr, &sup), &q).await;
    // A clean stop writes a snapshot: start-up will need only it and what follows.
    app.stop().await;
    let db = dir.0.join("vuoro.sqlite");
    let count = |sql: &str| -> i64 {
        let c =
            rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .unwrap();
        c.query_row(sql, [], |r| r.get(0)).unwrap()
    };
    // Before local midnight at the end of 2 March.
    let march = "SELECT COUNT(*) FROM events WHERE at < '2026-03-02T22:00:00.000Z'";
    assert!(count(march) > 0);
    let purge = |now: &str| {
        let out = std::process::Command::new(vuoro_bin())
            .args(["purge", "--data"])
            .arg(&dir.0)
            .arg("--config")
            .arg(&cfg_file)
            .args(["--now", now])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    // 1 April: 30 days back is 2 March, so the scripted day is kept.
    let out = purge("2026-04-01T09:00:00Z");
    assert!(out.contains("deleted 0 event(s)"), "{out}");
    // 2 April: 30 days back is 3 March; 2 March goes.
    let out = purge("2026-04-02T09:00:00Z");
    assert!(!out.contains("deleted 0 event(s)"), "{out}");
    assert_eq!(
        count(march),
        0,
        "ticket-level detail older than 30 days is gone"
    );
    let app = spawn_app_in(&src, &dir.0).await;
    let after = get_json(&mut Http::with_token(app.addr, &sup_login(&app).await), &q).await;
    assert_eq!(
        after["rows"], before["rows"],
        "the aggregates answer as before"
    );
    // The daemon started from its snapshot: it is up and works.
    let token = demo_device_token(app.addr, "kiosk-1").await.unwrap();
    let r = Http::with_token(app.addr, &token)
        .post(
            &format!("/api/v1/sites/{SITE}/tickets"),
            &json!({"service": "parking"}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 201);
    app.stop().await;
}

async fn sup_login(app: &TestApp) -> String {
    login(app.addr, "supervisor", "demo").await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_logs_of_the_real_daemon_hold_no_token_password_or_session() {
    let dir = TempDir::new("reports-logs");
    let src = config();
    let cfg_file = dir.0.join("vuoro.toml");
    std::fs::write(&cfg_file, &src).unwrap();
    let log_path = dir.0.join("daemon.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let port = free_port();
    let mut child = std::process::Command::new(vuoro_bin())
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data"])
        .arg(dir.0.join("data"))
        .arg("--config")
        .arg(&cfg_file)
        .env("RUST_LOG", "debug")
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap();
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    wait_ready(addr).await;
    let mut secrets: Vec<String> = vec![SECRET_PASSWORD.into(), "not-the-password".into()];

    // Staff sign in (one with a wrong password first), a kiosk and the public take tickets.
    let r = Http::new(addr)
        .post(
            "/api/v1/auth/login",
            &json!({"username": "auditor", "password": "not-the-password"}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 401);
    let admin = login(addr, "auditor", SECRET_PASSWORD).await.unwrap();
    let agent = login(addr, "agent2", "demo").await.unwrap();
    let device = demo_device_token(addr, "kiosk-1").await.unwrap();
    secrets.extend([admin.clone(), agent.clone(), device.clone()]);
    for s in [&admin, &agent, &device] {
        secrets.push(vuoro_server::auth::sha256_hex(s));
    }
    let mut k = Http::with_token(addr, &device);
    let mut tickets = Vec::new();
    for service in ["joint-service", "mental-health", "parking"] {
        let r = k
            .request(
                "POST",
                &format!("/api/v1/sites/{SITE}/tickets"),
                Some(json!({"service": service}).to_string().as_bytes()),
                &[("Idempotency-Key", &format!("log-test-{service}"))],
            )
            .await
            .unwrap();
        assert_eq!(r.status, 201);
        tickets.push(r.json()["token"].as_str().unwrap().to_string());
    }
    let r = Http::new(addr)
        .post(
            &format!("/api/v1/sites/{SITE}/tickets"),
            &json!({"service": "joint-service"}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 201);
    tickets.push(r.json()["token"].as_str().unwrap().to_string());
    secrets.extend(tickets.iter().cloned());

    // The customer follows their ticket by token (HTTP and WebSocket) and cancels one.
    let mut anon = Http::new(addr);
    assert_eq!(
        anon.get(&format!("/api/v1/tickets/{}", tickets[0]))
            .await
            .unwrap()
            .status,
        200
    );
    let mut ws = Ws::connect(addr, None).await.unwrap();
    ws.subscribe(&format!("ticket:{}", tickets[0]), None)
        .await
        .unwrap();
    assert_eq!(
        ws.next(Duration::from_secs(5)).await.unwrap()["type"],
        "snapshot"
    );
    let mut staff_ws = Ws::connect(addr, None).await.unwrap();
    staff_ws
        .send(&json!({"type": "auth", "token": agent}))
        .await
        .unwrap();
    staff_ws
        .subscribe(&format!("site:{SITE}"), None)
        .await
        .unwrap();
    assert_eq!(
        anon.delete(&format!("/api/v1/tickets/{}", tickets[3]))
            .await
            .unwrap()
            .status,
        200
    );

    // Counter work, reports, the audit trail, sign-out; a wrong token too.
    let mut a2 = Http::with_token(addr, &agent);
    for (verb, body) in [
        ("open", json!({})),
        ("call-next", json!({})),
        ("start", json!({})),
        ("finish", json!({"next_service": "parking"})),
        ("call-next", json!({})),
        ("no-show", json!({})),
    ] {
        let r = a2
            .post(&format!("/api/v1/counters/c5/{verb}"), &body)
            .await
            .unwrap();
        assert!(r.status == 200 || r.status == 204, "{verb}: {}", r.status);
    }
    let mut ad = Http::with_token(addr, &admin);
    assert_eq!(
        ad.get(&format!("/api/v1/reports?site={SITE}&group=staff"))
            .await
            .unwrap()
            .status,
        200
    );
    assert_eq!(
        ad.get(&format!(
            "/api/v1/reports?site={SITE}&group=hour&format=csv"
        ))
        .await
        .unwrap()
        .status,
        200
    );
    assert_eq!(
        ad.get(&format!("/api/v1/audit?site={SITE}"))
            .await
            .unwrap()
            .status,
        200
    );
    let wrong = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef".to_string();
    assert_eq!(
        Http::with_token(addr, &wrong)
            .get("/api/v1/auth/me")
            .await
            .unwrap()
            .status,
        401
    );
    secrets.push(wrong);
    assert_eq!(
        ad.post("/api/v1/auth/logout", &json!({}))
            .await
            .unwrap()
            .status,
        200
    );
    let _ = staff_ws.drain(Duration::from_millis(300)).await;
    let _ = ws.drain(Duration::from_millis(100)).await;
    drop(ws);
    drop(staff_ws);

    // Stop the daemon (SIGTERM, by its own id) and read everything it wrote.
    let _ = std::process::Command::new("kill")
        .arg(child.id().to_string())
        .status();
    for _ in 0..100 {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if child.try_wait().unwrap().is_none() {
        let _ = child.kill();
    }
    let _ = child.wait();
    let out = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        out.contains(" ready "),
        "the daemon's log was captured:\n{out}"
    );
    assert!(out.lines().count() > 3, "{out}");
    for s in &secrets {
        assert!(
            !out.contains(s.as_str()),
            "the log holds a secret ({}…):\n{out}",
            &s[..6.min(s.len())]
        );
    }
}
