//! The write path and the read model.
//!
//! One writer thread owns the SQLite write connection and its own copy of the engine. It drains queued
//! commands into one batch, lets the engine handle each, commits all resulting events in one transaction
//! (group commit), and only then applies them to the shared read model, publishes them to the hub, hands
//! them to the post-commit stage (after_commit.rs) and answers the callers. So nothing is heard of before
//! it is durable, and an error changes nothing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::ws::Utf8Bytes;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use vuoro_engine::config::Site;
use vuoro_engine::{Actor, Command, Engine, Event, EventKind, Outcome, TicketState};

use vuoro_protocol::Topic;

use crate::deployment::Deployment;
use crate::error::ApiError;
use crate::hub::Hub;
use crate::json_object::JsonObject;

/// Events between snapshots, at least: start-up replays at most this many, or twice the day's tickets when
/// that is more. A snapshot costs in proportion to the day's tickets, so a day far busier than any hall's
/// (a benchmark's hundreds of thousands of tickets) does not spend ever more of each commit on snapshots.
const SNAPSHOT_EVERY: u64 = 20_000;
/// Tickets in one staff snapshot at most (`site:` and `counter:` topics): a snapshot must fit the
/// socket's write buffer (256 KiB, about 600 staff tickets) whatever the day brings.
pub const MAX_SNAPSHOT_TICKETS: usize = 400;
/// Commands in one group commit at most.
const MAX_BATCH: usize = 2048;

/// The committed state everyone reads, and the hub that tells about it. Held under one std mutex, only
/// for short non-async sections (never across an `.await`), so that taking a snapshot and subscribing
/// happen atomically with respect to publishing.
pub struct Core {
    pub engine: Engine,
    pub hub: Hub,
}

pub struct Shared {
    pub core: Mutex<Core>,
    /// The config in force and its version: the writer changes it (`Writer::reconfigure`), every request
    /// reads it (`hall`, `config`). A std RwLock held only to clone an `Arc`.
    pub config: std::sync::RwLock<(u64, crate::config::Config)>,
    pub last_seq: AtomicU64,
    pub events_total: AtomicU64,
    /// Transactions that committed events (group commits): `events_total / commits_total` is the
    /// average batch.
    pub commits_total: AtomicU64,
    /// Transactions that failed to commit (each batch refused with 503).
    pub commit_failures_total: AtomicU64,
    /// Consumers of committed events that run off the writer and off `core`'s lock (audio).
    pub after_commit: Arc<crate::after_commit::Stage>,
}

impl Shared {
    /// The hall in force.
    pub fn hall(&self) -> Arc<vuoro_engine::Hall> {
        self.config.read().expect("lock").1.hall.clone()
    }

    /// The config in force and its version.
    pub fn config(&self) -> (u64, crate::config::Config) {
        self.config.read().expect("lock").clone()
    }
}

/// A change of the config, for the writer: applied between two commits, or refused with its reasons.
pub struct Reconfigure {
    pub config: crate::config::Config,
    /// Stored as the new version once the engine may take it.
    pub version: vuoro_store::ConfigVersion,
    pub done: oneshot::Sender<Result<u64, ApiError>>,
}

enum Job {
    Cmd(Command),
    /// Stop after the commands queued before this one.
    Stop,
    Reconfigure(Box<Reconfigure>),
}

struct Request {
    job: Job,
    actor: Actor,
    /// Whether the caller wants the ticket as it is right after its command (`Writer::submit_ticket`).
    view: bool,
    reply: oneshot::Sender<Result<Answer, ApiError>>,
}

/// A ticket as it stood right after the command that made or touched it, with its token.
pub struct TicketNow {
    pub view: vuoro_engine::view::TicketView,
    pub token: vuoro_engine::TicketToken,
}

type Answer = (Outcome, Option<TicketNow>);

#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Request>,
    /// The writer thread, taken by the one `stop` call.
    thread: Arc<Mutex<Option<std::thread::JoinHandle<()>>>>,
}

impl Writer {
    /// Submits a command; answers once its events are committed and published.
    pub async fn submit(&self, cmd: Command, actor: Actor) -> Result<Outcome, ApiError> {
        Ok(self.send(cmd, actor, false).await?.0)
    }

    /// Like `submit`, and when the outcome is a ticket, that ticket's view as the writer saw it right after
    /// the command: the caller answers without taking the read model's lock (the ticket answer is the
    /// hottest path).
    pub async fn submit_ticket(
        &self,
        cmd: Command,
        actor: Actor,
    ) -> Result<(Outcome, Option<TicketNow>), ApiError> {
        self.send(cmd, actor, true).await
    }

    /// Stops the writer once every command queued before has been answered, and waits until it has written
    /// its last snapshot. Commands submitted later are refused (`unavailable`).
    pub async fn stop(&self) {
        let thread = self.thread.lock().expect("lock").take();
        let Some(thread) = thread else { return };
        let (reply, done) = oneshot::channel();
        let stop = Request {
            job: Job::Stop,
            actor: Actor::system(),
            view: false,
            reply,
        };
        // A closed channel means the thread is already on its way out.
        if self.tx.send(stop).await.is_ok() {
            let _ = done.await;
        }
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    }

    /// Hands a new config to the writer; answers its version once it is in force, or why it was refused
    /// (nothing changed then).
    pub async fn reconfigure(
        &self,
        config: crate::config::Config,
        version: vuoro_store::ConfigVersion,
    ) -> Result<u64, ApiError> {
        let (done, rx) = oneshot::channel();
        let (reply, _) = oneshot::channel();
        self.tx
            .send(Request {
                job: Job::Reconfigure(Box::new(Reconfigure {
                    config,
                    version,
                    done,
                })),
                actor: Actor::system(),
                view: false,
                reply,
            })
            .await
            .map_err(|_| ApiError::unavailable("the daemon is shutting down"))?;
        rx.await
            .map_err(|_| ApiError::unavailable("the daemon is shutting down"))?
    }

    async fn send(&self, cmd: Command, actor: Actor, view: bool) -> Result<Answer, ApiError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Request {
                job: Job::Cmd(cmd),
                actor,
                view,
                reply,
            })
            .await
            .map_err(|_| ApiError::unavailable("the daemon is shutting down"))?;
        rx.await
            .map_err(|_| ApiError::unavailable("the store failed; nothing was changed"))?
    }
}

/// Starts the writer thread. It ends on `Writer::stop`, or when every `Writer` handle is dropped.
pub fn start_writer(
    store: Arc<dyn vuoro_store::Database>,
    mut engine: Engine,
    shared: Arc<Shared>,
) -> Writer {
    let (tx, mut rx) = mpsc::channel::<Request>(8192);
    let thread = std::thread::Builder::new()
        .name("vuoro-writer".into())
        .spawn(move || {
            let mut since_snapshot = 0u64;
            while let Some(first) = rx.blocking_recv() {
                // A change of the config is taken alone, after the commit of the commands before it.
                let mut reconfigure = None;
                let mut batch = Vec::new();
                match first.job {
                    Job::Reconfigure(r) => reconfigure = Some(r),
                    _ => batch.push(first),
                }
                while reconfigure.is_none() && batch.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(Request { job: Job::Reconfigure(r), .. }) => reconfigure = Some(r),
                        Ok(r) => batch.push(r),
                        Err(_) => break,
                    }
                }
                let before = engine.last_seq();
                let now = Utc::now();
                let mut replies = Vec::with_capacity(batch.len());
                for r in batch.drain(..) {
                    let cmd = match r.job {
                        Job::Cmd(cmd) => cmd,
                        Job::Stop | Job::Reconfigure(_) => {
                            // Stop: nothing queued after this is taken; what is queued before is handled.
                            rx.close();
                            replies.push((r.reply, Ok((Outcome::Done, None))));
                            continue;
                        }
                    };
                    let res = engine.handle(cmd, now, &r.actor).map_err(ApiError::from).map(|outcome| {
                        let ticket = match &outcome {
                            Outcome::Ticket { site, id, .. } if r.view => engine.ticket(site, *id).map(|t| TicketNow {
                                view: engine.ticket_view(t, None),
                                token: t.token.clone(),
                            }),
                            _ => None,
                        };
                        (outcome, ticket)
                    });
                    replies.push((r.reply, res));
                }
                let events = engine.take_events();
                if !events.is_empty() {
                    since_snapshot += events.len() as u64;
                    let every = SNAPSHOT_EVERY.max(2 * engine.state().tokens.len() as u64);
                    let snapshot = since_snapshot >= every;
                    let seq = engine.last_seq();
                    if let Err(e) = store.append(before, &events, snapshot.then(|| (seq, engine.state()))) {
                        tracing::error!(error = %e, "commit failed; the batch is refused and nothing changes");
                        shared.commit_failures_total.fetch_add(1, Ordering::Relaxed);
                        engine = shared.core.lock().expect("lock").engine.clone();
                        for (reply, _) in replies {
                            let _ = reply.send(Err(ApiError::unavailable("the store failed; nothing was changed")));
                        }
                        continue;
                    }
                    if snapshot {
                        since_snapshot = 0;
                    }
                    let mut core = shared.core.lock().expect("lock");
                    for ev in &events {
                        core.engine.apply(ev);
                    }
                    let calls = publish(&mut core, &events);
                    shared.last_seq.store(seq, Ordering::Release);
                    shared.events_total.fetch_add(events.len() as u64, Ordering::Relaxed);
                    shared.commits_total.fetch_add(1, Ordering::Relaxed);
                    drop(core);
                    shared.after_commit.committed(crate::after_commit::Commit { events, calls });
                }
                for (reply, res) in replies {
                    let _ = reply.send(res);
                }
                if let Some(r) = reconfigure {
                    let answer = reconfigure_now(&*store, &mut engine, &shared, r.config, &r.version);
                    let _ = r.done.send(answer);
                }
            }
            // A last snapshot on a clean shutdown keeps the next start-up short.
            if since_snapshot > 0 {
                let seq = engine.last_seq();
                if let Err(e) = store.append(seq, &[], Some((seq, engine.state()))) {
                    tracing::warn!(error = %e, "final snapshot failed");
                }
            }
            tracing::info!("writer stopped");
        })
        .expect("spawn writer thread");
    Writer {
        tx,
        thread: Arc::new(Mutex::new(Some(thread))),
    }
}

/// Takes a new config in the writer, between two commits: refused (nothing changes) when the engine
/// says someone would be dropped, or the version cannot be stored; else stored, taken by the writer's
/// engine and the read model together, and told to every connection.
fn reconfigure_now(
    store: &dyn vuoro_store::Database,
    engine: &mut Engine,
    shared: &Shared,
    config: crate::config::Config,
    version: &vuoro_store::ConfigVersion,
) -> Result<u64, ApiError> {
    let blockers = engine.reconfigure_blockers(&config.hall);
    if !blockers.is_empty() {
        return Err(ApiError::new(
            crate::error::ErrorCode::Conflict(vuoro_engine::Conflict::Conflict),
            format!("The config was not changed: {}.", blockers.join("; ")),
        ));
    }
    let number = store
        .add_config_version(version)
        .map_err(|e| ApiError::unavailable(format!("cannot store the config: {e}")))?;
    let now = Utc::now();
    engine.reconfigure(config.hall.clone(), now);
    let mut core = shared.core.lock().expect("lock");
    core.engine.reconfigure(config.hall.clone(), now);
    *shared.config.write().expect("lock") = (number, config);
    core.hub.broadcast(Utf8Bytes::from(
        vuoro_protocol::ServerMsg::ConfigChanged { version: number }.to_json(),
    ));
    Ok(number)
}

fn msg(topic: &str, seq: u64, event: Value) -> Utf8Bytes {
    msg_raw(topic, seq, &event.to_string())
}

/// An event message around an event already serialized (one event goes to several topics): the text
/// `TopicMsg::Event` serializes to, written without re-parsing the event (tested below).
fn msg_raw(topic: &str, seq: u64, event_json: &str) -> Utf8Bytes {
    let topic = serde_json::to_string(topic).expect("a string serializes");
    let mut s = String::with_capacity(event_json.len() + topic.len() + 48);
    s.push_str(r#"{"type":"event","topic":"#);
    s.push_str(&topic);
    s.push_str(r#","seq":"#);
    s.push_str(&seq.to_string());
    s.push_str(r#","event":"#);
    s.push_str(event_json);
    s.push('}');
    Utf8Bytes::from(s)
}

/// What a staff topic says about an event, as JSON text: the event's own fields plus the ticket and counter
/// as they are now. Written field by field, with no `serde_json::Value` tree in between (a tree costs a
/// third of this function's time: docs/benchmarks.md).
pub fn staff_event(engine: &Engine, site: &Site, ev: &Event, now: DateTime<Utc>) -> String {
    let ticket = ev
        .kind
        .ticket()
        .and_then(|id| engine.ticket(&site.id, id))
        .map(|t| engine.staff_ticket(t, now));
    let counter_state = ev
        .kind
        .counter()
        .and_then(|c| engine.counter_view(site, c, now));
    let moved_from = match &ev.kind {
        EventKind::TicketTransferred {
            from_counter: Some(c),
            ..
        } => Some(c),
        _ => None,
    };
    let by = ev
        .actor
        .id
        .as_ref()
        .filter(|_| ev.actor.kind == vuoro_engine::ActorKind::User);
    // The event's own fields, less those the fields below replace (a ticket event's `ticket` is its id;
    // here it becomes the ticket itself, when it is still there, and the id is always `ticket_id`), and
    // less the customer's secrets (a ticket's token and its kiosk's idempotency key), which no staff
    // screen needs.
    // A feedback comment is read in the reports by the unit's supervisors, never on a topic.
    let replaced = |k: &str| match k {
        "at" | "seq" | "ticket" | "token" | "idempotency" | "comment" => true,
        "ticket_id" => ev.kind.ticket().is_some(),
        "counter_state" => counter_state.is_some(),
        "counter" => moved_from.is_some(),
        "by" => by.is_some(),
        _ => false,
    };
    let mut out = JsonObject::default();
    out.fields_of(&ev.kind, |k| !replaced(k))
        .expect("an event is a struct");
    out.field("at", &ev.at);
    out.field("seq", &ev.seq);
    if let Some(id) = ev.kind.ticket() {
        out.field("ticket_id", &id);
    }
    if let Some(t) = &ticket {
        out.field("ticket", t);
    }
    if let Some(c) = &counter_state {
        out.field("counter_state", c);
    }
    if let Some(c) = moved_from {
        out.field("counter", c);
    }
    if let Some(u) = by {
        out.field("by", u);
    }
    out.finish()
}

/// The unit a staff message belongs to (for scoping), None for site-wide messages.
fn event_unit(engine: &Engine, site: &Site, ev: &Event) -> Option<String> {
    if let Some(id) = ev.kind.ticket() {
        let svc = engine.ticket(&site.id, id).map(|t| t.service.clone())?;
        return site.service(&svc).map(|s| s.unit.to_string());
    }
    match &ev.kind {
        EventKind::CounterOpened { counter, .. } | EventKind::CounterClosed { counter } => {
            site.counter(counter).map(|c| c.unit.to_string())
        }
        EventKind::ServiceAccepting { service, .. } => {
            site.service(service).map(|s| s.unit.to_string())
        }
        EventKind::AlertRaised {
            service: Some(s), ..
        } => site.service(s).map(|s| s.unit.to_string()),
        _ => None,
    }
}

/// Publishes committed events to every topic that should hear of them. Returns the public call of each
/// event that calls a ticket, by seq (for the post-commit stage).
pub fn publish(core: &mut Core, events: &[Event]) -> Vec<(u64, vuoro_engine::view::Call)> {
    let now = Utc::now();
    let Core { engine, hub } = core;
    let cfg = engine.config().clone();
    hub.hold();
    let mut touched_sites: Vec<(&str, u64)> = Vec::new();
    let mut touched_services: Vec<(vuoro_engine::SiteId, vuoro_engine::ServiceId)> = Vec::new();
    let mut touched_tickets: Vec<u64> = Vec::new();
    let mut watched_site: Option<&str> = None;
    let mut watched_counters: Vec<Option<String>> = Vec::new();
    let mut calls_made = Vec::new();
    for ev in events {
        let Some(site) = cfg.site(&ev.site) else {
            continue;
        };
        if watched_site != Some(site.id.as_str()) {
            // Counter topics with someone listening, once per site per batch (not a lookup per counter
            // per event).
            watched_site = Some(site.id.as_str());
            watched_counters = site
                .counters
                .iter()
                .map(|c| {
                    let topic = Topic::Counter(c.id.to_string()).to_string();
                    hub.has_subscribers(&topic).then_some(topic)
                })
                .collect();
        }
        match touched_sites.iter_mut().find(|(s, _)| *s == site.id) {
            Some(t) => t.1 = ev.seq,
            None => touched_sites.push((&site.id, ev.seq)),
        }
        if let Some(id) = ev.kind.ticket() {
            touched_tickets.push(id);
            if let Some(t) = engine.ticket(&site.id, id) {
                touched_services.push((site.id.clone(), t.service.clone()));
            }
            if let EventKind::TicketTransferred { from_service, .. } = &ev.kind {
                touched_services.push((site.id.clone(), from_service.clone()));
            }
        }
        if let Some(c) = ev.kind.counter().and_then(|c| site.counter(c)) {
            for cs in &c.services {
                touched_services.push((site.id.clone(), cs.service.clone()));
            }
        }
        // Public calls.
        let calls = Topic::Calls(site.id.to_string()).to_string();
        let public = match &ev.kind {
            EventKind::TicketCalled { ticket, counter }
            | EventKind::TicketRecalled { ticket, counter } => {
                let recall = matches!(ev.kind, EventKind::TicketRecalled { .. });
                engine
                    .call_view(site, *ticket, counter, ev.at, recall)
                    .map(|call| {
                        let mut v = json!(call);
                        v["kind"] = json!(ev.kind.name());
                        calls_made.push((ev.seq, call));
                        v
                    })
            }
            EventKind::TicketReturned {
                counter: Some(counter),
                ticket,
                ..
            } => engine
                .call_view(site, *ticket, counter, ev.at, false)
                .map(|call| {
                    let mut v = json!(call);
                    v["kind"] = json!("ticket_called");
                    calls_made.push((ev.seq, call));
                    v
                }),
            kind => kind
                .counter()
                .and_then(|c| engine.public_counter(site, c))
                .map(|pc| {
                    let name = match kind {
                        EventKind::CounterOpened { .. } | EventKind::CounterClosed { .. } => {
                            kind.name()
                        }
                        EventKind::TicketFinished { .. } => "ticket_finished",
                        EventKind::TicketNoShow { .. } => "ticket_no_show",
                        _ => "counter_changed",
                    };
                    json!({"kind": name, "at": ev.at, "counter": pc.id, "counter_state": pc})
                }),
        };
        if let Some(v) = public {
            hub.publish(&calls, ev.seq, None, msg(&calls, ev.seq, v), true);
        }
        // The device itself hears its printer's status (a kiosk warns before it prints).
        if let EventKind::PrinterStatus { device, status, .. } = &ev.kind {
            let topic = Topic::Device(device.to_string()).to_string();
            if hub.has_subscribers(&topic) {
                let v = json!({"kind": "printer_status", "at": ev.at, "printer": {"status": status, "at": ev.at}});
                hub.publish(&topic, ev.seq, None, msg(&topic, ev.seq, v), false);
            }
        }
        // Staff: the site and the counters concerned.
        let unit = event_unit(engine, site, ev);
        let staff = staff_event(engine, site, ev, now);
        let site_topic = Topic::Site(site.id.to_string()).to_string();
        hub.publish(
            &site_topic,
            ev.seq,
            unit.as_deref(),
            msg_raw(&site_topic, ev.seq, &staff),
            true,
        );
        let ticket_service = ev
            .kind
            .ticket()
            .and_then(|id| engine.ticket(&site.id, id))
            .map(|t| (t.service.clone(), t.target_counter.clone()));
        for (c, topic) in site
            .counters
            .iter()
            .zip(&watched_counters)
            .filter_map(|(c, t)| Some((c, t.as_ref()?)))
        {
            let concerned = ev.kind.counter() == Some(c.id.as_str())
                || ticket_service.as_ref().is_some_and(|(s, tc)| {
                    c.services.iter().any(|cs| &cs.service == s)
                        || tc.as_deref() == Some(c.id.as_str())
                })
                || matches!(&ev.kind, EventKind::TicketTransferred { from_service, target_counter, .. }
                    if c.services.iter().any(|cs| &cs.service == from_service) || target_counter.as_deref() == Some(c.id.as_str()))
                || matches!(&ev.kind, EventKind::ServiceAccepting { service, .. } if c.services.iter().any(|cs| &cs.service == service));
            // Feedback is for the unit's overview (`site:`), not for the counters' screens.
            let concerned = concerned && !matches!(ev.kind, EventKind::FeedbackGiven { .. });
            if concerned {
                hub.publish(topic, ev.seq, None, msg_raw(topic, ev.seq, &staff), true);
            }
        }
    }
    // Queue figures: once per site per batch.
    for (site_id, seq) in touched_sites {
        let Some(site) = cfg.site(site_id) else {
            continue;
        };
        let topic = Topic::Queues(site.id.to_string()).to_string();
        // Only for someone listening: a resume on this topic always gets a fresh snapshot (ws.rs), so
        // nothing needs these in the ring, and a recount of every service per commit is the largest
        // fixed cost of a commit on a site with many services (docs/benchmarks.md).
        if hub.has_subscribers(&topic) {
            let v = json!({"kind": "queue_changed", "services": engine.public_queues(site)});
            hub.publish(&topic, seq, None, msg(&topic, seq, v), true);
        }
        // Customers following a ticket whose position, estimate or state may have changed.
        let prefix = "ticket:";
        let tokens: Vec<String> = hub
            .topics_with_prefix(prefix)
            .map(|t| t[prefix.len()..].to_string())
            .collect();
        for token in tokens {
            let Some(t) = engine.ticket_by_token(&token) else {
                continue;
            };
            if t.site != site.id {
                continue;
            }
            let affected = touched_tickets.contains(&t.id)
                || (t.state == TicketState::Waiting
                    && touched_services
                        .iter()
                        .any(|(s, svc)| s == &site.id && svc == &t.service));
            if affected {
                let topic = Topic::Ticket(token).to_string();
                let v = json!({"kind": "ticket_updated", "ticket": engine.ticket_view(t, None)});
                hub.publish(&topic, seq, None, msg(&topic, seq, v), false);
            }
        }
    }
    hub.release();
    calls_made
}

/// Snapshot data of a topic, or None when the topic does not exist. Ticket and device topics are the
/// connection's own business (ws.rs).
pub fn topic_snapshot(
    engine: &Engine,
    deployment: &Deployment,
    topic: &Topic,
    units: Option<&std::collections::HashSet<String>>,
) -> Option<Value> {
    let now = Utc::now();
    match topic {
        Topic::Calls(id) => {
            let site = engine.config().site(id)?;
            let counters: Vec<_> = site
                .counters
                .iter()
                .filter_map(|c| engine.public_counter(site, &c.id))
                .collect();
            Some(json!({"counters": counters, "recent": engine.recent_calls(site, 50)}))
        }
        Topic::Queues(id) => {
            let site = engine.config().site(id)?;
            Some(json!({"services": engine.public_queues(site)}))
        }
        // Announcements are only ever news: nothing to catch up on.
        Topic::Announcements(id) => engine.config().site(id).map(|_| json!({})),
        Topic::Site(id) => {
            let site = engine.config().site(id)?;
            Some(site_snapshot(engine, deployment, site, units, now))
        }
        Topic::Counter(id) => {
            let (site, c) = engine.counter_site(id)?;
            let st = engine.site_state(&site.id)?;
            let mut queue = engine.counter_queue(c);
            let serves = |t: &&vuoro_engine::Ticket| {
                c.services.iter().any(|cs| cs.service == t.service)
                    || t.counter.as_deref() == Some(c.id.as_str())
            };
            let parked: Vec<_> = st
                .tickets
                .values()
                .filter(|t| t.state == TicketState::Parked)
                .filter(serves)
                .map(|t| engine.staff_ticket(t, now))
                .collect();
            let tolerance = chrono::Duration::minutes(site.no_show_return_minutes as i64);
            let no_shows: Vec<_> = st
                .tickets
                .values()
                .filter(|t| {
                    t.state == TicketState::NoShow
                        && t.ended_at.is_some_and(|e| now - e <= tolerance)
                })
                .filter(serves)
                .map(|t| engine.staff_ticket(t, now))
                .collect();
            let omitted = queue.len().saturating_sub(MAX_SNAPSHOT_TICKETS);
            queue.truncate(MAX_SNAPSHOT_TICKETS);
            Some(json!({
                "counter": engine.counter_view(site, &c.id, now),
                "queue": queue.into_iter().map(|t| engine.staff_ticket(t, now)).collect::<Vec<_>>(),
                "queue_omitted": omitted,
                "parked": parked,
                "no_shows": no_shows,
            }))
        }
        Topic::Ticket(_) | Topic::Device(_) => None,
    }
}

pub fn site_snapshot(
    engine: &Engine,
    deployment: &Deployment,
    site: &Site,
    units: Option<&std::collections::HashSet<String>>,
    now: DateTime<Utc>,
) -> Value {
    let may = |unit: &str| units.is_none_or(|u| u.contains(unit));
    let st = engine.site_state(&site.id).expect("configured site");
    let services: Vec<Value> = site
        .services
        .iter()
        .filter(|s| may(&s.unit))
        .map(|s| {
            let waiting = engine.waiting(&site.id, &s.id);
            let longest = engine.longest_wait(&site.id, &s.id, now);
            json!({
                "id": s.id, "unit": s.unit, "name": s.name, "sensitive": s.sensitive,
                "waiting": waiting,
                "eta_minutes": engine.eta_minutes(&site.id, &s.id, waiting),
                "longest_wait_seconds": longest,
                "target_wait_minutes": s.target_wait_minutes,
                "over_target": longest > s.target_wait_minutes as i64 * 60,
                "accepting": st.services.get(&s.id).is_some_and(|x| x.accepting),
                "closed_reason": engine.closed_reason(site, &s.id, now),
                "served_today": st.services.get(&s.id).map_or(0, |x| x.served_today),
                "avg_service_seconds": st.services.get(&s.id).map_or(0.0, |x| x.avg_service_secs).round(),
            })
        })
        .collect();
    let counters: Vec<_> = site
        .counters
        .iter()
        .filter(|c| may(&c.unit))
        .filter_map(|c| engine.counter_view(site, &c.id, now))
        .collect();
    // Open tickets only (and no-shows that may still be brought back): the day's history is in the
    // services' figures and the reports, and a busy day's thousands of finished tickets would not fit
    // one message.
    let tolerance = chrono::Duration::minutes(site.no_show_return_minutes as i64);
    let mut open: Vec<_> = st
        .tickets
        .values()
        .filter(|t| match t.state {
            TicketState::NoShow => t.ended_at.is_some_and(|e| now - e <= tolerance),
            s => !s.is_final(),
        })
        .filter(|t| site.service(&t.service).is_some_and(|s| may(&s.unit)))
        .collect();
    let omitted = open.len().saturating_sub(MAX_SNAPSHOT_TICKETS);
    if omitted > 0 {
        // The ones at counters first, then the queue from its front.
        open.sort_by_key(|t| (t.state == TicketState::Waiting, t.order));
        open.truncate(MAX_SNAPSHOT_TICKETS);
    }
    let tickets: Vec<_> = open
        .into_iter()
        .map(|t| engine.staff_ticket(t, now))
        .collect();
    let alerts: Vec<_> = st
        .alerts
        .values()
        .filter(|a| {
            a.service
                .as_deref()
                .and_then(|s| site.service(s))
                .is_none_or(|s| may(&s.unit))
        })
        .collect();
    let printers: Vec<Value> = st
        .printers
        .iter()
        .map(|(d, p)| {
            let location = deployment.device(d).map(|x| &x.location);
            json!({"device": d, "location": location, "status": p.status, "detail": p.detail, "at": p.at})
        })
        .collect();
    // Every configured display, with its last status (null until it first connected).
    let displays: Vec<Value> = site
        .displays
        .iter()
        .map(|d| {
            let s = st.displays.get(&d.id);
            json!({"id": d.id, "status": s.map(|s| s.status.clone()), "at": s.map(|s| s.at)})
        })
        .collect();
    json!({
        "site": {"id": site.id, "name": site.name, "date": st.date},
        "displays": displays,
        "services": services,
        "counters": counters,
        "tickets": tickets,
        "tickets_omitted": omitted,
        "alerts": alerts,
        "printers": printers,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use vuoro_protocol::TopicMsg;

    #[test]
    fn an_event_message_written_by_hand_is_the_protocols_topic_message() {
        let event = json!({"kind": "ticket_called", "number": "A 1", "counter": "c\"5"});
        let text = super::msg_raw("calls:iso-omena", 42, &event.to_string());
        let expected = TopicMsg::Event {
            topic: "calls:iso-omena".into(),
            seq: 42,
            event: event.clone(),
        };
        assert_eq!(text.as_str(), expected.to_json());
        let back: TopicMsg<serde_json::Value> = serde_json::from_str(text.as_str()).unwrap();
        assert_eq!(back, expected);
    }
}
