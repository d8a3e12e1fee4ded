//! The one way anything in the dispatcher waits, blocking or async.
//!
//! A [`Signal`] stands for one kind of news ("room was freed", "a batch is
//! ready", "a batch settled"). Whoever changes the state the news is about
//! calls [`Signal::notify`] after the change is made (under the partition
//! lock, or by a `SeqCst` atomic). A waiter never sleeps on a condition
//! variable of its own: it calls [`Signal::wait`] with a check that looks
//! at the state and answers [`Check::Ready`] or [`Check::Wait`] (with the
//! instant its own deadline or a batch's interval ends).
//!
//! Why no wake-up is lost. The waiter checks, then *listens* (counts itself
//! in and reads the signal's epoch, both `SeqCst`), then checks again, and
//! only then sleeps, and only while the epoch is unchanged, reading it
//! under the signal's lock. The notifier publishes its change, then reads
//! the listener count (`SeqCst`); if anyone listens it bumps the epoch and
//! wakes every sleeper under that lock. If the waiter's second check missed
//! the change, its listening came first in the `SeqCst` order, so the
//! notifier sees it and bumps the epoch: the waiter either sees the new
//! epoch and does not sleep, or is asleep when the notification comes. With
//! nobody listening, `notify` is one atomic load.
//!
//! Every sleeper is woken (no `notify_one` to pass on) and looks again, so
//! a waiter that cannot use the news never strands one that can. Async
//! tasks wait the same way: a [`Listener`] polled from a future registers
//! its waker under the same lock.

use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use crate::sync::{AtomicU64, AtomicUsize, Condvar, Mutex, Ordering::SeqCst};

/// What a waiter's check found.
pub(crate) enum Check<R> {
    /// Done: stop waiting with this.
    Ready(R),
    /// Nothing yet: wait for news, or until this instant if any (a deadline
    /// or an interval ending), then check again.
    Wait(Option<Instant>),
}

/// One kind of news that waiters can wait for; cheap to clone.
#[derive(Clone, Default)]
pub(crate) struct Signal {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Live listeners (blocking and async).
    listeners: AtomicUsize,
    /// Bumped by every notification that found a listener.
    epoch: AtomicU64,
    /// Wakers of async listeners; also the lock sleepers wait under.
    tasks: Mutex<Tasks>,
    wake: Condvar,
}

#[derive(Default)]
struct Tasks {
    #[cfg_attr(not(feature = "async"), allow(dead_code))]
    next_slot: u64,
    wakers: Vec<(u64, Waker)>,
}

impl Signal {
    /// Tells every listener that the state changed. Call after the change
    /// is visible to a waiter's check.
    #[inline]
    pub(crate) fn notify(&self) {
        if self.inner.listeners.load(SeqCst) > 0 {
            self.notify_listeners();
        }
    }

    #[cold]
    #[inline(never)]
    fn notify_listeners(&self) {
        let woken = {
            let mut tasks = self.inner.tasks.lock();
            self.inner.epoch.fetch_add(1, SeqCst);
            self.inner.wake.notify_all();
            std::mem::take(&mut tasks.wakers)
        };
        woken.into_iter().for_each(|(_, waker)| waker.wake());
    }

    /// Counts a listener in; news from now on ends its wait.
    pub(crate) fn listen(&self) -> Listener {
        self.inner.listeners.fetch_add(1, SeqCst);
        Listener {
            inner: Arc::clone(&self.inner),
            epoch: self.inner.epoch.load(SeqCst),
            slot: None,
        }
    }

    /// Blocks until `check` is ready, checking again after every
    /// notification and whenever the instant it asked to wait until passes.
    pub(crate) fn wait<R>(&self, mut check: impl FnMut() -> Check<R>) -> R {
        loop {
            if let Check::Ready(done) = check() {
                return done;
            }
            let listener = self.listen();
            match check() {
                Check::Ready(done) => return done,
                Check::Wait(until) => listener.sleep(until),
            }
        }
    }
}

/// A counted-in waiter of one [`Signal`]; counted out when dropped.
pub(crate) struct Listener {
    inner: Arc<Inner>,
    epoch: u64,
    /// This listener's waker slot, once polled.
    slot: Option<u64>,
}

impl Listener {
    fn heard(&self) -> bool {
        self.inner.epoch.load(SeqCst) != self.epoch
    }

    /// Sleeps until the signal is notified or `until` passes.
    fn sleep(self, until: Option<Instant>) {
        let mut tasks = self.inner.tasks.lock();
        while !self.heard() {
            tasks = match until {
                None => self.inner.wake.wait(tasks),
                Some(until) if Instant::now() < until => self.inner.wake.wait_until(tasks, until),
                Some(_) => break,
            };
        }
    }

    /// Ready once the signal was notified after [`Signal::listen`];
    /// otherwise registers the task's waker for the next notification.
    #[cfg_attr(not(feature = "async"), allow(dead_code))]
    pub(crate) fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.heard() {
            return Poll::Ready(());
        }
        let mut tasks = self.inner.tasks.lock();
        if self.heard() {
            return Poll::Ready(());
        }
        let tasks = &mut *tasks;
        match self
            .slot
            .and_then(|slot| tasks.wakers.iter_mut().find(|(at, _)| *at == slot))
        {
            Some((_, waker)) => waker.clone_from(cx.waker()),
            None => {
                let slot = tasks.next_slot;
                tasks.next_slot += 1;
                tasks.wakers.push((slot, cx.waker().clone()));
                self.slot = Some(slot);
            }
        }
        Poll::Pending
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Some(slot) = self.slot {
            self.inner.tasks.lock().wakers.retain(|(at, _)| *at != slot);
        }
        self.inner.listeners.fetch_sub(1, SeqCst);
    }
}

#[cfg(all(test, not(shuttle)))]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::task::Wake;
    use std::time::Duration;

    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn notify_without_listeners_changes_nothing() {
        let signal = Signal::default();
        signal.notify();
        assert_eq!(signal.inner.epoch.load(SeqCst), 0);
    }

    #[test]
    fn a_blocked_waiter_wakes_on_news_it_can_use() {
        let signal = Signal::default();
        let flag = Arc::new(AtomicBool::new(false));
        let waiter = {
            let (signal, flag) = (signal.clone(), Arc::clone(&flag));
            std::thread::spawn(move || {
                signal.wait(|| match flag.load(SeqCst) {
                    true => Check::Ready(()),
                    false => Check::Wait(None),
                })
            })
        };
        while signal.inner.listeners.load(SeqCst) == 0 {
            std::thread::yield_now();
        }
        flag.store(true, SeqCst);
        signal.notify();
        waiter.join().unwrap();
        assert_eq!(signal.inner.listeners.load(SeqCst), 0);
    }

    #[test]
    fn a_wait_ends_when_its_instant_passes() {
        let signal = Signal::default();
        let until = Instant::now() + Duration::from_millis(5);
        let waited = signal.wait(|| match Instant::now() >= until {
            true => Check::Ready("timed out"),
            false => Check::Wait(Some(until)),
        });
        assert_eq!(waited, "timed out");
    }

    #[test]
    fn a_polled_listener_is_woken_once_and_forgotten_when_dropped() {
        let signal = Signal::default();
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(Arc::clone(&count));
        let mut cx = Context::from_waker(&waker);
        let mut listener = signal.listen();
        assert!(listener.poll(&mut cx).is_pending());
        assert!(listener.poll(&mut cx).is_pending()); // same slot refreshed
        assert_eq!(signal.inner.tasks.lock().wakers.len(), 1);
        signal.notify();
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert!(listener.poll(&mut cx).is_ready());

        let mut second = signal.listen();
        assert!(second.poll(&mut cx).is_pending());
        drop(second);
        drop(listener);
        assert!(signal.inner.tasks.lock().wakers.is_empty());
        assert_eq!(signal.inner.listeners.load(SeqCst), 0);
    }
}
