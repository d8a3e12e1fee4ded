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

/// `tune --json`: one `metronome.tune/1` document on stdout, which parses and carries
/// every probe; the probe lines still go to stderr; no human text on stdout.
#[test]
fn tune_json_prints_the_documented_schema() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run(
        &[
            "tune",
            "--producers",
            "4",
            "--budget",
            "4s",
            "--json",
            "--out",
            &path(dir.path()),
        ],
        Duration::from_secs(60),
    );
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_str(&stdout(&out))
        .unwrap_or_else(|e| panic!("stdout is JSON ({e}): {}", stdout(&out)));
    assert_eq!(doc["schema"], "metronome.tune/1");
    assert_eq!(doc["budget_s"], 4.0);
    assert!(
        doc["scenario"]
            .as_str()
            .is_some_and(|s| s.contains("4 producers"))
    );
    let probes = doc["search"]["probes"].as_array().expect("probes");
    assert!(!probes.is_empty(), "{doc}");
    assert_eq!(probes[0]["phase"], "ceiling");
    assert!(probes[0]["offered_per_sec"].is_null(), "closed loop: {doc}");
    for key in [
        "interval_us",
        "max_batch_bytes",
        "max_buffered_bytes",
        "delivered_per_sec",
        "rejected_pct",
        "p99_us",
        "target_us",
        "peak_heap_bytes",
        "healthy",
    ] {
        assert!(!probes[0][key].is_null(), "{key}: {doc}");
    }
    assert!(
        doc["run_dir"]
            .as_str()
            .is_some_and(|d| std::path::Path::new(d).is_dir())
    );
    // The probe table went to stderr, as without --json.
    assert!(stderr(&out).contains("ceiling"), "{}", stderr(&out));
    if out.status.code() == Some(0) {
        let rec = &doc["recommendation"];
        assert!(rec["config"]["rate_per_sec"].as_u64().is_some(), "{doc}");
        assert!(!rec["reasons"].as_array().expect("reasons").is_empty());
        assert!(doc["verification"]["kept"].is_boolean(), "{doc}");
        let tuned = doc["tuned_path"].as_str().expect("tuned.toml written");
        assert!(std::path::Path::new(tuned).is_file());
        assert!(!doc["edge"].is_null(), "{doc}");
    } else {
        assert!(doc["recommendation"].is_null(), "{doc}");
    }
}

/// Ctrl-C during the search (after the edge was bracketed: a healthy rate probe) leaves
/// no tuned.toml written as if complete: nothing is written, and stderr says so.
#[test]
fn an_interrupted_tune_writes_no_tuned_toml_and_says_so() {
    use std::io::BufRead as _;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = spawn(&[
        "tune",
        "--producers",
        "4",
        "--budget",
        "20s",
        "--out",
        &path(dir.path()),
    ]);
    let err = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx.send(line.clone());
            lines.push(line);
        }
        lines
    });
    // A healthy probe past the ceiling: the search has an edge, and would recommend.
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    let mut signalled = false;
    while std::time::Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(line) if !line.contains("ceiling") && line.contains("  ok [") => {
                signal(child.id(), nix::sys::signal::Signal::SIGINT);
                signalled = true;
                break;
            }
            Ok(_) | Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let out = finish(child, Duration::from_secs(60));
    let err = reader.join().expect("reader").join("\n");
    assert!(signalled, "no healthy probe to interrupt after: {err}");
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(
        !dir.path().join("tuned.toml").exists(),
        "an interrupted search wrote tuned.toml: {err}"
    );
    assert!(
        err.contains("cut short by SIGINT") && err.contains("no tuned.toml was written"),
        "{err}"
    );
}
