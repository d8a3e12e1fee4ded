//! Sharded mode (`Builder::partitions`): several batch builders, each with
//! its own lock, share one `max_buffered_bytes` budget. A model-checked
//! property test (budget never exceeded, per-handle order kept within a
//! partition, every accepted event delivered, evicted or returned exactly
//! once), a 32-producer stress run with a stats watcher, and targeted tests
//! for cross-partition wake-ups, DropOldest's per-partition eviction,
//! interval cuts, sink mode, receiver loss and configuration errors.

#![allow(missing_docs)]

mod common;
mod model;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use common::{Ev, LONG, PROMPTLY, assert_balanced, charge, ev, spawn, with_watchdog};
use dispatcher::sink::{self, FlushContext};
use dispatcher::{
    Batch, Batches, Dispatcher, EnqueueError, FlushReason, Limits, Policy, Producer,
    TryEnqueueError, TryRecvError,
};
use model::{End, Verdict, end, limits};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

/// Generous per-test limit: only a deadlock or a lost wake-up reaches it.
const WATCHDOG: Duration = Duration::from_secs(30);

fn block(timeout: Duration) -> Policy {
    Policy::Block { timeout }
}

/// A partitioned dispatcher that only size limits, flushes and shutdown cut,
/// recording what DropOldest evicts.
fn sharded(
    partitions: usize,
    max_buffered: usize,
    policy: Policy,
) -> (Dispatcher<Ev>, Batches<Ev>, Arc<Mutex<Vec<Ev>>>) {
    let evicted = Arc::new(Mutex::new(Vec::new()));
    let hook = Arc::clone(&evicted);
    let (dispatcher, batches) = Dispatcher::builder()
        .partitions(partitions)
        .interval(LONG)
        .max_buffered_bytes(max_buffered)
        .policy(policy)
        .on_evict(move |e| hook.lock().unwrap().push(e))
        .build()
        .expect("valid config");
    (dispatcher, batches, evicted)
}

// ---------------------------------------------------------------------------
// 1. The property test.
// ---------------------------------------------------------------------------

/// Producer handles per run; handle `h` is the `h`-th `producer()` call, so
/// it lands on partition `h % partitions`.
const HANDLES: usize = 6;

#[derive(Debug, Clone)]
enum Op {
    /// `try_enqueue`, or the policy's waiting form (`enqueue`) when `waiting`.
    Enqueue {
        handle: usize,
        weight: usize,
        waiting: bool,
    },
    EnqueueAll {
        handle: usize,
        weights: Vec<usize>,
    },
    Flush,
    /// `try_recv` this many times.
    Recv(usize),
    /// One blocking `recv_timeout`, used only when a batch is known to be
    /// sealed (right after a flush).
    RecvBlocking,
    SetLimits(Limits),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0..HANDLES, 0usize..=40, prop::bool::weighted(0.1))
            .prop_map(|(handle, weight, waiting)| Op::Enqueue { handle, weight, waiting }),
        2 => (0..HANDLES, vec(0usize..=20, 0..4))
            .prop_map(|(handle, weights)| Op::EnqueueAll { handle, weights }),
        1 => Just(Op::Flush),
        3 => (1usize..=3).prop_map(Op::Recv),
        1 => Just(Op::RecvBlocking),
        1 => limits().prop_map(Op::SetLimits),
    ]
}

fn policy() -> impl Strategy<Value = Policy> {
    prop_oneof![
        Just(Policy::Reject),
        // Single-threaded: a waiting enqueue can only time out, so keep it short.
        Just(block(Duration::from_millis(1))),
        Just(Policy::DropOldest),
    ]
}

/// The dispatcher under test beside a small model: per partition, the
/// accepted events not yet delivered, evicted or returned, oldest first.
/// Batches are not modelled; a received batch must be a prefix of one
/// partition's queue, which checks exactly-once delivery, per-partition
/// order (hence per-handle order) and that a batch never mixes partitions.
struct Run {
    partitions: usize,
    policy: Policy,
    limits: Limits,
    /// The highest `max_buffered_bytes` ever in force.
    highest_max: usize,
    /// Buffered bytes went over a lowered limit and have not come back under.
    over: bool,
    /// Every partition's events were sealed by a flush and nothing was
    /// admitted since: a receive must find a batch if anything is pending.
    all_sealed: bool,
    /// Under DropOldest, never lower the limit below what is buffered (that
    /// case has its own, ignored, test: see `drop_oldest_over_a_lowered_limit`).
    clamp_drop_oldest: bool,
    dispatcher: Dispatcher<Ev>,
    batches: Batches<Ev>,
    handles: Vec<Producer<Ev>>,
    evicted: Arc<Mutex<Vec<Ev>>>,
    pending: Vec<VecDeque<Ev>>,
    next_seq: [u32; HANDLES],
    last_delivered: [Option<u32>; HANDLES],
    /// Accepted events: how often each was delivered, evicted or returned.
    fate: HashMap<(u8, u32), u32>,
    stats: dispatcher::Stats,
}

impl Run {
    fn new(partitions: usize, policy: Policy, limits: Limits, clamp_drop_oldest: bool) -> Self {
        let evicted = Arc::new(Mutex::new(Vec::new()));
        let hook = Arc::clone(&evicted);
        let (dispatcher, batches) = Dispatcher::builder()
            .partitions(partitions)
            .limits(limits)
            .policy(policy)
            .on_evict(move |e| hook.lock().unwrap().push(e))
            .build()
            .expect("valid limits");
        let handles = (0..HANDLES).map(|_| dispatcher.producer()).collect();
        Run {
            partitions,
            policy,
            limits,
            highest_max: limits.max_buffered_bytes,
            over: false,
            all_sealed: false,
            clamp_drop_oldest,
            dispatcher,
            batches,
            handles,
            evicted,
            pending: vec![VecDeque::new(); partitions],
            next_seq: [0; HANDLES],
            last_delivered: [None; HANDLES],
            fate: HashMap::new(),
            stats: dispatcher::Stats::default(),
        }
    }

    fn part_of(&self, handle: usize) -> usize {
        handle % self.partitions
    }

    fn used(&self) -> usize {
        self.stats.buffered_bytes
    }

    fn event(&mut self, handle: usize, weight: usize) -> Ev {
        let seq = &mut self.next_seq[handle];
        *seq += 1;
        ev(handle as u8, *seq - 1, weight)
    }

    /// What admission must decide for `events` from `handle`, and what it
    /// must evict (DropOldest: the oldest of the handle's own partition).
    fn expect(&self, handle: usize, events: &[Ev]) -> (Verdict, usize) {
        let total: usize = events.iter().map(|e| charge(e.weight)).sum();
        let max = self.limits.max_buffered_bytes;
        if total > max {
            return (Verdict::TooLarge, 0);
        }
        if self.used() + total <= max {
            return (Verdict::Accepted, 0);
        }
        if self.policy != Policy::DropOldest {
            return (Verdict::Full, 0);
        }
        let owed = (self.used() + total - max).min(total);
        let own = &self.pending[self.part_of(handle)];
        let own_bytes: usize = own.iter().map(|e| charge(e.weight)).sum();
        if owed > own_bytes {
            return (Verdict::Full, 0); // its own partition cannot free enough
        }
        let (mut freed, mut count) = (0, 0);
        for e in own {
            if freed >= owed {
                break;
            }
            freed += charge(e.weight);
            count += 1;
        }
        (Verdict::Accepted, count)
    }

    fn apply(&mut self, op: Op) -> Result<(), TestCaseError> {
        match op {
            Op::Enqueue {
                handle,
                weight,
                waiting,
            } => {
                let event = self.event(handle, weight);
                let expected = self.expect(handle, std::slice::from_ref(&event));
                let got = self.enqueue(handle, event.clone(), waiting);
                prop_assert_eq!(got, expected.0, "{:?}", event);
                self.after_admission(handle, got, expected.1, vec![event], waiting)?;
            }
            Op::EnqueueAll { handle, weights } => {
                let group: Vec<Ev> = weights.into_iter().map(|w| self.event(handle, w)).collect();
                let expected = self.expect(handle, &group);
                // A clone stays on its handle's partition.
                let got = Verdict::of_group(
                    self.handles[handle].clone().try_enqueue_all(group.clone()),
                    &group,
                )?;
                prop_assert_eq!(got, expected.0, "{:?}", group);
                self.after_admission(handle, got, expected.1, group, false)?;
            }
            Op::Flush => {
                self.dispatcher.flush();
                self.all_sealed = true;
            }
            Op::Recv(n) => {
                for _ in 0..n {
                    match self.batches.try_recv() {
                        Ok(batch) => self.received(&batch)?,
                        Err(TryRecvError::Empty) => {
                            prop_assert!(
                                !self.all_sealed || self.stats.buffered_items == 0,
                                "nothing to receive after a flush, yet {} events pending",
                                self.stats.buffered_items
                            );
                        }
                        Err(TryRecvError::Disconnected) => {
                            return Err(TestCaseError::fail("disconnected while running"));
                        }
                    }
                }
            }
            Op::RecvBlocking if self.all_sealed && self.stats.buffered_items > 0 => {
                let batch = self
                    .batches
                    .recv_timeout(PROMPTLY)
                    .map_err(|e| TestCaseError::fail(format!("sealed batch not received: {e}")))?;
                self.received(&batch)?;
            }
            Op::RecvBlocking => {}
            Op::SetLimits(mut limits) => {
                if self.clamp_drop_oldest && self.policy == Policy::DropOldest {
                    limits.max_buffered_bytes = limits.max_buffered_bytes.max(self.used());
                    limits.max_batch_bytes = limits
                        .max_batch_bytes
                        .map(|b| b.min(limits.max_buffered_bytes));
                }
                self.dispatcher.set_limits(limits).expect("valid limits");
                self.limits = limits;
                self.highest_max = self.highest_max.max(limits.max_buffered_bytes);
                self.over = self.used() > limits.max_buffered_bytes;
                prop_assert_eq!(self.dispatcher.limits(), limits);
            }
        }
        self.check_stats()
    }

    fn enqueue(&self, handle: usize, event: Ev, waiting: bool) -> Verdict {
        let producer = &self.handles[handle];
        let refusal = if waiting {
            producer.enqueue(event).err().map(|e| format!("{e:?}"))
        } else {
            producer.try_enqueue(event).err().map(|e| format!("{e:?}"))
        };
        Verdict::of_refusal(refusal)
    }

    fn after_admission(
        &mut self,
        handle: usize,
        got: Verdict,
        evict: usize,
        events: Vec<Ev>,
        waiting: bool,
    ) -> Result<(), TestCaseError> {
        let part = self.part_of(handle);
        let mut expected_evicted = Vec::new();
        let count = events.len() as u64;
        match got {
            Verdict::Accepted => {
                for _ in 0..evict {
                    let e = self.pending[part].pop_front().expect("modelled");
                    self.stats.buffered_bytes -= charge(e.weight);
                    self.stats.buffered_items -= 1;
                    self.stats.dropped += 1;
                    expected_evicted.push(e);
                }
                for e in events {
                    self.stats.accepted += 1;
                    self.stats.buffered_items += 1;
                    self.stats.buffered_bytes += charge(e.weight);
                    self.fate.insert((e.producer, e.seq), 0);
                    self.pending[part].push_back(e);
                    self.all_sealed = false;
                }
                self.stats.peak_buffered_bytes = self.stats.peak_buffered_bytes.max(self.used());
            }
            Verdict::Full if waiting && matches!(self.policy, Policy::Block { .. }) => {
                self.stats.rejected.timeout += count;
            }
            Verdict::Full => self.stats.rejected.full += count,
            Verdict::TooLarge => self.stats.rejected.too_large += count,
        }
        let hooked = std::mem::take(&mut *self.evicted.lock().unwrap());
        prop_assert_eq!(
            &hooked,
            &expected_evicted,
            "evicted (own partition, oldest first)"
        );
        hooked.iter().try_for_each(|e| self.settle(e))
    }

    /// Counts one fate (delivered, returned or evicted) of an accepted event.
    fn settle(&mut self, e: &Ev) -> Result<(), TestCaseError> {
        match self.fate.get_mut(&(e.producer, e.seq)) {
            Some(count) => *count += 1,
            None => return Err(TestCaseError::fail(format!("{e:?} was never accepted"))),
        }
        Ok(())
    }

    fn received(&mut self, batch: &Batch<Ev>) -> Result<(), TestCaseError> {
        prop_assert!(!batch.is_empty(), "empty batch");
        let part = self.part_of(batch[0].producer as usize);
        prop_assert!(
            batch
                .iter()
                .all(|e| self.part_of(e.producer as usize) == part),
            "a batch mixes partitions: {:?}",
            batch.items()
        );
        let queue = &mut self.pending[part];
        prop_assert!(batch.len() <= queue.len());
        let front: Vec<Ev> = queue.drain(..batch.len()).collect();
        prop_assert_eq!(
            batch.items(),
            &front[..],
            "not the oldest events of partition {}",
            part
        );
        prop_assert_eq!(
            batch.bytes(),
            batch.iter().map(|e| charge(e.weight)).sum::<usize>()
        );
        for e in batch.iter() {
            let last = &mut self.last_delivered[e.producer as usize];
            prop_assert!(
                last.is_none_or(|l| l < e.seq),
                "handle {} out of order",
                e.producer
            );
            *last = Some(e.seq);
            self.stats.buffered_bytes -= charge(e.weight);
            self.stats.buffered_items -= 1;
            self.stats.delivered += 1;
            self.settle(e)?;
        }
        Ok(())
    }

    fn check_stats(&mut self) -> Result<(), TestCaseError> {
        let s = self.dispatcher.stats();
        let m = &self.stats;
        prop_assert_eq!(
            (s.accepted, s.delivered, s.dropped, s.returned, s.failed),
            (m.accepted, m.delivered, m.dropped, m.returned, 0)
        );
        prop_assert_eq!(
            (s.buffered_bytes, s.buffered_items),
            (m.buffered_bytes, m.buffered_items)
        );
        prop_assert_eq!(s.rejected, m.rejected);
        prop_assert_eq!(s.peak_buffered_bytes, m.peak_buffered_bytes, "peak");
        prop_assert_eq!(
            s.accepted,
            s.delivered + s.dropped + s.returned + s.failed + s.buffered_items as u64,
            "stats do not balance: {:?}",
            s
        );
        // The shared budget: over the limit only after it was lowered (which
        // drops nothing), and then no admission may add to it.
        if s.buffered_bytes <= self.limits.max_buffered_bytes {
            self.over = false;
        }
        prop_assert!(
            s.buffered_bytes <= self.limits.max_buffered_bytes || self.over,
            "{} bytes buffered over a limit of {}",
            s.buffered_bytes,
            self.limits.max_buffered_bytes
        );
        prop_assert!(s.peak_buffered_bytes <= self.highest_max);
        Ok(())
    }

    fn finish(mut self, end: End) -> Result<(), TestCaseError> {
        if let End::DrainThenShutdown = end {
            self.dispatcher.flush();
            self.all_sealed = true;
            while self.stats.buffered_items > 0 {
                let batch = self.batches.try_recv().map_err(|e| {
                    TestCaseError::fail(format!("flushed, yet nothing received: {e:?}"))
                })?;
                self.received(&batch)?;
            }
            prop_assert_eq!(self.batches.try_recv().err(), Some(TryRecvError::Empty));
        }
        // Undelivered events come back partition by partition, oldest first.
        let expected_back: Vec<Ev> = self.pending.iter_mut().flat_map(|q| q.drain(..)).collect();
        let producers = self.handles.clone();
        let accepted = self.stats.accepted;
        let back = match end {
            End::Stop => self.dispatcher.stop(),
            End::DropReceiversThenShutdown => {
                drop(self.batches);
                // No receiver left: shutdown returns at once, not after LONG.
                let dispatcher = self.dispatcher;
                spawn(move || dispatcher.shutdown(LONG))
                    .join("shutdown without receivers")
                    .map_or_else(|timeout| timeout.into_inner(), |_| Vec::new())
            }
            _ => match self.dispatcher.shutdown(Duration::ZERO) {
                Ok(report) => {
                    prop_assert_eq!(report.stats.accepted, accepted);
                    prop_assert_eq!(report.delivered_total, self.stats.delivered);
                    assert_balanced(&report.stats);
                    Vec::new()
                }
                Err(timeout) => {
                    prop_assert_eq!(timeout.report.delivered_total, self.stats.delivered);
                    prop_assert_eq!(timeout.report.stats.buffered_bytes, 0);
                    assert_balanced(&timeout.report.stats);
                    timeout.into_inner()
                }
            },
        };
        prop_assert_eq!(&back, &expected_back, "returned events");
        for e in &back {
            *self.fate.get_mut(&(e.producer, e.seq)).expect("accepted") += 1;
        }
        prop_assert!(
            self.fate.values().all(|&n| n == 1),
            "an accepted event was lost or duplicated: {:?}",
            self.fate
                .iter()
                .filter(|(_, n)| **n != 1)
                .collect::<Vec<_>>()
        );
        for producer in producers {
            prop_assert!(matches!(
                producer.try_enqueue(ev(0, u32::MAX, 1)),
                Err(TryEnqueueError::Closed(_))
            ));
        }
        Ok(())
    }
}

fn run_model(
    partitions: usize,
    policy: Policy,
    initial: Limits,
    ops: Vec<Op>,
    end: End,
    clamp_drop_oldest: bool,
) -> Result<(), TestCaseError> {
    let mut run = Run::new(partitions, policy, initial, clamp_drop_oldest);
    for op in ops {
        run.apply(op)?;
    }
    run.finish(end)
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(64))]

    /// The shared budget is never exceeded and per-handle order is kept
    /// within a partition, under every policy (DropOldest never with a limit
    /// lowered below what is buffered: see the ignored test below).
    #[test]
    fn sharded_dispatcher_keeps_the_budget_order_and_every_event(
        partitions in 2usize..=8,
        policy in policy(),
        initial in limits(),
        ops in vec(op(), 1..80),
        end in end(),
    ) {
        run_model(partitions, policy, initial, ops, end, true)?;
    }
}

proptest! {
    #![proptest_config(config(64))]

    /// The same under DropOldest with limits lowered below what is buffered.
    #[test]
    fn drop_oldest_over_a_lowered_limit_keeps_every_event(
        partitions in 2usize..=8,
        initial in limits(),
        ops in vec(op(), 1..80),
        end in end(),
    ) {
        run_model(partitions, Policy::DropOldest, initial, ops, end, false)?;
    }
}

// ---------------------------------------------------------------------------
// Focused cases the property tests found (each once failed; see the notes).
// ---------------------------------------------------------------------------

/// A dispatcher, its receiver, what it evicted, and partition 0's handle.
type OverALoweredLimit = (
    Dispatcher<Ev>,
    Batches<Ev>,
    Arc<Mutex<Vec<Ev>>>,
    dispatcher::Producer<Ev>,
);

/// Two partitions; partition 0 holds ten 10-byte events (100 B), then the
/// limit is lowered to 50 B. Returns partition 0's handle.
fn over_a_lowered_limit() -> OverALoweredLimit {
    let (dispatcher, batches, evicted) = sharded(2, 100, Policy::DropOldest);
    let p0 = dispatcher.producer();
    let _p1 = dispatcher.producer();
    for seq in 0..10 {
        p0.try_enqueue(ev(0, seq, 10)).unwrap();
    }
    let mut limits = dispatcher.limits();
    limits.max_buffered_bytes = 50;
    dispatcher.set_limits(limits).unwrap();
    assert_eq!(dispatcher.stats().buffered_bytes, 100);
    (dispatcher, batches, evicted, p0)
}

/// Without partitions, DropOldest above a lowered limit evicts as much as the
/// event weighs and admits it (buffered bytes never grow). With partitions it
/// must do the same: the budget is taken back for the evicted bytes even
/// over the lowered limit (`State::reserve_after_evicting`). It once evicted
/// and then refused the event as Full.
#[test]
fn drop_oldest_over_a_lowered_limit_either_admits_or_evicts_nothing() {
    let (dispatcher, _batches, evicted, p0) = over_a_lowered_limit();
    let outcome = p0.try_enqueue(ev(0, 10, 10));
    let stats = dispatcher.stats();
    let evicted = evicted.lock().unwrap().clone();
    assert!(
        outcome.is_ok() || (evicted.is_empty() && stats.dropped == 0),
        "refused ({outcome:?}) after evicting {evicted:?}; dropped = {}",
        stats.dropped
    );
    assert_balanced(&stats);
}

/// The group form of the same; and whatever a refused group's admission
/// evicted still reaches `on_evict` (it once was counted as dropped and lost).
#[test]
fn drop_oldest_group_over_a_lowered_limit_hands_every_eviction_to_the_hook() {
    let (dispatcher, _batches, evicted, p0) = over_a_lowered_limit();
    let outcome = p0.try_enqueue_all(vec![ev(0, 10, 10), ev(0, 11, 10)]);
    let stats = dispatcher.stats();
    let hooked = evicted.lock().unwrap().len() as u64;
    assert_eq!(
        hooked, stats.dropped,
        "{} events counted as dropped, {hooked} handed to on_evict ({outcome:?})",
        stats.dropped
    );
}

// ---------------------------------------------------------------------------
// 2. Many producer threads, one shared budget.
// ---------------------------------------------------------------------------

const STRESS_PRODUCERS: u8 = 32;
const STRESS_EVENTS: u32 = 800;
const STRESS_BUDGET: usize = 4 * 1024;
const STRESS_PARTITIONS: usize = 4;

fn stress_weight(producer: u8, seq: u32) -> usize {
    16 + (seq
        .wrapping_mul(2_654_435_761)
        .wrapping_add(u32::from(producer))
        % 48) as usize
}

/// What the stats watcher saw that it must never see.
#[derive(Debug, Default)]
struct Watch {
    samples: u64,
    /// `peak_buffered_bytes` (the shared budget's own peak) over the limit.
    peak_over: Vec<dispatcher::Stats>,
    /// `buffered_bytes` (summed over the partitions) over the limit.
    buffered_over: Vec<dispatcher::Stats>,
    unbalanced: Vec<dispatcher::Stats>,
}

/// Samples `stats()` until `stop`, recording every sample over the budget
/// (buffered or peak) or out of balance.
fn watch(dispatcher: &Dispatcher<Ev>, max: usize, stop: &AtomicBool) -> Watch {
    let mut watch = Watch::default();
    loop {
        let done = stop.load(Ordering::SeqCst);
        let s = dispatcher.stats();
        watch.samples += 1;
        if s.peak_buffered_bytes > max {
            watch.peak_over.push(s);
        }
        if s.buffered_bytes > max {
            watch.buffered_over.push(s);
        }
        if s.accepted != s.delivered + s.dropped + s.returned + s.failed + s.buffered_items as u64 {
            watch.unbalanced.push(s);
        }
        if done {
            return watch;
        }
        thread::sleep(Duration::from_micros(200));
    }
}

/// Runs the load; returns what each receiver got, in its order, and what
/// the watcher saw.
fn stress(receivers: usize) -> (Vec<Vec<(u8, u32)>>, Watch, dispatcher::ShutdownReport) {
    let (dispatcher, batches) = Dispatcher::<Ev>::builder()
        .partitions(STRESS_PARTITIONS)
        .interval(Duration::from_millis(2))
        .max_buffered_bytes(STRESS_BUDGET)
        .max_batch_bytes(512)
        .policy(block(PROMPTLY))
        .build()
        .unwrap();
    let dispatcher = Arc::new(dispatcher);
    let consumers: Vec<_> = (0..receivers)
        .map(|_| {
            let mine = batches.clone();
            spawn(move || {
                let mut got = Vec::new();
                for batch in &mine {
                    let first = batch[0].producer as usize % STRESS_PARTITIONS;
                    assert!(
                        batch
                            .iter()
                            .all(|e| e.producer as usize % STRESS_PARTITIONS == first),
                        "a batch mixes partitions"
                    );
                    assert_eq!(batch.bytes(), batch.iter().map(|e| e.weight).sum::<usize>());
                    got.extend(batch.iter().map(|e| (e.producer, e.seq)));
                }
                got
            })
        })
        .collect();
    drop(batches);
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (dispatcher, stop) = (Arc::clone(&dispatcher), Arc::clone(&stop));
        spawn(move || watch(&dispatcher, STRESS_BUDGET, &stop))
    };
    // Each thread its own handle: producer `p` is on partition `p % 4`.
    let producers: Vec<_> = (0..STRESS_PRODUCERS)
        .map(|p| {
            let producer = dispatcher.producer();
            spawn(move || {
                for seq in 0..STRESS_EVENTS {
                    match producer.enqueue(ev(p, seq, stress_weight(p, seq))) {
                        Ok(()) => {}
                        Err(err) => panic!("producer {p}, seq {seq}: {err:?}"),
                    }
                }
            })
        })
        .collect();
    producers
        .into_iter()
        .for_each(|p| p.join_within(WATCHDOG, "producer"));
    stop.store(true, Ordering::SeqCst);
    let watch = watcher.join("watcher");
    let dispatcher = Arc::into_inner(dispatcher).expect("only owner left");
    let report = dispatcher.shutdown(PROMPTLY).expect("everything delivered");
    let got = consumers
        .into_iter()
        .map(|c| c.join_within(WATCHDOG, "consumer"))
        .collect();
    (got, watch, report)
}

fn assert_exactly_once(got: &[Vec<(u8, u32)>]) {
    let mut seen = HashSet::new();
    for &event in got.iter().flatten() {
        assert!(seen.insert(event), "{event:?} delivered twice");
    }
    let expected = usize::from(STRESS_PRODUCERS) * STRESS_EVENTS as usize;
    assert_eq!(seen.len(), expected, "events lost");
}

fn assert_report(report: &dispatcher::ShutdownReport) {
    let total = u64::from(STRESS_PRODUCERS) * u64::from(STRESS_EVENTS);
    assert_eq!(report.stats.accepted, total);
    assert_eq!(report.delivered_total, total);
    assert_eq!(report.stats.buffered_bytes, 0);
    assert!(report.stats.peak_buffered_bytes <= STRESS_BUDGET);
    assert_balanced(&report.stats);
}

/// Every sample of the watcher balanced, and the peak stayed in budget.
fn assert_watched_clean(watch: &Watch) {
    assert!(
        watch.unbalanced.is_empty(),
        "{:?}",
        watch.unbalanced.first()
    );
    assert!(watch.peak_over.is_empty(), "{:?}", watch.peak_over.first());
}

#[test]
fn many_receivers_deliver_every_event_exactly_once_within_the_shared_budget() {
    with_watchdog(WATCHDOG, "stress, 3 receivers", || {
        let (got, watch, report) = stress(3);
        assert_exactly_once(&got);
        assert_report(&report);
        assert!(watch.samples > 0);
        assert_watched_clean(&watch);
    });
}

#[test]
fn one_receiver_sees_every_producer_handle_in_order() {
    with_watchdog(WATCHDOG, "stress, 1 receiver", || {
        let (got, watch, report) = stress(1);
        assert_exactly_once(&got);
        assert_report(&report);
        let mut last: HashMap<u8, u32> = HashMap::new();
        for &(p, seq) in &got[0] {
            if let Some(previous) = last.insert(p, seq) {
                assert!(previous < seq, "producer {p}: {seq} after {previous}");
            }
        }
        assert_watched_clean(&watch);
    });
}

/// With partitions, `stats().buffered_bytes` is one reading of the shared
/// budget, so a sample never shows more than the limit. (It was once the sum
/// of partition readings taken one after another, which counted bytes freed
/// in one partition and re-admitted in another twice: 4.6-6.5 KiB samples
/// over a 4 KiB budget.)
#[test]
fn sampled_buffered_bytes_never_exceed_the_shared_budget() {
    with_watchdog(WATCHDOG, "stress, sampled gauge", || {
        let (_, watch, _) = stress(3);
        assert!(
            watch.buffered_over.is_empty(),
            "{} of {} samples over {STRESS_BUDGET} B, e.g. {:?}",
            watch.buffered_over.len(),
            watch.samples,
            watch.buffered_over.first()
        );
    });
}

// ---------------------------------------------------------------------------
// 3. Blocked producers wake across partitions.
// ---------------------------------------------------------------------------

#[test]
fn a_producer_blocked_on_one_partition_gets_in_once_another_partition_is_received() {
    with_watchdog(WATCHDOG, "cross-partition wake-up", || {
        let (dispatcher, batches, _) = sharded(2, 100, block(PROMPTLY));
        let a = dispatcher.producer();
        let b = dispatcher.producer();
        a.enqueue(ev(0, 0, 100)).unwrap();
        assert!(matches!(
            b.try_enqueue(ev(1, 0, 10)),
            Err(TryEnqueueError::Full(_))
        ));
        let blocked = spawn(move || b.enqueue(ev(1, 1, 10)));
        // Partition A holds the whole budget; nothing can let B in yet.
        thread::sleep(Duration::from_millis(20));
        assert!(blocked.is_running(), "admitted while the budget was full");
        assert_eq!(dispatcher.stats().accepted, 1);

        dispatcher.flush();
        let first = batches.recv_timeout(PROMPTLY).unwrap();
        assert_eq!(first.items(), [ev(0, 0, 100)]);
        blocked
            .join("producer blocked on partition B")
            .expect("admitted once A's batch was taken");
        dispatcher.flush();
        assert_eq!(
            batches.recv_timeout(PROMPTLY).unwrap().items(),
            [ev(1, 1, 10)]
        );
        let stats = dispatcher.stats();
        assert_eq!((stats.accepted, stats.delivered), (2, 2));
        assert_eq!((stats.rejected.full, stats.rejected.timeout), (1, 0));
        assert_balanced(&stats);
    });
}

#[test]
fn freeing_room_in_one_partition_wakes_producers_blocked_on_every_other() {
    with_watchdog(WATCHDOG, "wake every partition", || {
        let (dispatcher, batches, _) = sharded(4, 100, block(PROMPTLY));
        let a = dispatcher.producer();
        a.enqueue(ev(0, 0, 100)).unwrap();
        // Three producers, on partitions 1, 2 and 3, each waiting for 30 B.
        let blocked: Vec<_> = (1..4u8)
            .map(|p| {
                let producer = dispatcher.producer();
                spawn(move || producer.enqueue(ev(p, 0, 30)))
            })
            .collect();
        thread::sleep(Duration::from_millis(20));
        assert!(blocked.iter().all(common::Watched::is_running));
        // A receiver already waiting when the room is freed.
        let receiver = {
            let batches = batches.clone();
            spawn(move || batches.recv_timeout(PROMPTLY).map(Batch::into_vec))
        };
        dispatcher.flush();
        assert_eq!(receiver.join("receiver").unwrap(), [ev(0, 0, 100)]);
        for producer in blocked {
            producer.join("blocked producer").expect("all 90 B fit");
        }
        let stats = dispatcher.stats();
        assert_eq!((stats.accepted, stats.buffered_bytes), (4, 90));
        let report = dispatcher.shutdown(Duration::ZERO).unwrap_err();
        let mut back = report.into_inner();
        back.sort_by_key(|e| e.producer);
        assert_eq!(back, [ev(1, 0, 30), ev(2, 0, 30), ev(3, 0, 30)]);
    });
}

// ---------------------------------------------------------------------------
// 4. DropOldest evicts only from the admitting partition.
// ---------------------------------------------------------------------------

/// Observed (and documented on `Builder::partitions`): an admission evicts
/// the oldest events of its own partition, never another's; if its own
/// partition holds fewer bytes than it must free, the event (or group) is
/// refused as `Full`, nothing is evicted, and the refusal is counted in
/// `rejected.full` — even when the budget is full of other partitions'
/// events.
#[test]
fn drop_oldest_evicts_only_from_its_own_partition_and_refuses_when_that_is_not_enough() {
    let (dispatcher, batches, evicted) = sharded(3, 100, Policy::DropOldest);
    let a = dispatcher.producer();
    let b = dispatcher.producer();
    let c = dispatcher.producer();
    for seq in 0..3 {
        a.try_enqueue(ev(0, seq, 20)).unwrap();
    }
    b.try_enqueue(ev(1, 0, 20)).unwrap();
    b.try_enqueue(ev(1, 1, 20)).unwrap();
    // Full. A needs 30 B: its own two oldest go, B's (as old) stay.
    a.try_enqueue(ev(0, 3, 30)).unwrap();
    assert_eq!(*evicted.lock().unwrap(), [ev(0, 0, 20), ev(0, 1, 20)]);
    assert_eq!(dispatcher.stats().buffered_bytes, 90);
    // 10 B fit without evicting.
    b.try_enqueue(ev(1, 2, 10)).unwrap();
    assert_eq!(evicted.lock().unwrap().len(), 2);
    // C's partition is empty: it cannot evict anything, so it is refused.
    assert!(matches!(
        c.try_enqueue(ev(2, 0, 1)),
        Err(TryEnqueueError::Full(e)) if e == ev(2, 0, 1)
    ));
    assert!(matches!(c.enqueue(ev(2, 1, 1)), Err(EnqueueError::Full(_))));
    assert!(matches!(
        c.try_enqueue_all(vec![ev(2, 2, 5), ev(2, 3, 5)]),
        Err(TryEnqueueError::Full(group)) if group.len() == 2
    ));
    // B needs 50 B and holds exactly 50: all of it goes.
    b.try_enqueue(ev(1, 3, 50)).unwrap();
    assert_eq!(
        evicted.lock().unwrap()[2..],
        [ev(1, 0, 20), ev(1, 1, 20), ev(1, 2, 10)]
    );
    // A holds 50 B and needs 60: refused, A's events kept.
    assert!(matches!(
        a.try_enqueue(ev(0, 4, 60)),
        Err(TryEnqueueError::Full(_))
    ));
    let stats = dispatcher.stats();
    assert_eq!(evicted.lock().unwrap().len() as u64, stats.dropped);
    assert_eq!(stats.dropped, 5);
    assert_eq!(stats.rejected.full, 5); // 1 + 1 + a group of 2 + 1
    assert_eq!((stats.accepted, stats.buffered_bytes), (8, 100));
    assert!(stats.peak_buffered_bytes <= 100);
    assert_balanced(&stats);
    dispatcher.flush();
    let mut got: Vec<Vec<Ev>> = (0..2)
        .map(|_| batches.try_recv().unwrap().into_vec())
        .collect();
    got.sort_by_key(|batch| batch[0].producer);
    assert_eq!(got, [vec![ev(0, 2, 20), ev(0, 3, 30)], vec![ev(1, 3, 50)]]);
    assert_eq!(batches.try_recv().unwrap_err(), TryRecvError::Empty);
}

// ---------------------------------------------------------------------------
// 5. Interval cuts in every partition.
// ---------------------------------------------------------------------------

const TICK: Duration = Duration::from_millis(30);

fn ticking(partitions: usize) -> (Dispatcher<Ev>, Batches<Ev>) {
    Dispatcher::builder()
        .partitions(partitions)
        .interval(TICK)
        .max_buffered_bytes(1 << 20)
        .build()
        .unwrap()
}

#[test]
fn one_blocked_receiver_gets_every_partitions_batch_on_the_interval() {
    with_watchdog(WATCHDOG, "interval cuts", || {
        let (dispatcher, batches) = ticking(3);
        let receiver = spawn(move || {
            (0..3)
                .map(|_| {
                    let batch = batches.recv().expect("a batch on the interval");
                    (batch.reason(), batch.into_vec())
                })
                .collect::<Vec<_>>()
        });
        // The receiver is (most likely) already asleep: only the interval,
        // in each partition, can cut these.
        thread::sleep(Duration::from_millis(10));
        for p in 0..3u8 {
            dispatcher.producer().try_enqueue(ev(p, 0, 1)).unwrap();
        }
        let mut got = receiver.join("receiver");
        got.sort_by_key(|(_, items)| items[0].producer);
        let expected: Vec<_> = (0..3u8)
            .map(|p| (FlushReason::Interval, vec![ev(p, 0, 1)]))
            .collect();
        assert_eq!(got, expected);
        assert_eq!(dispatcher.stats().flushes.interval, 3);
    });
}

#[test]
fn interval_cuts_reach_a_receiver_that_waits_for_a_later_batch() {
    with_watchdog(WATCHDOG, "staggered interval cuts", || {
        let (dispatcher, batches) = ticking(2);
        let a = dispatcher.producer();
        let b = dispatcher.producer();
        a.try_enqueue(ev(0, 0, 1)).unwrap();
        let first = batches.recv_timeout(PROMPTLY).unwrap();
        assert_eq!(
            (first.reason(), first.items()),
            (FlushReason::Interval, &[ev(0, 0, 1)][..])
        );
        // A receiver waiting with nothing open; B opens a batch meanwhile.
        let receiver = {
            let batches = batches.clone();
            spawn(move || batches.recv_timeout(PROMPTLY).map(Batch::into_vec))
        };
        thread::sleep(Duration::from_millis(10));
        b.try_enqueue(ev(1, 0, 1)).unwrap();
        assert_eq!(receiver.join("receiver").unwrap(), [ev(1, 0, 1)]);
    });
}

// ---------------------------------------------------------------------------
// 6. Sink mode with partitions.
// ---------------------------------------------------------------------------

type Written = Arc<Mutex<Vec<Vec<Ev>>>>;

fn recording_sink(
    written: &Written,
) -> impl Fn(&Batch<Ev>, &FlushContext) -> Result<(), std::io::Error> + Send + Sync + 'static {
    let written = Arc::clone(written);
    move |batch: &Batch<Ev>, _ctx: &FlushContext| {
        written.lock().unwrap().push(batch.to_vec());
        Ok(())
    }
}

fn sink_dispatcher(interval: Duration, written: &Written) -> Dispatcher<Ev> {
    Dispatcher::builder()
        .partitions(4)
        .interval(interval)
        .max_buffered_bytes(2048)
        .max_batch_bytes(256)
        .policy(block(PROMPTLY))
        .flush_workers(2)
        .build_with_sink(sink::from_fn(recording_sink(written)))
        .unwrap()
}

fn produce_into(dispatcher: &Dispatcher<Ev>, producers: u8, events: u32, first_seq: u32) {
    let threads: Vec<_> = (0..producers)
        .map(|p| {
            let producer = dispatcher.producer();
            spawn(move || {
                for seq in first_seq..first_seq + events {
                    producer.enqueue(ev(p, seq, stress_weight(p, seq))).unwrap();
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join("producer"));
}

fn assert_written_once(written: &Written, expected: usize) {
    let written = written.lock().unwrap();
    let mut seen = HashSet::new();
    for e in written.iter().flatten() {
        assert!(seen.insert((e.producer, e.seq)), "{e:?} written twice");
    }
    assert_eq!(seen.len(), expected);
}

fn sink_mode_delivers_everything_once(interval: Duration) {
    let written = Written::default();
    let dispatcher = sink_dispatcher(interval, &written);
    produce_into(&dispatcher, 8, 300, 0);
    dispatcher
        .flush_and_wait(PROMPTLY)
        .expect("every accepted batch written");
    assert_written_once(&written, 8 * 300);
    let stats = dispatcher.stats();
    assert_eq!((stats.delivered, stats.buffered_bytes), (8 * 300, 0));
    assert!(stats.peak_buffered_bytes <= 2048);
    // More, then shutdown.
    produce_into(&dispatcher, 8, 100, 300);
    let report = dispatcher.shutdown(PROMPTLY).expect("drained");
    assert_eq!(report.stats.accepted, 8 * 400);
    assert_eq!(report.delivered_total, report.stats.accepted);
    assert_eq!(report.stats.failed, 0);
    assert_balanced(&report.stats);
    assert_written_once(&written, 8 * 400);
}

#[test]
fn sink_workers_take_from_every_partition_and_deliver_everything_once() {
    with_watchdog(WATCHDOG, "sink mode, short interval", || {
        sink_mode_delivers_everything_once(Duration::from_millis(20));
    });
}

/// With a long interval, `flush_and_wait` must not depend on time: sealing
/// for it signals the shared pool like `flush` does, so flush workers and
/// `recv()` callers asleep in `Pool::wait_for_batch` take the batch at once.
/// (It once notified only the partition's own condvar, and the call ran into
/// its timeout with a 1 h interval.)
#[test]
fn sink_flush_and_wait_with_a_long_interval_returns_without_waiting_for_it() {
    with_watchdog(WATCHDOG, "sink flush_and_wait, long interval", || {
        let written = Written::default();
        let dispatcher = sink_dispatcher(LONG, &written);
        dispatcher.producer().enqueue(ev(0, 0, 10)).unwrap();
        thread::sleep(Duration::from_millis(20)); // let the workers go to sleep
        let waited = dispatcher.flush_and_wait(Duration::from_secs(2));
        let seen = written.lock().unwrap().clone();
        let _ = dispatcher.stop();
        assert!(waited.is_ok(), "{waited:?}; written: {seen:?}");
    });
}

/// The pull-mode form of the same: a receiver blocked in `recv()`.
#[test]
fn pull_flush_and_wait_with_a_long_interval_wakes_a_blocked_receiver() {
    with_watchdog(WATCHDOG, "pull flush_and_wait, long interval", || {
        let (dispatcher, batches, _) = sharded(2, 1 << 20, Policy::Reject);
        let receiver = spawn(move || batches.recv().map(Batch::into_vec));
        dispatcher.producer().try_enqueue(ev(0, 0, 10)).unwrap();
        thread::sleep(Duration::from_millis(20)); // let the receiver go to sleep
        let waited = dispatcher.flush_and_wait(Duration::from_secs(2));
        assert_eq!(receiver.join("receiver").unwrap(), [ev(0, 0, 10)]);
        assert!(waited.is_ok(), "{waited:?}");
    });
}

#[test]
fn flush_and_wait_with_a_long_interval_and_no_blocked_receiver() {
    // Without anyone asleep the batches are found by the next look.
    let (dispatcher, batches, _) = sharded(3, 1 << 20, Policy::Reject);
    let receiver = spawn(move || {
        let mut got = Vec::new();
        while got.len() < 3 {
            match batches.try_recv() {
                Ok(batch) => got.extend(batch.into_vec()),
                Err(_) => thread::sleep(Duration::from_millis(1)),
            }
        }
        got
    });
    for p in 0..3u8 {
        dispatcher.producer().try_enqueue(ev(p, 0, 10)).unwrap();
    }
    dispatcher
        .flush_and_wait(PROMPTLY)
        .expect("taken by the polling receiver");
    assert_eq!(receiver.join("receiver").len(), 3);
}

// ---------------------------------------------------------------------------
// 7. Losing every receiver.
// ---------------------------------------------------------------------------

#[test]
fn dropping_every_receiver_closes_admission_in_all_partitions() {
    let (dispatcher, batches, _) = sharded(4, 1 << 20, Policy::Reject);
    let producers: Vec<_> = (0..4).map(|_| dispatcher.producer()).collect();
    for (p, producer) in producers.iter().enumerate() {
        producer.try_enqueue(ev(p as u8, 0, 10)).unwrap();
    }
    let clone = batches.clone();
    drop(batches);
    // One receiver left: still open everywhere.
    for (p, producer) in producers.iter().enumerate() {
        producer.try_enqueue(ev(p as u8, 1, 10)).unwrap();
    }
    drop(clone);
    for (p, producer) in producers.iter().enumerate() {
        let p = p as u8;
        assert!(matches!(
            producer.try_enqueue(ev(p, 2, 10)),
            Err(TryEnqueueError::Closed(_))
        ));
        assert!(matches!(
            producer.enqueue(ev(p, 3, 10)),
            Err(EnqueueError::Closed(_))
        ));
        assert!(matches!(
            producer.try_enqueue_all(vec![ev(p, 4, 1)]),
            Err(TryEnqueueError::Closed(_))
        ));
    }
    // A handle created afterwards lands on a closed partition too.
    assert!(matches!(
        dispatcher.producer().try_enqueue(ev(9, 0, 1)),
        Err(TryEnqueueError::Closed(_))
    ));
    let stats = dispatcher.stats();
    assert_eq!((stats.accepted, stats.rejected.closed), (8, 13));
    // Shutdown does not wait for receivers that are gone.
    let timeout = spawn(move || dispatcher.shutdown(LONG))
        .join("shutdown without receivers")
        .expect_err("nobody took anything");
    assert_eq!(timeout.report.stats.returned, 8);
    assert_balanced(&timeout.report.stats);
    let expected: Vec<Ev> = (0..4u8)
        .flat_map(|p| [ev(p, 0, 10), ev(p, 1, 10)])
        .collect();
    assert_eq!(
        timeout.into_inner(),
        expected,
        "partition by partition, oldest first"
    );
}

/// Producers blocked for room (Block policy) must learn promptly that the
/// last receiver left (or that shutdown closed admission) and get `Closed`.
///
/// With partitions they wait in `Pool::wait_for_room`; `Lanes::close` closes
/// the pool first, which wakes every waiter and keeps any from sleeping
/// again, then the partitions one by one. (Closing only the partitions once
/// left a producer woken by partition 0's close to go back to sleep before
/// its own partition closed: about 1 round in 15 kept a producer blocked
/// until its Block deadline.)
#[test]
fn producers_blocked_on_other_partitions_learn_that_the_last_receiver_left() {
    with_watchdog(
        Duration::from_secs(60),
        "blocked producers, receivers dropped",
        || {
            const ROUNDS: usize = 30;
            let mut missed = Vec::new();
            for round in 0..ROUNDS {
                let (dispatcher, batches, _) = sharded(8, 100, block(LONG));
                dispatcher.producer().enqueue(ev(0, 0, 100)).unwrap();
                // Two producers on each of partitions 1..=7 (skip handles 8 and
                // 16, which would be on partition 0 with the full budget).
                let blocked: Vec<_> = (1..16u8)
                    .map(|p| (p, dispatcher.producer()))
                    .filter(|(p, _)| p % 8 != 0)
                    .map(|(p, producer)| spawn(move || producer.enqueue(ev(p, 0, 10))))
                    .collect();
                thread::sleep(Duration::from_millis(20));
                drop(batches);
                // Generous: a woken producer answers in microseconds.
                let (done, stuck): (Vec<_>, Vec<_>) = blocked
                    .into_iter()
                    .map(|producer| producer.try_join_within(Duration::from_secs(1)))
                    .partition(Result::is_ok);
                if !stuck.is_empty() {
                    missed.push(round);
                }
                // Shutdown closes (and wakes) again, which frees any stuck one.
                let back = dispatcher.shutdown(LONG).unwrap_err().into_inner();
                assert_eq!(back, [ev(0, 0, 100)]);
                for outcome in done.into_iter().filter_map(Result::ok) {
                    assert!(
                        matches!(outcome, Err(EnqueueError::Closed(_))),
                        "{outcome:?}"
                    );
                }
                for producer in stuck.into_iter().filter_map(Result::err) {
                    let outcome = producer.join("producer freed by shutdown");
                    assert!(
                        matches!(outcome, Err(EnqueueError::Closed(_))),
                        "{outcome:?}"
                    );
                }
            }
            assert!(
                missed.is_empty(),
                "rounds {missed:?} of {ROUNDS}: a blocked producer missed the close"
            );
        },
    );
}

/// What does hold: a producer blocked on the only other partition when the
/// receivers go is never admitted, and shutdown returns the held events.
#[test]
fn after_the_last_receiver_left_a_blocked_producer_is_never_admitted() {
    with_watchdog(WATCHDOG, "blocked producer, receivers dropped", || {
        let (dispatcher, batches, _) = sharded(2, 100, block(Duration::from_millis(200)));
        dispatcher.producer().enqueue(ev(0, 0, 100)).unwrap();
        let producer = dispatcher.producer();
        let blocked = spawn(move || producer.enqueue(ev(1, 0, 10)));
        thread::sleep(Duration::from_millis(20));
        drop(batches);
        // `Closed` at once, or (the lost wake-up above) `Timeout` after
        // 200 ms; never admitted.
        let refused = blocked.join("blocked producer");
        assert!(
            matches!(
                refused,
                Err(EnqueueError::Closed(_) | EnqueueError::Timeout(_))
            ),
            "{refused:?}"
        );
        let stats = dispatcher.stats();
        assert_eq!(stats.accepted, 1);
        let back = dispatcher.shutdown(LONG).unwrap_err().into_inner();
        assert_eq!(back, [ev(0, 0, 100)]);
    });
}

// ---------------------------------------------------------------------------
// 8. Configuration.
// ---------------------------------------------------------------------------

#[test]
fn partitions_out_of_range_are_refused_by_name() {
    for n in [0, 257, usize::MAX] {
        let err = Dispatcher::<Ev>::builder()
            .partitions(n)
            .build()
            .unwrap_err();
        assert_eq!(err.field(), "partitions", "{n}");
        assert_eq!(err.value(), n.to_string());
        assert_eq!(err.allowed(), "1 ..= 256");
        let err = Dispatcher::<Ev>::builder()
            .partitions(n)
            .build_with_sink(sink::from_fn(|_: &Batch<Ev>, _: &FlushContext| {
                Ok::<_, std::io::Error>(())
            }))
            .unwrap_err();
        assert_eq!(err.field(), "partitions", "{n}");
    }
    for n in [1, 2, 256] {
        let (dispatcher, batches) = Dispatcher::<Ev>::builder().partitions(n).build().unwrap();
        // Every partition admits; the round-robin wraps around.
        for p in 0..=n {
            dispatcher
                .producer()
                .try_enqueue(ev(0, p as u32, 1))
                .unwrap();
        }
        dispatcher.flush();
        let batches: Vec<_> = batches.try_iter_all();
        assert_eq!(batches.len(), n, "one batch per partition");
        assert_eq!(batches.iter().map(Vec::len).sum::<usize>(), n + 1);
    }
}

trait TryIterAll {
    fn try_iter_all(&self) -> Vec<Vec<Ev>>;
}

impl TryIterAll for Batches<Ev> {
    /// Every batch ready now.
    fn try_iter_all(&self) -> Vec<Vec<Ev>> {
        std::iter::from_fn(|| self.try_recv().ok().map(Batch::into_vec)).collect()
    }
}

// ---------------------------------------------------------------------------
// 5 and 9, async: the stream and `enqueue().await` across partitions.
// ---------------------------------------------------------------------------

#[cfg(feature = "async")]
mod nonblocking {
    use super::*;
    use dispatcher::nonblocking::AsyncSink;
    use dispatcher::sink::SinkError;
    use futures_util::StreamExt;

    fn current_thread() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    }

    #[test]
    fn the_stream_gets_every_partitions_batch_on_the_interval() {
        with_watchdog(WATCHDOG, "stream interval cuts", || {
            current_thread().block_on(async {
                let (dispatcher, batches) = ticking(3);
                let mut stream = batches.into_stream();
                for p in 0..3u8 {
                    dispatcher.producer().try_enqueue(ev(p, 0, 1)).unwrap();
                }
                // Nothing else happens: only the stream's timer can cut them.
                let mut got = Vec::new();
                for _ in 0..3 {
                    let batch = tokio::time::timeout(PROMPTLY, stream.next())
                        .await
                        .expect("a batch on the interval")
                        .expect("not closed");
                    got.push((batch.reason(), batch.into_vec()));
                }
                got.sort_by_key(|(_, items)| items[0].producer);
                let expected: Vec<_> = (0..3u8)
                    .map(|p| (FlushReason::Interval, vec![ev(p, 0, 1)]))
                    .collect();
                assert_eq!(got, expected);
                // A batch opened while the stream waits is cut on time too.
                let waiting = tokio::spawn(async move {
                    let batch = stream.next().await.expect("one more batch");
                    (batch.reason(), batch.into_vec(), stream)
                });
                tokio::time::sleep(Duration::from_millis(5)).await;
                dispatcher.producer().try_enqueue(ev(1, 1, 1)).unwrap();
                let (reason, items, mut stream) = tokio::time::timeout(PROMPTLY, waiting)
                    .await
                    .expect("cut on the interval")
                    .unwrap();
                assert_eq!((reason, items), (FlushReason::Interval, vec![ev(1, 1, 1)]));
                drop(dispatcher);
                assert!(stream.next().await.is_none(), "closed and drained");
            });
        });
    }

    #[test]
    fn an_async_enqueue_on_one_partition_waits_until_another_partitions_batch_is_taken() {
        with_watchdog(WATCHDOG, "async enqueue across partitions", || {
            current_thread().block_on(async {
                let (dispatcher, batches) = Dispatcher::<Ev>::builder()
                    .partitions(2)
                    .interval(LONG)
                    .max_buffered_bytes(8)
                    .policy(block(PROMPTLY))
                    .build()
                    .unwrap();
                let a = dispatcher.async_producer();
                let b = dispatcher.async_producer();
                a.enqueue(ev(0, 0, 8)).await.unwrap();
                let waiting = tokio::spawn(async move { b.enqueue(ev(1, 0, 4)).await });
                tokio::time::sleep(Duration::from_millis(20)).await;
                assert!(!waiting.is_finished(), "admitted while the budget was full");
                assert_eq!(dispatcher.stats().accepted, 1);
                let mut stream = batches.into_stream();
                dispatcher.flush();
                let first = stream.next().await.unwrap();
                assert_eq!(first.items(), [ev(0, 0, 8)]);
                tokio::time::timeout(PROMPTLY, waiting)
                    .await
                    .expect("the waiting enqueue completes once A's batch is taken")
                    .unwrap()
                    .unwrap();
                dispatcher.flush();
                assert_eq!(stream.next().await.unwrap().items(), [ev(1, 0, 4)]);
                let stats = dispatcher.stats();
                assert_eq!((stats.accepted, stats.delivered), (2, 2));
                assert_eq!(stats.rejected.timeout, 0);
            });
        });
    }

    #[test]
    fn async_and_blocking_handles_share_the_round_robin() {
        let (dispatcher, batches, _) = sharded(2, 1 << 20, Policy::Reject);
        dispatcher.producer().try_enqueue(ev(0, 0, 1)).unwrap();
        dispatcher
            .async_producer()
            .try_enqueue(ev(1, 0, 1))
            .unwrap();
        dispatcher.flush();
        let got = batches.try_iter_all();
        assert_eq!(got.len(), 2, "two partitions, one batch each: {got:?}");
    }

    struct Recording(Mutex<Vec<Vec<Ev>>>);

    impl AsyncSink<Ev> for Recording {
        async fn write(&self, batch: &Batch<Ev>, _ctx: &FlushContext) -> Result<(), SinkError> {
            tokio::task::yield_now().await;
            self.0.lock().unwrap().push(batch.to_vec());
            Ok(())
        }
    }

    #[test]
    fn the_async_sink_driver_takes_from_every_partition() {
        with_watchdog(WATCHDOG, "async sink, partitions", || {
            current_thread().block_on(async {
                let sink = Arc::new(Recording(Mutex::new(Vec::new())));
                let (dispatcher, driver) = Dispatcher::<Ev>::builder()
                    .partitions(3)
                    .interval(Duration::from_millis(5))
                    .max_buffered_bytes(256)
                    .max_batch_items(4)
                    .policy(block(PROMPTLY))
                    .flush_workers(2)
                    .build_with_async_sink(Arc::clone(&sink))
                    .unwrap();
                let driver = tokio::spawn(driver);
                let producers: Vec<_> = (0..6u8)
                    .map(|p| {
                        let producer = dispatcher.async_producer();
                        tokio::spawn(async move {
                            for seq in 0..50 {
                                producer.enqueue(ev(p, seq, 10)).await.unwrap();
                            }
                        })
                    })
                    .collect();
                for producer in producers {
                    producer.await.unwrap();
                }
                let report = tokio::time::timeout(PROMPTLY, dispatcher.shutdown_async(PROMPTLY))
                    .await
                    .expect("shutdown returns")
                    .expect("everything written");
                assert_eq!(report.stats.accepted, 300);
                assert_eq!(report.delivered_total, 300);
                assert!(report.stats.peak_buffered_bytes <= 256);
                tokio::time::timeout(PROMPTLY, driver)
                    .await
                    .expect("the driver ends after shutdown")
                    .unwrap();
                let written = sink.0.lock().unwrap();
                let mut seen = HashSet::new();
                for batch in written.iter() {
                    let part = batch[0].producer % 3;
                    assert!(batch.iter().all(|e| e.producer % 3 == part));
                    for e in batch {
                        assert!(seen.insert((e.producer, e.seq)), "{e:?} twice");
                    }
                }
                assert_eq!(seen.len(), 300);
            });
        });
    }
}
