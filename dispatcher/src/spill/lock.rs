//! The directory lock: an exclusive `flock` (`LockFileEx` on Windows)
//! on `<dir>/lock`, through `fs4`.
//!
//! The lock file is created once and never removed (removing a lock file
//! races with another process opening it). The lock belongs to the open
//! file description, so a second open in the same process is refused just
//! like one in another process, and it goes away with the descriptor: on
//! drop, or when the process dies however it dies.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use fs4::fs_std::FileExt;

use super::error::SpillError;

/// The lock file's name.
pub(crate) const LOCK_FILE: &str = "lock";

/// A held directory lock; released on drop.
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: File,
    path: PathBuf,
}

impl DirLock {
    /// Takes the lock of `dir` without waiting.
    pub(crate) fn acquire(dir: &Path) -> Result<Self, SpillError> {
        let path = dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| SpillError::io(&path, e))?;
        match FileExt::try_lock_exclusive(&file) {
            Ok(true) => Ok(DirLock { _file: file, path }),
            Ok(false) => Err(SpillError::Locked { dir: dir.into() }),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                Err(SpillError::Locked { dir: dir.into() })
            }
            Err(e) => Err(SpillError::io(&path, e)),
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
