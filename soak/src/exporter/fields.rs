//! The sample fields the endpoint exports, with how each is read.

use runlog::Sample;

/// How a metric's value is read from a sample.
#[derive(Clone, Copy)]
pub(super) enum Read {
    Count(fn(&Sample) -> u64),
    Value(fn(&Sample) -> f64),
}

/// One exported sample field.
pub(super) struct Field {
    pub(super) name: &'static str,
    pub(super) help: &'static str,
    pub(super) read: Read,
}

/// A limit that is off reads 0.
fn or_zero(limit: Option<u64>) -> f64 {
    limit.map_or(0.0, |v| v as f64)
}

const fn count(name: &'static str, help: &'static str, read: fn(&Sample) -> u64) -> Field {
    Field {
        name,
        help,
        read: Read::Count(read),
    }
}

const fn value(name: &'static str, help: &'static str, read: fn(&Sample) -> f64) -> Field {
    Field {
        name,
        help,
        read: Read::Value(read),
    }
}

/// Every sample field but `flush_reasons` and `phase` (labelled) and the latency
/// percentiles (the `metronome_latency_seconds` histogram replaces them: a fleet's p99 is
/// `histogram_quantile` over its buckets, while per-interval percentiles of different
/// hosts cannot be combined). The per-interval maximum stays: a histogram cannot say it.
pub(super) const FIELDS: &[Field] = &[
    value("metronome_t_s", "Seconds since the run started", |s| s.t_s),
    value(
        "metronome_interval_s",
        "Length of the last sample interval, seconds",
        |s| s.interval_s,
    ),
    value(
        "metronome_attempted_per_sec",
        "Enqueue attempts per second",
        |s| s.attempted_per_sec,
    ),
    value(
        "metronome_accepted_per_sec",
        "Admitted events per second",
        |s| s.accepted_per_sec,
    ),
    value(
        "metronome_rejected_per_sec",
        "Refused events per second",
        |s| s.rejected_per_sec,
    ),
    value(
        "metronome_dropped_per_sec",
        "Evicted events per second",
        |s| s.dropped_per_sec,
    ),
    value(
        "metronome_delivered_per_sec",
        "Delivered events per second",
        |s| s.delivered_per_sec,
    ),
    value(
        "metronome_batches_per_sec",
        "Delivered batches per second",
        |s| s.batches_per_sec,
    ),
    value(
        "metronome_delivered_bytes_per_sec",
        "Delivered payload bytes per second",
        |s| s.delivered_bytes_per_sec,
    ),
    count("metronome_attempted_total", "Enqueue attempts", |s| {
        s.totals.attempted
    }),
    count("metronome_accepted_total", "Events admitted", |s| {
        s.totals.accepted
    }),
    count("metronome_rejected_total", "Events refused", |s| {
        s.totals.rejected
    }),
    count(
        "metronome_dropped_total",
        "Accepted events evicted (drop-oldest)",
        |s| s.totals.dropped,
    ),
    count("metronome_delivered_total", "Events delivered", |s| {
        s.totals.delivered
    }),
    count("metronome_batches_total", "Batches delivered", |s| {
        s.totals.batches
    }),
    value(
        "metronome_buffered_bytes",
        "Bytes accepted, not yet delivered",
        |s| s.buffered_bytes as f64,
    ),
    value(
        "metronome_buffered_items",
        "Events accepted, not yet delivered",
        |s| s.buffered_items as f64,
    ),
    value(
        "metronome_peak_buffered_bytes",
        "Highest buffered bytes so far",
        |s| s.peak_buffered_bytes as f64,
    ),
    value(
        "metronome_heap_allocated_bytes",
        "jemalloc stats.allocated",
        |s| s.heap_allocated_bytes as f64,
    ),
    value(
        "metronome_heap_resident_bytes",
        "jemalloc stats.resident",
        |s| s.heap_resident_bytes as f64,
    ),
    value(
        "metronome_rss_bytes",
        "Resident set size of the process",
        |s| s.rss_bytes as f64,
    ),
    value(
        "metronome_cpu_percent",
        "Process CPU over the interval (100 = one core)",
        |s| s.cpu_percent,
    ),
    value(
        "metronome_latency_us_max",
        "Enqueue-to-delivery max in the interval, us",
        |s| s.latency_us.max as f64,
    ),
    value(
        "metronome_mean_batch_bytes",
        "Mean bytes per batch in the interval",
        |s| s.mean_batch_bytes,
    ),
    value(
        "metronome_limits_interval_us",
        "Flush interval in force, us",
        |s| s.limits.interval_us as f64,
    ),
    value(
        "metronome_limits_max_batch_bytes",
        "Batch byte target (0 = off)",
        |s| or_zero(s.limits.max_batch_bytes),
    ),
    value(
        "metronome_limits_max_batch_items",
        "Batch item target (0 = off)",
        |s| or_zero(s.limits.max_batch_items),
    ),
    value(
        "metronome_limits_max_buffered_bytes",
        "Limit on buffered bytes",
        |s| s.limits.max_buffered_bytes as f64,
    ),
    value(
        "metronome_limits_rate_per_sec",
        "Offered rate (0 = unlimited)",
        |s| or_zero(s.limits.rate_per_sec),
    ),
    value(
        "metronome_limits_consumer_delay_us",
        "Consumer delay per batch, us",
        |s| s.limits.consumer_delay_us as f64,
    ),
    value(
        "metronome_paused",
        "1 while the producers are paused",
        |s| f64::from(u8::from(s.paused)),
    ),
];
