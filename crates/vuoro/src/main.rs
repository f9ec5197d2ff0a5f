//! The `vuoro` command. With no arguments it serves the embedded demo hall on 127.0.0.1:8080.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use vuoro_server::config::Config;

mod agent;
mod config_cmd;
mod enrol;
#[cfg(test)]
mod man;
mod systemd;

const DEMO_CONFIG: &str = include_str!("../../../config/demo.toml");

#[derive(Parser)]
#[command(
    name = "vuoro",
    version,
    about = "Queue-number ticketing and display system for public service halls"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    /// Log lines as plain text, or one JSON object per line (for log collectors).
    #[arg(long, global = true, env = "VUORO_LOG_FORMAT", default_value = "text")]
    log_format: LogFormat,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum ConfigAction {
    /// Write the config in force to FILE (and its version to FILE.version).
    Pull {
        #[command(flatten)]
        target: ConfigTarget,
        file: PathBuf,
    },
    /// Put FILE in force (checked like check-config; nothing changes when refused).
    Push {
        #[command(flatten)]
        target: ConfigTarget,
        file: PathBuf,
    },
}

#[derive(clap::Args)]
struct ConfigTarget {
    /// The daemon, e.g. https://vuoro.example.fi
    #[arg(long, env = "VUORO_SERVER")]
    server: String,
    /// An admin's username.
    #[arg(long, env = "VUORO_USER")]
    user: String,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the daemon (the default).
    Serve(ServeArgs),
    /// Check a config file; report each mistake with its line. Exit 1 on any mistake.
    CheckConfig { file: PathBuf },
    /// Print a sample ticket, for installers testing a printer. Exit 0 on a confirmed print (or a written
    /// file), otherwise exit 2 with the fault: paper out, cover open, offline, no confirmation.
    PrintSample {
        /// file:PATH, tcp:HOST:PORT or virtual:DIR
        #[arg(long)]
        printer: String,
        #[arg(long, default_value = "fi")]
        lang: String,
        #[arg(long, default_value_t = 80)]
        width: u32,
        #[arg(long, default_value = "cp858")]
        code_page: String,
        /// The ESC t number for the code page on this model (default: Epson's).
        #[arg(long)]
        esc_t: Option<u8>,
    },
    /// The print agent on a kiosk PC: prints this kiosk's tickets on a local printer.
    Agent {
        /// The daemon, e.g. http://192.0.2.10:8080
        #[arg(long, env = "VUORO_SERVER")]
        server: String,
        /// The kiosk device id (as in the config).
        #[arg(long, env = "VUORO_DEVICE")]
        device: String,
        /// A file holding the kiosk's device token (never pass a secret on the command line).
        #[arg(long, env = "VUORO_TOKEN_FILE")]
        token_file: PathBuf,
        /// file:/dev/usb/lp0, file:/dev/ttyUSB0, tcp:HOST:PORT or file:PATH
        #[arg(long)]
        printer: String,
        #[arg(long, default_value = "cp858")]
        code_page: String,
        #[arg(long)]
        esc_t: Option<u8>,
        #[arg(long, default_value_t = 80)]
        width: u32,
        /// Let the printer draw the QR code (false: send it as an image).
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
        qr: bool,
    },
    /// Set this machine's device up with the one-time code from the administration (/admin/): the code
    /// is read from standard input, the device's token written to --token-file (mode 0600) for `vuoro
    /// agent`. Exit 1 when refused.
    Enrol {
        /// The daemon, e.g. https://vuoro.example.fi
        #[arg(long, env = "VUORO_SERVER")]
        server: String,
        /// The device id (as in the config); a code for another device is refused.
        #[arg(long, env = "VUORO_DEVICE")]
        device: String,
        /// Where to write the token.
        #[arg(long, env = "VUORO_TOKEN_FILE")]
        token_file: PathBuf,
        /// Replace an existing token file.
        #[arg(long)]
        force: bool,
    },
    /// The config in force on a running daemon, as a file and back (an admin's password is read from
    /// standard input). `pull` writes FILE and FILE.version; `push` sends FILE with that version, so a
    /// change made meanwhile is refused, not overwritten. Exit 1 when refused.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Make an argon2 password hash for a [[user]] entry (reads the password from standard input).
    HashPassword,
    /// A report from the database, read-only (see docs/reports.md).
    Report(vuoro_reports::cli::ReportArgs),
    /// Fold complete days into the reports, blank expired ticket tokens, delete ticket-level detail
    /// older than the retention (the daemon does this every 15 minutes; see docs/privacy.md).
    Purge(vuoro_reports::cli::PurgeArgs),
    /// Write a consistent copy of the database to FILE, whether or not a daemon is running on the data
    /// folder (it goes on serving). Exit 1 when refused or failed.
    Backup {
        /// The copy to write; refused if it exists, unless --force.
        #[arg(long)]
        to: PathBuf,
        /// The data folder whose database is copied.
        #[arg(long, env = "VUORO_DATA", default_value = "data")]
        data: PathBuf,
        #[arg(long)]
        force: bool,
    },
    /// Put a backup in place as a data folder's database: refused while a daemon runs on the folder, and
    /// when it holds a database (unless --force); the copy is verified first. Exit 1 when refused or failed.
    Restore {
        /// The backup to restore.
        #[arg(long)]
        from: PathBuf,
        /// The data folder to restore into (stop its daemon first).
        #[arg(long)]
        data: PathBuf,
        /// Replace the folder's database.
        #[arg(long)]
        force: bool,
        /// The config the daemon runs with (the check replays its sites). Default: the embedded demo.
        #[arg(long, env = "VUORO_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Check a database without changing it: SQLite's integrity check, a schema this Vuoro knows, and the
    /// event log (no gap, every event readable) replayed onto the stored snapshots. Exit 0 when it
    /// passes, 1 when it does not.
    Verify {
        /// A data folder: checks its database.
        #[arg(long, conflicts_with = "file", required_unless_present = "file")]
        data: Option<PathBuf>,
        /// A backup file.
        #[arg(long)]
        file: Option<PathBuf>,
        /// The config the daemon runs with (the check replays its sites). Default: the embedded demo.
        #[arg(long, env = "VUORO_CONFIG")]
        config: Option<PathBuf>,
    },
}

/// What `vuoro verify` and `vuoro restore` say about a copy that passed.
fn describe(v: &vuoro_server::backup::Verified) -> String {
    let mut s = format!(
        "schema {} (this Vuoro knows {}), {} event(s) read, the log replayed through seq {}, snapshot(s) at {:?}",
        v.schema, v.known, v.events, v.last_seq, v.snapshots
    );
    if !v.unknown_sites.is_empty() {
        s.push_str(&format!(
            "; not in the config, so not replayed: {}",
            v.unknown_sites.join(", ")
        ));
    }
    s
}

/// Prints `message` and exits with 1.
fn fail(message: impl std::fmt::Display) -> ! {
    eprintln!("{message}");
    std::process::exit(1);
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Config file (TOML). Default: the embedded demo hall.
    #[arg(long, env = "VUORO_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, env = "VUORO_LISTEN", default_value = "127.0.0.1:8080")]
    listen: String,
    /// Folder for the database and caches.
    #[arg(long, env = "VUORO_DATA", default_value = "data")]
    data: PathBuf,
    /// Appends every WebSocket message the daemon sends to this file, one JSON a line (for the test
    /// suites, which check them against the AsyncAPI document).
    #[arg(long, env = "VUORO_RECORD_WS", hide = true)]
    record_ws: Option<PathBuf>,
}

/// Loads and checks a config; the error lists every mistake as `file:line: message`.
fn load_config(path: Option<&PathBuf>) -> anyhow::Result<Config> {
    let (name, src) = match path {
        Some(p) => (
            p.display().to_string(),
            std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?,
        ),
        None => ("<embedded demo>".to_string(), DEMO_CONFIG.to_string()),
    };
    vuoro_server::config::load(&src).map_err(|errs| {
        let lines: Vec<String> = errs
            .iter()
            .map(|e| match e.line {
                Some(l) => format!("{name}:{l}: {}", e.message),
                None => format!("{name}: {}", e.message),
            })
            .collect();
        anyhow::anyhow!(
            "{} mistake(s) in the config:\n{}",
            errs.len(),
            lines.join("\n")
        )
    })
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("signal handler");
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
}

/// What `vuoro serve` prints once it serves: the address it listens on (first line, `Vuoro listening on
/// URL`, which scripts read), then the first site's pages.
fn addresses(cfg: &Config, base: &str) -> String {
    let mut s = format!("Vuoro listening on {base}\n");
    if let Some(site) = cfg.hall.sites.first() {
        s += &format!("  Kiosk:            {base}/kiosk/\n");
        s += &format!(
            "  Hall display:     {base}/display/?site={}&id={}\n",
            site.id,
            site.displays.first().map_or("hall", |d| d.id.as_str())
        );
        s += &format!("  Staff desk:       {base}/desk/\n");
        s += &format!("  Supervisor view:  {base}/desk/supervisor.html\n");
        s += &format!("  Administration:   {base}/admin/\n");
        if cfg.deployment.server.demo {
            s += "  Demo users: agent1, agent2, supervisor, admin (password: demo)\n";
        }
    }
    s
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let cfg = load_config(args.config.as_ref())?;
    if let Some(path) = &args.config {
        let src = std::fs::read_to_string(path).unwrap_or_default();
        for w in cfg.hall.warnings(&src) {
            tracing::warn!(line = w.line, "config: {}", w.message);
        }
    }
    let addr: SocketAddr = args
        .listen
        .parse()
        .with_context(|| format!("'{}' is not an address like 127.0.0.1:8080", args.listen))?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let bound = listener.local_addr()?;
    let addresses = addresses(&cfg, &format!("http://{bound}"));
    systemd::start_watchdog();
    // Nothing says "listening" until the daemon serves: a start that is refused (the data folder in use
    // by another daemon, a store that does not open) prints only its error.
    let (ready, on_ready) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        if on_ready.await.is_ok() {
            print!("{addresses}");
            systemd::notify_ready();
        }
    });
    vuoro_server::serve(
        vuoro_server::Settings {
            config: cfg,
            data_dir: args.data,
            record_ws: args.record_ws,
            ready: Some(ready),
        },
        listener,
        shutdown_signal(),
    )
    .await
}

/// mimalloc: per-thread free lists without glibc's arena locking and consolidation; a ticket makes a few
/// hundred small allocations across the HTTP worker and the writer thread (docs/benchmarks.md).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Json => logs.json().init(),
        // Colours for a person at a terminal; a log file or a journal gets plain text.
        LogFormat::Text => logs
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
    }
    // No subcommand: `vuoro serve` with its defaults and VUORO_* environment variables.
    let cmd = cli
        .cmd
        .or_else(|| Cli::parse_from(["vuoro", "serve"]).cmd)
        .expect("serve parses");
    match cmd {
        Cmd::Serve(args) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(serve(args)),
        Cmd::CheckConfig { file } => match load_config(Some(&file)) {
            Ok(cfg) => {
                let src = std::fs::read_to_string(&file).unwrap_or_default();
                for w in cfg.hall.warnings(&src) {
                    match w.line {
                        Some(l) => eprintln!("{}:{l}: warning: {}", file.display(), w.message),
                        None => eprintln!("{}: warning: {}", file.display(), w.message),
                    }
                }
                let server = &cfg.deployment.server;
                if !server.demo && server.public_url.is_none() {
                    eprintln!(
                        "{}: warning: server.public_url is not set: tickets' tracking links and QR codes \
                         will name the listen address, which phones may not reach (and `--listen 0.0.0.0` \
                         is refused without it)",
                        file.display()
                    );
                }
                println!(
                    "{}: ok ({} site(s), {} user(s), {} device(s))",
                    file.display(),
                    cfg.hall.sites.len(),
                    cfg.deployment.users.len(),
                    cfg.deployment.devices.len()
                );
                Ok(())
            }
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(1);
            }
        },
        Cmd::PrintSample {
            printer,
            lang,
            width,
            code_page,
            esc_t,
        } => {
            let req = vuoro_print::SampleRequest {
                target: printer,
                lang,
                width_mm: width,
                code_page,
                esc_t,
            };
            match vuoro_print::print_sample_with(&req) {
                Ok(out) if out.outcome.fault().is_none() => {
                    println!("{out}");
                    Ok(())
                }
                Ok(out) => {
                    eprintln!("{out}");
                    std::process::exit(2);
                }
                Err(e) => {
                    eprintln!("print-sample: {e}");
                    std::process::exit(2);
                }
            }
        }
        Cmd::Agent {
            server,
            device,
            token_file,
            printer,
            code_page,
            esc_t,
            width,
            qr,
        } => {
            let token = std::fs::read_to_string(&token_file)
                .with_context(|| format!("cannot read {}", token_file.display()))?
                .trim()
                .to_string();
            let settings = agent::settings(&printer, &code_page, esc_t, width, qr)?;
            let args = agent::AgentArgs {
                server,
                device,
                token,
                settings,
            };
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()?
                .block_on(agent::run(args))
        }
        Cmd::Enrol {
            server,
            device,
            token_file,
            force,
        } => {
            let said = enrol::run(enrol::EnrolArgs {
                server,
                device,
                token_file,
                force,
            })?;
            println!("{said}");
            Ok(())
        }
        Cmd::Config { action } => {
            let said = match action {
                ConfigAction::Pull { target, file } => config_cmd::pull(
                    &config_cmd::Target {
                        server: target.server,
                        user: target.user,
                    },
                    &file,
                )?,
                ConfigAction::Push { target, file } => config_cmd::push(
                    &config_cmd::Target {
                        server: target.server,
                        user: target.user,
                    },
                    &file,
                )?,
            };
            println!("{said}");
            Ok(())
        }
        Cmd::HashPassword => {
            let mut pw = String::new();
            std::io::stdin().read_line(&mut pw)?;
            println!(
                "{}",
                vuoro_server::auth::hash_password(pw.trim_end_matches(['\n', '\r']))
            );
            Ok(())
        }
        Cmd::Report(args) => {
            let cfg = load_config(args.config.as_ref())?;
            vuoro_reports::cli::report(args, &cfg.hall)
        }
        Cmd::Backup { to, data, force } => {
            let db = data.join(vuoro_server::backup::DB_FILE);
            if to.exists() && !force {
                fail(format!(
                    "backup: {} exists: pass --force to replace it",
                    to.display()
                ));
            }
            let store = vuoro_store::open_read_only(&db)
                .unwrap_or_else(|e| fail(format!("backup: {}: {e}", db.display())));
            match store.backup_to(&to) {
                Ok(()) => {
                    println!("backup: {} written from {}", to.display(), db.display());
                    Ok(())
                }
                Err(e) => fail(format!("backup: cannot write {}: {e}", to.display())),
            }
        }
        Cmd::Restore {
            from,
            data,
            force,
            config,
        } => {
            let cfg = load_config(config.as_ref())?;
            match vuoro_server::backup::restore(&from, &data, &cfg.hall, force) {
                Ok(v) => {
                    println!(
                        "restore: {} is now the database of {}: {}",
                        from.display(),
                        data.display(),
                        describe(&v)
                    );
                    Ok(())
                }
                Err(e) => fail(format!("restore: refused: {e}")),
            }
        }
        Cmd::Verify { data, file, config } => {
            let cfg = load_config(config.as_ref())?;
            let path = match (file, data) {
                (Some(f), _) => f,
                (None, Some(d)) => d.join(vuoro_server::backup::DB_FILE),
                (None, None) => unreachable!("clap requires one"),
            };
            match vuoro_server::backup::verify(&path, &cfg.hall) {
                Ok(v) => {
                    println!("verify: {} passes: {}", path.display(), describe(&v));
                    Ok(())
                }
                Err(e) => fail(format!("verify: {} fails: {e}", path.display())),
            }
        }
        Cmd::Purge(args) => {
            let cfg = load_config(args.config.as_ref())?;
            let days = cfg.deployment.server.retention_days;
            vuoro_reports::cli::purge(args, &cfg.hall, days)
        }
    }
}
