//! Header: the scenario line, the run's status and an elapsed/remaining gauge.

use ratatui::buffer::Buffer;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Gauge, Paragraph, Widget};

use crate::app::{App, Mode, RunState};
use crate::format;
use crate::ui::panel;

pub(crate) fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let block = panel("Metronome soak");
    let inner = block.inner(area);
    block.render(area, buf);
    let [top, gauge] =
        Layout::vertical([Constraint::Length(1), Constraint::Length(1)]).areas(inner);

    let title = if app.title().is_empty() {
        "(scenario not given)"
    } else {
        app.title()
    };
    let status = status_line(app);
    let status_width = u16::try_from(status.width()).unwrap_or(u16::MAX);
    let [left, right] =
        Layout::horizontal([Constraint::Fill(1), Constraint::Length(status_width)]).areas(top);
    Paragraph::new(title).render(left, buf);
    Paragraph::new(status)
        .alignment(Alignment::Right)
        .render(right, buf);
    progress(app).render(gauge, buf);
}

fn status_line(app: &App) -> Line<'static> {
    let state = app.run_state();
    let color = match state {
        RunState::Waiting => Color::DarkGray,
        RunState::Running => Color::Green,
        RunState::Paused => Color::Yellow,
        RunState::Stopping | RunState::Draining => Color::Magenta,
        RunState::Done => Color::Cyan,
        RunState::Gone => Color::Red,
    };
    let mode = match app.mode() {
        Mode::Interactive => "interactive",
        Mode::ReadOnly => "watching (read-only)",
    };
    Line::from(vec![
        Span::raw(format!("{mode}  ")),
        Span::styled(
            format!(" {} ", state.label().to_uppercase()),
            Style::new()
                .fg(Color::Black)
                .bg(color)
                .add_modifier(Modifier::BOLD),
        ),
    ])
}

fn progress(app: &App) -> Gauge<'static> {
    let elapsed = app.latest().map_or(0.0, |s| s.t_s);
    let (ratio, label) = match app.duration_s {
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
    Gauge::default()
        .ratio(ratio)
        .label(label)
        .gauge_style(Style::new().fg(Color::Blue).bg(Color::Black))
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
        let buf = draw(100, 4, |area, buf| render(&app, area, buf));
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
        let buf = draw(100, 4, |area, buf| render(&app, area, buf));
        let (_, row) = find_row(&buf, "PAUSED").expect("paused status");
        assert!(row.contains("interactive"), "{row}");
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
