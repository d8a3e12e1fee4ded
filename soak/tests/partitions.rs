//! `--partitions`: the dispatcher spreads producer threads over partitions
//! sharing one byte budget, and the record says how many.

use std::process::{Command, Output};

fn soak(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_soak"))
        .args(args)
        .output()
        .expect("the soak binary runs")
}

#[test]
fn a_partitioned_run_is_recorded_and_keeps_its_bound() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = soak(&[
        "--duration",
        "1s",
        "--producers",
        "8",
        "--partitions",
        "4",
        "--max-buffered-bytes",
        "1MiB",
        "--sample-every",
        "250ms",
        "--out",
        dir.path().to_str().expect("utf-8 path"),
        "--no-tui",
        "-q",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let run = runlog::RunDir::resolve_latest(dir.path()).expect("latest points at the run");
    let results = runlog::read_results(&run.results_path()).expect("results.json reads back");
    assert_eq!(results.config.partitions, 4);
    let t = &results.totals;
    assert!(t.delivered > 0);
    assert_eq!(
        t.accepted,
        t.delivered + t.dropped + results.drain.undelivered
    );
    assert!(results.memory.peak_buffered_bytes <= 1024 * 1024);
}

#[test]
fn partitions_out_of_range_are_refused_naming_the_flag() {
    let dir = tempfile::tempdir().expect("tempdir");
    for bad in ["0", "257"] {
        let out = soak(&[
            "--partitions",
            bad,
            "--out",
            dir.path().to_str().expect("utf-8 path"),
            "--no-tui",
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad}: {stderr}");
        assert!(
            stderr.contains("partitions") && stderr.contains("1..=256"),
            "{stderr}"
        );
    }
}
