//! The help overlay (`?`).

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::Line;
use ratatui::widgets::{Clear, Paragraph, Widget, Wrap};

use crate::app::{App, Mode};
use crate::ui::panel;

const KEYS: [(&str, &str); 11] = [
    ("Up / Down", "select a limit"),
    ("+ / Right", "double the selected limit (unlimited stays)"),
    (
        "- / Left",
        "halve it (unlimited rate: half the attempted rate)",
    ),
    ("r", "restore the starting limits"),
    ("p", "pause / resume the producers"),
    ("s", "save live limits as <run dir>/tuned-<n>.toml"),
    ("PgUp  [", "scroll the event log back"),
    ("PgDn ] End", "scroll it forward / follow the newest"),
    ("?  Esc", "toggle / close this help"),
    (
        "q  Ctrl-C",
        "stop the run and wait for its drain (again: leave)",
    ),
    ("", "refused changes are explained and not sent"),
];

pub(crate) fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let [row] = Layout::vertical([Constraint::Length(KEYS.len() as u16 + 4)])
        .flex(Flex::Center)
        .areas(area);
    let [popup] = Layout::horizontal([Constraint::Length(70)])
        .flex(Flex::Center)
        .areas(row);
    let mut lines: Vec<Line<'_>> = KEYS
        .iter()
        .map(|(key, what)| Line::from(format!("{key:>10}  {what}")))
        .collect();
    lines.push(Line::default());
    lines.push(Line::styled(
        match app.mode() {
            Mode::Interactive => "Changes go to this run; the soak logs each one below.",
            Mode::ReadOnly => "read-only: watching a run started elsewhere (q leaves).",
        },
        Style::new().fg(crate::ui::palette::NOTE),
    ));
    Clear.render(popup, buf);
    Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .block(panel("Help"))
        .render(popup, buf);
}

#[cfg(test)]
mod tests {
    use ratatui::crossterm::event::{KeyCode, KeyEvent};
    use ratatui::widgets::Widget as _;

    use crate::ui::testing::{app_with_samples, draw, text};

    #[test]
    fn question_mark_toggles_the_overlay() {
        let mut app = app_with_samples(5);
        app.on_key(KeyEvent::from(KeyCode::Char('?')));
        let buf = draw(120, 40, |area, buf| (&app).render(area, buf));
        let screen = text(&buf);
        assert!(screen.contains(" Help "), "{screen}");
        assert!(screen.contains("restore the starting limits"), "{screen}");
        app.on_key(KeyEvent::from(KeyCode::Char('?')));
        let buf = draw(120, 40, |area, buf| (&app).render(area, buf));
        assert!(!text(&buf).contains("restore the starting limits"));
    }
}
