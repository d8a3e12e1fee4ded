//! Comparing fixture runs: verdicts, the refusal of different scenarios, the page.

mod common;

use common::{fixture, series_points, svg};
use reports::{CompareError, CompareOptions, Comparison, RunRecord, Verdict, compare};

fn evaluate(
    base: &str,
    candidate: &str,
    opts: &CompareOptions,
) -> Result<Comparison, CompareError> {
    let base = RunRecord::load(&fixture(base)).unwrap();
    let candidate = RunRecord::load(&fixture(candidate)).unwrap();
    Comparison::evaluate(&base, &candidate, opts)
}

fn verdicts(c: &Comparison) -> Vec<(&'static str, Verdict)> {
    c.metrics.iter().map(|m| (m.key, m.verdict)).collect()
}

#[test]
fn improved_candidate() {
    let c = evaluate("basic", "improved", &CompareOptions::default()).unwrap();
    assert_eq!(c.overall(), Verdict::Improved);
    assert!(!c.regressed() && c.improved());
    for key in [
        "avg_delivered_per_sec",
        "peak_heap_bytes",
        "peak_rss_bytes",
        "latency_p99_us",
        "latency_max_us",
        "drain_us",
    ] {
        assert_eq!(
            c.metric(key).unwrap().verdict,
            Verdict::Improved,
            "{key}: {:?}",
            verdicts(&c)
        );
    }
    let delivered = c.metric("avg_delivered_per_sec").unwrap();
    assert!((delivered.ratio().unwrap() - 1.25).abs() < 1e-9);
    assert!((delivered.change_pct.unwrap() - 25.0).abs() < 1e-6);
}

#[test]
fn regressed_candidate() {
    let c = evaluate("basic", "regressed", &CompareOptions::default()).unwrap();
    assert!(c.regressed());
    assert_eq!(c.overall(), Verdict::Regressed);
    for key in [
        "avg_delivered_per_sec",
        "peak_heap_bytes",
        "latency_p50_us",
        "latency_p99_us",
        "drain_us",
    ] {
        assert_eq!(c.metric(key).unwrap().verdict, Verdict::Regressed, "{key}");
    }
}

#[test]
fn verdicts_are_direction_aware() {
    // The improved run as the base: the basic run is worse on every metric.
    let c = evaluate("improved", "basic", &CompareOptions::default()).unwrap();
    assert!(c.regressed());
    assert_eq!(
        c.metric("avg_delivered_per_sec").unwrap().verdict,
        Verdict::Regressed,
        "lower throughput is worse"
    );
    assert_eq!(
        c.metric("peak_heap_bytes").unwrap().verdict,
        Verdict::Regressed,
        "higher heap is worse"
    );
}

#[test]
fn small_changes_and_ignored_keys_are_unchanged() {
    let c = evaluate("basic", "unchanged", &CompareOptions::default()).unwrap();
    assert!(
        c.config_differences.is_empty(),
        "seed and preset are ignored: {:?}",
        c.config_differences
    );
    assert!(
        c.metrics.iter().all(|m| m.verdict == Verdict::Unchanged),
        "{:?}",
        verdicts(&c)
    );
    assert!(!c.regressed() && !c.improved());
    assert_eq!(c.overall(), Verdict::Unchanged);
    // A 1.5% threshold makes the 2-3% moves count, not the 1% ones.
    let strict = CompareOptions {
        threshold_pct: 1.5,
        ..Default::default()
    };
    let c = evaluate("basic", "unchanged", &strict).unwrap();
    assert_eq!(c.metric("drain_us").unwrap().verdict, Verdict::Regressed);
    assert_eq!(
        c.metric("latency_p99_us").unwrap().verdict,
        Verdict::Regressed
    );
    assert_eq!(
        c.metric("avg_delivered_per_sec").unwrap().verdict,
        Verdict::Unchanged
    );
}

#[test]
fn different_scenarios_are_refused_naming_the_keys() {
    let err = evaluate("basic", "incomparable", &CompareOptions::default()).unwrap_err();
    let keys: Vec<&str> = err.differences().iter().map(|d| d.key.as_str()).collect();
    assert_eq!(keys, ["consumer_delay_us", "producers"]);
    let message = err.to_string();
    assert!(
        message.contains("consumer_delay_us (200 vs 0)")
            && message.contains("producers (32 vs 16)"),
        "{message}"
    );
    // The hint to force it belongs to the caller (the CLI names its flag once).
    assert!(!message.contains("force"), "{message}");
}

#[test]
fn force_compares_different_scenarios_and_says_so() {
    let out = tempfile::tempdir().unwrap();
    let opts = CompareOptions {
        force: true,
        output: Some(out.path().join("c.html")),
        ..Default::default()
    };
    let c = compare(&fixture("basic"), &fixture("incomparable"), &opts).unwrap();
    assert_eq!(c.config_differences.len(), 2);
    let html = std::fs::read_to_string(c.path.as_ref().unwrap()).unwrap();
    let banner = &html[html.find("id=\"warnings\"").expect("a banner")..];
    assert!(
        banner
            .contains("the scenarios differ in consumer_delay_us (200 vs 0), producers (32 vs 16)")
    );
}

#[test]
fn a_run_without_results_has_no_known_scenario() {
    let err = evaluate("basic", "truncated", &CompareOptions::default()).unwrap_err();
    assert_eq!(err.differences()[0].key, "config");
    let forced = CompareOptions {
        force: true,
        ..Default::default()
    };
    let c = evaluate("basic", "truncated", &forced).unwrap();
    assert_eq!(c.metric("drain_us").unwrap().verdict, Verdict::Unavailable);
    assert!(!c.candidate_warnings.is_empty());
}

#[test]
fn the_page_has_overlaid_charts_and_the_verdicts() {
    let out = tempfile::tempdir().unwrap();
    let path = out.path().join("compare.html");
    let opts = CompareOptions {
        output: Some(path.clone()),
        ..Default::default()
    };
    let c = compare(&fixture("basic"), &fixture("regressed"), &opts).unwrap();
    assert_eq!(c.path.as_deref(), Some(path.as_path()));
    let html = std::fs::read_to_string(&path).unwrap();
    for id in ["cmp-delivered", "cmp-buffered", "cmp-heap", "cmp-p99"] {
        let chart = svg(&html, id);
        // Base (grey) and candidate (orange) on one chart; delivered/s leaves out the drain sample.
        let expected = if id == "cmp-delivered" { 8 } else { 9 };
        assert_eq!(series_points(chart, "#6B6B6B"), expected, "{id} base");
        assert_eq!(series_points(chart, "#E67E00"), expected, "{id} candidate");
    }
    assert!(html.contains("id=\"overall\">REGRESSED</span>"));
    let metrics = &html[html.find("id=\"table-metrics\"").unwrap()..];
    assert!(
        metrics.contains("0.800x") && metrics.contains("-20.0%"),
        "ratio and change of delivered/s"
    );
    assert_eq!(
        metrics[..metrics.find("</table>").unwrap()]
            .matches("badge fail")
            .count(),
        c.metrics
            .iter()
            .filter(|m| m.verdict == Verdict::Regressed)
            .count()
    );
    assert!(!html.contains("<script"));
}

#[test]
fn the_default_output_is_the_candidate_directory() {
    let candidate = common::copy_fixture("unchanged");
    let c = compare(
        &fixture("basic"),
        candidate.path(),
        &CompareOptions::default(),
    )
    .unwrap();
    assert_eq!(
        c.path.unwrap(),
        candidate.path().join(reports::COMPARE_FILE)
    );
}

#[test]
fn a_bad_threshold_is_refused() {
    let err = evaluate(
        "basic",
        "basic",
        &CompareOptions {
            threshold_pct: f64::NAN,
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(matches!(err, CompareError::BadThreshold(_)));
}
