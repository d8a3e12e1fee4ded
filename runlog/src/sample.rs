//! One sample interval of a run: rates, cumulative totals, gauges and latency.

use serde::{Deserialize, Serialize};

use crate::control::Limits;
use crate::latency::LatencySummary;

/// Cumulative event counts since the start of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Totals {
    /// Events producers tried to enqueue.
    pub attempted: u64,
    /// Events the dispatcher admitted.
    pub accepted: u64,
    /// Events refused (full, too large, or timed out).
    pub rejected: u64,
    /// Accepted events evicted by the drop-oldest policy.
    pub dropped: u64,
    /// Events handed to the consumer.
    pub delivered: u64,
    /// Batches handed to the consumer.
    pub batches: u64,
}

/// Number of batches per flush reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FlushReasonCounts {
    /// The interval elapsed.
    pub interval: u64,
    /// The batch reached `max_batch_bytes`.
    pub bytes: u64,
    /// The batch reached `max_batch_items`.
    pub items: u64,
    /// A caller asked for a flush.
    pub manual: u64,
    /// Shutdown drained the buffer.
    pub drain: u64,
}

impl FlushReasonCounts {
    /// The number of batches over all reasons.
    ///
    /// ```
    /// let f = runlog::FlushReasonCounts { interval: 3, bytes: 4, ..Default::default() };
    /// assert_eq!(f.total(), 7);
    /// ```
    #[must_use]
    pub fn total(&self) -> u64 {
        self.interval + self.bytes + self.items + self.manual + self.drain
    }
}

/// One line of `samples.jsonl`: what happened during one sample interval.
///
/// Rates (`*_per_sec`) and `latency_us`, `mean_batch_bytes`, `flush_reasons` cover this
/// interval only; `totals` and `peak_buffered_bytes` are cumulative; the other gauges are
/// read at the end of the interval.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Sample {
    /// Seconds since the run started, at the end of this interval.
    pub t_s: f64,
    /// Measured length of this interval.
    pub interval_s: f64,
    /// Enqueue attempts per second.
    pub attempted_per_sec: f64,
    /// Admitted events per second.
    pub accepted_per_sec: f64,
    /// Refused events per second.
    pub rejected_per_sec: f64,
    /// Evicted (drop-oldest) events per second.
    pub dropped_per_sec: f64,
    /// Delivered events per second.
    pub delivered_per_sec: f64,
    /// Delivered batches per second.
    pub batches_per_sec: f64,
    /// Delivered payload bytes per second.
    pub delivered_bytes_per_sec: f64,
    /// Cumulative counts at the end of this interval.
    pub totals: Totals,
    /// Bytes accepted and not yet delivered.
    pub buffered_bytes: u64,
    /// Events accepted and not yet delivered.
    pub buffered_items: u64,
    /// Largest `buffered_bytes` since the start (exact, kept by the dispatcher).
    pub peak_buffered_bytes: u64,
    /// Heap bytes allocated by the process (jemalloc `stats.allocated`).
    pub heap_allocated_bytes: u64,
    /// Heap bytes resident (jemalloc `stats.resident`).
    pub heap_resident_bytes: u64,
    /// Resident set size of the process.
    pub rss_bytes: u64,
    /// Process CPU use over the interval (100 = one full core).
    pub cpu_percent: f64,
    /// This interval's enqueue-to-delivery latency.
    pub latency_us: LatencySummary,
    /// Mean bytes per delivered batch in this interval (0 when none).
    pub mean_batch_bytes: f64,
    /// Batches in this interval, per flush reason.
    pub flush_reasons: FlushReasonCounts,
    /// Limits in force at the end of this interval.
    pub limits: Limits,
    /// Whether the producers were paused.
    pub paused: bool,
    /// `"run"` while producing, `"drain"` during shutdown.
    pub phase: String,
    /// The dispatcher's disk tier, when the run has one (`--spill-dir`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spill: Option<SpillSample>,
}

/// The disk tier's readings at the end of an interval (rates over the
/// interval, the rest cumulative or gauges).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct SpillSample {
    /// Events accepted onto disk per second.
    pub spilled_per_sec: f64,
    /// Events read back from disk into memory per second.
    pub replayed_per_sec: f64,
    /// Events accepted onto disk since the start.
    pub spilled_total: u64,
    /// Events read back since the start (recovered ones included).
    pub replayed_total: u64,
    /// Events on disk not yet read back.
    pub backlog_events: u64,
    /// Bytes the tier's files take on disk.
    pub disk_bytes: u64,
    /// The disk budget (`--max-spill-bytes`).
    pub max_disk_bytes: u64,
    /// Events that found the disk full or failing and met the memory policy.
    pub fallbacks_total: u64,
    /// Disk operations that failed since the start.
    pub errors_total: u64,
}
