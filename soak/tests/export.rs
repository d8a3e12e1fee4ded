//! `soak export --csv`: a run's samples as CSV that a spreadsheet reads back.

mod common;

use std::time::Duration;

use common::*;

const LIMIT: Duration = Duration::from_secs(60);

#[test]
fn a_runs_samples_come_out_as_csv_one_row_each() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = one_second_run(dir.path(), &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let run_dir = dir.path().join("latest");
    let exported = run(&["export", &path(&run_dir), "--csv"], LIMIT);
    assert!(exported.status.success(), "{}", stderr(&exported));

    let log = runlog::read_samples(&run_dir.join("samples.jsonl")).expect("samples");
    let mut reader = csv::Reader::from_reader(exported.stdout.as_slice());
    let header: Vec<String> = reader
        .headers()
        .expect("header")
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(&header[..3], ["t_s", "interval_s", "phase"], "{header:?}");
    for column in [
        "delivered_per_sec",
        "buffered_bytes",
        "latency_us.p99",
        "totals.accepted",
    ] {
        assert!(header.iter().any(|h| h == column), "{column} in {header:?}");
    }
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("row")).collect();
    assert_eq!(rows.len(), log.samples.len());
    let delivered = header.iter().position(|h| h == "totals.delivered").unwrap();
    let last: u64 = rows.last().unwrap()[delivered].parse().expect("a number");
    assert_eq!(last, log.samples.last().unwrap().totals.delivered);
}

#[test]
fn export_refuses_what_is_not_a_run_and_needs_a_format() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run(&["export", &path(dir.path()), "--csv"], LIMIT);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("export"), "{}", stderr(&out));
    let out = run(&["export", &path(dir.path())], LIMIT);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--csv"), "{}", stderr(&out));
}

#[test]
fn summary_md_writes_the_verdict_as_markdown_and_refuses_a_bad_path_up_front() {
    let dir = tempfile::tempdir().expect("tempdir");
    let md = dir.path().join("summary.md");
    let base = path(&dir.path().join("runs"));
    let out = run(
        &[
            "--duration",
            "1s",
            "--producers",
            "2",
            "--no-tui",
            "-q",
            "--out",
            &base,
            "--summary-md",
            &path(&md),
        ],
        LIMIT,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(&md).expect("summary.md");
    let record: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("runs/latest/results.json")).expect("results.json"),
    )
    .expect("json");
    let verdict = record["assessment"]["overall"]
        .as_str()
        .unwrap()
        .to_uppercase();
    assert!(
        text.starts_with(&format!(
            "## Soak {}: {verdict}\n",
            record["run_id"].as_str().unwrap()
        )),
        "{text}"
    );
    assert!(text.contains("| figure | value |"), "{text}");
    assert!(text.contains("- correctness: **PASS**"), "{text}");

    // A directory that does not exist: refused before anything is created.
    let runs = dir.path().join("never");
    let out = run(
        &[
            "--duration",
            "1s",
            "--no-tui",
            "-q",
            "--out",
            &path(&runs),
            "--summary-md",
            &path(&dir.path().join("missing/summary.md")),
        ],
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--summary-md"), "{}", stderr(&out));
    assert!(!runs.exists(), "nothing is created");
}
