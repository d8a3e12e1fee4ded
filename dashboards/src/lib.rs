//! The live dashboard of a Metronome soak run: a ratatui TUI over the run's
//! `samples.jsonl`, which sends [`runlog::Control`] commands back to a run it drives.
//!
//! The dashboard never talks to the soak's internals. It follows the file with
//! [`runlog::SamplesFollower`] and, when interactive, sends commands on a
//! [`std::sync::mpsc::SyncSender`] the caller hands it. The soak applies each command
//! with the same [`runlog::Limits::apply`] check and records a reconfigure or warning
//! event, which comes back through the file into the event log.
//!
//! # Running it
//!
//! ```no_run
//! use dashboards::{DashboardOptions, Exit};
//!
//! let config = runlog::ScenarioConfig::default();
//! let (tx, rx) = std::sync::mpsc::sync_channel(64);
//! // ...start the soak with `rx`; it writes <run dir>/samples.jsonl...
//! let options = DashboardOptions::new("target/soak/latest/samples.jsonl")
//!     .with_scenario(config)
//!     .with_controls(tx); // leave out to watch read-only
//! match dashboards::run(options)? {
//!     Exit::RunEnded | Exit::Stopped => println!("run finished"),
//!     Exit::StopUnconfirmed => println!("stop sent; the run is still draining"),
//!     Exit::Detached => println!("left the dashboard; the run goes on"),
//!     Exit::WriterGone => println!("the run stopped without finishing"),
//! }
//! # drop(rx);
//! # Ok::<(), dashboards::DashboardError>(())
//! ```
//!
//! # The parts, without a terminal
//!
//! [`App`] is the state; lines and keys update it, and `impl Widget for &App` draws it,
//! so everything can be driven and checked on ratatui's `TestBackend`:
//!
//! ```
//! use dashboards::{Action, App, DashboardOptions};
//! use ratatui::{Terminal, backend::TestBackend, crossterm::event::{KeyCode, KeyEvent}};
//! use runlog::{Control, Line, Sample, ScenarioConfig};
//!
//! let (tx, _rx) = std::sync::mpsc::sync_channel(16);
//! let options = DashboardOptions::new("run/samples.jsonl")
//!     .with_scenario(ScenarioConfig::default())
//!     .with_controls(tx);
//! let mut app = App::new(&options);
//! let limits = runlog::Limits::from_config(&ScenarioConfig::default());
//! app.on_line(Line::Sample(Sample { t_s: 1.0, phase: "run".into(), limits, ..Default::default() }));
//!
//! // Select "max buffered" and halve it: checked, then handed back to send.
//! app.on_key(KeyEvent::from(KeyCode::Down));
//! app.on_key(KeyEvent::from(KeyCode::Down));
//! let action = app.on_key(KeyEvent::from(KeyCode::Char('-')));
//! assert_eq!(action, Action::Send(vec![Control::SetMaxBufferedBytes { bytes: 32 << 20 }]));
//!
//! let mut terminal = Terminal::new(TestBackend::new(120, 40))?;
//! terminal.draw(|frame| frame.render_widget(&app, frame.area()))?;
//! # Ok::<(), std::io::Error>(())
//! ```

#![forbid(unsafe_code)]

mod app;
mod error;
mod format;
mod health;
mod input;
mod keys;
mod log;
mod marks;
mod options;
mod pending;
mod ring;
mod run;
mod save;
mod terminal;
mod ui;

pub use app::{App, EVENT_HISTORY, Mode, RunState, SAMPLE_HISTORY};
pub use error::DashboardError;
pub use health::{Health, SATURATED_AT};
pub use keys::{Action, FIRST_BATCH_BYTES, FIRST_CONSUMER_DELAY_US, READ_ONLY_MESSAGE};
pub use log::{LOG_PAGE, LogEntry, LogKind};
pub use marks::{Mark, MarkKind};
pub use options::{DEFAULT_FPS, DEFAULT_PROGRAM, DashboardOptions, Exit, Interrupt, Liveness};
pub use run::{POLL_EVERY, SHOW_FINAL_FOR, STOP_GRACE, run};
pub use save::merge_limits;
pub use ui::{FULL_HEIGHT, FULL_WIDTH, MIN_HEIGHT, MIN_WIDTH};

/// Whether this process's terminal can host the dashboard: stdout and stdin are
/// terminals, `TERM` is not `dumb`, and the terminal's size can be read. Writes
/// nothing; [`run`] asks the same first. A caller asks before starting work it would
/// otherwise do under the dashboard.
///
/// # Errors
/// [`DashboardError::Unusable`], saying why.
pub fn check_terminal() -> Result<(), DashboardError> {
    terminal::check().map_err(DashboardError::Unusable)
}

/// Gives the terminal back at once if a dashboard holds it: raw mode off, the alternate
/// screen left, the cursor shown. A dashboard restores the terminal itself on every path
/// that unwinds (return, error, panic); call this before leaving the process without
/// unwinding (`std::process::exit` from a signal handler thread, say). Idempotent.
pub fn restore_terminal() {
    terminal::restore();
}
