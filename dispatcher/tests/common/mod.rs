//! Helpers shared by the integration tests: a test event that carries its
//! producer and sequence number, and watchdogs so a deadlock fails a test
//! instead of hanging the suite.

#![allow(dead_code, missing_docs, unreachable_pub)]

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use dispatcher::Weight;

pub mod sink_kit;

/// A test event: who produced it, its per-producer sequence number, and the
/// weight admission should charge (0 is charged as 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ev {
    pub producer: u8,
    pub seq: u32,
    pub weight: usize,
}

impl Weight for Ev {
    fn weight(&self) -> usize {
        self.weight
    }
}

pub fn ev(producer: u8, seq: u32, weight: usize) -> Ev {
    Ev {
        producer,
        seq,
        weight,
    }
}

/// What admission charges: the weight, at least one byte.
pub fn charge(weight: usize) -> usize {
    weight.max(1)
}

/// Generous bound for anything that should finish "promptly": only a
/// deadlock or a lost wake-up can reach it.
pub const PROMPTLY: Duration = Duration::from_secs(10);

/// A thread whose result is awaited with a time limit.
pub struct Watched<T> {
    rx: mpsc::Receiver<T>,
    handle: Option<thread::JoinHandle<()>>,
}

/// Runs `f` on a new thread.
pub fn spawn<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Watched<T> {
    let (tx, rx) = mpsc::sync_channel(1);
    let handle = thread::spawn(move || {
        let _ = tx.send(f());
    });
    Watched {
        rx,
        handle: Some(handle),
    }
}

impl<T> Watched<T> {
    /// The thread's result; panics (with the thread's own panic, if it
    /// panicked) or fails after `limit` instead of hanging.
    pub fn join_within(mut self, limit: Duration, what: &str) -> T {
        match self.rx.recv_timeout(limit) {
            Ok(value) => {
                let _ = self.handle.take().map(thread::JoinHandle::join);
                value
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let handle = self.handle.take().expect("joined once");
                match handle.join() {
                    Err(panic) => std::panic::resume_unwind(panic),
                    Ok(()) => panic!("{what}: thread ended without a result"),
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                panic!("{what}: no result within {limit:?} (deadlock or lost wake-up?)")
            }
        }
    }

    pub fn join(self, what: &str) -> T {
        self.join_within(PROMPTLY, what)
    }

    /// The result if the thread finished within `limit`; otherwise gives the
    /// handle back so the caller can unblock the thread and join it later.
    pub fn try_join_within(mut self, limit: Duration) -> Result<T, Self> {
        match self.rx.recv_timeout(limit) {
            Ok(value) => {
                let _ = self.handle.take().map(thread::JoinHandle::join);
                Ok(value)
            }
            Err(mpsc::RecvTimeoutError::Timeout) => Err(self),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let handle = self.handle.take().expect("joined once");
                match handle.join() {
                    Err(panic) => std::panic::resume_unwind(panic),
                    Ok(()) => panic!("thread ended without a result"),
                }
            }
        }
    }

    /// True while the thread has not produced its result.
    pub fn is_running(&self) -> bool {
        self.handle
            .as_ref()
            .is_some_and(|handle| !handle.is_finished())
    }
}

/// Runs a whole test body on its own thread and fails if it does not finish
/// within `limit`, so a deadlock in the code under test cannot hang the suite.
pub fn with_watchdog<T: Send + 'static>(
    limit: Duration,
    what: &str,
    body: impl FnOnce() -> T + Send + 'static,
) -> T {
    spawn(body).join_within(limit, what)
}

/// Long enough that time never cuts a batch during a test.
pub const LONG: Duration = Duration::from_secs(3600);

/// A dispatcher that only size limits, flushes and shutdown cut.
pub fn build(
    policy: dispatcher::Policy,
    max_buffered: usize,
) -> (dispatcher::Dispatcher<Ev>, dispatcher::Batches<Ev>) {
    dispatcher::Dispatcher::builder()
        .interval(LONG)
        .max_buffered_bytes(max_buffered)
        .policy(policy)
        .build()
        .expect("valid config")
}

/// A builder with a long interval and 1 MiB buffered.
pub fn builder() -> dispatcher::Builder<Ev> {
    dispatcher::Dispatcher::builder()
        .interval(LONG)
        .max_buffered_bytes(1 << 20)
}

/// The sequence numbers of `events`, in order.
pub fn seqs<'a>(events: impl IntoIterator<Item = &'a Ev>) -> Vec<u32> {
    events.into_iter().map(|e| e.seq).collect()
}

/// Polls `cond` every millisecond until it holds; fails after `limit`.
pub fn wait_for(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + limit;
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: not within {limit:?}"
        );
        thread::sleep(Duration::from_millis(1));
    }
}

/// Every accepted event is exactly one of delivered, dropped, returned,
/// failed or still buffered.
pub fn assert_balanced(stats: &dispatcher::Stats) {
    assert_eq!(
        stats.accepted,
        stats.delivered
            + stats.dropped
            + stats.returned
            + stats.failed
            + stats.buffered_items as u64,
        "accepted != delivered + dropped + returned + failed + buffered: {stats:?}"
    );
}

/// A gate a blocking sink waits at until the test opens it.
#[derive(Default)]
pub struct Gate {
    open: std::sync::Mutex<bool>,
    changed: std::sync::Condvar,
}

impl Gate {
    pub fn new() -> std::sync::Arc<Self> {
        std::sync::Arc::default()
    }

    /// Waits until the gate is open; fails after `limit` so a test that
    /// forgets to open it does not hang.
    pub fn wait(&self, limit: Duration) {
        assert!(
            self.opened_within(limit),
            "gate never opened within {limit:?}"
        );
    }

    /// Waits until the gate is open or `limit` passes; whether it opened.
    pub fn opened_within(&self, limit: Duration) -> bool {
        let deadline = std::time::Instant::now() + limit;
        let mut open = self.open.lock().unwrap();
        while !*open {
            let now = std::time::Instant::now();
            if now >= deadline {
                return false;
            }
            open = self.changed.wait_timeout(open, deadline - now).unwrap().0;
        }
        true
    }

    pub fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.changed.notify_all();
    }
}

/// Sink retries with a backoff short enough not to slow the tests down.
pub fn quick_retry(max_attempts: u32) -> dispatcher::sink::Retry {
    dispatcher::sink::Retry::new(
        max_attempts,
        Duration::from_millis(1),
        Duration::from_millis(2),
    )
}

/// A sink that fails the first attempt of every batch and takes the second.
pub fn fails_first_attempt<T: 'static>() -> impl dispatcher::sink::Sink<T> {
    dispatcher::sink::from_fn(
        |_batch: &dispatcher::Batch<T>, ctx: &dispatcher::sink::FlushContext| {
            if ctx.attempt() == 1 {
                Err(std::io::Error::other("first attempt fails"))
            } else {
                Ok(())
            }
        },
    )
}

/// Generous per-test limit for sharded tests: only a deadlock or a lost
/// wake-up reaches it.
pub const WATCHDOG: Duration = Duration::from_secs(30);

/// The Block policy with this timeout.
pub fn block(timeout: Duration) -> dispatcher::Policy {
    dispatcher::Policy::Block { timeout }
}

/// A partitioned dispatcher that only size limits, flushes and shutdown cut,
/// recording what DropOldest evicts.
pub fn sharded(
    partitions: usize,
    max_buffered: usize,
    policy: dispatcher::Policy,
) -> (
    dispatcher::Dispatcher<Ev>,
    dispatcher::Batches<Ev>,
    std::sync::Arc<std::sync::Mutex<Vec<Ev>>>,
) {
    let evicted = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let hook = std::sync::Arc::clone(&evicted);
    let (dispatcher, batches) = dispatcher::Dispatcher::builder()
        .partitions(partitions)
        .interval(LONG)
        .max_buffered_bytes(max_buffered)
        .policy(policy)
        .on_evict(move |e| hook.lock().unwrap().push(e))
        .build()
        .expect("valid config");
    (dispatcher, batches, evicted)
}

/// A spread of event weights (16..64 B), the same for the same producer and
/// sequence number.
pub fn stress_weight(producer: u8, seq: u32) -> usize {
    16 + (seq
        .wrapping_mul(2_654_435_761)
        .wrapping_add(u32::from(producer))
        % 48) as usize
}

/// Every batch ready now, in order.
pub fn ready(batches: &dispatcher::Batches<Ev>) -> Vec<dispatcher::Batch<Ev>> {
    std::iter::from_fn(|| batches.try_recv().ok()).collect()
}

/// The distinct producers (the "keys") of some events.
pub fn keys<'a>(events: impl IntoIterator<Item = &'a Ev>) -> std::collections::BTreeSet<u8> {
    events.into_iter().map(|e| e.producer).collect()
}
