//! Attacks on the dispatcher's contract, as a demanding user would make
//! them: each test states the guarantee it checks. Every scenario runs under
//! a watchdog, so a deadlock or a lost wake-up fails the test (naming what
//! was stuck) instead of hanging the suite.
//!
//! Contract breaks found (these tests fail until fixed):
//!
//! - `a_panicking_on_evict_still_receives_every_evicted_event`: a panic in
//!   `on_evict` drops the other events of the same eviction unseen.
//! - `a_panicking_on_reject_still_counts_the_refusal`: a panic in
//!   `on_reject` leaves the `can_add` refusal out of `rejected.refused`.
//! - `shutdown_past_its_deadline_with_a_batch_stuck_in_the_sink_is_not_ok`:
//!   shutdown answers `Ok` although its deadline passed with an event
//!   undelivered in a sink call.
//! - `overlapping_set_limits_leave_one_consistent_set_of_limits`: two
//!   overlapping `set_limits` calls can leave the byte budget of one and the
//!   partitions' limits (what `limits()` reports) of the other.
//! - `async_driver::*`: an async driver dropped with two writes in flight
//!   hands them back newest first; a driver dropped after shutdown or stop
//!   loses the batch it was writing; an `AsyncSink::write` that panics
//!   before returning its future kills the driver.
//!
//! The other tests pass and guard the rest of the contract under load:
//! randomized hammers (pull, sink, async; panicking hooks and weights),
//! wake-ups with no timer to hide a lost notification, no busy waiting in
//! any kind of wait, the last receiver leaving while producers wait,
//! extreme sizes, and `build()` refusing sink settings.
//!
//! `ATTACK_SEED=<u64>` replays one round of a hammer.

#![allow(missing_docs)]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use dispatcher::sink::{self, FlushContext};
use dispatcher::{Batch, Dispatcher, Policy, Stats, TryEnqueueError, Weight};

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// A test event: the producer handle that made it, its sequence number on
/// that handle, and the weight admission charges (0 is charged as 1).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Ev {
    handle: u32,
    seq: u32,
    weight: usize,
}

impl Weight for Ev {
    fn weight(&self) -> usize {
        self.weight
    }
}

fn ev(handle: u32, seq: u32, weight: usize) -> Ev {
    Ev {
        handle,
        seq,
        weight,
    }
}

fn seqs(events: &[Ev]) -> Vec<u32> {
    events.iter().map(|e| e.seq).collect()
}

/// Long enough that time never cuts a batch during a test.
const LONG: Duration = Duration::from_secs(3600);

/// How long any scenario may take before the watchdog calls it stuck.
const WATCHDOG: Duration = Duration::from_secs(20);

/// What a scenario is doing now, for the watchdog's message.
#[derive(Clone, Default)]
struct Progress(Arc<Mutex<String>>);

impl Progress {
    fn set(&self, what: impl Into<String>) {
        *self.0.lock().unwrap() = what.into();
    }

    fn get(&self) -> String {
        self.0.lock().unwrap().clone()
    }
}

/// Runs `body` on its own thread; fails if it does not finish within
/// [`WATCHDOG`], printing what it was doing; resumes its panic if it panicked.
fn watchdog<R: Send + 'static>(name: &str, body: impl FnOnce(Progress) -> R + Send + 'static) -> R {
    let progress = Progress::default();
    let (tx, rx) = mpsc::sync_channel(1);
    let seen = progress.clone();
    let handle = thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let _ = tx.send(body(seen));
        })
        .unwrap();
    match rx.recv_timeout(WATCHDOG) {
        Ok(value) => {
            let _ = handle.join();
            value
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => match handle.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => panic!("{name}: ended without a result"),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => panic!(
            "{name}: not finished within {WATCHDOG:?} (deadlock or lost wake-up?); stuck at: {}",
            progress.get()
        ),
    }
}

/// Polls `cond` until it holds; fails after 10 s.
fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "{what}: not within 10 s");
        thread::sleep(Duration::from_millis(1));
    }
}

fn assert_balanced(stats: &Stats) {
    assert_eq!(
        stats.accepted,
        stats.delivered
            + stats.dropped
            + stats.returned
            + stats.failed
            + stats.buffered_items as u64,
        "accepted != delivered + dropped + returned + failed + buffered: {stats:?}"
    );
}

/// A gate a blocking sink waits at until the test opens it.
#[derive(Default)]
struct Gate {
    open: Mutex<bool>,
    changed: std::sync::Condvar,
}

impl Gate {
    fn wait(&self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut open = self.open.lock().unwrap();
        while !*open && Instant::now() < deadline {
            open = self
                .changed
                .wait_timeout(open, Duration::from_millis(50))
                .unwrap()
                .0;
        }
    }

    fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.changed.notify_all();
    }
}

// ---------------------------------------------------------------------------
// Hooks that panic
// ---------------------------------------------------------------------------

/// Contract: DropOldest hands every evicted event to `on_evict`; a panic in
/// a hook is propagated but never loses an event. Here the hook panics on
/// its first call while one admission evicts three events: the other two
/// must still reach the hook (they are counted in `dropped`, so a user who
/// dead-letters evictions through the hook would otherwise lose them
/// without a trace).
#[test]
fn a_panicking_on_evict_still_receives_every_evicted_event() {
    watchdog("on_evict panics", |_| {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&seen);
        let (dispatcher, _batches) = Dispatcher::<Ev>::builder()
            .interval(LONG)
            .max_buffered_bytes(3)
            .policy(Policy::DropOldest)
            .on_evict(move |old: Ev| {
                let first = {
                    let mut seen = record.lock().unwrap();
                    seen.push(old.seq);
                    seen.len() == 1
                };
                if first {
                    panic!("dead-letter store unavailable");
                }
            })
            .build()
            .unwrap();
        let producer = dispatcher.producer();
        for seq in 0..3 {
            producer.try_enqueue(ev(0, seq, 1)).unwrap();
        }
        // Event 3 weighs 3 bytes: events 0, 1 and 2 are evicted for it.
        let outcome = catch_unwind(AssertUnwindSafe(|| producer.try_enqueue(ev(0, 3, 3))));
        assert!(outcome.is_err(), "the hook panicked on its first call");
        let stats = dispatcher.stats();
        assert_eq!(stats.dropped, 3, "{stats:?}");
        assert_balanced(&stats);
        assert_eq!(
            *seen.lock().unwrap(),
            [0, 1, 2],
            "every evicted event must reach on_evict ({} evicted, stats {stats:?})",
            stats.dropped
        );
    });
}

/// Contract: a panic in a hook never corrupts the counters. `can_add`
/// refuses an event; `on_reject` panics while looking at it. The refusal
/// happened (the event was not admitted), so `rejected.refused` must count
/// it.
#[test]
fn a_panicking_on_reject_still_counts_the_refusal() {
    watchdog("on_reject panics", |_| {
        let (dispatcher, _batches) = Dispatcher::<Ev>::builder()
            .interval(LONG)
            .can_add(|_, event: &Ev| event.seq != 1)
            .on_reject(|_| panic!("logger down"))
            .build()
            .unwrap();
        let producer = dispatcher.producer();
        producer.try_enqueue(ev(0, 0, 1)).unwrap();
        let outcome = catch_unwind(AssertUnwindSafe(|| producer.try_enqueue(ev(0, 1, 1))));
        assert!(outcome.is_err(), "on_reject panicked");
        let stats = dispatcher.stats();
        assert_eq!(stats.accepted, 1, "{stats:?}");
        assert_eq!(
            stats.rejected.refused, 1,
            "the refusal by can_add must be counted: {stats:?}"
        );
    });
}

// ---------------------------------------------------------------------------
// Shutdown with a sink stuck in a call
// ---------------------------------------------------------------------------

/// Contract: `shutdown(timeout)` returns `ShutdownTimeout` "if the time ran
/// out" before the sink wrote or gave up on every batch. Here the only
/// batch is stuck in a sink call past the deadline: shutdown must not
/// report success (`Ok`) while an accepted event is still undelivered.
#[test]
fn shutdown_past_its_deadline_with_a_batch_stuck_in_the_sink_is_not_ok() {
    watchdog("shutdown with a stuck sink", |progress| {
        let gate = Arc::new(Gate::default());
        let held = Arc::clone(&gate);
        let dispatcher = Dispatcher::<Ev>::builder()
            .interval(LONG)
            .build_with_sink(sink::from_fn(
                move |_: &Batch<Ev>, _: &FlushContext| -> Result<(), String> {
                    held.wait();
                    Ok(())
                },
            ))
            .unwrap();
        dispatcher.producer().try_enqueue(ev(0, 0, 1)).unwrap();
        dispatcher.flush();
        wait_for("batch in flight", || {
            dispatcher.stats().in_flight_items == 1
        });
        progress.set("shutdown(100 ms) with the sink stuck");
        let started = Instant::now();
        let outcome = dispatcher.shutdown(Duration::from_millis(100));
        let elapsed = started.elapsed();
        gate.open();
        match outcome {
            Ok(report) => panic!(
                "shutdown returned Ok after {elapsed:?} although its 100 ms deadline passed \
                 with {} event(s) still in the sink: {report:?}",
                report.stats.in_flight_items
            ),
            Err(timeout) => {
                assert!(timeout.undelivered.is_empty(), "the event is in the sink");
                assert_eq!(timeout.report.stats.in_flight_items, 1);
            }
        }
    });
}

// ---------------------------------------------------------------------------
// Async sink drivers dropped mid-write
// ---------------------------------------------------------------------------

#[cfg(feature = "async")]
mod async_driver {
    use super::*;
    use dispatcher::nonblocking::AsyncSink;
    use dispatcher::sink::SinkError;

    /// A sink whose writes never complete; counts the writes started.
    pub(super) struct Hang(pub(super) Arc<AtomicUsize>);

    impl AsyncSink<Ev> for Hang {
        async fn write(&self, _batch: &Batch<Ev>, _ctx: &FlushContext) -> Result<(), SinkError> {
            self.0.fetch_add(1, SeqCst);
            std::future::pending().await
        }
    }

    pub(super) fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap()
    }

    /// Contract: a batch whose async driver is dropped mid-write is not
    /// lost, and shutdown returns the undelivered events oldest first, in
    /// per-handle order. Two workers each hold a batch of one handle
    /// (events 0 and 1) when the driver is aborted: shutdown must hand back
    /// 0, 1, 2, 3 in that order.
    #[test]
    fn a_dropped_driver_with_two_writes_in_flight_gives_them_back_in_order() {
        watchdog("driver with two writes dropped", |progress| {
            let started = Arc::new(AtomicUsize::new(0));
            let (dispatcher, driver) = Dispatcher::<Ev>::builder()
                .interval(LONG)
                .max_batch_items(1)
                .flush_workers(2)
                .build_with_async_sink(Hang(Arc::clone(&started)))
                .unwrap();
            let producer = dispatcher.producer();
            for seq in 0..4 {
                producer.try_enqueue(ev(0, seq, 1)).unwrap();
            }
            let rt = runtime();
            progress.set("driver taking two batches");
            rt.block_on(async {
                let task = tokio::spawn(driver);
                while started.load(SeqCst) < 2 {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                task.abort();
                let _ = task.await;
            });
            progress.set("shutdown");
            let returned = match dispatcher.shutdown(Duration::from_millis(100)) {
                Ok(report) => panic!("nothing was written, yet shutdown is Ok: {report:?}"),
                Err(timeout) => timeout.into_inner(),
            };
            assert_eq!(
                seqs(&returned),
                [0, 1, 2, 3],
                "shutdown must return one handle's undelivered events oldest first"
            );
        });
    }

    /// A sink that prepares each request before its future starts (a common
    /// shape: serialize synchronously, then send asynchronously), and whose
    /// preparation panics on event 0.
    struct PrepareThenSend(Arc<Mutex<Vec<u32>>>);

    impl AsyncSink<Ev> for PrepareThenSend {
        fn write(
            &self,
            batch: &Batch<Ev>,
            _ctx: &FlushContext,
        ) -> impl std::future::Future<Output = Result<(), SinkError>> + Send {
            let request: Vec<u32> = batch
                .iter()
                .map(|e| {
                    assert!(e.seq != 0, "{CHAOS} cannot serialize event 0");
                    e.seq
                })
                .collect();
            let written = Arc::clone(&self.0);
            async move {
                written.lock().unwrap().extend(request);
                Ok(())
            }
        }
    }

    /// Contract: panics of the sink are caught, retried, then handed to
    /// `on_flush_error`; later batches are still written. An `AsyncSink`
    /// whose `write` panics while building its future (before the first
    /// poll) must be treated the same: the driver must not die with it
    /// (which closes admission and stops all delivery).
    #[test]
    fn an_async_sink_panicking_before_its_future_starts_is_caught_like_any_sink_panic() {
        quiet_chaos_panics();
        watchdog("async sink panics early", |progress| {
            let written = Arc::new(Mutex::new(Vec::new()));
            let failed = Arc::new(Mutex::new(Vec::new()));
            let out = Arc::clone(&failed);
            let (dispatcher, driver) = Dispatcher::<Ev>::builder()
                .interval(LONG)
                .max_batch_items(1)
                .retry(dispatcher::sink::Retry::NEVER)
                .on_flush_error(move |_, batch: Batch<Ev>| {
                    out.lock().unwrap().extend(seqs(batch.items()));
                })
                .build_with_async_sink(PrepareThenSend(Arc::clone(&written)))
                .unwrap();
            let rt = runtime();
            let task = rt.spawn(driver);
            let producer = dispatcher.producer();
            producer.try_enqueue(ev(0, 0, 1)).unwrap();
            progress.set("waiting for the panicking batch to settle");
            let deadline = Instant::now() + Duration::from_secs(2);
            while failed.lock().unwrap().is_empty()
                && !task.is_finished()
                && Instant::now() < deadline
            {
                thread::sleep(Duration::from_millis(1));
            }
            let later = producer.try_enqueue(ev(0, 1, 1));
            let driver_died = task.is_finished();
            let outcome = dispatcher.shutdown(Duration::from_millis(500));
            assert!(
                !driver_died && later.is_ok(),
                "the sink's panic killed the driver (finished: {driver_died}); admission then \
                 refused event 1 with {later:?}; shutdown: {outcome:?}"
            );
            assert_eq!(
                *failed.lock().unwrap(),
                [0],
                "the panicking batch goes to the hook"
            );
            assert_eq!(*written.lock().unwrap(), [1], "later batches are written");
            assert!(outcome.is_ok(), "{outcome:?}");
        });
    }

    /// Contract: nothing accepted is lost silently; "a batch still inside
    /// a sink call when shutdown returns is settled by its worker when the
    /// call ends". With an async sink the worker is the driver: if the
    /// driver is dropped after shutdown returned (the runtime shuts down,
    /// the task is aborted), the batch it was writing must still end up
    /// somewhere the user sees — the error hook — not vanish.
    #[test]
    fn a_driver_dropped_after_shutdown_does_not_lose_the_batch_it_was_writing() {
        watchdog("driver dropped after shutdown", |progress| {
            let started = Arc::new(AtomicUsize::new(0));
            let failed = Arc::new(Mutex::new(Vec::new()));
            let out = Arc::clone(&failed);
            let (dispatcher, driver) = Dispatcher::<Ev>::builder()
                .interval(LONG)
                .flush_timeout(Duration::from_secs(60))
                .on_flush_error(move |_, batch: Batch<Ev>| {
                    out.lock().unwrap().extend(seqs(batch.items()));
                })
                .build_with_async_sink(Hang(Arc::clone(&started)))
                .unwrap();
            dispatcher.producer().try_enqueue(ev(0, 0, 1)).unwrap();
            dispatcher.flush();
            let rt = runtime();
            let task = rt.spawn(driver);
            wait_for("write started", || started.load(SeqCst) == 1);
            progress.set("shutdown with the write pending");
            let (returned, stats) = match dispatcher.shutdown(Duration::from_millis(50)) {
                Ok(report) => (Vec::new(), report.stats),
                Err(timeout) => {
                    let stats = timeout.report.stats;
                    (timeout.into_inner(), stats)
                }
            };
            assert!(returned.is_empty(), "the event is in the sink call");
            assert_eq!(stats.in_flight_items, 1, "{stats:?}");
            progress.set("dropping the driver");
            task.abort();
            drop(rt);
            let failed = failed.lock().unwrap().clone();
            assert_eq!(
                failed,
                [0],
                "the event in the aborted write was neither delivered, returned nor handed \
                 to on_flush_error: lost (stats at shutdown {stats:?})"
            );
        });
    }

    /// As above, after `stop()`.
    #[test]
    fn a_driver_dropped_after_stop_does_not_lose_the_batch_it_was_writing() {
        watchdog("driver dropped after stop", |progress| {
            let started = Arc::new(AtomicUsize::new(0));
            let failed = Arc::new(Mutex::new(Vec::new()));
            let out = Arc::clone(&failed);
            let (dispatcher, driver) = Dispatcher::<Ev>::builder()
                .interval(LONG)
                .flush_timeout(Duration::from_secs(60))
                .on_flush_error(move |_, batch: Batch<Ev>| {
                    out.lock().unwrap().extend(seqs(batch.items()));
                })
                .build_with_async_sink(Hang(Arc::clone(&started)))
                .unwrap();
            let producer = dispatcher.producer();
            producer.try_enqueue(ev(0, 0, 1)).unwrap();
            dispatcher.flush();
            producer.try_enqueue(ev(0, 1, 1)).unwrap();
            let rt = runtime();
            let task = rt.spawn(driver);
            wait_for("write started", || started.load(SeqCst) == 1);
            progress.set("stop with the write pending");
            let returned = dispatcher.stop();
            assert_eq!(seqs(&returned), [1]);
            progress.set("dropping the driver");
            task.abort();
            drop(rt);
            let failed = failed.lock().unwrap().clone();
            assert_eq!(
                failed,
                [0],
                "the event in the aborted write was neither delivered, returned nor handed \
                 to on_flush_error: lost"
            );
        });
    }
}

// ---------------------------------------------------------------------------
// Live limits changed from several threads
// ---------------------------------------------------------------------------

/// Contract: `limits()` returns "the limits in force", and admission is
/// bounded by its `max_buffered_bytes`. Two `set_limits` calls overlap:
/// one of them is in force, for the report and for admission alike (the
/// calls are serialized; which one is last is not defined by returning
/// last: the first here returns late because a waker it calls stalls).
///
/// To make the overlap deterministic, an async producer waits for room with
/// a waker that stalls the first `wake()` (a waker is user code, and any
/// slow runtime wake-up does the same): the first `set_limits` is held right
/// after it changed the byte budget, while the second one runs to
/// completion; then the first finishes. Without the stall the same
/// interleaving happens by chance (about once in 30 000 racing pairs here).
#[cfg(feature = "async")]
#[test]
fn overlapping_set_limits_leave_one_consistent_set_of_limits() {
    use std::future::Future;
    use std::task::{Context, Wake, Waker};

    struct StallingWaker {
        entered: Mutex<Option<mpsc::Sender<()>>>,
        gate: Gate,
    }

    impl Wake for StallingWaker {
        fn wake(self: Arc<Self>) {
            if let Some(entered) = self.entered.lock().unwrap().take() {
                let _ = entered.send(());
                self.gate.wait();
            }
        }
    }

    watchdog("overlapping set_limits", |progress| {
        let first = dispatcher::Limits {
            interval: LONG,
            max_buffered_bytes: 8,
            ..dispatcher::Limits::default()
        };
        let second = dispatcher::Limits {
            max_buffered_bytes: 16,
            ..first
        };
        let (dispatcher, _batches) = Dispatcher::<Ev>::builder()
            .limits(first)
            .partitions(2)
            .policy(Policy::Block { timeout: LONG })
            .build()
            .unwrap();
        let dispatcher = Arc::new(dispatcher);
        let producer = dispatcher.producer();
        for seq in 0..8 {
            producer.try_enqueue(ev(0, seq, 1)).unwrap();
        }
        // An async producer waits for room.
        let (entered_tx, entered_rx) = mpsc::channel();
        let waker = Arc::new(StallingWaker {
            entered: Mutex::new(Some(entered_tx)),
            gate: Gate::default(),
        });
        let mut waiting = dispatcher.async_producer().enqueue(ev(1, 0, 1));
        let task_waker = Waker::from(Arc::clone(&waker));
        let polled = std::pin::Pin::new(&mut waiting).poll(&mut Context::from_waker(&task_waker));
        assert!(polled.is_pending(), "the dispatcher is full");

        progress.set("first set_limits (8 bytes), stalled in the wake-up");
        let first_call = {
            let dispatcher = Arc::clone(&dispatcher);
            thread::spawn(move || dispatcher.set_limits(first).unwrap())
        };
        entered_rx.recv().unwrap();
        progress.set("second set_limits (16 bytes)");
        dispatcher.set_limits(second).unwrap();
        waker.gate.open();
        progress.set("first set_limits finishing");
        first_call.join().unwrap();
        assert!(
            waiting.cancel().is_some(),
            "never polled again: not enqueued"
        );

        // Whichever call took effect last, one set of limits is in force
        // for the report and for admission alike.
        let reported = dispatcher.limits().max_buffered_bytes;
        let mut admitted = 0;
        while producer.try_enqueue(ev(0, 100 + admitted, 1)).is_ok() {
            admitted += 1;
        }
        let buffered = dispatcher.stats().buffered_bytes;
        assert!(
            buffered <= reported,
            "limits() reports max_buffered_bytes = {reported}, yet admission let \
             {admitted} more bytes in: {buffered} bytes buffered"
        );
        assert!([8, 16].contains(&reported), "{reported}");
    });
}

// ---------------------------------------------------------------------------
// The hammer: many producer threads with random sizes under every policy and
// 1..=8 partitions, live limits flipping, receivers that come and go,
// checkpoints, optionally panicking hooks and weights, and an end (shutdown
// or stop) in the middle of the load. Every event is unique; independent
// records of every fate are checked against each other and the counters.
// ---------------------------------------------------------------------------

type Id = (u32, u32);

/// A hammer event. With `chaos`, its weight drifts between calls and
/// sometimes panics (user code the dispatcher must survive).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Hev {
    handle: u32,
    seq: u32,
    weight: usize,
    chaos: bool,
}

static CHAOS_TICK: AtomicUsize = AtomicUsize::new(0);

/// Panics raised on purpose start with this, and are not printed.
const CHAOS: &str = "chaos:";

fn quiet_chaos_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let text = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_default();
            if !text.starts_with(CHAOS) {
                previous(info);
            }
        }));
    });
}

impl Weight for Hev {
    fn weight(&self) -> usize {
        if !self.chaos {
            return self.weight;
        }
        let tick = CHAOS_TICK.fetch_add(1, SeqCst);
        if tick % 61 == 0 {
            panic!("{CHAOS} weight() panics");
        }
        match tick % 3 {
            0 => self.weight,
            1 => self.weight / 2,
            _ => self.weight.saturating_mul(2),
        }
    }
}

fn hid(e: &Hev) -> Id {
    (e.handle, e.seq)
}

/// How a round ends.
#[derive(Debug, Clone, Copy)]
enum End {
    Shutdown(Duration),
    Stop,
}

#[derive(Debug, Clone, Copy)]
struct SinkPlan {
    workers: usize,
    attempts: u32,
    fail_pct: u64,
    /// Calls that overrun `flush_timeout` (and then fail).
    slow_pct: u64,
}

#[derive(Debug, Clone)]
struct Plan {
    seed: u64,
    producers: usize,
    partitions: usize,
    policy: Policy,
    max_buffered: usize,
    /// Live limits flip between `max_buffered` and this.
    flip_to: Option<usize>,
    max_batch_items: Option<usize>,
    max_batch_bytes: Option<usize>,
    interval: Duration,
    /// Pull mode: receiver threads iterating one `&Batches` (0 = one
    /// consumer that sees every batch, in order); plus short-lived clones.
    receivers: usize,
    churn: bool,
    sink: Option<SinkPlan>,
    chaos: bool,
    run_for: Duration,
    end: End,
}

impl Plan {
    fn draw(seed: u64, sink: bool, chaos: bool) -> Plan {
        let mut rng = fastrand::Rng::with_seed(seed);
        let max_buffered = match rng.u8(0..4) {
            0 => rng.usize(1..=4),
            1 => rng.usize(5..=64),
            _ => rng.usize(65..=4096),
        };
        Plan {
            seed,
            producers: rng.usize(8..=48),
            partitions: rng.usize(1..=8),
            policy: match rng.u8(0..3) {
                0 => Policy::Reject,
                1 => Policy::Block {
                    timeout: Duration::from_micros(rng.u64(100..=5000)),
                },
                _ => Policy::DropOldest,
            },
            max_buffered,
            flip_to: rng.bool().then(|| rng.usize(1..=max_buffered * 2)),
            max_batch_items: rng.bool().then(|| rng.usize(1..=32)),
            max_batch_bytes: rng.bool().then(|| rng.usize(1..=max_buffered)),
            interval: Duration::from_micros(rng.u64(200..=5000)),
            receivers: if sink { 0 } else { rng.usize(0..=3) },
            churn: !sink && rng.bool(),
            sink: sink.then(|| SinkPlan {
                workers: rng.usize(1..=3),
                attempts: rng.u32(1..=3),
                fail_pct: rng.u64(0..=30),
                slow_pct: rng.u64(0..=5),
            }),
            chaos,
            run_for: Duration::from_millis(rng.u64(20..=80)),
            end: if rng.u8(0..3) == 0 {
                End::Stop
            } else if rng.bool() {
                End::Shutdown(Duration::from_millis(rng.u64(0..=3)))
            } else {
                End::Shutdown(Duration::from_secs(2))
            },
        }
    }

    fn single_consumer(&self) -> bool {
        match self.sink {
            Some(sink) => sink.workers == 1,
            None => self.receivers == 0 && !self.churn,
        }
    }
}

/// What the consumers, the sink and the hooks saw, each on its own.
#[derive(Default)]
struct Seen {
    delivered: Mutex<Vec<Vec<Id>>>,
    evicted: Mutex<Vec<Id>>,
    failed: Mutex<Vec<Id>>,
    problems: Mutex<Vec<String>>,
}

impl Seen {
    fn problem(&self, what: String) {
        let mut problems = self.problems.lock().unwrap();
        if problems.len() < 20 {
            problems.push(what);
        }
    }

    fn fated(&self) -> usize {
        self.delivered
            .lock()
            .unwrap()
            .iter()
            .map(Vec::len)
            .sum::<usize>()
            + self.evicted.lock().unwrap().len()
            + self.failed.lock().unwrap().len()
    }
}

/// What one producer handle saw.
#[derive(Default)]
struct Log {
    accepted: Vec<u32>,
    refused: Vec<u32>,
    /// Calls that panicked (a hook or `weight()`): admitted or not.
    uncertain: Vec<u32>,
}

fn draw_weight(rng: &mut fastrand::Rng, max: usize) -> usize {
    match rng.u8(0..100) {
        0 => usize::MAX - rng.usize(0..3),
        1..=3 => max + 1 + rng.usize(0..=max),
        4..=8 => 0,
        _ => rng.usize(1..=(max / 4).max(1)),
    }
}

/// A producer handle's loop: random calls until told to stop or closed.
/// Also publishes, per handle, the accepted events (for checkpoints).
fn hammer_produce(
    producer: dispatcher::Producer<Hev>,
    handle: u32,
    plan: &Plan,
    stop: &AtomicBool,
    seen: &Seen,
    accepted: &Mutex<Vec<u32>>,
) -> Log {
    let mut rng = fastrand::Rng::with_seed(plan.seed ^ (u64::from(handle) << 40));
    let mut log = Log::default();
    let mut seq = 0u32;
    let max = plan.max_buffered;
    let make = |rng: &mut fastrand::Rng, seq: u32| Hev {
        handle,
        seq,
        weight: draw_weight(rng, max),
        chaos: plan.chaos && rng.u8(0..4) == 0,
    };
    while !stop.load(SeqCst) {
        if seq % 8 == 0 {
            thread::yield_now();
        }
        let kind = rng.u8(0..10);
        let group: Vec<Hev> = if kind == 9 {
            (0..rng.u32(1..=4))
                .map(|i| make(&mut rng, seq + i))
                .collect()
        } else {
            vec![make(&mut rng, seq)]
        };
        seq += group.len() as u32;
        let sent = group.clone();
        let outcome = catch_unwind(AssertUnwindSafe(|| -> Result<(), (bool, Vec<Hev>)> {
            let single = || group[0].clone();
            match kind {
                0..=3 => producer.try_enqueue(single()).map_err(|e| {
                    (
                        matches!(e, TryEnqueueError::Closed(_)),
                        vec![e.into_inner()],
                    )
                }),
                4..=5 => producer.enqueue(single()).map_err(|e| {
                    let closed = matches!(e, dispatcher::EnqueueError::Closed(_));
                    (closed, vec![e.into_inner()])
                }),
                6..=8 => {
                    let timeout = Duration::from_micros(rng.u64(0..=2000));
                    producer.enqueue_timeout(single(), timeout).map_err(|e| {
                        let closed = matches!(e, dispatcher::EnqueueTimeoutError::Closed(_));
                        (closed, vec![e.into_inner()])
                    })
                }
                _ => producer
                    .try_enqueue_all(group.clone())
                    .map_err(|e| (matches!(e, TryEnqueueError::Closed(_)), e.into_inner())),
            }
        }));
        let seqs = sent.iter().map(|e| e.seq);
        match outcome {
            Ok(Ok(())) => {
                log.accepted.extend(seqs.clone());
                accepted.lock().unwrap().extend(seqs);
            }
            Ok(Err((closed, back))) => {
                if back != sent {
                    seen.problem(format!("a refusal handed back {back:?} for {sent:?}"));
                }
                log.refused.extend(seqs);
                if closed {
                    break;
                }
            }
            Err(_) => log.uncertain.extend(seqs),
        }
    }
    log
}

/// A stats watcher: the byte bound, continuously.
fn hammer_watch(dispatcher: &Dispatcher<Hev>, bound: usize, ending: &AtomicBool, seen: &Seen) {
    while !ending.load(SeqCst) {
        let stats = dispatcher.stats();
        if stats.buffered_bytes > bound || stats.peak_buffered_bytes > bound {
            seen.problem(format!(
                "buffered {} / peak {} bytes above the highest limit {bound}",
                stats.buffered_bytes, stats.peak_buffered_bytes
            ));
            return;
        }
        thread::sleep(Duration::from_micros(100));
    }
}

/// Flips the live limits; survives `weight()` panicking in a re-cut.
fn hammer_flip(dispatcher: &Dispatcher<Hev>, plan: &Plan, ending: &AtomicBool) {
    let Some(other) = plan.flip_to else { return };
    let mut rng = fastrand::Rng::with_seed(plan.seed ^ 0xf11f);
    let mut high = false;
    while !ending.load(SeqCst) {
        thread::sleep(Duration::from_micros(rng.u64(100..=2000)));
        high = !high;
        let mut limits = dispatcher.limits();
        limits.max_buffered_bytes = if high { other } else { plan.max_buffered };
        limits.max_batch_bytes = rng.bool().then(|| rng.usize(1..=limits.max_buffered_bytes));
        limits.max_batch_items = rng.bool().then(|| rng.usize(1..=32));
        let _ = catch_unwind(AssertUnwindSafe(|| dispatcher.set_limits(limits).unwrap()));
    }
}

/// Flushes and checkpoints at random. In sink mode without eviction (whose
/// hook runs after the lock is let go) a checkpoint is checked exactly:
/// once `flush_and_wait` returned Ok, every event accepted before the call
/// was written or handed to the error hook.
fn hammer_checkpoints(
    dispatcher: &Dispatcher<Hev>,
    plan: &Plan,
    ending: &AtomicBool,
    seen: &Seen,
    accepted: &[Arc<Mutex<Vec<u32>>>],
) {
    let mut rng = fastrand::Rng::with_seed(plan.seed ^ 0xc4ec);
    let exact = plan.sink.is_some() && plan.policy != Policy::DropOldest;
    while !ending.load(SeqCst) {
        thread::sleep(Duration::from_micros(rng.u64(500..=5000)));
        if rng.bool() {
            dispatcher.flush();
            continue;
        }
        let before: Vec<usize> = accepted.iter().map(|a| a.lock().unwrap().len()).collect();
        let timeout = Duration::from_millis(rng.u64(1..=30));
        if dispatcher.flush_and_wait(timeout).is_err() || !exact {
            continue;
        }
        let mut fated: std::collections::HashSet<Id> =
            seen.failed.lock().unwrap().iter().copied().collect();
        fated.extend(seen.delivered.lock().unwrap().iter().flatten().copied());
        for (handle, (list, upto)) in accepted.iter().zip(before).enumerate() {
            let list = list.lock().unwrap();
            if let Some(seq) = list[..upto]
                .iter()
                .find(|&&seq| !fated.contains(&(handle as u32, seq)))
            {
                seen.problem(format!(
                    "flush_and_wait returned Ok, yet event {:?}, accepted before it, \
                     was neither written nor failed",
                    (handle, seq)
                ));
                return;
            }
        }
    }
}

fn build_hammer(
    plan: &Plan,
    seen: &Arc<Seen>,
) -> (Dispatcher<Hev>, Option<dispatcher::Batches<Hev>>) {
    let evicted = Arc::clone(seen);
    let mut builder = Dispatcher::<Hev>::builder()
        .interval(plan.interval)
        .max_buffered_bytes(plan.max_buffered)
        .partitions(plan.partitions)
        .policy(plan.policy)
        .jitter_seed(plan.seed)
        .on_evict(move |e| evicted.evicted.lock().unwrap().push(hid(&e)));
    if let Some(items) = plan.max_batch_items {
        builder = builder.max_batch_items(items);
    }
    if let Some(bytes) = plan.max_batch_bytes {
        builder = builder.max_batch_bytes(bytes);
    }
    if plan.chaos {
        let tick = Arc::new(AtomicUsize::new(0));
        let (a, b, c) = (Arc::clone(&tick), Arc::clone(&tick), tick);
        builder = builder
            .should_flush(move |open| {
                let n = a.fetch_add(1, SeqCst);
                assert!(n % 97 != 5, "{CHAOS} should_flush panics");
                open.len() % 7 == 3
            })
            .will_overflow(move |_, next: &Hev| {
                let n = b.fetch_add(1, SeqCst);
                assert!(n % 89 != 7, "{CHAOS} will_overflow panics");
                next.seq % 11 == 0
            })
            .can_add(move |_, next: &Hev| {
                let n = c.fetch_add(1, SeqCst);
                assert!(n % 83 != 9, "{CHAOS} can_add panics");
                next.seq % 13 != 1
            });
    }
    let Some(sink) = plan.sink else {
        let (dispatcher, batches) = builder.build().unwrap();
        return (dispatcher, Some(batches));
    };
    let (failed, written) = (Arc::clone(seen), Arc::clone(seen));
    let seed = plan.seed;
    let flush_timeout = Duration::from_millis(5);
    let dispatcher = builder
        .flush_workers(sink.workers)
        .flush_timeout(flush_timeout)
        .retry(dispatcher::sink::Retry::new(
            sink.attempts,
            Duration::from_micros(200),
            Duration::from_millis(2),
        ))
        .on_flush_error(move |_, batch: Batch<Hev>| {
            failed.failed.lock().unwrap().extend(batch.iter().map(hid));
        })
        .build_with_sink(sink::from_fn(
            move |batch: &Batch<Hev>, ctx: &FlushContext| -> Result<(), String> {
                let first = batch
                    .first()
                    .map_or(0, |e| (u64::from(e.handle) << 32) | u64::from(e.seq));
                let mut rng = fastrand::Rng::with_seed(seed ^ first ^ u64::from(ctx.attempt()));
                if rng.u64(0..100) < sink.slow_pct {
                    thread::sleep(flush_timeout * 2);
                    return Err("slow".into());
                }
                thread::sleep(Duration::from_micros(rng.u64(0..=200)));
                if rng.u64(0..100) < sink.fail_pct {
                    return Err("injected failure".into());
                }
                written
                    .delivered
                    .lock()
                    .unwrap()
                    .push(batch.iter().map(hid).collect());
                Ok(())
            },
        ))
        .unwrap();
    (dispatcher, None)
}

/// Checks every batch: one handle's events in increasing order.
fn check_batch_order(ids: &[Id], seen: &Seen) {
    let mut last: std::collections::HashMap<u32, u32> = std::collections::HashMap::new();
    for &(handle, seq) in ids {
        if let Some(&before) = last.get(&handle) {
            if seq <= before {
                seen.problem(format!(
                    "handle {handle}: event {seq} after {before} in one batch"
                ));
            }
        }
        last.insert(handle, seq);
    }
}

fn hammer_round(plan: Plan, progress: &Progress) {
    progress.set(format!("round {plan:?}: starting"));
    let seen = Arc::new(Seen::default());
    let (dispatcher, batches) = build_hammer(&plan, &seen);
    let dispatcher = Arc::new(dispatcher);
    let stop = Arc::new(AtomicBool::new(false));
    let ending = Arc::new(AtomicBool::new(false));
    let plan = Arc::new(plan);

    // Consumers (pull mode).
    let mut consumers = Vec::new();
    if let Some(batches) = batches {
        let batches = Arc::new(batches);
        for _ in 0..plan.receivers.max(1) {
            let (batches, seen) = (Arc::clone(&batches), Arc::clone(&seen));
            consumers.push(thread::spawn(move || {
                for batch in &*batches {
                    let ids: Vec<Id> = batch.iter().map(hid).collect();
                    check_batch_order(&ids, &seen);
                    seen.delivered.lock().unwrap().push(ids);
                }
            }));
        }
        if plan.churn {
            // Receivers that come and go: clones that take a few batches.
            let (batches, seen, ending) =
                (Arc::clone(&batches), Arc::clone(&seen), Arc::clone(&ending));
            consumers.push(thread::spawn(move || {
                let mut rng = fastrand::Rng::new();
                while !ending.load(SeqCst) {
                    let clone = (*batches).clone();
                    let seen = Arc::clone(&seen);
                    let takes = rng.usize(0..4);
                    thread::spawn(move || {
                        for _ in 0..takes {
                            if let Ok(batch) = clone.recv_timeout(Duration::from_millis(2)) {
                                let ids: Vec<Id> = batch.iter().map(hid).collect();
                                check_batch_order(&ids, &seen);
                                seen.delivered.lock().unwrap().push(ids);
                            }
                        }
                    })
                    .join()
                    .unwrap();
                }
            }));
        }
    }

    // Producers: one handle each.
    let accepted: Vec<Arc<Mutex<Vec<u32>>>> = (0..plan.producers).map(|_| Arc::default()).collect();
    let producers: Vec<_> = (0..plan.producers)
        .map(|h| {
            let producer = dispatcher.producer();
            let (plan, stop, seen, list) = (
                Arc::clone(&plan),
                Arc::clone(&stop),
                Arc::clone(&seen),
                Arc::clone(&accepted[h]),
            );
            thread::spawn(move || hammer_produce(producer, h as u32, &plan, &stop, &seen, &list))
        })
        .collect();

    // Helpers that need the dispatcher itself.
    let bound = plan.max_buffered.max(plan.flip_to.unwrap_or(0));
    let helpers = vec![
        {
            let (d, e, s) = (
                Arc::clone(&dispatcher),
                Arc::clone(&ending),
                Arc::clone(&seen),
            );
            thread::spawn(move || hammer_watch(&d, bound, &e, &s))
        },
        {
            let (d, e, p) = (
                Arc::clone(&dispatcher),
                Arc::clone(&ending),
                Arc::clone(&plan),
            );
            thread::spawn(move || hammer_flip(&d, &p, &e))
        },
        {
            let (d, e, p, s) = (
                Arc::clone(&dispatcher),
                Arc::clone(&ending),
                Arc::clone(&plan),
                Arc::clone(&seen),
            );
            let lists = accepted.clone();
            thread::spawn(move || hammer_checkpoints(&d, &p, &e, &s, &lists))
        },
    ];

    thread::sleep(plan.run_for);
    progress.set(format!("round {plan:?}: ending the helpers"));
    ending.store(true, SeqCst);
    for helper in helpers {
        helper.join().unwrap();
    }
    let late = dispatcher.producer();
    let dispatcher = Arc::try_unwrap(dispatcher).unwrap_or_else(|_| panic!("helpers ended"));
    progress.set(format!("round {plan:?}: {:?} under load", plan.end));
    let (returned, report) = match plan.end {
        End::Stop => (dispatcher.stop(), None),
        End::Shutdown(timeout) => match dispatcher.shutdown(timeout) {
            Ok(report) => (Vec::new(), Some(report.stats)),
            Err(err) => {
                let stats = err.report.stats;
                (err.into_inner(), Some(stats))
            }
        },
    };
    if !matches!(
        late.try_enqueue(Hev {
            handle: 999,
            seq: 0,
            weight: 1,
            chaos: false
        }),
        Err(TryEnqueueError::Closed(_))
    ) {
        seen.problem("a producer was not refused as Closed after the end".into());
    }
    progress.set(format!("round {plan:?}: joining producers"));
    stop.store(true, SeqCst);
    let logs: Vec<Log> = producers.into_iter().map(|p| p.join().unwrap()).collect();
    progress.set(format!("round {plan:?}: joining consumers"));
    for consumer in consumers {
        consumer.join().unwrap();
    }

    // In sink mode batches still in a call settle on their own: wait until
    // every accepted event has a fate (or the limit passes).
    let returned_ids: Vec<Id> = returned.iter().map(hid).collect();
    let expected = report.map(|stats| stats.accepted as usize);
    let certain: Vec<Id> = logs
        .iter()
        .enumerate()
        .flat_map(|(h, l)| l.accepted.iter().map(move |&s| (h as u32, s)))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let fated = seen.fated() + returned_ids.len();
        let settled = match expected {
            Some(expected) => fated >= expected,
            None => {
                let mut all: std::collections::HashSet<Id> = returned_ids.iter().copied().collect();
                all.extend(seen.delivered.lock().unwrap().iter().flatten().copied());
                all.extend(seen.evicted.lock().unwrap().iter().copied());
                all.extend(seen.failed.lock().unwrap().iter().copied());
                certain.iter().all(|id| all.contains(id))
            }
        };
        if settled || Instant::now() >= deadline {
            break;
        }
        thread::sleep(Duration::from_millis(2));
    }

    // Every fate, counted per event.
    let mut fates: std::collections::HashMap<Id, Vec<&str>> = std::collections::HashMap::new();
    let delivered = seen.delivered.lock().unwrap().clone();
    for id in delivered.iter().flatten() {
        fates.entry(*id).or_default().push("delivered");
    }
    for id in seen.evicted.lock().unwrap().iter() {
        fates.entry(*id).or_default().push("evicted");
    }
    for id in seen.failed.lock().unwrap().iter() {
        fates.entry(*id).or_default().push("failed");
    }
    for id in &returned_ids {
        fates.entry(*id).or_default().push("returned");
    }
    let mut problems = seen.problems.lock().unwrap().clone();
    let mut sure = 0;
    for (handle, log) in logs.iter().enumerate() {
        let handle = handle as u32;
        for &seq in &log.accepted {
            sure += 1;
            match fates.get(&(handle, seq)).map(Vec::as_slice) {
                Some([_]) => {}
                other => problems.push(format!(
                    "accepted event {:?} has fates {other:?}",
                    (handle, seq)
                )),
            }
        }
        for &seq in &log.refused {
            if let Some(f) = fates.get(&(handle, seq)) {
                problems.push(format!("refused event {:?} has fates {f:?}", (handle, seq)));
            }
        }
        for &seq in &log.uncertain {
            if let Some(f) = fates.get(&(handle, seq)).filter(|f| f.len() > 1) {
                problems.push(format!(
                    "event {:?} (its call panicked) has fates {f:?}",
                    (handle, seq)
                ));
            }
        }
    }
    let known: std::collections::HashSet<Id> = logs
        .iter()
        .enumerate()
        .flat_map(|(h, l)| {
            l.accepted
                .iter()
                .chain(&l.uncertain)
                .map(move |&s| (h as u32, s))
        })
        .collect();
    if let Some(stray) = fates.keys().find(|id| !known.contains(id)) {
        problems.push(format!(
            "event {stray:?} was never accepted, yet has fates {:?}",
            fates[stray]
        ));
    }
    let fated = fates.len();
    if let Some(stats) = report {
        if stats.accepted as usize != fated {
            problems.push(format!(
                "stats.accepted {} but {fated} events have a fate ({sure} accepted for sure): {stats:?}",
                stats.accepted
            ));
        }
        if plan.sink.is_none() {
            let delivered_count: usize = delivered.iter().map(Vec::len).sum();
            if stats.delivered as usize != delivered_count || stats.buffered_items != 0 {
                problems.push(format!(
                    "stats say {} delivered, {} buffered; the consumers got {delivered_count}: {stats:?}",
                    stats.delivered, stats.buffered_items
                ));
            }
            if stats.returned as usize != returned_ids.len() {
                problems.push(format!(
                    "stats.returned {} but {} returned",
                    stats.returned,
                    returned_ids.len()
                ));
            }
        }
        if stats.buffered_items != stats.in_flight_items {
            problems.push(format!(
                "after the end, events are buffered outside the sink: {stats:?}"
            ));
        }
        assert_balanced(&stats);
    }
    // Order per handle: what one consumer saw, and what came back.
    let mut order_of: Vec<(&str, Vec<Id>)> = vec![("returned", returned_ids.clone())];
    if plan.single_consumer() {
        order_of.push(("delivered", delivered.iter().flatten().copied().collect()));
    }
    for (what, ids) in order_of {
        let mut last: std::collections::HashMap<u32, u32> = std::collections::HashMap::new();
        for (handle, seq) in ids {
            if last.get(&handle).is_some_and(|&before| seq <= before) {
                problems.push(format!(
                    "{what}: handle {handle} event {seq} after {}",
                    last[&handle]
                ));
                break;
            }
            last.insert(handle, seq);
        }
    }
    println!(
        "  {:?} p{} {:?}: accepted {sure}, refused {}, uncertain {}, delivered {}, evicted {}, failed {}, returned {}",
        plan.end,
        plan.partitions,
        plan.policy,
        logs.iter().map(|l| l.refused.len()).sum::<usize>(),
        logs.iter().map(|l| l.uncertain.len()).sum::<usize>(),
        delivered.iter().map(Vec::len).sum::<usize>(),
        seen.evicted.lock().unwrap().len(),
        seen.failed.lock().unwrap().len(),
        returned_ids.len()
    );
    assert!(
        problems.is_empty(),
        "ATTACK_SEED={} {plan:?}\n{} problem(s):\n{}",
        plan.seed,
        problems.len(),
        problems.join("\n")
    );
}

/// Runs hammer rounds for about `budget`; `ATTACK_SEED` replays one round.
fn hammer(name: &str, budget: Duration, sink: bool, chaos: bool) {
    quiet_chaos_panics();
    let replay: Option<u64> = std::env::var("ATTACK_SEED")
        .ok()
        .and_then(|s| s.parse().ok());
    let name = name.to_string();
    watchdog(&name.clone(), move |progress| {
        let started = Instant::now();
        let mut master = fastrand::Rng::new();
        let mut rounds = 0;
        while rounds == 0 || (replay.is_none() && started.elapsed() < budget) {
            let seed = replay.unwrap_or_else(|| master.u64(..));
            println!("{name}: ATTACK_SEED={seed}");
            hammer_round(Plan::draw(seed, sink, chaos), &progress);
            rounds += 1;
        }
        println!("{name}: {rounds} rounds");
    });
}

#[test]
fn hammer_pull_mode() {
    hammer("hammer pull", Duration::from_secs(3), false, false);
}

#[test]
fn hammer_sink_mode() {
    hammer("hammer sink", Duration::from_secs(3), true, false);
}

#[test]
fn hammer_pull_mode_with_panicking_hooks_and_weights() {
    hammer("hammer pull chaos", Duration::from_secs(2), false, true);
}

#[test]
fn hammer_sink_mode_with_panicking_hooks_and_weights() {
    hammer("hammer sink chaos", Duration::from_secs(2), true, true);
}

// ---------------------------------------------------------------------------
// The async hammer: async producers on a multi-thread runtime whose futures
// are dropped at random points (timeouts, select!, cancel), stream
// consumers aborted and replaced, or an async sink that times out, fails and
// panics, with its driver aborted at a random moment; `shutdown_async`
// under load from inside the runtime.
// ---------------------------------------------------------------------------

#[cfg(feature = "async")]
mod async_hammer {
    use super::*;
    use dispatcher::nonblocking::AsyncSink;
    use dispatcher::sink::SinkError;
    use futures_util::StreamExt;

    struct ChaosSink {
        seen: Arc<Seen>,
        seed: u64,
    }

    impl AsyncSink<Hev> for ChaosSink {
        async fn write(&self, batch: &Batch<Hev>, ctx: &FlushContext) -> Result<(), SinkError> {
            let first = batch
                .first()
                .map_or(0, |e| (u64::from(e.handle) << 32) | u64::from(e.seq));
            let mut rng = fastrand::Rng::with_seed(self.seed ^ first ^ u64::from(ctx.attempt()));
            tokio::time::sleep(Duration::from_micros(rng.u64(0..=300))).await;
            match rng.u8(0..100) {
                0..=4 => {
                    // Past flush_timeout: cancelled.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Err("slow".into())
                }
                5..=9 => panic!("{CHAOS} async sink panics"),
                10..=19 => Err("injected failure".into()),
                _ => {
                    self.seen
                        .delivered
                        .lock()
                        .unwrap()
                        .push(batch.iter().map(hid).collect());
                    Ok(())
                }
            }
        }
    }

    async fn produce(
        producer: dispatcher::nonblocking::AsyncProducer<Hev>,
        handle: u32,
        seed: u64,
        max: usize,
        stop: Arc<AtomicBool>,
        seen: Arc<Seen>,
    ) -> Log {
        let mut rng = fastrand::Rng::with_seed(seed ^ (u64::from(handle) << 40));
        let mut log = Log::default();
        let mut seq = 0;
        while !stop.load(SeqCst) {
            let sent = Hev {
                handle,
                seq,
                weight: draw_weight(&mut rng, max),
                chaos: false,
            };
            seq += 1;
            let mut future = producer.enqueue(sent.clone());
            let waited = Duration::from_micros(rng.u64(0..=3000));
            let outcome = match rng.u8(0..4) {
                0 => Some(future.await),
                // Dropped by a timeout: never enqueued, item gone.
                1 => tokio::time::timeout(waited, future).await.ok(),
                // Dropped by select! after being polled through `&mut`.
                2 => {
                    tokio::select! {
                        done = &mut future => Some(done),
                        () = tokio::time::sleep(waited) => match future.cancel() {
                            Some(back) => {
                                if back != sent {
                                    seen.problem(format!("cancel handed back {back:?} for {sent:?}"));
                                }
                                None
                            }
                            None => {
                                seen.problem(format!("cancel of a pending enqueue of {sent:?} gave nothing back"));
                                None
                            }
                        },
                    }
                }
                _ => {
                    // Polled once, then dropped.
                    let polled = std::future::poll_fn(|cx| {
                        std::task::Poll::Ready(std::future::Future::poll(
                            std::pin::Pin::new(&mut future),
                            cx,
                        ))
                    })
                    .await;
                    match polled {
                        std::task::Poll::Ready(done) => Some(done),
                        std::task::Poll::Pending => None,
                    }
                }
            };
            match outcome {
                Some(Ok(())) => log.accepted.push(sent.seq),
                Some(Err(err)) => {
                    let closed = matches!(err, dispatcher::EnqueueError::Closed(_));
                    let back = err.into_inner();
                    if back != sent {
                        seen.problem(format!("a refusal handed back {back:?} for {sent:?}"));
                    }
                    log.refused.push(sent.seq);
                    if closed {
                        break;
                    }
                }
                None => log.refused.push(sent.seq),
            }
            if seq % 8 == 0 {
                tokio::task::yield_now().await;
            }
        }
        log
    }

    fn round(seed: u64, sink: bool, progress: &Progress) {
        let mut rng = fastrand::Rng::with_seed(seed);
        let max = rng.usize(1..=512);
        let policy = match rng.u8(0..4) {
            0 => Policy::Reject,
            1 => Policy::DropOldest,
            _ => Policy::Block {
                timeout: Duration::from_micros(rng.u64(100..=5000)),
            },
        };
        let partitions = rng.usize(1..=4);
        let workers = rng.usize(1..=3);
        let producers = rng.usize(8..=32);
        let abort_driver = sink && rng.bool();
        let end_timeout = if rng.bool() {
            Duration::from_millis(rng.u64(0..=3))
        } else {
            Duration::from_secs(2)
        };
        let what = format!(
            "ATTACK_SEED={seed} sink {sink} max {max} {policy:?} partitions {partitions} \
             workers {workers} producers {producers} abort_driver {abort_driver} end {end_timeout:?}"
        );
        println!("async hammer: {what}");
        progress.set(format!("{what}: running"));
        let seen = Arc::new(Seen::default());
        let evicted = Arc::clone(&seen);
        let builder = Dispatcher::<Hev>::builder()
            .interval(Duration::from_micros(rng.u64(200..=3000)))
            .max_buffered_bytes(max)
            .max_batch_items(rng.usize(1..=16))
            .partitions(partitions)
            .policy(policy)
            .on_evict(move |e| evicted.evicted.lock().unwrap().push(hid(&e)));
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let (dispatcher, driver, batches) = if sink {
            let failed = Arc::clone(&seen);
            let (dispatcher, driver) = builder
                .flush_workers(workers)
                .flush_timeout(Duration::from_millis(5))
                .retry(dispatcher::sink::Retry::new(
                    rng.u32(1..=3),
                    Duration::from_micros(200),
                    Duration::from_millis(2),
                ))
                .on_flush_error(move |_, batch: Batch<Hev>| {
                    failed.failed.lock().unwrap().extend(batch.iter().map(hid));
                })
                .build_with_async_sink(ChaosSink {
                    seen: Arc::clone(&seen),
                    seed,
                })
                .unwrap();
            (dispatcher, Some(rt.spawn(driver)), None)
        } else {
            let (dispatcher, batches) = builder.build().unwrap();
            (dispatcher, None, Some(batches))
        };
        // Stream consumers, aborted and replaced at random.
        let consumers = batches.map(|batches| {
            let (seen, stop) = (Arc::clone(&seen), Arc::clone(&stop));
            rt.spawn(async move {
                let mut rng = fastrand::Rng::with_seed(seed ^ 0x5eed);
                let mut finals = Vec::new();
                while !stop.load(SeqCst) {
                    let mut stream = batches.clone().into_stream();
                    let seen = Arc::clone(&seen);
                    let task = tokio::spawn(async move {
                        while let Some(batch) = stream.next().await {
                            let ids: Vec<Id> = batch.iter().map(hid).collect();
                            seen.delivered.lock().unwrap().push(ids);
                        }
                    });
                    tokio::time::sleep(Duration::from_micros(rng.u64(100..=3000))).await;
                    if rng.bool() {
                        task.abort();
                        let _ = task.await;
                    } else {
                        finals.push(task);
                    }
                }
                // The last consumer drains until the end.
                let mut stream = batches.into_stream();
                while let Some(batch) = stream.next().await {
                    seen.delivered
                        .lock()
                        .unwrap()
                        .push(batch.iter().map(hid).collect());
                }
                for task in finals {
                    let _ = task.await;
                }
            })
        });
        let tasks: Vec<_> = (0..producers)
            .map(|h| {
                let producer = dispatcher.async_producer();
                let (stop, seen) = (Arc::clone(&stop), Arc::clone(&seen));
                rt.spawn(produce(producer, h as u32, seed, max, stop, seen))
            })
            .collect();
        let (returned, stats) = rt.block_on(async {
            tokio::time::sleep(Duration::from_millis(rng.u64(20..=60))).await;
            let mut driver = driver;
            if abort_driver {
                if let Some(driver) = driver.take() {
                    driver.abort();
                    let _ = driver.await;
                }
            }
            progress.set(format!("{what}: shutdown_async"));
            let outcome = dispatcher.shutdown_async(end_timeout).await;
            stop.store(true, SeqCst);
            if let Some(driver) = driver {
                let _ = driver.await;
            }
            match outcome {
                Ok(report) => (Vec::new(), report.stats),
                Err(err) => {
                    let stats = err.report.stats;
                    (err.into_inner(), stats)
                }
            }
        });
        progress.set(format!("{what}: joining"));
        let logs: Vec<Log> = rt.block_on(async {
            let mut logs = Vec::new();
            for task in tasks {
                logs.push(task.await.unwrap());
            }
            if let Some(consumers) = consumers {
                consumers.await.unwrap();
            }
            logs
        });
        let returned_ids: Vec<Id> = returned.iter().map(hid).collect();
        let deadline = Instant::now() + Duration::from_secs(3);
        while seen.fated() + returned_ids.len() < stats.accepted as usize
            && Instant::now() < deadline
        {
            thread::sleep(Duration::from_millis(2));
        }
        let mut fates: std::collections::HashMap<Id, usize> = std::collections::HashMap::new();
        for id in seen
            .delivered
            .lock()
            .unwrap()
            .iter()
            .flatten()
            .chain(seen.evicted.lock().unwrap().iter())
            .chain(seen.failed.lock().unwrap().iter())
            .chain(returned_ids.iter())
        {
            *fates.entry(*id).or_default() += 1;
        }
        let mut problems = seen.problems.lock().unwrap().clone();
        for (handle, log) in logs.iter().enumerate() {
            for &seq in &log.accepted {
                let n = fates.get(&(handle as u32, seq)).copied().unwrap_or(0);
                if n != 1 {
                    problems.push(format!("accepted event {:?} has {n} fates", (handle, seq)));
                }
            }
            for &seq in &log.refused {
                if fates.contains_key(&(handle as u32, seq)) {
                    problems.push(format!(
                        "event {:?}, refused or cancelled, has a fate",
                        (handle, seq)
                    ));
                }
            }
        }
        let accepted: usize = logs.iter().map(|l| l.accepted.len()).sum();
        if stats.accepted as usize != accepted || fates.len() != accepted {
            problems.push(format!(
                "producers got Ok for {accepted}, stats.accepted {}, {} events have a fate: {stats:?}",
                stats.accepted,
                fates.len()
            ));
        }
        if stats.buffered_items != stats.in_flight_items {
            problems.push(format!(
                "after shutdown, events buffered outside the sink: {stats:?}"
            ));
        }
        assert_balanced(&stats);
        println!(
            "  accepted {accepted}, refused or cancelled {}, delivered {}, evicted {}, failed {}, returned {}",
            logs.iter().map(|l| l.refused.len()).sum::<usize>(),
            seen.delivered
                .lock()
                .unwrap()
                .iter()
                .map(Vec::len)
                .sum::<usize>(),
            seen.evicted.lock().unwrap().len(),
            seen.failed.lock().unwrap().len(),
            returned_ids.len()
        );
        problems.truncate(20);
        assert!(problems.is_empty(), "{what}\n{}", problems.join("\n"));
    }

    fn run(name: &str, sink: bool) {
        quiet_chaos_panics();
        let replay: Option<u64> = std::env::var("ATTACK_SEED")
            .ok()
            .and_then(|s| s.parse().ok());
        watchdog(name, move |progress| {
            let started = Instant::now();
            let mut master = fastrand::Rng::new();
            let mut rounds = 0;
            while rounds == 0 || (replay.is_none() && started.elapsed() < Duration::from_secs(2)) {
                round(replay.unwrap_or_else(|| master.u64(..)), sink, &progress);
                rounds += 1;
            }
        });
    }

    #[test]
    fn async_hammer_streams() {
        run("async hammer streams", false);
    }

    #[test]
    fn async_hammer_sink() {
        run("async hammer sink", true);
    }
}

// ---------------------------------------------------------------------------
// Extreme sizes and settings
// ---------------------------------------------------------------------------

/// Contract: `max_buffered_bytes(usize::MAX)` is refused by the builder
/// with a `ConfigError` naming it, or works without overflow. The largest
/// limit the builder accepts must then work with weights near it: no
/// overflow, no panic, exact accounting, DropOldest evicting correctly.
#[test]
fn limits_and_weights_near_usize_max_never_overflow() {
    watchdog("usize::MAX", |_| {
        match Dispatcher::<Ev>::builder()
            .max_buffered_bytes(usize::MAX)
            .build()
        {
            Err(err) => assert_eq!(err.field(), "max_buffered_bytes"),
            Ok((dispatcher, _batches)) => {
                let producer = dispatcher.producer();
                producer.try_enqueue(ev(0, 0, usize::MAX)).unwrap();
                assert!(matches!(
                    producer.try_enqueue(ev(0, 1, 1)),
                    Err(TryEnqueueError::Full(_))
                ));
            }
        }
        // Find the largest accepted limit by halving from usize::MAX.
        let mut max = usize::MAX;
        let (dispatcher, batches) = loop {
            match Dispatcher::<Ev>::builder()
                .interval(LONG)
                .max_buffered_bytes(max)
                .max_batch_bytes(max)
                .partitions(3)
                .policy(Policy::DropOldest)
                .build()
            {
                Ok(built) => break built,
                Err(_) => max /= 2,
            }
        };
        assert!(max >= usize::MAX / 2, "the limit stops at {max}");
        let half = max / 2 + 1;
        let a = dispatcher.producer();
        let b = dispatcher.producer();
        a.try_enqueue(ev(0, 0, half)).unwrap();
        // Two halves do not fit: DropOldest evicts the first (other partition).
        b.try_enqueue(ev(1, 0, half)).unwrap();
        let stats = dispatcher.stats();
        assert_eq!(
            (stats.dropped, stats.buffered_bytes, stats.buffered_items),
            (1, half, 1),
            "{stats:?}"
        );
        // Heavier than the limit, alone or as a group whose sum overflows.
        assert!(matches!(
            a.try_enqueue(ev(0, 1, usize::MAX)),
            Err(TryEnqueueError::TooLarge(_))
        ));
        assert!(matches!(
            a.try_enqueue_all(vec![ev(0, 2, half), ev(0, 3, half), ev(0, 4, usize::MAX)]),
            Err(TryEnqueueError::TooLarge(group)) if group.len() == 3
        ));
        // Exactly the limit fits (evicting the other half).
        a.try_enqueue(ev(0, 5, max)).unwrap();
        let stats = dispatcher.stats();
        assert_eq!((stats.buffered_bytes, stats.dropped), (max, 2), "{stats:?}");
        assert!(stats.peak_buffered_bytes <= max, "{stats:?}");
        dispatcher.flush();
        let batch = batches.try_recv().unwrap();
        assert_eq!((seqs(batch.items()), batch.bytes()), (vec![5], max));
        let stats = dispatcher.stats();
        assert_eq!(stats.delivered_bytes, max as u64, "{stats:?}");
        assert_eq!((stats.buffered_bytes, stats.buffered_items), (0, 0));
        assert_balanced(&stats);
    });
}

/// Contract: tiny limits work: with `max_buffered_bytes(1)` every event
/// (even an empty one, charged one byte) fills the dispatcher; Block
/// producers take turns as a receiver frees the byte, each handle in order.
#[test]
fn a_one_byte_limit_lets_blocked_producers_through_one_at_a_time_in_order() {
    watchdog("one byte", |progress| {
        let (dispatcher, batches) = Dispatcher::<Ev>::builder()
            .interval(Duration::from_micros(200))
            .max_buffered_bytes(1)
            .max_batch_bytes(1)
            .partitions(4)
            .policy(Policy::Block {
                timeout: Duration::from_secs(10),
            })
            .build()
            .unwrap();
        let producers: Vec<_> = (0..8u32)
            .map(|h| {
                let producer = dispatcher.producer();
                thread::spawn(move || {
                    for seq in 0..50 {
                        producer.enqueue(ev(h, seq, (seq % 2) as usize)).unwrap();
                    }
                })
            })
            .collect();
        progress.set("receiving 400 one-byte events");
        let mut next = [0u32; 8];
        let mut received = 0;
        while received < 400 {
            let batch = batches.recv_timeout(Duration::from_secs(5)).unwrap();
            assert!(batch.len() == 1 && batch.bytes() == 1, "{batch:?}");
            let e = &batch[0];
            assert_eq!(
                e.seq, next[e.handle as usize],
                "handle {} out of order",
                e.handle
            );
            next[e.handle as usize] += 1;
            received += 1;
            assert!(dispatcher.stats().buffered_bytes <= 1);
        }
        producers.into_iter().for_each(|p| p.join().unwrap());
        let stats = dispatcher.stats();
        assert_eq!(
            (stats.accepted, stats.delivered, stats.peak_buffered_bytes),
            (400, 400, 1)
        );
        dispatcher.shutdown(Duration::from_secs(1)).unwrap();
    });
}

/// Contract: `build()` refuses the sink settings it would ignore, with a
/// `ConfigError` naming the setting.
#[test]
fn build_refuses_every_sink_setting_by_name() {
    let cases: Vec<(&str, dispatcher::Builder<Ev>)> = vec![
        ("flush_workers", Dispatcher::builder().flush_workers(1)),
        (
            "flush_timeout",
            Dispatcher::builder().flush_timeout(Duration::from_secs(30)),
        ),
        (
            "retry",
            Dispatcher::builder().retry(dispatcher::sink::Retry::default()),
        ),
        (
            "on_flush_error",
            Dispatcher::builder().on_flush_error(|_, _| {}),
        ),
    ];
    for (setting, builder) in cases {
        match builder.max_buffered_bytes(64).build() {
            Ok(_) => panic!("build() accepted {setting}, which it ignores"),
            Err(err) => assert_eq!(err.field(), setting, "{err}"),
        }
    }
}

/// Contract: a `Batch` is the receiver's; it stays readable, and dropping
/// it is harmless, after the dispatcher was shut down and dropped, and a
/// receiver then sees the end.
#[test]
fn a_batch_kept_across_shutdown_stays_valid() {
    watchdog("batch kept", |_| {
        let (dispatcher, batches) = Dispatcher::<Ev>::builder()
            .interval(LONG)
            .partitions(2)
            .build()
            .unwrap();
        let producer = dispatcher.producer();
        for seq in 0..3 {
            producer.try_enqueue(ev(0, seq, 5)).unwrap();
        }
        dispatcher.flush();
        let kept = batches.recv().unwrap();
        producer.try_enqueue(ev(0, 3, 5)).unwrap();
        let consumer = thread::spawn(move || {
            let rest: Vec<u32> = batches.iter().flat_map(|b| seqs(b.items())).collect();
            (rest, batches)
        });
        let report = dispatcher.shutdown(Duration::from_secs(5)).unwrap();
        assert_eq!(report.delivered_total, 4);
        let (rest, batches) = consumer.join().unwrap();
        assert_eq!(rest, [3]);
        assert_eq!(seqs(kept.items()), [0, 1, 2]);
        assert!(batches.try_recv().is_err());
        drop(producer);
        drop(batches);
        assert_eq!(kept.bytes(), 15);
        drop(kept);
    });
}

// ---------------------------------------------------------------------------
// Wake-ups only: no timer can hide a lost notification
// ---------------------------------------------------------------------------

/// Contract: no waiter that can proceed stays asleep. Intervals and Block
/// timeouts are an hour here, so all progress comes from notifications:
/// blocked producers (threads and async tasks) wait for room, receivers
/// wait for batches, a checkpoint thread loops on `flush_and_wait` (which
/// waits for the receivers), and shutdown waits for the drain. Any lost
/// wake-up stalls the chain and the watchdog names the trial.
#[test]
fn every_wait_is_ended_by_a_notification_alone() {
    watchdog("wake-ups only", |progress| {
        let started = Instant::now();
        let mut trial = 0u64;
        let mut master = fastrand::Rng::new();
        while started.elapsed() < Duration::from_secs(3) {
            trial += 1;
            let seed = master.u64(..);
            wake_up_trial(seed, trial, &progress);
        }
        println!("wake-ups only: {trial} trials");
    });
}

fn wake_up_trial(seed: u64, trial: u64, progress: &Progress) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let limit = rng.usize(1..=16);
    let partitions = rng.usize(1..=4);
    let threads = rng.u32(1..=6);
    let tasks = if cfg!(feature = "async") {
        rng.u32(0..=4)
    } else {
        0
    };
    let receivers = rng.usize(1..=3);
    let per_handle = rng.u32(20..=80);
    let mut builder = Dispatcher::<Ev>::builder()
        .interval(LONG)
        .max_buffered_bytes(limit)
        .partitions(partitions)
        .policy(Policy::Block { timeout: LONG });
    if rng.bool() {
        builder = builder.max_batch_items(rng.usize(1..=4));
    }
    if rng.bool() {
        builder = builder.max_batch_bytes(rng.usize(1..=limit));
    }
    let (dispatcher, batches) = builder.build().unwrap();
    let dispatcher = Arc::new(dispatcher);
    let total = (threads + tasks) * per_handle;
    let what = format!(
        "trial {trial} (seed {seed}): limit {limit}, partitions {partitions}, {threads} threads + \
         {tasks} tasks x {per_handle} events, {receivers} receivers"
    );
    progress.set(format!("{what}: running"));

    let delivered = Arc::new(Mutex::new(Vec::new()));
    let receiving: Vec<_> = (0..receivers)
        .map(|_| {
            let (batches, delivered) = (batches.clone(), Arc::clone(&delivered));
            thread::spawn(move || {
                for batch in &batches {
                    let ids: Vec<(u32, u32)> = batch.iter().map(|e| (e.handle, e.seq)).collect();
                    delivered.lock().unwrap().push(ids);
                }
            })
        })
        .collect();
    drop(batches);
    let weights = Arc::new(move |h: u32, seq: u32| 1 + (h as usize * 7 + seq as usize * 3) % limit);
    let producing: Vec<_> = (0..threads)
        .map(|h| {
            let (producer, weights) = (dispatcher.producer(), Arc::clone(&weights));
            thread::spawn(move || {
                for seq in 0..per_handle {
                    producer.enqueue(ev(h, seq, weights(h, seq))).unwrap();
                }
            })
        })
        .collect();
    #[cfg(feature = "async")]
    let runtime = (tasks > 0).then(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        let handles: Vec<_> = (threads..threads + tasks)
            .map(|h| {
                let (producer, weights) = (dispatcher.async_producer(), Arc::clone(&weights));
                rt.spawn(async move {
                    for seq in 0..per_handle {
                        producer.enqueue(ev(h, seq, weights(h, seq))).await.unwrap();
                    }
                })
            })
            .collect();
        (rt, handles)
    });
    let checkpoints = {
        let dispatcher = Arc::clone(&dispatcher);
        thread::spawn(move || {
            let mut rounds = 0u64;
            while dispatcher.stats().accepted < u64::from(total) {
                dispatcher.flush_and_wait(LONG).unwrap();
                rounds += 1;
            }
            dispatcher.flush_and_wait(LONG).unwrap();
            rounds
        })
    };
    for p in producing {
        p.join().unwrap();
    }
    #[cfg(feature = "async")]
    if let Some((rt, handles)) = runtime {
        rt.block_on(async {
            for h in handles {
                h.await.unwrap();
            }
        });
    }
    progress.set(format!("{what}: last checkpoint"));
    checkpoints.join().unwrap();
    progress.set(format!("{what}: shutdown"));
    let dispatcher = Arc::try_unwrap(dispatcher).unwrap_or_else(|_| unreachable!());
    let report = dispatcher.shutdown(LONG).unwrap();
    for r in receiving {
        r.join().unwrap();
    }
    let delivered = delivered.lock().unwrap();
    let mut all: Vec<(u32, u32)> = delivered.iter().flatten().copied().collect();
    assert_eq!(report.delivered_total, u64::from(total), "{what}");
    for batch in delivered.iter() {
        for pair in batch.windows(2) {
            assert!(
                pair[0].0 != pair[1].0 || pair[0].1 < pair[1].1,
                "{what}: {pair:?} out of order in one batch"
            );
        }
    }
    all.sort_unstable();
    all.dedup();
    assert_eq!(
        all.len(),
        total as usize,
        "{what}: events lost or duplicated"
    );
}

// ---------------------------------------------------------------------------
// No busy waiting, in every kind of wait
// ---------------------------------------------------------------------------

/// CPU ticks (utime + stime) of one thread of this process.
#[cfg(target_os = "linux")]
fn thread_ticks(tid: &str) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")) else {
        return 0; // the thread ended
    };
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// The calling thread's id.
#[cfg(target_os = "linux")]
fn my_tid() -> String {
    let link = std::fs::read_link("/proc/thread-self").unwrap();
    link.file_name().unwrap().to_string_lossy().into_owned()
}

/// Threads of this process whose name starts with `prefix`.
#[cfg(target_os = "linux")]
fn tids_named(prefix: &str) -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let comm = std::fs::read_to_string(entry.path().join("comm")).ok()?;
            comm.starts_with(prefix)
                .then(|| entry.file_name().to_string_lossy().into_owned())
        })
        .collect()
}

/// Contract: no busy waiting. Every kind of wait is held for a second and
/// the waiting threads' CPU time is measured (their own, so other tests
/// running meanwhile do not count): idle flush workers, a worker in a retry
/// backoff, a producer blocked for room behind a stuck sink, a
/// `flush_and_wait` and a `shutdown` waiting for a stuck sink, a receiver
/// waiting for a batch due in `Duration::MAX`, and async waits (an enqueue
/// future, a stream, an idle async sink driver) on a current-thread runtime.
#[cfg(all(target_os = "linux", feature = "async"))]
#[test]
fn no_wait_spins() {
    use dispatcher::nonblocking::AsyncSink;
    use dispatcher::sink::{Retry, SinkError};
    use futures_util::StreamExt;

    struct Idle;
    impl AsyncSink<Ev> for Idle {
        async fn write(&self, _: &Batch<Ev>, _: &FlushContext) -> Result<(), SinkError> {
            Ok(())
        }
    }

    watchdog("no wait spins", |progress| {
        let gate = Arc::new(Gate::default());
        let stuck_sink = |gate: &Arc<Gate>| {
            let gate = Arc::clone(gate);
            sink::from_fn(
                move |_: &Batch<Ev>, _: &FlushContext| -> Result<(), String> {
                    gate.wait();
                    Ok(())
                },
            )
        };
        let mut tids: Vec<String> = Vec::new();
        let (tid_tx, tid_rx) = mpsc::channel::<String>();

        // Idle flush workers, short interval.
        let idle = Dispatcher::<Ev>::builder()
            .name("zi")
            .interval(Duration::from_millis(1))
            .flush_workers(2)
            .build_with_sink(stuck_sink(&gate))
            .unwrap();
        // A worker sleeping in a retry backoff of an hour.
        let backoff = Dispatcher::<Ev>::builder()
            .name("zb")
            .interval(LONG)
            .retry(Retry::new(2, LONG, LONG))
            .build_with_sink(sink::from_fn(
                |_: &Batch<Ev>, _: &FlushContext| -> Result<(), String> { Err("down".into()) },
            ))
            .unwrap();
        backoff.producer().try_enqueue(ev(0, 0, 1)).unwrap();
        backoff.flush();
        // A stuck sink; behind it a blocked producer and a checkpoint.
        let stuck = Arc::new(
            Dispatcher::<Ev>::builder()
                .name("zs")
                .interval(LONG)
                .max_buffered_bytes(2)
                .policy(Policy::Block { timeout: LONG })
                .build_with_sink(stuck_sink(&gate))
                .unwrap(),
        );
        stuck.producer().try_enqueue(ev(0, 0, 1)).unwrap();
        stuck.flush();
        stuck.producer().try_enqueue(ev(0, 1, 1)).unwrap();
        let blocked = {
            let (producer, tx) = (stuck.producer(), tid_tx.clone());
            thread::spawn(move || {
                tx.send(my_tid()).unwrap();
                producer.enqueue(ev(1, 0, 1)).is_ok()
            })
        };
        let checkpoint = {
            let (stuck, tx) = (Arc::clone(&stuck), tid_tx.clone());
            thread::spawn(move || {
                tx.send(my_tid()).unwrap();
                stuck.flush_and_wait(LONG).is_ok()
            })
        };
        // A shutdown waiting for a stuck sink.
        let draining = Dispatcher::<Ev>::builder()
            .name("zd")
            .interval(LONG)
            .build_with_sink(stuck_sink(&gate))
            .unwrap();
        draining.producer().try_enqueue(ev(0, 0, 1)).unwrap();
        draining.producer().try_enqueue(ev(0, 1, 1)).unwrap();
        let shutdown = {
            let tx = tid_tx.clone();
            thread::spawn(move || {
                tx.send(my_tid()).unwrap();
                draining.shutdown(LONG).is_ok()
            })
        };
        // A receiver waiting for a batch due in Duration::MAX.
        let (never, never_batches) = Dispatcher::<Ev>::builder()
            .interval(Duration::MAX)
            .build()
            .unwrap();
        never.producer().try_enqueue(ev(0, 0, 1)).unwrap();
        let receiver = {
            let tx = tid_tx.clone();
            thread::spawn(move || {
                tx.send(my_tid()).unwrap();
                never_batches.recv().map(|b| b.len())
            })
        };
        // Async waits on one current-thread runtime.
        let (full, full_batches) = Dispatcher::<Ev>::builder()
            .interval(LONG)
            .max_buffered_bytes(1)
            .policy(Policy::Block { timeout: LONG })
            .build()
            .unwrap();
        full.producer().try_enqueue(ev(0, 0, 1)).unwrap();
        let (async_idle, driver) = Dispatcher::<Ev>::builder()
            .interval(Duration::from_millis(1))
            .build_with_async_sink(Idle)
            .unwrap();
        let waiting = full.async_producer().enqueue(ev(1, 0, 1));
        let (wake_tx, wake_rx) = tokio::sync::oneshot::channel::<()>();
        let runtime = {
            let tx = tid_tx.clone();
            thread::spawn(move || {
                tx.send(my_tid()).unwrap();
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async move {
                    let driver = tokio::spawn(driver);
                    let enqueue = tokio::spawn(waiting);
                    let mut stream = full_batches.into_stream();
                    let streamed =
                        tokio::spawn(async move { stream.next().await.map(|b| b.len()) });
                    let _ = wake_rx.await;
                    (
                        enqueue.await.unwrap().is_ok(),
                        streamed.await.unwrap(),
                        driver.await.is_ok(),
                    )
                })
            })
        };
        drop(tid_tx);
        tids.extend(tid_rx.iter().take(5));
        thread::sleep(Duration::from_millis(200));
        for prefix in ["zi-flush", "zb-flush", "zs-flush", "zd-flush"] {
            let named = tids_named(prefix);
            assert!(!named.is_empty(), "no thread named {prefix}*");
            tids.extend(named);
        }

        progress.set("measuring one idle second");
        let before: Vec<u64> = tids.iter().map(|t| thread_ticks(t)).collect();
        thread::sleep(Duration::from_secs(1));
        let used: Vec<u64> = tids
            .iter()
            .zip(&before)
            .map(|(t, b)| thread_ticks(t) - b)
            .collect();

        progress.set("waking everything");
        gate.open();
        let _ = wake_tx.send(());
        drop(full);
        drop(async_idle);
        drop(idle);
        drop(backoff);
        drop(never);
        assert!(blocked.join().unwrap());
        assert!(checkpoint.join().unwrap());
        assert!(shutdown.join().unwrap());
        assert_eq!(receiver.join().unwrap(), Ok(1));
        let (enqueued, streamed, drove) = runtime.join().unwrap();
        assert!(!enqueued, "closed while waiting");
        assert_eq!((streamed, drove), (Some(1), true));
        let total: u64 = used.iter().sum();
        println!("no wait spins: {} threads, ticks {used:?}", tids.len());
        assert!(
            total <= 5,
            "{} waiting threads used {total} CPU ticks in an idle second ({used:?}): busy waiting",
            tids.len()
        );
    });
}

// ---------------------------------------------------------------------------
// The last receiver leaves while producers wait
// ---------------------------------------------------------------------------

/// Contract: when every receiver is dropped, producers blocked for room —
/// threads under Block, `enqueue_timeout` waiters and async futures, on
/// every partition — get `Closed` (with their item) promptly, never `Ok`;
/// and shutdown then returns everything that was accepted.
#[cfg(feature = "async")]
#[test]
fn when_the_last_receiver_leaves_every_waiting_producer_gets_closed_promptly() {
    use futures_util::StreamExt;

    watchdog("last receiver leaves", |progress| {
        let (dispatcher, batches) = Dispatcher::<Ev>::builder()
            .interval(LONG)
            .max_buffered_bytes(8)
            .partitions(4)
            .policy(Policy::Block { timeout: LONG })
            .build()
            .unwrap();
        let filler = dispatcher.producer();
        for seq in 0..8 {
            filler.try_enqueue(ev(99, seq, 1)).unwrap();
        }
        let started = Instant::now();
        let mut waiters = Vec::new();
        for h in 0..6u32 {
            let producer = dispatcher.producer();
            waiters.push(thread::spawn(move || match producer.enqueue(ev(h, 0, 1)) {
                Err(dispatcher::EnqueueError::Closed(back)) => Ok((back.handle, Instant::now())),
                other => Err(format!("blocked producer {h} got {other:?}")),
            }));
        }
        for h in 6..8u32 {
            let producer = dispatcher.producer();
            waiters.push(thread::spawn(move || {
                match producer.enqueue_timeout(ev(h, 0, 1), LONG) {
                    Err(dispatcher::EnqueueTimeoutError::Closed(back)) => {
                        Ok((back.handle, Instant::now()))
                    }
                    other => Err(format!("enqueue_timeout waiter {h} got {other:?}")),
                }
            }));
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let futures: Vec<_> = (8..11u32)
            .map(|h| {
                let producer = dispatcher.async_producer();
                rt.spawn(async move {
                    match producer.enqueue(ev(h, 0, 1)).await {
                        Err(dispatcher::EnqueueError::Closed(back)) => {
                            Ok((back.handle, Instant::now()))
                        }
                        other => Err(format!("async producer {h} got {other:?}")),
                    }
                })
            })
            .collect();
        // Receivers: the original, a clone that timed out waiting on its
        // own thread, and a stream.
        let clone = batches.clone();
        let stream_task = rt.spawn({
            let mut stream = batches.clone().into_stream();
            async move { stream.next().await.map(|b| b.len()) }
        });
        let timed_out = thread::spawn(move || {
            let got = clone
                .recv_timeout(Duration::from_millis(50))
                .map(|b| b.len());
            (got, clone)
        });
        let (got, clone) = timed_out.join().unwrap();
        assert!(got.is_err(), "nothing is sealed");
        thread::sleep(Duration::from_millis(50));
        assert_eq!(dispatcher.stats().accepted, 8, "nothing got in meanwhile");

        progress.set("dropping every receiver");
        stream_task.abort();
        let _ = rt.block_on(stream_task);
        drop(batches);
        let gone = Instant::now();
        drop(clone);
        let mut outcomes: Vec<Result<(u32, Instant), String>> =
            waiters.into_iter().map(|w| w.join().unwrap()).collect();
        rt.block_on(async {
            for f in futures {
                outcomes.push(f.await.unwrap());
            }
        });
        let problems: Vec<String> = outcomes.iter().filter_map(|o| o.clone().err()).collect();
        assert!(problems.is_empty(), "{problems:?}");
        let slowest = outcomes
            .iter()
            .filter_map(|o| o.as_ref().ok())
            .map(|(_, at)| at.saturating_duration_since(gone))
            .max()
            .unwrap();
        assert!(
            slowest < Duration::from_secs(1),
            "a waiter learned it {slowest:?} late"
        );
        let timeout = dispatcher.shutdown(Duration::from_secs(5)).unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "shutdown waited for no receiver"
        );
        assert_eq!(timeout.undelivered.len(), 8, "{:?}", timeout.report);
    });
}

// ---------------------------------------------------------------------------
// One current-thread runtime runs everything
// ---------------------------------------------------------------------------

/// Contract: async waits never block the thread, and `shutdown_async`
/// works inside a current-thread runtime that also runs what the drain
/// depends on. Here one current-thread runtime runs async producers blocked
/// for room, a stream consumer, an async sink driver of a second
/// dispatcher fed by that consumer, and both shutdowns, under load.
#[cfg(feature = "async")]
#[test]
fn one_current_thread_runtime_runs_producers_consumer_sink_and_shutdowns() {
    use dispatcher::nonblocking::AsyncSink;
    use dispatcher::sink::SinkError;
    use futures_util::StreamExt;

    struct Collect(Arc<Mutex<Vec<(u32, u32)>>>);
    impl AsyncSink<Ev> for Collect {
        async fn write(&self, batch: &Batch<Ev>, _: &FlushContext) -> Result<(), SinkError> {
            tokio::task::yield_now().await;
            self.0
                .lock()
                .unwrap()
                .extend(batch.iter().map(|e| (e.handle, e.seq)));
            Ok(())
        }
    }

    watchdog("one current-thread runtime", |progress| {
        let written = Arc::new(Mutex::new(Vec::new()));
        let (front, front_batches) = Dispatcher::<Ev>::builder()
            .interval(Duration::from_millis(1))
            .max_buffered_bytes(16)
            .partitions(2)
            .policy(Policy::Block { timeout: LONG })
            .build()
            .unwrap();
        let (back, driver) = Dispatcher::<Ev>::builder()
            .interval(Duration::from_millis(1))
            .max_buffered_bytes(8)
            .flush_workers(2)
            .policy(Policy::Block { timeout: LONG })
            .build_with_async_sink(Collect(Arc::clone(&written)))
            .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        progress.set("running");
        let (front_report, back_report) = rt.block_on(async move {
            let driver = tokio::spawn(driver);
            let relay = {
                let forward = back.async_producer();
                let mut stream = front_batches.into_stream();
                tokio::spawn(async move {
                    while let Some(batch) = stream.next().await {
                        for e in batch.iter() {
                            forward.enqueue(e.clone()).await.unwrap();
                        }
                    }
                })
            };
            let producers: Vec<_> = (0..6u32)
                .map(|h| {
                    let producer = front.async_producer();
                    tokio::spawn(async move {
                        for seq in 0..200 {
                            producer
                                .enqueue(ev(h, seq, 1 + (seq % 3) as usize))
                                .await
                                .unwrap();
                        }
                    })
                })
                .collect();
            for p in producers {
                p.await.unwrap();
            }
            let front_report = front.shutdown_async(Duration::from_secs(10)).await.unwrap();
            relay.await.unwrap();
            let back_report = back.shutdown_async(Duration::from_secs(10)).await.unwrap();
            driver.await.unwrap();
            (front_report, back_report)
        });
        assert_eq!(front_report.delivered_total, 1200);
        assert_eq!(back_report.delivered_total, 1200);
        let written = written.lock().unwrap();
        let mut next = [0u32; 6];
        for &(h, seq) in written.iter() {
            // Two sink workers may finish batches out of order, but each
            // handle's events are all there once.
            next[h as usize] += 1;
            assert!(seq < 200);
        }
        assert_eq!(next, [200; 6]);
        let mut sorted = written.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 1200);
    });
}
