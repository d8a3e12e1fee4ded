//! The run record's files through the real binary: compare's output (issue 15 item 3),
//! an unwritable results.json (item 4), a refused start (item 14), cut or impossible
//! records and the average rate (item 19).

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;

const LIMIT: Duration = Duration::from_secs(60);

/// A short real run under `out`; its directory.
fn short_run(out: &Path, extra: &[&str]) -> runlog::RunDir {
    let out_dir = path(out);
    let mut args = vec![
        "--duration",
        "1s",
        "--producers",
        "2",
        "-q",
        "--no-tui",
        "--out",
        &out_dir,
    ];
    args.extend(extra);
    let run = common::run(&args, LIMIT);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    runlog::RunDir::resolve_latest(out).expect("latest")
}

#[test]
fn item03_compare_refuses_to_overwrite_a_record_or_a_foreign_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = fixture("basic", dir.path());
    let candidate = fixture("unchanged", dir.path());
    let compare = |output: &Path, extra: &[&str]| {
        let mut args = vec![
            "compare".to_string(),
            path(&base),
            path(&candidate),
            "--output".into(),
            path(output),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        common::run(&args, LIMIT)
    };
    let results = candidate.join("results.json");
    let before = std::fs::read(&results).expect("read");
    for extra in [&[][..], &["--force"][..]] {
        let out = compare(&results, extra);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {}", stderr(&out));
        assert_eq!(std::fs::read(&results).expect("read"), before, "untouched");
    }
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "mine").expect("write");
    let out = compare(&notes, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(
        stderr(&out).matches("--force").count(),
        1,
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read_to_string(&notes).expect("read"), "mine");
    let page = dir.path().join("c.html");
    assert_eq!(compare(&page, &[]).status.code(), Some(0));
    let again = compare(&page, &[]);
    assert_eq!(
        again.status.code(),
        Some(0),
        "a previous page is replaced: {}",
        stderr(&again)
    );
    assert_eq!(compare(&notes, &["--force"]).status.code(), Some(0));
}

#[test]
fn item03_a_page_that_cannot_be_written_leaves_the_old_one_whole() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = fixture("basic", dir.path());
    let first = common::run(&["report", &path(&run)], LIMIT);
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    let page = run.join("report.html");
    let before = std::fs::read(&page).expect("report.html");
    assert!(
        before.len() > 16 * 1024,
        "a page larger than the limit below"
    );
    // A full disk, as far as this process can tell: files may not grow past 16 KiB.
    let command = format!(
        "trap '' XFSZ; ulimit -f 16; exec {} report {}",
        bin().display(),
        path(&run)
    );
    let out = std::process::Command::new("bash")
        .args(["-c", &command])
        .output()
        .expect("bash");
    assert_ne!(
        out.status.code(),
        Some(0),
        "a failed write is not a success"
    );
    assert_eq!(
        std::fs::read(&page).expect("report.html"),
        before,
        "the old page is whole"
    );
}

#[test]
fn item04_an_unwritable_results_json_still_prints_the_verdict() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out_dir = path(dir.path());
    let child = spawn(&refs(&small_run("1500ms", &out_dir, &[])));
    let run = latest(dir.path(), LIMIT);
    // results.json cannot be created: a directory holds its name.
    std::fs::create_dir_all(run.results_path().join("in-the-way")).expect("mkdir");
    let out = finish(child, LIMIT);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!("soak {}: ", run.run_id())),
        "{}",
        stdout(&out)
    );
    assert!(stderr(&out).contains("results.json"), "{}", stderr(&out));
}

#[test]
fn item14_a_refused_start_creates_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out_dir = path(dir.path());
    let out = common::run(
        &["--cpus", "999", "--duration", "1s", "--out", &out_dir],
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_dir(dir.path()).expect("dir").count(),
        0,
        "nothing created"
    );

    std::fs::create_dir(dir.path().join("latest")).expect("mkdir");
    let out = common::run(&["--duration", "1s", "--no-tui", "--out", &out_dir], LIMIT);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("latest"), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_dir(dir.path()).expect("dir").count(),
        1,
        "only `latest`"
    );

    let empty = dir.path().join("20260101-000000-0000");
    std::fs::create_dir(&empty).expect("mkdir");
    std::fs::write(empty.join("samples.jsonl"), "").expect("write");
    let out = common::run(&["report", &path(&empty)], LIMIT);
    assert_eq!(
        out.status.code(),
        Some(2),
        "an empty record is not a run: {}",
        stderr(&out)
    );
}

#[test]
fn item19_a_cut_latency_log_gets_the_warning_banner() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = short_run(dir.path(), &["--sample-every", "200ms"]);
    let hlog = run.hlog_path();
    let len = std::fs::metadata(&hlog).expect("hlog").len();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&hlog)
        .expect("open");
    file.set_len(len - 10).expect("cut mid-line");
    let out = common::run(&["report", &path(run.path())], LIMIT);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("latency.hlog") && stderr(&out).contains("cut"),
        "{}",
        stderr(&out)
    );
    let html = std::fs::read_to_string(run.report_path()).expect("report");
    assert!(html.contains("the last line is cut"), "the banner");
}

#[test]
fn item19_report_refuses_a_negative_duration() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = fixture("basic", dir.path());
    let results = run.join("results.json");
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&results).expect("read")).expect("json");
    json["duration_s"] = serde_json::json!(-5.0);
    std::fs::write(&results, json.to_string()).expect("write");
    let out = common::run(&["report", &path(&run)], LIMIT);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("duration_s"), "{}", stderr(&out));
}

#[test]
fn item19_the_average_rate_is_never_below_the_per_sample_minimum() {
    let dir = tempfile::tempdir().expect("tempdir");
    // An even, open-loop rate: every sample delivers about the same.
    let run = short_run(
        dir.path(),
        &[
            "--rate",
            "20k/s",
            "--consumer-delay",
            "0s",
            "--sample-every",
            "100ms",
        ],
    );
    let r = runlog::read_results(&run.results_path()).expect("results");
    let t = r.throughput;
    assert!(
        t.avg_delivered_per_sec >= t.min_delivered_per_sec * (1.0 - 1e-9),
        "avg {} below the per-sample min {}",
        t.avg_delivered_per_sec,
        t.min_delivered_per_sec
    );
    // The run's length is where its counts were read: the last run-phase sample, not
    // after that sample was written.
    let log = runlog::read_samples(&run.samples_path()).expect("samples");
    let last = log
        .samples
        .iter()
        .rev()
        .find(|s| s.phase == "run")
        .expect("a run sample");
    assert!(
        (r.duration_s - last.t_s).abs() < 1e-9,
        "{} vs {}",
        r.duration_s,
        last.t_s
    );
    let avg = last.totals.delivered as f64 / last.t_s;
    assert!(
        (t.avg_delivered_per_sec - avg).abs() <= avg * 1e-9,
        "{} vs {avg}",
        t.avg_delivered_per_sec
    );
}
