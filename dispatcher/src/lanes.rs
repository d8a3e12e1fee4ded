//! The partitions of one dispatcher and the operations that span them.
//!
//! Without [`partitions`](crate::Builder::partitions) there is one
//! partition and every operation goes straight to it. With `n > 1` each
//! partition is a complete batch builder with its own lock, and producers
//! are spread over them round-robin; they share one byte budget
//! ([`Pool`]), and receivers take batches from whichever partition has one.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Instant;

use crate::batch::Sealed;
use crate::config::Limits;
use crate::error::RecvTimeoutError;
use crate::pool::Pool;
use crate::shared::{Shared, Taken as PartTaken};

/// A batch taken from a partition, with the partition it belongs to.
pub(crate) type Taken<T> = (Arc<Shared<T>>, Sealed<T>);
use crate::stats::Stats;
use crate::weight::Weight;

pub(crate) struct Lanes<T> {
    parts: Box<[Arc<Shared<T>>]>,
    pool: Option<Arc<Pool>>,
    /// The partition the next producer handle gets.
    next_producer: AtomicUsize,
    /// Where the next multi-partition receive starts looking.
    next_scan: AtomicUsize,
    /// Live receivers. Each partition counts one until the last is gone.
    receivers: AtomicUsize,
    /// For `tracing` and `metrics`.
    #[cfg_attr(not(any(feature = "metrics", feature = "tracing")), allow(dead_code))]
    pub(crate) name: Arc<str>,
    #[cfg(feature = "metrics")]
    metrics: crate::metrics::Throttle,
}

/// What a partition-spanning look at the partitions found.
enum Scan<T> {
    Batch(Arc<Shared<T>>, Sealed<T>),
    Idle { due: Option<Instant>, closed: bool },
}

impl<T: Weight> Lanes<T> {
    pub(crate) fn new(
        parts: Vec<Arc<Shared<T>>>,
        pool: Option<Arc<Pool>>,
        name: Arc<str>,
        #[cfg_attr(not(feature = "metrics"), allow(unused_variables))] metrics_every: Option<
            std::time::Duration,
        >,
    ) -> Self {
        Lanes {
            parts: parts.into_boxed_slice(),
            pool,
            next_producer: AtomicUsize::new(0),
            next_scan: AtomicUsize::new(0),
            receivers: AtomicUsize::new(1),
            name,
            #[cfg(feature = "metrics")]
            metrics: crate::metrics::Throttle::new(metrics_every),
        }
    }

    /// The first partition: the only one when [`pool`](Self::pool) is `None`.
    #[cfg(feature = "async")]
    pub(crate) fn first(&self) -> &Arc<Shared<T>> {
        &self.parts[0]
    }

    /// The shared budget; `Some` exactly when there are several partitions.
    #[cfg(feature = "async")]
    pub(crate) fn pool(&self) -> Option<&Arc<Pool>> {
        self.pool.as_ref()
    }

    /// The partition for a new producer handle: round-robin.
    pub(crate) fn producer_part(&self) -> Arc<Shared<T>> {
        let at = self.next_producer.fetch_add(1, Relaxed) % self.parts.len();
        Arc::clone(&self.parts[at])
    }

    /// Every partition's counters added up; the peak is the shared
    /// budget's exact peak.
    pub(crate) fn stats(&self) -> Stats {
        let mut parts = self.parts.iter().map(|part| part.stats());
        let mut total = parts.next().expect("at least one partition");
        for stats in parts {
            total.absorb(&stats);
        }
        if let Some(pool) = &self.pool {
            // The partitions are read one after another while producers
            // run; the budget is one reading of what they hold together.
            total.buffered_bytes = pool.used();
            total.peak_buffered_bytes = pool.peak();
        }
        total
    }

    pub(crate) fn limits(&self) -> Limits {
        self.parts[0].lock().limits
    }

    pub(crate) fn set_limits(&self, limits: Limits) {
        if let Some(pool) = &self.pool {
            pool.set_max(limits.max_buffered_bytes);
        }
        self.parts.iter().for_each(|part| part.set_limits(limits));
    }

    pub(crate) fn flush(&self) {
        self.parts.iter().for_each(|part| part.flush());
    }

    pub(crate) fn flush_and_wait(&self, deadline: Instant) -> bool {
        self.parts.iter().all(|part| part.flush_and_wait(deadline))
    }

    pub(crate) fn hold_in_flight(&self) {
        self.parts.iter().for_each(|part| part.hold_in_flight());
    }

    pub(crate) fn close(&self) {
        if let Some(pool) = &self.pool {
            pool.close();
        }
        self.parts.iter().for_each(|part| part.close());
    }

    /// Waits for every partition to drain (or `deadline`), then returns
    /// what is undelivered, oldest first within each partition.
    pub(crate) fn drain_until(&self, deadline: Instant) -> Vec<T> {
        let mut undelivered = Vec::new();
        for part in self.parts.iter() {
            undelivered.extend(part.drain_until(deadline));
        }
        undelivered
    }

    pub(crate) fn wait_in_flight(&self, deadline: Instant) -> bool {
        self.parts.iter().all(|part| part.wait_in_flight(deadline))
    }

    pub(crate) fn stop(&self) -> Vec<T> {
        if let Some(pool) = &self.pool {
            pool.close();
        }
        let mut undelivered = Vec::new();
        for part in self.parts.iter() {
            undelivered.extend(part.stop());
        }
        undelivered
    }

    pub(crate) fn add_receiver(&self) {
        self.receivers.fetch_add(1, Relaxed);
    }

    /// With no receiver left nothing can be delivered: every partition
    /// learns it, closes admission and stops waiting for deliveries.
    pub(crate) fn remove_receiver(&self) {
        if self.receivers.fetch_sub(1, Relaxed) == 1 {
            if let Some(pool) = &self.pool {
                pool.close();
            }
            self.parts.iter().for_each(|part| part.remove_receiver());
        }
    }

    /// Takes the next batch from any partition, waiting until `deadline`
    /// (forever if `None`).
    pub(crate) fn recv_until(
        &self,
        deadline: Option<Instant>,
    ) -> Result<Taken<T>, RecvTimeoutError> {
        let Some(pool) = &self.pool else {
            let one = &self.parts[0];
            return one
                .recv_until(deadline)
                .map(|sealed| (Arc::clone(one), sealed));
        };
        loop {
            let seen = pool.announce_receiver();
            match self.scan() {
                Scan::Batch(home, sealed) => {
                    pool.retire_receiver();
                    // Others may be waiting while more is ready: let them look.
                    pool.signal_batch();
                    return Ok((home, sealed));
                }
                Scan::Idle {
                    closed: true,
                    due: None,
                } => {
                    pool.retire_receiver();
                    return Err(RecvTimeoutError::Disconnected);
                }
                Scan::Idle { due, .. } => {
                    if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                        pool.retire_receiver();
                        return Err(RecvTimeoutError::Timeout);
                    }
                    let until = due.into_iter().chain(deadline).min();
                    pool.wait_for_batch(seen, until);
                }
            }
        }
    }

    /// One look at every partition, starting at a rotating one so no
    /// partition is always served last.
    fn scan(&self) -> Scan<T> {
        let n = self.parts.len();
        let start = self.next_scan.fetch_add(1, Relaxed);
        let mut earliest: Option<Instant> = None;
        let mut all_closed = true;
        for i in 0..n {
            let part = &self.parts[(start + i) % n];
            match part.take_now() {
                PartTaken::Batch(sealed) => return Scan::Batch(Arc::clone(part), sealed),
                PartTaken::Idle { due, closed } => {
                    all_closed &= closed;
                    earliest = earliest.into_iter().chain(due).min();
                }
            }
        }
        Scan::Idle {
            due: earliest,
            closed: all_closed,
        }
    }

    /// For the async stream: a batch, the end, or when to look again.
    #[cfg(feature = "async")]
    pub(crate) fn poll_scan(&self) -> Result<Taken<T>, (Option<Instant>, bool)> {
        match self.scan() {
            Scan::Batch(home, sealed) => Ok((home, sealed)),
            Scan::Idle { due, closed } => Err((due, closed)),
        }
    }

    /// Publishes the stats through the `metrics` facade if the builder's
    /// interval has passed; a no-op without the feature or the interval.
    pub(crate) fn publish_metrics_now_and_then(&self) {
        #[cfg(feature = "metrics")]
        if self.metrics.due() {
            self.publish_metrics();
        }
    }

    /// Publishes the stats through the `metrics` facade now.
    #[cfg(feature = "metrics")]
    pub(crate) fn publish_metrics(&self) {
        let stats = self.stats();
        crate::metrics::publish(&self.name, &stats, self.limits().max_buffered_bytes);
    }
}
