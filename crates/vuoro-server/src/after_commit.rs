//! The stage after each commit: work that must follow a commit (audio announcements; outbound notices,
//! exports and the like) without holding up the writer or the read model.
//!
//! The writer hands every committed batch of events to [`Stage::committed`] after it has applied them and
//! let go of the read model's lock. Each consumer registered with [`Stage::register`] runs on its own thread
//! and gets the committed events in seq order, each once, through its own bounded queue. Handing over never
//! blocks the writer: a consumer whose queue is full misses the commits that did not fit and reads them back
//! from the event log (`Database::events_after`) before it goes on with the live
//! ones. A consumer registered with a seq it has already handled starts by reading what follows from the
//! log, so a consumer that persists its [`Stage::reached`] seq resumes after a restart with no gap and no
//! repeat.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use vuoro_engine::Event;
use vuoro_engine::view::Call;
use vuoro_store::Database;

/// Commits a consumer's queue holds; past that it catches up from the event log.
pub const QUEUE: usize = 1024;
/// Events read from the log at once while catching up.
const LOG_CHUNK: usize = 512;
/// How often an idle consumer looks whether it missed commits (a commit that did not fit its queue
/// is otherwise noticed at the next one that does).
const IDLE_CHECK: Duration = Duration::from_millis(200);

/// One commit as the writer hands it over.
pub struct Commit {
    /// The committed events, in seq order.
    pub events: Vec<Event>,
    /// The public call of each event that calls a ticket (`ticket_called`, `ticket_recalled`, a
    /// `ticket_returned` to a counter), by seq: the one the `calls:` topic published, built right after
    /// the commit was applied.
    pub calls: Vec<(u64, Call)>,
}

/// A committed event as a consumer gets it.
pub struct Delivery<'a> {
    pub event: &'a Event,
    /// Its public call, when it calls a ticket and came from the writer (a call read back from the log
    /// has none: the read model has moved on since).
    pub call: Option<&'a Call>,
    /// Read back from the event log (after a lag, or when resuming) rather than handed over right after
    /// its commit.
    pub from_log: bool,
}

/// Something that must follow commits. Called on the consumer's own thread, in seq order, once per
/// event per registration; it may take its time (the writer never waits for it).
pub trait Consumer: Send + 'static {
    fn handle(&mut self, delivery: Delivery<'_>);

    /// Everything handed over so far has been handled: called after each commit's events and after each
    /// chunk read back from the log, so that a consumer can write what it gathered once per commit.
    fn settled(&mut self) {}
}

impl<F: FnMut(Delivery<'_>) + Send + 'static> Consumer for F {
    fn handle(&mut self, delivery: Delivery<'_>) {
        self(delivery)
    }
}

struct Slot {
    tx: SyncSender<Arc<Commit>>,
    /// Set by the writer when a commit did not fit the queue.
    missed: Arc<AtomicBool>,
}

/// The post-commit stage: one per daemon, shared through `core::Shared`.
pub struct Stage {
    db: Arc<dyn Database>,
    queue: usize,
    /// The live consumers' queues. A std mutex: held by the writer only to offer a commit to each queue
    /// without waiting, and by `register` and `stop`.
    slots: Mutex<Vec<Slot>>,
    /// Each consumer's name and the last seq it handled.
    reached: Mutex<Vec<(String, Arc<AtomicU64>)>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Stage {
    /// A stage whose consumers catch up from the event log of `db`.
    pub fn new(db: Arc<dyn Database>) -> Stage {
        Stage::with_queue(db, QUEUE)
    }

    /// Like `new`, with `queue` commits per consumer's queue.
    pub fn with_queue(db: Arc<dyn Database>, queue: usize) -> Stage {
        Stage {
            db,
            queue: queue.max(1),
            slots: Mutex::new(Vec::new()),
            reached: Mutex::new(Vec::new()),
            threads: Mutex::new(Vec::new()),
        }
    }

    /// Starts `consumer` on a thread of its own. It gets every committed event after `after` (the last seq
    /// it has handled): first those already in the log, then the live ones.
    pub fn register(&self, name: &str, after: u64, consumer: impl Consumer) {
        let (tx, rx) = mpsc::sync_channel(self.queue);
        let missed = Arc::new(AtomicBool::new(false));
        let reached = Arc::new(AtomicU64::new(after));
        let mut run = Run {
            name: name.to_string(),
            consumer,
            rx,
            missed: missed.clone(),
            reached: reached.clone(),
            db: self.db.clone(),
        };
        // Queue first, then start: a commit handed over meanwhile is either queued or in the log that the
        // thread reads first.
        self.slots.lock().expect("lock").push(Slot { tx, missed });
        self.reached
            .lock()
            .expect("lock")
            .push((name.to_string(), reached));
        let thread = std::thread::Builder::new()
            .name(format!("after-commit-{name}"))
            .spawn(move || run.run())
            .expect("spawn an after-commit thread");
        self.threads.lock().expect("lock").push(thread);
    }

    /// Hands a commit to every consumer without waiting: the writer calls this after the commit is
    /// durable and applied, outside the read model's lock.
    pub fn committed(&self, commit: Commit) {
        let slots = self.slots.lock().expect("lock");
        if slots.is_empty() {
            return;
        }
        let commit = Arc::new(commit);
        for slot in slots.iter() {
            match slot.tx.try_send(commit.clone()) {
                Ok(()) | Err(TrySendError::Disconnected(_)) => {}
                Err(TrySendError::Full(_)) => slot.missed.store(true, Ordering::SeqCst),
            }
        }
    }

    /// Each consumer's name and the last seq it handled, in the order they registered.
    pub fn reached(&self) -> Vec<(String, u64)> {
        self.reached
            .lock()
            .expect("lock")
            .iter()
            .map(|(n, r)| (n.clone(), r.load(Ordering::Acquire)))
            .collect()
    }

    /// Closes the queues and waits until every consumer has handled everything committed. Call it after
    /// the writer has stopped: consumers then finish what is queued and what is in the log.
    pub fn stop(&self) {
        self.slots.lock().expect("lock").clear();
        let threads = std::mem::take(&mut *self.threads.lock().expect("lock"));
        for t in threads {
            if t.join().is_err() {
                tracing::error!("an after-commit consumer panicked");
            }
        }
    }
}

/// A consumer's thread.
struct Run<C> {
    name: String,
    consumer: C,
    rx: Receiver<Arc<Commit>>,
    missed: Arc<AtomicBool>,
    reached: Arc<AtomicU64>,
    db: Arc<dyn Database>,
}

impl<C: Consumer> Run<C> {
    fn run(&mut self) {
        self.catch_up(u64::MAX);
        loop {
            let commit = match self.rx.try_recv() {
                Ok(c) => c,
                Err(TryRecvError::Disconnected) => break,
                Err(TryRecvError::Empty) => {
                    if self.missed.swap(false, Ordering::SeqCst) {
                        self.catch_up(u64::MAX);
                        continue;
                    }
                    match self.rx.recv_timeout(IDLE_CHECK) {
                        Ok(c) => c,
                        Err(RecvTimeoutError::Timeout) => continue,
                        Err(RecvTimeoutError::Disconnected) => break,
                    }
                }
            };
            let Some(first) = commit.events.first().map(|e| e.seq) else {
                continue;
            };
            // Commits that did not fit the queue come before this one: read them from the log.
            if first > self.at() + 1 {
                self.catch_up(first - 1);
            }
            for ev in &commit.events {
                if ev.seq <= self.at() {
                    continue;
                }
                let call = commit
                    .calls
                    .iter()
                    .find(|(s, _)| *s == ev.seq)
                    .map(|(_, c)| c);
                self.consumer.handle(Delivery {
                    event: ev,
                    call,
                    from_log: false,
                });
                self.reached.store(ev.seq, Ordering::Release);
            }
            self.consumer.settled();
        }
        // The writer has stopped: whatever did not fit the queue is in the log.
        if self.missed.swap(false, Ordering::SeqCst) {
            self.catch_up(u64::MAX);
        }
        tracing::debug!(consumer = %self.name, reached = self.at(), "after-commit consumer stopped");
    }

    fn at(&self) -> u64 {
        self.reached.load(Ordering::Acquire)
    }

    /// Handles the logged events after the reached seq, up to `until`.
    fn catch_up(&mut self, until: u64) {
        while self.at() < until {
            let events = match self.read_log() {
                Ok(events) => events,
                Err(e) => {
                    tracing::error!(consumer = %self.name, error = %e, after = self.at(),
                        "the event log cannot be read; events after this seq are not handled");
                    return;
                }
            };
            if events.is_empty() {
                return;
            }
            for ev in &events {
                if ev.seq > until {
                    self.consumer.settled();
                    return;
                }
                self.consumer.handle(Delivery {
                    event: ev,
                    call: None,
                    from_log: true,
                });
                self.reached.store(ev.seq, Ordering::Release);
            }
            self.consumer.settled();
        }
    }

    fn read_log(&mut self) -> vuoro_store::Result<Vec<Event>> {
        self.db.events_after(self.at(), LOG_CHUNK)
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::sync::mpsc::Sender;
    use std::time::Instant;

    use chrono::Utc;
    use vuoro_engine::{Actor, Command, Engine, EventKind, Outcome};

    use super::*;

    /// A fresh database file of its own.
    fn db(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("vuoro-after-commit-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir.join("vuoro.sqlite")
    }

    fn event(seq: u64) -> Event {
        Event {
            seq,
            at: Utc::now(),
            site: "s".parse().unwrap(),
            actor: Actor::system(),
            kind: EventKind::CounterClosed {
                counter: format!("c{seq}").parse().unwrap(),
            },
        }
    }

    /// Commits `n` events (seqs `after + 1 ..`) to the store, then hands them to the stage as the writer
    /// does; returns the last seq.
    fn commit(store: &Arc<dyn Database>, stage: Option<&Stage>, after: u64, n: u64) -> u64 {
        let events: Vec<Event> = (after + 1..=after + n).map(event).collect();
        store.append(after, &events, None).expect("append");
        if let Some(stage) = stage {
            stage.committed(Commit {
                events,
                calls: Vec::new(),
            });
        }
        after + n
    }

    /// A consumer that reports each event's seq and whether it came from the log.
    fn recorder(tx: Sender<(u64, bool)>) -> impl Consumer {
        move |d: Delivery<'_>| {
            let _ = tx.send((d.event.seq, d.from_log));
        }
    }

    fn wait_reached(stage: &Stage, name: &str, seq: u64) {
        let t0 = Instant::now();
        while stage.reached().iter().find(|(n, _)| n == name).map(|r| r.1) != Some(seq) {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "{name} stuck at {:?}, not {seq}",
                stage.reached()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn open(path: &Path) -> Arc<dyn Database> {
        vuoro_store::open(path).expect("open the store")
    }

    #[test]
    fn every_committed_event_reaches_every_consumer_once_in_commit_order() {
        let path = db("order");
        let store = open(&path);
        let stage = Stage::new(store.clone());
        let (tx_a, rx_a) = mpsc::channel();
        let (tx_b, rx_b) = mpsc::channel();
        stage.register("a", 0, recorder(tx_a));
        stage.register("b", 0, recorder(tx_b));
        let mut last = 0;
        for n in 1..=40 {
            last = commit(&store, Some(&stage), last, n % 4 + 1);
        }
        stage.stop();
        for rx in [rx_a, rx_b] {
            let got: Vec<(u64, bool)> = rx.try_iter().collect();
            let seqs: Vec<u64> = got.iter().map(|g| g.0).collect();
            assert_eq!(seqs, (1..=last).collect::<Vec<_>>());
            // A consumer starting while commits arrive may read the first ones from the log; after the
            // first live hand-over, everything comes live.
            let first_live = got
                .iter()
                .position(|g| !g.1)
                .expect("some handed over live");
            assert!(got[first_live..].iter().all(|g| !g.1), "{got:?}");
        }
        assert_eq!(
            stage.reached(),
            [("a".to_string(), last), ("b".to_string(), last)]
        );
    }

    #[test]
    fn a_consumer_that_falls_behind_its_queue_catches_up_from_the_log_without_gap_or_repeat() {
        let path = db("lag");
        let store = open(&path);
        let stage = Stage::with_queue(store.clone(), 2);
        let (tx, rx) = mpsc::channel();
        let (gate_tx, gate) = mpsc::channel::<()>();
        let record = recorder(tx);
        let mut record = record;
        let mut gate = Some(gate);
        stage.register("slow", 0, move |d: Delivery<'_>| {
            // Held at its first event until the test lets it go.
            if let Some(g) = gate.take() {
                let _ = g.recv();
            }
            record.handle(d);
        });
        let t0 = Instant::now();
        let mut last = 0;
        for _ in 0..200 {
            last = commit(&store, Some(&stage), last, 3);
        }
        // The writer's side never waited for the consumer, which is still held at its first event.
        assert!(t0.elapsed() < Duration::from_secs(5));
        assert_eq!(stage.reached(), [("slow".to_string(), 0)]);
        gate_tx.send(()).expect("let go");
        // Caught up without another commit and without stopping: the missed tail is read from the log.
        wait_reached(&stage, "slow", last);
        // Then live again.
        let more = commit(&store, Some(&stage), last, 3);
        wait_reached(&stage, "slow", more);
        stage.stop();
        let got: Vec<(u64, bool)> = rx.try_iter().collect();
        let seqs: Vec<u64> = got.iter().map(|g| g.0).collect();
        assert_eq!(seqs, (1..=more).collect::<Vec<_>>());
        assert!(got.iter().any(|g| g.1), "some read back from the log");
        assert!(
            got[got.len() - 3..].iter().all(|g| !g.1),
            "the last commit live"
        );
    }

    #[test]
    fn a_consumer_resumes_after_the_seq_it_reached_from_the_log_then_live() {
        let path = db("resume");
        let store = open(&path);
        let mut last = 0;
        for _ in 0..10 {
            last = commit(&store, None, last, 3);
        }
        // As after a restart: one consumer had handled up to 12, one registers at the current seq.
        let stage = Stage::new(store.clone());
        let (tx, rx) = mpsc::channel();
        let (tx_now, rx_now) = mpsc::channel();
        stage.register("notices", 12, recorder(tx));
        stage.register("now", last, recorder(tx_now));
        wait_reached(&stage, "notices", last);
        let more = commit(&store, Some(&stage), last, 5);
        stage.stop();
        let got: Vec<(u64, bool)> = rx.try_iter().collect();
        assert_eq!(
            got,
            (13..=more).map(|s| (s, s <= last)).collect::<Vec<_>>(),
            "from the log up to {last}, live after"
        );
        let got_now: Vec<(u64, bool)> = rx_now.try_iter().collect();
        assert_eq!(
            got_now,
            (last + 1..=more).map(|s| (s, false)).collect::<Vec<_>>()
        );
    }

    #[test]
    fn stopping_after_the_writer_hands_every_committed_event_to_a_lagging_consumer() {
        let path = db("stop");
        let store = open(&path);
        let stage = Stage::with_queue(store.clone(), 1);
        let (tx, rx) = mpsc::channel();
        let mut record = recorder(tx);
        stage.register("slow", 0, move |d: Delivery<'_>| {
            std::thread::sleep(Duration::from_millis(1));
            record.handle(d);
        });
        let mut last = 0;
        for _ in 0..50 {
            last = commit(&store, Some(&stage), last, 2);
        }
        stage.stop();
        let seqs: Vec<u64> = rx.try_iter().map(|g| g.0).collect();
        assert_eq!(seqs, (1..=last).collect::<Vec<_>>());
    }

    /// The real writer, store and read model: a consumer that does not move does not hold up tickets.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stuck_consumer_does_not_hold_up_ticket_issuing() {
        let path = db("writer");
        let store = open(&path);
        let cfg = Arc::new(
            vuoro_engine::config::Hall::parse(include_str!("../../../config/demo.toml"))
                .expect("demo config"),
        );
        let engine = Engine::new(cfg.clone(), Utc::now());
        let stage = Arc::new(Stage::with_queue(store.clone(), 4));
        let (tx, rx) = mpsc::channel();
        let (gate_tx, gate) = mpsc::channel::<()>();
        let mut gate = Some(gate);
        let mut record = recorder(tx);
        stage.register("stuck", 0, move |d: Delivery<'_>| {
            if let Some(g) = gate.take() {
                let _ = g.recv();
            }
            record.handle(d);
        });
        let shared = Arc::new(crate::core::Shared {
            config: std::sync::RwLock::new((
                1,
                crate::config::load(include_str!("../../../config/demo.toml"))
                    .expect("demo config"),
            )),
            core: Mutex::new(crate::core::Core {
                engine: engine.clone(),
                hub: crate::hub::Hub::new(0),
            }),
            last_seq: AtomicU64::new(0),
            events_total: AtomicU64::new(0),
            commits_total: AtomicU64::new(0),
            commit_failures_total: AtomicU64::new(0),
            after_commit: stage.clone(),
        });
        let writer = crate::core::start_writer(store, engine, shared.clone());
        let t0 = Instant::now();
        let mut issued = 0;
        for i in 0..100 {
            let cmd = Command::Issue {
                site: "iso-omena".parse().unwrap(),
                service: "kela-general".parse().unwrap(),
                lang: "fi".into(),
                priority: Default::default(),
                token: format!("token-{i:032}").parse().unwrap(),
                channel: vuoro_engine::Channel::Kiosk,
                idempotency: None,
            };
            let outcome =
                tokio::time::timeout(Duration::from_secs(5), writer.submit(cmd, Actor::system()))
                    .await
                    .expect("answered while the consumer is stuck")
                    .expect("issued");
            assert!(matches!(outcome, Outcome::Ticket { .. }));
            issued += 1;
        }
        let took = t0.elapsed();
        assert_eq!(issued, 100);
        assert_eq!(stage.reached(), [("stuck".to_string(), 0)], "still stuck");
        assert!(took < Duration::from_secs(10), "100 tickets took {took:?}");
        let last = shared.last_seq.load(Ordering::Acquire);
        gate_tx.send(()).expect("let go");
        writer.stop().await;
        let s = stage.clone();
        tokio::task::spawn_blocking(move || s.stop())
            .await
            .expect("stage stops");
        let seqs: Vec<u64> = rx.try_iter().map(|g| g.0).collect();
        assert_eq!(
            seqs,
            (1..=last).collect::<Vec<_>>(),
            "every committed event, once, in order"
        );
    }
}
