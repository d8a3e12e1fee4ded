//! Attacks on what the end of a dispatcher owes the user: shutdown reports
//! a deadline it missed, no accepted event is lost or reordered when an
//! async sink's driver is dropped mid-write (before or after shutdown or
//! stop) or its `write` panics, and a batch kept past the end stays valid.
//! Every scenario runs under a watchdog, so a deadlock fails the test
//! (naming what was stuck) instead of hanging the suite.
//!
//! Contract breaks found (these tests failed until fixed):
//!
//! - `shutdown_past_its_deadline_with_a_batch_stuck_in_the_sink_is_not_ok`:
//!   shutdown answered `Ok` although its deadline passed with an event
//!   undelivered in a sink call.
//! - `async_driver::*`: an async driver dropped with two writes in flight
//!   handed them back newest first; a driver dropped after shutdown or stop
//!   lost the batch it was writing; an `AsyncSink::write` that panicked
//!   before returning its future killed the driver.

mod attack_kit;

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use attack_kit::{Ev, Gate, LONG, ev, seqs, wait_for, watchdog};
use dispatcher::sink::{self, FlushContext};
use dispatcher::{Batch, Dispatcher};

/// Contract: `shutdown(timeout)` returns `ShutdownTimeout` "if the time ran
/// out" before the sink wrote or gave up on every batch. Here the only
/// batch is stuck in a sink call past the deadline: shutdown must not
/// report success (`Ok`) while an accepted event is still undelivered.
#[test]
fn shutdown_past_its_deadline_with_a_batch_stuck_in_the_sink_is_not_ok() {
    watchdog("shutdown with a stuck sink", |progress| {
        let gate = Arc::new(Gate::default());
        let held = Arc::clone(&gate);
        let dispatcher = Dispatcher::<Ev>::builder()
            .interval(LONG)
            .build_with_sink(sink::from_fn(
                move |_: &Batch<Ev>, _: &FlushContext| -> Result<(), String> {
                    held.wait(Duration::from_secs(15));
                    Ok(())
                },
            ))
            .unwrap();
        dispatcher.producer().try_enqueue(ev(0, 0, 1)).unwrap();
        dispatcher.flush();
        wait_for("batch in flight", || {
            dispatcher.stats().in_flight_items == 1
        });
        progress.set("shutdown(100 ms) with the sink stuck");
        let started = Instant::now();
        let outcome = dispatcher.shutdown(Duration::from_millis(100));
        let elapsed = started.elapsed();
        gate.open();
        match outcome {
            Ok(report) => panic!(
                "shutdown returned Ok after {elapsed:?} although its 100 ms deadline passed \
                 with {} event(s) still in the sink: {report:?}",
                report.stats.in_flight_items
            ),
            Err(timeout) => {
                assert!(timeout.undelivered.is_empty(), "the event is in the sink");
                assert_eq!(timeout.report.stats.in_flight_items, 1);
            }
        }
    });
}

#[cfg(feature = "async")]
mod async_driver {
    use super::*;
    use crate::attack_kit::{CHAOS, quiet_chaos_panics};
    use dispatcher::nonblocking::AsyncSink;
    use dispatcher::sink::SinkError;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

    /// A sink whose writes never complete; counts the writes started.
    pub(super) struct Hang(pub(super) Arc<AtomicUsize>);

    impl AsyncSink<Ev> for Hang {
        async fn write(&self, _batch: &Batch<Ev>, _ctx: &FlushContext) -> Result<(), SinkError> {
            self.0.fetch_add(1, SeqCst);
            std::future::pending().await
        }
    }

    pub(super) fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap()
    }

    /// Contract: a batch whose async driver is dropped mid-write is not
    /// lost, and shutdown returns the undelivered events oldest first, in
    /// per-handle order. Two workers each hold a batch of one handle
    /// (events 0 and 1) when the driver is aborted: shutdown must hand back
    /// 0, 1, 2, 3 in that order.
    #[test]
    fn a_dropped_driver_with_two_writes_in_flight_gives_them_back_in_order() {
        watchdog("driver with two writes dropped", |progress| {
            let started = Arc::new(AtomicUsize::new(0));
            let (dispatcher, driver) = Dispatcher::<Ev>::builder()
                .interval(LONG)
                .max_batch_items(1)
                .flush_workers(2)
                .build_with_async_sink(Hang(Arc::clone(&started)))
                .unwrap();
            let producer = dispatcher.producer();
            for seq in 0..4 {
                producer.try_enqueue(ev(0, seq, 1)).unwrap();
            }
            let rt = runtime();
            progress.set("driver taking two batches");
            rt.block_on(async {
                let task = tokio::spawn(driver);
                while started.load(SeqCst) < 2 {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                task.abort();
                let _ = task.await;
            });
            progress.set("shutdown");
            let returned = match dispatcher.shutdown(Duration::from_millis(100)) {
                Ok(report) => panic!("nothing was written, yet shutdown is Ok: {report:?}"),
                Err(timeout) => timeout.into_inner(),
            };
            assert_eq!(
                seqs(&returned),
                [0, 1, 2, 3],
                "shutdown must return one handle's undelivered events oldest first"
            );
        });
    }

    /// A sink that prepares each request before its future starts (a common
    /// shape: serialize synchronously, then send asynchronously), and whose
    /// preparation panics on event 0.
    struct PrepareThenSend(Arc<Mutex<Vec<u32>>>);

    impl AsyncSink<Ev> for PrepareThenSend {
        fn write(
            &self,
            batch: &Batch<Ev>,
            _ctx: &FlushContext,
        ) -> impl std::future::Future<Output = Result<(), SinkError>> + Send {
            let request: Vec<u32> = batch
                .iter()
                .map(|e| {
                    assert!(e.seq != 0, "{CHAOS} cannot serialize event 0");
                    e.seq
                })
                .collect();
            let written = Arc::clone(&self.0);
            async move {
                written.lock().unwrap().extend(request);
                Ok(())
            }
        }
    }

    /// Contract: panics of the sink are caught, retried, then handed to
    /// `on_flush_error`; later batches are still written. An `AsyncSink`
    /// whose `write` panics while building its future (before the first
    /// poll) must be treated the same: the driver must not die with it
    /// (which closes admission and stops all delivery).
    #[test]
    fn an_async_sink_panicking_before_its_future_starts_is_caught_like_any_sink_panic() {
        quiet_chaos_panics();
        watchdog("async sink panics early", |progress| {
            let written = Arc::new(Mutex::new(Vec::new()));
            let failed = Arc::new(Mutex::new(Vec::new()));
            let out = Arc::clone(&failed);
            let (dispatcher, driver) = Dispatcher::<Ev>::builder()
                .interval(LONG)
                .max_batch_items(1)
                .retry(dispatcher::sink::Retry::NEVER)
                .on_flush_error(move |_, batch: Batch<Ev>| {
                    out.lock().unwrap().extend(seqs(batch.items()));
                })
                .build_with_async_sink(PrepareThenSend(Arc::clone(&written)))
                .unwrap();
            let rt = runtime();
            let task = rt.spawn(driver);
            let producer = dispatcher.producer();
            producer.try_enqueue(ev(0, 0, 1)).unwrap();
            progress.set("waiting for the panicking batch to settle");
            let deadline = Instant::now() + Duration::from_secs(2);
            while failed.lock().unwrap().is_empty()
                && !task.is_finished()
                && Instant::now() < deadline
            {
                thread::sleep(Duration::from_millis(1));
            }
            let later = producer.try_enqueue(ev(0, 1, 1));
            let driver_died = task.is_finished();
            let outcome = dispatcher.shutdown(Duration::from_millis(500));
            assert!(
                !driver_died && later.is_ok(),
                "the sink's panic killed the driver (finished: {driver_died}); admission then \
                 refused event 1 with {later:?}; shutdown: {outcome:?}"
            );
            assert_eq!(
                *failed.lock().unwrap(),
                [0],
                "the panicking batch goes to the hook"
            );
            assert_eq!(*written.lock().unwrap(), [1], "later batches are written");
            assert!(outcome.is_ok(), "{outcome:?}");
        });
    }

    /// Contract: nothing accepted is lost silently; "a batch still inside
    /// a sink call when shutdown returns is settled by its worker when the
    /// call ends". With an async sink the worker is the driver: if the
    /// driver is dropped after shutdown returned (the runtime shuts down,
    /// the task is aborted), the batch it was writing must still end up
    /// somewhere the user sees — the error hook — not vanish.
    #[test]
    fn a_driver_dropped_after_shutdown_does_not_lose_the_batch_it_was_writing() {
        watchdog("driver dropped after shutdown", |progress| {
            let started = Arc::new(AtomicUsize::new(0));
            let failed = Arc::new(Mutex::new(Vec::new()));
            let out = Arc::clone(&failed);
            let (dispatcher, driver) = Dispatcher::<Ev>::builder()
                .interval(LONG)
                .flush_timeout(Duration::from_secs(60))
                .on_flush_error(move |_, batch: Batch<Ev>| {
                    out.lock().unwrap().extend(seqs(batch.items()));
                })
                .build_with_async_sink(Hang(Arc::clone(&started)))
                .unwrap();
            dispatcher.producer().try_enqueue(ev(0, 0, 1)).unwrap();
            dispatcher.flush();
            let rt = runtime();
            let task = rt.spawn(driver);
            wait_for("write started", || started.load(SeqCst) == 1);
            progress.set("shutdown with the write pending");
            let (returned, stats) = match dispatcher.shutdown(Duration::from_millis(50)) {
                Ok(report) => (Vec::new(), report.stats),
                Err(timeout) => {
                    let stats = timeout.report.stats;
                    (timeout.into_inner().into_vec(), stats)
                }
            };
            assert!(returned.is_empty(), "the event is in the sink call");
            assert_eq!(stats.in_flight_items, 1, "{stats:?}");
            progress.set("dropping the driver");
            task.abort();
            drop(rt);
            let failed = failed.lock().unwrap().clone();
            assert_eq!(
                failed,
                [0],
                "the event in the aborted write was neither delivered, returned nor handed \
                 to on_flush_error: lost (stats at shutdown {stats:?})"
            );
        });
    }

    /// As above, after `stop()`.
    #[test]
    fn a_driver_dropped_after_stop_does_not_lose_the_batch_it_was_writing() {
        watchdog("driver dropped after stop", |progress| {
            let started = Arc::new(AtomicUsize::new(0));
            let failed = Arc::new(Mutex::new(Vec::new()));
            let out = Arc::clone(&failed);
            let (dispatcher, driver) = Dispatcher::<Ev>::builder()
                .interval(LONG)
                .flush_timeout(Duration::from_secs(60))
                .on_flush_error(move |_, batch: Batch<Ev>| {
                    out.lock().unwrap().extend(seqs(batch.items()));
                })
                .build_with_async_sink(Hang(Arc::clone(&started)))
                .unwrap();
            let producer = dispatcher.producer();
            producer.try_enqueue(ev(0, 0, 1)).unwrap();
            dispatcher.flush();
            producer.try_enqueue(ev(0, 1, 1)).unwrap();
            let rt = runtime();
            let task = rt.spawn(driver);
            wait_for("write started", || started.load(SeqCst) == 1);
            progress.set("stop with the write pending");
            let returned = dispatcher.stop();
            assert_eq!(seqs(&returned), [1]);
            progress.set("dropping the driver");
            task.abort();
            drop(rt);
            let failed = failed.lock().unwrap().clone();
            assert_eq!(
                failed,
                [0],
                "the event in the aborted write was neither delivered, returned nor handed \
                 to on_flush_error: lost"
            );
        });
    }
}

/// Contract: a `Batch` is the receiver's; it stays readable, and dropping
/// it is harmless, after the dispatcher was shut down and dropped, and a
/// receiver then sees the end.
#[test]
fn a_batch_kept_across_shutdown_stays_valid() {
    watchdog("batch kept", |_| {
        let (dispatcher, batches) = Dispatcher::<Ev>::builder()
            .interval(LONG)
            .partitions(2)
            .build()
            .unwrap();
        let producer = dispatcher.producer();
        for seq in 0..3 {
            producer.try_enqueue(ev(0, seq, 5)).unwrap();
        }
        dispatcher.flush();
        let kept = batches.recv().unwrap();
        producer.try_enqueue(ev(0, 3, 5)).unwrap();
        let consumer = thread::spawn(move || {
            let rest: Vec<u32> = batches.iter().flat_map(|b| seqs(b.items())).collect();
            (rest, batches)
        });
        let report = dispatcher.shutdown(Duration::from_secs(5)).unwrap();
        assert_eq!(report.delivered_total, 4);
        let (rest, batches) = consumer.join().unwrap();
        assert_eq!(rest, [3]);
        assert_eq!(seqs(kept.items()), [0, 1, 2]);
        assert!(batches.try_recv().is_err());
        drop(producer);
        drop(batches);
        assert_eq!(kept.bytes(), 15);
        drop(kept);
    });
}

/// Contract: a receiver's stream ends only once every accepted event has
/// been handed over. Producer P's event opens a batch in an empty
/// partition, and P's `should_flush` hook (run under that partition's
/// lock, before the receivers' hint for it is published) holds P there
/// while dropping the dispatcher closes admission. The receiver takes the
/// other partition's batch, which the closing seals, and looks again:
/// admission is closed and P's hint still says "empty". Read from the
/// hints alone, the stream ended there, and P's accepted event was sealed
/// for nobody (under `shutdown`, which waits for it, until its deadline).
/// Found by the model `the_stream_ends_only_after_every_accepted_event`
/// (tests/models.rs).
#[test]
fn the_stream_ends_only_after_every_accepted_event() {
    watchdog(
        "an accepted event held in a hook across the close",
        |progress| {
            let (entered, gate) = (Gate::new(), Gate::new());
            let (in_hook, held) = (Arc::clone(&entered), Arc::clone(&gate));
            let (dispatcher, batches) = Dispatcher::<Ev>::builder()
                .partitions(2)
                .max_buffered_bytes(8 << 20)
                .interval(LONG)
                .should_flush(move |open| {
                    if open.items().iter().any(|e| e.handle == 1) {
                        in_hook.open();
                        held.wait(Duration::from_secs(10));
                    }
                    false
                })
                .build()
                .unwrap();
            // Handles take the partitions in turn: the probe gets 0, P gets 1.
            let (probe, p) = (dispatcher.producer(), dispatcher.producer());
            let receiver = thread::spawn(move || {
                let mut seen = 0;
                for batch in &batches {
                    seen += batch.len();
                }
                seen
            });
            let held_producer = thread::spawn(move || p.try_enqueue(ev(1, 0, 8)).is_ok());
            progress.set("P enters its hook");
            entered.wait(Duration::from_secs(10));
            // Dropping the dispatcher closes admission, then seals partition 0
            // and waits for partition 1's lock, which P holds.
            let closing = thread::spawn(move || drop(dispatcher));
            progress.set("the probe enqueues until admission reads closed");
            let mut probed = 0;
            while probe.try_enqueue(ev(0, probed, 8)).is_ok() {
                probed += 1;
            }
            // Time for the receiver to take the probe's batch and look again.
            thread::sleep(Duration::from_millis(100));
            gate.open();
            progress.set("the receiver's stream ends");
            closing.join().unwrap();
            assert!(held_producer.join().unwrap(), "P's event was accepted");
            assert_eq!(
                receiver.join().unwrap(),
                probed as usize + 1,
                "the stream ended before every accepted event was received"
            );
        },
    );
}
