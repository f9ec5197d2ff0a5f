//! `vuoro agent`: the print agent on a kiosk PC. It connects to the daemon's WebSocket as the kiosk
//! device, receives that kiosk's print jobs, prints them on the local printer (USB device file, serial
//! device or plain file), and answers each job's outcome and the printer's status. It reconnects by itself.

use std::time::Duration;

use anyhow::Context;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use vuoro_print::{Connection, Fault, JobOutcome, Printer, PrinterSettings, TicketPrint};
use vuoro_protocol::{ClientMsg, ErrorCode, PrinterState, Topic};

/// What the daemon sends an agent: the socket's control messages and the `device:` topic's snapshot and
/// events (crates/vuoro-protocol/asyncapi.json).
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Incoming {
    Snapshot,
    Event { event: DeviceEvent },
    Heartbeat,
    Pong,
    Error { code: ErrorCode, message: String },
}

/// The `device:` topic's events.
#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum DeviceEvent {
    PrintJob { job: u64, layout: Box<TicketPrint> },
    PrinterStatus,
}

pub struct AgentArgs {
    pub server: String,
    pub device: String,
    pub token: String,
    pub settings: PrinterSettings,
}

pub fn settings(
    printer: &str,
    code_page: &str,
    esc_t: Option<u8>,
    width: u32,
    qr: bool,
) -> anyhow::Result<PrinterSettings> {
    let mut s =
        PrinterSettings::new(Connection::parse(printer)?).with_code_page(code_page.parse()?);
    if let Some(n) = esc_t {
        s.esc_t = n;
    }
    s.width = width.try_into()?;
    s.qr = qr;
    Ok(s)
}

fn status_word(p: &mut Printer) -> PrinterState {
    let st = p.status();
    match st.fault() {
        Some(vuoro_print::Fault::PaperOut) => PrinterState::PaperOut,
        Some(vuoro_print::Fault::CoverOpen) => PrinterState::CoverOpen,
        Some(_) => PrinterState::Offline,
        None if st.paper_near_end => PrinterState::PaperLow,
        None => PrinterState::Online,
    }
}

fn message(m: &ClientMsg) -> Message {
    Message::text(serde_json::to_string(m).expect("a client message serializes"))
}

/// Runs until the process is stopped: connect, serve jobs, reconnect with jittered back-off.
pub async fn run(args: AgentArgs) -> anyhow::Result<()> {
    let printer = std::sync::Arc::new(std::sync::Mutex::new(Printer::new(args.settings.clone())));
    let mut attempt = 0u32;
    loop {
        match session(&args, &printer).await {
            Ok(()) => attempt = 0,
            Err(e) => tracing::warn!(error = %format!("{e:#}"), "agent connection ended"),
        }
        attempt = (attempt + 1).min(6);
        let base = 500u64 << attempt;
        let jitter = u64::from(std::process::id() ^ attempt) % base.max(1);
        tokio::time::sleep(Duration::from_millis(base / 2 + jitter)).await;
    }
}

async fn session(
    args: &AgentArgs,
    printer: &std::sync::Arc<std::sync::Mutex<Printer>>,
) -> anyhow::Result<()> {
    let url = args.server.trim_end_matches('/').replacen("http", "ws", 1) + "/api/v1/ws";
    let mut req = url.as_str().into_client_request()?;
    req.headers_mut()
        .insert("Authorization", format!("Bearer {}", args.token).parse()?);
    let (ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .with_context(|| format!("connect {url}"))?;
    let (mut sink, mut stream) = ws.split();
    sink.send(message(&ClientMsg::Subscribe {
        topic: Topic::Device(args.device.clone()),
        after: None,
    }))
    .await?;
    tracing::info!(%url, device = %args.device, "agent connected");
    let mut status_tick = tokio::time::interval(Duration::from_secs(30));
    loop {
        tokio::select! {
            m = stream.next() => {
                let Some(m) = m else { return Ok(()) };
                let Message::Text(text) = m? else { continue };
                let (job, ticket) = match serde_json::from_str::<Incoming>(&text) {
                    Ok(Incoming::Event { event: DeviceEvent::PrintJob { job, layout } }) => (job, layout),
                    Ok(Incoming::Error { code, message }) => anyhow::bail!("daemon refused ({code:?}): {message}"),
                    Ok(_) => continue,
                    Err(e) => {
                        tracing::warn!(error = %e, message = %text, "a message the protocol does not describe");
                        continue;
                    }
                };
                let p = printer.clone();
                let outcome = tokio::task::spawn_blocking(move || p.lock().expect("lock").print_ticket(&ticket)).await?;
                let outcome = outcome.unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "print failed");
                    JobOutcome::Failed(Fault::Offline)
                });
                tracing::info!(job, outcome = ?outcome, "printed");
                let outcome = serde_json::to_value(outcome)?;
                sink.send(message(&ClientMsg::PrintResult { job, outcome })).await?;
            }
            _ = status_tick.tick() => {
                let p = printer.clone();
                let status = tokio::task::spawn_blocking(move || status_word(&mut p.lock().expect("lock"))).await?;
                sink.send(message(&ClientMsg::PrinterStatus { status })).await?;
            }
        }
    }
}
