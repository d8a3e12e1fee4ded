//! Regression tests for defects found by an independent check (6 and 7; 1-5
//! are in `defects.rs`); each test guards one contract:
//!
//! - `defect6_*`: `Duration::MAX` for the interval or its jitter is either
//!   refused by the builder (naming the field) or means "never cut by time";
//!   it never panics a receiver, a flush or the stream. (The timeouts that
//!   already saturate — Block's, `enqueue_timeout`, `recv_timeout` — are
//!   guarded alongside.)
//! - `defect7_*`: an event whose `Weight` is not stable (or panics) cannot
//!   corrupt the accounting: evictions and re-cuts under new limits keep the
//!   byte bound, the counters balance, everything delivered brings
//!   `buffered_bytes` back to 0, and no event is lost — also when `weight()`
//!   panics in `set_limits` or during an eviction (the panic may reach the
//!   caller; the events must survive it).

#![allow(missing_docs)]

mod common;

use std::any::Any;
use std::collections::BTreeSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use common::{LONG, WATCHDOG, assert_balanced, block, spawn, with_watchdog};
use dispatcher::{Batches, Dispatcher, Policy, RecvTimeoutError, TryRecvError, Weight};

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
/// A DropOldest dispatcher of `max` bytes that never cuts by time.
fn drop_oldest(max: usize) -> (Dispatcher<Fickle>, Batches<Fickle>) {
    Dispatcher::builder()
        .interval(LONG)
        .max_buffered_bytes(max)
        .policy(Policy::DropOldest)
        .build()
        .unwrap()
}

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
    let (dispatcher, batches) = drop_oldest(MAX);
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
    let (dispatcher, batches) = drop_oldest(MAX);
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
