//! The measured runs the throughput benchmarks and the `peers` example
//! share: P producer threads hand N events of a given size to one consumer
//! through the dispatcher or through a peer a user would pick instead, timed
//! from a common start to the last receipt.

use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering::AcqRel, Ordering::Relaxed};
use std::sync::mpsc::sync_channel;
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use dispatcher::sink::{self, FlushContext};
use dispatcher::{Batch, Builder, Dispatcher, Policy};

pub(crate) mod busy;

/// One measured run: producers, events, event size -> elapsed.
pub(crate) type Run = fn(usize, usize, usize) -> Duration;

/// Bytes either side may hold before producers wait: the 64 MiB of the
/// workload the peers are compared on (and of the soak's default limit); the
/// channels get its item equivalent. Until 2026-12 it was 8 MiB, which the
/// measurement log's (`docs/measurements.md`) earlier tables were measured with.
pub(crate) const BUFFERED_BYTES: usize = 64 * 1024 * 1024;
pub(crate) const BATCH_BYTES: usize = 64 * 1024;
/// The dispatcher's interval in these runs.
pub(crate) const INTERVAL: Duration = Duration::from_millis(1);

/// Events per measured run: 20-40 ms of work on a 2-core machine, so the
/// start (threads, the first batch) and the end (the last batch waits for
/// its interval) weigh in. A `scale` of N (1 to 100) runs N times as many,
/// to compare the steady state.
pub(crate) fn events_per_run(size: usize, scale: usize) -> usize {
    let base = match size {
        0..=256 => 400_000,
        257..=4096 => 100_000,
        _ => 20_000,
    };
    base * scale
}

/// Runs `producers` threads that each send their share of `total` events of
/// `size` bytes through `send`, while `consume` runs on this thread and
/// returns once all are received. Times from a common start to the last receipt.
pub(crate) fn timed_run<S>(
    producers: usize,
    total: usize,
    size: usize,
    make_sender: impl Fn() -> S,
    consume: impl FnOnce(),
) -> Duration
where
    S: FnMut(Vec<u8>) + Send,
{
    timed_run_ending(producers, total, size, make_sender, || {}, consume)
}

/// [`timed_run`], where the last producer to finish calls `ended`: the
/// input is over, as a producer that knows it would say.
fn timed_run_ending<S>(
    producers: usize,
    total: usize,
    size: usize,
    make_sender: impl Fn() -> S,
    ended: impl Fn() + Sync,
    consume: impl FnOnce(),
) -> Duration
where
    S: FnMut(Vec<u8>) + Send,
{
    let sending = AtomicUsize::new(producers);
    let (sending, ended) = (&sending, &ended);
    let start = Arc::new(Barrier::new(producers + 1));
    thread::scope(|scope| {
        for p in 0..producers {
            let mut send = make_sender();
            let start = Arc::clone(&start);
            let share = total / producers + usize::from(p < total % producers);
            scope.spawn(move || {
                start.wait();
                let busy = busy::thread_start();
                for _ in 0..share {
                    send(vec![0u8; size]);
                }
                busy::thread_end(busy);
                if sending.fetch_sub(1, AcqRel) == 1 {
                    ended();
                }
            });
        }
        start.wait();
        let began = Instant::now();
        consume();
        began.elapsed()
    })
}

/// The configuration every dispatcher run shares.
fn bench_builder() -> Builder<Vec<u8>> {
    Dispatcher::<Vec<u8>>::builder()
        .max_buffered_bytes(BUFFERED_BYTES)
        .max_batch_bytes(BATCH_BYTES)
        .interval(INTERVAL)
        .policy(Policy::Block {
            timeout: Duration::from_secs(60),
        })
}

/// Pull mode with the default partitions (four per processor).
pub(crate) fn dispatcher_run(producers: usize, total: usize, size: usize) -> Duration {
    pull_run(bench_builder(), producers, total, size)
}

/// Pull mode: one consumer thread receives from `partitions` partitions.
pub(crate) fn partitioned_run(
    partitions: usize,
    producers: usize,
    total: usize,
    size: usize,
) -> Duration {
    pull_run(
        bench_builder().partitions(partitions),
        producers,
        total,
        size,
    )
}

/// Pull mode: one consumer thread receives every batch.
fn pull_run(builder: Builder<Vec<u8>>, producers: usize, total: usize, size: usize) -> Duration {
    let (dispatcher, batches) = builder.build().expect("valid bench config");
    dispatcher_timed(dispatcher, producers, total, size, || {
        let mut seen = 0;
        while seen < total {
            let batch = batches.recv().expect("bench batch");
            seen += black_box(batch.len());
        }
    })
}

/// [`timed_run`] with producers enqueueing into `dispatcher`; shuts it
/// down (untimed) after.
fn dispatcher_timed(
    dispatcher: Dispatcher<Vec<u8>>,
    producers: usize,
    total: usize,
    size: usize,
    consume: impl FnOnce(),
) -> Duration {
    // One handle cloned into every producer thread, the common pattern:
    // each clone takes the next partition.
    let handle = dispatcher.producer();
    // When the input ends, the open batch goes without waiting out its
    // interval: a consumer of the peers takes what is there.
    let elapsed = timed_run_ending(
        producers,
        total,
        size,
        || {
            let producer = handle.clone();
            move |event| producer.enqueue(event).expect("bench enqueue")
        },
        || dispatcher.flush(),
        consume,
    );
    drop(handle);
    dispatcher
        .shutdown(Duration::from_secs(1))
        .expect("drained");
    elapsed
}

/// Sink mode: the dispatcher's flush worker hands batches to a sink that
/// counts them; the run ends when the sink has seen every event.
pub(crate) fn sink_run(producers: usize, total: usize, size: usize) -> Duration {
    let seen = Arc::new(AtomicUsize::new(0));
    let (done_tx, done_rx) = sync_channel::<()>(1);
    let counted = Arc::clone(&seen);
    let done = Mutex::new(done_tx);
    let dispatcher = bench_builder()
        .build_with_sink(sink::from_fn(
            move |batch: &Batch<Vec<u8>>, _: &FlushContext| {
                let now = counted.fetch_add(black_box(batch.len()), Relaxed) + batch.len();
                if now == total {
                    let _ = done.lock().expect("bench lock").send(());
                }
                Ok::<_, std::convert::Infallible>(())
            },
        ))
        .expect("valid bench config");
    let elapsed = dispatcher_timed(dispatcher, producers, total, size, || {
        done_rx.recv().expect("bench sink done")
    });
    assert_eq!(seen.load(Relaxed), total);
    elapsed
}

pub(crate) fn channel_run(producers: usize, total: usize, size: usize) -> Duration {
    let (tx, rx) = sync_channel::<Vec<u8>>(BUFFERED_BYTES / size);
    timed_run(
        producers,
        total,
        size,
        || {
            let tx = tx.clone();
            move |event| tx.send(event).expect("bench send")
        },
        || {
            for _ in 0..total {
                black_box(rx.recv().expect("bench recv"));
            }
        },
    )
}

/// The peer to beat: a bounded crossbeam channel of the same capacity, its
/// consumer draining it in batches of up to `BATCH_BYTES` (no byte bound,
/// no policies, no ordering per producer).
pub(crate) fn crossbeam_run(producers: usize, total: usize, size: usize) -> Duration {
    crossbeam_timed(producers, total, size, |rx| {
        let mut batch = Vec::with_capacity(BATCH_BYTES / size + 1);
        let mut seen = 0;
        while seen < total {
            let first = rx.recv().expect("bench recv");
            let mut bytes = first.len();
            batch.push(first);
            while bytes < BATCH_BYTES {
                let Ok(event) = rx.try_recv() else { break };
                bytes += event.len();
                batch.push(event);
            }
            seen += batch.len();
            black_box(&batch);
            batch.clear();
        }
    })
}

/// [`timed_run`] over a bounded crossbeam channel of the workload's
/// capacity: the producers send on clones of its sender while `consume`
/// drains its receiver.
pub(crate) fn crossbeam_timed(
    producers: usize,
    total: usize,
    size: usize,
    consume: impl FnOnce(&crossbeam_channel::Receiver<Vec<u8>>),
) -> Duration {
    let (tx, rx) = crossbeam_channel::bounded::<Vec<u8>>(BUFFERED_BYTES / size);
    timed_run(
        producers,
        total,
        size,
        || {
            let tx = tx.clone();
            move |event| tx.send(event).expect("bench send")
        },
        || consume(&rx),
    )
}

/// tokio's bounded mpsc with `blocking_send` from the producer threads and a
/// consumer taking `chunks_timeout` of a batch's worth of events.
pub(crate) fn tokio_run(producers: usize, total: usize, size: usize) -> Duration {
    use tokio_stream::StreamExt;
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(BUFFERED_BYTES / size);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("bench runtime");
    timed_run(
        producers,
        total,
        size,
        || {
            let tx = tx.clone();
            move |event| tx.blocking_send(event).expect("bench send")
        },
        || {
            runtime.block_on(async {
                let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
                let chunks = stream.chunks_timeout(BATCH_BYTES / size, Duration::from_millis(1));
                tokio::pin!(chunks);
                let mut seen = 0;
                while seen < total {
                    let chunk = chunks.next().await.expect("bench chunk");
                    seen += black_box(chunk).len();
                }
            })
        },
    )
}
