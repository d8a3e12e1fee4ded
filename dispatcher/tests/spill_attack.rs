//! Black-box attack on the dispatcher's disk tier (feature `spill`), written
//! from the documented contract only: every event carries its producer id
//! and sequence number (and a checkable fill pattern), and what the
//! dispatcher delivers, evicts, fails, returns and replays is checked
//! against independent per-event records.
//!
//! The bugs these tests found (an idle worker that spun and never
//! acknowledged, a shutdown that closed the disk under a held batch,
//! `flush_and_wait` blind to the disk) are fixed; the tests stay as their
//! regression guards.

#![allow(clippy::too_many_lines, clippy::type_complexity)]

use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use tmpfs_kit::{Tmpfs, small_tmpfs};

mod tmpfs_kit;

use dispatcher::sink::{self, FlushContext, Retry};
use dispatcher::spill::{Codec, DecodeError, Raw, Spill, SpillError, SyncPolicy};
use dispatcher::{
    Batch, Batches, Dispatcher, EnqueueError, Limits, Policy, Producer, ShutdownReport,
    ShutdownTimeout, Stats, TryEnqueueError,
};

// ---------------------------------------------------------------------------
// Events and records.

type Id = (u32, u32);

fn fill(pid: u32, seq: u32, i: usize) -> u8 {
    (pid.wrapping_mul(31) ^ seq.wrapping_mul(7) ^ (i as u32).wrapping_mul(13)) as u8
}

/// An event of `len` bytes (at least 8) carrying `(pid, seq)`.
fn ev(pid: u32, seq: u32, len: usize) -> Vec<u8> {
    assert!(len >= 8);
    let mut v = Vec::with_capacity(len);
    v.extend_from_slice(&pid.to_le_bytes());
    v.extend_from_slice(&seq.to_le_bytes());
    for i in 8..len {
        v.push(fill(pid, seq, i));
    }
    v
}

/// The id of an event, checking that its bytes were not damaged.
fn id(e: &[u8]) -> Id {
    assert!(e.len() >= 8, "event of {} bytes", e.len());
    let pid = u32::from_le_bytes(e[0..4].try_into().unwrap());
    let seq = u32::from_le_bytes(e[4..8].try_into().unwrap());
    for (i, b) in e.iter().enumerate().skip(8) {
        assert_eq!(
            *b,
            fill(pid, seq, i),
            "event ({pid},{seq}) damaged at byte {i}"
        );
    }
    (pid, seq)
}

fn ids<'a>(events: impl IntoIterator<Item = &'a Vec<u8>>) -> Vec<Id> {
    events.into_iter().map(|e| id(e)).collect()
}

/// The ids of producer 0's events `seqs`, in order.
fn seqs(seqs: Range<u32>) -> Vec<Id> {
    seqs.map(|s| (0, s)).collect()
}

fn set(v: &[Id]) -> HashSet<Id> {
    v.iter().copied().collect()
}

fn spill_cfg(dir: &Path, max_disk: u64, seg: u64) -> Spill {
    Spill::new(dir)
        .segment_bytes(seg)
        .max_disk_bytes(max_disk)
        .sync(SyncPolicy::Os)
}

/// A spill directory of at most `max_disk` bytes in 4 KiB segments, in a
/// fresh temporary directory (which must outlive its use: bind it to a
/// name, not `_`).
fn temp_spill(max_disk: u64) -> (tempfile::TempDir, Spill) {
    let dir = tempfile::tempdir().unwrap();
    let spill = spill_cfg(dir.path(), max_disk, 4096);
    (dir, spill)
}

fn assert_identity(s: &Stats) {
    let lhs = s.accepted + s.spill.recovered_events;
    let rhs = s.delivered
        + s.buffered_items as u64
        + s.dropped
        + s.returned
        + s.failed
        + s.spill.backlog
        + s.spill.undeliverable;
    assert_eq!(lhs, rhs, "identity broken: {s:#?}");
}

/// No id twice.
fn assert_unique(label: &str, v: &[Id]) {
    let mut seen = HashSet::new();
    for x in v {
        assert!(seen.insert(*x), "{label}: {x:?} appears twice");
    }
}

/// Within `v`, each producer's sequence numbers strictly increase.
fn assert_per_producer_order(label: &str, v: &[Id]) {
    let mut last: HashMap<u32, u32> = HashMap::new();
    for &(p, s) in v {
        if let Some(&prev) = last.get(&p) {
            assert!(
                s > prev,
                "{label}: producer {p} delivered seq {s} after {prev}"
            );
        }
        last.insert(p, s);
    }
}

/// A pull consumer collecting ids in delivery order; `delay` per batch.
fn collector(batches: Batches<Vec<u8>>, delay: Duration) -> thread::JoinHandle<Vec<Id>> {
    thread::spawn(move || {
        let mut out = Vec::new();
        for batch in &batches {
            out.extend(ids(batch.iter()));
            if !delay.is_zero() {
                thread::sleep(delay);
            }
        }
        out
    })
}

/// A pull consumer that also counts the events whose batch it has dropped.
struct Settling {
    handle: thread::JoinHandle<Vec<Id>>,
    settled: Arc<AtomicU64>,
}

fn settling_collector(batches: Batches<Vec<u8>>) -> Settling {
    let settled = Arc::new(AtomicU64::new(0));
    let s2 = Arc::clone(&settled);
    let handle = thread::spawn(move || {
        let mut out = Vec::new();
        for batch in &batches {
            out.extend(ids(batch.iter()));
            let n = batch.len() as u64;
            drop(batch);
            s2.fetch_add(n, Ordering::SeqCst);
        }
        out
    });
    Settling { handle, settled }
}

/// Waits until the disk is read back, memory is empty and the consumer has
/// dropped every batch it took, so that a shutdown afterwards does not race
/// a batch still in the consumer's hands (see
/// `clean_shutdown_while_a_batch_is_held_*`).
fn quiesce(d: &D, c: &Settling) {
    wait_for("everything to settle", Duration::from_secs(60), || {
        let st = d.stats();
        st.spill.backlog == 0
            && st.buffered_items == 0
            && c.settled.load(Ordering::SeqCst) == st.delivered
    });
}

/// Reopens `dir` and delivers whatever it recovered; returns the recovered
/// record count (from `Spill::open`), the ids in delivery order and the
/// final stats (whose identity is checked).
fn drain_dir(spill: &Spill) -> (u64, Vec<Id>, Stats) {
    let r = drain_dir_unchecked(spill);
    assert_identity(&r.2);
    r
}

/// `drain_dir` without the identity check (groups recovered as records).
fn drain_dir_unchecked(spill: &Spill) -> (u64, Vec<Id>, Stats) {
    let opened = spill.open().expect("reopen");
    let recovered = opened.1.events;
    let (d, batches) = Dispatcher::<Vec<u8>>::builder()
        .max_buffered_bytes(1 << 20)
        .interval(Duration::from_millis(2))
        .spill(opened, Raw)
        .build()
        .unwrap();
    let c = settling_collector(batches);
    quiesce(&d, &c);
    let report = d.shutdown(Duration::from_secs(30)).expect("drain shutdown");
    let got = c.handle.join().unwrap();
    (recovered, got, report.stats)
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    v.sort();
    v
}

/// Bounded wait for a condition.
fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(2));
    }
}

// ---------------------------------------------------------------------------
// Randomized multi-producer runs.

#[derive(Clone, Copy, Debug)]
struct RunCfg {
    producers: u32,
    per_producer: u32,
    policy: Policy,
    partitions: usize,
    sink: bool,
    /// Delay per batch in the consumer / sink.
    slow: bool,
    mem: usize,
    max_disk: u64,
    seg: u64,
    write_ahead: bool,
    groups: bool,
    /// Sink mode: the sink fails some attempts (retried, or failed for good).
    flaky: bool,
    seed: u64,
}

impl RunCfg {
    fn new(policy: Policy, partitions: usize, sink: bool, slow: bool) -> Self {
        RunCfg {
            producers: 4,
            per_producer: 800,
            policy,
            partitions,
            sink,
            slow,
            mem: 1024,
            max_disk: 48 * 1024,
            seg: 4096,
            write_ahead: false,
            groups: true,
            flaky: sink,
            seed: 0x5eed,
        }
    }
}

struct Outcome {
    accepted: Vec<Id>,
    delivered: Vec<Id>,
    stats: Stats,
}

fn random_run(cfg: RunCfg) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let spill = spill_cfg(dir.path(), cfg.max_disk, cfg.seg).write_ahead(cfg.write_ahead);
    let delivered = Arc::new(Mutex::new(Vec::<Id>::new()));
    let evicted = Arc::new(Mutex::new(Vec::<Id>::new()));
    let failed = Arc::new(Mutex::new(Vec::<Id>::new()));
    let delay = if cfg.slow {
        Duration::from_millis(1)
    } else {
        Duration::ZERO
    };

    // Pull mode: events whose batch the consumer has dropped.
    let settled = Arc::new(AtomicUsize::new(0));
    let ev_log = Arc::clone(&evicted);
    let builder = Dispatcher::<Vec<u8>>::builder()
        .max_buffered_bytes(cfg.mem)
        .max_batch_bytes(cfg.mem / 2)
        .interval(Duration::from_millis(3))
        .policy(cfg.policy)
        .partitions(cfg.partitions)
        .on_evict(move |e| ev_log.lock().unwrap().push(id(&e)))
        .spill(spill.open().unwrap(), Raw);

    let (d, consumer) = if cfg.sink {
        let out = Arc::clone(&delivered);
        let calls = AtomicU64::new(0);
        let flaky = cfg.flaky;
        let fail_log = Arc::clone(&failed);
        let d = builder
            .flush_workers(1)
            .retry(Retry::new(
                2,
                Duration::from_millis(1),
                Duration::from_millis(2),
            ))
            .on_flush_error(move |_f, batch: Batch<Vec<u8>>| {
                fail_log.lock().unwrap().extend(ids(batch.iter()));
            })
            .build_with_sink(sink::from_fn(
                move |batch: &Batch<Vec<u8>>, _ctx: &FlushContext| {
                    let n = calls.fetch_add(1, Ordering::Relaxed);
                    if !delay.is_zero() {
                        thread::sleep(delay);
                    }
                    // Fail about one attempt in 11: some batches are retried,
                    // some fail twice and go to the error hook.
                    if flaky && (n.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 60) == 0 {
                        return Err(std::io::Error::other("flaky"));
                    }
                    out.lock().unwrap().extend(ids(batch.iter()));
                    Ok::<_, std::io::Error>(())
                },
            ))
            .unwrap();
        (d, None)
    } else {
        let (d, batches) = builder.build().unwrap();
        let out = Arc::clone(&delivered);
        let settled = Arc::clone(&settled);
        let h = thread::spawn(move || {
            for batch in &batches {
                out.lock().unwrap().extend(ids(batch.iter()));
                if !delay.is_zero() {
                    thread::sleep(delay);
                }
                let n = batch.len();
                drop(batch);
                settled.fetch_add(n, Ordering::SeqCst);
            }
        });
        (d, Some(h))
    };

    let producers: Vec<_> = (0..cfg.producers).map(|_| d.producer()).collect();
    let stop_sampling = AtomicBool::new(false);
    let sampled = AtomicU64::new(0);
    let mut accepted_all = Vec::new();
    let mut max_seen = 0usize;
    thread::scope(|s| {
        let sampler = s.spawn(|| {
            let mut max_seen = 0;
            let mut samples = 0u64;
            while !stop_sampling.load(Ordering::Relaxed) {
                let st = d.stats();
                assert!(
                    st.buffered_bytes <= cfg.mem,
                    "buffered_bytes {} > max {}",
                    st.buffered_bytes,
                    cfg.mem
                );
                assert!(
                    st.peak_buffered_bytes <= cfg.mem,
                    "peak_buffered_bytes {} > max {}",
                    st.peak_buffered_bytes,
                    cfg.mem
                );
                max_seen = max_seen.max(st.buffered_bytes);
                samples += 1;
                sampled.store(samples, Ordering::Relaxed);
                thread::sleep(Duration::from_micros(200));
            }
            assert!(samples > 0);
            max_seen
        });
        let handles: Vec<_> = producers
            .into_iter()
            .enumerate()
            .map(|(pid, p)| {
                let pid = pid as u32;
                s.spawn(move || {
                    let mut rng = fastrand::Rng::with_seed(cfg.seed ^ (u64::from(pid) << 20));
                    let maxlen = (cfg.mem / 6).max(9);
                    let mut accepted = Vec::new();
                    let mut seq = 0u32;
                    while seq < cfg.per_producer {
                        if cfg.groups && rng.u8(..) < 30 {
                            let k = rng.u32(2..=4);
                            let group: Vec<Vec<u8>> = (0..k)
                                .map(|j| ev(pid, seq + j, rng.usize(8..=maxlen)))
                                .collect();
                            let copy = group.clone();
                            let mut g = group;
                            for _ in 0..40 {
                                match p.try_enqueue_all(g) {
                                    Ok(()) => {
                                        accepted.extend((seq..seq + k).map(|q| (pid, q)));
                                        break;
                                    }
                                    Err(TryEnqueueError::Full(back)) => {
                                        assert_eq!(back, copy, "a refused group comes back whole");
                                        g = back;
                                        thread::sleep(Duration::from_micros(300));
                                    }
                                    Err(e) => panic!("group refused: {e:?}"),
                                }
                            }
                            seq += k;
                        } else {
                            let e = ev(pid, seq, rng.usize(8..=maxlen));
                            let copy = e.clone();
                            let mut item = e;
                            for _ in 0..40 {
                                let r = if matches!(cfg.policy, Policy::Block { .. }) {
                                    p.enqueue(item)
                                } else {
                                    p.try_enqueue(item).map_err(|e| match e {
                                        TryEnqueueError::Full(x) => EnqueueError::Full(x),
                                        TryEnqueueError::TooLarge(x) => EnqueueError::TooLarge(x),
                                        TryEnqueueError::Closed(x) => EnqueueError::Closed(x),
                                        TryEnqueueError::Refused(x) => EnqueueError::Refused(x),
                                        _ => unreachable!(),
                                    })
                                };
                                match r {
                                    Ok(()) => {
                                        accepted.push((pid, seq));
                                        break;
                                    }
                                    Err(EnqueueError::Full(back) | EnqueueError::Timeout(back)) => {
                                        assert_eq!(back, copy, "a refused event comes back");
                                        item = back;
                                        thread::sleep(Duration::from_micros(300));
                                    }
                                    Err(e) => panic!("event refused: {e:?}"),
                                }
                            }
                            seq += 1;
                        }
                    }
                    accepted
                })
            })
            .collect();
        for h in handles {
            accepted_all.extend(h.join().unwrap());
        }
        // A busy host may not have run the sampler yet: let it look once
        // before stopping it (one that ended has panicked: its join says why).
        wait_for(
            "the bound sampler's first look",
            Duration::from_secs(10),
            || sampled.load(Ordering::Relaxed) > 0 || sampler.is_finished(),
        );
        stop_sampling.store(true, Ordering::Relaxed);
        max_seen = sampler.join().unwrap();
    });
    let _ = max_seen;

    if !cfg.sink {
        // Pull mode: let the consumer take and drop every batch before
        // shutting down, so that a batch still held when shutdown returns
        // (see `clean_shutdown_while_a_batch_is_held_*`) does not decide
        // the outcome here.
        wait_for(
            "the consumer to settle everything",
            Duration::from_secs(60),
            || {
                let st = d.stats();
                st.spill.backlog == 0
                    && st.buffered_items == 0
                    && st.delivered + st.dropped == st.accepted
                    && settled.load(Ordering::SeqCst) as u64 == st.delivered
            },
        );
    }
    let started = Instant::now();
    let report = d
        .shutdown(Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("shutdown with a live consumer failed: {e:?}"));
    assert!(started.elapsed() < Duration::from_secs(60));
    if let Some(h) = consumer {
        h.join().unwrap();
    }
    let stats = report.stats;
    assert!(stats.peak_buffered_bytes <= cfg.mem, "{stats:#?}");
    assert_identity(&stats);
    assert_eq!(stats.spill.backlog, 0, "{stats:#?}");
    assert_eq!(stats.spill.undeliverable, 0, "{stats:#?}");
    assert_eq!(stats.accepted, accepted_all.len() as u64, "{stats:#?}");

    let delivered = std::mem::take(&mut *delivered.lock().unwrap());
    let evicted = std::mem::take(&mut *evicted.lock().unwrap());
    let failed = std::mem::take(&mut *failed.lock().unwrap());
    assert_eq!(stats.delivered, delivered.len() as u64, "{stats:#?}");
    assert_eq!(stats.dropped, evicted.len() as u64, "{stats:#?}");
    assert_eq!(stats.failed, failed.len() as u64, "{stats:#?}");

    // Every accepted event exactly once, in one place.
    let mut everywhere: Vec<Id> = delivered.clone();
    everywhere.extend(&evicted);
    everywhere.extend(&failed);
    assert_unique("delivered+evicted+failed", &everywhere);
    let a: HashSet<Id> = accepted_all.iter().copied().collect();
    let e: HashSet<Id> = everywhere.iter().copied().collect();
    let lost: Vec<_> = a.difference(&e).take(10).collect();
    let extra: Vec<_> = e.difference(&a).take(10).collect();
    assert!(
        lost.is_empty(),
        "accepted but never seen: {lost:?} ({stats:#?})"
    );
    assert!(extra.is_empty(), "seen but never accepted: {extra:?}");

    // Per-producer order (DropOldest may put an event ahead of older ones
    // on disk when both tiers were full).
    if !matches!(cfg.policy, Policy::DropOldest) || stats.spill.fallbacks == 0 {
        assert_per_producer_order("delivered", &delivered);
    }

    // A clean shutdown acknowledged everything.
    let (_log, rec) = spill.open().unwrap();
    assert_eq!(rec.events, 0, "a clean shutdown left records: {rec:?}");

    Outcome {
        accepted: accepted_all,
        delivered,
        stats,
    }
}

fn block() -> Policy {
    Policy::Block {
        timeout: Duration::from_millis(5),
    }
}

fn check_used_disk(o: &Outcome) {
    assert!(
        o.stats.spill.spilled > 0,
        "the disk was never used: {:#?}",
        o.stats
    );
    assert!(
        o.stats.spill.replayed > 0,
        "nothing read back: {:#?}",
        o.stats
    );
    assert!(!o.accepted.is_empty());
}

/// One policy, pull or sink mode, over 1 and 3 partitions with a fast and
/// a slow consumer.
fn random_matrix(policy: Policy, sink: bool) {
    for (parts, slow) in [(1, false), (1, true), (3, false), (3, true)] {
        let o = random_run(RunCfg::new(policy, parts, sink, slow));
        check_used_disk(&o);
    }
}

#[test]
fn random_pull_reject() {
    random_matrix(Policy::Reject, false);
}

#[test]
fn random_pull_block() {
    random_matrix(block(), false);
}

#[test]
fn random_pull_drop_oldest() {
    random_matrix(Policy::DropOldest, false);
}

#[test]
fn random_sink_reject() {
    random_matrix(Policy::Reject, true);
}

#[test]
fn random_sink_block() {
    random_matrix(block(), true);
}

#[test]
fn random_sink_drop_oldest() {
    random_matrix(Policy::DropOldest, true);
}

#[test]
fn random_write_ahead_all_policies() {
    for policy in [Policy::Reject, block(), Policy::DropOldest] {
        for (parts, sink, slow) in [(1, false, false), (3, false, true), (2, true, false)] {
            let mut cfg = RunCfg::new(policy, parts, sink, slow);
            cfg.write_ahead = true;
            cfg.per_producer = 400;
            let o = random_run(cfg);
            // Every accepted event went through the disk... unless the disk
            // was full and the memory policy took it.
            let s = o.stats;
            assert!(
                s.spill.spilled + s.spill.fallbacks >= s.accepted,
                "write-ahead: {} accepted, only {} spilled: {s:#?}",
                s.accepted,
                s.spill.spilled
            );
            check_used_disk(&o);
        }
    }
}

/// Large disk, tiny memory, no groups: order and exactly-once without any
/// fallback; many segments rolled and deleted.
#[test]
fn random_heavy_disk_no_fallback() {
    for policy in [Policy::Reject, block(), Policy::DropOldest] {
        let mut cfg = RunCfg::new(policy, 2, false, false);
        cfg.max_disk = 64 << 20;
        cfg.mem = 600;
        cfg.groups = false;
        cfg.per_producer = 1500;
        let o = random_run(cfg);
        assert_eq!(o.stats.spill.fallbacks, 0, "{:#?}", o.stats);
        assert_eq!(
            o.stats.dropped, 0,
            "nothing should be evicted with disk room: {:#?}",
            o.stats
        );
        assert_eq!(o.accepted.len(), o.delivered.len());
        assert_per_producer_order("delivered", &o.delivered);
        check_used_disk(&o);
    }
}

/// Release-mode stress: many producers, many rounds.
#[test]
#[ignore = "stress: run with --release --ignored"]
fn random_stress_release() {
    for round in 0..10u64 {
        for policy in [Policy::Reject, block(), Policy::DropOldest] {
            for sink in [false, true] {
                let mut cfg = RunCfg::new(policy, 1 + (round as usize % 4), sink, round % 3 == 0);
                cfg.seed = round * 7919 + 1;
                cfg.producers = 6;
                cfg.per_producer = 3000;
                cfg.write_ahead = round % 5 == 4;
                random_run(cfg);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Deterministic single-producer helpers.

type D = Dispatcher<Vec<u8>>;

/// Enqueues `(pid, seq)` for `seqs` (all must be accepted) and splits them
/// into the ones that stayed in memory and the ones that went to disk
/// (by `stats().spill.spilled`; single producer, so exact).
fn enqueue_tracking(d: &D, pid: u32, seqs: Range<u32>, len: usize) -> (Vec<Id>, Vec<Id>) {
    let p = d.producer();
    let (mut mem, mut disk) = (Vec::new(), Vec::new());
    for seq in seqs {
        let before = d.stats().spill.spilled;
        p.try_enqueue(ev(pid, seq, len))
            .unwrap_or_else(|e| panic!("({pid},{seq}) refused: {e:?}"));
        if d.stats().spill.spilled > before {
            disk.push((pid, seq));
        } else {
            mem.push((pid, seq));
        }
    }
    (mem, disk)
}

fn builder(mem: usize) -> dispatcher::Builder<Vec<u8>> {
    Dispatcher::<Vec<u8>>::builder()
        .max_buffered_bytes(mem)
        .max_batch_bytes(mem / 2)
        .interval(Duration::from_millis(2))
}

/// Building on a spill directory.
trait BuildOn {
    /// `.spill(spill.open(), Raw).build()`: a pull-mode dispatcher with
    /// `spill` as its disk tier, and its receiver.
    fn build_on(self, spill: &Spill) -> (D, Batches<Vec<u8>>);
}

impl BuildOn for dispatcher::Builder<Vec<u8>> {
    fn build_on(self, spill: &Spill) -> (D, Batches<Vec<u8>>) {
        self.spill(spill.open().unwrap(), Raw).build().unwrap()
    }
}

/// Starts a consumer on `batches`, shuts `d` down (it must drain within
/// 30 s) and returns the final stats and what the consumer received.
fn shutdown_collecting(d: D, batches: Batches<Vec<u8>>) -> (Stats, Vec<Id>) {
    let consumer = collector(batches, Duration::ZERO);
    let report = d.shutdown(Duration::from_secs(30)).unwrap();
    (report.stats, consumer.join().unwrap())
}

/// Waits until everything settled (see `quiesce`), shuts `d` down (it must
/// drain within 10 s) and returns what the consumer received.
fn quiesce_and_shutdown(d: D, c: Settling) -> Vec<Id> {
    quiesce(&d, &c);
    d.shutdown(Duration::from_secs(10)).unwrap();
    c.handle.join().unwrap()
}

/// `d.shutdown(deadline)`, which must fail (`why` it must) and return by
/// its deadline (2 s of leeway).
fn shutdown_fails(d: D, deadline: Duration, why: &str) -> ShutdownTimeout<Vec<u8>> {
    shutdown_fails_within(d, deadline, deadline + Duration::from_secs(2), why)
}

/// `d.shutdown(deadline)`, which must fail (`why` it must) and return
/// within `within`.
fn shutdown_fails_within(
    d: D,
    deadline: Duration,
    within: Duration,
    why: &str,
) -> ShutdownTimeout<Vec<u8>> {
    let started = Instant::now();
    let err = d.shutdown(deadline).expect_err(why);
    let took = started.elapsed();
    assert!(took < within, "shutdown took {took:?}");
    err
}

/// The final stats of a shutdown, whether it drained in time or not.
fn final_stats(r: &Result<ShutdownReport, ShutdownTimeout<Vec<u8>>>) -> Stats {
    match r {
        Ok(rep) => rep.stats,
        Err(e) => e.report.stats,
    }
}

/// Producer 0's events `0..n` are all among `parts`, and nothing else is.
fn assert_none_lost(n: u32, parts: &[&[Id]]) {
    let seen: HashSet<Id> = parts.iter().flat_map(|p| p.iter().copied()).collect();
    assert_eq!(seen, set(&seqs(0..n)), "lost events");
}

/// `try_enqueue(ev(pid, seq, len))` for each of `seqs`; all must be accepted.
fn enqueue_each(p: &Producer<Vec<u8>>, pid: u32, seqs: Range<u32>, len: usize) {
    for seq in seqs {
        p.try_enqueue(ev(pid, seq, len))
            .unwrap_or_else(|e| panic!("({pid},{seq}) refused: {e:?}"));
    }
}

/// `try_enqueue(e)` again while it is refused as `Full`, calling `on_full`
/// after each such refusal; any other refusal fails the test.
fn enqueue_when_room(p: &Producer<Vec<u8>>, mut e: Vec<u8>, mut on_full: impl FnMut()) {
    loop {
        match p.try_enqueue(e) {
            Ok(()) => return,
            Err(TryEnqueueError::Full(back)) => {
                e = back;
                on_full();
            }
            Err(other) => panic!("{other:?}"),
        }
    }
}

/// Enqueues producer 0's events `0, 1, …` of `len` bytes until one is
/// refused as `Full` (and comes back whole); returns the ids accepted and
/// the sequence number refused. Fails (`never`) at `limit` events.
fn enqueue_until_full(
    p: &Producer<Vec<u8>>,
    len: usize,
    limit: u32,
    never: &str,
) -> (Vec<Id>, u32) {
    let mut accepted = Vec::new();
    let mut seq = 0;
    loop {
        let e = ev(0, seq, len);
        match p.try_enqueue(e.clone()) {
            Ok(()) => accepted.push((0, seq)),
            Err(TryEnqueueError::Full(back)) => {
                assert_eq!(back, e, "the refused item comes back");
                return (accepted, seq);
            }
            Err(other) => panic!("{other:?}"),
        }
        seq += 1;
        assert!(seq < limit, "{never}");
    }
}

// ---------------------------------------------------------------------------
// Shutdown, acknowledgement and reopening.

/// Shutdown in pull mode while the consumer still holds the last batch it
/// took (it processes each batch for a while, then drops it): the shutdown
/// returns Ok, the consumer then drops the batch — a delivered, dropped,
/// acknowledged batch — yet reopening the directory replays it.
#[test]
fn clean_shutdown_while_a_batch_is_held_then_reopen_recovers_zero() {
    let (_dir, spill) = temp_spill(1 << 20);
    let (d, batches) = builder(256).build_on(&spill);
    let (mem, disk) = enqueue_tracking(&d, 0, 0..12, 100);
    assert_eq!((mem.len(), disk.len()), (2, 10));
    let consumer = thread::spawn(move || {
        let mut got = Vec::new();
        for batch in &batches {
            got.extend(ids(batch.iter()));
            thread::sleep(Duration::from_millis(150)); // "writing it downstream"
            drop(batch);
        }
        got
    });
    let report = d.shutdown(Duration::from_secs(30)).expect("clean shutdown");
    assert_eq!(report.stats.delivered, 12);
    let got = consumer.join().unwrap();
    assert_eq!(got, seqs(0..12));
    // Every batch was delivered and dropped, the shutdown was clean.
    let (_log, rec) = spill.open().unwrap();
    assert_eq!(
        rec.events, 0,
        "clean shutdown, every batch dropped, yet {rec:?}"
    );
}

/// A consumer that never receives: shutdown returns by its deadline with
/// the in-memory events, leaves the disk events on disk; a reopen delivers
/// exactly those, in order.
#[test]
fn shutdown_deadline_with_stalled_pull_consumer() {
    let (_dir, spill) = temp_spill(1 << 20);
    let (d, batches) = builder(1000).build_on(&spill);
    let (mem, disk) = enqueue_tracking(&d, 0, 0..200, 100);
    assert_eq!((mem.len(), disk.len()), (10, 190));
    let err = shutdown_fails(d, Duration::from_millis(300), "nobody receives");
    let s = err.report.stats;
    assert_eq!(
        ids(err.undelivered.iter()),
        mem,
        "undelivered = the in-memory events, oldest first"
    );
    assert_eq!(s.spill.backlog, 190, "{s:#?}");
    assert_identity(&s);
    drop(batches);
    let (recovered, got, st) = drain_dir(&spill);
    assert_eq!(recovered, 190);
    assert_eq!(st.spill.recovered_events, 190);
    assert_eq!(got, disk);
    assert_eq!(spill.open().unwrap().1.events, 0);
}

/// A slow consumer and a short deadline: what shutdown did not deliver is
/// either returned or stays on disk for the next open; nothing is lost.
#[test]
fn shutdown_deadline_with_slow_pull_consumer_loses_nothing() {
    let (_dir, spill) = temp_spill(1 << 20);
    let (d, batches) = builder(1000).max_batch_items(5).build_on(&spill);
    let (_mem, _disk) = enqueue_tracking(&d, 0, 0..400, 100);
    let consumer = thread::spawn(move || {
        let mut got = Vec::new();
        for batch in &batches {
            got.extend(ids(batch.iter()));
            drop(batch);
            thread::sleep(Duration::from_millis(10));
        }
        got
    });
    let err = shutdown_fails(
        d,
        Duration::from_millis(200),
        "too slow to drain 400 events",
    );
    assert!(err.report.stats.spill.backlog > 0);
    let returned = ids(err.undelivered.iter());
    let mut first_run = consumer.join().unwrap();
    let (_, replayed, _) = drain_dir(&spill);
    first_run.extend(&returned);
    assert_unique("first run", &first_run);
    assert_none_lost(400, &[&first_run, &replayed]);
    // At-least-once leeway: at most one batch in the consumer's hands, and
    // what shutdown handed back that had come from disk (it stays there).
    let before = set(&first_run);
    let handed_back = set(&returned);
    let dups = replayed
        .iter()
        .filter(|x| before.contains(x) && !handed_back.contains(x))
        .count();
    assert!(dups <= 5, "{dups} events delivered twice");
    assert_per_producer_order("replayed", &replayed);
}

/// A sink stuck inside a call: shutdown still returns by its deadline; the
/// lock is released at once; the late completion of the stuck call does
/// not disturb the directory that was reopened meanwhile; nothing is lost.
#[test]
fn shutdown_deadline_with_stuck_sink_and_stale_completion() {
    let (_dir, spill) = temp_spill(1 << 20);
    let gate = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
    let written = Arc::new(Mutex::new(Vec::<Id>::new()));
    let in_call = Arc::new(AtomicBool::new(false));
    let (g, w, c) = (
        Arc::clone(&gate),
        Arc::clone(&written),
        Arc::clone(&in_call),
    );
    let d = builder(1000)
        .spill(spill.open().unwrap(), Raw)
        .flush_timeout(Duration::from_secs(60))
        .build_with_sink(sink::from_fn(
            move |batch: &Batch<Vec<u8>>, _: &FlushContext| {
                c.store(true, Ordering::SeqCst);
                let (lock, cv) = &*g;
                let mut open = lock.lock().unwrap();
                while !*open {
                    open = cv.wait_timeout(open, Duration::from_secs(30)).unwrap().0;
                }
                w.lock().unwrap().extend(ids(batch.iter()));
                Ok::<_, std::io::Error>(())
            },
        ))
        .unwrap();
    let p = d.producer();
    enqueue_each(&p, 0, 0..100, 100);
    wait_for("the sink call", Duration::from_secs(10), || {
        in_call.load(Ordering::SeqCst)
    });
    // Let the reader fill the memory freed... it cannot: the batch in the
    // sink call is still charged. Shut down with a short deadline.
    let err = shutdown_fails(d, Duration::from_millis(300), "the sink is stuck");
    let returned = ids(err.undelivered.iter());
    let backlog = err.report.stats.spill.backlog;
    assert!(backlog > 0, "{:#?}", err.report.stats);
    // The lock is free once shutdown returned.
    let reopened = spill.open().expect("lock released by shutdown");
    let (d2, batches2) = builder(1000).spill(reopened, Raw).build().unwrap();
    // The stuck call of the first dispatcher completes now.
    {
        let (lock, cv) = &*gate;
        *lock.lock().unwrap() = true;
        cv.notify_all();
    }
    wait_for("the stale sink call", Duration::from_secs(10), || {
        !written.lock().unwrap().is_empty()
    });
    thread::sleep(Duration::from_millis(100));
    let consumer = settling_collector(batches2);
    quiesce(&d2, &consumer);
    d2.shutdown(Duration::from_secs(30))
        .expect("second run drains");
    let replayed = consumer.handle.join().unwrap();
    let first = written.lock().unwrap().clone();
    assert_none_lost(100, &[&first, &returned, &replayed]);
    assert_per_producer_order("replayed", &replayed);
    // Duplicates only of what the stuck call held.
    let in_first = set(&first);
    for x in returned.iter().chain(&replayed) {
        assert!(!in_first.contains(x) || first.len() <= 10, "{x:?} twice");
    }
    assert_eq!(spill.open().unwrap().1.events, 0);
}

/// Dropping the dispatcher (no shutdown) while its receiver lives: the lock
/// is released as soon as the drop returns, the old receiver still drains
/// the in-memory events, and the disk events come back on the next open.
#[test]
fn drop_without_shutdown_releases_lock_and_reopen_replays_disk() {
    let (_dir, spill) = temp_spill(1 << 20);
    let (d, batches) = builder(1000).build_on(&spill);
    let (mem, disk) = enqueue_tracking(&d, 0, 0..60, 100);
    assert_eq!((mem.len(), disk.len()), (10, 50));
    drop(d);
    let held = spill
        .open()
        .expect("dropping the dispatcher releases the lock");
    assert_eq!(held.1.events, 50, "{:?}", held.1);
    // The old receiver drains what was in memory, and only that.
    let mut old = Vec::new();
    loop {
        match batches.recv_timeout(Duration::from_secs(5)) {
            Ok(b) => old.extend(ids(b.iter())),
            Err(dispatcher::RecvTimeoutError::Disconnected) => break,
            Err(e) => panic!("old receiver: {e:?}"),
        }
    }
    assert_eq!(old, mem);
    drop(batches);
    drop(held);
    let (rec, got, _) = drain_dir(&spill);
    assert_eq!(rec, 50);
    assert_eq!(got, disk);
}

/// `stop()` returns what is in memory and leaves the disk as it is: events
/// read back from disk among those returned stay there, unacknowledged,
/// and come again after a reopen.
#[test]
fn stop_returns_memory_and_leaves_disk() {
    let (_dir, spill) = temp_spill(1 << 20);
    let (d, batches) = builder(1000).max_batch_items(5).build_on(&spill);
    let (_mem, disk) = enqueue_tracking(&d, 0, 0..100, 100);
    assert_eq!(disk.len(), 90);
    // Take three batches, then stall; the reader refills memory from disk.
    let mut first = Vec::new();
    for _ in 0..3 {
        let b = batches.recv_timeout(Duration::from_secs(5)).unwrap();
        first.extend(ids(b.iter()));
    }
    wait_for("memory refilled from disk", Duration::from_secs(10), || {
        d.stats().buffered_bytes >= 900
    });
    thread::sleep(Duration::from_millis(50));
    let returned = ids(d.stop().iter());
    let _relock = spill.open().expect("stop releases the lock");
    drop(_relock);
    drop(batches);
    let (_, replayed, _) = drain_dir(&spill);
    let handed_back = set(&returned);
    let again: Vec<Id> = replayed
        .iter()
        .copied()
        .filter(|x| handed_back.contains(x))
        .collect();
    assert!(!again.is_empty(), "returned events from disk come again");
    assert_eq!(again, replayed[..again.len()], "they come first, in order");
    let replayed = &replayed[again.len()..];
    assert_eq!(
        [first.as_slice(), &returned, replayed].concat(),
        seqs(0..100),
        "first {} / returned {} / replayed {}",
        first.len(),
        returned.len(),
        replayed.len()
    );
}

/// Batches held by a pull consumer when the process "crashes" (everything
/// dropped without shutdown, the held batches leaked) come back on reopen,
/// even when later batches were dropped (acknowledged) meanwhile.
#[test]
fn held_batches_are_replayed_after_a_crash() {
    for forget_first_only in [true, false] {
        let (_dir, spill) = temp_spill(1 << 20);
        let (d, batches) = builder(500).max_batch_items(3).build_on(&spill);
        let (_mem, disk) = enqueue_tracking(&d, 0, 0..60, 100);
        assert_eq!(disk.len(), 55);
        let mut held: Vec<Batch<Vec<u8>>> = Vec::new();
        let mut held_ids: Vec<Id> = Vec::new();
        let mut seen = 0;
        let mut n = 0;
        while seen < 60 {
            let b = batches
                .recv_timeout(Duration::from_secs(10))
                .expect("a batch");
            seen += b.len();
            let hold = if forget_first_only {
                n == 2
            } else {
                n % 2 == 0
            };
            if hold {
                held_ids.extend(ids(b.iter()));
                held.push(b);
            }
            n += 1;
        }
        assert_eq!(d.stats().delivered, 60);
        // Crash: the dispatcher goes without shutdown, the held batches are
        // never dropped.
        drop(d);
        std::mem::forget(held);
        drop(batches);
        let (_, replayed, _) = drain_dir(&spill);
        let rep = set(&replayed);
        let disk_set = set(&disk);
        for x in &held_ids {
            if disk_set.contains(x) {
                assert!(
                    rep.contains(x),
                    "held read-back event {x:?} lost (replayed {replayed:?})"
                );
            }
        }
        for x in &replayed {
            assert!(disk_set.contains(x), "{x:?} replayed but never on disk");
        }
        assert_per_producer_order("replayed", &replayed);
    }
}

/// The ordinary consumer loop (`for batch in &batches { .. }`, each batch
/// dropped at the end of its iteration) draining a recovered directory:
/// shutdown returns Ok, and the next open replays the last batch again.
#[test]
fn typical_consumer_loop_drains_recovered_dir_cleanly() {
    // A race: each round fails about half the time; 15 rounds make the
    // failure reliable.
    for _ in 0..15 {
        typical_consumer_loop_round();
    }
}

fn typical_consumer_loop_round() {
    let (_dir, spill) = temp_spill(1 << 20);
    let disk = crash_with_backlog(&spill, 190);
    assert_eq!(disk.len(), 190);
    let (d, batches) = Dispatcher::<Vec<u8>>::builder()
        .max_buffered_bytes(1 << 20)
        .build_on(&spill);
    let consumer = thread::spawn(move || {
        let mut n = 0;
        for batch in &batches {
            // Check every event's bytes, as a real consumer would write them.
            n += ids(batch.iter()).len();
        }
        n
    });
    d.shutdown(Duration::from_secs(30)).expect("clean drain");
    assert_eq!(consumer.join().unwrap(), 190);
    let (_log, rec) = spill.open().unwrap();
    assert_eq!(rec.events, 0, "a clean drain left {rec:?} to replay");
}

// ---------------------------------------------------------------------------
// Disk budget full, disk failing.

#[test]
fn disk_full_reject_returns_item_and_counts_fallback() {
    let (_dir, spill) = temp_spill(4096);
    let (d, batches) = builder(1000).build_on(&spill);
    let p = d.producer();
    let (mut accepted, refused) = enqueue_until_full(&p, 100, 1000, "never full");
    let s = d.stats();
    assert!(s.spill.spilled > 0 && s.spill.fallbacks >= 1, "{s:#?}");
    assert!(s.spill.disk_bytes <= 4096, "{s:#?}");
    assert_eq!(s.accepted, accepted.len() as u64);
    assert_eq!(s.rejected.full, 1, "{s:#?}");
    assert!(d.spill_error().is_some());
    // Still full, still refused, nothing accepted.
    assert!(matches!(
        p.try_enqueue(ev(0, refused, 100)),
        Err(TryEnqueueError::Full(_))
    ));
    assert_identity(&d.stats());
    let consumer = collector(batches, Duration::ZERO);
    // With the consumer running, everything drains; more can come in.
    wait_for("drain", Duration::from_secs(20), || {
        d.stats().delivered == accepted.len() as u64
    });
    for s in refused..refused + 50 {
        enqueue_when_room(&p, ev(0, s, 100), || {
            thread::sleep(Duration::from_millis(1));
        });
        accepted.push((0, s));
    }
    let report = d.shutdown(Duration::from_secs(30)).unwrap();
    assert_identity(&report.stats);
    assert_eq!(consumer.join().unwrap(), accepted);
}

#[test]
fn disk_full_block_times_out_with_item() {
    let (_dir, spill) = temp_spill(4096);
    let timeout = Duration::from_millis(50);
    let (d, batches) = builder(1000)
        .policy(Policy::Block { timeout })
        .build_on(&spill);
    let p = d.producer();
    let mut n = 0u32;
    let started;
    loop {
        let e = ev(0, n, 100);
        let t = Instant::now();
        match p.enqueue(e.clone()) {
            Ok(()) => n += 1,
            Err(EnqueueError::Timeout(back)) => {
                assert_eq!(back, e);
                started = t;
                break;
            }
            Err(other) => panic!("{other:?}"),
        }
        assert!(n < 1000);
    }
    let waited = started.elapsed();
    assert!(waited >= timeout, "gave up after {waited:?}");
    assert!(waited < timeout + Duration::from_secs(2), "{waited:?}");
    let s = d.stats();
    assert!(s.spill.fallbacks >= 1 && s.spill.spilled > 0, "{s:#?}");
    let (_, got) = shutdown_collecting(d, batches);
    assert_eq!(got, seqs(0..n));
}

/// Under Block with the disk full, a producer waiting for room must not be
/// let into memory ahead of its own older events still on disk.
#[test]
fn disk_full_block_keeps_order_when_memory_frees() {
    let (_dir, spill) = temp_spill(4096);
    let (d, batches) = builder(1000)
        .max_batch_items(2)
        .policy(Policy::Block {
            timeout: Duration::from_secs(5),
        })
        .build_on(&spill);
    let p = d.producer();
    thread::scope(|s| {
        let prod = s.spawn(|| {
            for seq in 0..300 {
                p.enqueue(ev(0, seq, 100)).expect("room appears within 5 s");
            }
        });
        // Let the producer fill both tiers and block, then consume slowly.
        thread::sleep(Duration::from_millis(200));
        let consumer = collector(batches, Duration::from_millis(2));
        prod.join().unwrap();
        let report = d.shutdown(Duration::from_secs(30)).unwrap();
        assert!(report.stats.spill.fallbacks > 0, "{:#?}", report.stats);
        let got = consumer.join().unwrap();
        assert_eq!(got, seqs(0..300));
    });
}

/// Under Reject with the disk full, a retried `try_enqueue` that finds room
/// in memory must not overtake the producer's own events still on disk.
#[test]
fn disk_full_reject_retry_keeps_order() {
    let (_dir, spill) = temp_spill(4096);
    let (d, batches) = builder(1000).max_batch_items(2).build_on(&spill);
    let p = d.producer();
    let consumer = collector(batches, Duration::from_millis(1));
    let mut fallbacks_seen = 0;
    for seq in 0..400 {
        enqueue_when_room(&p, ev(0, seq, 100), || {
            fallbacks_seen += 1;
            thread::yield_now();
        });
    }
    let report = d.shutdown(Duration::from_secs(30)).unwrap();
    assert!(
        fallbacks_seen > 0,
        "the disk never filled: {:#?}",
        report.stats
    );
    assert_eq!(consumer.join().unwrap(), seqs(0..400));
}

#[test]
fn disk_full_drop_oldest_evicts_and_accounts() {
    let (_dir, spill) = temp_spill(4096);
    let evicted = Arc::new(Mutex::new(Vec::new()));
    let e2 = Arc::clone(&evicted);
    let (d, batches) = builder(1000)
        .policy(Policy::DropOldest)
        .on_evict(move |e| e2.lock().unwrap().push(id(&e)))
        .build_on(&spill);
    let p = d.producer();
    for seq in 0..200 {
        p.try_enqueue(ev(0, seq, 100))
            .expect("DropOldest never refuses here");
    }
    let s = d.stats();
    assert_eq!(s.accepted, 200);
    assert!(s.dropped > 0 && s.spill.fallbacks > 0, "{s:#?}");
    assert!(s.buffered_bytes <= 1000);
    let (stats, got) = shutdown_collecting(d, batches);
    assert_identity(&stats);
    let ev_ids = evicted.lock().unwrap().clone();
    let all = [got.as_slice(), &ev_ids].concat();
    assert_unique("delivered+evicted", &all);
    assert_eq!(set(&all), set(&seqs(0..200)));
    assert_eq!(stats.dropped, ev_ids.len() as u64);
}

/// Events read back from disk and then evicted are acknowledged: a crash
/// afterwards does not bring them back; what was delivered (and dropped)
/// does not come back either.
#[test]
fn evicted_read_back_events_are_acknowledged() {
    let (_dir, spill) = temp_spill(8192);
    let evicted = Arc::new(Mutex::new(Vec::new()));
    let e2 = Arc::clone(&evicted);
    let (d, batches) = builder(1000)
        .partitions(1) // both handles evict from the memory they share
        .max_batch_items(10)
        .policy(Policy::DropOldest)
        .on_evict(move |e| e2.lock().unwrap().push(id(&e)))
        .build_on(&spill);
    let (mem, disk) = enqueue_tracking(&d, 0, 0..60, 100);
    assert_eq!(mem.len(), 10);
    // Deliver the memory, let the reader refill it from disk.
    let b = batches.recv_timeout(Duration::from_secs(5)).unwrap();
    let mut delivered = ids(b.iter());
    drop(b);
    wait_for("refill", Duration::from_secs(10), || {
        d.stats().buffered_bytes >= 1000
    });
    let before = d.stats().spill.replayed;
    assert!(before >= 5, "{before}");
    // Now fill the disk and evict read-back events from memory.
    let p = d.producer();
    enqueue_each(&p, 0, 60..200, 100);
    let ev_ids = evicted.lock().unwrap().clone();
    let disk_set = set(&disk);
    assert!(
        ev_ids.iter().any(|x| disk_set.contains(x)),
        "no read-back event was evicted: {ev_ids:?}"
    );
    // One more delivered batch, dropped.
    let b = batches.recv_timeout(Duration::from_secs(5)).unwrap();
    delivered.extend(ids(b.iter()));
    drop(b);
    thread::sleep(Duration::from_millis(100));
    // Crash.
    drop(d);
    drop(batches);
    let (_, replayed, _) = drain_dir(&spill);
    let rep = set(&replayed);
    for x in &ev_ids {
        assert!(!rep.contains(x), "evicted {x:?} replayed");
    }
    for x in &delivered {
        assert!(!rep.contains(x), "delivered and dropped {x:?} replayed");
    }
}

// ---------------------------------------------------------------------------
// ENOSPC on a small tmpfs.

/// A 64 KiB tmpfs (unmounted when dropped) of which the file `filler`
/// takes a part.
struct Cramped {
    mount: Tmpfs,
    filler: PathBuf,
}

impl Cramped {
    /// A spill directory on the tmpfs, with segments of `seg` bytes and a
    /// budget (1 GiB) larger than the tmpfs.
    fn spill(&self, seg: u64, sync: SyncPolicy) -> Spill {
        Spill::new(self.mount.path().join("spill"))
            .segment_bytes(seg)
            .max_disk_bytes(1 << 30)
            .sync(sync)
    }
}

/// A 64 KiB tmpfs with `filler_kib` KiB of it taken; `None` (the test is
/// skipped) where no tmpfs can be mounted.
fn cramped_tmpfs(filler_kib: usize) -> Option<Cramped> {
    let mount = small_tmpfs()?;
    let filler = mount.path().join("filler");
    fs::write(&filler, vec![1u8; filler_kib * 1024]).unwrap();
    Some(Cramped { mount, filler })
}

#[test]
fn enospc_falls_back_returns_item_and_recovers() {
    let Some(tmpfs) = cramped_tmpfs(40) else {
        return;
    };
    let spill = tmpfs.spill(4096, SyncPolicy::EveryBatch);
    let (d, batches) = builder(1000).build_on(&spill);
    let p = d.producer();
    let (mut accepted, seq) = enqueue_until_full(&p, 500, 10_000, "the tmpfs never filled");
    let s = d.stats();
    assert!(s.spill.errors >= 1 && s.spill.fallbacks >= 1, "{s:#?}");
    let err = d.spill_error().expect("the ENOSPC is kept");
    match &*err {
        SpillError::Io { source, .. } => assert_eq!(source.raw_os_error(), Some(28), "{err}"),
        other => panic!("expected ENOSPC, got {other}"),
    }
    assert_identity(&s);
    // Free the space; consume; accept more.
    fs::remove_file(&tmpfs.filler).unwrap();
    let consumer = collector(batches, Duration::ZERO);
    for s in seq..seq + 100 {
        let mut tries = 0;
        enqueue_when_room(&p, ev(0, s, 500), || {
            tries += 1;
            assert!(tries < 20_000, "never accepted again after space was freed");
            thread::sleep(Duration::from_micros(200));
        });
        accepted.push((0, s));
    }
    let report = d.shutdown(Duration::from_secs(30)).unwrap();
    assert_identity(&report.stats);
    assert_eq!(consumer.join().unwrap(), accepted);
    let (_log, rec) = spill.open().unwrap();
    assert_eq!(rec.torn_records, 0, "{rec:?}");
}

/// ENOSPC while the disk tier holds a backlog and the dispatcher is
/// killed (dropped): everything that made it to disk comes back, no torn
/// frame from the failed appends.
#[test]
fn enospc_then_crash_recovers_whole_frames() {
    let Some(tmpfs) = cramped_tmpfs(30) else {
        return;
    };
    let spill = tmpfs.spill(8192, SyncPolicy::Os);
    let (d, _batches) = builder(1000).build_on(&spill);
    let p = d.producer();
    let mut disk = Vec::new();
    for seq in 0..400u32 {
        let before = d.stats().spill.spilled;
        let len = 9 + (seq as usize * 97) % 900;
        match p.try_enqueue(ev(0, seq, len)) {
            Ok(()) => {
                if d.stats().spill.spilled > before {
                    disk.push((0, seq));
                }
            }
            Err(TryEnqueueError::Full(_)) => {}
            Err(other) => panic!("{other:?}"),
        }
    }
    assert!(d.stats().spill.errors > 0, "{:#?}", d.stats());
    drop(d);
    fs::remove_file(&tmpfs.filler).unwrap();
    let (rec, replayed, st) = drain_dir(&spill);
    assert_eq!(st.spill.torn, 0, "{st:#?}");
    assert_eq!(rec, disk.len() as u64);
    assert_eq!(replayed, disk);
}

// ---------------------------------------------------------------------------
// Groups through the disk tier.

#[test]
fn groups_spill_whole_all_or_none_in_order() {
    let (_dir, spill) = temp_spill(8192);
    let (d, batches) = builder(1000).max_batch_items(4).build_on(&spill);
    let p = d.producer();
    // A group heavier than max_buffered_bytes can never fit: TooLarge, whole.
    let big: Vec<Vec<u8>> = (0..11).map(|j| ev(9, j, 100)).collect();
    match p.try_enqueue_all(big.clone()) {
        Err(TryEnqueueError::TooLarge(back)) => assert_eq!(back, big),
        other => panic!("expected TooLarge, got {other:?}"),
    }
    let mut accepted = Vec::new();
    let mut seq = 0u32;
    let mut refused_group = None;
    for _ in 0..200 {
        let k = 3;
        let g: Vec<Vec<u8>> = (0..k).map(|j| ev(0, seq + j, 100)).collect();
        let before = d.stats().accepted;
        match p.try_enqueue_all(g.clone()) {
            Ok(()) => {
                assert_eq!(d.stats().accepted, before + u64::from(k));
                accepted.extend(seqs(seq..seq + k));
                seq += k;
            }
            Err(TryEnqueueError::Full(back)) => {
                assert_eq!(back, g, "the whole group comes back");
                assert_eq!(
                    d.stats().accepted,
                    before,
                    "none of a refused group accepted"
                );
                refused_group = Some(seq);
                break;
            }
            Err(other) => panic!("{other:?}"),
        }
    }
    assert!(refused_group.is_some(), "the disk never filled");
    let s = d.stats();
    assert!(s.spill.spilled >= 3, "{s:#?}");
    assert_eq!(s.accepted, accepted.len() as u64);
    assert_identity(&s);
    let (stats, got) = shutdown_collecting(d, batches);
    assert_identity(&stats);
    assert_eq!(got, accepted);
}

/// Single events and groups from several producers while the disk is in
/// use: a group is never interleaved with another producer's events in the
/// delivery stream of its partition.
#[test]
fn groups_stay_contiguous_through_disk() {
    let (_dir, spill) = temp_spill(1 << 22);
    // One partition: one sequence of batches, groups contiguous in it.
    let (d, batches) = builder(800)
        .partitions(1)
        .max_batch_items(3)
        .build_on(&spill);
    // A consumer slower than the producers, so the disk is used however the
    // threads are scheduled (with none, a fast consumer could keep memory
    // from ever filling: CI saw nothing spilled once).
    let consumer = collector(batches, Duration::from_micros(200));
    // Group members are marked by their length: 8 + 3*k for the k-th group.
    let groups: Arc<Mutex<Vec<Vec<Id>>>> = Arc::new(Mutex::new(Vec::new()));
    thread::scope(|s| {
        for pid in 0..3u32 {
            let p = d.producer();
            let groups = &groups;
            s.spawn(move || {
                let mut rng = fastrand::Rng::with_seed(u64::from(pid) + 77);
                let mut seq = 0;
                while seq < 600 {
                    let k = rng.u32(1..=4).min(600 - seq);
                    let mut g: Vec<Vec<u8>> = (0..k)
                        .map(|j| ev(pid, seq + j, rng.usize(8..=120)))
                        .collect();
                    loop {
                        match p.try_enqueue_all(g) {
                            Ok(()) => break,
                            Err(TryEnqueueError::Full(back)) => {
                                g = back;
                                thread::sleep(Duration::from_micros(100));
                            }
                            Err(e) => panic!("{e:?}"),
                        }
                    }
                    if k > 1 {
                        groups
                            .lock()
                            .unwrap()
                            .push((seq..seq + k).map(|q| (pid, q)).collect());
                    }
                    seq += k;
                }
            });
        }
    });
    let report = d.shutdown(Duration::from_secs(30)).unwrap();
    assert!(report.stats.spill.spilled > 0);
    let got = consumer.join().unwrap();
    assert_eq!(got.len(), 1800);
    assert_unique("delivered", &got);
    assert_per_producer_order("delivered", &got);
    let pos: HashMap<Id, usize> = got.iter().enumerate().map(|(i, x)| (*x, i)).collect();
    for g in groups.lock().unwrap().iter() {
        let first = pos[&g[0]];
        for (j, x) in g.iter().enumerate() {
            assert_eq!(pos[x], first + j, "group {g:?} interleaved in delivery");
        }
    }
}

/// Groups left on disk by a crash come back as one record each, whole.
#[test]
fn groups_recovered_as_records() {
    let (_dir, spill) = temp_spill(1 << 20);
    let (d, _batches) = builder(1000).build_on(&spill);
    let p = d.producer();
    let mut seq = 0;
    let mut on_disk = Vec::new();
    let mut records = 0;
    for _ in 0..30 {
        let before = d.stats().spill.spilled;
        let g: Vec<Vec<u8>> = (0..3).map(|j| ev(0, seq + j, 100)).collect();
        p.try_enqueue_all(g).unwrap();
        if d.stats().spill.spilled > before {
            assert_eq!(d.stats().spill.spilled, before + 3, "a group spills whole");
            on_disk.extend(seqs(seq..seq + 3));
            records += 1;
        }
        seq += 3;
    }
    assert!(records > 20);
    drop(d);
    let (rec, got, st) = drain_dir_unchecked(&spill);
    assert_eq!(rec, records, "one record per group");
    // The identity, with recovered counting records.
    assert_eq!(st.delivered, on_disk.len() as u64, "{st:#?}");
    assert_eq!(st.spill.recovered_events, records);
    assert_eq!(got, on_disk);
}

// ---------------------------------------------------------------------------
// Torn and damaged segments written by hand.

/// The frames of a segment file: (offset, payload).
fn frames(path: &Path) -> Vec<(usize, Vec<u8>)> {
    let bytes = fs::read(path).unwrap();
    let mut out = Vec::new();
    let mut at = 24;
    while at + 8 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        if at + 8 + len > bytes.len() {
            break;
        }
        out.push((at, bytes[at + 8..at + 8 + len].to_vec()));
        at += 8 + len;
    }
    out
}

/// Spills `n` events of 100 bytes behind 10 in memory, then drops the
/// dispatcher; returns the spilled ids.
fn crash_with_backlog(spill: &Spill, n: u32) -> Vec<Id> {
    let (d, _batches) = builder(1000).build_on(spill);
    let (mem, disk) = enqueue_tracking(&d, 0, 0..n + 10, 100);
    assert_eq!(mem.len(), 10);
    drop(d);
    disk
}

#[test]
fn torn_tail_is_cut_and_counted() {
    let (dir, spill) = temp_spill(1 << 20);
    let disk = crash_with_backlog(&spill, 80);
    let segs = segments(dir.path());
    assert!(segs.len() >= 2, "{segs:?}");
    let last = segs.last().unwrap();
    let len = fs::metadata(last).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(last)
        .unwrap()
        .set_len(len - 37)
        .unwrap();
    let opened = spill.open().unwrap();
    assert_eq!(opened.1.torn_records, 1, "{:?}", opened.1);
    assert_eq!(opened.1.events, 79);
    let (d, batches) = builder(1 << 16).spill(opened, Raw).build().unwrap();
    let s = d.stats();
    assert_eq!((s.spill.torn, s.spill.recovered_events), (1, 79), "{s:#?}");
    let (_, got) = shutdown_collecting(d, batches);
    assert_eq!(got, disk[..79].to_vec());
}

/// A damaged frame in the first segment: that segment is cut there, later
/// segments are kept, and the dispatcher delivers exactly that.
#[test]
fn damaged_frame_mid_log_keeps_later_segments() {
    let (dir, spill) = temp_spill(1 << 20);
    let disk = crash_with_backlog(&spill, 120);
    let segs = segments(dir.path());
    assert!(segs.len() >= 3, "{segs:?}");
    let mut expected = Vec::new();
    let f0 = frames(&segs[0]);
    let bad = f0.len() / 2;
    let mut later = Vec::new();
    for s in &segs[1..] {
        later.extend(frames(s));
    }
    // Flip one payload byte of frame `bad` in segment 0.
    let mut bytes = fs::read(&segs[0]).unwrap();
    bytes[f0[bad].0 + 8 + 50] ^= 0x55;
    fs::write(&segs[0], bytes).unwrap();
    let disk_ids: Vec<Id> = disk.clone();
    // Which ids are in which frames: count frames (one event each).
    let n0 = f0.len();
    expected.extend_from_slice(&disk_ids[..bad]);
    expected.extend_from_slice(&disk_ids[n0..n0 + later.len()]);
    let opened = spill.open().unwrap();
    assert_eq!(opened.1.torn_records, 1, "{:?}", opened.1);
    let (d, batches) = builder(1 << 16).spill(opened, Raw).build().unwrap();
    assert_eq!(d.stats().spill.torn, 1);
    let (stats, got) = shutdown_collecting(d, batches);
    assert_identity(&stats);
    assert_eq!(got, expected);
}

/// A record whose frame is intact but whose payload the dispatcher cannot
/// decode (here: too short to be one of its records) is counted
/// undeliverable, not delivered, and does not stop the rest.
#[test]
fn garbage_record_is_undeliverable_not_fatal() {
    let (_dir, spill) = temp_spill(1 << 20);
    let disk = crash_with_backlog(&spill, 20);
    // Append well-formed frames with foreign payloads through the log API.
    {
        let (mut log, _) = spill.open().unwrap();
        log.append(&[]).unwrap();
        log.append(&[0xff; 3]).unwrap();
        log.append(&[0xee; 40]).unwrap();
    }
    let opened = spill.open().unwrap();
    assert_eq!(opened.1.events, 23);
    let (d, batches) = builder(1 << 16).spill(opened, Raw).build().unwrap();
    let consumer = collector(batches, Duration::ZERO);
    let started = Instant::now();
    let r = d.shutdown(Duration::from_secs(10));
    assert!(started.elapsed() < Duration::from_secs(10));
    let stats = final_stats(&r);
    let got = catch(|| consumer.join().unwrap());
    assert_identity(&stats);
    let got = got.expect("a garbage record reached the consumer");
    assert_eq!(got, disk);
    assert!(stats.spill.undeliverable >= 1, "{stats:#?}");
}

fn catch<R>(f: impl FnOnce() -> R) -> Option<R> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).ok()
}

// ---------------------------------------------------------------------------
// Locks, configuration, foreign directories.

#[test]
fn second_open_refused_while_dispatcher_lives() {
    let (_dir, spill) = temp_spill(1 << 20);
    // Pull mode: shutdown, stop, drop each release the lock when they return.
    for end in 0..3 {
        let (d, batches) = builder(1000).build_on(&spill);
        match spill.open() {
            Err(SpillError::Locked { .. }) => {}
            other => panic!("second open while alive: {:?}", other.map(|o| o.1)),
        }
        d.producer().try_enqueue(ev(0, 0, 10)).unwrap();
        match end {
            0 => {
                let _ = d.shutdown(Duration::from_millis(50));
            }
            1 => {
                d.stop();
            }
            _ => drop(d),
        }
        spill
            .open()
            .unwrap_or_else(|e| panic!("end {end}: lock not released: {e}"));
        drop(batches);
    }
    // Sink mode.
    let d = builder(1000)
        .spill(spill.open().unwrap(), Raw)
        .build_with_sink(sink::from_fn(|_: &Batch<Vec<u8>>, _: &FlushContext| {
            Ok::<_, std::io::Error>(())
        }))
        .unwrap();
    assert!(matches!(spill.open(), Err(SpillError::Locked { .. })));
    drop(d);
    spill
        .open()
        .expect("sink dispatcher dropped: lock released");
}

#[test]
fn can_add_with_spill_is_refused_and_lock_released() {
    let (_dir, spill) = temp_spill(1 << 20);
    let err = builder(1000)
        .can_add(|_, _| true)
        .spill(spill.open().unwrap(), Raw)
        .build()
        .unwrap_err();
    assert_eq!(err.field(), "spill", "{err}");
    spill.open().expect("a refused build releases the lock");
    let err = builder(1000)
        .spill(spill.open().unwrap(), Raw)
        .can_add(|_, _| true)
        .build_with_sink(sink::from_fn(|_: &Batch<Vec<u8>>, _: &FlushContext| {
            Ok::<_, std::io::Error>(())
        }))
        .unwrap_err();
    assert_eq!(err.field(), "spill", "{err}");
    spill.open().expect("a refused build releases the lock");
    // Some other invalid setting with a spill: the lock is released too.
    let err = builder(1000)
        .spill(spill.open().unwrap(), Raw)
        .partitions(0)
        .build()
        .unwrap_err();
    assert_eq!(err.field(), "partitions");
    spill.open().expect("a refused build releases the lock");
}

#[test]
fn foreign_directory_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("notes.txt"), b"mine").unwrap();
    let spill = spill_cfg(dir.path(), 1 << 20, 4096);
    match spill.open() {
        Err(SpillError::Foreign { path }) => assert!(path.ends_with("notes.txt")),
        other => panic!("expected Foreign, got {:?}", other.map(|o| o.1)),
    }
    let names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["notes.txt"]);
}

#[test]
fn too_large_refused_even_with_disk_room_and_exact_fit_delivered() {
    let (_dir, spill) = temp_spill(1 << 20);
    let (d, batches) = builder(1000).build_on(&spill);
    let p = d.producer();
    p.try_enqueue(ev(0, 0, 600)).unwrap(); // memory
    let big = ev(0, 99, 1001);
    match p.try_enqueue(big.clone()) {
        Err(TryEnqueueError::TooLarge(back)) => assert_eq!(back, big),
        other => panic!("expected TooLarge, got {other:?}"),
    }
    // Exactly max_buffered_bytes: goes to disk (memory is not empty) and
    // comes back once memory is empty.
    p.try_enqueue(ev(0, 1, 1000)).unwrap();
    p.try_enqueue(ev(0, 2, 1000)).unwrap();
    p.try_enqueue(ev(0, 3, 10)).unwrap();
    assert_eq!(d.stats().spill.spilled, 3);
    assert_eq!(d.stats().rejected.too_large, 1);
    let (stats, got) = shutdown_collecting(d, batches);
    assert!(stats.peak_buffered_bytes <= 1000);
    assert_eq!(got, [(0, 0), (0, 1), (0, 2), (0, 3)]);
}

// ---------------------------------------------------------------------------
// Recovery order, live limits, checkpoints.

/// Records recovered at open are delivered before anything enqueued after.
#[test]
fn recovered_events_come_first() {
    let (_dir, spill) = temp_spill(1 << 20);
    let disk = crash_with_backlog(&spill, 100);
    let (d, batches) = builder(1000).build_on(&spill);
    let p = d.producer();
    enqueue_each(&p, 7, 0..50, 50);
    let (_, got) = shutdown_collecting(d, batches);
    let mut want = disk.clone();
    want.extend((0..50).map(|s| (7, s)));
    assert_eq!(got, want);
}

/// Lowering `max_buffered_bytes` while events wait on disk: once the
/// buffered bytes are under the new limit they stay under it (the reader
/// respects the new limit), and nothing is lost or reordered.
#[test]
fn set_limits_lowered_while_disk_backlog() {
    let (_dir, spill) = temp_spill(1 << 22);
    // One partition: the two handles below number their events as one
    // producer, so they need one order.
    let (d, batches) = builder(4000)
        .partitions(1)
        .max_batch_bytes(1000)
        .build_on(&spill);
    let (_mem, disk) = enqueue_tracking(&d, 0, 0..300, 100);
    assert_eq!(disk.len(), 260);
    let lowered = Limits {
        max_buffered_bytes: 500,
        max_batch_bytes: Some(250),
        ..d.limits()
    };
    d.set_limits(lowered).unwrap();
    let consumer = collector(batches, Duration::from_millis(1));
    let p = d.producer();
    let mut under = false;
    let mut seq = 300;
    let start = Instant::now();
    while d.stats().delivered < u64::from(seq) {
        let s = d.stats();
        if s.buffered_bytes <= 500 {
            under = true;
        } else {
            assert!(
                !under,
                "buffered_bytes {} over the lowered limit again",
                s.buffered_bytes
            );
        }
        if seq < 400 {
            // Keep producing: they queue behind the disk.
            if p.try_enqueue(ev(0, seq, 100)).is_ok() {
                seq += 1;
            }
        }
        assert!(start.elapsed() < Duration::from_secs(60), "{s:#?}");
        thread::sleep(Duration::from_micros(300));
    }
    assert!(under);
    let report = d.shutdown(Duration::from_secs(30)).unwrap();
    assert_identity(&report.stats);
    assert_eq!(consumer.join().unwrap(), seqs(0..seq));
}

/// Lowering the limit under the weight of events already on disk: they can
/// never come back into memory. The documented outcome is `undeliverable`;
/// whatever happens, nothing may hang and the books must balance.
#[test]
fn set_limits_below_disk_event_weight() {
    let (_dir, spill) = temp_spill(1 << 22);
    let (d, batches) = builder(4000).max_batch_bytes(1000).build_on(&spill);
    let (_mem, disk) = enqueue_tracking(&d, 0, 0..30, 300);
    assert!(!disk.is_empty());
    d.set_limits(Limits {
        max_buffered_bytes: 200,
        max_batch_bytes: Some(200),
        ..d.limits()
    })
    .unwrap();
    let consumer = collector(batches, Duration::ZERO);
    let started = Instant::now();
    let r = d.shutdown(Duration::from_secs(5));
    assert!(started.elapsed() < Duration::from_secs(8));
    let stats = final_stats(&r);
    assert_identity(&stats);
    let got = consumer.join().unwrap();
    eprintln!(
        "lowered under disk weight: delivered {} undeliverable {} backlog {}",
        got.len(),
        stats.spill.undeliverable,
        stats.spill.backlog
    );
    assert_eq!(
        got.len() as u64
            + stats.spill.undeliverable
            + stats.spill.backlog
            + r.as_ref().err().map_or(0, |e| e.undelivered.len() as u64),
        30
    );
}

/// `flush_and_wait` is a checkpoint for everything accepted before it,
/// events waiting on disk included.
#[test]
fn flush_and_wait_covers_disk_backlog() {
    let (_dir, spill) = temp_spill(1 << 22);
    let (d, batches) = builder(1000).build_on(&spill);
    let (_mem, disk) = enqueue_tracking(&d, 0, 0..300, 100);
    assert_eq!(disk.len(), 290);
    let consumer = collector(batches, Duration::from_millis(1));
    d.flush_and_wait(Duration::from_secs(30))
        .expect("checkpoint");
    let s = d.stats();
    assert_eq!(s.delivered, 300, "flush_and_wait returned with {s:#?}");
    assert_eq!(s.spill.backlog, 0);
    d.shutdown(Duration::from_secs(30)).unwrap();
    consumer.join().unwrap();
}

/// A dropped dispatcher's receiver, still holding a read-back batch, drops
/// it after the directory was reopened by another dispatcher: the stale
/// acknowledgement must not touch the new owner's directory.
#[test]
fn stale_batch_after_drop_does_not_ack_into_reopened_dir() {
    let (_dir, spill) = temp_spill(1 << 22);
    let (d, batches) = builder(500)
        .max_batch_bytes(500)
        .max_batch_items(5)
        .build_on(&spill);
    let (mem, disk) = enqueue_tracking(&d, 0, 0..300, 100);
    assert_eq!(mem.len(), 5);
    // Take the memory batch and a read-back batch; drop the first.
    let b0 = batches.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(ids(b0.iter()), mem);
    drop(b0);
    let stale = batches.recv_timeout(Duration::from_secs(5)).unwrap();
    let stale_ids = ids(stale.iter());
    assert_eq!(stale_ids, disk[..5].to_vec());
    // Let the old reader take a few more into memory, then "crash".
    thread::sleep(Duration::from_millis(50));
    drop(d);
    // The new owner; no consumer, small memory: most stays on disk.
    let opened = spill.open().expect("lock released");
    let recovered = opened.1.events;
    assert_eq!(
        recovered, 295,
        "everything after the dropped batch is unacknowledged"
    );
    let (d2, b2) = builder(500).spill(opened, Raw).build().unwrap();
    // The stale batch of the old dispatcher goes now, and its receiver too.
    drop(stale);
    drop(batches);
    thread::sleep(Duration::from_millis(100));
    // Crash the new owner too: nothing of it was acknowledged.
    drop(d2);
    drop(b2);
    let (rec, replayed, _) = drain_dir(&spill);
    assert_eq!(
        rec, 295,
        "the stale batch acknowledged into the reopened directory"
    );
    assert_eq!(replayed, disk.to_vec());
}

/// A custom codec that fails to decode some records: those are counted
/// undeliverable; everything else is delivered; nothing hangs.
#[test]
fn codec_decode_failures_are_undeliverable() {
    struct Picky;
    impl Codec<Vec<u8>> for Picky {
        fn encode(&self, item: &Vec<u8>, out: &mut Vec<u8>) {
            out.extend_from_slice(item);
        }
        fn decode(&self, bytes: &[u8]) -> Result<Vec<u8>, DecodeError> {
            let seq = u32::from_le_bytes(bytes[4..8].try_into().unwrap());
            if seq % 7 == 3 {
                Err(DecodeError::new("seq % 7 == 3"))
            } else {
                Ok(bytes.to_vec())
            }
        }
    }
    let (_dir, spill) = temp_spill(1 << 22);
    let (d, batches) = builder(1000)
        .spill(spill.open().unwrap(), Picky)
        .build()
        .unwrap();
    let (mem, disk) = enqueue_tracking(&d, 0, 0..100, 100);
    let consumer = collector(batches, Duration::ZERO);
    let r = d.shutdown(Duration::from_secs(10));
    let stats = final_stats(&r);
    assert_identity(&stats);
    let bad: Vec<Id> = disk.iter().copied().filter(|(_, s)| s % 7 == 3).collect();
    assert_eq!(stats.spill.undeliverable, bad.len() as u64, "{stats:#?}");
    let mut want: Vec<Id> = mem.clone();
    want.extend(disk.iter().filter(|(_, s)| s % 7 != 3));
    assert_eq!(consumer.join().unwrap(), want);
}

// ---------------------------------------------------------------------------
// SIGKILL in a child process.

const CHILD_ENV: &str = "SPILL_ATTACK_CHILD";

/// An id as the 8 bytes of a record.
fn id_bytes((pid, seq): Id) -> [u8; 8] {
    let mut b = [0u8; 8];
    b[..4].copy_from_slice(&pid.to_le_bytes());
    b[4..].copy_from_slice(&seq.to_le_bytes());
    b
}

/// Appends one 8-byte id record with a single `write` (no buffering), so a
/// record on file means the event's enqueue (or delivery) happened before.
fn record(f: &mut File, pid: u32, seq: u32) {
    f.write_all(&id_bytes((pid, seq))).unwrap();
}

fn read_records(path: &Path) -> Vec<Id> {
    let bytes = fs::read(path).unwrap_or_default();
    bytes
        .chunks_exact(8)
        .map(|c| {
            (
                u32::from_le_bytes(c[..4].try_into().unwrap()),
                u32::from_le_bytes(c[4..].try_into().unwrap()),
            )
        })
        .collect()
}

fn append_file(path: &Path) -> File {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap()
}

const SPILLED_FLAG: u32 = 0x8000_0000;

/// The spill directory of a child of the SIGKILL tests, in `dir`.
fn child_spill(dir: &Path) -> Spill {
    Spill::new(dir.join("spill"))
        .segment_bytes(16 * 1024)
        .max_disk_bytes(1 << 30)
}

/// A child's dispatcher: `mem` bytes of memory, batches of at most 8, on
/// its spill directory in `dir` (write-ahead when `wal`).
fn child_dispatcher(dir: &Path, wal: bool, mem: usize) -> (D, Batches<Vec<u8>>) {
    let spill = child_spill(dir).sync(SyncPolicy::Os).write_ahead(wal);
    builder(mem).max_batch_items(8).build_on(&spill)
}

/// Child mode of the SIGKILL tests: produce and consume until killed.
/// `wal:<dir>`: write-ahead, two producers, every Ok recorded in `ok`.
/// `overflow:<dir>`: overflow only, one producer; an Ok whose event went
/// to disk is recorded with `SPILLED_FLAG` in its producer id.
/// The consumer records every batch in `delivered` before dropping it.
#[test]
fn crash_child() {
    let Ok(arg) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (mode, dir) = arg.split_once(':').unwrap();
    let dir = PathBuf::from(dir);
    if let Some(m) = mode.strip_prefix("idle-") {
        idle_child(m == "wal", &dir);
        return;
    }
    let wal = mode == "wal";
    let (d, batches) = child_dispatcher(&dir, wal, if wal { 2000 } else { 1000 });
    let mut delivered = append_file(&dir.join("delivered"));
    let consumer = thread::spawn(move || {
        let mut rng = fastrand::Rng::with_seed(5);
        for batch in &batches {
            let mut buf = Vec::with_capacity(batch.len() * 8);
            for x in ids(batch.iter()) {
                buf.extend_from_slice(&id_bytes(x));
            }
            delivered.write_all(&buf).unwrap();
            drop(batch);
            if rng.u8(..) < 64 {
                thread::sleep(Duration::from_millis(1));
            }
        }
    });
    let d = &d;
    thread::scope(|s| {
        for pid in 0..if wal { 2 } else { 1 } {
            let p = d.producer();
            let dir = &dir;
            s.spawn(move || {
                let mut ok = append_file(&dir.join(format!("ok-{pid}")));
                let mut rng = fastrand::Rng::with_seed(u64::from(pid));
                for seq in 0u32.. {
                    let mut e = ev(pid, seq, rng.usize(8..=300));
                    loop {
                        let before = if wal { 0 } else { d.stats().spill.spilled };
                        match p.try_enqueue(e) {
                            Ok(()) => {
                                let spilled = !wal && d.stats().spill.spilled > before;
                                record(&mut ok, pid | if spilled { SPILLED_FLAG } else { 0 }, seq);
                                break;
                            }
                            Err(TryEnqueueError::Full(back)) => {
                                e = back;
                                thread::sleep(Duration::from_micros(200));
                            }
                            Err(other) => panic!("{other:?}"),
                        }
                    }
                }
            });
        }
    });
    consumer.join().unwrap();
}

/// Starts `crash_child` in `mode` on `dir` in a child process and waits
/// until its `progress` reaches `needed` (polled every 5 ms); fails if the
/// child exits first or is too slow (120 s).
fn start_child(mode: &str, dir: &Path, needed: usize, progress: impl Fn() -> usize) -> Child {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, format!("{mode}:{}", dir.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        let n = progress();
        if n >= needed {
            return child;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the child exited early: {status}");
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the child is too slow ({n} of {needed})"
        );
        thread::sleep(Duration::from_millis(5));
    }
}

fn sigkill(mut child: Child) {
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
}

/// Runs the child in `mode` until its `producers` recorded `min_ok`
/// accepted events between them, then SIGKILLs it.
fn run_and_kill(mode: &str, dir: &Path, producers: u32, min_ok: usize) {
    let child = start_child(mode, dir, min_ok, || {
        (0..producers)
            .map(|p| fs::metadata(dir.join(format!("ok-{p}"))).map_or(0, |m| m.len() as usize / 8))
            .sum()
    });
    sigkill(child);
}

/// What became of a killed child's events: those its consumer recorded as
/// delivered, and those a reopen of its directory replayed (checked for
/// duplicates and per-producer order).
struct AfterKill {
    delivered: HashSet<Id>,
    replayed: Vec<Id>,
}

fn after_kill(dir: &Path) -> AfterKill {
    let delivered = read_records(&dir.join("delivered")).into_iter().collect();
    let (_rec, replayed, _) = drain_dir(&child_spill(dir));
    assert_unique("replayed", &replayed);
    assert_per_producer_order("replayed", &replayed);
    AfterKill {
        delivered,
        replayed,
    }
}

impl AfterKill {
    /// Every one of `events` (`what` they are) was delivered before the
    /// kill or replayed after it.
    fn assert_none_lost(&self, round: usize, what: &str, events: &[Id]) {
        let rep = set(&self.replayed);
        let lost: Vec<&Id> = events
            .iter()
            .filter(|x| !self.delivered.contains(x) && !rep.contains(x))
            .collect();
        assert!(
            lost.is_empty(),
            "round {round}: {} of {} {what} events lost, e.g. {:?} ({} delivered, {} replayed)",
            lost.len(),
            events.len(),
            &lost[..lost.len().min(5)],
            self.delivered.len(),
            self.replayed.len()
        );
    }

    /// Prints how many replayed events had been delivered before the kill.
    fn print_dups(&self, mode: &str, round: usize, ok: usize) {
        let dups = self
            .replayed
            .iter()
            .filter(|x| self.delivered.contains(x))
            .count();
        eprintln!(
            "DUPS {mode} round {round}: {dups} of {} replayed, {} delivered, {ok} ok",
            self.replayed.len(),
            self.delivered.len(),
        );
    }
}

/// Write-ahead: every event whose `try_enqueue` returned Ok before the
/// SIGKILL is delivered, before the kill or after the reopen.
#[test]
fn sigkill_write_ahead_loses_nothing_accepted() {
    for round in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        run_and_kill("wal", dir.path(), 2, 3000 + round * 1500);
        let mut ok = read_records(&dir.path().join("ok-0"));
        ok.extend(read_records(&dir.path().join("ok-1")));
        let killed = after_kill(dir.path());
        killed.assert_none_lost(round, "accepted", &ok);
        // Duplicates are bounded by what was in memory at the kill.
        killed.print_dups("wal", round, ok.len());
    }
}

/// Overflow only: every event that went to disk (Ok, and counted spilled)
/// before the SIGKILL is delivered, before the kill or after the reopen.
#[test]
fn sigkill_overflow_loses_nothing_spilled() {
    for round in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        run_and_kill("overflow", dir.path(), 1, 3000 + round * 1500);
        let ok = read_records(&dir.path().join("ok-0"));
        let spilled: Vec<Id> = ok
            .iter()
            .filter(|(p, _)| p & SPILLED_FLAG != 0)
            .map(|&(p, s)| (p & !SPILLED_FLAG, s))
            .collect();
        assert!(
            spilled.len() > 100,
            "round {round}: the disk was hardly used ({})",
            spilled.len()
        );
        let killed = after_kill(dir.path());
        killed.assert_none_lost(round, "spilled", &spilled);
        killed.print_dups("overflow", round, ok.len());
        let all_ok: HashSet<Id> = ok.iter().map(|&(p, s)| (p & !SPILLED_FLAG, s)).collect();
        for x in &killed.replayed {
            assert!(
                all_ok.contains(x) || x.1 as usize >= ok.len(),
                "{x:?} replayed but never accepted"
            );
        }
    }
}

/// Child mode `idle-wal` / `idle-overflow`: 1000 events, all delivered and
/// their batches dropped, then `done` is written and the child idles until
/// it is killed.
fn idle_child(wal: bool, dir: &Path) {
    let (d, batches) = child_dispatcher(dir, wal, 1000);
    let p = d.producer();
    enqueue_each(&p, 0, 0..1000, 100);
    assert!(d.stats().spill.spilled >= 900);
    let mut n = 0;
    while n < 1000 {
        let b = batches.recv_timeout(Duration::from_secs(30)).unwrap();
        n += b.len();
        drop(b);
    }
    fs::write(dir.join("done"), b"1").unwrap();
    loop {
        thread::sleep(Duration::from_secs(1));
        let _keep = (&d, &batches);
    }
}

/// Everything delivered, every batch dropped, the process idle until the
/// acknowledgement of it all has reached the disk: then SIGKILL. Nothing
/// was in memory, so (at-least-once, "duplicates bounded by what was in
/// memory") a reopen should replay nothing.
///
/// The idle child acknowledges at its next periodic tick (50 ms) and
/// deletes the segments the acknowledgement covers, the last one too once
/// every record is acknowledged. So the test waits (generously: a slow
/// host may run the tick late) for the child's spill directory to hold no
/// segment, instead of a fixed pause; a child that never acknowledges
/// while idle fails that wait.
fn assert_idle_kill_replays_nothing(mode: &str) {
    let dir = tempfile::tempdir().unwrap();
    let child = start_child(mode, dir.path(), 1, || {
        usize::from(dir.path().join("done").exists())
    });
    // Polled by hand, not with `wait_for`: the child is killed either way.
    let spill_dir = child_spill(dir.path()).dir().to_path_buf();
    let start = Instant::now();
    while !segments(&spill_dir).is_empty() && start.elapsed() < Duration::from_secs(30) {
        thread::sleep(Duration::from_millis(5));
    }
    let left = segments(&spill_dir).len();
    let idle = start.elapsed();
    sigkill(child);
    assert_eq!(
        left, 0,
        "all 1000 delivered and dropped, yet {left} segments still on disk after {idle:?} idle"
    );
    let n = child_spill(dir.path()).open().unwrap().1.events;
    assert_eq!(
        n, 0,
        "all 1000 delivered and dropped, acknowledged on disk after {idle:?} idle, \
         SIGKILL: {n} records replayed"
    );
}

#[test]
fn sigkill_when_idle_replays_nothing_overflow() {
    assert_idle_kill_replays_nothing("idle-overflow");
}

#[test]
fn sigkill_when_idle_replays_nothing_write_ahead() {
    assert_idle_kill_replays_nothing("idle-wal");
}

/// Acknowledged segments are deleted while the dispatcher runs: after
/// everything was delivered and every batch dropped (the consumer still
/// waiting in `recv`), the disk tier shrinks to at most one segment.
#[test]
fn acknowledged_segments_are_deleted_while_running() {
    let (dir, spill) = temp_spill(1 << 22);
    let (d, batches) = builder(1000).build_on(&spill);
    let (_mem, disk) = enqueue_tracking(&d, 0, 0..500, 100);
    assert_eq!(disk.len(), 490);
    let peak_segs = segments(dir.path()).len();
    assert!(peak_segs >= 10, "{peak_segs}");
    let c = settling_collector(batches);
    quiesce(&d, &c);
    assert_at_most_one_segment_left(&d, dir.path(), peak_segs, "acknowledged");
    d.shutdown(Duration::from_secs(10)).unwrap();
    c.handle.join().unwrap();
}

#[test]
fn acknowledged_segments_are_deleted_while_running_sink() {
    let (dir, spill) = temp_spill(1 << 22);
    let written = Arc::new(AtomicU64::new(0));
    // The sink waits until everything is enqueued, so the disk is used.
    let open = Arc::new(AtomicBool::new(false));
    let (w, gate) = (Arc::clone(&written), Arc::clone(&open));
    let d = builder(1000)
        .spill(spill.open().unwrap(), Raw)
        .build_with_sink(sink::from_fn(
            move |b: &Batch<Vec<u8>>, _: &FlushContext| {
                while !gate.load(Ordering::SeqCst) {
                    thread::sleep(Duration::from_millis(1));
                }
                w.fetch_add(b.len() as u64, Ordering::SeqCst);
                Ok::<_, std::io::Error>(())
            },
        ))
        .unwrap();
    let p = d.producer();
    enqueue_each(&p, 0, 0..500, 100);
    assert!(d.stats().spill.spilled > 300);
    open.store(true, Ordering::SeqCst);
    let peak_segs = segments(dir.path()).len();
    wait_for("all written", Duration::from_secs(30), || {
        written.load(Ordering::SeqCst) == 500
    });
    assert_at_most_one_segment_left(&d, dir.path(), peak_segs, "written");
    d.shutdown(Duration::from_secs(10)).unwrap();
}

/// Soon (acknowledgements come every 50 ms; up to 10 s allowed on a loaded
/// machine), the disk tier in `dir` holds at most one segment (`peak_segs`
/// at its peak); `done`: what became of everything.
fn assert_at_most_one_segment_left(d: &D, dir: &Path, peak_segs: usize, done: &str) {
    let start = Instant::now();
    while (d.stats().spill.disk_bytes > 4096 || segments(dir).len() > 1)
        && start.elapsed() < Duration::from_secs(10)
    {
        thread::sleep(Duration::from_millis(20));
    }
    let s = d.stats();
    let segs = segments(dir).len();
    assert!(
        s.spill.disk_bytes <= 4096 && segs <= 1,
        "everything {done}, yet {segs} of {peak_segs} segments remain: {:#?}",
        s.spill
    );
}

/// A small disk budget is reused: as spilled events are delivered and
/// acknowledged, their segments are deleted and new events spill into the
/// room. Round after round, memory and disk are filled until an event is
/// refused, everything is received, and the disk must empty again; every
/// round must spill about as much as the budget holds.
///
/// (Rounds, not a race between a producer and a consumer: a consumer that
/// keeps up leaves memory free and nothing spills at all.)
#[test]
fn small_disk_budget_is_reused() {
    let (_dir, spill) = temp_spill(8192);
    let (d, batches) = builder(500).max_batch_items(5).build_on(&spill);
    let p = d.producer();
    let mut next = 0u32;
    let mut got = Vec::new();
    for round in 0..5 {
        let spilled_before = d.stats().spill.spilled;
        loop {
            match p.try_enqueue(ev(0, next, 100)) {
                Ok(()) => next += 1,
                Err(TryEnqueueError::Full(_)) => break,
                Err(other) => panic!("{other:?}"),
            }
            assert!(next < 100_000, "memory and disk never filled");
        }
        let s = d.stats();
        // 8 KiB hold about 74 records of 100 bytes (frames and headers).
        let spilled = s.spill.spilled - spilled_before;
        assert!(
            spilled >= 60,
            "round {round}: the disk took {spilled} records, so its budget was not reused: {:#?}",
            s.spill
        );
        while got.len() < next as usize {
            let batch = batches
                .recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|e| panic!("round {round}: {e:?} with {} of {next}", got.len()));
            got.extend(ids(batch.iter()));
        }
        wait_for(
            "the delivered records to leave the disk",
            Duration::from_secs(30),
            || d.stats().spill.disk_bytes == 0,
        );
    }
    assert_eq!(got, seqs(0..next));
    let report = d.shutdown(Duration::from_secs(30)).expect("clean shutdown");
    assert_identity(&report.stats);
    assert_eq!(report.stats.delivered, u64::from(next));
}

/// CPU time (utime + stime, in clock ticks) of this process's threads
/// named `comm`.
fn thread_cpu_ticks(comm: &str) -> Option<u64> {
    let mut total = None;
    for task in fs::read_dir("/proc/self/task").ok()? {
        let path = task.ok()?.path();
        let name = fs::read_to_string(path.join("comm")).unwrap_or_default();
        if name.trim_end() != comm {
            continue;
        }
        let stat = fs::read_to_string(path.join("stat")).ok()?;
        // Fields after the ")" of the command: state is field 3; utime 14, stime 15.
        let rest = &stat[stat.rfind(')')? + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        let t = f[11].parse::<u64>().ok()? + f[12].parse::<u64>().ok()?;
        total = Some(total.unwrap_or(0) + t);
    }
    total
}

/// "No busy waiting": the disk tier's worker sleeps while there is
/// nothing to read back, and while it waits for room in memory.
#[test]
fn spill_worker_does_not_spin() {
    let mut spins = Vec::new();
    for stalled in [false, true] {
        let (_dir, spill) = temp_spill(1 << 20);
        let name = if stalled { "spinroom" } else { "spinidle" };
        let (d, batches) = builder(1000).name(name).build_on(&spill);
        let comm = format!("{name}-spill");
        if stalled {
            // Memory full, backlog on disk, nobody receiving: the worker
            // waits for room.
            enqueue_tracking(&d, 0, 0..50, 100);
        }
        thread::sleep(Duration::from_millis(200));
        let Some(before) = thread_cpu_ticks(&comm) else {
            eprintln!("skipped: cannot read /proc/self/task");
            return;
        };
        thread::sleep(Duration::from_secs(1));
        let used = thread_cpu_ticks(&comm).unwrap() - before;
        // Clock ticks are 10 ms; a sleeping thread uses ~0 of 100.
        if used >= 20 {
            spins.push(format!(
                "{comm}: {used} of ~100 ticks of CPU in one second of {}",
                if stalled {
                    "waiting for room"
                } else {
                    "idleness"
                }
            ));
        }
        drop(d);
        drop(batches);
    }
    assert!(spins.is_empty(), "{spins:#?}");
}

/// Write-ahead: once a burst fills the disk budget, and everything is then
/// delivered, the dispatcher must accept events again (its disk holds
/// nothing unacknowledged, its memory is empty).
#[test]
fn write_ahead_accepts_again_after_a_full_disk_drained() {
    let (_dir, spill) = temp_spill(8192);
    let spill = spill.write_ahead(true);
    let (d, batches) = builder(2000).build_on(&spill);
    let p = d.producer();
    let mut seq = 0;
    while p.try_enqueue(ev(0, seq, 100)).is_ok() {
        seq += 1;
        assert!(seq < 10_000);
    }
    let c = settling_collector(batches);
    quiesce(&d, &c);
    assert_eq!(d.stats().delivered, u64::from(seq));
    // Everything delivered, every batch dropped, memory empty.
    let start = Instant::now();
    enqueue_when_room(&p, ev(0, seq, 100), || {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "refused for 5 s with nothing in memory: {:#?}",
            d.stats()
        );
        thread::sleep(Duration::from_millis(10));
    });
    assert_eq!(quiesce_and_shutdown(d, c).len() as u32, seq + 1);
}

/// Every receiver dropped: shutdown does not wait for its deadline; the
/// in-memory events come back, the disk ones stay for the next open.
#[test]
fn shutdown_without_receivers_returns_early_and_keeps_disk() {
    let (_dir, spill) = temp_spill(1 << 20);
    let (d, batches) = builder(1000).build_on(&spill);
    let (mem, disk) = enqueue_tracking(&d, 0, 0..100, 100);
    drop(batches);
    let err = shutdown_fails_within(
        d,
        Duration::from_secs(20),
        Duration::from_secs(5),
        "no receiver",
    );
    assert_eq!(ids(err.undelivered.iter()), mem);
    assert_eq!(err.report.stats.spill.backlog, disk.len() as u64);
    let (_, replayed, _) = drain_dir(&spill);
    assert_eq!(replayed, disk);
}

/// Under Block with disk room, an event that does not fit in memory goes
/// to disk at once instead of waiting for the timeout.
#[test]
fn block_with_disk_room_does_not_wait() {
    let (_dir, spill) = temp_spill(1 << 20);
    let (d, batches) = builder(1000)
        .policy(Policy::Block {
            timeout: Duration::from_secs(2),
        })
        .build_on(&spill);
    let p = d.producer();
    let started = Instant::now();
    for seq in 0..60 {
        p.enqueue(ev(0, seq, 100)).unwrap();
    }
    // Waiting the timeout for each of the 50 spilled events would take 100 s.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(d.stats().spill.spilled, 50);
    let c = settling_collector(batches);
    assert_eq!(quiesce_and_shutdown(d, c), seqs(0..60));
}

/// Empty events (weight 0, charged one byte) through the disk tier.
#[test]
fn empty_events_round_trip_through_disk() {
    let (_dir, spill) = temp_spill(1 << 20);
    let (d, batches) = Dispatcher::<Vec<u8>>::builder()
        .max_buffered_bytes(10)
        .interval(Duration::from_millis(2))
        .build_on(&spill);
    let p = d.producer();
    for _ in 0..50 {
        p.try_enqueue(Vec::new()).unwrap();
    }
    assert_eq!(d.stats().spill.spilled, 40);
    let got = thread::spawn(move || {
        batches
            .iter()
            .map(|b| {
                assert!(b.iter().all(Vec::is_empty));
                b.len()
            })
            .sum::<usize>()
    });
    let report = d.shutdown(Duration::from_secs(10)).unwrap();
    assert_identity(&report.stats);
    assert_eq!(got.join().unwrap(), 50);
}
