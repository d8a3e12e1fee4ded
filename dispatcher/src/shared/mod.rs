//! The state behind one lock, the condition variables that wait on it, and
//! every operation that needs both: admission and the dispatcher's
//! lifecycle here; taking batches in `receiving`, settling them (sink mode,
//! `flush_and_wait`) in `settling`, and the async polls in `polling`.
//!
//! Nothing in here runs user code while holding the lock except
//! [`Weight::weight`] during eviction and limit changes, the batch hooks
//! (caught if they panic), and the destructors of evicted events when no
//! eviction hook is set; the eviction hook and the destructors of delivered
//! events run after the lock is released.
//!
//! The lock is `parking_lot`'s: its eventual fairness hands the lock over to
//! a waiting receiver (or `stats()`) instead of letting a crowd of producers
//! re-take it forever. Refusals under Reject are decided without the lock at
//! all, from [`Gauges`], so an overload storm does not queue on it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::Instant;

use parking_lot::{Condvar, Mutex, MutexGuard};

use crate::config::{EvictHook, Limits, Policy};
use crate::error::{EnqueueError, TryEnqueueError};
use crate::hooks::{Hooks, ItemObserver};
use crate::pool::Pool;
use crate::state::{HookPanic, Room, State};
use crate::stats::{Rejections, Stats};
use crate::weight::{Weight, charge};

#[cfg(feature = "async")]
mod polling;
mod receiving;
mod settling;

pub(crate) use receiving::Taken;

#[cfg(feature = "async")]
pub(crate) use polling::{PolledBatch, PolledEnqueue};

pub(crate) struct Shared<T> {
    state: Mutex<State<T>>,
    /// Receivers wait here for a sealed batch or an open batch's deadline.
    batch_ready: Condvar,
    /// Blocked producers wait here for bytes to be freed. One is woken per
    /// delivery, and each that gets in wakes the next while room is left,
    /// so a delivery does not wake a herd that mostly goes back to sleep.
    room_freed: Condvar,
    /// Shutdown waits here for the last delivery.
    drained: Condvar,
    /// Fixed at build time, so reading it needs no lock.
    pub(crate) policy: Policy,
    on_evict: Option<EvictHook<T>>,
    on_reject: Option<ItemObserver<T>>,
    gauges: Gauges,
    refusals: Refusals,
    attempts: AttemptCounters,
    /// The budget shared with the other partitions, if partitioned.
    pool: Option<Arc<Pool>>,
}

/// Sink attempt counters, bumped by flush workers without the lock.
#[derive(Default)]
struct AttemptCounters {
    retries: AtomicU64,
    timeouts: AtomicU64,
    panics: AtomicU64,
}

/// Copies of the admission-relevant state, stored under the lock after every
/// change and read without it. A reading is a value the state really had a
/// moment ago, so a refusal decided from it is as valid as one decided under
/// the lock an instant earlier.
#[derive(Default)]
struct Gauges {
    buffered_bytes: AtomicUsize,
    ready_batches: AtomicUsize,
    max_buffered_bytes: AtomicUsize,
    closed: AtomicBool,
}

/// Refusal counters, bumped with or without the lock.
#[derive(Default)]
struct Refusals {
    full: AtomicU64,
    timeout: AtomicU64,
    too_large: AtomicU64,
    closed: AtomicU64,
    refused: AtomicU64,
}

impl<T> Shared<T> {
    /// Locks the state.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock()
    }

    pub(crate) fn recycle(&self, buffer: Vec<T>) {
        self.lock().recycle(buffer);
    }

    /// Refreshes the lock-free copies; call before releasing the lock after
    /// any change to buffered bytes, limits or closure.
    fn publish(&self, st: &State<T>) {
        self.publish_flow(st);
        self.gauges
            .max_buffered_bytes
            .store(st.limits.max_buffered_bytes, Relaxed);
        self.gauges.closed.store(st.closed, Relaxed);
    }

    /// Refreshes only what admissions and deliveries change (the hot path;
    /// limits and closure change elsewhere, which call [`Self::publish`]).
    fn publish_flow(&self, st: &State<T>) {
        self.gauges.ready_batches.store(st.ready_len(), Relaxed);
        self.gauges
            .buffered_bytes
            .store(st.stats.buffered_bytes, Relaxed);
    }

    /// Counts `count` refused events and builds the refusal that hands
    /// `item` (one event, or a group) back.
    fn refusal<I>(&self, room: Room, item: I, count: u64) -> TryEnqueueError<I> {
        let (counter, error): (_, fn(I) -> TryEnqueueError<I>) = match room {
            Room::TooLarge => (&self.refusals.too_large, TryEnqueueError::TooLarge),
            Room::Closed => (&self.refusals.closed, TryEnqueueError::Closed),
            Room::Refused => (&self.refusals.refused, TryEnqueueError::Refused),
            Room::Full | Room::Fits => (&self.refusals.full, TryEnqueueError::Full),
        };
        counter.fetch_add(count, Relaxed);
        error(item)
    }

    /// A consistent snapshot of the locked counters, with the refusal
    /// counters read just after.
    pub(crate) fn stats(&self) -> Stats {
        let mut stats = self.lock().stats;
        stats.rejected = Rejections {
            full: self.refusals.full.load(Relaxed),
            timeout: self.refusals.timeout.load(Relaxed),
            too_large: self.refusals.too_large.load(Relaxed),
            closed: self.refusals.closed.load(Relaxed),
            refused: self.refusals.refused.load(Relaxed),
        };
        stats.retries = self.attempts.retries.load(Relaxed);
        stats.sink_timeouts = self.attempts.timeouts.load(Relaxed);
        stats.sink_panics = self.attempts.panics.load(Relaxed);
        stats
    }

    /// Wakes one more waiting receiver if there is work left for it, so a
    /// wake-up is never lost when the receiver that got it leaves.
    fn pass_on(&self, mut st: MutexGuard<'_, State<T>>) {
        let work = st.has_ready() || st.due().is_some();
        let more = st.waiting_receivers > 0 && work;
        let _tasks = if work { st.batch_wakers.take() } else { None };
        drop(st);
        if more {
            self.batch_ready.notify_one();
        }
    }

    /// Wakes every waiter, threads and tasks, once the lock is released.
    fn wake_all(&self, mut st: MutexGuard<'_, State<T>>) {
        let _tasks = (st.batch_wakers.take(), st.room_wakers.take());
        drop(st);
        self.batch_ready.notify_all();
        self.room_freed.notify_all();
        self.drained.notify_all();
        if let Some(pool) = &self.pool {
            pool.signal_batch();
            pool.wake_room();
        }
    }
}

impl<T: Weight> Shared<T> {
    pub(crate) fn new(
        limits: Limits,
        policy: Policy,
        on_evict: Option<EvictHook<T>>,
        hooks: Hooks<T>,
        pool: Option<Arc<Pool>>,
        seed: u64,
    ) -> Self {
        let mut state = State::new(limits, seed);
        state.budget.clone_from(&pool);
        // Refusals are shown to `on_reject` outside the lock, by `Shared`.
        let mut hooks = hooks;
        let on_reject = hooks.on_reject.take();
        state.hooks = hooks.armed();
        let shared = Shared {
            state: Mutex::new(state),
            batch_ready: Condvar::new(),
            room_freed: Condvar::new(),
            drained: Condvar::new(),
            policy,
            on_evict,
            on_reject,
            gauges: Gauges::default(),
            refusals: Refusals::default(),
            attempts: AttemptCounters::default(),
            pool,
        };
        shared.publish(&shared.lock());
        shared
    }

    /// The lock-free refusal check: `Some` if the item must be refused now.
    fn precheck(&self, weight: usize) -> Option<Room> {
        let max = self.gauges.max_buffered_bytes.load(Relaxed);
        if self.gauges.closed.load(Relaxed) {
            Some(Room::Closed)
        } else if weight > max {
            Some(Room::TooLarge)
        } else if self.policy != Policy::DropOldest && !self.fits_now(weight, max) {
            Some(Room::Full)
        } else {
            None
        }
    }

    /// A lock-free look at the budget.
    #[inline]
    fn fits_now(&self, weight: usize, max: usize) -> bool {
        match &self.pool {
            None => self.gauges.buffered_bytes.load(Relaxed) + weight <= max,
            Some(pool) => pool.fits(weight),
        }
    }

    /// Tells receivers of the other partitions that a batch is ready here.
    #[inline]
    fn signal_pool(&self) {
        if let Some(pool) = &self.pool {
            pool.signal_batch();
        }
    }

    /// Appends under the lock, then wakes a receiver if a batch was sealed
    /// or opened and one is waiting.
    /// Returns a hook's panic for the caller to resume when done.
    #[must_use = "a hook's panic must be resumed"]
    #[inline]
    fn append_and_wake(
        &self,
        mut st: MutexGuard<'_, State<T>>,
        item: T,
        weight: usize,
    ) -> Option<HookPanic> {
        let changed = st.append(item, weight);
        let panic = st.hook_panic();
        let next_producer = st.waiting_for_room > 0 && st.room_for(1) == Room::Fits;
        self.publish_flow(&st);
        if changed {
            let wake = st.waiting_receivers > 0;
            let tasks = st.batch_wakers.take();
            drop(st);
            drop(tasks);
            if wake {
                self.batch_ready.notify_one();
            }
            self.signal_pool();
        } else {
            drop(st);
        }
        if next_producer {
            self.room_freed.notify_one();
        }
        panic
    }

    /// Admits without waiting. Under DropOldest, evicts to make room.
    pub(crate) fn try_enqueue(&self, item: T) -> Result<(), TryEnqueueError<T>> {
        let weight = charge(&item);
        if let Some(room) = self.precheck(weight) {
            return Err(self.refusal(room, item, 1));
        }
        let mut st = self.lock();
        match self.admission(&st, &item, weight) {
            Room::Fits => resume(self.append_and_wake(st, item, weight)),
            Room::Full if self.policy == Policy::DropOldest => {
                let mut evicted = Vec::new();
                let reserved = self
                    .evict(&mut st, weight, &mut evicted)
                    .is_some_and(|freed| st.reserve_after_evicting(weight, freed));
                if !reserved {
                    drop(st);
                    self.hand_over_evicted(evicted);
                    return Err(self.refusal(Room::Full, item, 1));
                }
                let panic = self.append_and_wake(st, item, weight);
                self.hand_over_evicted(evicted);
                resume(panic);
            }
            room => {
                let panic = st.hook_panic();
                drop(st);
                resume(panic);
                return Err(self.refuse(room, item));
            }
        }
        Ok(())
    }

    /// Room for `item` under the lock, after the `can_add` hook had its say.
    /// With partitions, `Fits` means the bytes are reserved: append next.
    fn admission(&self, st: &State<T>, item: &T, weight: usize) -> Room {
        match st.room_for(weight) {
            Room::Fits | Room::Full if !st.hook_admits(item) => Room::Refused,
            Room::Fits if !st.reserve(weight) => Room::Full,
            room => room,
        }
    }

    /// Counts a refusal of one item and hands it back; a hook refusal is
    /// shown to `on_reject` first. Call without the lock.
    fn refuse(&self, room: Room, item: T) -> TryEnqueueError<T> {
        if room == Room::Refused {
            if let Some(on_reject) = &self.on_reject {
                on_reject(&item);
            }
        }
        self.refusal(room, item, 1)
    }

    /// Admits, waiting for room until `deadline`. Under DropOldest, evicts
    /// instead of waiting.
    pub(crate) fn enqueue_until(&self, item: T, deadline: Instant) -> Result<(), EnqueueError<T>> {
        if self.policy == Policy::DropOldest {
            return self.try_enqueue(item).map_err(Into::into);
        }
        let weight = charge(&item);
        let mut st = self.lock();
        loop {
            let room = self.admission(&st, &item, weight);
            match room {
                Room::Fits => {
                    resume(self.append_and_wake(st, item, weight));
                    return Ok(());
                }
                Room::Full if Instant::now() < deadline => match &self.pool {
                    None => {
                        st.waiting_for_room += 1;
                        self.room_freed.wait_until(&mut st, deadline);
                        st.waiting_for_room -= 1;
                    }
                    Some(pool) => MutexGuard::unlocked(&mut st, || {
                        pool.wait_for_room(weight, deadline);
                    }),
                },
                Room::Full => {
                    drop(st);
                    self.refusals.timeout.fetch_add(1, Relaxed);
                    return Err(EnqueueError::Timeout(item));
                }
                Room::TooLarge | Room::Closed | Room::Refused => {
                    let panic = st.hook_panic();
                    drop(st);
                    resume(panic);
                    return Err(self.refuse(room, item).into());
                }
            }
        }
    }

    /// Admits every item or none.
    pub(crate) fn try_enqueue_all(&self, items: Vec<T>) -> Result<(), TryEnqueueError<Vec<T>>> {
        // Weigh once, outside the lock; a sum that overflows can never fit.
        let weights: Vec<usize> = items.iter().map(charge).collect();
        let count = items.len() as u64;
        let total = weights
            .iter()
            .try_fold(0usize, |sum, &w| sum.checked_add(w));
        let mut st = self.lock();
        let mut room = total.map_or(Room::TooLarge, |total| st.room_for(total));
        if matches!(room, Room::Fits | Room::Full) && !items.iter().all(|i| st.hook_admits(i)) {
            room = Room::Refused;
        }
        if room == Room::Fits && !total.is_some_and(|total| st.reserve(total)) {
            room = Room::Full;
        }
        let mut evicted = Vec::new();
        match (room, total) {
            (Room::Fits, _) => {}
            (Room::Full, Some(total))
                if self.policy == Policy::DropOldest
                    && self
                        .evict(&mut st, total, &mut evicted)
                        .is_some_and(|freed| st.reserve_after_evicting(total, freed)) => {}
            (room, _) => {
                let panic = st.hook_panic();
                drop(st);
                self.hand_over_evicted(std::mem::take(&mut evicted));
                resume(panic);
                if room == Room::Refused {
                    if let Some(on_reject) = &self.on_reject {
                        items.iter().for_each(|item| on_reject(item));
                    }
                }
                return Err(self.refusal(room, items, count));
            }
        }
        let mut changed = false;
        for (item, weight) in items.into_iter().zip(weights) {
            changed |= st.append(item, weight);
        }
        let wake = changed && st.waiting_receivers > 0;
        let panic = st.hook_panic();
        let _tasks = if changed {
            st.batch_wakers.take()
        } else {
            None
        };
        self.publish_flow(&st);
        drop(st);
        if wake {
            self.batch_ready.notify_one();
        }
        if changed {
            self.signal_pool();
        }
        self.hand_over_evicted(evicted);
        resume(panic);
        Ok(())
    }

    /// Evicts to make room for `weight`. With an eviction hook the events
    /// are kept for it (it runs after the lock is released); without one they
    /// are dropped here, which saves collecting them.
    /// Returns the bytes freed, or `None` (evicting nothing) if room cannot
    /// be made.
    fn evict(&self, st: &mut State<T>, weight: usize, evicted: &mut Vec<T>) -> Option<usize> {
        if self.on_evict.is_some() {
            st.evict_for(weight, |old| evicted.push(old))
        } else {
            st.evict_for(weight, drop)
        }
    }

    fn hand_over_evicted(&self, evicted: Vec<T>) {
        if let Some(hook) = &self.on_evict {
            evicted.into_iter().for_each(|item| hook(item));
        }
    }

    /// Cuts the open batch now.
    pub(crate) fn flush(&self) {
        self.flush_marked();
    }

    /// Cuts the open batch now and returns the id every batch below which
    /// holds only events accepted before the call.
    fn flush_marked(&self) -> u64 {
        let mut st = self.lock();
        let upto = st.seal_for_wait();
        let sealed = st.has_ready();
        let wake = sealed && st.waiting_receivers > 0;
        let _tasks = if sealed { st.batch_wakers.take() } else { None };
        drop(st);
        if wake {
            self.batch_ready.notify_one();
        }
        if sealed {
            self.signal_pool();
        }
        upto
    }

    pub(crate) fn set_limits(&self, limits: Limits) {
        let mut st = self.lock();
        st.set_limits(limits);
        self.publish(&st);
        // Deadlines and room may both have changed.
        self.wake_all(st);
    }

    /// Stops admission and seals the open batch; waiters learn of it.
    pub(crate) fn close(&self) {
        let mut st = self.lock();
        st.close();
        self.publish(&st);
        self.wake_all(st);
    }

    /// Waits until every accepted event is delivered or `deadline` passes
    /// (or no receiver is left); then returns what is still undelivered.
    pub(crate) fn drain_until(&self, deadline: Instant) -> Vec<T> {
        let mut st = self.lock();
        while st.stats.buffered_items > 0 && st.has_receivers && Instant::now() < deadline {
            st.waiting_for_drain = true;
            self.drained.wait_until(&mut st, deadline);
        }
        let undelivered = st.take_all();
        self.publish(&st);
        undelivered
    }

    /// Stops admission and removes every undelivered event.
    pub(crate) fn stop(&self) -> Vec<T> {
        let mut st = self.lock();
        st.close();
        let all = st.take_all();
        self.publish(&st);
        self.wake_all(st);
        all
    }

    /// The dispatcher's last receiver is gone: nothing can be delivered, so
    /// admission closes (producers learn it) and shutdown stops waiting.
    pub(crate) fn remove_receiver(&self) {
        let mut st = self.lock();
        st.has_receivers = false;
        st.close();
        self.publish(&st);
        self.wake_all(st);
    }
}

/// Resumes a hook's panic on the caller's thread, once the operation it
/// interrupted is complete and the lock released.
#[inline(always)]
fn resume(panic: Option<HookPanic>) {
    if let Some(panic) = panic {
        std::panic::resume_unwind(panic);
    }
}
