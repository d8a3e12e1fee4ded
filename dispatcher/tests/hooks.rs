//! Batch hooks end to end: `should_flush` cuts, `will_overflow` keeps hard
//! downstream limits, `can_add` refuses with the event back and `on_reject`
//! sees exactly the refused events. (Panicking hooks: `hooks_panics.rs`;
//! the property test with DropOldest and live limits: `hooks_model.rs`.)

#![allow(missing_docs)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::{Ev, LONG, PROMPTLY, assert_balanced, builder, charge, ev, keys, ready, seqs};
use dispatcher::sink::{self, FlushContext};
use dispatcher::{
    Batch, Batches, Dispatcher, EnqueueError, EnqueueTimeoutError, FlushReason, Policy,
    TryEnqueueError,
};

fn summary(batches: &[Batch<Ev>]) -> Vec<(Vec<u32>, FlushReason)> {
    batches
        .iter()
        .map(|b| (seqs(b.items()), b.reason()))
        .collect()
}

#[test]
fn should_flush_cuts_when_the_predicate_says_so() {
    // (len, bytes, summed weights) of every open batch the hook saw.
    let views = Arc::new(Mutex::new(Vec::new()));
    let out = Arc::clone(&views);
    let (dispatcher, batches) = builder()
        .should_flush(move |open| {
            let summed: usize = open.items().iter().map(|e| charge(e.weight)).sum();
            out.lock().unwrap().push((open.len(), open.bytes(), summed));
            open.items().last().is_some_and(|e| e.seq % 3 == 2)
        })
        .build()
        .unwrap();
    let producer = dispatcher.producer();
    for seq in 0..8 {
        producer.try_enqueue(ev(0, seq, seq as usize)).unwrap();
    }
    let cut = ready(&batches);
    assert_eq!(
        summary(&cut),
        [
            (vec![0, 1, 2], FlushReason::Hook),
            (vec![3, 4, 5], FlushReason::Hook)
        ]
    );
    assert_eq!(cut[0].bytes(), 1 + 1 + 2);
    drop(cut);
    dispatcher.flush();
    assert_eq!(
        summary(&ready(&batches)),
        [(vec![6, 7], FlushReason::Manual)]
    );

    let views = views.lock().unwrap();
    assert_eq!(
        views.iter().map(|v| v.0).collect::<Vec<_>>(),
        [1, 2, 3, 1, 2, 3, 1, 2]
    );
    assert!(views.iter().all(|&(_, bytes, summed)| bytes == summed));
    let stats = dispatcher.stats();
    assert_eq!((stats.flushes.hook, stats.flushes.manual), (2, 1));
    assert_eq!(
        (stats.batches, stats.delivered, stats.buffered_bytes),
        (3, 8, 0)
    );
    assert_balanced(&stats);
}

#[test]
fn should_flush_cuts_reach_a_sink_as_hook_batches() {
    let written = Arc::new(Mutex::new(Vec::new()));
    let out = Arc::clone(&written);
    let dispatcher = builder()
        .should_flush(|open| open.bytes() >= 10)
        .build_with_sink(sink::from_fn(
            move |batch: &Batch<Ev>, _: &FlushContext| -> Result<(), String> {
                out.lock()
                    .unwrap()
                    .push((seqs(batch.items()), batch.reason(), batch.bytes()));
                Ok(())
            },
        ))
        .unwrap();
    let producer = dispatcher.producer();
    for seq in 0..7 {
        producer.try_enqueue(ev(0, seq, 4)).unwrap();
    }
    let report = dispatcher.shutdown(PROMPTLY).unwrap();
    assert_eq!(
        *written.lock().unwrap(),
        [
            (vec![0, 1, 2], FlushReason::Hook, 12),
            (vec![3, 4, 5], FlushReason::Hook, 12),
            (vec![6], FlushReason::Drain, 4)
        ]
    );
    assert_eq!(
        (report.stats.flushes.hook, report.stats.flushes.drain),
        (2, 1)
    );
}

/// A deterministic stream of keys and weights.
fn keyed_event(seq: u32) -> Ev {
    let x = seq.wrapping_mul(2_654_435_761).rotate_left(7);
    ev((x % 6) as u8, seq, (x >> 8) as usize % 40)
}

#[test]
fn will_overflow_keeps_batches_within_a_distinct_key_limit() {
    const MAX_KEYS: usize = 3;
    let asked_on_empty = Arc::new(AtomicUsize::new(0));
    let empty = Arc::clone(&asked_on_empty);
    let (dispatcher, batches) = builder()
        .max_batch_bytes(200)
        .will_overflow(move |open, next: &Ev| {
            if open.is_empty() {
                empty.fetch_add(1, Ordering::SeqCst);
            }
            let mut keys = keys(open.items());
            keys.insert(next.producer);
            keys.len() > MAX_KEYS
        })
        .build()
        .unwrap();
    let producer = dispatcher.producer();
    let mut received: Vec<Batch<Ev>> = Vec::new();
    let mut sent: Vec<Ev> = Vec::new();
    for seq in 0..400 {
        let event = keyed_event(seq);
        producer.try_enqueue(event.clone()).unwrap();
        sent.push(event);
        if seq % 37 == 0 {
            received.extend(ready(&batches));
            // Exact accounting: buffered is what is sent but not received.
            let taken: usize = received.iter().map(|b| b.len()).sum();
            let undelivered: usize = sent[taken..].iter().map(|e| charge(e.weight)).sum();
            let stats = dispatcher.stats();
            assert_eq!(stats.buffered_bytes, undelivered);
            assert_eq!(stats.buffered_items, sent.len() - taken);
            assert_balanced(&stats);
        }
    }
    dispatcher.flush();
    received.extend(ready(&batches));

    let all: Vec<Ev> = received.iter().flat_map(|b| b.items().to_vec()).collect();
    assert_eq!(all, sent, "every event once, in order");
    let mut hook_cuts = 0;
    for (i, batch) in received.iter().enumerate() {
        let mine = keys(batch.items());
        assert!(mine.len() <= MAX_KEYS, "batch {i} has keys {mine:?}");
        assert_eq!(
            batch.bytes(),
            batch.iter().map(|e| charge(e.weight)).sum::<usize>()
        );
        if batch.reason() == FlushReason::Hook {
            hook_cuts += 1;
            // Cut because the next event brought a fourth key: it starts
            // the next batch.
            let next = &received[i + 1][0];
            assert_eq!(mine.len(), MAX_KEYS);
            assert!(!mine.contains(&next.producer), "batch {i}: {next:?}");
        }
    }
    assert!(hook_cuts > 10, "only {hook_cuts} hook cuts");
    assert_eq!(asked_on_empty.load(Ordering::SeqCst), 0);
    let stats = dispatcher.stats();
    assert_eq!(stats.flushes.hook, hook_cuts);
    assert_eq!((stats.buffered_bytes, stats.buffered_items), (0, 0));
    assert_eq!(
        stats.delivered_bytes,
        sent.iter().map(|e| charge(e.weight) as u64).sum::<u64>()
    );
    assert_balanced(&stats);
}

/// The size of a batch in some wire format: a header and per-event framing.
fn serialized(events: &[Ev]) -> usize {
    2 + events.iter().map(|e| e.weight + 5).sum::<usize>()
}

#[test]
fn will_overflow_keeps_batches_under_a_serialized_size() {
    const MAX_WIRE: usize = 64;
    let (dispatcher, batches) = builder()
        .will_overflow(|open, next: &Ev| serialized(open.items()) + next.weight + 5 > MAX_WIRE)
        .build()
        .unwrap();
    let producer = dispatcher.producer();
    let sent: Vec<Ev> = (0..60)
        .map(|seq| ev(0, seq, (seq as usize * 11) % 50))
        .collect();
    for event in &sent {
        producer.try_enqueue(event.clone()).unwrap();
    }
    dispatcher.flush();
    let received = ready(&batches);

    let mut next_first = 0;
    for (i, batch) in received.iter().enumerate() {
        assert_eq!(batch[0].seq, next_first, "batch {i} does not follow on");
        next_first = batch.last().unwrap().seq + 1;
        if batch.len() > 1 {
            assert!(serialized(batch.items()) <= MAX_WIRE, "batch {i} too big");
        }
        if batch.reason() == FlushReason::Hook {
            // The event that did not fit opens the next batch.
            let next = &received[i + 1][0];
            assert!(serialized(batch.items()) + next.weight + 5 > MAX_WIRE);
        }
    }
    assert_eq!(next_first, 60);
    let stats = dispatcher.stats();
    let hook_cuts = received
        .iter()
        .filter(|b| b.reason() == FlushReason::Hook)
        .count() as u64;
    assert_eq!(stats.flushes.hook, hook_cuts);
    assert_eq!(received.len() as u64, hook_cuts + 1);
    assert_eq!(stats.buffered_bytes, 0);
    assert_balanced(&stats);
}

/// A dispatcher whose `can_add` refuses events of weight 13 and events
/// whose sequence number is already in the open batch; `on_reject` records.
fn refusing(
    policy: Policy,
    max_buffered: usize,
) -> (Dispatcher<Ev>, Batches<Ev>, Arc<Mutex<Vec<Ev>>>) {
    let rejected = Arc::new(Mutex::new(Vec::new()));
    let out = Arc::clone(&rejected);
    let (dispatcher, batches) = Dispatcher::builder()
        .interval(LONG)
        .max_buffered_bytes(max_buffered)
        .policy(policy)
        .can_add(|open, e: &Ev| e.weight != 13 && !open.items().iter().any(|o| o.seq == e.seq))
        .on_reject(move |e| out.lock().unwrap().push(e.clone()))
        .build()
        .unwrap();
    (dispatcher, batches, rejected)
}

#[test]
fn can_add_refusals_come_back_from_every_method_and_on_reject_sees_them() {
    let (dispatcher, batches, rejected) = refusing(Policy::Reject, 1000);
    let producer = dispatcher.producer();
    producer.try_enqueue(ev(0, 0, 5)).unwrap();
    match producer.try_enqueue(ev(0, 1, 13)) {
        Err(TryEnqueueError::Refused(item)) => assert_eq!(item, ev(0, 1, 13)),
        other => panic!("expected Refused, got {other:?}"),
    }
    match producer.enqueue(ev(0, 2, 13)) {
        Err(EnqueueError::Refused(item)) => assert_eq!(item, ev(0, 2, 13)),
        other => panic!("expected Refused, got {other:?}"),
    }
    match producer.enqueue_timeout(ev(0, 3, 13), PROMPTLY) {
        Err(EnqueueTimeoutError::Refused(item)) => assert_eq!(item, ev(0, 3, 13)),
        other => panic!("expected Refused, got {other:?}"),
    }
    // The hook sees the open batch: a duplicate is refused...
    match producer.try_enqueue(ev(1, 0, 4)) {
        Err(TryEnqueueError::Refused(item)) => assert_eq!(item, ev(1, 0, 4)),
        other => panic!("expected Refused, got {other:?}"),
    }
    // ...until the batch holding the original is cut.
    dispatcher.flush();
    producer.try_enqueue(ev(1, 0, 4)).unwrap();

    // Groups: all or none, and every event of a refused group is shown.
    let group = vec![ev(2, 10, 1), ev(2, 11, 13), ev(2, 12, 1)];
    match producer.try_enqueue_all(group.clone()) {
        Err(TryEnqueueError::Refused(back)) => assert_eq!(back, group),
        other => panic!("expected Refused, got {other:?}"),
    }
    producer
        .try_enqueue_all(vec![ev(2, 20, 1), ev(2, 21, 2)])
        .unwrap();

    let mut expected = vec![ev(0, 1, 13), ev(0, 2, 13), ev(0, 3, 13), ev(1, 0, 4)];
    expected.extend(group);
    assert_eq!(*rejected.lock().unwrap(), expected);
    let stats = dispatcher.stats();
    assert_eq!(stats.rejected.refused, 7);
    assert_eq!(stats.rejected.total(), 7);
    assert_eq!((stats.accepted, stats.buffered_bytes), (4, 5 + 4 + 1 + 2));
    assert_balanced(&stats);

    dispatcher.flush();
    let delivered: Vec<Ev> = ready(&batches)
        .iter()
        .flat_map(|b| b.items().to_vec())
        .collect();
    assert_eq!(
        delivered,
        [ev(0, 0, 5), ev(1, 0, 4), ev(2, 20, 1), ev(2, 21, 2)]
    );
}

#[test]
fn can_add_refuses_at_once_under_block_even_when_full() {
    let (dispatcher, _batches, rejected) = refusing(Policy::Block { timeout: LONG }, 20);
    let producer = dispatcher.producer();
    producer.enqueue(ev(0, 0, 20)).unwrap();
    // Full: a blocking enqueue of an event the hook refuses does not wait.
    let p = producer.clone();
    let refused = common::spawn(move || p.enqueue(ev(0, 1, 13))).join("refused enqueue");
    assert!(matches!(refused, Err(EnqueueError::Refused(item)) if item == ev(0, 1, 13)));
    // With room it is refused as well, and an admissible one gets in.
    let (dispatcher2, _b2, rejected2) = refusing(Policy::Block { timeout: LONG }, 100);
    let p2 = dispatcher2.producer();
    assert!(matches!(
        p2.enqueue(ev(0, 0, 13)),
        Err(EnqueueError::Refused(_))
    ));
    p2.enqueue(ev(0, 1, 3)).unwrap();

    assert_eq!(*rejected.lock().unwrap(), [ev(0, 1, 13)]);
    assert_eq!(*rejected2.lock().unwrap(), [ev(0, 0, 13)]);
    let stats = dispatcher.stats();
    assert_eq!(
        (
            stats.accepted,
            stats.rejected.refused,
            stats.rejected.timeout
        ),
        (1, 1, 0)
    );
    assert_eq!(
        (
            dispatcher2.stats().accepted,
            dispatcher2.stats().rejected.refused
        ),
        (1, 1)
    );
}

#[test]
fn can_add_refusals_evict_nothing_under_drop_oldest() {
    let evicted = Arc::new(Mutex::new(Vec::new()));
    let out = Arc::clone(&evicted);
    let (dispatcher, batches) = builder()
        .max_buffered_bytes(20)
        .policy(Policy::DropOldest)
        .can_add(|_, e: &Ev| e.weight != 13)
        .on_evict(move |e| out.lock().unwrap().push(e.seq))
        .build()
        .unwrap();
    let producer = dispatcher.producer();
    producer.try_enqueue(ev(0, 0, 10)).unwrap();
    producer.try_enqueue(ev(0, 1, 10)).unwrap();
    assert!(matches!(
        producer.try_enqueue(ev(0, 2, 13)),
        Err(TryEnqueueError::Refused(_))
    ));
    assert!(matches!(
        producer.try_enqueue_all(vec![ev(0, 3, 1), ev(0, 4, 13)]),
        Err(TryEnqueueError::Refused(_))
    ));
    assert!(evicted.lock().unwrap().is_empty());
    producer.try_enqueue(ev(0, 5, 5)).unwrap();
    assert_eq!(*evicted.lock().unwrap(), [0]);

    let stats = dispatcher.stats();
    assert_eq!(
        (stats.accepted, stats.dropped, stats.rejected.refused),
        (3, 1, 3)
    );
    assert_eq!(stats.buffered_bytes, 15);
    assert_balanced(&stats);
    dispatcher.flush();
    assert_eq!(seqs(ready(&batches)[0].items()), [1, 5]);
}
