//! Spill log throughput and recovery time (feature `spill`).
//!
//! `spill_append`: appends of 1 KiB records under each [`SyncPolicy`],
//! beside a plain sequential `write_all` of the same records to a file on
//! the same filesystem with the same sync cadence, so the ratio (the cost
//! of framing, checksums, accounting and segment rolls) holds on any
//! machine:
//!
//! - `EveryBatch`: `sync()` (fdatasync) after every 1000 records, standing
//!   for a batch; the baseline `sync_data`s at the same points.
//! - `Every(100ms)`: the log syncs on append when 100 ms have passed; the
//!   baseline checks the clock the same way.
//! - `Os`: no sync at all, either side.
//!
//! `dispatcher_overflow`: the same 8 MiB of 1 KiB events through a
//! dispatcher whose memory is full and nobody receives, so every event is
//! admitted onto its disk tier (`try_enqueue`: encoding, the record header,
//! the disk lock and the append), beside the same `write_all` baseline.
//! Under `EveryBatch` the dispatcher syncs after every admission, so the
//! events go in groups of 1000 (`try_enqueue_all`, one record each).
//!
//! `spill_recovery`: `SpillLog::open` of a 1 GiB log of 1 KiB records
//! (every frame's length and CRC-32C verified), warm page cache.
//!
//! The baseline file lives in a sibling directory: a spill directory holds
//! the log's files only.

use std::fs::{File, OpenOptions};
use std::hint::black_box;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use dispatcher::Dispatcher;
use dispatcher::spill::{Raw, Spill, SpillLog, SyncPolicy};

const RECORD: usize = 1024;
/// Records per measured run: 8 MiB.
const RECORDS: u64 = 8 * 1024;
const BATCH: u64 = 1000;
const SEGMENT_BYTES: u64 = 64 << 20;

fn policies() -> [(&'static str, SyncPolicy); 3] {
    [
        ("EveryBatch(1000)", SyncPolicy::EveryBatch),
        (
            "Every(100ms)",
            SyncPolicy::Every(Duration::from_millis(100)),
        ),
        ("Os", SyncPolicy::Os),
    ]
}

/// `iters` runs of `RECORDS` appends through the spill log; everything is
/// acknowledged (and its segments deleted) between runs, outside the timing.
fn spill_runs(dir: &Path, policy: SyncPolicy, iters: u64) -> Duration {
    let (mut log, _) = Spill::new(dir)
        .segment_bytes(SEGMENT_BYTES)
        .max_disk_bytes(4 << 30)
        .sync(policy)
        .open()
        .expect("open the spill log");
    let record = vec![0xA5u8; RECORD];
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let start = Instant::now();
        let mut last = 0;
        for i in 1..=RECORDS {
            last = log.append(black_box(&record)).expect("append");
            if policy == SyncPolicy::EveryBatch && i % BATCH == 0 {
                log.sync().expect("sync");
            }
        }
        if policy == SyncPolicy::EveryBatch {
            log.sync().expect("sync");
        }
        total += start.elapsed();
        log.ack(last).expect("ack");
    }
    total
}

/// The same bytes with `write_all`, one call per record, and the same sync
/// cadence; the file is cut back to empty every `SEGMENT_BYTES`, outside
/// the timing.
fn plain_runs(path: &Path, policy: SyncPolicy, iters: u64) -> Duration {
    let mut file: File = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(path)
        .expect("create the baseline file");
    let record = vec![0xA5u8; RECORD];
    let mut written = 0u64;
    let mut last_sync = Instant::now();
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        if written >= SEGMENT_BYTES {
            file.set_len(0).expect("truncate");
            file.seek(SeekFrom::Start(0)).expect("seek");
            written = 0;
        }
        let start = Instant::now();
        for i in 1..=RECORDS {
            file.write_all(black_box(&record)).expect("write");
            match policy {
                SyncPolicy::EveryBatch if i % BATCH == 0 => file.sync_data().expect("sync"),
                SyncPolicy::Every(d) if last_sync.elapsed() >= d => {
                    file.sync_data().expect("sync");
                    last_sync = Instant::now();
                }
                _ => {}
            }
        }
        if policy == SyncPolicy::EveryBatch {
            file.sync_data().expect("sync");
        }
        total += start.elapsed();
        written += RECORDS * RECORD as u64;
    }
    total
}

fn spill_append(c: &mut Criterion) {
    let mut group = c.benchmark_group("spill_append");
    group.throughput(Throughput::Bytes(RECORDS * RECORD as u64));
    for (name, policy) in policies() {
        group.bench_function(BenchmarkId::new("spill", name), |b| {
            b.iter_custom(|iters| {
                let tmp = tempfile::tempdir().expect("tempdir");
                spill_runs(&tmp.path().join("spill"), policy, iters)
            })
        });
        group.bench_function(BenchmarkId::new("write_all", name), |b| {
            b.iter_custom(|iters| {
                let tmp = tempfile::tempdir().expect("tempdir");
                plain_runs(&tmp.path().join("plain"), policy, iters)
            })
        });
    }
    group.finish();
}

/// `iters` runs of `RECORDS` events admitted onto a dispatcher's disk tier
/// (memory filled first, nobody receiving); a fresh directory and
/// dispatcher per run, built and stopped outside the timing.
fn overflow_runs(dir: &Path, policy: SyncPolicy, iters: u64) -> Duration {
    let mut total = Duration::ZERO;
    for run in 0..iters {
        let spill = Spill::new(dir.join(run.to_string()))
            .segment_bytes(SEGMENT_BYTES)
            .max_disk_bytes(4 << 30)
            .sync(policy);
        let (dispatcher, batches) = Dispatcher::<Vec<u8>>::builder()
            .max_buffered_bytes(2 << 20)
            .interval(Duration::from_secs(3600))
            .spill(spill.open().expect("open the spill log"), Raw)
            .build()
            .expect("build");
        let producer = dispatcher.producer();
        while dispatcher.stats().spill.spilled == 0 {
            producer
                .try_enqueue(vec![0x11; RECORD])
                .expect("fill memory");
        }
        let start = Instant::now();
        if policy == SyncPolicy::EveryBatch {
            for _ in 0..RECORDS / BATCH {
                let group = (0..BATCH).map(|_| vec![0xA5u8; RECORD]).collect();
                producer.try_enqueue_all(black_box(group)).expect("admit");
            }
        } else {
            for _ in 0..RECORDS {
                producer
                    .try_enqueue(black_box(vec![0xA5u8; RECORD]))
                    .expect("admit");
            }
        }
        total += start.elapsed();
        drop((dispatcher.stop(), batches));
        std::fs::remove_dir_all(spill.dir()).expect("clean up");
    }
    total
}

fn dispatcher_overflow(c: &mut Criterion) {
    let mut group = c.benchmark_group("dispatcher_overflow");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(RECORDS * RECORD as u64));
    for (name, policy) in policies() {
        group.bench_function(BenchmarkId::new("dispatcher", name), |b| {
            b.iter_custom(|iters| {
                let tmp = tempfile::tempdir().expect("tempdir");
                overflow_runs(tmp.path(), policy, iters)
            })
        });
        group.bench_function(BenchmarkId::new("write_all", name), |b| {
            b.iter_custom(|iters| {
                let tmp = tempfile::tempdir().expect("tempdir");
                plain_runs(&tmp.path().join("plain"), policy, iters)
            })
        });
    }
    group.finish();
}

fn spill_recovery(c: &mut Criterion) {
    const LOG_BYTES: u64 = 1 << 30;
    let tmp = tempfile::tempdir().expect("tempdir");
    let spill = Spill::new(tmp.path().join("spill"))
        .segment_bytes(SEGMENT_BYTES)
        .max_disk_bytes(2 << 30)
        .sync(SyncPolicy::Os);
    let records = LOG_BYTES / (RECORD as u64 + 8);
    {
        let (mut log, _) = SpillLog::open(&spill).expect("open");
        let record = vec![0x5Au8; RECORD];
        for _ in 0..records {
            log.append(&record).expect("append");
        }
        log.sync().expect("sync");
    }
    let mut group = c.benchmark_group("spill_recovery");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(LOG_BYTES));
    group.bench_function("open_1GiB_1KiB_records", |b| {
        b.iter(|| {
            let (log, recovered) = SpillLog::open(&spill).expect("open");
            assert_eq!(recovered.events, records);
            drop(black_box(log));
        })
    });
    group.finish();
}

criterion_group!(benches, spill_append, dispatcher_overflow, spill_recovery);
criterion_main!(benches);
