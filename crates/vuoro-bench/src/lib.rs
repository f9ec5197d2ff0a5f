//! Vuoro's benchmark scenarios. Each starts the real daemon itself (the release binary as a
//! child process, or in this process for the smoke tests) on 127.0.0.1 with a fresh data folder, drives
//! it through the public HTTP API and WebSocket like any client, prints what it measured against the
//! targets, and stops by itself: every loop is bounded in count and in time. Nothing in the daemon knows
//! about the benchmark.
//!
//! Scenarios: `issue` (durable tickets per second), `fanout` (call to the last of N subscribers),
//! `connections` (memory per idle WebSocket client), `day` (a synthetic hall day, estimate accuracy),
//! `startup` (a year of history: time to ready, idle memory), `staff` (a staff request's cost against a
//! kiosk's), `notices` (a day's tickets with SMS notices: the outbox's lag, the issue path's p99 with and
//! without). See docs/benchmarks.md.

pub mod connections;
pub mod daemon;
pub mod day;
pub mod dayapi;
pub mod fanout;
pub mod issue;
pub mod notices;
pub mod rawhttp;
pub mod rawws;
pub mod staff;
pub mod startup;
pub mod stats;

use std::io::Write;
use std::time::Duration;

use serde_json::{Value, json};

pub use daemon::{Daemon, Mode, TempDir};

/// The benchmark hall: one site, 702 series of 9,999 numbers, one service per series.
pub const BENCH_CONFIG: &str = include_str!("../bench.toml");
/// The demo hall (Iso Omena-like), for the day scenario.
pub const DEMO_CONFIG: &str = include_str!("../../../config/demo.toml");
pub const BENCH_SITE: &str = "bench";
pub const BENCH_KIOSK_TOKEN: &str = "bench-kiosk-not-a-secret-outside-loopback";

/// Options shared by every scenario; a scenario reads the ones it knows.
#[derive(Debug, Clone)]
pub struct Opts {
    /// A tiny run that finishes in seconds (for tests and CI).
    pub smoke: bool,
    /// Scenario size (tickets, subscribers, connections, days), or None for the scenario's default.
    pub size: Option<Vec<u64>>,
    /// Concurrent HTTP clients (issue).
    pub clients: Option<usize>,
    /// Calls per size (fanout).
    pub calls: Option<usize>,
    /// Repetitions (startup).
    pub runs: Option<usize>,
    /// Run the API variant (day).
    pub api: bool,
    pub mode: Mode,
    /// Append the results to this JSON-lines file.
    pub results: Option<std::path::PathBuf>,
}

impl Default for Opts {
    fn default() -> Opts {
        Opts {
            smoke: false,
            size: None,
            clients: None,
            calls: None,
            runs: None,
            api: false,
            mode: if daemon::vuoro_bin().is_some() {
                Mode::Child
            } else {
                Mode::InProcess
            },
            results: None,
        }
    }
}

/// One measured figure against its target.
#[derive(Debug, Clone)]
pub struct Row {
    pub what: String,
    pub value: String,
    pub target: String,
    /// None when the figure has no target.
    pub ok: Option<bool>,
}

/// What a scenario found.
#[derive(Debug, Clone)]
pub struct Report {
    pub scenario: String,
    pub rows: Vec<Row>,
    /// Raw figures for the results file.
    pub data: Value,
    /// Things that went wrong (errors, losses): a non-empty list fails the smoke tests.
    pub problems: Vec<String>,
}

impl Report {
    pub fn new(scenario: &str) -> Report {
        Report {
            scenario: scenario.into(),
            rows: Vec::new(),
            data: json!({}),
            problems: Vec::new(),
        }
    }

    pub fn row(&mut self, what: impl Into<String>, value: impl Into<String>) {
        self.rows.push(Row {
            what: what.into(),
            value: value.into(),
            target: String::new(),
            ok: None,
        });
    }

    pub fn check(
        &mut self,
        what: impl Into<String>,
        value: impl Into<String>,
        target: impl Into<String>,
        ok: bool,
    ) {
        self.rows.push(Row {
            what: what.into(),
            value: value.into(),
            target: target.into(),
            ok: Some(ok),
        });
    }

    pub fn all_targets_met(&self) -> bool {
        self.rows.iter().all(|r| r.ok != Some(false))
    }

    /// A plain-text table.
    pub fn print(&self) {
        println!("\n== {}", self.scenario);
        let w = self.rows.iter().map(|r| r.what.len()).max().unwrap_or(10);
        let v = self.rows.iter().map(|r| r.value.len()).max().unwrap_or(10);
        for r in &self.rows {
            let verdict = match r.ok {
                Some(true) => "ok",
                Some(false) => "MISSED",
                None => "",
            };
            println!(
                "  {:w$}  {:>v$}  {:16} {}",
                r.what,
                r.value,
                r.target,
                verdict,
                w = w,
                v = v
            );
        }
        for p in &self.problems {
            println!("  problem: {p}");
        }
    }
}

/// Runs a scenario by name.
pub fn run(scenario: &str, opts: &Opts) -> anyhow::Result<Report> {
    raise_open_files_limit();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let report = rt.block_on(async {
        match scenario {
            "issue" => issue::run(opts).await,
            "fanout" => fanout::run(opts).await,
            "connections" => connections::run(opts).await,
            "day" => day::run(opts).await,
            "startup" => startup::run(opts).await,
            "staff" => staff::run(opts).await,
            "notices" => notices::run(opts).await,
            other => {
                anyhow::bail!(
                    "no scenario '{other}': issue, fanout, connections, day, startup, staff or notices"
                )
            }
        }
    })?;
    rt.shutdown_timeout(Duration::from_secs(5));
    if let Some(path) = &opts.results {
        append_results(path, &report, opts)?;
    }
    Ok(report)
}

pub const SCENARIOS: [&str; 7] = [
    "issue",
    "fanout",
    "connections",
    "day",
    "startup",
    "staff",
    "notices",
];

/// Raises the open-files limit (soft and, as root, hard) for this process and the daemon it starts: a
/// fan-out to 10,000 subscribers needs 10,000 sockets on each side, 50,000 connections 50,000.
pub fn raise_open_files_limit() -> u64 {
    use rlimit::Resource;
    let want = 200_000;
    if let Ok((soft, hard)) = Resource::NOFILE.get() {
        if hard < want && Resource::NOFILE.set(want, want).is_ok() {
            return want;
        }
        let target = want.min(hard.max(soft));
        if soft < target && Resource::NOFILE.set(target, hard.max(target)).is_ok() {
            return target;
        }
        return soft.max(target.min(soft));
    }
    0
}

pub fn open_files_limit() -> u64 {
    rlimit::Resource::NOFILE.get().map_or(0, |(s, _)| s)
}

/// The machine, for the report: cores, CPU model, memory, load.
pub fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_default();
    let mem = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .map(|l| l.trim().to_string())
        .unwrap_or_default();
    json!({
        "cores": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "cpu": model,
        "memory": mem,
        "load": loadavg(),
    })
}

pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn append_results(path: &std::path::Path, report: &Report, opts: &Opts) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let line = json!({
        "at": chrono::Utc::now().to_rfc3339(),
        "scenario": report.scenario,
        "smoke": opts.smoke,
        "mode": format!("{:?}", opts.mode),
        "machine": machine(),
        "targets_met": report.all_targets_met(),
        "problems": report.problems,
        "data": report.data,
    });
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    writeln!(f, "{line}")?;
    Ok(())
}

/// Formats milliseconds for a table.
pub fn ms(x: f64) -> String {
    if x < 10.0 {
        format!("{x:.2} ms")
    } else {
        format!("{x:.1} ms")
    }
}
