//! A partition's lock, and the guard that turns what changed under it into
//! notifications when it lets go.
//!
//! Every change to a partition happens through a [`Guard`]. State methods
//! record their [`News`] (bytes freed, a batch ready, a batch settled);
//! dropping the guard gives the freed bytes back to the budget before the
//! lock is released (so a snapshot under the lock agrees with the budget),
//! then releases the lock, then notifies the signals the news concerns. No
//! code path can change the state and forget to wake who waits for it.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use crossbeam_utils::CachePadded;

use super::Core;
use crate::state::{Caught, News, Outbox, State, UNSTAMPED};
use crate::stats::Rejections;
use crate::sync::{AtomicU64, Mutex, MutexGuard, Ordering::Relaxed, Ordering::SeqCst};

/// One partition: a complete batch builder behind its own lock.
///
/// In declared order (`repr(C)`): the state first, then the receivers'
/// hint on a cache line of its own. In the compiler's order (the hints
/// first, by alignment) admission counted 2% more instructions per event.
#[repr(C)]
pub(crate) struct Partition<T> {
    state: Mutex<State<T>>,
    /// When a receiver next has to cut a batch here, in nanoseconds since
    /// the core's epoch, as of the last change under the lock: the open
    /// batch's deadline while one is open, [`UNSTAMPED`] otherwise.
    /// Receivers lock only the partitions whose instant has come (see
    /// [`Core::look_for_batch`]). On a cache line of its own: receivers read
    /// it at every look, and producers write the state beside it at every
    /// event (sharing a line, each look took it from the producer).
    ///
    /// Why a receiver that skips the lock misses no batch: every change
    /// that brings the instant earlier (a batch opened, new limits) is
    /// news. The guard stores the instant (`SeqCst`) before it lets go, and
    /// the news is announced after: the notifier's store then its read of
    /// the listener count, against the waiter's count-in then its read of
    /// the instant, all `SeqCst`, so one of them sees the other (see
    /// [`crate::signal`]). Sealed batches are published the same way by
    /// their outbox ([`Outbox::since`]). Whether the stream is over is
    /// never read from either: once admission closed, a look takes every
    /// lock (see [`Core::look_for_batch`]).
    pub(crate) look_at: CachePadded<AtomicU64>,
    /// The partition's sealed batches (the state holds the same outbox):
    /// pull receivers take from it without the state's lock.
    pub(crate) outbox: Arc<Outbox<T>>,
    pub(crate) refusals: Refusals,
}

impl<T> Partition<T> {
    pub(crate) fn new(state: State<T>) -> Self {
        Partition {
            outbox: Arc::clone(state.outbox()),
            state: Mutex::new(state),
            look_at: CachePadded::new(AtomicU64::new(UNSTAMPED)),
            refusals: Refusals::default(),
        }
    }
}

/// Refusal counters, bumped without the lock.
#[derive(Default)]
pub(crate) struct Refusals {
    pub(crate) full: AtomicU64,
    pub(crate) timeout: AtomicU64,
    pub(crate) too_large: AtomicU64,
    pub(crate) closed: AtomicU64,
    pub(crate) refused: AtomicU64,
}

impl Refusals {
    pub(crate) fn read(&self) -> Rejections {
        Rejections {
            full: self.full.load(Relaxed),
            timeout: self.timeout.load(Relaxed),
            too_large: self.too_large.load(Relaxed),
            closed: self.closed.load(Relaxed),
            refused: self.refused.load(Relaxed),
        }
    }
}

/// A locked partition. Derefs to its [`State`].
///
/// Its fields drop in order: `state` (the lock is released), then `after`
/// (the notifications go out).
pub(crate) struct Guard<'a, T> {
    state: MutexGuard<'a, State<T>>,
    /// Where the hints for receivers go.
    part: &'a Partition<T>,
    after: Announce<'a, T>,
}

/// The news of a guard's changes, announced once its lock is released.
struct Announce<'a, T> {
    core: &'a Core<T>,
    news: Option<News>,
}

impl<T> Core<T> {
    /// Locks partition `at`.
    #[inline]
    pub(crate) fn lock(&self, at: usize) -> Guard<'_, T> {
        let part = &self.parts[at];
        Guard {
            state: part.state.lock(),
            part,
            after: Announce {
                core: self,
                news: None,
            },
        }
    }
}

impl<T> Guard<'_, T> {
    /// Lets go of the lock (waking who the changes concern), and hands
    /// back the panic of user code caught meanwhile, for the caller to
    /// resume.
    #[must_use = "a caught panic must be resumed"]
    #[inline]
    pub(crate) fn unlock(mut self) -> Option<Caught> {
        self.state.take_caught()
    }
}

impl<T> Deref for Guard<'_, T> {
    type Target = State<T>;

    #[inline]
    fn deref(&self) -> &State<T> {
        &self.state
    }
}

impl<T> DerefMut for Guard<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut State<T> {
        &mut self.state
    }
}

impl<T> Drop for Guard<'_, T> {
    /// Still locked: publishes the news (see [`publish`](Guard::publish)).
    /// Most admissions carry none, and pay only this look.
    #[inline]
    fn drop(&mut self) {
        if let Some(news) = self.state.take_news() {
            self.publish(news);
        }
    }
}

impl<T> Guard<'_, T> {
    /// Still locked: refreshes the partition's hints for receivers, gives
    /// the freed bytes back to the budget (so a snapshot under the lock
    /// agrees with it) and keeps the news for `after`. Out of line: news
    /// comes once a batch, not once an event.
    #[inline(never)]
    fn publish(&mut self, news: News) {
        let epoch = self.after.core.epoch;
        self.part.look_at.store(self.state.look_at(epoch), SeqCst);
        if news.freed > 0 {
            self.after.core.budget.release_quietly(news.freed);
        }
        self.after.news = Some(news);
    }
}

impl<T> Drop for Announce<'_, T> {
    #[inline]
    fn drop(&mut self) {
        if let Some(news) = self.news {
            self.core.announce(news);
        }
    }
}

impl<T> Core<T> {
    /// Tells who waits for what `news` is about. The lock it came from is
    /// already released.
    #[cold]
    pub(super) fn announce(&self, news: News) {
        if news.freed > 0 {
            self.budget.room.notify();
        }
        if news.ready {
            self.ready.notify();
        }
        if news.settled {
            self.settled.notify();
        }
    }
}
