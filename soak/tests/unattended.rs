//! A run nobody watches: signals (issue 15 item 1), closed pipes (item 6) and `soak watch`
//! on a run that ends or dies (item 16), all through the real binary.

mod common;

use std::io::Read;
use std::time::Duration;

use common::*;
use nix::sys::signal::Signal;
use runlog::{EventKind, Status};

const LIMIT: Duration = Duration::from_secs(60);

#[test]
fn item01_sigterm_drains_and_writes_a_complete_record() {
    for (sig, code, name) in [
        (Signal::SIGTERM, 143, "SIGTERM"),
        (Signal::SIGINT, 130, "SIGINT"),
        (Signal::SIGHUP, 129, "SIGHUP"),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let args = long_run(&path(dir.path()), &[]);
        let child = spawn(&refs(&args));
        let run = wait_for_samples(dir.path(), 2, LIMIT);
        signal(child.id(), sig);
        let out = finish(child, LIMIT);
        assert_eq!(out.status.code(), Some(code), "{name}: {}", stderr(&out));
        let r = runlog::read_results(&run.results_path()).expect("a complete results.json");
        let cut = r
            .interrupted
            .as_ref()
            .expect("the record says it was interrupted");
        assert_eq!((cut.signal.as_str(), cut.partial), (name, false));
        assert!(r.duration_s < 20.0, "stopped early: {}", r.duration_s);
        assert!(
            r.events.iter().any(|e| matches!(
                &e.kind,
                EventKind::Interrupted { signal, action } if signal == name && action == "drain"
            )),
            "{:?}",
            r.events
        );
        assert_eq!(
            r.assessment.correctness.status,
            Status::Pass,
            "{:#?}",
            r.assessment
        );
        assert_eq!(r.totals.accepted, r.totals.delivered + r.drain.undelivered);
        assert!(
            r.assessment
                .pressure
                .notes
                .iter()
                .any(|n| n.contains("cut short by")),
            "{:#?}",
            r.assessment.pressure
        );
        assert!(
            stdout(&out).contains(&format!("soak {}", r.run_id)),
            "the summary is printed"
        );
        assert!(run.report_path().exists(), "and the report written");
    }
}

#[test]
fn item01_a_second_signal_writes_a_partial_record_and_exits_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The consumer stalls for an hour from 300 ms on: the drain waits for its deadline.
    let args = long_run(
        &path(dir.path()),
        &[
            "--stall-every",
            "300ms",
            "--stall-for",
            "1h",
            "--drain-timeout",
            "10m",
            "--max-buffered-bytes",
            "1MiB",
        ],
    );
    let child = spawn(&refs(&args));
    let run = wait_for_samples(dir.path(), 3, LIMIT);
    signal(child.id(), Signal::SIGTERM);
    let deadline = std::time::Instant::now() + LIMIT;
    while !draining(&run) {
        assert!(std::time::Instant::now() < deadline, "no drain began");
        std::thread::sleep(Duration::from_millis(20));
    }
    signal(child.id(), Signal::SIGTERM);
    let out = finish(child, Duration::from_secs(20));
    assert_eq!(out.status.code(), Some(143), "{}", stderr(&out));
    let r = runlog::read_results(&run.results_path()).expect("a partial results.json");
    let cut = r.interrupted.as_ref().expect("marked as interrupted");
    assert!(cut.partial, "marked as partial");
    assert_eq!(r.assessment.overall, Status::Fail);
    assert!(
        r.assessment.correctness.notes[0].contains("partial record"),
        "{:#?}",
        r.assessment
    );
    assert!(r.totals.attempted > 0, "what the last sample knew");
}

#[test]
fn item01_sigterm_under_the_dashboard_gives_the_terminal_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out_dir = path(dir.path());
    let command = format!(
        "{} --tui --duration 30s --producers 2 --sample-every 200ms --out {out_dir}",
        bin().display()
    );
    // `script` gives the dashboard a terminal; its output is what the terminal received.
    let mut script = under_script(&command, true);
    wait_for_samples(dir.path(), 2, LIMIT);
    let pid = pid_of(&out_dir).expect("the soak under script");
    signal(pid, Signal::SIGTERM);
    let status = wait(&mut script, LIMIT).expect("the run ends after SIGTERM");
    let mut screen = Vec::new();
    script
        .stdout
        .take()
        .expect("stdout")
        .read_to_end(&mut screen)
        .expect("read");
    let screen = String::from_utf8_lossy(&screen);
    let entered = screen
        .find("\x1b[?1049h")
        .expect("the dashboard took the screen");
    let left = screen.rfind("\x1b[?1049l");
    assert!(
        left.is_some_and(|l| l > entered),
        "the alternate screen was left"
    );
    assert_eq!(status.code(), Some(143));
    let run = runlog::RunDir::resolve_latest(dir.path()).expect("latest");
    assert!(runlog::read_results(&run.results_path()).is_ok_and(|r| r.interrupted.is_some()));
}

#[test]
fn item06_a_closed_stdout_or_stderr_pipe_ends_output_quietly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out_dir = path(dir.path());
    let args = [
        "--duration",
        "1s",
        "--producers",
        "2",
        "--no-tui",
        "--sample-every",
        "100ms",
        "--out",
        &out_dir,
    ];
    // `soak … | true`: stdout closed.
    let mut child = spawn(&args);
    drop(child.stdout.take());
    let out = finish(child, LIMIT);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    // `soak … 2>&1 | head -1`: stderr closed after the first lines.
    let mut child = spawn(&args);
    drop(child.stderr.take());
    let out = finish(child, LIMIT);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("PASS") || stdout(&out).contains("WARN"));
    // `soak report … | true`.
    let run = runlog::RunDir::resolve_latest(dir.path()).expect("latest");
    let mut child = spawn(&["report", &path(run.path())]);
    drop(child.stdout.take());
    let out = finish(child, LIMIT);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    // `soak tune … | true`.
    let mut child = spawn(&["tune", "--budget", "3s", "-q", "--out", &out_dir]);
    drop(child.stdout.take());
    let out = finish(child, LIMIT);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
}

#[test]
fn item16_watch_on_a_killed_run_says_it_is_gone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let args = long_run(&path(dir.path()), &[]);
    let mut child = spawn(&refs(&args));
    let run = wait_for_samples(dir.path(), 2, LIMIT);
    child.kill().expect("kill -9");
    child.wait().expect("reaped");
    let out = run_watch(&run);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no process holds it"),
        "{}",
        stderr(&out)
    );
}

fn run_watch(run: &runlog::RunDir) -> std::process::Output {
    common::run(&["watch", &path(run.path())], LIMIT)
}

#[test]
fn item16_watch_follows_a_run_to_its_verdict() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out_dir = path(dir.path());
    let child = spawn(&refs(&small_run("2s", &out_dir, &[])));
    let run = wait_for_samples(dir.path(), 1, LIMIT);
    let watched = run_watch(&run);
    let out = finish(child, LIMIT);
    assert_eq!(
        watched.status.code(),
        out.status.code(),
        "{}",
        stderr(&watched)
    );
    assert!(
        stdout(&watched).contains(&run.run_id()),
        "{}",
        stdout(&watched)
    );
    assert!(
        stdout(&watched).contains("report.html"),
        "{}",
        stdout(&watched)
    );
}
