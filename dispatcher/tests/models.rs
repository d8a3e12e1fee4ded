//! Model checks of the dispatcher's real code under the shuttle scheduler.
//!
//! Built only with `--cfg shuttle` (see ARCHITECTURE.md; CI runs
//! `scripts/models.sh`): the crate then runs on shuttle's locks, atomics
//! and threads, and each model below is explored over many interleavings
//! (PCT, which finds bugs of small depth with a known probability, and
//! random walks). Shuttle's timed waits never time out, so a waiter that no
//! notification reaches leaves every thread blocked and shuttle reports a
//! deadlock: that is how "no waiter that fits stays asleep" is checked.
//! Every model also checks the byte bound and that each accepted event is
//! delivered, evicted or returned exactly once.
#![cfg(shuttle)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use dispatcher::nonblocking::AsyncSink;
use dispatcher::sink::{FlushContext, SinkError};
use dispatcher::{Batch, Batches, Dispatcher, EnqueueError, Policy, TryEnqueueError, Weight};
use shuttle::sync::Mutex;
use shuttle::thread;

/// A long time: under shuttle it never runs out.
const LONG: Duration = Duration::from_secs(3600);

fn block() -> Policy {
    Policy::Block { timeout: LONG }
}

/// 100 bytes buffered under Block, every event its own batch, no interval
/// cut: room comes only from deliveries, so each model decides when. Two
/// partitions, whatever the machine (the default follows its processors):
/// handles cloned from one another land on different ones.
fn one_event_batches_of_100_bytes() -> (Dispatcher<Vec<u8>>, Batches<Vec<u8>>) {
    Dispatcher::builder()
        .partitions(2)
        .max_buffered_bytes(100)
        .max_batch_items(1)
        .interval(Duration::MAX)
        .policy(block())
        .build()
        .unwrap()
}

/// Explores `model` with PCT (depth 3) and random walks.
fn explore(model: impl Fn() + Send + Sync + 'static) {
    let iterations = std::env::var("MODEL_ITERATIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000);
    let model = Arc::new(model);
    let pct = Arc::clone(&model);
    shuttle::check_pct(move || pct(), iterations, 3);
    shuttle::check_random(move || model(), iterations);
}

/// An event: who sent it, its sequence number, and its weight.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Ev {
    from: u8,
    seq: u8,
    weight: u32,
}

impl Weight for Ev {
    fn weight(&self) -> usize {
        self.weight as usize
    }
}

fn ev(from: u8, seq: u8, weight: u32) -> Ev {
    Ev { from, seq, weight }
}

/// What happened to each accepted event; each must end in exactly one fate.
#[derive(Default)]
struct Fates(Mutex<BTreeMap<Ev, Vec<&'static str>>>);

impl Fates {
    fn record(&self, event: &Ev, fate: &'static str) {
        self.0
            .lock()
            .unwrap()
            .entry(event.clone())
            .or_default()
            .push(fate);
    }

    /// The bytes of the accepted events with no other fate yet: what the
    /// dispatcher holds, by these records alone.
    fn held_bytes(&self) -> usize {
        let fates = self.0.lock().unwrap();
        let held = fates
            .iter()
            .filter(|(_, fates)| fates.as_slice() == ["accepted"]);
        held.map(|(event, _)| event.weight as usize).sum()
    }

    /// Every accepted event has exactly one fate besides "accepted".
    fn check_exactly_once(&self) {
        for (event, fates) in self.0.lock().unwrap().iter() {
            assert_eq!(fates.len(), 2, "{event:?}: {fates:?}");
            assert_eq!(fates[0], "accepted", "{event:?}: {fates:?}");
        }
    }
}

/// Defect 3's shape: 90 of 100 B held (a 50 B and a 40 B batch); A waits
/// with 70 B, B with 20 B. One delivery frees 50 B: B fits and must be let
/// in by that delivery alone (the receiver waits for B before taking more),
/// whatever A does with the news.
#[test]
fn a_blocked_waiter_that_fits_is_always_woken() {
    explore(|| {
        let (dispatcher, batches) = one_event_batches_of_100_bytes();
        let producer = dispatcher.producer();
        producer.try_enqueue(vec![0; 50]).unwrap();
        producer.try_enqueue(vec![1; 40]).unwrap();
        let wait = |weight: usize| {
            let producer = producer.clone();
            thread::spawn(move || producer.enqueue(vec![2; weight]))
        };
        let (a, b) = (wait(70), wait(20));
        assert_eq!(batches.recv().unwrap().bytes(), 50);
        assert!(b.join().unwrap().is_ok(), "B fits after the first delivery");
        let mut sizes = vec![50];
        while sizes.len() < 4 {
            sizes.push(batches.recv().unwrap().bytes());
            assert!(dispatcher.stats().buffered_bytes <= 100);
        }
        assert!(a.join().unwrap().is_ok());
        sizes.sort_unstable();
        assert_eq!(sizes, [20, 40, 50, 70]);
        assert!(dispatcher.stats().peak_buffered_bytes <= 100);
    });
}

/// Receivers choose a partition by what each publishes without its lock
/// (when its oldest waiting batch started). Two producers on two
/// partitions seal one-event batches while two receivers wait and race for
/// them; then each receiver is sent a stop event, and leaves with the first
/// it takes. A notification lost between a look and a receiver's sleep
/// leaves it asleep with a batch waiting: a deadlock. A reading out of date
/// must not make two receivers take one batch, or none.
#[test]
fn waiting_receivers_see_every_batch_sealed_across_partitions() {
    const STOP: u8 = u8::MAX;
    explore(|| {
        let (dispatcher, batches) = one_event_batches_of_100_bytes();
        let receivers: Vec<_> = (0..2)
            .map(|_| {
                let batches = batches.clone();
                thread::spawn(move || {
                    let mut got = Vec::new();
                    loop {
                        let event = batches.recv().unwrap().drain().next().unwrap();
                        if event[0] == STOP {
                            return got;
                        }
                        got.push(event);
                    }
                })
            })
            .collect();
        let producers: Vec<_> = (0..2u8)
            .map(|from| {
                let producer = dispatcher.producer();
                thread::spawn(move || {
                    for seq in 0..2u8 {
                        producer.enqueue(vec![from, seq]).unwrap();
                    }
                    producer.enqueue(vec![STOP]).unwrap();
                })
            })
            .collect();
        for producer in producers {
            producer.join().unwrap();
        }
        let mut got: Vec<Vec<u8>> = receivers
            .into_iter()
            .flat_map(|receiver| receiver.join().unwrap())
            .collect();
        got.sort_unstable();
        assert_eq!(got, [[0, 0], [0, 1], [1, 0], [1, 1]]);
        let report = dispatcher.shutdown(LONG).unwrap();
        assert_eq!(report.stats.delivered, 6);
        drop(batches);
    });
}

/// One delivery makes room for two waiters while a third producer tries to
/// take part of it. Whoever is told first (arrival order) passes the news
/// on when done, used or not: the one that fits what is left is let in by
/// that delivery alone (W2 here: the receiver waits for it before taking
/// anything else). A chain that stopped after the first told waiter would
/// strand it: a deadlock.
#[test]
fn a_told_waiter_passes_the_news_on_used_or_not() {
    explore(|| {
        let (dispatcher, batches) = one_event_batches_of_100_bytes();
        let producer = dispatcher.producer();
        producer.try_enqueue(vec![0; 100]).unwrap();
        let wait = |weight: usize| {
            let producer = producer.clone();
            thread::spawn(move || producer.enqueue(vec![1; weight]))
        };
        let (w1, w2) = (wait(60), wait(40));
        let stealer = {
            let producer = producer.clone();
            thread::spawn(move || producer.try_enqueue(vec![2; 50]))
        };
        assert_eq!(batches.recv().unwrap().bytes(), 100);
        // W2 fits whatever W1 and the stealer did: 60 + 40, or 50 + 40.
        assert!(w2.join().unwrap().is_ok(), "W2 fits and must be let in");
        let stolen = stealer.join().unwrap().is_ok();
        assert!(dispatcher.stats().buffered_bytes <= 100);
        drop(dispatcher.stop());
        let first = w1.join().unwrap();
        assert!(first.is_ok() != stolen || matches!(first, Err(EnqueueError::Closed(_))));
    });
}

/// DropOldest over `partitions`, `max_bytes` buffered, batches of two
/// events, no interval cut; evictions are recorded in `fates`.
fn evicting(
    fates: &Arc<Fates>,
    partitions: usize,
    max_bytes: usize,
) -> (Dispatcher<Ev>, Batches<Ev>) {
    let evicted = Arc::clone(fates);
    Dispatcher::<Ev>::builder()
        .partitions(partitions)
        .max_buffered_bytes(max_bytes)
        .max_batch_items(2)
        .interval(Duration::MAX)
        .policy(Policy::DropOldest)
        .on_evict(move |e| evicted.record(&e, "evicted"))
        .build()
        .unwrap()
}

/// Defects 1 and 2's shape: two producers on two partitions evict for each
/// other under DropOldest while a receiver takes batches. The shared budget
/// is never exceeded, nothing is refused (in pull mode every held byte can
/// be evicted), and every event is delivered, evicted or returned once.
#[test]
fn drop_oldest_across_partitions_keeps_the_bound_and_every_event() {
    explore(|| {
        let fates = Arc::new(Fates::default());
        let (dispatcher, batches) = evicting(&fates, 2, 30);
        let dispatcher = Arc::new(dispatcher);
        let producers: Vec<_> = (0..2u8)
            .map(|from| {
                let (dispatcher, fates) = (Arc::clone(&dispatcher), Arc::clone(&fates));
                let producer = dispatcher.producer();
                thread::spawn(move || {
                    for seq in 0..3u8 {
                        let event = ev(from, seq, u32::from(8 + 4 * ((from + seq) % 3)));
                        fates.record(&event, "accepted");
                        producer.try_enqueue(event).expect("DropOldest makes room");
                        let stats = dispatcher.stats();
                        assert!(stats.buffered_bytes <= 30, "{stats:?}");
                        assert!(stats.peak_buffered_bytes <= 30, "{stats:?}");
                    }
                })
            })
            .collect();
        let receiver = {
            let fates = Arc::clone(&fates);
            thread::spawn(move || {
                if let Ok(batch) = batches.try_recv() {
                    batch.iter().for_each(|e| fates.record(e, "delivered"));
                }
                batches // the last receiver leaving would close admission
            })
        };
        producers.into_iter().for_each(|p| p.join().unwrap());
        let _batches = receiver.join().unwrap();
        // Eviction counted what it may evict while the receiver took from
        // the partition: an eviction short of what it owed would leave the
        // budget charged less than the partitions hold.
        assert_eq!(dispatcher.stats().buffered_bytes, fates.held_bytes());
        let dispatcher = Arc::into_inner(dispatcher).expect("threads are done");
        for event in dispatcher.stop() {
            fates.record(&event, "returned");
        }
        fates.check_exactly_once();
    });
}

/// DropOldest counts what it may evict, then evicts it, under the
/// partition's lock; a pull receiver takes the same sealed batch. If the
/// take could fall between the two, eviction would come up short of what
/// it owed and the budget would no longer match what is held.
#[test]
fn drop_oldest_evicts_what_it_counted_while_a_receiver_takes() {
    explore(|| {
        let fates = Arc::new(Fates::default());
        let (dispatcher, batches) = evicting(&fates, 1, 20);
        let producer = dispatcher.producer();
        for seq in 0..2 {
            let event = ev(0, seq, 10);
            fates.record(&event, "accepted");
            producer.try_enqueue(event).unwrap();
        }
        // One sealed batch of 20 B fills the budget: the next event owes 10 B.
        let receiver = {
            let fates = Arc::clone(&fates);
            thread::spawn(move || {
                if let Ok(batch) = batches.try_recv() {
                    batch.iter().for_each(|e| fates.record(e, "delivered"));
                }
                batches
            })
        };
        let event = ev(0, 2, 10);
        fates.record(&event, "accepted");
        producer.try_enqueue(event).expect("DropOldest makes room");
        let _batches = receiver.join().unwrap();
        let stats = dispatcher.stats();
        assert_eq!(stats.buffered_bytes, fates.held_bytes(), "{stats:?}");
        assert!(stats.peak_buffered_bytes <= 20, "{stats:?}");
        for event in dispatcher.stop() {
            fates.record(&event, "returned");
        }
        fates.check_exactly_once();
    });
}

/// A snapshot counts each accepted event once, delivered or buffered, and
/// holds the bound; with one partition its bytes are exactly those of the
/// buffered events (10 each).
fn consistent(stats: &dispatcher::Stats, partitions: usize) {
    assert_eq!(
        stats.accepted,
        stats.delivered + stats.buffered_items as u64,
        "{stats:?}"
    );
    assert!(stats.buffered_bytes <= 40, "{stats:?}");
    if partitions == 1 {
        assert_eq!(stats.buffered_bytes, 10 * stats.buffered_items, "{stats:?}");
    }
}

/// Pull receivers take batches without the partition's lock, and their
/// takes reach the statistics only when these are read. Every snapshot
/// taken meanwhile, by a producer or beside the receiver, must still count
/// each accepted event once (delivered or buffered), and, with one
/// partition (the budget read under its locks), charge exactly the bytes
/// those buffered events weigh.
#[test]
fn snapshots_beside_pull_receivers_count_every_event_once() {
    for partitions in [1, 2] {
        explore(move || {
            let fates = Arc::new(Fates::default());
            let (dispatcher, batches) = Dispatcher::<Ev>::builder()
                .partitions(partitions)
                .max_buffered_bytes(40)
                .max_batch_items(2)
                .interval(Duration::MAX)
                .policy(block())
                .build()
                .unwrap();
            let dispatcher = Arc::new(dispatcher);
            let producers: Vec<_> = (0..2u8)
                .map(|from| {
                    let (dispatcher, fates) = (Arc::clone(&dispatcher), Arc::clone(&fates));
                    let producer = dispatcher.producer();
                    thread::spawn(move || {
                        for seq in 0..3u8 {
                            let event = ev(from, seq, 10);
                            fates.record(&event, "accepted");
                            producer.enqueue(event).expect("room comes");
                            consistent(&dispatcher.stats(), partitions);
                        }
                    })
                })
                .collect();
            let receiver = {
                let fates = Arc::clone(&fates);
                thread::spawn(move || {
                    // Two batches of two: room for the third of each producer.
                    for _ in 0..2 {
                        let batch = batches.recv().expect("a batch");
                        batch.iter().for_each(|e| fates.record(e, "delivered"));
                    }
                    batches
                })
            };
            consistent(&dispatcher.stats(), partitions);
            producers.into_iter().for_each(|p| p.join().unwrap());
            let _batches = receiver.join().unwrap();
            let stats = dispatcher.stats();
            consistent(&stats, partitions);
            assert_eq!(stats.buffered_bytes, fates.held_bytes(), "{stats:?}");
            let dispatcher = Arc::into_inner(dispatcher).expect("threads are done");
            for event in dispatcher.stop() {
                fates.record(&event, "returned");
            }
            fates.check_exactly_once();
        });
    }
}

/// Defect 4's shape: the budget is full and producers on both partitions
/// wait for room when `stop` empties one partition after another. The
/// bytes stop frees are never theirs: they get `Closed`.
#[test]
fn stop_answers_blocked_producers_closed() {
    explore(|| {
        let (dispatcher, _batches) = Dispatcher::<Ev>::builder()
            .partitions(2)
            .max_buffered_bytes(20)
            .interval(Duration::MAX)
            .policy(block())
            .build()
            .unwrap();
        let first = dispatcher.producer();
        first.try_enqueue(ev(0, 0, 20)).unwrap();
        let waiting: Vec<_> = [first, dispatcher.producer()]
            .into_iter()
            .enumerate()
            .map(|(at, producer)| thread::spawn(move || producer.enqueue(ev(at as u8, 1, 5))))
            .collect();
        let back = dispatcher.stop();
        assert_eq!(back, [ev(0, 0, 20)]);
        for waiter in waiting {
            assert!(matches!(
                waiter.join().unwrap(),
                Err(EnqueueError::Closed(_))
            ));
        }
    });
}

/// Shutdown racing producers and a receiver: every event a producer got
/// `Ok` for is delivered or returned exactly once; the rest are refused
/// as `Closed` with the event handed back.
#[test]
fn shutdown_racing_producers_loses_nothing() {
    explore(|| shutdown_race(24, [8, 8, 8], Receiver::Drops));
}

/// The same with leases (a 1 MiB limit on two partitions): small events
/// admitted from a lease, a large one waiting for room. Closure is read
/// under the partition's lock, so nothing admitted from a lease after the
/// drain passed its partition is lost.
#[test]
fn shutdown_racing_leasing_producers_loses_nothing() {
    explore(|| shutdown_race(1 << 20, [4 << 10, 600 << 10, 4 << 10], Receiver::Drops));
}

/// What the receiver does with its handle once its loop ends.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Receiver {
    /// Drops it: the drain may end as "no receiver left", with events
    /// returned.
    Drops,
    /// Keeps it until shutdown returns: the loop must not end before every
    /// accepted event was delivered, or the drain waits forever.
    Holds,
}

/// Two producers on two partitions each enqueue `weights` under Block
/// while a receiver takes batches and shutdown starts; checks every fate.
fn shutdown_race(limit: usize, weights: [u32; 3], receiver: Receiver) {
    let fates = Arc::new(Fates::default());
    let (dispatcher, batches) = Dispatcher::<Ev>::builder()
        .partitions(2)
        .max_buffered_bytes(limit)
        .max_batch_items(2)
        .interval(Duration::MAX)
        .policy(block())
        .build()
        .unwrap();
    let producers: Vec<_> = (0..2u8)
        .map(|from| {
            let (producer, fates) = (dispatcher.producer(), Arc::clone(&fates));
            thread::spawn(move || {
                for (seq, weight) in (0u8..).zip(weights) {
                    let event = ev(from, seq, weight);
                    fates.record(&event, "accepted");
                    match producer.enqueue(event) {
                        Ok(()) => {}
                        Err(EnqueueError::Closed(back)) => {
                            fates.0.lock().unwrap().remove(&back);
                        }
                        Err(other) => panic!("{other:?}"),
                    }
                }
            })
        })
        .collect();
    let taker = {
        let fates = Arc::clone(&fates);
        thread::spawn(move || {
            for batch in &batches {
                batch.iter().for_each(|e| fates.record(e, "delivered"));
            }
            (receiver == Receiver::Holds).then_some(batches)
        })
    };
    let (stats, returned) = match dispatcher.shutdown(LONG) {
        Ok(report) => (report.stats, Vec::new()),
        Err(timeout) => (timeout.report.stats, timeout.undelivered.into_vec()),
    };
    producers.into_iter().for_each(|p| p.join().unwrap());
    drop(taker.join().unwrap());
    assert!(
        receiver == Receiver::Drops || returned.is_empty(),
        "a receiver held on, yet shutdown returned {returned:?}"
    );
    returned.iter().for_each(|e| fates.record(e, "returned"));
    fates.check_exactly_once();
    assert!(stats.peak_buffered_bytes <= limit);
}

/// The stream ends only once every accepted event has been handed over:
/// the receiver keeps its handle after its loop ends, until shutdown
/// returns. A receiver told "no more" while an accepted event was still
/// on its way to a partition would stop taking, and the drain would wait
/// for it forever (a deadlock under shuttle) instead of ending.
#[test]
fn the_stream_ends_only_after_every_accepted_event() {
    explore(|| shutdown_race(24, [8, 8, 8], Receiver::Holds));
}

/// The same with leases: admission from a lease reads no budget word.
#[test]
fn the_stream_ends_only_after_every_leased_event() {
    explore(|| shutdown_race(1 << 20, [4 << 10, 4 << 10, 4 << 10], Receiver::Holds));
}

/// Two partitions under a 1 MiB limit lease budget bytes ahead (8 KiB
/// here). B's 1020 KiB event does not fit beside A's events and A's unused
/// lease, so B waits: A's lease must come back with A's events, and B be
/// let in, or every thread blocks. The bound holds throughout.
#[test]
fn a_lease_comes_back_to_a_blocked_producer() {
    explore(|| {
        let (dispatcher, batches) = Dispatcher::<Ev>::builder()
            .partitions(2)
            .max_buffered_bytes(1 << 20)
            .max_batch_items(1)
            .interval(Duration::MAX)
            .policy(block())
            .build()
            .unwrap();
        let (a, b) = (dispatcher.producer(), dispatcher.producer());
        a.try_enqueue(ev(0, 0, 1 << 10)).unwrap();
        a.try_enqueue(ev(0, 1, 10 << 10)).unwrap();
        let b = thread::spawn(move || b.enqueue(ev(1, 0, 1020 << 10)));
        let mut bytes = Vec::new();
        while bytes.len() < 3 {
            bytes.push(batches.recv().unwrap().bytes());
            assert!(dispatcher.stats().buffered_bytes <= 1 << 20);
        }
        assert!(b.join().unwrap().is_ok());
        bytes.sort_unstable();
        assert_eq!(bytes, [1 << 10, 10 << 10, 1020 << 10]);
        let stats = dispatcher.stats();
        assert_eq!(stats.buffered_bytes, 0);
        assert!(stats.peak_buffered_bytes <= 1 << 20);
        let report = dispatcher.shutdown(LONG).unwrap();
        assert_eq!(report.stats.buffered_bytes, 0);
    });
}

/// A producer waits for room while the limit is lowered under it, then
/// raised: raising it is news for the waiter, which must be let in.
#[test]
fn raising_a_lowered_limit_lets_a_waiter_in() {
    explore(|| {
        let (dispatcher, batches) = one_event_batches_of_100_bytes();
        let producer = dispatcher.producer();
        producer.try_enqueue(vec![0; 30]).unwrap();
        producer.try_enqueue(vec![1; 30]).unwrap();
        let waiter = thread::spawn(move || producer.enqueue(vec![2; 50]));
        let mut limits = dispatcher.limits();
        limits.max_buffered_bytes = 50;
        dispatcher.set_limits(limits).unwrap();
        assert_eq!(batches.recv().unwrap().bytes(), 30);
        assert!(dispatcher.stats().buffered_bytes <= 60);
        limits.max_buffered_bytes = 200;
        dispatcher.set_limits(limits).unwrap();
        assert!(waiter.join().unwrap().is_ok());
        assert!(dispatcher.stats().peak_buffered_bytes <= 100);
    });
}

/// An async sink whose write never ends.
struct Hangs;

impl AsyncSink<Ev> for Hangs {
    async fn write(&self, _: &Batch<Ev>, _: &FlushContext) -> Result<(), SinkError> {
        std::future::pending().await
    }
}

/// Defect 5's shape: the async driver is aborted while a write hangs, racing
/// the producer. The batch in flight is settled on drop (back to its
/// queue, still charged), so shutdown returns every accepted event.
#[test]
fn an_aborted_sink_driver_loses_no_batch() {
    explore(|| {
        let (dispatcher, driver) = Dispatcher::<Ev>::builder()
            .partitions(2)
            .max_batch_items(1)
            .interval(Duration::MAX)
            .flush_timeout(LONG)
            .build_with_async_sink(Hangs)
            .unwrap();
        let driving = shuttle::future::spawn(driver);
        let producer = dispatcher.producer();
        let sent: Vec<Ev> = (0..2).map(|seq| ev(0, seq, 4)).collect();
        let accepted: Vec<Ev> = sent
            .into_iter()
            .filter(|e| match producer.try_enqueue(e.clone()) {
                Ok(()) => true,
                Err(TryEnqueueError::Closed(_)) => false,
                Err(other) => panic!("{other:?}"),
            })
            .collect();
        let abort = thread::spawn(move || driving.abort());
        abort.join().unwrap();
        let report = dispatcher.shutdown(LONG).unwrap_err();
        let stats = report.report.stats;
        assert_eq!(
            (stats.delivered, stats.failed, stats.in_flight_items),
            (0, 0, 0)
        );
        assert_eq!(report.into_inner(), accepted);
    });
}
