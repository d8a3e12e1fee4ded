//! The async feature on tokio's current-thread and multi-thread runtimes:
//! waiting for room without blocking, cancellation, the batch stream, async
//! sinks with timeouts and panics, and shutdown from inside a runtime.

#![cfg(feature = "async")]

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{block, quick_retry};
use dispatcher::nonblocking::AsyncSink;
use dispatcher::sink::{FlushContext, FlushError, Retry, SinkError};
use dispatcher::{Batch, Dispatcher, EnqueueError, FlushReason, Policy};
use futures_util::StreamExt;

const LONG: Duration = Duration::from_secs(10);

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn multi_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn enqueue_waits_for_room_without_blocking_the_only_runtime_thread() {
    current_thread().block_on(async {
        let (dispatcher, batches) = Dispatcher::<Vec<u8>>::builder()
            .max_buffered_bytes(8)
            .policy(block(LONG))
            .build()
            .unwrap();
        let producer = dispatcher.async_producer();
        producer.enqueue(vec![1; 8]).await.unwrap();
        // Full: this task must wait, and the consumer task on the same
        // thread must still run to free the room.
        let waiting = tokio::spawn({
            let producer = producer.clone();
            async move { producer.enqueue(vec![2; 4]).await }
        });
        let mut stream = batches.into_stream();
        dispatcher.flush();
        let first = stream.next().await.unwrap();
        assert_eq!(first.items(), [vec![1; 8]]);
        drop(first);
        tokio::time::timeout(LONG, waiting)
            .await
            .expect("the waiting enqueue completes once room is freed")
            .unwrap()
            .unwrap();
        assert_eq!(dispatcher.stats().accepted, 2);
        dispatcher.flush();
        assert_eq!(stream.next().await.unwrap().items(), [vec![2; 4]]);
    });
}

#[test]
fn a_cancelled_enqueue_is_never_admitted_and_can_hand_its_item_back() {
    current_thread().block_on(async {
        let (dispatcher, batches) = Dispatcher::<Vec<u8>>::builder()
            .max_buffered_bytes(4)
            .policy(block(LONG))
            .build()
            .unwrap();
        let producer = dispatcher.async_producer();
        producer.enqueue(vec![0; 4]).await.unwrap();

        // Dropped by select!: the item goes with the future.
        tokio::select! {
            _ = producer.enqueue(vec![1]) => panic!("no room was freed"),
            _ = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
        // Polled through &mut: cancel() gives the item back.
        let mut waiting = producer.enqueue(vec![2]);
        tokio::select! {
            _ = &mut waiting => panic!("no room was freed"),
            _ = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
        assert_eq!(waiting.cancel(), Some(vec![2]));
        drop(waiting);

        // Freeing room now admits nothing that was cancelled.
        dispatcher.flush();
        assert_eq!(batches.try_recv().unwrap().len(), 1);
        let stats = dispatcher.stats();
        assert_eq!((stats.accepted, stats.buffered_items), (1, 0));
        assert_eq!(stats.rejected.total(), 0);
        producer.enqueue(vec![3]).await.unwrap();
        assert_eq!(dispatcher.stats().accepted, 2);
    });
}

#[test]
fn enqueue_times_out_with_the_item_and_counts_it() {
    current_thread().block_on(async {
        let (dispatcher, _batches) = Dispatcher::<Vec<u8>>::builder()
            .max_buffered_bytes(4)
            .policy(block(Duration::from_millis(30)))
            .build()
            .unwrap();
        let producer = dispatcher.async_producer();
        producer.enqueue(vec![0; 4]).await.unwrap();
        let err = producer.enqueue(vec![7]).await.unwrap_err();
        assert!(matches!(err, EnqueueError::Timeout(ref item) if item == &[7]));
        assert_eq!(dispatcher.stats().rejected.timeout, 1);
    });
}

#[test]
fn reject_and_drop_oldest_complete_at_once() {
    current_thread().block_on(async {
        let (dispatcher, _batches) = Dispatcher::<Vec<u8>>::builder()
            .max_buffered_bytes(4)
            .build()
            .unwrap();
        let producer = dispatcher.async_producer();
        producer.enqueue(vec![0; 4]).await.unwrap();
        let err = producer.enqueue(vec![1]).await.unwrap_err();
        assert!(matches!(err, EnqueueError::Full(_)));

        let (dispatcher, _batches) = Dispatcher::<Vec<u8>>::builder()
            .max_buffered_bytes(4)
            .policy(Policy::DropOldest)
            .build()
            .unwrap();
        let producer = dispatcher.async_producer();
        producer.enqueue(vec![0; 4]).await.unwrap();
        producer.enqueue(vec![1; 2]).await.unwrap();
        assert_eq!(dispatcher.stats().dropped, 1);
    });
}

#[test]
fn the_stream_cuts_on_the_interval_and_ends_after_shutdown() {
    current_thread().block_on(async {
        let (dispatcher, batches) = Dispatcher::<String>::builder()
            .interval(Duration::from_millis(20))
            .build()
            .unwrap();
        let mut stream = batches.into_stream();
        dispatcher.producer().try_enqueue("a".into()).unwrap();
        // Nothing else happens: only the stream's own timer can cut it.
        let batch = tokio::time::timeout(LONG, stream.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(batch.reason(), FlushReason::Interval);
        drop(batch);
        dispatcher.producer().try_enqueue("b".into()).unwrap();
        let consumer = tokio::spawn(async move {
            let mut seen = Vec::new();
            while let Some(mut batch) = stream.next().await {
                seen.extend(batch.drain());
            }
            seen
        });
        let report = dispatcher.shutdown_async(LONG).await.unwrap();
        assert_eq!(report.delivered_total, 2);
        assert_eq!(consumer.await.unwrap(), ["b"]);
    });
}

/// An async sink that needs its runtime: it sleeps on tokio's timer.
struct Recording {
    delay: Duration,
    seen: Mutex<Vec<u32>>,
}

impl AsyncSink<Vec<u8>> for Recording {
    async fn write(&self, batch: &Batch<Vec<u8>>, _ctx: &FlushContext) -> Result<(), SinkError> {
        tokio::time::sleep(self.delay).await;
        let mut seen = self.seen.lock().unwrap();
        seen.extend(
            batch
                .iter()
                .map(|e| u32::from_le_bytes(e[..4].try_into().unwrap())),
        );
        Ok(())
    }
}

fn event(n: u32) -> Vec<u8> {
    n.to_le_bytes().to_vec()
}

#[test]
fn shutdown_async_inside_a_current_thread_runtime_does_not_deadlock() {
    current_thread().block_on(async {
        let sink = Arc::new(Recording {
            delay: Duration::from_millis(2),
            seen: Mutex::new(Vec::new()),
        });
        let (dispatcher, driver) = Dispatcher::<Vec<u8>>::builder()
            .max_batch_items(10)
            .policy(block(LONG))
            .build_with_async_sink(Arc::clone(&sink))
            .unwrap();
        let driver = tokio::spawn(driver);
        let producer = dispatcher.async_producer();
        for n in 0..100 {
            producer.enqueue(event(n)).await.unwrap();
        }
        // The sink's sleeps need this very thread: a blocking wait here
        // would starve them; the async shutdown lets them run.
        let report = tokio::time::timeout(LONG, dispatcher.shutdown_async(LONG))
            .await
            .expect("no deadlock")
            .unwrap();
        assert_eq!(report.delivered_total, 100);
        tokio::time::timeout(LONG, driver).await.unwrap().unwrap();
        assert_eq!(*sink.seen.lock().unwrap(), (0..100).collect::<Vec<_>>());
    });
}

#[test]
fn a_blocking_shutdown_that_starves_the_driver_still_returns_at_its_deadline() {
    // The pitfall the async shutdown avoids: with the driver on this very
    // thread, a blocking shutdown cannot be helped by it. It must not hang:
    // it returns at its deadline with every undelivered event.
    current_thread().block_on(async {
        let sink = Recording {
            delay: Duration::ZERO,
            seen: Mutex::new(Vec::new()),
        };
        let (dispatcher, driver) = Dispatcher::<Vec<u8>>::builder()
            .build_with_async_sink(sink)
            .unwrap();
        let driver = tokio::spawn(driver);
        for n in 0..5 {
            dispatcher.producer().try_enqueue(event(n)).unwrap();
        }
        let timeout = dispatcher.shutdown(Duration::from_millis(100)).unwrap_err();
        assert_eq!(timeout.undelivered.len(), 5);
        // The driver, once it runs, sees the end and stops.
        tokio::time::timeout(LONG, driver).await.unwrap().unwrap();
    });
}

#[test]
fn an_async_sink_past_its_timeout_is_cancelled_retried_and_handed_to_the_hook() {
    struct Stuck {
        started: AtomicUsize,
        dropped: Arc<AtomicUsize>,
    }
    struct OnDrop(Arc<AtomicUsize>);
    impl Drop for OnDrop {
        fn drop(&mut self) {
            self.0.fetch_add(1, SeqCst);
        }
    }
    impl AsyncSink<Vec<u8>> for Stuck {
        async fn write(&self, _: &Batch<Vec<u8>>, _: &FlushContext) -> Result<(), SinkError> {
            self.started.fetch_add(1, SeqCst);
            let _guard = OnDrop(Arc::clone(&self.dropped));
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(())
        }
    }
    current_thread().block_on(async {
        let dropped = Arc::new(AtomicUsize::new(0));
        let sink = Arc::new(Stuck {
            started: AtomicUsize::new(0),
            dropped: Arc::clone(&dropped),
        });
        let failed = Arc::new(Mutex::new(Vec::new()));
        let hook = Arc::clone(&failed);
        let (dispatcher, driver) = Dispatcher::<Vec<u8>>::builder()
            .flush_timeout(Duration::from_millis(30))
            .retry(quick_retry(2))
            .on_flush_error(move |failure, mut batch| {
                assert!(matches!(failure.error, FlushError::TimedOut(_)));
                hook.lock()
                    .unwrap()
                    .push((failure.attempts, batch.drain().collect::<Vec<_>>()));
            })
            .build_with_async_sink(Arc::clone(&sink))
            .unwrap();
        tokio::spawn(driver);
        dispatcher.producer().try_enqueue(vec![42]).unwrap();
        let report = dispatcher.shutdown_async(LONG).await.unwrap();
        assert_eq!(*failed.lock().unwrap(), [(2, vec![vec![42]])]);
        let stats = report.stats;
        assert_eq!(
            (stats.sink_timeouts, stats.retries, stats.failed),
            (2, 1, 1)
        );
        assert_eq!(stats.delivered, 0);
        // Both attempts really were cancelled (their futures dropped).
        assert_eq!((sink.started.load(SeqCst), dropped.load(SeqCst)), (2, 2));
    });
}

#[test]
fn an_async_sink_that_panics_is_caught_and_the_driver_goes_on() {
    struct Fussy;
    impl AsyncSink<Vec<u8>> for Fussy {
        async fn write(&self, batch: &Batch<Vec<u8>>, _: &FlushContext) -> Result<(), SinkError> {
            if batch.iter().any(|e| e == b"bad") {
                panic!("cannot write bad");
            }
            Ok(())
        }
    }
    current_thread().block_on(async {
        let failed = Arc::new(Mutex::new(Vec::new()));
        let hook = Arc::clone(&failed);
        let (dispatcher, driver) = Dispatcher::<Vec<u8>>::builder()
            .max_batch_items(1)
            .retry(Retry::NEVER)
            .on_flush_error(move |failure, batch| {
                let FlushError::Panicked(message) = failure.error else {
                    panic!("expected a panic, got {:?}", failure.error);
                };
                hook.lock().unwrap().push((message, batch.len()));
            })
            .build_with_async_sink(Fussy)
            .unwrap();
        tokio::spawn(driver);
        let producer = dispatcher.producer();
        producer.try_enqueue(b"bad".to_vec()).unwrap();
        producer.try_enqueue(b"good".to_vec()).unwrap();
        let report = dispatcher.shutdown_async(LONG).await.unwrap();
        assert_eq!(
            *failed.lock().unwrap(),
            [("cannot write bad".to_string(), 1)]
        );
        assert_eq!((report.stats.sink_panics, report.stats.delivered), (1, 1));
    });
}

#[test]
fn many_async_producers_and_sink_workers_on_a_multi_thread_runtime_lose_nothing() {
    multi_thread().block_on(async {
        let sink = Arc::new(Recording {
            delay: Duration::from_micros(200),
            seen: Mutex::new(Vec::new()),
        });
        let (dispatcher, driver) = Dispatcher::<Vec<u8>>::builder()
            .max_buffered_bytes(256)
            .max_batch_bytes(64)
            .flush_workers(3)
            .policy(block(LONG))
            .build_with_async_sink(Arc::clone(&sink))
            .unwrap();
        let driver = tokio::spawn(driver);
        let tasks: Vec<_> = (0..8u32)
            .map(|p| {
                let producer = dispatcher.async_producer();
                tokio::spawn(async move {
                    for i in 0..500u32 {
                        producer.enqueue(event(p * 1_000_000 + i)).await.unwrap();
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let report = dispatcher.shutdown_async(LONG).await.unwrap();
        driver.await.unwrap();
        assert_eq!(report.delivered_total, 4000);
        assert!(report.stats.peak_buffered_bytes <= 256);
        let seen = sink.seen.lock().unwrap();
        let unique: BTreeSet<u32> = seen.iter().copied().collect();
        assert_eq!((seen.len(), unique.len()), (4000, 4000));
    });
}
