//! Drawing: `impl Widget for &App` lays the panels out; one module per panel.
//!
//! ```text
//! +- header: scenario, health, status, elapsed/remaining gauge ------------------+
//! | throughput chart                          | buffered gauge                  |
//! |                                           | heap / RSS chart                |
//! +-------------------------------------------+---------------------------------+
//!   disk tier: one line, only when the run has one (see [`disk`])
//! +-------------------------------------------+---------------------------------+
//! | latency over the run (p50, p99, max)      | latency bars of the interval    |
//! +-------------------------+-----------------+---------------------------------+
//! | CPU chart               | batches         | limits (selected highlighted)   |
//! +-------------------------+-----------------+---------------------------------+
//! | event log (repeats collapsed, scrollable)                                   |
//! +- keys | status -------------------------------------------------------------+
//! ```
//!
//! That is the full layout, from [`FULL_WIDTH`] x [`FULL_HEIGHT`]. From [`MIN_WIDTH`] x
//! [`MIN_HEIGHT`] (a standard 80x24 terminal) up to that, the compact layout keeps what
//! a run needs watched and tuned:
//!
//! ```text
//! +- header: scenario, status and health (own line if narrow), gauge ------------+
//! | throughput: current rates, sparklines (a chart when tall enough)             |
//! +------------------------------------------------+-----------------------------+
//! | limits (selected highlighted)                  | buffered gauge              |
//! |                                                | latency p50 / p99 / max     |
//! +------------------------------------------------+-----------------------------+
//!   disk tier: one line, only when the run has one
//! +------------------------------------------------------------------------------+
//! | event log: the last few lines                                                |
//! +- keys | status ---------------------------------------------------------------+
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
pub(crate) mod disk;
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

/// The narrowest terminal the dashboard draws in (columns), in its compact layout;
/// narrower shows only a "terminal too small" line.
pub const MIN_WIDTH: u16 = 80;
/// The lowest terminal the dashboard draws in (rows), in its compact layout; lower shows
/// only a "terminal too small" line.
pub const MIN_HEIGHT: u16 = 24;
/// The narrowest terminal the full layout (every panel) is drawn in.
pub const FULL_WIDTH: u16 = 120;
/// The lowest terminal the full layout (every panel) is drawn in.
pub const FULL_HEIGHT: u16 = 40;
/// The width of the limits panel: a knob's row with its starting value beside it.
const LIMITS_WIDTH: u16 = 50;

impl Widget for &App {
    fn render(self, area: Rect, buf: &mut Buffer) {
        if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
            too_small::render(area, buf);
        } else if area.width < FULL_WIDTH || area.height < FULL_HEIGHT {
            compact(self, area, buf);
        } else {
            panels(self, area, buf);
        }
        if !self.colour() {
            palette::monochrome(buf, area);
        }
    }
}

fn panels(app: &App, area: Rect, buf: &mut Buffer) {
    let [header, top, disk_line, middle, lower, events, footer] = Layout::vertical([
        Constraint::Length(header::height(app, area.width)),
        Constraint::Fill(6),
        Constraint::Length(disk::height(app)),
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
    disk::render(app, disk_line, buf);

    let [over_time, bars] =
        Layout::horizontal([Constraint::Fill(3), Constraint::Fill(2)]).areas(middle);
    latency_chart::render(app, over_time, buf);
    latency::render(app, bars, buf);

    let [cpu, batches, limits] = Layout::horizontal([
        Constraint::Fill(1),
        Constraint::Fill(1),
        Constraint::Length(LIMITS_WIDTH),
    ])
    .areas(lower);
    cpu::render(app, cpu, buf);
    batches::render(app, batches, buf);
    limits::render(app, limits, buf);

    log_keys_and_help(app, events, footer, area, buf);
}

/// The compact layout: header, throughput, limits beside the buffered gauge and the
/// latency numbers, the last event-log lines, the keys.
fn compact(app: &App, area: Rect, buf: &mut Buffer) {
    // Limits: five knobs and the fixed item count, in a border.
    const MIDDLE: u16 = 8;
    // The lowest throughput panel with its rates and both sparklines.
    const THROUGHPUT_LOW: u16 = 5;
    let header_height = header::height(app, area.width);
    let disk_height = disk::height(app);
    let free = area
        .height
        .saturating_sub(header_height + MIDDLE + disk_height + 1);
    // The log gets a third of what is left, at least five rows (three lines in a
    // border), or four (two lines) where the disk tier's line would otherwise leave
    // the throughput too low for its sparklines; the throughput the rest.
    let events_height = (free / 3)
        .max(5)
        .min(free.saturating_sub(THROUGHPUT_LOW).max(4))
        .min(free);
    let [header, throughput, middle, disk_line, events, footer] = Layout::vertical([
        Constraint::Length(header_height),
        Constraint::Length(free - events_height),
        Constraint::Length(MIDDLE),
        Constraint::Length(disk_height),
        Constraint::Length(events_height),
        Constraint::Length(1),
    ])
    .areas(area);
    header::render(app, header, buf);
    throughput::render(app, throughput, buf);
    let [limits, right] =
        Layout::horizontal([Constraint::Length(LIMITS_WIDTH), Constraint::Fill(1)]).areas(middle);
    limits::render(app, limits, buf);
    let [buffered, latency] =
        Layout::vertical([Constraint::Length(3), Constraint::Fill(1)]).areas(right);
    memory::render_buffered(app, buffered, buf);
    latency::render_compact(app, latency, buf);
    disk::render(app, disk_line, buf);
    log_keys_and_help(app, events, footer, area, buf);
}

/// What every layout ends with: the event log, the keys line, and the help over
/// everything when it is shown.
fn log_keys_and_help(app: &App, events: Rect, footer: Rect, area: Rect, buf: &mut Buffer) {
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
    use ratatui::crossterm::event::{KeyCode, KeyEvent};
    use ratatui::style::Color;
    use ratatui::widgets::Widget as _;

    use super::testing::{app_with_samples, draw, lines, text};
    use super::*;

    /// `row` with runs of spaces as one.
    fn flat(row: &str) -> String {
        row.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    /// An app of 40 samples whose interval was changed from 10 ms to 5 ms (the limits
    /// panel shows the start beside it), with that change in the log.
    fn tuned_app(app: &mut App, spill: Option<runlog::SpillSample>) {
        let mut changed = super::testing::sample(40.5);
        changed.limits.interval_us = 5_000;
        changed.spill = spill;
        app.on_line(
            runlog::Event::new(
                40.2,
                runlog::EventKind::Reconfigure {
                    knob: "interval_us".into(),
                    from: "10000".into(),
                    to: "5000".into(),
                    source: "dashboard".into(),
                },
            )
            .into(),
        );
        app.on_line(changed.into());
    }

    /// Titles of the compact layout's panels.
    const COMPACT_TITLES: [&str; 7] = [
        "Metronome soak",
        "Throughput (events/s)",
        "Buffered",
        "Latency",
        "Limits (read-only)",
        "Events",
        "q quit",
    ];
    /// Titles of the full layout's panels.
    const FULL_TITLES: [&str; 11] = [
        "Metronome soak",
        "Throughput (events/s)",
        "Buffered bytes (peak 40.0 MiB)",
        "Heap & RSS",
        "Latency over the run",
        "Latency, enqueue to delivery",
        "CPU (100% = one core)",
        "Batches, flush reasons",
        "Limits (read-only)",
        "Events",
        "q quit",
    ];

    #[test]
    fn each_layout_shows_every_panel_with_its_values_whole() {
        let mut app = app_with_samples(40);
        tuned_app(&mut app, None);
        for screen in every_panel_whole(&app, &[]) {
            assert!(!screen.contains("backlog"), "no disk tier\n{screen}");
        }
    }

    #[test]
    fn a_disk_tier_is_one_more_line_in_each_layout_leaving_every_panel_whole() {
        let spill = runlog::SpillSample {
            spilled_per_sec: 8_123.0,
            replayed_per_sec: 7_912.0,
            backlog_events: 41_234,
            disk_bytes: 12_897_485,
            max_disk_bytes: 1 << 30,
            ..Default::default()
        };
        let mut app = app_with_samples(0);
        for i in 1..=40 {
            let mut s = super::testing::sample(f64::from(i));
            s.spill = Some(spill);
            app.on_line(s.into());
        }
        tuned_app(&mut app, Some(spill));
        let line = "disk 12.3 MiB / 1.0 GiB · backlog 41.2k · spilled 8.1k/s · replayed 7.9k/s";
        let screens = every_panel_whole(&app, &[line]);
        // At 80x24 the throughput still has its rates and both sparklines.
        let smallest = &screens[0];
        for name in ["accepted", "delivered"] {
            assert!(
                smallest
                    .lines()
                    .any(|row| row.starts_with(&format!("│{name} "))
                        && row.chars().any(|c| "▁▂▃▄▅▆▇█".contains(c))),
                "a {name} sparkline\n{smallest}"
            );
        }
    }

    /// Draws `app` in each layout and checks every panel's title and values, and
    /// `extra`, are on screen whole; returns the screens.
    fn every_panel_whole(app: &App, extra: &[&str]) -> Vec<String> {
        let mut screens = Vec::new();
        for (w, h, full) in [
            (MIN_WIDTH, MIN_HEIGHT, false),
            (100, 30, false),
            (FULL_WIDTH - 1, 60, false),
            (200, FULL_HEIGHT - 1, false),
            (FULL_WIDTH, FULL_HEIGHT, true),
            (160, 48, true),
        ] {
            let buf = draw(w, h, |area, buf| app.render(area, buf));
            let screen = text(&buf);
            let titles: &[&str] = if full { &FULL_TITLES } else { &COMPACT_TITLES };
            for title in titles {
                assert!(screen.contains(title), "{w}x{h}: {title}\n{screen}");
            }
            if !full {
                assert!(!screen.contains("Heap & RSS"), "{w}x{h}: compact\n{screen}");
            }
            for value in [
                // Header: scenario, health, status, progress.
                "telemetry payloads, 32 producers, reject policy",
                "watching (read-only)",
                "BACKPRESSURE (expected)",
                "RUNNING",
                "elapsed 40.5 s / 1m00s, 19.5 s left",
                // Throughput's current rates.
                "accepted 500.0k/s",
                "delivered 520.5k/s",
                "refused 100.0k/s",
                "evicted 0/s",
                // Buffered bytes against the limit.
                "12.3 MiB / 64.0 MiB",
                // Latency.
                "p50",
                "1.2 ms",
                "p99",
                "4.5 ms",
                "9.1 ms",
                // Limits, with the changed knob's start.
                "interval 5 ms (start 10 ms)",
                "max batch 32.0 KiB",
                "max buffered 64.0 MiB",
                "rate unlimited",
                "consumer delay 200 us",
                "max items off (fixed)",
                // The log, and the keys.
                "change  interval 10 ms -> 5 ms (dashboard)",
                "s save tuned scenario  [ ] log",
            ]
            .iter()
            .chain(extra)
            {
                let value = value.split_whitespace().collect::<Vec<_>>().join(" ");
                assert!(
                    lines(&buf).iter().any(|row| flat(row).contains(&value)),
                    "{w}x{h}: {value}\n{screen}"
                );
            }
            assert!(!screen.contains("too small"), "{w}x{h}\n{screen}");
            screens.push(screen);
        }
        screens
    }

    #[test]
    fn the_compact_layout_keeps_live_tuning() {
        let (tx, _rx) = std::sync::mpsc::sync_channel(4);
        let options = crate::DashboardOptions::new("x/samples.jsonl")
            .with_scenario(runlog::ScenarioConfig::default())
            .with_controls(tx);
        let mut app = crate::App::new(&options);
        for i in 1..=10 {
            app.on_line(super::testing::sample(f64::from(i)).into());
        }
        let screen = text(&draw(MIN_WIDTH, MIN_HEIGHT, |area, buf| {
            (&app).render(area, buf);
        }));
        for value in [
            "Limits (up/down, +/-)",
            "interactive",
            "q stop  ? help  ↑↓ knob  +/- change  r reset  p pause  s save  [ ] log",
        ] {
            assert!(screen.contains(value), "{value}\n{screen}");
        }
        app.on_key(KeyEvent::from(KeyCode::Down));
        app.on_key(KeyEvent::from(KeyCode::Down));
        let _ = app.on_key(KeyEvent::from(KeyCode::Char('-')));
        let buf = draw(MIN_WIDTH, MIN_HEIGHT, |area, buf| (&app).render(area, buf));
        let screen = text(&buf);
        // The status does not fit beside every key: the short keys, the status whole.
        let status = " q stop  ? help  sent: max buffered 64.0 MiB -> 32.0 MiB";
        assert!(screen.contains(status), "{status}\n{screen}");
        let (y, row) = super::testing::find_row(&buf, "> max buffered").expect("selected");
        assert!(row.contains("32.0 MiB  (start 64.0 MiB)"), "{row}");
        let x = row.find('>').expect("marker") as u16;
        assert_eq!(buf[(x, y)].bg, Color::Yellow);
        // The help overlay fits too.
        app.on_key(KeyEvent::from(KeyCode::Char('?')));
        let screen = text(&draw(MIN_WIDTH, MIN_HEIGHT, |area, buf| {
            (&app).render(area, buf);
        }));
        assert!(screen.contains("restore the starting limits"), "{screen}");
    }

    #[test]
    fn below_the_minimum_only_says_the_terminal_is_too_small() {
        let app = app_with_samples(40);
        for (w, h) in [
            (MIN_WIDTH - 1, MIN_HEIGHT),
            (MIN_WIDTH, MIN_HEIGHT - 1),
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
        for (w, h) in [
            (MIN_WIDTH, MIN_HEIGHT),
            (100, 30),
            (FULL_WIDTH, FULL_HEIGHT),
        ] {
            let screen = text(&draw(w, h, |area, buf| (&app).render(area, buf)));
            assert!(!screen.contains("too small"), "{w}x{h}\n{screen}");
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
