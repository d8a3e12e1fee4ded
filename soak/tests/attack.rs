//! Attacks on the soak's signal contract through the real binary: signals at start-up,
//! during `--sink` set-up, after the record is written, under `nohup`, to `soak tune` and
//! to `soak watch` on a terminal, and the balance of a partial record.

mod common;

use std::io::Read as _;
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const LIMIT: Duration = Duration::from_secs(60);

/// Sends `sig`, ignoring a process that is already gone.
fn try_signal(pid: u32, sig: Signal) {
    let _ = kill(Pid::from_raw(pid as i32), sig);
}

/// The first SIGINT while `--sink` is being set up (a broker that accepts the connection
/// and never speaks) must end the process with 130, like any first signal. It is
/// acknowledged ("stopping the producers and draining"), then ignored until the set-up
/// deadline, and the process exits 2 as if the user had typed a bad value.
#[test]
fn attack_sigint_during_sink_setup_exits_130() {
    let dir = tempfile::tempdir().expect("tempdir");
    let silent = TcpListener::bind("127.0.0.1:0").expect("a silent listener");
    let url = format!(
        "nats://127.0.0.1:{}",
        silent.local_addr().expect("addr").port()
    );
    let out_dir = path(&dir.path().join("runs"));
    let args = long_run(&out_dir, &["--sink", &url]);
    let child = spawn(&refs(&args));
    // The connection proves the set-up has begun (the handler is installed
    // before anything else), however slow the host.
    silent
        .set_nonblocking(true)
        .expect("a non-blocking listener");
    let deadline = Instant::now() + LIMIT;
    let _connection = loop {
        match silent.accept() {
            Ok((connection, _)) => break connection,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("the soak never connected to its sink: {e}"),
        }
    };
    signal(child.id(), Signal::SIGINT);
    let out = finish(child, LIMIT);
    assert_eq!(
        out.status.code(),
        Some(130),
        "a SIGINT during start-up is a SIGINT: {}",
        stderr(&out)
    );
}

/// Two signals in quick succession while the run starts (its directory and `latest`
/// exist, the producers are being started): the second must write what the run has, a
/// partial `results.json`. Nothing is written: `latest` points at a run with no record.
#[test]
fn attack_two_signals_at_start_up_leave_a_partial_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out_dir = path(dir.path());
    // Many producers on one core: start-up takes a few milliseconds.
    let mut child = spawn(&[
        "--duration",
        "30s",
        "--producers",
        "128",
        "--cpus",
        "1",
        "--no-tui",
        "--out",
        &out_dir,
    ]);
    let latest = dir.path().join("latest");
    let deadline = Instant::now() + LIMIT;
    while std::fs::symlink_metadata(&latest).is_err() {
        assert!(Instant::now() < deadline, "the run never started");
        assert!(child.try_wait().expect("wait").is_none(), "the run ended");
    }
    // Two signals, the second once the first was received: sent back to back, the
    // kernel may merge them into one (a standard signal pending twice is one).
    let err = child.stderr.take().expect("piped");
    let (lines, said) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead as _;
        let mut text = String::new();
        for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
            text.push_str(&line);
            text.push('\n');
            let _ = lines.send(line);
        }
        text
    });
    try_signal(child.id(), Signal::SIGTERM);
    // The first is acknowledged on stderr ("SIGTERM: stopping the producers and
    // draining"); if the process is gone first, the channel closes.
    let deadline = Instant::now() + LIMIT;
    while let Ok(line) = said.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        if line.contains("SIGTERM") {
            break;
        }
    }
    try_signal(child.id(), Signal::SIGTERM);
    let out = finish(child, LIMIT);
    let stderr = reader.join().expect("stderr reader");
    assert_eq!(out.status.code(), Some(143), "{stderr}");
    let run = runlog::RunDir::resolve_latest(dir.path()).expect("latest");
    let r = runlog::read_results(&run.results_path()).unwrap_or_else(|e| {
        panic!(
            "the second signal left {} without a record ({e}); stderr:\n{stderr}",
            run.path().display(),
        )
    });
    let interrupted = r.interrupted.expect("the record says it was interrupted");
    if !interrupted.partial {
        // The drain finished (and the record was written) before the second signal came,
        // or the kernel merged the two: a complete record must balance.
        assert_eq!(
            r.totals.accepted,
            r.totals.delivered + r.totals.dropped,
            "a complete record accounts for every event; stderr:\n{stderr}"
        );
    }
}

/// A second signal writes the record as of the last sample; its totals must still
/// balance: accepted == delivered + dropped + undelivered (+ in flight, failed). The
/// events buffered at the last sample are in none of them.
#[test]
fn attack_a_partial_record_accounts_for_every_accepted_event() {
    let dir = tempfile::tempdir().expect("tempdir");
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
    let deadline = Instant::now() + LIMIT;
    while !draining(&run) {
        assert!(Instant::now() < deadline, "no drain began");
        std::thread::sleep(Duration::from_millis(20));
    }
    signal(child.id(), Signal::SIGTERM);
    let out = finish(child, LIMIT);
    assert_eq!(out.status.code(), Some(143), "{}", stderr(&out));
    let r = runlog::read_results(&run.results_path()).expect("a partial results.json");
    assert!(r.interrupted.as_ref().is_some_and(|i| i.partial));
    let (t, d) = (&r.totals, &r.drain);
    let accounted = t.delivered + t.dropped + d.undelivered + d.in_flight + d.failed;
    assert_eq!(
        t.accepted, accounted,
        "accepted {} but delivered {} + dropped {} + undelivered {} + in flight {} + failed {}",
        t.accepted, t.delivered, t.dropped, d.undelivered, d.in_flight, d.failed
    );
}

/// Under `nohup` (SIGHUP ignored by whoever started the run, as when an SSH session that
/// started it closes), a hang-up must not stop the run; the soak re-enables SIGHUP and
/// ends the run with 129.
#[test]
fn attack_sighup_under_nohup_does_not_stop_the_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out_dir = path(dir.path());
    let child = Command::new("nohup")
        .arg(bin())
        .args(small_run("2s", &out_dir, &[]))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("nohup(1) runs (coreutils)");
    wait_for_samples(dir.path(), 2, LIMIT);
    // nohup execs the soak: the child's pid is the soak's.
    signal(child.id(), Signal::SIGHUP);
    let out = finish(child, LIMIT);
    assert_eq!(
        out.status.code(),
        Some(0),
        "the hang-up nohup ignores stopped the run: {}",
        stderr(&out)
    );
}

/// A SIGTERM that arrives once `results.json` is written (while the report is rendered)
/// must not be acknowledged and then dropped: either it ends the process (143 and a record
/// that says so), or it is not taken at all (the default action). The soak prints
/// "SIGTERM: stopping the producers and draining" and exits 0 with a record that never
/// mentions it (or, a moment earlier, exits 143 with such a record).
#[test]
fn attack_sigterm_while_the_report_is_written_is_not_swallowed() {
    for _ in 0..5 {
        let dir = tempfile::tempdir().expect("tempdir");
        let out_dir = path(dir.path());
        let child = spawn(&[
            "--duration",
            "1s",
            "--producers",
            "2",
            "--no-tui",
            "-q",
            "--out",
            &out_dir,
        ]);
        let run = latest(dir.path(), LIMIT);
        let deadline = Instant::now() + LIMIT;
        while !run.results_path().exists() {
            assert!(Instant::now() < deadline, "no results.json");
            std::hint::spin_loop();
        }
        try_signal(child.id(), Signal::SIGTERM);
        let out = finish(child, LIMIT);
        let err = stderr(&out);
        let acknowledged = err.contains("SIGTERM");
        let recorded = runlog::read_results(&run.results_path())
            .expect("results.json")
            .interrupted
            .is_some();
        match out.status.code() {
            Some(143) => assert!(recorded, "exit 143, but the record was not interrupted"),
            Some(_) => assert!(
                !acknowledged,
                "SIGTERM was acknowledged, then dropped: exit {:?}; {err}",
                out.status
            ),
            None => {} // Ended by the signal's default action.
        }
    }
}

/// SIGTERM to `soak tune`: the probing run is a run like any other, with producers and a
/// record under `--out` (where `latest` now points); it must get its drain and a complete
/// `results.json` that says it was interrupted. The process dies at once instead, leaving
/// the probing run without a record.
#[test]
fn attack_sigterm_to_tune_completes_the_probing_runs_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out_dir = path(dir.path());
    let child = spawn(&["tune", "--budget", "20s", "-q", "--out", &out_dir]);
    let run = wait_for_samples(dir.path(), 2, LIMIT);
    signal(child.id(), Signal::SIGTERM);
    let out = finish(child, LIMIT);
    let r = runlog::read_results(&run.results_path()).unwrap_or_else(|e| {
        panic!(
            "the probing run {} was left without a record ({e}); exit {:?}",
            run.path().display(),
            out.status
        )
    });
    assert!(r.interrupted.is_some(), "{:?}", r.interrupted);
}

/// SIGTERM to `soak watch` on a terminal: the dashboard must give the terminal back
/// (leave the alternate screen), as it does under a run's `--tui`.
#[test]
fn attack_sigterm_to_watch_gives_the_terminal_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let args = long_run(&path(dir.path()), &[]);
    let mut runner = spawn(&refs(&args));
    let run = wait_for_samples(dir.path(), 2, LIMIT);
    let run_path = path(run.path());
    let command = format!("{} watch {run_path}", bin().display());
    let mut script = under_script(&command, true);
    let deadline = Instant::now() + LIMIT;
    let pid = loop {
        if let Some(pid) = pid_of(&run_path) {
            break pid;
        }
        assert!(Instant::now() < deadline, "soak watch never started");
        std::thread::sleep(Duration::from_millis(20));
    };
    // Let the dashboard draw a few frames.
    std::thread::sleep(Duration::from_millis(1500));
    signal(pid, Signal::SIGTERM);
    let status = wait(&mut script, LIMIT);
    let mut screen = Vec::new();
    if let Some(mut s) = script.stdout.take() {
        let _ = s.read_to_end(&mut screen);
    }
    try_signal(runner.id(), Signal::SIGINT);
    let _ = wait(&mut runner, LIMIT);
    assert!(status.is_some(), "soak watch ended after SIGTERM");
    let screen = String::from_utf8_lossy(&screen);
    let entered = screen
        .find("\x1b[?1049h")
        .expect("the dashboard took the screen");
    assert!(
        screen
            .rfind("\x1b[?1049l")
            .is_some_and(|left| left > entered),
        "the terminal was left on the alternate screen after SIGTERM"
    );
}
