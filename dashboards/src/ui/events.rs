//! The event log: limit changes, warnings, phases and refusals, newest at the bottom.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use crate::app::App;
use crate::log::{LogEntry, LogKind};
use crate::ui::{dim, panel};

pub(crate) fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let block = panel("Events");
    let inner = block.inner(area);
    let shown = usize::from(inner.height);
    let skip = app.log().len().saturating_sub(shown);
    let lines: Vec<Line<'_>> = app.log().skip(skip).map(entry_line).collect();
    if lines.is_empty() {
        Paragraph::new("no events yet")
            .style(dim())
            .block(block)
            .render(area, buf);
        return;
    }
    Paragraph::new(lines).block(block).render(area, buf);
}

fn entry_line(entry: &LogEntry) -> Line<'_> {
    let color = match entry.kind {
        LogKind::Change => Color::Cyan,
        LogKind::Phase => Color::Blue,
        LogKind::Warning => Color::Yellow,
        LogKind::Refused => Color::Red,
        LogKind::Info => Color::Green,
    };
    Line::from(vec![
        Span::styled(format!("{:>8.1}s ", entry.at_s), dim()),
        Span::styled(format!("{:<8}", entry.kind.tag()), Style::new().fg(color)),
        Span::raw(entry.text.as_str()),
    ])
}

#[cfg(test)]
mod tests {
    use runlog::{Event, EventKind};

    use super::*;
    use crate::ui::testing::{app_with_samples, draw, find_row, text};

    #[test]
    fn shows_a_reconfigure_event() {
        let mut app = app_with_samples(3);
        app.on_line(
            Event::new(
                2.5,
                EventKind::Reconfigure {
                    knob: "interval_us".into(),
                    from: "10000".into(),
                    to: "5000".into(),
                    source: "control".into(),
                },
            )
            .into(),
        );
        let buf = draw(80, 5, |area, buf| render(&app, area, buf));
        let (_, row) = find_row(&buf, "interval_us").expect("reconfigure line");
        assert!(
            row.contains("2.5s change  interval_us 10 ms -> 5 ms (control)"),
            "{row}"
        );
    }

    #[test]
    fn keeps_the_newest_lines_in_view() {
        let mut app = app_with_samples(0);
        for i in 0..20 {
            let message = format!("warning number {i}");
            app.on_line(Event::new(f64::from(i), EventKind::Warning { message }).into());
        }
        let buf = draw(60, 5, |area, buf| render(&app, area, buf));
        let screen = text(&buf);
        assert!(screen.contains("warning number 19"), "{screen}");
        assert!(screen.contains("warning number 17"), "{screen}");
        assert!(!screen.contains("warning number 16"), "{screen}");
    }
}
