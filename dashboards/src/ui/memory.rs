//! Memory: buffered bytes against their limit, and heap (jemalloc) and RSS over time.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Gauge, Paragraph, Sparkline, Widget};
use runlog::Sample;

use crate::app::App;
use crate::format;
use crate::ui::{dim, panel};

/// A series: its name, its color, and how it is read from a sample.
type Series = (&'static str, Color, fn(&Sample) -> u64);

/// The memory series: label, color, and how each is read from a sample.
const SERIES: [Series; 3] = [
    ("heap allocated", Color::Green, |s| s.heap_allocated_bytes),
    ("heap resident", Color::Yellow, |s| s.heap_resident_bytes),
    ("RSS", Color::Blue, |s| s.rss_bytes),
];

pub(crate) fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let [buffered, heap] =
        Layout::vertical([Constraint::Length(3), Constraint::Min(0)]).areas(area);
    render_buffered(app, buffered, buf);
    render_heap(app, heap, buf);
}

/// The buffered-bytes gauge, labeled `12.3 MiB / 64.0 MiB`.
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
    let color = match ratio {
        r if r >= 0.9 => Color::Red,
        r if r >= 0.6 => Color::Yellow,
        _ => Color::Green,
    };
    let title = format!("Buffered bytes (peak {})", format::bytes(peak));
    Gauge::default()
        .block(panel(&title))
        .ratio(ratio)
        .label(format!(
            "{} / {}",
            format::bytes(used),
            format::bytes(limit)
        ))
        .gauge_style(Style::new().fg(color).bg(Color::Black))
        .render(area, buf);
}

/// One labeled sparkline per series, on a shared scale so heights compare.
fn render_heap(app: &App, area: Rect, buf: &mut Buffer) {
    let block = panel("Heap & RSS");
    let inner = block.inner(area);
    block.render(area, buf);
    let Some(latest) = app.latest() else {
        Paragraph::new("waiting for samples...")
            .style(dim())
            .render(inner, buf);
        return;
    };
    let scale = app
        .samples()
        .flat_map(|s| SERIES.iter().map(move |(_, _, read)| read(s)))
        .max()
        .unwrap_or(0)
        .max(1);
    let rows = Layout::vertical([Constraint::Fill(1); SERIES.len()]).split(inner);
    // Sparkline draws from its first value: hand it only the newest that fit.
    let width = usize::from(inner.width);
    let skip = app.samples().len().saturating_sub(width);
    for ((name, color, read), row) in SERIES.iter().zip(rows.iter()) {
        let [label, spark] =
            Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(*row);
        Paragraph::new(Line::from(vec![
            Span::styled(format!("{name} "), Style::new().fg(*color)),
            Span::raw(format::bytes(read(latest))),
        ]))
        .render(label, buf);
        let data: Vec<u64> = app.samples().skip(skip).map(read).collect();
        Sparkline::default()
            .data(&data)
            .max(scale)
            .style(Style::new().fg(*color))
            .render(spark, buf);
    }
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
    fn heap_and_rss_have_labels_and_sparklines() {
        let app = app_with_samples(20);
        let buf = draw(60, 14, |area, buf| render(&app, area, buf));
        let screen = text(&buf);
        for label in [
            "heap allocated 80.0 MiB",
            "heap resident 100.0 MiB",
            "RSS 120.0 MiB",
        ] {
            assert!(screen.contains(label), "{label}\n{screen}");
        }
        assert!(screen.contains('█'), "no sparkline bars\n{screen}");
    }
}
