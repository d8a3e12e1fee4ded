//! Values and files a run must refuse, bound or explain, through the real binary: huge
//! durations (issue 15 item 5), live changes (item 7), many producers (item 10), special
//! files (item 12), payloads that cannot fit and zero deliveries (item 13), messages
//! (items 17 and 18).

mod common;

use std::io::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;
use runlog::{EventKind, Status};

const LIMIT: Duration = Duration::from_secs(60);

/// `soak ARGS --out <empty dir>`: must be refused (exit 2) saying `says`, creating nothing.
fn refused(args: &[&str], says: &[&str]) {
    let dir = tempfile::tempdir().expect("tempdir");
    let out_dir = path(&dir.path().join("out"));
    let mut all = args.to_vec();
    all.extend(["--no-tui", "--out", &out_dir]);
    let out = common::run(&all, LIMIT);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    for s in says {
        assert!(err.contains(s), "{args:?}: expected {s:?} in: {err}");
    }
    assert!(
        !Path::new(&out_dir).exists(),
        "{args:?}: nothing is created"
    );
}

fn scenario_file(dir: &Path, text: &str) -> String {
    let file = dir.join("scenario.toml");
    std::fs::write(&file, text).expect("write");
    path(&file)
}

#[test]
fn item05_a_huge_duration_is_refused_before_anything_exists() {
    refused(&["--duration", "10000000000000000000s"], &["--duration"]);
    refused(&["--drain-timeout", "100000000000s"], &["--drain-timeout"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = scenario_file(dir.path(), "duration_s = 1e30\n");
    refused(&["--config", &file], &[&file, "duration_s"]);
}

#[test]
fn item07_dashboard_changes_are_bounded_like_the_command_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out_dir = path(dir.path());
    let command = format!(
        "{} --tui --duration 30s --producers 2 --rate 1k/s --sample-every 200ms --out {out_dir}",
        bin().display()
    );
    let mut script = under_script(&command, false);
    let run = wait_for_samples(dir.path(), 2, LIMIT);
    let mut keys = script.stdin.take().expect("stdin");
    // Select "max buffered" and double it far past any machine.
    keys.write_all(b"\x1b[B").expect("down");
    std::thread::sleep(Duration::from_millis(100));
    keys.write_all(b"\x1b[B").expect("down");
    for _ in 0..45 {
        std::thread::sleep(Duration::from_millis(20));
        keys.write_all(b"+").expect("+");
    }
    std::thread::sleep(Duration::from_millis(500));
    keys.write_all(b"q").expect("q");
    let status = wait(&mut script, LIMIT).expect("the run ends after q");
    drop(keys);
    assert!(matches!(status.code(), Some(0 | 1)), "{status:?}");
    let r = runlog::read_results(&run.results_path()).expect("results");
    let memory = total_memory();
    let set: Vec<u64> = r
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Reconfigure { knob, to, .. } if knob == "max_buffered_bytes" => {
                to.parse().ok()
            }
            _ => None,
        })
        .collect();
    assert!(
        !set.is_empty(),
        "some doublings went through: {:?}",
        r.events
    );
    assert!(
        set.iter()
            .all(|&b| b <= runlog::bounds::MAX_BUFFERED_BYTES && b <= memory / 2),
        "{set:?}"
    );
    assert!(r.memory.max_buffered_bytes <= memory / 2);
}

fn total_memory() -> u64 {
    let info = std::fs::read_to_string("/proc/meminfo").expect("meminfo");
    let kib: u64 = info
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("MemTotal");
    kib * 1024
}

#[test]
fn item10_producers_are_ready_before_the_clock_and_bounded_by_the_machine() {
    refused(
        &["--producers", "4096", "--cpus", "1", "--duration", "1s"],
        &["--producers 4096", "at most 128"],
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let out = common::run(
        &[
            "--producers",
            "128",
            "--cpus",
            "1",
            "--duration",
            "1s",
            "--sample-every",
            "250ms",
            "--no-tui",
            "--out",
            &path(dir.path()),
        ],
        LIMIT,
    );
    let err = stderr(&out);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{err}");
    let ready = err.find("128 producers ready").expect("start-up is shown");
    let first_sample = err.find("[ ").expect("a progress line");
    assert!(
        ready < first_sample,
        "the clock starts after start-up: {err}"
    );
}

#[test]
fn item12_special_files_are_refused_not_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fifo = dir.path().join("fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(made.success());
    let fifo = path(&fifo);
    refused(
        &["--payload", &format!("file:{fifo}"), "--duration", "1s"],
        &["not a regular file"],
    );
    refused(&["--config", &fifo], &["not a regular file"]);
    refused(&["--config", "/dev/zero"], &["not a regular file"]);
    let big = dir.path().join("big.toml");
    std::fs::write(&big, "#".repeat(2 << 20)).expect("write");
    refused(&["--config", &path(&big)], &["limit"]);
}

#[test]
fn item13_a_payload_that_cannot_fit_is_refused_before_the_run() {
    refused(
        &[
            "--payload",
            "fixed:2MiB",
            "--max-buffered-bytes",
            "1MiB",
            "--max-batch-bytes",
            "64KiB",
        ],
        &["--payload fixed:2MiB", "do not fit"],
    );
    refused(
        &["--max-buffered-bytes", "1", "--max-batch-bytes", "1"],
        &["do not fit"],
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let records = dir.path().join("records.jsonl");
    let mut text = "{\"a\":1}\n".to_string();
    text.push_str(&"x".repeat(2 << 20));
    text.push('\n');
    std::fs::write(&records, text).expect("write");
    refused(
        &[
            "--payload",
            &format!("file:{}", path(&records)),
            "--max-buffered-bytes",
            "1MiB",
            "--max-batch-bytes",
            "64KiB",
        ],
        &["do not fit"],
    );
}

#[test]
fn item13_zero_delivered_is_never_a_pass() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Log-normal sizes around 4 MiB: none fits in 2 MiB, and that is only found by running.
    let out = common::run(
        &[
            "--payload",
            "lognormal:4MiB,0.1",
            "--max-buffered-bytes",
            "2MiB",
            "--max-batch-bytes",
            "1MiB",
            "--producers",
            "2",
            "--duration",
            "1s",
            "--no-tui",
            "-q",
            "--out",
            &path(dir.path()),
        ],
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let run = runlog::RunDir::resolve_latest(dir.path()).expect("latest");
    let r = runlog::read_results(&run.results_path()).expect("results");
    assert_eq!(r.totals.delivered, 0);
    assert_eq!(r.assessment.correctness.status, Status::Fail);
    assert!(
        r.assessment
            .correctness
            .notes
            .iter()
            .any(|n| n.contains("nothing was delivered")),
        "{:#?}",
        r.assessment.correctness
    );
}

#[test]
fn item17_range_errors_name_what_the_user_typed() {
    refused(
        &["--max-buffered-bytes", "10KiB", "--duration", "1s"],
        &["the default --max-batch-bytes", "set --max-batch-bytes"],
    );
    refused(&["--interval", "500ns"], &["--interval 500ns"]);
    refused(&["--drain-timeout", "1us"], &["--drain-timeout 1us"]);
    refused(
        &["--stall-every", "500us", "--stall-for", "1s"],
        &["--stall-every 500us"],
    );
}

#[test]
fn item17_scenario_file_errors_name_the_file_and_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = scenario_file(dir.path(), "payload = \"gaussian\"\n");
    let out = common::run(&["--config", &file, "--no-tui"], LIMIT);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains(&file) && err.contains("`payload`"), "{err}");
    assert!(!err.contains("--payload"), "{err}");
    let file = scenario_file(dir.path(), "interval_us = 0\n");
    refused(&["--config", &file], &[&file, "interval_us"]);
    refused(
        &["--sink", "nats://127.0.0.1:1", "--subject", "a b"],
        &["--subject"],
    );
    refused(
        &["--sink", "nats://127.0.0.1:1", "--stream", "a.b"],
        &["--stream"],
    );
}

#[test]
fn item18_flags_and_values_that_would_be_ignored_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").expect("write");
    let out = common::run(
        &["--duration", "1s", "--no-tui", "--out", &path(&file)],
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("not a directory"), "{}", stderr(&out));
    refused(&["--rate", "18446744073709551615/s"], &["--rate"]);
    refused(&["--stall-for", "1s"], &["--stall-for", "no effect"]);
    refused(
        &["--policy", "block", "--target", "channel"],
        &["--policy", "no effect"],
    );
    refused(
        &["--block-timeout", "0s", "--policy", "block"],
        &["--block-timeout 0s"],
    );
    let toml = scenario_file(dir.path(), "preset = \"turbo\"\n");
    refused(&["--config", &toml], &["is not a preset"]);
}
