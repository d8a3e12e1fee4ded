//! Keys to commands: what each key does, checked with [`Limits::apply`] before sending.
//!
//! | key | does |
//! | --- | --- |
//! | Up / Down | select a knob ([`Knob::ALL`] order) |
//! | `+` `=` Right / `-` Left | double / halve the selected knob |
//! | `r` | restore the starting limits (one command per knob that differs) |
//! | `p` | pause / resume the producers |
//! | `s` | save the live limits as a scenario file in the run directory |
//! | `?` | help; Esc closes it |
//! | PgUp `[` / PgDn `]` / End | scroll the event log back / forward by [`LOG_PAGE`] lines / follow the newest |
//! | `q` / Ctrl-C | stop the run (interactive) or leave (read-only); again to leave at once |
//!
//! Doubling or halving a limit that is unlimited: `+` does nothing (it already is), and `-`
//! gives a first value. For the rate that is half the last sample's `attempted_per_sec`
//! (what producers achieved unthrottled), for the batch byte trigger 32 KiB. A consumer
//! delay of 0 doubles to 100 us.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use runlog::{Control, Knob, Limits, Sample};

use crate::app::{App, Mode};
use crate::format;
use crate::log::{LOG_PAGE, LogKind};

/// The batch byte trigger that `-` sets when it is off.
pub const FIRST_BATCH_BYTES: u64 = 32 * 1024;
/// The consumer delay that `+` sets when it is 0.
pub const FIRST_CONSUMER_DELAY_US: u64 = 100;

/// The status shown for a control key in read-only mode.
pub const READ_ONLY_MESSAGE: &str = "read-only: watching a run started elsewhere";

/// What the event loop should do after a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Nothing beyond redrawing.
    None,
    /// Send these commands to the soak, in this order (already checked).
    Send(Vec<Control>),
    /// Leave the dashboard.
    Quit,
    /// Ctrl-C: what [`DashboardOptions::with_interrupt`](crate::DashboardOptions::with_interrupt)
    /// says, else the same as `q`.
    Interrupt,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Double,
    Halve,
}

impl App {
    /// Handles one key; key releases and repeats of other kinds are ignored.
    ///
    /// A change is checked with [`Limits::apply`] against the live limits: a refused one
    /// sends nothing and says why on the status line and in the log. An accepted one
    /// updates the live limits at once (the next sample confirms them).
    ///
    /// ```
    /// use dashboards::{Action, App, DashboardOptions};
    /// use ratatui::crossterm::event::{KeyCode, KeyEvent};
    /// use runlog::{Control, ScenarioConfig};
    /// let (tx, _rx) = std::sync::mpsc::sync_channel(16);
    /// let options = DashboardOptions::new("samples.jsonl")
    ///     .with_scenario(ScenarioConfig::default())
    ///     .with_controls(tx);
    /// let mut app = App::new(&options);
    /// // The interval (10 ms) is selected first; `-` halves it.
    /// let action = app.on_key(KeyEvent::from(KeyCode::Char('-')));
    /// assert_eq!(action, Action::Send(vec![Control::SetInterval { interval_us: 5_000 }]));
    /// ```
    pub fn on_key(&mut self, key: KeyEvent) -> Action {
        if key.kind == KeyEventKind::Release {
            return Action::None;
        }
        if key.modifiers.contains(KeyModifiers::CONTROL) {
            return match key.code {
                KeyCode::Char('c') => Action::Interrupt,
                _ => Action::None,
            };
        }
        match key.code {
            KeyCode::Char('q') => self.quit(),
            KeyCode::Char('?') | KeyCode::F(1) => {
                self.help = !self.help;
                Action::None
            }
            KeyCode::Esc => {
                self.help = false;
                Action::None
            }
            KeyCode::Up => self.select(Knob::ALL.len() - 1),
            KeyCode::Down => self.select(1),
            KeyCode::Char('+' | '=') | KeyCode::Right => self.change(Step::Double),
            KeyCode::Char('-') | KeyCode::Left => self.change(Step::Halve),
            KeyCode::Char('r') => self.restore(),
            KeyCode::Char('p') => self.toggle_pause(),
            KeyCode::Char('s') => {
                self.save_tuned();
                Action::None
            }
            KeyCode::PageUp | KeyCode::Char('[') => {
                self.log.scroll(true, LOG_PAGE);
                Action::None
            }
            KeyCode::PageDown | KeyCode::Char(']') => {
                self.log.scroll(false, LOG_PAGE);
                Action::None
            }
            KeyCode::End => {
                self.log.follow();
                Action::None
            }
            _ => Action::None,
        }
    }

    fn select(&mut self, by: usize) -> Action {
        self.selected = (self.selected + by) % Knob::ALL.len();
        Action::None
    }

    /// `q`: the first asks an interactive run to stop; otherwise leave.
    pub(crate) fn quit(&mut self) -> Action {
        if self.mode == Mode::ReadOnly || self.done || self.stopping || self.gone {
            return Action::Quit;
        }
        self.stopping = true;
        self.note(
            LogKind::Info,
            "stop sent: waiting for the drain (q again to leave now)".to_owned(),
        );
        Action::Send(vec![Control::Stop])
    }

    /// The live limits, if commands may be sent now; otherwise says why not.
    fn controllable(&mut self) -> Option<Limits> {
        let why = if self.mode == Mode::ReadOnly {
            READ_ONLY_MESSAGE
        } else if self.done || self.draining || self.stopping || self.gone {
            "the run is ending: no more changes"
        } else if self.limits.is_none() {
            "no limits known yet: waiting for the first sample"
        } else {
            return self.limits.clone();
        };
        self.status = Some(why.to_owned());
        None
    }

    fn change(&mut self, step: Step) -> Action {
        let Some(limits) = self.controllable() else {
            return Action::None;
        };
        let knob = self.selected_knob();
        let control = match stepped(knob, &limits, step, self.samples.last()) {
            Ok(control) => control,
            Err(why) => {
                self.status = Some(why);
                return Action::None;
            }
        };
        match limits.apply(&control) {
            Ok(next) => {
                self.status = Some(change_text(knob, &limits, &next));
                self.limits = Some(next);
                self.send(vec![control])
            }
            Err(err) => {
                self.note(LogKind::Refused, format!("refused: {err}"));
                Action::None
            }
        }
    }

    /// `r`: one command per knob whose live value differs from its starting value, in an
    /// order in which each passes [`Limits::apply`].
    fn restore(&mut self) -> Action {
        let Some(limits) = self.controllable() else {
            return Action::None;
        };
        let Some(start) = self.starting.clone() else {
            self.status = Some("starting limits not known yet".to_owned());
            return Action::None;
        };
        let mut pending: Vec<Control> = Knob::ALL
            .into_iter()
            .filter(|&k| format::knob_of(&limits, k) != format::knob_of(&start, k))
            .map(|k| set_control(k, format::knob_of(&start, k)))
            .collect();
        if pending.is_empty() {
            self.status = Some("limits already at their starting values".to_owned());
            return Action::None;
        }
        let (mut next, mut sent) = (limits, Vec::new());
        // A later change can make an earlier one valid (a larger buffer before a larger
        // batch): retry until nothing more passes.
        while let Some(i) = pending.iter().position(|c| next.apply(c).is_ok()) {
            let control = pending.remove(i);
            next = next.apply(&control).unwrap_or(next);
            sent.push(control);
        }
        if let Some(left) = pending.first() {
            let err = next
                .apply(left)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            self.note(LogKind::Refused, format!("refused: restore: {err}"));
            return Action::None;
        }
        self.status = Some(format!("restoring {} starting limit(s)", sent.len()));
        self.limits = Some(next);
        self.send(sent)
    }

    fn toggle_pause(&mut self) -> Action {
        if self.controllable().is_none() {
            return Action::None;
        }
        self.paused = !self.paused;
        let (control, text) = if self.paused {
            (Control::Pause, "pausing the producers")
        } else {
            (Control::Resume, "resuming the producers")
        };
        self.status = Some(text.to_owned());
        self.send(vec![control])
    }

    /// Hands `controls` to the event loop, remembering them until the file confirms them.
    fn send(&mut self, controls: Vec<Control>) -> Action {
        for control in &controls {
            self.pending.sent(control);
        }
        Action::Send(controls)
    }
}

/// The command that doubles or halves `knob`, or why there is none.
fn stepped(
    knob: Knob,
    limits: &Limits,
    step: Step,
    last: Option<&Sample>,
) -> Result<Control, String> {
    let value = match (format::knob_of(limits, knob), step) {
        (Some(v), Step::Double) if knob == Knob::ConsumerDelay && v == 0 => FIRST_CONSUMER_DELAY_US,
        (Some(v), Step::Double) => v.saturating_mul(2),
        (Some(v), Step::Halve) => v / 2,
        (None, Step::Double) => return Err(format!("{knob} is already unlimited")),
        (None, Step::Halve) if knob == Knob::MaxBatchBytes => FIRST_BATCH_BYTES,
        (None, Step::Halve) => {
            let attempted = last.map_or(0.0, |s| s.attempted_per_sec);
            let half = (attempted / 2.0).round() as u64;
            if half == 0 {
                return Err(format!("{knob} is unlimited and no rate is measured yet"));
            }
            half
        }
    };
    Ok(set_control(knob, Some(value)))
}

/// The command that sets `knob` to `value` (`None`: unlimited / off).
fn set_control(knob: Knob, value: Option<u64>) -> Control {
    let v = value.unwrap_or(0);
    match knob {
        Knob::Interval => Control::SetInterval { interval_us: v },
        Knob::MaxBatchBytes => Control::SetMaxBatchBytes { bytes: value },
        Knob::MaxBufferedBytes => Control::SetMaxBufferedBytes { bytes: v },
        Knob::Rate => Control::SetRate { per_sec: value },
        Knob::ConsumerDelay => Control::SetConsumerDelay { delay_us: v },
    }
}

fn change_text(knob: Knob, from: &Limits, to: &Limits) -> String {
    let from = format::knob_value(knob, format::knob_of(from, knob));
    let to = format::knob_value(knob, format::knob_of(to, knob));
    format!("sent: {knob} {from} -> {to}")
}

#[cfg(test)]
#[path = "keys_tests.rs"]
mod tests;
