//! `SIGINT`, `SIGTERM` and `SIGHUP`: the one place the process reacts to them, for every
//! subcommand. What a signal does depends on the stage the process is in:
//!
//! - **idle** (nothing is being recorded: `watch`, `report`, `compare`, tune's set-up, a
//!   run whose `results.json` is written): the signal takes its default action (the process
//!   ends by it), after the terminal is given back if a dashboard holds it.
//! - **preparing** (a run is being set up and has no directory yet: a `--sink` connecting,
//!   a metrics endpoint starting): there is nothing to record, so the process leaves at
//!   once with 128 + the signal's number.
//! - **armed** (a run directory exists and its record is not yet written): the first signal
//!   stops the producers, drains within the deadline and writes a complete record (with an
//!   `interrupted` event); a second writes what there is (a partial record, marked as such)
//!   and leaves at once.
//!
//! A run ended by a signal exits with 128 + its number (130, 143, 129). A hang-up that was
//! ignored when the process started (`nohup`) stays ignored.
//!
//! Every delivery counts: each signal writes a byte into its own socket from the signal
//! handler (`signal-hook`'s self-pipe), and a thread per signal acts on each byte outside
//! signal context (so it may lock, write files and print). Two signals in quick succession
//! are two signals, never merged into one.

use std::io::Read as _;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread;
use std::time::Instant;

use runlog::RunResults;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

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
        exit_code(self.number)
    }
}

/// 128 + a signal's number.
fn exit_code(number: i32) -> u8 {
    u8::try_from(128 + number).unwrap_or(u8::MAX)
}

/// Sends `SIGINT` to this process, as Ctrl-C would outside the dashboard: the terminal is
/// in raw mode while the dashboard runs, so Ctrl-C reaches it as a key, and it calls this
/// so the key takes the one signal path. Sent to the process, not the calling thread,
/// because the threads that act on signals are the ones that do not block them.
pub fn interrupt_self() {
    use nix::sys::signal::{Signal, kill};
    if let Err(err) = kill(nix::unistd::Pid::this(), Signal::SIGINT) {
        crate::errln!("{}: cannot raise SIGINT: {err}", crate::program::name());
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

/// What the process is doing, as far as signals are concerned (see the module docs).
enum Stage {
    Idle,
    Preparing,
    Armed(PartialRecord),
}

impl Stage {
    /// The stage in words, for diagnostics.
    fn describe(&self) -> &'static str {
        match self {
            Stage::Idle => "idle",
            Stage::Preparing => "while preparing a run",
            Stage::Armed(_) => "during a run",
        }
    }
}

/// The shared state between the signal threads and the run.
pub struct Interrupt {
    first: OnceLock<Caught>,
    /// A child process this one started and must not leave behind (`crash-test`'s current
    /// run; 0: none): killed before a signal ends this process.
    guarded: AtomicU32,
    /// Taken by the signal threads to act on a signal, and by the run to change stage or
    /// write its own (complete) record, so the two never cross.
    stage: Mutex<Stage>,
}

impl Default for Interrupt {
    fn default() -> Self {
        Self {
            first: OnceLock::new(),
            guarded: AtomicU32::new(0),
            stage: Mutex::new(Stage::Idle),
        }
    }
}

impl std::fmt::Debug for Interrupt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Interrupt")
            .field("first", &self.caught())
            .finish_non_exhaustive()
    }
}

/// What the signal thread does once it has looked at the stage.
enum Action {
    Continue,
    Leave(u8),
    Default,
}

impl Interrupt {
    /// The first signal a run took, once one has arrived.
    pub fn caught(&self) -> Option<Caught> {
        self.first.get().copied()
    }

    fn lock(&self) -> MutexGuard<'_, Stage> {
        self.stage.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// While `pid` is set, a signal that ends this process `SIGKILL`s that child first,
    /// so it is not left running; `None` once it is gone.
    pub fn guard_child(&self, pid: Option<u32>) {
        self.guarded.store(pid.unwrap_or(0), Ordering::SeqCst);
    }

    /// Kills the guarded child, if there is one.
    fn kill_guarded(&self) {
        use nix::sys::signal::{Signal, kill};
        let pid = self.guarded.swap(0, Ordering::SeqCst);
        if let Ok(raw) = i32::try_from(pid) {
            if raw > 0 {
                let _ = kill(nix::unistd::Pid::from_raw(raw), Signal::SIGKILL);
            }
        }
    }

    /// A run is being set up: a signal now leaves at once (there is nothing to record).
    pub fn preparing(&self) {
        *self.lock() = Stage::Preparing;
    }

    /// Nothing is being recorded: a signal now takes its default action.
    pub fn idle(&self) {
        *self.lock() = Stage::Idle;
    }

    /// A run directory is about to exist: from now on the first signal drains the run, and
    /// a second writes `partial` and leaves. Errors with the signal already taken, if one
    /// was (the run should not start).
    ///
    /// # Errors
    ///
    /// The signal that arrived before the run was armed.
    pub fn arm(&self, partial: PartialRecord) -> Result<(), Caught> {
        let mut stage = self.lock();
        if let Some(caught) = self.caught() {
            return Err(caught);
        }
        *stage = Stage::Armed(partial);
        Ok(())
    }

    /// Runs `write` (the run's own record), given the first signal if one came, while no
    /// signal can be acted on; then the process is idle. A signal that arrives during the
    /// write is either in the record (it came first) or acted on after it (default action).
    pub fn while_writing<R>(&self, write: impl FnOnce(Option<Caught>) -> R) -> R {
        let mut stage = self.lock();
        let result = write(self.caught());
        *stage = Stage::Idle;
        result
    }

    /// Acts on one delivery of signal `number`.
    fn on_signal(&self, number: i32) {
        // The stage stays locked until the process leaves: the run cannot write over what
        // is decided here.
        let stage = self.lock();
        tracing::debug!(
            "signal received: {} ({})",
            signal_name(number),
            stage.describe()
        );
        let action = match &*stage {
            Stage::Idle => match self.caught() {
                // A second signal once the record is written: leave at once, by its code,
                // as a second signal during the drain does.
                Some(_) => {
                    crate::errln!(
                        "{}: {}: leaving at once",
                        crate::program::name(),
                        signal_name(number)
                    );
                    Action::Leave(exit_code(number))
                }
                None => Action::Default,
            },
            Stage::Preparing => {
                crate::errln!(
                    "{}: {}: leaving before the run started (nothing was recorded)",
                    crate::program::name(),
                    signal_name(number)
                );
                Action::Leave(exit_code(number))
            }
            Stage::Armed(partial) => {
                let caught = Caught {
                    number,
                    at: Instant::now(),
                };
                match self.first.set(caught) {
                    Ok(()) => {
                        crate::errln!(
                            "{}: {}: stopping the producers and draining (a second signal leaves at once)",
                            crate::program::name(),
                            signal_name(number)
                        );
                        Action::Continue
                    }
                    Err(_) => {
                        write_partial(partial, self.caught().unwrap_or(caught), number);
                        Action::Leave(exit_code(number))
                    }
                }
            }
        };
        match action {
            Action::Continue => {}
            Action::Leave(code) => {
                self.kill_guarded();
                dashboards::restore_terminal();
                std::process::exit(i32::from(code));
            }
            Action::Default => {
                self.kill_guarded();
                dashboards::restore_terminal();
                // Ends the process by the signal, as if it had never been handled.
                let _ = signal_hook::low_level::emulate_default_handler(number);
            }
        }
        drop(stage);
    }
}

/// A second signal: writes the partial record and says where.
fn write_partial(partial: &PartialRecord, first: Caught, second: i32) {
    let results = (partial.compose)(&first, &signal_name(second));
    match runlog::write_results(&partial.path, &results) {
        Ok(()) => crate::errln!(
            "{}: {}: leaving at once; wrote the partial record {}",
            crate::program::name(),
            signal_name(second),
            partial.path.display()
        ),
        Err(err) => crate::errln!(
            "{}: {}: leaving at once; cannot write the partial record: {err}",
            crate::program::name(),
            signal_name(second)
        ),
    }
}

/// Whether signal `number` was ignored when the process started (`nohup` ignores
/// `SIGHUP`): read from `/proc/self/status` (`SigIgn`, a hexadecimal mask). Where that
/// cannot be read, not ignored.
fn ignored_at_start(number: i32) -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| ignored_in(&status, number))
}

/// Whether a `/proc/<pid>/status` text says signal `number` is ignored.
fn ignored_in(status: &str, number: i32) -> bool {
    status
        .lines()
        .find_map(|line| line.strip_prefix("SigIgn:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .is_some_and(|mask| number >= 1 && mask & (1 << (number - 1)) != 0)
}

/// Installs the handlers for `SIGINT`, `SIGTERM` and `SIGHUP`, each unless it was ignored
/// at start (`nohup` ignores `SIGHUP`; a shell without job control starts background
/// commands with `SIGINT` ignored), and returns the state runs watch. The process starts
/// idle.
///
/// Call it first, before any other thread exists: the calling thread then blocks the three
/// signals, and every thread it starts inherits that, so the kernel delivers them to the
/// signal threads only. Those never wait for a CPU behind busy (or pinned) run threads, so
/// a second signal sent right after the first is not merged into it while it is pending.
///
/// # Errors
///
/// The OS error if a handler or its thread cannot be set up.
pub fn install() -> std::io::Result<Arc<Interrupt>> {
    use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};
    let interrupt = Arc::new(Interrupt::default());
    let mut handled = SigSet::empty();
    for number in [SIGINT, SIGTERM, SIGHUP] {
        if ignored_at_start(number) {
            continue;
        }
        let (mut read, write) = UnixStream::pair()?;
        signal_hook::low_level::pipe::register(number, write)?;
        let shared = Arc::clone(&interrupt);
        thread::Builder::new()
            .name(format!("soak-{}", signal_name(number).to_lowercase()))
            .spawn(move || {
                let mut bytes = [0_u8; 16];
                loop {
                    match read.read(&mut bytes) {
                        Ok(0) => return,
                        // One byte per delivery.
                        Ok(n) => (0..n).for_each(|_| shared.on_signal(number)),
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(_) => return,
                    }
                }
            })?;
        if let Ok(signal) = Signal::try_from(number) {
            handled.add(signal);
        }
    }
    pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&handled), None).map_err(std::io::Error::from)?;
    Ok(interrupt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ignored_mask_is_read() {
        // SIGHUP (1) and SIGQUIT (3) ignored, as bits 0 and 2 of the mask.
        let status = "Name:\tsoak\nSigBlk:\t0000000000000002\nSigIgn:\t0000000000000005\n";
        assert!(ignored_in(status, SIGHUP));
        assert!(!ignored_in(status, SIGINT), "SigBlk is not SigIgn");
        assert!(ignored_in(status, 3));
        assert!(!ignored_in(status, SIGTERM));
        assert!(!ignored_in(status, 0), "no signal 0");
        assert!(!ignored_in("Name:\tsoak\n", SIGHUP), "no mask: not ignored");
        // This process's own status parses (whatever the runner ignores).
        let own = std::fs::read_to_string("/proc/self/status").expect("procfs");
        assert!(own.lines().any(|line| line.starts_with("SigIgn:")));
    }

    #[test]
    fn arming_after_a_signal_is_refused() {
        let interrupt = Interrupt::default();
        let _ = interrupt.first.set(Caught {
            number: SIGTERM,
            at: Instant::now(),
        });
        let partial = PartialRecord {
            path: PathBuf::from("results.json"),
            compose: Box::new(|_, _| RunResults::default()),
        };
        assert_eq!(interrupt.arm(partial).map_err(|c| c.number), Err(SIGTERM));
    }

    #[test]
    fn the_record_is_written_with_the_first_signal() {
        let interrupt = Interrupt::default();
        let partial = PartialRecord {
            path: PathBuf::from("results.json"),
            compose: Box::new(|_, _| RunResults::default()),
        };
        assert!(interrupt.arm(partial).is_ok());
        assert!(interrupt.while_writing(|c| c.is_none()));
        assert!(matches!(*interrupt.lock(), Stage::Idle));
    }
}
