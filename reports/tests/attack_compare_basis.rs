//! Attack tests on the basis of `soak compare` verdicts (README, "Comparing runs: soak
//! compare"): values are one per run only with at least 3 runs a side; with fewer,
//! delivered/s and the latency percentiles come from sample intervals and may be `no change`
//! or `inconclusive` (3 runs a side needed, "worse by"/"better by" in the note), never
//! `regressed`/`improved`; peaks and drain are `inconclusive (3 runs a side needed)`; the
//! headline and `--fail-on-regression` come from the primary metrics.
//!
//! Exception: a value identical on both sides is `no change` from one run a side ("identical
//! on both sides"), and a base of zero has no relative change to judge.
//!
//! Sides are built from the existing fixtures (never modified): in memory through the public
//! API, or as copies in a temporary directory. (The binary's exit codes are checked in
//! `soak/tests/cli.rs`.)

use std::path::{Path, PathBuf};

use reports::{
    Basis, CompareError, CompareOptions, Comparison, Headline, RunRecord, Side, Verdict,
    compare_text,
};
use serde_json::Value;

// ---------------------------------------------------------------------------------------
// helpers

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The run directories of a fixture group, in group.json order.
fn group_runs(group: &str) -> Vec<PathBuf> {
    let dir = fixture(group);
    let g = runlog::read_group(&dir).unwrap();
    g.runs.iter().map(|r| dir.join(&r.run_id)).collect()
}

/// Every run of a recorded group, loaded.
fn group_records(group: &str) -> Vec<RunRecord> {
    group_runs(group).iter().map(|p| load(p)).collect()
}

fn load(dir: &Path) -> RunRecord {
    RunRecord::load(dir).unwrap()
}

/// A record with delivered/s multiplied by `f` (every sample and results.json).
fn scaled(mut r: RunRecord, f: f64) -> RunRecord {
    for s in &mut r.samples.samples {
        s.delivered_per_sec *= f;
    }
    if let Some(res) = &mut r.results {
        res.throughput.avg_delivered_per_sec *= f;
        res.throughput.min_delivered_per_sec *= f;
        res.throughput.max_delivered_per_sec *= f;
    }
    r
}

fn side_of(name: &str, runs: Vec<RunRecord>) -> Side {
    if runs.len() == 1 {
        return Side::single(runs.into_iter().next().unwrap());
    }
    Side {
        path: PathBuf::from(name),
        group_id: Some(name.to_owned()),
        runs,
    }
}

fn forced() -> CompareOptions {
    CompareOptions {
        force: true,
        ..Default::default()
    }
}

fn table(c: &Comparison) -> String {
    compare_text::human(c)
}

/// Checks what must hold for any comparison with fewer than 3 runs on a side.
fn assert_few_runs_contract(c: &Comparison, what: &str) {
    let text = table(c);
    assert!(
        !c.regressed(),
        "{what}: regressed() with <3 runs a side\n{text}"
    );
    assert!(
        matches!(c.headline(), Headline::Inconclusive | Headline::NoChange),
        "{what}: headline {:?} with <3 runs a side\n{text}",
        c.headline()
    );
    for m in &c.metrics {
        assert!(
            !matches!(m.verdict, Verdict::Regressed | Verdict::Improved),
            "{what}: {} is {} with <3 runs a side\n{text}",
            m.key,
            m.verdict
        );
        assert_ne!(m.basis, Basis::Runs, "{what}: {} basis runs\n{text}", m.key);
    }
}

// --- on-disk sides ---------------------------------------------------------------------

fn copy_run(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for entry in std::fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), dst.join(entry.file_name())).unwrap();
        }
    }
}

/// Multiplies delivered/s by `f` in a run directory's samples.jsonl and results.json.
fn scale_on_disk(dir: &Path, f: f64) {
    let samples = dir.join("samples.jsonl");
    let text = std::fs::read_to_string(&samples).unwrap();
    let mut out = String::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let mut v: Value = serde_json::from_str(line).unwrap();
        if let Some(x) = v.get("delivered_per_sec").and_then(Value::as_f64) {
            v["delivered_per_sec"] = (x * f).into();
        }
        out.push_str(&v.to_string());
        out.push('\n');
    }
    std::fs::write(&samples, out).unwrap();
    let results = dir.join("results.json");
    if results.exists() {
        let mut v: Value =
            serde_json::from_str(&std::fs::read_to_string(&results).unwrap()).unwrap();
        for k in [
            "avg_delivered_per_sec",
            "min_delivered_per_sec",
            "max_delivered_per_sec",
        ] {
            let x = v["throughput"][k].as_f64().unwrap();
            v["throughput"][k] = (x * f).into();
        }
        std::fs::write(&results, v.to_string()).unwrap();
    }
}

/// Writes `dir/group.json` listing `run_ids` (duplicates allowed), config from `config_of`.
fn write_group_json(dir: &Path, run_ids: &[&str], config_of: &Path) {
    let results: Value =
        serde_json::from_str(&std::fs::read_to_string(config_of.join("results.json")).unwrap())
            .unwrap();
    let runs: Vec<Value> = run_ids
        .iter()
        .map(|id| {
            serde_json::json!({"run_id": id, "overall": "pass", "avg_delivered_per_sec": 1.0,
                "latency_p99_us": 1, "peak_heap_bytes": 1, "drain_us": 1})
        })
        .collect();
    let spread = serde_json::json!({"median": 0.0, "min": 0.0, "max": 0.0});
    let group = serde_json::json!({
        "schema": "metronome.group/1",
        "group_id": dir.file_name().unwrap().to_string_lossy(),
        "created_at": "2026-01-01T00:00:00Z",
        "config": results["config"],
        "repeat": run_ids.len(),
        "runs": runs,
        "summary": {"passed": run_ids.len(), "warned": 0, "failed": 0,
            "delivered_per_sec": spread, "latency_p99_us": spread, "peak_heap_bytes": spread},
    });
    std::fs::write(dir.join("group.json"), group.to_string()).unwrap();
}

// =======================================================================================
// Cases that hold (they check the contract and would catch a regression of it)

#[test]
fn a_10x_drop_with_one_run_a_side_is_inconclusive_never_regressed() {
    let base = load(&fixture("basic"));
    let cand = scaled(base.clone(), 0.1);
    let c = Comparison::evaluate(
        &Side::single(base.clone()),
        &Side::single(cand.clone()),
        &CompareOptions::default(),
    )
    .unwrap();
    assert_few_runs_contract(&c, "basic vs basic x0.1");
    let d = c.metric("avg_delivered_per_sec").unwrap();
    assert_eq!(d.basis, Basis::Intervals);
    assert_eq!((d.verdict, d.runs_needed), (Verdict::Inconclusive, Some(3)));
    assert!((d.change_pct.unwrap() + 90.0).abs() < 0.01, "{d:?}");
    assert!(d.note.starts_with("worse by 90.0%"), "{}", d.note);
    // And the other way: a 10x rise is "better by", not improved.
    let c = Comparison::evaluate(
        &Side::single(cand),
        &Side::single(base),
        &CompareOptions::default(),
    )
    .unwrap();
    assert_few_runs_contract(&c, "basic x0.1 vs basic");
    let d = c.metric("avg_delivered_per_sec").unwrap();
    assert_eq!((d.verdict, d.runs_needed), (Verdict::Inconclusive, Some(3)));
    assert!(d.note.starts_with("better by 900.0%"), "{}", d.note);
}

#[test]
fn mixed_run_counts_below_three_never_regress_even_with_a_10x_drop() {
    let a: Vec<RunRecord> = group_records("groups/same-a");
    let drop: Vec<RunRecord> = group_runs("groups/same-b")
        .iter()
        .map(|p| scaled(load(p), 0.1))
        .collect();
    let slower: Vec<RunRecord> = group_records("groups/slower");
    for (nb, nc) in [
        (1, 5),
        (5, 1),
        (2, 2),
        (2, 5),
        (5, 2),
        (3, 2),
        (2, 3),
        (1, 1),
        (1, 2),
    ] {
        for (cand_name, cand) in [("drop", &drop), ("slower", &slower)] {
            let base = side_of("a", a[..nb].to_vec());
            let candidate = side_of(cand_name, cand[..nc].to_vec());
            for primary in [
                vec![],
                vec!["delivered_per_sec".to_owned()],
                vec!["p99".into(), "p50".into(), "p999".into(), "max".into()],
                vec!["peak_heap".into(), "peak_rss".into(), "drain".into()],
            ] {
                for noise in [None, Some(0.0), Some(1e-9), Some(0.5), Some(5.0)] {
                    let opts = CompareOptions {
                        force: true,
                        noise_pct: noise,
                        primary: primary.clone(),
                        ..Default::default()
                    };
                    let c = Comparison::evaluate(&base, &candidate, &opts).unwrap();
                    let what =
                        format!("{nb} vs {nc} ({cand_name}), primary {primary:?}, noise {noise:?}");
                    assert_few_runs_contract(&c, &what);
                    let d = c.metric("avg_delivered_per_sec").unwrap();
                    if noise.is_none_or(|n| n < 40.0) {
                        // a drop of 50% or 90%: beyond every threshold tried
                        assert_eq!(d.verdict, Verdict::Inconclusive, "{what}\n{}", table(&c));
                        assert_eq!(d.runs_needed, Some(3), "{what}\n{}", table(&c));
                        assert!(d.note.starts_with("worse by"), "{what}: {}", d.note);
                    }
                    for key in ["peak_heap_bytes", "peak_rss_bytes", "drain_us"] {
                        let m = c.metric(key).unwrap();
                        assert_eq!(m.basis, Basis::TooFew, "{what}: {key}");
                        assert_eq!(
                            (m.verdict, m.runs_needed),
                            (Verdict::Inconclusive, Some(3)),
                            "{what}: {key}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn with_three_runs_a_side_a_real_regression_is_still_regressed() {
    // consumer twice as slow (fixtures groups/slower), and a 10x drop, 3 vs 3 and 5 vs 3
    let a: Vec<RunRecord> = group_records("groups/same-a");
    let slower: Vec<RunRecord> = group_records("groups/slower");
    let drop: Vec<RunRecord> = group_runs("groups/same-b")
        .iter()
        .map(|p| scaled(load(p), 0.1))
        .collect();
    for (nb, nc) in [(3, 3), (5, 3), (3, 5), (5, 5)] {
        for (name, cand) in [("slower", &slower), ("drop", &drop)] {
            let c = Comparison::evaluate(
                &side_of("a", a[..nb].to_vec()),
                &side_of(name, cand[..nc].to_vec()),
                &forced(),
            )
            .unwrap();
            let d = c.metric("avg_delivered_per_sec").unwrap();
            assert_eq!(d.basis, Basis::Runs, "{nb} vs {nc} {name}");
            assert_eq!(
                d.verdict,
                Verdict::Regressed,
                "{nb} vs {nc} {name}\n{}",
                table(&c)
            );
            assert!(c.regressed());
            assert_eq!(c.headline(), Headline::Regressed, "{}", table(&c));
            let j = compare_text::json(&c);
            assert_eq!(j["regressed"], true);
            assert_eq!(j["headline"], "regressed");
        }
    }
    // --primary without delivered/s: the headline ignores it
    let opts = CompareOptions {
        force: true,
        primary: vec!["peak_heap".into()],
        ..Default::default()
    };
    let c = Comparison::evaluate(
        &side_of("a", a.clone()),
        &side_of("slower", slower.clone()),
        &opts,
    )
    .unwrap();
    assert!(!c.regressed(), "{}", table(&c));
    assert_eq!(
        c.metric("avg_delivered_per_sec").unwrap().verdict,
        Verdict::Regressed
    );
}

#[test]
fn json_verdict_basis_and_runs_needed_agree() {
    let a: Vec<RunRecord> = group_records("groups/same-a");
    let slower: Vec<RunRecord> = group_records("groups/slower");
    let pairs: Vec<(Side, Side)> = vec![
        (
            side_of("a", a[..1].to_vec()),
            side_of("s", slower[..5].to_vec()),
        ),
        (
            side_of("a", a[..2].to_vec()),
            side_of("s", slower[..2].to_vec()),
        ),
        (
            side_of("a", a[..3].to_vec()),
            side_of("s", slower[..2].to_vec()),
        ),
        (
            side_of("a", a[..3].to_vec()),
            side_of("s", slower[..3].to_vec()),
        ),
        (side_of("a", a.clone()), side_of("s", slower.clone())),
        (
            Side::single(load(&fixture("basic"))),
            Side::single(load(&fixture("regressed"))),
        ),
    ];
    for (b, c) in &pairs {
        for noise in [None, Some(0.0), Some(2.0)] {
            let opts = CompareOptions {
                force: true,
                noise_pct: noise,
                ..Default::default()
            };
            let cmp = Comparison::evaluate(b, c, &opts).unwrap();
            let j = compare_text::json(&cmp);
            let what = format!("{} vs {}, noise {noise:?}", cmp.base_id, cmp.candidate_id);
            assert_eq!(j["schema"], "metronome.compare/1");
            assert_eq!(j["regressed"], cmp.regressed());
            assert_eq!(j["headline"], cmp.headline().as_str());
            let few = b.runs.len().min(c.runs.len()) < 3;
            let mut any_primary_regressed = false;
            for m in j["metrics"].as_array().unwrap() {
                let (verdict, basis) =
                    (m["verdict"].as_str().unwrap(), m["basis"].as_str().unwrap());
                let counts: Vec<u64> = m["counts"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_u64().unwrap())
                    .collect();
                let ctx = format!("{what}: {}", m);
                assert!(
                    ["runs", "intervals", "too few runs", "missing"].contains(&basis),
                    "{ctx}"
                );
                if verdict == "regressed" || verdict == "improved" {
                    assert_eq!(basis, "runs", "{ctx}");
                    assert!(counts.iter().all(|&n| n >= 3), "{ctx}");
                }
                if few {
                    assert_ne!(basis, "runs", "{ctx}");
                }
                if basis == "runs" {
                    assert!(counts.iter().all(|&n| n >= 3), "{ctx}");
                }
                if basis == "too few runs" {
                    assert!(counts.iter().any(|&n| n < 3), "{ctx}");
                    assert!(m["ci_pct"].is_null(), "{ctx}");
                }
                assert_eq!(basis == "missing", verdict == "unavailable", "{ctx}");
                if !m["runs_needed"].is_null() {
                    assert_eq!(verdict, "inconclusive", "{ctx}");
                }
                if m["primary"] == true && verdict == "regressed" {
                    any_primary_regressed = true;
                }
            }
            assert_eq!(j["regressed"], any_primary_regressed, "{what}");
        }
    }
}

#[test]
fn groups_whose_runs_lack_results_json_count_their_runs_but_never_regress_below_three() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = group_runs("groups/same-a");
    // a group of 3 whose last two runs did not finish (no results.json)
    let g = tmp.path().join("g3");
    let ids: Vec<String> = runs[..3]
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for (p, id) in runs[..3].iter().zip(&ids) {
        copy_run(p, &g.join(id));
    }
    for id in &ids[1..] {
        std::fs::remove_file(g.join(id).join("results.json")).unwrap();
    }
    write_group_json(
        &g,
        &ids.iter().map(String::as_str).collect::<Vec<_>>(),
        &runs[0],
    );
    let side = Side::load(&g).unwrap();
    assert_eq!(side.runs.len(), 3);
    let base = side_of("a", group_records("groups/same-a"));
    let c = Comparison::evaluate(&base, &side, &CompareOptions::default()).unwrap();
    let d = c.metric("avg_delivered_per_sec").unwrap();
    assert_eq!((d.basis, d.counts), (Basis::Runs, (5, 3)), "{}", table(&c));
    // drain needs results.json: 1 value on the candidate side, too few
    let drain = c.metric("drain_us").unwrap();
    assert_eq!((drain.basis, drain.counts), (Basis::TooFew, (5, 1)));
    assert_eq!(
        (drain.verdict, drain.runs_needed),
        (Verdict::Inconclusive, Some(3))
    );
    assert_eq!(c.candidate_warnings.len(), 2, "{:?}", c.candidate_warnings);
    // the same group, 10x slower, against 2 runs: still never regressed
    let dropped = side_of(
        "d",
        side.runs.iter().cloned().map(|r| scaled(r, 0.1)).collect(),
    );
    let two = side_of(
        "a2",
        group_runs("groups/same-a")[3..]
            .iter()
            .map(|p| load(p))
            .collect(),
    );
    let c = Comparison::evaluate(&two, &dropped, &CompareOptions::default()).unwrap();
    assert_few_runs_contract(&c, "2 vs 3 (2 without results.json), 10x drop");
}

// =======================================================================================
// Cases that break the contract (these fail at the commit tested)

/// group.json listing ONE run directory three times: the side has one run, not three.
/// Counted three times it passed for three runs, and a 10x drop became `regressed`
/// (`--fail-on-regression` exited 1). Such a group is refused, naming the run.
#[test]
fn a_group_json_listing_one_run_three_times_is_not_three_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let src = &group_runs("groups/same-a")[0];
    let (base, cand) = (tmp.path().join("base"), tmp.path().join("cand"));
    copy_run(src, &base.join("r"));
    copy_run(src, &cand.join("r"));
    scale_on_disk(&cand.join("r"), 0.1);
    write_group_json(&base, &["r", "r", "r"], &base.join("r"));
    write_group_json(&cand, &["r", "r", "r"], &cand.join("r"));
    for dir in [&base, &cand] {
        let err = Side::load(dir).unwrap_err();
        assert!(
            matches!(&err, CompareError::DuplicateRun { run_id, .. } if run_id == "r"),
            "{err}"
        );
        assert!(
            err.to_string().contains("lists run r more than once"),
            "{err}"
        );
    }
    // Two directories holding copies of one run (the same run id inside): one run too.
    let copies = tmp.path().join("copies");
    copy_run(src, &copies.join("a"));
    copy_run(src, &copies.join("b"));
    write_group_json(&copies, &["a", "b"], &copies.join("a"));
    let err = Side::load(&copies).unwrap_err();
    assert!(matches!(err, CompareError::DuplicateRun { .. }), "{err}");
}

/// Peaks and drain have no sample intervals: from one run a side they are `inconclusive (3
/// runs a side needed)`, unless the two values are identical (a run against a copy of
/// itself), which is `no change`, and says so.
#[test]
fn peaks_and_drain_with_one_run_a_side_are_inconclusive_unless_identical() {
    let r = load(&fixture("basic"));
    let c = Comparison::evaluate(
        &Side::single(r.clone()),
        &Side::single(r),
        &CompareOptions::default(),
    )
    .unwrap();
    for key in ["peak_heap_bytes", "peak_rss_bytes", "drain_us"] {
        let m = c.metric(key).unwrap();
        assert_eq!(
            (m.basis, m.verdict),
            (Basis::TooFew, Verdict::NoChange),
            "{key}"
        );
        assert_eq!(m.note, "identical on both sides", "{key}");
    }
    let c = Comparison::evaluate(
        &Side::single(load(&fixture("basic"))),
        &Side::single(load(&fixture("unchanged"))),
        &CompareOptions::default(),
    )
    .unwrap();
    for key in ["peak_heap_bytes", "peak_rss_bytes", "drain_us"] {
        let m = c.metric(key).unwrap();
        assert_eq!(
            (m.basis, m.verdict, m.runs_needed),
            (Basis::TooFew, Verdict::Inconclusive, Some(3)),
            "{key}\n{}",
            table(&c)
        );
    }
}

/// One run a side, aa-delay0 second -> first. Single runs settle nothing beyond "no
/// change", so every `inconclusive` verdict names the 3 runs a side it needs, whether the
/// interval lies beyond the threshold (delivered/s, p50) or straddles it (p99 at -26.6%,
/// CI -32.4..-8.5 against ±10%; it named none).
#[test]
fn an_interval_based_inconclusive_with_one_run_a_side_names_three_runs() {
    let c = aa_second_against_first();
    let bad: Vec<String> = c
        .metrics
        .iter()
        .filter(|m| m.verdict == Verdict::Inconclusive && m.runs_needed != Some(3))
        .map(|m| {
            format!(
                "{} ({:?}, change {:?}, ci {:?}): {}",
                m.key, m.basis, m.change_pct, m.ci_pct, m.note
            )
        })
        .collect();
    assert!(
        bad.is_empty(),
        "inconclusive without runs_needed 3:\n{}\n{}",
        bad.join("\n"),
        table(&c)
    );
}

/// The same case: the p99 estimate (-26.6%) is beyond the ±10% threshold but its interval
/// straddles it; the note says so and what would settle it.
#[test]
fn an_interval_that_straddles_the_threshold_says_what_would_settle_it() {
    let c = aa_second_against_first();
    let p99 = c.metric("latency_p99_us").unwrap();
    assert!(p99.change_pct.unwrap() < -p99.noise_pct, "{p99:?}");
    assert_eq!(p99.verdict, Verdict::Inconclusive);
    assert!(
        p99.note.contains("straddles") && p99.note.contains("--repeat 3"),
        "{}",
        p99.note
    );
}

/// One run a side, the base delivered nothing (every sample 0/s), the candidate 724k/s:
/// there is no relative change to judge, and the note says why; never a regression.
#[test]
fn a_zero_base_with_one_run_a_side_is_inconclusive_and_says_why() {
    let r = load(&fixture("basic"));
    let zero = scaled(r.clone(), 0.0);
    let c = Comparison::evaluate(
        &Side::single(zero),
        &Side::single(r),
        &CompareOptions::default(),
    )
    .unwrap();
    let d = c.metric("avg_delivered_per_sec").unwrap();
    assert_eq!(d.verdict, Verdict::Inconclusive);
    assert!(d.note.contains("base of zero"), "{:?}: {}", d.basis, d.note);
    assert!(!c.regressed());
}

/// `--format md` (for $GITHUB_STEP_SUMMARY): the delimiter row is
/// `| --- | ... | --- ||`, ten cells against a header of nine; a GFM parser
/// (markdown-it-py with tables enabled) then renders no table at all.
#[test]
fn markdown_delimiter_row_matches_the_header() {
    let c = Comparison::evaluate(
        &Side::single(load(&fixture("basic"))),
        &Side::single(load(&fixture("regressed"))),
        &CompareOptions::default(),
    )
    .unwrap();
    let md = compare_text::markdown(&c);
    let lines: Vec<&str> = md.lines().collect();
    let header = lines
        .iter()
        .position(|l| l.starts_with("| metric |"))
        .expect("a table");
    // one optional leading and trailing pipe, as GFM reads a row
    let cells = |l: &str| {
        let l = l.trim();
        let l = l.strip_prefix('|').unwrap_or(l);
        l.strip_suffix('|').unwrap_or(l).split('|').count()
    };
    let delim = lines[header + 1];
    assert!(
        cells(delim) == cells(lines[header]),
        "header {:?} ({} cells), delimiter {:?} ({} cells)",
        lines[header],
        cells(lines[header]),
        delim,
        cells(delim)
    );
}

/// `--primary p99` on two runs that recorded no latency: the only primary metric is
/// `unavailable`, yet the headline is `NO CHANGE` ("overall: NO CHANGE (latency p99
/// unavailable)"); NO CHANGE means every primary metric is within its noise.
#[test]
fn the_headline_is_not_no_change_when_no_primary_metric_was_measured() {
    let strip = |mut r: RunRecord| {
        for s in &mut r.samples.samples {
            s.latency_us = Default::default();
        }
        if let Some(res) = &mut r.results {
            res.latency_us = Default::default();
        }
        r.hlog = None;
        r
    };
    let (b, c) = (
        strip(load(&fixture("basic"))),
        strip(load(&fixture("regressed"))),
    );
    let opts = CompareOptions {
        primary: vec!["p99".into()],
        ..Default::default()
    };
    let cmp = Comparison::evaluate(&Side::single(b), &Side::single(c), &opts).unwrap();
    assert_eq!(
        cmp.metric("latency_p99_us").unwrap().verdict,
        Verdict::Unavailable
    );
    assert_ne!(
        cmp.headline(),
        Headline::NoChange,
        "{}",
        compare_text::overall_line(&cmp)
    );
}

/// README: compare "refuses sides whose scenarios differ ... unless --force". Only the first
/// run of each side is checked: a candidate group whose first run is of the base's
/// scenario and whose other runs had the consumer twice as slow is compared unforced.
#[test]
fn a_side_whose_later_runs_ran_another_scenario_is_refused() {
    let a: Vec<RunRecord> = group_records("groups/same-a");
    let s: Vec<RunRecord> = group_records("groups/slower");
    let base = side_of("a", a[..3].to_vec());
    let mixed = side_of("mixed", vec![a[3].clone(), s[0].clone(), s[1].clone()]);
    let got = Comparison::evaluate(&base, &mixed, &CompareOptions::default());
    assert!(
        got.is_err(),
        "compared unforced: {}",
        got.map(|c| compare_text::overall_line(&c))
            .unwrap_or_default()
    );
}

/// aa-delay0's second run as the base, its first as the candidate: one run a side.
fn aa_second_against_first() -> Comparison {
    let (first, second) = (
        load(&fixture("aa-delay0/first")),
        load(&fixture("aa-delay0/second")),
    );
    Comparison::evaluate(
        &Side::single(second),
        &Side::single(first),
        &CompareOptions::default(),
    )
    .unwrap()
}
