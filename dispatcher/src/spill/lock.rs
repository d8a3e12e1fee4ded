//! The directory lock: an exclusive `flock` (`LockFileEx` on Windows)
//! on `<dir>/lock`, through `fs4`.
//!
//! The lock file is created once and never removed (removing a lock file
//! races with another process opening it), except by the open that created
//! it in a directory it then refused as not ours (it still holds the lock
//! when it removes the file). The lock belongs to the open
//! file description, so a second open in the same process is refused just
//! like one in another process, and it goes away with the descriptor: on
//! drop, or when the process dies however it dies.
//!
//! One exception to "goes away with the descriptor": a thread of this
//! process that forks (to run another program) duplicates every descriptor
//! into the child until its `exec` closes them, so for that moment the lock
//! outlives a drop. Taking the lock therefore tries again for a short while
//! before refusing the directory as locked.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fs4::fs_std::FileExt;

use super::error::SpillError;

/// The lock file's name.
pub(crate) const LOCK_FILE: &str = "lock";

/// How long a held lock is tried again before the directory is refused:
/// longer than a fork's descriptors live before `exec` on a busy machine.
const FORK_GRACE: Duration = Duration::from_millis(100);

/// A held directory lock; released on drop.
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: File,
    path: PathBuf,
}

impl DirLock {
    /// Takes the lock of `dir`, trying again for up to [`FORK_GRACE`]
    /// while it is held (see the module docs), then refusing.
    pub(crate) fn acquire(dir: &Path) -> Result<Self, SpillError> {
        let path = dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| SpillError::io(&path, e))?;
        let give_up = Instant::now() + FORK_GRACE;
        loop {
            match FileExt::try_lock_exclusive(&file) {
                Ok(true) => return Ok(DirLock { _file: file, path }),
                Ok(false) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(SpillError::io(&path, e)),
            }
            if Instant::now() >= give_up {
                return Err(SpillError::Locked { dir: dir.into() });
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// The lock file.
    #[allow(dead_code)]
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_is_refused_until_the_first_drops() {
        let dir = tempfile::tempdir().unwrap();
        let first = DirLock::acquire(dir.path()).unwrap();
        assert!(matches!(
            DirLock::acquire(dir.path()),
            Err(SpillError::Locked { .. })
        ));
        drop(first);
        DirLock::acquire(dir.path()).unwrap();
    }
}
