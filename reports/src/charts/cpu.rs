//! Process CPU over time, against what the machine's cores allow.

use super::{Line, TimeChart, Timeline, palette};
use crate::format::Units;

/// The CPU chart; `cores` adds a dashed line at 100% per core.
pub(crate) fn chart(timeline: &Timeline<'_>, cores: Option<u32>) -> String {
    let mut lines = vec![Line::solid(
        "process CPU",
        palette::BLUE,
        timeline.series(|s| s.cpu_percent),
    )];
    if let Some(cores) = cores.filter(|&c| c > 0) {
        if !timeline.samples.is_empty() {
            let all = f64::from(cores) * 100.0;
            lines.push(Line::dashed(
                format!("all {cores} cores"),
                palette::RED,
                vec![(0.0, all), (timeline.x_max, all)],
            ));
        }
    }
    TimeChart::over(
        timeline,
        "chart-cpu",
        "CPU",
        "CPU",
        Units::CorePercent,
        lines,
    )
    .render()
}
