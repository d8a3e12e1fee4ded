//! Throughput over time: accepted, delivered, rejected and dropped events per second.

use super::{Line, TimeChart, Timeline, palette};
use crate::format::Units;

/// The throughput chart. Its y axis fits the steady state like every time chart's: the
/// drain's burst is clipped with a note (see [`super::drain`]).
pub(crate) fn chart(timeline: &Timeline<'_>) -> String {
    let lines = vec![
        Line::solid(
            "delivered/s",
            palette::BLUE,
            timeline.series(|s| s.delivered_per_sec),
        ),
        Line::solid(
            "accepted/s",
            palette::GREEN,
            timeline.series(|s| s.accepted_per_sec),
        ),
        Line::solid(
            "rejected/s",
            palette::RED,
            timeline.series(|s| s.rejected_per_sec),
        ),
        Line::solid(
            "dropped/s",
            palette::BROWN,
            timeline.series(|s| s.dropped_per_sec),
        ),
    ];
    TimeChart::over(
        timeline,
        "chart-throughput",
        "Throughput",
        "rate",
        Units::Rate,
        lines,
    )
    .render()
}
