//! Drawing: `impl Widget for &App` lays the panels out; one module per panel.
//!
//! ```text
//! +- header: scenario, health, status, elapsed/remaining gauge ------------------+
//! | throughput chart                          | buffered gauge                  |
//! |                                           | heap / RSS chart                |
//! +-------------------------------------------+---------------------------------+
//! | latency over the run (p50, p99, max)      | latency bars of the interval    |
//! +-------------------------+-----------------+---------------------------------+
//! | CPU chart               | batches         | limits (selected highlighted)   |
//! +-------------------------+-----------------+---------------------------------+
//! | event log (repeats collapsed, scrollable)                                   |
//! +- keys | status -------------------------------------------------------------+
//! ```
//!
//! Below [`MIN_WIDTH`] x [`MIN_HEIGHT`] only a "terminal too small" line is drawn.
//! Without colour ([`App::colour`]) the screen goes through [`palette::monochrome`].

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::widgets::{Block, Widget};

use crate::app::App;

pub(crate) mod batches;
pub(crate) mod cpu;
pub(crate) mod events;
pub(crate) mod footer;
pub(crate) mod header;
pub(crate) mod help;
pub(crate) mod latency;
pub(crate) mod latency_chart;
pub(crate) mod limits;
pub(crate) mod memory;
pub(crate) mod palette;
pub(crate) mod throughput;
pub(crate) mod timechart;
pub(crate) mod too_small;

#[cfg(test)]
pub(crate) mod testing;

/// The narrowest terminal the dashboard draws in (columns); narrower shows only a
/// "terminal too small" line.
pub const MIN_WIDTH: u16 = 120;
/// The lowest terminal the dashboard draws in (rows); lower shows only a "terminal too
/// small" line.
pub const MIN_HEIGHT: u16 = 40;

impl Widget for &App {
    fn render(self, area: Rect, buf: &mut Buffer) {
        if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
            too_small::render(area, buf);
        } else {
            panels(self, area, buf);
        }
        if !self.colour() {
            palette::monochrome(buf, area);
        }
    }
}

fn panels(app: &App, area: Rect, buf: &mut Buffer) {
    let [header, top, middle, lower, events, footer] = Layout::vertical([
        Constraint::Length(4),
        Constraint::Fill(6),
        Constraint::Fill(4),
        Constraint::Length(9),
        Constraint::Fill(3),
        Constraint::Length(1),
    ])
    .areas(area);
    header::render(app, header, buf);

    let [chart, memory] = Layout::horizontal([Constraint::Fill(3), Constraint::Fill(2)]).areas(top);
    throughput::render(app, chart, buf);
    memory::render(app, memory, buf);

    let [over_time, bars] =
        Layout::horizontal([Constraint::Fill(3), Constraint::Fill(2)]).areas(middle);
    latency_chart::render(app, over_time, buf);
    latency::render(app, bars, buf);

    let [cpu, batches, limits] = Layout::horizontal([
        Constraint::Fill(1),
        Constraint::Fill(1),
        Constraint::Length(50),
    ])
    .areas(lower);
    cpu::render(app, cpu, buf);
    batches::render(app, batches, buf);
    limits::render(app, limits, buf);

    events::render(app, events, buf);
    footer::render(app, footer, buf);
    if app.help_visible() {
        help::render(app, area, buf);
    }
}

/// A bordered panel with a title.
pub(crate) fn panel(title: impl std::fmt::Display) -> Block<'static> {
    Block::bordered()
        .title(format!(" {title} "))
        .title_style(
            Style::new()
                .fg(ratatui::style::Color::White)
                .add_modifier(Modifier::BOLD),
        )
        .border_style(Style::new().fg(palette::BORDER))
}

/// Secondary text, for "nothing yet" placeholders, units and axes.
pub(crate) fn dim() -> Style {
    Style::new().fg(palette::SECONDARY)
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
    use ratatui::style::Color;
    use ratatui::widgets::Widget as _;

    use super::testing::{app_with_samples, draw, text};
    use super::*;

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
            "Latency over the run",
            "Latency, enqueue to delivery",
            "CPU (100% = one core)",
            "Batches, flush reasons",
            "Limits (read-only)",
            "Events",
            "q quit",
        ] {
            assert!(screen.contains(title), "{title}\n{screen}");
        }
    }

    #[test]
    fn at_the_minimum_size_every_value_is_whole() {
        let app = app_with_samples(40);
        let buf = draw(MIN_WIDTH, MIN_HEIGHT, |area, buf| (&app).render(area, buf));
        let screen = text(&buf);
        for value in [
            "consumer delay",
            "200 us",
            "max items",
            "mean 12.3 KiB",
            "12.3 MiB / 64.0 MiB",
            "RSS 120.0 MiB",
            "p50 1.2 ms  p99 4.5 ms  max 9.1 ms",
            "process 180.00%",
            "[ ] log",
        ] {
            assert!(screen.contains(value), "{value}\n{screen}");
        }
        assert!(!screen.contains("too small"), "{screen}");
    }

    #[test]
    fn below_the_minimum_only_says_the_terminal_is_too_small() {
        let app = app_with_samples(40);
        for (w, h) in [
            (80, 24),
            (MIN_WIDTH - 1, 48),
            (160, MIN_HEIGHT - 1),
            (40, 10),
        ] {
            let buf = draw(w, h, |area, buf| (&app).render(area, buf));
            let screen = text(&buf);
            let flat: String = screen.split_whitespace().collect::<Vec<_>>().join(" ");
            let want = format!("terminal too small (need {MIN_WIDTH}x{MIN_HEIGHT}, have {w}x{h})");
            assert!(flat.contains(&want), "{want}\n{screen}");
            assert!(!screen.contains("Throughput"), "{screen}");
            assert!(!screen.contains("MiB"), "no truncated values\n{screen}");
        }
    }

    #[test]
    fn the_default_palette_reads_on_a_dark_terminal() {
        let mut app = app_with_samples(40);
        app.on_key(ratatui::crossterm::event::KeyEvent::from(
            ratatui::crossterm::event::KeyCode::Char('?'),
        ));
        let mut paused = super::testing::sample(41.0);
        paused.paused = true;
        app.on_line(paused.into());
        for help in [false, true] {
            if !help {
                app.on_key(ratatui::crossterm::event::KeyEvent::from(
                    ratatui::crossterm::event::KeyCode::Esc,
                ));
            }
            let buf = draw(160, 48, |area, buf| (&app).render(area, buf));
            for cell in buf.content() {
                assert_ne!(cell.fg, Color::Blue, "dark blue text: {cell:?}");
                assert_ne!(cell.bg, Color::Blue, "dark blue background: {cell:?}");
                let on_black = matches!(cell.bg, Color::Reset | Color::Black);
                if cell.symbol().trim().is_empty() || !on_black {
                    continue;
                }
                assert!(
                    !matches!(cell.fg, Color::Black | Color::Blue | Color::DarkGray)
                        || "─│┌┐└┘".contains(cell.symbol()),
                    "unreadable on black: {cell:?}\n{}",
                    text(&buf)
                );
            }
        }
    }

    #[test]
    fn without_colour_nothing_is_coloured_and_series_keep_their_symbols() {
        let options = crate::DashboardOptions::new("x/samples.jsonl")
            .with_scenario(runlog::ScenarioConfig::default())
            .with_colour(false);
        let mut app = crate::App::new(&options);
        for i in 1..=40 {
            app.on_line(super::testing::sample(f64::from(i)).into());
        }
        let buf = draw(160, 48, |area, buf| (&app).render(area, buf));
        for cell in buf.content() {
            assert_eq!((cell.fg, cell.bg), (Color::Reset, Color::Reset), "{cell:?}");
        }
        let screen = text(&buf);
        for legend in [
            "⣿ accepted",
            "• delivered",
            "▄ refused",
            "█ evicted",
            "⣿ p50",
            "• p99",
            "▄ max",
        ] {
            assert!(screen.contains(legend), "{legend}\n{screen}");
        }
        // The selected knob and the status badge stay highlighted, as reversed video.
        let reversed = buf
            .content()
            .iter()
            .filter(|c| c.modifier.contains(Modifier::REVERSED))
            .count();
        assert!(reversed > 0, "{screen}");
    }

    #[test]
    fn small_and_odd_sizes_do_not_panic() {
        let mut app = app_with_samples(3);
        app.on_key(ratatui::crossterm::event::KeyEvent::from(
            ratatui::crossterm::event::KeyCode::Char('?'),
        ));
        for w in [1, 5, 10, 20, 30, 40, 50, 60, 80, 100, 119, 120, 160, 300] {
            for h in [1, 3, 5, 8, 12, 16, 20, 24, 39, 40, 48, 100] {
                let _ = draw(w, h, |area, buf| (&app).render(area, buf));
            }
        }
    }
}
