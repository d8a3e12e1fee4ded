//! `SIGINT`, `SIGTERM` and `SIGHUP` during a run: the first stops the producers, drains
//! within the deadline and writes a complete record (with an `interrupted` event); a second
//! writes what there is (a partial record, marked as such) and leaves at once. The exit
//! code is 128 + the signal's number (130, 143, 129).
//!
//! The handler is `signal-hook`'s: a thread that receives the signals and acts on them
//! outside signal context, so it may lock, write files and print.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::thread;
use std::time::Instant;

use runlog::RunResults;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// The signal that interrupted a run, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caught {
    /// The signal's number.
    pub number: i32,
    /// When it arrived.
    pub at: Instant,
}

impl Caught {
    /// `SIGINT`, `SIGTERM`, `SIGHUP` (or `signal N`).
    pub fn name(&self) -> String {
        signal_name(self.number)
    }

    /// The exit code of a run it interrupted: 128 + the signal's number.
    pub fn exit_code(&self) -> u8 {
        u8::try_from(128 + self.number).unwrap_or(u8::MAX)
    }
}

/// The name of a signal number.
pub fn signal_name(number: i32) -> String {
    match number {
        SIGINT => "SIGINT".into(),
        SIGTERM => "SIGTERM".into(),
        SIGHUP => "SIGHUP".into(),
        n => format!("signal {n}"),
    }
}

/// Composes a partial record from the first signal and the second one's name.
pub type ComposePartial = Box<dyn Fn(&Caught, &str) -> RunResults + Send>;

/// What a second signal writes: the record as it stood at the last sample.
pub struct PartialRecord {
    /// Where `results.json` goes.
    pub path: PathBuf,
    /// Composes the partial record from what the run knew at its last sample; given the
    /// first signal and the second one's name.
    pub compose: ComposePartial,
}

/// The shared state between the signal thread and the run.
#[derive(Default)]
pub struct Interrupt {
    first: OnceLock<Caught>,
    /// Taken by the run while it writes its own (complete) record, so a second signal
    /// then waits for that write instead of replacing it with a partial one.
    record: Mutex<Option<PartialRecord>>,
}

impl Interrupt {
    /// The first signal, once one has arrived.
    pub fn caught(&self) -> Option<Caught> {
        self.first.get().copied()
    }

    /// Records a signal; true if it was the first.
    pub fn catch(&self, number: i32) -> bool {
        self.first
            .set(Caught {
                number,
                at: Instant::now(),
            })
            .is_ok()
    }

    /// Installs (or replaces) what a second signal writes.
    pub fn set_partial(&self, partial: PartialRecord) {
        *self.lock() = Some(partial);
    }

    /// Runs `write` (the run's own record) while no second signal can write a partial one,
    /// and forgets the partial record: after it the run's record is the one to keep.
    pub fn while_writing<R>(&self, write: impl FnOnce() -> R) -> R {
        let mut partial = self.lock();
        let result = write();
        *partial = None;
        result
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<PartialRecord>> {
        self.record.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A second signal: writes the partial record, if the run has one, and says where.
    fn write_partial(&self, second: i32) {
        let Some(first) = self.caught() else { return };
        let guard = self.lock();
        let Some(partial) = guard.as_ref() else {
            crate::errln!("soak: {}: leaving at once", signal_name(second));
            return;
        };
        let results = (partial.compose)(&first, &signal_name(second));
        match runlog::write_results(&partial.path, &results) {
            Ok(()) => crate::errln!(
                "soak: {}: leaving at once; wrote the partial record {}",
                signal_name(second),
                partial.path.display()
            ),
            Err(err) => crate::errln!(
                "soak: {}: leaving at once; cannot write the partial record: {err}",
                signal_name(second)
            ),
        }
    }
}

/// Installs the handler for `SIGINT`, `SIGTERM` and `SIGHUP` and returns the state the run
/// watches. `tui` says a dashboard may hold the terminal: it is given back before a second
/// signal leaves.
///
/// # Errors
///
/// The OS error if the handler cannot be installed.
pub fn install(tui: bool) -> std::io::Result<Arc<Interrupt>> {
    let interrupt = Arc::new(Interrupt::default());
    let mut signals = Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    let shared = Arc::clone(&interrupt);
    thread::Builder::new()
        .name("soak-signals".into())
        .spawn(move || {
            for number in signals.forever() {
                if shared.catch(number) {
                    crate::errln!(
                        "soak: {}: stopping the producers and draining (a second signal leaves at once)",
                        signal_name(number)
                    );
                    continue;
                }
                shared.write_partial(number);
                if tui {
                    dashboards::restore_terminal();
                }
                std::process::exit(128 + number);
            }
        })?;
    Ok(interrupt)
}
