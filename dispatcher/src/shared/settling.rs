//! Batches that leave and settle later: sink mode keeps a taken batch
//! charged until the sink is done with it, and `flush_and_wait` waits for
//! everything sealed before it to settle.

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use super::Shared;
use crate::batch::Receipt;
use crate::weight::Weight;

/// How often `flush_and_wait` looks again without being woken.
const SETTLE_POLL: Duration = Duration::from_millis(5);

impl<T: Weight> Shared<T> {
    /// Sink mode: taken batches stay charged until settled.
    pub(crate) fn hold_in_flight(&self) {
        self.lock().hold_in_flight = true;
    }

    pub(crate) fn count_retry(&self) {
        self.attempts.retries.fetch_add(1, Relaxed);
    }

    pub(crate) fn count_attempt_failure(&self, error: &crate::sink::FlushError) {
        use crate::sink::FlushError;
        match error {
            FlushError::TimedOut(_) => self.attempts.timeouts.fetch_add(1, Relaxed),
            FlushError::Panicked(_) => self.attempts.panics.fetch_add(1, Relaxed),
            _ => 0,
        };
    }

    /// Ends a taken batch's flight (sink mode) and wakes who may be waiting
    /// for the bytes or the settlement.
    pub(crate) fn settle(&self, receipt: Receipt, delivered: bool) {
        let mut st = self.lock();
        st.settle(receipt, delivered);
        self.publish_flow(&st);
        let _tasks = st.room_wakers.take();
        let wake_producer = st.waiting_for_room > 0;
        let wake_waiters =
            (st.stats.buffered_items == 0 && st.waiting_for_drain) || st.waiting_for_settle > 0;
        drop(st);
        if wake_producer {
            self.room_freed.notify_one();
        }
        if wake_waiters {
            self.drained.notify_all();
        }
    }

    /// Cuts the open batch and waits until it and every batch before it
    /// have settled (taken by a receiver, or written or failed by the
    /// sink), or until `deadline`. Returns whether they settled.
    pub(crate) fn flush_and_wait(&self, deadline: Instant) -> bool {
        let upto = self.flush_marked();
        let mut st = self.lock();
        while st.oldest_unsettled() < upto {
            let now = Instant::now();
            if now >= deadline || (!st.has_receivers && st.has_ready()) {
                return false;
            }
            // Evictions and `stop` settle batches too without waking anyone:
            // look again at least every few milliseconds.
            let wake_at = deadline.min(now + SETTLE_POLL);
            st.waiting_for_settle += 1;
            self.drained.wait_until(&mut st, wake_at);
            st.waiting_for_settle -= 1;
        }
        true
    }

    /// Waits until no batch is in flight, or `deadline`; returns whether
    /// none is.
    pub(crate) fn wait_in_flight(&self, deadline: Instant) -> bool {
        let mut st = self.lock();
        while st.stats.in_flight_items > 0 && Instant::now() < deadline {
            st.waiting_for_settle += 1;
            self.drained.wait_until(&mut st, deadline);
            st.waiting_for_settle -= 1;
        }
        st.stats.in_flight_items == 0
    }
}
