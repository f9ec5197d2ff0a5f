//! Visit facts: what happened to each ticket and each counter, derived from the committed events alone.
//!
//! A ticket's visit is a chain of *stints*: one stint per queue it waited in. A stint begins when the
//! ticket is issued (an arrival), transferred, or passed on to another service, and ends when it leaves
//! that queue for good: finished, passed on, transferred, no-show, cancelled. A return (of a parked ticket
//! or a recent no-show) continues the stint it belonged to. Counters give *spans*: open time, split into
//! busy (a ticket called or being served there) and idle. A site is open while any of its counters is.
//!
//! The `Folder` is a pure, deterministic fold: events in (in seq order), facts out. The same events always
//! give the same facts, so aggregates can be rebuilt from the log at any time.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use vuoro_engine::{Event, EventKind, TicketId};

/// How a stint ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Served and done.
    Finished,
    /// Served here and sent on to another service in the same visit (`finish` with `next_service`).
    PassedOn,
    /// Moved to another service's queue or to one counter, by staff.
    Transferred,
    /// Called, did not come (and was not brought back).
    NoShow,
    /// The customer cancelled their ticket.
    Cancelled,
    /// Still open when the day ended (`ticket_cancelled` with reason `day_ended`).
    DayEnded,
    /// Not over yet: only in a provisional fold of the current day.
    Open,
}

/// One ticket's time in one service's queue.
#[derive(Debug, Clone, PartialEq)]
pub struct Stint {
    pub site: String,
    pub service: String,
    /// The stint began with `ticket_issued`: a new visit (an arrival).
    pub arrival: bool,
    /// When it began waiting in this queue.
    pub queued_at: DateTime<Utc>,
    /// The first call in this stint; the wait is `called_at - queued_at`.
    pub called_at: Option<DateTime<Utc>>,
    /// Seconds at a counter being served (from `ticket_served`, or the call when never started), summed
    /// over every visit to a counter in this stint. Only for `Finished` and `PassedOn`.
    pub service_secs: Option<i64>,
    pub outcome: Outcome,
    /// The counter that dealt with it last (finished, passed on, marked no-show, transferred, or called
    /// it), None if it never reached a counter.
    pub counter: Option<String>,
    /// The staff member signed in at that counter then.
    pub staff: Option<String>,
}

impl Stint {
    pub fn wait_secs(&self) -> Option<i64> {
        self.called_at
            .map(|c| (c - self.queued_at).num_seconds().max(0))
    }
}

/// A stretch of time a counter was open, either busy or idle, with the staff member signed in.
#[derive(Debug, Clone, PartialEq)]
pub struct CounterSpan {
    pub site: String,
    pub counter: String,
    pub staff: Option<String>,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub busy: bool,
}

/// A stretch of time at least one counter of the site was open.
#[derive(Debug, Clone, PartialEq)]
pub struct SiteOpenSpan {
    pub site: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

/// A customer's answer to the feedback question about a finished visit: the service and the counter
/// that finished it, never the staff member, and never the comment (that stays in the event log).
#[derive(Debug, Clone, PartialEq)]
pub struct Feedback {
    pub site: String,
    pub at: DateTime<Utc>,
    pub service: String,
    pub counter: Option<String>,
    /// The staff member who finished the visit; used only where the site's `feedback_by_staff` is on.
    pub staff: Option<String>,
    /// 1..=5.
    pub rating: u8,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Fact {
    Stint(Stint),
    Counter(CounterSpan),
    SiteOpen(SiteOpenSpan),
    Feedback(Feedback),
}

/// Facts of a run of events that starts at a day boundary (the start of the log, or a `day_started`).
/// `until`: where the run stops while things are still open (the current day): open tickets and open
/// counters are reported provisionally up to that time. None: the run is a complete day (or days).
pub fn facts_for(events: &[Event], until: Option<DateTime<Utc>>) -> Vec<Fact> {
    let mut f = Folder::default();
    let mut out = Vec::new();
    for ev in events {
        f.push(ev, &mut out);
    }
    match until {
        Some(now) => f.finish_open(now, &mut out),
        None => f.end_of_day_all(&mut out),
    }
    out
}

#[derive(Debug, Clone)]
struct Track {
    service: String,
    arrival: bool,
    queued_at: DateTime<Utc>,
    called_at: Option<DateTime<Utc>>,
    /// At a counter now: (counter, since, served since).
    at_counter: Option<(String, DateTime<Utc>, Option<DateTime<Utc>>)>,
    service_secs: i64,
    /// The last counter and staff member that dealt with it.
    counter: Option<String>,
    staff: Option<String>,
    /// Marked no-show; ends as a no-show unless it is brought back.
    no_show: bool,
}

#[derive(Debug, Clone, Default)]
struct CounterTrack {
    open: bool,
    user: Option<String>,
    current: Option<TicketId>,
    busy: bool,
    /// Start of the current busy or idle stretch.
    since: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default)]
struct SiteTrack {
    tickets: HashMap<TicketId, Track>,
    counters: HashMap<String, CounterTrack>,
    open_counters: usize,
    open_since: Option<DateTime<Utc>>,
    /// Who finished each of the day's finished visits (for feedback given after it).
    finished_by: HashMap<TicketId, Option<String>>,
}

/// The fold from events to facts, one event at a time.
#[derive(Debug, Clone, Default)]
pub struct Folder {
    sites: HashMap<String, SiteTrack>,
}

impl Folder {
    /// Takes the next committed event; completed facts are appended to `out`.
    pub fn push(&mut self, ev: &Event, out: &mut Vec<Fact>) {
        let site = ev.site.as_str();
        let at = ev.at;
        let actor_user = (ev.actor.kind == vuoro_engine::ActorKind::User)
            .then(|| ev.actor.id.clone())
            .flatten();
        if let EventKind::DayStarted { .. } = ev.kind {
            self.end_of_day(site, out);
            return;
        }
        let st = self.sites.entry(site.to_string()).or_default();
        match &ev.kind {
            EventKind::DayStarted { .. } => {}
            EventKind::TicketIssued {
                ticket, service, ..
            } => {
                st.tickets.insert(
                    *ticket,
                    Track {
                        service: service.to_string(),
                        arrival: true,
                        queued_at: at,
                        called_at: None,
                        at_counter: None,
                        service_secs: 0,
                        counter: None,
                        staff: None,
                        no_show: false,
                    },
                );
            }
            EventKind::TicketCalled { ticket, counter }
            | EventKind::TicketReturned {
                ticket,
                counter: Some(counter),
                ..
            } => {
                let staff = staff_at(st, counter, actor_user);
                if let Some(t) = st.tickets.get_mut(ticket) {
                    t.called_at.get_or_insert(at);
                    t.at_counter = Some((counter.to_string(), at, None));
                    t.counter = Some(counter.to_string());
                    t.staff = staff;
                    t.no_show = false;
                }
                counter_busy(st, site, counter, Some(*ticket), at, out);
            }
            EventKind::TicketRecalled { .. } => {}
            EventKind::TicketServed { ticket, .. } => {
                if let Some(t) = st.tickets.get_mut(ticket)
                    && let Some((_, _, served)) = &mut t.at_counter
                {
                    served.get_or_insert(at);
                }
            }
            EventKind::TicketFinished {
                ticket,
                counter,
                next_service,
                ..
            } => {
                leave_counter(st, site, *ticket, at, true, out);
                if let Some(mut t) = st.tickets.remove(ticket) {
                    set_handler(st, &mut t, counter, actor_user);
                    let outcome = if next_service.is_some() {
                        Outcome::PassedOn
                    } else {
                        Outcome::Finished
                    };
                    out.push(Fact::Stint(stint(site, &t, outcome)));
                    if let Some(ns) = next_service {
                        st.tickets.insert(*ticket, next_stint(ns, at));
                    } else {
                        st.finished_by.insert(*ticket, t.staff.clone());
                    }
                }
            }
            EventKind::TicketNoShow { ticket, counter } => {
                leave_counter(st, site, *ticket, at, false, out);
                let staff = staff_at(st, counter, actor_user);
                if let Some(t) = st.tickets.get_mut(ticket) {
                    t.no_show = true;
                    t.counter = Some(counter.to_string());
                    t.staff = staff;
                }
            }
            EventKind::TicketReturned {
                ticket,
                counter: None,
                ..
            } => {
                leave_counter(st, site, *ticket, at, false, out);
                if let Some(t) = st.tickets.get_mut(ticket) {
                    t.no_show = false;
                }
            }
            EventKind::TicketTransferred {
                ticket,
                from_counter,
                service,
                ..
            } => {
                leave_counter(st, site, *ticket, at, false, out);
                if let Some(mut t) = st.tickets.remove(ticket) {
                    if let Some(c) = from_counter {
                        set_handler(st, &mut t, c, actor_user);
                    }
                    out.push(Fact::Stint(stint(site, &t, Outcome::Transferred)));
                    st.tickets.insert(*ticket, next_stint(service, at));
                }
            }
            EventKind::TicketParked { ticket, .. } => {
                leave_counter(st, site, *ticket, at, true, out);
            }
            EventKind::TicketCancelled { ticket, reason } => {
                leave_counter(st, site, *ticket, at, false, out);
                if let Some(t) = st.tickets.remove(ticket) {
                    let outcome = if t.no_show {
                        Outcome::NoShow
                    } else if reason == "customer" {
                        Outcome::Cancelled
                    } else {
                        Outcome::DayEnded
                    };
                    out.push(Fact::Stint(stint(site, &t, outcome)));
                }
            }
            EventKind::CounterOpened { counter, user } => {
                let was_open = st.counters.get(counter.as_str()).is_some_and(|c| c.open);
                if was_open {
                    // Another user took over the open counter: the stretch so far was the previous user's.
                    close_stretch(st, site, counter, at, out);
                } else {
                    st.open_counters += 1;
                    if st.open_counters == 1 {
                        st.open_since = Some(at);
                    }
                }
                let c = st.counters.entry(counter.to_string()).or_default();
                c.open = true;
                c.user = user.clone().or(actor_user);
                c.since = Some(at);
            }
            EventKind::CounterClosed { counter } => {
                close_counter(st, site, counter, at, out);
            }
            EventKind::FeedbackGiven {
                ticket,
                service,
                counter,
                rating,
                ..
            } => out.push(Fact::Feedback(Feedback {
                site: site.to_string(),
                at,
                service: service.to_string(),
                counter: counter.as_ref().map(|c| c.to_string()),
                staff: st.finished_by.get(ticket).cloned().flatten(),
                rating: *rating,
            })),
            EventKind::ServiceAccepting { .. }
            | EventKind::AlertRaised { .. }
            | EventKind::AlertCleared { .. }
            | EventKind::PrinterStatus { .. }
            | EventKind::DisplayStatus { .. } => {}
        }
    }

    /// The end of a site's day: every ticket of it is over (the engine cancels open ones before a new
    /// day starts), and every counter is closed.
    fn end_of_day(&mut self, site: &str, out: &mut Vec<Fact>) {
        let Some(mut st) = self.sites.remove(site) else {
            return;
        };
        let mut ids: Vec<TicketId> = st.tickets.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let t = st.tickets.remove(&id).expect("listed");
            let outcome = if t.no_show {
                Outcome::NoShow
            } else {
                Outcome::DayEnded
            };
            out.push(Fact::Stint(stint(site, &t, outcome)));
        }
        // Counters are closed by the engine before a day starts; a span left open here has no known end
        // and is dropped rather than guessed.
    }

    /// Ends the day of every site (the input was one or more complete days).
    pub fn end_of_day_all(&mut self, out: &mut Vec<Fact>) {
        let mut sites: Vec<String> = self.sites.keys().cloned().collect();
        sites.sort();
        for s in sites {
            self.end_of_day(&s, out);
        }
    }

    /// Provisional facts of what is still open at `now` (the current day): tickets not over yet are
    /// `Open` (a pending no-show counts as a no-show), open counters and sites count up to `now`.
    pub fn finish_open(mut self, now: DateTime<Utc>, out: &mut Vec<Fact>) {
        let mut sites: Vec<String> = self.sites.keys().cloned().collect();
        sites.sort();
        for site in sites {
            let st = self.sites.get_mut(&site).expect("listed");
            let mut counters: Vec<String> = st
                .counters
                .iter()
                .filter(|(_, c)| c.open)
                .map(|(id, _)| id.clone())
                .collect();
            counters.sort();
            let mut ids: Vec<TicketId> = st.tickets.keys().copied().collect();
            ids.sort_unstable();
            for id in ids {
                // A ticket at a counter now has no service time until it is finished.
                let t = &st.tickets[&id];
                let outcome = if t.no_show {
                    Outcome::NoShow
                } else {
                    Outcome::Open
                };
                out.push(Fact::Stint(stint(&site, t, outcome)));
            }
            for c in counters {
                close_counter(st, &site, &c, now, out);
            }
        }
    }
}

fn stint(site: &str, t: &Track, outcome: Outcome) -> Stint {
    let served = matches!(outcome, Outcome::Finished | Outcome::PassedOn);
    Stint {
        site: site.to_string(),
        service: t.service.clone(),
        arrival: t.arrival,
        queued_at: t.queued_at,
        called_at: t.called_at,
        service_secs: served.then_some(t.service_secs),
        outcome,
        counter: t.counter.clone(),
        staff: t.staff.clone(),
    }
}

/// The same visit waiting in another queue.
fn next_stint(service: &str, at: DateTime<Utc>) -> Track {
    Track {
        service: service.to_string(),
        arrival: false,
        queued_at: at,
        called_at: None,
        at_counter: None,
        service_secs: 0,
        counter: None,
        staff: None,
        no_show: false,
    }
}

/// The staff member signed in at `counter`, else the user who acted.
fn staff_at(st: &SiteTrack, counter: &str, actor_user: Option<String>) -> Option<String> {
    st.counters
        .get(counter)
        .and_then(|c| c.user.clone())
        .or(actor_user)
}

/// Records who dealt with the ticket: the counter, and the staff member signed in there.
fn set_handler(st: &SiteTrack, t: &mut Track, counter: &str, actor_user: Option<String>) {
    t.counter = Some(counter.to_string());
    t.staff = staff_at(st, counter, actor_user);
}

/// The ticket leaves the counter it is at (if any); `serving_counts`: the time there was service time.
fn leave_counter(
    st: &mut SiteTrack,
    site: &str,
    ticket: TicketId,
    at: DateTime<Utc>,
    serving_counts: bool,
    out: &mut Vec<Fact>,
) {
    let Some(t) = st.tickets.get_mut(&ticket) else {
        return;
    };
    let Some((counter, called, served)) = t.at_counter.take() else {
        return;
    };
    if serving_counts {
        t.service_secs += (at - served.unwrap_or(called)).num_seconds().max(0);
    }
    let holds = st
        .counters
        .get(&counter)
        .is_some_and(|c| c.current == Some(ticket));
    if holds {
        counter_busy(st, site, &counter, None, at, out);
    }
}

/// Switches a counter between busy (`current` is Some) and idle, ending the stretch so far.
fn counter_busy(
    st: &mut SiteTrack,
    site: &str,
    counter: &str,
    current: Option<TicketId>,
    at: DateTime<Utc>,
    out: &mut Vec<Fact>,
) {
    let busy = current.is_some();
    let open = st.counters.get(counter).is_some_and(|c| c.open);
    if open && st.counters[counter].busy != busy {
        close_stretch(st, site, counter, at, out);
    }
    let c = st.counters.entry(counter.to_string()).or_default();
    c.current = current;
    if c.open {
        if c.busy != busy {
            c.since = Some(at);
        }
        c.busy = busy;
    }
}

/// Emits the counter's current busy or idle stretch up to `at` and starts a new one there.
fn close_stretch(
    st: &mut SiteTrack,
    site: &str,
    counter: &str,
    at: DateTime<Utc>,
    out: &mut Vec<Fact>,
) {
    let Some(c) = st.counters.get_mut(counter) else {
        return;
    };
    if let Some(from) = c.since.filter(|f| *f < at) {
        out.push(Fact::Counter(CounterSpan {
            site: site.to_string(),
            counter: counter.to_string(),
            staff: c.user.clone(),
            from,
            to: at,
            busy: c.busy,
        }));
    }
    c.since = Some(at);
}

fn close_counter(
    st: &mut SiteTrack,
    site: &str,
    counter: &str,
    at: DateTime<Utc>,
    out: &mut Vec<Fact>,
) {
    if !st.counters.get(counter).is_some_and(|c| c.open) {
        return;
    }
    close_stretch(st, site, counter, at, out);
    let c = st.counters.get_mut(counter).expect("open");
    *c = CounterTrack::default();
    st.open_counters = st.open_counters.saturating_sub(1);
    if st.open_counters == 0
        && let Some(from) = st.open_since.take().filter(|f| *f < at)
    {
        out.push(Fact::SiteOpen(SiteOpenSpan {
            site: site.to_string(),
            from,
            to: at,
        }));
    }
}
