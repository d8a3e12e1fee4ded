//! Attacks on the async contract: dropping an `enqueue` future at any
//! point (a timeout, `select!`, `cancel`) never enqueues it behind the
//! caller's back, no accepted event is lost or duplicated whatever the
//! streams and the async sink do, and `shutdown_async` works from inside
//! the runtime, even a current-thread one that also runs what the drain
//! depends on. Every scenario runs under a watchdog, so a deadlock fails
//! the test (naming what was stuck) instead of hanging the suite.
//!
//! The async hammer runs async producers on a multi-thread runtime whose
//! futures are dropped at random points, stream consumers aborted and
//! replaced, or an async sink that times out, fails and panics, with its
//! driver aborted at a random moment; `shutdown_async` under load from
//! inside the runtime. `ATTACK_SEED=<u64>` replays one round.

#![cfg(feature = "async")]

mod attack_kit;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use attack_kit::{Ev, LONG, ev, watchdog};
use dispatcher::sink::FlushContext;
use dispatcher::{Batch, Dispatcher, Policy};

mod async_hammer {
    use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
    use std::thread;
    use std::time::Instant;

    use super::*;
    use crate::attack_kit::hammer::{Hev, Id, Log, Seen, draw_weight, hid};
    use crate::attack_kit::ledger::{per_handle, verify};
    use crate::attack_kit::{CHAOS, Progress, assert_balanced, quiet_chaos_panics};
    use dispatcher::nonblocking::AsyncSink;
    use dispatcher::sink::SinkError;
    use futures_util::StreamExt;

    struct ChaosSink {
        seen: Arc<Seen>,
        seed: u64,
    }

    impl AsyncSink<Hev> for ChaosSink {
        async fn write(&self, batch: &Batch<Hev>, ctx: &FlushContext) -> Result<(), SinkError> {
            let first = batch
                .first()
                .map_or(0, |e| (u64::from(e.handle) << 32) | u64::from(e.seq));
            let mut rng = fastrand::Rng::with_seed(self.seed ^ first ^ u64::from(ctx.attempt()));
            tokio::time::sleep(Duration::from_micros(rng.u64(0..=300))).await;
            match rng.u8(0..100) {
                0..=4 => {
                    // Past flush_timeout: cancelled.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Err("slow".into())
                }
                5..=9 => panic!("{CHAOS} async sink panics"),
                10..=19 => Err("injected failure".into()),
                _ => {
                    self.seen
                        .delivered
                        .lock()
                        .unwrap()
                        .push(batch.iter().map(hid).collect());
                    Ok(())
                }
            }
        }
    }

    async fn produce(
        producer: dispatcher::nonblocking::AsyncProducer<Hev>,
        handle: u32,
        seed: u64,
        max: usize,
        stop: Arc<AtomicBool>,
        seen: Arc<Seen>,
    ) -> Log {
        let mut rng = fastrand::Rng::with_seed(seed ^ (u64::from(handle) << 40));
        let mut log = Log::default();
        let mut seq = 0;
        while !stop.load(SeqCst) {
            let sent = Hev {
                handle,
                seq,
                weight: draw_weight(&mut rng, max),
                chaos: false,
            };
            seq += 1;
            let mut future = producer.enqueue(sent.clone());
            let waited = Duration::from_micros(rng.u64(0..=3000));
            let outcome = match rng.u8(0..4) {
                0 => Some(future.await),
                // Dropped by a timeout: never enqueued, item gone.
                1 => tokio::time::timeout(waited, future).await.ok(),
                // Dropped by select! after being polled through `&mut`.
                2 => {
                    tokio::select! {
                        done = &mut future => Some(done),
                        () = tokio::time::sleep(waited) => match future.cancel() {
                            Some(back) => {
                                if back != sent {
                                    seen.problem(format!("cancel handed back {back:?} for {sent:?}"));
                                }
                                None
                            }
                            None => {
                                seen.problem(format!("cancel of a pending enqueue of {sent:?} gave nothing back"));
                                None
                            }
                        },
                    }
                }
                _ => {
                    // Polled once, then dropped.
                    let polled = std::future::poll_fn(|cx| {
                        std::task::Poll::Ready(std::future::Future::poll(
                            std::pin::Pin::new(&mut future),
                            cx,
                        ))
                    })
                    .await;
                    match polled {
                        std::task::Poll::Ready(done) => Some(done),
                        std::task::Poll::Pending => None,
                    }
                }
            };
            match outcome {
                Some(Ok(())) => log.accepted.push(sent.seq),
                Some(Err(err)) => {
                    let closed = matches!(err, dispatcher::EnqueueError::Closed(_));
                    let back = err.into_inner();
                    if back != sent {
                        seen.problem(format!("a refusal handed back {back:?} for {sent:?}"));
                    }
                    log.refused.push(sent.seq);
                    if closed {
                        break;
                    }
                }
                None => log.refused.push(sent.seq),
            }
            if seq % 8 == 0 {
                tokio::task::yield_now().await;
            }
        }
        log
    }

    fn round(seed: u64, sink: bool, progress: &Progress) {
        let mut rng = fastrand::Rng::with_seed(seed);
        let max = rng.usize(1..=512);
        let policy = match rng.u8(0..4) {
            0 => Policy::Reject,
            1 => Policy::DropOldest,
            _ => Policy::Block {
                timeout: Duration::from_micros(rng.u64(100..=5000)),
            },
        };
        let partitions = rng.usize(1..=4);
        let workers = rng.usize(1..=3);
        let producers = rng.usize(8..=32);
        let abort_driver = sink && rng.bool();
        let end_timeout = if rng.bool() {
            Duration::from_millis(rng.u64(0..=3))
        } else {
            Duration::from_secs(2)
        };
        let what = format!(
            "ATTACK_SEED={seed} sink {sink} max {max} {policy:?} partitions {partitions} \
             workers {workers} producers {producers} abort_driver {abort_driver} end {end_timeout:?}"
        );
        println!("async hammer: {what}");
        progress.set(format!("{what}: running"));
        let seen = Arc::new(Seen::default());
        let evicted = Arc::clone(&seen);
        let builder = Dispatcher::<Hev>::builder()
            .interval(Duration::from_micros(rng.u64(200..=3000)))
            .max_buffered_bytes(max)
            .max_batch_items(rng.usize(1..=16))
            .partitions(partitions)
            .policy(policy)
            .on_evict(move |e| evicted.evicted.lock().unwrap().push(hid(&e)));
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let (dispatcher, driver, batches) = if sink {
            let failed = Arc::clone(&seen);
            let (dispatcher, driver) = builder
                .flush_workers(workers)
                .flush_timeout(Duration::from_millis(5))
                .retry(dispatcher::sink::Retry::new(
                    rng.u32(1..=3),
                    Duration::from_micros(200),
                    Duration::from_millis(2),
                ))
                .on_flush_error(move |_, batch: Batch<Hev>| {
                    failed.failed.lock().unwrap().extend(batch.iter().map(hid));
                })
                .build_with_async_sink(ChaosSink {
                    seen: Arc::clone(&seen),
                    seed,
                })
                .unwrap();
            (dispatcher, Some(rt.spawn(driver)), None)
        } else {
            let (dispatcher, batches) = builder.build().unwrap();
            (dispatcher, None, Some(batches))
        };
        // Stream consumers, aborted and replaced at random.
        let consumers = batches.map(|batches| {
            let (seen, stop) = (Arc::clone(&seen), Arc::clone(&stop));
            rt.spawn(async move {
                let mut rng = fastrand::Rng::with_seed(seed ^ 0x5eed);
                let mut finals = Vec::new();
                while !stop.load(SeqCst) {
                    let mut stream = batches.clone().into_stream();
                    let seen = Arc::clone(&seen);
                    let task = tokio::spawn(async move {
                        while let Some(batch) = stream.next().await {
                            let ids: Vec<Id> = batch.iter().map(hid).collect();
                            seen.delivered.lock().unwrap().push(ids);
                        }
                    });
                    tokio::time::sleep(Duration::from_micros(rng.u64(100..=3000))).await;
                    if rng.bool() {
                        task.abort();
                        let _ = task.await;
                    } else {
                        finals.push(task);
                    }
                }
                // The last consumer drains until the end.
                let mut stream = batches.into_stream();
                while let Some(batch) = stream.next().await {
                    seen.delivered
                        .lock()
                        .unwrap()
                        .push(batch.iter().map(hid).collect());
                }
                for task in finals {
                    let _ = task.await;
                }
            })
        });
        let tasks: Vec<_> = (0..producers)
            .map(|h| {
                let producer = dispatcher.async_producer();
                let (stop, seen) = (Arc::clone(&stop), Arc::clone(&seen));
                rt.spawn(produce(producer, h as u32, seed, max, stop, seen))
            })
            .collect();
        let (returned, stats) = rt.block_on(async {
            tokio::time::sleep(Duration::from_millis(rng.u64(20..=60))).await;
            let mut driver = driver;
            if abort_driver {
                if let Some(driver) = driver.take() {
                    driver.abort();
                    let _ = driver.await;
                }
            }
            progress.set(format!("{what}: shutdown_async"));
            let outcome = dispatcher.shutdown_async(end_timeout).await;
            stop.store(true, SeqCst);
            if let Some(driver) = driver {
                let _ = driver.await;
            }
            match outcome {
                Ok(report) => (Vec::new(), report.stats),
                Err(err) => {
                    let stats = err.report.stats;
                    (err.into_inner().into_vec(), stats)
                }
            }
        });
        progress.set(format!("{what}: joining"));
        let logs: Vec<Log> = rt.block_on(async {
            let mut logs = Vec::new();
            for task in tasks {
                logs.push(task.await.unwrap());
            }
            if let Some(consumers) = consumers {
                consumers.await.unwrap();
            }
            logs
        });
        let returned_ids: Vec<Id> = returned.iter().map(hid).collect();
        let deadline = Instant::now() + Duration::from_secs(3);
        while seen.fated() + returned_ids.len() < stats.accepted as usize
            && Instant::now() < deadline
        {
            thread::sleep(Duration::from_millis(2));
        }
        // Every fate, by the attack tests' one exactly-once check: each
        // event a producer was told was accepted has one, nothing else any
        // (refused or cancelled calls included); each batch keeps its
        // handles' order, as does what came back.
        let accepted_ids = per_handle(logs.iter().map(|l| l.accepted.iter().copied()));
        let fates = seen.fates(returned_ids, false);
        let mut problems = seen.problems.lock().unwrap().clone();
        if let Err(broken) = verify(&accepted_ids, &fates) {
            problems.push(broken);
        }
        let accepted = accepted_ids.len();
        if stats.accepted as usize != accepted || fates.fated() != accepted {
            problems.push(format!(
                "producers got Ok for {accepted}, stats.accepted {}, {} fates in all: {stats:?}",
                stats.accepted,
                fates.fated()
            ));
        }
        if stats.buffered_items != stats.in_flight_items {
            problems.push(format!(
                "after shutdown, events buffered outside the sink: {stats:?}"
            ));
        }
        assert_balanced(&stats);
        println!(
            "  accepted {accepted}, refused or cancelled {}, delivered {}, evicted {}, failed {}, returned {}",
            logs.iter().map(|l| l.refused.len()).sum::<usize>(),
            fates.delivered(),
            fates.evicted.len(),
            fates.failed.len(),
            fates.returned.len()
        );
        problems.truncate(20);
        assert!(problems.is_empty(), "{what}\n{}", problems.join("\n"));
    }

    fn run(name: &str, sink: bool) {
        quiet_chaos_panics();
        let replay: Option<u64> = std::env::var("ATTACK_SEED")
            .ok()
            .and_then(|s| s.parse().ok());
        watchdog(name, move |progress| {
            let started = Instant::now();
            let mut master = fastrand::Rng::new();
            let mut rounds = 0;
            while rounds == 0 || (replay.is_none() && started.elapsed() < Duration::from_secs(2)) {
                round(replay.unwrap_or_else(|| master.u64(..)), sink, &progress);
                rounds += 1;
            }
        });
    }

    #[test]
    fn async_hammer_streams() {
        run("async hammer streams", false);
    }

    #[test]
    fn async_hammer_sink() {
        run("async hammer sink", true);
    }
}

/// Contract: async waits never block the thread, and `shutdown_async`
/// works inside a current-thread runtime that also runs what the drain
/// depends on. Here one current-thread runtime runs async producers blocked
/// for room, a stream consumer, an async sink driver of a second
/// dispatcher fed by that consumer, and both shutdowns, under load.
#[test]
fn one_current_thread_runtime_runs_producers_consumer_sink_and_shutdowns() {
    use dispatcher::nonblocking::AsyncSink;
    use dispatcher::sink::SinkError;
    use futures_util::StreamExt;

    struct Collect(Arc<Mutex<Vec<(u32, u32)>>>);
    impl AsyncSink<Ev> for Collect {
        async fn write(&self, batch: &Batch<Ev>, _: &FlushContext) -> Result<(), SinkError> {
            tokio::task::yield_now().await;
            self.0
                .lock()
                .unwrap()
                .extend(batch.iter().map(|e| (e.handle, e.seq)));
            Ok(())
        }
    }

    watchdog("one current-thread runtime", |progress| {
        let written = Arc::new(Mutex::new(Vec::new()));
        let (front, front_batches) = Dispatcher::<Ev>::builder()
            .interval(Duration::from_millis(1))
            .max_buffered_bytes(16)
            .partitions(2)
            .policy(Policy::Block { timeout: LONG })
            .build()
            .unwrap();
        let (back, driver) = Dispatcher::<Ev>::builder()
            .interval(Duration::from_millis(1))
            .max_buffered_bytes(8)
            .flush_workers(2)
            .policy(Policy::Block { timeout: LONG })
            .build_with_async_sink(Collect(Arc::clone(&written)))
            .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        progress.set("running");
        let (front_report, back_report) = rt.block_on(async move {
            let driver = tokio::spawn(driver);
            let relay = {
                let forward = back.async_producer();
                let mut stream = front_batches.into_stream();
                tokio::spawn(async move {
                    while let Some(batch) = stream.next().await {
                        for e in batch.iter() {
                            forward.enqueue(e.clone()).await.unwrap();
                        }
                    }
                })
            };
            let producers: Vec<_> = (0..6u32)
                .map(|h| {
                    let producer = front.async_producer();
                    tokio::spawn(async move {
                        for seq in 0..200 {
                            producer
                                .enqueue(ev(h, seq, 1 + (seq % 3) as usize))
                                .await
                                .unwrap();
                        }
                    })
                })
                .collect();
            for p in producers {
                p.await.unwrap();
            }
            let front_report = front.shutdown_async(Duration::from_secs(10)).await.unwrap();
            relay.await.unwrap();
            let back_report = back.shutdown_async(Duration::from_secs(10)).await.unwrap();
            driver.await.unwrap();
            (front_report, back_report)
        });
        assert_eq!(front_report.delivered_total, 1200);
        assert_eq!(back_report.delivered_total, 1200);
        let written = written.lock().unwrap();
        let mut next = [0u32; 6];
        for &(h, seq) in written.iter() {
            // Two sink workers may finish batches out of order, but each
            // handle's events are all there once.
            next[h as usize] += 1;
            assert!(seq < 200);
        }
        assert_eq!(next, [200; 6]);
        let mut sorted = written.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 1200);
    });
}
