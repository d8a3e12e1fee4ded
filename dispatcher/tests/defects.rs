//! Regression tests for defects found by an independent check (1-5; 6 and
//! 7 are in `defects_limits.rs`); each test guards one contract:
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

#![allow(missing_docs)]

mod common;

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::thread;
use std::time::Duration;

use common::{LONG, WATCHDOG, block, spawn, with_watchdog};
use dispatcher::{Dispatcher, EnqueueError, Policy, TryEnqueueError};

/// How long a test waits for something that must happen promptly; only a
/// stranded waiter or a lost wake-up takes that long.
const PROMPT: Duration = Duration::from_secs(5);

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
            let returned = dispatcher.stop().into_vec();
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
    use std::sync::Mutex;
    use std::sync::atomic::AtomicUsize;

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
                (timeout.into_inner().into_vec(), stats)
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
