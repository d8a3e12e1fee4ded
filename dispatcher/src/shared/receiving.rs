//! The pull side of [`Shared`]: taking sealed batches (cutting the open one
//! when its interval elapsed), waiting for them, and waking who the taken
//! bytes and batches concern.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use parking_lot::MutexGuard;

use super::Shared;
use crate::batch::{FlushReason, Sealed};
use crate::error::RecvTimeoutError;
use crate::state::State;
use crate::weight::Weight;

/// How many `spin_loop` rounds a receiver looks for a batch before it sleeps
/// (a few microseconds).
const SPIN_ROUNDS: u32 = 128;

/// What [`Shared::take_now`] found.
pub(crate) enum Taken<T> {
    Batch(Sealed<T>),
    Idle { due: Option<Instant>, closed: bool },
}

impl<T: Weight> Shared<T> {
    /// Takes a sealed batch, cutting the open one if its interval elapsed;
    /// waits until `deadline` (forever if `None`).
    pub(crate) fn recv_until(
        &self,
        deadline: Option<Instant>,
    ) -> Result<Sealed<T>, RecvTimeoutError> {
        let mut st = self.lock();
        let mut spun = false;
        loop {
            if let Some(sealed) = st.take_ready() {
                self.handed_over(st);
                return Ok(sealed);
            }
            let due = st.due();
            if due.is_none() && st.closed {
                return Err(RecvTimeoutError::Disconnected);
            }
            let now = Instant::now();
            if due.is_some_and(|due| now >= due) {
                st.seal(FlushReason::Interval);
                continue;
            }
            if deadline.is_some_and(|deadline| now >= deadline) {
                self.pass_on(st);
                return Err(RecvTimeoutError::Timeout);
            }
            if !spun {
                // Batches often follow each other closely: look for the next
                // one briefly before paying for a sleep and a wake-up.
                // The state may change meanwhile: look at it afresh after.
                spun = true;
                MutexGuard::unlocked(&mut st, || self.spin_for_batch());
                continue;
            }
            st.waiting_receivers += 1;
            match (due, deadline) {
                (None, None) => self.batch_ready.wait(&mut st),
                (due, deadline) => {
                    let wake_at = due.into_iter().chain(deadline).min().unwrap_or(now);
                    self.batch_ready.wait_until(&mut st, wake_at);
                }
            }
            st.waiting_receivers -= 1;
        }
    }

    /// After a batch was taken: wakes whoever waits for the bytes it freed
    /// (pull mode), for the drain, or for more batches.
    pub(crate) fn handed_over(&self, mut st: MutexGuard<'_, State<T>>) {
        self.publish_flow(&st);
        let wake_producer = st.waiting_for_room > 0;
        let _tasks = if st.hold_in_flight {
            None
        } else {
            st.room_wakers.take()
        };
        let wake_shutdown =
            (st.stats.buffered_items == 0 && st.waiting_for_drain) || st.waiting_for_settle > 0;
        self.pass_on(st);
        if wake_producer {
            self.room_freed.notify_one();
        }
        if wake_shutdown {
            self.drained.notify_all();
        }
    }

    /// Takes a ready batch now (cutting the open one if its interval
    /// elapsed), or says when the open batch is due and whether this
    /// partition is closed. For receivers that look at several partitions.
    pub(crate) fn take_now(&self) -> Taken<T> {
        let mut st = self.lock();
        loop {
            if let Some(sealed) = st.take_ready() {
                self.handed_over(st);
                return Taken::Batch(sealed);
            }
            let due = st.due();
            if due.is_some_and(|due| Instant::now() >= due) {
                st.seal(FlushReason::Interval);
                continue;
            }
            return Taken::Idle {
                due,
                closed: st.closed,
            };
        }
    }

    /// Spins a few microseconds (bounded, once per receive) for a sealed batch.
    fn spin_for_batch(&self) {
        for _ in 0..SPIN_ROUNDS {
            if self.gauges.ready_batches.load(Relaxed) > 0 {
                return;
            }
            std::hint::spin_loop();
        }
    }
}
