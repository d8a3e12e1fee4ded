//! `soak compare` through the real binary: the acceptance of issue 16 on recorded groups
//! (two repeats of one scenario pass `--fail-on-regression`; a consumer twice as slow fails
//! it), the output formats, and one end to end on short real runs (`--repeat`).

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;

const LIMIT: Duration = Duration::from_secs(120);

fn group_fixture(name: &str) -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../reports/tests/fixtures/groups");
    path(&dir.join(name))
}

fn compare(base: &str, candidate: &str, extra: &[&str], out: &Path) -> std::process::Output {
    let page = path(&out.join("compare.html"));
    let mut args = vec!["compare", base, candidate, "--output", &page];
    args.extend_from_slice(extra);
    run(&args, LIMIT)
}

#[test]
fn recorded_repeats_of_one_scenario_pass_fail_on_regression() {
    let out = tempfile::tempdir().expect("tempdir");
    let (a, b) = (group_fixture("same-a"), group_fixture("same-b"));
    let done = compare(&a, &b, &["--fail-on-regression"], out.path());
    assert_eq!(
        done.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&done),
        stderr(&done)
    );
    let text = stdout(&done);
    assert!(text.contains("overall: NO CHANGE"), "{text}");
    assert!(
        text.contains("5 vs 5 runs") && text.contains("95% CI"),
        "{text}"
    );
}

#[test]
fn a_recorded_candidate_with_a_consumer_twice_as_slow_fails_fail_on_regression() {
    let out = tempfile::tempdir().expect("tempdir");
    let (a, slower) = (group_fixture("same-a"), group_fixture("slower"));
    let refused = compare(&a, &slower, &["--fail-on-regression"], out.path());
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(stderr(&refused).contains("consumer_delay_us (2000 vs 4000)"));
    let done = compare(
        &a,
        &slower,
        &["--force", "--fail-on-regression", "--json"],
        out.path(),
    );
    assert_eq!(done.status.code(), Some(1), "{}", stderr(&done));
    let json: serde_json::Value = serde_json::from_slice(&done.stdout).expect("JSON on stdout");
    assert_eq!(json["schema"], "metronome.compare/1");
    assert_eq!(json["headline"], "regressed");
    let delivered = &json["metrics"][0];
    assert_eq!(
        (delivered["key"].as_str(), delivered["verdict"].as_str()),
        (Some("avg_delivered_per_sec"), Some("regressed"))
    );
    let md = compare(&a, &slower, &["--force", "--format", "md"], out.path());
    assert_eq!(
        md.status.code(),
        Some(0),
        "without --fail-on-regression: {}",
        stderr(&md)
    );
    assert!(
        stdout(&md).starts_with("### Metronome comparison: REGRESSED"),
        "{}",
        stdout(&md)
    );
}

#[test]
fn a_bad_primary_metric_or_noise_is_refused() {
    let out = tempfile::tempdir().expect("tempdir");
    let a = group_fixture("same-a");
    let done = compare(&a, &a, &["--primary", "p98"], out.path());
    assert_eq!(done.status.code(), Some(2));
    assert!(
        stderr(&done).contains("--primary: unknown metric `p98`"),
        "{}",
        stderr(&done)
    );
    let done = compare(&a, &a, &["--noise=-3%"], out.path());
    assert_eq!(done.status.code(), Some(2));
    let err = stderr(&done);
    assert!(
        err.contains("--noise") && err.contains("`-3%`") && err.contains("0%..=1000%"),
        "{err}"
    );
}

/// A consumer-bound scenario (its throughput is the consumer's, so it holds on a busy
/// machine), run three times a side.
fn repeat(out: &Path, consumer_delay: &str) -> PathBuf {
    let out_s = path(out);
    let done = run(
        &[
            "--repeat",
            "3",
            "--duration",
            "1s",
            "--producers",
            "2",
            "--payload",
            "fixed:256",
            "--max-buffered-bytes",
            "1MiB",
            "--consumer-delay",
            consumer_delay,
            "--sample-every",
            "200ms",
            "-q",
            "--out",
            &out_s,
        ],
        LIMIT,
    );
    assert_eq!(done.status.code(), Some(0), "{}", stderr(&done));
    assert!(
        stdout(&done).contains("3 runs (3 passed"),
        "{}",
        stdout(&done)
    );
    let group = std::fs::canonicalize(out.join("latest")).expect("latest points at the group");
    let record = runlog::read_group(&group).expect("group.json");
    assert_eq!((record.repeat, record.runs.len()), (3, 3));
    for r in &record.runs {
        assert!(group.join(&r.run_id).join("results.json").is_file());
    }
    group
}

#[test]
fn end_to_end_repeats_compare_and_a_real_regression_is_caught() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = repeat(&dir.path().join("base"), "2ms");
    let same = repeat(&dir.path().join("same"), "2ms");
    let slower = repeat(&dir.path().join("slower"), "4ms");
    let done = compare(
        &path(&base),
        &path(&same),
        &["--fail-on-regression"],
        dir.path(),
    );
    assert_eq!(
        done.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&done),
        stderr(&done)
    );
    let done = compare(
        &path(&base),
        &path(&slower),
        &["--force", "--fail-on-regression"],
        dir.path(),
    );
    assert_eq!(
        done.status.code(),
        Some(1),
        "{}\n{}",
        stdout(&done),
        stderr(&done)
    );
    assert!(
        stdout(&done).contains("overall: REGRESSED"),
        "{}",
        stdout(&done)
    );
}
