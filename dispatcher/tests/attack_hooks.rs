//! Attacks on the hook contract: a panic in a user hook is propagated but
//! never loses an event or corrupts a counter. Every scenario runs under a
//! watchdog, so a deadlock fails the test instead of hanging the suite.
//!
//! Contract breaks found (these tests failed until fixed):
//!
//! - `a_panicking_on_evict_still_receives_every_evicted_event`: a panic in
//!   `on_evict` dropped the other events of the same eviction unseen.
//! - `a_panicking_on_reject_still_counts_the_refusal`: a panic in
//!   `on_reject` left the `can_add` refusal out of `rejected.refused`.
//!
//! Panicking hooks and weights under load are in `attack_hammer.rs`, a
//! panicking `AsyncSink::write` in `attack_shutdown.rs`.

mod attack_kit;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};

use attack_kit::{Ev, LONG, assert_balanced, ev, watchdog};
use dispatcher::{Dispatcher, Policy};

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
