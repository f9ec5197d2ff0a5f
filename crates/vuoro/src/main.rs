//! The `vuoro` command. With no arguments it serves the embedded demo hall on 127.0.0.1:8080.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use vuoro_engine::Config;

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
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the daemon (the default).
    Serve(ServeArgs),
    /// Check a config file; report each mistake with its line. Exit 1 on any mistake.
    CheckConfig { file: PathBuf },
    /// Make an argon2 password hash for a [[user]] entry (reads the password from standard input).
    HashPassword,
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
    Config::parse(&src).map_err(|errs| {
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

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let cfg = Arc::new(load_config(args.config.as_ref())?);
    let addr: SocketAddr = args
        .listen
        .parse()
        .with_context(|| format!("'{}' is not an address like 127.0.0.1:8080", args.listen))?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let bound = listener.local_addr()?;
    let base = format!("http://{bound}");
    println!("Vuoro listening on {base}");
    if let Some(site) = cfg.sites.first() {
        println!("  Kiosk:            {base}/kiosk/");
        println!(
            "  Hall display:     {base}/display/?site={}&id={}",
            site.id,
            site.displays.first().map_or("hall", |d| d.id.as_str())
        );
        println!("  Staff desk:       {base}/desk/");
        println!("  Supervisor view:  {base}/desk/supervisor.html");
        if cfg.server.demo {
            println!("  Demo users: agent1, agent2, supervisor, admin (password: demo)");
        }
    }
    vuoro_server::serve(
        vuoro_server::Settings {
            config: cfg,
            data_dir: args.data,
        },
        listener,
        shutdown_signal(),
    )
    .await
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
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
                println!(
                    "{}: ok ({} site(s), {} user(s), {} device(s))",
                    file.display(),
                    cfg.sites.len(),
                    cfg.users.len(),
                    cfg.devices.len()
                );
                Ok(())
            }
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(1);
            }
        },
        Cmd::HashPassword => {
            let mut pw = String::new();
            std::io::stdin().read_line(&mut pw)?;
            println!(
                "{}",
                vuoro_server::auth::hash_password(pw.trim_end_matches(['\n', '\r']))
            );
            Ok(())
        }
    }
}
