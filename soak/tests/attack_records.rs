//! Attacks on the soak's output contract through the real binary: closed pipes, outputs
//! written atomically, a full disk, and record files that are not files.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const LIMIT: Duration = Duration::from_secs(60);

/// `soak tune … 2>&1 | head -1`: stderr closed. The progress bar's last line panics
/// (exit 101) before the result is printed and before the probing run is finished.
#[test]
fn attack_tune_with_a_closed_stderr_ends_quietly() {
    let dir = tempfile::tempdir().expect("tempdir");
    // tune's smallest budget is 2.5 s.
    let mut child = spawn(&["tune", "--budget", "3s", "--out", &path(dir.path())]);
    drop(child.stderr.take());
    let out = finish(child, LIMIT);
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "exit {:?} (101 is a panic); stdout:\n{}",
        out.status,
        stdout(&out)
    );
    assert!(stdout(&out).contains("probing run:"), "{}", stdout(&out));
}

/// `soak report` on a run whose `results.json` is a FIFO (a damaged record) must refuse
/// it, not wait forever for a writer; `compare` and `watch` open it the same way.
#[test]
fn attack_report_on_a_fifo_record_does_not_hang() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = fixture("basic", dir.path());
    let results = run.join("results.json");
    std::fs::remove_file(&results).expect("rm");
    let made = Command::new("mkfifo")
        .arg(&results)
        .status()
        .expect("mkfifo");
    assert!(made.success());
    let mut child = spawn(&["report", &path(&run)]);
    let status = wait(&mut child, Duration::from_secs(15));
    assert!(
        status.is_some(),
        "soak report hung on a FIFO named results.json"
    );
    assert_eq!(status.and_then(|s| s.code()), Some(2));
}

/// `tuned.toml` must be written atomically like every other output: a write that fails
/// (a full disk: `strace` makes every write to `tuned.toml` fail with ENOSPC) must leave
/// the previous file whole. It is truncated in place first, and left empty.
#[test]
fn attack_a_failed_tuned_toml_write_keeps_the_previous_file() {
    let previous = "# tuned last week\nproducers = 4\ninterval_us = 5000\n";
    // A busy machine may find nothing healthy in the budget (then nothing is written):
    // try again until tune recommends something.
    for _ in 0..4 {
        let dir = tempfile::tempdir().expect("tempdir");
        let out_dir = dir.path().join("tune");
        std::fs::create_dir(&out_dir).expect("mkdir");
        let tuned = out_dir.join("tuned.toml");
        std::fs::write(&tuned, previous).expect("write");
        let child = Command::new("strace")
            .args(["-f", "-qq", "--seccomp-bpf", "-o", "/dev/null", "-P"])
            .arg(&tuned)
            .args([
                "-e",
                "trace=write,pwrite64,writev",
                "-e",
                "inject=write,pwrite64,writev:error=ENOSPC",
            ])
            .arg(bin())
            // Enough budget for a recommendation (the search gets what the verification
            // leaves: a 3 s budget searches for 1 s, one probe).
            .args(["tune", "--budget", "8s", "-q", "--out"])
            .arg(&out_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let Ok(child) = child else {
            eprintln!("skipped: strace is not installed (apt-get install strace)");
            return;
        };
        let out = finish(child, LIMIT);
        if stdout(&out).contains("nothing healthy") {
            continue;
        }
        let now = std::fs::read_to_string(&tuned).expect("tuned.toml");
        // An empty file is a valid scenario (every default): `--config` would run it.
        let whole_new = now != previous
            && !now.trim().is_empty()
            && runlog::ScenarioConfig::from_toml_file(&tuned).is_ok();
        assert!(
            now == previous || whole_new,
            "tuned.toml is neither the previous file nor a whole new one: {now:?}; stderr:\n{}",
            stderr(&out)
        );
        return;
    }
    panic!("tune never recommended anything");
}

/// `soak tune` ends within `--budget` plus 5 s whatever it finds in `--out`: a FIFO named
/// `tuned.toml` (left by a hostile or careless neighbour) makes it wait for a reader
/// forever after probing.
#[test]
fn attack_tune_with_a_fifo_as_tuned_toml_ends_within_its_budget() {
    // A busy machine may find nothing healthy (then nothing is written): try again.
    for _ in 0..4 {
        let dir = tempfile::tempdir().expect("tempdir");
        let made = Command::new("mkfifo")
            .arg(dir.path().join("tuned.toml"))
            .status()
            .expect("mkfifo");
        assert!(made.success());
        let began = Instant::now();
        // tune's smallest budget is 2.5 s.
        let mut child = spawn(&["tune", "--budget", "3s", "-q", "--out", &path(dir.path())]);
        // 3 s of budget + 5 s of margin, and as much again for a busy machine.
        let status = wait(&mut child, Duration::from_secs(16));
        assert!(
            status.is_some(),
            "soak tune --budget 3s was still running after {:.0} s",
            began.elapsed().as_secs_f64()
        );
        let out = finish(child, LIMIT);
        if !stdout(&out).contains("nothing healthy") {
            return;
        }
    }
    panic!("tune never recommended anything");
}

/// `soak tune` on a full disk (a file-size limit set once probing has begun): the probing
/// run's record cannot be written, which must be said as such (exit 3, record
/// incomplete). Tune reads its probes back from that record, finds none, blames the
/// budget ("give a larger --budget") and exits 1.
#[test]
fn attack_tune_on_a_full_disk_does_not_blame_the_budget() {
    let dir = tempfile::tempdir().expect("tempdir");
    // SIGXFSZ ignored (inherited across exec): a write past the limit fails with EFBIG.
    let child = Command::new("bash")
        .args([
            "-c",
            "trap '' XFSZ; exec \"$0\" tune --budget 3s -q --out \"$1\"",
        ])
        .arg(bin())
        .arg(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bash");
    wait_for_samples(dir.path(), 1, LIMIT);
    let limited = Command::new("prlimit")
        .args(["--pid", &child.id().to_string(), "--fsize=4096"])
        .status()
        .expect("prlimit(1) runs (util-linux)");
    assert!(limited.success());
    let out = finish(child, LIMIT);
    let err = stderr(&out);
    assert!(!err.contains("larger --budget"), "{err}");
    assert_eq!(out.status.code(), Some(3), "{err}");
}

/// `soak compare` on a full disk (a file-size limit): the comparison is computed, so the
/// verdict must still be printed and the exit code say the output is incomplete (3), not
/// "bad input" (2) with no verdict at all.
#[test]
fn attack_compare_on_a_full_disk_prints_the_verdict() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = fixture("basic", dir.path());
    let candidate = fixture("regressed", dir.path());
    let command = format!(
        "trap '' XFSZ; ulimit -f 16; exec {} compare {} {} --fail-on-regression --force",
        bin().display(),
        path(&base),
        path(&candidate)
    );
    let began = Instant::now();
    let out = Command::new("bash")
        .args(["-c", &command])
        .output()
        .expect("bash");
    assert!(began.elapsed() < LIMIT);
    assert!(
        !candidate.join("compare.html").exists(),
        "the page did not fit"
    );
    assert!(
        stdout(&out).contains("candidate"),
        "no verdict printed (exit {:?}): {}",
        out.status,
        stderr(&out)
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
}

/// Held: the output directory removed while the run goes: the run reaches its verdict,
/// prints it and exits 3 (the record could not be written).
#[test]
fn held_an_out_dir_removed_mid_run_still_prints_the_verdict() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out_dir = dir.path().join("runs");
    let child = spawn(&refs(&small_run("2s", &path(&out_dir), &[])));
    let run = wait_for_samples(&out_dir, 2, LIMIT);
    std::fs::remove_dir_all(&out_dir).expect("rm -rf");
    let out = finish(child, LIMIT);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!("soak {}: ", run.run_id())),
        "{}",
        stdout(&out)
    );
}
