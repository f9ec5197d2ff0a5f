//! The state machine: `handle` checks a command against the state and emits events; `apply` is the only
//! place state changes. Every command checks everything first and emits after, so an error changes nothing
//! (apart from a day roll-over, which is due whatever the command).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::config::{Counter, Hall, Site};
use crate::ids::{CounterId, ServiceId, SiteId, TicketToken};
use crate::model::*;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{message}")]
    Conflict { code: Conflict, message: String },
}

/// Why the state does not allow a command: the `code` of a 409 answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Conflict {
    Conflict,
    SeriesExhausted,
    CounterClosed,
    CounterBusy,
    TicketNotWaiting,
    ServiceClosed,
    QueueFull,
    /// Feedback asked for a visit that is not finished (waiting, at a counter, no-show, cancelled).
    VisitNotFinished,
    /// This visit has its feedback already.
    FeedbackGiven,
}

impl Conflict {
    pub fn as_str(self) -> &'static str {
        match self {
            Conflict::Conflict => "conflict",
            Conflict::SeriesExhausted => "series_exhausted",
            Conflict::CounterClosed => "counter_closed",
            Conflict::CounterBusy => "counter_busy",
            Conflict::TicketNotWaiting => "ticket_not_waiting",
            Conflict::ServiceClosed => "service_closed",
            Conflict::QueueFull => "queue_full",
            Conflict::VisitNotFinished => "visit_not_finished",
            Conflict::FeedbackGiven => "feedback_given",
        }
    }
}

fn conflict(code: Conflict, message: impl Into<String>) -> EngineError {
    EngineError::Conflict {
        code,
        message: message.into(),
    }
}

/// The whole mutable state. Serializable: it is what a snapshot stores.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct State {
    pub last_seq: u64,
    pub next_ticket_id: TicketId,
    pub sites: BTreeMap<SiteId, SiteState>,
    /// token -> (site, ticket). Derived; rebuilt on load. Hashed: tokens are random, and a tree would
    /// compare them byte by byte at every level (docs/benchmarks.md).
    #[serde(skip)]
    pub tokens: HashMap<TicketToken, (SiteId, TicketId)>,
}

#[derive(Debug, Clone)]
pub struct Engine {
    cfg: Arc<Hall>,
    state: State,
    pending: Vec<Event>,
}

const EWMA_ALPHA: f64 = 0.2;
/// Smoothing of the counter time per ticket used by the wait estimate: much slower than the service time
/// shown to supervisors (a memory of about 30 tickets), since an estimate should follow the trend, not the
/// last customer. Chosen with the day benchmark (crates/vuoro-bench, docs/benchmarks.md).
const BUSY_ALPHA: f64 = 0.03;

impl Engine {
    /// A fresh engine: every site starts on the local day of `now`, with nothing issued.
    pub fn new(cfg: Arc<Hall>, now: DateTime<Utc>) -> Engine {
        let sites = cfg
            .sites
            .iter()
            .map(|s| (s.id.clone(), fresh_site(s, s.local_date(now))))
            .collect();
        Engine {
            cfg,
            state: State {
                last_seq: 0,
                next_ticket_id: 1,
                sites,
                tokens: HashMap::new(),
            },
            pending: Vec::new(),
        }
    }

    /// An engine from a snapshot. Sites added to the config since get a fresh state; removed ones are dropped.
    pub fn from_snapshot(cfg: Arc<Hall>, mut state: State, now: DateTime<Utc>) -> Engine {
        state.sites.retain(|id, _| cfg.site(id).is_some());
        for s in &cfg.sites {
            state
                .sites
                .entry(s.id.clone())
                .or_insert_with(|| fresh_site(s, s.local_date(now)));
            let st = state.sites.get_mut(&s.id).expect("just inserted");
            for c in &s.counters {
                st.counters.entry(c.id.clone()).or_default();
            }
            for svc in &s.services {
                st.services
                    .entry(svc.id.clone())
                    .or_insert_with(|| fresh_service(svc.expected_service_minutes));
            }
        }
        let mut e = Engine {
            cfg,
            state,
            pending: Vec::new(),
        };
        e.rebuild_indexes();
        e
    }

    pub fn config(&self) -> &Arc<Hall> {
        &self.cfg
    }

    /// Why the hall cannot change to `cfg` now, one reason a line (empty: it can): a site, service or
    /// counter that the new hall leaves out while it still has a customer's open visit or an open counter.
    /// Nobody waiting is ever dropped or renumbered by a change of the hall.
    pub fn reconfigure_blockers(&self, cfg: &Hall) -> Vec<String> {
        let mut out = Vec::new();
        for (site_id, st) in &self.state.sites {
            let open: Vec<&Ticket> = st
                .tickets
                .values()
                .filter(|t| !t.state.is_final())
                .collect();
            let Some(site) = cfg.site(site_id) else {
                if !open.is_empty() {
                    out.push(format!(
                        "site '{site_id}' has {} open visits today: end its day first",
                        open.len()
                    ));
                }
                continue;
            };
            let mut by_service: BTreeMap<&str, usize> = BTreeMap::new();
            for t in &open {
                if site.service(&t.service).is_none() {
                    *by_service.entry(t.service.as_str()).or_default() += 1;
                }
            }
            for (svc, n) in by_service {
                out.push(format!(
                    "service '{svc}' at site '{site_id}' has {n} open visits: move its waiting customers to another service (or let them be served) before removing it"
                ));
            }
            for (cid, c) in &st.counters {
                if (c.open || c.current.is_some()) && site.counter(cid).is_none() {
                    out.push(format!(
                        "counter '{cid}' at site '{site_id}' is open: close it before removing it"
                    ));
                }
            }
        }
        out
    }

    /// Takes the hall `cfg` from now on, keeping every ticket, number and counter as it is: new sites,
    /// services and counters start fresh, removed ones (which `reconfigure_blockers` has found empty) are
    /// dropped.
    pub fn reconfigure(&mut self, cfg: Arc<Hall>, now: DateTime<Utc>) {
        let state = std::mem::replace(
            &mut self.state,
            State {
                last_seq: 0,
                next_ticket_id: 0,
                sites: BTreeMap::new(),
                tokens: HashMap::new(),
            },
        );
        *self = Engine::from_snapshot(cfg, state, now);
        let cfg = self.cfg.clone();
        for (id, st) in self.state.sites.iter_mut() {
            let site = cfg
                .site(id)
                .expect("from_snapshot keeps the hall's sites only");
            st.services.retain(|s, _| site.service(s).is_some());
            st.counters.retain(|c, _| site.counter(c).is_some());
        }
        self.rebuild_indexes();
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    pub fn last_seq(&self) -> u64 {
        self.state.last_seq
    }

    /// Events emitted since the last call, in order.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.pending)
    }

    fn rebuild_indexes(&mut self) {
        self.state.tokens.clear();
        for (sid, site) in self.state.sites.iter_mut() {
            site.waiting.clear();
            site.active_numbers.clear();
            site.targeted.clear();
            for t in site.tickets.values() {
                self.state
                    .tokens
                    .insert(t.token.clone(), (sid.clone(), t.id));
                index_ticket(
                    &mut site.waiting,
                    &mut site.active_numbers,
                    &mut site.targeted,
                    t,
                );
            }
        }
    }

    // ---- reading -------------------------------------------------------------------------------

    pub fn site_state(&self, site: &str) -> Option<&SiteState> {
        self.state.sites.get(site)
    }

    pub fn ticket(&self, site: &str, id: TicketId) -> Option<&Ticket> {
        self.state.sites.get(site)?.tickets.get(&id)
    }

    pub fn ticket_by_token(&self, token: &str) -> Option<&Ticket> {
        let (site, id) = self.state.tokens.get(token)?;
        self.ticket(site, *id)
    }

    /// The site a counter belongs to, with its config.
    pub fn counter_site(&self, counter: &str) -> Option<(&Site, &Counter)> {
        self.cfg
            .sites
            .iter()
            .find_map(|s| s.counter(counter).map(|c| (s, c)))
    }

    /// People ahead of a waiting ticket in its service's queue.
    pub fn position(&self, t: &Ticket) -> Option<u32> {
        if t.state != TicketState::Waiting {
            return None;
        }
        let q = self.state.sites.get(&t.site)?.waiting.get(&t.service)?;
        let key = (t.priority.rank(), t.order, t.id);
        // Counted from whichever end is nearer: a ticket just issued is last, so its answer costs one step
        // and not a walk through the whole queue (docs/benchmarks.md).
        let mut before = q.range(..key);
        let mut after = q.range((std::ops::Bound::Excluded(key), std::ops::Bound::Unbounded));
        let mut n = 0usize;
        loop {
            if before.next().is_none() {
                return Some(n as u32);
            }
            if after.next().is_none() {
                // `n` after it (and more than `n` before): the rest of the queue, less the ticket itself
                // (a waiting ticket is always in its service's queue), is before it.
                return Some((q.len() - 1 - n) as u32);
            }
            n += 1;
        }
    }

    /// Waiting count for a service.
    pub fn waiting(&self, site: &str, service: &str) -> u32 {
        self.state
            .sites
            .get(site)
            .and_then(|s| s.waiting.get(service))
            .map_or(0, |q| q.len() as u32)
    }

    /// The longest current wait in a service, in seconds.
    pub fn longest_wait(&self, site: &str, service: &str, now: DateTime<Utc>) -> i64 {
        let Some(st) = self.state.sites.get(site) else {
            return 0;
        };
        st.waiting
            .get(service)
            .into_iter()
            .flatten()
            .filter_map(|(_, _, id)| st.tickets.get(id))
            .map(|t| (now - t.queued_at).num_seconds())
            .max()
            .unwrap_or(0)
    }

    /// Why a service does not accept tickets now, or None when it does.
    pub fn closed_reason(
        &self,
        site: &Site,
        service: &str,
        now: DateTime<Utc>,
    ) -> Option<&'static str> {
        let svc = site.service(service)?;
        let opening = site.opening(Some(svc), now);
        if !opening.open {
            return Some("closed_hours");
        }
        if let Some(closes) = opening.closes_at
            && svc.last_ticket_minutes_before_close > 0
            && now
                >= closes - chrono::Duration::minutes(svc.last_ticket_minutes_before_close as i64)
        {
            return Some("last_ticket_passed");
        }
        let st = &self.state.sites[&site.id];
        if !st.services.get(service).is_some_and(|s| s.accepting) {
            return Some("closed_by_staff");
        }
        if let Some(max) = svc.max_queue
            && self.waiting(&site.id, service) >= max
        {
            return Some("queue_full");
        }
        None
    }

    /// Finds a ticket of today by reference.
    pub fn find_ticket(&self, site: &str, r: &TicketRef) -> Option<&Ticket> {
        let st = self.state.sites.get(site)?;
        match r {
            TicketRef::Id(id) => st.tickets.get(id),
            TicketRef::Number(n) => {
                let n = n.trim().to_ascii_uppercase().replace([' ', '-'], "");
                // A number may be reused after wrapping; prefer the active one, else the latest.
                st.tickets
                    .values()
                    .rev()
                    .filter(|t| t.number == n)
                    .min_by_key(|t| t.state.is_final())
            }
        }
    }

    /// The ticket `counter` would call next, without calling it.
    pub fn next_for_counter(&self, site: &Site, counter: &Counter) -> Option<TicketId> {
        let st = &self.state.sites[&site.id];
        let sent = st
            .targeted
            .get(&counter.id)
            .and_then(|q| q.first())
            .copied();
        // The first ticket of each queue in call order that is not reserved for a counter (reserved ones
        // are few).
        call_order(counter, sent, |svc| {
            st.waiting
                .get(svc)?
                .iter()
                .find(|(_, _, id)| st.tickets[id].target_counter.is_none())
                .copied()
        })
        .map(|(k, _)| k.2)
    }

    // ---- commands ------------------------------------------------------------------------------

    /// Handles one command at `now` on behalf of `actor`. Events are collected for `take_events`.
    pub fn handle(
        &mut self,
        cmd: Command,
        now: DateTime<Utc>,
        actor: &Actor,
    ) -> Result<Outcome, EngineError> {
        match cmd {
            Command::Tick => {
                let ids: Vec<SiteId> = self.cfg.sites.iter().map(|s| s.id.clone()).collect();
                for s in ids {
                    self.roll_day(&s, now);
                    self.alert_long_waits(&s, now, actor);
                }
                Ok(Outcome::Done)
            }
            Command::Issue {
                site,
                service,
                lang,
                priority,
                token,
                channel,
                idempotency,
            } => self.issue(
                &site,
                &service,
                &lang,
                priority,
                token,
                channel,
                idempotency,
                now,
                actor,
            ),
            Command::Counter { counter, verb } => self.counter_verb(&counter, verb, now, actor),
            Command::Cancel { token } => {
                let (site, id) = self
                    .state
                    .tokens
                    .get(&token)
                    .cloned()
                    .ok_or_else(|| EngineError::NotFound("no such ticket".into()))?;
                self.roll_day(&site, now);
                let t = self
                    .ticket(&site, id)
                    .ok_or_else(|| EngineError::NotFound("no such ticket".into()))?;
                if !matches!(t.state, TicketState::Waiting | TicketState::Parked) {
                    return Err(conflict(
                        Conflict::Conflict,
                        format!(
                            "Ticket {} is {}, it can no longer be cancelled.",
                            t.number,
                            t.state.as_str()
                        ),
                    ));
                }
                self.emit(
                    &site,
                    now,
                    actor,
                    EventKind::TicketCancelled {
                        ticket: id,
                        reason: "customer".into(),
                    },
                );
                Ok(Outcome::Ticket {
                    site,
                    id,
                    created: false,
                })
            }
            Command::Feedback {
                token,
                rating,
                comment,
            } => self.feedback(&token, rating, comment, now, actor),
            Command::SetAccepting {
                site,
                service,
                accepting,
            } => {
                self.site_cfg(&site)?
                    .service(&service)
                    .ok_or_else(|| EngineError::NotFound(format!("no service '{service}'")))?;
                self.roll_day(&site, now);
                if self.state.sites[&site].services[&service].accepting != accepting {
                    self.emit(
                        &site,
                        now,
                        actor,
                        EventKind::ServiceAccepting { service, accepting },
                    );
                }
                Ok(Outcome::Done)
            }
            Command::MoveWaiting { site, from, to } => {
                let s = self.site_cfg(&site)?;
                s.service(&from)
                    .ok_or_else(|| EngineError::NotFound(format!("no service '{from}'")))?;
                s.service(&to)
                    .ok_or_else(|| EngineError::Invalid(format!("no service '{to}'")))?;
                if from == to {
                    return Err(EngineError::Invalid(
                        "a service cannot be moved to itself".into(),
                    ));
                }
                self.roll_day(&site, now);
                let ids: Vec<(TicketId, i64)> = self.state.sites[&site]
                    .waiting
                    .get(&from)
                    .into_iter()
                    .flatten()
                    .map(|&(_, o, id)| (id, o))
                    .collect();
                for (id, order) in ids {
                    self.emit(
                        &site,
                        now,
                        actor,
                        EventKind::TicketTransferred {
                            ticket: id,
                            from_counter: None,
                            from_service: from.clone(),
                            service: to.clone(),
                            target_counter: None,
                            order,
                        },
                    );
                }
                Ok(Outcome::Done)
            }
            Command::RaiseAlert {
                site,
                kind,
                device,
                service,
                message,
            } => {
                self.site_cfg(&site)?;
                self.roll_day(&site, now);
                let open = self.state.sites[&site]
                    .alerts
                    .values()
                    .any(|a| a.kind == kind && a.device == device && a.service == service);
                if !open {
                    let alert = self.state.last_seq + 1;
                    self.emit(
                        &site,
                        now,
                        actor,
                        EventKind::AlertRaised {
                            alert,
                            alert_kind: kind,
                            device,
                            service,
                            message,
                        },
                    );
                }
                Ok(Outcome::Done)
            }
            Command::ClearAlert { site, alert } => {
                self.site_cfg(&site)?;
                if !self.state.sites[&site].alerts.contains_key(&alert) {
                    return Err(EngineError::NotFound(format!("no open alert {alert}")));
                }
                self.emit(&site, now, actor, EventKind::AlertCleared { alert });
                Ok(Outcome::Done)
            }
            Command::DisplayStatus {
                site,
                device,
                status,
            } => {
                self.site_cfg(&site)?;
                let same = self.state.sites[&site]
                    .displays
                    .get(&device)
                    .is_some_and(|d| d.status == status);
                if !same {
                    self.emit(
                        &site,
                        now,
                        actor,
                        EventKind::DisplayStatus { device, status },
                    );
                }
                Ok(Outcome::Done)
            }
            Command::PrinterStatus {
                site,
                device,
                status,
                detail,
                alert,
            } => {
                self.site_cfg(&site)?;
                let st = &self.state.sites[&site];
                let same = st
                    .printers
                    .get(&device)
                    .is_some_and(|p| p.status == status && p.detail == detail);
                let open: Vec<u64> = st
                    .alerts
                    .values()
                    .filter(|a| a.kind == "printer" && a.device.as_deref() == Some(device.as_str()))
                    .map(|a| a.id)
                    .collect();
                if !same {
                    self.emit(
                        &site,
                        now,
                        actor,
                        EventKind::PrinterStatus {
                            device: device.clone(),
                            status: status.clone(),
                            detail,
                        },
                    );
                }
                if status == "online" {
                    for alert in open {
                        self.emit(&site, now, actor, EventKind::AlertCleared { alert });
                    }
                } else if open.is_empty() {
                    let alert_id = self.state.last_seq + 1;
                    let message = alert.unwrap_or_else(|| format!("{device}: {status}"));
                    self.emit(
                        &site,
                        now,
                        actor,
                        EventKind::AlertRaised {
                            alert: alert_id,
                            alert_kind: "printer".into(),
                            device: Some(device),
                            service: None,
                            message,
                        },
                    );
                }
                Ok(Outcome::Done)
            }
            Command::EndDay { site } => {
                self.site_cfg(&site)?;
                self.roll_day(&site, now);
                self.end_day(&site, now, actor);
                Ok(Outcome::Done)
            }
        }
    }

    /// Feedback on a visit: only once it is finished (served and done; a no-show or a cancelled ticket had
    /// no visit to rate), once per visit, a rating of 1..=5 and a comment of at most
    /// `FEEDBACK_COMMENT_MAX` characters after trimming.
    fn feedback(
        &mut self,
        token: &str,
        rating: u8,
        comment: Option<String>,
        now: DateTime<Utc>,
        actor: &Actor,
    ) -> Result<Outcome, EngineError> {
        if !(1..=5).contains(&rating) {
            return Err(EngineError::Invalid(
                "rating must be a whole number from 1 to 5".into(),
            ));
        }
        let comment = comment
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty());
        if let Some(c) = &comment {
            if c.chars().count() > FEEDBACK_COMMENT_MAX {
                return Err(EngineError::Invalid(format!(
                    "comment is longer than {FEEDBACK_COMMENT_MAX} characters"
                )));
            }
            if c.chars().any(|ch| ch.is_control() && ch != '\n') {
                return Err(EngineError::Invalid(
                    "comment may not hold control characters".into(),
                ));
            }
        }
        let (site, id) = self
            .state
            .tokens
            .get(token)
            .cloned()
            .ok_or_else(|| EngineError::NotFound("no such ticket".into()))?;
        self.roll_day(&site, now);
        let t = self
            .ticket(&site, id)
            .ok_or_else(|| EngineError::NotFound("no such ticket".into()))?;
        if t.state != TicketState::Finished {
            return Err(conflict(
                Conflict::VisitNotFinished,
                format!(
                    "Ticket {} is {}: feedback is asked once the visit is finished.",
                    t.number,
                    t.state.as_str()
                ),
            ));
        }
        if t.feedback.is_some() {
            return Err(conflict(
                Conflict::FeedbackGiven,
                format!("Ticket {} has its feedback already.", t.number),
            ));
        }
        let (service, counter) = (t.service.clone(), t.counter.clone());
        self.emit(
            &site,
            now,
            actor,
            EventKind::FeedbackGiven {
                ticket: id,
                service,
                counter,
                rating,
                comment,
            },
        );
        Ok(Outcome::Ticket {
            site,
            id,
            created: false,
        })
    }

    fn site_cfg(&self, site: &str) -> Result<&Site, EngineError> {
        self.cfg
            .site(site)
            .ok_or_else(|| EngineError::NotFound(format!("no site '{site}'")))
    }

    #[allow(clippy::too_many_arguments)]
    fn issue(
        &mut self,
        site: &SiteId,
        service: &ServiceId,
        lang: &str,
        priority: Priority,
        token: TicketToken,
        channel: Channel,
        idempotency: Option<String>,
        now: DateTime<Utc>,
        actor: &Actor,
    ) -> Result<Outcome, EngineError> {
        let cfg = self.cfg.clone();
        let s = cfg
            .site(site)
            .ok_or_else(|| EngineError::NotFound(format!("no site '{site}'")))?;
        let svc = s
            .service(service)
            .ok_or_else(|| EngineError::Invalid(format!("no service '{service}' at this site")))?;
        if !s.languages.iter().any(|l| l == lang) {
            return Err(EngineError::Invalid(format!(
                "language '{lang}' is not offered here"
            )));
        }
        if token.len() < 32 || self.state.tokens.contains_key(token.as_str()) {
            return Err(EngineError::Invalid(
                "ticket token must be fresh and at least 128 bits".into(),
            ));
        }
        self.roll_day(site, now);
        let idem_key = idempotency
            .as_ref()
            .map(|k| format!("{}\u{1f}{k}", actor.key()));
        if let Some(k) = &idem_key
            && let Some(&id) = self.state.sites[site].idempotency.get(k)
        {
            return Ok(Outcome::Ticket {
                site: site.clone(),
                id,
                created: false,
            });
        }
        if let Some(reason) = self.closed_reason(s, service, now) {
            let code = if reason == "queue_full" {
                Conflict::QueueFull
            } else {
                Conflict::ServiceClosed
            };
            return Err(conflict(
                code,
                format!(
                    "{} is not taking tickets now ({reason}).",
                    config_name(&svc.name)
                ),
            ));
        }
        let series = s.series(&svc.series).expect("checked config");
        let st = &self.state.sites[site];
        let span = series.last - series.first + 1;
        let start = st
            .series_next
            .get(&series.letter)
            .copied()
            .unwrap_or(series.first);
        let used = st.active_numbers.get(&series.letter);
        let seq_no = (0..span)
            .map(|i| series.first + (start - series.first + i) % span)
            .find(|n| !used.is_some_and(|u| u.contains(n)))
            .ok_or_else(|| {
                conflict(
                    Conflict::SeriesExhausted,
                    format!("Every number of series {} is in use.", series.letter),
                )
            })?;
        let width = series.last.to_string().len().max(3);
        let number = format!("{}{:0width$}", series.letter, seq_no);
        let id = self.state.next_ticket_id;
        let order = st.next_order;
        self.emit(
            site,
            now,
            actor,
            EventKind::TicketIssued {
                ticket: id,
                number,
                series: series.letter.clone(),
                seq_no,
                service: service.clone(),
                lang: lang.into(),
                priority,
                token,
                channel,
                idempotency: idem_key,
                order,
            },
        );
        Ok(Outcome::Ticket {
            site: site.clone(),
            id,
            created: true,
        })
    }

    fn counter_verb(
        &mut self,
        counter: &str,
        verb: CounterVerb,
        now: DateTime<Utc>,
        actor: &Actor,
    ) -> Result<Outcome, EngineError> {
        let cfg = self.cfg.clone();
        let (site, c) = cfg
            .sites
            .iter()
            .find_map(|s| s.counter(counter).map(|c| (s, c)))
            .ok_or_else(|| EngineError::NotFound(format!("no counter '{counter}'")))?;
        let counter = &c.id;
        let sid = &site.id;
        self.roll_day(sid, now);
        let cs = self.state.sites[sid]
            .counters
            .get(counter)
            .cloned()
            .unwrap_or_default();
        let current = cs.current.and_then(|id| self.ticket(sid, id).cloned());
        let out = |e: &Engine| Outcome::Counter {
            site: sid.clone(),
            counter: counter.clone(),
            ticket: e.state.sites[sid]
                .counters
                .get(counter)
                .and_then(|c| c.current),
        };
        let user = actor.id.clone();
        let need_open = |cs: &CounterState| {
            if cs.open {
                Ok(())
            } else {
                Err(conflict(
                    Conflict::CounterClosed,
                    format!("{} is closed: open it first.", config_name(&c.name)),
                ))
            }
        };
        let need_current = || {
            current
                .clone()
                .ok_or_else(|| conflict(Conflict::Conflict, "This counter has no current ticket."))
        };
        match verb {
            CounterVerb::Open => {
                if !cs.open || cs.user != user {
                    self.emit(
                        sid,
                        now,
                        actor,
                        EventKind::CounterOpened {
                            counter: counter.clone(),
                            user,
                        },
                    );
                }
                Ok(out(self))
            }
            CounterVerb::Close => {
                if current.is_some() {
                    return Err(conflict(
                        Conflict::CounterBusy,
                        "Finish, park or transfer the current ticket before closing.",
                    ));
                }
                if cs.open {
                    self.emit(
                        sid,
                        now,
                        actor,
                        EventKind::CounterClosed {
                            counter: counter.clone(),
                        },
                    );
                }
                Ok(out(self))
            }
            CounterVerb::CallNext => {
                need_open(&cs)?;
                let Some(next) = self.next_for_counter(site, c) else {
                    if let Some(cur) = &current {
                        self.finish_current(sid, counter, cur, now, actor);
                    }
                    return Ok(Outcome::NobodyWaiting {
                        site: sid.clone(),
                        counter: counter.clone(),
                    });
                };
                if let Some(cur) = &current {
                    self.finish_current(sid, counter, cur, now, actor);
                }
                self.emit(
                    sid,
                    now,
                    actor,
                    EventKind::TicketCalled {
                        ticket: next,
                        counter: counter.clone(),
                    },
                );
                Ok(out(self))
            }
            CounterVerb::Call(r) => {
                need_open(&cs)?;
                let t = self
                    .find_ticket(sid, &r)
                    .ok_or_else(|| EngineError::NotFound("no such ticket today".into()))?
                    .clone();
                if t.state != TicketState::Waiting {
                    return Err(conflict(
                        Conflict::TicketNotWaiting,
                        format!("Ticket {} is {}, not waiting.", t.number, t.state.as_str()),
                    ));
                }
                let serves = c.services.iter().any(|s| s.service == t.service)
                    || t.target_counter.as_deref() == Some(counter);
                if !serves {
                    return Err(conflict(
                        Conflict::Conflict,
                        format!("Ticket {} is not in a queue this counter serves.", t.number),
                    ));
                }
                if let Some(tc) = &t.target_counter
                    && tc != counter
                {
                    return Err(conflict(
                        Conflict::Conflict,
                        format!("Ticket {} was sent to another counter.", t.number),
                    ));
                }
                if let Some(cur) = &current {
                    self.finish_current(sid, counter, cur, now, actor);
                }
                self.emit(
                    sid,
                    now,
                    actor,
                    EventKind::TicketCalled {
                        ticket: t.id,
                        counter: counter.clone(),
                    },
                );
                Ok(out(self))
            }
            CounterVerb::Recall => {
                let t = need_current()?;
                if t.state != TicketState::Called {
                    return Err(conflict(
                        Conflict::Conflict,
                        format!(
                            "Ticket {} is {}, only a called ticket can be recalled.",
                            t.number,
                            t.state.as_str()
                        ),
                    ));
                }
                self.emit(
                    sid,
                    now,
                    actor,
                    EventKind::TicketRecalled {
                        ticket: t.id,
                        counter: counter.clone(),
                    },
                );
                Ok(out(self))
            }
            CounterVerb::Start => {
                let t = need_current()?;
                if t.state != TicketState::Called {
                    return Err(conflict(
                        Conflict::Conflict,
                        format!("Ticket {} is {}, not called.", t.number, t.state.as_str()),
                    ));
                }
                self.emit(
                    sid,
                    now,
                    actor,
                    EventKind::TicketServed {
                        ticket: t.id,
                        counter: counter.clone(),
                    },
                );
                Ok(out(self))
            }
            CounterVerb::Finish {
                next_service,
                position,
            } => {
                let t = need_current()?;
                let order = match &next_service {
                    Some(ns) => {
                        site.service(ns).ok_or_else(|| {
                            EngineError::Invalid(format!("no service '{ns}' at this site"))
                        })?;
                        if ns == &t.service {
                            return Err(EngineError::Invalid(
                                "a ticket cannot be passed on to the service it is in".into(),
                            ));
                        }
                        Some(self.order_for(sid, ns, &t, position))
                    }
                    None => None,
                };
                self.emit(
                    sid,
                    now,
                    actor,
                    EventKind::TicketFinished {
                        ticket: t.id,
                        counter: counter.clone(),
                        next_service,
                        order,
                    },
                );
                Ok(Outcome::Counter {
                    site: sid.clone(),
                    counter: counter.clone(),
                    ticket: Some(t.id),
                })
            }
            CounterVerb::NoShow => {
                let t = need_current()?;
                if t.state != TicketState::Called {
                    return Err(conflict(
                        Conflict::Conflict,
                        format!("Ticket {} is being served; finish it instead.", t.number),
                    ));
                }
                self.emit(
                    sid,
                    now,
                    actor,
                    EventKind::TicketNoShow {
                        ticket: t.id,
                        counter: counter.clone(),
                    },
                );
                Ok(Outcome::Counter {
                    site: sid.clone(),
                    counter: counter.clone(),
                    ticket: Some(t.id),
                })
            }
            CounterVerb::Park => {
                let t = need_current()?;
                self.emit(
                    sid,
                    now,
                    actor,
                    EventKind::TicketParked {
                        ticket: t.id,
                        counter: counter.clone(),
                    },
                );
                Ok(Outcome::Counter {
                    site: sid.clone(),
                    counter: counter.clone(),
                    ticket: Some(t.id),
                })
            }
            CounterVerb::Transfer {
                ticket,
                to,
                position,
            } => {
                let t = match &ticket {
                    Some(r) => {
                        let t = self
                            .find_ticket(sid, r)
                            .ok_or_else(|| EngineError::NotFound("no such ticket today".into()))?
                            .clone();
                        let here = t.counter.as_deref() == Some(counter)
                            && matches!(t.state, TicketState::Called | TicketState::Serving);
                        if t.state != TicketState::Waiting && !here {
                            return Err(conflict(
                                Conflict::Conflict,
                                format!(
                                    "Ticket {} is {}: only a waiting ticket or this counter's own can be transferred.",
                                    t.number,
                                    t.state.as_str()
                                ),
                            ));
                        }
                        t
                    }
                    None => need_current()?,
                };
                let (service, target) = match to {
                    TransferTarget::Service(s) => {
                        site.service(&s).ok_or_else(|| {
                            EngineError::Invalid(format!("no service '{s}' at this site"))
                        })?;
                        (s, None)
                    }
                    TransferTarget::Counter(tc) => {
                        if site.counter(&tc).is_none() {
                            return Err(EngineError::Invalid(format!(
                                "no counter '{tc}' at this site"
                            )));
                        }
                        if tc == *counter {
                            return Err(EngineError::Invalid(
                                "a ticket cannot be transferred to its own counter".into(),
                            ));
                        }
                        (t.service.clone(), Some(tc))
                    }
                };
                let order = self.order_for(sid, &service, &t, position);
                let from_counter = t
                    .counter
                    .clone()
                    .filter(|_| matches!(t.state, TicketState::Called | TicketState::Serving));
                self.emit(
                    sid,
                    now,
                    actor,
                    EventKind::TicketTransferred {
                        ticket: t.id,
                        from_counter,
                        from_service: t.service.clone(),
                        service,
                        target_counter: target,
                        order,
                    },
                );
                Ok(Outcome::Counter {
                    site: sid.clone(),
                    counter: counter.clone(),
                    ticket: Some(t.id),
                })
            }
            CounterVerb::Return { ticket, to } => {
                let t = self
                    .find_ticket(sid, &ticket)
                    .ok_or_else(|| EngineError::NotFound("no such ticket today".into()))?
                    .clone();
                match t.state {
                    TicketState::Parked => {}
                    TicketState::NoShow => {
                        let limit = chrono::Duration::minutes(site.no_show_return_minutes as i64);
                        if t.ended_at.is_some_and(|at| now - at > limit) {
                            return Err(conflict(
                                Conflict::Conflict,
                                format!(
                                    "Ticket {} was a no-show more than {} minutes ago.",
                                    t.number, site.no_show_return_minutes
                                ),
                            ));
                        }
                    }
                    s => {
                        return Err(conflict(
                            Conflict::Conflict,
                            format!(
                                "Ticket {} is {}: only a parked ticket or a recent no-show can return.",
                                t.number,
                                s.as_str()
                            ),
                        ));
                    }
                }
                let serves = c.services.iter().any(|s| s.service == t.service)
                    || t.counter.as_deref() == Some(counter);
                if !serves {
                    return Err(conflict(
                        Conflict::Conflict,
                        format!("Ticket {} is not in a queue this counter serves.", t.number),
                    ));
                }
                match to {
                    ReturnTo::Counter => {
                        need_open(&cs)?;
                        if current.is_some() {
                            return Err(conflict(
                                Conflict::CounterBusy,
                                "This counter already has a current ticket.",
                            ));
                        }
                        self.emit(
                            sid,
                            now,
                            actor,
                            EventKind::TicketReturned {
                                ticket: t.id,
                                counter: Some(counter.clone()),
                                order: None,
                            },
                        );
                    }
                    ReturnTo::Queue => {
                        let order = self.order_for(sid, &t.service, &t, Position::Front);
                        self.emit(
                            sid,
                            now,
                            actor,
                            EventKind::TicketReturned {
                                ticket: t.id,
                                counter: None,
                                order: Some(order),
                            },
                        );
                    }
                }
                Ok(Outcome::Counter {
                    site: sid.clone(),
                    counter: counter.clone(),
                    ticket: Some(t.id),
                })
            }
        }
    }

    fn finish_current(
        &mut self,
        site: &SiteId,
        counter: &CounterId,
        t: &Ticket,
        now: DateTime<Utc>,
        actor: &Actor,
    ) {
        self.emit(
            site,
            now,
            actor,
            EventKind::TicketFinished {
                ticket: t.id,
                counter: counter.clone(),
                next_service: None,
                order: None,
            },
        );
    }

    /// The order key for placing `t` in `service`'s queue at `position`.
    fn order_for(&self, site: &str, service: &str, t: &Ticket, position: Position) -> i64 {
        let st = &self.state.sites[site];
        let q = st.waiting.get(service);
        match position {
            Position::Original => t.original_order,
            Position::Back => st.next_order,
            Position::Front => q
                .and_then(|q| q.iter().map(|&(_, o, _)| o).min())
                .map_or(t.original_order, |m| (m - 1).min(t.original_order)),
        }
    }

    /// Starts a new local day for `site` if `now` is past midnight there: open tickets end, counters close.
    fn roll_day(&mut self, site: &SiteId, now: DateTime<Utc>) {
        let Some(cfg_site) = self.cfg.site(site) else {
            return;
        };
        let today = cfg_site.local_date(now);
        if self.state.sites[site].date >= today {
            return;
        }
        let actor = Actor::system();
        self.end_day(site, now, &actor);
        self.emit(site, now, &actor, EventKind::DayStarted { date: today });
    }

    fn end_day(&mut self, site: &SiteId, now: DateTime<Utc>, actor: &Actor) {
        let open: Vec<TicketId> = self.state.sites[site]
            .tickets
            .values()
            .filter(|t| !t.state.is_final())
            .map(|t| t.id)
            .collect();
        for id in open {
            self.emit(
                site,
                now,
                actor,
                EventKind::TicketCancelled {
                    ticket: id,
                    reason: "day_ended".into(),
                },
            );
        }
        let counters: Vec<CounterId> = self.state.sites[site]
            .counters
            .iter()
            .filter(|(_, c)| c.open)
            .map(|(id, _)| id.clone())
            .collect();
        for counter in counters {
            self.emit(site, now, actor, EventKind::CounterClosed { counter });
        }
    }

    /// A `long_wait` alert for each service of `site` whose longest wait is over its target, once per
    /// service until staff clear it.
    fn alert_long_waits(&mut self, site: &SiteId, now: DateTime<Utc>, actor: &Actor) {
        let Some(cfg) = self.cfg.site(site).cloned() else {
            return;
        };
        for svc in &cfg.services {
            let longest = self.longest_wait(site, &svc.id, now);
            if longest <= svc.target_wait_minutes as i64 * 60 {
                continue;
            }
            let open = self.state.sites[site]
                .alerts
                .values()
                .any(|a| a.kind == "long_wait" && a.service.as_deref() == Some(svc.id.as_str()));
            if open {
                continue;
            }
            let alert = self.state.last_seq + 1;
            let message = format!(
                "Longest wait in {} is {} min (target {} min).",
                crate::config::text_in(&svc.name, "en", cfg.default_language()),
                longest / 60,
                svc.target_wait_minutes
            );
            self.emit(
                site,
                now,
                actor,
                EventKind::AlertRaised {
                    alert,
                    alert_kind: "long_wait".into(),
                    device: None,
                    service: Some(svc.id.clone()),
                    message,
                },
            );
        }
    }

    /// The waiting tickets `counter` may call, in the order it calls them (`call_order`'s rule applied to
    /// the whole queue, for the desk's queue view).
    pub fn counter_queue(&self, counter: &Counter) -> Vec<&Ticket> {
        let Some(st) = self
            .cfg
            .sites
            .iter()
            .find(|s| s.counter(&counter.id).is_some())
            .and_then(|s| self.state.sites.get(&s.id))
        else {
            return Vec::new();
        };
        let mut queue: Vec<(CallRank, &Ticket)> = st
            .tickets
            .values()
            .filter(|t| t.state == TicketState::Waiting)
            .filter_map(|t| {
                let key = (t.priority.rank(), t.order, t.id);
                let tier = match &t.target_counter {
                    Some(c) if c == &counter.id => 0,
                    Some(_) => return None,
                    None => {
                        counter
                            .services
                            .iter()
                            .find(|cs| cs.service == t.service)?
                            .tier
                    }
                };
                Some((call_rank(tier, key), t))
            })
            .collect();
        queue.sort_by_key(|(rank, _)| *rank);
        queue.into_iter().map(|(_, t)| t).collect()
    }

    fn emit(&mut self, site: &SiteId, at: DateTime<Utc>, actor: &Actor, kind: EventKind) {
        let ev = Event {
            seq: self.state.last_seq + 1,
            at,
            site: site.clone(),
            actor: actor.clone(),
            kind,
        };
        self.apply(&ev);
        self.pending.push(ev);
    }

    // ---- applying events -----------------------------------------------------------------------

    /// Applies a committed (or just emitted) event. Deterministic: the same events give the same state.
    pub fn apply(&mut self, ev: &Event) {
        debug_assert_eq!(
            ev.seq,
            self.state.last_seq + 1,
            "events must be applied in order"
        );
        self.state.last_seq = ev.seq;
        let Some(st) = self.state.sites.get_mut(&ev.site) else {
            return;
        };
        let at = ev.at;
        st.last_at = Some(st.last_at.map_or(at, |l| l.max(at)));
        match &ev.kind {
            EventKind::DayStarted { date } => {
                for t in st.tickets.values() {
                    self.state.tokens.remove(&t.token);
                }
                st.date = *date;
                st.tickets.clear();
                st.series_next.clear();
                st.idempotency.clear();
                st.waiting.clear();
                st.active_numbers.clear();
                st.targeted.clear();
                for s in st.services.values_mut() {
                    s.served_today = 0;
                }
                st.feedback = [0; 5];
            }
            EventKind::TicketIssued {
                ticket,
                number,
                series,
                seq_no,
                service,
                lang,
                priority,
                token,
                channel,
                idempotency,
                order,
            } => {
                let t = Ticket {
                    id: *ticket,
                    site: ev.site.clone(),
                    number: number.clone(),
                    series: series.clone(),
                    seq_no: *seq_no,
                    service: service.clone(),
                    state: TicketState::Waiting,
                    priority: *priority,
                    lang: lang.clone(),
                    token: token.clone(),
                    channel: *channel,
                    issued_at: at,
                    order: *order,
                    original_order: *order,
                    queued_at: at,
                    counter: None,
                    target_counter: None,
                    called_at: None,
                    served_at: None,
                    ended_at: None,
                    recalls: 0,
                    transferred_from: None,
                    passed_on_from: None,
                    visited: Vec::new(),
                    end_reason: None,
                    feedback: None,
                };
                self.state.next_ticket_id = self.state.next_ticket_id.max(ticket + 1);
                st.next_order = st.next_order.max(order + 1);
                st.series_next.insert(series.clone(), seq_no + 1);
                if let Some(k) = idempotency {
                    st.idempotency.insert(k.clone(), *ticket);
                }
                self.state
                    .tokens
                    .insert(token.clone(), (ev.site.clone(), *ticket));
                index_ticket(
                    &mut st.waiting,
                    &mut st.active_numbers,
                    &mut st.targeted,
                    &t,
                );
                st.tickets.insert(*ticket, t);
            }
            EventKind::TicketCalled { ticket, counter }
            | EventKind::TicketReturned {
                ticket,
                counter: Some(counter),
                ..
            } => {
                let Some(t) = take_out(st, *ticket) else {
                    return;
                };
                t.state = TicketState::Called;
                t.counter = Some(counter.clone());
                t.target_counter = None;
                t.called_at = Some(at);
                t.served_at = None;
                t.ended_at = None;
                let id = t.id;
                put_back(st, id);
                let c = st.counters.entry(counter.clone()).or_default();
                c.current = Some(id);
            }
            EventKind::TicketRecalled { ticket, .. } => {
                if let Some(t) = st.tickets.get_mut(ticket) {
                    t.recalls += 1;
                }
            }
            EventKind::TicketServed { ticket, .. } => {
                if let Some(t) = st.tickets.get_mut(ticket) {
                    t.state = TicketState::Serving;
                    t.served_at = Some(at);
                }
            }
            EventKind::TicketFinished {
                ticket,
                counter,
                next_service,
                order,
            } => {
                let Some(t) = take_out(st, *ticket) else {
                    return;
                };
                let started = t.served_at.or(t.called_at).unwrap_or(at);
                let secs = (at - started).num_milliseconds() as f64 / 1000.0;
                let busy = t
                    .called_at
                    .map(|c| (at - c).num_milliseconds() as f64 / 1000.0);
                let service = t.service.clone();
                match next_service {
                    Some(ns) => {
                        t.visited.push(t.service.clone());
                        t.passed_on_from = Some(t.service.clone());
                        t.transferred_from = None;
                        t.service = ns.clone();
                        t.state = TicketState::Waiting;
                        t.order = order.unwrap_or(t.original_order);
                        t.queued_at = at;
                        t.counter = None;
                        t.called_at = None;
                        t.served_at = None;
                    }
                    None => {
                        t.state = TicketState::Finished;
                        t.ended_at = Some(at);
                        t.end_reason = Some("finished".into());
                    }
                }
                put_back(st, *ticket);
                if let Some(s) = st.services.get_mut(&service) {
                    // Ignore absurd durations (a ticket left open over lunch) in the estimate.
                    if secs > 5.0 && secs < 4.0 * 3600.0 {
                        s.avg_service_secs =
                            EWMA_ALPHA * secs + (1.0 - EWMA_ALPHA) * s.avg_service_secs;
                    }
                    if let Some(b) = busy.filter(|b| *b > 5.0 && *b < 4.0 * 3600.0) {
                        // A plain mean of the first ones, then a slow moving average.
                        s.busy_samples += 1;
                        let a = (1.0 / s.busy_samples as f64).max(BUSY_ALPHA);
                        s.avg_busy_secs = a * b + (1.0 - a) * s.avg_busy_secs;
                    }
                    s.served_today += 1;
                }
                release_counter(st, counter, *ticket);
            }
            EventKind::TicketNoShow { ticket, counter } => {
                if let Some(t) = take_out(st, *ticket) {
                    t.state = TicketState::NoShow;
                    t.ended_at = Some(at);
                    t.end_reason = Some("no_show".into());
                    put_back(st, *ticket);
                }
                release_counter(st, counter, *ticket);
            }
            EventKind::TicketReturned {
                ticket,
                counter: None,
                order,
            } => {
                let Some(t) = take_out(st, *ticket) else {
                    return;
                };
                let from_counter = t.counter.take();
                t.state = TicketState::Waiting;
                t.order = order.unwrap_or(t.original_order);
                t.queued_at = at;
                t.ended_at = None;
                t.end_reason = None;
                put_back(st, *ticket);
                if let Some(c) = from_counter {
                    release_counter(st, &c, *ticket);
                }
            }
            EventKind::TicketTransferred {
                ticket,
                from_counter,
                from_service,
                service,
                target_counter,
                order,
            } => {
                if let Some(t) = take_out(st, *ticket) {
                    t.transferred_from = Some(match from_counter {
                        Some(c) => format!("counter:{c}"),
                        None => format!("service:{from_service}"),
                    });
                    if service != from_service {
                        t.visited.push(from_service.clone());
                    }
                    t.service = service.clone();
                    t.target_counter = target_counter.clone();
                    t.state = TicketState::Waiting;
                    t.order = *order;
                    t.queued_at = at;
                    t.counter = None;
                    t.called_at = None;
                    t.served_at = None;
                    put_back(st, *ticket);
                }
                if let Some(c) = from_counter {
                    release_counter(st, c, *ticket);
                }
            }
            EventKind::TicketParked { ticket, counter } => {
                if let Some(t) = take_out(st, *ticket) {
                    t.state = TicketState::Parked;
                    put_back(st, *ticket);
                }
                release_counter(st, counter, *ticket);
            }
            EventKind::TicketCancelled { ticket, reason } => {
                if let Some(t) = take_out(st, *ticket) {
                    let counter = t.counter.clone();
                    t.state = TicketState::Cancelled;
                    t.ended_at = Some(at);
                    t.end_reason = Some(reason.clone());
                    put_back(st, *ticket);
                    if let Some(c) = counter {
                        release_counter(st, &c, *ticket);
                    }
                }
            }
            EventKind::CounterOpened { counter, user } => {
                let c = st.counters.entry(counter.clone()).or_default();
                c.open = true;
                c.user = user.clone();
                c.opened_at = Some(at);
            }
            EventKind::CounterClosed { counter } => {
                let c = st.counters.entry(counter.clone()).or_default();
                c.open = false;
                c.user = None;
                c.current = None;
                c.opened_at = None;
            }
            EventKind::ServiceAccepting { service, accepting } => {
                if let Some(s) = st.services.get_mut(service) {
                    s.accepting = *accepting;
                }
            }
            EventKind::AlertRaised {
                alert,
                alert_kind,
                device,
                service,
                message,
            } => {
                st.alerts.insert(
                    *alert,
                    Alert {
                        id: *alert,
                        kind: alert_kind.clone(),
                        device: device.clone(),
                        service: service.clone(),
                        message: message.clone(),
                        at,
                    },
                );
            }
            EventKind::AlertCleared { alert } => {
                st.alerts.remove(alert);
            }
            EventKind::DisplayStatus { device, status } => {
                st.displays.insert(
                    device.clone(),
                    DeviceStatus {
                        status: status.clone(),
                        detail: None,
                        at,
                    },
                );
            }
            EventKind::FeedbackGiven { ticket, rating, .. } => {
                if let Some(t) = st.tickets.get_mut(ticket) {
                    t.feedback = Some(*rating);
                }
                if let Some(n) = st.feedback.get_mut((*rating as usize).wrapping_sub(1)) {
                    *n += 1;
                }
            }
            EventKind::PrinterStatus {
                device,
                status,
                detail,
            } => {
                st.printers.insert(
                    device.clone(),
                    DeviceStatus {
                        status: status.clone(),
                        detail: detail.clone(),
                        at,
                    },
                );
            }
        }
    }
}

/// A waiting ticket's place in call order: (priority rank, order, id), as the queues keep it.
pub(crate) type CallKey = (u8, i64, TicketId);

/// Where a ticket stands in one counter's call order: (tier, priority rank, order, id); a ticket sent to
/// the counter is tier 0. Lower is called first.
type CallRank = (u32, u8, i64, TicketId);

fn call_rank(tier: u32, k: CallKey) -> CallRank {
    (tier, k.0, k.1, k.2)
}

/// The call order, in one place (`call-next` and the wait estimates both use it): what `counter` calls
/// next, given the first ticket sent to this very counter (`sent`) and, for each service of its profile,
/// the first ticket of that service's queue that any counter may take (`head`). Tickets sent to the
/// counter count as tier 0; then the lowest tier, assist before normal, then queue order. Returns the
/// ticket and the service whose queue it heads (None for the ticket sent to the counter).
pub(crate) fn call_order<'c>(
    counter: &'c Counter,
    sent: Option<CallKey>,
    mut head: impl FnMut(&'c str) -> Option<CallKey>,
) -> Option<(CallKey, Option<&'c str>)> {
    let mut best: Option<(CallRank, Option<&'c str>)> = sent.map(|k| (call_rank(0, k), None));
    for cs in &counter.services {
        if let Some(k) = head(cs.service.as_str()) {
            let rank = call_rank(cs.tier, k);
            if best.is_none_or(|b| rank < b.0) {
                best = Some((rank, Some(cs.service.as_str())));
            }
        }
    }
    best.map(|((_, r, o, id), svc)| ((r, o, id), svc))
}

/// Removes a ticket from the derived indexes and hands it out for change; `put_back` re-indexes it.
fn take_out(st: &mut SiteState, id: TicketId) -> Option<&mut Ticket> {
    let t = st.tickets.get_mut(&id)?;
    if let Some(q) = st.waiting.get_mut(&t.service) {
        q.remove(&(t.priority.rank(), t.order, t.id));
    }
    if let Some(q) = t
        .target_counter
        .as_ref()
        .and_then(|c| st.targeted.get_mut(c))
    {
        q.remove(&(t.priority.rank(), t.order, t.id));
    }
    if !t.state.is_final()
        && let Some(n) = st.active_numbers.get_mut(&t.series)
    {
        n.remove(&t.seq_no);
    }
    Some(t)
}

fn put_back(st: &mut SiteState, id: TicketId) {
    let t = &st.tickets[&id];
    // "Back of the queue" takes the next order key: later tickets come after it.
    st.next_order = st.next_order.max(t.order + 1);
    index_ticket(&mut st.waiting, &mut st.active_numbers, &mut st.targeted, t);
}

fn index_ticket(
    waiting: &mut BTreeMap<ServiceId, std::collections::BTreeSet<(u8, i64, TicketId)>>,
    active: &mut BTreeMap<String, std::collections::BTreeSet<u32>>,
    targeted: &mut BTreeMap<CounterId, std::collections::BTreeSet<(u8, i64, TicketId)>>,
    t: &Ticket,
) {
    if t.state == TicketState::Waiting {
        waiting
            .entry(t.service.clone())
            .or_default()
            .insert((t.priority.rank(), t.order, t.id));
        if let Some(c) = &t.target_counter {
            targeted
                .entry(c.clone())
                .or_default()
                .insert((t.priority.rank(), t.order, t.id));
        }
    }
    if !t.state.is_final() {
        active.entry(t.series.clone()).or_default().insert(t.seq_no);
    }
}

fn release_counter(st: &mut SiteState, counter: &str, ticket: TicketId) {
    if let Some(c) = st.counters.get_mut(counter)
        && c.current == Some(ticket)
    {
        c.current = None;
    }
}

fn fresh_service(expected_minutes: f64) -> ServiceState {
    ServiceState {
        accepting: true,
        avg_service_secs: expected_minutes * 60.0,
        served_today: 0,
        avg_busy_secs: 0.0,
        busy_samples: 0,
    }
}

fn fresh_site(s: &Site, date: NaiveDate) -> SiteState {
    SiteState {
        date,
        last_at: None,
        alerts: BTreeMap::new(),
        printers: BTreeMap::new(),
        displays: BTreeMap::new(),
        series_next: BTreeMap::new(),
        next_order: 0,
        tickets: BTreeMap::new(),
        counters: s
            .counters
            .iter()
            .map(|c| (c.id.clone(), CounterState::default()))
            .collect(),
        services: s
            .services
            .iter()
            .map(|svc| (svc.id.clone(), fresh_service(svc.expected_service_minutes)))
            .collect(),
        idempotency: BTreeMap::new(),
        feedback: [0; 5],
        waiting: BTreeMap::new(),
        active_numbers: BTreeMap::new(),
        targeted: BTreeMap::new(),
    }
}

fn config_name(t: &crate::config::Text) -> &str {
    crate::config::text_in(t, "en", "fi")
}
