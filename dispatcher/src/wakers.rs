//! Wakers of async tasks waiting on the dispatcher, kept beside the
//! condition variables that blocked threads wait on.
//!
//! A task registers under the dispatcher's lock in the same critical
//! section in which it found nothing to do, and wakers are taken under the
//! lock by whoever changes that, so a wake-up cannot fall between the two.
//! Each waiting future holds one slot id and removes it when dropped, so the
//! list is bounded by the number of live futures.

use std::task::Waker;

#[derive(Default)]
pub(crate) struct Wakers {
    next_id: u64,
    list: Vec<(u64, Waker)>,
}

impl Wakers {
    /// Registers (or refreshes) the waker of the future owning `slot`.
    #[cfg_attr(not(feature = "async"), allow(dead_code))]
    pub(crate) fn register(&mut self, slot: &mut Option<u64>, waker: &Waker) {
        if let Some(id) = *slot {
            if let Some((_, old)) = self.list.iter_mut().find(|(at, _)| *at == id) {
                old.clone_from(waker);
                return;
            }
        }
        let id = self.next_id;
        self.next_id += 1;
        self.list.push((id, waker.clone()));
        *slot = Some(id);
    }

    /// Forgets the waker of a future that is done or dropped.
    #[cfg_attr(not(feature = "async"), allow(dead_code))]
    pub(crate) fn remove(&mut self, slot: &mut Option<u64>) {
        if let Some(id) = slot.take() {
            self.list.retain(|(at, _)| *at != id);
        }
    }

    /// Takes every waker, to wake once the lock is released. A woken future
    /// registers again if it still has to wait.
    /// `None` (nothing to drop on the hot path) when no task waits.
    pub(crate) fn take(&mut self) -> Option<Woken> {
        if self.list.is_empty() {
            None
        } else {
            Some(Woken(std::mem::take(&mut self.list)))
        }
    }
}

/// Wakers taken under the lock; they wake when this is dropped, which the
/// callers do after releasing it.
#[must_use = "wakers wake when dropped: drop after the lock"]
pub(crate) struct Woken(Vec<(u64, Waker)>);

impl Drop for Woken {
    fn drop(&mut self) {
        self.0.drain(..).for_each(|(_, waker)| waker.wake());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn one_slot_per_future_and_every_waker_woken_once() {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(Arc::clone(&count));
        let mut wakers = Wakers::default();
        let (mut a, mut b) = (None, None);
        wakers.register(&mut a, &waker);
        wakers.register(&mut a, &waker);
        wakers.register(&mut b, &waker);
        assert_eq!(wakers.list.len(), 2);
        wakers.remove(&mut b);
        assert_eq!((wakers.list.len(), b), (1, None));
        drop(wakers.take());
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        drop(wakers.take());
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
    }
}
