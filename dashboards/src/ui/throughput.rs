//! Throughput: accepted, delivered, refused and evicted events per second over the run.
//! In a panel too low for a chart (the compact layout), the current rates and a
//! sparkline each of the accepted and delivered rates.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::widgets::{Paragraph, Sparkline, Widget};
use runlog::Sample;

use crate::app::App;
use crate::format;
use crate::ui::timechart::{Series, TimeChart};
use crate::ui::{dim, palette, panel};

/// The lowest panel the chart is drawn in; lower gets the sparklines.
const CHART_HEIGHT: u16 = 9;
/// The title of the panel, chart or sparklines.
const TITLE: &str = "Throughput (events/s)";

/// A series: its name, its colour, and how it is read from a sample.
type Read = (&'static str, Color, fn(&Sample) -> f64);

/// The series drawn. Refusals are the backpressure a loaded run shows by design
/// (yellow); evictions lose accepted events (red).
const SERIES: [Read; 4] = [
    ("accepted", palette::GOOD, |s| s.accepted_per_sec),
    ("delivered", Color::Cyan, |s| s.delivered_per_sec),
    ("refused", palette::NOTE, |s| s.rejected_per_sec),
    ("evicted", palette::BAD, |s| s.dropped_per_sec),
];

pub(crate) fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let chart = chart(app);
    if area.height >= CHART_HEIGHT {
        chart.render(app, area, buf);
        return;
    }
    let block = panel(TITLE);
    let inner = block.inner(area);
    block.render(area, buf);
    if chart.series.iter().all(|s| s.points.is_empty()) {
        Paragraph::new("waiting for samples...")
            .style(dim())
            .render(inner, buf);
        return;
    }
    let legend = chart.legend(app.colour(), &[], inner.width);
    let rows = u16::try_from(legend.len()).unwrap_or(u16::MAX);
    let [legend_area, lines] =
        Layout::vertical([Constraint::Length(rows), Constraint::Min(0)]).areas(inner);
    Paragraph::new(legend).render(legend_area, buf);
    // Accepted and delivered on one scale, one sparkline each, newest at the right.
    let shown = &chart.series[..2];
    let top = shown
        .iter()
        .flat_map(|s| s.points.iter().map(|&(_, y)| y))
        .fold(1.0_f64, f64::max);
    let label_width = shown.iter().map(|s| s.name.len()).max().unwrap_or(0) as u16 + 1;
    let heights = vec![Constraint::Fill(1); shown.len()];
    for (s, row) in shown
        .iter()
        .zip(Layout::vertical(heights).split(lines).iter())
    {
        let [label, line] =
            Layout::horizontal([Constraint::Length(label_width), Constraint::Fill(1)]).areas(*row);
        Paragraph::new(s.name).style(dim()).render(label, buf);
        let skip = s.points.len().saturating_sub(usize::from(line.width));
        let data: Vec<u64> = s.points[skip..]
            .iter()
            .map(|&(_, y)| (y / top * 1000.0).round() as u64)
            .collect();
        Sparkline::default()
            .data(&data)
            .max(1000)
            .style(Style::new().fg(s.colour))
            .render(line, buf);
    }
}

/// The chart of the run's rates.
fn chart(app: &App) -> TimeChart {
    // The drain's interval is a few milliseconds of emptying the buffer: its rates would
    // flatten the run's lines, so the chart shows the run phase only.
    let run = || app.samples().filter(|s| s.phase != "drain");
    let latest = run().next_back();
    let series = SERIES
        .iter()
        .map(|&(name, colour, read)| Series {
            name,
            colour,
            points: run().map(|s| (s.t_s, read(s))).collect(),
            now: latest.map_or_else(String::new, |s| format::rate(read(s))),
        })
        .collect();
    TimeChart::new(TITLE, series, format::count)
}

#[cfg(test)]
mod tests {
    use runlog::{Event, EventKind};

    use super::*;
    use crate::ui::testing::{app_with_samples, draw, find_row, inside, text};
    use crate::ui::timechart::{MARK_GLYPH, column, graph_area};

    const BRAILLE: std::ops::RangeInclusive<char> = '\u{2801}'..='\u{28ff}';

    #[test]
    fn draws_the_four_series_with_current_rates() {
        let app = app_with_samples(30);
        let buf = draw(100, 16, |area, buf| render(&app, area, buf));
        let screen = text(&buf);
        assert!(screen.contains("Throughput (events/s)"), "{screen}");
        for legend in [
            "accepted 500.0k/s",
            "delivered 510.0k/s",
            "refused 100.0k/s",
            "evicted 0/s",
        ] {
            assert!(screen.contains(legend), "{legend}\n{screen}");
        }
        assert!(
            screen.contains("1.0 s") && screen.contains("30.0 s"),
            "{screen}"
        );
        assert!(
            screen.chars().any(|c| BRAILLE.contains(&c)),
            "no line drawn\n{screen}"
        );
    }

    #[test]
    fn the_legend_never_covers_the_newest_data() {
        // The newest values are the highest: the lines end in the plot's top right
        // corner, where a legend drawn inside the plot would sit.
        let mut app = app_with_samples(0);
        for i in 1..=30 {
            let mut s = crate::ui::testing::sample(f64::from(i));
            s.accepted_per_sec = f64::from(i) * 10_000.0;
            s.delivered_per_sec = s.accepted_per_sec;
            app.on_line(s.into());
        }
        let buf = draw(100, 16, |area, buf| render(&app, area, buf));
        let graph = graph_area(&buf, inside(&buf)).expect("a plot");
        let (legend_y, _) = find_row(&buf, "accepted 300.0k/s").expect("legend");
        assert!(
            legend_y < graph.top(),
            "the legend is inside the plot\n{}",
            text(&buf)
        );
        // The newest column of the plot holds data near the top.
        let newest = graph.right() - 1;
        let drawn = (graph.top()..graph.top() + 3).any(|y| {
            buf[(newest, y)]
                .symbol()
                .chars()
                .all(|c| BRAILLE.contains(&c))
        });
        assert!(drawn, "the newest data is not drawn\n{}", text(&buf));
    }

    #[test]
    fn marks_limit_changes_and_pauses_at_their_time() {
        let mut app = app_with_samples(30);
        let reconfigure = |at_s, knob: &str, to: &str| -> runlog::Line {
            Event::new(
                at_s,
                EventKind::Reconfigure {
                    knob: knob.into(),
                    from: "x".into(),
                    to: to.into(),
                    source: "dashboard".into(),
                },
            )
            .into()
        };
        app.on_line(reconfigure(10.0, "max_buffered_bytes", "33554432"));
        app.on_line(reconfigure(20.0, "producers", "paused"));
        let buf = draw(100, 16, |area, buf| render(&app, area, buf));
        let graph = graph_area(&buf, inside(&buf)).expect("a plot");
        for (t, letter) in [(10.0, "L"), (20.0, "P")] {
            let x = column(graph, (1.0, 30.0), t);
            assert_eq!(buf[(x, graph.top())].symbol(), letter, "{}", text(&buf));
            let glyphs = (graph.top()..graph.bottom())
                .filter(|&y| buf[(x, y)].symbol() == MARK_GLYPH)
                .count();
            assert!(glyphs > 0, "no line at x={x}\n{}", text(&buf));
        }
        let screen = text(&buf);
        assert!(
            screen.contains("┊L limit") && screen.contains("┊P pause"),
            "{screen}"
        );
    }

    #[test]
    fn without_colour_the_series_differ_by_symbol() {
        let options = crate::DashboardOptions::new("x/samples.jsonl").with_colour(false);
        let mut app = crate::App::new(&options);
        for i in 1..=30 {
            let mut s = crate::ui::testing::sample(f64::from(i));
            s.accepted_per_sec = 900_000.0;
            s.delivered_per_sec = 400_000.0;
            app.on_line(s.into());
        }
        let buf = draw(100, 16, |area, buf| render(&app, area, buf));
        let screen = text(&buf);
        for legend in ["⣿ accepted", "• delivered", "▄ refused", "█ evicted"] {
            assert!(screen.contains(legend), "{legend}\n{screen}");
        }
        let graph = graph_area(&buf, inside(&buf)).expect("a plot");
        let plot: String = (graph.top()..graph.bottom())
            .flat_map(|y| (graph.left()..graph.right()).map(move |x| (x, y)))
            .map(|p| buf[p].symbol().to_owned())
            .collect();
        assert!(plot.chars().any(|c| BRAILLE.contains(&c)), "{screen}");
        assert!(plot.contains('•'), "{screen}");
        assert!(plot.contains('▄'), "{screen}");
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
    fn a_low_panel_shows_the_rates_and_sparklines() {
        let app = app_with_samples(30);
        let buf = draw(78, 5, |area, buf| render(&app, area, buf));
        let screen = text(&buf);
        for part in [
            "Throughput (events/s)",
            "accepted 500.0k/s",
            "delivered 510.0k/s",
            "refused 100.0k/s",
            "evicted 0/s",
        ] {
            assert!(screen.contains(part), "{part}\n{screen}");
        }
        for name in ["accepted  ", "delivered "] {
            let row = crate::ui::testing::lines(&buf)
                .into_iter()
                .find(|row| row.starts_with(&format!("│{name}")))
                .expect("a sparkline row");
            assert!(
                row.chars().any(|c| "▁▂▃▄▅▆▇█".contains(c)),
                "no sparkline for {name}\n{screen}"
            );
        }
        let buf = draw(78, 4, |area, buf| render(&app_with_samples(0), area, buf));
        assert!(text(&buf).contains("waiting for samples"));
    }

    #[test]
    fn waits_for_the_first_sample() {
        let app = app_with_samples(0);
        let buf = draw(60, 8, |area, buf| render(&app, area, buf));
        assert!(text(&buf).contains("waiting for samples"));
    }
}
