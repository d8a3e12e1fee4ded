//! `soak tune` through the real binary: its budget (issue 15 item 11), its input and its
//! output directory (item 15).

mod common;

use std::time::Duration;

use common::*;

#[test]
fn item11_tune_keeps_its_budget() {
    let dir = tempfile::tempdir().expect("tempdir");
    let budget = Duration::from_secs(3);
    // The promise: the budget plus the stated margin (start-up and the final drain), with
    // room for a slow machine; a tune still going after that has broken it.
    let limit = budget + soak::tune::BUDGET_MARGIN + Duration::from_secs(12);
    let out = run(
        &[
            "tune",
            "--payload",
            "fixed:16MiB",
            "--budget",
            "3s",
            "-q",
            "--out",
            &path(dir.path()),
        ],
        limit,
    );
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", stderr(&out));
}

#[test]
fn item15_tune_input_and_output_are_checked_before_probing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let limit = Duration::from_secs(30);
    let out = run(&["tune", "--payload", "gaussian", "--budget", "3s"], limit);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--payload"), "{}", stderr(&out));

    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").expect("write");
    let out = run(&["tune", "--budget", "30s", "--out", &path(&file)], limit);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("not a directory"), "{}", stderr(&out));
    assert!(
        !stderr(&out).contains("ceiling"),
        "refused before any probe: {}",
        stderr(&out)
    );

    // A working directory where the default target/soak cannot be made.
    let cwd = tempfile::tempdir().expect("tempdir");
    std::fs::write(cwd.path().join("target"), "x").expect("write");
    let out = command(&["tune", "--budget", "30s"])
        .current_dir(cwd.path())
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("default output directory"),
        "{}",
        stderr(&out)
    );
    assert!(
        !stderr(&out).contains("--out target/soak"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn item15_tune_takes_its_out_and_quiet_flags() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run(
        &["tune", "--budget", "3s", "-q", "--out", &path(dir.path())],
        Duration::from_secs(40),
    );
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", stderr(&out));
    assert!(
        !stderr(&out).contains('['),
        "-q: no progress bar: {}",
        stderr(&out)
    );
    let run = runlog::RunDir::resolve_latest(dir.path()).expect("the probing run is under --out");
    assert!(run.samples_path().exists());
}

#[test]
fn tune_takes_the_scenario_flags_of_a_run_and_prints_each_probe_as_it_finishes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let scenario = dir.path().join("s.toml");
    std::fs::write(&scenario, "producers = 4\npayload = \"fixed:512\"\n").expect("write");
    let out = run(
        &[
            "tune",
            "--config",
            &path(&scenario),
            "--consumer-delay",
            "1ms",
            "--policy",
            "block",
            "--block-timeout",
            "1ms",
            "--budget",
            "4s",
            "--latency-target",
            "1s",
            "--out",
            &path(dir.path()),
        ],
        Duration::from_secs(60),
    );
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", stderr(&out));
    let err = stderr(&out);
    // A header, then one row per probe as it finished, each with the budget spent.
    assert!(
        err.lines().next().is_some_and(|l| l.contains("phase")),
        "{err}"
    );
    assert!(
        err.lines()
            .nth(1)
            .is_some_and(|l| l.contains("ceiling") && l.contains("/4 s]")),
        "{err}"
    );
    let text = stdout(&out);
    assert!(
        text.contains("tuned for: 4 producers of fixed:512 payloads into a consumer spending 1 ms per batch, Block policy"),
        "{text}"
    );
    if out.status.code() == Some(0) {
        let tuned = runlog::ScenarioConfig::from_toml_file(&dir.path().join("tuned.toml"))
            .expect("tuned.toml");
        assert_eq!((tuned.producers, tuned.consumer_delay_us), (4, 1000));
        assert_eq!(tuned.policy, runlog::Policy::Block);
        assert!(!tuned.thresholds.is_empty(), "the promise is in the file");
    }
}

#[test]
fn tune_refuses_the_flags_it_decides_itself() {
    for (flag, value, says) in [
        ("--rate", "10k/s", "tune searches the rate"),
        ("--duration", "10s", "tune runs for its --budget"),
        ("--threshold", "p99<5ms", "its own promise"),
    ] {
        let out = run(
            &["tune", flag, value, "--budget", "30s"],
            Duration::from_secs(30),
        );
        assert_eq!(out.status.code(), Some(2), "{flag}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains(flag) && err.contains(says), "{flag}: {err}");
    }
    let out = run(
        &["tune", "--target", "channel", "--budget", "30s"],
        Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}
