//! Throughput over time: accepted, delivered, rejected and dropped events per second.

use super::{Line, TimeChart, Timeline, palette};
use crate::format::{self, Scale};

/// The throughput chart. The y axis fits the run phase: the drain's burst (every buffered
/// event delivered in a few milliseconds) would flatten the rest, so it is drawn at the top
/// edge and its peak stated in a note.
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
    let rate_of = |s: &runlog::Sample| {
        [
            s.delivered_per_sec,
            s.accepted_per_sec,
            s.rejected_per_sec,
            s.dropped_per_sec,
        ]
        .into_iter()
        .fold(0.0, f64::max)
    };
    let run_max = timeline
        .samples
        .iter()
        .filter(|s| s.phase != "drain")
        .map(rate_of)
        .fold(0.0, f64::max);
    let all_max = timeline.samples.iter().map(rate_of).fold(0.0, f64::max);
    let (y_cap, note) = if run_max > 0.0 && all_max > run_max * 1.05 {
        let note = format!("drain burst {} clipped at the top", format::rate(all_max));
        (Some(run_max), Some(note))
    } else {
        (None, None)
    };
    TimeChart {
        id: "chart-throughput",
        title: "Throughput".into(),
        y_desc: "rate",
        scale: Scale::rate(y_cap.unwrap_or(all_max)),
        lines,
        markers: &timeline.markers,
        x_max: timeline.x_max,
        y_cap,
        note,
    }
    .render()
}
