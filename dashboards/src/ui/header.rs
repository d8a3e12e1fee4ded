//! Header: the scenario line, the run's status and health, and an elapsed/remaining gauge.
//!
//! The run's clock does not stop for a pause: a run of `--duration 60s` ends 60 s after
//! it started however long it was paused, so while paused the gauge says that the pause
//! counts toward the duration rather than pretending to hold the countdown.

use ratatui::buffer::Buffer;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Gauge, Paragraph, Widget};

use crate::app::{App, Mode, RunState};
use crate::format;
use crate::ui::{palette, panel};

/// The rows the header takes in `width` columns: 4, or 5 when the scenario and the
/// status do not fit one line (a compact terminal) and the status gets its own.
pub(crate) fn height(app: &App, width: u16) -> u16 {
    if one_line(app, width.saturating_sub(2)) {
        4
    } else {
        5
    }
}

/// Whether the scenario and the status share a line `width` wide.
fn one_line(app: &App, width: u16) -> bool {
    title(app).chars().count() + 1 + status_line(app, true).width() <= usize::from(width)
}

fn title(app: &App) -> &str {
    if app.title().is_empty() {
        "(scenario not given)"
    } else {
        app.title()
    }
}

pub(crate) fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let block = panel("Metronome soak");
    let inner = block.inner(area);
    block.render(area, buf);
    let title = title(app);
    if one_line(app, inner.width) || inner.height < 3 {
        let [top, gauge] =
            Layout::vertical([Constraint::Length(1), Constraint::Length(1)]).areas(inner);
        let status = status_line(app, true);
        let status_width = u16::try_from(status.width()).unwrap_or(u16::MAX);
        let [left, right] =
            Layout::horizontal([Constraint::Fill(1), Constraint::Length(status_width)]).areas(top);
        Paragraph::new(title).render(left, buf);
        Paragraph::new(status)
            .alignment(Alignment::Right)
            .render(right, buf);
        progress(app, gauge.width).render(gauge, buf);
        return;
    }
    // Narrow: the scenario, then the status (without the mode if it does not fit: the
    // limits panel's title says it too), then the gauge.
    let [top, middle, gauge] = Layout::vertical([Constraint::Length(1); 3]).areas(inner);
    Paragraph::new(title).render(top, buf);
    let mut status = status_line(app, true);
    if status.width() > usize::from(middle.width) {
        status = status_line(app, false);
    }
    Paragraph::new(status).render(middle, buf);
    progress(app, gauge.width).render(gauge, buf);
}

fn badge(text: String, colour: Color) -> Span<'static> {
    Span::styled(
        format!(" {text} "),
        Style::new()
            .fg(Color::Black)
            .bg(colour)
            .add_modifier(Modifier::BOLD),
    )
}

fn status_line(app: &App, with_mode: bool) -> Line<'static> {
    let state = app.run_state();
    let colour = match state {
        RunState::Waiting => palette::SECONDARY,
        RunState::Running => palette::GOOD,
        RunState::Paused => palette::NOTE,
        RunState::Stopping | RunState::Draining => Color::LightMagenta,
        RunState::Done => Color::Cyan,
        RunState::Gone => palette::BAD,
    };
    let mode = match app.mode() {
        Mode::Interactive => "interactive",
        Mode::ReadOnly => "watching (read-only)",
    };
    let mut spans = Vec::new();
    if with_mode {
        spans.push(Span::raw(format!("{mode}  ")));
    }
    if let Some((text, problem)) = app.health().badge() {
        let colour = if problem { palette::BAD } else { palette::NOTE };
        spans.push(badge(text, colour));
        spans.push(Span::raw(" "));
    }
    spans.push(badge(state.label().to_uppercase(), colour));
    Line::from(spans)
}

/// The elapsed/remaining gauge, its label fitted to `width`.
fn progress(app: &App, width: u16) -> Gauge<'static> {
    let elapsed = app.latest().map_or(0.0, |s| s.t_s);
    let paused = app.run_state() == RunState::Paused;
    let (ratio, mut label) = match app.duration_s {
        Some(total) if total > 0.0 => {
            let left = (total - elapsed).max(0.0);
            (
                (elapsed / total).clamp(0.0, 1.0),
                format!(
                    "elapsed {} / {}, {} left",
                    format::seconds(elapsed),
                    format::seconds(total),
                    format::seconds(left)
                ),
            )
        }
        _ => (0.0, format!("elapsed {}", format::seconds(elapsed))),
    };
    if paused && app.duration_s.is_some() {
        let long = " (paused: the clock runs on, a pause counts toward the duration)";
        let short = " (paused: the clock runs on)";
        if label.chars().count() + long.chars().count() <= usize::from(width) {
            label.push_str(long);
        } else {
            label.push_str(short);
        }
    }
    Gauge::default()
        .ratio(ratio)
        .label(Span::styled(label, Style::new().fg(Color::White)))
        .gauge_style(Style::new().fg(palette::INFO).bg(Color::Black))
}

#[cfg(test)]
mod tests {
    use ratatui::crossterm::event::{KeyCode, KeyEvent};
    use runlog::ScenarioConfig;

    use super::*;
    use crate::options::DashboardOptions;
    use crate::ui::testing::{app_with_samples, draw, find_row, text};

    #[test]
    fn shows_scenario_progress_and_status() {
        let app = app_with_samples(15);
        let buf = draw(120, 4, |area, buf| render(&app, area, buf));
        let screen = text(&buf);
        assert!(screen.contains("Metronome soak"), "{screen}");
        assert!(
            screen.contains("telemetry payloads, 32 producers, reject policy"),
            "{screen}"
        );
        assert!(screen.contains("RUNNING"), "{screen}");
        assert!(screen.contains("watching (read-only)"), "{screen}");
        assert!(
            screen.contains("elapsed 15.0 s / 1m00s, 45.0 s left"),
            "{screen}"
        );
    }

    #[test]
    fn shows_paused_after_p() {
        let (tx, _rx) = std::sync::mpsc::sync_channel(4);
        let options = DashboardOptions::new("x/samples.jsonl")
            .with_scenario(ScenarioConfig::default())
            .with_controls(tx);
        let mut app = crate::App::new(&options);
        app.on_line(crate::ui::testing::sample(1.0).into());
        app.on_key(KeyEvent::from(KeyCode::Char('p')));
        let buf = draw(130, 4, |area, buf| render(&app, area, buf));
        let (_, row) = find_row(&buf, "PAUSED").expect("paused status");
        assert!(row.contains("interactive"), "{row}");
        // The runner's clock does not stop for a pause: the header says so.
        let screen = text(&buf);
        assert!(
            screen.contains("59.0 s left (paused: the clock runs on"),
            "{screen}"
        );
    }

    #[test]
    fn backpressure_is_expected_and_loss_is_a_problem() {
        // The fixture refuses 100k/s: the default scenario's intended saturation.
        let mut app = app_with_samples(3);
        let buf = draw(160, 4, |area, buf| render(&app, area, buf));
        let screen = text(&buf);
        assert!(screen.contains("BACKPRESSURE (expected)"), "{screen}");
        assert!(!screen.contains("PROBLEM"), "{screen}");
        let (y, row) = find_row(&buf, "BACKPRESSURE").expect("badge");
        let x = row.find("BACKPRESSURE").expect("badge") as u16;
        assert_eq!(buf[(x, y)].bg, palette::NOTE);

        let mut lossy = crate::ui::testing::sample(4.0);
        lossy.totals.dropped = 1_500;
        app.on_line(lossy.into());
        let buf = draw(160, 4, |area, buf| render(&app, area, buf));
        let (y, row) =
            find_row(&buf, "PROBLEM: 1.5k accepted events evicted (lost)").expect("problem");
        let x = row.find("PROBLEM").expect("badge") as u16;
        assert_eq!(buf[(x, y)].bg, palette::BAD);
    }

    #[test]
    fn evicting_under_drop_oldest_is_the_policy_not_a_problem() {
        let scenario = ScenarioConfig {
            policy: runlog::Policy::DropOldest,
            ..ScenarioConfig::default()
        };
        let mut app = crate::App::new(&DashboardOptions::new("x").with_scenario(scenario));
        let mut s = crate::ui::testing::sample(4.0);
        s.totals.dropped = 1_500;
        app.on_line(s.into());
        let buf = draw(160, 4, |area, buf| render(&app, area, buf));
        let screen = text(&buf);
        assert!(!screen.contains("PROBLEM"), "{screen}");
        let (y, row) = find_row(&buf, "EVICTING OLDEST (policy): 1.5k evicted").expect("badge");
        let x = row.find("EVICTING").expect("badge") as u16;
        assert_eq!(buf[(x, y)].bg, palette::NOTE);
    }

    #[test]
    fn without_duration_shows_elapsed_only() {
        let app = crate::App::new(&DashboardOptions::new("samples.jsonl"));
        let buf = draw(80, 4, |area, buf| render(&app, area, buf));
        let screen = text(&buf);
        assert!(screen.contains("elapsed 0.0 s"), "{screen}");
        assert!(screen.contains("WAITING"), "{screen}");
    }
}
