//! The one line drawn on a terminal smaller than the dashboard needs, instead of panels
//! too small to hold their values.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::style::Style;
use ratatui::widgets::{Clear, Paragraph, Widget, Wrap};

use crate::ui::{MIN_HEIGHT, MIN_WIDTH, palette};

/// The message for a terminal of `area`'s size.
pub(crate) fn message(area: Rect) -> String {
    format!(
        "terminal too small (need {MIN_WIDTH}x{MIN_HEIGHT}, have {}x{}); q quits",
        area.width, area.height
    )
}

pub(crate) fn render(area: Rect, buf: &mut Buffer) {
    Clear.render(area, buf);
    let text = message(area);
    let rows = u16::try_from(text.chars().count())
        .unwrap_or(u16::MAX)
        .div_ceil(area.width.max(1));
    let [row] = Layout::vertical([Constraint::Length(rows)])
        .flex(Flex::Center)
        .areas(area);
    Paragraph::new(text)
        .centered()
        .wrap(Wrap { trim: true })
        .style(Style::new().fg(palette::NOTE))
        .render(row, buf);
}
