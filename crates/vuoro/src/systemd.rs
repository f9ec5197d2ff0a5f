//! Talking to systemd when `vuoro serve` runs as a `Type=notify` service (crates/vuoro/debian/vuoro.service): READY=1
//! once the daemon serves, and WATCHDOG=1 at half the unit's `WatchdogSec`. Outside systemd (no
//! NOTIFY_SOCKET, no WATCHDOG_USEC) both do nothing.

use std::time::Duration;

/// Tells systemd the daemon is ready: the store is open, the state replayed, the listener bound.
pub fn notify_ready() {
    if let Err(e) = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]) {
        tracing::warn!("systemd: cannot send READY=1: {e}");
    }
}

/// When systemd asks for watchdog pings (WATCHDOG_USEC set for this process), sends WATCHDOG=1 at half
/// that interval from a task on the runtime, so a stalled runtime stops the pings and systemd restarts it.
pub fn start_watchdog() {
    let mut usec = 0;
    // `false`: the environment is left alone (changing it while other threads run is unsound).
    if !sd_notify::watchdog_enabled(false, &mut usec) || usec == 0 {
        return;
    }
    let every = Duration::from_micros(usec / 2);
    tracing::info!(every_ms = every.as_millis() as u64, "systemd watchdog");
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            if let Err(e) = sd_notify::notify(false, &[sd_notify::NotifyState::Watchdog]) {
                tracing::warn!("systemd: cannot send WATCHDOG=1: {e}");
            }
        }
    });
}
