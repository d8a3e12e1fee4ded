//! The one way anything in the dispatcher waits, blocking or async.
//!
//! A [`Signal`] stands for one kind of news ("room was freed", "a batch is
//! ready", "a batch settled"). Whoever changes the state the news is about
//! calls [`Signal::notify`] after the change is made (under the partition
//! lock, or by a `SeqCst` atomic). A waiter calls [`Signal::wait`] with a
//! check that looks at the state and answers [`Check::Ready`] or
//! [`Check::Wait`] (with the instant its own deadline or a batch's interval
//! ends); async code polls the same check through `nonblocking::waiting`.
//!
//! Why no wake-up is lost. The waiter checks, then *listens* (puts an entry
//! in the signal's list and counts itself in, under the signal's lock), then
//! checks again, and only then sleeps until its entry is marked notified.
//! The notifier publishes its change, then reads the listener count
//! (`SeqCst`); if anyone listens it takes the lock and marks entries. If
//! the waiter's second check missed the change, its entry was in the list
//! before the notifier looked, so the notifier marks it: the waiter either
//! sees the mark before it sleeps, or is unparked (or its task woken). With
//! nobody listening, `notify` is one atomic load.
//!
//! Who is told. A plain signal marks every entry. A *room* signal (the
//! budget's) knows how many bytes fit now, and tells the first entry, in
//! the order they came, whose need fits, skipping those that do not. A
//! told waiter, once it is done with the news (admitted, timed out,
//! cancelled, or found the room taken), passes it on: the signal looks
//! again at what fits now and tells the next. So a delivery wakes blocked
//! producers in a chain, one after another while room is left, rather than
//! all at once, and one that cannot use the news never strands one that
//! can.

use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use crate::sync::thread::{self, Thread};
use crate::sync::{AtomicUsize, Mutex, Ordering::SeqCst};

/// What a waiter's check found.
pub(crate) enum Check<R> {
    /// Done: stop waiting with this.
    Ready(R),
    /// Nothing yet: wait for news, or until this instant if any (a deadline
    /// or an interval ending), then check again.
    Wait(Option<Instant>),
}

/// How many bytes fit now, for a room signal.
pub(crate) type Room = Arc<dyn Fn() -> usize + Send + Sync>;

/// One kind of news that waiters can wait for; cheap to clone.
#[derive(Clone, Default)]
pub(crate) struct Signal {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Live listeners (blocking and async).
    listeners: AtomicUsize,
    /// A room signal: what fits now. `None`: every listener is told.
    room: Option<Room>,
    entries: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    next_id: u64,
    /// In the order listeners came.
    list: Vec<Entry>,
}

struct Entry {
    id: u64,
    /// Bytes this listener waits for (room signals).
    need: usize,
    notified: bool,
    /// Who to wake: a parked thread or a task; `None` until it sleeps.
    wake: Option<Wake>,
}

enum Wake {
    Thread(Thread),
    Task(Waker),
}

impl Wake {
    fn wake(self) {
        match self {
            Wake::Thread(thread) => thread.unpark(),
            Wake::Task(waker) => waker.wake(),
        }
    }
}

impl Signal {
    /// A room signal: `room` says how many bytes fit now.
    pub(crate) fn with_room(room: Room) -> Self {
        Signal {
            inner: Arc::new(Inner {
                room: Some(room),
                ..Inner::default()
            }),
        }
    }

    /// Tells the listeners the news concerns (every one, or for a room
    /// signal those that fit). Call after the change is visible to a
    /// waiter's check.
    #[inline]
    pub(crate) fn notify(&self) {
        if self.inner.listeners.load(SeqCst) > 0 {
            self.inner.tell(false);
        }
    }

    /// Tells every listener, whatever it waits for (the limits changed, or
    /// admission closed).
    pub(crate) fn notify_all(&self) {
        if self.inner.listeners.load(SeqCst) > 0 {
            self.inner.tell(true);
        }
    }

    /// Counts a listener in that waits for `need` bytes (0 for a plain
    /// signal); news from now on that concerns it ends its wait.
    pub(crate) fn listen(&self, need: usize) -> Listener {
        let mut entries = self.inner.entries.lock();
        let id = entries.next_id;
        entries.next_id += 1;
        entries.list.push(Entry {
            id,
            need,
            notified: false,
            wake: None,
        });
        self.inner.listeners.fetch_add(1, SeqCst);
        drop(entries);
        Listener {
            inner: Arc::clone(&self.inner),
            id,
        }
    }

    /// Blocks until `check` is ready, checking again after every
    /// notification and whenever the instant it asked to wait until passes.
    pub(crate) fn wait<R>(&self, check: impl FnMut() -> Check<R>) -> R {
        self.wait_for(0, check)
    }

    /// [`wait`](Self::wait) for a waiter that needs `need` bytes of room.
    pub(crate) fn wait_for<R>(&self, need: usize, mut check: impl FnMut() -> Check<R>) -> R {
        // The listener slept on is kept until the check after it: the news
        // it was told is passed on once that check used the room (or did
        // not), so whoever is told next sees what is really left.
        let mut slept: Option<Listener> = None;
        loop {
            if let Check::Ready(done) = check() {
                return done;
            }
            drop(slept.take());
            // Spin, then yield, a bounded number of times before sleeping:
            // the news is often a few microseconds away (the other side is
            // running on another core), and a park and an unpark cost a
            // context switch each.
            let mut backoff = Backoff::new(self.inner.room.is_some());
            while backoff.snooze() {
                if let Check::Ready(done) = check() {
                    return done;
                }
            }
            let listener = self.listen(need);
            match check() {
                Check::Ready(done) => return done,
                Check::Wait(until) => listener.sleep(until),
            }
            slept = Some(listener);
        }
    }
}

/// Bounded spinning before a waiter listens: `2^step` spin hints for the
/// first steps, then yielding the processor, then giving up. Under the
/// model checker it gives up at once (spinning adds interleavings, not
/// behaviour: every step is another look by the same check).
///
/// A producer waiting for room yields longer than other waiters (17 times,
/// not 3) before it sleeps. With 32 producers on 2 cores that delivered
/// 1.18x as many 10 KiB events and 1.23x as many 1 KiB events (criterion,
/// medians of 3 interleaved runs) and moved the other groups within their
/// noise; which part of it (fewer producers asleep to be woken, the consumer
/// getting the processor sooner) buys what was not isolated. Receivers
/// gained nothing from yielding longer.
struct Backoff {
    step: u32,
    /// Steps in all; those past `SPIN` yield.
    steps: u32,
}

impl Backoff {
    /// Steps that spin (`2^step` hints each): at most 127 hints in all.
    const SPIN: u32 = if cfg!(shuttle) { 0 } else { 7 };
    /// Steps in all for a plain signal's waiter.
    const STEPS: u32 = if cfg!(shuttle) { 0 } else { 10 };
    /// Steps in all for a room signal's waiter (a producer).
    const ROOM_STEPS: u32 = if cfg!(shuttle) { 0 } else { 24 };

    fn new(room: bool) -> Self {
        Backoff {
            step: 0,
            steps: if room { Self::ROOM_STEPS } else { Self::STEPS },
        }
    }

    /// Waits a little; `false` once the waiter should sleep instead.
    #[inline]
    fn snooze(&mut self) -> bool {
        if self.step >= self.steps {
            return false;
        }
        if self.step < Self::SPIN {
            (0..1u32 << self.step).for_each(|_| std::hint::spin_loop());
        } else {
            thread::yield_now();
        }
        self.step += 1;
        true
    }
}

impl Inner {
    /// Marks the entries the news concerns and wakes them, after the lock
    /// is released (a waker is user code).
    #[cold]
    #[inline(never)]
    fn tell(&self, everyone: bool) {
        let mut woken = Vec::new();
        {
            let mut entries = self.entries.lock();
            let mut left = match (&self.room, everyone) {
                (Some(room), false) => Some(room()),
                _ => None,
            };
            for entry in entries.list.iter_mut().filter(|entry| !entry.notified) {
                if let Some(left) = &mut left {
                    if entry.need > *left {
                        continue;
                    }
                    *left -= entry.need;
                }
                entry.notified = true;
                woken.extend(entry.wake.take());
                if left.is_some() {
                    break; // one at a time: it passes the news on when it leaves
                }
            }
        }
        woken.into_iter().for_each(Wake::wake);
    }
}

/// A counted-in waiter of one [`Signal`]; counted out when dropped.
pub(crate) struct Listener {
    inner: Arc<Inner>,
    id: u64,
}

impl Listener {
    /// Whether the news reached this listener; otherwise, remembers `wake`
    /// (if given) to be woken by it.
    fn heard(&self, wake: impl FnOnce() -> Wake) -> bool {
        let mut entries = self.inner.entries.lock();
        let entry = entries
            .list
            .iter_mut()
            .find(|entry| entry.id == self.id)
            .expect("a listener's entry stays until it is dropped");
        if !entry.notified {
            entry.wake = Some(wake());
        }
        entry.notified
    }

    /// Sleeps until the news reaches this listener or `until` passes.
    fn sleep(&self, until: Option<Instant>) {
        while !self.heard(|| Wake::Thread(thread::current())) {
            match until {
                None => thread::park(),
                Some(until) => match until.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => thread::park_timeout(left),
                    _ => return,
                },
            }
        }
    }

    /// Ready once the news reached this listener; otherwise registers the
    /// task's waker for it.
    #[cfg_attr(not(feature = "async"), allow(dead_code))]
    pub(crate) fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.heard(|| Wake::Task(cx.waker().clone())) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl Drop for Listener {
    /// Counts the listener out. On a room signal one that was told passes
    /// the news on, whatever it did with it: whoever fits in what is left
    /// now is told (one at a time, so a delivery wakes producers in a chain
    /// rather than a herd, and one that could not use the news never
    /// strands one that can).
    fn drop(&mut self) {
        let told = {
            let mut entries = self.inner.entries.lock();
            let at = entries.list.iter().position(|entry| entry.id == self.id);
            let entry = at.map(|at| entries.list.remove(at));
            self.inner.listeners.fetch_sub(1, SeqCst);
            entry.is_some_and(|entry| entry.notified)
        };
        if told && self.inner.room.is_some() && self.inner.listeners.load(SeqCst) > 0 {
            self.inner.tell(false);
        }
    }
}

#[cfg(all(test, not(shuttle)))]
mod tests;
