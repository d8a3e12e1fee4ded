//! The metrics a comparison judges: how to read each from a run (and, where it means
//! something, from each sample interval), which way is better, how much movement is
//! noise, and which make the headline.

use runlog::Sample;

use super::{Direction, Unit};
use crate::figures::KeyFigures;
use crate::record::RunRecord;
use crate::stats::run_phase;

/// One compared metric.
pub(crate) struct MetricDef {
    /// The stable key (JSON, `--primary`).
    pub(crate) key: &'static str,
    /// The short name `--primary` also takes (the threshold metric's name).
    pub(crate) alias: &'static str,
    pub(crate) label: &'static str,
    pub(crate) direction: Direction,
    pub(crate) unit: Unit,
    /// Changes within ± this many percent are noise.
    pub(crate) noise_pct: f64,
    /// In the headline by default.
    pub(crate) primary: bool,
    /// The run's figure.
    pub(crate) run: fn(&KeyFigures) -> Option<f64>,
    /// The figure of one sample interval, where a run's own intervals say something
    /// about its noise (rates and latency per interval; not peaks, not the drain).
    pub(crate) interval: Option<fn(&Sample) -> Option<f64>>,
}

fn latency(f: &KeyFigures, value: u64) -> Option<f64> {
    (f.latency_us.count > 0).then_some(value as f64)
}

fn interval_latency(s: &Sample, value: u64) -> Option<f64> {
    (s.latency_us.count > 0).then_some(value as f64)
}

/// Every metric, in display order.
pub(crate) const METRICS: &[MetricDef] = &[
    MetricDef {
        key: "avg_delivered_per_sec",
        alias: "delivered_per_sec",
        label: "delivered/s",
        direction: Direction::HigherIsBetter,
        unit: Unit::PerSec,
        noise_pct: 5.0,
        primary: true,
        run: |f| Some(f.avg_delivered_per_sec),
        interval: Some(|s| Some(s.delivered_per_sec)),
    },
    MetricDef {
        key: "latency_p99_us",
        alias: "p99",
        label: "latency p99",
        direction: Direction::LowerIsBetter,
        unit: Unit::Micros,
        noise_pct: 10.0,
        primary: true,
        run: |f| latency(f, f.latency_us.p99),
        interval: Some(|s| interval_latency(s, s.latency_us.p99)),
    },
    MetricDef {
        key: "peak_heap_bytes",
        alias: "peak_heap",
        label: "peak heap",
        direction: Direction::LowerIsBetter,
        unit: Unit::Bytes,
        noise_pct: 5.0,
        primary: true,
        run: |f| Some(f.peak_heap_bytes as f64),
        interval: None,
    },
    MetricDef {
        key: "latency_p50_us",
        alias: "p50",
        label: "latency p50",
        direction: Direction::LowerIsBetter,
        unit: Unit::Micros,
        noise_pct: 10.0,
        primary: false,
        run: |f| latency(f, f.latency_us.p50),
        interval: Some(|s| interval_latency(s, s.latency_us.p50)),
    },
    MetricDef {
        key: "latency_p999_us",
        alias: "p999",
        label: "latency p99.9",
        direction: Direction::LowerIsBetter,
        unit: Unit::Micros,
        noise_pct: 15.0,
        primary: false,
        run: |f| latency(f, f.latency_us.p999),
        interval: Some(|s| interval_latency(s, s.latency_us.p999)),
    },
    MetricDef {
        key: "latency_max_us",
        alias: "max",
        label: "latency max",
        direction: Direction::LowerIsBetter,
        unit: Unit::Micros,
        noise_pct: 25.0,
        primary: false,
        run: |f| latency(f, f.latency_us.max),
        interval: Some(|s| interval_latency(s, s.latency_us.max)),
    },
    MetricDef {
        key: "peak_rss_bytes",
        alias: "peak_rss",
        label: "peak RSS",
        direction: Direction::LowerIsBetter,
        unit: Unit::Bytes,
        noise_pct: 10.0,
        primary: false,
        run: |f| Some(f.peak_rss_bytes as f64),
        interval: None,
    },
    MetricDef {
        key: "drain_us",
        alias: "drain",
        label: "drain time",
        direction: Direction::LowerIsBetter,
        unit: Unit::Micros,
        noise_pct: 25.0,
        primary: false,
        run: |f| f.drain_us.map(|d| d as f64),
        interval: None,
    },
];

/// The metric `name` names (its key or its short name).
pub(crate) fn find(name: &str) -> Option<&'static MetricDef> {
    let name = name.trim();
    METRICS.iter().find(|m| m.key == name || m.alias == name)
}

/// The names `--primary` takes, for error messages.
pub(crate) fn names() -> String {
    METRICS
        .iter()
        .map(|m| m.alias)
        .collect::<Vec<_>>()
        .join(", ")
}

/// One figure per sample interval of every run, pooled: the run phase only, without its
/// first interval (the buffer filling) when there are enough, and without paused ones.
pub(crate) fn intervals(runs: &[RunRecord], read: fn(&Sample) -> Option<f64>) -> Vec<f64> {
    let mut out = Vec::new();
    for run in runs {
        let phase: Vec<&Sample> = run_phase(run.samples())
            .into_iter()
            .filter(|s| !s.paused)
            .collect();
        let skip = usize::from(phase.len() >= 4);
        out.extend(phase.iter().skip(skip).filter_map(|s| read(s)));
    }
    out
}
