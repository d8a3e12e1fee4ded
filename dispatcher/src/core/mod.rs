//! The dispatcher's shared core: its partitions, the byte budget they share,
//! the signals waiters wait on, and the operations that span partitions.
//!
//! - Each partition is a complete batch builder behind its own lock
//!   ([`guard`]); producer handles are spread over them, one partition per
//!   handle (see [`Core::next_partition`]).
//! - Bytes are admitted against one [`Budget`] (a compare-and-swap, which
//!   also carries "closed").
//! - Three [`Signal`]s carry all the news: room freed (the budget's),
//!   a batch ready, a batch settled. Every wait in the crate is
//!   [`Signal::wait`] (or its async twin) with a check; every change that
//!   can end a wait happens under a partition [`Guard`], which notifies
//!   when it lets go, or in the budget, which notifies itself.
//!
//! Admission lives in [`admit`], taking batches in [`receive`], their
//! settlement and the checkpoints that wait for it in [`settle`].

use std::sync::Arc;
use std::time::Instant;

use crossbeam_utils::CachePadded;

use crate::budget::Budget;
use crate::config::{EvictHook, Limits, Policy};
use crate::hooks::{Hooks, ItemObserver};
use crate::signal::{Check, Signal};
use crate::sink::ErrorHook;
use crate::state::State;
use crate::stats::Stats;
use crate::sync::{AtomicBool, AtomicU64, AtomicUsize, Mutex, Ordering::Relaxed, Ordering::SeqCst};
use crate::undelivered::Undelivered;

pub(crate) mod admit;
mod guard;
pub(crate) mod receive;
mod settle;
#[cfg(feature = "spill")]
pub(crate) mod spill;

pub(crate) use guard::{Guard, Partition};

/// Partitions lease budget bytes only under limits of at least this.
const LEASE_FROM: usize = 1 << 20;
/// The most a partition leases at a time.
const LEASE_MAX: usize = 16 * 1024;

pub(crate) struct Core<T> {
    parts: Box<[Partition<T>]>,
    /// What partitions' [`look_at`](Partition::look_at) instants and
    /// sealed batches' stamps count from.
    pub(crate) epoch: Instant,
    pub(crate) budget: Budget,
    /// A batch was sealed, opened or requeued, or admission closed.
    ready: Signal,
    /// A batch left or settled, or the last receiver went away.
    settled: Signal,
    /// Fixed at build time, so reading it needs no lock.
    pub(crate) policy: Policy,
    /// What an event is charged (fixed at build time; partitions hold a copy).
    pub(crate) weighing: crate::Weighing,
    on_evict: Option<EvictHook<T>>,
    on_reject: Option<ItemObserver<T>>,
    /// Whether a `can_add` hook filters events: its refusal comes before
    /// "full", so admission cannot refuse as full without the lock.
    filters: bool,
    /// Whether partitions lease budget bytes ahead (see [`Core::lease`]):
    /// with several partitions, not under DropOldest (an eviction must not
    /// pay for bytes only leased) and not with a disk tier.
    leases: bool,
    /// Sink mode: taken batches stay charged until settled.
    pub(crate) hold_in_flight: bool,
    /// Sink mode: where batches go that no attempt could write.
    pub(crate) on_flush_error: Option<ErrorHook<T>>,
    /// Held by `set_limits`, so two of them cannot interleave between the
    /// budget and the partitions.
    limits_lock: Mutex<()>,
    /// Live receivers; when the last goes, nothing can be delivered.
    receivers: AtomicUsize,
    no_receivers: AtomicBool,
    /// The partition the next producer handle gets.
    next_part: AtomicUsize,
    /// Where the next receive starts looking. Bumped at every look, so on a
    /// cache line of its own, away from what producers read at every event.
    next_scan: CachePadded<AtomicUsize>,
    attempts: AttemptCounters,
    /// For `tracing` and `metrics`.
    #[cfg_attr(not(any(feature = "metrics", feature = "tracing")), allow(dead_code))]
    pub(crate) name: Arc<str>,
    #[cfg(feature = "metrics")]
    metrics: crate::metrics::Throttle,
    /// The disk tier, if the builder was given one.
    #[cfg(feature = "spill")]
    pub(crate) spill: Option<spill::SpillTier<T>>,
}

/// Sink attempt counters, bumped by flush workers without a lock.
#[derive(Default)]
struct AttemptCounters {
    retries: AtomicU64,
    timeouts: AtomicU64,
    panics: AtomicU64,
}

/// Everything a [`Core`] is built from.
pub(crate) struct Parts<T> {
    pub(crate) limits: Limits,
    pub(crate) policy: Policy,
    pub(crate) weighing: crate::Weighing,
    pub(crate) partitions: usize,
    pub(crate) on_evict: Option<EvictHook<T>>,
    pub(crate) hooks: Hooks<T>,
    pub(crate) hold_in_flight: bool,
    pub(crate) on_flush_error: Option<ErrorHook<T>>,
    pub(crate) name: Arc<str>,
    pub(crate) metrics_every: Option<std::time::Duration>,
    pub(crate) seed: u64,
    #[cfg(feature = "spill")]
    pub(crate) spill: Option<spill::SpillSetup<T>>,
}

impl<T> Core<T> {
    pub(crate) fn new(parts: Parts<T>) -> Self {
        let mut hooks = parts.hooks;
        // Refusals are shown to `on_reject` outside the lock, by admission.
        let on_reject = hooks.on_reject.take();
        let hooks = hooks.armed();
        let filters = hooks.can_add.is_some();
        // What partitions' look-at instants count from; sealed batches are
        // stamped from it too when receivers choose among several
        // partitions by their stamps.
        let epoch = Instant::now();
        let stamps = (parts.partitions > 1).then_some(epoch);
        let partitions = (0..parts.partitions as u64)
            .map(|at| {
                let seed = parts
                    .seed
                    .wrapping_add(at.wrapping_mul(0x9e37_79b9_7f4a_7c15));
                Partition::new(State::new(
                    parts.limits,
                    hooks.clone(),
                    parts.hold_in_flight,
                    parts.weighing,
                    seed,
                    stamps,
                ))
            })
            .collect();
        #[cfg(not(feature = "metrics"))]
        let _ = parts.metrics_every;
        #[cfg(feature = "spill")]
        let spilling = parts.spill.is_some();
        #[cfg(not(feature = "spill"))]
        let spilling = false;
        let leases = parts.partitions > 1 && parts.policy != Policy::DropOldest && !spilling;
        Core {
            epoch,
            leases,
            parts: partitions,
            budget: Budget::new(parts.limits.max_buffered_bytes),
            ready: Signal::default(),
            settled: Signal::default(),
            policy: parts.policy,
            weighing: parts.weighing,
            on_evict: parts.on_evict,
            on_reject,
            filters,
            hold_in_flight: parts.hold_in_flight,
            on_flush_error: parts.on_flush_error,
            limits_lock: Mutex::new(()),
            receivers: AtomicUsize::new(1),
            no_receivers: AtomicBool::new(false),
            next_part: AtomicUsize::new(0),
            next_scan: CachePadded::new(AtomicUsize::new(0)),
            attempts: AttemptCounters::default(),
            name: parts.name,
            #[cfg(feature = "metrics")]
            metrics: crate::metrics::Throttle::new(parts.metrics_every),
            #[cfg(feature = "spill")]
            spill: parts.spill.map(spill::SpillTier::new),
        }
    }

    pub(crate) fn partitions(&self) -> usize {
        self.parts.len()
    }

    /// The bytes a partition reserves beyond an event's need when its lease
    /// runs out, so most admissions charge the lease under the partition's
    /// lock and leave the budget's shared word alone (with many producers on
    /// several cores that word's cache line was the hottest spot). Leased
    /// bytes count against the limit, so the bound holds exactly; an
    /// admission can meet "full" while other partitions hold unused leases,
    /// at most `partitions x 16 KiB` and 1/64 of the limit in all. None below
    /// a 1 MiB limit, with one partition, under DropOldest or with a disk
    /// tier.
    #[inline]
    pub(crate) fn lease(&self) -> usize {
        if self.leasing() {
            (self.budget.max() / (64 * self.parts.len())).min(LEASE_MAX)
        } else {
            0
        }
    }

    /// Whether partitions lease now. Cheap, for every admission: the
    /// lease's size (a division) is worked out only when one is taken.
    #[inline]
    pub(crate) fn leasing(&self) -> bool {
        self.leases && self.budget.max() >= LEASE_FROM
    }

    /// The partition for a new producer handle (or a clone): round-robin,
    /// so handles cloned into threads spread over the partitions.
    pub(crate) fn next_partition(&self) -> usize {
        self.next_part.fetch_add(1, Relaxed) % self.parts.len()
    }

    /// Keeps an emptied batch buffer of partition `at` for reuse (in its
    /// outbox: the partition's lock is the producers').
    pub(crate) fn recycle(&self, at: usize, buffer: Vec<T>) {
        self.parts[at].outbox.recycle(buffer);
    }

    /// Every partition's counters added up. With one partition it is one
    /// snapshot under its locks (the state's, then its outbox's, where pull
    /// receivers give bytes back); with several the partitions are read one
    /// after another, and `buffered_bytes` is their sum, at most one reading
    /// of the budget.
    pub(crate) fn stats(&self) -> Stats {
        let mut total = Stats::default();
        for (at, part) in self.parts.iter().enumerate() {
            let mut st = self.lock(at);
            let mut outbox = part.outbox.lock();
            st.fold(outbox.taken());
            total.absorb(&st.stats);
            if self.parts.len() == 1 {
                total.buffered_bytes = self.budget.used();
            }
            drop(outbox);
            drop(st);
            total.rejected.absorb(&part.refusals.read());
        }
        if self.parts.len() > 1 {
            // The partitions' sum, read one after another, can run ahead of
            // the budget (bytes moving between reads), never past it; the
            // budget also counts unused leases, which hold nothing.
            total.buffered_bytes = total.buffered_bytes.min(self.budget.used());
        }
        total.peak_buffered_bytes = self.budget.peak();
        #[cfg(feature = "spill")]
        if let Some(tier) = &self.spill {
            total.spill = tier.counts();
            total.accepted += total.spill.spilled;
        }
        total.retries = self.attempts.retries.load(Relaxed);
        total.sink_timeouts = self.attempts.timeouts.load(Relaxed);
        total.sink_panics = self.attempts.panics.load(Relaxed);
        total
    }

    pub(crate) fn limits(&self) -> Limits {
        self.lock(0).limits
    }

    /// Cuts every partition's open batch now.
    pub(crate) fn flush(&self) {
        self.seal_all();
    }

    /// Seals every partition's open batch; returns, per partition, the id
    /// every batch below which holds only events accepted before the call.
    fn seal_all(&self) -> Vec<u64> {
        (0..self.parts.len())
            .map(|at| self.lock(at).seal_for_wait())
            .collect()
    }

    /// Stops admission and seals the open batches, for receivers to drain.
    pub(crate) fn close(&self) {
        // The disk first: once admission reads as closed, nothing more can
        // be appended behind a receiver's back.
        #[cfg(feature = "spill")]
        if let Some(tier) = &self.spill {
            tier.close();
        }
        self.budget.close();
        for at in 0..self.parts.len() {
            self.lock(at).seal(crate::batch::FlushReason::Drain);
        }
        // Receivers that saw nothing left learn that nothing will come.
        self.ready.notify();
    }

    /// Waits until every accepted event is delivered or `deadline` passes
    /// (or no receiver is left); then returns what is still undelivered.
    pub(crate) fn drain_until(&self, deadline: Instant) -> Undelivered<T> {
        self.settled.wait(|| {
            // The tier first: it places events before it stops feeding.
            // Batches read back from disk are acknowledged when their
            // receiver drops them: the drain waits for that too.
            let done = self.no_receivers.load(SeqCst)
                || (!self.spill_feeding() && self.buffered_items() == 0 && !self.spill_lending());
            if done || Instant::now() >= deadline {
                Check::Ready(())
            } else {
                Check::Wait(Some(deadline))
            }
        });
        self.stop_spill_worker();
        self.retire()
    }

    /// Whether the disk tier may still bring events into memory.
    #[inline]
    pub(crate) fn spill_feeding(&self) -> bool {
        #[cfg(feature = "spill")]
        if let Some(tier) = &self.spill {
            return tier.feeding();
        }
        false
    }

    /// Whether a pull receiver holds a batch read back from disk.
    fn spill_lending(&self) -> bool {
        #[cfg(feature = "spill")]
        if let Some(tier) = &self.spill {
            return tier.lending();
        }
        false
    }

    /// Stops reading the disk tier back (what is on disk stays there) and
    /// acknowledges for the last time: what memory still holds is about to
    /// be taken, and what of it came from disk stays there.
    fn stop_spill_worker(&self) {
        #[cfg(feature = "spill")]
        if let Some(tier) = &self.spill {
            tier.stop_worker(self);
            tier.freeze(self);
        }
    }

    /// Ends the disk tier: stops its worker, acknowledges what has left
    /// memory, syncs and releases the directory. What is on disk stays for
    /// the next start. Idempotent; a no-op without a tier.
    pub(crate) fn finish_spill(&self) {
        #[cfg(feature = "spill")]
        if let Some(tier) = &self.spill {
            tier.finish(self);
        }
    }

    /// A pull-mode batch carrying spill mark `mark` was dropped.
    pub(crate) fn spill_returned(&self, mark: u64) {
        #[cfg(feature = "spill")]
        if let Some(tier) = &self.spill {
            if tier.returned(mark) {
                // A drain waits for the last one (see `drain_until`).
                self.settled.notify();
            }
        }
        #[cfg(not(feature = "spill"))]
        let _ = mark;
    }

    /// Events accepted and not yet delivered (or settled), all partitions.
    fn buffered_items(&self) -> usize {
        (0..self.parts.len())
            .map(|at| {
                let mut st = self.lock(at);
                st.fold_takes();
                st.stats.buffered_items
            })
            .sum()
    }

    /// The end of the dispatcher's life: removes every undelivered event
    /// not in flight, partition by partition, oldest first within each. A
    /// batch in flight that comes back later (its writer went away) then
    /// fails to the error hook: nobody is left to return it to.
    fn retire(&self) -> Undelivered<T> {
        let mut all = Undelivered::default();
        for at in 0..self.parts.len() {
            let mut st = self.lock(at);
            all.append(st.take_all());
            st.retire();
        }
        // Receivers still waiting for a batch this took (until its interval
        // ends) learn that nothing will come.
        self.ready.notify();
        all
    }

    /// Stops admission at once and removes every undelivered event.
    /// Admission closes first, in the budget, so no producer gets in while
    /// partitions are emptied one after another.
    pub(crate) fn stop(&self) -> Undelivered<T> {
        self.budget.close();
        self.stop_spill_worker();
        self.retire()
    }

    pub(crate) fn add_receiver(&self) {
        self.receivers.fetch_add(1, Relaxed);
    }

    /// With no receiver left nothing can be delivered: admission closes
    /// (producers learn it) and shutdown stops waiting.
    pub(crate) fn remove_receiver(&self) {
        if self.receivers.fetch_sub(1, Relaxed) == 1 {
            self.no_receivers.store(true, SeqCst);
            self.close();
            self.settled.notify();
        }
    }

    pub(crate) fn count_retry(&self) {
        self.attempts.retries.fetch_add(1, Relaxed);
    }

    pub(crate) fn count_attempt_failure(&self, error: &crate::sink::FlushError) {
        use crate::sink::FlushError;
        let counter = match error {
            FlushError::TimedOut(_) => &self.attempts.timeouts,
            FlushError::Panicked(_) => &self.attempts.panics,
            _ => return,
        };
        counter.fetch_add(1, Relaxed);
    }

    /// Publishes the stats through the `metrics` facade if the builder's
    /// interval has passed; a no-op without the feature or the interval.
    pub(crate) fn publish_metrics_now_and_then(&self) {
        #[cfg(feature = "metrics")]
        if self.metrics.due() {
            self.publish_metrics();
        }
    }

    /// Publishes the stats through the `metrics` facade now.
    #[cfg(feature = "metrics")]
    pub(crate) fn publish_metrics(&self) {
        let stats = self.stats();
        crate::metrics::publish(&self.name, &stats, self.budget.max());
    }
}

impl<T: crate::Weight> Core<T> {
    /// New limits (validated) for every partition and the budget.
    pub(crate) fn set_limits(&self, limits: Limits) {
        let one_at_a_time = self.limits_lock.lock();
        self.budget.set_max(limits.max_buffered_bytes);
        let mut caught = None;
        for at in 0..self.parts.len() {
            let mut st = self.lock(at);
            st.set_limits(limits);
            // `Weight::weight` panicked while re-cutting: the event was
            // counted for one byte; every partition gets the limits first.
            caught = caught.or(st.unlock());
        }
        drop(one_at_a_time);
        // Waiters look again under the new limits (their wakers are user
        // code: woken after the limits are all in place and the lock released).
        self.budget.room.notify_all();
        admit::resume(caught);
    }
}
