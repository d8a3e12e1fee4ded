//! One child run of a crash test: this program run again on the test's scenario file, its
//! output in a log of its own, its ids in the ledger; waited for until it produces, then
//! killed, or let finish.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::ledger;
use super::witness::{LEDGER_ENV, RUN_ENV};

/// How often a child is looked at while waited for.
const POLL: Duration = Duration::from_millis(2);

/// The crash test's directories.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The scenario file every child runs.
    pub scenario: PathBuf,
    /// The id files.
    pub ledger: PathBuf,
    /// The children's run directories.
    pub runs: PathBuf,
    /// The children's output, one log each.
    pub logs: PathBuf,
}

impl Layout {
    /// The layout under `work`.
    pub fn under(work: &Path) -> Self {
        Layout {
            scenario: work.join("scenario.toml"),
            ledger: work.join("ids"),
            runs: work.join("runs"),
            logs: work.join("logs"),
        }
    }

    /// Run `run`'s log.
    pub fn log(&self, run: u32) -> PathBuf {
        self.logs.join(format!("run-{run:04}.log"))
    }
}

/// Why a child did not do what the test needs.
#[derive(Debug, thiserror::Error)]
pub enum ChildError {
    /// It could not be started.
    #[error("cannot start run {run}: {source}")]
    Start {
        /// The run index.
        run: u32,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Its log could not be created (an output of the test).
    #[error("cannot create the log of run {run}, {}: {source}", log.display())]
    Log {
        /// The run index.
        run: u32,
        /// The log.
        log: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// It ended by itself with exit code 3: an output of it (its evidence, its record)
    /// could not be written; `cause` is what its log says.
    #[error("run {run} could not write an output ({}): {cause}; its log: {}", super::report::ended(status), log.display())]
    Output {
        /// The run index.
        run: u32,
        /// How it ended.
        status: ExitStatus,
        /// The last line it wrote about it, or why there is none.
        cause: String,
        /// Its log.
        log: PathBuf,
    },
    /// It ended by itself where it should have been running.
    #[error("run {run} ended by itself ({status}) before it was killed; its log: {}", log.display())]
    Ended {
        /// The run index.
        run: u32,
        /// How it ended.
        status: ExitStatus,
        /// Its log.
        log: PathBuf,
    },
    /// It accepted nothing within the time allowed.
    #[error("run {run} accepted no event within {}; its log: {}", runlog::human::seconds(.within.as_secs_f64()), log.display())]
    Idle {
        /// The run index.
        run: u32,
        /// The time allowed.
        within: Duration,
        /// Its log.
        log: PathBuf,
    },
    /// It did not end by itself within the time allowed (it was killed).
    #[error("run {run} did not finish within {} (killed); its log: {}", runlog::human::seconds(.within.as_secs_f64()), log.display())]
    Overran {
        /// The run index.
        run: u32,
        /// The time allowed.
        within: Duration,
        /// Its log.
        log: PathBuf,
    },
    /// Waiting for it failed.
    #[error("cannot wait for run {run}: {source}")]
    Wait {
        /// The run index.
        run: u32,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl ChildError {
    /// The process exit code (see [`crate::app`]): 3 for an output that could not be
    /// written (a full disk), 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            ChildError::Log { .. } | ChildError::Output { .. } => crate::app::EXIT_IO,
            _ => crate::app::EXIT_FAIL,
        }
    }
}

/// Whether a child's exit `status` says an output of it could not be written.
pub fn output_failed(status: &ExitStatus) -> bool {
    status.code() == Some(i32::from(crate::app::EXIT_IO))
}

/// What a child's `log` says went wrong: its last line of its own (`soak: ...`, the
/// program name left out), or why there is none.
pub fn cause(log: &Path) -> String {
    let own = |line: &str| {
        [crate::program::THROUGH_CARGO, crate::program::DIRECT]
            .iter()
            .find_map(|name| line.strip_prefix(name)?.strip_prefix(": "))
            .map(str::to_owned)
    };
    let text = std::fs::read(log).map(|bytes| {
        let tail = bytes.len().saturating_sub(64 * 1024);
        String::from_utf8_lossy(&bytes[tail..]).into_owned()
    });
    match text {
        Ok(text) => text.lines().rev().find_map(own).unwrap_or_else(|| {
            "its log gives no reason (the disk it is on may have no room for one)".into()
        }),
        Err(err) => format!("its log cannot be read: {err}"),
    }
}

/// A child run in progress.
pub struct Running {
    /// Its index.
    pub run: u32,
    child: Child,
    log: PathBuf,
}

/// Starts child run `run`: this program on the scenario file, with `extra` arguments.
///
/// # Errors
///
/// [`ChildError::Start`].
pub fn start(layout: &Layout, run: u32, extra: &[String]) -> Result<Running, ChildError> {
    let start_error = |source| ChildError::Start { run, source };
    let log = layout.log(run);
    let log_error = |source| ChildError::Log {
        run,
        log: log.clone(),
        source,
    };
    let out = File::create(&log).map_err(log_error)?;
    let err = out.try_clone().map_err(log_error)?;
    let program = std::env::current_exe().map_err(start_error)?;
    let child = Command::new(program)
        .arg("--config")
        .arg(&layout.scenario)
        .args(["--no-tui", "--out"])
        .arg(&layout.runs)
        .args(extra)
        .env(LEDGER_ENV, &layout.ledger)
        .env(RUN_ENV, run.to_string())
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(start_error)?;
    Ok(Running { run, child, log })
}

impl Running {
    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until it has accepted an event (its producers run), within `within`.
    ///
    /// # Errors
    ///
    /// [`ChildError::Ended`] if it ends first, [`ChildError::Idle`] if the time passes.
    pub fn wait_producing(
        &mut self,
        ledger_dir: &Path,
        within: Duration,
    ) -> Result<(), ChildError> {
        let deadline = Instant::now() + within;
        loop {
            self.still_running()?;
            if ledger::progress(ledger_dir, self.run).is_ok_and(|(accepted, _)| accepted > 0) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(ChildError::Idle {
                    run: self.run,
                    within,
                    log: self.log.clone(),
                });
            }
            std::thread::sleep(POLL);
        }
    }

    /// Sleeps `delay`, watching that it goes on running.
    ///
    /// # Errors
    ///
    /// [`ChildError::Ended`] if it ends meanwhile.
    pub fn keep_running(&mut self, delay: Duration) -> Result<(), ChildError> {
        let until = Instant::now() + delay;
        loop {
            self.still_running()?;
            let now = Instant::now();
            if now >= until {
                return Ok(());
            }
            std::thread::sleep(POLL.min(until - now));
        }
    }

    /// `SIGKILL`s it and reaps it.
    ///
    /// # Errors
    ///
    /// [`ChildError::Ended`] if it had ended by itself first; [`ChildError::Wait`].
    pub fn kill(mut self) -> Result<(), ChildError> {
        self.still_running()?;
        let wait = |source| ChildError::Wait {
            run: self.run,
            source,
        };
        self.child.kill().map_err(wait)?;
        self.child.wait().map_err(wait)?;
        Ok(())
    }

    /// Waits for it to end by itself, within `within` (killed past it).
    ///
    /// # Errors
    ///
    /// [`ChildError::Wait`]; [`ChildError::Overran`] if it outlived `within`.
    pub fn finish(mut self, within: Duration) -> Result<ExitStatus, ChildError> {
        let deadline = Instant::now() + within;
        let wait = |run, source| ChildError::Wait { run, source };
        loop {
            if let Some(status) = self.child.try_wait().map_err(|e| wait(self.run, e))? {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return Err(ChildError::Overran {
                    run: self.run,
                    within,
                    log: self.log.clone(),
                });
            }
            std::thread::sleep(POLL * 10);
        }
    }

    fn still_running(&mut self) -> Result<(), ChildError> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) if output_failed(&status) => Err(ChildError::Output {
                run: self.run,
                status,
                cause: cause(&self.log),
                log: self.log.clone(),
            }),
            Ok(Some(status)) => Err(ChildError::Ended {
                run: self.run,
                status,
                log: self.log.clone(),
            }),
            Err(source) => Err(ChildError::Wait {
                run: self.run,
                source,
            }),
        }
    }
}

impl Drop for Running {
    /// A child the test lets go of early (an error, a signal) is not left behind.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cause_is_the_last_line_a_child_wrote_of_its_own() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let log = tmp.path().join("run-0000.log");
        std::fs::write(
            &log,
            "soak: 4 producers ready\n[  0.3s/60s] delivered 19.8k/s\n\
             cargo soak: crash test: cannot write the delivered ids to /x/ids: No space left \
             on device (os error 28)\n[  0.5s/60s] delivered 19.8k/s\n",
        )
        .expect("write");
        assert_eq!(
            cause(&log),
            "crash test: cannot write the delivered ids to /x/ids: No space left on device \
             (os error 28)"
        );
        std::fs::write(&log, "").expect("write");
        assert!(cause(&log).contains("no reason"), "{}", cause(&log));
        assert!(cause(&tmp.path().join("missing")).contains("cannot be read"));
    }
}
