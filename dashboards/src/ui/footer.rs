//! The bottom line: key hints, then the outcome of the last key.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use crate::app::{App, Mode, RunState};
use crate::ui::{dim, palette};

const INTERACTIVE_KEYS: &str =
    " q stop  ? help  ↑↓ knob  +/- change  r reset  p pause  s save  [ ] log ";
const READ_ONLY_KEYS: &str = " q quit  ? help  s save tuned scenario  [ ] log ";
const ENDING_KEYS: &str = " q leave  ? help  s save tuned scenario  [ ] log ";
/// The keys when the status would not fit beside the full list (a compact terminal):
/// the help lists the rest.
const SHORT_KEYS: [&str; 2] = [" q stop  ? help ", " q quit  ? help "];

pub(crate) fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let ending = matches!(
        app.run_state(),
        RunState::Stopping | RunState::Draining | RunState::Done | RunState::Gone
    );
    let keys = match app.mode() {
        Mode::Interactive if ending => ENDING_KEYS,
        Mode::Interactive => INTERACTIVE_KEYS,
        Mode::ReadOnly => READ_ONLY_KEYS,
    };
    let status = app.status().unwrap_or("");
    let fits = keys.chars().count() + 1 + status.chars().count() <= usize::from(area.width);
    let keys = match app.mode() {
        _ if fits => keys,
        Mode::Interactive if !ending => SHORT_KEYS[0],
        _ => SHORT_KEYS[1],
    };
    let width = u16::try_from(keys.chars().count()).unwrap_or(u16::MAX);
    let [left, right] =
        Layout::horizontal([Constraint::Length(width), Constraint::Fill(1)]).areas(area);
    Paragraph::new(keys)
        .style(Style::new().fg(Color::Black).bg(Color::Gray))
        .render(left, buf);
    Paragraph::new(Line::from(vec![
        Span::styled(" ", dim()),
        Span::styled(status, Style::new().fg(palette::NOTE)),
    ]))
    .render(right, buf);
}

#[cfg(test)]
mod tests {
    use ratatui::crossterm::event::{KeyCode, KeyEvent};

    use super::*;
    use crate::ui::testing::{app_with_samples, draw, text};

    #[test]
    fn read_only_keys_say_so() {
        let mut app = app_with_samples(1);
        app.on_key(KeyEvent::from(KeyCode::Char('+')));
        let buf = draw(120, 1, |area, buf| render(&app, area, buf));
        let screen = text(&buf);
        assert!(screen.contains("q quit"), "{screen}");
        assert!(
            screen.contains("read-only: watching a run started elsewhere"),
            "{screen}"
        );
    }

    #[test]
    fn a_status_too_long_for_the_full_keys_gets_the_short_ones() {
        let mut app = app_with_samples(1);
        app.on_key(KeyEvent::from(KeyCode::Char('+')));
        let buf = draw(80, 1, |area, buf| render(&app, area, buf));
        let screen = text(&buf);
        assert!(screen.starts_with(" q quit  ? help "), "{screen}");
        assert!(
            screen.contains("read-only: watching a run started elsewhere"),
            "{screen}"
        );
    }
}
