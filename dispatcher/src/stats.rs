//! Counters and gauges, read as one consistent snapshot.

use crate::batch::FlushReason;

/// Refusals by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Rejections {
    /// No room under the Reject policy (or `try_enqueue` under Block).
    pub full: u64,
    /// No room before the wait ended.
    pub timeout: u64,
    /// Heavier than `max_buffered_bytes`.
    pub too_large: u64,
    /// Refused because the dispatcher was closed.
    pub closed: u64,
    /// Refused by the builder's `can_add` hook.
    pub refused: u64,
}

impl Rejections {
    pub(crate) fn absorb(&mut self, other: &Rejections) {
        self.full += other.full;
        self.timeout += other.timeout;
        self.too_large += other.too_large;
        self.closed += other.closed;
        self.refused += other.refused;
    }

    /// All refusals together.
    pub fn total(&self) -> u64 {
        self.full + self.timeout + self.too_large + self.closed + self.refused
    }
}

/// Delivered batches by [`FlushReason`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FlushCounts {
    /// Cut because `interval` elapsed.
    pub interval: u64,
    /// Cut at `max_batch_bytes`.
    pub bytes: u64,
    /// Cut at `max_batch_items`.
    pub items: u64,
    /// Cut by [`Dispatcher::flush`](crate::Dispatcher::flush).
    pub manual: u64,
    /// Cut by shutdown.
    pub drain: u64,
    /// Cut by the builder's `should_flush` or `will_overflow` hook.
    pub hook: u64,
}

impl FlushCounts {
    /// The count for one reason.
    pub fn get(&self, reason: FlushReason) -> u64 {
        match reason {
            FlushReason::Interval => self.interval,
            FlushReason::Bytes => self.bytes,
            FlushReason::Items => self.items,
            FlushReason::Manual => self.manual,
            FlushReason::Drain => self.drain,
            FlushReason::Hook => self.hook,
        }
    }

    pub(crate) fn bump(&mut self, reason: FlushReason) {
        let slot = match reason {
            FlushReason::Interval => &mut self.interval,
            FlushReason::Bytes => &mut self.bytes,
            FlushReason::Items => &mut self.items,
            FlushReason::Manual => &mut self.manual,
            FlushReason::Drain => &mut self.drain,
            FlushReason::Hook => &mut self.hook,
        };
        *slot += 1;
    }

    pub(crate) fn absorb(&mut self, o: &FlushCounts) {
        self.interval += o.interval;
        self.bytes += o.bytes;
        self.items += o.items;
        self.manual += o.manual;
        self.drain += o.drain;
        self.hook += o.hook;
    }
}

/// A snapshot of a dispatcher's counters (since it was built) and gauges (now).
///
/// Every accepted event is exactly one of: delivered, dropped (evicted),
/// returned (by shutdown or stop), failed (a sink gave up on it and it went
/// to the `on_flush_error` hook), or still buffered:
/// `accepted == delivered + dropped + returned + failed + buffered_items`.
///
/// # Examples
///
/// ```
/// use dispatcher::Dispatcher;
///
/// let (dispatcher, _batches) = Dispatcher::<Vec<u8>>::builder().max_buffered_bytes(10).build()?;
/// let producer = dispatcher.producer();
/// producer.try_enqueue(vec![0; 8])?;
/// assert!(producer.try_enqueue(vec![0; 8]).is_err());
///
/// let stats = dispatcher.stats();
/// assert_eq!((stats.accepted, stats.rejected.full), (1, 1));
/// assert_eq!(stats.buffered_bytes, 8);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Events admitted.
    pub accepted: u64,
    /// Events refused, by reason.
    pub rejected: Rejections,
    /// Accepted events evicted by [`Policy::DropOldest`](crate::Policy::DropOldest).
    pub dropped: u64,
    /// Accepted events handed to a receiver, or written by the sink.
    pub delivered: u64,
    /// Summed weight of the delivered events.
    pub delivered_bytes: u64,
    /// Accepted events handed back to the caller by shutdown or stop.
    pub returned: u64,
    /// Batches handed to a receiver, or written by the sink.
    pub batches: u64,
    /// Delivered batches by reason.
    pub flushes: FlushCounts,
    /// Events whose batch the sink failed to write on every attempt; each
    /// was handed to the `on_flush_error` hook (sink mode).
    pub failed: u64,
    /// Batches counted in `failed`.
    pub failed_batches: u64,
    /// Sink attempts after the first one of a batch (sink mode).
    pub retries: u64,
    /// Sink attempts that ran past `flush_timeout` (sink mode).
    pub sink_timeouts: u64,
    /// Sink attempts that panicked; the panic was caught (sink mode).
    pub sink_panics: u64,
    /// Weight of accepted events not yet delivered. In sink mode this
    /// includes the batches being written, until the sink is done with them.
    pub buffered_bytes: usize,
    /// Number of accepted events not yet delivered (sink mode: including
    /// `in_flight_items`).
    pub buffered_items: usize,
    /// Events in batches a flush worker is writing or retrying now.
    pub in_flight_items: usize,
    /// The highest `buffered_bytes` ever reached: exact (not sampled) with
    /// one partition; with several it may exceed the true peak by budget
    /// bytes other partitions had leased and not used yet (at most
    /// `(partitions - 1) x 16 KiB`; see [`Builder::partitions`](crate::Builder::partitions)).
    pub peak_buffered_bytes: usize,
    /// The disk tier (feature `spill`; all zero without one).
    pub spill: SpillCounts,
}

/// The disk tier's counters and gauges, in [`Stats::spill`] (feature
/// `spill`, with [`Builder::spill`](crate::Builder); all zero otherwise).
///
/// Every accepted event is in exactly one place: with a disk tier,
/// `accepted + recovered_events = delivered + buffered_items + dropped +
/// returned + failed + backlog + undeliverable` once nothing is moving
/// (a `try_enqueue_all` group spilled whole is one record and counts as
/// its events everywhere except in `recovered` and, after a restart,
/// `backlog`, which count records).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SpillCounts {
    /// Events accepted onto the disk tier (also counted in
    /// [`Stats::accepted`]).
    pub spilled: u64,
    /// Events read back from disk into memory, recovered ones included.
    pub replayed: u64,
    /// Events on disk (or being read back) not yet in memory.
    pub backlog: u64,
    /// Bytes the tier's files take on disk.
    pub disk_bytes: u64,
    /// The disk budget ([`Spill::max_disk_bytes`](crate::spill::Spill::max_disk_bytes)).
    pub max_disk_bytes: u64,
    /// Records found unacknowledged on disk when the tier was opened.
    pub recovered_events: u64,
    /// Their payload bytes.
    pub recovered_bytes: u64,
    /// Damaged records cut off when the tier was opened.
    pub torn: u64,
    /// Events that found the disk full (or failing) and met the memory
    /// policy instead.
    pub fallbacks: u64,
    /// Disk operations that failed: appends, reads, syncs,
    /// acknowledgements (the last error is kept, see
    /// `Dispatcher::spill_error`).
    pub errors: u64,
    /// Records read back that could not be decoded (damage the checksum
    /// did not catch, a codec that refuses or panics): dropped and counted
    /// here, never delivered.
    pub undeliverable: u64,
}

impl Stats {
    /// Adds another partition's counters and gauges to these (the peak is
    /// set by the caller: peaks do not add up).
    pub(crate) fn absorb(&mut self, other: &Stats) {
        self.accepted += other.accepted;
        self.rejected.absorb(&other.rejected);
        self.dropped += other.dropped;
        self.delivered += other.delivered;
        self.delivered_bytes += other.delivered_bytes;
        self.returned += other.returned;
        self.batches += other.batches;
        self.flushes.absorb(&other.flushes);
        self.failed += other.failed;
        self.failed_batches += other.failed_batches;
        self.retries += other.retries;
        self.sink_timeouts += other.sink_timeouts;
        self.sink_panics += other.sink_panics;
        self.buffered_bytes += other.buffered_bytes;
        self.buffered_items += other.buffered_items;
        self.in_flight_items += other.in_flight_items;
    }
}
