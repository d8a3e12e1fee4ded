//! The live dashboard around a run: the run on its own thread, the dashboard
//! on this one, following the run's samples.jsonl and sending it commands.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::sync::mpsc::sync_channel;
use std::thread;

use dashboards::{DashboardOptions, Exit};

use crate::app::{EXIT_PASS, EXIT_USAGE};
use crate::progress::Progress;
use crate::run::{Prepared, RunError, RunOutcome};

/// Whether to show the dashboard: forced by `--tui`, refused by `--no-tui`
/// and `--json`, otherwise when both stdin and stdout are terminals.
pub fn wanted(tui: bool, no_tui: bool, json: bool) -> bool {
    tui || (!no_tui && !json && std::io::stdout().is_terminal() && std::io::stdin().is_terminal())
}

/// Runs `prepared` under the dashboard. Commands from the dashboard reach the
/// run; quitting the dashboard stops the run gracefully (drain, summary,
/// report). If the terminal cannot be used the run goes on without it.
///
/// # Errors
///
/// The run's own error, or [`RunError::Producer`] if its thread cannot start.
pub fn run_with_dashboard(prepared: Prepared, fps: u32) -> Result<RunOutcome, RunError> {
    let (controls, commands) = sync_channel(32);
    let mut options = DashboardOptions::new(prepared.dir().samples_path())
        .with_scenario(prepared.config().clone())
        .with_controls(controls);
    options.fps = fps;
    let runner = thread::Builder::new()
        .name("soak-run".into())
        .spawn(move || prepared.run(&mut Progress::new(true), Some(&commands)))
        .map_err(|e| RunError::Producer(format!("cannot start the run thread: {e}")))?;
    match dashboards::run(options) {
        Ok(Exit::StopUnconfirmed) => {
            eprintln!("soak: the run has not confirmed the stop; waiting for it")
        }
        Ok(_) => {}
        Err(err) => eprintln!("soak: dashboard: {err}; the run goes on without it"),
    }
    runner
        .join()
        .unwrap_or_else(|_| Err(RunError::Producer("the run thread panicked".into())))
}

/// `soak watch [RUN_DIR]`: the dashboard over a run started elsewhere, read-only.
pub fn watch(run_dir: Option<&Path>, fps: u32) -> ExitCode {
    let dir = match crate::records::resolve_run(run_dir) {
        Ok(dir) => dir,
        Err(err) => {
            eprintln!("soak watch: {err}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let mut options = DashboardOptions::new(dir.samples_path());
    options.fps = fps;
    options.title = format!("watching {}", dir.path().display());
    if let Ok(results) = runlog::read_results(&dir.results_path()) {
        options = options.with_scenario(results.config);
    }
    match dashboards::run(options) {
        Ok(_) => ExitCode::from(EXIT_PASS),
        Err(err) => {
            eprintln!("soak watch: {err}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}
