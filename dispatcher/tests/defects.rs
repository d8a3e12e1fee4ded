//! Regression tests for defects found by an independent check; each test
//! guards one contract:
//!
//! - `defect1_*`: DropOldest with partitions keeps the summed weight of
//!   accepted, undelivered events within `max_buffered_bytes` (the peak, the
//!   gauge and what `stop` returns).
//! - `defect2_*`: DropOldest with partitions never evicts accepted events for
//!   an admission it then refuses as `Full`.
//! - `defect3_*`: under the Block policy, a waiting producer whose event fits
//!   after a delivery is admitted then, even if another waiter that does not
//!   fit was woken first.
//! - `defect4_*`: with partitions, a producer blocked for room while `stop`
//!   runs gets `Closed`, never `Ok`.
//! - `defect5_*` (feature `async`): dropping the async `SinkDriver` in the
//!   middle of a write loses no event: the batch it held is failed (error
//!   hook) or returned by shutdown, and the counters balance.
//! - `defect6_*`: `Duration::MAX` for the interval or its jitter is either
//!   refused by the builder (naming the field) or means "never cut by time";
//!   it never panics a receiver, a flush or the stream. (The timeouts that
//!   already saturate — Block's, `enqueue_timeout`, `recv_timeout` — are
//!   guarded alongside and pass today.)
//! - `defect7_*`: an event whose `Weight` is not stable (or panics) cannot
//!   corrupt the accounting: evictions and re-cuts under new limits keep the
//!   byte bound, the counters balance, everything delivered brings
//!   `buffered_bytes` back to 0, and no event is lost — also when `weight()`
//!   panics in `set_limits` or during an eviction (the panic may reach the
//!   caller; the events must survive it).

#![allow(missing_docs)]

mod common;

use std::any::Any;
use std::cell::Cell;
use std::collections::BTreeSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use common::{LONG, WATCHDOG, assert_balanced, block, spawn, with_watchdog};
use dispatcher::{
    Batches, Dispatcher, EnqueueError, Policy, RecvTimeoutError, TryEnqueueError, TryRecvError,
    Weight,
};

/// How long a test waits for something that must happen promptly; only a
/// stranded waiter or a lost wake-up takes that long.
const PROMPT: Duration = Duration::from_secs(5);

fn panic_text(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "<non-string panic>".into())
}

/// Runs `f`; a panic fails the test with a message saying what panicked.
fn no_panic<R>(what: &str, f: impl FnOnce() -> R) -> R {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(value) => value,
        Err(payload) => panic!("{what} panicked: {}", panic_text(&*payload)),
    }
}

// ---------------------------------------------------------------------------
// 1. DropOldest + partitions: the byte bound.
// ---------------------------------------------------------------------------

#[test]
fn defect1_drop_oldest_with_partitions_never_holds_more_than_max_buffered_bytes() {
    with_watchdog(WATCHDOG, "defect1", || {
        const MAX: usize = 1000;
        for round in 0..10 {
            let (dispatcher, batches) = Dispatcher::<Vec<u8>>::builder()
                .interval(LONG)
                .max_buffered_bytes(MAX)
                .partitions(2)
                .policy(Policy::DropOldest)
                .build()
                .unwrap();
            let threads: Vec<_> = (0..2)
                .map(|_| {
                    let producer = dispatcher.producer();
                    thread::spawn(move || {
                        for _ in 0..50_000 {
                            let _ = producer.try_enqueue(vec![0; 10]);
                        }
                    })
                })
                .collect();
            threads.into_iter().for_each(|t| t.join().unwrap());
            let stats = dispatcher.stats();
            let returned = dispatcher.stop();
            drop(batches);
            let held: usize = returned.iter().map(Vec::len).sum();
            assert!(
                stats.buffered_bytes <= MAX && stats.peak_buffered_bytes <= MAX && held <= MAX,
                "round {round}: max_buffered_bytes = {MAX} but buffered_bytes = {}, \
                 peak_buffered_bytes = {}, and stop() returned {held} B in {} events",
                stats.buffered_bytes,
                stats.peak_buffered_bytes,
                returned.len()
            );
            assert_eq!(stats.buffered_bytes, held, "round {round}: gauge != held");
        }
    });
}

// ---------------------------------------------------------------------------
// 2. DropOldest + partitions: a refusal evicts nothing.
// ---------------------------------------------------------------------------

thread_local! {
    /// Evictions handed to `on_evict` on this thread (the hook runs on the
    /// thread of the producer whose admission evicted).
    static EVICTED_HERE: Cell<u64> = const { Cell::new(0) };
}

fn evicted_here() -> u64 {
    EVICTED_HERE.with(Cell::get)
}

#[test]
fn defect2_drop_oldest_with_partitions_never_evicts_for_a_refused_event() {
    with_watchdog(WATCHDOG, "defect2", || {
        let (dispatcher, batches) = Dispatcher::<Vec<u8>>::builder()
            .interval(LONG)
            .max_buffered_bytes(1000)
            .partitions(2)
            .policy(Policy::DropOldest)
            .on_evict(|_| EVICTED_HERE.with(|n| n.set(n.get() + 1)))
            .build()
            .unwrap();
        let found = Arc::new(AtomicBool::new(false));
        let threads: Vec<_> = (0..2u64)
            .map(|t| {
                let producer = dispatcher.producer();
                let found = Arc::clone(&found);
                thread::spawn(move || {
                    let mut rng = fastrand::Rng::with_seed(t + 1);
                    let mut refused = 0u64;
                    for i in 0..300_000u32 {
                        if found.load(SeqCst) {
                            break;
                        }
                        let before = evicted_here();
                        let full = if rng.u8(..) < 32 {
                            let group =
                                vec![vec![0; rng.usize(10..100)], vec![0; rng.usize(10..100)]];
                            matches!(
                                producer.try_enqueue_all(group),
                                Err(TryEnqueueError::Full(_))
                            )
                        } else {
                            matches!(
                                producer.try_enqueue(vec![0; rng.usize(10..200)]),
                                Err(TryEnqueueError::Full(_))
                            )
                        };
                        if full {
                            refused += 1;
                            let by_refusal = evicted_here() - before;
                            if by_refusal > 0 {
                                found.store(true, SeqCst);
                                return Err(format!(
                                    "thread {t}, call {i}: refused as Full after evicting \
                                     {by_refusal} accepted events"
                                ));
                            }
                        }
                    }
                    Ok(refused)
                })
            })
            .collect();
        let outcomes: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        let refused: u64 = outcomes.iter().filter_map(|o| o.as_ref().ok()).sum();
        let violations: Vec<_> = outcomes.into_iter().filter_map(Result::err).collect();
        assert!(
            violations.is_empty(),
            "a refusal must evict nothing: {violations:?}"
        );
        // Refusals are what this test looks at; say how many it saw.
        println!("{refused} refusals, none of which evicted");
        drop(batches);
    });
}

// ---------------------------------------------------------------------------
// 3. Block: no waiter that fits stays asleep.
// ---------------------------------------------------------------------------

#[test]
fn defect3_block_policy_admits_a_waiter_that_fits_behind_one_that_does_not() {
    with_watchdog(WATCHDOG, "defect3", || {
        let (dispatcher, batches) = Dispatcher::<Vec<u8>>::builder()
            .interval(LONG)
            .max_buffered_bytes(100)
            .max_batch_bytes(50)
            .policy(block(Duration::from_secs(30)))
            .build()
            .unwrap();
        let producer = dispatcher.producer();
        producer.enqueue(vec![0; 50]).unwrap(); // sealed: reached 50 B
        producer.enqueue(vec![0; 40]).unwrap(); // open
        assert_eq!(dispatcher.stats().buffered_bytes, 90);

        let a = {
            let producer = producer.clone();
            spawn(move || producer.enqueue(vec![1; 70]))
        };
        thread::sleep(Duration::from_millis(200)); // A waits first
        let b = {
            let producer = producer.clone();
            spawn(move || producer.enqueue(vec![2; 20]))
        };
        thread::sleep(Duration::from_millis(200)); // then B
        assert!(a.is_running() && b.is_running(), "both must wait at 90 B");

        // Frees 50 B: 40 B held. B (20 B) fits, A (70 B) does not.
        let first = batches.recv().unwrap();
        assert_eq!(first.bytes(), 50);
        drop(first);

        let admitted = b.try_join_within(PROMPT);
        let a_still_waiting = a.is_running();
        // Unblock whoever still waits before judging.
        let _ = dispatcher.stop();
        let _ = a.join("producer A");
        let b = match admitted {
            Ok(outcome) => outcome,
            Err(b) => {
                let late = b.join("producer B");
                panic!(
                    "producer B (20 B) fits after the delivery (40 B of 100 held) but was not \
                     admitted within {PROMPT:?} of it (its own timeout is 30 s); after stop() \
                     it got {late:?}"
                );
            }
        };
        assert!(b.is_ok(), "producer B: {b:?}");
        assert!(a_still_waiting, "producer A (70 B) cannot fit at 60 B held");
    });
}

// ---------------------------------------------------------------------------
// 4. stop() with partitions: a blocked producer gets Closed.
// ---------------------------------------------------------------------------

#[test]
fn defect4_stop_with_partitions_answers_a_blocked_producer_closed() {
    with_watchdog(WATCHDOG, "defect4", || {
        let mut admitted_rounds = Vec::new();
        const ROUNDS: usize = 10;
        for round in 0..ROUNDS {
            let (dispatcher, batches) = Dispatcher::<Vec<u8>>::builder()
                .interval(LONG)
                .max_buffered_bytes(100)
                .partitions(2)
                .policy(block(Duration::from_secs(30)))
                .build()
                .unwrap();
            let filler = dispatcher.producer(); // partition 0
            let blocked = dispatcher.producer(); // partition 1
            filler.try_enqueue(vec![0; 100]).unwrap();
            let waiter = spawn(move || blocked.enqueue(vec![1; 50]));
            thread::sleep(Duration::from_millis(50));
            assert!(waiter.is_running(), "round {round}: must wait for room");
            let returned = dispatcher.stop();
            match waiter.join("blocked producer") {
                Err(EnqueueError::Closed(item)) => assert_eq!(item, vec![1; 50]),
                Ok(()) => {
                    assert!(
                        returned.contains(&vec![1; 50]),
                        "round {round}: admitted during stop and not returned by it: lost"
                    );
                    admitted_rounds.push(round);
                }
                other => panic!("round {round}: expected Closed, got {other:?}"),
            }
            drop(batches);
        }
        assert!(
            admitted_rounds.is_empty(),
            "a producer blocked while stop() ran got Ok(()) instead of Closed in {} of \
             {ROUNDS} rounds ({admitted_rounds:?})",
            admitted_rounds.len()
        );
    });
}

// ---------------------------------------------------------------------------
// 5. Async sink: dropping the driver mid-write loses nothing.
// ---------------------------------------------------------------------------

#[cfg(feature = "async")]
mod driver_dropped {
    use super::*;
    use common::{Ev, ev};
    use dispatcher::Batch;
    use dispatcher::nonblocking::{AsyncSink, SinkDriver};
    use dispatcher::sink::{FlushContext, SinkError};

    /// A sink whose writes never complete; counts the writes started.
    pub(super) struct Hang(pub(super) Arc<AtomicUsize>);

    impl AsyncSink<Ev> for Hang {
        async fn write(&self, _batch: &Batch<Ev>, _ctx: &FlushContext) -> Result<(), SinkError> {
            self.0.fetch_add(1, SeqCst);
            std::future::pending().await
        }
    }

    pub(super) struct Setup {
        pub(super) dispatcher: Dispatcher<Ev>,
        pub(super) driver: SinkDriver,
        pub(super) started: Arc<AtomicUsize>,
        pub(super) failed: Arc<Mutex<Vec<u32>>>,
    }

    /// Event 0 in a sealed batch (the driver will take it and hang writing
    /// it), event 1 in the open batch.
    pub(super) fn setup() -> Setup {
        let started = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(Mutex::new(Vec::new()));
        let out = Arc::clone(&failed);
        let (dispatcher, driver) = Dispatcher::<Ev>::builder()
            .interval(LONG)
            .on_flush_error(move |_failure, batch: Batch<Ev>| {
                out.lock().unwrap().extend(batch.iter().map(|e| e.seq));
            })
            .build_with_async_sink(Hang(Arc::clone(&started)))
            .unwrap();
        let producer = dispatcher.producer();
        producer.try_enqueue(ev(0, 0, 10)).unwrap();
        dispatcher.flush();
        producer.try_enqueue(ev(0, 1, 10)).unwrap();
        Setup {
            dispatcher,
            driver,
            started,
            failed,
        }
    }

    /// Shuts down and checks that both events are accounted for.
    pub(super) fn check_nothing_lost(dispatcher: Dispatcher<Ev>, failed: &Mutex<Vec<u32>>) {
        let (returned, stats) = match dispatcher.shutdown(Duration::from_millis(300)) {
            Ok(report) => (Vec::new(), report.stats),
            Err(timeout) => {
                let stats = timeout.report.stats;
                (timeout.into_inner(), stats)
            }
        };
        let mut fates: Vec<u32> = returned.iter().map(|e| e.seq).collect();
        fates.extend(failed.lock().unwrap().iter().copied());
        fates.sort_unstable();
        assert_eq!(
            fates,
            [0, 1],
            "every accepted event must be returned by shutdown or handed to the error hook \
             (nothing was delivered); returned {:?}, failed {:?}; stats {stats:?}",
            returned.iter().map(|e| e.seq).collect::<Vec<_>>(),
            failed.lock().unwrap()
        );
        assert_eq!(
            stats.accepted,
            stats.delivered + stats.dropped + stats.returned + stats.failed,
            "accepted != delivered + dropped + returned + failed after shutdown: {stats:?}"
        );
        assert_eq!(
            (stats.buffered_items, stats.in_flight_items),
            (0, 0),
            "{stats:?}"
        );
    }
}

#[cfg(feature = "async")]
#[test]
fn defect5_dropping_the_sink_driver_future_mid_write_loses_no_event() {
    with_watchdog(WATCHDOG, "defect5 (future dropped)", || {
        let driver_dropped::Setup {
            dispatcher,
            driver,
            started,
            failed,
        } = driver_dropped::setup();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            // Polled until the write hangs, then dropped by the timeout.
            let _ = tokio::time::timeout(Duration::from_millis(300), driver).await;
        });
        assert_eq!(started.load(SeqCst), 1, "the driver started one write");
        driver_dropped::check_nothing_lost(dispatcher, &failed);
    });
}

#[cfg(feature = "async")]
#[test]
fn defect5_aborting_the_sink_driver_task_mid_write_loses_no_event() {
    with_watchdog(WATCHDOG, "defect5 (task aborted)", || {
        let driver_dropped::Setup {
            dispatcher,
            driver,
            started,
            failed,
        } = driver_dropped::setup();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let task = tokio::spawn(driver);
            while started.load(SeqCst) == 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            task.abort();
            assert!(task.await.unwrap_err().is_cancelled());
        });
        driver_dropped::check_nothing_lost(dispatcher, &failed);
    });
}

// ---------------------------------------------------------------------------
// 6. Duration::MAX: refused by the builder, or "never", but no panic.
// ---------------------------------------------------------------------------

type Built = Result<(Dispatcher<Vec<u8>>, Batches<Vec<u8>>), dispatcher::ConfigError>;

/// With an interval that never elapses (or a refusal naming `field`):
/// receiving, flushing and shutting down work and nothing panics.
fn check_never_cut_by_time(built: Built, field: &str) {
    let (dispatcher, batches) = match built {
        Ok(pair) => pair,
        Err(err) => {
            assert_eq!(
                err.field(),
                field,
                "refused, but naming another field: {err}"
            );
            return;
        }
    };
    let producer = dispatcher.producer();
    no_panic("try_enqueue", || producer.try_enqueue(vec![1; 3])).unwrap();
    let empty = no_panic("try_recv", || batches.try_recv());
    assert_eq!(empty.unwrap_err(), TryRecvError::Empty);
    let waited = no_panic("recv_timeout(20 ms)", || {
        batches.recv_timeout(Duration::from_millis(20))
    });
    assert_eq!(waited.unwrap_err(), RecvTimeoutError::Timeout);
    no_panic("flush", || dispatcher.flush());
    let batch = no_panic("recv after flush", || batches.recv_timeout(PROMPT)).unwrap();
    assert_eq!(batch.items(), [vec![1; 3]]);
    drop(batch);
    no_panic("try_enqueue", || producer.try_enqueue(vec![2; 3])).unwrap();
    let report = no_panic("shutdown", || {
        let consumer = thread::spawn(move || batches.iter().map(|b| b.len()).sum::<usize>());
        let report = dispatcher.shutdown(PROMPT);
        (report, consumer.join())
    });
    assert_eq!(report.1.expect("consumer"), 1);
    assert_eq!(report.0.unwrap().stats.delivered, 2);
}

#[test]
fn defect6_interval_duration_max_is_refused_or_never_cuts() {
    with_watchdog(WATCHDOG, "defect6 interval", || {
        check_never_cut_by_time(
            Dispatcher::<Vec<u8>>::builder()
                .interval(Duration::MAX)
                .build(),
            "interval",
        );
    });
}

#[test]
fn defect6_interval_and_jitter_near_duration_max_are_refused_or_never_cut() {
    with_watchdog(WATCHDOG, "defect6 jitter", || {
        let near_max = Duration::MAX - Duration::from_secs(1);
        let built = Dispatcher::<Vec<u8>>::builder()
            .interval(Duration::MAX)
            .interval_jitter(near_max)
            .build();
        let field = match &built {
            Err(err) => err.field(),
            Ok(_) => "",
        };
        assert!(
            built.is_ok() || field == "interval" || field == "interval_jitter",
            "refused naming {field}"
        );
        check_never_cut_by_time(built, field);
    });
}

#[test]
fn defect6_interval_duration_max_set_live_is_refused_or_never_cuts() {
    with_watchdog(WATCHDOG, "defect6 set_limits", || {
        let (dispatcher, batches) = Dispatcher::<Vec<u8>>::builder()
            .interval(Duration::from_secs(60))
            .build()
            .unwrap();
        dispatcher.producer().try_enqueue(vec![1; 3]).unwrap();
        let mut limits = dispatcher.limits();
        limits.interval = Duration::MAX;
        if let Err(err) = dispatcher.set_limits(limits) {
            assert_eq!(err.field(), "interval");
            return;
        }
        let empty = no_panic("try_recv", || batches.try_recv());
        assert_eq!(empty.unwrap_err(), TryRecvError::Empty);
        no_panic("flush", || dispatcher.flush());
        let batch = no_panic("recv", || batches.recv_timeout(PROMPT)).unwrap();
        assert_eq!(batch.len(), 1);
    });
}

/// `Duration::MAX` where it already means "wait as long as it takes": the
/// Block policy's timeout, `enqueue_timeout` and `recv_timeout`. These work
/// today; they guard the same contract as the interval tests above.
#[test]
fn defect6_block_and_recv_timeouts_of_duration_max_wait_without_panicking() {
    with_watchdog(WATCHDOG, "defect6 timeouts", || {
        let (dispatcher, batches) = Dispatcher::<Vec<u8>>::builder()
            .interval(LONG)
            .max_buffered_bytes(10)
            .policy(block(Duration::MAX))
            .build()
            .unwrap();
        let producer = dispatcher.producer();
        producer.enqueue(vec![0; 10]).unwrap();
        let waiting = {
            let producer = producer.clone();
            spawn(move || producer.enqueue(vec![1; 5]))
        };
        let timed = {
            let producer = producer.clone();
            spawn(move || producer.enqueue_timeout(vec![2; 5], Duration::MAX))
        };
        let receiver = {
            let batches = batches.clone();
            spawn(move || batches.recv_timeout(Duration::MAX).map(|b| b.len()))
        };
        thread::sleep(Duration::from_millis(50));
        dispatcher.flush();
        assert_eq!(receiver.join("recv_timeout(MAX)"), Ok(1));
        waiting.join("enqueue under Block(MAX)").unwrap();
        timed.join("enqueue_timeout(MAX)").unwrap();
        assert_eq!(dispatcher.stats().buffered_bytes, 10);
    });
}

#[cfg(feature = "async")]
#[test]
fn defect6_interval_duration_max_never_panics_the_stream() {
    use futures_util::StreamExt;
    with_watchdog(WATCHDOG, "defect6 stream", || {
        let Ok((dispatcher, batches)) = Dispatcher::<Vec<u8>>::builder()
            .interval(Duration::MAX)
            .build()
        else {
            return; // refused by the builder: fine
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let mut stream = batches.into_stream();
        dispatcher.producer().try_enqueue(vec![1; 3]).unwrap();
        let waited = no_panic("stream.next() with an open batch", || {
            rt.block_on(async {
                tokio::time::timeout(Duration::from_millis(20), stream.next())
                    .await
                    .is_err()
            })
        });
        assert!(waited, "the open batch must not be cut by time");
        dispatcher.flush();
        let batch = no_panic("stream.next() after flush", || {
            rt.block_on(async { tokio::time::timeout(PROMPT, stream.next()).await })
        });
        assert_eq!(batch.expect("a batch").expect("not ended").len(), 1);
    });
}

// ---------------------------------------------------------------------------
// 7. A Weight that is not stable.
// ---------------------------------------------------------------------------

/// An event whose weight is `first` on the first call (admission), then
/// `later`; `panic_on` makes that call number panic instead (once).
#[derive(Debug)]
struct Fickle {
    id: u32,
    calls: AtomicUsize,
    first: usize,
    later: usize,
    panic_on: Option<usize>,
}

impl Weight for Fickle {
    fn weight(&self) -> usize {
        let call = self.calls.fetch_add(1, SeqCst);
        if self.panic_on == Some(call) {
            panic!("weight of event {} panics on call {call}", self.id);
        }
        if call == 0 { self.first } else { self.later }
    }
}

fn fickle(id: u32, first: usize, later: usize) -> Fickle {
    Fickle {
        id,
        calls: AtomicUsize::new(0),
        first,
        later,
        panic_on: None,
    }
}

/// Takes every ready batch (flushing the open one) and returns the ids.
fn take_all(dispatcher: &Dispatcher<Fickle>, batches: &Batches<Fickle>) -> Vec<u32> {
    no_panic("flush", || dispatcher.flush());
    let mut ids = Vec::new();
    while let Ok(batch) = no_panic("try_recv", || batches.try_recv()) {
        ids.extend(batch.iter().map(|e| e.id));
    }
    ids
}

/// After everything held was delivered: exact, empty, and admitting again.
fn check_recovered(dispatcher: &Dispatcher<Fickle>, max: usize) {
    let stats = dispatcher.stats();
    assert_balanced(&stats);
    assert_eq!(
        (stats.buffered_bytes, stats.buffered_items),
        (0, 0),
        "everything was delivered, yet the gauges still hold bytes or items: {stats:?}"
    );
    assert!(
        stats.peak_buffered_bytes <= max,
        "peak_buffered_bytes {} > max_buffered_bytes {max}",
        stats.peak_buffered_bytes
    );
    let again = dispatcher.producer().try_enqueue(fickle(999, max, max));
    assert!(
        again.is_ok(),
        "an empty dispatcher refuses {max} B: {again:?}"
    );
}

#[test]
fn defect7_drop_oldest_with_a_weight_that_grows_keeps_exact_accounting() {
    const MAX: usize = 100;
    let (dispatcher, batches) = Dispatcher::<Fickle>::builder()
        .interval(LONG)
        .max_buffered_bytes(MAX)
        .policy(Policy::DropOldest)
        .build()
        .unwrap();
    let producer = dispatcher.producer();
    for id in 0..10 {
        producer.try_enqueue(fickle(id, 10, 1000)).unwrap();
    }
    // Full: admitting one more evicts, which weighs the oldest again (1000 B).
    no_panic("try_enqueue evicting an event whose weight grew", || {
        producer.try_enqueue(fickle(10, 10, 1000))
    })
    .unwrap();
    let stats = dispatcher.stats();
    assert_balanced(&stats);
    assert!(stats.buffered_bytes <= MAX, "{stats:?}");
    let delivered = take_all(&dispatcher, &batches);
    assert_eq!(delivered.len() as u64 + stats.dropped, 11, "{delivered:?}");
    check_recovered(&dispatcher, MAX);
}

#[test]
fn defect7_drop_oldest_with_a_weight_that_shrinks_keeps_the_byte_bound() {
    const MAX: usize = 100;
    let (dispatcher, batches) = Dispatcher::<Fickle>::builder()
        .interval(LONG)
        .max_buffered_bytes(MAX)
        .policy(Policy::DropOldest)
        .build()
        .unwrap();
    let producer = dispatcher.producer();
    producer.try_enqueue(fickle(0, 50, 1)).unwrap();
    producer.try_enqueue(fickle(1, 50, 1)).unwrap();
    // Full: 50 B more must evict 50 B of what admission charged.
    no_panic("try_enqueue", || producer.try_enqueue(fickle(2, 50, 1))).unwrap();
    let stats = dispatcher.stats();
    assert_balanced(&stats);
    assert!(
        stats.buffered_bytes <= MAX && stats.peak_buffered_bytes <= MAX,
        "max_buffered_bytes {MAX}, but buffered_bytes {} (peak {}) while holding {} events \
         charged 50 B each",
        stats.buffered_bytes,
        stats.peak_buffered_bytes,
        stats.buffered_items
    );
    assert_eq!(stats.buffered_bytes, 50 * stats.buffered_items, "{stats:?}");
    take_all(&dispatcher, &batches);
    check_recovered(&dispatcher, MAX);
}

/// Lowering `max_batch_bytes` re-cuts the open batch, weighing its events
/// again.
fn recut_under_new_limits(first: usize, later: usize) {
    const MAX: usize = 1000;
    let (dispatcher, batches) = Dispatcher::<Fickle>::builder()
        .interval(LONG)
        .max_buffered_bytes(MAX)
        .build()
        .unwrap();
    let producer = dispatcher.producer();
    for id in 0..3 {
        producer.try_enqueue(fickle(id, first, later)).unwrap();
    }
    let mut limits = dispatcher.limits();
    limits.max_batch_bytes = Some(50);
    no_panic("set_limits", || dispatcher.set_limits(limits)).unwrap();
    assert_balanced(&dispatcher.stats());
    let delivered = take_all(&dispatcher, &batches);
    assert_eq!(delivered, [0, 1, 2]);
    check_recovered(&dispatcher, MAX);
}

#[test]
fn defect7_set_limits_recut_with_a_weight_that_shrinks_leaves_no_bytes_charged() {
    recut_under_new_limits(100, 1);
}

#[test]
fn defect7_set_limits_recut_with_a_weight_that_grows_keeps_exact_accounting() {
    recut_under_new_limits(30, 1000);
}

#[test]
fn defect7_a_weight_panicking_in_set_limits_loses_no_event() {
    let (dispatcher, batches) = Dispatcher::<Fickle>::builder()
        .interval(LONG)
        .max_buffered_bytes(1000)
        .build()
        .unwrap();
    let producer = dispatcher.producer();
    for id in 0..3 {
        let mut event = fickle(id, 100, 100);
        if id == 1 {
            event.panic_on = Some(1); // the first weighing after admission
        }
        producer.try_enqueue(event).unwrap();
    }
    let mut limits = dispatcher.limits();
    limits.max_batch_bytes = Some(50);
    // The user's panic may reach the caller; the events must survive it.
    let outcome = catch_unwind(AssertUnwindSafe(|| dispatcher.set_limits(limits)));
    let mut fates = take_all(&dispatcher, &batches);
    let stats = dispatcher.stats();
    fates.extend(dispatcher.stop().iter().map(|e| e.id));
    fates.sort_unstable();
    let ids: BTreeSet<u32> = fates.iter().copied().collect();
    assert_eq!(
        fates,
        [0, 1, 2],
        "set_limits {}: every accepted event must be delivered or returned by stop, once; \
         stats after delivering: {stats:?}",
        if outcome.is_err() {
            "panicked"
        } else {
            "returned"
        }
    );
    assert_eq!(ids.len(), 3);
    assert_eq!(
        (stats.buffered_bytes, stats.buffered_items),
        (0, 0),
        "everything was delivered: {stats:?}"
    );
}

#[test]
fn defect7_a_weight_panicking_during_eviction_loses_no_evicted_event() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let hook = Arc::clone(&seen);
    let (dispatcher, batches) = Dispatcher::<Fickle>::builder()
        .interval(LONG)
        .max_buffered_bytes(20)
        .max_batch_items(1)
        .policy(Policy::DropOldest)
        .on_evict(move |e: Fickle| hook.lock().unwrap().push(e.id))
        .build()
        .unwrap();
    let producer = dispatcher.producer();
    producer.try_enqueue(fickle(0, 10, 10)).unwrap();
    let mut second = fickle(1, 10, 10);
    second.panic_on = Some(1); // when eviction weighs it
    producer.try_enqueue(second).unwrap();
    // 20 B must go: event 0 is evicted, then weighing event 1 panics.
    let outcome = catch_unwind(AssertUnwindSafe(|| producer.try_enqueue(fickle(2, 20, 20))));
    let stats = dispatcher.stats();
    assert_balanced(&stats);
    let mut fates = seen.lock().unwrap().clone();
    fates.extend(take_all(&dispatcher, &batches));
    fates.extend(dispatcher.stop().iter().map(|e| e.id));
    let admitted = u32::from(matches!(outcome, Ok(Ok(()))));
    let mut expected: Vec<u32> = (0..2 + admitted).collect();
    fates.sort_unstable();
    expected.sort_unstable();
    assert_eq!(
        fates,
        expected,
        "every accepted event must be evicted to on_evict, delivered or returned (enqueue {}); \
         stats after the panic: {stats:?}",
        match &outcome {
            Err(_) => "panicked".to_string(),
            Ok(result) => format!("returned {result:?}"),
        }
    );
}
