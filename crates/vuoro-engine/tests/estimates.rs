//! Property tests of the wait forecasts (eta.rs) against what the engine really does: with one counter
//! open, the number of tickets a ticket has "ahead" is exactly the number of `call-next`s that counter
//! makes before it calls that ticket, whatever services the counter takes them from; and a ticket that no
//! open counter can call has no estimate, only the reason.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use proptest::prelude::*;
use vuoro_engine::eta::NO_COUNTER_OPEN;
use vuoro_engine::*;

// c1 serves a; c2 serves a and b in one tier; c3 serves t1 first and b second; nothing serves z.
const CONFIG: &str = r#"
[[language]]
code = "fi"
name = "Suomi"
[[language]]
code = "sv"
name = "Svenska"
[[language]]
code = "en"
name = "English"
[[site]]
id = "s"
name = { fi = "S" }
timezone = "Europe/Helsinki"
languages = ["fi", "sv", "en"]
always_open = true
[[site.unit]]
id = "u"
name = { fi = "U" }
[[site.series]]
letter = "A"
[[site.service]]
id = "a"
unit = "u"
series = "A"
name = { fi = "a", sv = "a", en = "a" }
[[site.service]]
id = "b"
unit = "u"
series = "A"
name = { fi = "b", sv = "b", en = "b" }
[[site.service]]
id = "t1"
unit = "u"
series = "A"
name = { fi = "t1", sv = "t1", en = "t1" }
[[site.service]]
id = "z"
unit = "u"
series = "A"
name = { fi = "z", sv = "z", en = "z" }
[[site.counter]]
id = "c1"
unit = "u"
name = { fi = "1" }
services = [{ service = "a" }]
[[site.counter]]
id = "c2"
unit = "u"
name = { fi = "2" }
services = [{ service = "a" }, { service = "b" }]
[[site.counter]]
id = "c3"
unit = "u"
name = { fi = "3" }
services = [{ service = "t1", tier = 1 }, { service = "b", tier = 2 }]
"#;

const SERVICES: [&str; 4] = ["a", "b", "t1", "z"];
const COUNTERS: [&str; 3] = ["c1", "c2", "c3"];

#[derive(Debug, Clone)]
enum Op {
    Issue(usize, bool),
    CallNext(usize),
    SendTo(usize, usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..4usize, any::<bool>()).prop_map(|(s, a)| Op::Issue(s, a)),
        2 => (0..3usize).prop_map(Op::CallNext),
        1 => (0..3usize, 0..3usize).prop_map(|(c, d)| Op::SendTo(c, d)),
    ]
}

fn counter(e: &mut Engine, c: &str, verb: CounterVerb, now: DateTime<Utc>) -> bool {
    let ok = e
        .handle(
            Command::Counter {
                counter: c.parse().unwrap(),
                verb,
            },
            now,
            &Actor::user("x"),
        )
        .is_ok();
    e.take_events();
    ok
}

fn finish() -> CounterVerb {
    CounterVerb::Finish {
        next_service: None,
        position: Position::Original,
    }
}

/// Builds a state from `ops` with every counter open, then leaves only `keep` open and free.
fn state(ops: &[Op], keep: usize) -> Engine {
    let now: DateTime<Utc> = "2026-11-24T08:00:00Z".parse().unwrap();
    let mut e = Engine::new(Arc::new(Hall::parse(CONFIG).unwrap()), now);
    for c in COUNTERS {
        counter(&mut e, c, CounterVerb::Open, now);
    }
    for (n, op) in ops.iter().enumerate() {
        match op {
            Op::Issue(s, assist) => {
                e.handle(
                    Command::Issue {
                        site: "s".parse().unwrap(),
                        service: SERVICES[*s].parse().unwrap(),
                        lang: "fi".into(),
                        priority: if *assist {
                            Priority::Assist
                        } else {
                            Priority::Normal
                        },
                        token: format!("{n:032x}").parse().unwrap(),
                        channel: vuoro_engine::Channel::Kiosk,
                        idempotency: None,
                    },
                    now,
                    &Actor::device("k"),
                )
                .unwrap();
                e.take_events();
            }
            Op::CallNext(c) => {
                counter(&mut e, COUNTERS[*c], CounterVerb::CallNext, now);
            }
            Op::SendTo(c, d) => {
                counter(
                    &mut e,
                    COUNTERS[*c],
                    CounterVerb::Transfer {
                        ticket: None,
                        to: TransferTarget::Counter(COUNTERS[*d].parse().unwrap()),
                        position: Position::Back,
                    },
                    now,
                );
            }
        }
    }
    for (i, c) in COUNTERS.iter().enumerate() {
        counter(&mut e, c, finish(), now);
        if i != keep {
            assert!(counter(&mut e, c, CounterVerb::Close, now), "{c} closes");
        }
    }
    e
}

fn waiting(e: &Engine) -> Vec<Ticket> {
    e.site_state("s")
        .unwrap()
        .tickets
        .values()
        .filter(|t| t.state == TicketState::Waiting)
        .cloned()
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn ahead_is_the_number_of_calls_before_the_ticket(ops in proptest::collection::vec(op(), 1..40), keep in 0..3usize) {
        let e = state(&ops, keep);
        let now = e.site_now("s");
        let kept = e.config().site("s").unwrap().counter(COUNTERS[keep]).unwrap().clone();
        for t in waiting(&e) {
            let f = e.forecast_ticket(&t, now).expect("a waiting ticket has a forecast");
            let can_call = match &t.target_counter {
                Some(c) => c == COUNTERS[keep],
                None => kept.services.iter().any(|cs| cs.service == t.service),
            };
            if !can_call {
                prop_assert_eq!(f.wait_secs, None, "ticket {} in {}: no open counter can call it", t.number, &t.service);
                prop_assert_eq!(f.eta_reason(), Some(NO_COUNTER_OPEN));
                continue;
            }
            prop_assert!(f.wait_secs.is_some(), "ticket {} has an estimate", t.number);
            prop_assert_eq!(f.eta_reason(), None);
            // Call next until it is called; count the calls before it.
            let mut sim = e.clone();
            let mut calls = 0u32;
            loop {
                prop_assert!(counter(&mut sim, COUNTERS[keep], CounterVerb::CallNext, now));
                let called = sim.site_state("s").unwrap().counters[COUNTERS[keep]].current;
                if called == Some(t.id) {
                    break;
                }
                calls += 1;
                prop_assert!(calls <= 60, "ticket {} never called", t.number);
            }
            prop_assert_eq!(f.ahead, calls, "ticket {} in {} (own queue place {:?})", t.number, &t.service, e.position(&t));
        }
    }

    #[test]
    fn the_kiosks_promise_is_the_tickets_forecast(ops in proptest::collection::vec(op(), 1..40), keep in 0..3usize) {
        // What the services screen says a new ticket waits is what the ticket says once issued.
        let e = state(&ops, keep);
        let now = e.site_now("s");
        for service in SERVICES {
            let promised = e.forecast_new("s", service, now).unwrap();
            // The lists' cheaper estimate says the same minutes, or the same reason for none.
            let listed = e.estimate_new("s", service, now).unwrap();
            prop_assert_eq!(listed.wait_secs, promised.wait_secs, "{}", service);
            let mut after = e.clone();
            after
                .handle(
                    Command::Issue {
                        site: "s".parse().unwrap(),
                        service: service.parse().unwrap(),
                        lang: "fi".into(),
                        priority: Priority::Normal,
                        token: "f".repeat(32).parse().unwrap(),
                        channel: vuoro_engine::Channel::Kiosk,
                        idempotency: None,
                    },
                    now,
                    &Actor::device("k"),
                )
                .unwrap();
            let t = after.ticket_by_token(&"f".repeat(32)).unwrap().clone();
            let got = after.forecast_ticket(&t, now).unwrap();
            prop_assert_eq!(promised, got, "{}", service);
            let view = after.ticket_view(&t, None);
            prop_assert_eq!(view.position, Some(got.ahead));
            prop_assert_eq!(view.eta_minutes, got.eta_minutes());
            prop_assert_eq!(view.eta_reason, got.eta_reason());
        }
    }
}
