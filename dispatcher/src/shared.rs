//! The state behind one lock, the two condition variables that wait on it,
//! and every operation that needs both.
//!
//! Nothing in here runs user code while holding the lock except
//! [`Weight::weight`] during eviction; evicted events, the eviction hook and
//! event destructors all run after the lock is released.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::batch::{FlushReason, Sealed};
use crate::config::{EvictHook, Limits, Policy};
use crate::error::{RecvTimeoutError, TryEnqueueError, TryRecvError};
use crate::state::{Room, State};
use crate::weight::{Weight, charge};

pub(crate) struct Shared<T> {
    state: Mutex<State<T>>,
    /// Receivers wait here for a sealed batch or an open batch's deadline.
    batch_ready: Condvar,
    /// Blocked producers and shutdown wait here for bytes to be freed.
    room_freed: Condvar,
    /// Fixed at build time, so reading it needs no lock.
    pub(crate) policy: Policy,
    on_evict: Option<EvictHook<T>>,
}

/// Why a blocking admission gave up.
pub(crate) enum Refused<T> {
    Full(T),
    Timeout(T),
    TooLarge(T),
    Closed(T),
}

/// Who to wake once the lock is released.
#[derive(Default)]
struct Wake {
    one_receiver: bool,
    all_waiting: bool,
}

impl<T> Shared<T> {
    /// Locks the state. A panic elsewhere cannot leave it half-updated (no
    /// user code runs between related updates), so poisoning is ignored.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn recycle(&self, buffer: Vec<T>) {
        self.lock().recycle(buffer);
    }
}

impl<T: Weight> Shared<T> {
    pub(crate) fn new(
        limits: Limits,
        policy: Policy,
        on_evict: Option<EvictHook<T>>,
        seed: u64,
    ) -> Self {
        Shared {
            state: Mutex::new(State::new(limits, seed)),
            batch_ready: Condvar::new(),
            room_freed: Condvar::new(),
            policy,
            on_evict,
        }
    }

    fn wake(&self, wake: Wake) {
        if wake.all_waiting {
            self.batch_ready.notify_all();
            self.room_freed.notify_all();
        } else if wake.one_receiver {
            self.batch_ready.notify_one();
        }
    }

    fn append(st: &mut State<T>, item: T, weight: usize) -> Wake {
        let wake = st.append(item, weight);
        Wake {
            one_receiver: wake && st.waiting_receivers > 0,
            all_waiting: false,
        }
    }

    /// Admits without waiting. Under DropOldest, evicts to make room.
    pub(crate) fn try_enqueue(&self, item: T) -> Result<(), TryEnqueueError<T>> {
        let weight = charge(&item);
        let mut evicted = Vec::new();
        let mut st = self.lock();
        let outcome = match st.room_for(weight) {
            Room::Fits => Ok(Self::append(&mut st, item, weight)),
            Room::Full if self.policy == Policy::DropOldest => {
                st.evict_for(weight, |old| evicted.push(old));
                Ok(Self::append(&mut st, item, weight))
            }
            Room::Full => {
                st.stats.rejected.full += 1;
                Err(TryEnqueueError::Full(item))
            }
            Room::TooLarge => {
                st.stats.rejected.too_large += 1;
                Err(TryEnqueueError::TooLarge(item))
            }
            Room::Closed => {
                st.stats.rejected.closed += 1;
                Err(TryEnqueueError::Closed(item))
            }
        };
        drop(st);
        self.hand_over_evicted(evicted);
        outcome.map(|wake| self.wake(wake))
    }

    /// Admits, waiting for room until `deadline`. Under DropOldest, evicts
    /// instead of waiting.
    pub(crate) fn enqueue_until(&self, item: T, deadline: Instant) -> Result<(), Refused<T>> {
        let weight = charge(&item);
        let mut st = self.lock();
        loop {
            match st.room_for(weight) {
                Room::Fits => {
                    let wake = Self::append(&mut st, item, weight);
                    drop(st);
                    self.wake(wake);
                    return Ok(());
                }
                Room::Full if self.policy == Policy::DropOldest => {
                    drop(st);
                    return self.try_enqueue(item).map_err(|err| match err {
                        TryEnqueueError::Full(item) => Refused::Full(item),
                        TryEnqueueError::TooLarge(item) => Refused::TooLarge(item),
                        TryEnqueueError::Closed(item) => Refused::Closed(item),
                    });
                }
                Room::Full => {
                    let now = Instant::now();
                    if now >= deadline {
                        st.stats.rejected.timeout += 1;
                        return Err(Refused::Timeout(item));
                    }
                    st.waiting_for_room += 1;
                    st = self.wait_room(st, deadline - now);
                    st.waiting_for_room -= 1;
                }
                Room::TooLarge => {
                    st.stats.rejected.too_large += 1;
                    return Err(Refused::TooLarge(item));
                }
                Room::Closed => {
                    st.stats.rejected.closed += 1;
                    return Err(Refused::Closed(item));
                }
            }
        }
    }

    /// Admits every item or none.
    pub(crate) fn try_enqueue_all(&self, items: Vec<T>) -> Result<(), TryEnqueueError<Vec<T>>> {
        let total: usize = items.iter().map(charge).sum();
        let mut evicted = Vec::new();
        let mut st = self.lock();
        let refused = items.len() as u64;
        let room = st.room_for(total);
        let refusal = match room {
            Room::Fits => None,
            Room::Full if self.policy == Policy::DropOldest => {
                st.evict_for(total, |old| evicted.push(old));
                None
            }
            Room::Full => {
                st.stats.rejected.full += refused;
                Some(TryEnqueueError::Full as fn(Vec<T>) -> _)
            }
            Room::TooLarge => {
                st.stats.rejected.too_large += refused;
                Some(TryEnqueueError::TooLarge as fn(Vec<T>) -> _)
            }
            Room::Closed => {
                st.stats.rejected.closed += refused;
                Some(TryEnqueueError::Closed as fn(Vec<T>) -> _)
            }
        };
        if let Some(refusal) = refusal {
            return Err(refusal(items));
        }
        let mut wake = Wake::default();
        for item in items {
            let weight = charge(&item);
            wake.one_receiver |= Self::append(&mut st, item, weight).one_receiver;
        }
        drop(st);
        self.hand_over_evicted(evicted);
        self.wake(wake);
        Ok(())
    }

    fn hand_over_evicted(&self, evicted: Vec<T>) {
        if let Some(hook) = &self.on_evict {
            evicted.into_iter().for_each(|item| hook(item));
        }
    }

    fn wait_room<'a>(
        &self,
        st: MutexGuard<'a, State<T>>,
        timeout: Duration,
    ) -> MutexGuard<'a, State<T>> {
        self.room_freed
            .wait_timeout(st, timeout)
            .unwrap_or_else(PoisonError::into_inner)
            .0
    }

    /// Takes a sealed batch, cutting the open one if its interval elapsed;
    /// waits until `deadline` (forever if `None`).
    pub(crate) fn recv_until(
        &self,
        deadline: Option<Instant>,
    ) -> Result<Sealed<T>, RecvTimeoutError> {
        let mut st = self.lock();
        loop {
            if let Some(sealed) = st.take_ready() {
                let wake_room = st.waiting_for_room > 0;
                drop(st);
                if wake_room {
                    self.room_freed.notify_all();
                }
                return Ok(sealed);
            }
            let due = st.due();
            if due.is_none() && st.closed {
                return Err(RecvTimeoutError::Disconnected);
            }
            let wake_at = match (due, deadline) {
                (Some(due), Some(deadline)) => Some(due.min(deadline)),
                (due, deadline) => due.or(deadline),
            };
            let timeout = match wake_at {
                None => None,
                Some(at) => {
                    let now = Instant::now();
                    if due.is_some_and(|due| now >= due) {
                        st.seal(FlushReason::Interval);
                        continue;
                    }
                    if now >= at {
                        return Err(RecvTimeoutError::Timeout);
                    }
                    Some(at - now)
                }
            };
            st.waiting_receivers += 1;
            st = match timeout {
                None => self
                    .batch_ready
                    .wait(st)
                    .unwrap_or_else(PoisonError::into_inner),
                Some(timeout) => {
                    self.batch_ready
                        .wait_timeout(st, timeout)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
            st.waiting_receivers -= 1;
        }
    }

    /// Takes a sealed batch (or the open one, if its interval elapsed) without waiting.
    pub(crate) fn try_recv(&self) -> Result<Sealed<T>, TryRecvError> {
        self.recv_until(Some(Instant::now()))
            .map_err(|err| match err {
                RecvTimeoutError::Timeout => TryRecvError::Empty,
                RecvTimeoutError::Disconnected => TryRecvError::Disconnected,
            })
    }

    /// Cuts the open batch now.
    pub(crate) fn flush(&self) {
        let mut st = self.lock();
        let sealed = st.seal(FlushReason::Manual);
        let wake = Wake {
            one_receiver: sealed && st.waiting_receivers > 0,
            all_waiting: false,
        };
        drop(st);
        self.wake(wake);
    }

    pub(crate) fn set_limits(&self, limits: Limits) {
        let mut st = self.lock();
        st.set_limits(limits);
        drop(st);
        // Deadlines and room may both have changed.
        self.wake(Wake {
            one_receiver: false,
            all_waiting: true,
        });
    }

    /// Stops admission and seals the open batch; waiters learn of it.
    pub(crate) fn close(&self) {
        self.lock().close();
        self.wake(Wake {
            one_receiver: false,
            all_waiting: true,
        });
    }

    /// Waits until every accepted event is delivered or `deadline` passes
    /// (or no receiver is left); then returns what is still undelivered.
    pub(crate) fn drain_until(&self, deadline: Instant) -> Vec<T> {
        let mut st = self.lock();
        while st.stats.buffered_items > 0 && st.receivers > 0 {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            st.waiting_for_room += 1;
            st = self.wait_room(st, deadline - now);
            st.waiting_for_room -= 1;
        }
        st.take_all()
    }

    /// Stops admission and removes every undelivered event.
    pub(crate) fn stop(&self) -> Vec<T> {
        let mut st = self.lock();
        st.close();
        let all = st.take_all();
        drop(st);
        self.wake(Wake {
            one_receiver: false,
            all_waiting: true,
        });
        all
    }

    pub(crate) fn add_receiver(&self) {
        self.lock().receivers += 1;
    }

    /// With no receiver left nothing can be delivered: admission closes so
    /// producers learn it, and shutdown stops waiting.
    pub(crate) fn remove_receiver(&self) {
        let mut st = self.lock();
        st.receivers -= 1;
        if st.receivers == 0 {
            st.close();
            drop(st);
            self.wake(Wake {
                one_receiver: false,
                all_waiting: true,
            });
        }
    }
}
