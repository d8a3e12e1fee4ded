//! Batch hooks that panic: the panic is caught under the lock and resumed
//! on the producer's thread once the operation is complete, so the
//! dispatcher keeps working with exact accounting, groups stay whole and
//! receivers are still woken.

#![allow(missing_docs)]

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Ev, PROMPTLY, assert_balanced, builder, charge, ev, ready, seqs};
use dispatcher::sink::{self, FlushContext};
use dispatcher::{Batch, Batches, Dispatcher, TryEnqueueError};

/// Runs `f`, expecting it to panic.
fn expect_panic<R>(f: impl FnOnce() -> R) {
    let outcome = catch_unwind(AssertUnwindSafe(f));
    assert!(outcome.is_err(), "the hook did not panic");
}

/// Receives everything ready and checks the accounting against what was
/// sent: exact bytes and items, nothing lost or duplicated.
fn check_after_panic(dispatcher: &Dispatcher<Ev>, batches: &Batches<Ev>, admitted: &[Ev]) {
    dispatcher.flush();
    let delivered: Vec<Ev> = ready(batches)
        .iter()
        .flat_map(|b| b.items().to_vec())
        .collect();
    assert_eq!(delivered, admitted);
    let stats = dispatcher.stats();
    assert_eq!(stats.accepted, admitted.len() as u64);
    assert_eq!(stats.delivered, admitted.len() as u64);
    assert_eq!(
        stats.delivered_bytes,
        admitted
            .iter()
            .map(|e| charge(e.weight) as u64)
            .sum::<u64>()
    );
    assert_eq!((stats.buffered_bytes, stats.buffered_items), (0, 0));
    assert_balanced(&stats);
}

/// A hook predicate that panics on its `nth` call (from 1).
fn panics_on(nth: usize) -> impl Fn() + Send + Sync + 'static {
    let calls = AtomicUsize::new(0);
    move || {
        if calls.fetch_add(1, Ordering::SeqCst) + 1 == nth {
            panic!("hook panics on call {nth}");
        }
    }
}

#[test]
fn a_panicking_should_flush_leaves_a_working_dispatcher() {
    let tick = panics_on(3);
    let (dispatcher, batches) = builder()
        .max_buffered_bytes(100)
        .should_flush(move |open| {
            tick();
            open.len() >= 4
        })
        .build()
        .unwrap();
    let producer = dispatcher.producer();
    producer.try_enqueue(ev(0, 0, 10)).unwrap();
    producer.try_enqueue(ev(0, 1, 10)).unwrap();
    // should_flush runs after the event is appended and accounted: the
    // event is accepted although the call panicked.
    expect_panic(|| producer.try_enqueue(ev(0, 2, 10)));
    let stats = dispatcher.stats();
    assert_eq!(
        (stats.accepted, stats.buffered_bytes, stats.buffered_items),
        (3, 30, 3)
    );
    assert_balanced(&stats);
    // The lock is not poisoned and the byte bound still holds exactly.
    for seq in 3..10 {
        producer.try_enqueue(ev(0, seq, 10)).unwrap();
    }
    assert!(matches!(
        producer.try_enqueue(ev(0, 10, 1)),
        Err(TryEnqueueError::Full(_))
    ));
    let admitted: Vec<Ev> = (0..10).map(|seq| ev(0, seq, 10)).collect();
    check_after_panic(&dispatcher, &batches, &admitted);
    assert_eq!(dispatcher.stats().flushes.hook, 2);
}

#[test]
fn a_panicking_can_add_changes_nothing() {
    let tick = panics_on(2);
    let (dispatcher, batches) = builder()
        .can_add(move |_, _| {
            tick();
            true
        })
        .build()
        .unwrap();
    let producer = dispatcher.producer();
    producer.try_enqueue(ev(0, 0, 3)).unwrap();
    expect_panic(|| producer.try_enqueue(ev(0, 1, 3)));
    let stats = dispatcher.stats();
    assert_eq!(
        (stats.accepted, stats.buffered_bytes, stats.rejected.total()),
        (1, 3, 0)
    );
    producer.try_enqueue(ev(0, 2, 3)).unwrap();
    check_after_panic(&dispatcher, &batches, &[ev(0, 0, 3), ev(0, 2, 3)]);
}

#[test]
fn a_panicking_will_overflow_leaves_exact_accounting() {
    let tick = panics_on(2);
    let (dispatcher, batches) = builder()
        .max_buffered_bytes(100)
        .will_overflow(move |_, _| {
            tick();
            false
        })
        .build()
        .unwrap();
    let producer = dispatcher.producer();
    producer.try_enqueue(ev(0, 0, 10)).unwrap();
    producer.try_enqueue(ev(0, 1, 10)).unwrap();
    expect_panic(|| producer.try_enqueue(ev(0, 2, 10)));
    producer.try_enqueue(ev(0, 3, 10)).unwrap();
    // Event 2 was either admitted (and is delivered) or not (and is not
    // counted): either way the books balance once everything is received.
    dispatcher.flush();
    let delivered: Vec<Ev> = ready(&batches)
        .iter()
        .flat_map(|b| b.items().to_vec())
        .collect();
    let stats = dispatcher.stats();
    assert_eq!(stats.accepted, delivered.len() as u64, "{stats:?}");
    assert_eq!(
        (stats.buffered_bytes, stats.buffered_items),
        (0, 0),
        "{stats:?}"
    );
    // And shutdown does not wait for an event that does not exist.
    let report = common::spawn(move || dispatcher.shutdown(Duration::from_secs(1)))
        .join("shutdown")
        .unwrap();
    assert!(report.elapsed < Duration::from_millis(500), "{report:?}");
}

#[test]
fn a_panicking_hook_does_not_split_a_group() {
    let tick = panics_on(2);
    let (dispatcher, batches) = builder()
        .should_flush(move |_| {
            tick();
            false
        })
        .build()
        .unwrap();
    let producer = dispatcher.producer();
    let group: Vec<Ev> = (0..4).map(|seq| ev(0, seq, 1)).collect();
    expect_panic(|| producer.try_enqueue_all(group));
    let accepted = dispatcher.stats().accepted;
    assert!(
        accepted == 0 || accepted == 4,
        "{accepted} of a group of 4 admitted"
    );
    dispatcher.flush();
    let delivered: usize = ready(&batches).iter().map(|b| b.len()).sum();
    assert_eq!(delivered as u64, accepted);
}

#[test]
fn after_a_should_flush_panic_the_open_batch_is_still_cut_at_its_interval() {
    let tick = panics_on(1);
    let written = Arc::new(Mutex::new(Vec::new()));
    let out = Arc::clone(&written);
    let dispatcher = Dispatcher::<Ev>::builder()
        .interval(Duration::from_millis(20))
        .should_flush(move |_| {
            tick();
            false
        })
        .build_with_sink(sink::from_fn(
            move |batch: &Batch<Ev>, _: &FlushContext| -> Result<(), String> {
                out.lock().unwrap().extend(seqs(batch.items()));
                Ok(())
            },
        ))
        .unwrap();
    // Let the flush worker go to sleep waiting for a batch.
    std::thread::sleep(Duration::from_millis(50));
    let producer = dispatcher.producer();
    expect_panic(|| producer.try_enqueue(ev(0, 0, 1)));
    assert_eq!(dispatcher.stats().accepted, 1);
    // Accepted, so it must be written about 20 ms later, without a flush.
    let deadline = std::time::Instant::now() + Duration::from_secs(1);
    while written.lock().unwrap().is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(
        *written.lock().unwrap(),
        [0],
        "interval batch never written"
    );
    dispatcher.shutdown(PROMPTLY).unwrap();
}
