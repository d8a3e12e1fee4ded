//! Sharded mode (`Builder::partitions`): DropOldest's per-partition
//! eviction, interval cuts in every partition, sink mode, losing every
//! receiver, configuration errors, and the async stream and enqueue across
//! partitions.

#![allow(missing_docs)]

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use common::{
    Ev, LONG, PROMPTLY, WATCHDOG, assert_balanced, block, ev, sharded, spawn, stress_weight,
    with_watchdog,
};
use dispatcher::sink::{self, FlushContext};
use dispatcher::{
    Batch, Batches, Dispatcher, EnqueueError, FlushReason, Policy, TryEnqueueError, TryRecvError,
};

// ---------------------------------------------------------------------------
// 4. DropOldest evicts from the admitting partition first, then the others.
// ---------------------------------------------------------------------------

/// Documented on `Builder::partitions`: an admission evicts the oldest
/// events of its own partition first; when they are not enough it evicts
/// the oldest of the partitions after its own, so DropOldest admits whatever
/// partition a producer landed on. Evicted bytes pay for the new event and
/// the budget is never exceeded.
#[test]
fn drop_oldest_evicts_its_own_partition_first_then_the_others() {
    let (dispatcher, batches, evicted) = sharded(3, 100, Policy::DropOldest);
    let a = dispatcher.producer();
    let b = dispatcher.producer();
    let c = dispatcher.producer();
    for seq in 0..3 {
        a.try_enqueue(ev(0, seq, 20)).unwrap();
    }
    b.try_enqueue(ev(1, 0, 20)).unwrap();
    b.try_enqueue(ev(1, 1, 20)).unwrap();
    // Full. A needs 30 B: its own two oldest go, B's (as old) stay.
    a.try_enqueue(ev(0, 3, 30)).unwrap();
    assert_eq!(*evicted.lock().unwrap(), [ev(0, 0, 20), ev(0, 1, 20)]);
    assert_eq!(dispatcher.stats().buffered_bytes, 90);
    // 10 B fit without evicting.
    b.try_enqueue(ev(1, 2, 10)).unwrap();
    assert_eq!(evicted.lock().unwrap().len(), 2);
    // C's partition is empty: the room comes from the next partition, A's.
    c.try_enqueue(ev(2, 0, 1)).unwrap();
    assert_eq!(evicted.lock().unwrap()[2..], [ev(0, 2, 20)]);
    assert_eq!(dispatcher.stats().buffered_bytes, 81);
    c.try_enqueue_all(vec![ev(2, 1, 5), ev(2, 2, 5)]).unwrap();
    // A needs 51 B more than fit and holds 30: its own go, then B's oldest.
    a.try_enqueue(ev(0, 4, 60)).unwrap();
    assert_eq!(
        evicted.lock().unwrap()[3..],
        [ev(0, 3, 30), ev(1, 0, 20), ev(1, 1, 20)]
    );
    let stats = dispatcher.stats();
    assert_eq!(evicted.lock().unwrap().len() as u64, stats.dropped);
    assert_eq!((stats.dropped, stats.rejected.total()), (6, 0));
    assert_eq!((stats.accepted, stats.buffered_bytes), (11, 81));
    assert!(stats.peak_buffered_bytes <= 100);
    assert_balanced(&stats);
    dispatcher.flush();
    let mut got: Vec<Vec<Ev>> = (0..3)
        .map(|_| batches.try_recv().unwrap().into_vec())
        .collect();
    got.sort_by_key(|batch| batch[0].producer);
    assert_eq!(
        got,
        [
            vec![ev(0, 4, 60)],
            vec![ev(1, 2, 10)],
            vec![ev(2, 0, 1), ev(2, 1, 5), ev(2, 2, 5)]
        ]
    );
    assert_eq!(batches.try_recv().unwrap_err(), TryRecvError::Empty);
}

// ---------------------------------------------------------------------------
// 5. Interval cuts in every partition.
// ---------------------------------------------------------------------------

const TICK: Duration = Duration::from_millis(30);

fn ticking(partitions: usize) -> (Dispatcher<Ev>, Batches<Ev>) {
    Dispatcher::builder()
        .partitions(partitions)
        .interval(TICK)
        .max_buffered_bytes(1 << 20)
        .build()
        .unwrap()
}

#[test]
fn one_blocked_receiver_gets_every_partitions_batch_on_the_interval() {
    with_watchdog(WATCHDOG, "interval cuts", || {
        let (dispatcher, batches) = ticking(3);
        let receiver = spawn(move || {
            (0..3)
                .map(|_| {
                    let batch = batches.recv().expect("a batch on the interval");
                    (batch.reason(), batch.into_vec())
                })
                .collect::<Vec<_>>()
        });
        // The receiver is (most likely) already asleep: only the interval,
        // in each partition, can cut these.
        thread::sleep(Duration::from_millis(10));
        for p in 0..3u8 {
            dispatcher.producer().try_enqueue(ev(p, 0, 1)).unwrap();
        }
        let mut got = receiver.join("receiver");
        got.sort_by_key(|(_, items)| items[0].producer);
        let expected: Vec<_> = (0..3u8)
            .map(|p| (FlushReason::Interval, vec![ev(p, 0, 1)]))
            .collect();
        assert_eq!(got, expected);
        assert_eq!(dispatcher.stats().flushes.interval, 3);
    });
}

#[test]
fn interval_cuts_reach_a_receiver_that_waits_for_a_later_batch() {
    with_watchdog(WATCHDOG, "staggered interval cuts", || {
        let (dispatcher, batches) = ticking(2);
        let a = dispatcher.producer();
        let b = dispatcher.producer();
        a.try_enqueue(ev(0, 0, 1)).unwrap();
        let first = batches.recv_timeout(PROMPTLY).unwrap();
        assert_eq!(
            (first.reason(), first.items()),
            (FlushReason::Interval, &[ev(0, 0, 1)][..])
        );
        // A receiver waiting with nothing open; B opens a batch meanwhile.
        let receiver = {
            let batches = batches.clone();
            spawn(move || batches.recv_timeout(PROMPTLY).map(Batch::into_vec))
        };
        thread::sleep(Duration::from_millis(10));
        b.try_enqueue(ev(1, 0, 1)).unwrap();
        assert_eq!(receiver.join("receiver").unwrap(), [ev(1, 0, 1)]);
    });
}

/// Receivers take the batch whose first event joined it earliest, whichever
/// partition holds it and however many batches wait in the others: under a
/// full budget that keeps every event's wait close to the others'.
#[test]
fn receivers_take_the_batch_that_waited_longest_across_partitions() {
    let (dispatcher, batches) = Dispatcher::builder()
        .partitions(3)
        .max_batch_items(1)
        .interval(Duration::from_secs(60))
        .max_buffered_bytes(1 << 20)
        .build()
        .unwrap();
    let producers: Vec<_> = (0..3).map(|_| dispatcher.producer()).collect();
    // Partition 2 gets one batch first; partition 0 then queues three.
    producers[2].try_enqueue(ev(2, 0, 1)).unwrap();
    let mut order = vec![ev(2, 0, 1)];
    let mut rng = fastrand::Rng::with_seed(7);
    for seq in 0..3 {
        thread::sleep(Duration::from_millis(1));
        producers[0].try_enqueue(ev(0, seq, 1)).unwrap();
        order.push(ev(0, seq, 1));
    }
    // Then one producer at random at a time: each event is its own batch.
    for seq in 1..40 {
        let p = rng.usize(0..3);
        thread::sleep(Duration::from_micros(200));
        producers[p]
            .try_enqueue(ev(p as u8, 1000 + seq, 1))
            .unwrap();
        order.push(ev(p as u8, 1000 + seq, 1));
    }
    let got: Vec<Ev> = (0..order.len())
        .flat_map(|_| batches.try_recv().unwrap().into_vec())
        .collect();
    assert_eq!(got, order);
    assert_eq!(batches.try_recv().unwrap_err(), TryRecvError::Empty);
}

// ---------------------------------------------------------------------------
// 6. Sink mode with partitions.
// ---------------------------------------------------------------------------

type Written = Arc<Mutex<Vec<Vec<Ev>>>>;

fn recording_sink(
    written: &Written,
) -> impl Fn(&Batch<Ev>, &FlushContext) -> Result<(), std::io::Error> + Send + Sync + 'static {
    let written = Arc::clone(written);
    move |batch: &Batch<Ev>, _ctx: &FlushContext| {
        written.lock().unwrap().push(batch.to_vec());
        Ok(())
    }
}

fn sink_dispatcher(interval: Duration, written: &Written) -> Dispatcher<Ev> {
    Dispatcher::builder()
        .partitions(4)
        .interval(interval)
        .max_buffered_bytes(2048)
        .max_batch_bytes(256)
        .policy(block(PROMPTLY))
        .flush_workers(2)
        .build_with_sink(sink::from_fn(recording_sink(written)))
        .unwrap()
}

fn produce_into(dispatcher: &Dispatcher<Ev>, producers: u8, events: u32, first_seq: u32) {
    let threads: Vec<_> = (0..producers)
        .map(|p| {
            let producer = dispatcher.producer();
            spawn(move || {
                for seq in first_seq..first_seq + events {
                    producer.enqueue(ev(p, seq, stress_weight(p, seq))).unwrap();
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join("producer"));
}

fn assert_written_once(written: &Written, expected: usize) {
    let written = written.lock().unwrap();
    let mut seen = HashSet::new();
    for e in written.iter().flatten() {
        assert!(seen.insert((e.producer, e.seq)), "{e:?} written twice");
    }
    assert_eq!(seen.len(), expected);
}

fn sink_mode_delivers_everything_once(interval: Duration) {
    let written = Written::default();
    let dispatcher = sink_dispatcher(interval, &written);
    produce_into(&dispatcher, 8, 300, 0);
    dispatcher
        .flush_and_wait(PROMPTLY)
        .expect("every accepted batch written");
    assert_written_once(&written, 8 * 300);
    let stats = dispatcher.stats();
    assert_eq!((stats.delivered, stats.buffered_bytes), (8 * 300, 0));
    assert!(stats.peak_buffered_bytes <= 2048);
    // More, then shutdown.
    produce_into(&dispatcher, 8, 100, 300);
    let report = dispatcher.shutdown(PROMPTLY).expect("drained");
    assert_eq!(report.stats.accepted, 8 * 400);
    assert_eq!(report.delivered_total, report.stats.accepted);
    assert_eq!(report.stats.failed, 0);
    assert_balanced(&report.stats);
    assert_written_once(&written, 8 * 400);
}

#[test]
fn sink_workers_take_from_every_partition_and_deliver_everything_once() {
    with_watchdog(WATCHDOG, "sink mode, short interval", || {
        sink_mode_delivers_everything_once(Duration::from_millis(20));
    });
}

/// With a long interval, `flush_and_wait` must not depend on time: sealing
/// for it signals the shared pool like `flush` does, so flush workers and
/// `recv()` callers asleep in `Pool::wait_for_batch` take the batch at once.
/// (It once notified only the partition's own condvar, and the call ran into
/// its timeout with a 1 h interval.)
#[test]
fn sink_flush_and_wait_with_a_long_interval_returns_without_waiting_for_it() {
    with_watchdog(WATCHDOG, "sink flush_and_wait, long interval", || {
        let written = Written::default();
        let dispatcher = sink_dispatcher(LONG, &written);
        dispatcher.producer().enqueue(ev(0, 0, 10)).unwrap();
        thread::sleep(Duration::from_millis(20)); // let the workers go to sleep
        let waited = dispatcher.flush_and_wait(Duration::from_secs(2));
        let seen = written.lock().unwrap().clone();
        let _ = dispatcher.stop();
        assert!(waited.is_ok(), "{waited:?}; written: {seen:?}");
    });
}

/// The pull-mode form of the same: a receiver blocked in `recv()`.
#[test]
fn pull_flush_and_wait_with_a_long_interval_wakes_a_blocked_receiver() {
    with_watchdog(WATCHDOG, "pull flush_and_wait, long interval", || {
        let (dispatcher, batches, _) = sharded(2, 1 << 20, Policy::Reject);
        let receiver = spawn(move || batches.recv().map(Batch::into_vec));
        dispatcher.producer().try_enqueue(ev(0, 0, 10)).unwrap();
        thread::sleep(Duration::from_millis(20)); // let the receiver go to sleep
        let waited = dispatcher.flush_and_wait(Duration::from_secs(2));
        assert_eq!(receiver.join("receiver").unwrap(), [ev(0, 0, 10)]);
        assert!(waited.is_ok(), "{waited:?}");
    });
}

#[test]
fn flush_and_wait_with_a_long_interval_and_no_blocked_receiver() {
    // Without anyone asleep the batches are found by the next look.
    let (dispatcher, batches, _) = sharded(3, 1 << 20, Policy::Reject);
    let receiver = spawn(move || {
        let mut got = Vec::new();
        while got.len() < 3 {
            match batches.try_recv() {
                Ok(batch) => got.extend(batch.into_vec()),
                Err(_) => thread::sleep(Duration::from_millis(1)),
            }
        }
        got
    });
    for p in 0..3u8 {
        dispatcher.producer().try_enqueue(ev(p, 0, 10)).unwrap();
    }
    dispatcher
        .flush_and_wait(PROMPTLY)
        .expect("taken by the polling receiver");
    assert_eq!(receiver.join("receiver").len(), 3);
}

// ---------------------------------------------------------------------------
// 7. Losing every receiver.
// ---------------------------------------------------------------------------

#[test]
fn dropping_every_receiver_closes_admission_in_all_partitions() {
    let (dispatcher, batches, _) = sharded(4, 1 << 20, Policy::Reject);
    let producers: Vec<_> = (0..4).map(|_| dispatcher.producer()).collect();
    for (p, producer) in producers.iter().enumerate() {
        producer.try_enqueue(ev(p as u8, 0, 10)).unwrap();
    }
    let clone = batches.clone();
    drop(batches);
    // One receiver left: still open everywhere.
    for (p, producer) in producers.iter().enumerate() {
        producer.try_enqueue(ev(p as u8, 1, 10)).unwrap();
    }
    drop(clone);
    for (p, producer) in producers.iter().enumerate() {
        let p = p as u8;
        assert!(matches!(
            producer.try_enqueue(ev(p, 2, 10)),
            Err(TryEnqueueError::Closed(_))
        ));
        assert!(matches!(
            producer.enqueue(ev(p, 3, 10)),
            Err(EnqueueError::Closed(_))
        ));
        assert!(matches!(
            producer.try_enqueue_all(vec![ev(p, 4, 1)]),
            Err(TryEnqueueError::Closed(_))
        ));
    }
    // A handle created afterwards lands on a closed partition too.
    assert!(matches!(
        dispatcher.producer().try_enqueue(ev(9, 0, 1)),
        Err(TryEnqueueError::Closed(_))
    ));
    let stats = dispatcher.stats();
    assert_eq!((stats.accepted, stats.rejected.closed), (8, 13));
    // Shutdown does not wait for receivers that are gone.
    let timeout = spawn(move || dispatcher.shutdown(LONG))
        .join("shutdown without receivers")
        .expect_err("nobody took anything");
    assert_eq!(timeout.report.stats.returned, 8);
    assert_balanced(&timeout.report.stats);
    let expected: Vec<Ev> = (0..4u8)
        .flat_map(|p| [ev(p, 0, 10), ev(p, 1, 10)])
        .collect();
    assert_eq!(
        timeout.into_inner(),
        expected,
        "partition by partition, oldest first"
    );
}

/// Producers blocked for room (Block policy) must learn promptly that the
/// last receiver left (or that shutdown closed admission) and get `Closed`.
///
/// With partitions they wait in `Pool::wait_for_room`; `Lanes::close` closes
/// the pool first, which wakes every waiter and keeps any from sleeping
/// again, then the partitions one by one. (Closing only the partitions once
/// left a producer woken by partition 0's close to go back to sleep before
/// its own partition closed: about 1 round in 15 kept a producer blocked
/// until its Block deadline.)
#[test]
fn producers_blocked_on_other_partitions_learn_that_the_last_receiver_left() {
    with_watchdog(
        Duration::from_secs(60),
        "blocked producers, receivers dropped",
        || {
            const ROUNDS: usize = 30;
            let mut missed = Vec::new();
            for round in 0..ROUNDS {
                let (dispatcher, batches, _) = sharded(8, 100, block(LONG));
                dispatcher.producer().enqueue(ev(0, 0, 100)).unwrap();
                // Two producers on each of partitions 1..=7 (skip handles 8 and
                // 16, which would be on partition 0 with the full budget).
                let blocked: Vec<_> = (1..16u8)
                    .map(|p| (p, dispatcher.producer()))
                    .filter(|(p, _)| p % 8 != 0)
                    .map(|(p, producer)| spawn(move || producer.enqueue(ev(p, 0, 10))))
                    .collect();
                thread::sleep(Duration::from_millis(20));
                drop(batches);
                // Generous: a woken producer answers in microseconds.
                let (done, stuck): (Vec<_>, Vec<_>) = blocked
                    .into_iter()
                    .map(|producer| producer.try_join_within(Duration::from_secs(1)))
                    .partition(Result::is_ok);
                if !stuck.is_empty() {
                    missed.push(round);
                }
                // Shutdown closes (and wakes) again, which frees any stuck one.
                let back = dispatcher.shutdown(LONG).unwrap_err().into_inner();
                assert_eq!(back, [ev(0, 0, 100)]);
                for outcome in done.into_iter().filter_map(Result::ok) {
                    assert!(
                        matches!(outcome, Err(EnqueueError::Closed(_))),
                        "{outcome:?}"
                    );
                }
                for producer in stuck.into_iter().filter_map(Result::err) {
                    let outcome = producer.join("producer freed by shutdown");
                    assert!(
                        matches!(outcome, Err(EnqueueError::Closed(_))),
                        "{outcome:?}"
                    );
                }
            }
            assert!(
                missed.is_empty(),
                "rounds {missed:?} of {ROUNDS}: a blocked producer missed the close"
            );
        },
    );
}

/// What does hold: a producer blocked on the only other partition when the
/// receivers go is never admitted, and shutdown returns the held events.
#[test]
fn after_the_last_receiver_left_a_blocked_producer_is_never_admitted() {
    with_watchdog(WATCHDOG, "blocked producer, receivers dropped", || {
        let (dispatcher, batches, _) = sharded(2, 100, block(Duration::from_millis(200)));
        dispatcher.producer().enqueue(ev(0, 0, 100)).unwrap();
        let producer = dispatcher.producer();
        let blocked = spawn(move || producer.enqueue(ev(1, 0, 10)));
        thread::sleep(Duration::from_millis(20));
        drop(batches);
        // `Closed` at once, or (the lost wake-up above) `Timeout` after
        // 200 ms; never admitted.
        let refused = blocked.join("blocked producer");
        assert!(
            matches!(
                refused,
                Err(EnqueueError::Closed(_) | EnqueueError::Timeout(_))
            ),
            "{refused:?}"
        );
        let stats = dispatcher.stats();
        assert_eq!(stats.accepted, 1);
        let back = dispatcher.shutdown(LONG).unwrap_err().into_inner();
        assert_eq!(back, [ev(0, 0, 100)]);
    });
}

// ---------------------------------------------------------------------------
// 8. Configuration.
// ---------------------------------------------------------------------------

#[test]
fn partitions_out_of_range_are_refused_by_name() {
    for n in [0, 257, usize::MAX] {
        let err = Dispatcher::<Ev>::builder()
            .partitions(n)
            .build()
            .unwrap_err();
        assert_eq!(err.field(), "partitions", "{n}");
        assert_eq!(err.value(), n.to_string());
        assert_eq!(err.allowed(), "1 ..= 256");
        let err = Dispatcher::<Ev>::builder()
            .partitions(n)
            .build_with_sink(sink::from_fn(|_: &Batch<Ev>, _: &FlushContext| {
                Ok::<_, std::io::Error>(())
            }))
            .unwrap_err();
        assert_eq!(err.field(), "partitions", "{n}");
    }
    for n in [1, 2, 256] {
        let (dispatcher, batches) = Dispatcher::<Ev>::builder().partitions(n).build().unwrap();
        // Every partition admits; the round-robin wraps around.
        for p in 0..=n {
            dispatcher
                .producer()
                .try_enqueue(ev(0, p as u32, 1))
                .unwrap();
        }
        dispatcher.flush();
        let batches: Vec<_> = batches.try_iter_all();
        assert_eq!(batches.len(), n, "one batch per partition");
        assert_eq!(batches.iter().map(Vec::len).sum::<usize>(), n + 1);
    }
}

trait TryIterAll {
    fn try_iter_all(&self) -> Vec<Vec<Ev>>;
}

impl TryIterAll for Batches<Ev> {
    /// Every batch ready now.
    fn try_iter_all(&self) -> Vec<Vec<Ev>> {
        std::iter::from_fn(|| self.try_recv().ok().map(Batch::into_vec)).collect()
    }
}

// ---------------------------------------------------------------------------
// 5 and 9, async: the stream and `enqueue().await` across partitions.
// ---------------------------------------------------------------------------

#[cfg(feature = "async")]
mod nonblocking {
    use super::*;
    use dispatcher::nonblocking::AsyncSink;
    use dispatcher::sink::SinkError;
    use futures_util::StreamExt;

    fn current_thread() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    }

    #[test]
    fn the_stream_gets_every_partitions_batch_on_the_interval() {
        with_watchdog(WATCHDOG, "stream interval cuts", || {
            current_thread().block_on(async {
                let (dispatcher, batches) = ticking(3);
                let mut stream = batches.into_stream();
                for p in 0..3u8 {
                    dispatcher.producer().try_enqueue(ev(p, 0, 1)).unwrap();
                }
                // Nothing else happens: only the stream's timer can cut them.
                let mut got = Vec::new();
                for _ in 0..3 {
                    let batch = tokio::time::timeout(PROMPTLY, stream.next())
                        .await
                        .expect("a batch on the interval")
                        .expect("not closed");
                    got.push((batch.reason(), batch.into_vec()));
                }
                got.sort_by_key(|(_, items)| items[0].producer);
                let expected: Vec<_> = (0..3u8)
                    .map(|p| (FlushReason::Interval, vec![ev(p, 0, 1)]))
                    .collect();
                assert_eq!(got, expected);
                // A batch opened while the stream waits is cut on time too.
                let waiting = tokio::spawn(async move {
                    let batch = stream.next().await.expect("one more batch");
                    (batch.reason(), batch.into_vec(), stream)
                });
                tokio::time::sleep(Duration::from_millis(5)).await;
                dispatcher.producer().try_enqueue(ev(1, 1, 1)).unwrap();
                let (reason, items, mut stream) = tokio::time::timeout(PROMPTLY, waiting)
                    .await
                    .expect("cut on the interval")
                    .unwrap();
                assert_eq!((reason, items), (FlushReason::Interval, vec![ev(1, 1, 1)]));
                drop(dispatcher);
                assert!(stream.next().await.is_none(), "closed and drained");
            });
        });
    }

    #[test]
    fn an_async_enqueue_on_one_partition_waits_until_another_partitions_batch_is_taken() {
        with_watchdog(WATCHDOG, "async enqueue across partitions", || {
            current_thread().block_on(async {
                let (dispatcher, batches) = Dispatcher::<Ev>::builder()
                    .partitions(2)
                    .interval(LONG)
                    .max_buffered_bytes(8)
                    .policy(block(PROMPTLY))
                    .build()
                    .unwrap();
                let a = dispatcher.async_producer();
                let b = dispatcher.async_producer();
                a.enqueue(ev(0, 0, 8)).await.unwrap();
                let waiting = tokio::spawn(async move { b.enqueue(ev(1, 0, 4)).await });
                tokio::time::sleep(Duration::from_millis(20)).await;
                assert!(!waiting.is_finished(), "admitted while the budget was full");
                assert_eq!(dispatcher.stats().accepted, 1);
                let mut stream = batches.into_stream();
                dispatcher.flush();
                let first = stream.next().await.unwrap();
                assert_eq!(first.items(), [ev(0, 0, 8)]);
                tokio::time::timeout(PROMPTLY, waiting)
                    .await
                    .expect("the waiting enqueue completes once A's batch is taken")
                    .unwrap()
                    .unwrap();
                dispatcher.flush();
                assert_eq!(stream.next().await.unwrap().items(), [ev(1, 0, 4)]);
                let stats = dispatcher.stats();
                assert_eq!((stats.accepted, stats.delivered), (2, 2));
                assert_eq!(stats.rejected.timeout, 0);
            });
        });
    }

    #[test]
    fn async_and_blocking_handles_share_the_round_robin() {
        let (dispatcher, batches, _) = sharded(2, 1 << 20, Policy::Reject);
        dispatcher.producer().try_enqueue(ev(0, 0, 1)).unwrap();
        dispatcher
            .async_producer()
            .try_enqueue(ev(1, 0, 1))
            .unwrap();
        dispatcher.flush();
        let got = batches.try_iter_all();
        assert_eq!(got.len(), 2, "two partitions, one batch each: {got:?}");
    }

    struct Recording(Mutex<Vec<Vec<Ev>>>);

    impl AsyncSink<Ev> for Recording {
        async fn write(&self, batch: &Batch<Ev>, _ctx: &FlushContext) -> Result<(), SinkError> {
            tokio::task::yield_now().await;
            self.0.lock().unwrap().push(batch.to_vec());
            Ok(())
        }
    }

    #[test]
    fn the_async_sink_driver_takes_from_every_partition() {
        with_watchdog(WATCHDOG, "async sink, partitions", || {
            current_thread().block_on(async {
                let sink = Arc::new(Recording(Mutex::new(Vec::new())));
                let (dispatcher, driver) = Dispatcher::<Ev>::builder()
                    .partitions(3)
                    .interval(Duration::from_millis(5))
                    .max_buffered_bytes(256)
                    .max_batch_items(4)
                    .policy(block(PROMPTLY))
                    .flush_workers(2)
                    .build_with_async_sink(Arc::clone(&sink))
                    .unwrap();
                let driver = tokio::spawn(driver);
                let producers: Vec<_> = (0..6u8)
                    .map(|p| {
                        let producer = dispatcher.async_producer();
                        tokio::spawn(async move {
                            for seq in 0..50 {
                                producer.enqueue(ev(p, seq, 10)).await.unwrap();
                            }
                        })
                    })
                    .collect();
                for producer in producers {
                    producer.await.unwrap();
                }
                let report = tokio::time::timeout(PROMPTLY, dispatcher.shutdown_async(PROMPTLY))
                    .await
                    .expect("shutdown returns")
                    .expect("everything written");
                assert_eq!(report.stats.accepted, 300);
                assert_eq!(report.delivered_total, 300);
                assert!(report.stats.peak_buffered_bytes <= 256);
                tokio::time::timeout(PROMPTLY, driver)
                    .await
                    .expect("the driver ends after shutdown")
                    .unwrap();
                let written = sink.0.lock().unwrap();
                let mut seen = HashSet::new();
                for batch in written.iter() {
                    let part = batch[0].producer % 3;
                    assert!(batch.iter().all(|e| e.producer % 3 == part));
                    for e in batch {
                        assert!(seen.insert((e.producer, e.seq)), "{e:?} twice");
                    }
                }
                assert_eq!(seen.len(), 300);
            });
        });
    }
}
