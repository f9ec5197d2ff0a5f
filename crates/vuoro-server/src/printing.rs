//! Printing issued tickets on the kiosk's printer.
//!
//! Network (TCP 9100), device-file and virtual printers are driven by the daemon itself, one job at a time
//! per printer, off the async threads. A printer attached to a kiosk PC is driven by `vuoro agent` there:
//! the daemon sends the job on the `device:{kiosk}` topic and waits (bounded) for the agent's result.
//! Either way the ticket is already committed: a failed print never loses it and never issues it twice,
//! and a failed job is dropped, never printed later by surprise.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use vuoro_engine::config::{Site, text_in};

use crate::deployment::{Deployment, Device, DevicePrinter};
use vuoro_engine::view::customer_service_name;
use vuoro_engine::{Actor, Command, Engine, Ticket};
use vuoro_print::{Connection, JobOutcome, Printer, TicketPrint};

use crate::App;

/// How long the daemon waits for a kiosk agent's result.
const AGENT_TIMEOUT: Duration = Duration::from_secs(8);

/// Where a device's tickets are printed.
#[derive(Clone)]
pub enum Route {
    Direct(Arc<Mutex<Printer>>),
    Agent,
}

#[derive(Default)]
pub struct Printing {
    routes: HashMap<vuoro_engine::DeviceId, Route>,
    waiting: Mutex<HashMap<u64, oneshot::Sender<Value>>>,
    next_job: AtomicU64,
    /// Printer statuses from print jobs, reported in the order the jobs ended (`report_in_order`), off
    /// the kiosk's answer.
    statuses: Mutex<Option<tokio::sync::mpsc::UnboundedSender<(Device, String)>>>,
}

/// Where a device's print jobs go: a printer the daemon drives, or the device's `vuoro agent`.
fn route(device: &Device, data_dir: &std::path::Path) -> Option<Route> {
    match device.printer.as_ref()? {
        DevicePrinter::Agent => Some(Route::Agent),
        DevicePrinter::Direct(settings) => {
            let mut settings = settings.clone();
            if let Connection::Virtual { dir } = &settings.connection
                && dir.is_relative()
            {
                settings.connection = Connection::Virtual {
                    dir: data_dir.join(dir),
                };
            }
            Some(Route::Direct(Arc::new(Mutex::new(Printer::new(settings)))))
        }
    }
}

impl Printing {
    pub fn new(cfg: &Deployment, data_dir: &std::path::Path) -> Printing {
        let mut routes = HashMap::new();
        for d in &cfg.devices {
            if let Some(r) = route(d, data_dir) {
                routes.insert(d.id.clone(), r);
            }
        }
        Printing {
            routes,
            ..Printing::default()
        }
    }

    pub fn has_printer(&self, device: &str) -> bool {
        self.routes.contains_key(device)
    }

    /// An agent's result for a job it was sent.
    pub fn complete(&self, job: u64, outcome: Value) -> bool {
        match self.waiting.lock().expect("lock").remove(&job) {
            Some(tx) => tx.send(outcome).is_ok(),
            None => false,
        }
    }
}

/// What goes on the paper, in the ticket's language with Finnish beside it.
pub fn ticket_print(app: &App, engine: &Engine, site: &Site, t: &Ticket) -> TicketPrint {
    let lang = t.lang.as_str();
    let dl = site.default_language();
    // Where to wait: the zone (area) of the counters serving the service.
    let zone = site
        .counters
        .iter()
        .find(|c| c.services.iter().any(|s| s.service == t.service))
        .and_then(|c| c.zone.as_deref())
        .and_then(|z| site.zones.iter().find(|x| x.id == z));
    let hint = |l: &str| {
        zone.map(|z| text_in(&z.name, l, dl).to_string())
            .unwrap_or_default()
    };
    // The same forecast as the kiosk's screen and the phone page: people ahead across everything the
    // ticket's counters call first, and no minutes when none of them is open.
    let view = engine.ticket_view(t, None);
    let local = t.issued_at.with_timezone(&site.tz());
    TicketPrint {
        site_name: text_in(&site.name, lang, dl).to_string(),
        number: t.number.clone(),
        service_name: customer_service_name(site, &t.service, lang).to_string(),
        wait_hint: hint(lang),
        people_ahead: view.position.unwrap_or(0),
        eta_minutes: view.eta_minutes,
        issued_at: local.format("%d.%m.%Y %H.%M").to_string(),
        track_url: app.track_url(&t.token),
        lang: t.lang.clone(),
        service_name_fi: (lang != "fi")
            .then(|| customer_service_name(site, &t.service, "fi").to_string()),
        wait_hint_fi: (lang != "fi").then(|| hint("fi")),
    }
}

/// Prints `ticket` on `device`'s printer and records the outcome (for the kiosk's answer), the printer's
/// status (for staff) and an alert on a fault. Returns the API's `print` object.
pub async fn print(app: &Arc<App>, device: &Device, ticket: u64) -> Value {
    let Some(route) = app.printing.routes.get(&device.id).cloned() else {
        return json!({"status": "none", "fault": null});
    };
    let job = {
        let core = app.shared.core.lock().expect("lock");
        let hall = app.hall();
        let Some(site) = hall.site(&device.site) else {
            return json!({"status": "none", "fault": null});
        };
        let Some(t) = core.engine.ticket(&site.id, ticket) else {
            return json!({"status": "none", "fault": null});
        };
        ticket_print(app, &core.engine, site, t)
    };
    app.print_status
        .lock()
        .expect("lock")
        .insert(ticket, json!({"status": "pending", "fault": null}));
    let outcome: Value = match route {
        Route::Direct(printer) => {
            let res = tokio::task::spawn_blocking(move || {
                printer.lock().expect("lock").print_ticket(&job)
            })
            .await;
            match res {
                Ok(Ok(o)) => json!(o),
                Ok(Err(e)) => {
                    tracing::warn!(device = %device.id, error = %e, "print job failed");
                    json!(JobOutcome::Failed(vuoro_print::Fault::Offline))
                }
                Err(_) => json!(JobOutcome::Failed(vuoro_print::Fault::Offline)),
            }
        }
        Route::Agent => send_to_agent(app, device, &job).await,
    };
    record(app, device, ticket, &outcome).await;
    outcome
}

async fn send_to_agent(app: &Arc<App>, device: &Device, job: &TicketPrint) -> Value {
    let offline = json!(JobOutcome::Failed(vuoro_print::Fault::Offline));
    let topic = vuoro_protocol::Topic::Device(device.id.to_string()).to_string();
    let id = app.printing.next_job.fetch_add(1, Ordering::Relaxed) + 1;
    let (tx, rx) = oneshot::channel();
    {
        let mut core = app.shared.core.lock().expect("lock");
        if !core.hub.has_subscribers(&topic) {
            return offline;
        }
        app.printing.waiting.lock().expect("lock").insert(id, tx);
        let seq = core.engine.last_seq();
        let msg = vuoro_protocol::TopicMsg::Event {
            topic: topic.clone(),
            seq,
            event: json!({"kind": "print_job", "job": id, "layout": job}),
        };
        core.hub
            .publish(&topic, seq, None, Utf8Bytes::from(msg.to_json()), false);
    }
    match tokio::time::timeout(AGENT_TIMEOUT, rx).await {
        Ok(Ok(v)) => v,
        _ => {
            app.printing.waiting.lock().expect("lock").remove(&id);
            json!(JobOutcome::Failed(vuoro_print::Fault::NoConfirmation))
        }
    }
}

/// The printer status word staff see, from a job's outcome.
fn status_of(outcome: &Value) -> &str {
    match (outcome["status"].as_str(), outcome["fault"].as_str()) {
        (Some("printed"), _) if outcome["near_end"] == true => "paper_low",
        (Some("printed"), _) => "online",
        (_, Some(f)) => f,
        _ => "offline",
    }
}

/// Keeps a job's outcome for the ticket and reports the printer's status from it, without holding the
/// kiosk's answer for that commit.
async fn record(app: &Arc<App>, device: &Device, ticket: u64, outcome: &Value) {
    app.print_status
        .lock()
        .expect("lock")
        .insert(ticket, outcome.clone());
    let queue = app.printing.statuses.lock().expect("lock").clone();
    let status = status_of(outcome).to_string();
    match queue {
        Some(q) if q.send((device.clone(), status.clone())).is_ok() => {}
        _ => report_status(app, device, &status).await,
    }
}

/// Reports the statuses print jobs leave behind, one after another in the order the jobs ended, so a
/// later status is never overtaken by an earlier one. Runs for the daemon's life.
pub async fn report_in_order(app: Arc<App>) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Device, String)>();
    *app.printing.statuses.lock().expect("lock") = Some(tx);
    let mut stop = app.shutdown.subscribe();
    loop {
        tokio::select! {
            next = rx.recv() => match next {
                Some((device, status)) => report_status(&app, &device, &status).await,
                None => break,
            },
            _ = stop.changed() => break,
        }
    }
}

/// A device's printer as its kiosk and staff see it: `{"status", "at"}` as last committed (null before
/// the first report), or null when the device has no printer.
pub fn printer_json(app: &App, device: &Device) -> Value {
    if device.printer.is_none() {
        return Value::Null;
    }
    let core = app.shared.core.lock().expect("lock");
    let st = core
        .engine
        .site_state(&device.site)
        .and_then(|st| st.printers.get(&device.id));
    json!({"status": st.map(|p| p.status.clone()), "at": st.map(|p| p.at)})
}

/// Records a printer's status (committed, so staff topics hear of it); the engine raises or clears the
/// device's printer alert in the same commit.
pub async fn report_status(app: &Arc<App>, device: &Device, status: &str) {
    let cmd = Command::PrinterStatus {
        site: device.site.clone(),
        device: device.id.clone(),
        status: status.into(),
        detail: None,
        alert: (status != "online").then(|| alert_message(&device_label(app, device), status)),
    };
    let _ = app.submit(cmd, Actor::device(&device.id)).await;
}

/// The device as staff know it: "kiosk-1 (sisäänkäynti)", its place in the site's first language.
fn device_label(app: &App, device: &Device) -> String {
    let hall = app.hall();
    let lang = hall
        .site(&device.site)
        .map_or("fi", |s| s.default_language());
    match vuoro_engine::config::text_in(&device.location, lang, "en") {
        "" => device.id.to_string(),
        place => format!("{} ({place})", device.id),
    }
}

/// A printer alert's words: the device, then the fault in a few words, then what to do, e.g. "kiosk-1: out
/// of paper. The printer is out of paper: load a new roll and close the cover." The staff screens word a
/// printer alert themselves from the device's status, in the screen's language; these English words are
/// for the API, logs and any client that does not know the status.
fn alert_message(device: &str, status: &str) -> String {
    use vuoro_print::Fault;
    let (fault, what_to_do) = match status {
        "paper_low" => ("paper running low", "Have a new roll ready."),
        "paper_out" => ("out of paper", Fault::PaperOut.staff_message()),
        "cover_open" => ("cover open", Fault::CoverOpen.staff_message()),
        "no_confirmation" => (
            "did not confirm printing",
            Fault::NoConfirmation.staff_message(),
        ),
        _ => ("offline", Fault::Offline.staff_message()),
    };
    format!("{device}: {fault}. {what_to_do}")
}

/// Polls the daemon-driven printers' status now and then, so staff see a fault before a customer does.
pub async fn poll(app: Arc<App>) {
    let mut stop = app.shutdown.subscribe();
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    tick.tick().await; // the first tick is immediate; the first poll comes after a minute
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => break,
        }
        for d in &app.deployment.devices {
            let Some(Route::Direct(p)) = app.printing.routes.get(&d.id).cloned() else {
                continue;
            };
            if let Ok(st) =
                tokio::task::spawn_blocking(move || p.lock().expect("lock").status()).await
            {
                let status = match st.fault() {
                    Some(f) => f.code(),
                    None if st.paper_near_end => "paper_low",
                    None => "online",
                };
                report_status(&app, d, status).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::alert_message;

    #[test]
    fn a_printer_alert_names_the_device_and_the_fault_first() {
        assert!(alert_message("kiosk-1", "paper_out").starts_with("kiosk-1: out of paper. "));
        assert!(alert_message("kiosk-2", "cover_open").starts_with("kiosk-2: cover open. "));
        assert!(alert_message("kiosk-1", "paper_low").starts_with("kiosk-1: paper running low. "));
        assert!(
            alert_message("kiosk-1", "no_confirmation")
                .starts_with("kiosk-1: did not confirm printing. ")
        );
        assert!(alert_message("kiosk-1", "offline").starts_with("kiosk-1: offline. "));
    }
}
