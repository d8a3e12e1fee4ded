//! The event loop: follow the file, read keys, send commands, draw at most `fps` times a second.

use std::sync::mpsc::{SyncSender, TrySendError};
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{self, Event as TermEvent};
use runlog::{Control, SamplesFollower};

use crate::app::{App, RunState};
use crate::error::DashboardError;
use crate::keys::Action;
use crate::options::{DashboardOptions, Exit, Interrupt, Liveness};
use crate::terminal::TerminalGuard;

/// How often the followed file is read.
pub const POLL_EVERY: Duration = Duration::from_millis(100);
/// How long the final (`drain`) sample stays on screen before the dashboard exits.
pub const SHOW_FINAL_FOR: Duration = Duration::from_secs(1);
/// How long `q` waits for the run's `drain` sample after sending [`Control::Stop`].
pub const STOP_GRACE: Duration = Duration::from_secs(10);

/// Runs the dashboard until the user quits or the followed run ends.
///
/// First checks that the terminal can host it (see [`check_terminal`](crate::check_terminal)),
/// writing nothing if not; then takes over the terminal (raw mode, alternate screen) and
/// gives it back on every path, panics included. Colours follow
/// [`runlog::human::colour`] (`NO_COLOR`), and `options.colour`. Follows `options.samples_path` every [`POLL_EVERY`]; draws at most
/// `options.fps` frames a second, and only when something changed; sleeps in
/// `poll(2)` on the terminal between (no busy loop), and ends with
/// [`DashboardError::Terminal`] if the terminal hangs up.
///
/// With `options.controls`, keys send [`Control`] commands (checked with
/// [`runlog::Limits::apply`] first), `q` sends [`Control::Stop`] and waits up to
/// [`STOP_GRACE`] for the run's `drain` sample. Without, `q` leaves at once. When the
/// `drain` sample arrives the dashboard shows it for [`SHOW_FINAL_FOR`] and returns.
///
/// ```no_run
/// let (tx, rx) = std::sync::mpsc::sync_channel(64);
/// // ...hand `rx` to the soak run...
/// let options = dashboards::DashboardOptions::new("target/soak/latest/samples.jsonl")
///     .with_controls(tx);
/// let exit = dashboards::run(options)?;
/// println!("{exit:?}");
/// # drop(rx);
/// # Ok::<(), dashboards::DashboardError>(())
/// ```
///
/// # Errors
/// [`DashboardError::Unusable`] when the terminal cannot host the dashboard (nothing was
/// written to it). [`DashboardError::Terminal`] when the terminal cannot be set up, drawn on or read.
/// The terminal is restored before returning.
pub fn run(mut options: DashboardOptions) -> Result<Exit, DashboardError> {
    crate::terminal::check().map_err(DashboardError::Unusable)?;
    // stdout is a terminal now: colour unless the user said NO_COLOR.
    options.colour &= runlog::human::colour(true);
    let frame_every = Duration::from_secs(1) / options.fps.clamp(1, 60);
    let mut state = Loop {
        app: App::new(&options),
        follower: SamplesFollower::new(&options.samples_path),
        controls: options.controls,
        liveness: options.liveness,
        interrupt: options.interrupt,
        stop_unsent: false,
        stop_deadline: None,
        done_at: None,
    };
    let mut guard =
        TerminalGuard::enter().map_err(DashboardError::terminal("set up the terminal"))?;
    state.run(&mut guard, frame_every)
}

/// The event loop's state besides the [`App`].
struct Loop {
    app: App,
    follower: SamplesFollower,
    controls: Option<SyncSender<Control>>,
    liveness: Option<Liveness>,
    interrupt: Option<Interrupt>,
    /// `Stop` was asked for but the channel was full: retried each turn.
    stop_unsent: bool,
    stop_deadline: Option<Instant>,
    done_at: Option<Instant>,
}

impl Loop {
    fn run(
        &mut self,
        guard: &mut TerminalGuard,
        frame_every: Duration,
    ) -> Result<Exit, DashboardError> {
        let mut dirty = true;
        let mut last_draw: Option<Instant> = None;
        let mut next_poll = Instant::now();
        let mut last_size = crate::input::size();
        loop {
            let now = Instant::now();
            if now >= next_poll {
                dirty |= self.app.poll(&mut self.follower) > 0;
                next_poll = now + POLL_EVERY;
                self.retry_stop();
                if self.liveness.as_ref().is_some_and(|l| !l.alive()) {
                    // A last look: the writer may have finished just now.
                    self.app.poll(&mut self.follower);
                    self.app.set_gone();
                    dirty = true;
                }
            }
            let ended = matches!(self.app.run_state(), RunState::Done | RunState::Gone);
            if self.done_at.is_none() && ended {
                self.done_at = Some(now);
            }
            if let Some(exit) = self.timed_exit(now) {
                return Ok(exit);
            }
            let draw_due = last_draw.map_or(now, |t| t + frame_every);
            if dirty && now >= draw_due {
                guard
                    .terminal()
                    .draw(|frame| frame.render_widget(&self.app, frame.area()))
                    .map_err(DashboardError::terminal("draw"))?;
                (dirty, last_draw) = (false, Some(now));
            }
            let mut wake = next_poll;
            if dirty {
                wake = wake.min(draw_due);
            }
            let mut input = crate::input::wait(wake.saturating_duration_since(Instant::now()))
                .map_err(DashboardError::terminal("wait for input"))?;
            // A resize (crossterm's SIGWINCH handler ended the wait) shows as a new size:
            // read from the terminal's settings, not from its input.
            let size = crate::input::size();
            if size != last_size {
                (last_size, dirty) = (size, true);
            }
            // Keys, only while the terminal has input waiting: crossterm asked with
            // nothing there can meet a terminal that hung up meanwhile, and spins on it
            // for good (see `crate::input`).
            while input
                && event::poll(Duration::ZERO).map_err(DashboardError::terminal("read input"))?
            {
                // Its resize events are left aside: the size above is how resizes are seen.
                if let TermEvent::Key(key) =
                    event::read().map_err(DashboardError::terminal("read input"))?
                {
                    dirty = true;
                    let action = self.app.on_key(key);
                    if let Some(exit) = self.on_action(action) {
                        return Ok(exit);
                    }
                }
                input = crate::input::wait(Duration::ZERO)
                    .map_err(DashboardError::terminal("wait for input"))?;
            }
        }
    }

    /// The exit that time has brought: the final sample shown long enough, or the grace
    /// period after `Stop` over.
    fn timed_exit(&self, now: Instant) -> Option<Exit> {
        if let Some(done_at) = self.done_at {
            if now >= done_at + SHOW_FINAL_FOR {
                return Some(self.ended());
            }
        }
        match self.stop_deadline {
            Some(deadline) if now >= deadline => Some(Exit::StopUnconfirmed),
            _ => None,
        }
    }

    fn ended(&self) -> Exit {
        if self.app.run_state() == RunState::Gone {
            Exit::WriterGone
        } else if self.stop_deadline.is_some() {
            Exit::Stopped
        } else {
            Exit::RunEnded
        }
    }

    fn on_action(&mut self, action: Action) -> Option<Exit> {
        match action {
            Action::None => None,
            Action::Interrupt => match &self.interrupt {
                Some(interrupt) => {
                    interrupt.raise();
                    None
                }
                None => {
                    let quit = self.app.quit();
                    self.on_action(quit)
                }
            },
            Action::Quit if matches!(self.app.run_state(), RunState::Done | RunState::Gone) => {
                Some(self.ended())
            }
            Action::Quit if self.stop_deadline.is_some() => Some(Exit::StopUnconfirmed),
            Action::Quit => Some(Exit::Detached),
            Action::Send(controls) => {
                for control in controls {
                    if control == Control::Stop {
                        self.stop_deadline = Some(Instant::now() + STOP_GRACE);
                    }
                    self.send(control);
                }
                None
            }
        }
    }

    fn send(&mut self, control: Control) {
        let Some(tx) = &self.controls else {
            return;
        };
        match tx.try_send(control) {
            Ok(()) => {}
            Err(TrySendError::Full(Control::Stop)) => self.stop_unsent = true,
            Err(TrySendError::Full(control)) => {
                self.app.send_failed(&control, "the soak is busy");
            }
            Err(TrySendError::Disconnected(control)) => {
                if control == Control::Stop {
                    // Nobody is left to drain: leave without waiting.
                    self.stop_deadline = Some(Instant::now());
                }
                self.controls = None;
                self.app.set_read_only("the soak no longer takes commands");
            }
        }
    }

    fn retry_stop(&mut self) {
        if std::mem::take(&mut self.stop_unsent) {
            self.send(Control::Stop);
        }
    }
}
