//! The daemon under test: the release binary as a child process (the honest way: its own RSS, its own
//! threads), or `vuoro_server::serve` in this process on a runtime of its own (for the smoke tests, where
//! no release binary may exist). Always on 127.0.0.1, always with a fresh data folder that is removed after.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use vuoro_client::Http;

/// A folder under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> anyhow::Result<TempDir> {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let p = std::env::temp_dir().join(format!(
            "vuoro-bench-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).with_context(|| format!("create {}", p.display()))?;
        Ok(TempDir(p))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Where the daemon runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// target/release/vuoro (next to this executable) as a child process.
    Child,
    /// `vuoro_server::serve` in this process.
    InProcess,
}

enum Kind {
    Child(Child),
    InProcess {
        stop: Option<tokio::sync::oneshot::Sender<()>>,
        thread: Option<std::thread::JoinHandle<anyhow::Result<()>>>,
    },
}

pub struct Daemon {
    pub addr: SocketAddr,
    pub data: PathBuf,
    /// The process whose memory is the daemon's (this process when in-process).
    pub pid: u32,
    pub mode: Mode,
    /// From spawning until /readyz answered 200.
    pub ready_after: Duration,
    kind: Kind,
}

/// The `vuoro` binary next to this executable (target/release/vuoro for a release bench).
pub fn vuoro_bin() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let mut dir = exe.parent()?.to_path_buf();
    // Test executables live in target/<profile>/deps.
    if dir.ends_with("deps") {
        dir.pop();
    }
    let bin = dir.join("vuoro");
    bin.exists().then_some(bin)
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl Daemon {
    /// Starts the daemon with `config` (TOML text; empty: the daemon's own embedded demo, so that a
    /// scenario can be run against another build of the daemon) and data in `data` (created if missing;
    /// an existing database there is used, as for the start-up scenario). Waits until /readyz answers.
    pub async fn start(mode: Mode, config: &str, data: &Path) -> anyhow::Result<Daemon> {
        std::fs::create_dir_all(data)?;
        match mode {
            Mode::Child => {
                let bin = vuoro_bin().context(
                    "target/release/vuoro is missing: run `cargo build --release -p vuoro -p vuoro-bench` first",
                )?;
                let port = free_port()?;
                let addr = SocketAddr::from(([127, 0, 0, 1], port));
                let mut cmd = std::process::Command::new(bin);
                cmd.arg("serve");
                if !config.is_empty() {
                    let cfg_path = data.join("bench-config.toml");
                    std::fs::write(&cfg_path, config)?;
                    cmd.arg("--config").arg(&cfg_path);
                }
                let t0 = Instant::now();
                let child = cmd
                    .args(["--listen", &addr.to_string(), "--data"])
                    .arg(data)
                    .env("RUST_LOG", "warn")
                    .stdout(Stdio::null())
                    .stderr(Stdio::inherit())
                    .spawn()
                    .context("spawn vuoro")?;
                let pid = child.id();
                let mut d = Daemon {
                    addr,
                    data: data.to_path_buf(),
                    pid,
                    mode,
                    ready_after: Duration::ZERO,
                    kind: Kind::Child(child),
                };
                d.ready_after = wait_ready(addr, t0).await?;
                Ok(d)
            }
            Mode::InProcess => {
                let config = if config.is_empty() {
                    crate::DEMO_CONFIG
                } else {
                    config
                };
                let cfg = vuoro_server::config::load(config)
                    .map_err(|e| anyhow::anyhow!("bench config: {e:?}"))?;
                let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
                std_listener.set_nonblocking(true)?;
                let addr = std_listener.local_addr()?;
                let (tx, rx) = tokio::sync::oneshot::channel::<()>();
                let settings = vuoro_server::Settings {
                    config: cfg,
                    data_dir: data.to_path_buf(),
                    record_ws: None,
                    ready: None,
                };
                let t0 = Instant::now();
                // Its own runtime on its own threads, like a separate process as far as scheduling goes.
                let thread = std::thread::Builder::new()
                    .name("vuoro-daemon".into())
                    .spawn(move || -> anyhow::Result<()> {
                        let rt = tokio::runtime::Builder::new_multi_thread()
                            .worker_threads(2)
                            .enable_all()
                            .build()?;
                        rt.block_on(async move {
                            let listener = tokio::net::TcpListener::from_std(std_listener)?;
                            vuoro_server::serve(settings, listener, async move {
                                let _ = rx.await;
                            })
                            .await
                        })
                    })?;
                let mut d = Daemon {
                    addr,
                    data: data.to_path_buf(),
                    pid: std::process::id(),
                    mode,
                    ready_after: Duration::ZERO,
                    kind: Kind::InProcess {
                        stop: Some(tx),
                        thread: Some(thread),
                    },
                };
                d.ready_after = wait_ready(addr, t0).await?;
                Ok(d)
            }
        }
    }

    /// The daemon's resident memory in KiB (VmRSS), or this process's when in-process.
    pub fn rss_kib(&self) -> anyhow::Result<u64> {
        rss_kib(self.pid)
    }

    /// Stops the daemon gracefully (SIGTERM to the child; the shutdown signal in-process) and waits.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        match &mut self.kind {
            Kind::Child(child) => {
                let _ = std::process::Command::new("kill")
                    .args(["-TERM", &child.id().to_string()])
                    .status();
                let deadline = Instant::now() + Duration::from_secs(30);
                loop {
                    if child.try_wait()?.is_some() {
                        break;
                    }
                    if Instant::now() > deadline {
                        let _ = child.kill();
                        let _ = child.wait();
                        bail!("the daemon did not stop within 30 s of SIGTERM; killed");
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            Kind::InProcess { stop, thread } => {
                if let Some(s) = stop.take() {
                    let _ = s.send(());
                }
                if let Some(t) = thread.take() {
                    tokio::task::spawn_blocking(move || t.join())
                        .await?
                        .map_err(|_| anyhow::anyhow!("daemon thread panicked"))??;
                }
            }
        }
        Ok(())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // Never leave a child behind, whatever happened.
        if let Kind::Child(child) = &mut self.kind
            && let Ok(None) = child.try_wait()
        {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Kind::InProcess { stop, .. } = &mut self.kind
            && let Some(s) = stop.take()
        {
            let _ = s.send(());
        }
    }
}

/// Polls /readyz every 2 ms until it answers 200 (at most 60 s); returns the time since `t0`.
pub async fn wait_ready(addr: SocketAddr, t0: Instant) -> anyhow::Result<Duration> {
    let deadline = t0 + Duration::from_secs(60);
    loop {
        let mut h = Http::new(addr);
        if let Ok(r) = h.get("/readyz").await
            && r.status == 200
        {
            return Ok(t0.elapsed());
        }
        if Instant::now() > deadline {
            bail!("the daemon at {addr} was not ready within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

pub fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("no VmRSS")
}

/// CPU time (user + system) a process has used, in milliseconds (from /proc/PID/stat, 100 Hz ticks).
pub fn cpu_ms(pid: u32) -> anyhow::Result<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = &s[s.rfind(')').context("stat")? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f[11].parse::<u64>()? + f[12].parse::<u64>()?;
    Ok(ticks * 10)
}
