//! The event log: limit changes, warnings, phases and refusals, newest at the bottom;
//! repeats in a row are one line with `×N`, and `PgUp`/`PgDn` (`[`/`]`) scroll it.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use crate::app::App;
use crate::log::{LogEntry, LogKind};
use crate::ui::{dim, palette, panel};

pub(crate) fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let height = usize::from(area.height.saturating_sub(2));
    let (first, below) = app.log.window(height);
    let title = if below > 0 {
        format!("Events ({below} newer below: PgDn / ] / End)")
    } else {
        "Events (PgUp / [ scrolls back)".to_owned()
    };
    let block = panel(title);
    let lines: Vec<Line<'_>> = app.log().skip(first).take(height).map(entry_line).collect();
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
    let colour = match entry.kind {
        LogKind::Change => Color::Cyan,
        LogKind::Phase => palette::INFO,
        LogKind::Warning | LogKind::Refused => palette::NOTE,
        LogKind::Info => palette::GOOD,
    };
    let mut spans = vec![
        Span::styled(format!("{:>8.1}s ", entry.at_s), dim()),
        Span::styled(format!("{:<8}", entry.kind.tag()), Style::new().fg(colour)),
        Span::raw(entry.text.as_str()),
    ];
    if entry.repeats > 1 {
        spans.push(Span::styled(
            format!("  ×{} (last {:.1}s)", entry.repeats, entry.last_at_s),
            Style::new().fg(palette::NOTE),
        ));
    }
    Line::from(spans)
}

#[cfg(test)]
mod tests {
    use ratatui::crossterm::event::{KeyCode, KeyEvent};
    use runlog::{Event, EventKind};

    use super::*;
    use crate::ui::testing::{app_with_samples, draw, find_row, text};

    fn warn(app: &mut App, at_s: f64, message: &str) {
        let message = message.to_owned();
        app.on_line(Event::new(at_s, EventKind::Warning { message }).into());
    }

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
        let (_, row) = find_row(&buf, "10 ms -> 5 ms").expect("reconfigure line");
        assert!(
            row.contains("2.5s change  interval 10 ms -> 5 ms (control)"),
            "{row}"
        );
    }

    #[test]
    fn changes_name_every_knob_for_people_not_by_its_record_key() {
        let mut app = app_with_samples(3);
        let mut changes: Vec<(&str, &str, &str)> = runlog::Knob::ALL
            .iter()
            .map(|knob| (knob.name(), "1000", "unlimited"))
            .collect();
        changes.push(("producers", "running", "paused"));
        for (i, (knob, from, to)) in changes.iter().enumerate() {
            app.on_line(
                Event::new(
                    4.0 + i as f64,
                    EventKind::Reconfigure {
                        knob: (*knob).into(),
                        from: (*from).into(),
                        to: (*to).into(),
                        source: "dashboard".into(),
                    },
                )
                .into(),
            );
        }
        let buf = draw(100, 2 + changes.len() as u16, |area, buf| {
            render(&app, area, buf);
        });
        let screen = text(&buf);
        for knob in runlog::Knob::ALL {
            assert!(
                screen.contains(&format!("change  {} ", knob.label())),
                "{knob}\n{screen}"
            );
        }
        // No identifier joined by `_` (`max_buffered_bytes`) anywhere in the log.
        let joined = screen
            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .find(|word| word.contains('_'));
        assert_eq!(joined, None, "{screen}");
    }

    #[test]
    fn keeps_the_newest_lines_in_view() {
        let mut app = app_with_samples(0);
        for i in 0..20 {
            warn(&mut app, f64::from(i), &format!("warning number {i}"));
        }
        let buf = draw(60, 5, |area, buf| render(&app, area, buf));
        let screen = text(&buf);
        assert!(screen.contains("warning number 19"), "{screen}");
        assert!(screen.contains("warning number 17"), "{screen}");
        assert!(!screen.contains("warning number 16"), "{screen}");
    }

    #[test]
    fn identical_events_in_a_row_are_one_line_with_a_count() {
        let mut app = app_with_samples(0);
        for i in 0..7 {
            warn(&mut app, f64::from(i), "sink: 3 attempts timed out");
        }
        warn(&mut app, 8.0, "sink: gave up on 1 batch");
        let buf = draw(90, 6, |area, buf| render(&app, area, buf));
        let screen = text(&buf);
        assert_eq!(
            screen.matches("3 attempts timed out").count(),
            1,
            "{screen}"
        );
        let (_, row) = find_row(&buf, "3 attempts timed out").expect("line");
        assert!(
            row.contains("0.0s warning sink: 3 attempts timed out  ×7 (last 6.0s)"),
            "{row}"
        );
        assert!(screen.contains("gave up on 1 batch"), "{screen}");
    }

    #[test]
    fn page_keys_scroll_back_and_forth() {
        let mut app = app_with_samples(0);
        for i in 0..30 {
            warn(&mut app, f64::from(i), &format!("warning number {i}"));
        }
        // A 5-row panel shows 3 lines: 27..=29.
        app.on_key(KeyEvent::from(KeyCode::PageUp));
        let buf = draw(70, 5, |area, buf| render(&app, area, buf));
        let screen = text(&buf);
        assert!(
            screen.contains("warning number 24") && screen.contains("warning number 22"),
            "{screen}"
        );
        assert!(!screen.contains("warning number 29"), "{screen}");
        assert!(screen.contains("5 newer below"), "{screen}");
        // A new line does not move a scrolled view.
        warn(&mut app, 30.0, "warning number 30");
        let screen = text(&draw(70, 5, |area, buf| render(&app, area, buf)));
        assert!(
            screen.contains("warning number 24") && screen.contains("6 newer below"),
            "{screen}"
        );
        app.on_key(KeyEvent::from(KeyCode::Char(']')));
        app.on_key(KeyEvent::from(KeyCode::Char('[')));
        app.on_key(KeyEvent::from(KeyCode::End));
        let screen = text(&draw(70, 5, |area, buf| render(&app, area, buf)));
        assert!(screen.contains("warning number 30"), "{screen}");
        assert!(screen.contains("PgUp / [ scrolls back"), "{screen}");
    }
}
