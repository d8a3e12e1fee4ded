//! Latency of the last interval: p50, p99 and max, and a bar per percentile.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Bar, BarChart, BarGroup, Paragraph, Widget};
use runlog::LatencySummary;

use crate::app::App;
use crate::format;
use crate::ui::{dim, panel};

pub(crate) fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let block = panel(super::interval_title("Latency, enqueue to delivery", app));
    let inner = block.inner(area);
    block.render(area, buf);
    let latency = match app.latest() {
        Some(sample) if sample.latency_us.count > 0 => sample.latency_us,
        Some(_) => {
            Paragraph::new("no deliveries recorded in the last interval")
                .style(dim())
                .render(inner, buf);
            return;
        }
        None => {
            Paragraph::new("waiting for samples...")
                .style(dim())
                .render(inner, buf);
            return;
        }
    };
    let [summary, chart] =
        Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(inner);
    Paragraph::new(summary_line(&latency)).render(summary, buf);
    // BarChart needs a row for labels and one for a bar.
    if chart.height >= 2 && chart.width >= 5 {
        bars(&latency, chart.width).render(chart, buf);
    }
}

fn summary_line(l: &LatencySummary) -> Line<'static> {
    let bold = Style::new().add_modifier(Modifier::BOLD);
    let mut spans = Vec::new();
    for (name, us) in [("p50", l.p50), ("p99", l.p99), ("max", l.max)] {
        spans.push(Span::styled(format!("{name} "), dim()));
        spans.push(Span::styled(format!("{}  ", format::micros(us)), bold));
    }
    spans.push(Span::styled(format!("n={}", format::count(l.count)), dim()));
    Line::from(spans)
}

fn bars(l: &LatencySummary, width: u16) -> BarChart<'static> {
    let values = [
        ("p50", l.p50, Color::Green),
        ("p90", l.p90, Color::Green),
        ("p99", l.p99, Color::Yellow),
        ("p999", l.p999, Color::Red),
        ("max", l.max, Color::Red),
    ];
    let gap = 1;
    let bar_width = (width.saturating_sub(gap * 4) / 5).clamp(1, 10);
    let bars: Vec<Bar<'static>> = values
        .iter()
        .map(|&(name, us, color)| {
            Bar::default()
                .label(Line::from(name))
                .value(us)
                .text_value(format::micros(us))
                .style(Style::new().fg(color))
                .value_style(Style::new().fg(Color::Black).bg(color))
        })
        .collect();
    BarChart::default()
        .data(BarGroup::default().bars(&bars))
        .bar_width(bar_width)
        .bar_gap(gap)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::testing::{app_with_samples, draw, text};

    #[test]
    fn shows_percentiles_and_bars() {
        let app = app_with_samples(2);
        let buf = draw(60, 12, |area, buf| render(&app, area, buf));
        let screen = text(&buf);
        assert!(screen.contains("Latency, enqueue to delivery"), "{screen}");
        assert!(
            screen.contains("p50 1.2 ms  p99 4.5 ms  max 9.1 ms"),
            "{screen}"
        );
        for label in ["p90", "p999", "9.1 ms"] {
            assert!(screen.contains(label), "{label}\n{screen}");
        }
    }

    #[test]
    fn says_when_nothing_was_delivered() {
        let mut app = app_with_samples(0);
        let mut sample = crate::ui::testing::sample(1.0);
        sample.latency_us = LatencySummary::default();
        app.on_line(sample.into());
        let buf = draw(60, 6, |area, buf| render(&app, area, buf));
        assert!(text(&buf).contains("no deliveries recorded"));
    }
}
