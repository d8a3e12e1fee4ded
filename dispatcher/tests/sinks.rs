//! Sink mode under fault injection: sinks that fail, fail for some batches,
//! run past their timeout or panic; retries, the error hook, several flush
//! workers, metadata and settings. Every test counts exactly: which events
//! the sink wrote, which reached the error hook, and what the dispatcher's
//! counters say. (Lifecycle and load: `sinks_lifecycle.rs`, `sinks_stress.rs`.)

#![allow(missing_docs)]

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::sink_kit::{Cause, Failure, enqueue_seqs, failed_seqs, recording_hook};
use common::{Ev, LONG, PROMPTLY, assert_balanced, builder, ev, quick_retry, seqs};
use dispatcher::sink::{self, FlushContext, Retry};
use dispatcher::{Batch, Dispatcher, FlushReason, Weight};

/// Every sink call: the events' sequence numbers and `ctx.attempt()`.
type Calls = Arc<Mutex<Vec<(Vec<u32>, u32)>>>;

#[test]
fn a_sink_failing_the_first_attempts_delivers_every_event_once_in_order() {
    const K: u32 = 2;
    let calls = Calls::default();
    let written = Arc::new(Mutex::new(Vec::new()));
    let (failures, hook) = recording_hook();
    let (calls_in, written_in) = (Arc::clone(&calls), Arc::clone(&written));
    let dispatcher = builder()
        .max_batch_items(5)
        .retry(quick_retry(K + 2))
        .on_flush_error(hook)
        .build_with_sink(sink::from_fn(
            move |batch: &Batch<Ev>, ctx: &FlushContext| -> Result<(), String> {
                calls_in
                    .lock()
                    .unwrap()
                    .push((seqs(batch.items()), ctx.attempt()));
                if ctx.attempt() <= K {
                    return Err(format!("attempt {} refused", ctx.attempt()));
                }
                written_in.lock().unwrap().extend(seqs(batch.items()));
                Ok(())
            },
        ))
        .unwrap();
    enqueue_seqs(&dispatcher, 0..23, 10);

    let report = dispatcher.shutdown(PROMPTLY).unwrap();

    assert_eq!(*written.lock().unwrap(), (0..23).collect::<Vec<_>>());
    let expected: Vec<(Vec<u32>, u32)> = (0..23u32)
        .collect::<Vec<_>>()
        .chunks(5)
        .flat_map(|chunk| (1..=K + 1).map(move |attempt| (chunk.to_vec(), attempt)))
        .collect();
    assert_eq!(*calls.lock().unwrap(), expected);
    assert!(failures.lock().unwrap().is_empty());
    let stats = report.stats;
    assert_eq!(report.delivered_total, 23);
    assert_eq!((stats.batches, stats.retries), (5, u64::from(K) * 5));
    assert_eq!((stats.flushes.items, stats.flushes.drain), (4, 1));
    assert_eq!((stats.failed, stats.failed_batches), (0, 0));
    assert_eq!((stats.sink_timeouts, stats.sink_panics), (0, 0));
    assert_eq!((stats.buffered_bytes, stats.buffered_items), (0, 0));
    assert_eq!(stats.delivered_bytes, 230);
    assert_balanced(&stats);
}

#[test]
fn a_sink_that_always_fails_hands_exactly_the_failed_events_to_the_hook() {
    let attempts = Arc::new(AtomicU32::new(0));
    let (failures, hook) = recording_hook();
    let count = Arc::clone(&attempts);
    let dispatcher = builder()
        .max_batch_items(4)
        .retry(quick_retry(3))
        .on_flush_error(hook)
        .build_with_sink(sink::from_fn(
            move |_: &Batch<Ev>, _: &FlushContext| -> Result<(), String> {
                count.fetch_add(1, Ordering::SeqCst);
                Err("downstream is down".into())
            },
        ))
        .unwrap();
    enqueue_seqs(&dispatcher, 0..13, 7);

    let report = dispatcher.shutdown(PROMPTLY).unwrap();

    let failures = failures.lock().unwrap();
    let batches: Vec<Vec<u32>> = failures.iter().map(|f| seqs(&f.events)).collect();
    assert_eq!(
        batches,
        [
            vec![0, 1, 2, 3],
            vec![4, 5, 6, 7],
            vec![8, 9, 10, 11],
            vec![12]
        ]
    );
    for failure in failures.iter() {
        assert_eq!(failure.attempts, 3);
        assert_eq!(failure.cause, Cause::Sink("downstream is down".into()));
        assert!(failure.events.iter().all(|e| e.weight == 7));
    }
    assert_eq!(attempts.load(Ordering::SeqCst), 4 * 3);
    let stats = report.stats;
    assert_eq!(report.delivered_total, 0);
    assert_eq!(
        (stats.accepted, stats.failed, stats.failed_batches),
        (13, 13, 4)
    );
    assert_eq!(
        (stats.delivered, stats.batches, stats.delivered_bytes),
        (0, 0, 0)
    );
    assert_eq!(stats.retries, 4 * 2);
    assert_eq!((stats.sink_timeouts, stats.sink_panics), (0, 0));
    assert_eq!((stats.buffered_bytes, stats.buffered_items), (0, 0));
    assert_eq!(stats.in_flight_items, 0);
    assert_balanced(&stats);
}

#[test]
fn only_the_batches_holding_a_poison_event_reach_the_hook() {
    let poison: HashSet<u32> = [3, 9].into();
    let written = Arc::new(Mutex::new(Vec::new()));
    let (failures, hook) = recording_hook();
    let out = Arc::clone(&written);
    let dispatcher = builder()
        .max_batch_items(4)
        .retry(quick_retry(2))
        .on_flush_error(hook)
        .build_with_sink(sink::from_fn(
            move |batch: &Batch<Ev>, _: &FlushContext| -> Result<(), String> {
                if let Some(bad) = batch.iter().find(|e| poison.contains(&e.seq)) {
                    return Err(format!("poison {}", bad.seq));
                }
                out.lock().unwrap().push(seqs(batch.items()));
                Ok(())
            },
        ))
        .unwrap();
    enqueue_seqs(&dispatcher, 0..16, 5);
    dispatcher.flush_and_wait(PROMPTLY).unwrap();

    assert_eq!(*written.lock().unwrap(), [[4, 5, 6, 7], [12, 13, 14, 15]]);
    assert_eq!(failed_seqs(&failures), [[0, 1, 2, 3], [8, 9, 10, 11]]);
    let failures = failures.lock().unwrap();
    assert_eq!(seqs(&failures[0].events), [0, 1, 2, 3]);
    assert_eq!(failures[0].cause, Cause::Sink("poison 3".into()));
    assert_eq!(seqs(&failures[1].events), [8, 9, 10, 11]);
    assert_eq!(failures[1].cause, Cause::Sink("poison 9".into()));
    assert!(failures.iter().all(|f| f.attempts == 2));
    drop(failures);
    let stats = dispatcher.stats();
    assert_eq!((stats.delivered, stats.batches), (8, 2));
    assert_eq!(
        (stats.failed, stats.failed_batches, stats.retries),
        (8, 2, 2)
    );
    assert_eq!(stats.buffered_bytes, 0);
    assert_balanced(&stats);
}

#[test]
fn an_error_returned_after_the_deadline_counts_as_a_timeout() {
    let timeout = Duration::from_millis(40);
    let (failures, hook) = recording_hook();
    let remaining = Arc::new(Mutex::new(Vec::new()));
    let out = Arc::clone(&remaining);
    let dispatcher = builder()
        .flush_timeout(timeout)
        .retry(quick_retry(2))
        .on_flush_error(hook)
        .build_with_sink(sink::from_fn(
            move |_: &Batch<Ev>, ctx: &FlushContext| -> Result<(), String> {
                let left = ctx.remaining();
                assert!(left <= Duration::from_millis(40));
                thread::sleep(left + Duration::from_millis(20));
                out.lock().unwrap().push(ctx.remaining());
                Err("too slow".into())
            },
        ))
        .unwrap();
    enqueue_seqs(&dispatcher, 0..3, 4);
    dispatcher.flush_and_wait(PROMPTLY).unwrap();

    assert_eq!(
        *failures.lock().unwrap(),
        [Failure {
            attempts: 2,
            cause: Cause::TimedOut(timeout),
            events: vec![ev(0, 0, 4), ev(0, 1, 4), ev(0, 2, 4)],
        }]
    );
    assert_eq!(*remaining.lock().unwrap(), [Duration::ZERO; 2]);
    let stats = dispatcher.stats();
    assert_eq!(
        (stats.sink_timeouts, stats.retries, stats.sink_panics),
        (2, 1, 0)
    );
    assert_eq!(
        (stats.failed, stats.failed_batches, stats.delivered),
        (3, 1, 0)
    );
    assert_balanced(&stats);
}

#[test]
fn a_slow_sink_that_returns_ok_late_is_delivered_not_timed_out() {
    let (failures, hook) = recording_hook();
    let dispatcher = builder()
        .flush_timeout(Duration::from_millis(30))
        .on_flush_error(hook)
        .build_with_sink(sink::from_fn(
            |_: &Batch<Ev>, ctx: &FlushContext| -> Result<(), String> {
                thread::sleep(ctx.remaining() + Duration::from_millis(20));
                assert_eq!(ctx.remaining(), Duration::ZERO);
                Ok(())
            },
        ))
        .unwrap();
    enqueue_seqs(&dispatcher, 0..2, 4);
    dispatcher.flush_and_wait(PROMPTLY).unwrap();

    assert!(failures.lock().unwrap().is_empty());
    let stats = dispatcher.stats();
    assert_eq!((stats.delivered, stats.batches), (2, 1));
    assert_eq!(
        (stats.sink_timeouts, stats.retries, stats.failed),
        (0, 0, 0)
    );
    assert_balanced(&stats);
}

#[test]
fn sink_panics_are_caught_with_their_message_and_later_batches_are_delivered() {
    let written = Arc::new(Mutex::new(Vec::new()));
    let (failures, hook) = recording_hook();
    let out = Arc::clone(&written);
    let dispatcher = builder()
        .max_batch_items(2)
        .retry(quick_retry(3))
        .on_flush_error(hook)
        .build_with_sink(sink::from_fn(
            move |batch: &Batch<Ev>, ctx: &FlushContext| -> Result<(), String> {
                match (batch[0].seq, ctx.attempt()) {
                    // Fails every attempt; the last panic carries a String.
                    (0, 1) => panic!("static boom"),
                    (0, 2) => std::panic::panic_any(42u32),
                    (0, n) => panic!("boom on attempt {n}"),
                    // Fails every attempt with a payload that is no string.
                    (2, _) => std::panic::panic_any(7u8),
                    // Panics once, then succeeds.
                    (4, 1) => panic!("transient"),
                    _ => {
                        out.lock().unwrap().push(seqs(batch.items()));
                        Ok(())
                    }
                }
            },
        ))
        .unwrap();
    enqueue_seqs(&dispatcher, 0..8, 3);
    dispatcher.flush_and_wait(PROMPTLY).unwrap();

    assert_eq!(*written.lock().unwrap(), [[4, 5], [6, 7]]);
    let failures = failures.lock().unwrap().clone();
    assert_eq!(failures.len(), 2);
    assert_eq!(
        (
            seqs(&failures[0].events),
            failures[0].attempts,
            &failures[0].cause
        ),
        (vec![0, 1], 3, &Cause::Panicked("boom on attempt 3".into()))
    );
    assert_eq!(
        (
            seqs(&failures[1].events),
            failures[1].attempts,
            &failures[1].cause
        ),
        (
            vec![2, 3],
            3,
            &Cause::Panicked("non-string panic payload".into())
        )
    );
    let stats = dispatcher.stats();
    assert_eq!(stats.sink_panics, 3 + 3 + 1);
    assert_eq!(stats.retries, 2 + 2 + 1);
    assert_eq!((stats.failed, stats.failed_batches), (4, 2));
    assert_eq!((stats.delivered, stats.batches), (4, 2));

    // The worker survived: more events still reach the sink.
    enqueue_seqs(&dispatcher, 8..11, 3);
    let report = dispatcher.shutdown(PROMPTLY).unwrap();
    assert_eq!(
        *written.lock().unwrap(),
        [vec![4, 5], vec![6, 7], vec![8, 9], vec![10]]
    );
    assert_eq!(report.delivered_total, 7);
    assert_balanced(&report.stats);
}

/// An event that knows whether it is still alive somewhere.
struct Tracked {
    id: u32,
    _alive: Arc<()>,
}

impl Weight for Tracked {
    fn weight(&self) -> usize {
        8
    }
}

#[test]
fn without_a_hook_failed_events_are_counted_and_dropped() {
    let alive = Arc::new(());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let out = Arc::clone(&seen);
    let dispatcher = Dispatcher::<Tracked>::builder()
        .interval(LONG)
        .max_batch_items(3)
        .retry(quick_retry(2))
        .build_with_sink(sink::from_fn(
            move |batch: &Batch<Tracked>, _: &FlushContext| -> Result<(), String> {
                out.lock()
                    .unwrap()
                    .push(batch.iter().map(|t| t.id).collect::<Vec<_>>());
                Err("no".into())
            },
        ))
        .unwrap();
    let producer = dispatcher.producer();
    for id in 0..7 {
        let event = Tracked {
            id,
            _alive: Arc::clone(&alive),
        };
        assert!(producer.try_enqueue(event).is_ok());
    }
    dispatcher.flush_and_wait(PROMPTLY).unwrap();

    assert_eq!(
        *seen.lock().unwrap(),
        [
            vec![0, 1, 2],
            vec![0, 1, 2],
            vec![3, 4, 5],
            vec![3, 4, 5],
            vec![6],
            vec![6]
        ]
    );
    assert_eq!(
        Arc::strong_count(&alive),
        1,
        "failed events were not dropped"
    );
    let stats = dispatcher.stats();
    assert_eq!(
        (stats.failed, stats.failed_batches, stats.retries),
        (7, 3, 3)
    );
    assert_eq!((stats.delivered, stats.buffered_bytes), (0, 0));
    assert_balanced(&stats);
    let report = dispatcher.shutdown(PROMPTLY).unwrap();
    assert_eq!(report.delivered_total, 0);
    assert_balanced(&report.stats);
}

/// Lets callers in once `need` of them have arrived (or `limit` passed).
struct Rendezvous {
    arrived: Mutex<usize>,
    changed: Condvar,
}

impl Rendezvous {
    /// Returns whether `need` callers were inside together.
    fn arrive(&self, need: usize, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let mut arrived = self.arrived.lock().unwrap();
        *arrived += 1;
        self.changed.notify_all();
        while *arrived < need {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            arrived = self
                .changed
                .wait_timeout(arrived, deadline - now)
                .unwrap()
                .0;
        }
        true
    }
}

#[test]
fn four_workers_deliver_every_event_once_with_each_batch_in_order() {
    const EVENTS: u32 = 200;
    let rendezvous = Arc::new(Rendezvous {
        arrived: Mutex::new(0),
        changed: Condvar::new(),
    });
    let met = Arc::new(AtomicUsize::new(0));
    // (worker, thread name, events) for every batch.
    let calls = Arc::new(Mutex::new(Vec::new()));
    let (out, inside, together) = (
        Arc::clone(&calls),
        Arc::clone(&rendezvous),
        Arc::clone(&met),
    );
    let dispatcher = builder()
        .name("sinktest")
        .max_batch_items(5)
        .flush_workers(4)
        .build_with_sink(sink::from_fn(
            move |batch: &Batch<Ev>, ctx: &FlushContext| -> Result<(), String> {
                // The first two calls wait for each other: two workers are
                // then provably writing at once.
                if inside.arrive(2, PROMPTLY) {
                    together.fetch_add(1, Ordering::SeqCst);
                }
                let name = thread::current().name().unwrap_or("").to_string();
                out.lock()
                    .unwrap()
                    .push((ctx.worker(), name, seqs(batch.items())));
                Ok(())
            },
        ))
        .unwrap();
    enqueue_seqs(&dispatcher, 0..EVENTS, 1);
    let report = dispatcher.shutdown(PROMPTLY).unwrap();

    assert_eq!(report.delivered_total, u64::from(EVENTS));
    assert_eq!(met.load(Ordering::SeqCst), EVENTS as usize / 5);
    let calls = calls.lock().unwrap();
    assert_eq!(calls.len(), EVENTS as usize / 5);
    let mut all: Vec<u32> = Vec::new();
    let mut workers = HashSet::new();
    for (worker, name, batch) in calls.iter() {
        assert!(*worker < 4, "worker {worker}");
        assert_eq!(name, &format!("sinktest-flush-{worker}"));
        assert_eq!(batch.len(), 5);
        assert!(batch.windows(2).all(|w| w[1] == w[0] + 1), "{batch:?}");
        workers.insert(*worker);
        all.extend(batch);
    }
    assert!(workers.len() >= 2, "only workers {workers:?} wrote");
    all.sort_unstable();
    assert_eq!(all, (0..EVENTS).collect::<Vec<_>>());
    assert_eq!((report.stats.batches, report.stats.failed), (40, 0));
    assert_balanced(&report.stats);
}

#[derive(Debug, PartialEq, Eq)]
struct Tenant {
    name: &'static str,
    shard: u8,
}

#[test]
fn metadata_reaches_every_sink_call() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let out = Arc::clone(&seen);
    let dispatcher = builder()
        .max_batch_items(2)
        .flush_workers(2)
        .retry(quick_retry(2))
        .build_with_sink_meta(
            Tenant {
                name: "acme",
                shard: 3,
            },
            sink::from_fn(
                move |batch: &Batch<Ev>, ctx: &FlushContext<Tenant>| -> Result<(), String> {
                    let meta = ctx.metadata();
                    out.lock()
                        .unwrap()
                        .push((meta.name, meta.shard, ctx.attempt()));
                    // The first attempt of every second batch fails: retries see it too.
                    if batch[0].seq % 4 == 2 && ctx.attempt() == 1 {
                        return Err("again".into());
                    }
                    Ok(())
                },
            ),
        )
        .unwrap();
    enqueue_seqs(&dispatcher, 0..8, 1);
    let report = dispatcher.shutdown(PROMPTLY).unwrap();
    assert_eq!(report.delivered_total, 8);

    let mut seen = seen.lock().unwrap().clone();
    seen.sort_unstable();
    assert_eq!(
        seen,
        [
            ("acme", 3, 1),
            ("acme", 3, 1),
            ("acme", 3, 1),
            ("acme", 3, 1),
            ("acme", 3, 2),
            ("acme", 3, 2)
        ]
    );
    assert_eq!(report.stats.retries, 2);
}

#[test]
fn invalid_sink_settings_are_refused_by_field() {
    let ok = || sink::from_fn(|_: &Batch<Ev>, _: &FlushContext| Ok::<_, String>(()));
    let field = |b: dispatcher::Builder<Ev>| b.build_with_sink(ok()).unwrap_err().field();
    assert_eq!(field(builder().flush_workers(0)), "flush_workers");
    assert_eq!(field(builder().flush_workers(1025)), "flush_workers");
    assert_eq!(
        field(builder().flush_timeout(Duration::ZERO)),
        "flush_timeout"
    );
    let retry = Retry::default();
    assert_eq!(
        field(builder().retry(Retry::new(0, retry.base, retry.cap))),
        "retry.max_attempts"
    );
    assert_eq!(
        field(builder().retry(Retry::new(
            retry.max_attempts,
            Duration::from_secs(1),
            Duration::from_millis(999)
        ))),
        "retry.cap"
    );
    assert_eq!(
        field(builder().retry(Retry::new(retry.max_attempts, Duration::ZERO, retry.cap))),
        "retry.base"
    );
    // The limits are checked in sink mode too, and with metadata.
    let err = builder()
        .max_batch_items(0)
        .build_with_sink_meta(
            1u8,
            sink::from_fn(|_: &Batch<Ev>, _: &FlushContext<u8>| Ok::<_, String>(())),
        )
        .unwrap_err();
    assert_eq!(err.field(), "max_batch_items");
    let err = builder()
        .flush_workers(0)
        .build_with_sink(ok())
        .unwrap_err();
    assert_eq!(err.value(), "0");
    assert_eq!(err.allowed(), "1 ..= 1024");
}

#[test]
fn reasons_are_kept_for_batches_written_by_the_sink() {
    let reasons = Arc::new(Mutex::new(Vec::new()));
    let out = Arc::clone(&reasons);
    let dispatcher = builder()
        .max_batch_bytes(10)
        .build_with_sink(sink::from_fn(
            move |batch: &Batch<Ev>, _: &FlushContext| -> Result<(), String> {
                out.lock().unwrap().push((batch.reason(), batch.bytes()));
                Ok(())
            },
        ))
        .unwrap();
    enqueue_seqs(&dispatcher, 0..3, 5);
    dispatcher.flush_and_wait(PROMPTLY).unwrap();
    assert_eq!(
        *reasons.lock().unwrap(),
        [(FlushReason::Bytes, 10), (FlushReason::Manual, 5)]
    );
    let stats = dispatcher.stats();
    assert_eq!(
        (
            stats.flushes.bytes,
            stats.flushes.manual,
            stats.delivered_bytes
        ),
        (1, 1, 15)
    );
}
