//! User thresholds through the real binary: a failed one fails the run (exit 1) and is in
//! `results.json`; a bad one is refused naming what was typed (exit 2, nothing created);
//! a scenario file's `[thresholds]` are judged too.

mod common;

use common::*;

#[test]
fn a_failed_threshold_fails_the_run_and_is_recorded() {
    let dir = tempfile::tempdir().expect("tempdir");
    // No batching dispatcher delivers within a microsecond; every run refuses nothing
    // beyond 100% of offers.
    let out = one_second_run(
        dir.path(),
        &["--threshold", "p99<1us", "--threshold", "refused<=100%"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("thresholds   FAIL"), "{text}");
    assert!(text.contains("- FAIL p99<1us: p99 "), "{text}");
    assert!(text.contains("- pass refused<=100%"), "{text}");
    let run = runlog::RunDir::resolve_latest(dir.path()).expect("a run");
    let results = runlog::read_results(&run.results_path()).expect("results.json");
    assert_eq!(results.assessment.overall, runlog::Status::Fail);
    let judged = &results.assessment.thresholds;
    assert_eq!(judged.len(), 2);
    assert_eq!(
        (judged[0].threshold.as_str(), judged[0].passed),
        ("p99<1us", false)
    );
    assert!(judged[0].actual.is_some_and(|us| us >= 1.0));
    assert!(judged[1].passed);
    // Latency was judged by a threshold, so it is not listed as unjudged.
    assert!(
        results
            .assessment
            .not_judged
            .iter()
            .all(|n| !n.starts_with("latency")),
        "{:?}",
        results.assessment.not_judged
    );
}

#[test]
fn without_thresholds_latency_is_not_judged_and_the_summary_says_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = one_second_run(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("checked      correctness, pressure, memory, drain"),
        "{text}"
    );
    assert!(text.contains("latency not judged: p99 "), "{text}");
}

#[test]
fn a_scenario_file_s_thresholds_are_judged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("s.toml");
    std::fs::write(&file, "[thresholds]\ndelivered_per_sec = \">1G\"\n").expect("write");
    let out = one_second_run(&dir.path().join("runs"), &["--config", &path(&file)]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("- FAIL delivered_per_sec>1G"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn a_bad_threshold_is_refused_before_anything_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (typed, says) in [
        ("p98<5ms", "unknown metric `p98`"),
        ("p99=5ms", "operators: <, <=, >, >="),
        ("refused<150%", "0%..=100%"),
        ("peak_heap<lots", "`lots`"),
    ] {
        let out = one_second_run(dir.path(), &["--threshold", typed]);
        assert_eq!(out.status.code(), Some(2), "{typed}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains(typed) && err.contains(says), "{typed}: {err}");
    }
    let out = one_second_run(dir.path(), &["--threshold", "p99<5ms", "--no-latency"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--no-latency"), "{}", stderr(&out));
    assert!(
        runlog::RunDir::resolve_latest(dir.path()).is_err(),
        "nothing created"
    );
}

#[test]
fn fail_on_warn_turns_a_warning_into_exit_1() {
    // A light, rate-limited load the consumer keeps up with: no backpressure, a WARN.
    let light = ["--rate", "1k/s", "--consumer-delay", "0s"];
    let dir = tempfile::tempdir().expect("tempdir");
    let out = one_second_run(dir.path(), &light);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let record: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("latest/results.json")).expect("results.json"),
    )
    .expect("json");
    assert_eq!(record["assessment"]["overall"], "warn", "{record}");

    let dir = tempfile::tempdir().expect("tempdir");
    let mut strict = light.to_vec();
    strict.push("--fail-on-warn");
    let out = one_second_run(dir.path(), &strict);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
}
