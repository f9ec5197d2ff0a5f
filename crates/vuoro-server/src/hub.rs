//! The WebSocket hub: who listens to which topic, a ring of recent messages for resuming, and delivery
//! into each client's own bounded queue. A client whose queue is full is never waited for: it is marked
//! lagged and gets fresh snapshots instead (see ws.rs). Messages are serialized once and shared.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use axum::extract::ws::Utf8Bytes;
use tokio::sync::mpsc;

/// One message to clients, shared by all of them: a client's queue holds a pointer per message (its
/// first block of 32 slots is a quarter of a KB per idle client), and the text goes into each socket's
/// frame without a copy of its own.
pub type Out = Arc<OutMsg>;

#[derive(Debug)]
pub struct OutMsg {
    /// The seq it stands for (0 for control messages).
    pub seq: u64,
    pub topic: Option<Arc<str>>,
    pub text: Utf8Bytes,
    /// A snapshot (never dropped as stale after a resync); otherwise an event.
    pub snapshot: bool,
}

pub const CLIENT_QUEUE: usize = 256;
/// A client that was sent nothing for this long gets a heartbeat at the next tick of the hub's
/// heartbeat task, which ticks this often: so no client hears nothing for more than twice this.
pub const HEARTBEAT_IDLE: Duration = Duration::from_secs(5);

static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

fn now_ms() -> u64 {
    EPOCH.elapsed().as_millis() as u64
}
/// Messages kept for resuming (about the last 4,096 events' worth on a busy site).
const RING_MESSAGES: usize = 16_384;

pub struct Client {
    pub id: u64,
    tx: mpsc::Sender<Out>,
    lagged: AtomicBool,
    /// When its connection last wrote to it (ms since the hub's epoch).
    last_sent: AtomicU64,
    /// Units whose staff messages this client may get. None: all units.
    pub units: std::sync::Mutex<Option<HashSet<String>>>,
}

impl Client {
    pub fn new(id: u64, tx: mpsc::Sender<Out>) -> Client {
        Client {
            id,
            tx,
            lagged: AtomicBool::new(false),
            last_sent: AtomicU64::new(now_ms()),
            units: std::sync::Mutex::new(Some(HashSet::new())),
        }
    }

    /// Queues a message without waiting; a full queue marks the client lagged.
    pub fn offer(&self, out: Out) {
        if self.tx.try_send(out).is_err() {
            self.lagged.store(true, Ordering::Release);
        }
    }

    /// Its connection wrote to it just now.
    pub fn sent(&self) {
        self.last_sent.store(now_ms(), Ordering::Relaxed);
    }

    pub fn take_lagged(&self) -> bool {
        self.lagged.swap(false, Ordering::AcqRel)
    }

    fn may(&self, unit: Option<&str>) -> bool {
        match unit {
            None => true,
            Some(u) => self
                .units
                .lock()
                .expect("lock")
                .as_ref()
                .is_none_or(|s| s.contains(u)),
        }
    }
}

struct Ringed {
    out: Out,
    unit: Option<String>,
}

/// Messages held back during a commit's publishing, per client in the order they were published.
#[derive(Default)]
struct Held {
    at: HashMap<u64, usize>,
    clients: Vec<(Arc<Client>, Vec<Out>)>,
}

#[derive(Default)]
pub struct Hub {
    topics: HashMap<Arc<str>, Vec<Arc<Client>>>,
    /// Some while a commit is being published: see [`Hub::hold`].
    held: Option<Held>,
    ring: VecDeque<Ringed>,
    /// Resuming from a seq below this is impossible (messages were dropped or predate start-up).
    floor: u64,
    /// Every connected client, subscribed or not (for heartbeats).
    clients: HashMap<u64, Arc<Client>>,
}

impl Hub {
    pub fn new(last_seq: u64) -> Hub {
        Hub {
            floor: last_seq,
            ..Hub::default()
        }
    }

    pub fn client_count(&self) -> usize {
        self.clients.len()
    }

    pub fn connected(&mut self, client: &Arc<Client>) {
        self.clients.insert(client.id, client.clone());
    }

    /// Offers `text` (a heartbeat) to every client that was sent nothing for `idle` ([`HEARTBEAT_IDLE`]):
    /// one timer for the hub instead of one per connection, and nothing extra for a busy client. Returns
    /// how many were offered it.
    pub fn heartbeat(&self, text: Utf8Bytes, idle: Duration) -> usize {
        self.heartbeat_at(text, idle, now_ms())
    }

    fn heartbeat_at(&self, text: Utf8Bytes, idle: Duration, now_ms: u64) -> usize {
        let idle_ms = idle.as_millis() as u64;
        let out = Arc::new(OutMsg {
            seq: 0,
            topic: None,
            text,
            snapshot: false,
        });
        let mut n = 0;
        for c in self.clients.values() {
            if c.last_sent.load(Ordering::Relaxed) + idle_ms <= now_ms {
                c.offer(out.clone());
                n += 1;
            }
        }
        n
    }

    /// Offers `text` to every connected client, whatever it subscribed to (a control message).
    pub fn broadcast(&self, text: Utf8Bytes) -> usize {
        let out = Arc::new(OutMsg {
            seq: 0,
            topic: None,
            text,
            snapshot: false,
        });
        for c in self.clients.values() {
            c.offer(out.clone());
        }
        self.clients.len()
    }

    pub fn disconnected(&mut self, client: &Client) {
        self.clients.remove(&client.id);
        self.topics.retain(|_, subs| {
            subs.retain(|c| c.id != client.id);
            !subs.is_empty()
        });
    }

    pub fn subscribe(&mut self, topic: &str, client: &Arc<Client>) {
        let subs = self.topics.entry(Arc::from(topic)).or_default();
        if !subs.iter().any(|c| c.id == client.id) {
            subs.push(client.clone());
        }
    }

    pub fn unsubscribe(&mut self, topic: &str, client: &Client) {
        if let Some(subs) = self.topics.get_mut(topic) {
            subs.retain(|c| c.id != client.id);
            if subs.is_empty() {
                self.topics.remove(topic);
            }
        }
    }

    pub fn has_subscribers(&self, topic: &str) -> bool {
        self.topics.contains_key(topic)
    }

    /// Topics with subscribers that start with `prefix`.
    pub fn topics_with_prefix<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.topics
            .keys()
            .map(|k| &**k)
            .filter(move |k| k.starts_with(prefix))
    }

    /// Delivers a committed event's message on `topic` (only to clients allowed `unit`) and keeps it for
    /// resuming when `ring` is set.
    pub fn publish(
        &mut self,
        topic: &str,
        seq: u64,
        unit: Option<&str>,
        text: Utf8Bytes,
        ring: bool,
    ) {
        let topic_arc: Arc<str> = self
            .topics
            .get_key_value(topic)
            .map(|(k, _)| k.clone())
            .unwrap_or_else(|| Arc::from(topic));
        let out = Arc::new(OutMsg {
            seq,
            topic: Some(topic_arc),
            text,
            snapshot: false,
        });
        if let Some(subs) = self.topics.get(topic) {
            for c in subs {
                if !c.may(unit) {
                    continue;
                }
                match &mut self.held {
                    Some(held) => {
                        let i = *held.at.entry(c.id).or_insert_with(|| {
                            held.clients.push((c.clone(), Vec::new()));
                            held.clients.len() - 1
                        });
                        held.clients[i].1.push(out.clone());
                    }
                    None => c.offer(out.clone()),
                }
            }
        }
        if ring {
            self.ring.push_back(Ringed {
                out,
                unit: unit.map(str::to_string),
            });
            while self.ring.len() > RING_MESSAGES {
                if let Some(old) = self.ring.pop_front() {
                    self.floor = self.floor.max(old.out.seq);
                }
            }
        }
    }

    /// Holds back deliveries until [`Hub::release`]: a commit's messages then reach each client one
    /// right after the other, so that its connection wakes once and writes them in one system call
    /// (a call-next is two public messages; offered message by message, many of 10,000 clients would
    /// wake and write twice).
    pub fn hold(&mut self) {
        self.held.get_or_insert_with(Held::default);
    }

    /// Delivers what was held back, each client's messages in the order they were published.
    pub fn release(&mut self) {
        if let Some(held) = self.held.take() {
            for (c, outs) in held.clients {
                for o in outs {
                    c.offer(o);
                }
            }
        }
    }

    /// The messages on `topic` after `after`, or None when they are no longer all kept.
    pub fn replay(&self, topic: &str, after: u64, client: &Client) -> Option<Vec<Out>> {
        if after < self.floor {
            return None;
        }
        Some(
            self.ring
                .iter()
                .filter(|r| {
                    r.out.seq > after
                        && r.out.topic.as_deref() == Some(topic)
                        && client.may(r.unit.as_deref())
                })
                .map(|r| r.out.clone())
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_queue_marks_lagged_and_never_blocks() {
        let (tx, _rx) = mpsc::channel(2);
        let c = Arc::new(Client::new(1, tx));
        *c.units.lock().unwrap() = None;
        let mut hub = Hub::new(0);
        hub.subscribe("calls:s", &c);
        for seq in 1..=5 {
            hub.publish("calls:s", seq, None, Utf8Bytes::from("x"), true);
        }
        assert!(c.take_lagged());
        assert!(!c.take_lagged());
    }

    #[test]
    fn held_messages_reach_each_client_in_order_on_release() {
        let (tx1, mut rx1) = mpsc::channel(10);
        let (tx2, mut rx2) = mpsc::channel(10);
        let a = Arc::new(Client::new(1, tx1));
        let b = Arc::new(Client::new(2, tx2));
        *a.units.lock().unwrap() = None;
        let mut hub = Hub::new(0);
        hub.subscribe("calls:s", &a);
        hub.subscribe("site:s", &a);
        hub.subscribe("calls:s", &b);
        hub.hold();
        hub.publish("calls:s", 1, None, Utf8Bytes::from("c1"), true);
        hub.publish("site:s", 1, Some("kela"), Utf8Bytes::from("s1"), true);
        hub.publish("calls:s", 2, None, Utf8Bytes::from("c2"), true);
        assert!(rx1.try_recv().is_err(), "nothing before the release");
        hub.release();
        let got = |rx: &mut mpsc::Receiver<Out>| {
            std::iter::from_fn(|| rx.try_recv().ok())
                .map(|o| o.text.to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(got(&mut rx1), ["c1", "s1", "c2"]);
        assert_eq!(
            got(&mut rx2),
            ["c1", "c2"],
            "b may not hear the unit's message"
        );
        hub.publish("calls:s", 3, None, Utf8Bytes::from("c3"), true);
        assert_eq!(got(&mut rx2), ["c3"], "after the release, at once again");
    }

    #[test]
    fn heartbeats_go_only_to_clients_idle_long_enough() {
        let (tx1, mut rx1) = mpsc::channel(10);
        let (tx2, mut rx2) = mpsc::channel(10);
        let idle = Arc::new(Client::new(1, tx1));
        let busy = Arc::new(Client::new(2, tx2));
        let mut hub = Hub::new(0);
        hub.connected(&idle);
        hub.connected(&busy);
        // At 100 s: the one was last sent something at 98.5 s, the other at 99.5 s.
        idle.last_sent.store(98_500, Ordering::Relaxed);
        busy.last_sent.store(99_500, Ordering::Relaxed);
        let idle_time = Duration::from_secs(1);
        assert_eq!(
            hub.heartbeat_at(Utf8Bytes::from("hb"), idle_time, 100_000),
            1
        );
        assert_eq!(rx1.try_recv().unwrap().text.as_str(), "hb");
        assert!(
            rx2.try_recv().is_err(),
            "a client sent something just now gets none"
        );
        hub.disconnected(&idle);
        assert_eq!(hub.client_count(), 1);
        assert_eq!(
            hub.heartbeat_at(Utf8Bytes::from("hb"), idle_time, 100_000),
            0
        );
        // A second later the busy one has been idle long enough too.
        assert_eq!(
            hub.heartbeat_at(Utf8Bytes::from("hb"), idle_time, 101_000),
            1
        );
        assert_eq!(rx2.try_recv().unwrap().text.as_str(), "hb");
    }

    #[test]
    fn replay_respects_floor_topic_and_units() {
        let (tx, _rx) = mpsc::channel(100);
        let c = Arc::new(Client::new(1, tx));
        *c.units.lock().unwrap() = Some(["kela".to_string()].into());
        let mut hub = Hub::new(10);
        hub.publish("site:s", 11, Some("kela"), Utf8Bytes::from("a"), true);
        hub.publish("site:s", 12, Some("hus"), Utf8Bytes::from("b"), true);
        hub.publish("calls:s", 13, None, Utf8Bytes::from("c"), true);
        let got = hub.replay("site:s", 10, &c).unwrap();
        assert_eq!(got.iter().map(|o| o.seq).collect::<Vec<_>>(), vec![11]);
        assert!(hub.replay("site:s", 9, &c).is_none());
    }
}
