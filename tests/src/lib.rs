//! Shared helpers for the end-to-end tests: the real daemon, in this process on port 0 or as a child
//! process, each with a fresh data folder (a real SQLite file) that is removed afterwards.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::oneshot;

pub use vuoro_client::{Http, Response, Ws, demo_device_token, login};

pub const DEMO: &str = include_str!("../../config/demo.toml");

static N: AtomicU64 = AtomicU64::new(0);

/// A folder under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!(
            "vuoro-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("temp dir");
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The daemon running in this process.
pub struct TestApp {
    pub addr: SocketAddr,
    pub data: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    pub fn http(&self) -> Http {
        Http::new(self.addr)
    }

    /// Stops it gracefully and waits until it has.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(10), t)
                .await
                .expect("daemon stops in time")
                .expect("join")
                .expect("serve ok");
        }
    }

    /// Committed events in the database (read directly from the SQLite file).
    pub fn committed_seq(&self) -> u64 {
        committed_seq(&self.data)
    }
}

pub fn committed_seq(data: &Path) -> u64 {
    let c = rusqlite::Connection::open_with_flags(
        data.join("vuoro.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("open db");
    c.query_row("SELECT COALESCE(MAX(seq), 0) FROM events", [], |r| {
        r.get::<_, i64>(0)
    })
    .expect("query") as u64
}

/// The demo hall, on port 0, with its data in `data`.
pub async fn spawn_app_in(config: &str, data: &Path) -> TestApp {
    let cfg = vuoro_server::config::load(config).expect("test config is valid");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = oneshot::channel::<()>();
    let settings = vuoro_server::Settings {
        config: cfg,
        data_dir: data.to_path_buf(),
        record_ws: ws_record_file(),
        ready: None,
    };
    let task = tokio::spawn(vuoro_server::serve(settings, listener, async move {
        let _ = rx.await;
    }));
    // Ready when /readyz says so.
    let mut h = Http::new(addr);
    for _ in 0..200 {
        if h.get("/readyz").await.is_ok_and(|r| r.status == 200) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    TestApp {
        addr,
        data: data.to_path_buf(),
        stop: Some(tx),
        task: Some(task),
    }
}

/// The `vuoro` binary built next to this test (cargo builds it for `cargo test --workspace`).
pub fn vuoro_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test exe");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = dir.join("vuoro");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p vuoro` first",
        bin.display()
    );
    bin
}

/// A file of its own for a daemon's record of the WebSocket messages it sends (`Settings::record_ws`),
/// under the folder `VUORO_WS_RECORD_DIR` names (tests/run-all.sh sets it, then checks every record against
/// the AsyncAPI document); None when it is not set.
pub fn ws_record_file() -> Option<PathBuf> {
    let dir = PathBuf::from(std::env::var_os("VUORO_WS_RECORD_DIR")?);
    let exe = std::env::current_exe().ok();
    let binary = exe
        .as_deref()
        .and_then(Path::file_stem)
        .map_or("tests".into(), |s| s.to_string_lossy());
    Some(dir.join(format!(
        "{binary}-{}-{}.jsonl",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )))
}

/// The daemon as a child process (for crash tests). Returns the child and its address.
pub fn spawn_daemon(data: &Path, port: u16) -> (Child, SocketAddr) {
    let child = std::process::Command::new(vuoro_bin())
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data"])
        .arg(data)
        .env("RUST_LOG", "warn")
        .envs(ws_record_file().map(|f| ("VUORO_RECORD_WS", f)))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn vuoro");
    (child, SocketAddr::from(([127, 0, 0, 1], port)))
}

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

pub async fn wait_ready(addr: SocketAddr) {
    let mut h = Http::new(addr);
    for _ in 0..400 {
        if h.get("/readyz").await.is_ok_and(|r| r.status == 200) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("daemon at {addr} did not become ready");
}
