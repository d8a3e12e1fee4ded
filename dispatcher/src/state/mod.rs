//! The dispatcher's state behind its lock: the open batch, sealed batches
//! waiting for a receiver, byte accounting and counters. Single-threaded logic
//! only; [`Shared`](crate::shared::Shared) adds the lock and the waiting.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::batch::{FlushReason, Receipt, Sealed};
use crate::config::Limits;
use crate::hooks::{Hooks, OpenBatch};
use crate::stats::Stats;
use crate::wakers::Wakers;
use crate::weight::{Weight, charge};

/// A caught panic's payload.
pub(crate) type HookPanic = Box<dyn std::any::Any + Send>;

/// Whether an item of a given weight can be admitted now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Room {
    Fits,
    Full,
    TooLarge,
    Closed,
    /// Refused by the `can_add` hook (never returned by `room_for`).
    Refused,
}

pub(crate) struct State<T> {
    pub(crate) limits: Limits,
    pub(crate) stats: Stats,
    pub(crate) closed: bool,
    /// Whether any [`Batches`](crate::Batches) handle is left; admission
    /// closes when the last goes.
    pub(crate) has_receivers: bool,
    /// Receivers blocked in `recv`; sealing wakes one only when non-zero.
    pub(crate) waiting_receivers: usize,
    /// Producers blocked until bytes are freed.
    pub(crate) waiting_for_room: usize,
    /// Shutdown is waiting for the last delivery.
    pub(crate) waiting_for_drain: bool,
    /// `flush_and_wait` callers waiting for batches to settle.
    pub(crate) waiting_for_settle: usize,
    /// Sink mode: a taken batch stays charged (and counted as buffered)
    /// until the sink is done with it; see [`State::settle`].
    pub(crate) hold_in_flight: bool,
    pub(crate) hooks: Hooks<T>,
    /// The budget shared with the other partitions, if partitioned.
    pub(crate) budget: Option<std::sync::Arc<crate::pool::Pool>>,
    /// A hook's panic, caught and kept until the operation is complete.
    hook_panic: std::cell::Cell<Option<HookPanic>>,
    /// Async tasks waiting for a batch (streams) or for room (enqueue).
    pub(crate) batch_wakers: Wakers,
    pub(crate) room_wakers: Wakers,
    /// Ids of batches taken but not yet settled (sink mode; at most one per
    /// flush worker).
    in_flight: Vec<u64>,
    in_flight_bytes: usize,
    /// The id the next sealed batch gets.
    next_id: u64,
    open: Vec<T>,
    open_bytes: usize,
    /// When the open batch got its first event, and its share of the jitter.
    open_since: Option<(Instant, Duration)>,
    ready: VecDeque<Sealed<T>>,
    /// Emptied batch buffers handed back by receivers, for reuse.
    pool: Vec<Vec<T>>,
    /// A running average of batch lengths (events): new batch buffers get
    /// a little more than this. Slots are memory the byte limit does not
    /// see, so buffers are sized to what batches hold, not to the longest.
    len_hint: usize,
    rng: fastrand::Rng,
}

/// How many emptied batch buffers are kept for reuse.
const POOL_CAPACITY: usize = 64;

impl<T> State<T> {
    pub(crate) fn new(limits: Limits, seed: u64) -> Self {
        State {
            waiting_for_settle: 0,
            hold_in_flight: false,
            hooks: Hooks::default(),
            hook_panic: std::cell::Cell::new(None),
            budget: None,
            batch_wakers: Wakers::default(),
            room_wakers: Wakers::default(),
            in_flight: Vec::new(),
            in_flight_bytes: 0,
            next_id: 0,
            limits,
            stats: Stats::default(),
            closed: false,
            has_receivers: true,
            waiting_receivers: 0,
            waiting_for_room: 0,
            waiting_for_drain: false,
            open: Vec::new(),
            open_bytes: 0,
            open_since: None,
            ready: VecDeque::new(),
            pool: Vec::new(),
            len_hint: 0,
            rng: fastrand::Rng::with_seed(seed),
        }
    }

    /// Can `weight` more bytes be admitted now?
    pub(crate) fn room_for(&self, weight: usize) -> Room {
        if self.closed {
            Room::Closed
        } else if weight > self.limits.max_buffered_bytes {
            Room::TooLarge
        } else if self.budget_used() + weight > self.limits.max_buffered_bytes {
            Room::Full
        } else {
            Room::Fits
        }
    }

    /// Bytes charged against `max_buffered_bytes`: this dispatcher's, or
    /// with partitions, all partitions' together.
    #[inline]
    fn budget_used(&self) -> usize {
        match &self.budget {
            None => self.stats.buffered_bytes,
            Some(pool) => pool.used(),
        }
    }

    /// Takes `weight` bytes of the shared budget after eviction freed
    /// `freed`: when that covers the event, the budget does not grow, so the
    /// bytes are taken even over a lowered limit (as without partitions).
    pub(crate) fn reserve_after_evicting(&self, weight: usize, freed: usize) -> bool {
        match &self.budget {
            None => true,
            Some(pool) if freed >= weight => {
                pool.force_reserve(weight);
                true
            }
            Some(pool) => pool.try_reserve(weight),
        }
    }

    /// Takes `weight` bytes of the shared budget after `room_for` said they
    /// fit (always succeeds without partitions, where the lock makes the
    /// look and the append one step). False if another partition took them
    /// first.
    #[inline]
    pub(crate) fn reserve(&self, weight: usize) -> bool {
        match &self.budget {
            None => true,
            Some(pool) => pool.try_reserve(weight),
        }
    }

    /// Appends an admitted item (the caller made room for it) and cuts
    /// batches as the size limits say. Returns true when a receiver should
    /// be woken: a batch was sealed, or a batch was opened (a new deadline).
    pub(crate) fn append(&mut self, item: T, weight: usize) -> bool {
        if self.hooks.on_append {
            self.append_hooked(item, weight)
        } else {
            self.append_plain(item, weight)
        }
    }

    /// [`append`](Self::append) without the `will_overflow` and
    /// `should_flush` hooks.
    fn append_plain(&mut self, item: T, weight: usize) -> bool {
        self.stats.accepted += 1;
        self.stats.buffered_items += 1;
        self.stats.buffered_bytes += weight;
        self.stats.peak_buffered_bytes = self
            .stats
            .peak_buffered_bytes
            .max(self.stats.buffered_bytes);
        // An empty open batch after `place` means it sealed the event itself.
        let opens = self.open.is_empty() || self.would_overflow(weight);
        let sealed = self.place(item, weight);
        if opens && !self.open.is_empty() {
            self.open_since = Some((Instant::now(), self.jitter_share()));
        }
        opens || sealed
    }

    /// [`append`](Self::append) between the `will_overflow` and
    /// `should_flush` hooks. The first runs before anything is counted, so
    /// its panic leaves no trace; the second after the event is complete.
    #[cold]
    #[inline(never)]
    fn append_hooked(&mut self, item: T, weight: usize) -> bool {
        let cut_before = self.hook_cut_before(&item);
        let changed = self.append_plain(item, weight);
        let cut_after = self.hook_cut_after();
        cut_before || changed || cut_after
    }

    fn open_view(&self) -> OpenBatch<'_, T> {
        OpenBatch {
            items: &self.open,
            bytes: self.open_bytes,
        }
    }

    /// Whether the `can_add` hook (if any) lets `item` join the open batch.
    #[inline]
    pub(crate) fn hook_admits(&self, item: &T) -> bool {
        match &self.hooks.can_add {
            None => true,
            Some(can_add) => self.guarded(false, || can_add(&self.open_view(), item)),
        }
    }

    /// Runs a hook; if it panics, keeps the panic for the caller to resume
    /// once the state is consistent and the lock released, and answers
    /// `on_panic` instead.
    fn guarded(&self, on_panic: bool, hook: impl FnOnce() -> bool) -> bool {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(hook)).unwrap_or_else(|panic| {
            self.hook_panic.set(Some(panic));
            on_panic
        })
    }

    /// The panic of a hook during the last operation, if any.
    #[inline(always)]
    pub(crate) fn hook_panic(&mut self) -> Option<HookPanic> {
        if self.hooks.any {
            self.hook_panic.get_mut().take()
        } else {
            None
        }
    }

    /// Seals a non-empty open batch that the `will_overflow` hook says
    /// `item` must not join.
    fn hook_cut_before(&mut self, item: &T) -> bool {
        let cut = !self.open.is_empty()
            && self
                .hooks
                .will_overflow
                .as_ref()
                .is_some_and(|will_overflow| {
                    self.guarded(false, || will_overflow(&self.open_view(), item))
                });
        cut && self.seal(FlushReason::Hook)
    }

    /// Seals the open batch if the `should_flush` hook asks for it.
    fn hook_cut_after(&mut self) -> bool {
        let cut = !self.open.is_empty()
            && self
                .hooks
                .should_flush
                .as_ref()
                .is_some_and(|should_flush| {
                    self.guarded(false, || should_flush(&self.open_view()))
                });
        cut && self.seal(FlushReason::Hook)
    }

    /// Puts an event in the open batch, cutting batches before and after it
    /// as the size limits say. Returns true if a batch was sealed. Used by
    /// admission and by re-cutting under new limits; counts nothing.
    fn place(&mut self, item: T, weight: usize) -> bool {
        let sealed_before = self.would_overflow(weight) && self.seal(FlushReason::Bytes);
        self.push_open(item);
        self.open_bytes += weight;
        self.cut_if_full() || sealed_before
    }

    /// Pushes onto the open batch, growing it by an eighth rather than
    /// doubling when it is full (a doubled buffer can hold twice the slots
    /// its events need for as long as the batch waits).
    fn push_open(&mut self, item: T) {
        if self.open.len() == self.open.capacity() {
            self.open.reserve_exact((self.open.len() / 8).max(8));
        }
        self.open.push(item);
    }

    /// Whether `weight` more bytes would push a non-empty open batch past
    /// `max_batch_bytes` (so it is cut first: a batch exceeds the limit only
    /// with one event).
    fn would_overflow(&self, weight: usize) -> bool {
        !self.open.is_empty()
            && self
                .limits
                .max_batch_bytes
                .is_some_and(|max| self.open_bytes + weight > max)
    }

    fn jitter_share(&mut self) -> Duration {
        let jitter = self.limits.interval_jitter;
        if jitter.is_zero() {
            Duration::ZERO
        } else {
            Duration::from_nanos(self.rng.u64(0..=jitter.as_nanos() as u64))
        }
    }

    /// Which size limit the open batch has reached, if any.
    fn full_reason(&self) -> Option<FlushReason> {
        if self
            .limits
            .max_batch_bytes
            .is_some_and(|max| self.open_bytes >= max)
        {
            Some(FlushReason::Bytes)
        } else if self
            .limits
            .max_batch_items
            .is_some_and(|max| self.open.len() >= max)
        {
            Some(FlushReason::Items)
        } else {
            None
        }
    }

    /// Seals the open batch when it has reached a size limit.
    fn cut_if_full(&mut self) -> bool {
        self.full_reason().is_some_and(|reason| self.seal(reason))
    }

    /// Moves the open batch to the ready queue. Returns false if it was empty.
    pub(crate) fn seal(&mut self, reason: FlushReason) -> bool {
        if self.open.is_empty() {
            return false;
        }
        let len = self.open.len();
        self.len_hint = if self.len_hint == 0 {
            len
        } else {
            self.len_hint - self.len_hint / 8 + len / 8
        };
        let mut next = self.pool.pop().unwrap_or_default();
        next.reserve_exact(self.len_hint + self.len_hint / 8);
        let items = std::mem::replace(&mut self.open, next);
        let id = self.next_id;
        self.next_id += 1;
        self.ready.push_back(Sealed {
            id,
            items,
            bytes: std::mem::take(&mut self.open_bytes),
            reason,
        });
        self.open_since = None;
        true
    }

    pub(crate) fn ready_len(&self) -> usize {
        self.ready.len()
    }

    pub(crate) fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    /// When the open batch must be emitted, if it holds anything.
    pub(crate) fn due(&self) -> Option<Instant> {
        self.open_since
            .map(|(since, share)| since + self.limits.interval + share)
    }

    /// Hands the oldest sealed batch to a receiver: it is delivered from
    /// here on. In sink mode it stays charged, in flight, until
    /// [`settle`](Self::settle).
    pub(crate) fn take_ready(&mut self) -> Option<Sealed<T>> {
        let sealed = self.ready.pop_front()?;
        if self.hold_in_flight {
            self.in_flight.push(sealed.id);
            self.in_flight_bytes += sealed.bytes;
            self.stats.in_flight_items += sealed.items.len();
        } else {
            self.release(sealed.items.len(), sealed.bytes);
            self.count_delivered(sealed.items.len(), sealed.bytes, sealed.reason);
        }
        Some(sealed)
    }

    /// Ends a taken batch's flight (sink mode): its bytes are freed and its
    /// events counted as delivered or failed.
    pub(crate) fn settle(&mut self, receipt: Receipt, delivered: bool) {
        let Some(at) = self.in_flight.iter().position(|&id| id == receipt.id) else {
            debug_assert!(false, "batch {} settled twice", receipt.id);
            return;
        };
        self.in_flight.swap_remove(at);
        self.in_flight_bytes -= receipt.bytes;
        self.stats.in_flight_items -= receipt.len;
        self.release(receipt.len, receipt.bytes);
        if delivered {
            self.count_delivered(receipt.len, receipt.bytes, receipt.reason);
        } else {
            self.stats.failed += receipt.len as u64;
            self.stats.failed_batches += 1;
        }
    }

    fn release(&mut self, len: usize, bytes: usize) {
        self.stats.buffered_bytes -= bytes;
        self.stats.buffered_items -= len;
        if let Some(pool) = &self.budget {
            pool.release(bytes);
        }
    }

    fn count_delivered(&mut self, len: usize, bytes: usize, reason: FlushReason) {
        let stats = &mut self.stats;
        stats.delivered += len as u64;
        stats.delivered_bytes += bytes as u64;
        stats.batches += 1;
        stats.flushes.bump(reason);
    }

    /// The id of the oldest batch not yet settled (sealed batches waiting,
    /// or in flight); the next id if there is none.
    pub(crate) fn oldest_unsettled(&self) -> u64 {
        let waiting = self.ready.front().map(|sealed| sealed.id);
        self.in_flight
            .iter()
            .copied()
            .chain(waiting)
            .min()
            .unwrap_or(self.next_id)
    }

    /// Seals the open batch and returns the id every batch up to which must
    /// settle for everything accepted so far to be settled.
    pub(crate) fn seal_for_wait(&mut self) -> u64 {
        self.seal(FlushReason::Manual);
        self.next_id
    }

    /// Keeps an emptied batch buffer for reuse, up to a bound.
    pub(crate) fn recycle(&mut self, buffer: Vec<T>) {
        debug_assert!(buffer.is_empty());
        if self.pool.len() < POOL_CAPACITY {
            self.pool.push(buffer);
        }
    }

    /// Stops admission and seals what is open, for receivers to drain.
    pub(crate) fn close(&mut self) {
        self.closed = true;
        self.seal(FlushReason::Drain);
    }

    /// Removes every undelivered event not in flight, oldest first,
    /// counting it as returned.
    pub(crate) fn take_all(&mut self) -> Vec<T> {
        let mut all = Vec::with_capacity(self.stats.buffered_items - self.stats.in_flight_items);
        let mut bytes = std::mem::take(&mut self.open_bytes);
        for sealed in self.ready.drain(..) {
            bytes += sealed.bytes;
            all.extend(sealed.items);
        }
        all.append(&mut self.open);
        self.open_since = None;
        self.stats.returned += all.len() as u64;
        self.release(all.len(), bytes);
        all
    }

    /// Bytes that eviction could free: everything buffered but not in flight.
    fn evictable_bytes(&self) -> usize {
        self.stats.buffered_bytes - self.in_flight_bytes
    }
}

impl<T: Weight> State<T> {
    /// Installs new (validated) limits. If the open batch is over a lowered
    /// batch limit it is cut again under the new limits, into as many batches
    /// as they call for; accepted events are never dropped.
    pub(crate) fn set_limits(&mut self, limits: Limits) -> bool {
        self.limits = limits;
        self.len_hint = 0;
        if self.full_reason().is_none() {
            return false;
        }
        let since = self.open_since;
        let items = std::mem::take(&mut self.open);
        self.open_bytes = 0;
        for item in items {
            let weight = charge(&item);
            self.place(item, weight);
        }
        if !self.open.is_empty() {
            self.open_since = since;
        }
        true
    }

    /// Evicts the oldest undelivered events to make room for `weight` more
    /// bytes, passing each to `evicted`. Normally it frees just enough for the
    /// event to fit. If buffered bytes are above a lowered limit it frees at
    /// most the event's own weight, so buffered bytes never grow but a limit
    /// change alone never evicts anything. The caller checked
    /// `weight <= max_buffered_bytes`.
    ///
    /// Returns the bytes freed, or `None`, evicting nothing, if the events
    /// not in flight (sink mode) cannot free enough: the item must then be
    /// refused.
    pub(crate) fn evict_for(&mut self, weight: usize, mut evicted: impl FnMut(T)) -> Option<usize> {
        let excess = (self.budget_used() + weight).saturating_sub(self.limits.max_buffered_bytes);
        let mut owed = excess.min(weight);
        if owed > self.evictable_bytes() {
            return None;
        }
        let mut freed_total = 0;
        while owed > 0 && self.stats.buffered_items > self.stats.in_flight_items {
            let (items, bytes) = match self.ready.front_mut() {
                Some(front) => (&mut front.items, &mut front.bytes),
                None => (&mut self.open, &mut self.open_bytes),
            };
            let (count, freed) = oldest_covering(items, owed);
            owed = owed.saturating_sub(freed);
            freed_total += freed;
            *bytes -= freed;
            self.stats.buffered_bytes -= freed;
            if let Some(pool) = &self.budget {
                pool.release(freed);
            }
            self.stats.buffered_items -= count;
            self.stats.dropped += count as u64;
            items.drain(..count).for_each(&mut evicted);
            if items.is_empty() {
                match self.ready.pop_front() {
                    Some(emptied) => self.recycle(emptied.items),
                    None => self.open_since = None,
                }
            }
        }
        Some(freed_total)
    }
}

/// How many of the oldest `items` must go to free at least `excess` bytes,
/// and how many bytes that frees.
fn oldest_covering<T: Weight>(items: &[T], excess: usize) -> (usize, usize) {
    let mut freed = 0;
    let mut count = 0;
    for item in items {
        if freed >= excess {
            break;
        }
        freed += charge(item);
        count += 1;
    }
    (count, freed)
}

#[cfg(test)]
mod tests;
