//! `--spill-dir`: a run with a disk tier spills what memory cannot hold, records it in its
//! scenario, its samples, its results and its summary; a directory or a value that cannot
//! work is refused before anything is created (exit 2), naming what was typed.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;

/// A one-second run whose memory (64 KiB) cannot keep up with a consumer that takes 5 ms
/// per 4 KiB batch, with a disk tier of 16 MiB in `spill`.
fn spilling_run(out: &Path, spill: &Path, extra: &[&str]) -> std::process::Output {
    one_second_run(out, &spilling(&path(spill), extra))
}

#[test]
fn a_run_that_overflows_memory_spills_and_says_so() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (out, spill) = (tmp.path().join("runs"), tmp.path().join("spill"));
    let md = tmp.path().join("summary.md");
    let run = spilling_run(
        &out,
        &spill,
        &["--spill-sync", "every-batch", "--summary-md", &path(&md)],
    );
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    let dir = runlog::RunDir::resolve_latest(&out).expect("the run");
    let results = runlog::read_results(&dir.results_path()).expect("results.json");
    let config = results.config.spill.as_ref().expect("config.spill");
    assert_eq!(config.dir, spill);
    assert_eq!(config.max_disk_bytes, 16 << 20);
    assert_eq!(config.sync, runlog::SpillSync::EveryBatch);
    assert!(!config.write_ahead);
    let totals = results.spill.as_ref().expect("results.spill");
    assert!(totals.spilled > 0, "{totals:?}");
    assert_eq!(totals.replayed, totals.spilled, "{totals:?}");
    assert_eq!(totals.left_on_disk, 0, "{totals:?}");
    assert!(totals.peak_disk_bytes > 0 && totals.max_disk_bytes == 16 << 20);
    let log = runlog::read_samples(&dir.samples_path()).expect("samples");
    assert!(!log.samples.is_empty());
    assert!(
        log.samples.iter().all(|s| s.spill.is_some()),
        "every sample"
    );
    let most = log
        .samples
        .iter()
        .filter_map(|s| s.spill)
        .map(|s| s.spilled_total)
        .max()
        .unwrap_or(0);
    assert!(most > 0, "samples carry the spilled total");
    let summary = stdout(&run);
    assert!(summary.contains("\n  disk tier    "), "{summary}");
    assert!(summary.contains("spilled"), "{summary}");
    let words = summary.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(words.contains("disk tier 16.0 MiB (overflow)"), "{summary}");
    let md = std::fs::read_to_string(&md).expect("summary.md");
    assert!(md.contains("| disk tier | "), "{md}");
    assert_eq!(
        results.assessment.overall,
        runlog::Status::Pass,
        "{summary}"
    );
}

#[test]
fn a_run_without_a_tier_records_none() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("runs");
    let run = one_second_run(&out, &[]);
    assert!(matches!(run.status.code(), Some(0 | 1)), "{}", stderr(&run));
    let dir = runlog::RunDir::resolve_latest(&out).expect("the run");
    let text = std::fs::read_to_string(dir.results_path()).expect("results.json");
    assert!(!text.contains("\"spill\""), "{text}");
    let log = runlog::read_samples(&dir.samples_path()).expect("samples");
    assert!(log.samples.iter().all(|s| s.spill.is_none()));
    assert!(!stdout(&run).contains("disk tier"));
}

/// `soak ARGS` must exit 2 with a message holding every one of `needles`, creating no run.
fn refused(out: &Path, args: &[&str], needles: &[&str]) {
    let run = one_second_run(out, args);
    let err = stderr(&run);
    assert_eq!(run.status.code(), Some(2), "{args:?}: {err}");
    for needle in needles {
        assert!(err.contains(needle), "{args:?}: no {needle:?} in {err}");
    }
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        runlog::RunDir::resolve_latest(out).is_err(),
        "{args:?}: a run was created"
    );
}

#[test]
fn directories_that_cannot_hold_a_tier_are_refused_naming_them() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("runs");
    let missing = path(&tmp.path().join("no/such/dir"));
    refused(&out, &["--spill-dir", &missing], &[&missing, "parent"]);
    let file = tmp.path().join("a-file");
    std::fs::write(&file, "x").expect("write");
    refused(
        &out,
        &["--spill-dir", &path(&file)],
        &[&path(&file), "is a file"],
    );
    let foreign = tmp.path().join("foreign");
    std::fs::create_dir(&foreign).expect("mkdir");
    std::fs::write(foreign.join("notes.txt"), "mine").expect("write");
    refused(
        &out,
        &["--spill-dir", &path(&foreign)],
        &[
            "refused by the dispatcher",
            "notes.txt is not a spill log file",
        ],
    );
    assert_eq!(
        std::fs::read_to_string(foreign.join("notes.txt")).expect("kept"),
        "mine"
    );
    assert!(!tmp.path().join("no").exists(), "nothing was created");
}

#[test]
fn values_out_of_range_and_flags_without_effect_are_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("runs");
    let spill = path(&tmp.path().join("spill"));
    let with = |extra: &[&'static str]| {
        let mut args = vec!["--spill-dir", spill.as_str()];
        args.extend_from_slice(extra);
        args
    };
    refused(
        &out,
        &with(&["--max-spill-bytes", "0"]),
        &["--max-spill-bytes 0", "4.0 KiB..=1.0 TiB"],
    );
    refused(
        &out,
        &with(&["--spill-sync", "2m"]),
        &["--spill-sync 2m", "1ms..=1m"],
    );
    refused(
        &out,
        &with(&["--spill-sync", "sometimes"]),
        &["sometimes", "every-batch, os"],
    );
    refused(
        &out,
        &["--max-spill-bytes", "1MiB"],
        &["--max-spill-bytes has no effect without --spill-dir"],
    );
    refused(
        &out,
        &with(&["--target", "channel"]),
        &["--spill-dir", "--target channel", "only the dispatcher"],
    );
    assert!(!tmp.path().join("spill").exists(), "nothing was created");
}

#[test]
fn a_directory_another_soak_holds_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let spill = path(&tmp.path().join("spill"));
    let first_out = tmp.path().join("first");
    let args = long_run(&path(&first_out), &["--spill-dir", &spill]);
    let mut first = spawn(&refs(&args));
    wait_for_samples(&first_out, 1, Duration::from_secs(60));
    let second_out = tmp.path().join("second");
    refused(
        &second_out,
        &["--spill-dir", &spill],
        &[&spill, "in use", "another process"],
    );
    signal(first.id(), nix::sys::signal::Signal::SIGTERM);
    let status = wait(&mut first, Duration::from_secs(60)).expect("the first run ends");
    assert_eq!(status.code(), Some(143));
}

#[test]
fn what_a_killed_run_left_on_disk_is_delivered_by_the_next() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let spill = tmp.path().join("spill");
    let out = tmp.path().join("runs");
    let spill_dir = path(&spill);
    let tier = ["--spill-dir", &spill_dir, "--spill-write-ahead"];
    let args = long_run(&path(&out), &[&OVERFLOWING[..], &tier].concat());
    let mut killed = spawn(&refs(&args));
    wait_for_samples(&out, 2, Duration::from_secs(60));
    signal(killed.id(), nix::sys::signal::Signal::SIGKILL);
    let _ = wait(&mut killed, Duration::from_secs(10));
    let next_out = tmp.path().join("next");
    let run = spilling_run(&next_out, &spill, &[]);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    let dir = runlog::RunDir::resolve_latest(&next_out).expect("the run");
    let results = runlog::read_results(&dir.results_path()).expect("results.json");
    let totals = results.spill.as_ref().expect("results.spill");
    assert!(totals.recovered > 0, "{totals:?}");
    let delivered = results.totals.delivered;
    assert!(
        delivered >= results.totals.accepted + totals.recovered,
        "{delivered} delivered, {} accepted, {totals:?}",
        results.totals.accepted
    );
    assert!(
        stdout(&run).contains("recovered at start"),
        "{}",
        stdout(&run)
    );
}
