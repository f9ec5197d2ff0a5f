//! `vuoro-bench <scenario> [--size N ...] [--smoke]`: runs one benchmark scenario against the real
//! daemon (target/release/vuoro as a child process) and prints its results against the targets.

use std::path::PathBuf;

use clap::Parser;
use vuoro_bench::{Mode, Opts, SCENARIOS};

#[derive(Parser)]
#[command(
    name = "vuoro-bench",
    about = "Vuoro's benchmark scenarios (loopback only, bounded, self-stopping)"
)]
struct Cli {
    /// issue, fanout, connections, day, startup, staff, notices, or all
    scenario: String,
    /// Size(s): tickets (issue), subscribers (fanout), clients (connections), visits (day), days (startup).
    /// Comma-separated for several.
    #[arg(long, value_delimiter = ',')]
    size: Option<Vec<u64>>,
    /// A tiny run that finishes in a few seconds.
    #[arg(long)]
    smoke: bool,
    /// Concurrent HTTP clients (issue).
    #[arg(long)]
    clients: Option<usize>,
    /// Calls per size (fanout).
    #[arg(long)]
    calls: Option<usize>,
    /// Repetitions (startup runs, day days).
    #[arg(long)]
    runs: Option<usize>,
    /// The day through the daemon's API (shorter, compressed clock).
    #[arg(long)]
    api: bool,
    /// Run the daemon in this process instead of target/release/vuoro.
    #[arg(long)]
    in_process: bool,
    /// Append results as JSON lines here (default target/vuoro-bench/results.jsonl; "-" for none).
    #[arg(long)]
    results: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut opts = Opts {
        smoke: cli.smoke,
        size: cli.size,
        clients: cli.clients,
        calls: cli.calls,
        runs: cli.runs,
        api: cli.api,
        ..Opts::default()
    };
    if cli.in_process {
        opts.mode = Mode::InProcess;
    }
    opts.results = match cli.results {
        Some(p) if p.as_os_str() == "-" => None,
        Some(p) => Some(p),
        None => Some(PathBuf::from("target/vuoro-bench/results.jsonl")),
    };
    println!(
        "machine: {}  (daemon: {:?})",
        vuoro_bench::machine(),
        opts.mode
    );
    let list: Vec<&str> = if cli.scenario == "all" {
        SCENARIOS.to_vec()
    } else {
        vec![cli.scenario.as_str()]
    };
    let mut failed = false;
    for s in list {
        let r = vuoro_bench::run(s, &opts)?;
        r.print();
        failed |= !r.problems.is_empty();
    }
    if failed {
        std::process::exit(2);
    }
    Ok(())
}
