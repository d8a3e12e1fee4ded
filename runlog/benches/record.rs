//! Run-record serialization: what a soak pays per sample line, for the
//! summary at the end, and per latency interval.
//!
//! Beside each measurement the groups time a reference on the same bytes,
//! so the ratio holds on any machine: copying a line's bytes (for
//! serializing it), parsing them into an untyped `serde_json::Value` (for
//! reading it back), and writing or reading the same number of bytes with
//! plain file I/O (for `results.json` and the hlog line).

use std::fs::{self, File};
use std::hint::black_box;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use criterion::measurement::WallTime;
use criterion::{
    BatchSize, BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main,
};
use hdrhistogram::Histogram;
use runlog::{
    Assessment, Event, EventKind, FlushReasonCounts, HlogWriter, LatencySummary, Limits, Line,
    RunResults, Sample, Section, Status, Totals, read_results, write_results,
};

/// A scratch directory for one group, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("runlog-bench-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("scratch dir");
        Scratch(dir)
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A group with the suite's short settings, one element per iteration.
fn configure<'c>(c: &'c mut Criterion, name: &str) -> BenchmarkGroup<'c, WallTime> {
    let mut group = c.benchmark_group(name);
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(2));
    group.throughput(Throughput::Elements(1));
    group
}

/// A mid-run sample with realistic, non-round numbers.
fn sample() -> Sample {
    Sample {
        t_s: 123.0,
        interval_s: 1.000_213,
        attempted_per_sec: 512_345.678,
        accepted_per_sec: 499_876.543,
        rejected_per_sec: 12_469.135,
        dropped_per_sec: 0.0,
        delivered_per_sec: 499_801.25,
        batches_per_sec: 1_563.5,
        delivered_bytes_per_sec: 124_950_312.5,
        totals: Totals {
            attempted: 63_017_982,
            accepted: 61_483_814,
            rejected: 1_534_168,
            dropped: 0,
            delivered: 61_474_554,
            batches: 192_310,
        },
        buffered_bytes: 2_315_264,
        buffered_items: 9_260,
        peak_buffered_bytes: 67_108_352,
        heap_allocated_bytes: 190_842_880,
        heap_resident_bytes: 201_326_592,
        rss_bytes: 214_958_080,
        cpu_percent: 187.25,
        latency_us: LatencySummary {
            count: 499_801,
            p50: 4_127,
            p90: 9_983,
            p99: 14_207,
            p999: 18_431,
            max: 21_503,
        },
        mean_batch_bytes: 31_977.4,
        flush_reasons: FlushReasonCounts {
            interval: 12,
            bytes: 192_298,
            ..FlushReasonCounts::default()
        },
        limits: Limits {
            interval_us: 10_000,
            max_batch_bytes: Some(32_768),
            max_batch_items: None,
            max_buffered_bytes: 67_108_864,
            rate_per_sec: None,
            consumer_delay_us: 200,
        },
        paused: false,
        phase: "run".into(),
        spill: None,
    }
}

/// A finished run's summary with a few events and assessment notes.
fn results() -> RunResults {
    let pass = |note: &str| Section::new(Status::Pass, [note]);
    let mut events = vec![Event::new(0.0, EventKind::Phase { name: "run".into() })];
    for i in 0..8 {
        events.push(Event::new(
            10.0 * f64::from(i) + 0.25,
            EventKind::Reconfigure {
                knob: "interval_us".into(),
                from: (10_000 + i * 1_000).to_string(),
                to: (11_000 + i * 1_000).to_string(),
                source: "tui".into(),
            },
        ));
    }
    events.push(Event::new(
        300.0,
        EventKind::Phase {
            name: "drain".into(),
        },
    ));
    RunResults {
        run_id: "20261123-103512-a3f9".into(),
        started_at: "2026-11-23T10:35:12Z".into(),
        events,
        assessment: Assessment::new(
            pass("produced == delivered + dropped + undelivered"),
            pass("2.5% of attempts rejected: real backpressure"),
            pass("peak heap 182 MiB within 4x the 64 MiB buffered limit"),
            pass("drained in 111 us"),
        ),
        duration_s: 300.0,
        ..RunResults::default()
    }
}

fn sample_line(c: &mut Criterion) {
    let sample = sample();
    let line = serde_json::to_vec(&sample).expect("sample to JSON");
    let mut buf = Vec::with_capacity(2 * line.len());
    let mut group = configure(c, "sample_line");
    group.bench_function("serialize", |b| {
        b.iter(|| {
            buf.clear();
            serde_json::to_writer(&mut buf, black_box(&sample)).expect("serialize");
            black_box(buf.len())
        });
    });
    group.bench_function("deserialize", |b| {
        b.iter(|| Line::from_json_slice(black_box(&line)).expect("deserialize"));
    });
    group.bench_function("reference/copy_bytes", |b| {
        b.iter(|| {
            buf.clear();
            buf.extend_from_slice(black_box(&line));
            black_box(buf.len())
        });
    });
    group.bench_function("reference/parse_untyped", |b| {
        b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(&line)).expect("parse"));
    });
    group.finish();
}

fn results_file(c: &mut Criterion) {
    let scratch = Scratch::new("results");
    let results = results();
    let path = scratch.join("results.json");
    write_results(&path, &results).expect("write results");
    let bytes = fs::read(&path).expect("read back");
    let raw = scratch.join("raw.json");
    let mut group = configure(c, "results_json");
    group.bench_function("write_results", |b| {
        b.iter(|| write_results(&path, black_box(&results)).expect("write"));
    });
    group.bench_function("read_results", |b| {
        b.iter(|| read_results(black_box(&path)).expect("read"));
    });
    group.bench_function("reference/write_same_bytes", |b| {
        b.iter(|| fs::write(&raw, black_box(&bytes)).expect("write"));
    });
    group.bench_function("reference/read_same_bytes", |b| {
        b.iter(|| fs::read(black_box(&path)).expect("read"));
    });
    group.finish();
}

/// An interval's histogram: 10k latencies spread over 3 decades (us).
fn interval_histogram() -> Histogram<u64> {
    let mut histogram = Histogram::<u64>::new(3).expect("histogram");
    let mut x = 0x2545_f491_4f6c_dd1d_u64;
    for _ in 0..10_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        histogram.record(20 + x % 20_000).expect("record");
    }
    histogram
}

fn line_length(path: &Path, histogram: &Histogram<u64>) -> usize {
    let mut writer = HlogWriter::create(path, SystemTime::now()).expect("hlog");
    let before = fs::metadata(path).expect("hlog size").len();
    writer
        .write_interval(histogram, 0.0, 1.0)
        .expect("interval");
    (fs::metadata(path).expect("hlog size").len() - before) as usize
}

fn hlog_interval(c: &mut Criterion) {
    let scratch = Scratch::new("hlog");
    let histogram = interval_histogram();
    let line = vec![b'x'; line_length(&scratch.join("probe.hlog"), &histogram)];
    let (hlog, raw) = (scratch.join("latency.hlog"), scratch.join("raw.hlog"));
    // A fresh (truncated) file per iteration, made untimed, keeps the files small.
    let mut group = configure(c, "hlog_interval");
    group.bench_function("write_interval", |b| {
        b.iter_batched_ref(
            || HlogWriter::create(&hlog, SystemTime::now()).expect("hlog"),
            |writer| {
                writer
                    .write_interval(black_box(&histogram), 1.0, 1.0)
                    .expect("interval");
            },
            BatchSize::PerIteration,
        );
    });
    group.bench_function("reference/write_same_bytes", |b| {
        b.iter_batched_ref(
            || File::create(&raw).expect("raw file"),
            |file| {
                file.write_all(black_box(&line))
                    .and_then(|()| file.flush())
                    .expect("write");
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

criterion_group!(benches, sample_line, results_file, hlog_interval);
criterion_main!(benches);
