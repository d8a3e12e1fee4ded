//! Every counter and gauge of [`Stats`] through the `metrics` facade, so an
//! application exports them with the recorder it already uses (Prometheus,
//! OpenTelemetry, StatsD...).
//!
//! Published on [`Dispatcher::publish_metrics`](crate::Dispatcher::publish_metrics)
//! (call it from your own timer) and at shutdown; with
//! [`Builder::publish_metrics_every`](crate::Builder::publish_metrics_every)
//! also automatically, at most once per interval, while batches are handed
//! over. Automatic publication is off by default: it makes the work done per
//! batch depend on the clock.
//! Every series carries the label `dispatcher` = the builder's
//! [`name`](crate::Builder::name).
//!
//! | name | kind | labels |
//! | --- | --- | --- |
//! | `dispatcher_accepted_total` | counter | |
//! | `dispatcher_rejected_total` | counter | `reason` = full, timeout, too_large, closed, refused |
//! | `dispatcher_dropped_total` | counter | |
//! | `dispatcher_delivered_total` | counter | |
//! | `dispatcher_delivered_bytes_total` | counter | |
//! | `dispatcher_returned_total` | counter | |
//! | `dispatcher_batches_total` | counter | `reason` = interval, bytes, items, manual, drain, hook |
//! | `dispatcher_failed_total` | counter | |
//! | `dispatcher_failed_batches_total` | counter | |
//! | `dispatcher_retries_total` | counter | |
//! | `dispatcher_sink_timeouts_total` | counter | |
//! | `dispatcher_sink_panics_total` | counter | |
//! | `dispatcher_buffered_bytes` | gauge | |
//! | `dispatcher_buffered_items` | gauge | |
//! | `dispatcher_in_flight_items` | gauge | |
//! | `dispatcher_peak_buffered_bytes` | gauge | |
//! | `dispatcher_max_buffered_bytes` | gauge | |
//! | `dispatcher_spill_spilled_total` | counter | disk tier (feature `spill`; 0 without one) |
//! | `dispatcher_spill_replayed_total` | counter | |
//! | `dispatcher_spill_fallbacks_total` | counter | |
//! | `dispatcher_spill_errors_total` | counter | |
//! | `dispatcher_spill_undeliverable_total` | counter | |
//! | `dispatcher_spill_backlog_events` | gauge | |
//! | `dispatcher_spill_disk_bytes` | gauge | |
//! | `dispatcher_spill_max_disk_bytes` | gauge | |
//! | `dispatcher_spill_recovered_events` | gauge | found on disk at start |
//! | `dispatcher_spill_torn_records` | gauge | cut off at start |

use std::sync::Arc;

use crate::batch::FlushReason;
use crate::stats::Stats;

/// Lets at most one automatic publication through per interval; off unless
/// the builder set one.
pub(crate) struct Throttle {
    every_ms: Option<u64>,
    born: std::time::Instant,
    last_ms: std::sync::atomic::AtomicU64,
}

impl Throttle {
    pub(crate) fn new(every: Option<std::time::Duration>) -> Self {
        Throttle {
            every_ms: every.map(|every| every.as_millis().max(1) as u64),
            born: std::time::Instant::now(),
            last_ms: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// True for the one caller that may publish now.
    pub(crate) fn due(&self) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        let Some(every_ms) = self.every_ms else {
            return false;
        };
        let now = self.born.elapsed().as_millis() as u64;
        let last = self.last_ms.load(Relaxed);
        now.saturating_sub(last) >= every_ms
            && self
                .last_ms
                .compare_exchange(last, now, Relaxed, Relaxed)
                .is_ok()
    }
}

/// Every metric name this crate publishes, for exporters' and dashboards'
/// tests.
pub const METRIC_NAMES: [&str; 27] = [
    "dispatcher_accepted_total",
    "dispatcher_rejected_total",
    "dispatcher_dropped_total",
    "dispatcher_delivered_total",
    "dispatcher_delivered_bytes_total",
    "dispatcher_returned_total",
    "dispatcher_batches_total",
    "dispatcher_failed_total",
    "dispatcher_failed_batches_total",
    "dispatcher_retries_total",
    "dispatcher_sink_timeouts_total",
    "dispatcher_sink_panics_total",
    "dispatcher_buffered_bytes",
    "dispatcher_buffered_items",
    "dispatcher_in_flight_items",
    "dispatcher_peak_buffered_bytes",
    "dispatcher_max_buffered_bytes",
    "dispatcher_spill_spilled_total",
    "dispatcher_spill_replayed_total",
    "dispatcher_spill_fallbacks_total",
    "dispatcher_spill_errors_total",
    "dispatcher_spill_undeliverable_total",
    "dispatcher_spill_backlog_events",
    "dispatcher_spill_disk_bytes",
    "dispatcher_spill_max_disk_bytes",
    "dispatcher_spill_recovered_events",
    "dispatcher_spill_torn_records",
];

pub(crate) fn publish(name: &Arc<str>, stats: &Stats, max_buffered_bytes: usize) {
    let label = || ("dispatcher", name.to_string());
    let counter = |key: &'static str, value: u64| {
        metrics::counter!(key, &[label()]).absolute(value);
    };
    counter("dispatcher_accepted_total", stats.accepted);
    counter("dispatcher_dropped_total", stats.dropped);
    counter("dispatcher_delivered_total", stats.delivered);
    counter("dispatcher_delivered_bytes_total", stats.delivered_bytes);
    counter("dispatcher_returned_total", stats.returned);
    counter("dispatcher_failed_total", stats.failed);
    counter("dispatcher_failed_batches_total", stats.failed_batches);
    counter("dispatcher_retries_total", stats.retries);
    counter("dispatcher_sink_timeouts_total", stats.sink_timeouts);
    counter("dispatcher_sink_panics_total", stats.sink_panics);
    let r = &stats.rejected;
    for (reason, value) in [
        ("full", r.full),
        ("timeout", r.timeout),
        ("too_large", r.too_large),
        ("closed", r.closed),
        ("refused", r.refused),
    ] {
        metrics::counter!(
            "dispatcher_rejected_total",
            &[label(), ("reason", reason.to_string())]
        )
        .absolute(value);
    }
    for reason in FlushReason::ALL {
        let labels = [label(), ("reason", reason.as_str().to_string())];
        metrics::counter!("dispatcher_batches_total", &labels).absolute(stats.flushes.get(reason));
    }
    let gauge = |key: &'static str, value: u64| {
        metrics::gauge!(key, &[label()]).set(value as f64);
    };
    gauge("dispatcher_buffered_bytes", stats.buffered_bytes as u64);
    gauge("dispatcher_buffered_items", stats.buffered_items as u64);
    gauge("dispatcher_in_flight_items", stats.in_flight_items as u64);
    gauge(
        "dispatcher_peak_buffered_bytes",
        stats.peak_buffered_bytes as u64,
    );
    gauge("dispatcher_max_buffered_bytes", max_buffered_bytes as u64);
    let spill = &stats.spill;
    counter("dispatcher_spill_spilled_total", spill.spilled);
    counter("dispatcher_spill_replayed_total", spill.replayed);
    counter("dispatcher_spill_fallbacks_total", spill.fallbacks);
    counter("dispatcher_spill_errors_total", spill.errors);
    counter("dispatcher_spill_undeliverable_total", spill.undeliverable);
    gauge("dispatcher_spill_backlog_events", spill.backlog);
    gauge("dispatcher_spill_disk_bytes", spill.disk_bytes);
    gauge("dispatcher_spill_max_disk_bytes", spill.max_disk_bytes);
    gauge("dispatcher_spill_recovered_events", spill.recovered_events);
    gauge("dispatcher_spill_torn_records", spill.torn);
}
