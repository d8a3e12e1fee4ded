//! Attacks on waiting: every wait ends when it can, by a notification alone
//! (no timer hides a lost wake-up), no kind of wait spins, and when the last
//! receiver leaves every producer waiting for room learns it promptly.
//! Every scenario runs under a watchdog, so a deadlock or a lost wake-up
//! fails the test (naming what was stuck) instead of hanging the suite.

mod attack_kit;

use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use attack_kit::{Ev, LONG, Progress, ev, watchdog};
use dispatcher::{Dispatcher, Policy};

/// Contract: no waiter that can proceed stays asleep. Intervals and Block
/// timeouts are an hour here, so all progress comes from notifications:
/// blocked producers (threads and async tasks) wait for room, receivers
/// wait for batches, a checkpoint thread loops on `flush_and_wait` (which
/// waits for the receivers), and shutdown waits for the drain. Any lost
/// wake-up stalls the chain and the watchdog names the trial.
#[test]
fn every_wait_is_ended_by_a_notification_alone() {
    watchdog("wake-ups only", |progress| {
        let started = Instant::now();
        let mut trial = 0u64;
        let mut master = fastrand::Rng::new();
        while started.elapsed() < Duration::from_secs(3) {
            trial += 1;
            let seed = master.u64(..);
            wake_up_trial(seed, trial, &progress);
        }
        println!("wake-ups only: {trial} trials");
    });
}

fn wake_up_trial(seed: u64, trial: u64, progress: &Progress) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let limit = rng.usize(1..=16);
    let partitions = rng.usize(1..=4);
    let threads = rng.u32(1..=6);
    let tasks = if cfg!(feature = "async") {
        rng.u32(0..=4)
    } else {
        0
    };
    let receivers = rng.usize(1..=3);
    let per_handle = rng.u32(20..=80);
    let mut builder = Dispatcher::<Ev>::builder()
        .interval(LONG)
        .max_buffered_bytes(limit)
        .partitions(partitions)
        .policy(Policy::Block { timeout: LONG });
    if rng.bool() {
        builder = builder.max_batch_items(rng.usize(1..=4));
    }
    if rng.bool() {
        builder = builder.max_batch_bytes(rng.usize(1..=limit));
    }
    let (dispatcher, batches) = builder.build().unwrap();
    let dispatcher = Arc::new(dispatcher);
    let total = (threads + tasks) * per_handle;
    let what = format!(
        "trial {trial} (seed {seed}): limit {limit}, partitions {partitions}, {threads} threads + \
         {tasks} tasks x {per_handle} events, {receivers} receivers"
    );
    progress.set(format!("{what}: running"));

    let delivered = Arc::new(Mutex::new(Vec::new()));
    let receiving: Vec<_> = (0..receivers)
        .map(|_| {
            let (batches, delivered) = (batches.clone(), Arc::clone(&delivered));
            thread::spawn(move || {
                for batch in &batches {
                    let ids: Vec<(u32, u32)> = batch.iter().map(|e| (e.handle, e.seq)).collect();
                    delivered.lock().unwrap().push(ids);
                }
            })
        })
        .collect();
    drop(batches);
    let weights = Arc::new(move |h: u32, seq: u32| 1 + (h as usize * 7 + seq as usize * 3) % limit);
    let producing: Vec<_> = (0..threads)
        .map(|h| {
            let (producer, weights) = (dispatcher.producer(), Arc::clone(&weights));
            thread::spawn(move || {
                for seq in 0..per_handle {
                    producer.enqueue(ev(h, seq, weights(h, seq))).unwrap();
                }
            })
        })
        .collect();
    #[cfg(feature = "async")]
    let runtime = (tasks > 0).then(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        let handles: Vec<_> = (threads..threads + tasks)
            .map(|h| {
                let (producer, weights) = (dispatcher.async_producer(), Arc::clone(&weights));
                rt.spawn(async move {
                    for seq in 0..per_handle {
                        producer.enqueue(ev(h, seq, weights(h, seq))).await.unwrap();
                    }
                })
            })
            .collect();
        (rt, handles)
    });
    let checkpoints = {
        let dispatcher = Arc::clone(&dispatcher);
        thread::spawn(move || {
            let mut rounds = 0u64;
            while dispatcher.stats().accepted < u64::from(total) {
                dispatcher.flush_and_wait(LONG).unwrap();
                rounds += 1;
            }
            dispatcher.flush_and_wait(LONG).unwrap();
            rounds
        })
    };
    for p in producing {
        p.join().unwrap();
    }
    #[cfg(feature = "async")]
    if let Some((rt, handles)) = runtime {
        rt.block_on(async {
            for h in handles {
                h.await.unwrap();
            }
        });
    }
    progress.set(format!("{what}: last checkpoint"));
    checkpoints.join().unwrap();
    progress.set(format!("{what}: shutdown"));
    let dispatcher = Arc::try_unwrap(dispatcher).unwrap_or_else(|_| unreachable!());
    let report = dispatcher.shutdown(LONG).unwrap();
    for r in receiving {
        r.join().unwrap();
    }
    let delivered = delivered.lock().unwrap();
    let mut all: Vec<(u32, u32)> = delivered.iter().flatten().copied().collect();
    assert_eq!(report.delivered_total, u64::from(total), "{what}");
    for batch in delivered.iter() {
        for pair in batch.windows(2) {
            assert!(
                pair[0].0 != pair[1].0 || pair[0].1 < pair[1].1,
                "{what}: {pair:?} out of order in one batch"
            );
        }
    }
    all.sort_unstable();
    all.dedup();
    assert_eq!(
        all.len(),
        total as usize,
        "{what}: events lost or duplicated"
    );
}

/// CPU ticks (utime + stime) of one thread of this process.
#[cfg(all(target_os = "linux", feature = "async"))]
fn thread_ticks(tid: &str) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")) else {
        return 0; // the thread ended
    };
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// The calling thread's id.
#[cfg(all(target_os = "linux", feature = "async"))]
fn my_tid() -> String {
    let link = std::fs::read_link("/proc/thread-self").unwrap();
    link.file_name().unwrap().to_string_lossy().into_owned()
}

/// Threads of this process whose name starts with `prefix`.
#[cfg(all(target_os = "linux", feature = "async"))]
fn tids_named(prefix: &str) -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let comm = std::fs::read_to_string(entry.path().join("comm")).ok()?;
            comm.starts_with(prefix)
                .then(|| entry.file_name().to_string_lossy().into_owned())
        })
        .collect()
}

/// Contract: no busy waiting. Every kind of wait is held for a second and
/// the waiting threads' CPU time is measured (their own, so other tests
/// running meanwhile do not count): idle flush workers, a worker in a retry
/// backoff, a producer blocked for room behind a stuck sink, a
/// `flush_and_wait` and a `shutdown` waiting for a stuck sink, a receiver
/// waiting for a batch due in `Duration::MAX`, and async waits (an enqueue
/// future, a stream, an idle async sink driver) on a current-thread runtime.
#[cfg(all(target_os = "linux", feature = "async"))]
#[test]
fn no_wait_spins() {
    use std::sync::mpsc;

    use crate::attack_kit::{Gate, wait_for};
    use dispatcher::Batch;
    use dispatcher::nonblocking::AsyncSink;
    use dispatcher::sink::{self, FlushContext, Retry, SinkError};
    use futures_util::StreamExt;

    struct Idle;
    impl AsyncSink<Ev> for Idle {
        async fn write(&self, _: &Batch<Ev>, _: &FlushContext) -> Result<(), SinkError> {
            Ok(())
        }
    }

    watchdog("no wait spins", |progress| {
        let gate = Arc::new(Gate::default());
        let stuck_sink = |gate: &Arc<Gate>| {
            let gate = Arc::clone(gate);
            sink::from_fn(
                move |_: &Batch<Ev>, _: &FlushContext| -> Result<(), String> {
                    gate.wait(Duration::from_secs(15));
                    Ok(())
                },
            )
        };
        let mut tids: Vec<String> = Vec::new();
        let (tid_tx, tid_rx) = mpsc::channel::<String>();

        // Idle flush workers, short interval.
        let idle = Dispatcher::<Ev>::builder()
            .name("zi")
            .interval(Duration::from_millis(1))
            .flush_workers(2)
            .build_with_sink(stuck_sink(&gate))
            .unwrap();
        // A worker sleeping in a retry backoff of an hour.
        let backoff = Dispatcher::<Ev>::builder()
            .name("zb")
            .interval(LONG)
            .retry(Retry::new(2, LONG, LONG))
            .build_with_sink(sink::from_fn(
                |_: &Batch<Ev>, _: &FlushContext| -> Result<(), String> { Err("down".into()) },
            ))
            .unwrap();
        backoff.producer().try_enqueue(ev(0, 0, 1)).unwrap();
        backoff.flush();
        // A stuck sink; behind it a blocked producer and a checkpoint.
        let stuck = Arc::new(
            Dispatcher::<Ev>::builder()
                .name("zs")
                .interval(LONG)
                .max_buffered_bytes(2)
                .policy(Policy::Block { timeout: LONG })
                .build_with_sink(stuck_sink(&gate))
                .unwrap(),
        );
        stuck.producer().try_enqueue(ev(0, 0, 1)).unwrap();
        stuck.flush();
        stuck.producer().try_enqueue(ev(0, 1, 1)).unwrap();
        let blocked = {
            let (producer, tx) = (stuck.producer(), tid_tx.clone());
            thread::spawn(move || {
                tx.send(my_tid()).unwrap();
                producer.enqueue(ev(1, 0, 1)).is_ok()
            })
        };
        let checkpoint = {
            let (stuck, tx) = (Arc::clone(&stuck), tid_tx.clone());
            thread::spawn(move || {
                tx.send(my_tid()).unwrap();
                stuck.flush_and_wait(LONG).is_ok()
            })
        };
        // A shutdown waiting for a stuck sink.
        let draining = Dispatcher::<Ev>::builder()
            .name("zd")
            .interval(LONG)
            .build_with_sink(stuck_sink(&gate))
            .unwrap();
        draining.producer().try_enqueue(ev(0, 0, 1)).unwrap();
        draining.producer().try_enqueue(ev(0, 1, 1)).unwrap();
        let shutdown = {
            let tx = tid_tx.clone();
            thread::spawn(move || {
                tx.send(my_tid()).unwrap();
                draining.shutdown(LONG).is_ok()
            })
        };
        // A receiver waiting for a batch due in Duration::MAX.
        let (never, never_batches) = Dispatcher::<Ev>::builder()
            .interval(Duration::MAX)
            .build()
            .unwrap();
        never.producer().try_enqueue(ev(0, 0, 1)).unwrap();
        let receiver = {
            let tx = tid_tx.clone();
            thread::spawn(move || {
                tx.send(my_tid()).unwrap();
                never_batches.recv().map(|b| b.len())
            })
        };
        // Async waits on one current-thread runtime.
        let (full, full_batches) = Dispatcher::<Ev>::builder()
            .interval(LONG)
            .max_buffered_bytes(1)
            .policy(Policy::Block { timeout: LONG })
            .build()
            .unwrap();
        full.producer().try_enqueue(ev(0, 0, 1)).unwrap();
        let (async_idle, driver) = Dispatcher::<Ev>::builder()
            .interval(Duration::from_millis(1))
            .build_with_async_sink(Idle)
            .unwrap();
        let waiting = full.async_producer().enqueue(ev(1, 0, 1));
        let (wake_tx, wake_rx) = tokio::sync::oneshot::channel::<()>();
        let runtime = {
            let tx = tid_tx.clone();
            thread::spawn(move || {
                tx.send(my_tid()).unwrap();
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async move {
                    let driver = tokio::spawn(driver);
                    let enqueue = tokio::spawn(waiting);
                    let mut stream = full_batches.into_stream();
                    let streamed =
                        tokio::spawn(async move { stream.next().await.map(|b| b.len()) });
                    let _ = wake_rx.await;
                    (
                        enqueue.await.unwrap().is_ok(),
                        streamed.await.unwrap(),
                        driver.await.is_ok(),
                    )
                })
            })
        };
        drop(tid_tx);
        tids.extend(tid_rx.iter().take(5));
        // A thread names itself once it runs, which a busy host may delay:
        // wait for every flush worker's name (zi has 2, the others 1).
        progress.set("finding the flush workers by name");
        let flush_workers = [
            ("zi-flush", 2),
            ("zb-flush", 1),
            ("zs-flush", 1),
            ("zd-flush", 1),
        ];
        for (prefix, workers) in flush_workers {
            wait_for(&format!("{workers} thread(s) named {prefix}*"), || {
                tids_named(prefix).len() == workers
            });
        }
        thread::sleep(Duration::from_millis(200)); // past any spinning phase
        for (prefix, _) in flush_workers {
            let named = tids_named(prefix);
            assert!(!named.is_empty(), "no thread named {prefix}*");
            tids.extend(named);
        }

        progress.set("measuring one idle second");
        let before: Vec<u64> = tids.iter().map(|t| thread_ticks(t)).collect();
        thread::sleep(Duration::from_secs(1));
        let used: Vec<u64> = tids
            .iter()
            .zip(&before)
            .map(|(t, b)| thread_ticks(t) - b)
            .collect();

        progress.set("waking everything");
        gate.open();
        let _ = wake_tx.send(());
        drop(full);
        drop(async_idle);
        drop(idle);
        drop(backoff);
        drop(never);
        assert!(blocked.join().unwrap());
        assert!(checkpoint.join().unwrap());
        assert!(shutdown.join().unwrap());
        assert_eq!(receiver.join().unwrap(), Ok(1));
        let (enqueued, streamed, drove) = runtime.join().unwrap();
        assert!(!enqueued, "closed while waiting");
        assert_eq!((streamed, drove), (Some(1), true));
        let total: u64 = used.iter().sum();
        println!("no wait spins: {} threads, ticks {used:?}", tids.len());
        assert!(
            total <= 5,
            "{} waiting threads used {total} CPU ticks in an idle second ({used:?}): busy waiting",
            tids.len()
        );
    });
}

/// Contract: when every receiver is dropped, producers blocked for room —
/// threads under Block, `enqueue_timeout` waiters and async futures, on
/// every partition — get `Closed` (with their item) promptly, never `Ok`;
/// and shutdown then returns everything that was accepted.
#[cfg(feature = "async")]
#[test]
fn when_the_last_receiver_leaves_every_waiting_producer_gets_closed_promptly() {
    use futures_util::StreamExt;

    watchdog("last receiver leaves", |progress| {
        let (dispatcher, batches) = Dispatcher::<Ev>::builder()
            .interval(LONG)
            .max_buffered_bytes(8)
            .partitions(4)
            .policy(Policy::Block { timeout: LONG })
            .build()
            .unwrap();
        let filler = dispatcher.producer();
        for seq in 0..8 {
            filler.try_enqueue(ev(99, seq, 1)).unwrap();
        }
        let started = Instant::now();
        let mut waiters = Vec::new();
        for h in 0..6u32 {
            let producer = dispatcher.producer();
            waiters.push(thread::spawn(move || match producer.enqueue(ev(h, 0, 1)) {
                Err(dispatcher::EnqueueError::Closed(back)) => Ok((back.handle, Instant::now())),
                other => Err(format!("blocked producer {h} got {other:?}")),
            }));
        }
        for h in 6..8u32 {
            let producer = dispatcher.producer();
            waiters.push(thread::spawn(move || {
                match producer.enqueue_timeout(ev(h, 0, 1), LONG) {
                    Err(dispatcher::EnqueueTimeoutError::Closed(back)) => {
                        Ok((back.handle, Instant::now()))
                    }
                    other => Err(format!("enqueue_timeout waiter {h} got {other:?}")),
                }
            }));
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let futures: Vec<_> = (8..11u32)
            .map(|h| {
                let producer = dispatcher.async_producer();
                rt.spawn(async move {
                    match producer.enqueue(ev(h, 0, 1)).await {
                        Err(dispatcher::EnqueueError::Closed(back)) => {
                            Ok((back.handle, Instant::now()))
                        }
                        other => Err(format!("async producer {h} got {other:?}")),
                    }
                })
            })
            .collect();
        // Receivers: the original, a clone that timed out waiting on its
        // own thread, and a stream.
        let clone = batches.clone();
        let stream_task = rt.spawn({
            let mut stream = batches.clone().into_stream();
            async move { stream.next().await.map(|b| b.len()) }
        });
        let timed_out = thread::spawn(move || {
            let got = clone
                .recv_timeout(Duration::from_millis(50))
                .map(|b| b.len());
            (got, clone)
        });
        let (got, clone) = timed_out.join().unwrap();
        assert!(got.is_err(), "nothing is sealed");
        thread::sleep(Duration::from_millis(50));
        assert_eq!(dispatcher.stats().accepted, 8, "nothing got in meanwhile");

        progress.set("dropping every receiver");
        stream_task.abort();
        let _ = rt.block_on(stream_task);
        drop(batches);
        let gone = Instant::now();
        drop(clone);
        let mut outcomes: Vec<Result<(u32, Instant), String>> =
            waiters.into_iter().map(|w| w.join().unwrap()).collect();
        rt.block_on(async {
            for f in futures {
                outcomes.push(f.await.unwrap());
            }
        });
        let problems: Vec<String> = outcomes.iter().filter_map(|o| o.clone().err()).collect();
        assert!(problems.is_empty(), "{problems:?}");
        let slowest = outcomes
            .iter()
            .filter_map(|o| o.as_ref().ok())
            .map(|(_, at)| at.saturating_duration_since(gone))
            .max()
            .unwrap();
        assert!(
            slowest < Duration::from_secs(1),
            "a waiter learned it {slowest:?} late"
        );
        let timeout = dispatcher.shutdown(Duration::from_secs(5)).unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "shutdown waited for no receiver"
        );
        assert_eq!(timeout.undelivered.len(), 8, "{:?}", timeout.report);
    });
}
