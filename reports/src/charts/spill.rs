//! The disk tier over time: bytes on disk against the disk budget, and the events spilled
//! to disk and replayed from it per second. Samples without the tier's readings draw
//! nothing (a gap, not a zero).

use super::{Line, TimeChart, Timeline, palette};
use crate::format::Units;

/// The name a change of the disk budget would be logged under; the budget is fixed for a
/// run, so its line steps at the end of the interval a sample shows a new one in.
const BUDGET_KNOB: &str = "max_spill_bytes";

/// Bytes the tier's files take, with the disk budget in force at each sample.
pub(crate) fn disk_chart(timeline: &Timeline<'_>) -> String {
    let on_disk = timeline.partial_series(|s| s.spill.map(|d| d.disk_bytes as f64));
    let budget = timeline.limit_steps(BUDGET_KNOB, |s| {
        s.spill.map(|d| d.max_disk_bytes).filter(|&b| b > 0)
    });
    TimeChart::over(
        timeline,
        "chart-spill-disk",
        "Disk tier: bytes on disk",
        "on disk",
        Units::Bytes,
        vec![
            Line::solid("on disk", palette::BLUE, on_disk),
            Line::dashed("disk budget", palette::RED, budget),
        ],
    )
    .render()
}

/// Events appended to disk and read back into memory, per second.
pub(crate) fn rates_chart(timeline: &Timeline<'_>) -> String {
    TimeChart::over(
        timeline,
        "chart-spill-rates",
        "Disk tier: spilled and replayed",
        "rate",
        Units::Rate,
        vec![
            Line::solid(
                "spilled/s (to disk)",
                palette::BLUE,
                timeline.partial_series(|s| s.spill.map(|d| d.spilled_per_sec)),
            ),
            Line::solid(
                "replayed/s (back to memory)",
                palette::ORANGE,
                timeline.partial_series(|s| s.spill.map(|d| d.replayed_per_sec)),
            ),
        ],
    )
    .render()
}
