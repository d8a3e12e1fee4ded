//! The thread hammer's plan (drawn from a seed: producers, partitions,
//! policy, limits, receivers or a sink, chaos, how the round ends) and the
//! load it runs besides the consumers (`attack_hammer.rs`): producer
//! handles making random calls, a stats watcher, a limits flipper and
//! random checkpoints.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use dispatcher::{Dispatcher, Policy, TryEnqueueError};

use super::hammer::{Hev, Id, Log, Seen, draw_weight};

/// How a round ends.
#[derive(Debug, Clone, Copy)]
pub enum End {
    Shutdown(Duration),
    Stop,
}

#[derive(Debug, Clone, Copy)]
pub struct SinkPlan {
    pub workers: usize,
    pub attempts: u32,
    pub fail_pct: u64,
    /// Calls that overrun `flush_timeout` (and then fail).
    pub slow_pct: u64,
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub seed: u64,
    pub producers: usize,
    pub partitions: usize,
    pub policy: Policy,
    pub max_buffered: usize,
    /// Live limits flip between `max_buffered` and this.
    pub flip_to: Option<usize>,
    pub max_batch_items: Option<usize>,
    pub max_batch_bytes: Option<usize>,
    pub interval: Duration,
    /// Pull mode: receiver threads iterating one `&Batches` (0 = one
    /// consumer that sees every batch, in order); plus short-lived clones.
    pub receivers: usize,
    pub churn: bool,
    pub sink: Option<SinkPlan>,
    pub chaos: bool,
    pub run_for: Duration,
    pub end: End,
}

impl Plan {
    pub fn draw(seed: u64, sink: bool, chaos: bool) -> Plan {
        let mut rng = fastrand::Rng::with_seed(seed);
        let max_buffered = match rng.u8(0..4) {
            0 => rng.usize(1..=4),
            1 => rng.usize(5..=64),
            _ => rng.usize(65..=4096),
        };
        Plan {
            seed,
            producers: rng.usize(8..=48),
            partitions: rng.usize(1..=8),
            policy: match rng.u8(0..3) {
                0 => Policy::Reject,
                1 => Policy::Block {
                    timeout: Duration::from_micros(rng.u64(100..=5000)),
                },
                _ => Policy::DropOldest,
            },
            max_buffered,
            flip_to: rng.bool().then(|| rng.usize(1..=max_buffered * 2)),
            max_batch_items: rng.bool().then(|| rng.usize(1..=32)),
            max_batch_bytes: rng.bool().then(|| rng.usize(1..=max_buffered)),
            interval: Duration::from_micros(rng.u64(200..=5000)),
            receivers: if sink { 0 } else { rng.usize(0..=3) },
            churn: !sink && rng.bool(),
            sink: sink.then(|| SinkPlan {
                workers: rng.usize(1..=3),
                attempts: rng.u32(1..=3),
                fail_pct: rng.u64(0..=30),
                slow_pct: rng.u64(0..=5),
            }),
            chaos,
            run_for: Duration::from_millis(rng.u64(20..=80)),
            end: if rng.u8(0..3) == 0 {
                End::Stop
            } else if rng.bool() {
                End::Shutdown(Duration::from_millis(rng.u64(0..=3)))
            } else {
                End::Shutdown(Duration::from_secs(2))
            },
        }
    }

    pub fn single_consumer(&self) -> bool {
        match self.sink {
            Some(sink) => sink.workers == 1,
            None => self.receivers == 0 && !self.churn,
        }
    }
}

/// A producer handle's loop: random calls until told to stop or closed.
/// Also publishes, per handle, the accepted events (for checkpoints).
pub fn hammer_produce(
    producer: dispatcher::Producer<Hev>,
    handle: u32,
    plan: &Plan,
    stop: &AtomicBool,
    seen: &Seen,
    accepted: &Mutex<Vec<u32>>,
) -> Log {
    let mut rng = fastrand::Rng::with_seed(plan.seed ^ (u64::from(handle) << 40));
    let mut log = Log::default();
    let mut seq = 0u32;
    let max = plan.max_buffered;
    let make = |rng: &mut fastrand::Rng, seq: u32| Hev {
        handle,
        seq,
        weight: draw_weight(rng, max),
        chaos: plan.chaos && rng.u8(0..4) == 0,
    };
    while !stop.load(SeqCst) {
        if seq % 8 == 0 {
            thread::yield_now();
        }
        let kind = rng.u8(0..10);
        let group: Vec<Hev> = if kind == 9 {
            (0..rng.u32(1..=4))
                .map(|i| make(&mut rng, seq + i))
                .collect()
        } else {
            vec![make(&mut rng, seq)]
        };
        seq += group.len() as u32;
        let sent = group.clone();
        let outcome = catch_unwind(AssertUnwindSafe(|| -> Result<(), (bool, Vec<Hev>)> {
            let single = || group[0].clone();
            match kind {
                0..=3 => producer.try_enqueue(single()).map_err(|e| {
                    (
                        matches!(e, TryEnqueueError::Closed(_)),
                        vec![e.into_inner()],
                    )
                }),
                4..=5 => producer.enqueue(single()).map_err(|e| {
                    let closed = matches!(e, dispatcher::EnqueueError::Closed(_));
                    (closed, vec![e.into_inner()])
                }),
                6..=8 => {
                    let timeout = Duration::from_micros(rng.u64(0..=2000));
                    producer.enqueue_timeout(single(), timeout).map_err(|e| {
                        let closed = matches!(e, dispatcher::EnqueueTimeoutError::Closed(_));
                        (closed, vec![e.into_inner()])
                    })
                }
                _ => producer
                    .try_enqueue_all(group.clone())
                    .map_err(|e| (matches!(e, TryEnqueueError::Closed(_)), e.into_inner())),
            }
        }));
        let seqs = sent.iter().map(|e| e.seq);
        match outcome {
            Ok(Ok(())) => {
                log.accepted.extend(seqs.clone());
                accepted.lock().unwrap().extend(seqs);
            }
            Ok(Err((closed, back))) => {
                if back != sent {
                    seen.problem(format!("a refusal handed back {back:?} for {sent:?}"));
                }
                log.refused.extend(seqs);
                if closed {
                    break;
                }
            }
            Err(_) => log.uncertain.extend(seqs),
        }
    }
    log
}

/// A stats watcher: the byte bound, continuously.
pub fn hammer_watch(dispatcher: &Dispatcher<Hev>, bound: usize, ending: &AtomicBool, seen: &Seen) {
    while !ending.load(SeqCst) {
        let stats = dispatcher.stats();
        if stats.buffered_bytes > bound || stats.peak_buffered_bytes > bound {
            seen.problem(format!(
                "buffered {} / peak {} bytes above the highest limit {bound}",
                stats.buffered_bytes, stats.peak_buffered_bytes
            ));
            return;
        }
        thread::sleep(Duration::from_micros(100));
    }
}

/// Flips the live limits; survives `weight()` panicking in a re-cut.
pub fn hammer_flip(dispatcher: &Dispatcher<Hev>, plan: &Plan, ending: &AtomicBool) {
    let Some(other) = plan.flip_to else { return };
    let mut rng = fastrand::Rng::with_seed(plan.seed ^ 0xf11f);
    let mut high = false;
    while !ending.load(SeqCst) {
        thread::sleep(Duration::from_micros(rng.u64(100..=2000)));
        high = !high;
        let mut limits = dispatcher.limits();
        limits.max_buffered_bytes = if high { other } else { plan.max_buffered };
        limits.max_batch_bytes = rng.bool().then(|| rng.usize(1..=limits.max_buffered_bytes));
        limits.max_batch_items = rng.bool().then(|| rng.usize(1..=32));
        let _ = catch_unwind(AssertUnwindSafe(|| dispatcher.set_limits(limits).unwrap()));
    }
}

/// Flushes and checkpoints at random. In sink mode without eviction (whose
/// hook runs after the lock is let go) a checkpoint is checked exactly:
/// once `flush_and_wait` returned Ok, every event accepted before the call
/// was written or handed to the error hook.
pub fn hammer_checkpoints(
    dispatcher: &Dispatcher<Hev>,
    plan: &Plan,
    ending: &AtomicBool,
    seen: &Seen,
    accepted: &[Arc<Mutex<Vec<u32>>>],
) {
    let mut rng = fastrand::Rng::with_seed(plan.seed ^ 0xc4ec);
    let exact = plan.sink.is_some() && plan.policy != Policy::DropOldest;
    while !ending.load(SeqCst) {
        thread::sleep(Duration::from_micros(rng.u64(500..=5000)));
        if rng.bool() {
            dispatcher.flush();
            continue;
        }
        let before: Vec<usize> = accepted.iter().map(|a| a.lock().unwrap().len()).collect();
        let timeout = Duration::from_millis(rng.u64(1..=30));
        if dispatcher.flush_and_wait(timeout).is_err() || !exact {
            continue;
        }
        let mut fated: std::collections::HashSet<Id> =
            seen.failed.lock().unwrap().iter().copied().collect();
        fated.extend(seen.delivered.lock().unwrap().iter().flatten().copied());
        for (handle, (list, upto)) in accepted.iter().zip(before).enumerate() {
            let list = list.lock().unwrap();
            if let Some(seq) = list[..upto]
                .iter()
                .find(|&&seq| !fated.contains(&(handle as u32, seq)))
            {
                seen.problem(format!(
                    "flush_and_wait returned Ok, yet event {:?}, accepted before it, \
                     was neither written nor failed",
                    (handle, seq)
                ));
                return;
            }
        }
    }
}
