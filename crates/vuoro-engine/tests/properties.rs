//! Property tests over random command sequences: numbers are never shared by two open tickets, no ticket
//! is at two counters or called after it ended, call-next is first come first served within a level,
//! every ticket ends in exactly one final state, errors change nothing, and replaying the events (from
//! scratch or from a snapshot) rebuilds the same state.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;
use vuoro_engine::CounterId;
use vuoro_engine::*;

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
first = 1
last = 12
[[site.series]]
letter = "B"
first = 5
last = 9

[[site.service]]
id = "s1"
unit = "u"
series = "A"
name = { fi = "1", sv = "1", en = "1" }
[[site.service]]
id = "s2"
unit = "u"
series = "A"
name = { fi = "2", sv = "2", en = "2" }
[[site.service]]
id = "s3"
unit = "u"
series = "B"
name = { fi = "3", sv = "3", en = "3" }

[[site.counter]]
id = "c1"
unit = "u"
name = { fi = "1" }
services = [{ service = "s1" }]
[[site.counter]]
id = "c2"
unit = "u"
name = { fi = "2" }
services = [{ service = "s1" }, { service = "s2" }]
[[site.counter]]
id = "c3"
unit = "u"
name = { fi = "3" }
services = [{ service = "s3", tier = 1 }, { service = "s2", tier = 2 }]
"#;

const SERVICES: [&str; 3] = ["s1", "s2", "s3"];
const COUNTERS: [&str; 3] = ["c1", "c2", "c3"];

#[derive(Debug, Clone)]
enum Op {
    Issue(usize, bool, Option<u8>),
    Open(usize),
    Close(usize),
    CallNext(usize),
    Call(usize, usize),
    Recall(usize),
    Start(usize),
    Finish(usize, Option<usize>, u8),
    NoShow(usize),
    Transfer(usize, usize, u8),
    TransferToCounter(usize, usize),
    Park(usize),
    Return(usize, usize, bool),
    Cancel(usize),
    Feedback(usize, u8),
    Wait(i64),
    EndDay,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..3usize, any::<bool>(), proptest::option::of(0..4u8)).prop_map(|(s, a, k)| Op::Issue(s, a, k)),
        3 => (0..3usize).prop_map(Op::Open),
        1 => (0..3usize).prop_map(Op::Close),
        6 => (0..3usize).prop_map(Op::CallNext),
        2 => (0..3usize, 0..40usize).prop_map(|(c, t)| Op::Call(c, t)),
        1 => (0..3usize).prop_map(Op::Recall),
        2 => (0..3usize).prop_map(Op::Start),
        3 => (0..3usize, proptest::option::of(0..3usize), 0..3u8).prop_map(|(c, s, p)| Op::Finish(c, s, p)),
        2 => (0..3usize).prop_map(Op::NoShow),
        2 => (0..3usize, 0..3usize, 0..3u8).prop_map(|(c, s, p)| Op::Transfer(c, s, p)),
        1 => (0..3usize, 0..3usize).prop_map(|(c, d)| Op::TransferToCounter(c, d)),
        1 => (0..3usize).prop_map(Op::Park),
        2 => (0..3usize, 0..40usize, any::<bool>()).prop_map(|(c, t, q)| Op::Return(c, t, q)),
        1 => (0..40usize).prop_map(Op::Cancel),
        2 => (0..40usize, 0..7u8).prop_map(|(t, r)| Op::Feedback(t, r)),
        3 => (1..600i64).prop_map(Op::Wait),
        1 => Just(Op::EndDay),
    ]
}

fn position(p: u8) -> Position {
    [Position::Front, Position::Back, Position::Original][p as usize % 3]
}

/// The ticket call-next must pick, computed here independently: tickets the counter may call, then the
/// lowest (tier, assistance first, queue order).
fn expected_next(e: &Engine, counter: &str) -> Option<TicketId> {
    let site = e.config().site("s").unwrap();
    let c = site.counter(counter).unwrap();
    let st = e.site_state("s").unwrap();
    st.tickets
        .values()
        .filter(|t| t.state == TicketState::Waiting)
        .filter_map(|t| {
            let tier = match &t.target_counter {
                Some(tc) if tc == counter => 0,
                Some(_) => return None,
                None => c.services.iter().find(|cs| cs.service == t.service)?.tier,
            };
            Some(((tier, t.priority.rank(), t.order), t.id))
        })
        .min()
        .map(|(_, id)| id)
}

fn check_invariants(e: &Engine) -> Result<(), TestCaseError> {
    let st = e.site_state("s").unwrap();
    // No two open tickets share a number.
    let mut seen = std::collections::HashSet::new();
    for t in st.tickets.values().filter(|t| !t.state.is_final()) {
        prop_assert!(
            seen.insert(t.number.clone()),
            "number {} is held twice",
            t.number
        );
    }
    // Each counter's current ticket is called or served there; no ticket at two counters.
    let mut current = std::collections::HashSet::new();
    for (cid, c) in &st.counters {
        if let Some(id) = c.current {
            let t = &st.tickets[&id];
            prop_assert!(
                matches!(t.state, TicketState::Called | TicketState::Serving),
                "{cid} holds a {:?} ticket",
                t.state
            );
            prop_assert_eq!(t.counter.as_deref(), Some(cid.as_str()));
            prop_assert!(current.insert(id), "ticket {} at two counters", id);
            prop_assert!(c.open, "closed counter {} holds a ticket", cid);
        }
    }
    for t in st.tickets.values() {
        if matches!(t.state, TicketState::Called | TicketState::Serving) {
            prop_assert!(
                current.contains(&t.id),
                "ticket {} is {:?} but at no counter",
                t.number,
                t.state
            );
        }
    }
    // A waiting ticket's position is the number of tickets before it in its queue's order (the engine
    // counts from whichever end is nearer).
    for (service, q) in &st.waiting {
        for (i, (_, _, id)) in q.iter().enumerate() {
            prop_assert_eq!(
                e.position(&st.tickets[id]),
                Some(i as u32),
                "position of ticket {} in {}",
                id,
                service
            );
        }
    }
    for t in st
        .tickets
        .values()
        .filter(|t| t.state != TicketState::Waiting)
    {
        prop_assert_eq!(e.position(t), None);
    }
    Ok(())
}

fn run(ops: &[Op]) -> Result<(), TestCaseError> {
    let cfg = Arc::new(Hall::parse(CONFIG).unwrap());
    let t0: DateTime<Utc> = "2026-11-23T06:00:00Z".parse().unwrap();
    let mut now = t0;
    let mut e = Engine::new(cfg.clone(), now);
    let actor = Actor::user("agent");
    let mut log: Vec<Event> = Vec::new();
    let mut token_n = 0u64;
    for op in ops {
        let ids: Vec<TicketId> = e.site_state("s").unwrap().tickets.keys().copied().collect();
        let pick =
            |i: usize| TicketRef::Id(ids.get(i % ids.len().max(1)).copied().unwrap_or(999_999));
        let counter = |c: usize| -> CounterId { COUNTERS[c].parse().unwrap() };
        let cmd = match op {
            Op::Issue(s, assist, key) => {
                token_n += 1;
                Command::Issue {
                    site: "s".parse().unwrap(),
                    service: SERVICES[*s].parse().unwrap(),
                    lang: "fi".into(),
                    priority: if *assist {
                        Priority::Assist
                    } else {
                        Priority::Normal
                    },
                    token: format!("{token_n:032x}").parse().unwrap(),
                    channel: vuoro_engine::Channel::Kiosk,
                    idempotency: key.map(|k| format!("key-{k}")),
                }
            }
            Op::Open(c) => Command::Counter {
                counter: counter(*c),
                verb: CounterVerb::Open,
            },
            Op::Close(c) => Command::Counter {
                counter: counter(*c),
                verb: CounterVerb::Close,
            },
            Op::CallNext(c) => Command::Counter {
                counter: counter(*c),
                verb: CounterVerb::CallNext,
            },
            Op::Call(c, t) => Command::Counter {
                counter: counter(*c),
                verb: CounterVerb::Call(pick(*t)),
            },
            Op::Recall(c) => Command::Counter {
                counter: counter(*c),
                verb: CounterVerb::Recall,
            },
            Op::Start(c) => Command::Counter {
                counter: counter(*c),
                verb: CounterVerb::Start,
            },
            Op::Finish(c, s, p) => Command::Counter {
                counter: counter(*c),
                verb: CounterVerb::Finish {
                    next_service: s.map(|s| SERVICES[s].parse().unwrap()),
                    position: position(*p),
                },
            },
            Op::NoShow(c) => Command::Counter {
                counter: counter(*c),
                verb: CounterVerb::NoShow,
            },
            Op::Transfer(c, s, p) => Command::Counter {
                counter: counter(*c),
                verb: CounterVerb::Transfer {
                    ticket: None,
                    to: TransferTarget::Service(SERVICES[*s].parse().unwrap()),
                    position: position(*p),
                },
            },
            Op::TransferToCounter(c, d) => Command::Counter {
                counter: counter(*c),
                verb: CounterVerb::Transfer {
                    ticket: None,
                    to: TransferTarget::Counter(counter(*d)),
                    position: Position::Back,
                },
            },
            Op::Park(c) => Command::Counter {
                counter: counter(*c),
                verb: CounterVerb::Park,
            },
            Op::Return(c, t, q) => Command::Counter {
                counter: counter(*c),
                verb: CounterVerb::Return {
                    ticket: pick(*t),
                    to: if *q {
                        ReturnTo::Queue
                    } else {
                        ReturnTo::Counter
                    },
                },
            },
            Op::Cancel(t) => {
                let token = ids
                    .get(t % ids.len().max(1))
                    .and_then(|id| e.ticket("s", *id))
                    .map(|t| t.token.clone())
                    .unwrap_or_else(|| "no-such-ticket-token".parse().unwrap());
                Command::Cancel { token }
            }
            Op::Feedback(t, rating) => {
                let token = ids
                    .get(t % ids.len().max(1))
                    .and_then(|id| e.ticket("s", *id))
                    .map(|t| t.token.clone())
                    .unwrap_or_else(|| "no-such-ticket-token".parse().unwrap());
                Command::Feedback {
                    token,
                    rating: *rating,
                    comment: Some("  ok  ".into()),
                }
            }
            Op::Wait(m) => {
                now += Duration::minutes(*m);
                Command::Tick
            }
            Op::EndDay => Command::EndDay {
                site: "s".parse().unwrap(),
            },
        };
        let expected = match op {
            Op::CallNext(c) => {
                let next = expected_next(&e, COUNTERS[*c]);
                // The desk's queue view lists the same ticket first.
                let counter = e.config().site("s").unwrap().counter(COUNTERS[*c]).unwrap();
                let shown = e.counter_queue(counter).first().map(|t| t.id);
                prop_assert_eq!(
                    shown,
                    next,
                    "the queue view's first ticket is the one called next"
                );
                Some(next)
            }
            _ => None,
        };
        let before = serde_json::to_value(e.state()).unwrap();
        let states_before: std::collections::HashMap<TicketId, TicketState> = e
            .site_state("s")
            .unwrap()
            .tickets
            .values()
            .map(|t| (t.id, t.state))
            .collect();
        let feedback_before: std::collections::HashMap<TicketId, Option<u8>> = e
            .site_state("s")
            .unwrap()
            .tickets
            .values()
            .map(|t| (t.id, t.feedback))
            .collect();
        let result = e.handle(cmd, now, &actor);
        let events = e.take_events();
        match &result {
            Err(_) => {
                // An error changes nothing (the day cannot roll here: time only moves in Wait).
                prop_assert!(events.is_empty(), "a refused command emitted {events:?}");
                prop_assert_eq!(&serde_json::to_value(e.state()).unwrap(), &before);
            }
            Ok(out) => {
                if let (Some(exp), Op::CallNext(c)) = (expected, op) {
                    let called = events.iter().find_map(|ev| match &ev.kind {
                        EventKind::TicketCalled { ticket, counter } if counter == COUNTERS[*c] => {
                            Some(*ticket)
                        }
                        _ => None,
                    });
                    if e.site_state("s").unwrap().counters[COUNTERS[*c]].open || called.is_some() {
                        prop_assert_eq!(
                            called,
                            exp,
                            "call-next at {} broke first come first served",
                            COUNTERS[*c]
                        );
                    }
                    if exp.is_none() {
                        prop_assert!(
                            matches!(out, Outcome::NobodyWaiting { .. }),
                            "nobody waiting, yet something was called"
                        );
                    }
                }
            }
        }
        // Feedback only on a finished visit, once, rated 1..=5, the comment trimmed.
        for ev in &events {
            if let EventKind::FeedbackGiven {
                ticket,
                rating,
                comment,
                ..
            } = &ev.kind
            {
                prop_assert_eq!(
                    states_before.get(ticket).copied(),
                    Some(TicketState::Finished),
                    "feedback on a visit that was not finished"
                );
                prop_assert_eq!(
                    feedback_before.get(ticket).copied().flatten(),
                    None,
                    "a second feedback for one visit"
                );
                prop_assert!((1..=5).contains(rating));
                prop_assert_eq!(comment.as_deref(), Some("ok"));
            }
        }
        if let (Op::Feedback(..), Ok(_)) = (op, &result) {
            prop_assert_eq!(events.len(), 1, "feedback is one event");
        }
        // No ticket is called again after it finished or was cancelled.
        for ev in &events {
            if let EventKind::TicketCalled { ticket, .. } = &ev.kind {
                let s = states_before.get(ticket).copied();
                prop_assert!(
                    !matches!(
                        s,
                        Some(TicketState::Finished | TicketState::Cancelled | TicketState::NoShow)
                    ),
                    "ticket {ticket} was called from {s:?}"
                );
            }
        }
        log.extend(events);
        check_invariants(&e)?;
    }
    // End the day: every ticket ends in exactly one final state.
    e.handle(
        Command::EndDay {
            site: "s".parse().unwrap(),
        },
        now,
        &actor,
    )
    .unwrap();
    let tail = e.take_events();
    log.extend(tail);
    for t in e.site_state("s").unwrap().tickets.values() {
        prop_assert!(
            t.state.is_final(),
            "ticket {} left {:?} after the day ended",
            t.number,
            t.state
        );
        // Walk its events: it ends (finished, cancelled, no-show), and only a no-show may be brought
        // back (a return) before it ends again.
        let mut open = true;
        for ev in log.iter().filter(|ev| ev.kind.ticket() == Some(t.id)) {
            match &ev.kind {
                EventKind::TicketFinished {
                    next_service: None, ..
                }
                | EventKind::TicketCancelled { .. }
                | EventKind::TicketNoShow { .. } => {
                    prop_assert!(open, "ticket {} ended twice", t.number);
                    open = false;
                }
                EventKind::TicketReturned { .. } if !open => open = true,
                EventKind::FeedbackGiven { .. } => {
                    prop_assert!(!open, "feedback on ticket {} before it ended", t.number)
                }
                _ => prop_assert!(
                    open,
                    "ticket {} changed after it ended: {:?}",
                    t.number,
                    ev.kind
                ),
            }
        }
        prop_assert!(!open, "ticket {} did not end", t.number);
    }
    // Replaying the log rebuilds the same state, from scratch and from a mid-way snapshot.
    let mut replay = Engine::new(cfg.clone(), t0);
    let half = log.len() / 2;
    for ev in &log[..half] {
        replay.apply(ev);
    }
    let snapshot: vuoro_engine::State =
        serde_json::from_str(&serde_json::to_string(replay.state()).unwrap()).unwrap();
    let mut from_snapshot = Engine::from_snapshot(cfg.clone(), snapshot, now);
    for ev in &log[half..] {
        replay.apply(ev);
        from_snapshot.apply(ev);
    }
    let want = serde_json::to_value(e.state()).unwrap();
    prop_assert_eq!(&serde_json::to_value(replay.state()).unwrap(), &want);
    prop_assert_eq!(&serde_json::to_value(from_snapshot.state()).unwrap(), &want);
    // The derived indexes too: the next ticket for each counter agrees.
    for c in COUNTERS {
        let site = cfg.site("s").unwrap();
        prop_assert_eq!(
            replay.next_for_counter(site, site.counter(c).unwrap()),
            e.next_for_counter(site, site.counter(c).unwrap())
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn random_days_keep_the_invariants(ops in proptest::collection::vec(op(), 1..120)) {
        run(&ops)?;
    }
}

#[test]
fn numbers_wrap_without_reusing_an_open_one_and_reset_at_local_midnight() {
    let cfg = Arc::new(Hall::parse(CONFIG).unwrap());
    // 23:50 in Helsinki on 23 November.
    let mut now: DateTime<Utc> = "2026-11-23T21:50:00Z".parse().unwrap();
    let mut e = Engine::new(cfg, now);
    let a = Actor::device("k");
    let issue = |e: &mut Engine, n: u64, now| {
        e.handle(
            Command::Issue {
                site: "s".parse().unwrap(),
                service: "s3".parse().unwrap(),
                lang: "fi".into(),
                priority: Priority::Normal,
                token: format!("{n:032x}").parse().unwrap(),
                channel: vuoro_engine::Channel::Kiosk,
                idempotency: None,
            },
            now,
            &a,
        )
    };
    // Series B is 5..=9: five numbers.
    let mut numbers = Vec::new();
    for n in 0..5 {
        let Outcome::Ticket { id, .. } = issue(&mut e, n, now).unwrap() else {
            panic!()
        };
        numbers.push(e.ticket("s", id).unwrap().number.clone());
    }
    assert_eq!(numbers, ["B005", "B006", "B007", "B008", "B009"]);
    assert!(matches!(
        issue(&mut e, 9, now),
        Err(EngineError::Conflict {
            code: Conflict::SeriesExhausted,
            ..
        })
    ));
    // B006 ends; the next number wraps to the only free one.
    e.handle(
        Command::Counter {
            counter: "c3".parse().unwrap(),
            verb: CounterVerb::Open,
        },
        now,
        &a,
    )
    .unwrap();
    e.handle(
        Command::Counter {
            counter: "c3".parse().unwrap(),
            verb: CounterVerb::Call(TicketRef::Number("B006".into())),
        },
        now,
        &a,
    )
    .unwrap();
    e.handle(
        Command::Counter {
            counter: "c3".parse().unwrap(),
            verb: CounterVerb::Finish {
                next_service: None,
                position: Position::Original,
            },
        },
        now,
        &a,
    )
    .unwrap();
    let Outcome::Ticket { id, .. } = issue(&mut e, 10, now).unwrap() else {
        panic!()
    };
    assert_eq!(e.ticket("s", id).unwrap().number, "B006");
    e.take_events();
    // Past local midnight (22:00 UTC) the day rolls: open tickets end, numbering restarts.
    now += Duration::minutes(15);
    let Outcome::Ticket { id, .. } = issue(&mut e, 11, now).unwrap() else {
        panic!()
    };
    assert_eq!(e.ticket("s", id).unwrap().number, "B005");
    let events = e.take_events();
    let cancelled = events.iter().filter(|ev| matches!(&ev.kind, EventKind::TicketCancelled { reason, .. } if reason == "day_ended")).count();
    assert_eq!(cancelled, 5, "yesterday's open tickets ended with the day");
    assert!(
        events
            .iter()
            .any(|ev| matches!(ev.kind, EventKind::DayStarted { .. }))
    );
    assert!(
        e.ticket_by_token(&format!("{:032x}", 0)).is_none(),
        "yesterday's tokens are gone"
    );
}

/// Found by the property test: a ticket transferred to a counter that also serves its service must be
/// called there before older tickets of that service.
#[test]
fn a_ticket_sent_to_a_counter_is_called_there_first() {
    use Op::*;
    run(&[
        Issue(1, false, None),
        Issue(0, false, None),
        Issue(0, false, None),
        Open(1),
        Issue(1, false, None),
        Call(1, 3),
        TransferToCounter(1, 2),
        Open(2),
        CallNext(2),
    ])
    .unwrap();
}

/// Found by the property test: a ticket transferred to the back of a queue stays ahead of tickets issued
/// after the transfer.
#[test]
fn the_back_of_the_queue_is_before_later_tickets() {
    use Op::*;
    run(&[
        Open(0),
        Open(0),
        Issue(0, false, None),
        Open(1),
        CallNext(1),
        Transfer(1, 1, 1),
        Issue(0, false, None),
        CallNext(1),
    ])
    .unwrap();
}

#[test]
fn a_long_wait_raises_one_alert_on_the_tick_until_cleared() {
    let cfg = Arc::new(Hall::parse(CONFIG).unwrap());
    let target = cfg.sites[0].services[0].target_wait_minutes as i64;
    let t0: DateTime<Utc> = "2026-11-23T10:00:00Z".parse().unwrap();
    let mut e = Engine::new(cfg, t0);
    let sys = Actor::system();
    e.handle(
        Command::Issue {
            site: "s".parse().unwrap(),
            service: "s1".parse().unwrap(),
            lang: "fi".into(),
            priority: Priority::Normal,
            token: "0".repeat(32).parse().unwrap(),
            channel: vuoro_engine::Channel::Kiosk,
            idempotency: None,
        },
        t0,
        &Actor::device("k"),
    )
    .unwrap();
    let alerts = |e: &mut Engine| {
        e.take_events()
            .into_iter()
            .filter(|ev| matches!(&ev.kind, EventKind::AlertRaised { alert_kind, .. } if alert_kind == "long_wait"))
            .count()
    };
    alerts(&mut e);
    // Within the target: nothing.
    e.handle(Command::Tick, t0 + Duration::minutes(target), &sys)
        .unwrap();
    assert_eq!(alerts(&mut e), 0);
    // Over it: one alert, and only one however often the tick comes.
    let late = t0 + Duration::minutes(target + 1);
    e.handle(Command::Tick, late, &sys).unwrap();
    assert_eq!(alerts(&mut e), 1);
    e.handle(Command::Tick, late + Duration::seconds(30), &sys)
        .unwrap();
    assert_eq!(alerts(&mut e), 0);
    // Cleared by staff, and still over: raised again.
    let id = *e.state().sites["s"].alerts.keys().next().unwrap();
    e.handle(
        Command::ClearAlert {
            site: "s".parse().unwrap(),
            alert: id,
        },
        late,
        &Actor::user("u"),
    )
    .unwrap();
    e.handle(Command::Tick, late + Duration::seconds(60), &sys)
        .unwrap();
    assert_eq!(alerts(&mut e), 1);
}

#[test]
fn a_printer_status_raises_and_clears_its_alert_in_the_same_command() {
    let cfg = Arc::new(Hall::parse(CONFIG).unwrap());
    let t0: DateTime<Utc> = "2026-11-23T10:00:00Z".parse().unwrap();
    let mut e = Engine::new(cfg, t0);
    let dev = Actor::device("kiosk-1");
    let report = |e: &mut Engine, status: &str| {
        e.handle(
            Command::PrinterStatus {
                site: "s".parse().unwrap(),
                device: "kiosk-1".parse().unwrap(),
                status: status.into(),
                detail: None,
                alert: Some(format!("kiosk-1: {status}")),
            },
            t0,
            &dev,
        )
        .unwrap();
        e.take_events()
            .into_iter()
            .map(|ev| ev.kind.name())
            .collect::<Vec<_>>()
    };
    e.take_events();
    assert_eq!(report(&mut e, "paper_out"), ["printer_status", "alert"]);
    assert_eq!(
        report(&mut e, "paper_out"),
        Vec::<&str>::new(),
        "nothing new"
    );
    assert_eq!(
        report(&mut e, "cover_open"),
        ["printer_status"],
        "one alert per device"
    );
    assert_eq!(
        report(&mut e, "online"),
        ["printer_status", "alert_cleared"]
    );
    assert!(e.state().sites["s"].alerts.is_empty());
}

/// Feedback: refused (409) while the visit is not finished and for a no-show, refused (422) outside
/// 1..=5 or with a comment over the limit, accepted once after `finish` (naming service and counter,
/// the comment trimmed), then refused (409), and counted in the site's day totals until the day ends.
#[test]
fn feedback_is_taken_once_and_only_after_a_finished_visit() {
    let cfg = Arc::new(Hall::parse(CONFIG).unwrap());
    let t0: DateTime<Utc> = "2026-11-23T08:00:00Z".parse().unwrap();
    let mut e = Engine::new(cfg, t0);
    let staff = Actor::user("anna");
    let token = |n: u32| -> vuoro_engine::TicketToken { format!("{n:032x}").parse().unwrap() };
    for n in 1..=2 {
        e.handle(
            Command::Issue {
                site: "s".parse().unwrap(),
                service: "s1".parse().unwrap(),
                lang: "fi".into(),
                priority: Priority::Normal,
                token: token(n),
                channel: vuoro_engine::Channel::Kiosk,
                idempotency: None,
            },
            t0,
            &Actor::public(),
        )
        .unwrap();
    }
    e.take_events();
    let feedback = |e: &mut Engine, n: u32, rating: u8, comment: Option<&str>| {
        let r = e.handle(
            Command::Feedback {
                token: token(n),
                rating,
                comment: comment.map(str::to_string),
            },
            t0 + Duration::minutes(10),
            &Actor::public(),
        );
        (r, e.take_events())
    };
    let code = |r: &Result<Outcome, EngineError>| match r {
        Err(EngineError::Conflict { code, .. }) => Some(code.as_str()),
        _ => None,
    };
    let verb = |e: &mut Engine, verb: CounterVerb| {
        e.handle(
            Command::Counter {
                counter: "c1".parse().unwrap(),
                verb,
            },
            t0 + Duration::minutes(5),
            &staff,
        )
        .unwrap();
        e.take_events();
    };
    // Waiting: not yet.
    let (r, evs) = feedback(&mut e, 1, 5, None);
    assert_eq!(code(&r), Some("visit_not_finished"));
    assert!(evs.is_empty());
    verb(&mut e, CounterVerb::Open);
    verb(&mut e, CounterVerb::CallNext);
    verb(&mut e, CounterVerb::Start);
    // Being served: not yet.
    assert_eq!(
        code(&feedback(&mut e, 1, 5, None).0),
        Some("visit_not_finished")
    );
    verb(
        &mut e,
        CounterVerb::Finish {
            next_service: None,
            position: Position::Back,
        },
    );
    // Bad input changes nothing.
    for rating in [0, 6] {
        let (r, evs) = feedback(&mut e, 1, rating, None);
        assert!(matches!(r, Err(EngineError::Invalid(_))), "{rating}: {r:?}");
        assert!(evs.is_empty());
    }
    let long = "x".repeat(501);
    assert!(matches!(
        feedback(&mut e, 1, 4, Some(&long)).0,
        Err(EngineError::Invalid(_))
    ));
    assert_eq!(e.site_state("s").unwrap().feedback, [0; 5]);
    // Once.
    let (r, evs) = feedback(&mut e, 1, 4, Some("  Kiitos!  "));
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(evs.len(), 1);
    match &evs[0].kind {
        EventKind::FeedbackGiven {
            service,
            counter,
            rating,
            comment,
            ..
        } => {
            assert_eq!(service.as_str(), "s1");
            assert_eq!(counter.as_deref(), Some("c1"));
            assert_eq!(*rating, 4);
            assert_eq!(comment.as_deref(), Some("Kiitos!"));
        }
        k => panic!("{k:?}"),
    }
    let (r, evs) = feedback(&mut e, 1, 2, None);
    assert_eq!(code(&r), Some("feedback_given"));
    assert!(evs.is_empty());
    assert_eq!(e.site_state("s").unwrap().feedback, [0, 0, 0, 1, 0]);
    // A no-show had no visit to rate.
    verb(&mut e, CounterVerb::CallNext);
    verb(&mut e, CounterVerb::NoShow);
    assert_eq!(
        code(&feedback(&mut e, 2, 3, None).0),
        Some("visit_not_finished")
    );
    // A new day forgets the day's totals and yesterday's tokens.
    e.handle(Command::Tick, t0 + Duration::days(1), &Actor::system())
        .unwrap();
    assert_eq!(e.site_state("s").unwrap().feedback, [0; 5]);
    assert!(matches!(
        feedback(&mut e, 1, 5, None).0,
        Err(EngineError::NotFound(_))
    ));
}
