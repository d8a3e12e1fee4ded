//! Limits changed while running: lowering `max_buffered_bytes` drops
//! nothing, invalid limits are refused, batch limits cut the open batch,
//! raising a limit wakes a blocked producer.

#![allow(missing_docs)]

mod common;

use std::thread;
use std::time::Duration;

use common::{PROMPTLY, builder, ev, seqs};
use dispatcher::{EnqueueError, FlushReason, Limits, Policy, TryEnqueueError};

#[test]
fn lowering_max_buffered_bytes_drops_nothing_and_admission_waits() {
    let (dispatcher, batches) = builder()
        .max_buffered_bytes(100)
        .max_batch_items(2)
        .policy(Policy::Block {
            timeout: Duration::from_millis(5),
        })
        .build()
        .unwrap();
    let producer = dispatcher.producer();
    for seq in 0..8 {
        producer.enqueue(ev(0, seq, 10)).unwrap();
    }
    dispatcher
        .set_limits(Limits {
            max_buffered_bytes: 40,
            ..dispatcher.limits()
        })
        .unwrap();
    let stats = dispatcher.stats();
    assert_eq!((stats.buffered_bytes, stats.dropped), (80, 0));
    assert!(matches!(
        producer.try_enqueue(ev(1, 0, 1)),
        Err(TryEnqueueError::Full(_))
    ));
    assert!(matches!(
        producer.enqueue(ev(1, 0, 1)),
        Err(EnqueueError::Timeout(_))
    ));

    for expected_left in [60, 40] {
        drop(batches.recv().unwrap());
        assert_eq!(dispatcher.stats().buffered_bytes, expected_left);
        assert!(
            producer.try_enqueue(ev(1, 0, 1)).is_err(),
            "admitted at {expected_left} >= 40"
        );
    }
    drop(batches.recv().unwrap()); // 20 left
    producer.try_enqueue(ev(1, 0, 20)).unwrap();
    assert!(producer.try_enqueue(ev(1, 1, 1)).is_err());
    let stats = dispatcher.stats();
    assert_eq!(
        (stats.buffered_bytes, stats.delivered, stats.dropped),
        (40, 6, 0)
    );
}

#[test]
fn under_drop_oldest_lowering_the_limit_evicts_no_more_than_each_admission_adds() {
    let (dispatcher, _batches) = builder()
        .max_buffered_bytes(100)
        .policy(Policy::DropOldest)
        .build()
        .unwrap();
    let producer = dispatcher.producer();
    for seq in 0..8 {
        producer.try_enqueue(ev(0, seq, 10)).unwrap();
    }
    dispatcher
        .set_limits(Limits {
            max_buffered_bytes: 40,
            ..dispatcher.limits()
        })
        .unwrap();
    assert_eq!(
        (
            dispatcher.stats().buffered_bytes,
            dispatcher.stats().dropped
        ),
        (80, 0)
    );
    // Above the lowered limit each admission evicts its own weight: buffered
    // bytes never grow, and the limit change alone evicted nothing.
    producer.try_enqueue(ev(0, 8, 10)).unwrap();
    let stats = dispatcher.stats();
    assert_eq!((stats.buffered_bytes, stats.dropped), (80, 1));
    assert_eq!(
        seqs(&dispatcher.stop().into_vec()),
        [1, 2, 3, 4, 5, 6, 7, 8]
    );
}

#[test]
fn invalid_limits_are_refused_and_the_old_ones_stay() {
    let (dispatcher, _batches) = builder().max_batch_bytes(64).build().unwrap();
    let old = dispatcher.limits();
    let bad = [
        (
            "interval",
            Limits {
                interval: Duration::ZERO,
                ..old
            },
        ),
        (
            "interval_jitter",
            Limits {
                interval_jitter: old.interval * 2,
                ..old
            },
        ),
        (
            "max_buffered_bytes",
            Limits {
                max_buffered_bytes: 0,
                ..old
            },
        ),
        (
            "max_batch_bytes",
            Limits {
                max_batch_bytes: Some(0),
                ..old
            },
        ),
        (
            "max_batch_bytes",
            Limits {
                max_buffered_bytes: 63,
                ..old
            },
        ),
        (
            "max_batch_items",
            Limits {
                max_batch_items: Some(0),
                ..old
            },
        ),
    ];
    for (field, limits) in bad {
        assert_eq!(dispatcher.set_limits(limits).unwrap_err().field(), field);
        assert_eq!(dispatcher.limits(), old);
    }
}

#[test]
fn lowering_max_batch_bytes_cuts_the_open_batch() {
    let (dispatcher, batches) = builder().build().unwrap();
    dispatcher.producer().try_enqueue(ev(0, 0, 8)).unwrap();
    assert!(batches.try_recv().is_err());
    dispatcher
        .set_limits(Limits {
            max_batch_bytes: Some(4),
            ..dispatcher.limits()
        })
        .unwrap();
    let batch = batches.try_recv().unwrap();
    assert_eq!((batch.bytes(), batch.reason()), (8, FlushReason::Bytes));
    assert_eq!(dispatcher.stats().dropped, 0);
}

#[test]
fn lowering_max_batch_bytes_never_emits_a_multi_event_batch_over_it() {
    let (dispatcher, batches) = builder().build().unwrap();
    let producer = dispatcher.producer();
    for seq in 0..3 {
        producer.try_enqueue(ev(0, seq, 3)).unwrap();
    }
    dispatcher
        .set_limits(Limits {
            max_batch_bytes: Some(4),
            ..dispatcher.limits()
        })
        .unwrap();
    dispatcher.flush();
    let cut: Vec<(usize, usize)> = std::iter::from_fn(|| batches.try_recv().ok())
        .map(|b| (b.len(), b.bytes()))
        .collect();
    assert_eq!(cut.iter().map(|c| c.0).sum::<usize>(), 3);
    assert!(
        cut.iter().all(|&(len, bytes)| len == 1 || bytes <= 4),
        "batches (len, bytes): {cut:?}"
    );
}

#[test]
fn lowering_max_batch_items_never_emits_a_batch_over_it() {
    let (dispatcher, batches) = builder().build().unwrap();
    let producer = dispatcher.producer();
    for seq in 0..5 {
        producer.try_enqueue(ev(0, seq, 1)).unwrap();
    }
    dispatcher
        .set_limits(Limits {
            max_batch_items: Some(2),
            ..dispatcher.limits()
        })
        .unwrap();
    dispatcher.flush();
    let lens: Vec<usize> = std::iter::from_fn(|| batches.try_recv().ok())
        .map(|b| b.len())
        .collect();
    assert_eq!(lens.iter().sum::<usize>(), 5);
    assert!(lens.iter().all(|&len| len <= 2), "batch lengths: {lens:?}");
}

#[test]
fn raising_the_limit_wakes_a_blocked_producer() {
    let (dispatcher, _batches) = builder()
        .max_buffered_bytes(10)
        .policy(Policy::Block { timeout: PROMPTLY })
        .build()
        .unwrap();
    let producer = dispatcher.producer();
    producer.enqueue(ev(0, 0, 10)).unwrap();
    let blocked = common::spawn(move || producer.enqueue(ev(0, 1, 5)).is_ok());
    thread::sleep(Duration::from_millis(30));
    assert!(blocked.is_running());
    dispatcher
        .set_limits(Limits {
            max_buffered_bytes: 15,
            ..dispatcher.limits()
        })
        .unwrap();
    assert!(blocked.join("blocked producer"));
    assert_eq!(dispatcher.stats().buffered_bytes, 15);
}
