//! `GET /api/v1/ws`: one WebSocket for every client. Subscribe to topics, get a snapshot (or a replay of
//! what was missed), then events in order. Small buffers per socket; a client that does not read is not
//! waited for and gets fresh snapshots when it catches up.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};

use axum::extract::State;
use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::sync::mpsc;

use vuoro_engine::SiteId;
use vuoro_protocol::{ClientMsg, ErrorCode as WsCode, ServerMsg, Topic};

use crate::App;
use crate::auth::{Principal, token_from_headers};
use crate::core::topic_snapshot;
use crate::error::ApiError;
use crate::hub::{CLIENT_QUEUE, Client, Out, OutMsg};

static NEXT_CLIENT: AtomicU64 = AtomicU64::new(1);

/// The WebSocket connections' own runtime, apart from the one that answers HTTP. A call fanned out to
/// thousands of phones wakes thousands of connection tasks at once; in a runtime shared with HTTP, every
/// request that arrives meanwhile (a desk's call-next, a kiosk's ticket) waits in its queue behind them as
/// long as the fan-out takes (docs/benchmarks.md). The operating system shares the cores between the two
/// runtimes' threads. Made at the first connection, for
/// the life of the process: a runtime cannot be dropped from one of its own tasks.
static SOCKETS: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
        )
        .thread_name("vuoro-ws")
        .enable_all()
        .build()
        .expect("the WebSocket runtime starts")
});

pub async fn upgrade(
    State(app): State<Arc<App>>,
    axum::Extension(slot): axum::Extension<Arc<crate::conn::Slot>>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    if let Some(origin) = headers
        .get(axum::http::header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        && !app.guard.origin_allowed(&headers, origin)
    {
        return ApiError::new(
            crate::error::ErrorCode::OriginNotAllowed,
            "This origin may not connect.",
        )
        .into_response();
    }
    let token = token_from_headers(&headers);
    let principal = match &token {
        None => Principal::Anonymous,
        Some(t) => match app.auth.resolve_from(t, app.client_ip(peer, &headers)) {
            Some(p) => p,
            None => return ApiError::unauthenticated().into_response(),
        },
    };
    let client_ip = app.client_ip(peer, &headers);
    // Clients send only small control messages: a 1 KiB read buffer (frames up to the limits below
    // still arrive whole) keeps an idle client small (docs/benchmarks.md).
    ws.read_buffer_size(1024)
        .write_buffer_size(4096)
        .max_write_buffer_size(256 * 1024)
        .max_message_size(16 * 1024)
        .max_frame_size(16 * 1024)
        .on_upgrade(move |socket| async move {
            SOCKETS.spawn(async move {
                run(socket, app, principal, token, client_ip).await;
                // The connection's place is given back only when the socket is gone.
                drop(slot);
            });
        })
}

/// The close code sent to a device whose tokens were revoked (docs/api.md).
pub const REVOKED: u16 = 4403;

/// Whether a connection watches for ended sessions and revoked devices: staff and devices do.
fn watches_rights(p: &Principal) -> bool {
    matches!(p, Principal::User(_) | Principal::Device(_))
}

fn units_of(p: &Principal) -> Option<std::collections::HashSet<String>> {
    match p {
        Principal::User(u) => u.units.clone(),
        _ => Some(Default::default()),
    }
}

/// May this principal hear this topic? Err with a code for the client.
fn authorize(app: &App, p: &Principal, topic: &Topic) -> Result<(), (WsCode, String)> {
    let not_found = || (WsCode::NotFound, format!("no topic '{topic}'"));
    match topic {
        Topic::Calls(site) | Topic::Queues(site) | Topic::Announcements(site) => {
            app.hall().site(site).map(|_| ()).ok_or_else(not_found)
        }
        Topic::Site(site) => {
            app.hall().site(site).ok_or_else(not_found)?;
            match p {
                Principal::User(_) => Ok(()),
                _ => Err((WsCode::Forbidden, "staff only".into())),
            }
        }
        Topic::Counter(id) => {
            let hall = app.hall();
            let unit = hall
                .sites
                .iter()
                .find_map(|s| s.counter(id))
                .map(|c| c.unit.clone())
                .ok_or_else(not_found)?;
            match p {
                Principal::User(u) if u.may_unit(&unit) => Ok(()),
                _ => Err((
                    WsCode::Forbidden,
                    "staff of this counter's unit only".into(),
                )),
            }
        }
        Topic::Ticket(token) => {
            let core = app.shared.core.lock().expect("lock");
            core.engine
                .ticket_by_token(token)
                .map(|_| ())
                .ok_or((WsCode::NotFound, "no such ticket".into()))
        }
        Topic::Device(id) => match p {
            Principal::Device(d) if &d.id == id => Ok(()),
            _ => Err((WsCode::Forbidden, "that device only".into())),
        },
    }
}

/// A topic this connection hears, with its key in the hub.
#[derive(Clone)]
struct Sub {
    topic: Topic,
    key: Arc<str>,
}

impl Sub {
    fn new(topic: Topic) -> Sub {
        Sub {
            key: Arc::from(topic.to_string()),
            topic,
        }
    }
}

/// Every text frame the daemon writes to a client is made here, so that a record
/// (`Settings::record_ws`) holds all of them.
fn frame(app: &App, text: Utf8Bytes) -> Message {
    if let Some(r) = &app.ws_record {
        r.append(&text);
    }
    Message::Text(text)
}

fn send_msg(app: &App, m: &ServerMsg) -> Message {
    frame(app, Utf8Bytes::from(m.to_json()))
}

/// A file of sent messages, one JSON a line, for the test suites (tests/asyncapi checks each against the
/// AsyncAPI document). Each line goes out in one `write` to a file opened for appending, so several
/// daemons may share a file without their lines mixing; the write blocks the connection's task briefly,
/// which only tests pay for.
pub struct Record(std::sync::Mutex<std::fs::File>);

impl Record {
    pub fn open(path: &std::path::Path) -> anyhow::Result<Record> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))?;
        Ok(Record(std::sync::Mutex::new(file)))
    }

    fn append(&self, text: &str) {
        use std::io::Write;
        let mut line = String::with_capacity(text.len() + 1);
        line.push_str(text);
        line.push('\n');
        // A std mutex: held for one write, never across an await.
        let mut f = self.0.lock().expect("lock");
        if let Err(e) = f.write_all(line.as_bytes()) {
            tracing::warn!(error = %e, "cannot record a WebSocket message");
        }
    }
}

fn snapshot_msg(topic: &Topic, seq: u64, data: serde_json::Value) -> Utf8Bytes {
    Utf8Bytes::from(
        vuoro_protocol::TopicMsg::Snapshot {
            topic: topic.to_string(),
            seq,
            data,
        }
        .to_json(),
    )
}

/// Under the core lock: the snapshot (or the replay after `after`) and the subscription, atomically.
/// With `queue`, the snapshot goes into the client's queue under the same lock, so no event published
/// right after it can be queued before it; otherwise the caller gets it to send (a resync, whose queue
/// was just emptied).
fn subscribe(
    app: &App,
    client: &Arc<Client>,
    sub: &Sub,
    after: Option<u64>,
    queue: bool,
) -> Option<Vec<Out>> {
    let topic = &sub.topic;
    let mut core = app.shared.core.lock().expect("lock");
    let seq = core.engine.last_seq();
    let replay = after.and_then(|a| {
        // Ticket and queue topics carry whole states: a fresh snapshot is the resume (queue figures are
        // not kept for replay when nobody listens, see core.rs). A position beyond the last event is no
        // position: a fresh snapshot too.
        if topic.resumes_with_snapshot() || a > seq {
            None
        } else {
            core.hub.replay(&sub.key, a, client)
        }
    });
    let out = match replay {
        Some(r) => r,
        None => {
            let units = client.units.lock().expect("lock").clone();
            let data = match topic {
                Topic::Ticket(token) => {
                    let t = core.engine.ticket_by_token(token)?;
                    app.ticket_json(&core.engine, t)
                }
                Topic::Device(dev) => {
                    let printer = app
                        .auth
                        .device(dev)
                        .filter(|d| d.printer.is_some())
                        .and_then(|d| core.engine.site_state(&d.site)?.printers.get(&d.id))
                        .map(|p| json!({"status": p.status, "at": p.at}));
                    json!({"device": dev, "printer": printer})
                }
                _ => topic_snapshot(&core.engine, &app.deployment, topic, units.as_ref())?,
            };
            vec![Arc::new(OutMsg {
                seq,
                topic: Some(sub.key.clone()),
                text: snapshot_msg(topic, seq, data),
                snapshot: true,
            })]
        }
    };
    core.hub.subscribe(&sub.key, client);
    if queue {
        for o in out {
            client.offer(o);
        }
        return Some(Vec::new());
    }
    Some(out)
}

/// Rights of a connection whose principal changed (a sign-out, an expired session, an `auth` with
/// another token): its units are set anew and the topics it may no longer hear are dropped, each with
/// an error message to say so.
fn reauthorize(
    app: &App,
    client: &Arc<Client>,
    principal: &Principal,
    topics: &mut Vec<Sub>,
) -> Vec<ServerMsg> {
    *client.units.lock().expect("lock") = units_of(principal);
    let mut dropped = Vec::new();
    topics.retain(|sub| match authorize(app, principal, &sub.topic) {
        Ok(()) => true,
        Err((code, message)) => {
            app.shared
                .core
                .lock()
                .expect("lock")
                .hub
                .unsubscribe(&sub.key, client);
            dropped.push(ServerMsg::error(Some(&sub.topic), code, message));
            false
        }
    });
    dropped
}

/// What one connection may send: 200 messages at once, refilled at 20 a second. A display or desk sends a
/// handful of subscriptions and a ping now and then; a resync after an outage a few dozen.
fn message_budget() -> governor::DefaultDirectRateLimiter {
    governor::RateLimiter::direct(
        governor::Quota::per_second(std::num::NonZeroU32::new(20).expect("not zero"))
            .allow_burst(std::num::NonZeroU32::new(200).expect("not zero")),
    )
}

/// Waits for sessions to end, for a connection that has one; never otherwise.
async fn session_ended(rx: &mut Option<tokio::sync::watch::Receiver<u64>>) {
    if let Some(rx) = rx
        && rx.changed().await.is_ok()
    {
        return;
    }
    std::future::pending().await
}

async fn run(
    mut socket: WebSocket,
    app: Arc<App>,
    mut principal: Principal,
    mut token: Option<String>,
    client_ip: std::net::IpAddr,
) {
    let (tx, mut rx) = mpsc::channel::<Out>(CLIENT_QUEUE);
    let client = Arc::new(Client::new(NEXT_CLIENT.fetch_add(1, Ordering::Relaxed), tx));
    *client.units.lock().expect("lock") = units_of(&principal);
    app.shared.core.lock().expect("lock").hub.connected(&client);
    // Not split into a sink and a stream: `select!` drops the pending read before a branch's body writes,
    // so one socket serves both, without a lock between two halves taken for every message.
    let mut topics: Vec<Sub> = Vec::new();
    // The display this connection belongs to, once it said hello (displays.rs keeps its status).
    let mut display: Option<(SiteId, String)> = None;
    // After a resync, queued messages at or below the snapshot's seq are stale.
    let mut skip_until: HashMap<String, u64> = HashMap::new();
    let mut sessions = watches_rights(&principal).then(|| app.auth.sessions_ended());
    let budget = message_budget();
    let mut stop = app.shutdown.subscribe();
    // One shutdown future for the connection's life: one made anew in every turn of the loop would
    // register with and leave the shutdown signal's waiter list (one lock shared by every client) for
    // each message delivered.
    let stopped = stop.changed();
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            // In this order, not a random one: woken for a delivery, the loop polls only the queue, not
            // also the shutdown signal and the socket's read side (a tenth of the daemon's time in a
            // fan-out to 10,000). The queue is bounded and drained 32 at a time, so the others wait at
            // most that long. Heartbeats come through the queue too (`Hub::heartbeat`).
            biased;
            out = rx.recv() => {
                let Some(out) = out else { break };
                if client.take_lagged() {
                    // Fell behind: drop what is queued and start again from fresh snapshots.
                    while rx.try_recv().is_ok() {}
                    let mut ok = true;
                    for sub in topics.clone() {
                        if let Some(outs) = subscribe(&app, &client, &sub, None, false) {
                            for o in outs {
                                skip_until.insert(sub.key.to_string(), o.seq);
                                if socket.send(frame(&app, o.text.clone())).await.is_err() {
                                    ok = false;
                                }
                            }
                        }
                    }
                    if !ok { break }
                    continue;
                }
                // What is queued already (a call and the end of the previous one come together) goes
                // out in one write: one system call per client instead of one per message.
                let mut outs = vec![out];
                while outs.len() < 32 {
                    match rx.try_recv() {
                        Ok(o) => outs.push(o),
                        Err(_) => break,
                    }
                }
                let mut ok = true;
                for out in outs {
                    if let Some(t) = &out.topic
                        && (skip_until.get(&**t).is_some_and(|&s| out.seq <= s && !out.snapshot)
                            || !topics.iter().any(|x| *x.key == **t))
                    {
                        continue;
                    }
                    if socket.feed(frame(&app, out.text.clone())).await.is_err() {
                        ok = false;
                        break;
                    }
                }
                if !ok || socket.flush().await.is_err() {
                    break;
                }
                client.sent();
            }
            _ = session_ended(&mut sessions) => {
                let now = token.as_deref().and_then(|t| app.auth.resolve(t));
                if now.is_none() && matches!(principal, Principal::Device(_)) {
                    // A revoked device is cut off: its socket closes (it cannot reconnect with the token).
                    let _ = socket
                        .send(Message::Close(Some(axum::extract::ws::CloseFrame {
                            code: REVOKED,
                            reason: Utf8Bytes::from_static("device revoked"),
                        })))
                        .await;
                    break;
                }
                if now.is_none() {
                    principal = Principal::Anonymous;
                    token = None;
                    sessions = None;
                    let mut ok = true;
                    for e in reauthorize(&app, &client, &principal, &mut topics) {
                        ok &= socket.send(send_msg(&app, &e)).await.is_ok();
                    }
                    if !ok { break }
                }
            }
            _ = &mut stopped => {
                let _ = socket.send(Message::Close(None)).await;
                break;
            }
            incoming = socket.next() => {
                let Some(Ok(m)) = incoming else { break };
                // Every message a client sends may cost a snapshot under the read model's lock: a client
                // that sends more than a client ever needs is cut off.
                if budget.check().is_err() {
                    let e = ServerMsg::error(None, WsCode::RateLimited, "too many messages; reconnect later");
                    let _ = socket.send(send_msg(&app, &e)).await;
                    let _ = socket.send(Message::Close(None)).await;
                    break;
                }
                let text = match m {
                    Message::Text(t) => t,
                    Message::Close(_) => break,
                    _ => continue,
                };
                let reply = match serde_json::from_str::<ClientMsg>(&text) {
                    Err(e) => Some(ServerMsg::error(None, WsCode::Malformed, e.to_string())),
                    Ok(ClientMsg::Ping) => Some(ServerMsg::Pong),
                    Ok(ClientMsg::Hello { display: id }) => {
                        let hall = app.hall();
                        let site = hall.sites.iter().find(|s| s.displays.iter().any(|d| d.id == id));
                        match (site, &display) {
                            (Some(site), None) => {
                                let key = (site.id.clone(), id.clone());
                                crate::displays::hello(&app, &key, client.id).await;
                                display = Some(key);
                                None
                            }
                            (Some(_), Some(_)) => None,
                            (None, _) => Some(ServerMsg::error(None, WsCode::NotFound, "no such display")),
                        }
                    }
                    Ok(ClientMsg::Rendering) => match &display {
                        Some(key) => {
                            crate::displays::rendering(&app, key, client.id).await;
                            None
                        }
                        None => Some(ServerMsg::error(None, WsCode::NotFound, "this connection is no display: send hello first")),
                    },
                    Ok(ClientMsg::PrintResult { job, outcome }) => match &principal {
                        Principal::Device(_) if app.printing.complete(job, outcome) => None,
                        _ => Some(ServerMsg::error(None, WsCode::NotFound, "no such print job")),
                    },
                    Ok(ClientMsg::PrinterStatus { status }) => match &principal {
                        Principal::Device(d) => {
                            crate::printing::report_status(&app, d, status.as_str()).await;
                            None
                        }
                        _ => Some(ServerMsg::error(None, WsCode::Forbidden, "only a device reports a printer status")),
                    },
                    Ok(ClientMsg::Auth { token: t }) => match app.auth.resolve(&t) {
                        Some(_) if app.guard.is_published(&t) && !client_ip.is_loopback() => Some(ServerMsg::error(None, WsCode::Unauthenticated, "this token is published in the demo configuration and is refused from the network")),
                        Some(p) => {
                            sessions = watches_rights(&p).then(|| app.auth.sessions_ended());
                            principal = p;
                            token = Some(t);
                            let mut ok = true;
                            for e in reauthorize(&app, &client, &principal, &mut topics) {
                                ok &= socket.send(send_msg(&app, &e)).await.is_ok();
                            }
                            if !ok { break }
                            None
                        }
                        None => Some(ServerMsg::error(None, WsCode::Unauthenticated, "unknown or expired token")),
                    },
                    Ok(ClientMsg::Unsubscribe { topic }) => {
                        let key = topic.to_string();
                        app.shared.core.lock().expect("lock").hub.unsubscribe(&key, &client);
                        topics.retain(|t| t.topic != topic);
                        None
                    }
                    Ok(ClientMsg::Subscribe { topic, after }) => match authorize(&app, &principal, &topic) {
                        Err((code, message)) => Some(ServerMsg::error(Some(&topic), code, message)),
                        Ok(()) => {
                            let sub = Sub::new(topic);
                            match subscribe(&app, &client, &sub, after, true) {
                                None => Some(ServerMsg::error(Some(&sub.topic), WsCode::NotFound, "no such topic")),
                                Some(_) => {
                                    if !topics.iter().any(|t| t.topic == sub.topic) {
                                        topics.push(sub);
                                    }
                                    None
                                }
                            }
                        }
                    },
                };
                if let Some(r) = reply
                    && socket.send(send_msg(&app, &r)).await.is_err()
                {
                    break;
                }
            }
        }
    }
    if let Some(key) = display {
        crate::displays::closed(&app, &key, client.id).await;
    }
    app.shared
        .core
        .lock()
        .expect("lock")
        .hub
        .disconnected(&client);
}
