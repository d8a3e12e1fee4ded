//! The byte budget every partition admits against, and whether admission
//! is closed.
//!
//! One atomic word holds the bytes charged (accepted, not yet delivered;
//! in sink mode, not yet settled) with the closed flag as its top bit, so a
//! reservation and closing are one compare-and-swap apart: nothing is
//! reserved after [`close`](Budget::close), and stopping or shutting down
//! one partition after another can never let a blocked producer in.
//!
//! Bytes are reserved before an event joins its partition and released
//! after it leaves, so `used()` is never below what the partitions hold
//! and never above the limit (except after the limit was lowered: then it
//! only goes down, but for one event the disk tier brings back alone when
//! nothing else is charged, accepted under the larger limit). Bytes are released only by a partition's guard when it
//! lets go, which then tells the producers waiting for room (see
//! `core::guard`).

use std::sync::Arc;

use crossbeam_utils::CachePadded;

use crate::signal::Signal;
use crate::sync::{AtomicBool, AtomicUsize, Ordering::Relaxed, Ordering::SeqCst};

/// The top bit of the budget word: admission is closed.
const CLOSED: usize = 1 << (usize::BITS - 1);

/// The largest `max_buffered_bytes` the budget can hold.
pub(crate) const MAX_BYTES: usize = CLOSED - 1;

/// The budget word and limit a look found, to start a reservation from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Seen {
    pub(crate) word: usize,
    pub(crate) max: usize,
}

/// What a look at the budget found in the way of a reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shortfall {
    Full,
    TooLarge,
    Closed,
}

/// Why a reservation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Short {
    /// Not enough room now.
    Full,
    /// Admission is closed for good.
    Closed,
}

pub(crate) struct Budget {
    counts: Arc<Counts>,
    /// News for producers waiting for room: bytes released (each told
    /// when its bytes fit), the limits changed, admission closed (all told).
    pub(crate) room: Signal,
    /// Set by [`close`](Self::close) after it closed the word, on a cache
    /// line of its own: receivers read it at every look instead of the
    /// word, which producers charge at nearly every event (reading the
    /// word, each look took its line from them).
    closed: CachePadded<AtomicBool>,
}

struct Counts {
    /// Bytes charged, with [`CLOSED`] as the top bit.
    word: AtomicUsize,
    max: AtomicUsize,
    peak: AtomicUsize,
}

impl Counts {
    /// Bytes that would fit now (none once closed).
    fn free(&self) -> usize {
        let word = self.word.load(SeqCst);
        if word & CLOSED != 0 {
            0
        } else {
            self.max.load(SeqCst).saturating_sub(word)
        }
    }
}

impl Budget {
    pub(crate) fn new(max: usize) -> Self {
        let counts = Arc::new(Counts {
            word: AtomicUsize::new(0),
            max: AtomicUsize::new(max),
            peak: AtomicUsize::new(0),
        });
        let free = Arc::clone(&counts);
        Budget {
            counts,
            room: Signal::with_room(Arc::new(move || free.free())),
            closed: CachePadded::new(AtomicBool::new(false)),
        }
    }

    /// Bytes charged now.
    #[inline]
    pub(crate) fn used(&self) -> usize {
        self.counts.word.load(SeqCst) & !CLOSED
    }

    #[inline]
    pub(crate) fn is_closed(&self) -> bool {
        self.counts.word.load(SeqCst) & CLOSED != 0
    }

    /// [`is_closed`](Self::is_closed) for receivers, without reading the
    /// word: true only once the word is closed. A look that reads it true
    /// takes every partition's lock (see `Core::look_for_batch`), which
    /// shows every event admitted before the word closed; one that reads it
    /// false while the word is closed waits for the news the closing sends.
    #[inline]
    pub(crate) fn closed_for_receivers(&self) -> bool {
        self.closed.load(SeqCst)
    }

    #[inline]
    pub(crate) fn max(&self) -> usize {
        self.counts.max.load(SeqCst)
    }

    /// The highest `used()` ever reached.
    pub(crate) fn peak(&self) -> usize {
        self.counts.peak.load(SeqCst)
    }

    /// Whether `weight` more bytes would be reserved now (a look, not a
    /// promise).
    #[cfg(all(test, not(shuttle)))]
    fn fits(&self, weight: usize) -> bool {
        self.look(weight, true).is_ok()
    }

    /// One look at what reserving `weight` bytes would meet now: what it
    /// saw if nothing stands in the way, or the refusal. `full_counts` says
    /// whether a lack of room is a refusal (not under DropOldest).
    #[inline]
    pub(crate) fn look(&self, weight: usize, full_counts: bool) -> Result<Seen, Shortfall> {
        let word = self.counts.word.load(SeqCst);
        let max = self.counts.max.load(SeqCst);
        if word & CLOSED != 0 {
            Err(Shortfall::Closed)
        } else if weight > max {
            Err(Shortfall::TooLarge)
        } else if full_counts && word + weight > max {
            Err(Shortfall::Full)
        } else {
            Ok(Seen { word, max })
        }
    }

    /// Reserves `weight` bytes if admission is open and they fit under the
    /// limit; returns the bytes charged right after. Zero bytes always fit
    /// while open: a reservation that adds nothing cannot break the bound
    /// (DropOldest uses it when evicted events pay for the whole new one).
    /// The caller records the peak once it knows what it holds
    /// ([`note_peak`](Self::note_peak)).
    #[inline]
    pub(crate) fn try_reserve(&self, weight: usize) -> Result<usize, Short> {
        self.try_reserve_from(self.counts.word.load(SeqCst), self.max(), weight)
    }

    /// [`try_reserve`](Self::try_reserve) starting from a word and a limit
    /// read a moment ago (by [`look`](Self::look)): the compare-and-swap
    /// corrects a stale word; a limit changed meanwhile counts as changed
    /// just after this reservation.
    #[inline]
    pub(crate) fn try_reserve_from(
        &self,
        mut word: usize,
        max: usize,
        weight: usize,
    ) -> Result<usize, Short> {
        loop {
            if word & CLOSED != 0 {
                return Err(Short::Closed);
            }
            let after = word.saturating_add(weight);
            if weight > 0 && after > max {
                return Err(Short::Full);
            }
            match self
                .counts
                .word
                .compare_exchange_weak(word, after, SeqCst, SeqCst)
            {
                Ok(_) => return Ok(after),
                Err(now) => word = now,
            }
        }
    }

    /// [`try_reserve`](Self::try_reserve) for events coming back from the
    /// disk tier: accepted already, so a closed admission does not stop
    /// them, and neither does a limit lowered since (or a restart with a
    /// smaller one): weight above the limit goes in alone, when nothing
    /// else is charged, the excess a lowered limit allows (see
    /// [`fits_back`](Self::fits_back)).
    ///
    /// A loop of its own rather than a rule passed to one shared with
    /// [`try_reserve_from`](Self::try_reserve_from): sharing it cost the
    /// admission hot path 1 to 3 instructions per event (`scripts/bench-gate.sh`).
    #[cfg(feature = "spill")]
    pub(crate) fn try_reserve_back(&self, weight: usize) -> Result<usize, Short> {
        let mut word = self.counts.word.load(SeqCst);
        loop {
            let used = word & !CLOSED;
            let after = used.saturating_add(weight);
            let alone = used == 0;
            if weight > 0 && after > self.max() && !alone {
                return Err(Short::Full);
            }
            match self
                .counts
                .word
                .compare_exchange_weak(word, word + weight, SeqCst, SeqCst)
            {
                Ok(_) => return Ok(after),
                Err(now) => word = now,
            }
        }
    }

    /// Whether [`try_reserve_back`](Self::try_reserve_back) of `weight`
    /// would succeed now.
    #[cfg(feature = "spill")]
    pub(crate) fn fits_back(&self, weight: usize) -> bool {
        let used = self.used();
        used == 0 || used.saturating_add(weight) <= self.max()
    }

    /// Records that `used` bytes were charged at some point.
    #[inline]
    pub(crate) fn note_peak(&self, used: usize) {
        if used > self.counts.peak.load(Relaxed) {
            self.counts.peak.fetch_max(used, Relaxed);
        }
    }

    /// Gives back charged bytes without telling anyone yet: for a caller
    /// that holds a partition lock, which calls [`Signal::notify`] on
    /// [`room`](Self::room) once it let go.
    #[inline]
    pub(crate) fn release_quietly(&self, bytes: usize) {
        let before = self.counts.word.fetch_sub(bytes, SeqCst);
        debug_assert!(before & !CLOSED >= bytes, "released more than charged");
    }

    /// Gives back charged bytes and tells who waits for room.
    #[cfg(all(test, not(shuttle)))]
    fn release(&self, bytes: usize) {
        if bytes > 0 {
            self.release_quietly(bytes);
            self.room.notify();
        }
    }

    /// Closes admission for good; every waiter for room learns it.
    pub(crate) fn close(&self) {
        self.counts.word.fetch_or(CLOSED, SeqCst);
        self.closed.store(true, SeqCst);
        self.room.notify_all();
    }

    /// A new limit. Waiters must look again: the caller tells all of them
    /// on [`room`](Self::room) once the rest of its change is made.
    pub(crate) fn set_max(&self, max: usize) {
        self.counts.max.store(max, SeqCst);
    }
}

#[cfg(all(test, not(shuttle)))]
mod tests {
    use super::*;

    #[test]
    fn reservations_never_exceed_the_limit() {
        let budget = Budget::new(10);
        assert_eq!(budget.try_reserve(6), Ok(6));
        assert_eq!(budget.try_reserve(5), Err(Short::Full));
        assert_eq!(budget.try_reserve(4), Ok(10));
        budget.note_peak(10);
        assert_eq!((budget.used(), budget.peak()), (10, 10));
        budget.release(6);
        assert!(budget.fits(6) && !budget.fits(7));
        budget.set_max(4);
        budget.room.notify();
        assert_eq!(budget.try_reserve(1), Err(Short::Full));
        assert_eq!(
            budget.try_reserve(0),
            Ok(4),
            "zero bytes fit over a lowered limit"
        );
    }

    #[test]
    fn nothing_is_reserved_after_closing() {
        let budget = Budget::new(10);
        assert_eq!(budget.try_reserve(3), Ok(3));
        budget.close();
        assert!(budget.is_closed() && !budget.fits(1));
        assert_eq!(budget.try_reserve(1), Err(Short::Closed));
        assert_eq!(budget.try_reserve(0), Err(Short::Closed));
        budget.release(3);
        assert_eq!((budget.used(), budget.is_closed()), (0, true));
    }

    #[test]
    fn concurrent_reservations_stay_within_the_limit() {
        let budget = std::sync::Arc::new(Budget::new(1000));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let budget = std::sync::Arc::clone(&budget);
                std::thread::spawn(move || {
                    let mut held = 0;
                    for i in 0..10_000usize {
                        if let Ok(after) = budget.try_reserve(7) {
                            budget.note_peak(after);
                            held += 7;
                        }
                        if i % 3 == 0 && held > 0 {
                            budget.release(7);
                            held -= 7;
                        }
                    }
                    budget.release(held);
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(budget.used(), 0);
        assert!(budget.peak() <= 1000);
    }
}
