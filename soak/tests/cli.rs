//! The `soak` binary end to end: short real runs, their record, exit codes.

use std::path::Path;
use std::process::{Command, Output};

fn soak(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_soak"))
        .args(args)
        .output()
        .expect("the soak binary runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_short_run_writes_a_complete_passing_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out_dir = dir.path().to_str().expect("utf-8 path");
    let out = soak(&[
        "--duration",
        "1500ms",
        "--producers",
        "4",
        "--sample-every",
        "500ms",
        "--out",
        out_dir,
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    let printed: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("--json prints results.json");
    let run = runlog::RunDir::resolve_latest(dir.path()).expect("latest points at the run");
    let results = runlog::read_results(&run.results_path()).expect("results.json reads back");
    assert_eq!(printed["run_id"], results.run_id.as_str());
    assert_eq!(results.config.producers, 4);
    assert_ne!(
        results.assessment.overall,
        runlog::Status::Fail,
        "{:#?}",
        results.assessment
    );
    assert_eq!(results.assessment.correctness.status, runlog::Status::Pass);

    let t = &results.totals;
    assert!(t.delivered > 0);
    assert_eq!(
        t.accepted,
        t.delivered + t.dropped + results.drain.undelivered
    );
    assert_eq!(t.attempted, t.accepted + t.rejected);
    assert_eq!(results.latency_us.count, t.delivered);

    let log = runlog::read_samples(&run.samples_path()).expect("samples.jsonl reads back");
    assert!(log.truncated.is_none());
    assert!(
        log.samples.len() >= 3,
        "one sample per 500 ms, plus the drain"
    );
    assert_eq!(log.samples.last().map(|s| s.phase.as_str()), Some("drain"));
    assert_eq!(
        log.samples.last().map(|s| s.totals.delivered),
        Some(t.delivered)
    );
    let phases: Vec<_> = results
        .events
        .iter()
        .map(|e| format!("{:?}", e.kind))
        .collect();
    assert!(phases.iter().any(|p| p.contains("drain")), "{phases:?}");

    let hlog = runlog::read_hlog(&run.hlog_path()).expect("latency.hlog reads back");
    let logged: u64 = hlog.iter().map(|(_, _, h)| h.len()).sum();
    assert_eq!(logged, t.delivered, "every latency lands in one interval");
}

#[test]
fn the_reference_channels_and_drop_oldest_runs_account_for_every_event() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out_dir = dir.path().to_str().expect("utf-8 path");
    for extra in [
        ["--target", "channel"],
        ["--target", "crossbeam"],
        ["--target", "tokio"],
        ["--policy", "drop-oldest"],
    ] {
        let mut args = vec![
            "--duration",
            "700ms",
            "--producers",
            "4",
            "--max-buffered-bytes",
            "256KiB",
            "-q",
            "--out",
            out_dir,
        ];
        args.extend(extra);
        let out = soak(&args);
        assert_eq!(out.status.code(), Some(0), "{extra:?}: {}", stderr(&out));
        let run = runlog::RunDir::resolve_latest(dir.path()).expect("latest");
        let r = runlog::read_results(&run.results_path()).expect("results");
        assert_eq!(
            r.assessment.correctness.status,
            runlog::Status::Pass,
            "{extra:?}: {:#?}",
            r.assessment
        );
        assert_eq!(r.totals.accepted, r.totals.delivered + r.totals.dropped);
        assert!(r.totals.delivered > 0, "{extra:?}: nothing delivered");
        if extra[0] == "--target" {
            assert_eq!(
                r.config.target.name(),
                extra[1],
                "the record names the target"
            );
            assert!(
                runlog::human::scenario(&r.config).ends_with(&format!("target {}", extra[1])),
                "the scenario line names the target"
            );
        }
    }
}

#[test]
fn a_reference_channel_refuses_the_dispatchers_flags_naming_itself() {
    for target in ["crossbeam", "tokio"] {
        let out = soak(&["--target", target, "--policy", "block", "-d", "1s"]);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(
            stderr(&out).contains(&format!("--target {target}")),
            "{}",
            stderr(&out)
        );
    }
}

#[test]
fn bad_arguments_exit_2_naming_the_flag() {
    let out = soak(&["--producers", "0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("producers"), "{}", stderr(&out));

    let out = soak(&["--rate", "fast"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--rate"), "{}", stderr(&out));

    let out = soak(&[
        "--payload",
        "file:/nonexistent/events.jsonl",
        "--duration",
        "1s",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("/nonexistent/events.jsonl"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn an_unwritable_out_dir_fails_before_the_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").expect("write");
    let started = std::time::Instant::now();
    let out = soak(&["--duration", "30s", "--out", file.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--out"), "{}", stderr(&out));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "refused before running"
    );
    assert!(!Path::new(&file).join("latest").exists());
}

#[test]
fn every_run_leaves_a_report_and_runs_compare() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out_dir = dir.path().to_str().expect("utf-8 path");
    let mut runs = Vec::new();
    for producers in ["2", "2", "3"] {
        let out = soak(&[
            "--duration",
            "600ms",
            "--producers",
            producers,
            "--sample-every",
            "200ms",
            "-q",
            "--out",
            out_dir,
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let run = runlog::RunDir::resolve_latest(dir.path()).expect("latest");
        let html = std::fs::read_to_string(run.report_path()).expect("report.html after the run");
        assert!(
            html.contains("<svg") && html.contains(&run.run_id()),
            "a report of this run"
        );
        runs.push(run.path().to_path_buf());
    }
    let path = |p: &Path| p.to_str().expect("utf-8").to_string();

    std::fs::remove_file(runlog::RunDir::open(&runs[0]).expect("open").report_path())
        .expect("remove");
    let out = soak(&["report", &path(&runs[0])]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        runlog::RunDir::open(&runs[0])
            .expect("open")
            .report_path()
            .exists(),
        "report renders again"
    );

    let out = soak(&[
        "compare",
        &path(&runs[0]),
        &path(&runs[1]),
        "--threshold",
        "1000%",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(runs[1].join("compare.html").exists());
    // Readable names with units, not raw keys.
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("delivered/s") && text.contains("overall: "),
        "{text}"
    );
    assert!(!text.contains("avg_delivered_per_sec"), "{text}");

    let out = soak(&["compare", &path(&runs[0]), &path(&runs[2])]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "different scenarios are refused"
    );
    assert!(stderr(&out).contains("producers"), "{}", stderr(&out));
    let out = soak(&[
        "compare",
        &path(&runs[0]),
        &path(&runs[2]),
        "--force",
        "--threshold",
        "1000%",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    let out = soak(&["report", "/nonexistent/run"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn compare_fails_on_a_regression_when_asked() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../reports/tests/fixtures");
    // Groups of five runs: one run a side is never a verdict (see the next test). The
    // slower group's consumer delay differs, hence --force.
    let (base, regressed) = (
        fixtures.join("groups/same-a"),
        fixtures.join("groups/slower"),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let page = dir.path().join("compare.html");
    let args = |extra: &[&str]| {
        let mut args = vec![
            "compare".to_string(),
            base.to_str().expect("utf-8").to_string(),
            regressed.to_str().expect("utf-8").to_string(),
            "--force".to_string(),
            "--output".to_string(),
            page.to_str().expect("utf-8").to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    let run = |a: Vec<String>| {
        Command::new(env!("CARGO_BIN_EXE_soak"))
            .args(a)
            .output()
            .expect("runs")
    };
    let out = run(args(&[]));
    assert_eq!(
        out.status.code(),
        Some(0),
        "without --fail-on-regression: {}",
        stderr(&out)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("overall: REGRESSED"), "{text}");
    let out = run(args(&["--fail-on-regression"]));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(page.exists());
}

#[test]
fn compare_of_one_run_a_side_never_fails_on_regression() {
    // Two runs of one build, back to back, 27% apart: noise, not a regression.
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../reports/tests/fixtures");
    let dir = tempfile::tempdir().expect("tempdir");
    let page = dir.path().join("compare.html");
    let out = Command::new(env!("CARGO_BIN_EXE_soak"))
        .arg("compare")
        .arg(fixtures.join("aa-delay0/first"))
        .arg(fixtures.join("aa-delay0/second"))
        .arg("--fail-on-regression")
        .arg("--output")
        .arg(&page)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("overall: INCONCLUSIVE"), "{text}");
    assert!(text.contains("--repeat 3"), "{text}");
}

#[test]
fn cpus_pins_the_run_and_is_recorded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out_dir = dir.path().to_str().expect("utf-8 path");
    let out = soak(&[
        "--duration",
        "500ms",
        "--producers",
        "2",
        "--cpus",
        "1",
        "-q",
        "--out",
        out_dir,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let run = runlog::RunDir::resolve_latest(dir.path()).expect("latest");
    let r = runlog::read_results(&run.results_path()).expect("results");
    assert_eq!(
        (r.config.cpus, r.environment.cpus_constrained),
        (Some(1), Some(1))
    );

    let out = soak(&["--cpus", "100000", "--duration", "1s", "--out", out_dir]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--cpus 100000 is out of range"),
        "{}",
        stderr(&out)
    );
}

/// `-v` shows the soak's diagnostics (tracing, debug level) on stderr only; without it
/// they are off; a bad `--log-level` is a usage error naming what was typed and the levels.
#[test]
fn verbose_diagnostics_go_to_stderr_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out_dir = dir.path().to_str().expect("utf-8 path");
    let args = [
        "--duration",
        "1s",
        "--producers",
        "2",
        "--no-tui",
        "-q",
        "--out",
        out_dir,
    ];
    let quiet = soak(&args);
    assert!(
        !stderr(&quiet).contains("DEBUG"),
        "off by default: {}",
        stderr(&quiet)
    );
    let verbose = soak(&[&args[..], &["-v"]].concat());
    assert!(
        matches!(verbose.status.code(), Some(0 | 1)),
        "{}",
        stderr(&verbose)
    );
    let err = stderr(&verbose);
    for says in [
        "scenario resolved",
        "run directory created",
        "phase: run",
        "phase: drain",
    ] {
        assert!(err.contains(says), "{says}: {err}");
    }
    assert!(!err.contains('\u{1b}'), "no colour into a pipe: {err}");
    let text = String::from_utf8_lossy(&verbose.stdout);
    assert!(
        !text.contains("DEBUG"),
        "stdout carries no diagnostics: {text}"
    );

    let bad = soak(&["--log-level", "loud"]);
    assert_eq!(bad.status.code(), Some(2));
    let err = stderr(&bad);
    assert!(
        err.contains("'loud'") && err.contains("--log-level"),
        "{err}"
    );
    assert!(err.contains("error, warn, info, debug, trace"), "{err}");
}
