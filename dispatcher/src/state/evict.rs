//! The two places that split batches after admission: DropOldest's
//! eviction and re-cutting under lowered limits.
//!
//! Both need the weight of single events, and `Weight::weight` is user
//! code: it may answer differently than at admission, or panic. The
//! counters therefore never trust a second answer. A batch remembers the
//! exact sum it was charged; an event leaving it frees its weight asked
//! again, but clamped so every event still in the batch keeps at least one
//! byte, and the last event frees whatever is left. Whatever `weight`
//! answers, the partition's bytes and the budget stay exact and never
//! underflow; a panic counts as one byte and is resumed after the lock is
//! released.

use super::{Caught, State, fold_into, guarded};
use crate::weight::{Weighing, Weight, charge};
use std::cell::Cell;

impl<T: Weight> State<T> {
    /// Bytes eviction could free: everything buffered but not in flight.
    /// Under DropOldest, the one policy that evicts, receivers take under
    /// this lock and fold what they took at once, so the statistics are
    /// exact here (see `Core::take_from`).
    pub(crate) fn evictable_bytes(&self) -> usize {
        debug_assert!(!self.outbox.lock().has_takes());
        self.stats.buffered_bytes - self.in_flight_bytes
    }

    /// Evicts the oldest events not in flight until at least `owed` bytes
    /// are freed, passing each to `evicted`; returns the bytes freed (whole
    /// events, so possibly more). The caller checked
    /// `owed <= evictable_bytes()` under this lock (receivers take under it
    /// too when the policy evicts, so no batch left meanwhile) and settles
    /// the budget: the freed bytes are *not* released here, they pay for
    /// the event being admitted.
    pub(crate) fn evict(&mut self, owed: usize, evicted: &mut impl FnMut(T)) -> usize {
        let mut queue = self.outbox.lock();
        fold_into(&mut self.stats, queue.taken());
        debug_assert!(owed <= self.stats.buffered_bytes - self.in_flight_bytes);
        let mut freed = 0;
        while freed < owed && self.stats.buffered_items > self.stats.in_flight_items {
            let from_ready = !queue.batches.is_empty();
            let (items, bytes) = match queue.batches.front_mut() {
                Some(front) => (&mut front.items, &mut front.bytes),
                None => (&mut self.open, &mut self.open_bytes),
            };
            let (count, from_batch) =
                oldest_covering(self.weighing, &self.caught, items, *bytes, owed - freed);
            *bytes -= from_batch;
            freed += from_batch;
            self.stats.buffered_bytes -= from_batch;
            self.stats.buffered_items -= count;
            self.stats.dropped += count as u64;
            items.drain(..count).for_each(&mut *evicted);
            if items.is_empty() {
                if from_ready {
                    let emptied = queue.batches.pop_front().expect("front was there");
                    queue.recycle(emptied.items);
                    self.news.settled = true;
                } else {
                    self.open_since = None;
                    self.open_spill = None;
                    // News, so the guard refreshes the receivers' hint: left
                    // at the emptied batch's deadline, a receiver would wake
                    // for nothing at it, then lock this idle partition at
                    // every look until its next news.
                    self.news.settled = true;
                }
            }
        }
        freed
    }

    /// Gives back bytes eviction freed beyond what an admission owed (they
    /// were taken off this partition's share already).
    pub(crate) fn free(&mut self, bytes: usize) {
        self.news.freed += bytes;
    }

    /// Installs new (validated) limits. If the open batch is over a lowered
    /// batch limit it is cut again under the new limits, into as many batches
    /// as they call for; accepted events are never dropped.
    pub(crate) fn set_limits(&mut self, limits: crate::config::Limits) {
        self.limits = limits;
        self.len_hint = 0;
        // The interval may have changed: receivers recompute the deadline.
        self.news.ready = true;
        if self.full_reason().is_none() {
            return;
        }
        let since = self.open_since;
        // Every batch cut from the open one keeps its spill mark: a lower
        // bound of what each holds.
        let mark = self.open_spill.take();
        let items = std::mem::take(&mut self.open);
        let mut left = std::mem::take(&mut self.open_bytes);
        let count = items.len();
        for (at, item) in items.into_iter().enumerate() {
            let weight = share(self.weighing, &self.caught, &item, left, count - at);
            left -= weight;
            self.placing_spill = mark;
            // Every batch cut from it waited since the open batch did.
            if self.open_since.is_none() {
                self.open_since = since;
            }
            self.place(item, weight);
        }
        self.placing_spill = None;
        if !self.open.is_empty() {
            self.open_since = since;
        }
    }
}

/// How many of the oldest `items` (charged `bytes` together) must go to
/// free at least `owed` bytes, and how many bytes that frees.
fn oldest_covering<T: Weight>(
    weighing: Weighing,
    caught: &Cell<Option<Caught>>,
    items: &[T],
    bytes: usize,
    owed: usize,
) -> (usize, usize) {
    let mut freed = 0;
    let mut count = 0;
    while freed < owed && count < items.len() {
        freed += share(
            weighing,
            caught,
            &items[count],
            bytes - freed,
            items.len() - count,
        );
        count += 1;
    }
    (count, freed)
}

/// The bytes the first of `len` events charged `bytes` together frees: its
/// weight asked again, clamped so each of the others keeps at least one
/// byte; all that is left for the last one; one byte if `weight` panics.
fn share<T: Weight>(
    weighing: Weighing,
    caught: &Cell<Option<Caught>>,
    item: &T,
    bytes: usize,
    len: usize,
) -> usize {
    debug_assert!(
        len >= 1 && bytes >= len,
        "every event is charged a byte at least"
    );
    if len == 1 {
        return bytes;
    }
    guarded(caught, 1, || charge(weighing, item)).clamp(1, bytes - (len - 1))
}
