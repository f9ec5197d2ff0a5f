//! Wait estimates: how long until a ticket is called.
//!
//! The queues are played forward: every open counter of the site takes tickets by its own service profile
//! (lower tier first, assist before normal, then oldest, the same rule as `call-next`), each ticket holding
//! the counter for its service's average counter time (from call to finish, measured), and a counter's
//! current customer for what is left of that average. So a counter that serves several services is shared
//! between them, a tier-2 service waits for the tier-1 queue, and a customer already half served frees
//! the counter sooner. Arrivals after the ticket are not foreseen (an assist ticket or a higher tier may
//! still go first). Deterministic: the time is an argument (or the site's latest event time).

use chrono::{DateTime, Utc};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use crate::engine::Engine;
use crate::model::{SiteState, TicketId};

/// Counter time per ticket before any has been measured: the expected service plus a walk to the counter.
const WALK_SECS: f64 = 30.0;
/// What is left of a current customer's time is at least this share of the average.
const RESIDUAL_FLOOR: f64 = 0.5;
/// Most tickets played forward for one estimate; further back in a very long queue the plain rate is used.
const MAX_STEPS: usize = 4_000;

type Key = (u8, i64, TicketId);
type Queue<'a> = std::iter::Peekable<Box<dyn Iterator<Item = Key> + 'a>>;

impl Engine {
    /// Estimated minutes until a ticket with `ahead` people in front of it in `service` is called, as of the
    /// site's latest event.
    pub fn eta_minutes(&self, site: &str, service: &str, ahead: u32) -> Option<u32> {
        let now = self
            .site_state(site)?
            .last_at
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        self.eta_minutes_at(site, service, ahead, now)
    }

    /// Like `eta_minutes`, as of `now`.
    pub fn eta_minutes_at(
        &self,
        site: &str,
        service: &str,
        ahead: u32,
        now: DateTime<Utc>,
    ) -> Option<u32> {
        let secs = self.wait_secs(site, service, ahead, now)?;
        Some((secs / 60.0).round().max(0.0) as u32)
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

    /// Seconds until the ticket with `ahead` tickets before it in `service`'s call order is called.
    pub fn wait_secs(
        &self,
        site_id: &str,
        service: &str,
        ahead: u32,
        now: DateTime<Utc>,
    ) -> Option<f64> {
        let site = self.config().site(site_id)?;
        let st = self.site_state(site_id)?;
        let own = self.counter_secs(site_id, service)?;
        let cycle = |svc: &str| self.counter_secs(site_id, svc).unwrap_or(own);
        let serves = |i: usize| {
            site.counters[i]
                .services
                .iter()
                .any(|cs| cs.service == service)
        };
        // The counters that take tickets: the open ones. When none of them serves this service (before
        // opening), the plain rate of the counters configured for it: which of them will open, and when,
        // is not known, and a long queue nobody serves would make every estimate play it all forward.
        let is_open = |i: usize| {
            st.counters
                .get(&site.counters[i].id)
                .is_some_and(|c| c.open)
        };
        let configured: Vec<usize> = (0..site.counters.len()).filter(|&i| serves(i)).collect();
        let open_here = configured.iter().filter(|&&i| is_open(i)).count();
        let servers = if open_here > 0 {
            open_here
        } else {
            configured.len()
        };
        let plain = || (ahead as f64 + 0.5) * own / servers.max(1) as f64;
        if open_here == 0 || ahead as usize > MAX_STEPS {
            return Some(plain());
        }
        let counters: Vec<usize> = (0..site.counters.len()).filter(|&i| is_open(i)).collect();
        // The ticket whose call we wait for: the one at `ahead` in the queue, or a new one at its end.
        let target: Key = st
            .waiting
            .get(service)
            .and_then(|q| q.iter().nth(ahead as usize).copied())
            .unwrap_or((1, i64::MAX, TicketId::MAX));
        let mut sim = Sim::new(st, service, target);
        let mut heap: BinaryHeap<Reverse<(i64, usize)>> = counters
            .iter()
            .map(|&i| {
                let left = st
                    .counters
                    .get(&site.counters[i].id)
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
        let mut steps = 0;
        while let Some(Reverse((free_ms, i))) = heap.pop() {
            steps += 1;
            if steps > MAX_STEPS {
                return Some(plain());
            }
            let c = &site.counters[i];
            let Some((key, svc)) = sim.take_next(c) else {
                continue; // nothing more for this counter: it stays idle
            };
            if key == target {
                return Some(free_ms as f64 / 1000.0);
            }
            heap.push(Reverse((free_ms + (cycle(svc) * 1000.0) as i64, i)));
        }
        // Never reached (it waits for a counter that is not among those playing): the plain rate.
        Some(plain())
    }
}

/// The waiting queues, consumed in call order as the counters play forward.
struct Sim<'a> {
    st: &'a SiteState,
    queues: BTreeMap<&'a str, Queue<'a>>,
    /// Tickets sent to one counter, by counter id, in call order.
    targeted: BTreeMap<&'a str, Vec<Key>>,
}

impl<'a> Sim<'a> {
    fn new(st: &'a SiteState, service: &'a str, target: Key) -> Sim<'a> {
        let mut s = Sim {
            st,
            queues: BTreeMap::new(),
            targeted: BTreeMap::new(),
        };
        // A new ticket is not in the queue yet: it joins at the end of its service's queue.
        let own: Box<dyn Iterator<Item = Key> + 'a> = match st.waiting.get(service) {
            Some(q) if target.2 == TicketId::MAX => {
                Box::new(q.iter().copied().chain(std::iter::once(target)))
            }
            Some(q) => Box::new(q.iter().copied()),
            None => Box::new(std::iter::once(target)),
        };
        s.queues.insert(service, own.peekable());
        s
    }

    fn queue(&mut self, svc: &'a str) -> &mut Queue<'a> {
        let st = self.st;
        self.queues.entry(svc).or_insert_with(|| {
            let it: Box<dyn Iterator<Item = Key> + 'a> = match st.waiting.get(svc) {
                Some(q) => Box::new(q.iter().copied()),
                None => Box::new(std::iter::empty()),
            };
            it.peekable()
        })
    }

    /// The head of `svc`'s queue that any counter may take, moving tickets sent to one counter aside.
    fn head(&mut self, svc: &'a str) -> Option<Key> {
        let st = self.st;
        loop {
            let k = *self.queue(svc).peek()?;
            match st
                .tickets
                .get(&k.2)
                .and_then(|t| t.target_counter.as_deref())
            {
                Some(tc) => {
                    self.queue(svc).next();
                    self.targeted.entry(tc).or_default().push(k);
                }
                None => return Some(k),
            }
        }
    }

    /// What counter `c` calls next (tier, assist first, oldest; tickets sent to it first), and its service.
    fn take_next(&mut self, c: &'a crate::config::Counter) -> Option<(Key, &'a str)> {
        // (call rank, ticket, service, sent to this counter)
        type Pick<'b> = ((u32, u8, i64), Key, &'b str, bool);
        let mut best: Option<Pick<'a>> = None;
        for cs in &c.services {
            if let Some(k) = self.head(&cs.service) {
                let rank = (cs.tier, k.0, k.1);
                if best.is_none_or(|b| rank < b.0) {
                    best = Some((rank, k, cs.service.as_str(), false));
                }
            }
        }
        if let Some(k) = self.targeted.get(c.id.as_str()).and_then(|v| v.first()) {
            let rank = (0, k.0, k.1);
            if best.is_none_or(|b| rank < b.0) {
                let svc = self.st.tickets.get(&k.2).map_or("", |t| t.service.as_str());
                best = Some((rank, *k, svc, true));
            }
        }
        let (_, k, svc, targeted) = best?;
        if targeted {
            self.targeted
                .get_mut(c.id.as_str())
                .expect("listed")
                .remove(0);
        } else {
            self.queue(svc).next();
        }
        Some((k, svc))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::{DateTime, Duration, Utc};

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
        Engine::new(Arc::new(Config::parse(CONFIG).unwrap()), t0())
    }

    fn issue(e: &mut Engine, service: &str, n: u64, at: DateTime<Utc>) {
        e.handle(
            Command::Issue {
                site: "s".into(),
                service: service.into(),
                lang: "fi".into(),
                priority: Priority::Normal,
                token: format!("{n:032x}"),
                channel: "kiosk".into(),
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
                counter: counter.into(),
                verb,
            },
            at,
            &Actor::user("x"),
        )
        .unwrap();
    }

    #[test]
    fn a_shared_counter_counts_the_other_services_queue() {
        let mut e = engine();
        verb(&mut e, "c2", CounterVerb::Open, t0());
        // Four older tickets in a, then one in b: c2 alone serves both, oldest first.
        for n in 0..4 {
            issue(&mut e, "a", n, t0());
        }
        let w = e.wait_secs("s", "b", 0, t0()).unwrap();
        assert_eq!(
            w,
            4.0 * 330.0,
            "b waits for the four a tickets at 5.5 minutes each"
        );
        // With c1 open too, a's queue is shared: c1 and c2 take two each, b goes after 2 rounds.
        verb(&mut e, "c1", CounterVerb::Open, t0());
        assert_eq!(e.wait_secs("s", "b", 0, t0()).unwrap(), 2.0 * 330.0);
        assert_eq!(e.eta_minutes_at("s", "b", 0, t0()), Some(11));
    }

    #[test]
    fn a_second_tier_waits_for_the_first() {
        let mut e = engine();
        verb(&mut e, "c3", CounterVerb::Open, t0());
        issue(&mut e, "b", 0, t0());
        issue(&mut e, "t1", 1, t0() + Duration::seconds(1));
        issue(&mut e, "t1", 2, t0() + Duration::seconds(2));
        // The b ticket is older, but c3 takes its first tier first.
        assert_eq!(e.wait_secs("s", "b", 0, t0()).unwrap(), 2.0 * 330.0);
        // A new t1 ticket waits for the two t1 tickets only.
        assert_eq!(e.wait_secs("s", "t1", 2, t0()).unwrap(), 2.0 * 330.0);
    }

    #[test]
    fn time_already_served_shortens_the_wait_and_measured_times_count() {
        let mut e = engine();
        verb(&mut e, "c1", CounterVerb::Open, t0());
        issue(&mut e, "a", 0, t0());
        verb(&mut e, "c1", CounterVerb::CallNext, t0());
        issue(&mut e, "a", 1, t0());
        // Just called: a whole 5.5 minutes left; 4 minutes later 1.5, but never less than half.
        assert_eq!(e.wait_secs("s", "a", 0, t0()).unwrap(), 330.0);
        let later = t0() + Duration::minutes(4);
        assert_eq!(e.wait_secs("s", "a", 0, later).unwrap(), 165.0);
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
        assert_eq!(
            e.site_state("s").unwrap().last_at,
            Some(t0() + Duration::minutes(2))
        );
    }

    #[test]
    fn with_no_counter_open_the_configured_ones_give_the_plain_rate() {
        let mut e = engine();
        for n in 0..3 {
            issue(&mut e, "a", n, t0());
        }
        // c1 and c2 serve a: the plain rate of two counters for 3.5 tickets.
        assert_eq!(e.wait_secs("s", "a", 3, t0()).unwrap(), 3.5 * 330.0 / 2.0);
        assert_eq!(e.eta_minutes("s", "a", 3), Some(10));
    }
}
