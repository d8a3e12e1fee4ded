//! Taking batches: one look at every partition (cutting a batch whose
//! interval elapsed), shared by blocking receivers, streams and sink
//! workers, which wait on the "ready" signal between looks.

use std::cell::OnceCell;
use std::time::Instant;

use super::Core;
use crate::batch::Sealed;
use crate::clock;
use crate::config::Policy;
use crate::error::RecvTimeoutError;
use crate::signal::Check;
use crate::state::{News, UNSTAMPED, trim};
use crate::sync::Ordering::{Relaxed, SeqCst};

/// A batch taken from partition `part`.
pub(crate) struct Taken<T> {
    pub(crate) part: usize,
    pub(crate) sealed: Sealed<T>,
}

/// What a receive ends with.
pub(crate) type Received<T> = Result<Taken<T>, RecvTimeoutError>;

impl<T> Core<T> {
    /// Takes the next batch from any partition, waiting until `deadline`
    /// (forever if `None`).
    pub(crate) fn recv_until(&self, deadline: Option<Instant>) -> Received<T> {
        self.ready.wait(|| self.look_for_batch(deadline))
    }

    /// One look, never waiting: a batch, the end, or a timeout. The
    /// deadline is the epoch, which has always passed, so the look's own
    /// reading of the clock is the only one.
    pub(crate) fn try_take(&self) -> Received<T> {
        self.recv_until(Some(self.epoch))
    }

    /// One look for a receiver: a batch, the end (admission closed and
    /// nothing left to take), a timeout, or when to look again (the
    /// earliest open batch's deadline, or `deadline`).
    ///
    /// "Closed" is read before the partitions, and once it reads true every
    /// partition is looked at under its lock, hint or not: a producer that
    /// was admitted before admission closed appended under the partition's
    /// lock in the same step, so the lock shows its event, but its hint may
    /// not be published yet. Read from the hints alone, the stream could
    /// end with that event still to come (the receiver stops, the drain
    /// waits for it until its deadline).
    pub(crate) fn look_for_batch(&self, deadline: Option<Instant>) -> Check<Received<T>> {
        let closed = self.budget.closed_for_receivers();
        // Read before the partitions: the disk tier places what it read
        // back before it stops feeding.
        let feeding = self.spill_feeding();
        // The clock is read once, and only if an open batch's deadline or
        // the receiver's own needs it: a look that takes a waiting batch
        // from a partition with nothing open does not read it.
        let clock = OnceCell::new();
        let now = || *clock.get_or_init(Instant::now);
        // Whether a partition's look-at instant has come.
        let now_ns = OnceCell::new();
        let come = |look_at: u64| match look_at {
            0 => true,
            UNSTAMPED => false,
            at => at <= *now_ns.get_or_init(|| clock::nanos_since(self.epoch, now())),
        };
        let n = self.parts.len();
        let start = if n == 1 {
            0
        } else {
            self.next_scan.fetch_add(1, Relaxed)
        };
        if n > 1 {
            // One partition in turn has its interval checked (so a quiet
            // partition's batch is cut on time however busy the others
            // are), then the batch comes from the partition whose oldest
            // waiting batch got its first event earliest. Taking
            // round-robin, or from the partition with the most batches
            // waiting, let one queue fall behind and stretched the tail of
            // the latency.
            let turn = start % n;
            if come(self.parts[turn].look_at.load(SeqCst)) {
                self.lock(turn).cut_if_due(now);
            }
            if let Some(part) = self.longest_waiting() {
                if let Some(taken) = self.take_from(part) {
                    return Check::Ready(Ok(taken));
                }
            }
        }
        let mut due: Option<Instant> = None;
        for part in (0..n).map(|i| (start + i) % n) {
            // A batch waiting is taken before anything reads the clock.
            if self.parts[part].outbox.since() != UNSTAMPED {
                if let Some(taken) = self.take_from(part) {
                    return Check::Ready(Ok(taken));
                }
            }
            let look_at = self.parts[part].look_at.load(SeqCst);
            // Nothing to cut there unless its open batch is due: no lock,
            // which the producers filling it would meet at every look of
            // a receiver waiting for a batch. Once closed, the lock is
            // taken anyway (see above).
            let cut = closed || come(look_at);
            if cut {
                let mut st = self.lock(part);
                st.cut_if_due(now);
                due = due.into_iter().chain(st.due()).min();
            } else {
                due = due.into_iter().chain(self.instant_of(look_at)).min();
            }
            // What the cut sealed; and once closed, the outbox is looked at
            // under its lock whatever its hint says, after the partition's
            // lock (a batch sealed before that is there).
            if cut {
                if let Some(taken) = self.take_from(part) {
                    return Check::Ready(Ok(taken));
                }
            }
        }
        if closed && due.is_none() && !feeding {
            Check::Ready(Err(RecvTimeoutError::Disconnected))
        } else if deadline.is_some_and(|deadline| now() >= deadline) {
            Check::Ready(Err(RecvTimeoutError::Timeout))
        } else {
            Check::Wait(due.into_iter().chain(deadline).min())
        }
    }

    /// The instant a partition's [`look_at`](super::Partition::look_at)
    /// stands for; `None` for [`UNSTAMPED`] (nothing to look at).
    fn instant_of(&self, look_at: u64) -> Option<Instant> {
        (look_at != UNSTAMPED).then(|| clock::instant_at(self.epoch, look_at))
    }

    /// The partition whose oldest waiting batch got its first event
    /// earliest, if any batch waits (read without the locks: a hint,
    /// checked under the outbox's lock).
    fn longest_waiting(&self) -> Option<usize> {
        let (part, since) = self
            .parts
            .iter()
            .enumerate()
            .map(|(at, part)| (at, part.outbox.since()))
            .min_by_key(|&(at, since)| (since, at))?;
        (since != UNSTAMPED).then_some(part)
    }

    /// Takes partition `part`'s oldest sealed batch, if it has one.
    ///
    /// A pull receiver takes it from the partition's outbox, without the
    /// partition's lock (the producers'), and gives its bytes back to the
    /// budget there. Under DropOldest it holds the partition's lock too,
    /// and folds the take into the statistics before letting go: eviction
    /// counts what it may evict under that lock, and a batch leaving
    /// meanwhile would leave it short. A sink worker takes it under
    /// the partition's lock: it stays in flight there until settled.
    fn take_from(&self, part: usize) -> Option<Taken<T>> {
        if self.hold_in_flight {
            let sealed = self.lock(part).take_ready()?;
            return Some(Taken { part, sealed });
        }
        let mut evicting = (self.policy == Policy::DropOldest).then(|| self.lock(part));
        let taken = self.parts[part].outbox.take(|sealed| {
            // Lent under the outbox's lock (see `spill::acknowledge`).
            #[cfg(feature = "spill")]
            if let (Some(mark), Some(tier)) = (sealed.spill, &self.spill) {
                tier.lend(mark);
            }
            self.budget.release_quietly(sealed.bytes);
        });
        if let Some(st) = &mut evicting {
            st.fold_takes();
        }
        drop(evicting);
        let mut sealed = taken?;
        self.announce(News {
            ready: false,
            settled: true,
            freed: sealed.bytes,
        });
        // Only a batch DropOldest evicted from can have slots to give back
        // here; waiting, it is its partition's front batch, the only one
        // eviction takes from, so one batch's slots at most wait untrimmed.
        trim(&mut sealed.items);
        Some(Taken { part, sealed })
    }

    /// The signal receivers wait on (for the async stream).
    #[cfg(feature = "async")]
    pub(crate) fn ready_signal(&self) -> &crate::signal::Signal {
        &self.ready
    }
}
