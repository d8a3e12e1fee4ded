//! `try_enqueue_all`: a group is admitted whole or not at all, stays
//! contiguous in delivery even with concurrent producers, and is too large
//! when the group alone is over the limit.

#![allow(missing_docs)]

mod common;

use std::time::Duration;

use common::{Ev, PROMPTLY, build, ev};
use dispatcher::{Batches, Dispatcher, Policy, TryEnqueueError};

fn delivered(batches: &Batches<Ev>) -> Vec<Ev> {
    std::iter::from_fn(|| batches.try_recv().ok())
        .flat_map(|batch| batch.into_vec())
        .collect()
}

#[test]
fn try_enqueue_all_is_all_or_nothing() {
    let (dispatcher, batches) = build(Policy::Reject, 10);
    let producer = dispatcher.producer();
    producer.try_enqueue(ev(0, 0, 6)).unwrap();
    let group = vec![ev(1, 0, 2), ev(1, 1, 2), ev(1, 2, 1)]; // 5 > 4 free
    match producer.try_enqueue_all(group.clone()) {
        Err(TryEnqueueError::Full(back)) => assert_eq!(back, group),
        other => panic!("expected Full, got {other:?}"),
    }
    let stats = dispatcher.stats();
    assert_eq!(
        (stats.accepted, stats.buffered_bytes, stats.buffered_items),
        (1, 6, 1)
    );
    assert_eq!(stats.rejected.full, 3, "a refused group counts each event");

    producer.try_enqueue_all(group[..2].to_vec()).unwrap();
    producer.try_enqueue_all(Vec::new()).unwrap();
    dispatcher.flush();
    assert_eq!(delivered(&batches), [ev(0, 0, 6), ev(1, 0, 2), ev(1, 1, 2)]);
}

#[test]
fn a_group_over_the_limit_is_too_large_even_when_each_event_fits() {
    for policy in [Policy::Reject, Policy::DropOldest] {
        let (dispatcher, batches) = build(policy, 10);
        let producer = dispatcher.producer();
        producer.try_enqueue(ev(0, 0, 4)).unwrap();
        let group = vec![ev(1, 0, 5), ev(1, 1, 0), ev(1, 2, 5)]; // 5 + 1 + 5 = 11
        match producer.try_enqueue_all(group.clone()) {
            Err(TryEnqueueError::TooLarge(back)) => assert_eq!(back, group),
            other => panic!("{policy}: expected TooLarge, got {other:?}"),
        }
        let stats = dispatcher.stats();
        assert_eq!(stats.rejected.too_large, 3, "{policy}");
        assert_eq!(
            (stats.accepted, stats.dropped),
            (1, 0),
            "{policy}: nothing evicted"
        );
        // Exactly the limit is not too large: under DropOldest it evicts for it.
        let group = vec![ev(1, 3, 5), ev(1, 4, 5)];
        let admitted = producer.try_enqueue_all(group).is_ok();
        assert_eq!(admitted, policy == Policy::DropOldest, "{policy}");
        dispatcher.flush();
        let seqs: Vec<(u8, u32)> = delivered(&batches)
            .iter()
            .map(|e| (e.producer, e.seq))
            .collect();
        let expected = if admitted {
            vec![(1, 3), (1, 4)]
        } else {
            vec![(0, 0)]
        };
        assert_eq!(seqs, expected, "{policy}");
    }
}

const GROUP: u32 = 5;

#[test]
fn groups_stay_contiguous_with_concurrent_producers() {
    let (dispatcher, batches) = Dispatcher::builder()
        .partitions(1) // one sequence of batches: groups contiguous in it
        .interval(Duration::from_millis(1))
        .max_batch_items(3) // groups straddle batches
        .max_buffered_bytes(1 << 20)
        .build()
        .unwrap();
    let consumer = common::spawn(move || {
        batches
            .iter()
            .flat_map(|b| b.into_vec())
            .collect::<Vec<Ev>>()
    });
    let producers: Vec<_> = (0..4u8)
        .map(|p| {
            let producer = dispatcher.producer();
            common::spawn(move || {
                for n in 0..200u32 {
                    if p % 2 == 0 {
                        let group = (0..GROUP).map(|k| ev(p, n * GROUP + k, 1)).collect();
                        producer.try_enqueue_all(group).unwrap();
                    } else {
                        producer.try_enqueue(ev(p, n, 1)).unwrap();
                    }
                }
            })
        })
        .collect();
    for (p, handle) in producers.into_iter().enumerate() {
        handle.join(&format!("producer {p}"));
    }
    dispatcher.shutdown(PROMPTLY).unwrap();
    let all = consumer.join("consumer");
    assert_eq!(all.len(), 2 * 200 * GROUP as usize + 2 * 200);
    for (i, e) in all.iter().enumerate() {
        if e.producer % 2 == 0 && e.seq % GROUP == 0 {
            let run = &all[i..i + GROUP as usize];
            assert!(
                run.iter()
                    .zip(e.seq..)
                    .all(|(x, s)| x.producer == e.producer && x.seq == s),
                "group {}/{} interleaved: {run:?}",
                e.producer,
                e.seq / GROUP
            );
        }
    }
}

#[test]
fn a_group_whose_weights_overflow_usize_is_too_large() {
    let (dispatcher, _batches) = build(Policy::Reject, 100);
    let producer = dispatcher.producer();
    let half = usize::MAX / 2 + 1;
    let group = vec![ev(0, 0, half), ev(0, 1, half), ev(0, 2, 2)];
    match producer.try_enqueue_all(group) {
        Err(TryEnqueueError::TooLarge(back)) => assert_eq!(back.len(), 3),
        other => panic!("expected TooLarge, got {other:?}"),
    }
    assert_eq!(dispatcher.stats().buffered_bytes, 0);
}
