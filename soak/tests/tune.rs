//! `tune` end to end with a tiny budget: probes the live dispatcher and
//! writes a scenario file that parses and validates.

use std::sync::Mutex;
use std::time::Duration;

use runlog::ScenarioConfig;
use soak::tune::{TuneOptions, output, tune};

/// Probing runs compete for the CPU: one at a time, so each sees the machine.
static MACHINE: Mutex<()> = Mutex::new(());

/// A quiet 8 s tune of telemetry payloads into `dir`, against `latency_target`.
fn options(dir: &std::path::Path, latency_target: Duration) -> TuneOptions {
    TuneOptions {
        out: dir.join("tuned"),
        runs_out: dir.join("runs"),
        quiet: true,
        latency_target: Some(latency_target),
        ..TuneOptions::new("telemetry", Duration::from_secs(8))
    }
}

#[test]
fn a_tiny_budget_tunes_end_to_end_and_writes_a_valid_scenario() {
    let _machine = MACHINE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = tempfile::tempdir().expect("tempdir");
    // A loose target: this test checks the pipeline, not the machine.
    let options = options(dir.path(), Duration::from_secs(1));
    let report = tune(&options).expect("tuning completes");
    let text = output::render(&report, true);

    assert!(!report.search.probes.is_empty(), "{text}");
    let rec = report
        .recommendation
        .as_ref()
        .unwrap_or_else(|| panic!("no recommendation: {text}"));
    assert!(rec.config.max_buffered_bytes <= report.memory_cap_bytes);
    let path = report.tuned_path.as_ref().expect("tuned.toml written");
    assert_eq!(path, &options.out.join("tuned.toml"));
    let config = ScenarioConfig::from_toml_file(path).expect("tuned.toml parses");
    config.validate().expect("tuned.toml validates");
    assert_eq!(config, rec.config);
    assert_eq!(config.payload, "telemetry");
    assert!(text.contains("delivered/s"), "{text}");
    assert!(text.contains("burst window"), "{text}");
    // Probes are isolated: each counts only its own events, so nothing is delivered that
    // it did not offer, and no event of an earlier probe is delivered while it runs.
    let verification = report.verification.as_ref().expect("verified");
    for p in report.search.probes.iter().chain(&verification.probes) {
        let m = &p.measured;
        assert!(
            m.delivered_per_sec <= m.offered_per_sec * 1.0001 + 1.0,
            "{text}"
        );
        assert_eq!(
            m.earlier, 0,
            "probe {:?} saw earlier events: {text}",
            p.phase
        );
    }
    assert!(text.contains("verification: "), "{text}");
    let file = std::fs::read_to_string(path).expect("tuned.toml");
    for said in [
        "# Tuned for: ",
        "# Edge found: ",
        "# Margin: ",
        "burst window",
        "# Verification: ",
        "[thresholds]",
    ] {
        assert!(file.contains(said), "tuned.toml lacks {said:?}:\n{file}");
    }
}

#[test]
fn an_unreachable_target_gives_a_clear_message_and_no_scenario() {
    let _machine = MACHINE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = tempfile::tempdir().expect("tempdir");
    // No batching dispatcher delivers within a microsecond of enqueue.
    let options = options(dir.path(), Duration::from_micros(1));
    let report = tune(&options).expect("tuning completes");
    let text = output::render(&report, true);
    assert!(report.recommendation.is_none(), "{text}");
    assert!(report.tuned_path.is_none(), "{text}");
    assert!(!options.out.join("tuned.toml").exists());
    // Either every rate down to the floor failed, or the budget ran out first: both say so.
    let message = &report.search.message;
    assert!(
        message.starts_with("nothing healthy")
            || message.contains("ran out before a healthy point"),
        "{text}"
    );
    assert!(text.contains("no recommendation"), "{text}");
}

#[test]
fn a_budget_too_small_for_three_probes_is_refused() {
    let options = TuneOptions {
        quiet: true,
        ..TuneOptions::new("telemetry", Duration::from_millis(500))
    };
    let err = tune(&options).expect_err("too small");
    assert!(err.to_string().contains("--budget"), "{err}");
}

/// A real tune, printed: `TUNE_BUDGET_S=20 cargo test --release -p soak
/// --test tune -- --ignored --nocapture` (twice, to compare runs); `TUNE_OUT`
/// keeps `tuned.toml` in that directory.
#[test]
#[ignore = "a real probing run of TUNE_BUDGET_S seconds (default 20)"]
fn a_real_tune_prints_its_report() {
    let _machine = MACHINE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let budget: f64 = std::env::var("TUNE_BUDGET_S")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20.0);
    let dir = tempfile::tempdir().expect("tempdir");
    let out = std::env::var_os("TUNE_OUT").map_or_else(|| dir.path().to_path_buf(), Into::into);
    let options = TuneOptions {
        out,
        runs_out: dir.path().join("runs"),
        ..TuneOptions::new("telemetry", Duration::from_secs_f64(budget))
    };
    let report = tune(&options).expect("tuning completes");
    println!("{}", output::render(&report, true));
    if let Some(path) = &report.tuned_path {
        println!("{}", std::fs::read_to_string(path).expect("read"));
    }
}
