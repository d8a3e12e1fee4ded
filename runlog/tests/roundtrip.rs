//! Round trips of every run-record file, and the contract's edge cases.

use std::collections::BTreeSet;
use std::fs;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::SystemTime;

use hdrhistogram::Histogram;
use runlog::*;

/// A fresh, empty directory for one test.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("runlog-it-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn keys(value: &serde_json::Value) -> BTreeSet<String> {
    value.as_object().unwrap().keys().cloned().collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

fn sample_results() -> RunResults {
    let pass = Section::new(Status::Pass, ["produced == delivered"]);
    RunResults {
        run_id: "20261123-103512-a3f9".into(),
        started_at: "2026-11-23T10:35:12Z".into(),
        environment: Environment {
            os: "linux".into(),
            arch: "x86_64".into(),
            cpu_count: 2,
            total_memory_bytes: 24 << 30,
            page_size_bytes: 4096,
            jemalloc: Some("narenas:8".into()),
            ..Default::default()
        },
        config: ScenarioConfig {
            max_batch_bytes: None,
            rate_per_sec: Some(100_000),
            ..Default::default()
        },
        totals: Totals {
            attempted: 110,
            accepted: 100,
            rejected: 10,
            dropped: 0,
            delivered: 100,
            batches: 7,
        },
        throughput: Throughput {
            avg_delivered_per_sec: 50.5,
            ..Default::default()
        },
        memory: Memory {
            peak_heap_bytes: 3 << 20,
            max_buffered_bytes: 64 << 20,
            ..Default::default()
        },
        latency_us: LatencySummary {
            count: 100,
            p50: 10,
            p90: 20,
            p99: 30,
            p999: 40,
            max: 50,
        },
        drain: Drain {
            drain_us: 118,
            shutdown_us: 200,
            undelivered: 0,
            ..Drain::default()
        },
        events: vec![Event::new(
            2.0,
            EventKind::Phase {
                name: "drain".into(),
            },
        )],
        assessment: Assessment::new(
            pass.clone(),
            Section::new(Status::Warn, ["rejected 9%"]),
            pass.clone(),
            pass,
        ),
        batches: BatchStats {
            mean_batch_bytes: 1234.5,
            flush_reasons: FlushReasonCounts {
                interval: 5,
                bytes: 2,
                ..Default::default()
            },
        },
        duration_s: 2.0,
        ..Default::default()
    }
}

#[test]
fn results_round_trip_with_the_contract_key_set() {
    let dir = TempDir::new("results");
    let path = dir.join("results.json");
    let results = sample_results();
    write_results(&path, &results).unwrap();
    assert_eq!(read_results(&path).unwrap(), results);

    let v: serde_json::Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    let top = [
        "schema",
        "run_id",
        "started_at",
        "environment",
        "config",
        "totals",
        "throughput",
        "memory",
        "latency_us",
        "drain",
        "events",
        "assessment",
        "batches",
        "duration_s",
        "sink",
    ];
    assert_eq!(keys(&v), set(&top));
    assert_eq!(v["schema"], "metronome.run/1");
    let totals = [
        "attempted",
        "accepted",
        "rejected",
        "dropped",
        "delivered",
        "batches",
    ];
    assert_eq!(keys(&v["totals"]), set(&totals));
    let throughput = [
        "avg_delivered_per_sec",
        "min_delivered_per_sec",
        "max_delivered_per_sec",
        "avg_delivered_bytes_per_sec",
        "avg_accepted_per_sec",
    ];
    assert_eq!(keys(&v["throughput"]), set(&throughput));
    let memory = [
        "peak_heap_bytes",
        "final_heap_bytes",
        "peak_rss_bytes",
        "peak_buffered_bytes",
        "max_buffered_bytes",
        // Extended: the heap's measured baseline, cost per byte and budget.
        "baseline_heap_bytes",
        "heap_per_buffered_byte",
        "heap_budget_bytes",
    ];
    assert_eq!(keys(&v["memory"]), set(&memory));
    let latency = ["count", "p50", "p90", "p99", "p999", "max"];
    assert_eq!(keys(&v["latency_us"]), set(&latency));
    assert_eq!(
        keys(&v["drain"]),
        set(&[
            "drain_us",
            "shutdown_us",
            "undelivered",
            "in_flight",
            "failed",
            // Extended: what the drain had to move (0 in older records).
            "buffered_bytes_at_start",
            "buffered_events_at_start"
        ])
    );
    // Extended (never renamed): thresholds and not_judged came later and read as empty
    // from older records.
    let sections = [
        "overall",
        "correctness",
        "pressure",
        "memory",
        "drain",
        "thresholds",
        "not_judged",
    ];
    assert_eq!(keys(&v["assessment"]), set(&sections));
    assert_eq!(v["assessment"]["overall"], "warn");
    assert_eq!(
        keys(&v["assessment"]["pressure"]),
        set(&["status", "notes"])
    );
    for k in [
        "os",
        "arch",
        "cpu_model",
        "cpu_count",
        "total_memory_bytes",
        "page_size_bytes",
        "rustc",
        "git_rev",
    ] {
        assert!(v["environment"].get(k).is_some(), "environment.{k}");
    }
    assert_eq!(v["events"][0]["kind"], "phase");
    assert_eq!(v["events"][0]["at_s"], 2.0);
    assert_eq!(v["config"]["max_batch_bytes"], serde_json::Value::Null);
    assert_eq!(v["config"]["policy"], "reject");
}

#[test]
fn results_with_another_schema_or_bad_json_are_clear_errors() {
    let dir = TempDir::new("schema");
    let path = dir.join("results.json");
    let mut v = serde_json::to_value(sample_results()).unwrap();
    v["schema"] = "metronome.run/2".into();
    fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    match read_results(&path).unwrap_err() {
        RunlogError::Schema { found, path: p } => {
            assert_eq!(found, "metronome.run/2");
            assert_eq!(p, path);
        }
        other => panic!("{other}"),
    }

    fs::write(
        &path,
        "{\n  \"schema\": \"metronome.run/1\",\n  \"run_id\": 5\n}\n",
    )
    .unwrap();
    let err = read_results(&path).unwrap_err();
    assert!(
        matches!(err, RunlogError::Json { line: Some(3), .. }),
        "{err}"
    );
    assert!(err.to_string().contains("results.json:3"), "{err}");
}

fn sample(t_s: f64) -> Sample {
    Sample {
        t_s,
        interval_s: 1.0,
        delivered_per_sec: 1000.0 * t_s,
        totals: Totals {
            delivered: 1000 * t_s as u64,
            ..Default::default()
        },
        latency_us: LatencySummary {
            count: 3,
            p50: 7,
            ..Default::default()
        },
        limits: Limits::from_config(&ScenarioConfig::default()),
        phase: "run".into(),
        ..Default::default()
    }
}

#[test]
fn samples_round_trip_with_events_in_order() {
    let dir = TempDir::new("samples");
    let path = dir.join("samples.jsonl");
    let mut w = SamplesWriter::create(&path).unwrap();
    let phase = Event::new(0.0, EventKind::Phase { name: "run".into() });
    let reconf = Event::new(
        1.5,
        EventKind::Reconfigure {
            knob: "interval_us".into(),
            from: "10000".into(),
            to: "5000".into(),
            source: "tui".into(),
        },
    );
    w.write_event(&phase).unwrap();
    w.write_sample(&sample(1.0)).unwrap();
    w.write_event(&reconf).unwrap();
    w.write_sample(&sample(2.0)).unwrap();

    let log = read_samples(&path).unwrap();
    assert_eq!(log.samples, vec![sample(1.0), sample(2.0)]);
    assert_eq!(log.events, vec![phase, reconf]);
    assert_eq!(log.truncated, None);
    let text = fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), 4);
    assert!(text.ends_with('\n'));
}

#[test]
fn a_cut_last_line_reads_as_truncated() {
    let dir = TempDir::new("cut");
    let path = dir.join("samples.jsonl");
    let mut w = SamplesWriter::create(&path).unwrap();
    for t in 1..=3 {
        w.write_sample(&sample(f64::from(t))).unwrap();
    }
    drop(w);
    let text = fs::read_to_string(&path).unwrap();
    let third_starts = text.match_indices('\n').nth(1).unwrap().0 + 1;
    let keep = third_starts + 40;
    fs::write(&path, &text.as_bytes()[..keep]).unwrap();

    let log = read_samples(&path).unwrap();
    assert_eq!(log.samples, vec![sample(1.0), sample(2.0)]);
    assert_eq!(log.truncated, Some(Truncation { line: 3, bytes: 40 }));
}

#[test]
fn a_corrupt_middle_line_names_file_and_line() {
    let dir = TempDir::new("corrupt");
    let path = dir.join("samples.jsonl");
    let good = serde_json::to_string(&sample(1.0)).unwrap();
    fs::write(
        &path,
        format!("{good}\n{good}\n{{\"t_s\": oops}}\n{good}\n"),
    )
    .unwrap();
    let err = read_samples(&path).unwrap_err();
    match &err {
        RunlogError::Json { path: p, line, .. } => {
            assert_eq!(p, &path);
            assert_eq!(*line, Some(3));
        }
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains("samples.jsonl:3:"), "{err}");
}

#[test]
fn follower_returns_a_line_only_once_complete() {
    let dir = TempDir::new("follow");
    let path = dir.join("samples.jsonl");
    let mut follower = SamplesFollower::new(&path);
    assert!(follower.poll().unwrap().is_empty());

    let mut file = fs::File::create(&path).unwrap();
    let line = serde_json::to_string(&sample(1.0)).unwrap();
    let (first, second) = line.split_at(line.len() / 2);
    file.write_all(first.as_bytes()).unwrap();
    assert!(follower.poll().unwrap().is_empty());
    file.write_all(second.as_bytes()).unwrap();
    assert!(follower.poll().unwrap().is_empty(), "no newline yet");
    file.write_all(b"\n").unwrap();
    assert_eq!(follower.poll().unwrap(), vec![Line::Sample(sample(1.0))]);
    assert!(
        follower.poll().unwrap().is_empty(),
        "each line is returned once"
    );

    // A good line, a bad one, a good one: the good line first, then the error, then on.
    let event = Event::new(
        2.0,
        EventKind::Warning {
            message: "w".into(),
        },
    );
    let event_line = serde_json::to_string(&event).unwrap();
    write!(file, "{event_line}\nnot json\n{line}\n").unwrap();
    assert_eq!(follower.poll().unwrap(), vec![Line::Event(event)]);
    let err = follower.poll().unwrap_err();
    assert!(
        matches!(err, RunlogError::Json { line: Some(3), .. }),
        "{err}"
    );
    assert_eq!(follower.poll().unwrap(), vec![Line::Sample(sample(1.0))]);
}

fn histogram(values: impl IntoIterator<Item = u64>) -> Histogram<u64> {
    let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    for v in values {
        h.record(v).unwrap();
    }
    h
}

#[test]
fn hlog_round_trip_preserves_counts_and_percentiles() {
    let dir = TempDir::new("hlog");
    let path = dir.join("latency.hlog");
    let written = [
        histogram(1..=1000),
        histogram([]),
        histogram((0..5000).map(|i| 100 + (i * 37) % 90_000)),
    ];
    let mut w = HlogWriter::create(&path, SystemTime::now()).unwrap();
    for (i, h) in written.iter().enumerate() {
        w.write_interval(h, i as f64 * 1.001, 1.001).unwrap();
    }
    let read = read_hlog(&path).unwrap();
    assert_eq!(read.len(), written.len());
    for (i, ((start_s, duration_s, h), original)) in read.iter().zip(&written).enumerate() {
        assert!((start_s - i as f64 * 1.001).abs() < 1e-6, "{start_s}");
        assert!((duration_s - 1.001).abs() < 1e-6, "{duration_s}");
        assert_eq!(h.len(), original.len());
        assert_eq!(h.max(), original.max());
        for q in [0.5, 0.9, 0.99, 0.999] {
            assert_eq!(h.value_at_quantile(q), original.value_at_quantile(q));
        }
        assert_eq!(
            LatencySummary::from_histogram(h),
            LatencySummary::from_histogram(original)
        );
    }
    assert_eq!(LatencySummary::from_histogram(&read[0].2).p50, 500);
}

#[test]
fn toml_scenario_round_trips() {
    let config = ScenarioConfig {
        duration_s: 300.0,
        producers: 8,
        rate_per_sec: Some(250_000),
        consumer_stall_every_ms: Some(5000),
        consumer_stall_for_ms: 50,
        max_batch_bytes: None,
        max_batch_items: Some(512),
        policy: Policy::DropOldest,
        target: TargetKind::Channel,
        cpus: Some(2),
        preset: Some("pi".into()),
        record_latency: false,
        ..Default::default()
    };
    let text = config.to_toml_string().unwrap();
    assert_eq!(ScenarioConfig::from_toml_str(&text).unwrap(), config);
    let default_text = ScenarioConfig::default().to_toml_string().unwrap();
    assert_eq!(
        ScenarioConfig::from_toml_str(&default_text).unwrap(),
        ScenarioConfig::default()
    );
}

#[test]
fn toml_unknown_key_names_key_and_line() {
    let err = ScenarioConfig::from_toml_str("producers = 4\nproducer_count = 9\n").unwrap_err();
    assert!(matches!(err, RunlogError::Toml { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("producer_count"), "{msg}");
    assert!(msg.contains("line 2"), "{msg}");

    let err = ScenarioConfig::from_toml_str("policy = \"sometimes\"").unwrap_err();
    assert!(err.to_string().contains("sometimes"), "{err}");

    let dir = TempDir::new("toml");
    let path = dir.join("bad.toml");
    fs::write(&path, "interval_us = \"fast\"\n").unwrap();
    let err = ScenarioConfig::from_toml_file(&path).unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("{}: line 1", path.display())),
        "{err}"
    );
}

#[test]
fn each_validation_error_names_its_field() {
    type Breaker = fn(&mut ScenarioConfig);
    let cases: [(&str, Breaker); 15] = [
        ("duration_s", |c| c.duration_s = 0.0),
        ("duration_s", |c| c.duration_s = f64::NAN),
        ("producers", |c| c.producers = 0),
        ("producers", |c| c.producers = 4097),
        ("interval_us", |c| c.interval_us = 0),
        ("interval_jitter_us", |c| {
            c.interval_jitter_us = c.interval_us + 1
        }),
        ("max_buffered_bytes", |c| c.max_buffered_bytes = 0),
        ("max_batch_bytes", |c| c.max_batch_bytes = Some(0)),
        ("max_batch_bytes", |c| {
            c.max_batch_bytes = Some(c.max_buffered_bytes + 1)
        }),
        ("max_batch_items", |c| c.max_batch_items = Some(0)),
        ("sample_every_ms", |c| c.sample_every_ms = 9),
        ("sample_every_ms", |c| c.sample_every_ms = 60_001),
        ("drain_timeout_ms", |c| c.drain_timeout_ms = 0),
        ("cpus", |c| c.cpus = Some(0)),
        ("rate_per_sec", |c| c.rate_per_sec = Some(0)),
    ];
    for (field, breaker) in cases {
        let mut config = ScenarioConfig::default();
        breaker(&mut config);
        let err = config.validate().unwrap_err();
        assert_eq!(err.field(), field);
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("`{field}`")) && msg.contains("allowed"),
            "{msg}"
        );
        assert!(!msg.contains('\n'));
    }
    let err = ScenarioConfig::from_toml_str("producers = 5000").unwrap_err();
    assert!(matches!(err, RunlogError::Config(_)), "{err}");
    assert_eq!(
        err.to_string(),
        "scenario `producers` = 5000 is out of range (allowed: 1..=4096)"
    );
}

#[test]
fn limits_apply_accepts_and_refuses() {
    let limits = Limits::from_config(&ScenarioConfig::default());
    let ok = |c: Control| limits.apply(&c).unwrap();
    assert_eq!(ok(Control::SetInterval { interval_us: 1 }).interval_us, 1);
    assert_eq!(
        ok(Control::SetMaxBatchBytes { bytes: None }).max_batch_bytes,
        None
    );
    let at_bound = Control::SetMaxBatchBytes {
        bytes: Some(64 << 20),
    };
    assert_eq!(ok(at_bound).max_batch_bytes, Some(64 << 20));
    let shrink = Control::SetMaxBufferedBytes { bytes: 32 * 1024 };
    assert_eq!(ok(shrink).max_buffered_bytes, 32 * 1024);
    assert_eq!(
        ok(Control::SetRate { per_sec: Some(1) }).rate_per_sec,
        Some(1)
    );
    assert_eq!(
        ok(Control::SetConsumerDelay { delay_us: 0 }).consumer_delay_us,
        0
    );
    assert_eq!(ok(Control::Stop), limits);

    let refused = |c: Control| limits.apply(&c).unwrap_err();
    let cases = [
        (
            Control::SetInterval { interval_us: 0 },
            Knob::Interval,
            "interval 0 us is out of range (allowed: 1 us..=1m00s)",
        ),
        (
            Control::SetMaxBatchBytes {
                bytes: Some((64 << 20) + 1),
            },
            Knob::MaxBatchBytes,
            "max batch 64.0 MiB (67,108,865 B) is out of range (allowed: 1 B..=64.0 MiB, max buffered)",
        ),
        (
            Control::SetMaxBatchBytes { bytes: Some(0) },
            Knob::MaxBatchBytes,
            "max batch 0 B is out of range",
        ),
        (
            Control::SetMaxBufferedBytes {
                bytes: 32 * 1024 - 1,
            },
            Knob::MaxBufferedBytes,
            "max buffered 32.0 KiB (32,767 B) is out of range (allowed: 32.0 KiB..=1.0 TiB, max batch)",
        ),
        (
            Control::SetRate { per_sec: Some(0) },
            Knob::Rate,
            "rate 0/s is out of range",
        ),
    ];
    for (control, knob, text) in cases {
        let err = refused(control);
        assert_eq!(err.knob(), knob);
        assert!(err.to_string().starts_with(text), "{err}");
    }
    let no_batch = Limits {
        max_batch_bytes: None,
        ..limits.clone()
    };
    let err = no_batch
        .apply(&Control::SetMaxBufferedBytes { bytes: 1023 })
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "max buffered 1023 B is out of range (allowed: 1.0 KiB..=1.0 TiB)"
    );
    assert!(
        no_batch
            .apply(&Control::SetMaxBufferedBytes { bytes: 1024 })
            .is_ok()
    );
}

#[test]
fn latest_points_at_the_newest_run() {
    let dir = TempDir::new("rundir");
    let base = dir.join("soak");
    let first = RunDir::create(&base, "20261123-103512-0001").unwrap();
    assert_eq!(RunDir::resolve_latest(&base).unwrap(), first);
    let second = RunDir::create(&base, "20261123-103513-0002").unwrap();
    let latest = RunDir::resolve_latest(&base).unwrap();
    assert_eq!(latest, second);
    assert_eq!(latest.run_id(), "20261123-103513-0002");
    #[cfg(unix)]
    assert_eq!(
        fs::read_link(base.join("latest")).unwrap(),
        PathBuf::from("20261123-103513-0002"),
        "the link is relative"
    );
    let names: BTreeSet<String> = fs::read_dir(&base)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        set(&["20261123-103512-0001", "20261123-103513-0002", "latest"]),
        "no probe or temporary link left behind"
    );
    assert!(fs::read_dir(second.path()).unwrap().next().is_none());
    assert!(RunDir::open(&base.join("missing")).is_err());
}
