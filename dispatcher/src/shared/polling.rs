//! The async side of [`Shared`]: polling for a batch or for room with a
//! waker registered under the same lock as the look, and forgetting it.

use std::sync::atomic::Ordering::Relaxed;
use std::task::Waker;
use std::time::Instant;

use super::{Shared, resume};
use crate::batch::{FlushReason, Sealed};
use crate::config::Policy;
use crate::error::EnqueueError;
use crate::state::Room;
use crate::weight::{Weight, charge};

/// What an async receive found.
pub(crate) enum PolledBatch<T> {
    Ready(Sealed<T>),
    Closed,
    /// Nothing yet; the open batch (if any) is due at this instant.
    Pending(Option<Instant>),
}

/// Why an async admission did not complete.
pub(crate) enum PolledEnqueue<T> {
    /// No room yet: the waker is registered; here is the item back.
    Wait(T),
    Refused(EnqueueError<T>),
}

impl<T: Weight> Shared<T> {
    /// The async receive: a batch if one is ready (cutting the open one if
    /// its interval elapsed), the end of the stream, or `Pending` with the
    /// open batch's deadline after registering `waker`.
    pub(crate) fn poll_batch(&self, slot: &mut Option<u64>, waker: &Waker) -> PolledBatch<T> {
        let mut st = self.lock();
        loop {
            if let Some(sealed) = st.take_ready() {
                st.batch_wakers.remove(slot);
                self.handed_over(st);
                return PolledBatch::Ready(sealed);
            }
            let due = st.due();
            if due.is_none() && st.closed {
                st.batch_wakers.remove(slot);
                return PolledBatch::Closed;
            }
            if due.is_some_and(|due| Instant::now() >= due) {
                st.seal(FlushReason::Interval);
                continue;
            }
            st.batch_wakers.register(slot, waker);
            return PolledBatch::Pending(due);
        }
    }

    /// The async admission under Block: admits if there is room, otherwise
    /// registers `waker` for the next freed bytes and hands the item back.
    pub(crate) fn poll_enqueue(
        &self,
        item: T,
        slot: &mut Option<u64>,
        waker: &Waker,
    ) -> Result<(), PolledEnqueue<T>> {
        if !matches!(self.policy, Policy::Block { .. }) {
            return self
                .try_enqueue(item)
                .map_err(|err| PolledEnqueue::Refused(err.into()));
        }
        let weight = charge(&item);
        let mut st = self.lock();
        match self.admission(&st, &item, weight) {
            Room::Fits => {
                resume(self.append_and_wake(st, item, weight));
                Ok(())
            }
            Room::Full => match &self.pool {
                None => {
                    st.room_wakers.register(slot, waker);
                    Err(PolledEnqueue::Wait(item))
                }
                Some(pool) => {
                    drop(st);
                    if !pool.register_room(slot, waker, weight) {
                        // Room appeared meanwhile: have the task look again.
                        waker.wake_by_ref();
                    }
                    Err(PolledEnqueue::Wait(item))
                }
            },
            room => {
                let panic = st.hook_panic();
                drop(st);
                resume(panic);
                Err(PolledEnqueue::Refused(self.refuse(room, item).into()))
            }
        }
    }

    /// An enqueue future is done or dropped: forget its waker (where
    /// [`poll_enqueue`](Self::poll_enqueue) registered it).
    pub(crate) fn forget_room_waker(&self, slot: &mut Option<u64>) {
        match &self.pool {
            Some(pool) => pool.forget_room(slot),
            None if slot.is_some() => self.lock().room_wakers.remove(slot),
            None => {}
        }
    }

    /// A stream is done or dropped: forget its waker.
    pub(crate) fn forget_batch_waker(&self, slot: &mut Option<u64>) {
        if slot.is_some() {
            self.lock().batch_wakers.remove(slot);
        }
    }

    /// Counts an async wait for room that ran out of time.
    pub(crate) fn count_timeout(&self) {
        self.refusals.timeout.fetch_add(1, Relaxed);
    }
}
