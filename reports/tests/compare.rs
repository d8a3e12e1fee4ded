//! Comparing recorded runs: verdicts from the distributions, the headline from the primary
//! metrics, the refusal of different scenarios, the page and the text outputs.
//!
//! `fixtures/groups/` holds three recorded groups of five 3 s runs of one consumer-bound
//! scenario (`--repeat 5 --duration 3s --producers 2 --payload fixed:256
//! --max-buffered-bytes 4MiB --sample-every 250ms`): `same-a` and `same-b` back to back
//! with `--consumer-delay 2ms`, `slower` with the consumer delay doubled to 4 ms.
//! `aa-delay0/` holds two 10 s runs of one build, back to back (`cargo soak --preset quick
//! --consumer-delay 0s`): 9.34M and 6.85M events/s, the noise of a shared machine.

mod common;

use common::{fixture, series_points, svg};
use reports::{
    Basis, CompareError, CompareOptions, Comparison, Headline, RunRecord, Side, Verdict, compare,
    compare_text,
};

fn side(name: &str) -> Side {
    Side::load(&fixture(name)).unwrap()
}

fn evaluate(
    base: &str,
    candidate: &str,
    opts: &CompareOptions,
) -> Result<Comparison, CompareError> {
    Comparison::evaluate(&side(base), &side(candidate), opts)
}

fn forced() -> CompareOptions {
    CompareOptions {
        force: true,
        ..Default::default()
    }
}

fn verdicts(c: &Comparison) -> Vec<(&'static str, Verdict)> {
    c.metrics.iter().map(|m| (m.key, m.verdict)).collect()
}

/// One run of a recorded group, as a side of its own.
fn one_run(group: &str, index: usize) -> Side {
    let dir = fixture(group);
    let g = runlog::read_group(&dir).unwrap();
    Side::single(RunRecord::load(&dir.join(&g.runs[index].run_id)).unwrap())
}

#[test]
fn two_recorded_repeats_of_the_same_scenario_are_not_a_regression() {
    let c = evaluate("groups/same-a", "groups/same-b", &CompareOptions::default()).unwrap();
    assert!(!c.regressed(), "{:?}", verdicts(&c));
    assert_eq!(
        c.headline(),
        Headline::NoChange,
        "{}",
        compare_text::human(&c)
    );
    for m in c.metrics.iter().filter(|m| m.primary) {
        assert_eq!(m.basis, Basis::Runs, "{}", m.key);
        assert_eq!(m.counts, (5, 5));
        let (lo, hi) = m.ci_pct.expect("an interval");
        assert!(lo <= 0.5 && hi >= -0.5 && lo <= hi, "{}: {lo}..{hi}", m.key);
    }
    // Drain times of a millisecond or so swing by 2x between runs: never a regression,
    // at most inconclusive.
    assert_ne!(c.metric("drain_us").unwrap().verdict, Verdict::Regressed);
}

#[test]
fn a_consumer_twice_as_slow_is_a_regression_with_intervals_that_show_it() {
    let err = evaluate("groups/same-a", "groups/slower", &CompareOptions::default()).unwrap_err();
    assert_eq!(err.differences()[0].key, "consumer_delay_us");
    let c = evaluate("groups/same-a", "groups/slower", &forced()).unwrap();
    assert!(c.regressed());
    assert_eq!(c.headline(), Headline::Regressed);
    let delivered = c.metric("avg_delivered_per_sec").unwrap();
    assert_eq!(delivered.verdict, Verdict::Regressed);
    let (lo, hi) = delivered.ci_pct.unwrap();
    assert!(
        (-55.0..=-45.0).contains(&lo) && (-55.0..=-45.0).contains(&hi),
        "{lo}..{hi}"
    );
    let p99 = c.metric("latency_p99_us").unwrap();
    assert_eq!(p99.verdict, Verdict::Regressed);
    assert!(p99.ci_pct.unwrap().0 > 80.0, "{:?}", p99.ci_pct);
    // The heap does not depend on the consumer's speed: not part of the regression.
    assert_ne!(
        c.metric("peak_heap_bytes").unwrap().verdict,
        Verdict::Regressed
    );
}

#[test]
fn one_run_a_side_uses_the_runs_own_intervals_and_says_so() {
    for (a, b) in [(0, 0), (1, 3), (4, 2)] {
        let c = Comparison::evaluate(
            &one_run("groups/same-a", a),
            &one_run("groups/same-b", b),
            &CompareOptions::default(),
        )
        .unwrap();
        assert!(
            !c.regressed(),
            "runs {a} and {b}: {}",
            compare_text::human(&c)
        );
        let delivered = c.metric("avg_delivered_per_sec").unwrap();
        assert_eq!(delivered.basis, Basis::Intervals);
        assert!(
            delivered.note.contains("not from repeated runs"),
            "{}",
            delivered.note
        );
        // A peak has no per-interval noise: with one run a side it cannot be told.
        let heap = c.metric("peak_heap_bytes").unwrap();
        assert_eq!(
            (heap.verdict, heap.runs_needed),
            (Verdict::Inconclusive, Some(3))
        );
    }
    // A consumer twice as slow halves the rate, and one run a side shows it, but cannot
    // call it a regression: that takes runs enough to know how much runs differ.
    let c = Comparison::evaluate(
        &one_run("groups/same-a", 0),
        &one_run("groups/slower", 0),
        &forced(),
    )
    .unwrap();
    let delivered = c.metric("avg_delivered_per_sec").unwrap();
    assert_eq!(
        (delivered.verdict, delivered.runs_needed),
        (Verdict::Inconclusive, Some(3))
    );
    assert!(delivered.change_pct.unwrap() < -40.0, "{delivered:?}");
    assert!(delivered.note.starts_with("worse by"), "{}", delivered.note);
    assert!(!c.regressed());
}

#[test]
fn two_single_runs_of_one_build_are_never_a_regression() {
    // Their sample intervals agree within each run and differ between the runs by 27%:
    // run-to-run variation, which one run a side cannot measure.
    let (first, second) = (fixture("aa-delay0/first"), fixture("aa-delay0/second"));
    let (first, second) = (
        Side::single(RunRecord::load(&first).unwrap()),
        Side::single(RunRecord::load(&second).unwrap()),
    );
    for (base, candidate) in [(&first, &second), (&second, &first)] {
        let c = Comparison::evaluate(base, candidate, &CompareOptions::default()).unwrap();
        let text = compare_text::human(&c);
        assert!(!c.regressed(), "{text}");
        assert_eq!(c.headline(), Headline::Inconclusive, "{text}");
        let delivered = c.metric("avg_delivered_per_sec").unwrap();
        assert_eq!(delivered.basis, Basis::Intervals);
        assert_eq!(
            (delivered.verdict, delivered.runs_needed),
            (Verdict::Inconclusive, Some(3)),
            "{text}"
        );
        // The difference is still reported, with what would settle it.
        assert!(delivered.change_pct.unwrap().abs() > 20.0, "{text}");
        assert!(delivered.note.contains("--repeat 3"), "{}", delivered.note);
    }
}

#[test]
fn improved_and_regressed_candidates_are_direction_aware() {
    // From runs: the slower group as the base, the faster one is better.
    let c = evaluate("groups/slower", "groups/same-a", &forced()).unwrap();
    assert_eq!(c.headline(), Headline::Improved, "{:?}", verdicts(&c));
    for key in ["avg_delivered_per_sec", "latency_p99_us"] {
        assert_eq!(c.metric(key).unwrap().verdict, Verdict::Improved, "{key}");
    }

    // From single runs, the direction is in the note; the verdict waits for runs.
    let c = evaluate("basic", "improved", &CompareOptions::default()).unwrap();
    assert_eq!(c.headline(), Headline::Inconclusive, "{:?}", verdicts(&c));
    for key in ["avg_delivered_per_sec", "latency_p99_us", "latency_p50_us"] {
        let m = c.metric(key).unwrap();
        assert_eq!(m.verdict, Verdict::Inconclusive, "{key}");
        assert!(m.note.starts_with("better by"), "{key}: {}", m.note);
    }
    let delivered = c.metric("avg_delivered_per_sec").unwrap();
    assert!((delivered.ratio().unwrap() - 1.25).abs() < 1e-9);

    let c = evaluate("basic", "regressed", &CompareOptions::default()).unwrap();
    assert_eq!(c.headline(), Headline::Inconclusive);
    let p99 = c.metric("latency_p99_us").unwrap();
    assert!(p99.note.starts_with("worse by"), "{}", p99.note);

    // The improved run as the base: the basic run is worse.
    let c = evaluate("improved", "basic", &CompareOptions::default()).unwrap();
    let delivered = c.metric("avg_delivered_per_sec").unwrap();
    assert!(
        delivered.note.starts_with("worse by"),
        "lower throughput is worse: {}",
        delivered.note
    );
}

#[test]
fn the_headline_comes_from_the_primary_metrics_only() {
    // The slower candidate regressed p99 and throughput; with drain time as the only
    // primary metric, the headline says what drain time says.
    let opts = CompareOptions {
        primary: vec!["drain".into()],
        ..forced()
    };
    let c = evaluate("groups/same-a", "groups/slower", &opts).unwrap();
    assert_eq!(c.metrics.iter().filter(|m| m.primary).count(), 1);
    assert!(!c.regressed() || c.metric("drain_us").unwrap().verdict == Verdict::Regressed);
    let line = compare_text::overall_line(&c);
    assert!(
        line.contains("secondary, not in the headline: delivered/s regressed"),
        "{line}"
    );
    let err = evaluate(
        "basic",
        "basic",
        &CompareOptions {
            primary: vec!["p98".into()],
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("unknown metric `p98`"), "{err}");
}

#[test]
fn small_moves_and_ignored_keys_are_no_change() {
    let c = evaluate("basic", "unchanged", &CompareOptions::default()).unwrap();
    assert!(
        c.config_differences.is_empty(),
        "{:?}",
        c.config_differences
    );
    assert!(!c.regressed());
    for key in ["avg_delivered_per_sec", "latency_p99_us"] {
        assert_eq!(c.metric(key).unwrap().verdict, Verdict::NoChange, "{key}");
    }
    // A 0.5% noise threshold puts the 1% (delivered/s) and 2% (p99) moves beyond it:
    // no longer "no change", and, between single runs, not a verdict either.
    let strict = CompareOptions {
        noise_pct: Some(0.5),
        ..Default::default()
    };
    let c = evaluate("basic", "unchanged", &strict).unwrap();
    for (key, way) in [
        ("latency_p99_us", "worse"),
        ("avg_delivered_per_sec", "better"),
    ] {
        let m = c.metric(key).unwrap();
        assert_eq!(m.verdict, Verdict::Inconclusive, "{key}");
        assert!(m.note.starts_with(way), "{key}: {}", m.note);
    }
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
    assert!(!message.contains("force"), "{message}");
}

#[test]
fn force_compares_different_scenarios_and_says_so() {
    let out = tempfile::tempdir().unwrap();
    let opts = CompareOptions {
        output: Some(out.path().join("c.html")),
        ..forced()
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
    let c = evaluate("basic", "truncated", &forced()).unwrap();
    assert_eq!(c.metric("drain_us").unwrap().verdict, Verdict::Unavailable);
    assert!(!c.candidate_warnings.is_empty());
}

#[test]
fn the_page_has_overlaid_charts_intervals_and_the_verdicts() {
    let out = tempfile::tempdir().unwrap();
    let path = out.path().join("compare.html");
    let opts = CompareOptions {
        output: Some(path.clone()),
        ..forced()
    };
    let c = compare(&fixture("groups/same-a"), &fixture("groups/slower"), &opts).unwrap();
    assert_eq!(c.path.as_deref(), Some(path.as_path()));
    let html = std::fs::read_to_string(&path).unwrap();
    for id in ["cmp-delivered", "cmp-buffered", "cmp-heap", "cmp-p99"] {
        let chart = svg(&html, id);
        assert!(series_points(chart, "#6B6B6B") > 5, "{id} base");
        assert!(series_points(chart, "#E67E00") > 5, "{id} candidate");
    }
    assert!(html.contains("id=\"overall\">REGRESSED</span>"));
    let metrics = &html[html.find("id=\"table-metrics\"").unwrap()..];
    let table = &metrics[..metrics.find("</table>").unwrap()];
    assert!(
        table.contains("95% CI") && table.contains("0.500x"),
        "ratio of delivered/s"
    );
    assert_eq!(
        table.matches("badge fail").count(),
        c.metrics
            .iter()
            .filter(|m| m.verdict == Verdict::Regressed)
            .count()
    );
    assert!(html.contains("group ") && html.contains("(5 runs)"));
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
fn text_outputs_carry_units_intervals_and_the_headline() {
    let c = evaluate("groups/same-a", "groups/slower", &forced()).unwrap();
    let human = compare_text::human(&c);
    assert!(
        human.contains("delivered/s *") && human.contains("64.0k/s"),
        "{human}"
    );
    assert!(
        human.contains("[-50.") && human.contains("overall: REGRESSED"),
        "{human}"
    );
    assert!(
        !human.contains("avg_delivered_per_sec"),
        "no raw keys: {human}"
    );
    let md = compare_text::markdown(&c);
    assert!(
        md.starts_with("### Metronome comparison: REGRESSED"),
        "{md}"
    );
    assert!(md.contains("| metric | better |"), "{md}");
    let json = compare_text::json(&c);
    assert_eq!(json["schema"], compare_text::JSON_SCHEMA);
    assert_eq!(json["headline"], "regressed");
    assert_eq!(json["regressed"], true);
    let first = &json["metrics"][0];
    assert_eq!(first["key"], "avg_delivered_per_sec");
    assert_eq!(first["verdict"], "regressed");
    assert_eq!(first["basis"], "runs");
    assert_eq!(first["counts"], serde_json::json!([5, 5]));
    assert!(first["ci_pct"][0].as_f64().unwrap() < -45.0);
    assert_eq!(json["config_differences"][0]["key"], "consumer_delay_us");
}

#[test]
fn a_bad_noise_threshold_is_refused() {
    let opts = CompareOptions {
        noise_pct: Some(f64::NAN),
        ..Default::default()
    };
    let err = evaluate("basic", "basic", &opts).unwrap_err();
    assert!(matches!(err, CompareError::BadThreshold(_)));
}
