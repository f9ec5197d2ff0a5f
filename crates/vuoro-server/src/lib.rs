//! Vuoro's daemon: the HTTP API, the WebSocket hub, authentication and the web clients, around the engine
//! (vuoro-engine) and the store (vuoro-store).
//!
//! `serve` takes settings, a bound listener and a shutdown future: production binds the configured
//! address, tests bind port 0.

pub mod admin;
pub mod after_commit;
pub mod api;
pub mod audio;
pub mod auth;
pub mod backup;
pub mod config;
pub mod conn;
pub mod core;
pub mod deployment;
pub mod disk;
pub mod displays;
pub mod error;
pub mod guard;
pub mod hub;
mod json_object;
pub mod live_config;
mod metrics;
pub mod notify;
pub mod oidc;
pub mod printing;
pub mod reports;
pub mod web;
pub mod ws;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use vuoro_engine::config::Hall;

use crate::deployment::Deployment;
use vuoro_engine::{Actor, Command, Engine, Ticket};

use crate::auth::Auth;
use crate::core::{Shared, Writer};
use crate::hub::Hub;

pub struct Settings {
    /// The hall and the deployment, read from one file by [`config::load`].
    pub config: config::Config,
    pub data_dir: PathBuf,
    /// A file to append every WebSocket message the daemon sends to, one JSON a line (the test suites
    /// check the record against the AsyncAPI document); None in production.
    pub record_ws: Option<PathBuf>,
    /// Told once the store is open, the state replayed and the listener about to accept: the `vuoro`
    /// command tells systemd READY=1 then. None when nobody waits.
    pub ready: Option<tokio::sync::oneshot::Sender<()>>,
}

/// Everything a request handler needs.
pub struct App {
    pub deployment: Arc<Deployment>,
    pub shared: Arc<Shared>,
    pub writer: Writer,
    pub auth: Auth,
    /// The request checks' knowledge: own origin, trusted origins and proxies, published tokens.
    pub guard: Arc<guard::Guard>,
    pub public_url: String,
    pub data_dir: PathBuf,
    pub ready: AtomicBool,
    pub started: Instant,
    /// Phone joins per client address: 5 at once, then one every 2 minutes (5 in 10 minutes).
    remote_joins: governor::DefaultKeyedRateLimiter<IpAddr>,
    /// Changes of the config, one at a time (live_config.rs).
    pub config_changes: tokio::sync::Mutex<()>,
    /// Enrolment code attempts per client address: 10 at once, then one a minute.
    pub device_enrolments: governor::DefaultKeyedRateLimiter<IpAddr>,
    /// Print outcome per ticket id, for the kiosk's answer and reprints.
    pub print_status: Mutex<HashMap<u64, Value>>,
    pub shutdown: tokio::sync::watch::Sender<bool>,
    pub printing: printing::Printing,
    pub startup_ms: AtomicU64,
    pub audio: Arc<audio::Audio>,
    pub disk: disk::Disk,
    /// Password checks under way at most (argon2 holds 19 MiB each), and how many wait for one.
    pub password_checks: Arc<tokio::sync::Semaphore>,
    pub password_queue: AtomicU64,
    /// Speech renders per kiosk device.
    pub speech_limit: governor::DefaultKeyedRateLimiter<vuoro_engine::DeviceId>,
    /// The hall displays' connections and rendering reports, for their status (displays.rs).
    pub displays: displays::Displays,
    /// Where sent WebSocket messages are recorded (`Settings::record_ws`).
    pub ws_record: Option<ws::Record>,
    /// When the last scheduled backup succeeded (Unix seconds; 0: none yet).
    pub backup_last_success: Arc<AtomicU64>,
    /// Notices by SMS and e-mail, when `[notify]` is configured.
    pub notices: Option<Arc<notify::Notices>>,
    /// Single sign-on: the `[[oidc]]` issuers and the sign-ins under way.
    pub oidc: oidc::Oidc,
}

/// The customer's view of a ticket with what only its holder gets: docs/api.md, `Ticket`.
#[derive(serde::Serialize)]
pub struct TicketAnswer<'a> {
    #[serde(flatten)]
    pub view: vuoro_engine::view::TicketView,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<&'a str>,
    pub track_url: String,
    pub print: Value,
}

impl App {
    /// A command through the writer: answered after commit.
    pub async fn submit(
        &self,
        cmd: Command,
        actor: Actor,
    ) -> Result<vuoro_engine::Outcome, error::ApiError> {
        self.writer.submit(cmd, actor).await
    }

    /// The hall in force (it changes with `PUT /api/v1/admin/config`).
    pub fn hall(&self) -> Arc<Hall> {
        self.shared.hall()
    }

    pub fn track_url(&self, token: &str) -> String {
        format!("{}/kiosk/track.html#t={token}", self.public_url)
    }

    /// The customer's ticket as JSON, without its token (that is only ever in the answer to the kiosk
    /// that issued it: `api::issue`).
    pub fn ticket_json(&self, engine: &Engine, t: &Ticket) -> Value {
        let answer = TicketAnswer {
            view: engine.ticket_view(t, None),
            token: None,
            track_url: self.track_url(&t.token),
            print: self.print_status(t.id),
        };
        serde_json::to_value(answer).unwrap_or_default()
    }

    /// The last print outcome of a ticket (`none` when it was never printed).
    pub fn print_status(&self, ticket: vuoro_engine::TicketId) -> Value {
        self.print_status
            .lock()
            .expect("lock")
            .get(&ticket)
            .cloned()
            .unwrap_or_else(|| json!({"status": "none", "fault": null}))
    }

    /// The client's address (see `Guard::client_ip`).
    pub fn client_ip(&self, peer: std::net::SocketAddr, headers: &axum::http::HeaderMap) -> IpAddr {
        self.guard.client_ip(peer, headers)
    }

    /// `; Secure` for session cookies when the daemon is reached over https.
    pub fn cookie_secure(&self) -> &'static str {
        if self.public_url.starts_with("https://") {
            "; Secure"
        } else {
            ""
        }
    }

    /// At most 5 remote joins per client address in 10 minutes.
    pub fn remote_join_allowed(&self, ip: IpAddr) -> bool {
        self.remote_joins.check_key(&ip).is_ok()
    }
}

/// Refuses to serve the demo, or a user with the demo password, beyond loopback, and every address
/// without a public URL.
async fn refuse_unsafe(cfg: &Arc<Deployment>, addr: std::net::SocketAddr) -> anyhow::Result<()> {
    if !addr.ip().is_loopback() {
        if cfg.server.demo {
            anyhow::bail!(
                "the demo configuration (demo users and devices) is refused on {addr}: listen on 127.0.0.1 or use a real configuration"
            );
        }
        let cfg2 = cfg.clone();
        let demo_user = tokio::task::spawn_blocking(move || {
            cfg2.users
                .iter()
                .find(|u| auth::verify_password(&u.password_hash, "demo"))
                .map(|u| u.username.clone())
        })
        .await?;
        if let Some(u) = demo_user {
            anyhow::bail!("user '{u}' has the demo password; it is refused on {addr}");
        }
    }
    if addr.ip().is_unspecified() && cfg.server.public_url.is_none() {
        anyhow::bail!(
            "listening on {addr} (every address) needs server.public_url: the tracking links and QR codes \
             on tickets must name an address phones can reach, and http://{addr} is none"
        );
    }
    Ok(())
}

/// Loads the state (snapshot + later events), starts the writer and serves until `shutdown` resolves.
pub async fn serve(
    settings: Settings,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let t0 = Instant::now();
    let addr = listener.local_addr()?;
    refuse_unsafe(&settings.config.deployment, addr).await?;
    let file_text = settings.config.text.clone();
    std::fs::create_dir_all(&settings.data_dir)
        .with_context(|| format!("cannot create {}", settings.data_dir.display()))?;
    // Held until serve returns: a second daemon, or a restore, on this folder is refused meanwhile.
    let _lock = backup::lock_data_dir(&settings.data_dir)?;
    let db = settings.data_dir.join(backup::DB_FILE);
    let store = vuoro_store::open(&db).with_context(|| format!("cannot open {}", db.display()))?;
    // The config in force: the file's, or a later change made through the admin console or API.
    let (config_version, config) = live_config::at_start(&*store, settings.config)?;
    let cfg = config.deployment.clone();
    let hall = config.hall.clone();
    if config.text != file_text {
        refuse_unsafe(&cfg, addr).await?;
    }
    let mut loaded = store.load()?;
    let now = Utc::now();
    let mut engine = match loaded.snapshot.take() {
        Some((_, state)) => Engine::from_snapshot(hall.clone(), state, now),
        None => Engine::new(hall.clone(), now),
    };
    let replayed = loaded.events.len();
    for ev in &loaded.events {
        if ev.seq != engine.last_seq() + 1 {
            anyhow::bail!(
                "event log has a gap at {} (state at {})",
                ev.seq,
                engine.last_seq()
            );
        }
        engine.apply(ev);
    }
    drop(loaded);
    let last_seq = engine.last_seq();
    let speech = audio::Audio::new(settings.data_dir.join("audio"));
    let shared = Arc::new(Shared {
        config: std::sync::RwLock::new((config_version, config)),
        core: Mutex::new(core::Core {
            engine: engine.clone(),
            hub: Hub::new(last_seq),
        }),
        last_seq: AtomicU64::new(last_seq),
        events_total: AtomicU64::new(0),
        commits_total: AtomicU64::new(0),
        commit_failures_total: AtomicU64::new(0),
        after_commit: Arc::new(after_commit::Stage::new(store.clone())),
    });
    // Audio announces calls committed from now on: none from before a restart.
    shared.after_commit.register(
        "audio",
        last_seq,
        audio::Announcer::new(speech.clone(), hall.clone(), &shared),
    );
    // Notices are decided from committed events only, after the seq their decider recorded (the first
    // time: from now on).
    let notices = match cfg.notify.clone() {
        Some(n) => Some(notify::Notices::start(
            n,
            store.clone(),
            shared.clone(),
            last_seq,
        )?),
        None => {
            // Notices switched off: no contact or pending address is kept for a later start.
            let (contacts, pending) = store.forget_all_addresses(
                "notices are switched off ([notify] is not in the config)",
                now,
            )?;
            if contacts + pending > 0 {
                tracing::info!(
                    contacts,
                    pending,
                    "notices are off: contacts and pending notices forgotten"
                );
            }
            None
        }
    };
    let writer = core::start_writer(store.clone(), engine, shared.clone());
    let public_url = cfg
        .server
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));
    let (shutdown_tx, _) = tokio::sync::watch::channel(false);
    let printing = printing::Printing::new(&cfg, &settings.data_dir);
    let ws_record = settings
        .record_ws
        .as_deref()
        .map(ws::Record::open)
        .transpose()?;
    let oidc = oidc::Oidc::new(&cfg)?;
    let app = Arc::new(App {
        oidc,
        notices,
        ws_record,
        backup_last_success: Arc::new(AtomicU64::new(0)),
        auth: Auth::new(&cfg, store.clone())?,
        guard: Arc::new(guard::Guard::new(&cfg, &public_url)),
        deployment: cfg.clone(),
        shared,
        writer,
        public_url,
        data_dir: settings.data_dir.clone(),
        ready: AtomicBool::new(false),
        started: Instant::now(),
        config_changes: tokio::sync::Mutex::new(()),
        device_enrolments: governor::RateLimiter::keyed(
            governor::Quota::with_period(Duration::from_secs(60))
                .expect("not zero")
                .allow_burst(std::num::NonZeroU32::new(10).expect("not zero")),
        ),
        remote_joins: governor::RateLimiter::keyed(
            governor::Quota::with_period(Duration::from_secs(120))
                .expect("not zero")
                .allow_burst(std::num::NonZeroU32::new(5).expect("not zero")),
        ),
        print_status: Mutex::new(HashMap::new()),
        shutdown: shutdown_tx,
        printing,
        startup_ms: AtomicU64::new(0),
        displays: displays::Displays::new(&cfg.server),
        audio: speech.clone(),
        password_checks: Arc::new(tokio::sync::Semaphore::new(2)),
        password_queue: AtomicU64::new(0),
        disk: disk::Disk::new(&settings.data_dir, cfg.server.disk_alert_free_mb),
        speech_limit: governor::RateLimiter::keyed(
            governor::Quota::per_minute(std::num::NonZeroU32::new(120).expect("not zero"))
                .allow_burst(std::num::NonZeroU32::new(200).expect("not zero")),
        ),
    });
    // Roll days over at local midnight and raise long-wait alerts even when nobody does anything (the
    // engine's tick), keep an eye on the disk, and forget expired sessions.
    {
        let app = app.clone();
        let mut stop = app.shutdown.subscribe();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(30));
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop.changed() => break,
                }
                let _ = app.submit(Command::Tick, Actor::system()).await;
                api::check_disk(&app).await;
                // Rate limits forget addresses and kiosks that have been quiet long enough.
                app.remote_joins.retain_recent();
                app.device_enrolments.retain_recent();
                app.auth.store_devices_seen();
                app.speech_limit.retain_recent();
                app.auth.purge_sessions();
                // Estimates shrink with time too: "your turn is near" is looked at again.
                if let Some(n) = app.notices.clone() {
                    let _ = tokio::task::spawn_blocking(move || n.sweep()).await;
                }
            }
        });
    }
    // Heartbeats for clients that heard nothing for a while (one timer here, none per connection).
    {
        let app = app.clone();
        let mut stop = app.shutdown.subscribe();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(hub::HEARTBEAT_IDLE);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop.changed() => break,
                }
                let seq = app.shared.last_seq.load(Ordering::Acquire);
                let text = vuoro_protocol::ServerMsg::Heartbeat { seq }.to_json();
                let core = app.shared.core.lock().expect("lock");
                core.hub.heartbeat(text.into(), hub::HEARTBEAT_IDLE);
            }
        });
    }
    // Hall displays whose pages stopped rendering (one timer for every display).
    if app.hall().sites.iter().any(|s| !s.displays.is_empty()) {
        tokio::spawn(displays::watch(app.clone()));
    }
    if let Some(backups) = cfg.backup.clone() {
        tokio::spawn(backup::run_scheduled(
            backups,
            store.clone(),
            app.backup_last_success.clone(),
            app.shutdown.subscribe(),
        ));
    }
    tokio::spawn(printing::poll(app.clone()));
    tokio::spawn(printing::report_in_order(app.clone()));
    let router = api::router(app.clone()).merge(audio::router(speech));
    let router = reports::attach(router, &app, store)?.layer(axum::middleware::from_fn_with_state(
        app.guard.clone(),
        guard::check,
    ));
    app.ready.store(true, Ordering::Release);
    let ms = t0.elapsed().as_millis() as u64;
    app.startup_ms.store(ms, Ordering::Relaxed);
    tracing::info!(%addr, replayed, last_seq, startup_ms = ms, "ready");
    if let Some(ready) = settings.ready {
        let _ = ready.send(());
    }
    let app2 = app.clone();
    let shutdown = async move {
        shutdown.await;
        // WebSocket tasks end on this signal, so the graceful shutdown does not wait for them forever.
        let _ = app2.shutdown.send(true);
    };
    let nofile = conn::raise_open_files_limit();
    // Some files stay open besides sockets: the database, its WAL, logs, speech files being written.
    let fd_room = (nofile as usize).saturating_sub(64).max(16);
    let limits = conn::Limits {
        total: cfg.server.max_connections.unwrap_or(fd_room).min(fd_room),
        per_address: cfg.server.max_connections_per_address,
        reserve: 32,
        header_timeout: Duration::from_secs(cfg.server.header_timeout_seconds.max(1)),
        trusted_proxies: cfg.server.trusted_proxies.clone(),
    };
    tracing::info!(
        max_connections = limits.total,
        per_address = limits.per_address,
        "connection limits"
    );
    conn::serve(listener, router, conn::Gate::new(limits), shutdown).await?;
    // Every command acknowledged is committed; the last snapshot is written before serve returns, and the
    // post-commit stage has handled every committed event.
    app.writer.stop().await;
    let stage = app.shared.after_commit.clone();
    let _ = tokio::task::spawn_blocking(move || stage.stop()).await;
    if let Some(n) = app.notices.clone() {
        let _ = tokio::task::spawn_blocking(move || n.stop()).await;
    }
    Ok(())
}
