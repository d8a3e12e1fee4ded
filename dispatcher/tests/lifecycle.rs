//! Shutdown, stop and drop (no event lost, nothing hangs or leaks) and
//! batch buffer reuse.

#![allow(missing_docs)]

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use common::{LONG, PROMPTLY, builder, ev, seqs};
use dispatcher::{Dispatcher, EnqueueError, TryEnqueueError, Weight};

#[test]
fn shutdown_delivers_everything_to_a_consumer_and_reports_it() {
    let (dispatcher, batches) = builder().max_batch_items(8).build().unwrap();
    let producer = dispatcher.producer();
    for seq in 0..20 {
        producer.try_enqueue(ev(0, seq, 4)).unwrap();
    }
    let first = batches.recv().unwrap(); // 8 delivered before shutdown
    assert_eq!(first.len(), 8);
    let consumer = common::spawn(move || {
        batches
            .iter()
            .flat_map(|b| b.into_vec())
            .collect::<Vec<_>>()
    });
    for seq in 20..30 {
        producer.try_enqueue(ev(0, seq, 4)).unwrap();
    }
    let report = dispatcher.shutdown(PROMPTLY).unwrap();
    assert_eq!(report.delivered_total, 30);
    assert_eq!((report.stats.accepted, report.stats.returned), (30, 0));
    // The consumer may take batches before shutdown starts counting.
    assert!(report.delivered_during_drain <= 22);
    assert!(report.elapsed <= PROMPTLY);
    let rest = consumer.join("consumer");
    assert_eq!(seqs(&rest), (8..30).collect::<Vec<_>>());
    assert!(matches!(
        producer.try_enqueue(ev(0, 30, 1)),
        Err(TryEnqueueError::Closed(_))
    ));
}

#[test]
fn shutdown_without_a_consumer_returns_exactly_the_undelivered_in_order() {
    let (dispatcher, batches) = builder().max_batch_items(3).build().unwrap();
    let producer = dispatcher.producer();
    for seq in 0..10 {
        producer.try_enqueue(ev(0, seq, 1)).unwrap();
    }
    let taken = batches.recv().unwrap();
    assert_eq!(seqs(&taken), [0, 1, 2]);
    let timeout = dispatcher.shutdown(Duration::from_millis(30)).unwrap_err();
    assert_eq!(timeout.report.delivered_total, 3);
    assert_eq!(timeout.report.delivered_during_drain, 0);
    let stats = timeout.report.stats;
    assert_eq!(
        (stats.accepted, stats.delivered, stats.returned),
        (10, 3, 7)
    );
    assert_eq!((stats.buffered_items, stats.buffered_bytes), (0, 0));
    assert!(
        timeout.report.elapsed >= Duration::from_millis(30),
        "did not wait for the deadline"
    );
    assert_eq!(seqs(&timeout.into_inner()), (3..10).collect::<Vec<_>>());
    assert!(
        batches.try_recv().is_err(),
        "returned events must not also be delivered"
    );
}

#[test]
fn shutdown_with_every_receiver_gone_returns_at_once() {
    let (dispatcher, batches) = builder().build().unwrap();
    dispatcher.producer().try_enqueue(ev(0, 0, 1)).unwrap();
    drop(batches);
    let returned = common::with_watchdog(PROMPTLY, "shutdown", move || {
        dispatcher.shutdown(LONG).unwrap_err().into_inner()
    });
    assert_eq!(returned, [ev(0, 0, 1)]);
}

#[test]
fn a_receiver_dropped_during_shutdown_ends_the_wait() {
    let (dispatcher, batches) = builder().build().unwrap();
    dispatcher.producer().try_enqueue(ev(0, 0, 1)).unwrap();
    let shutdown = common::spawn(move || dispatcher.shutdown(LONG).map_err(|t| t.into_inner()));
    thread::sleep(Duration::from_millis(30));
    drop(batches);
    assert_eq!(shutdown.join("shutdown").unwrap_err(), [ev(0, 0, 1)]);
}

#[test]
fn stop_returns_everything_undelivered_in_order() {
    let (dispatcher, batches) = builder().max_batch_items(2).build().unwrap();
    let producer = dispatcher.producer();
    for seq in 0..5 {
        producer.try_enqueue(ev(0, seq, 1)).unwrap();
    }
    let stats = dispatcher.stats();
    assert_eq!((stats.buffered_items, stats.returned), (5, 0));
    assert_eq!(seqs(&dispatcher.stop()), [0, 1, 2, 3, 4]);
    assert!(batches.recv().is_err());
    assert!(matches!(
        producer.enqueue(ev(0, 5, 1)),
        Err(EnqueueError::Closed(_))
    ));
}

#[test]
fn dropping_the_dispatcher_lets_a_live_consumer_drain_then_end() {
    let (dispatcher, batches) = builder().max_batch_items(4).build().unwrap();
    let producer = dispatcher.producer();
    for seq in 0..10 {
        producer.try_enqueue(ev(0, seq, 1)).unwrap();
    }
    let consumer = common::spawn(move || {
        batches
            .iter()
            .flat_map(|b| b.into_vec())
            .collect::<Vec<_>>()
    });
    drop(dispatcher);
    assert_eq!(
        seqs(&consumer.join("consumer")),
        (0..10).collect::<Vec<_>>()
    );
    assert!(matches!(
        producer.try_enqueue(ev(0, 10, 1)),
        Err(TryEnqueueError::Closed(_))
    ));
}

/// An event that counts its own drops, to prove nothing is leaked.
struct Tracked(Arc<AtomicUsize>);

impl Weight for Tracked {
    fn weight(&self) -> usize {
        16
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn dropping_everything_with_events_buffered_neither_hangs_nor_leaks() {
    let dropped = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&dropped);
    common::with_watchdog(PROMPTLY, "drop everything", move || {
        for order in 0..3 {
            let (dispatcher, batches) = Dispatcher::<Tracked>::builder()
                .interval(LONG)
                .max_batch_items(3)
                .build()
                .unwrap();
            let producer = dispatcher.producer();
            for _ in 0..10 {
                assert!(producer.try_enqueue(Tracked(Arc::clone(&counter))).is_ok());
            }
            let held = batches.recv().unwrap(); // outlives everything else
            match order {
                0 => drop((dispatcher, batches, producer)),
                1 => drop((batches, producer, dispatcher)),
                _ => drop((producer, dispatcher, batches)),
            }
            drop(held);
        }
    });
    assert_eq!(dropped.load(Ordering::SeqCst), 30);
}

#[test]
fn batch_buffers_are_reused_after_warm_up() {
    let (dispatcher, batches) = builder().build().unwrap();
    let producer = dispatcher.producer();
    let mut buffers = HashSet::new();
    for round in 0..50u32 {
        for seq in 0..16 {
            producer.try_enqueue(ev(0, round * 16 + seq, 1)).unwrap();
        }
        dispatcher.flush();
        let mut batch = batches.recv().unwrap();
        assert_eq!(batch.len(), 16);
        if round >= 5 {
            buffers.insert(batch.items().as_ptr() as usize);
        }
        batch.drain().for_each(drop); // keeps the buffer for the dispatcher
    }
    assert!(
        buffers.len() <= 2,
        "45 batches used {} distinct buffers",
        buffers.len()
    );
}
