//! Each overload policy end to end: what admission does when an event does
//! not fit, what the refusal hands back, and how it is counted.

#![allow(missing_docs)]

mod common;

use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::{Ev, LONG, PROMPTLY, block, build, ev};
use dispatcher::{Batches, Dispatcher, EnqueueError, EnqueueTimeoutError, Policy, TryEnqueueError};

#[test]
fn reject_refuses_with_the_item_back_and_counts_it() {
    let (dispatcher, _batches) = build(Policy::Reject, 10);
    let producer = dispatcher.producer();
    producer.try_enqueue(ev(0, 0, 8)).unwrap();

    match producer.try_enqueue(ev(0, 1, 5)) {
        Err(TryEnqueueError::Full(item)) => assert_eq!(item, ev(0, 1, 5)),
        other => panic!("expected Full, got {other:?}"),
    }
    match producer.enqueue(ev(0, 2, 3)) {
        Err(EnqueueError::Full(item)) => assert_eq!(item, ev(0, 2, 3)),
        other => panic!("expected Full, got {other:?}"),
    }
    // Exactly at the limit still fits.
    producer.try_enqueue(ev(0, 3, 2)).unwrap();

    let stats = dispatcher.stats();
    assert_eq!(stats.accepted, 2);
    assert_eq!(stats.rejected.full, 2);
    assert_eq!(stats.rejected.total(), 2);
    assert_eq!(stats.buffered_bytes, 10);
}

#[test]
fn try_enqueue_under_block_never_waits_and_counts_full() {
    let (dispatcher, _batches) = build(block(LONG), 4);
    let producer = dispatcher.producer();
    producer.try_enqueue(ev(0, 0, 4)).unwrap();
    let refused = producer.try_enqueue(ev(0, 1, 1)).unwrap_err();
    assert!(matches!(refused, TryEnqueueError::Full(_)));
    assert_eq!(dispatcher.stats().rejected.full, 1);
}

#[test]
fn block_waits_until_a_receiver_frees_room() {
    let (dispatcher, batches) = build(block(PROMPTLY), 10);
    let producer = dispatcher.producer();
    producer.enqueue(ev(0, 0, 8)).unwrap();

    let blocked = common::spawn(move || producer.enqueue(ev(0, 1, 5)));
    thread::sleep(Duration::from_millis(50));
    assert!(blocked.is_running(), "enqueue returned without room");
    assert_eq!(dispatcher.stats().accepted, 1);

    dispatcher.flush();
    let first = batches.recv().unwrap();
    assert_eq!(first.items(), [ev(0, 0, 8)]);
    blocked.join("blocked producer").unwrap();

    let stats = dispatcher.stats();
    assert_eq!((stats.accepted, stats.buffered_bytes), (2, 5));
    assert_eq!(stats.rejected.total(), 0);
}

#[test]
fn block_times_out_with_the_item_back() {
    let timeout = Duration::from_millis(30);
    let (dispatcher, _batches) = build(block(timeout), 10);
    let producer = dispatcher.producer();
    producer.enqueue(ev(0, 0, 10)).unwrap();

    let started = Instant::now();
    match producer.enqueue(ev(0, 1, 1)) {
        Err(EnqueueError::Timeout(item)) => assert_eq!(item, ev(0, 1, 1)),
        other => panic!("expected Timeout, got {other:?}"),
    }
    assert!(started.elapsed() >= timeout, "gave up before its timeout");
    match producer.enqueue_timeout(ev(0, 2, 1), Duration::from_millis(5)) {
        Err(EnqueueTimeoutError::Timeout(item)) => assert_eq!(item.seq, 2),
        other => panic!("expected Timeout, got {other:?}"),
    }
    let stats = dispatcher.stats();
    assert_eq!((stats.accepted, stats.rejected.timeout), (1, 2));
}

#[test]
fn enqueue_timeout_waits_for_room_even_under_reject() {
    let (dispatcher, batches) = build(Policy::Reject, 10);
    let producer = dispatcher.producer();
    producer.try_enqueue(ev(0, 0, 10)).unwrap();
    let waiting = common::spawn(move || producer.enqueue_timeout(ev(0, 1, 3), PROMPTLY));
    thread::sleep(Duration::from_millis(20));
    dispatcher.flush();
    drop(batches.recv().unwrap());
    waiting.join("enqueue_timeout").unwrap();
    assert_eq!(dispatcher.stats().accepted, 2);
}

/// Ways admission can be closed under a waiting producer.
#[derive(Debug, Clone, Copy)]
enum Closing {
    Shutdown,
    Stop,
    DropDispatcher,
    DropReceivers,
}

const CLOSINGS: [Closing; 4] = [
    Closing::Shutdown,
    Closing::Stop,
    Closing::DropDispatcher,
    Closing::DropReceivers,
];

/// Closes admission the way `how` says; returns what came back and the
/// receiver (still alive, so only `how` can have closed admission).
fn close(
    how: Closing,
    dispatcher: Dispatcher<Ev>,
    batches: Batches<Ev>,
) -> (Vec<Ev>, Option<Batches<Ev>>) {
    match how {
        Closing::Shutdown => match dispatcher.shutdown(Duration::ZERO) {
            Ok(_) => (Vec::new(), Some(batches)),
            Err(timeout) => (timeout.into_inner().into_vec(), Some(batches)),
        },
        Closing::Stop => (dispatcher.stop().into_vec(), Some(batches)),
        Closing::DropDispatcher => {
            drop(dispatcher);
            let rest = batches.iter().flat_map(|b| b.into_vec()).collect();
            (rest, Some(batches))
        }
        Closing::DropReceivers => {
            let clone = batches.clone();
            drop(batches);
            drop(clone);
            (dispatcher.stop().into_vec(), None)
        }
    }
}

#[test]
fn a_blocked_producer_sees_closed_when_admission_closes() {
    for how in CLOSINGS {
        let (dispatcher, batches) = build(block(PROMPTLY), 10);
        let producer = dispatcher.producer();
        producer.enqueue(ev(0, 0, 10)).unwrap();
        let blocked = common::spawn(move || producer.enqueue(ev(0, 1, 1)));
        thread::sleep(Duration::from_millis(30));
        assert!(blocked.is_running(), "{how:?}: producer did not block");

        let (rest, _receiver) = close(how, dispatcher, batches);
        match blocked.join(&format!("{how:?}")) {
            Err(EnqueueError::Closed(item)) => assert_eq!(item, ev(0, 1, 1), "{how:?}"),
            other => panic!("{how:?}: expected Closed, got {other:?}"),
        }
        assert_eq!(rest, [ev(0, 0, 10)], "{how:?}: accepted event lost");
    }
}

#[test]
fn every_enqueue_method_sees_closed_after_admission_closes() {
    for how in CLOSINGS {
        let (dispatcher, batches) = build(Policy::Reject, 100);
        let producer = dispatcher.producer();
        let (rest, receiver) = close(how, dispatcher, batches);
        assert!(rest.is_empty());

        let item = ev(1, 0, 1);
        assert!(
            matches!(producer.try_enqueue(item.clone()), Err(TryEnqueueError::Closed(ref i)) if *i == item),
            "{how:?}"
        );
        assert!(
            matches!(producer.enqueue(item.clone()), Err(EnqueueError::Closed(_))),
            "{how:?}"
        );
        assert!(
            matches!(
                producer.enqueue_timeout(item.clone(), LONG),
                Err(EnqueueTimeoutError::Closed(_))
            ),
            "{how:?}"
        );
        let deadline = Instant::now() + LONG;
        assert!(
            matches!(
                producer.enqueue_deadline(item.clone(), deadline),
                Err(EnqueueTimeoutError::Closed(_))
            ),
            "{how:?}"
        );
        match producer.try_enqueue_all(vec![item.clone(), item.clone()]) {
            Err(TryEnqueueError::Closed(group)) => assert_eq!(group.len(), 2),
            other => panic!("{how:?}: expected Closed, got {other:?}"),
        }
        drop(receiver);
    }
}

#[test]
fn dropping_every_receiver_closes_admission_and_counts_closed() {
    let (dispatcher, batches) = build(Policy::Reject, 100);
    let producer = dispatcher.producer();
    let clones = [batches.clone(), batches.clone()];
    drop(batches);
    producer.try_enqueue(ev(0, 0, 1)).unwrap(); // two clones still alive
    drop(clones);
    assert!(matches!(
        producer.try_enqueue(ev(0, 1, 1)),
        Err(TryEnqueueError::Closed(_))
    ));
    assert!(matches!(
        producer.try_enqueue_all(vec![ev(0, 2, 1); 3]),
        Err(TryEnqueueError::Closed(_))
    ));
    let stats = dispatcher.stats();
    assert_eq!((stats.accepted, stats.rejected.closed), (1, 4));
    // Nothing was delivered: what was accepted comes back.
    assert_eq!(dispatcher.stop(), [ev(0, 0, 1)]);
}

#[test]
fn too_large_is_refused_by_every_method_and_policy() {
    for policy in [
        Policy::Reject,
        block(Duration::from_millis(5)),
        Policy::DropOldest,
    ] {
        let (dispatcher, _batches) = build(policy, 10);
        let producer = dispatcher.producer();
        producer.try_enqueue(ev(0, 0, 2)).unwrap();
        let big = ev(0, 1, 11);
        assert!(
            matches!(producer.try_enqueue(big.clone()), Err(TryEnqueueError::TooLarge(ref i)) if *i == big)
        );
        assert!(
            matches!(producer.enqueue(big.clone()), Err(EnqueueError::TooLarge(ref i)) if *i == big)
        );
        assert!(matches!(
            producer.enqueue_timeout(big.clone(), LONG),
            Err(EnqueueTimeoutError::TooLarge(_))
        ));
        assert!(matches!(
            producer.enqueue_deadline(big.clone(), Instant::now() + LONG),
            Err(EnqueueTimeoutError::TooLarge(_))
        ));
        // Each member fits, the group does not: refused whole, as too large.
        let group = vec![ev(0, 2, 6), ev(0, 3, 5)];
        match producer.try_enqueue_all(group.clone()) {
            Err(TryEnqueueError::TooLarge(back)) => assert_eq!(back, group),
            other => panic!("{policy}: expected TooLarge, got {other:?}"),
        }
        let stats = dispatcher.stats();
        assert_eq!(stats.rejected.too_large, 4 + 2, "{policy}");
        assert_eq!(
            (stats.accepted, stats.dropped, stats.buffered_bytes),
            (1, 0, 2),
            "{policy}"
        );
    }
}

fn evicting(max_buffered: usize) -> (Dispatcher<Ev>, Batches<Ev>, Arc<Mutex<Vec<Ev>>>) {
    let evicted = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&evicted);
    let (dispatcher, batches) = Dispatcher::builder()
        .interval(LONG)
        .max_buffered_bytes(max_buffered)
        .max_batch_items(2)
        .policy(Policy::DropOldest)
        .on_evict(move |item| sink.lock().unwrap().push(item))
        .build()
        .unwrap();
    (dispatcher, batches, evicted)
}

fn delivered(batches: &Batches<Ev>) -> Vec<Ev> {
    std::iter::from_fn(|| batches.try_recv().ok())
        .flat_map(|batch| batch.into_vec())
        .collect()
}

#[test]
fn drop_oldest_evicts_oldest_first_and_never_delivers_them() {
    let (dispatcher, batches, evicted) = evicting(10);
    let producer = dispatcher.producer();
    // [0,1] is a sealed batch (two items), 2 is open.
    for seq in 0..3 {
        producer.try_enqueue(ev(0, seq, 3)).unwrap();
    }
    producer.try_enqueue(ev(0, 3, 4)).unwrap(); // 13 > 10: evict 0
    assert_eq!(*evicted.lock().unwrap(), [ev(0, 0, 3)]);
    producer.enqueue(ev(0, 4, 7)).unwrap(); // 17 > 10: evict 1, 2, 3
    producer
        .try_enqueue_all(vec![ev(0, 5, 1), ev(0, 6, 2)])
        .unwrap(); // 10: fits
    producer
        .try_enqueue_all(vec![ev(0, 7, 4), ev(0, 8, 0)])
        .unwrap(); // evict 4 (7 B)

    let expected_evicted: Vec<Ev> = [(0, 3), (1, 3), (2, 3), (3, 4), (4, 7)]
        .into_iter()
        .map(|(seq, w)| ev(0, seq, w))
        .collect();
    assert_eq!(*evicted.lock().unwrap(), expected_evicted);

    let stats = dispatcher.stats();
    assert_eq!((stats.accepted, stats.dropped), (9, 5));
    assert_eq!(
        (stats.buffered_items, stats.buffered_bytes),
        (4, 1 + 2 + 4 + 1)
    );
    assert_eq!(stats.rejected.total(), 0);

    dispatcher.flush();
    let seqs: Vec<u32> = delivered(&batches).iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [5, 6, 7, 8]);
}

#[test]
fn drop_oldest_never_evicts_batches_already_handed_to_a_receiver() {
    let (dispatcher, batches, evicted) = evicting(6);
    let producer = dispatcher.producer();
    producer.try_enqueue(ev(0, 0, 3)).unwrap();
    producer.try_enqueue(ev(0, 1, 3)).unwrap();
    let held = batches.recv().unwrap(); // delivered: frees its 6 bytes
    producer.try_enqueue(ev(0, 2, 6)).unwrap();
    assert!(evicted.lock().unwrap().is_empty());
    producer.try_enqueue(ev(0, 3, 2)).unwrap(); // evicts 2, not 0 or 1
    assert_eq!(*evicted.lock().unwrap(), [ev(0, 2, 6)]);
    assert_eq!(held.items(), [ev(0, 0, 3), ev(0, 1, 3)]);
    let stats = dispatcher.stats();
    assert_eq!(
        (stats.delivered, stats.dropped, stats.buffered_items),
        (2, 1, 1)
    );
}

#[test]
fn drop_oldest_without_a_hook_still_counts() {
    let (dispatcher, _batches) = build(Policy::DropOldest, 4);
    let producer = dispatcher.producer();
    for seq in 0..10 {
        producer.enqueue(ev(0, seq, 2)).unwrap();
    }
    let stats = dispatcher.stats();
    assert_eq!(
        (stats.accepted, stats.dropped, stats.buffered_bytes),
        (10, 8, 4)
    );
    let left: Vec<u32> = dispatcher.stop().iter().map(|e| e.seq).collect();
    assert_eq!(left, [8, 9]);
}
