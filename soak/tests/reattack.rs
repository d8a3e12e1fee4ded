//! An independent re-attack on the soak binary, by its README contract. Each test here
//! encodes a break found by hand against the prebuilt binary; each is marked `// BREAK:`
//! with what the contract expects and what was observed.
//!
//! Run against a prebuilt binary with `SOAK_BIN=/path/to/soak cargo test -p soak --test reattack`.

mod common;

use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const LIMIT: Duration = Duration::from_secs(60);

/// A finished one-second run under `out`; returns its run directory.
fn short_run(out: &Path) -> PathBuf {
    let o = run(
        &[
            "--duration",
            "1s",
            "--producers",
            "2",
            "--no-tui",
            "--out",
            &path(out),
        ],
        LIMIT,
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    std::fs::canonicalize(out.join("latest")).expect("latest")
}

fn mkfifo(p: &Path) {
    nix::unistd::mkfifo(p, nix::sys::stat::Mode::from_bits_truncate(0o644)).expect("mkfifo");
}

// Regression (found by the second attack): the contract says record files that are FIFOs/devices are refused and never
// hang, and `soak watch DIR` on something that is not a (readable) run exits 2 at once
// (as `soak report`/`soak compare` do: exit 2 at once, "not a regular file").
// Observed: `soak watch RUN` where RUN/results.json is a FIFO (run finished, run.lock
// free) replays the samples, then waits ~15 s and exits 1 ("the run ended without a
// readable record: ... not a regular file"); the same with a char device (/dev/null).
#[test]
fn reattack_watch_refuses_a_fifo_results_json_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run_dir = short_run(dir.path());
    let results = run_dir.join("results.json");
    std::fs::remove_file(&results).expect("rm results.json");
    mkfifo(&results);
    let started = Instant::now();
    let mut child = spawn(&["watch", &path(&run_dir)]);
    let status = wait(&mut child, LIMIT).expect("watch ends");
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(5) && status.code() == Some(2),
        "a FIFO results.json is refused at once with exit 2: observed exit {:?} after {took:?}",
        status.code()
    );
}

// Regression (found by the second attack): `soak watch DIR` on something that is not a run exits 2 at once. Observed: a
// directory holding only a results.json of `{}` (which `soak report` and `soak compare`
// refuse at once, exit 2: unsupported schema "") makes `soak watch` wait ~15 s and exit 1.
#[test]
fn reattack_watch_refuses_a_bogus_record_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("results.json"), b"{}\n").expect("write");
    let report = run(&["report", &path(dir.path())], LIMIT);
    assert_eq!(
        report.status.code(),
        Some(2),
        "report refuses it: {}",
        stderr(&report)
    );
    let started = Instant::now();
    let mut child = spawn(&["watch", &path(dir.path())]);
    let status = wait(&mut child, LIMIT).expect("watch ends");
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(5) && status.code() == Some(2),
        "not a run: exit 2 at once; observed exit {:?} after {took:?}",
        status.code()
    );
}

// Regression (found by the second attack): `compare --output` must never write a run directory's own files, group.json
// among them. Observed: `soak compare A A --force --output RUN/group.json` (RUN a single
// run, which has no group.json yet) exits 0 and writes the comparison page as
// RUN/group.json; afterwards `soak compare RUN RUN` fails with exit 2
// ("RUN/group.json:1: expected value at line 1 column 1"): the run is no longer usable.
#[test]
fn reattack_compare_output_does_not_plant_group_json_in_a_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run_dir = short_run(dir.path());
    let r = path(&run_dir);
    let target = run_dir.join("group.json");
    let o = run(
        &["compare", &r, &r, "--force", "--output", &path(&target)],
        LIMIT,
    );
    let planted = target.exists();
    let after = run(&["compare", &r, &r], LIMIT);
    assert!(
        !planted,
        "compare --output wrote {} into a run directory (exit {:?}); a later compare of the run exits {:?}: {}",
        target.display(),
        o.status.code(),
        after.status.code(),
        stderr(&after)
    );
    assert_eq!(
        o.status.code(),
        Some(2),
        "refused as bad input: {}",
        stderr(&o)
    );
}

/// `soak ARGS` with stdout on /dev/full.
fn to_dev_full(args: &[&str]) -> std::process::Output {
    let full = OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full");
    let child = Command::new(bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(full)
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    finish(child, LIMIT)
}

// Regression (found by the second attack): exit 3 when an output could not be written. Observed: `soak --json ... >/dev/full`
// (the results.json the user asked for on stdout cannot be written: ENOSPC) exits 0,
// silently; a CI job piping the JSON gets nothing and a success.
#[test]
fn reattack_json_to_a_full_stdout_is_exit_3() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = to_dev_full(&[
        "--duration",
        "1s",
        "--producers",
        "2",
        "--json",
        "--out",
        &path(dir.path()),
    ]);
    assert_eq!(
        o.status.code(),
        Some(3),
        "--json to a full stdout: {}",
        stderr(&o)
    );
}

// Regression (found by the second attack): the same for `soak compare --json >/dev/full`: exit 0 observed, 3 expected.
#[test]
fn reattack_compare_json_to_a_full_stdout_is_exit_3() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run_dir = short_run(&dir.path().join("runs"));
    let r = path(&run_dir);
    let page = path(&dir.path().join("cmp.html"));
    let o = to_dev_full(&["compare", &r, &r, "--json", "--output", &page]);
    assert_eq!(
        o.status.code(),
        Some(3),
        "compare --json to a full stdout: {}",
        stderr(&o)
    );
}

// Regression (found by the second attack): a first SIGINT exits 130 with an `interrupted` object in results.json, and the
// terminal is restored. On a terminal the user's SIGINT is Ctrl-C; under the dashboard
// (the default on a terminal) Ctrl-C is read as a key and treated as "quit": observed,
// a 6 s run stopped after ~2 s exits 0, its results.json has no `interrupted` object
// (duration_s ~2.0 of 6, overall "pass"), a run cut short by the user recorded as a
// complete pass. A second Ctrl-C during a long drain does not leave at once either.
#[test]
fn reattack_ctrl_c_under_the_dashboard_is_a_sigint() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("no `script`: skipped");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("runs");
    let cmd = format!(
        "{} --duration 6s --producers 2 --out {}",
        bin().display(),
        out.display()
    );
    let mut child = under_script(&cmd, false);
    let mut stdin = child.stdin.take().expect("stdin");
    std::thread::sleep(Duration::from_secs(2));
    stdin.write_all(b"\x03").expect("Ctrl-C");
    stdin.flush().expect("flush");
    let status = wait(&mut child, LIMIT);
    drop(stdin);
    let status = status.expect("the run ends");
    let run_dir = std::fs::canonicalize(out.join("latest")).expect("latest");
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("results.json")).expect("results.json"))
            .expect("json");
    assert!(
        record.get("interrupted").is_some_and(|v| !v.is_null()),
        "Ctrl-C on the dashboard: exit {:?}, no `interrupted` in results.json (duration_s {} of 6)",
        status.code(),
        record["duration_s"]
    );
    assert_eq!(status.code(), Some(130), "Ctrl-C is a SIGINT: exit 130");
}

// Regression (found by the second attack): once the record is written, a signal ends the process by the signal (and a
// second signal leaves at once with 128+that signal, as a plain run does: SIGTERM then
// SIGINT 10 ms later exits 130). Observed with `soak tune`: SIGTERM to the probing run,
// then SIGINT 20-80 ms later, after the probing run's complete record is written
// (`interrupted.partial: false`): stderr says "soak: SIGINT: leaving at once" and the
// process exits 143 (the first signal's code), not by SIGINT / 130.
#[test]
fn reattack_tune_second_signal_after_the_record_ends_by_that_signal() {
    use std::os::unix::process::ExitStatusExt as _;
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("tune");
    let child = spawn(&[
        "tune",
        "--budget",
        "6s",
        "--producers",
        "4",
        "--out",
        &path(&out),
    ]);
    std::thread::sleep(Duration::from_millis(1500));
    signal(child.id(), nix::sys::signal::Signal::SIGTERM);
    std::thread::sleep(Duration::from_millis(50));
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    );
    let o = finish(child, LIMIT);
    let err = stderr(&o);
    assert!(
        o.status.code() == Some(130) || o.status.signal() == Some(2),
        "SIGINT after the record: ends by SIGINT; observed {:?}: {}",
        o.status,
        err.lines().rev().take(3).collect::<Vec<_>>().join(" | ")
    );
}
