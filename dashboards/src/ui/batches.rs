//! Batches of the last interval: rate, mean size and what triggered each flush.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Direction, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Bar, BarChart, BarGroup, Paragraph, Widget};
use runlog::FlushReasonCounts;

use crate::app::App;
use crate::format;
use crate::ui::{dim, panel};

pub(crate) fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let block = panel(super::interval_title("Batches, flush reasons", app));
    let inner = block.inner(area);
    block.render(area, buf);
    let Some(latest) = app.latest() else {
        Paragraph::new("waiting for samples...")
            .style(dim())
            .render(inner, buf);
        return;
    };
    let [summary, chart] =
        Layout::vertical([Constraint::Length(2), Constraint::Min(0)]).areas(inner);
    let bold = Style::new().add_modifier(Modifier::BOLD);
    Paragraph::new(vec![
        Line::from(vec![
            Span::styled("batches ", dim()),
            Span::styled(format::rate(latest.batches_per_sec), bold),
            Span::styled("  mean ", dim()),
            Span::styled(format::bytes(latest.mean_batch_bytes.round() as u64), bold),
        ]),
        Line::from(vec![
            Span::styled("delivered ", dim()),
            Span::raw(format!(
                "{}/s",
                format::bytes(latest.delivered_bytes_per_sec.round() as u64)
            )),
        ]),
    ])
    .render(summary, buf);
    // BarChart subtracts the label width from the area's: too narrow would overflow.
    if chart.width > 12 && chart.height > 0 {
        reasons(&latest.flush_reasons).render(chart, buf);
    }
}

/// A horizontal bar per flush reason, valued by its count in the interval.
fn reasons(f: &FlushReasonCounts) -> BarChart<'static> {
    let total = f.total().max(1);
    let rows = [
        ("interval", f.interval),
        ("bytes", f.bytes),
        ("items", f.items),
        ("manual", f.manual),
        ("drain", f.drain),
    ];
    let bars: Vec<Bar<'static>> = rows
        .iter()
        .map(|&(name, n)| {
            Bar::default()
                .label(Line::from(name))
                .value(n)
                .text_value(format!("{n} ({}%)", n * 100 / total))
        })
        .collect();
    BarChart::default()
        .direction(Direction::Horizontal)
        .data(BarGroup::default().bars(&bars))
        .bar_width(1)
        .bar_gap(0)
        .bar_style(Style::new().fg(Color::Cyan))
        .value_style(Style::new().fg(Color::Black).bg(Color::Cyan))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::testing::{app_with_samples, draw, find_row, text};

    #[test]
    fn shows_rate_size_and_reasons() {
        let app = app_with_samples(1);
        let buf = draw(50, 10, |area, buf| render(&app, area, buf));
        let screen = text(&buf);
        assert!(screen.contains("batches 2.0k/s  mean 12.3 KiB"), "{screen}");
        let (_, row) = find_row(&buf, "bytes").expect("bytes reason");
        assert!(row.contains("1600 (80%)"), "{row}");
        let (_, row) = find_row(&buf, "interval").expect("interval reason");
        assert!(row.contains("400 (20%)"), "{row}");
        assert!(find_row(&buf, "drain").is_some(), "{screen}");
    }
}
