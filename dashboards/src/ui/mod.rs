//! Drawing: `impl Widget for &App` lays the panels out; one module per panel.
//!
//! ```text
//! +- header: scenario, status, elapsed/remaining gauge ---------------------+
//! | throughput chart                       | buffered gauge                 |
//! |                                        | heap / RSS sparklines          |
//! +----------------------+-----------------+--------------------------------+
//! | latency              | batches          | limits (selected highlighted) |
//! +----------------------+-----------------+--------------------------------+
//! | event log                                                              |
//! +- keys | status ---------------------------------------------------------+
//! ```

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::widgets::{Block, Widget};

use crate::app::App;

pub(crate) mod batches;
pub(crate) mod events;
pub(crate) mod footer;
pub(crate) mod header;
pub(crate) mod help;
pub(crate) mod latency;
pub(crate) mod limits;
pub(crate) mod memory;
pub(crate) mod throughput;

#[cfg(test)]
pub(crate) mod testing;

impl Widget for &App {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let [header, middle, lower, events, footer] = Layout::vertical([
            Constraint::Length(4),
            Constraint::Fill(5),
            Constraint::Fill(4),
            Constraint::Fill(3),
            Constraint::Length(1),
        ])
        .areas(area);
        header::render(self, header, buf);

        let [chart, memory] =
            Layout::horizontal([Constraint::Fill(3), Constraint::Fill(2)]).areas(middle);
        throughput::render(self, chart, buf);
        memory::render(self, memory, buf);

        let [latency, batches, limits] = Layout::horizontal([Constraint::Fill(1); 3]).areas(lower);
        latency::render(self, latency, buf);
        batches::render(self, batches, buf);
        limits::render(self, limits, buf);

        events::render(self, events, buf);
        footer::render(self, footer, buf);
        if self.help_visible() {
            help::render(self, area, buf);
        }
    }
}

/// A bordered panel with a title.
pub(crate) fn panel(title: impl std::fmt::Display) -> Block<'static> {
    Block::bordered()
        .title(format!(" {title} "))
        .title_style(Style::new().add_modifier(Modifier::BOLD))
        .border_style(Style::new().fg(Color::DarkGray))
}

/// Dimmed text, for "nothing yet" placeholders and units.
pub(crate) fn dim() -> Style {
    Style::new().fg(Color::DarkGray)
}

/// `title`, marked when the latest sample is the drain's (a short, untypical interval).
pub(crate) fn interval_title(title: &str, app: &App) -> String {
    match app.latest() {
        Some(sample) if sample.phase == "drain" => format!("{title} (drain interval)"),
        _ => title.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use ratatui::widgets::Widget as _;

    use super::testing::{app_with_samples, draw, text};

    #[test]
    fn the_whole_screen_reads_at_160_by_48() {
        let app = app_with_samples(40);
        let buf = draw(160, 48, |area, buf| (&app).render(area, buf));
        let screen = text(&buf);
        for title in [
            "Metronome soak",
            "Throughput (events/s)",
            "Buffered bytes",
            "Heap & RSS",
            "Latency, enqueue to delivery",
            "Batches, flush reasons",
            "Limits (read-only)",
            "Events",
            "q quit",
        ] {
            assert!(screen.contains(title), "{title}\n{screen}");
        }
    }

    #[test]
    fn small_and_odd_sizes_do_not_panic() {
        let mut app = app_with_samples(3);
        app.on_key(ratatui::crossterm::event::KeyEvent::from(
            ratatui::crossterm::event::KeyCode::Char('?'),
        ));
        for w in [1, 5, 10, 20, 30, 40, 50, 60, 80, 100, 160] {
            for h in [1, 3, 5, 8, 12, 16, 20, 24, 48] {
                let _ = draw(w, h, |area, buf| (&app).render(area, buf));
            }
        }
    }
}
