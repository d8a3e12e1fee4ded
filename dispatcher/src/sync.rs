//! The synchronization primitives the dispatcher is written against.
//!
//! Normally these are `parking_lot`'s lock and the standard library's
//! atomics and threads (parking included: waiters park, see `signal`).
//! Built with `--cfg shuttle` they are the model checker's, so the tests in
//! `tests/models.rs` explore the interleavings of the real code (see
//! ARCHITECTURE.md). Shuttle's timed park never times out, so a waiter that
//! no notification reaches shows up as a deadlock: exactly what the models
//! look for.

pub(crate) use std::sync::atomic::Ordering;

#[cfg(shuttle)]
pub(crate) use model::*;
#[cfg(not(shuttle))]
pub(crate) use real::*;

#[cfg(not(shuttle))]
mod real {
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
}

#[cfg(shuttle)]
mod model {
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
}
