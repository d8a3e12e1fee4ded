//! Enqueue-to-batch throughput: P producer threads hand N events of a given
//! size to one consumer (a receiver thread, or the dispatcher's own flush
//! worker writing to a sink), over one or several partitions. Every group
//! measures a bare bounded channel hand-off of the same events beside the
//! dispatcher, so the ratio holds on any machine; `enqueue_to_batch` also
//! measures the peers a user would pick instead: a bounded crossbeam channel
//! drained in batches, and tokio's mpsc with `chunks_timeout`.

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

mod runs;
use runs::{
    Run, channel_run, crossbeam_run, dispatcher_run, events_per_run, partitioned_run, sink_run,
    tokio_run,
};

fn enqueue_to_batch(c: &mut Criterion) {
    for size in [64usize, 1024, 10 * 1024] {
        let mut group = c.benchmark_group(format!("enqueue_to_batch/{size}B"));
        group.sample_size(10);
        group.warm_up_time(Duration::from_millis(500));
        group.measurement_time(Duration::from_secs(3));
        let total = events_per_run(size, run_scale());
        group.throughput(Throughput::Elements(total as u64));
        for producers in [1usize, 4, 32] {
            group.bench_with_input(
                BenchmarkId::new("channel", producers),
                &producers,
                |b, &p| {
                    b.iter_custom(|iters| (0..iters).map(|_| channel_run(p, total, size)).sum())
                },
            );
            let runs: [(&str, Run); 3] = [
                ("dispatcher", dispatcher_run),
                ("crossbeam", crossbeam_run),
                ("tokio", tokio_run),
            ];
            for (name, run) in runs {
                group.bench_with_input(BenchmarkId::new(name, producers), &producers, |b, &p| {
                    b.iter_custom(|iters| (0..iters).map(|_| run(p, total, size)).sum())
                });
            }
        }
        group.finish();
    }
}

/// Push (sink) delivery against pull delivery, beside the channel.
fn sink_vs_pull(c: &mut Criterion) {
    let size = 64;
    let total = events_per_run(size, run_scale());
    for producers in [1usize, 4] {
        let mut group = c.benchmark_group(format!("sink_vs_pull/{size}B/{producers}p"));
        group.sample_size(10);
        group.warm_up_time(Duration::from_millis(500));
        group.measurement_time(Duration::from_secs(3));
        group.throughput(Throughput::Elements(total as u64));
        let runs: [(&str, Run); 3] = [
            ("channel", channel_run),
            ("pull", dispatcher_run),
            ("sink", sink_run),
        ];
        for (name, run) in runs {
            group.bench_function(name, |b| {
                b.iter_custom(|iters| (0..iters).map(|_| run(producers, total, size)).sum())
            });
        }
        group.finish();
    }
}

/// One partition against several, with 32 producers cloned from one handle,
/// beside the channel and the crossbeam batcher.
fn partitions(c: &mut Criterion) {
    let producers = 32;
    for size in [64usize, 1024] {
        let total = events_per_run(size, run_scale());
        let mut group = c.benchmark_group(format!("partitions/{size}B/{producers}p"));
        group.sample_size(10);
        group.warm_up_time(Duration::from_millis(500));
        group.measurement_time(Duration::from_secs(3));
        group.throughput(Throughput::Elements(total as u64));
        let peers: [(&str, Run); 2] = [("channel", channel_run), ("crossbeam", crossbeam_run)];
        for (name, run) in peers {
            group.bench_function(name, |b| {
                b.iter_custom(|iters| (0..iters).map(|_| run(producers, total, size)).sum())
            });
        }
        for n in [1usize, 2, 4, 8, 16] {
            group.bench_with_input(BenchmarkId::new("dispatcher", n), &n, |b, &n| {
                b.iter_custom(|iters| {
                    (0..iters)
                        .map(|_| partitioned_run(n, producers, total, size))
                        .sum()
                })
            });
        }
        group.finish();
    }
}

/// `BENCH_RUN_SCALE=N` (1 to 100): each run takes N times as many events.
fn run_scale() -> usize {
    let Ok(raw) = std::env::var("BENCH_RUN_SCALE") else {
        return 1;
    };
    match raw.trim().parse::<usize>() {
        Ok(scale @ 1..=100) => scale,
        _ => {
            eprintln!("BENCH_RUN_SCALE={raw:?}: expected a whole number from 1 to 100");
            std::process::exit(2);
        }
    }
}

criterion_group!(benches, enqueue_to_batch, sink_vs_pull, partitions);
criterion_main!(benches);
