//! Latency over the run: p50, p99 and max of each interval.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Color;
use runlog::LatencySummary;

use crate::app::App;
use crate::format;
use crate::ui::palette;
use crate::ui::timechart::{Series, TimeChart};

/// A series: its name, its colour, and how it is read from an interval's latency.
type Read = (&'static str, Color, fn(&LatencySummary) -> u64);

const SERIES: [Read; 3] = [
    ("p50", Color::Cyan, |l| l.p50),
    ("p99", Color::LightMagenta, |l| l.p99),
    ("max", palette::SECONDARY, |l| l.max),
];

pub(crate) fn render(app: &App, area: Rect, buf: &mut Buffer) {
    // Intervals without deliveries have no latency to show; the drain's is untypical.
    let delivered = || {
        app.samples()
            .filter(|s| s.phase != "drain" && s.latency_us.count > 0)
    };
    let latest = delivered().next_back();
    let series = SERIES
        .iter()
        .map(|&(name, colour, read)| Series {
            name,
            colour,
            points: delivered()
                .map(|s| (s.t_s, read(&s.latency_us) as f64))
                .collect(),
            now: latest.map_or_else(String::new, |s| format::micros(read(&s.latency_us))),
        })
        .collect();
    TimeChart::new("Latency over the run", series, format::micros).render(app, area, buf);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::testing::{app_with_samples, draw, text};

    #[test]
    fn charts_p50_p99_and_max_with_a_time_axis() {
        let app = app_with_samples(20);
        let buf = draw(90, 14, |area, buf| render(&app, area, buf));
        let screen = text(&buf);
        for part in [
            "Latency over the run",
            "p50 1.2 ms",
            "p99 4.5 ms",
            "max 9.1 ms",
            "1.0 s",
            "20.0 s",
        ] {
            assert!(screen.contains(part), "{part}\n{screen}");
        }
        // The y axis is labelled in human durations.
        assert!(screen.contains(" ms"), "{screen}");
        assert!(screen.contains("0 us"), "{screen}");
    }
}
