//! `run.lock` in a run directory: held (an exclusive `flock`) by the process writing the run
//! for as long as it runs, so `soak watch` can tell a run that is still going from one whose
//! process is gone (killed, or its machine rebooted) without trusting a pid.

use std::fs::{File, OpenOptions};
use std::path::Path;

use nix::fcntl::{Flock, FlockArg};

/// The lock file's name inside a run directory.
pub const LOCK_FILE: &str = "run.lock";

/// The lock, held until dropped.
#[derive(Debug)]
pub struct RunLock {
    _lock: Flock<File>,
}

impl RunLock {
    /// Takes the lock of the run directory `dir`.
    ///
    /// # Errors
    ///
    /// The OS error if the file cannot be created or the lock is held elsewhere.
    pub fn hold(dir: &Path) -> std::io::Result<RunLock> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(LOCK_FILE))?;
        let lock = Flock::lock(file, FlockArg::LockExclusiveNonblock)
            .map_err(|(_, errno)| std::io::Error::from(errno))?;
        Ok(RunLock { _lock: lock })
    }
}

/// Whether a process holds the run directory `dir` now: `Some(true)` while its run goes,
/// `Some(false)` once no process does, `None` for a run that has no lock file (a run of an
/// older version, or one that never started).
pub fn held(dir: &Path) -> Option<bool> {
    let file = OpenOptions::new()
        .write(true)
        .open(dir.join(LOCK_FILE))
        .ok()?;
    match Flock::lock(file, FlockArg::LockSharedNonblock) {
        Ok(_released_on_drop) => Some(false),
        Err(_) => Some(true),
    }
}
