//! `GET /metrics`: Prometheus text exposition of queue lengths, waits, clients, printers, displays, the
//! store and the data disk, computed from the read model at scrape time. The alerting rules and the
//! dashboard in `monitoring/` read these names (`monitoring` in tests/tests/e2e checks that they exist).

use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;

use crate::App;
use crate::displays;

/// Who may read the figures: loopback clients (the local monitoring agent), a bearer of the configured
/// metrics token (`server.metrics_token_sha256`), and admins. They name per-service figures of sensitive
/// services, so they are not public.
fn allowed(app: &App, peer: std::net::SocketAddr, headers: &HeaderMap) -> bool {
    if app.client_ip(peer, headers).is_loopback() {
        return true;
    }
    let Some(token) = crate::auth::token_from_headers(headers) else {
        return false;
    };
    let by_token = app
        .deployment
        .server
        .metrics_token_sha256
        .as_deref()
        .is_some_and(|h| h.eq_ignore_ascii_case(&crate::auth::sha256_hex(&token)));
    by_token
        || matches!(app.auth.resolve(&token), Some(crate::auth::Principal::User(u)) if u.roles.contains(&crate::deployment::Role::Admin))
}

pub async fn metrics(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
) -> Response {
    if !allowed(&app, peer, &headers) {
        return crate::error::ApiError::unauthenticated().into_response();
    }
    let now = Utc::now();
    let notices = match app.notices.clone() {
        Some(n) => tokio::task::spawn_blocking(move || n.metrics_text(now))
            .await
            .unwrap_or_default(),
        None => String::new(),
    };
    let mut out = String::with_capacity(4096);
    let core = app.shared.core.lock().expect("lock");
    out.push_str("# HELP vuoro_waiting Tickets waiting per service.\n# TYPE vuoro_waiting gauge\n");
    for s in &app.hall().sites {
        for svc in &s.services {
            let _ = writeln!(
                out,
                "vuoro_waiting{{site=\"{}\",service=\"{}\"}} {}",
                s.id,
                svc.id,
                core.engine.waiting(&s.id, &svc.id)
            );
        }
    }
    out.push_str("# HELP vuoro_eta_minutes Estimated wait for a new ticket.\n# TYPE vuoro_eta_minutes gauge\n");
    for s in &app.hall().sites {
        for svc in &s.services {
            let w = core.engine.waiting(&s.id, &svc.id);
            if let Some(eta) = core.engine.eta_minutes(&s.id, &svc.id, w) {
                let _ = writeln!(
                    out,
                    "vuoro_eta_minutes{{site=\"{}\",service=\"{}\"}} {eta}",
                    s.id, svc.id
                );
            }
        }
    }
    out.push_str("# HELP vuoro_queue_longest_wait_seconds Longest current wait.\n# TYPE vuoro_queue_longest_wait_seconds gauge\n");
    for s in &app.hall().sites {
        for svc in &s.services {
            let _ = writeln!(
                out,
                "vuoro_queue_longest_wait_seconds{{site=\"{}\",service=\"{}\"}} {}",
                s.id,
                svc.id,
                core.engine.longest_wait(&s.id, &svc.id, now)
            );
        }
    }
    alerting_figures(&mut out, &app, &core, now);
    let _ = writeln!(
        out,
        "# HELP vuoro_ws_clients Connected WebSocket clients.\n# TYPE vuoro_ws_clients gauge\nvuoro_ws_clients {}",
        core.hub.client_count()
    );
    drop(core);
    let _ = writeln!(
        out,
        "# HELP vuoro_events_total Events committed since start.\n# TYPE vuoro_events_total counter\nvuoro_events_total {}",
        app.shared.events_total.load(Ordering::Relaxed)
    );
    let _ = writeln!(
        out,
        "# HELP vuoro_commits_total Transactions that committed events (each a group of commands).\n# TYPE vuoro_commits_total counter\nvuoro_commits_total {}",
        app.shared.commits_total.load(Ordering::Relaxed)
    );
    store_and_disk_figures(&mut out, &app);
    let _ = writeln!(
        out,
        "# HELP vuoro_last_seq Latest committed event.\n# TYPE vuoro_last_seq gauge\nvuoro_last_seq {}",
        app.shared.last_seq.load(Ordering::Relaxed)
    );
    let _ = writeln!(
        out,
        "# HELP vuoro_after_commit_seq Latest event each post-commit consumer has handled (vuoro_last_seq less this is how far it lags).\n# TYPE vuoro_after_commit_seq gauge"
    );
    for (consumer, seq) in app.shared.after_commit.reached() {
        let _ = writeln!(
            out,
            "vuoro_after_commit_seq{{consumer=\"{consumer}\"}} {seq}"
        );
    }
    let _ = writeln!(
        out,
        "# HELP vuoro_startup_seconds Time from start to ready.\n# TYPE vuoro_startup_seconds gauge\nvuoro_startup_seconds {}",
        app.startup_ms.load(Ordering::Relaxed) as f64 / 1000.0
    );
    // Scheduled backups (`[backup]`): absent when none are configured; 0 until the first succeeds.
    if app.deployment.backup.is_some() {
        let _ = writeln!(
            out,
            "# HELP vuoro_backup_last_success_timestamp_seconds When the last scheduled backup succeeded (Unix time; 0: none yet).\n# TYPE vuoro_backup_last_success_timestamp_seconds gauge\nvuoro_backup_last_success_timestamp_seconds {}",
            app.backup_last_success.load(Ordering::Relaxed)
        );
    }
    out.push_str(&notices);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}

/// The hall's figures the alerting rules and the dashboard in `monitoring/` read, from the read model:
/// each service's target wait, whether each site is open, tickets issued and served today, each
/// printer's status and each configured display's connection and rendering.
fn alerting_figures(
    out: &mut String,
    app: &App,
    core: &crate::core::Core,
    now: chrono::DateTime<Utc>,
) {
    out.push_str("# HELP vuoro_queue_target_wait_seconds The service's target for the longest wait.\n# TYPE vuoro_queue_target_wait_seconds gauge\n");
    for s in &app.hall().sites {
        for svc in &s.services {
            let target = u64::from(svc.target_wait_minutes) * 60;
            let _ = writeln!(
                out,
                "vuoro_queue_target_wait_seconds{{site=\"{}\",service=\"{}\"}} {target}",
                s.id, svc.id
            );
        }
    }
    out.push_str("# HELP vuoro_site_open Whether the site is open now by its opening hours (1) or closed (0).\n# TYPE vuoro_site_open gauge\n");
    for s in &app.hall().sites {
        let open = u8::from(s.opening(None, now).open);
        let _ = writeln!(out, "vuoro_site_open{{site=\"{}\"}} {open}", s.id);
    }
    out.push_str("# HELP vuoro_tickets_issued_today Tickets issued at the site today (from zero each day).\n# TYPE vuoro_tickets_issued_today gauge\n");
    for s in &app.hall().sites {
        let issued = core
            .engine
            .site_state(&s.id)
            .map_or(0, |st| st.tickets.len());
        let _ = writeln!(
            out,
            "vuoro_tickets_issued_today{{site=\"{}\"}} {issued}",
            s.id
        );
    }
    out.push_str("# HELP vuoro_tickets_served_today Tickets served per service today (from zero each day).\n# TYPE vuoro_tickets_served_today gauge\n");
    for s in &app.hall().sites {
        let Some(st) = core.engine.site_state(&s.id) else {
            continue;
        };
        for svc in &s.services {
            let served = st.services.get(&svc.id).map_or(0, |x| x.served_today);
            let _ = writeln!(
                out,
                "vuoro_tickets_served_today{{site=\"{}\",service=\"{}\"}} {served}",
                s.id, svc.id
            );
        }
    }
    // A state set: 1 for the status a printer last reported, 0 for the others, so that a rule can
    // watch one status and a graph shows when it changed.
    const PRINTER_STATUSES: [&str; 6] = [
        "online",
        "paper_low",
        "paper_out",
        "cover_open",
        "no_confirmation",
        "offline",
    ];
    out.push_str("# HELP vuoro_printer_status The status a printing device last reported (1 for that status, 0 for the others).\n# TYPE vuoro_printer_status gauge\n");
    for s in &app.hall().sites {
        let Some(st) = core.engine.site_state(&s.id) else {
            continue;
        };
        for (dev, p) in &st.printers {
            let unknown =
                (!PRINTER_STATUSES.contains(&p.status.as_str())).then_some(p.status.as_str());
            for status in PRINTER_STATUSES.into_iter().chain(unknown) {
                let _ = writeln!(
                    out,
                    "vuoro_printer_status{{site=\"{}\",device=\"{}\",status=\"{}\"}} {}",
                    s.id,
                    Escaped(dev.as_str()),
                    Escaped(status),
                    u8::from(status == p.status)
                );
            }
        }
    }
    // A display is connected while its status is `online` or `frozen` (its socket is open); `frozen`
    // says that its page stopped reporting that it renders.
    let mut displays = Vec::new();
    let hall = app.hall();
    for s in &hall.sites {
        let st = core.engine.site_state(&s.id);
        for d in &s.displays {
            let status = st
                .and_then(|st| st.displays.get(&d.id))
                .map(|x| x.status.as_str());
            displays.push((&s.id, &d.id, status));
        }
    }
    out.push_str("# HELP vuoro_display_online Whether each configured hall display is connected (1) or not (0).\n# TYPE vuoro_display_online gauge\n");
    for (site, id, status) in &displays {
        let connected = matches!(status, Some(displays::ONLINE | displays::FROZEN));
        let _ = writeln!(
            out,
            "vuoro_display_online{{site=\"{}\",display=\"{}\"}} {}",
            site,
            Escaped(id),
            u8::from(connected)
        );
    }
    out.push_str("# HELP vuoro_display_frozen Whether each configured hall display is connected but its page stopped reporting that it renders (1) or not (0).\n# TYPE vuoro_display_frozen gauge\n");
    for (site, id, status) in &displays {
        let _ = writeln!(
            out,
            "vuoro_display_frozen{{site=\"{}\",display=\"{}\"}} {}",
            site,
            Escaped(id),
            u8::from(*status == Some(displays::FROZEN))
        );
    }
}

/// The store's failed commits and the room on the data disk.
fn store_and_disk_figures(out: &mut String, app: &App) {
    let _ = writeln!(
        out,
        "# HELP vuoro_store_commit_failures_total Transactions that failed to commit (their commands were refused).\n# TYPE vuoro_store_commit_failures_total counter\nvuoro_store_commit_failures_total {}",
        app.shared.commit_failures_total.load(Ordering::Relaxed)
    );
    if let Some(free) = app.disk.free() {
        let _ = writeln!(
            out,
            "# HELP vuoro_disk_free_bytes Free bytes on the data folder's file system.\n# TYPE vuoro_disk_free_bytes gauge\nvuoro_disk_free_bytes {free}"
        );
    }
    let _ = writeln!(
        out,
        "# HELP vuoro_disk_alert_threshold_bytes Below this much free space supervisors are alerted and speech stops (server.disk_alert_free_mb).\n# TYPE vuoro_disk_alert_threshold_bytes gauge\nvuoro_disk_alert_threshold_bytes {}",
        app.disk.alert_below
    );
}

/// A label value as the text format wants it: backslash, double quote and line feed escaped.
struct Escaped<'a>(&'a str);

impl std::fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for c in self.0.chars() {
            match c {
                '\\' => f.write_str("\\\\")?,
                '"' => f.write_str("\\\"")?,
                '\n' => f.write_str("\\n")?,
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Escaped;

    #[test]
    fn label_values_are_escaped_for_the_text_format() {
        assert_eq!(
            Escaped("hall \"A\"\\1\nx").to_string(),
            "hall \\\"A\\\"\\\\1\\nx"
        );
        assert_eq!(Escaped("kiosk-1").to_string(), "kiosk-1");
    }
}
