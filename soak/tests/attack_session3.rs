//! Attack session 3 (independent tester): the reference targets, `--weigh`, logging,
//! the dashboard's fallbacks, `tune` refusals and interruption, and the human surfaces.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use nix::sys::signal::Signal;

const LIMIT: Duration = Duration::from_secs(120);

fn record(base: &Path) -> serde_json::Value {
    let dir = runlog::RunDir::resolve_latest(base).expect("a run directory");
    serde_json::from_slice(&std::fs::read(dir.results_path()).expect("results.json"))
        .expect("results.json parses")
}

fn assert_nothing_lost(r: &serde_json::Value, what: &str) {
    let t = &r["totals"];
    let (accepted, delivered, dropped) = (
        t["accepted"].as_u64().unwrap(),
        t["delivered"].as_u64().unwrap(),
        t["dropped"].as_u64().unwrap(),
    );
    // What a drain deadline left in the channel is counted, not lost.
    let undelivered = r["drain"]["undelivered"].as_u64().unwrap_or(0);
    assert!(accepted > 0, "{what}: nothing accepted: {t}");
    assert_eq!(accepted, delivered + dropped + undelivered, "{what}: {t}");
}

/// A display width good enough for the summary (ASCII, `·`, box characters: one column).
fn columns(line: &str) -> usize {
    line.chars().count()
}

#[test]
fn reference_targets_name_themselves_and_lose_nothing_with_a_slow_consumer() {
    for target in ["crossbeam", "tokio", "channel"] {
        let dir = tempfile::tempdir().unwrap();
        let args = small_run(
            "1s",
            &path(dir.path()),
            &["--target", target, "--consumer-delay", "50ms"],
        );
        let out = run(&refs(&args), LIMIT);
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "{target}: {}",
            stderr(&out)
        );
        let r = record(dir.path());
        assert_eq!(r["config"]["target"], target);
        assert_eq!(r["config"]["weighing"], "occupancy", "the default weighing");
        assert_nothing_lost(&r, target);
        let text = stdout(&out);
        let scenario_end = text
            .lines()
            .skip_while(|l| !l.trim_start().starts_with("scenario"))
            .find(|l| l.trim_end().ends_with(&format!("target {target}")));
        assert!(scenario_end.is_some(), "{target}: scenario line:\n{text}");
        for line in text.lines() {
            assert!(
                columns(line) <= 80,
                "{target}: {} cols: {line}",
                columns(line)
            );
        }
    }
}

#[test]
fn reference_targets_with_one_producer_and_many_producers_and_tiny_buffers() {
    for (target, extra) in [
        ("tokio", vec!["--producers", "1"]),
        ("crossbeam", vec!["--producers", "200"]),
        (
            "crossbeam",
            vec![
                "--max-buffered-bytes",
                "32KiB",
                "--consumer-delay",
                "50ms",
                "--drain-timeout",
                "1ms",
            ],
        ),
        (
            "tokio",
            vec!["--payload", "fixed:16MiB", "--max-buffered-bytes", "40MiB"],
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut args = small_run("1s", &path(dir.path()), &["--target", target]);
        // small_run sets --producers 2; a later flag wins only if clap allows: drop it.
        if extra.contains(&"--producers") {
            let at = args.iter().position(|a| a == "--producers").unwrap();
            args.drain(at..at + 2);
        }
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        let out = run(&refs(&args), LIMIT);
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "{target} {extra:?}: {}",
            stderr(&out)
        );
        assert_nothing_lost(&record(dir.path()), &format!("{target} {extra:?}"));
    }
}

#[test]
fn reference_targets_interrupted_keep_a_complete_record() {
    for (target, sig, code) in [
        ("crossbeam", Signal::SIGINT, 130),
        ("tokio", Signal::SIGTERM, 143),
        ("channel", Signal::SIGINT, 130),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let args = long_run(
            &path(dir.path()),
            &["--target", target, "--consumer-delay", "50ms"],
        );
        let child = spawn(&refs(&args));
        wait_for_samples(dir.path(), 2, LIMIT);
        signal(child.id(), sig);
        let out = finish(child, LIMIT);
        assert_eq!(out.status.code(), Some(code), "{target}: {}", stderr(&out));
        let r = record(dir.path());
        assert_eq!(r["config"]["target"], target);
        assert_nothing_lost(&r, target);
    }
}

#[test]
fn policy_and_block_timeout_with_a_reference_target_are_usage_errors_naming_it() {
    for (target, flags) in [
        ("crossbeam", vec!["--policy", "reject"]),
        ("tokio", vec!["--policy=drop-oldest"]),
        ("channel", vec!["--block-timeout", "5ms"]),
        ("tokio", vec!["--policy", "block", "--block-timeout", "1s"]),
    ] {
        let mut args = vec!["--no-tui", "--duration", "1s", "--target", target];
        args.extend(flags.iter().copied());
        let out = run(&args, LIMIT);
        assert_eq!(out.status.code(), Some(2), "{target} {flags:?}");
        assert!(
            out.stdout.is_empty(),
            "usage errors print nothing on stdout"
        );
        assert!(
            stderr(&out).contains(&format!("--target {target}")),
            "{target} {flags:?}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn tune_and_sink_refuse_reference_targets_by_name() {
    for target in ["crossbeam", "tokio", "channel"] {
        let out = run(&["tune", "--target", target], LIMIT);
        assert_eq!(out.status.code(), Some(2));
        assert!(
            stderr(&out).contains(&format!("--target {target}")),
            "{}",
            stderr(&out)
        );
        let out = run(
            &[
                "--no-tui",
                "--duration",
                "1s",
                "--sink",
                "nats://127.0.0.1:1",
                "--target",
                target,
            ],
            LIMIT,
        );
        assert_eq!(out.status.code(), Some(2));
        assert!(
            stderr(&out).contains(&format!("--target {target}")),
            "{}",
            stderr(&out)
        );
    }
}

#[test]
fn weigh_is_recorded_and_bad_values_name_what_was_typed() {
    let dir = tempfile::tempdir().unwrap();
    let args = small_run("1s", &path(dir.path()), &["--weigh", "payload"]);
    let out = run(&refs(&args), LIMIT);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", stderr(&out));
    assert_eq!(record(dir.path())["config"]["weighing"], "payload");
    for bad in ["Occupancy", "payloads", "pay load", "1"] {
        let out = run(&["--no-tui", "--duration", "1s", "--weigh", bad], LIMIT);
        assert_eq!(out.status.code(), Some(2), "{bad}");
        assert!(stderr(&out).contains(bad), "{bad}: {}", stderr(&out));
    }
}

#[test]
fn log_levels_stay_on_stderr_and_bad_levels_name_what_was_typed() {
    let dir = tempfile::tempdir().unwrap();
    for verbosity in [&["-vv"][..], &["--log-level", "trace"][..]] {
        let mut extra = vec!["--json", "--target", "crossbeam"];
        extra.extend_from_slice(verbosity);
        let args = small_run("1s", &path(dir.path()), &extra);
        let out = run(&refs(&args), LIMIT);
        assert!(matches!(out.status.code(), Some(0 | 1)), "{}", stderr(&out));
        let doc: serde_json::Value =
            serde_json::from_slice(&out.stdout).expect("stdout is only the JSON document");
        assert!(doc.is_object());
        assert!(!out.stderr.is_empty(), "diagnostics went to stderr");
        assert!(
            !out.stderr.contains(&0x1b),
            "stderr is not a terminal: no escapes"
        );
    }
    for bad in ["verbose", "WARN", "7"] {
        let out = run(&["--no-tui", "--log-level", bad], LIMIT);
        assert_eq!(out.status.code(), Some(2));
        assert!(stderr(&out).contains(bad), "{}", stderr(&out));
    }
}

#[test]
fn tui_without_a_terminal_writes_nothing_before_the_summary() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        &[
            "--tui",
            "--duration",
            "1s",
            "--producers",
            "2",
            "--out",
            &path(dir.path()),
        ],
        LIMIT,
    );
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("soak "),
        "stdout starts with the summary: {:?}",
        &stdout(&out)[..stdout(&out).len().min(200)]
    );
    let about: Vec<_> = stderr(&out)
        .lines()
        .filter(|l| l.contains("dashboard"))
        .map(str::to_owned)
        .collect();
    assert_eq!(about.len(), 1, "one line says why: {about:?}");
}

#[test]
fn interrupted_tune_writes_no_tuned_toml_and_keeps_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let tuned = dir.path().join("tuned.toml");
    std::fs::write(&tuned, "# a previous tuned.toml\n").unwrap();
    let child = spawn(&[
        "tune",
        "--json",
        "--budget",
        "60s",
        "--producers",
        "2",
        "--out",
        &path(dir.path()),
    ]);
    wait_for_samples(dir.path(), 2, LIMIT);
    signal(child.id(), Signal::SIGINT);
    let out = finish(child, LIMIT);
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(&tuned).unwrap(),
        "# a previous tuned.toml\n",
        "left untouched"
    );
    assert!(stderr(&out).contains("no tuned.toml"), "{}", stderr(&out));
    assert!(
        out.stdout.is_empty() || serde_json::from_slice::<serde_json::Value>(&out.stdout).is_ok()
    );
}

/// A payload above the payload limit is refused naming what was typed and the limit in
/// units (it once read "2147483648 bytes is above the 16777216-byte payload limit").
#[test]
fn payload_limit_usage_error_reads_in_units() {
    for shape in ["fixed:2GiB", "fixed:100MiB", "uniform:1..20MiB"] {
        let out = run(&["--no-tui", "--duration", "1s", "--payload", shape], LIMIT);
        assert_eq!(out.status.code(), Some(2));
        let err = stderr(&out);
        for raw in ["2147483648", "16777216", "104857600", "20971520"] {
            assert!(
                !err.contains(raw),
                "{shape}: raw byte count {raw} in: {err}"
            );
        }
        let typed = shape.rsplit([':', '.']).next().expect("a size");
        assert!(
            err.contains(typed) && err.contains("16 MiB"),
            "{shape}: names {typed} and the limit: {err}"
        );
    }
}

/// The summary keeps within 80 columns even with long paths: a path too long for any
/// line stands alone on its own line, whole (it once printed the `run dir` line at 132
/// columns and a `file:` payload at 111).
#[test]
fn summary_lines_stay_within_80_columns_with_long_paths() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir
        .path()
        .join("a-very-long-output-directory-name-for-testing-the-summary-width")
        .join("and-another-nested-level");
    let payload = dir
        .path()
        .join("payload-file-with-a-rather-long-name-to-stretch-the-scenario-line.bin");
    std::fs::write(&payload, vec![7u8; 300]).unwrap();
    let shape = format!("file:{}", path(&payload));
    let args = small_run("1s", &path(&out_dir), &["--payload", &shape]);
    let out = run(&refs(&args), LIMIT);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", stderr(&out));
    let long: Vec<String> = stdout(&out)
        .lines()
        .filter(|l| columns(l) > 80 && l.contains(' '))
        .map(|l| format!("{} cols: {l}", columns(l)))
        .collect();
    assert!(
        long.is_empty(),
        "lines over 80 columns that are not one whole path:\n{}",
        long.join("\n")
    );
    assert!(
        stdout(&out)
            .lines()
            .any(|l| l == path(&out_dir) || l.starts_with(&path(&out_dir))),
        "the run directory is printed whole on a line of its own:\n{}",
        stdout(&out)
    );
}

/// A reference target's drain keeps `--drain-timeout` (within a poll and the time to drop
/// what is left): at the deadline the consumer stops and what the channel still holds is
/// counted undelivered. It once emptied the whole channel whatever the deadline (987 ms
/// against 50 ms, with 1 GiB buffered).
#[test]
fn reference_target_drain_keeps_its_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let args = small_run(
        "4s",
        &path(dir.path()),
        &[
            "--target",
            "crossbeam",
            "--consumer-delay",
            "1s",
            "--max-buffered-bytes",
            "1GiB",
            "--drain-timeout",
            "50ms",
        ],
    );
    let out = run(&refs(&args), LIMIT);
    let r = record(dir.path());
    let t = &r["totals"];
    let undelivered = r["drain"]["undelivered"].as_u64().expect("undelivered");
    assert!(
        undelivered > 0,
        "the deadline left events behind: {}",
        r["drain"]
    );
    assert_eq!(
        t["accepted"].as_u64(),
        Some(t["delivered"].as_u64().unwrap() + t["dropped"].as_u64().unwrap() + undelivered),
        "every accepted event is delivered, dropped or counted undelivered: {t}"
    );
    let drain_us = r["drain"]["drain_us"].as_u64().expect("drain_us");
    assert!(
        drain_us <= 50_000 + 250_000,
        "drain took {drain_us} us against a 50 ms deadline; {}",
        stdout(&out)
    );
}
