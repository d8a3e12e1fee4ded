//! Memory over time: buffered bytes against the (live) limit, and heap and RSS with the
//! fitted growth slope.

use super::{Line, TimeChart, Timeline, palette};
use crate::format::{self, Units};
use runlog::Fit;

/// Buffered bytes with the `max_buffered_bytes` limit in force at each sample.
pub(crate) fn buffered_chart(timeline: &Timeline<'_>) -> String {
    let buffered = timeline.series(|s| s.buffered_bytes as f64);
    let limit = timeline.limit_steps("max_buffered_bytes", |s| Some(s.limits.max_buffered_bytes));
    TimeChart::over(
        timeline,
        "chart-buffered",
        "Buffered bytes",
        "buffered",
        Units::Bytes,
        vec![
            Line::solid("buffered bytes", palette::BLUE, buffered),
            Line::dashed("max buffered limit", palette::RED, limit),
        ],
    )
    .render()
}

/// Heap allocated and resident (jemalloc) and RSS, with the least-squares slope of the
/// allocated heap over the second half of the run phase.
pub(crate) fn heap_chart(timeline: &Timeline<'_>, slope: Option<&Fit>) -> String {
    let mut lines = vec![
        Line::solid(
            "heap allocated",
            palette::BLUE,
            timeline.series(|s| s.heap_allocated_bytes as f64),
        ),
        Line::solid(
            "heap resident",
            palette::ORANGE,
            timeline.series(|s| s.heap_resident_bytes as f64),
        ),
        Line::solid(
            "RSS",
            palette::GREEN,
            timeline.series(|s| s.rss_bytes as f64),
        ),
    ];
    if let Some(fit) = slope {
        let label = format!(
            "allocated slope, 2nd half: {}",
            format::bytes_rate(fit.slope_per_s)
        );
        let points = vec![
            (fit.from_s, fit.at(fit.from_s).max(0.0)),
            (fit.to_s, fit.at(fit.to_s).max(0.0)),
        ];
        lines.push(Line::dashed(label, palette::PURPLE, points));
    }
    TimeChart::over(
        timeline,
        "chart-memory",
        "Heap and RSS",
        "memory",
        Units::Bytes,
        lines,
    )
    .render()
}
