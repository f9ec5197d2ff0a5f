//! `GET /metrics`: Prometheus text exposition of queue lengths, waits, clients and printers.

use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;

use crate::App;

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
    let mut out = String::with_capacity(4096);
    let core = app.shared.core.lock().expect("lock");
    out.push_str("# HELP vuoro_waiting Tickets waiting per service.\n# TYPE vuoro_waiting gauge\n");
    for s in &app.hall.sites {
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
    for s in &app.hall.sites {
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
    out.push_str("# HELP vuoro_longest_wait_seconds Longest current wait.\n# TYPE vuoro_longest_wait_seconds gauge\n");
    for s in &app.hall.sites {
        for svc in &s.services {
            let _ = writeln!(
                out,
                "vuoro_longest_wait_seconds{{site=\"{}\",service=\"{}\"}} {}",
                s.id,
                svc.id,
                core.engine.longest_wait(&s.id, &svc.id, now)
            );
        }
    }
    out.push_str("# HELP vuoro_printer_up Printer status is online (1) or faulty (0).\n# TYPE vuoro_printer_up gauge\n");
    for s in &app.hall.sites {
        if let Some(st) = core.engine.site_state(&s.id) {
            for (dev, p) in &st.printers {
                let up = u8::from(p.status == "online" || p.status == "paper_low");
                let _ = writeln!(
                    out,
                    "vuoro_printer_up{{site=\"{}\",printer=\"{dev}\",status=\"{}\"}} {up}",
                    s.id, p.status
                );
            }
        }
    }
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
        "# HELP vuoro_startup_ms Time from start to ready.\n# TYPE vuoro_startup_ms gauge\nvuoro_startup_ms {}",
        app.startup_ms.load(Ordering::Relaxed)
    );
    // Scheduled backups (`[backup]`): absent when none are configured; 0 until the first succeeds.
    if app.deployment.backup.is_some() {
        let _ = writeln!(
            out,
            "# HELP vuoro_backup_last_success_timestamp_seconds When the last scheduled backup succeeded (Unix time; 0: none yet).\n# TYPE vuoro_backup_last_success_timestamp_seconds gauge\nvuoro_backup_last_success_timestamp_seconds {}",
            app.backup_last_success.load(Ordering::Relaxed)
        );
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}
