//! A hall changed while the daemon runs (the admin console, `PUT /api/v1/admin/config`): nobody waiting is
//! dropped or renumbered; removing a service with open visits, or an open counter, is refused with the
//! reason; a renamed service is the same queue under its new name.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use vuoro_engine::*;

const DEMO: &str = include_str!("../../../config/demo.toml");
const SITE: &str = "iso-omena";

fn hall(src: &str) -> Arc<Hall> {
    Arc::new(Hall::parse(src).expect("the config parses"))
}

/// A Monday morning when the demo hall is open.
fn monday() -> DateTime<Utc> {
    "2026-11-30T08:30:00Z".parse().unwrap()
}

fn issue(e: &mut Engine, service: &str, n: u32) -> String {
    let out = e
        .handle(
            Command::Issue {
                site: SITE.parse().unwrap(),
                service: service.parse().unwrap(),
                lang: "fi".into(),
                priority: Priority::Normal,
                token: format!("{n:032x}").parse().unwrap(),
                channel: Channel::Kiosk,
                idempotency: None,
            },
            monday(),
            &Actor::device("kiosk-1"),
        )
        .expect("issued");
    e.take_events();
    match out {
        Outcome::Ticket { site, id, .. } => e.ticket(&site, id).unwrap().number.clone(),
        other => panic!("not a ticket: {other:?}"),
    }
}

fn without_service(src: &str, id: &str) -> String {
    let head = format!("[[site.service]]\nid = \"{id}\"\n");
    let at = src.find(&head).expect("the service is in the demo");
    let end = at
        + head.len()
        + src[at + head.len()..]
            .find("\n[[")
            .expect("another table follows")
        + 1;
    // Counters that offer it stop offering it.
    src[..at].to_string()
        + &src[end..]
            .replace(&format!("{{ service = \"{id}\" }}, "), "")
            .replace(&format!(", {{ service = \"{id}\" }}"), "")
}

#[test]
fn a_renamed_service_keeps_its_queue_numbers_and_order() {
    let mut e = Engine::new(hall(DEMO), monday());
    let a = issue(&mut e, "joint-service", 1);
    let b = issue(&mut e, "joint-service", 2);
    let renamed = DEMO.replacen(
        r#"name = { fi = "Neuvonta ja asiointi""#,
        r#"name = { fi = "Neuvonta, asiointi ja opastus""#,
        1,
    );
    let new = hall(&renamed);
    assert_eq!(e.reconfigure_blockers(&new), Vec::<String>::new());
    let before = e.state().clone();
    e.reconfigure(new, monday());
    let site = e.config().site(SITE).unwrap();
    assert_eq!(
        site.service("joint-service")
            .unwrap()
            .name
            .get("fi")
            .map(String::as_str),
        Some("Neuvonta, asiointi ja opastus")
    );
    assert_eq!(e.waiting(SITE, "joint-service"), 2);
    let st = e.site_state(SITE).unwrap();
    assert_eq!(
        st.tickets,
        before.sites[&SITE.parse::<SiteId>().unwrap()].tickets
    );
    assert_eq!(e.state().last_seq, before.last_seq);
    // The next number follows the ones before the change.
    let c = issue(&mut e, "joint-service", 3);
    let num = |s: &str| {
        s.trim_start_matches(char::is_alphabetic)
            .parse::<u32>()
            .unwrap()
    };
    assert_eq!((num(&a) + 1, num(&b) + 1), (num(&b), num(&c)));
}

#[test]
fn removing_a_service_with_waiting_customers_or_an_open_counter_is_refused_with_the_reason() {
    let mut e = Engine::new(hall(DEMO), monday());
    issue(&mut e, "parking", 1);
    let new = hall(&without_service(DEMO, "parking"));
    let why = e.reconfigure_blockers(&new);
    assert_eq!(why.len(), 1, "{why:?}");
    assert!(
        why[0].contains("service 'parking'") && why[0].contains("1 open visits"),
        "{why:?}"
    );
    // Nobody waiting there: the service may go, and a new one may come.
    let mut empty = Engine::new(hall(DEMO), monday());
    assert_eq!(empty.reconfigure_blockers(&new), Vec::<String>::new());
    empty.reconfigure(new, monday());
    assert!(
        empty
            .site_state(SITE)
            .unwrap()
            .services
            .keys()
            .all(|s| s.as_str() != "parking")
    );

    // An open counter may not be removed.
    let mut e = Engine::new(hall(DEMO), monday());
    e.handle(
        Command::Counter {
            counter: "c5".parse().unwrap(),
            verb: CounterVerb::Open,
        },
        monday(),
        &Actor::user("agent2"),
    )
    .expect("opened");
    e.take_events();
    let at = DEMO.find("[[site.counter]]\nid = \"c5\"\n").unwrap();
    let end = at + 1 + DEMO[at + 1..].find("[[site.counter]]").unwrap();
    let no_c5 = format!("{}{}", &DEMO[..at], &DEMO[end..]);
    let why = e.reconfigure_blockers(&hall(&no_c5));
    assert_eq!(why.len(), 1, "{why:?}");
    assert!(
        why[0].contains("counter 'c5'") && why[0].contains("close it"),
        "{why:?}"
    );
}
