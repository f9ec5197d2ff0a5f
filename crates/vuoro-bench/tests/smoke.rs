//! Every scenario at smoke size against the daemon in this process: they run end to end, check what they
//! check (durability, no losses, pongs, end state, replay) and report no problem. Targets are not asserted
//! here: a debug build on a shared CI machine says nothing about them (docs/benchmarks.md has the figures).

use vuoro_bench::{Mode, Opts};

fn smoke(scenario: &str, api: bool) {
    let opts = Opts {
        smoke: true,
        api,
        mode: Mode::InProcess,
        ..Opts::default()
    };
    let r = vuoro_bench::run(scenario, &opts).expect("scenario runs");
    r.print();
    assert!(r.problems.is_empty(), "{scenario}: {:?}", r.problems);
    assert!(!r.rows.is_empty());
}

#[test]
fn issue_smoke() {
    smoke("issue", false);
}

#[test]
fn fanout_smoke() {
    smoke("fanout", false);
}

#[test]
fn connections_smoke() {
    smoke("connections", false);
}

#[test]
fn day_smoke() {
    smoke("day", false);
}

#[test]
fn day_api_smoke() {
    smoke("day", true);
}

#[test]
fn startup_smoke() {
    smoke("startup", false);
}

#[test]
fn staff_smoke() {
    smoke("staff", false);
}

#[test]
fn notices_smoke() {
    smoke("notices", false);
}
