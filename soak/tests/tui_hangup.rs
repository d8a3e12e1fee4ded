//! A terminal that goes away under the dashboard (its window closed, its tmux pane
//! killed, the ssh link dropped) ends the run like any signal would: the process
//! stops, drains and writes its record, instead of spinning on the dead terminal
//! until someone kills it.

mod common;

use std::time::{Duration, Instant};

use common::*;
use nix::sys::signal::Signal;

#[test]
fn a_terminal_that_hangs_up_ends_the_run_with_its_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = path(dir.path());
    let command = format!(
        "TERM=xterm-256color {} --tui -d 120s --producers 2 --sample-every 250ms --out {out}",
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
    let deadline = Instant::now() + Duration::from_secs(30);
    while pid_of(&out) == Some(pid) {
        assert!(
            Instant::now() < deadline,
            "the soak still runs 30 s after its terminal hung up"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let results = runlog::read_results(&run.results_path()).expect("the run wrote its record");
    assert!(
        results.totals.delivered > 0,
        "the record holds the run: {:?}",
        results.totals
    );
    assert!(
        results.duration_s < 60.0,
        "the run ended at the hang-up, not after {} s",
        results.duration_s
    );
}
