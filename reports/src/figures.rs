//! The key figures of a run: what the header band shows and what a comparison compares.

use runlog::{LatencySummary, Status, Totals};

use crate::record::RunRecord;
use runlog::Fit;

use crate::stats;

/// A run's headline numbers, from `results.json` or, for a run that did not finish,
/// derived from its samples and latency log.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct KeyFigures {
    /// The assessment's overall verdict; `None` without `results.json`.
    pub status: Option<Status>,
    /// Length of the producing phase, in seconds.
    pub duration_s: f64,
    /// Cumulative counts at the end.
    pub totals: Totals,
    /// Delivered events per second over the run.
    pub avg_delivered_per_sec: f64,
    /// Largest sampled heap allocation.
    pub peak_heap_bytes: u64,
    /// Largest sampled resident set size.
    pub peak_rss_bytes: u64,
    /// Largest buffered bytes.
    pub peak_buffered_bytes: u64,
    /// The bound on buffered bytes (the largest in force).
    pub max_buffered_bytes: u64,
    /// Whole-run enqueue-to-delivery latency, in microseconds.
    pub latency_us: LatencySummary,
    /// From close to the last delivery; `None` without `results.json`.
    pub drain_us: Option<u64>,
    /// Drain time per MiB buffered when it began; `None` when unknown.
    pub drain_us_per_mib: Option<f64>,
    /// Bytes buffered when the drain began; `None` when unknown.
    pub drain_buffered_bytes: Option<u64>,
    /// Accepted events not delivered by the drain deadline; `None` without `results.json`.
    pub undelivered: Option<u64>,
    /// Heap growth over the second half of the run phase (bytes per second).
    pub heap_slope: Option<Fit>,
    /// Mean process CPU over the run phase (100 = one core); `None` without samples.
    pub mean_cpu_percent: Option<f64>,
    /// True when the figures were derived from samples because `results.json` is missing.
    pub derived: bool,
}

impl KeyFigures {
    /// The key figures of a record.
    ///
    /// ```
    /// let record = reports::RunRecord::default();
    /// let figures = reports::KeyFigures::of(&record);
    /// assert!(figures.derived && figures.status.is_none());
    /// ```
    #[must_use]
    pub fn of(record: &RunRecord) -> KeyFigures {
        let samples = record.samples();
        let run = stats::run_phase(samples);
        let mean_cpu_percent = (!run.is_empty())
            .then(|| run.iter().map(|s| s.cpu_percent).sum::<f64>() / run.len() as f64);
        let heap_slope = stats::heap_slope(samples);
        let Some(r) = &record.results else {
            return KeyFigures {
                heap_slope,
                mean_cpu_percent,
                ..derived(record)
            };
        };
        KeyFigures {
            status: Some(r.assessment.overall),
            duration_s: r.duration_s,
            totals: r.totals,
            avg_delivered_per_sec: r.throughput.avg_delivered_per_sec,
            peak_heap_bytes: r.memory.peak_heap_bytes,
            peak_rss_bytes: r.memory.peak_rss_bytes,
            peak_buffered_bytes: r.memory.peak_buffered_bytes,
            max_buffered_bytes: r.memory.max_buffered_bytes,
            latency_us: r.latency_us,
            drain_us: Some(r.drain.drain_us),
            drain_us_per_mib: r.drain.us_per_buffered_mib(),
            drain_buffered_bytes: Some(r.drain.buffered_bytes_at_start)
                .filter(|_| r.drain.us_per_buffered_mib().is_some()),
            undelivered: Some(r.drain.undelivered),
            heap_slope,
            mean_cpu_percent,
            derived: false,
        }
    }

    /// Peak heap as a multiple of the buffered-bytes limit; `None` without a limit.
    ///
    /// ```
    /// let f = reports::KeyFigures { peak_heap_bytes: 3, max_buffered_bytes: 2, ..Default::default() };
    /// assert_eq!(f.heap_to_limit(), Some(1.5));
    /// ```
    #[must_use]
    pub fn heap_to_limit(&self) -> Option<f64> {
        (self.max_buffered_bytes > 0)
            .then(|| self.peak_heap_bytes as f64 / self.max_buffered_bytes as f64)
    }
}

/// Figures of a run without `results.json`: totals from the last sample, peaks over all
/// samples, latency from the merged latency log.
fn derived(record: &RunRecord) -> KeyFigures {
    let samples = record.samples();
    let run = stats::run_phase(samples);
    let duration_s = run.last().map_or(0.0, |s| s.t_s);
    let totals = samples.last().map(|s| s.totals).unwrap_or_default();
    let max_of = |f: fn(&runlog::Sample) -> u64| samples.iter().map(f).max().unwrap_or(0);
    let delivered_in_run = run.last().map_or(0, |s| s.totals.delivered);
    KeyFigures {
        status: None,
        duration_s,
        totals,
        avg_delivered_per_sec: if duration_s > 0.0 {
            delivered_in_run as f64 / duration_s
        } else {
            0.0
        },
        peak_heap_bytes: max_of(|s| s.heap_allocated_bytes),
        peak_rss_bytes: max_of(|s| s.rss_bytes),
        peak_buffered_bytes: max_of(|s| s.peak_buffered_bytes.max(s.buffered_bytes)),
        max_buffered_bytes: max_of(|s| s.limits.max_buffered_bytes),
        latency_us: record
            .merged_latency()
            .map(|h| LatencySummary::from_histogram(&h))
            .unwrap_or_default(),
        drain_us: None,
        drain_us_per_mib: None,
        drain_buffered_bytes: None,
        undelivered: None,
        heap_slope: None,
        mean_cpu_percent: None,
        derived: true,
    }
}
