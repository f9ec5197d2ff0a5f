//! Hall displays' status, each change one committed `DisplayStatus`:
//!
//! - `online`: a connection of the display is open (its `hello`) and its page renders;
//! - `frozen`: connections are open, but their pages stopped saying that they render;
//! - `offline`: the last connection has been closed for `server.display_offline_seconds`.
//!
//! A page says it renders with `rendering` messages, one every `rendering_report_seconds` and only when
//! its frame callbacks ran since the last, so a page whose main thread is blocked or whose rendering
//! stopped sends none while the browser keeps its socket open. A connection is judged only from its first
//! report on: a page that never reports (an older display page) is never `frozen`. A display is `frozen`
//! when every open connection of it has reported and none did for `server.display_frozen_seconds`; one
//! timer for every display ([`watch`]) finds those that froze. A status costs a commit only when it really
//! changes, however often connections come and go or reports arrive.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use vuoro_engine::SiteId;

use crate::App;

/// A configured hall display: its site and its id (`[[site.display]]`).
pub type DisplayKey = (SiteId, String);

pub const ONLINE: &str = "online";
pub const FROZEN: &str = "frozen";
pub const OFFLINE: &str = "offline";

/// What the daemon knows of one display's connections.
#[derive(Default)]
struct Conns {
    /// Each open connection (by its client id) with when its page last reported rendering; `None` until
    /// its first report.
    open: HashMap<u64, Option<Instant>>,
    /// Connections made so far: one made (and closed) during an offline grace keeps the display online.
    connects: u64,
}

impl Conns {
    /// The status the open connections say; `None` when none is open (the offline grace decides).
    fn status(&self, now: Instant, frozen_after: Duration) -> Option<&'static str> {
        if self.open.is_empty() {
            return None;
        }
        let frozen = self
            .open
            .values()
            .all(|r| r.is_some_and(|at| now.saturating_duration_since(at) >= frozen_after));
        Some(if frozen { FROZEN } else { ONLINE })
    }
}

/// The hall displays' connections and rendering reports.
pub struct Displays {
    /// A std mutex: held only to read or change the map, never across an await.
    conns: Mutex<HashMap<DisplayKey, Conns>>,
    /// One status decision at a time: each reads the connections and the committed status and commits a
    /// change while holding it, so a decision made on older knowledge never lands after a newer one.
    deciding: tokio::sync::Mutex<()>,
    frozen_after: Duration,
    offline_after: Duration,
}

impl Displays {
    pub fn new(server: &crate::deployment::ServerConfig) -> Displays {
        Displays {
            conns: Mutex::new(HashMap::new()),
            deciding: tokio::sync::Mutex::new(()),
            frozen_after: Duration::from_secs(server.display_frozen_seconds),
            offline_after: Duration::from_secs(server.display_offline_seconds),
        }
    }
}

/// A connection said it is the display `key` (its `hello`): the display is `online` (a connection that has
/// not reported yet is not judged).
pub async fn hello(app: &Arc<App>, key: &DisplayKey, conn: u64) {
    {
        let mut m = app.displays.conns.lock().expect("lock");
        let c = m.entry(key.clone()).or_default();
        c.open.insert(conn, None);
        c.connects += 1;
    }
    settle(app, key, None).await;
}

/// The page on connection `conn` of display `key` reported that it renders.
pub async fn rendering(app: &Arc<App>, key: &DisplayKey, conn: u64) {
    {
        let mut m = app.displays.conns.lock().expect("lock");
        if let Some(at) = m.get_mut(key).and_then(|c| c.open.get_mut(&conn)) {
            *at = Some(Instant::now());
        }
    }
    // Only a frozen display changes with a report; the others cost no decision.
    if committed(app, key).as_deref() != Some(ONLINE) {
        settle(app, key, None).await;
    }
}

/// Connection `conn` of display `key` closed. With others still open, their reports decide; when it was
/// the last, the display is `offline` if none came back within `server.display_offline_seconds` (a display
/// that drops and comes back, or a client that connects and closes in a loop, changes nothing).
pub async fn closed(app: &Arc<App>, key: &DisplayKey, conn: u64) {
    let (left, connects) = {
        let mut m = app.displays.conns.lock().expect("lock");
        let c = m.entry(key.clone()).or_default();
        c.open.remove(&conn);
        (c.open.len(), c.connects)
    };
    if left > 0 {
        settle(app, key, None).await;
        return;
    }
    let app = app.clone();
    let key = key.clone();
    tokio::spawn(async move {
        tokio::time::sleep(app.displays.offline_after).await;
        settle(&app, &key, Some(connects)).await;
    });
}

/// Finds the displays that froze (and any whose committed status lags behind its connections), once a
/// second, until the daemon stops. One timer for every display, none per connection.
pub async fn watch(app: Arc<App>) {
    let mut stop = app.shutdown.subscribe();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => break,
        }
        let now = Instant::now();
        let said: Vec<(DisplayKey, &'static str)> = app
            .displays
            .conns
            .lock()
            .expect("lock")
            .iter()
            .filter_map(|(k, c)| Some((k.clone(), c.status(now, app.displays.frozen_after)?)))
            .collect();
        for (key, status) in said {
            if committed(&app, &key).as_deref() != Some(status) {
                settle(&app, &key, None).await;
            }
        }
    }
}

/// The display's committed status.
fn committed(app: &App, key: &DisplayKey) -> Option<String> {
    app.shared
        .core
        .lock()
        .expect("lock")
        .engine
        .site_state(&key.0)
        .and_then(|st| st.displays.get(&key.1))
        .map(|d| d.status.clone())
}

/// Commits the status the display's connections say now, when it differs from the committed one. With
/// `gone` (the connections made when its last one closed): `offline`, if none is open now and none came
/// (and went) since.
async fn settle(app: &Arc<App>, key: &DisplayKey, gone: Option<u64>) {
    let _one = app.displays.deciding.lock().await;
    let status = {
        let m = app.displays.conns.lock().expect("lock");
        let c = m.get(key);
        match gone {
            None => match c.and_then(|c| c.status(Instant::now(), app.displays.frozen_after)) {
                Some(s) => s,
                None => return,
            },
            Some(connects) => {
                if !c.is_none_or(|c| c.open.is_empty() && c.connects == connects) {
                    return;
                }
                OFFLINE
            }
        }
    };
    if committed(app, key).as_deref() == Some(status) {
        return;
    }
    let cmd = vuoro_engine::Command::DisplayStatus {
        site: key.0.clone(),
        device: key.1.clone(),
        status: status.into(),
    };
    let _ = app.submit(cmd, vuoro_engine::Actor::device(&key.1)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_display_is_frozen_only_when_every_open_connection_reported_and_none_lately() {
        let after = Duration::from_secs(20);
        let t0 = Instant::now();
        let later = t0 + Duration::from_secs(30);
        let mut c = Conns::default();
        assert_eq!(
            c.status(later, after),
            None,
            "no connection: the grace decides"
        );
        c.open.insert(1, None);
        assert_eq!(
            c.status(later, after),
            Some(ONLINE),
            "not judged before its first report"
        );
        c.open.insert(1, Some(t0));
        assert_eq!(c.status(t0 + Duration::from_secs(19), after), Some(ONLINE));
        assert_eq!(c.status(t0 + Duration::from_secs(20), after), Some(FROZEN));
        // A second connection that has not reported (a reload, an older page) is not judged: online.
        c.open.insert(2, None);
        assert_eq!(c.status(later, after), Some(ONLINE));
        // Both reported, one lately: online; neither lately: frozen.
        c.open.insert(2, Some(t0 + Duration::from_secs(25)));
        assert_eq!(c.status(later, after), Some(ONLINE));
        assert_eq!(c.status(t0 + Duration::from_secs(45), after), Some(FROZEN));
    }
}
