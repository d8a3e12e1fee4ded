//! Several receivers (cloned `Batches`) on separate threads: each batch goes
//! to exactly one of them, and a waiting receiver is never left asleep while
//! a batch is ready or due.

#![allow(missing_docs)]

mod common;

use std::thread;
use std::time::Duration;

use common::{Ev, LONG, PROMPTLY, Watched, ev};
use dispatcher::{Batches, Dispatcher, FlushReason};

/// How long a receiver may take to notice a ready (or due) batch before the
/// test calls it a lost wake-up. Generous: the expected delay is ~0.
const NOTICE: Duration = Duration::from_secs(2);

#[test]
fn each_batch_goes_to_exactly_one_receiver() {
    let (dispatcher, batches) = Dispatcher::<Ev>::builder()
        .interval(Duration::from_millis(1))
        .max_batch_items(7)
        .build()
        .unwrap();
    let consumers: Vec<Watched<Vec<Ev>>> = (0..3)
        .map(|_| {
            let mine = batches.clone();
            common::spawn(move || mine.iter().flat_map(|b| b.into_vec()).collect())
        })
        .collect();
    drop(batches);
    let producers: Vec<_> = (0..4u8)
        .map(|p| {
            let producer = dispatcher.producer();
            common::spawn(move || {
                for seq in 0..2_000 {
                    producer.try_enqueue(ev(p, seq, 10)).unwrap();
                }
            })
        })
        .collect();
    producers.into_iter().for_each(|h| h.join("producer"));
    let report = dispatcher.shutdown(PROMPTLY).unwrap();

    let mut seen = vec![vec![false; 2_000]; 4];
    let mut total = 0;
    for (c, consumer) in consumers.into_iter().enumerate() {
        let got = consumer.join("consumer");
        // Each receiver takes batches oldest first, so within its own share a
        // producer's events still come in order.
        for p in 0..4u8 {
            let mine: Vec<u32> = got
                .iter()
                .filter(|e| e.producer == p)
                .map(|e| e.seq)
                .collect();
            assert!(
                mine.windows(2).all(|w| w[0] < w[1]),
                "consumer {c}, producer {p}: out of order"
            );
        }
        for e in &got {
            let slot = &mut seen[e.producer as usize][e.seq as usize];
            assert!(!*slot, "{e:?} delivered twice");
            *slot = true;
        }
        total += got.len();
    }
    assert_eq!(total, 8_000);
    assert_eq!(report.delivered_total, 8_000);
}

/// Two receiver threads, each taking one batch (with `recv`, no timeout) and
/// then leaving, as a scaled-down consumer pool would.
fn two_one_shot_receivers(batches: &Batches<Ev>) -> [Watched<Vec<u32>>; 2] {
    [0, 1].map(|_| {
        let mine = batches.clone();
        common::spawn(move || {
            let batch = mine.recv().expect("a batch");
            batch.iter().map(|e| e.seq).collect()
        })
    })
}

/// Waits for both receivers; if one is still asleep after `NOTICE`, closes
/// the dispatcher to wake it (so the test cannot hang) and fails.
fn both_receive(receivers: [Watched<Vec<u32>>; 2], dispatcher: Dispatcher<Ev>) -> Vec<Vec<u32>> {
    let mut got = Vec::new();
    let mut asleep = Vec::new();
    for receiver in receivers {
        match receiver.try_join_within(NOTICE) {
            Ok(seqs) => got.push(seqs),
            Err(still_waiting) => asleep.push(still_waiting),
        }
    }
    drop(dispatcher); // closes admission and wakes every receiver
    let late: Vec<Vec<u32>> = asleep.into_iter().map(|r| r.join("receiver")).collect();
    assert!(
        late.is_empty(),
        "received {got:?}; {late:?} was ready but its receiver slept until the dispatcher closed"
    );
    got.sort();
    got
}

#[test]
fn a_group_that_seals_two_batches_wakes_two_waiting_receivers() {
    let (dispatcher, batches) = Dispatcher::<Ev>::builder()
        .interval(LONG)
        .max_batch_items(1)
        .build()
        .unwrap();
    let receivers = two_one_shot_receivers(&batches);
    thread::sleep(Duration::from_millis(50)); // both wait, no deadline
    dispatcher
        .producer()
        .try_enqueue_all(vec![ev(0, 0, 1), ev(0, 1, 1)])
        .unwrap();
    assert_eq!(both_receive(receivers, dispatcher), [vec![0], vec![1]]);
}

#[test]
fn an_event_that_seals_two_batches_wakes_two_waiting_receivers() {
    let (dispatcher, batches) = Dispatcher::<Ev>::builder()
        .interval(LONG)
        .max_batch_bytes(10)
        .build()
        .unwrap();
    let receivers = two_one_shot_receivers(&batches);
    thread::sleep(Duration::from_millis(50));
    let producer = dispatcher.producer();
    producer.try_enqueue(ev(0, 0, 3)).unwrap(); // opens a batch due in an hour
    thread::sleep(Duration::from_millis(20));
    producer.try_enqueue(ev(0, 1, 25)).unwrap(); // seals [0] and [1]
    assert_eq!(both_receive(receivers, dispatcher), [vec![0], vec![1]]);
}

#[test]
fn a_waiting_receiver_cuts_a_due_batch_even_if_another_receiver_timed_out() {
    let interval = Duration::from_millis(150);
    let (dispatcher, batches) = Dispatcher::<Ev>::builder()
        .interval(interval)
        .build()
        .unwrap();
    // Waits first, so the condition variable wakes it first.
    let impatient = batches.clone();
    let short = common::spawn(move || impatient.recv_timeout(Duration::from_millis(80)).is_ok());
    thread::sleep(Duration::from_millis(20));
    let patient = batches.clone();
    let long = common::spawn(move || patient.recv().map(|b| b.reason()));
    thread::sleep(Duration::from_millis(20));

    dispatcher.producer().try_enqueue(ev(0, 0, 1)).unwrap();
    assert!(
        !short.join("short receiver"),
        "nothing was due before it timed out"
    );
    match long.try_join_within(interval + NOTICE) {
        Ok(reason) => assert_eq!(reason, Ok(FlushReason::Interval)),
        Err(asleep) => {
            drop(dispatcher);
            let reason = asleep.join("patient receiver");
            panic!("due batch not cut while a receiver waited; it came out at close as {reason:?}");
        }
    }
}
