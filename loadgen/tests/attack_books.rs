//! Attacks on the consumer's drain bookkeeping (`run_consumer` / `spawn_consumer` with
//! `ConsumerControl::lift`, `stop`, and a shared latency recorder), written from the
//! contract only: every delivered event counted once, its latency recorded exactly once
//! with the receipt instant, refreshes never hang, `stop` returns promptly, and all of it
//! the same for every `BatchSource`.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use dispatcher::Dispatcher;
use hdrhistogram::Histogram;
use hdrhistogram::sync::{Recorder, SyncHistogram};
use loadgen::{
    BatchSource, Clock, ConsumerControl, ConsumerCounters, ConsumerSim, ConsumerTotals,
    DispatcherTarget, Event, Offer, Stall, Target, channel, crossbeam, run_consumer,
    spawn_consumer, tokio_mpsc,
};

/// One source under attack: where to offer, the source, and how to close it (after the
/// target handed out has been dropped).
trait Scenario {
    fn run<S: BatchSource + Send + 'static>(
        &mut self,
        kind: &str,
        target: Arc<dyn Target>,
        source: S,
        close: Box<dyn FnOnce() + Send>,
    );
}

/// Runs `sc` against every source kind: the dispatcher and the three reference channels.
fn each_source(capacity: usize, max_batch_items: usize, sc: &mut impl Scenario) {
    let (dispatcher, batches) = Dispatcher::<Event>::builder()
        .max_buffered_bytes(1 << 30)
        .max_batch_items(max_batch_items)
        .interval(Duration::from_millis(2))
        .build()
        .unwrap();
    let target: Arc<dyn Target> = Arc::new(DispatcherTarget::new(dispatcher.producer()));
    sc.run(
        "dispatcher",
        target,
        batches,
        Box::new(move || drop(dispatcher)),
    );
    let (t, s) = channel(capacity, max_batch_items);
    sc.run("channel", Arc::new(t), s, Box::new(|| {}));
    let (t, s) = crossbeam(capacity, max_batch_items);
    sc.run("crossbeam", Arc::new(t), s, Box::new(|| {}));
    let (t, s) = tokio_mpsc(capacity, max_batch_items);
    sc.run("tokio", Arc::new(t), s, Box::new(|| {}));
}

/// A consumer spawned by [`start`]: its control, its counters and its thread.
struct Started {
    control: Arc<ConsumerControl>,
    counters: Arc<ConsumerCounters>,
    handle: JoinHandle<ConsumerTotals>,
}

/// Spawns a consumer named `name` on `source` with `sim` (its work lifted from the start
/// when `lift`), recording into `recorder`.
fn start<S: BatchSource + Send + 'static>(
    name: &str,
    source: S,
    sim: ConsumerSim,
    lift: bool,
    clock: Clock,
    recorder: Option<Recorder<u64>>,
) -> Started {
    let control = Arc::new(ConsumerControl::new(sim));
    if lift {
        control.lift();
    }
    let counters = Arc::new(ConsumerCounters::new());
    let handle = spawn_consumer(
        name,
        source,
        Arc::clone(&control),
        Arc::clone(&counters),
        clock,
        recorder,
    )
    .unwrap();
    Started {
        control,
        counters,
        handle,
    }
}

/// Offers `n` one-byte events intended at 0, then lets go of `target` and closes the
/// source.
fn tiny_backlog(target: Arc<dyn Target>, close: Box<dyn FnOnce() + Send>, n: u64) {
    for i in 0..n {
        offer(&*target, Event::new(vec![1], 0, 0, i));
    }
    drop(target);
    close();
}

fn offer(target: &dyn Target, event: Event) {
    assert!(
        matches!(target.offer(event), Offer::Accepted),
        "offer refused"
    );
}

/// A clock whose origin is 1000 s ago, so intended times far apart give latencies in
/// clearly separate ranges.
fn old_clock() -> Clock {
    Clock::starting_at(
        Instant::now()
            .checked_sub(Duration::from_secs(1000))
            .expect("machine up for 1000 s"),
    )
}

const CLASSES: u64 = 10;

/// Event `i`'s intended time: class `i % CLASSES` is `class * 100 s`; class 9 is in the
/// future (u64::MAX) so its latency saturates at 0.
fn intended(i: u64) -> u64 {
    match i % CLASSES {
        9 => u64::MAX,
        c => c * 100_000_000_000,
    }
}

/// Checks that `h` holds exactly `n` samples, split by class as `intended` lays them out,
/// each within what a receipt between `from_ns` and `to_ns` gives.
fn check_classes(h: &Histogram<u64>, n: u64, from_ns: u64, to_ns: u64, what: &str) {
    assert_eq!(h.len(), n, "{what}: histogram count vs delivered");
    for c in 0..CLASSES {
        let expect = (0..n).filter(|i| i % CLASSES == c).count() as u64;
        let (lo, hi) = if c == 9 {
            (0, 0)
        } else {
            let at = c * 100_000_000_000;
            ((from_ns - at) / 1000, (to_ns - at) / 1000)
        };
        // Widen by the histogram's resolution at that magnitude.
        let got = h.count_between(h.lowest_equivalent(lo), h.highest_equivalent(hi));
        if got != expect {
            let mut dump = String::new();
            for v in h.iter_recorded() {
                dump += &format!(" {}x{}", v.value_iterated_to(), v.count_at_value());
            }
            panic!(
                "{what}: class {c} latencies in [{lo}, {hi}] us: {got} != {expect}; recorded:{dump}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------

/// Every source, pre-filled, consumer lifted from the start (the whole run is a drain):
/// counts, and every latency recorded exactly once with the right value (incl. saturating
/// at 0 for intended times in the future).
struct LiftedDrainExact {
    n: u64,
    payload: usize,
    lift_before: bool,
}

impl Scenario for LiftedDrainExact {
    fn run<S: BatchSource + Send + 'static>(
        &mut self,
        kind: &str,
        target: Arc<dyn Target>,
        source: S,
        close: Box<dyn FnOnce() + Send>,
    ) {
        let clock = old_clock();
        let from_ns = clock.now_ns();
        for i in 0..self.n {
            offer(
                &*target,
                Event::new(vec![1; self.payload], intended(i), 0, i),
            );
        }
        drop(target);
        close();
        let mut histogram: SyncHistogram<u64> = wide();
        let control = Arc::new(ConsumerControl::new(ConsumerSim {
            delay_per_batch: Duration::from_micros(300),
            ..ConsumerSim::default()
        }));
        if self.lift_before {
            control.lift();
        }
        let counters = Arc::new(ConsumerCounters::new());
        let handle = spawn_consumer(
            "atk",
            source,
            Arc::clone(&control),
            Arc::clone(&counters),
            clock,
            Some(histogram.recorder()),
        )
        .unwrap();
        if !self.lift_before {
            thread::sleep(Duration::from_millis(20));
            control.lift();
        }
        let totals = handle.join().unwrap();
        let to_ns = clock.now_ns();
        let what = format!("{kind} n={} payload={}", self.n, self.payload);
        assert_eq!(totals.delivered, self.n, "{what}: delivered");
        // The dispatcher charges every event at least 1 byte (its documented minimum).
        let each = if kind == "dispatcher" {
            self.payload.max(1)
        } else {
            self.payload
        };
        assert_eq!(
            totals.delivered_bytes,
            self.n * each as u64,
            "{what}: bytes"
        );
        assert_eq!(counters.snapshot(), totals, "{what}: counters vs totals");
        // The contract: after join, refresh() sees every sample.
        histogram.refresh();
        check_classes(&histogram, self.n, from_ns, to_ns, &what);
        let last = control.last_delivery().expect("delivered");
        assert!(last <= Instant::now());
    }
}

#[test]
fn lifted_drain_records_every_event_once_with_its_receipt_latency_every_source() {
    each_source(
        50_000,
        64,
        &mut LiftedDrainExact {
            n: 50_000,
            payload: 10,
            lift_before: true,
        },
    );
}

#[test]
fn lift_mid_run_records_every_event_once_every_source() {
    each_source(
        30_000,
        16,
        &mut LiftedDrainExact {
            n: 30_000,
            payload: 3,
            lift_before: false,
        },
    );
}

#[test]
fn zero_length_payloads_in_a_lifted_drain_every_source() {
    each_source(
        20_000,
        100,
        &mut LiftedDrainExact {
            n: 20_000,
            payload: 0,
            lift_before: true,
        },
    );
}

/// Many tiny batches (max_batch_items 1), more of them than any hand-off queue might hold.
#[test]
fn single_event_batches_in_a_lifted_drain_every_source() {
    each_source(
        150_000,
        1,
        &mut LiftedDrainExact {
            n: 150_000,
            payload: 1,
            lift_before: true,
        },
    );
}

// ---------------------------------------------------------------------------------------

/// A recorder with tiny bounds: values past the highest trackable saturate; the count must
/// still equal delivered.
#[test]
fn a_small_bounded_recorder_saturates_but_counts_every_event() {
    let (target, batches) = crossbeam(10_000, 32);
    let clock = old_clock();
    for i in 0..10_000 {
        offer(&target, Event::new(vec![0; 4], intended(i), 0, i));
    }
    drop(target);
    let mut histogram: SyncHistogram<u64> = Histogram::new_with_bounds(1, 2, 0).unwrap().into();
    let control = ConsumerControl::new(ConsumerSim::default());
    control.lift();
    let counters = ConsumerCounters::new();
    let totals = run_consumer(
        batches,
        &control,
        &counters,
        clock,
        Some(histogram.recorder()),
    );
    histogram.refresh();
    assert_eq!(totals.delivered, 10_000);
    assert_eq!(histogram.len(), 10_000);
    assert_eq!(
        histogram.count_between(0, 0),
        1_000,
        "the future class saturates at 0"
    );
}

// ---------------------------------------------------------------------------------------

/// run_consumer on a thread with no name (so no `<name>-books` to derive).
#[test]
fn run_consumer_on_an_unnamed_thread_lifted() {
    let h = thread::spawn(|| {
        assert!(thread::current().name().is_none());
        let (target, batches) = channel(5_000, 7);
        for i in 0..5_000 {
            offer(&target, Event::new(vec![0; 9], 0, 0, i));
        }
        drop(target);
        let mut histogram: SyncHistogram<u64> = wide();
        let control = ConsumerControl::new(ConsumerSim::default());
        control.lift();
        let counters = ConsumerCounters::new();
        let totals = run_consumer(
            batches,
            &control,
            &counters,
            Clock::new(),
            Some(histogram.recorder()),
        );
        histogram.refresh();
        (totals.delivered, histogram.len())
    });
    assert_eq!(h.join().unwrap(), (5_000, 5_000));
}

/// The helper is named `<consumer thread name>-books` (seen in /proc on Linux).
#[cfg(target_os = "linux")]
#[test]
fn the_bookkeeper_thread_is_named_after_the_consumer() {
    let (target, batches) = channel(100_000, 64);
    for i in 0..100_000 {
        offer(&target, Event::new(vec![0; 9], 0, 0, i));
    }
    let mut histogram: SyncHistogram<u64> = wide();
    let Started {
        control: _,
        counters: _,
        handle,
    } = start(
        "zq7",
        batches,
        ConsumerSim::default(),
        true,
        Clock::new(),
        Some(histogram.recorder()),
    );
    let mut seen = false;
    let began = Instant::now();
    while !seen && began.elapsed() < Duration::from_secs(5) {
        for entry in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
            let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
            if comm.trim() == "zq7-books" {
                seen = true;
            }
        }
    }
    drop(target);
    assert_eq!(handle.join().unwrap().delivered, 100_000);
    histogram.refresh();
    assert_eq!(histogram.len(), 100_000);
    assert!(
        seen,
        "no thread named zq7-books while the lifted consumer ran"
    );
}

// ---------------------------------------------------------------------------------------

/// Latency is measured from the receipt of the batch, not from the end of its (long)
/// simulated work, even when the work is lifted halfway.
struct LiftMidLongDelay;

impl Scenario for LiftMidLongDelay {
    fn run<S: BatchSource + Send + 'static>(
        &mut self,
        kind: &str,
        target: Arc<dyn Target>,
        source: S,
        close: Box<dyn FnOnce() + Send>,
    ) {
        let clock = Clock::new();
        let mut histogram: SyncHistogram<u64> = wide();
        let Started {
            control,
            counters,
            handle,
        } = start(
            "long",
            source,
            ConsumerSim {
                delay_per_batch: Duration::from_secs(20),
                ..ConsumerSim::default()
            },
            false,
            clock,
            Some(histogram.recorder()),
        );
        // Intended now; the first batch is taken within a few ms (interval 2 ms).
        for i in 0..8 {
            offer(&*target, Event::new(vec![0; 8], clock.now_ns(), 0, i));
        }
        while counters.snapshot().delivered == 0 {
            thread::sleep(Duration::from_millis(1));
        }
        // The consumer now sits in its 20 s delay: refreshes must not hang meanwhile.
        let began = Instant::now();
        histogram.refresh();
        assert!(
            began.elapsed() < Duration::from_secs(1),
            "{kind}: refresh during a long delay took {:?}",
            began.elapsed()
        );
        thread::sleep(Duration::from_millis(400));
        // More events while still busy; then lift.
        for i in 8..16 {
            offer(&*target, Event::new(vec![0; 8], clock.now_ns(), 0, i));
        }
        let lifted_at = Instant::now();
        control.lift();
        drop(target);
        close();
        let totals = handle.join().unwrap();
        let took = lifted_at.elapsed();
        assert!(
            took < Duration::from_secs(2),
            "{kind}: lift did not cut the delay short: {took:?}"
        );
        assert_eq!(totals.delivered, 16, "{kind}");
        histogram.refresh();
        assert_eq!(histogram.len(), 16, "{kind}");
        // Nothing was received 400 ms after it was intended except if the receipt
        // instant were taken after the delay: the first batch must be well below 400 ms.
        let early = histogram.count_between(0, 300_000);
        assert!(
            early >= 1,
            "{kind}: no latency under 300 ms: receipt time taken after the delay? max {} us",
            histogram.max()
        );
    }
}

#[test]
fn lifting_in_the_middle_of_a_long_batch_delay_every_source() {
    each_source(1_000, 4, &mut LiftMidLongDelay);
}

// ---------------------------------------------------------------------------------------

/// A refresh thread hammering refresh_timeout while producers feed and the consumer is
/// idle, busy, lifted and finishing: no refresh may hang (each must finish well before its
/// timeout), and in the end the histogram holds exactly the delivered events.
struct RefreshHammer;

impl Scenario for RefreshHammer {
    fn run<S: BatchSource + Send + 'static>(
        &mut self,
        kind: &str,
        target: Arc<dyn Target>,
        source: S,
        close: Box<dyn FnOnce() + Send>,
    ) {
        let histogram: SyncHistogram<u64> = wide();
        let recorder = histogram.recorder();
        let Started {
            control,
            counters: _,
            handle,
        } = start(
            "ham",
            source,
            ConsumerSim {
                delay_per_batch: Duration::from_millis(3),
                stall: Some(Stall {
                    every: Duration::from_millis(150),
                    duration: Duration::from_millis(40),
                }),
                ..ConsumerSim::default()
            },
            false,
            Clock::new(),
            Some(recorder),
        );
        let done = Arc::new(AtomicBool::new(false));
        let hammer = {
            let done = Arc::clone(&done);
            thread::spawn(move || {
                let mut histogram = histogram;
                let mut worst = Duration::ZERO;
                let mut n = 0u64;
                while !done.load(Ordering::Acquire) {
                    let began = Instant::now();
                    histogram.refresh_timeout(Duration::from_secs(3));
                    worst = worst.max(began.elapsed());
                    n += 1;
                }
                (histogram, worst, n)
            })
        };
        let mut sent = 0u64;
        let feed_until = Instant::now() + Duration::from_millis(500);
        while Instant::now() < feed_until {
            for _ in 0..200 {
                if matches!(
                    target.offer(Event::new(vec![0; 24], 0, 1, sent)),
                    Offer::Accepted
                ) {
                    sent += 1;
                }
            }
            thread::sleep(Duration::from_millis(1));
        }
        // A backlog, then the drain.
        for _ in 0..50_000 {
            if matches!(
                target.offer(Event::new(vec![0; 24], 0, 1, sent)),
                Offer::Accepted
            ) {
                sent += 1;
            }
        }
        control.lift();
        drop(target);
        close();
        let totals = handle.join().unwrap();
        done.store(true, Ordering::Release);
        let (mut histogram, worst, n) = hammer.join().unwrap();
        histogram.refresh();
        assert_eq!(totals.delivered, sent, "{kind}: delivered vs sent");
        assert_eq!(histogram.len(), sent, "{kind}: samples vs delivered");
        assert!(
            worst < Duration::from_secs(1),
            "{kind}: a refresh took {worst:?} ({n} refreshes)"
        );
    }
}

#[test]
fn a_refresh_hammer_never_hangs_and_misses_nothing_every_source() {
    each_source(60_000, 128, &mut RefreshHammer);
}

// ---------------------------------------------------------------------------------------

/// Randomized multi-producer runs with several consumers sharing counters: per-event ids
/// checked against an independent record (an origin tally is not used; ids are collected
/// by a wrapping source).
struct Recording<S> {
    inner: S,
    seen: Arc<std::sync::Mutex<HashMap<(u32, u64), u32>>>,
}

impl<S: BatchSource> BatchSource for Recording<S> {
    type Batch<'a>
        = S::Batch<'a>
    where
        Self: 'a;

    fn recv_batch(&mut self, timeout: Duration) -> Result<Self::Batch<'_>, loadgen::SourceError> {
        let batch = self.inner.recv_batch(timeout)?;
        let mut seen = self.seen.lock().unwrap();
        for e in batch.iter() {
            *seen.entry((e.producer(), e.seq())).or_default() += 1;
        }
        Ok(batch)
    }

    fn try_recv_batch(&mut self) -> Result<Self::Batch<'_>, loadgen::SourceError> {
        let batch = self.inner.try_recv_batch()?;
        let mut seen = self.seen.lock().unwrap();
        for e in batch.iter() {
            *seen.entry((e.producer(), e.seq())).or_default() += 1;
        }
        Ok(batch)
    }
}

struct RandomRun {
    seed: u64,
}

impl Scenario for RandomRun {
    fn run<S: BatchSource + Send + 'static>(
        &mut self,
        kind: &str,
        target: Arc<dyn Target>,
        source: S,
        close: Box<dyn FnOnce() + Send>,
    ) {
        let mut rng = fastrand_lite(self.seed);
        let seen = Arc::new(std::sync::Mutex::new(HashMap::new()));
        let source = Recording {
            inner: source,
            seen: Arc::clone(&seen),
        };
        let mut histogram: SyncHistogram<u64> = wide();
        let Started {
            control,
            counters: _,
            handle,
        } = start(
            "rnd",
            source,
            ConsumerSim {
                delay_per_batch: Duration::from_micros(rng() % 2_000),
                cost_per_kib: Duration::from_micros(rng() % 20),
                jitter: Duration::from_micros(rng() % 500),
                ..ConsumerSim::default()
            },
            false,
            Clock::new(),
            Some(histogram.recorder()),
        );
        let producers: Vec<_> = (0..3u32)
            .map(|p| {
                let target = Arc::clone(&target);
                let n = 5_000 + rng() % 5_000;
                let len = (rng() % 64) as usize;
                thread::spawn(move || {
                    let mut accepted = Vec::new();
                    for seq in 0..n {
                        if let Offer::Accepted = target.offer(Event::new(vec![0; len], 0, p, seq)) {
                            accepted.push(seq);
                        }
                        if seq % 512 == 0 {
                            thread::yield_now();
                        }
                    }
                    (p, accepted)
                })
            })
            .collect();
        let lift_after = Duration::from_millis(rng() % 300);
        thread::sleep(lift_after);
        control.lift();
        let mut accepted = Vec::new();
        for p in producers {
            accepted.push(p.join().unwrap());
        }
        drop(target);
        close();
        let totals = handle.join().unwrap();
        histogram.refresh();
        let total: u64 = accepted.iter().map(|(_, a)| a.len() as u64).sum();
        let what = format!("{kind} seed {}", self.seed);
        assert_eq!(totals.delivered, total, "{what}: delivered vs accepted");
        assert_eq!(histogram.len(), total, "{what}: samples vs delivered");
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len() as u64, total, "{what}: distinct ids");
        for (p, acc) in &accepted {
            for seq in acc {
                assert_eq!(seen.get(&(*p, *seq)), Some(&1), "{what}: id ({p},{seq})");
            }
        }
        self.seed += 1;
    }
}

fn fastrand_lite(seed: u64) -> impl FnMut() -> u64 {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    }
}

#[test]
fn randomized_multi_producer_runs_every_event_once_every_source() {
    let mut sc = RandomRun { seed: 1 };
    for _ in 0..3 {
        each_source(2_000, 1 + (sc.seed as usize * 37) % 200, &mut sc);
    }
}

/// Note: `Histogram::new(3)` saturates `saturating_record` at 2 (its initial highest
/// trackable value), so the checks here use explicit wide bounds.
fn wide() -> SyncHistogram<u64> {
    Histogram::new_with_bounds(1, 10_000_000_000, 3)
        .unwrap()
        .into()
}

// ---------------------------------------------------------------------------------------

/// stop() while the lifted consumer has already seen its source close and waits for a long
/// bookkeeping backlog: the wait is cut to the latencies still to record (cheap; the frees
/// go to a thread of their own), so the join returns, and every delivered event's latency
/// is in the histogram at the first refresh after it.
struct StopWhileFinishing {
    report: Vec<String>,
    failures: Vec<String>,
}

impl Scenario for StopWhileFinishing {
    fn run<S: BatchSource + Send + 'static>(
        &mut self,
        kind: &str,
        target: Arc<dyn Target>,
        source: S,
        close: Box<dyn FnOnce() + Send>,
    ) {
        const N: u64 = 4_000_000;
        tiny_backlog(target, close, N);
        let mut histogram = wide();
        let began = Instant::now();
        let Started {
            control,
            counters,
            handle,
        } = start(
            "fin",
            source,
            ConsumerSim::default(),
            true,
            Clock::new(),
            Some(histogram.recorder()),
        );
        // Every batch is handed over within a few ms (huge batches, nothing to do per
        // batch); the bookkeeping (4M records and frees) takes far longer.
        while counters.snapshot().delivered < N && began.elapsed() < Duration::from_secs(10) {
            thread::sleep(Duration::from_micros(200));
        }
        let all_handed = began.elapsed();
        thread::sleep(Duration::from_millis(2));
        let stopped = Instant::now();
        control.stop();
        let totals = handle.join().unwrap();
        let took = stopped.elapsed();
        self.report.push(format!(
            "{kind}: all {N} counted after {all_handed:?}; join took {took:?} after stop \
             (finished at +{:?})",
            began.elapsed()
        ));
        assert_eq!(totals.delivered, N, "{kind}");
        // The recorder was let go by the join: one refresh collects everything.
        histogram.refresh_timeout(Duration::from_secs(10));
        assert_eq!(histogram.len(), N, "{kind}: samples at the first refresh");
        if took >= Duration::from_secs(10) {
            self.failures.push(format!(
                "{kind}: a stopped consumer waited {took:?} for its bookkeeping"
            ));
        }
    }
}

#[test]
fn stop_while_the_consumer_waits_for_its_bookkeeping_still_records_every_latency_every_source() {
    let mut sc = StopWhileFinishing {
        report: Vec::new(),
        failures: Vec::new(),
    };
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        each_source(4_000_000, 1_000_000, &mut sc);
    }));
    eprintln!("{}", sc.report.join("\n"));
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
    assert!(sc.failures.is_empty(), "{}", sc.failures.join("\n"));
}

// ---------------------------------------------------------------------------------------

/// last_delivery() is when the last batch was counted, before its bookkeeping: with a long
/// bookkeeping backlog it lies well before the join, and no later than the moment the
/// counters showed every event; after the (unstopped) join every sample is in.
struct LastDeliveryBeforeBooks;

impl Scenario for LastDeliveryBeforeBooks {
    fn run<S: BatchSource + Send + 'static>(
        &mut self,
        kind: &str,
        target: Arc<dyn Target>,
        source: S,
        close: Box<dyn FnOnce() + Send>,
    ) {
        const N: u64 = 1_000_000;
        tiny_backlog(target, close, N);
        let mut histogram = wide();
        let Started {
            control,
            counters,
            handle,
        } = start(
            "ld",
            source,
            ConsumerSim::default(),
            true,
            Clock::new(),
            Some(histogram.recorder()),
        );
        while counters.snapshot().delivered < N {
            thread::yield_now();
        }
        let seen_all = Instant::now();
        let totals = handle.join().unwrap();
        let joined = Instant::now();
        let last = control.last_delivery().expect("delivered");
        // The instant is noted before the counters are bumped.
        assert!(
            last <= seen_all,
            "{kind}: last delivery {:?} after the counters showed all",
            last - seen_all
        );
        assert!(last <= joined);
        assert_eq!(totals.delivered, N);
        histogram.refresh();
        assert_eq!(histogram.len(), N, "{kind}: after join, every sample");
    }
}

#[test]
fn last_delivery_precedes_the_bookkeeping_and_join_waits_for_it_every_source() {
    each_source(1_000_000, 250_000, &mut LastDeliveryBeforeBooks);
}
