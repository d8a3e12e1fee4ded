//! Throughput: accepted, delivered, refused and evicted events per second over the run.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Color;
use runlog::Sample;

use crate::app::App;
use crate::format;
use crate::ui::palette;
use crate::ui::timechart::{Series, TimeChart};

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
    TimeChart::new("Throughput (events/s)", series, format::count).render(app, area, buf);
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
    fn waits_for_the_first_sample() {
        let app = app_with_samples(0);
        let buf = draw(60, 8, |area, buf| render(&app, area, buf));
        assert!(text(&buf).contains("waiting for samples"));
    }
}
