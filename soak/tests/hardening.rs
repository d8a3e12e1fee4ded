//! What the attack tests do not cover of the hardening: `compare --force` never writes over
//! a run directory's files, tune refuses a zero latency target, messages repeat what was
//! typed, and `compare` and `watch` refuse a FIFO as a record file instead of hanging.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;

const LIMIT: Duration = Duration::from_secs(60);

fn mkfifo(path: &Path) {
    let made = Command::new("mkfifo").arg(path).status().expect("mkfifo");
    assert!(made.success());
}

#[test]
fn compare_force_never_overwrites_a_run_directorys_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = fixture("basic", dir.path());
    let candidate = fixture("regressed", dir.path());
    for name in ["run.lock", "report.html", "notes.txt"] {
        let target = candidate.join(name);
        std::fs::write(&target, "keep me").expect("write");
        let out = run(
            &[
                "compare",
                &path(&base),
                &path(&candidate),
                "--force",
                "--output",
                &path(&target),
            ],
            LIMIT,
        );
        assert_eq!(out.status.code(), Some(2), "{name}: {}", stderr(&out));
        assert!(stderr(&out).contains(name), "{}", stderr(&out));
        assert_eq!(
            std::fs::read_to_string(&target).expect("read"),
            "keep me",
            "{name} was overwritten"
        );
    }
}

#[test]
fn tune_refuses_a_zero_latency_target_naming_the_range() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out_dir = dir.path().join("new");
    let out = run(
        &[
            "tune",
            "--latency-target",
            "0s",
            "-q",
            "--out",
            &path(&out_dir),
        ],
        LIMIT,
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--latency-target 0s") && err.contains("allowed"),
        "{err}"
    );
    assert!(!out_dir.exists(), "created {}", out_dir.display());
}

#[test]
fn range_errors_repeat_what_was_typed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out_dir = path(&dir.path().join("out"));
    for (args, typed) in [
        (&["--interval", "61s"][..], "--interval 61s"),
        (
            &["--max-buffered-bytes", "2TiB"][..],
            "--max-buffered-bytes 2TiB",
        ),
        (&["tune", "--budget", "100ms"][..], "--budget 100ms"),
        (&["tune", "--budget", "2.4s"][..], "--budget 2.4s"),
    ] {
        let mut all = args.to_vec();
        all.extend(["--out", &out_dir]);
        let out = run(&all, LIMIT);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(typed),
            "{args:?}: expected {typed:?} in: {err}"
        );
        assert!(err.contains("allowed"), "{args:?}: no range in: {err}");
    }
}

#[test]
fn compare_and_watch_refuse_a_fifo_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = fixture("basic", dir.path());
    let candidate = fixture("regressed", dir.path());
    let results = candidate.join("results.json");
    std::fs::remove_file(&results).expect("rm");
    mkfifo(&results);
    let mut child = spawn(&["compare", &path(&base), &path(&candidate)]);
    let status = wait(&mut child, Duration::from_secs(15));
    assert!(status.is_some(), "compare hung on a FIFO results.json");
    assert_eq!(status.and_then(|s| s.code()), Some(2));

    let samples = base.join("samples.jsonl");
    std::fs::remove_file(&samples).expect("rm");
    mkfifo(&samples);
    let mut child = spawn(&["watch", &path(&base)]);
    let status = wait(&mut child, Duration::from_secs(15));
    assert!(status.is_some(), "watch hung on a FIFO samples.jsonl");
    assert_eq!(status.and_then(|s| s.code()), Some(2));
    let out = finish(child, LIMIT);
    assert!(
        stderr(&out).contains("not a regular file"),
        "{}",
        stderr(&out)
    );
}
