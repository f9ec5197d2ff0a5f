//! Projections of the state for the API and the WebSocket topics: what a customer, a member of staff or
//! the public may see. Public views never carry user names, tokens, priorities or sensitive service names.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::{Site, Text, text_in};
use crate::engine::Engine;
use crate::ids::{CounterId, ServiceId, SiteId, UnitId};
use crate::model::*;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CounterRef {
    pub id: CounterId,
    pub name: String,
    pub location: String,
}

/// The customer's view of their ticket (the server adds token, track_url and print status).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TicketView {
    pub id: TicketId,
    /// Where to wait: the area (zone) of the counters serving the ticket's service, in the view's language.
    pub wait_area: Option<String>,
    pub number: String,
    pub service: ServiceId,
    pub service_name: String,
    pub state: TicketState,
    /// While waiting: how many tickets the counters able to call it will call before it, over all their
    /// services (see eta.rs).
    pub position: Option<u32>,
    /// While waiting: minutes until it is called; None with `eta_reason` when there is no estimate.
    pub eta_minutes: Option<u32>,
    /// Why a waiting ticket has no estimate: "no_counter_open".
    pub eta_reason: Option<&'static str>,
    pub issued_at: DateTime<Utc>,
    pub lang: String,
    pub priority: Priority,
    pub counter: Option<CounterRef>,
    pub site: SiteId,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StaffTicket {
    pub id: TicketId,
    pub number: String,
    pub service: ServiceId,
    pub unit: String,
    pub state: TicketState,
    pub priority: Priority,
    pub lang: String,
    pub issued_at: DateTime<Utc>,
    pub waited_seconds: i64,
    pub counter: Option<CounterId>,
    pub target_counter: Option<CounterId>,
    pub transferred_from: Option<String>,
    pub passed_on_from: Option<ServiceId>,
    pub called_at: Option<DateTime<Utc>>,
    pub served_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub recalls: u32,
    pub channel: crate::model::Channel,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CounterView {
    pub id: CounterId,
    pub unit: UnitId,
    pub name: Text,
    pub location: Text,
    pub zone: Option<String>,
    pub services: Vec<ServiceId>,
    pub state: CounterStatus,
    pub current: Option<StaffTicket>,
    pub user: Option<String>,
    pub opened_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PublicCounter {
    pub id: CounterId,
    pub name: Text,
    pub location: Text,
    pub zone: Option<String>,
    pub state: CounterStatus,
    pub current: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Call {
    pub number: String,
    pub counter: CounterId,
    pub counter_name: Text,
    pub location: Text,
    pub zone: Option<String>,
    pub at: DateTime<Utc>,
    pub recall: bool,
    pub lang: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PublicQueue {
    pub id: ServiceId,
    pub name: Text,
    pub unit: Option<UnitId>,
    pub waiting: u32,
    /// Minutes a new ticket would wait; None with `eta_reason` when there is no estimate.
    pub eta_minutes: Option<u32>,
    /// Why there is no estimate: "no_counter_open".
    pub eta_reason: Option<&'static str>,
    pub accepting: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ServiceView {
    pub id: ServiceId,
    /// Where to wait for it (the zone of its counters), in the requested language.
    pub wait_area: Option<String>,
    /// The neutral name public screens use (differs from `name` only for a sensitive service shown to a
    /// kiosk or staff).
    pub public_name: String,
    /// Empty for a sensitive services' neutral group (its unit is not shown).
    pub unit: String,
    pub unit_name: String,
    pub name: String,
    pub icon: Option<String>,
    pub open: bool,
    pub accepting: bool,
    pub closed_reason: Option<&'static str>,
    pub opens_at: Option<DateTime<Utc>>,
    pub waiting: u32,
    /// Minutes a new ticket would wait; None with `eta_reason` when there is no estimate.
    pub eta_minutes: Option<u32>,
    /// Why there is no estimate: "no_counter_open".
    pub eta_reason: Option<&'static str>,
    pub remote_join: bool,
    pub sensitive: bool,
}

/// The area where a service's customers wait: the zone of the first counter serving it.
pub fn wait_area(site: &Site, service: &str, lang: &str) -> Option<String> {
    let zone = site
        .counters
        .iter()
        .find(|c| c.services.iter().any(|s| s.service == service))
        .and_then(|c| c.zone.as_deref())
        .and_then(|z| site.zones.iter().find(|x| x.id == z))?;
    Some(text_in(&zone.name, lang, site.default_language()).to_string())
}

/// The name a customer sees for a service: the neutral one for a sensitive service.
pub fn customer_service_name<'a>(site: &'a Site, service: &str, lang: &str) -> &'a str {
    match site.service(service) {
        Some(s) if s.sensitive => text_in(
            s.public_name.as_ref().unwrap_or(&s.name),
            lang,
            site.default_language(),
        ),
        Some(s) => text_in(&s.name, lang, site.default_language()),
        None => "",
    }
}

impl Engine {
    pub fn ticket_view(&self, t: &Ticket, lang: Option<&str>) -> TicketView {
        let site = self
            .config()
            .site(&t.site)
            .expect("ticket of a configured site");
        let lang = lang.unwrap_or(&t.lang);
        let forecast = self.forecast_ticket(t, self.site_now(&t.site));
        let counter = t
            .counter
            .as_ref()
            .filter(|_| matches!(t.state, TicketState::Called | TicketState::Serving))
            .and_then(|c| {
                site.counter(c).map(|c| CounterRef {
                    id: c.id.clone(),
                    name: text_in(&c.name, lang, site.default_language()).into(),
                    location: text_in(&c.location, lang, site.default_language()).into(),
                })
            });
        TicketView {
            id: t.id,
            wait_area: wait_area(site, &t.service, lang),
            number: t.number.clone(),
            service: t.service.clone(),
            service_name: customer_service_name(site, &t.service, lang).into(),
            state: t.state,
            position: forecast.map(|f| f.ahead),
            eta_minutes: forecast.and_then(|f| f.eta_minutes()),
            eta_reason: forecast.and_then(|f| f.eta_reason()),
            issued_at: t.issued_at,
            lang: t.lang.clone(),
            priority: t.priority,
            counter,
            site: t.site.clone(),
        }
    }

    pub fn staff_ticket(&self, t: &Ticket, now: DateTime<Utc>) -> StaffTicket {
        let unit = self
            .config()
            .site(&t.site)
            .and_then(|s| s.service(&t.service))
            .map(|s| s.unit.to_string())
            .unwrap_or_default();
        let waited_until = t
            .called_at
            .filter(|_| t.state != TicketState::Waiting)
            .unwrap_or(now);
        StaffTicket {
            id: t.id,
            number: t.number.clone(),
            service: t.service.clone(),
            unit,
            state: t.state,
            priority: t.priority,
            lang: t.lang.clone(),
            issued_at: t.issued_at,
            waited_seconds: (waited_until - t.queued_at).num_seconds().max(0),
            counter: t.counter.clone(),
            target_counter: t.target_counter.clone(),
            transferred_from: t.transferred_from.clone(),
            passed_on_from: t.passed_on_from.clone(),
            called_at: t.called_at,
            served_at: t.served_at,
            ended_at: t.ended_at,
            recalls: t.recalls,
            channel: t.channel,
        }
    }

    pub fn counter_status(&self, site: &str, counter: &str) -> CounterStatus {
        let Some(c) = self.site_state(site).and_then(|s| s.counters.get(counter)) else {
            return CounterStatus::Closed;
        };
        if !c.open {
            return CounterStatus::Closed;
        }
        match c
            .current
            .and_then(|id| self.ticket(site, id))
            .map(|t| t.state)
        {
            Some(TicketState::Called) => CounterStatus::Calling,
            Some(TicketState::Serving) => CounterStatus::Serving,
            _ => CounterStatus::Open,
        }
    }

    pub fn counter_view(
        &self,
        site: &Site,
        counter: &str,
        now: DateTime<Utc>,
    ) -> Option<CounterView> {
        let c = site.counter(counter)?;
        let cs = self
            .site_state(&site.id)?
            .counters
            .get(counter)
            .cloned()
            .unwrap_or_default();
        Some(CounterView {
            id: c.id.clone(),
            unit: c.unit.clone(),
            name: c.name.clone(),
            location: c.location.clone(),
            zone: c.zone.clone(),
            services: c.services.iter().map(|s| s.service.clone()).collect(),
            state: self.counter_status(&site.id, counter),
            current: cs
                .current
                .and_then(|id| self.ticket(&site.id, id))
                .map(|t| self.staff_ticket(t, now)),
            user: cs.user,
            opened_at: cs.opened_at,
        })
    }

    pub fn public_counter(&self, site: &Site, counter: &str) -> Option<PublicCounter> {
        let c = site.counter(counter)?;
        let cs = self.site_state(&site.id)?.counters.get(counter)?;
        let current = cs
            .current
            .and_then(|id| self.ticket(&site.id, id))
            .filter(|t| t.state == TicketState::Called || t.state == TicketState::Serving)
            .map(|t| t.number.clone());
        Some(PublicCounter {
            id: c.id.clone(),
            name: c.name.clone(),
            location: c.location.clone(),
            zone: c.zone.clone(),
            state: self.counter_status(&site.id, counter),
            current,
        })
    }

    /// A call as the public sees it.
    pub fn call_view(
        &self,
        site: &Site,
        ticket: TicketId,
        counter: &str,
        at: DateTime<Utc>,
        recall: bool,
    ) -> Option<Call> {
        let t = self.ticket(&site.id, ticket)?;
        let c = site.counter(counter)?;
        Some(Call {
            number: t.number.clone(),
            counter: c.id.clone(),
            counter_name: c.name.clone(),
            location: c.location.clone(),
            zone: c.zone.clone(),
            at,
            recall,
            lang: t.lang.clone(),
        })
    }

    /// Public queue figures. Sensitive services are merged under `group-<series>` with their neutral name.
    pub fn public_queues(&self, site: &Site) -> Vec<PublicQueue> {
        let mut out: Vec<PublicQueue> = Vec::new();
        for s in &site.services {
            let waiting = self.waiting(&site.id, &s.id);
            let forecast = self.estimate_new(&site.id, &s.id, self.site_now(&site.id));
            let eta = forecast.and_then(|f| f.eta_minutes());
            let reason = forecast.and_then(|f| f.eta_reason());
            let accepting = self
                .site_state(&site.id)
                .and_then(|st| st.services.get(&s.id))
                .is_some_and(|x| x.accepting);
            if s.sensitive {
                let id = s.public_id();
                if let Some(q) = out.iter_mut().find(|q| q.id == id) {
                    q.waiting += waiting;
                    q.eta_minutes = q.eta_minutes.max(eta);
                    // The group has an estimate when any of its services has one.
                    q.eta_reason = if q.eta_minutes.is_some() {
                        None
                    } else {
                        reason
                    };
                    q.accepting |= accepting;
                    continue;
                }
                out.push(PublicQueue {
                    id,
                    name: s.public_name.clone().unwrap_or_default(),
                    unit: None,
                    waiting,
                    eta_minutes: eta,
                    eta_reason: reason,
                    accepting,
                });
            } else {
                out.push(PublicQueue {
                    id: s.id.clone(),
                    name: s.name.clone(),
                    unit: Some(s.unit.clone()),
                    waiting,
                    eta_minutes: eta,
                    eta_reason: reason,
                    accepting,
                });
            }
        }
        out
    }

    /// Services as a customer chooses them. `reveal`: the real names of sensitive services (for an enrolled
    /// kiosk, whose customer must be able to tell them apart, and for staff); otherwise their neutral names.
    pub fn service_views(
        &self,
        site: &Site,
        lang: &str,
        now: DateTime<Utc>,
        reveal: bool,
    ) -> Vec<ServiceView> {
        let dl = site.default_language();
        site.services
            .iter()
            .map(|s| {
                let opening = site.opening(Some(s), now);
                let waiting = self.waiting(&site.id, &s.id);
                let forecast = self.estimate_new(&site.id, &s.id, self.site_now(&site.id));
                let closed_reason = self.closed_reason(site, &s.id, now);
                ServiceView {
                    id: s.id.clone(),
                    unit: s.unit.to_string(),
                    unit_name: site
                        .unit(&s.unit)
                        .map(|u| text_in(&u.name, lang, dl).to_string())
                        .unwrap_or_default(),
                    name: if reveal {
                        text_in(&s.name, lang, dl).into()
                    } else {
                        customer_service_name(site, &s.id, lang).into()
                    },
                    public_name: customer_service_name(site, &s.id, lang).into(),
                    wait_area: wait_area(site, &s.id, lang),
                    icon: s.icon.clone(),
                    open: opening.open,
                    accepting: closed_reason.is_none(),
                    closed_reason,
                    opens_at: opening.opens_at,
                    waiting,
                    eta_minutes: forecast.and_then(|f| f.eta_minutes()),
                    eta_reason: forecast.and_then(|f| f.eta_reason()),
                    remote_join: s.remote_join,
                    sensitive: s.sensitive,
                }
            })
            .collect()
    }

    /// Calls of today, newest first, for the public recent list.
    pub fn recent_calls(&self, site: &Site, limit: usize) -> Vec<Call> {
        let Some(st) = self.site_state(&site.id) else {
            return Vec::new();
        };
        let mut called: Vec<&Ticket> = st
            .tickets
            .values()
            .filter(|t| t.called_at.is_some() && t.counter.is_some())
            .collect();
        called.sort_by_key(|t| std::cmp::Reverse(t.called_at));
        called
            .into_iter()
            .take(limit)
            .filter_map(|t| {
                self.call_view(
                    site,
                    t.id,
                    t.counter.as_deref()?,
                    t.called_at?,
                    t.recalls > 0,
                )
            })
            .collect()
    }
}
