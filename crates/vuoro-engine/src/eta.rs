//! Wait estimates and places in line: how many tickets are called before a ticket, and how long until it is.
//!
//! The queues are played forward with the engine's own call order (`engine::call_order`, the rule of
//! `call-next`): every open counter of the site takes tickets by its service profile (tickets sent to it,
//! then lower tier, assist before normal, then oldest), each ticket holding the counter for its service's
//! average counter time (from call to finish, measured), and a counter's current customer for what is left
//! of that average. So a counter that serves several services is shared between them, a tier-2 service
//! waits for the tier-1 queue, and a customer already half served frees the counter sooner.
//!
//! "Ahead" counts every ticket that the counters able to call the ticket (those whose profile has its
//! service, or the one counter it was sent to) call before it, whatever their service. When none of those
//! counters is open there is no estimate (`eta_reason` = "no_counter_open"): the place in line is then
//! played with those counters as if they opened now. Arrivals after the ticket are not foreseen (an assist
//! ticket or a higher tier may still go first). Deterministic: the time is an argument (or the site's latest
//! event time).

use chrono::{DateTime, Utc};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use crate::config::Counter;
use crate::engine::{CallKey, Engine, call_order};
use crate::model::{SiteState, Ticket, TicketId, TicketState};

/// Counter time per ticket before any has been measured: the expected service plus a walk to the counter.
const WALK_SECS: f64 = 30.0;
/// What is left of a current customer's time is at least this share of the average.
const RESIDUAL_FLOOR: f64 = 0.5;
/// Most tickets played forward for one estimate; further back in a very long queue the plain rate is used.
const MAX_STEPS: usize = 4_000;

/// Why a forecast has no estimate: no counter that can call the ticket is open.
pub const NO_COUNTER_OPEN: &str = "no_counter_open";

type Queue<'a> = std::iter::Peekable<Box<dyn Iterator<Item = CallKey> + 'a>>;

/// Where a ticket stands: how many are called before it, and when it is called.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Forecast {
    /// Tickets that the counters able to call this one will call before it, over all their services.
    pub ahead: u32,
    /// Seconds until it is called; None when none of those counters is open.
    pub wait_secs: Option<f64>,
}

impl Forecast {
    /// The estimate in whole minutes, or None (see `eta_reason`).
    pub fn eta_minutes(&self) -> Option<u32> {
        self.wait_secs.map(|s| (s / 60.0).round().max(0.0) as u32)
    }

    /// Why there is no estimate, for the views ("no_counter_open"), or None when there is one.
    pub fn eta_reason(&self) -> Option<&'static str> {
        self.wait_secs.is_none().then_some(NO_COUNTER_OPEN)
    }
}

impl Engine {
    /// The site's "now" for estimates: its latest event.
    pub fn site_now(&self, site: &str) -> DateTime<Utc> {
        self.site_state(site)
            .and_then(|s| s.last_at)
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }

    /// Estimated minutes until the ticket with `ahead` tickets before it in `service`'s own queue (or a
    /// new one at its end) is called, as of the site's latest event; None when no counter serving it is open.
    pub fn eta_minutes(&self, site: &str, service: &str, ahead: u32) -> Option<u32> {
        let st = self.site_state(site)?;
        let target = st
            .waiting
            .get(service)
            .and_then(|q| q.iter().nth(ahead as usize).copied());
        let sent_to = target
            .and_then(|k| st.tickets.get(&k.2))
            .and_then(|t| t.target_counter.clone());
        self.forecast_at(
            site,
            service,
            target.unwrap_or(NEW),
            sent_to.as_deref(),
            self.site_now(site),
            false,
        )?
        .eta_minutes()
    }

    /// The forecast of a new (normal) ticket of `service`, joining the end of its queue, as of `now`.
    pub fn forecast_new(&self, site: &str, service: &str, now: DateTime<Utc>) -> Option<Forecast> {
        self.forecast_at(site, service, NEW, None, now, true)
    }

    /// Like `forecast_new`, for the service lists and public figures, which show only the estimate: with
    /// no counter of the service open it plays nothing forward (`ahead` is then the service's queue).
    pub fn estimate_new(&self, site: &str, service: &str, now: DateTime<Utc>) -> Option<Forecast> {
        self.forecast_at(site, service, NEW, None, now, false)
    }

    /// The forecast of a waiting ticket as of `now` (None when it is not waiting).
    pub fn forecast_ticket(&self, t: &Ticket, now: DateTime<Utc>) -> Option<Forecast> {
        if t.state != TicketState::Waiting {
            return None;
        }
        self.forecast_at(
            &t.site,
            &t.service,
            (t.priority.rank(), t.order, t.id),
            t.target_counter.as_deref(),
            now,
            true,
        )
    }

    /// Average time a ticket of `service` holds a counter (call to finish), in seconds.
    pub fn counter_secs(&self, site: &str, service: &str) -> Option<f64> {
        let s = self.site_state(site)?.services.get(service)?;
        Some(if s.avg_busy_secs > 0.0 {
            s.avg_busy_secs
        } else {
            s.avg_service_secs + WALK_SECS
        })
    }

    /// Plays the queues forward until `target` (in `service`'s queue, or sent to the counter `sent_to`) is
    /// called. `need_ahead`: play even when no counter able to call it is open, for the place in line.
    fn forecast_at(
        &self,
        site_id: &str,
        service: &str,
        target: CallKey,
        sent_to: Option<&str>,
        now: DateTime<Utc>,
        need_ahead: bool,
    ) -> Option<Forecast> {
        let site = self.config().site(site_id)?;
        let st = self.site_state(site_id)?;
        let own = self.counter_secs(site_id, service)?;
        let cycle = |svc: &str| self.counter_secs(site_id, svc).unwrap_or(own);
        let n = site.counters.len();
        // The counters that can call the ticket.
        let caller: Vec<bool> = site
            .counters
            .iter()
            .map(|c| match sent_to {
                Some(id) => c.id == id,
                None => c.services.iter().any(|cs| cs.service == service),
            })
            .collect();
        let is_open = |i: usize| {
            st.counters
                .get(&site.counters[i].id)
                .is_some_and(|c| c.open)
        };
        // Its place in its own queue: the answer when the queues cannot be played.
        let in_own = st.waiting.get(service).map_or(0, |q| place(q, target));
        let callers = (0..n).filter(|&i| caller[i]).count();
        if callers == 0 {
            return Some(Forecast {
                ahead: in_own,
                wait_secs: None,
            });
        }
        let open_callers = (0..n).filter(|&i| caller[i] && is_open(i)).count();
        let estimate = open_callers > 0;
        if !estimate && !need_ahead {
            return Some(Forecast {
                ahead: in_own,
                wait_secs: None,
            });
        }
        let plain = || Forecast {
            ahead: in_own,
            wait_secs: estimate.then(|| (in_own as f64 + 0.5) * own / open_callers as f64),
        };
        if in_own as usize > MAX_STEPS {
            return Some(plain());
        }
        // Who plays: every open counter; when none of the callers is open, the callers alone, as if they
        // opened now with nobody at them.
        let playing: Vec<usize> = (0..n)
            .filter(|&i| if estimate { is_open(i) } else { caller[i] })
            .collect();
        let mut sim = Sim::new(st, service, target);
        let mut heap: BinaryHeap<Reverse<(i64, usize)>> = playing
            .iter()
            .map(|&i| {
                let left = st
                    .counters
                    .get(&site.counters[i].id)
                    .filter(|_| estimate)
                    .and_then(|c| c.current)
                    .and_then(|id| st.tickets.get(&id))
                    .map_or(0.0, |t| {
                        let c = cycle(&t.service);
                        let since = t
                            .called_at
                            .map_or(0.0, |a| (now - a).num_milliseconds() as f64 / 1000.0);
                        (c - since).max(c * RESIDUAL_FLOOR)
                    });
                Reverse(((left * 1000.0) as i64, i))
            })
            .collect();
        let mut ahead = 0u32;
        let mut steps = 0;
        while let Some(Reverse((free_ms, i))) = heap.pop() {
            steps += 1;
            if steps > MAX_STEPS {
                return Some(plain());
            }
            let Some((key, svc)) = sim.take_next(&site.counters[i]) else {
                continue; // nothing more for this counter: it stays idle
            };
            if key == target {
                return Some(Forecast {
                    ahead,
                    wait_secs: estimate.then_some(free_ms as f64 / 1000.0),
                });
            }
            if caller[i] {
                ahead += 1;
            }
            heap.push(Reverse((free_ms + (cycle(svc) * 1000.0) as i64, i)));
        }
        // Never reached (it waits for a counter that is not among those playing): its own queue's place.
        Some(plain())
    }
}

/// A new ticket: not in any queue yet, after everything in its own.
const NEW: CallKey = (1, i64::MAX, TicketId::MAX);

/// How many of `q` come before `key`, counted from whichever end is nearer (a ticket just issued is
/// last: one step, not a walk through the whole queue).
fn place(q: &std::collections::BTreeSet<CallKey>, key: CallKey) -> u32 {
    if key == NEW {
        return q.len() as u32;
    }
    let mut before = q.range(..key);
    let mut after = q.range((std::ops::Bound::Excluded(key), std::ops::Bound::Unbounded));
    let mut n = 0usize;
    loop {
        if before.next().is_none() {
            return n as u32;
        }
        if after.next().is_none() {
            // `n` after it and more before: the rest, less the key itself when it is in the queue.
            let len = q.len() - usize::from(q.contains(&key));
            return (len - n) as u32;
        }
        n += 1;
    }
}

/// The waiting queues, consumed in call order as the counters play forward.
struct Sim<'a> {
    st: &'a SiteState,
    /// Tickets sent to one counter (few, often none): passed over in the service queues.
    sent_ids: std::collections::HashSet<TicketId>,
    /// Per service, the tickets any counter may take (tickets sent to one counter are skipped).
    queues: BTreeMap<&'a str, Queue<'a>>,
    /// Per counter, the tickets sent to it.
    sent: BTreeMap<&'a str, Queue<'a>>,
}

impl<'a> Sim<'a> {
    fn new(st: &'a SiteState, service: &'a str, target: CallKey) -> Sim<'a> {
        let mut s = Sim {
            st,
            sent_ids: st.targeted.values().flatten().map(|k| k.2).collect(),
            queues: BTreeMap::new(),
            sent: BTreeMap::new(),
        };
        if target == NEW {
            // A new ticket is not in the queue yet: it joins at the end of its service's queue.
            let own: Box<dyn Iterator<Item = CallKey> + 'a> = match st.waiting.get(service) {
                Some(q) => Box::new(q.iter().copied().chain(std::iter::once(target))),
                None => Box::new(std::iter::once(target)),
            };
            s.queues.insert(service, own.peekable());
        }
        s
    }

    fn queue(&mut self, svc: &'a str) -> &mut Queue<'a> {
        let st = self.st;
        self.queues.entry(svc).or_insert_with(|| {
            let it: Box<dyn Iterator<Item = CallKey> + 'a> = match st.waiting.get(svc) {
                Some(q) => Box::new(q.iter().copied()),
                None => Box::new(std::iter::empty()),
            };
            it.peekable()
        })
    }

    fn sent_to(&mut self, counter: &'a str) -> &mut Queue<'a> {
        let st = self.st;
        self.sent.entry(counter).or_insert_with(|| {
            let it: Box<dyn Iterator<Item = CallKey> + 'a> = match st.targeted.get(counter) {
                Some(q) => Box::new(q.iter().copied()),
                None => Box::new(std::iter::empty()),
            };
            it.peekable()
        })
    }

    /// The head of `svc`'s queue that any counter may take, passing over tickets sent to one counter.
    fn head(&mut self, svc: &'a str) -> Option<CallKey> {
        if self.sent_ids.is_empty() {
            return self.queue(svc).peek().copied();
        }
        self.queue(svc);
        let Sim {
            sent_ids, queues, ..
        } = self;
        let q = queues.get_mut(svc)?;
        loop {
            let k = *q.peek()?;
            if !sent_ids.contains(&k.2) {
                return Some(k);
            }
            q.next();
        }
    }

    /// What counter `c` calls next, by the engine's call order, and the ticket's service.
    fn take_next(&mut self, c: &'a Counter) -> Option<(CallKey, &'a str)> {
        let sent = self.sent_to(c.id.as_str()).peek().copied();
        let (k, from) = call_order(c, sent, |svc| self.head(svc))?;
        match from {
            Some(svc) => {
                self.queue(svc).next();
                Some((k, svc))
            }
            None => {
                self.sent_to(c.id.as_str()).next();
                let svc = self.st.tickets.get(&k.2).map_or("", |t| t.service.as_str());
                Some((k, svc))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::{DateTime, Duration, Utc};

    use super::NO_COUNTER_OPEN;
    use crate::*;

    // Three services of 5 expected minutes (5.5 with the walk); c1 serves a only, c2 serves a and b with
    // the same tier, c3 serves t1 first and b second.
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
expected_service_minutes = 5
[[site.service]]
id = "b"
unit = "u"
series = "A"
name = { fi = "b", sv = "b", en = "b" }
expected_service_minutes = 5
[[site.service]]
id = "t1"
unit = "u"
series = "A"
name = { fi = "t1", sv = "t1", en = "t1" }
expected_service_minutes = 5
[[site.service]]
id = "z"
unit = "u"
series = "A"
name = { fi = "z", sv = "z", en = "z" }
expected_service_minutes = 5
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

    fn t0() -> DateTime<Utc> {
        "2026-11-24T08:00:00Z".parse().unwrap()
    }

    fn engine() -> Engine {
        Engine::new(Arc::new(Hall::parse(CONFIG).unwrap()), t0())
    }

    fn ticket(e: &Engine, n: u64) -> &Ticket {
        let token = format!("{n:032x}");
        e.ticket_by_token(&token).unwrap()
    }

    fn issue(e: &mut Engine, service: &str, n: u64, at: DateTime<Utc>) {
        e.handle(
            Command::Issue {
                site: "s".parse().unwrap(),
                service: service.parse().unwrap(),
                lang: "fi".into(),
                priority: Priority::Normal,
                token: format!("{n:032x}").parse().unwrap(),
                channel: crate::model::Channel::Kiosk,
                idempotency: None,
            },
            at,
            &Actor::device("k"),
        )
        .unwrap();
    }

    fn verb(e: &mut Engine, counter: &str, verb: CounterVerb, at: DateTime<Utc>) {
        e.handle(
            Command::Counter {
                counter: counter.parse().unwrap(),
                verb,
            },
            at,
            &Actor::user("x"),
        )
        .unwrap();
    }

    #[test]
    fn the_place_in_a_queue_is_counted_from_either_end() {
        let q: std::collections::BTreeSet<super::CallKey> = (0..7)
            .map(|i| ((i % 2) as u8, i as i64, i as u64))
            .collect();
        for (i, k) in q.iter().enumerate() {
            assert_eq!(super::place(&q, *k), i as u32, "{k:?}");
        }
        assert_eq!(super::place(&q, super::NEW), 7);
        // A key not in the queue (a ticket about to join it) counts what is before it.
        assert_eq!(super::place(&q, (1, 2, 99)), 5);
        assert_eq!(super::place(&q, (0, -1, 99)), 0);
    }

    #[test]
    fn a_shared_counter_counts_the_other_services_queue() {
        let mut e = engine();
        verb(&mut e, "c2", CounterVerb::Open, t0());
        // Four older tickets in a, then one in b: c2 alone serves both, oldest first.
        for n in 0..4 {
            issue(&mut e, "a", n, t0());
        }
        let f = e.forecast_new("s", "b", t0()).unwrap();
        assert_eq!(
            f.wait_secs,
            Some(4.0 * 330.0),
            "b waits for the four a tickets at 5.5 minutes each"
        );
        assert_eq!(
            f.ahead, 4,
            "nobody waits in b, but c2 calls four a tickets first"
        );
        // The same for a ticket already in b's queue: its own queue is empty before it.
        issue(&mut e, "b", 9, t0());
        let t = ticket(&e, 9);
        assert_eq!(e.position(t), Some(0));
        let f = e.forecast_ticket(t, t0()).unwrap();
        assert_eq!((f.ahead, f.eta_minutes()), (4, Some(22)));
        // With c1 open too, a's queue is shared: c1 and c2 take two each, b goes after 2 rounds; only the
        // two that c2 (a counter able to call b) calls are ahead of it.
        verb(&mut e, "c1", CounterVerb::Open, t0());
        let f = e.forecast_ticket(ticket(&e, 9), t0()).unwrap();
        assert_eq!(f.wait_secs, Some(2.0 * 330.0));
        assert_eq!(f.ahead, 2);
        assert_eq!(f.eta_minutes(), Some(11));
    }

    #[test]
    fn a_second_tier_waits_for_the_first() {
        let mut e = engine();
        verb(&mut e, "c3", CounterVerb::Open, t0());
        issue(&mut e, "b", 0, t0());
        issue(&mut e, "t1", 1, t0() + Duration::seconds(1));
        issue(&mut e, "t1", 2, t0() + Duration::seconds(2));
        // The b ticket is older, but c3 takes its first tier first.
        let f = e.forecast_ticket(ticket(&e, 0), t0()).unwrap();
        assert_eq!((f.ahead, f.wait_secs), (2, Some(2.0 * 330.0)));
        // A new t1 ticket waits for the two t1 tickets only.
        let f = e.forecast_new("s", "t1", t0()).unwrap();
        assert_eq!((f.ahead, f.wait_secs), (2, Some(2.0 * 330.0)));
    }

    #[test]
    fn time_already_served_shortens_the_wait_and_measured_times_count() {
        let mut e = engine();
        verb(&mut e, "c1", CounterVerb::Open, t0());
        issue(&mut e, "a", 0, t0());
        verb(&mut e, "c1", CounterVerb::CallNext, t0());
        issue(&mut e, "a", 1, t0());
        // Just called: a whole 5.5 minutes left; 4 minutes later 1.5, but never less than half.
        let waiting = ticket(&e, 1);
        assert_eq!(
            e.forecast_ticket(waiting, t0()).unwrap().wait_secs,
            Some(330.0)
        );
        let later = t0() + Duration::minutes(4);
        assert_eq!(
            e.forecast_ticket(waiting, later).unwrap().wait_secs,
            Some(165.0)
        );
        // The first measured ticket (2 minutes at the counter) replaces the configured guess.
        verb(
            &mut e,
            "c1",
            CounterVerb::Finish {
                next_service: None,
                position: Position::Original,
            },
            t0() + Duration::minutes(2),
        );
        assert_eq!(e.counter_secs("s", "a"), Some(120.0));
        // The site's latest event is the estimate's "now" when none is given.
        assert_eq!(e.site_now("s"), t0() + Duration::minutes(2));
    }

    #[test]
    fn with_no_counter_open_there_is_no_estimate_but_a_place_in_line() {
        let mut e = engine();
        for n in 0..3 {
            issue(&mut e, "a", n, t0());
        }
        // c1 and c2 serve a, neither is open: no minutes, a reason, and the place in line.
        let f = e.forecast_new("s", "a", t0()).unwrap();
        assert_eq!(f.wait_secs, None);
        assert_eq!(f.eta_minutes(), None);
        assert_eq!(f.eta_reason(), Some(NO_COUNTER_OPEN));
        assert_eq!(f.ahead, 3);
        assert_eq!(e.eta_minutes("s", "a", 3), None);
        // A counter of another service opening changes nothing for a.
        verb(&mut e, "c3", CounterVerb::Open, t0());
        assert_eq!(
            e.forecast_new("s", "a", t0()).unwrap().eta_reason(),
            Some(NO_COUNTER_OPEN)
        );
        // One of a's counters opening gives an estimate.
        verb(&mut e, "c1", CounterVerb::Open, t0());
        let f = e.forecast_new("s", "a", t0()).unwrap();
        assert_eq!((f.ahead, f.eta_reason()), (3, None));
        assert_eq!(f.wait_secs, Some(3.0 * 330.0));
    }

    #[test]
    fn a_service_no_counter_serves_has_no_estimate() {
        let mut e = engine();
        verb(&mut e, "c1", CounterVerb::Open, t0());
        verb(&mut e, "c2", CounterVerb::Open, t0());
        verb(&mut e, "c3", CounterVerb::Open, t0());
        issue(&mut e, "z", 0, t0());
        let f = e.forecast_new("s", "z", t0()).unwrap();
        assert_eq!((f.ahead, f.wait_secs), (1, None));
        assert_eq!(f.eta_reason(), Some(NO_COUNTER_OPEN));
        assert_eq!(e.eta_minutes("s", "z", 0), None);
    }

    #[test]
    fn a_ticket_sent_to_a_counter_waits_for_that_counter_only() {
        let mut e = engine();
        verb(&mut e, "c1", CounterVerb::Open, t0());
        verb(&mut e, "c2", CounterVerb::Open, t0());
        issue(&mut e, "a", 0, t0());
        verb(&mut e, "c1", CounterVerb::CallNext, t0());
        // c1 sends its customer to c2; c2 is serving someone else meanwhile (b).
        issue(&mut e, "b", 1, t0());
        verb(&mut e, "c2", CounterVerb::CallNext, t0());
        verb(
            &mut e,
            "c1",
            CounterVerb::Transfer {
                ticket: None,
                to: TransferTarget::Counter("c2".parse().unwrap()),
                position: Position::Back,
            },
            t0(),
        );
        let t = ticket(&e, 0);
        assert_eq!(t.target_counter.as_deref(), Some("c2"));
        let f = e.forecast_ticket(t, t0()).unwrap();
        // c2 calls it first when it is free (in 5.5 minutes); c1, free now, cannot.
        assert_eq!((f.ahead, f.wait_secs), (0, Some(330.0)));
        verb(
            &mut e,
            "c2",
            CounterVerb::Finish {
                next_service: None,
                position: Position::Original,
            },
            t0(),
        );
        verb(&mut e, "c2", CounterVerb::Close, t0());
        let f = e.forecast_ticket(ticket(&e, 0), t0()).unwrap();
        assert_eq!(f.eta_reason(), Some(NO_COUNTER_OPEN));
    }
}
