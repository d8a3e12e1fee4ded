//! Why batches are cut (each `FlushReason`), and the receive operations:
//! `recv`, `recv_timeout`, `try_recv` and the blocking iterator.

#![allow(missing_docs)]

mod common;

use std::thread;
use std::time::{Duration, Instant};

use common::{Ev, LONG, PROMPTLY, builder, ev};
use dispatcher::{Batch, Batches, FlushReason, RecvTimeoutError, TryRecvError};

fn seqs(batch: &Batch<Ev>) -> Vec<u32> {
    batch.iter().map(|e| e.seq).collect()
}

fn ready(batches: &Batches<Ev>) -> Vec<(Vec<u32>, usize, FlushReason)> {
    std::iter::from_fn(|| batches.try_recv().ok())
        .map(|b| (seqs(&b), b.bytes(), b.reason()))
        .collect()
}

#[test]
fn interval_cuts_a_batch_for_a_waiting_receiver_not_before_the_interval() {
    let interval = Duration::from_millis(30);
    let (dispatcher, batches) = builder().interval(interval).build().unwrap();
    let producer = dispatcher.producer();
    let started = Instant::now();
    producer.try_enqueue(ev(0, 0, 1)).unwrap();
    producer.try_enqueue(ev(0, 1, 1)).unwrap();

    let batch = batches.recv().unwrap();
    assert!(started.elapsed() >= interval, "cut before its interval");
    assert_eq!(batch.reason(), FlushReason::Interval);
    assert_eq!(seqs(&batch), [0, 1]);
    drop(batch);
    assert_eq!(dispatcher.stats().flushes.interval, 1);
}

#[test]
fn a_receiver_already_waiting_is_woken_for_a_new_batch() {
    let (dispatcher, batches) = builder()
        .interval(Duration::from_millis(20))
        .build()
        .unwrap();
    let receiver = common::spawn(move || batches.recv().map(|b| b.reason()));
    thread::sleep(Duration::from_millis(30)); // receiver waits with no deadline
    dispatcher.producer().try_enqueue(ev(0, 0, 1)).unwrap();
    assert_eq!(receiver.join("receiver"), Ok(FlushReason::Interval));
}

#[test]
fn bytes_cuts_before_an_overflowing_event_and_at_the_limit() {
    let (dispatcher, batches) = builder().max_batch_bytes(10).build().unwrap();
    let producer = dispatcher.producer();
    for (seq, weight) in [(0, 4), (1, 4), (2, 4), (3, 6), (4, 3), (5, 25), (6, 0)] {
        producer.try_enqueue(ev(0, seq, weight)).unwrap();
    }
    assert_eq!(
        ready(&batches),
        [
            (vec![0, 1], 8, FlushReason::Bytes),  // 4 more would pass 10
            (vec![2, 3], 10, FlushReason::Bytes), // reached 10
            (vec![4], 3, FlushReason::Bytes),     // 25 would pass 10
            (vec![5], 25, FlushReason::Bytes),    // alone, over the limit
        ]
    );
    dispatcher.flush();
    assert_eq!(ready(&batches), [(vec![6], 1, FlushReason::Manual)]);
    let flushes = dispatcher.stats().flushes;
    assert_eq!((flushes.bytes, flushes.manual), (4, 1));
}

#[test]
fn items_cuts_at_the_item_limit() {
    let (dispatcher, batches) = builder().max_batch_items(3).build().unwrap();
    let producer = dispatcher.producer();
    for seq in 0..7 {
        producer.try_enqueue(ev(0, seq, 2)).unwrap();
    }
    assert_eq!(
        ready(&batches),
        [
            (vec![0, 1, 2], 6, FlushReason::Items),
            (vec![3, 4, 5], 6, FlushReason::Items),
        ]
    );
    assert_eq!(dispatcher.stats().buffered_items, 1);
}

#[test]
fn manual_flush_cuts_the_open_batch_and_is_a_no_op_when_empty() {
    let (dispatcher, batches) = builder().build().unwrap();
    dispatcher.flush();
    assert_eq!(batches.try_recv().unwrap_err(), TryRecvError::Empty);

    dispatcher.producer().try_enqueue(ev(0, 0, 5)).unwrap();
    dispatcher.flush();
    dispatcher.flush();
    assert_eq!(ready(&batches), [(vec![0], 5, FlushReason::Manual)]);
    let stats = dispatcher.stats();
    assert_eq!((stats.batches, stats.flushes.manual), (1, 1));
}

#[test]
fn drain_cuts_the_open_batch_on_shutdown_and_on_drop() {
    let (dispatcher, batches) = builder().max_batch_items(2).build().unwrap();
    let producer = dispatcher.producer();
    for seq in 0..3 {
        producer.try_enqueue(ev(0, seq, 1)).unwrap();
    }
    let consumer = common::spawn(move || {
        batches
            .iter()
            .map(|b| (seqs(&b), b.reason()))
            .collect::<Vec<_>>()
    });
    let report = dispatcher.shutdown(PROMPTLY).unwrap();
    assert_eq!(report.delivered_total, 3);
    assert_eq!(
        consumer.join("consumer"),
        [
            (vec![0, 1], FlushReason::Items),
            (vec![2], FlushReason::Drain)
        ]
    );

    let (dispatcher, batches) = builder().build().unwrap();
    dispatcher.producer().try_enqueue(ev(0, 0, 1)).unwrap();
    drop(dispatcher);
    assert_eq!(ready(&batches), [(vec![0], 1, FlushReason::Drain)]);
    assert_eq!(batches.try_recv().unwrap_err(), TryRecvError::Disconnected);
}

#[test]
fn try_recv_is_empty_until_the_interval_elapses_then_cuts_it_itself() {
    let interval = Duration::from_millis(20);
    let (dispatcher, batches) = builder().interval(interval).build().unwrap();
    assert_eq!(batches.try_recv().unwrap_err(), TryRecvError::Empty);
    let started = Instant::now();
    dispatcher.producer().try_enqueue(ev(0, 0, 1)).unwrap();
    if started.elapsed() < interval {
        assert_eq!(batches.try_recv().unwrap_err(), TryRecvError::Empty);
    }
    thread::sleep(interval);
    let batch = batches.try_recv().unwrap();
    assert_eq!(
        (seqs(&batch), batch.reason()),
        (vec![0], FlushReason::Interval)
    );
    assert_eq!(batches.try_recv().unwrap_err(), TryRecvError::Empty);
}

#[test]
fn try_recv_delivers_what_is_left_after_close_then_disconnects() {
    let (dispatcher, batches) = builder().max_batch_items(1).build().unwrap();
    let producer = dispatcher.producer();
    producer.try_enqueue(ev(0, 0, 1)).unwrap();
    producer.try_enqueue(ev(0, 1, 1)).unwrap();
    drop(dispatcher);
    assert_eq!(seqs(&batches.try_recv().unwrap()), [0]);
    assert_eq!(seqs(&batches.try_recv().unwrap()), [1]);
    assert_eq!(batches.try_recv().unwrap_err(), TryRecvError::Disconnected);
    assert_eq!(
        batches.recv_timeout(LONG).unwrap_err(),
        RecvTimeoutError::Disconnected
    );
    assert!(batches.recv().is_err());
}

#[test]
fn recv_timeout_times_out_then_disconnects_after_shutdown() {
    let (dispatcher, batches) = builder().build().unwrap();
    let wait = Duration::from_millis(20);
    let started = Instant::now();
    assert_eq!(
        batches.recv_timeout(wait).unwrap_err(),
        RecvTimeoutError::Timeout
    );
    assert!(started.elapsed() >= wait, "gave up before its timeout");

    // An open batch whose interval is far off does not end the wait early.
    dispatcher.producer().try_enqueue(ev(0, 0, 1)).unwrap();
    assert_eq!(
        batches.recv_timeout(wait).unwrap_err(),
        RecvTimeoutError::Timeout
    );

    let waiting = common::spawn(move || {
        let first = batches.recv_timeout(LONG).map(|b| b.reason());
        (first, batches.recv_timeout(LONG).map(|b| b.len()))
    });
    thread::sleep(Duration::from_millis(20));
    dispatcher.shutdown(PROMPTLY).unwrap();
    let (first, second) = waiting.join("receiver");
    assert_eq!(first, Ok(FlushReason::Drain));
    assert_eq!(second.unwrap_err(), RecvTimeoutError::Disconnected);
}

#[test]
fn recv_timeout_returns_an_interval_batch_due_before_its_timeout() {
    let interval = Duration::from_millis(15);
    let (dispatcher, batches) = builder().interval(interval).build().unwrap();
    let started = Instant::now();
    dispatcher.producer().try_enqueue(ev(0, 0, 1)).unwrap();
    let batch = batches.recv_timeout(PROMPTLY).unwrap();
    assert_eq!(batch.reason(), FlushReason::Interval);
    assert!(started.elapsed() >= interval);
}

#[test]
fn jittered_batches_are_never_cut_before_the_interval() {
    let interval = Duration::from_millis(10);
    for seed in 0..5 {
        let (dispatcher, batches) = builder()
            .interval(interval)
            .interval_jitter(interval)
            .jitter_seed(seed)
            .build()
            .unwrap();
        for round in 0..3 {
            let started = Instant::now();
            dispatcher.producer().try_enqueue(ev(0, round, 1)).unwrap();
            let batch = batches.recv_timeout(PROMPTLY).unwrap();
            assert_eq!(batch.reason(), FlushReason::Interval);
            assert!(
                started.elapsed() >= interval,
                "seed {seed} round {round}: cut after {:?}",
                started.elapsed()
            );
        }
    }
}

#[test]
fn a_new_interval_applies_to_the_open_batch_and_wakes_the_receiver() {
    let (dispatcher, batches) = builder().build().unwrap();
    dispatcher.producer().try_enqueue(ev(0, 0, 1)).unwrap();
    let receiver = common::spawn(move || batches.recv().map(|b| b.reason()));
    thread::sleep(Duration::from_millis(20)); // waiting on a one-hour deadline
    let mut limits = dispatcher.limits();
    limits.interval = Duration::from_millis(5);
    dispatcher.set_limits(limits).unwrap();
    assert_eq!(receiver.join("receiver"), Ok(FlushReason::Interval));
}

#[test]
fn the_blocking_iterator_ends_after_shutdown() {
    let (dispatcher, batches) = builder()
        .interval(Duration::from_millis(2))
        .build()
        .unwrap();
    let consumer = common::spawn(move || batches.iter().map(|b| b.len()).sum::<usize>());
    let producer = dispatcher.producer();
    for seq in 0..100 {
        producer.try_enqueue(ev(0, seq, 3)).unwrap();
    }
    let report = dispatcher.shutdown(PROMPTLY).unwrap();
    assert_eq!(consumer.join("iterator"), 100);
    assert_eq!(report.delivered_total, 100);
}

#[test]
fn batch_reports_its_charged_bytes_and_gives_its_events_up() {
    let (dispatcher, batches) = builder().build().unwrap();
    let producer = dispatcher.producer();
    producer.try_enqueue(ev(0, 0, 0)).unwrap(); // charged 1
    producer.try_enqueue(ev(0, 1, 7)).unwrap();
    producer.try_enqueue(ev(0, 2, 2)).unwrap();
    dispatcher.flush();
    let mut batch = batches.recv().unwrap();
    assert_eq!((batch.len(), batch.bytes()), (3, 10));
    assert_eq!(batch[1], ev(0, 1, 7));
    assert_eq!((&batch).into_iter().count(), 3);
    let firsts: Vec<Ev> = batch.drain().take(1).collect();
    assert_eq!(firsts, [ev(0, 0, 0)]);
    assert!(
        batch.is_empty(),
        "drain empties the batch even if not consumed"
    );
    let stats = dispatcher.stats();
    assert_eq!((stats.delivered, stats.delivered_bytes), (3, 10));
    assert_eq!(
        FlushReason::ALL
            .iter()
            .map(|r| stats.flushes.get(*r))
            .sum::<u64>(),
        1
    );
}
