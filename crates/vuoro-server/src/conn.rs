//! Accepting connections: the accept loop in front of the router.
//!
//! Every connection takes a slot: at most `per_address` from one peer address (peers listed as trusted
//! proxies excepted: the proxy limits its own clients) and at most `total` in all. The last `reserve` slots
//! of the total are kept for loopback peers (health checks and the local monitoring agent), so a flood
//! from outside cannot lock them out. A connection over a limit is answered `503` and closed at once.
//! A slot is held for the life of the connection, WebSocket included: the upgraded socket keeps it
//! (`Slot` travels in the request's extensions). Request heads must arrive within `header_timeout`,
//! which is also how long an idle keep-alive connection stays open.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tower::ServiceExt;

/// Limits on open connections.
#[derive(Debug, Clone)]
pub struct Limits {
    pub total: usize,
    pub per_address: usize,
    /// Slots of `total` that only loopback peers may take.
    pub reserve: usize,
    pub header_timeout: Duration,
    pub trusted_proxies: Vec<IpAddr>,
}

/// Open connections per peer address and in all. A std mutex: held for a map update only, never across
/// an await.
#[derive(Default)]
struct Counts {
    total: usize,
    by_address: HashMap<IpAddr, usize>,
}

pub struct Gate {
    limits: Limits,
    counts: Mutex<Counts>,
}

/// One open connection's place; given back when the last holder drops it.
pub struct Slot {
    gate: Arc<Gate>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut c = self.gate.counts.lock().expect("lock");
        c.total -= 1;
        if let Some(n) = c.by_address.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                c.by_address.remove(&self.ip);
            }
        }
    }
}

impl Gate {
    pub fn new(limits: Limits) -> Arc<Gate> {
        Arc::new(Gate {
            limits,
            counts: Mutex::default(),
        })
    }

    /// A slot for a connection from `ip`, or None when a limit is reached.
    pub fn admit(self: &Arc<Gate>, ip: IpAddr) -> Option<Arc<Slot>> {
        let l = &self.limits;
        let mut c = self.counts.lock().expect("lock");
        let open_to_all = l.total.saturating_sub(l.reserve);
        if c.total >= l.total || (c.total >= open_to_all && !ip.is_loopback()) {
            return None;
        }
        let mine = c.by_address.get(&ip).copied().unwrap_or(0);
        if mine >= l.per_address && !l.trusted_proxies.contains(&ip) {
            return None;
        }
        c.total += 1;
        *c.by_address.entry(ip).or_insert(0) += 1;
        Some(Arc::new(Slot {
            gate: self.clone(),
            ip,
        }))
    }

    pub fn open(&self) -> usize {
        self.counts.lock().expect("lock").total
    }
}

/// The highest number of open files this process may have: raised to the hard limit first (the usual
/// soft limit of 1,024 would otherwise stop the daemon at about a thousand sockets).
pub fn raise_open_files_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "cannot raise the open-files limit");
            rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft)
        }
    }
}

/// The whole answer to a connection over a limit.
fn refused() -> Vec<u8> {
    let body = r#"{"error":{"code":"unavailable","message":"Too many connections; try again in a few seconds."}}"#;
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Accepts connections and serves `router` on each until `shutdown` resolves; then lets open requests
/// finish (up to 5 s). Upgraded WebSockets end on the daemon's own shutdown signal.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    gate: Arc<Gate>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Shutdown: a signal every connection task watches, and a channel whose senders the tasks hold, so
    // that its closing tells when the last one has finished.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (done_tx, mut done_rx) = tokio::sync::mpsc::channel::<()>(1);
    let header_timeout = gate.limits.header_timeout;
    tokio::pin!(shutdown);
    loop {
        let (mut stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                // Out of file descriptors or a connection reset before accept: wait a moment, go on.
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Some(slot) = gate.admit(peer.ip()) else {
            tokio::spawn(async move {
                let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(&refused()))
                    .await;
            });
            continue;
        };
        // No Nagle delay: answers and WebSocket messages are small and must go out at once.
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<_>| {
            req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
            req.extensions_mut().insert(slot.clone());
            router.clone().oneshot(req.map(axum::body::Body::new))
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(header_timeout)
            .max_buf_size(64 * 1024)
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades();
        let mut stop = stop_rx.clone();
        let done = done_tx.clone();
        tokio::spawn(async move {
            tokio::pin!(conn);
            let ended = tokio::select! {
                r = conn.as_mut() => r,
                _ = stop.changed() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = ended {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(done);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    drop(done_tx);
    if tokio::time::timeout(Duration::from_secs(5), done_rx.recv())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after 5 s; stopping anyway");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(total: usize, per_address: usize, reserve: usize) -> Arc<Gate> {
        Gate::new(Limits {
            total,
            per_address,
            reserve,
            header_timeout: Duration::from_secs(1),
            trusted_proxies: vec!["10.0.0.1".parse().unwrap()],
        })
    }

    #[test]
    fn the_refusal_is_a_whole_http_answer() {
        let text = String::from_utf8(refused()).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(len, body.len());
        assert!(serde_json::from_str::<serde_json::Value>(body).is_ok());
    }

    #[test]
    fn one_address_cannot_take_more_than_its_share() {
        let g = gate(100, 3, 10);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let held: Vec<_> = (0..3)
            .map(|_| g.admit(a).expect("within the cap"))
            .collect();
        assert!(g.admit(a).is_none());
        assert!(g.admit("192.0.2.2".parse().unwrap()).is_some());
        drop(held);
        assert!(
            g.admit(a).is_some(),
            "slots come back when connections close"
        );
    }

    #[test]
    fn the_reserve_is_kept_for_loopback_and_proxies_are_not_capped_per_address() {
        let g = gate(10, 100, 4);
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let held: Vec<_> = (0..6).map(|_| g.admit(proxy).expect("open")).collect();
        assert!(g.admit("192.0.2.9".parse().unwrap()).is_none());
        let local: Vec<_> = (0..4)
            .map(|_| g.admit(IpAddr::from([127, 0, 0, 1])).expect("reserve"))
            .collect();
        assert!(g.admit(IpAddr::from([127, 0, 0, 1])).is_none(), "total");
        assert_eq!(g.open(), 10);
        drop((held, local));
        assert_eq!(g.open(), 0);
    }
}
