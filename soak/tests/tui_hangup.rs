//! A terminal that goes away under the dashboard (its window closed, its tmux pane
//! killed, the ssh link dropped) ends the run like any signal would: the process
//! stops, drains and writes its record, instead of spinning on the dead terminal
//! until someone kills it. The kernel tells the soak with `SIGHUP`; a soak started
//! with `SIGHUP` ignored (`nohup`) was asked to outlive its terminal, and does: the
//! dashboard ends, and the run goes on to its end and writes its record.
//!
//! `under_script` starts the soak with `SIGHUP` at its default, whatever the test
//! runner ignores; the `nohup` case ignores it again with `env`.

mod common;

use std::time::{Duration, Instant};

use common::*;
use nix::sys::signal::Signal;

/// Runs the soak with the dashboard under script(1), `env_args` before it, takes its
/// terminal away once it has drawn, and waits until the soak is gone (failing with
/// `what` after `limit`): the record it wrote, which must count deliveries.
fn record_after_hang_up(
    env_args: &str,
    soak_args: &str,
    limit: Duration,
    what: &str,
) -> runlog::RunResults {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = path(dir.path());
    let command = format!(
        "env {env_args} TERM=xterm-256color {} --tui --producers 2 --sample-every 250ms \
         --out {out} {soak_args}",
        bin().display()
    );
    let mut script = under_script(&command, false);
    let run = wait_for_samples(dir.path(), 2, Duration::from_secs(60));
    let pid = pid_of(&out).expect("the soak is running");
    // Let the dashboard draw, then take its terminal away: killing script(1) closes
    // the pty's master side.
    std::thread::sleep(Duration::from_millis(1000));
    signal(script.id(), Signal::SIGKILL);
    let _ = script.wait();
    let deadline = Instant::now() + limit;
    while pid_of(&out) == Some(pid) {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let results = runlog::read_results(&run.results_path()).expect("the run wrote its record");
    assert!(
        results.totals.delivered > 0,
        "the record holds the run: {:?}",
        results.totals
    );
    results
}

#[test]
fn a_terminal_that_hangs_up_ends_the_run_with_its_record() {
    let results = record_after_hang_up(
        "",
        "-d 120s",
        Duration::from_secs(30),
        "the soak still runs 30 s after its terminal hung up",
    );
    assert!(
        results.duration_s < 60.0,
        "the run ended at the hang-up, not after {} s",
        results.duration_s
    );
}

#[test]
fn a_soak_under_nohup_outlives_its_terminal_and_writes_its_record() {
    // The terminal goes about 1.5 s in; the run is 6 s long.
    let results = record_after_hang_up(
        "--ignore-signal=HUP",
        "-d 6s",
        Duration::from_secs(60),
        "the soak still runs a minute after its 6 s run should have ended",
    );
    assert!(
        results.duration_s >= 5.5,
        "the run went on to its end without its terminal, not {} s",
        results.duration_s
    );
}
