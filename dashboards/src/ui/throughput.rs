//! Throughput: accepted, delivered, rejected and dropped events per second over the ring.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Style};
use ratatui::symbols::Marker;
use ratatui::widgets::{Axis, Chart, Dataset, GraphType, Paragraph, Widget};
use runlog::Sample;

use crate::app::App;
use crate::format;
use crate::ui::{dim, panel};

/// A series: its name, its color, and how it is read from a sample.
type Series = (&'static str, Color, fn(&Sample) -> f64);

/// The series drawn, with their colors and how each is read from a sample.
const SERIES: [Series; 4] = [
    ("accepted", Color::Green, |s| s.accepted_per_sec),
    ("delivered", Color::Cyan, |s| s.delivered_per_sec),
    ("rejected", Color::Red, |s| s.rejected_per_sec),
    ("dropped", Color::Magenta, |s| s.dropped_per_sec),
];

pub(crate) fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let block = panel("Throughput (events/s)");
    // The drain's interval is a few milliseconds of emptying the buffer: its rates would
    // flatten the run's lines, so the chart shows the run phase only.
    let run = || app.samples().filter(|s| s.phase != "drain");
    let Some(latest) = run().next_back() else {
        Paragraph::new("waiting for samples...")
            .style(dim())
            .block(block)
            .render(area, buf);
        return;
    };
    let points: Vec<Vec<(f64, f64)>> = SERIES
        .iter()
        .map(|(_, _, read)| run().map(|s| (s.t_s, read(s))).collect())
        .collect();
    let datasets = SERIES
        .iter()
        .zip(&points)
        .map(|((name, color, read), data)| {
            Dataset::default()
                .name(format!("{name} {}", format::rate(read(latest))))
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(Style::new().fg(*color))
                .data(data)
        })
        .collect();

    let t1 = latest.t_s;
    let t0 = run().next().map_or(t1, |s| s.t_s).min(t1 - 1.0);
    let top = points
        .iter()
        .flatten()
        .map(|&(_, y)| y)
        .fold(0.0_f64, f64::max)
        .max(1.0)
        * 1.1;
    Chart::new(datasets)
        .block(block)
        .x_axis(
            Axis::default()
                .bounds([t0, t1])
                .labels([format::seconds(t0), format::seconds(t1)])
                .style(dim()),
        )
        .y_axis(
            Axis::default()
                .bounds([0.0, top])
                .labels(["0".to_owned(), format::count(top / 2.0), format::count(top)])
                .style(dim()),
        )
        .hidden_legend_constraints((Constraint::Ratio(1, 2), Constraint::Ratio(3, 4)))
        .render(area, buf);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::testing::{app_with_samples, draw, text};

    #[test]
    fn draws_the_four_series_with_current_rates() {
        let app = app_with_samples(30);
        let buf = draw(100, 16, |area, buf| render(&app, area, buf));
        let screen = text(&buf);
        assert!(screen.contains("Throughput (events/s)"), "{screen}");
        for legend in [
            "accepted 500.0k/s",
            "delivered 510.0k/s",
            "rejected 100.0k/s",
            "dropped 0/s",
        ] {
            assert!(screen.contains(legend), "{legend}\n{screen}");
        }
        assert!(
            screen.contains("1.0 s") && screen.contains("30.0 s"),
            "{screen}"
        );
        let braille = |c: &char| ('\u{2801}'..='\u{28ff}').contains(c);
        assert!(
            screen.chars().any(|c| braille(&c)),
            "no line drawn\n{screen}"
        );
    }

    #[test]
    fn leaves_the_drain_interval_out() {
        let mut app = app_with_samples(10);
        let mut drain = crate::ui::testing::sample(10.01);
        drain.delivered_per_sec = 50e6;
        drain.phase = "drain".into();
        app.on_line(drain.into());
        let buf = draw(100, 16, |area, buf| render(&app, area, buf));
        let screen = text(&buf);
        assert!(screen.contains("delivered 490.0k/s"), "{screen}");
        assert!(!screen.contains("50.00M"), "{screen}");
    }

    #[test]
    fn waits_for_the_first_sample() {
        let app = app_with_samples(0);
        let buf = draw(60, 8, |area, buf| render(&app, area, buf));
        assert!(text(&buf).contains("waiting for samples"));
    }
}
