//! A partition's sealed batches, behind a small lock of their own.
//!
//! Producers fill the open batch under the partition's lock; sealing moves
//! the batch here, still under that lock, taking this one inside it. A pull
//! receiver takes a batch and hands its buffer back here without touching
//! the partition's lock, so it never meets the producers filling the next
//! batch: with one producer of 10 KiB events each batch had cost the
//! producer's lock two round trips to the receiver's processor.
//!
//! What the receiver takes is counted here ([`Takes`]) and folded into the
//! partition's statistics by whoever next needs them exact, under both
//! locks ([`State::fold_takes`](super::State::fold_takes)).

use std::collections::VecDeque;

use crossbeam_utils::CachePadded;

use super::UNSTAMPED;
use crate::batch::Sealed;
use crate::stats::FlushCounts;
use crate::sync::{AtomicU64, Mutex, MutexGuard, Ordering::Relaxed, Ordering::SeqCst};

/// How many emptied batch buffers are kept for reuse.
const POOL_CAPACITY: usize = 8;

/// Sealed batches waiting for a receiver, and the hint receivers read to
/// choose among partitions without any lock.
pub(crate) struct Outbox<T> {
    queue: Mutex<Queue<T>>,
    /// When the first event of the oldest batch waiting here joined it, in
    /// nanoseconds since the core's epoch; [`UNSTAMPED`] while none waits.
    /// Stored (`SeqCst`) before the queue's lock is released whenever a
    /// change under it moved it (see [`Locked`]'s drop), so a batch sealed is
    /// published before the news of it is announced (see [`crate::signal`]):
    /// a receiver that reads [`UNSTAMPED`] after counting itself in as a
    /// listener will be told. Batches are stamped only with several
    /// partitions; with one, a waiting batch reads 0.
    since: CachePadded<AtomicU64>,
}

/// The queue behind an [`Outbox`]'s lock.
pub(crate) struct Queue<T> {
    pub(crate) batches: VecDeque<Sealed<T>>,
    /// Emptied batch buffers handed back by receivers, for reuse.
    pool: Vec<Vec<T>>,
    /// Batches pull receivers took here, not yet folded into the
    /// partition's statistics (see [`Queue::taken`]).
    takes: Takes,
}

/// What pull receivers took from an outbox since the partition last folded
/// it into its statistics.
#[derive(Default)]
pub(crate) struct Takes {
    pub(crate) items: usize,
    pub(crate) bytes: usize,
    pub(crate) batches: u64,
    pub(crate) flushes: FlushCounts,
}

/// A locked outbox. When it lets go it publishes its front batch's stamp.
pub(crate) struct Locked<'a, T> {
    queue: MutexGuard<'a, Queue<T>>,
    since: &'a AtomicU64,
}

impl<T> Outbox<T> {
    pub(crate) fn new() -> Self {
        Outbox {
            queue: Mutex::new(Queue {
                batches: VecDeque::new(),
                pool: Vec::new(),
                takes: Takes::default(),
            }),
            since: CachePadded::new(AtomicU64::new(UNSTAMPED)),
        }
    }

    #[inline]
    pub(crate) fn lock(&self) -> Locked<'_, T> {
        Locked {
            queue: self.queue.lock(),
            since: &self.since,
        }
    }

    /// The oldest waiting batch's stamp, read without the lock: a hint.
    #[inline]
    pub(crate) fn since(&self) -> u64 {
        self.since.load(SeqCst)
    }

    /// A pull receiver takes the oldest batch: counted as taken, and shown
    /// to `leaving` (which gives its bytes back) before the lock is
    /// released.
    pub(crate) fn take(&self, leaving: impl FnOnce(&Sealed<T>)) -> Option<Sealed<T>> {
        let mut queue = self.lock();
        let sealed = queue.batches.pop_front()?;
        queue.takes.count(&sealed);
        leaving(&sealed);
        Some(sealed)
    }

    /// Keeps an emptied batch buffer for reuse, up to a bound.
    pub(crate) fn recycle(&self, buffer: Vec<T>) {
        self.lock().recycle(buffer);
    }
}

impl<T> Queue<T> {
    /// Keeps an emptied batch buffer for reuse, up to a bound.
    pub(crate) fn recycle(&mut self, buffer: Vec<T>) {
        debug_assert!(buffer.is_empty());
        if self.pool.len() < POOL_CAPACITY {
            self.pool.push(buffer);
        }
    }

    /// What pull receivers took since the last call, if they took anything.
    #[inline]
    pub(crate) fn taken(&mut self) -> Option<Takes> {
        (self.takes.batches != 0).then(|| std::mem::take(&mut self.takes))
    }

    /// Whether pull receivers took anything not yet folded.
    pub(crate) fn has_takes(&self) -> bool {
        self.takes.batches != 0
    }

    /// A buffer for the next open batch: a recycled one, or none yet.
    pub(crate) fn reuse(&mut self) -> Vec<T> {
        self.pool.pop().unwrap_or_default()
    }
}

impl Takes {
    fn count<T>(&mut self, sealed: &Sealed<T>) {
        self.items += sealed.items.len();
        self.bytes += sealed.bytes;
        self.batches += 1;
        self.flushes.bump(sealed.reason);
    }
}

impl<T> std::ops::Deref for Locked<'_, T> {
    type Target = Queue<T>;

    #[inline]
    fn deref(&self) -> &Queue<T> {
        &self.queue
    }
}

impl<T> std::ops::DerefMut for Locked<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut Queue<T> {
        &mut self.queue
    }
}

impl<T> Drop for Locked<'_, T> {
    /// Publishes the front batch's stamp if it changed (a buffer handed
    /// back changes nothing receivers read).
    #[inline]
    fn drop(&mut self) {
        let front = self.queue.batches.front();
        let since = front.map_or(UNSTAMPED, |sealed| sealed.since);
        if self.since.load(Relaxed) != since {
            self.since.store(since, SeqCst);
        }
    }
}
