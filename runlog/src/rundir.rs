//! The run directory: `<base>/<run-id>/` holding one run's files, and `<base>/latest`.

use std::fs;
use std::io::{self, ErrorKind};
use std::path::{Path, PathBuf};

use crate::error::RunlogError;

/// The name of the link in the base directory that points at the newest run.
pub const LATEST: &str = "latest";

/// One run's directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDir {
    path: PathBuf,
}

impl RunDir {
    /// Creates `<base>/<run_id>/`, checks that it is writable and points `<base>/latest` at
    /// it (atomically, with a relative link).
    ///
    /// ```
    /// # let base = std::env::temp_dir().join(format!("runlog-doc-dir-{}", std::process::id()));
    /// let run = runlog::RunDir::create(&base, "20261123-103512-a3f9")?;
    /// assert!(run.samples_path().ends_with("20261123-103512-a3f9/samples.jsonl"));
    /// assert_eq!(runlog::RunDir::resolve_latest(&base)?.run_id(), "20261123-103512-a3f9");
    /// # std::fs::remove_dir_all(&base).unwrap();
    /// # Ok::<(), runlog::RunlogError>(())
    /// ```
    ///
    /// # Errors
    /// [`RunlogError::Io`] when `run_id` is not a plain directory name, the directory already
    /// exists or cannot be created or written, or the `latest` link cannot be replaced.
    pub fn create(base: &Path, run_id: &str) -> Result<RunDir, RunlogError> {
        let path = base.join(run_id);
        let plain = !run_id.is_empty()
            && run_id != LATEST
            && !run_id.starts_with('.')
            && !run_id.contains(['/', '\\']);
        if !plain {
            let e = io::Error::new(ErrorKind::InvalidInput, format!("bad run id {run_id:?}"));
            return Err(RunlogError::io(&path, e));
        }
        check_base(base)?;
        fs::create_dir_all(base).map_err(|e| RunlogError::io(base, e))?;
        fs::create_dir(&path).map_err(|e| RunlogError::io(&path, e))?;
        let probe = path.join(".write-probe");
        let made = fs::write(&probe, b"probe")
            .and_then(|()| fs::remove_file(&probe))
            .map_err(|e| RunlogError::io(&probe, e))
            .and_then(|()| point_latest(base, run_id));
        if let Err(e) = made {
            // Leave nothing behind: a refused start is not a run.
            let _ = fs::remove_dir_all(&path);
            return Err(e);
        }
        Ok(RunDir { path })
    }

    /// Checks, without creating anything, that runs can be created under `base`: it is a
    /// directory (or can become one) and its `latest` is a link or a file that can be
    /// replaced, not a directory.
    ///
    /// # Errors
    /// [`RunlogError::Io`] naming the path that is in the way.
    pub fn check_base(base: &Path) -> Result<(), RunlogError> {
        check_base(base)
    }

    /// Opens an existing run directory for reading.
    ///
    /// # Errors
    /// [`RunlogError::Io`] when `path` does not exist or is not a directory.
    pub fn open(path: &Path) -> Result<RunDir, RunlogError> {
        let meta = fs::metadata(path).map_err(|e| RunlogError::io(path, e))?;
        if !meta.is_dir() {
            let e = io::Error::new(ErrorKind::NotADirectory, "not a run directory");
            return Err(RunlogError::io(path, e));
        }
        Ok(RunDir {
            path: path.to_path_buf(),
        })
    }

    /// Opens the run that `<base>/latest` points at.
    ///
    /// # Errors
    /// [`RunlogError::Io`] when there is no `latest` or its run directory is gone.
    pub fn resolve_latest(base: &Path) -> Result<RunDir, RunlogError> {
        let link = base.join(LATEST);
        let meta = fs::symlink_metadata(&link).map_err(|e| RunlogError::io(&link, e))?;
        let target = if meta.file_type().is_symlink() {
            fs::read_link(&link).map_err(|e| RunlogError::io(&link, e))?
        } else if meta.is_file() {
            // Where symlinks are unavailable, `latest` is a file holding the run id.
            let id =
                crate::files::read_regular(&link, 4096).map_err(|e| RunlogError::io(&link, e))?;
            PathBuf::from(String::from_utf8_lossy(&id).trim())
        } else {
            return RunDir::open(&link);
        };
        RunDir::open(&base.join(target))
    }

    /// The directory.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The run id: the directory's name.
    ///
    /// ```
    /// let run = runlog::RunDir::open(&std::env::temp_dir())?;
    /// assert!(!run.run_id().is_empty());
    /// # Ok::<(), runlog::RunlogError>(())
    /// ```
    #[must_use]
    pub fn run_id(&self) -> String {
        self.path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    }

    /// `results.json`.
    #[must_use]
    pub fn results_path(&self) -> PathBuf {
        self.path.join("results.json")
    }

    /// `samples.jsonl`.
    #[must_use]
    pub fn samples_path(&self) -> PathBuf {
        self.path.join("samples.jsonl")
    }

    /// `latency.hlog`.
    #[must_use]
    pub fn hlog_path(&self) -> PathBuf {
        self.path.join("latency.hlog")
    }

    /// `report.html`.
    #[must_use]
    pub fn report_path(&self) -> PathBuf {
        self.path.join("report.html")
    }
}

fn check_base(base: &Path) -> Result<(), RunlogError> {
    let not_a_dir = |path: &Path| {
        let e = io::Error::new(ErrorKind::NotADirectory, "not a directory");
        RunlogError::io(path, e)
    };
    // The nearest existing ancestor must be a directory.
    let mut at = Some(base);
    while let Some(path) = at {
        match fs::metadata(path) {
            Ok(meta) if meta.is_dir() => break,
            Ok(_) => return Err(not_a_dir(path)),
            Err(e) if e.kind() == ErrorKind::NotFound => at = path.parent(),
            Err(e) if e.kind() == ErrorKind::NotADirectory => return Err(not_a_dir(path)),
            Err(e) => return Err(RunlogError::io(path, e)),
        }
    }
    let link = base.join(LATEST);
    match fs::symlink_metadata(&link) {
        Ok(meta) if meta.is_dir() => {
            let e = io::Error::new(
                ErrorKind::AlreadyExists,
                "is a directory, not a link to the newest run: move it away",
            );
            Err(RunlogError::io(&link, e))
        }
        _ => Ok(()),
    }
}

/// Replaces `<base>/latest` in one rename, so a reader never finds it missing.
fn point_latest(base: &Path, run_id: &str) -> Result<(), RunlogError> {
    let link = base.join(LATEST);
    let tmp = base.join(format!(".{LATEST}.tmp-{}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    make_link(run_id, &tmp).map_err(|e| RunlogError::io(&tmp, e))?;
    fs::rename(&tmp, &link).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        RunlogError::io(&link, e)
    })
}

#[cfg(unix)]
fn make_link(run_id: &str, at: &Path) -> io::Result<()> {
    std::os::unix::fs::symlink(run_id, at)
}

#[cfg(not(unix))]
fn make_link(run_id: &str, at: &Path) -> io::Result<()> {
    fs::write(at, run_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_run_ids_are_refused() {
        let base = std::env::temp_dir().join(format!("runlog-rundir-bad-{}", std::process::id()));
        for id in ["", "latest", "../x", "a/b", ".hidden"] {
            let err = RunDir::create(&base, id).unwrap_err();
            assert!(matches!(err, RunlogError::Io { .. }), "{id}: {err}");
        }
        let _ = fs::remove_dir_all(&base);
    }

    #[test]
    fn existing_run_is_not_reused() {
        let base = std::env::temp_dir().join(format!("runlog-rundir-dup-{}", std::process::id()));
        RunDir::create(&base, "r1").unwrap();
        assert!(RunDir::create(&base, "r1").is_err());
        fs::remove_dir_all(&base).unwrap();
    }
}
