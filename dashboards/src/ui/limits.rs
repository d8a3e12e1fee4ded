//! Limits: the live value of each knob, the selected one highlighted.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};
use runlog::Knob;

use crate::app::{App, Mode};
use crate::format;
use crate::ui::{dim, panel};

/// The style of the selected knob's row.
pub(crate) fn selected_style() -> Style {
    Style::new()
        .fg(Color::Black)
        .bg(Color::Yellow)
        .add_modifier(Modifier::BOLD)
}

pub(crate) fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let title = match app.mode() {
        Mode::Interactive => "Limits (up/down, +/-)",
        Mode::ReadOnly => "Limits (read-only)",
    };
    let block = panel(title);
    let Some(limits) = app.limits() else {
        Paragraph::new("waiting for samples...")
            .style(dim())
            .block(block)
            .render(area, buf);
        return;
    };
    let label_width = Knob::ALL.iter().map(|k| k.label().len()).max().unwrap_or(0);
    let mut lines: Vec<Line<'_>> = Knob::ALL
        .iter()
        .map(|&knob| {
            let value = format::knob_value(knob, format::knob_of(limits, knob));
            let start = app
                .starting_limits()
                .map(|s| format::knob_of(s, knob))
                .filter(|&s| s != format::knob_of(limits, knob))
                .map(|s| format!("  (start {})", format::knob_value(knob, s)));
            let selected = knob == app.selected_knob();
            let marker = if selected { "> " } else { "  " };
            let row = format!("{marker}{:<label_width$}  {value:>10}", knob.label());
            let mut spans = vec![Span::raw(row)];
            if let Some(start) = start {
                spans.push(Span::styled(start, dim()));
            }
            let line = Line::from(spans);
            if selected {
                line.style(selected_style())
            } else {
                line
            }
        })
        .collect();
    let items = limits
        .max_batch_items
        .map_or_else(|| "off".to_owned(), |n| n.to_string());
    lines.push(Line::styled(
        format!("  {:<label_width$}  {items:>10}  (fixed)", "max items"),
        dim(),
    ));
    Paragraph::new(lines).block(block).render(area, buf);
}

#[cfg(test)]
mod tests {
    use ratatui::crossterm::event::{KeyCode, KeyEvent};

    use super::*;
    use crate::ui::testing::{app_with_samples, draw, find_row, text};

    #[test]
    fn lists_every_knob_with_the_selected_one_highlighted() {
        let mut app = app_with_samples(1);
        app.on_key(KeyEvent::from(KeyCode::Down));
        let buf = draw(50, 9, |area, buf| render(&app, area, buf));
        let screen = text(&buf);
        assert!(screen.contains("Limits (read-only)"), "{screen}");
        for row in [
            "interval",
            "10 ms",
            "32.0 KiB",
            "64.0 MiB",
            "unlimited",
            "200 us",
        ] {
            assert!(screen.contains(row), "{row}\n{screen}");
        }
        let (y, row) = find_row(&buf, "> max batch").expect("selected row");
        assert!(row.contains("32.0 KiB"), "{row}");
        let x = row.find('>').expect("marker") as u16;
        assert_eq!(buf[(x, y)].bg, Color::Yellow);
        let (y, _) = find_row(&buf, "  interval").expect("unselected row");
        assert_ne!(buf[(x, y)].bg, Color::Yellow);
    }

    #[test]
    fn shows_the_starting_value_of_a_changed_knob() {
        let mut app = app_with_samples(0);
        let mut sample = crate::ui::testing::sample(1.0);
        sample.limits.interval_us = 5_000;
        app.on_line(sample.into());
        let buf = draw(60, 9, |area, buf| render(&app, area, buf));
        let (_, row) = find_row(&buf, "interval").expect("interval row");
        assert!(
            row.contains("5 ms") && row.contains("(start 10 ms)"),
            "{row}"
        );
    }
}
