//! Memory: buffered bytes against their limit, and heap (jemalloc) and RSS over the run
//! on a byte scale.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::widgets::{Gauge, Widget};
use runlog::Sample;

use crate::app::App;
use crate::format;
use crate::ui::palette;
use crate::ui::panel;
use crate::ui::timechart::{Series, TimeChart};

/// A series: its name, its colour, and how it is read from a sample.
type Read = (&'static str, Color, fn(&Sample) -> u64);

/// The memory series: label, colour, and how each is read from a sample.
const SERIES: [Read; 3] = [
    ("heap allocated", palette::GOOD, |s| s.heap_allocated_bytes),
    ("heap resident", Color::Yellow, |s| s.heap_resident_bytes),
    ("RSS", palette::INFO, |s| s.rss_bytes),
];

pub(crate) fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let [buffered, heap] =
        Layout::vertical([Constraint::Length(3), Constraint::Min(0)]).areas(area);
    render_buffered(app, buffered, buf);
    render_heap(app, heap, buf);
}

/// The buffered-bytes gauge, labeled `12.3 MiB / 64.0 MiB`: a full buffer is the
/// backpressure of a loaded run (yellow); red only when the run has a real problem.
pub(crate) fn render_buffered(app: &App, area: Rect, buf: &mut Buffer) {
    let limit = app
        .latest()
        .map(|s| s.limits.max_buffered_bytes)
        .or_else(|| app.limits().map(|l| l.max_buffered_bytes))
        .unwrap_or(0);
    let (used, peak) = app
        .latest()
        .map_or((0, 0), |s| (s.buffered_bytes, s.peak_buffered_bytes));
    let ratio = if limit == 0 {
        0.0
    } else {
        (used as f64 / limit as f64).clamp(0.0, 1.0)
    };
    let colour = palette::fill_colour(ratio, &app.health());
    // A narrow panel (the compact layout) says "Buffered" rather than cut the peak off.
    let mut title = format!("Buffered bytes (peak {})", format::bytes(peak));
    if title.chars().count() + 4 > usize::from(area.width) {
        title = format!("Buffered (peak {})", format::bytes(peak));
    }
    Gauge::default()
        .block(panel(&title))
        .ratio(ratio)
        .label(format!(
            "{} / {}",
            format::bytes(used),
            format::bytes(limit)
        ))
        .gauge_style(Style::new().fg(colour).bg(Color::Black))
        .render(area, buf);
}

/// Heap allocated, heap resident and RSS on one chart, its axis in bytes.
fn render_heap(app: &App, area: Rect, buf: &mut Buffer) {
    let latest = app.latest();
    let series = SERIES
        .iter()
        .map(|&(name, colour, read)| Series {
            name,
            colour,
            points: app.samples().map(|s| (s.t_s, read(s) as f64)).collect(),
            now: latest.map_or_else(String::new, |s| format::bytes(read(s))),
        })
        .collect();
    TimeChart::new("Heap & RSS", series, format::bytes).render(app, area, buf);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::testing::{app_with_samples, draw, text};

    #[test]
    fn buffered_gauge_is_labeled_against_the_limit() {
        let app = app_with_samples(3);
        let buf = draw(60, 3, |area, buf| render_buffered(&app, area, buf));
        let screen = text(&buf);
        assert!(screen.contains("12.3 MiB / 64.0 MiB"), "{screen}");
        assert!(
            screen.contains("Buffered bytes (peak 40.0 MiB)"),
            "{screen}"
        );
    }

    #[test]
    fn a_narrow_gauge_keeps_its_peak_whole() {
        let app = app_with_samples(3);
        let buf = draw(30, 3, |area, buf| render_buffered(&app, area, buf));
        let screen = text(&buf);
        assert!(screen.contains("Buffered (peak 40.0 MiB)"), "{screen}");
        assert!(screen.contains("12.3 MiB / 64.0 MiB"), "{screen}");
    }

    #[test]
    fn a_full_buffer_under_backpressure_is_yellow_and_red_only_with_loss() {
        let mut app = app_with_samples(0);
        let mut s = crate::ui::testing::sample(1.0);
        s.buffered_bytes = s.limits.max_buffered_bytes;
        app.on_line(s.clone().into());
        let buf = draw(60, 3, |area, buf| render_buffered(&app, area, buf));
        assert_eq!(buf[(2, 1)].fg, palette::NOTE, "{}", text(&buf));
        s.t_s = 2.0;
        s.totals.dropped = 10;
        app.on_line(s.into());
        let buf = draw(60, 3, |area, buf| render_buffered(&app, area, buf));
        assert_eq!(buf[(2, 1)].fg, palette::BAD, "{}", text(&buf));
    }

    #[test]
    fn heap_and_rss_are_charted_on_a_byte_scale() {
        let app = app_with_samples(20);
        let buf = draw(80, 14, |area, buf| render(&app, area, buf));
        let screen = text(&buf);
        for label in [
            "heap allocated 80.0 MiB",
            "heap resident 100.0 MiB",
            "RSS 120.0 MiB",
            // The axis: 0, half and the top (1.1 x 120 MiB).
            "0 B",
            "66.0 MiB",
            "132.0 MiB",
        ] {
            assert!(screen.contains(label), "{label}\n{screen}");
        }
    }
}
