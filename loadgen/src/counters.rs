//! Per-producer outcome counters, cheap to bump and cheap to read.
//!
//! Each producer owns one cache-line-aligned slot, so 32 producers on two
//! cores never invalidate each other's lines (false sharing would cost more
//! than the dispatcher itself). Each slot has a single writer (its
//! producer), so a bump is a plain load and store rather than a locked
//! read-modify-write; readers sum the slots whenever they like.

use std::sync::atomic::{AtomicU64, Ordering};

/// One producer's counters. Aligned to 128 bytes: x86 prefetches cache lines
/// in adjacent pairs, so 64-byte alignment can still share a line pair.
#[repr(align(128))]
#[derive(Debug, Default)]
pub(crate) struct Slot {
    attempted: AtomicU64,
    accepted: AtomicU64,
    rejected: AtomicU64,
    closed: AtomicU64,
}

impl Slot {
    /// A new event is about to be offered.
    pub(crate) fn attempted(&self) {
        bump(&self.attempted, Ordering::Relaxed);
    }

    /// The target took the event.
    pub(crate) fn accepted(&self) {
        bump(&self.accepted, Ordering::Release);
    }

    /// The target refused the event, which was discarded.
    pub(crate) fn rejected(&self) {
        bump(&self.rejected, Ordering::Release);
    }

    /// The target was closed, and the event discarded.
    pub(crate) fn closed(&self) {
        bump(&self.closed, Ordering::Release);
    }

    fn totals(&self) -> ProducerTotals {
        // Outcomes first (Acquire, pairing with their Release bumps), then
        // `attempted`: a snapshot then never shows more outcomes than attempts.
        let accepted = self.accepted.load(Ordering::Acquire);
        let rejected = self.rejected.load(Ordering::Acquire);
        let closed = self.closed.load(Ordering::Acquire);
        ProducerTotals {
            attempted: self.attempted.load(Ordering::Relaxed),
            accepted,
            rejected,
            closed,
        }
    }
}

/// Adds one to a counter that only the calling thread writes.
fn bump(counter: &AtomicU64, order: Ordering) {
    counter.store(counter.load(Ordering::Relaxed) + 1, order);
}

/// Counters for a set of producers: one slot each.
///
/// # Examples
///
/// ```
/// use loadgen::ProducerCounters;
///
/// let counters = ProducerCounters::new(4);
/// assert_eq!(counters.len(), 4);
/// assert_eq!(counters.snapshot().attempted, 0);
/// ```
#[derive(Debug)]
pub struct ProducerCounters {
    slots: Box<[Slot]>,
}

impl ProducerCounters {
    /// Counters for `producers` producers, all zero.
    pub fn new(producers: usize) -> Self {
        Self {
            slots: (0..producers).map(|_| Slot::default()).collect(),
        }
    }

    /// How many producers these counters have slots for.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether there are no slots.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The sums over all producers.
    pub fn snapshot(&self) -> ProducerTotals {
        self.slots
            .iter()
            .map(Slot::totals)
            .fold(ProducerTotals::default(), |sum, t| sum + t)
    }

    /// One producer's counters, or `None` if `index` is out of range.
    pub fn producer(&self, index: usize) -> Option<ProducerTotals> {
        self.slots.get(index).map(Slot::totals)
    }

    pub(crate) fn slot(&self, index: usize) -> &Slot {
        &self.slots[index]
    }
}

/// Producer counts at one moment.
///
/// Once producers have stopped, `attempted == accepted + rejected + closed`.
/// While they run, a snapshot may also include events being offered
/// ([`in_flight`](ProducerTotals::in_flight)), never the reverse.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ProducerTotals {
    /// Events generated and offered.
    pub attempted: u64,
    /// Events the target took.
    pub accepted: u64,
    /// Events the target refused (full, timed out, too large); each was
    /// discarded, and the producer backed off in closed loop.
    pub rejected: u64,
    /// Events offered after the target closed; each was discarded.
    pub closed: u64,
}

impl ProducerTotals {
    /// Events offered but not yet resolved when the snapshot was taken.
    pub fn in_flight(&self) -> u64 {
        self.attempted
            .saturating_sub(self.accepted + self.rejected + self.closed)
    }
}

impl std::ops::Add for ProducerTotals {
    type Output = ProducerTotals;

    fn add(self, other: ProducerTotals) -> ProducerTotals {
        ProducerTotals {
            attempted: self.attempted + other.attempted,
            accepted: self.accepted + other.accepted,
            rejected: self.rejected + other.rejected,
            closed: self.closed + other.closed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_do_not_share_cache_lines() {
        assert_eq!(std::mem::align_of::<Slot>(), 128);
        let counters = ProducerCounters::new(2);
        let a = std::ptr::from_ref(counters.slot(0)) as usize;
        let b = std::ptr::from_ref(counters.slot(1)) as usize;
        assert!(b - a >= 128);
    }

    #[test]
    fn snapshot_sums_every_slot() {
        let counters = ProducerCounters::new(3);
        for i in 0..3 {
            let slot = counters.slot(i);
            for _ in 0..=i {
                slot.attempted();
                slot.accepted();
            }
            slot.attempted();
            slot.rejected();
        }
        counters.slot(2).attempted();
        let totals = counters.snapshot();
        assert_eq!(
            totals,
            ProducerTotals {
                attempted: 10,
                accepted: 6,
                rejected: 3,
                closed: 0
            }
        );
        assert_eq!(totals.in_flight(), 1);
        assert_eq!(counters.producer(0).unwrap().accepted, 1);
        assert_eq!(counters.producer(3), None);
    }
}
