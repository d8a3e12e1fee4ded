//! Attacks on the limits: the limits in force are one consistent set even
//! when `set_limits` calls overlap, limits from one byte to near
//! `usize::MAX` work without overflow and with exact accounting, and
//! `build()` refuses the sink settings it would ignore. Every scenario that
//! waits runs under a watchdog, so a deadlock fails the test instead of
//! hanging the suite.
//!
//! Contract break found (this test failed until fixed):
//! `overlapping_set_limits_leave_one_consistent_set_of_limits`: two
//! overlapping `set_limits` calls could leave the byte budget of one and
//! the partitions' limits (what `limits()` reports) of the other.

mod attack_kit;

use std::thread;
use std::time::Duration;

use attack_kit::{Ev, LONG, assert_balanced, ev, seqs, watchdog};
use dispatcher::{Dispatcher, Policy, TryEnqueueError};

/// Contract: `limits()` returns "the limits in force", and admission is
/// bounded by its `max_buffered_bytes`. Two `set_limits` calls overlap:
/// one of them is in force, for the report and for admission alike (the
/// calls are serialized; which one is last is not defined by returning
/// last: the first here returns late because a waker it calls stalls).
///
/// To make the overlap deterministic, an async producer waits for room with
/// a waker that stalls the first `wake()` (a waker is user code, and any
/// slow runtime wake-up does the same): the first `set_limits` is held right
/// after it changed the byte budget, while the second one runs to
/// completion; then the first finishes. Without the stall the same
/// interleaving happens by chance (about once in 30 000 racing pairs here).
#[cfg(feature = "async")]
#[test]
fn overlapping_set_limits_leave_one_consistent_set_of_limits() {
    use std::future::Future;
    use std::sync::{Arc, Mutex, mpsc};
    use std::task::{Context, Wake, Waker};

    use crate::attack_kit::Gate;

    struct StallingWaker {
        entered: Mutex<Option<mpsc::Sender<()>>>,
        gate: Gate,
    }

    impl Wake for StallingWaker {
        fn wake(self: Arc<Self>) {
            if let Some(entered) = self.entered.lock().unwrap().take() {
                let _ = entered.send(());
                self.gate.wait(Duration::from_secs(15));
            }
        }
    }

    watchdog("overlapping set_limits", |progress| {
        let first = dispatcher::Limits {
            interval: LONG,
            max_buffered_bytes: 8,
            ..dispatcher::Limits::default()
        };
        let second = dispatcher::Limits {
            max_buffered_bytes: 16,
            ..first
        };
        let (dispatcher, _batches) = Dispatcher::<Ev>::builder()
            .limits(first)
            .partitions(2)
            .policy(Policy::Block { timeout: LONG })
            .build()
            .unwrap();
        let dispatcher = Arc::new(dispatcher);
        let producer = dispatcher.producer();
        for seq in 0..8 {
            producer.try_enqueue(ev(0, seq, 1)).unwrap();
        }
        // An async producer waits for room.
        let (entered_tx, entered_rx) = mpsc::channel();
        let waker = Arc::new(StallingWaker {
            entered: Mutex::new(Some(entered_tx)),
            gate: Gate::default(),
        });
        let mut waiting = dispatcher.async_producer().enqueue(ev(1, 0, 1));
        let task_waker = Waker::from(Arc::clone(&waker));
        let polled = std::pin::Pin::new(&mut waiting).poll(&mut Context::from_waker(&task_waker));
        assert!(polled.is_pending(), "the dispatcher is full");

        progress.set("first set_limits (8 bytes), stalled in the wake-up");
        let first_call = {
            let dispatcher = Arc::clone(&dispatcher);
            thread::spawn(move || dispatcher.set_limits(first).unwrap())
        };
        entered_rx.recv().unwrap();
        progress.set("second set_limits (16 bytes)");
        dispatcher.set_limits(second).unwrap();
        waker.gate.open();
        progress.set("first set_limits finishing");
        first_call.join().unwrap();
        assert!(
            waiting.cancel().is_some(),
            "never polled again: not enqueued"
        );

        // Whichever call took effect last, one set of limits is in force
        // for the report and for admission alike.
        let reported = dispatcher.limits().max_buffered_bytes;
        let mut admitted = 0;
        while producer.try_enqueue(ev(0, 100 + admitted, 1)).is_ok() {
            admitted += 1;
        }
        let buffered = dispatcher.stats().buffered_bytes;
        assert!(
            buffered <= reported,
            "limits() reports max_buffered_bytes = {reported}, yet admission let \
             {admitted} more bytes in: {buffered} bytes buffered"
        );
        assert!([8, 16].contains(&reported), "{reported}");
    });
}

/// Contract: `max_buffered_bytes(usize::MAX)` is refused by the builder
/// with a `ConfigError` naming it, or works without overflow. The largest
/// limit the builder accepts must then work with weights near it: no
/// overflow, no panic, exact accounting, DropOldest evicting correctly.
#[test]
fn limits_and_weights_near_usize_max_never_overflow() {
    watchdog("usize::MAX", |_| {
        match Dispatcher::<Ev>::builder()
            .max_buffered_bytes(usize::MAX)
            .build()
        {
            Err(err) => assert_eq!(err.field(), "max_buffered_bytes"),
            Ok((dispatcher, _batches)) => {
                let producer = dispatcher.producer();
                producer.try_enqueue(ev(0, 0, usize::MAX)).unwrap();
                assert!(matches!(
                    producer.try_enqueue(ev(0, 1, 1)),
                    Err(TryEnqueueError::Full(_))
                ));
            }
        }
        // Find the largest accepted limit by halving from usize::MAX.
        let mut max = usize::MAX;
        let (dispatcher, batches) = loop {
            match Dispatcher::<Ev>::builder()
                .interval(LONG)
                .max_buffered_bytes(max)
                .max_batch_bytes(max)
                .partitions(3)
                .policy(Policy::DropOldest)
                .build()
            {
                Ok(built) => break built,
                Err(_) => max /= 2,
            }
        };
        assert!(max >= usize::MAX / 2, "the limit stops at {max}");
        let half = max / 2 + 1;
        let a = dispatcher.producer();
        let b = dispatcher.producer();
        a.try_enqueue(ev(0, 0, half)).unwrap();
        // Two halves do not fit: DropOldest evicts the first (other partition).
        b.try_enqueue(ev(1, 0, half)).unwrap();
        let stats = dispatcher.stats();
        assert_eq!(
            (stats.dropped, stats.buffered_bytes, stats.buffered_items),
            (1, half, 1),
            "{stats:?}"
        );
        // Heavier than the limit, alone or as a group whose sum overflows.
        assert!(matches!(
            a.try_enqueue(ev(0, 1, usize::MAX)),
            Err(TryEnqueueError::TooLarge(_))
        ));
        assert!(matches!(
            a.try_enqueue_all(vec![ev(0, 2, half), ev(0, 3, half), ev(0, 4, usize::MAX)]),
            Err(TryEnqueueError::TooLarge(group)) if group.len() == 3
        ));
        // Exactly the limit fits (evicting the other half).
        a.try_enqueue(ev(0, 5, max)).unwrap();
        let stats = dispatcher.stats();
        assert_eq!((stats.buffered_bytes, stats.dropped), (max, 2), "{stats:?}");
        assert!(stats.peak_buffered_bytes <= max, "{stats:?}");
        dispatcher.flush();
        let batch = batches.try_recv().unwrap();
        assert_eq!((seqs(batch.items()), batch.bytes()), (vec![5], max));
        let stats = dispatcher.stats();
        assert_eq!(stats.delivered_bytes, max as u64, "{stats:?}");
        assert_eq!((stats.buffered_bytes, stats.buffered_items), (0, 0));
        assert_balanced(&stats);
    });
}

/// Contract: tiny limits work: with `max_buffered_bytes(1)` every event
/// (even an empty one, charged one byte) fills the dispatcher; Block
/// producers take turns as a receiver frees the byte, each handle in order.
#[test]
fn a_one_byte_limit_lets_blocked_producers_through_one_at_a_time_in_order() {
    watchdog("one byte", |progress| {
        let (dispatcher, batches) = Dispatcher::<Ev>::builder()
            .interval(Duration::from_micros(200))
            .max_buffered_bytes(1)
            .max_batch_bytes(1)
            .partitions(4)
            .policy(Policy::Block {
                timeout: Duration::from_secs(10),
            })
            .build()
            .unwrap();
        let producers: Vec<_> = (0..8u32)
            .map(|h| {
                let producer = dispatcher.producer();
                thread::spawn(move || {
                    for seq in 0..50 {
                        producer.enqueue(ev(h, seq, (seq % 2) as usize)).unwrap();
                    }
                })
            })
            .collect();
        progress.set("receiving 400 one-byte events");
        let mut next = [0u32; 8];
        let mut received = 0;
        while received < 400 {
            let batch = batches.recv_timeout(Duration::from_secs(5)).unwrap();
            assert!(batch.len() == 1 && batch.bytes() == 1, "{batch:?}");
            let e = &batch[0];
            assert_eq!(
                e.seq, next[e.handle as usize],
                "handle {} out of order",
                e.handle
            );
            next[e.handle as usize] += 1;
            received += 1;
            assert!(dispatcher.stats().buffered_bytes <= 1);
        }
        producers.into_iter().for_each(|p| p.join().unwrap());
        let stats = dispatcher.stats();
        assert_eq!(
            (stats.accepted, stats.delivered, stats.peak_buffered_bytes),
            (400, 400, 1)
        );
        dispatcher.shutdown(Duration::from_secs(1)).unwrap();
    });
}

/// Contract: `build()` refuses the sink settings it would ignore, with a
/// `ConfigError` naming the setting.
#[test]
fn build_refuses_every_sink_setting_by_name() {
    let cases: Vec<(&str, dispatcher::Builder<Ev>)> = vec![
        ("flush_workers", Dispatcher::builder().flush_workers(1)),
        (
            "flush_timeout",
            Dispatcher::builder().flush_timeout(Duration::from_secs(30)),
        ),
        (
            "retry",
            Dispatcher::builder().retry(dispatcher::sink::Retry::default()),
        ),
        (
            "on_flush_error",
            Dispatcher::builder().on_flush_error(|_, _| {}),
        ),
    ];
    for (setting, builder) in cases {
        match builder.max_buffered_bytes(64).build() {
            Ok(_) => panic!("build() accepted {setting}, which it ignores"),
            Err(err) => assert_eq!(err.field(), setting, "{err}"),
        }
    }
}
