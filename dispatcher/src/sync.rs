//! The synchronization primitives the dispatcher is written against.
//!
//! Normally these are `parking_lot`'s lock and condition variable and the
//! standard library's atomics and threads. Built with `--cfg shuttle` they
//! are the model checker's, so the tests in `tests/models.rs` explore the
//! interleavings of the real code (see ARCHITECTURE.md). Both sides offer
//! the same small API: a lock whose guard is passed by value through
//! [`Condvar::wait`] and [`Condvar::wait_until`].

pub(crate) use std::sync::atomic::Ordering;

#[cfg(shuttle)]
pub(crate) use model::*;
#[cfg(not(shuttle))]
pub(crate) use real::*;

#[cfg(not(shuttle))]
mod real {
    use std::time::Instant;

    pub(crate) use parking_lot::MutexGuard;
    pub(crate) use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
    pub(crate) use std::thread;

    /// A lock; `parking_lot`'s, whose eventual fairness hands it to a waiting
    /// receiver (or `stats()`) instead of letting a crowd of producers
    /// re-take it forever.
    #[derive(Default)]
    pub(crate) struct Mutex<T>(parking_lot::Mutex<T>);

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Mutex(parking_lot::Mutex::new(value))
        }

        #[inline]
        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            self.0.lock()
        }
    }

    #[derive(Default)]
    pub(crate) struct Condvar(parking_lot::Condvar);

    impl Condvar {
        pub(crate) fn wait<'a, T>(&self, mut guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
            self.0.wait(&mut guard);
            guard
        }

        pub(crate) fn wait_until<'a, T>(
            &self,
            mut guard: MutexGuard<'a, T>,
            until: Instant,
        ) -> MutexGuard<'a, T> {
            self.0.wait_until(&mut guard, until);
            guard
        }

        pub(crate) fn notify_all(&self) {
            self.0.notify_all();
        }
    }
}

#[cfg(shuttle)]
mod model {
    use std::time::Instant;

    pub(crate) use shuttle::sync::MutexGuard;
    pub(crate) use shuttle::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
    pub(crate) use shuttle::thread;

    /// The model checker's lock. Nothing in the dispatcher panics while
    /// holding a lock (user code under it is caught), so a poisoned lock is
    /// taken as it is.
    #[derive(Default)]
    pub(crate) struct Mutex<T>(shuttle::sync::Mutex<T>);

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Mutex(shuttle::sync::Mutex::new(value))
        }

        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            self.0.lock().unwrap_or_else(|poison| poison.into_inner())
        }
    }

    /// The model checker's condition variable. Its timed wait never times
    /// out, so a waiter that no notification reaches shows up as a
    /// deadlock: exactly what the models look for.
    #[derive(Default)]
    pub(crate) struct Condvar(shuttle::sync::Condvar);

    impl Condvar {
        pub(crate) fn wait<'a, T>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
            self.0
                .wait(guard)
                .unwrap_or_else(|poison| poison.into_inner())
        }

        pub(crate) fn wait_until<'a, T>(
            &self,
            guard: MutexGuard<'a, T>,
            until: Instant,
        ) -> MutexGuard<'a, T> {
            let left = until.saturating_duration_since(Instant::now());
            self.0
                .wait_timeout(guard, left)
                .map(|(guard, _)| guard)
                .unwrap_or_else(|poison| poison.into_inner().0)
        }

        pub(crate) fn notify_all(&self) {
            self.0.notify_all();
        }
    }
}
