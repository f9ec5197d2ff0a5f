//! A scripted fake network printer on 127.0.0.1, for tests (here and in other crates). It
//! listens on port 0, answers `DLE EOT 1..4` and `GS r 1` as its script says for each
//! connection, and records every byte it receives so tests can decode what was "printed".
//! Plain std threads: no async runtime needed.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::CodePage;
use crate::decode::{Item, decode_prefix};

/// How the fake printer behaves on one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Healthy: answers everything.
    Ok,
    /// Paper near its end: still prints and confirms.
    NearEnd,
    /// Out of paper (offline, paper-end stop, paper end sensor); never confirms a job.
    PaperOut,
    /// Cover open (offline, cover bit); never confirms a job.
    CoverOpen,
    /// Answers with the offline bit set and no cause; never confirms a job.
    Offline,
    /// Accepts the connection and the bytes but never answers anything.
    Silence,
    /// Healthy status, but never answers `GS r 1`.
    NoConfirmation,
}

impl Behaviour {
    /// The reply to `DLE EOT n`, if any.
    fn status_reply(self, n: u8) -> Option<u8> {
        let base = 0x12;
        let bits = match (self, n) {
            (Behaviour::Silence, _) => return None,
            (Behaviour::PaperOut | Behaviour::CoverOpen | Behaviour::Offline, 1) => 0x08,
            (Behaviour::PaperOut, 2) => 0x20,
            (Behaviour::PaperOut, 4) => 0x6C,
            (Behaviour::CoverOpen, 2) => 0x04,
            (Behaviour::NearEnd, 4) => 0x0C,
            _ => 0,
        };
        Some(base | bits)
    }

    /// The reply to `GS r 1`, if any.
    fn completion_reply(self) -> Option<u8> {
        match self {
            Behaviour::Ok => Some(0x00),
            Behaviour::NearEnd => Some(0x03),
            _ => None,
        }
    }
}

#[derive(Debug, Default)]
struct Shared {
    /// Bytes received, one entry per connection.
    connections: Mutex<Vec<Vec<u8>>>,
    stop: AtomicBool,
    open: AtomicUsize,
}

/// A fake printer listening on 127.0.0.1. Dropping it stops it.
#[derive(Debug)]
pub struct FakePrinter {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl FakePrinter {
    /// Starts listening. Each connection takes the next behaviour of `script`; when the
    /// script runs out, the last one repeats (an empty script means `Ok`). `code_page` is only
    /// used to find commands in the byte stream.
    pub fn start(script: Vec<Behaviour>, code_page: CodePage) -> std::io::Result<FakePrinter> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        let acceptor = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("fake-printer".into())
                .spawn(move || accept_loop(listener, script, code_page, shared))?
        };
        Ok(FakePrinter {
            addr,
            shared,
            acceptor: Some(acceptor),
        })
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The printer target string, `tcp:127.0.0.1:PORT`.
    pub fn target(&self) -> String {
        format!("tcp:{}", self.addr)
    }

    /// The `HOST:PORT` for settings' `address`.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// Bytes received, one entry per connection, once open connections have closed (waits up
    /// to 2 s for that).
    pub fn connections(&self) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + Duration::from_secs(2);
        while self.shared.open.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        self.shared
            .connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// All bytes received, in order.
    pub fn received(&self) -> Vec<u8> {
        self.connections().concat()
    }
}

impl Drop for FakePrinter {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the acceptor.
        let _ = TcpStream::connect(self.addr);
        if let Some(h) = self.acceptor.take() {
            let _ = h.join();
        }
    }
}

fn accept_loop(listener: TcpListener, script: Vec<Behaviour>, cp: CodePage, shared: Arc<Shared>) {
    let mut next = 0usize;
    for stream in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let behaviour = script
            .get(next)
            .or(script.last())
            .copied()
            .unwrap_or(Behaviour::Ok);
        next += 1;
        let index = {
            let mut conns = shared
                .connections
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            conns.push(Vec::new());
            conns.len() - 1
        };
        shared.open.fetch_add(1, Ordering::SeqCst);
        let shared = Arc::clone(&shared);
        let spawned = std::thread::Builder::new()
            .name("fake-printer-conn".into())
            .spawn({
                let shared = Arc::clone(&shared);
                move || {
                    serve(stream, behaviour, cp, &shared, index);
                    shared.open.fetch_sub(1, Ordering::SeqCst);
                }
            });
        if spawned.is_err() {
            shared.open.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Reads one connection, answering commands as they complete.
fn serve(mut stream: TcpStream, behaviour: Behaviour, cp: CodePage, shared: &Shared, index: usize) {
    let _ = stream.set_read_timeout(Some(Duration::from_millis(50)));
    let mut unparsed: Vec<u8> = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let n = match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            Err(_) => return,
        };
        // Record before answering, so a confirmed job is fully recorded.
        shared
            .connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)[index]
            .extend_from_slice(&buf[..n]);
        unparsed.extend_from_slice(&buf[..n]);
        let Ok((decoded, used)) = decode_prefix(&unparsed, cp) else {
            // Not something this crate sends: keep recording, answer nothing more.
            unparsed.clear();
            continue;
        };
        unparsed.drain(..used);
        let mut replies = Vec::new();
        for item in decoded.items {
            match item {
                Item::StatusQuery(q) => replies.extend(behaviour.status_reply(q)),
                Item::CompletionCheck => replies.extend(behaviour.completion_reply()),
                _ => {}
            }
        }
        if !replies.is_empty() && stream.write_all(&replies).is_err() {
            return;
        }
    }
}
