//! The live dashboard around a run (the run on its own thread, the dashboard on this one,
//! following the run's samples.jsonl and sending it commands), and `soak watch`.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::sync_channel;
use std::thread;
use std::time::{Duration, Instant};

use dashboards::{DashboardOptions, Exit};
use runlog::{Line, RunDir, SamplesFollower};

use crate::app::{EXIT_FAIL, EXIT_PASS, EXIT_USAGE};
use crate::progress::Progress;
use crate::run::{Prepared, RunError, RunOutcome};

/// How long `watch` waits for `results.json` after the final sample.
const RESULTS_PATIENCE: Duration = Duration::from_secs(15);
/// How often `watch` without a terminal looks at the file.
const WATCH_POLL: Duration = Duration::from_millis(200);
/// A run without a lock file is taken as gone after this many sample intervals (at least
/// [`STALE_AT_LEAST`]) without a line.
const STALE_INTERVALS: u32 = 10;
/// See [`STALE_INTERVALS`].
const STALE_AT_LEAST: Duration = Duration::from_secs(10);

/// Whether to show the dashboard: forced by `--tui`, refused by `--no-tui`
/// and `--json`, otherwise when both stdin and stdout are terminals.
pub fn wanted(tui: bool, no_tui: bool, json: bool) -> bool {
    tui || (!no_tui && !json && std::io::stdout().is_terminal() && std::io::stdin().is_terminal())
}

/// Runs `prepared` under the dashboard. Commands from the dashboard reach the
/// run; quitting the dashboard stops the run gracefully (drain, summary,
/// report). If the terminal cannot host the dashboard (checked before anything is
/// written to it) the run goes on without it, after one line on stderr. The
/// dashboard leaves when the run ends, however it ends (a signal, an error).
///
/// # Errors
///
/// The run's own error, or [`RunError::Producer`] if its thread cannot start.
pub fn run_with_dashboard(prepared: Prepared, fps: u32) -> Result<RunOutcome, RunError> {
    // Nothing is written to the terminal before it is known to host the dashboard: with
    // stdout a file or a pipe, or TERM unusable, say so once and run without it.
    if let Err(err) = dashboards::check_terminal() {
        crate::errln!(
            "{}: --tui: {err}; running without the dashboard",
            crate::program::name()
        );
        return prepared.run(&mut Progress::new(true), None);
    }
    let (controls, commands) = sync_channel(32);
    let running = Arc::new(AtomicBool::new(true));
    let still = Arc::clone(&running);
    let mut options = DashboardOptions::new(prepared.dir().samples_path())
        .with_scenario(prepared.config().clone())
        .with_program(crate::program::name())
        .with_interrupt(crate::signals::interrupt_self)
        .with_controls(controls)
        .with_liveness(move || still.load(Ordering::Acquire));
    options.fps = fps;
    let runner = thread::Builder::new()
        .name("soak-run".into())
        .spawn(move || {
            let outcome = prepared.run(&mut Progress::new(true), Some(&commands));
            running.store(false, Ordering::Release);
            outcome
        })
        .map_err(|e| RunError::Producer(format!("cannot start the run thread: {e}")))?;
    match crate::logging::silenced(|| dashboards::run(options)) {
        Ok(Exit::StopUnconfirmed) => {
            crate::errln!(
                "{}: the run has not confirmed the stop; waiting for it",
                crate::program::name()
            )
        }
        Ok(_) => {}
        Err(err) => crate::errln!(
            "{}: dashboard: {err}; the run goes on without it",
            crate::program::name()
        ),
    }
    runner
        .join()
        .unwrap_or_else(|_| Err(RunError::Producer("the run thread panicked".into())))
}

/// Whether the run in `dir` has stopped without finishing: no process holds it and it
/// has no `results.json` (or, for a run without a lock file, it has not written a line
/// for a long while).
fn gone(dir: &RunDir, quiet_for: Duration, interval: Duration) -> bool {
    if dir.results_path().exists() {
        return false;
    }
    match crate::lock::held(dir.path()) {
        Some(held) => !held,
        None => quiet_for > (interval * STALE_INTERVALS).max(STALE_AT_LEAST),
    }
}

/// `soak watch [RUN_DIR]`: the dashboard over a run started elsewhere, read-only (or,
/// without a terminal, one progress line per sample). It ends when the run does, with the
/// run's verdict as its exit code, or says the run is gone when its process is.
pub fn watch(run_dir: Option<&Path>, fps: u32) -> ExitCode {
    let dir = match crate::records::resolve_run(run_dir) {
        Ok(dir) => dir,
        Err(err) => {
            crate::errln!("{} watch: {err}", crate::program::name());
            return ExitCode::from(EXIT_USAGE);
        }
    };
    // A run writes samples.jsonl as its directory is created: a directory without it (or a
    // record) never was a run.
    let is_run = [dir.samples_path(), dir.results_path()]
        .iter()
        .any(|file| std::fs::symlink_metadata(file).is_ok());
    if !is_run {
        crate::errln!(
            "{} watch: {}: not a run directory (no samples.jsonl or results.json)",
            crate::program::name(),
            dir.path().display()
        );
        return ExitCode::from(EXIT_USAGE);
    }
    // A record is written whole (temporary file, rename): one that is there but does not
    // read never will, so it is refused now rather than after following the samples.
    let results = dir.results_path();
    if std::fs::symlink_metadata(&results).is_ok() {
        if let Err(err) = runlog::read_results(&results) {
            crate::errln!("{} watch: {err}", crate::program::name());
            return ExitCode::from(EXIT_USAGE);
        }
    }
    let ended = if std::io::stdout().is_terminal() && std::io::stdin().is_terminal() {
        watch_dashboard(&dir, fps)
    } else {
        watch_lines(&dir).map(Some)
    };
    match ended {
        Ok(None) => ExitCode::from(EXIT_PASS),
        Ok(Some(true)) => verdict(&dir),
        Ok(Some(false)) => {
            crate::errln!(
                "{} watch: {}: the run stopped writing and no process holds it: it was killed before it finished (no results.json)",
                crate::program::name(),
                dir.path().display()
            );
            ExitCode::from(EXIT_FAIL)
        }
        Err(err) => {
            crate::errln!("{} watch: {err}", crate::program::name());
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// The dashboard; `Some(true)` when the run finished, `Some(false)` when it is gone,
/// `None` when the user left it.
fn watch_dashboard(dir: &RunDir, fps: u32) -> Result<Option<bool>, String> {
    let mut options = DashboardOptions::new(dir.samples_path())
        .with_program(crate::program::name())
        .with_interrupt(crate::signals::interrupt_self);
    options.fps = fps;
    options.title = format!("watching {}", dir.path().display());
    if let Ok(results) = runlog::read_results(&dir.results_path()) {
        options = options.with_scenario(results.config);
    }
    let follower = Arc::new(std::sync::Mutex::new(Activity::new(dir)));
    let probe = Arc::clone(&follower);
    let options = options.with_liveness(move || {
        !probe
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .gone()
    });
    match crate::logging::silenced(|| dashboards::run(options)).map_err(|e| e.to_string())? {
        Exit::WriterGone => Ok(Some(false)),
        Exit::RunEnded | Exit::Stopped | Exit::StopUnconfirmed => Ok(Some(true)),
        Exit::Detached => Ok(None),
    }
}

/// What `watch` knows of the followed file's activity.
struct Activity {
    dir: RunDir,
    size: u64,
    changed_at: Instant,
    interval: Duration,
}

impl Activity {
    fn new(dir: &RunDir) -> Self {
        Self {
            dir: dir.clone(),
            size: 0,
            changed_at: Instant::now(),
            interval: Duration::from_secs(1),
        }
    }

    fn gone(&mut self) -> bool {
        let size = std::fs::metadata(self.dir.samples_path()).map_or(0, |m| m.len());
        if size != self.size {
            (self.size, self.changed_at) = (size, Instant::now());
        }
        gone(&self.dir, self.changed_at.elapsed(), self.interval)
    }
}

/// One progress line per sample; `Ok(true)` when the run finished, `Ok(false)` when gone.
fn watch_lines(dir: &RunDir) -> Result<bool, String> {
    let mut follower = SamplesFollower::new(&dir.samples_path());
    let mut progress = Progress::new(false);
    let mut activity = Activity::new(dir);
    let mut duration_s: f64 = 0.0;
    let mut finished_at: Option<Instant> = None;
    loop {
        for line in follower.poll().map_err(|e| e.to_string())? {
            match line {
                Line::Sample(sample) => {
                    activity.interval =
                        Duration::from_secs_f64(sample.interval_s.clamp(0.01, 60.0));
                    if sample.phase == "drain" {
                        finished_at.get_or_insert_with(Instant::now);
                    }
                    progress.sample(&sample, duration_s.max(sample.t_s));
                    duration_s = duration_s.max(sample.t_s);
                }
                Line::Event(event) => {
                    crate::errln!(
                        "{} watch: {:.1} s: {}",
                        crate::program::name(),
                        event.at_s,
                        event.kind
                    )
                }
            }
        }
        if dir.results_path().exists() {
            return Ok(true);
        }
        if finished_at.is_some_and(|at| at.elapsed() > RESULTS_PATIENCE) || activity.gone() {
            return Ok(false);
        }
        thread::sleep(WATCH_POLL);
    }
}

/// Prints the finished run's verdict and report, and exits with it.
fn verdict(dir: &RunDir) -> ExitCode {
    let deadline = Instant::now() + RESULTS_PATIENCE;
    let results = loop {
        match runlog::read_results(&dir.results_path()) {
            Ok(results) => break results,
            Err(_) if Instant::now() < deadline => thread::sleep(WATCH_POLL),
            Err(err) => {
                crate::errln!(
                    "{} watch: the run ended without a readable record: {err}",
                    crate::program::name()
                );
                return ExitCode::from(EXIT_FAIL);
            }
        }
    };
    let colour = runlog::human::colour(std::io::IsTerminal::is_terminal(&std::io::stdout()));
    crate::outln!("{}", crate::summary::summary(&results, dir, colour));
    crate::outln!("  report       {}", dir.report_path().display());
    ExitCode::from(crate::app::verdict_code(results.assessment.overall, false))
}
