//! Batches that leave and settle later: sink mode keeps a taken batch
//! charged until the sink is done with it (or puts it back if its worker
//! vanished), and checkpoints wait on the "settled" signal for everything
//! sealed before them.

use std::time::Instant;

use super::Core;
use crate::batch::{Receipt, Sealed};
use crate::signal::Check;
use crate::sync::Ordering::SeqCst;

impl<T> Core<T> {
    /// Ends a taken batch's flight (sink mode): its bytes are freed and its
    /// events counted as delivered or failed.
    pub(crate) fn settle(&self, part: usize, receipt: Receipt, delivered: bool) {
        self.lock(part).settle(receipt, delivered);
    }

    /// A taken batch nobody settled goes back to its queue, in sealing
    /// order; or, once the dispatcher has shut down, is counted failed and
    /// handed back for the error hook.
    pub(crate) fn requeue(&self, part: usize, sealed: Sealed<T>) -> Option<Sealed<T>> {
        self.lock(part).requeue(sealed)
    }

    /// Cuts the open batches and waits until they and every batch before
    /// them have settled (taken by a receiver, or written or failed by the
    /// sink), or until `deadline`. Returns whether they settled.
    pub(crate) fn flush_and_wait(&self, deadline: Instant) -> bool {
        if !self.spill_read_back(deadline) {
            return false;
        }
        let upto = self.seal_all();
        self.settled.wait(|| {
            let mut settled = true;
            let mut stuck = false;
            for (part, &upto) in upto.iter().enumerate() {
                let st = self.lock(part);
                if st.oldest_unsettled() < upto {
                    settled = false;
                    stuck |= st.has_ready() && self.no_receivers.load(SeqCst);
                }
            }
            if settled {
                Check::Ready(true)
            } else if stuck || Instant::now() >= deadline {
                Check::Ready(false)
            } else {
                Check::Wait(Some(deadline))
            }
        })
    }

    /// With a disk tier: waits until every record appended before the
    /// call is back in memory (then sealing covers it), or `deadline`.
    fn spill_read_back(&self, deadline: Instant) -> bool {
        #[cfg(feature = "spill")]
        if let Some(tier) = &self.spill {
            let upto = tier.last_appended();
            return self.settled.wait(|| {
                if tier.read_back(upto) {
                    Check::Ready(true)
                } else if Instant::now() >= deadline || self.no_receivers.load(SeqCst) {
                    Check::Ready(false)
                } else {
                    Check::Wait(Some(deadline))
                }
            });
        }
        let _ = deadline;
        true
    }

    /// Waits until no batch is in flight, or `deadline`; returns whether
    /// none is.
    pub(crate) fn wait_in_flight(&self, deadline: Instant) -> bool {
        self.settled.wait(|| {
            let in_flight: usize = (0..self.partitions())
                .map(|part| self.lock(part).stats.in_flight_items)
                .sum();
            if in_flight == 0 {
                Check::Ready(true)
            } else if Instant::now() >= deadline {
                Check::Ready(false)
            } else {
                Check::Wait(Some(deadline))
            }
        })
    }
}
