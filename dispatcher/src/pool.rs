//! The byte budget that the partitions of a partitioned dispatcher share,
//! and the signals that cross partitions: room freed anywhere (for blocked
//! producers) and a batch ready anywhere (for receivers).
//!
//! Bytes are reserved with a compare-and-swap before an event is appended
//! to its partition, so the summed weight across partitions never exceeds
//! the limit; they are released when the event is delivered, evicted or
//! returned. Waiting uses the usual announce-then-check order: a waiter
//! counts itself in (SeqCst) before its last look, a releaser or sealer
//! publishes its change (SeqCst) before reading that count, and the
//! notification is sent under the waiter's mutex, so it cannot fall between
//! a waiter's look and its sleep.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
#[cfg(feature = "async")]
use std::task::Waker;
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

use crate::wakers::Wakers;

pub(crate) struct Pool {
    used: AtomicUsize,
    max: AtomicUsize,
    /// Set before the partitions close, so no waiter sleeps through it.
    closed: AtomicBool,
    peak: AtomicUsize,
    /// Blocked producers and async enqueues waiting for bytes.
    room: Mutex<Wakers>,
    room_freed: Condvar,
    room_waiting: AtomicUsize,
    /// Receivers and streams waiting for a batch in any partition.
    batches: Mutex<Wakers>,
    batch_ready: Condvar,
    batch_waiting: AtomicUsize,
    /// Bumped on every batch signal, so a waiter can tell it missed one.
    generation: AtomicU64,
}

impl Pool {
    pub(crate) fn new(max: usize) -> Self {
        Pool {
            used: AtomicUsize::new(0),
            max: AtomicUsize::new(max),
            closed: AtomicBool::new(false),
            peak: AtomicUsize::new(0),
            room: Mutex::new(Wakers::default()),
            room_freed: Condvar::new(),
            room_waiting: AtomicUsize::new(0),
            batches: Mutex::new(Wakers::default()),
            batch_ready: Condvar::new(),
            batch_waiting: AtomicUsize::new(0),
            generation: AtomicU64::new(0),
        }
    }

    pub(crate) fn used(&self) -> usize {
        self.used.load(SeqCst)
    }

    pub(crate) fn peak(&self) -> usize {
        self.peak.load(SeqCst)
    }

    pub(crate) fn max(&self) -> usize {
        self.max.load(SeqCst)
    }

    /// Admission is closing: wakes every waiter, and none sleeps again.
    pub(crate) fn close(&self) {
        self.closed.store(true, SeqCst);
        self.wake_room();
        self.signal_batch();
    }

    /// A new limit; raising it may let waiters in.
    pub(crate) fn set_max(&self, max: usize) {
        self.max.store(max, SeqCst);
        self.wake_room();
    }

    /// Whether `weight` more bytes would fit now (a look, not a promise).
    pub(crate) fn fits(&self, weight: usize) -> bool {
        self.used() + weight <= self.max()
    }

    /// Reserves `weight` bytes if they fit.
    pub(crate) fn try_reserve(&self, weight: usize) -> bool {
        let max = self.max();
        let reserved = self
            .used
            .fetch_update(SeqCst, SeqCst, |used| {
                used.checked_add(weight).filter(|&after| after <= max)
            })
            .is_ok();
        if reserved {
            self.peak.fetch_max(self.used(), SeqCst);
        }
        reserved
    }

    /// Takes bytes whatever the limit (after evicting as many).
    pub(crate) fn force_reserve(&self, weight: usize) {
        self.used.fetch_add(weight, SeqCst);
    }

    /// Gives back reserved bytes and wakes whoever waits for room.
    pub(crate) fn release(&self, bytes: usize) {
        if bytes == 0 {
            return;
        }
        self.used.fetch_sub(bytes, SeqCst);
        self.wake_room();
    }

    /// Wakes every producer and task waiting for room.
    pub(crate) fn wake_room(&self) {
        if self.room_waiting.load(SeqCst) > 0 {
            let tasks = {
                let mut wakers = self.room.lock();
                self.room_freed.notify_all();
                wakers.take()
            };
            drop(tasks);
        }
    }

    /// Blocks until `weight` bytes fit or `deadline` passes (the caller then
    /// tries to reserve them; another producer may win the race).
    pub(crate) fn wait_for_room(&self, weight: usize, deadline: Instant) {
        let mut guard = self.room.lock();
        self.room_waiting.fetch_add(1, SeqCst);
        if !self.fits(weight) && !self.closed.load(SeqCst) {
            self.room_freed.wait_until(&mut guard, deadline);
        }
        self.room_waiting.fetch_sub(1, SeqCst);
    }

    /// Registers an async enqueue's waker for freed bytes; false if the
    /// bytes fit already (then nothing is registered: try again).
    #[cfg(feature = "async")]
    pub(crate) fn register_room(
        &self,
        slot: &mut Option<u64>,
        waker: &Waker,
        weight: usize,
    ) -> bool {
        let mut wakers = self.room.lock();
        if slot.is_none() {
            self.room_waiting.fetch_add(1, SeqCst);
        }
        wakers.register(slot, waker);
        if self.fits(weight) || self.closed.load(SeqCst) {
            wakers.remove(slot);
            self.room_waiting.fetch_sub(1, SeqCst);
            return false;
        }
        true
    }

    /// Forgets an async enqueue's waker.
    #[cfg(feature = "async")]
    pub(crate) fn forget_room(&self, slot: &mut Option<u64>) {
        if slot.is_some() {
            self.room.lock().remove(slot);
            self.room_waiting.fetch_sub(1, SeqCst);
        }
    }

    /// A batch became ready (or a deadline changed) in some partition.
    pub(crate) fn signal_batch(&self) {
        self.generation.fetch_add(1, SeqCst);
        if self.batch_waiting.load(SeqCst) > 0 {
            let tasks = {
                let mut wakers = self.batches.lock();
                self.batch_ready.notify_all();
                wakers.take()
            };
            drop(tasks);
        }
    }

    /// Counts a receiver in before it looks at the partitions; returns the
    /// signal count to pass to [`wait_for_batch`](Self::wait_for_batch).
    pub(crate) fn announce_receiver(&self) -> u64 {
        self.batch_waiting.fetch_add(1, SeqCst);
        self.generation.load(SeqCst)
    }

    /// Sleeps until a batch is signalled after `seen`, or `until`; then
    /// counts the receiver out.
    pub(crate) fn wait_for_batch(&self, seen: u64, until: Option<Instant>) {
        let mut batches = self.batches.lock();
        if self.generation.load(SeqCst) == seen {
            match until {
                Some(until) => {
                    self.batch_ready.wait_until(&mut batches, until);
                }
                None => self.batch_ready.wait(&mut batches),
            }
        }
        drop(batches);
        self.batch_waiting.fetch_sub(1, SeqCst);
    }

    /// Counts a receiver out without sleeping.
    pub(crate) fn retire_receiver(&self) {
        self.batch_waiting.fetch_sub(1, SeqCst);
    }

    /// Registers a stream's waker for the next signal; false if one came
    /// after `seen` (then nothing is registered: look again).
    #[cfg(feature = "async")]
    pub(crate) fn register_batch(&self, slot: &mut Option<u64>, waker: &Waker, seen: u64) -> bool {
        let mut batches = self.batches.lock();
        if self.generation.load(SeqCst) != seen {
            return false;
        }
        if slot.is_none() {
            self.batch_waiting.fetch_add(1, SeqCst);
        }
        batches.register(slot, waker);
        true
    }

    /// Forgets a stream's waker.
    #[cfg(feature = "async")]
    pub(crate) fn forget_batch(&self, slot: &mut Option<u64>) {
        if slot.is_some() {
            self.batches.lock().remove(slot);
            self.batch_waiting.fetch_sub(1, SeqCst);
        }
    }

    /// The signal count now (for a stream about to look).
    #[cfg(feature = "async")]
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_never_exceed_the_limit() {
        let pool = Pool::new(10);
        assert!(pool.try_reserve(6));
        assert!(!pool.try_reserve(5));
        assert!(pool.try_reserve(4));
        assert_eq!((pool.used(), pool.peak()), (10, 10));
        pool.release(6);
        assert!(pool.fits(6) && !pool.fits(7));
        pool.set_max(4);
        assert!(!pool.try_reserve(1));
    }

    #[test]
    fn concurrent_reservations_stay_within_the_limit() {
        let pool = std::sync::Arc::new(Pool::new(1000));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let pool = std::sync::Arc::clone(&pool);
                std::thread::spawn(move || {
                    let mut held = 0;
                    for i in 0..10_000usize {
                        if pool.try_reserve(7) {
                            held += 7;
                        }
                        if i % 3 == 0 && held > 0 {
                            pool.release(7);
                            held -= 7;
                        }
                    }
                    pool.release(held);
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(pool.used(), 0);
        assert!(pool.peak() <= 1000);
    }
}
