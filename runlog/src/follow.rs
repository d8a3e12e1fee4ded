//! Tailing a growing `samples.jsonl`, for live dashboards.

use std::fs::File;
use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::{Path, PathBuf};

use crate::error::RunlogError;
use crate::line::Line;
use crate::samples_io::is_blank;

/// Follows a `samples.jsonl` that a running soak is writing.
///
/// Each [`poll`](SamplesFollower::poll) returns the complete lines added since the last
/// one; a partial trailing line waits for its newline. It never blocks or sleeps: the
/// caller decides how often to poll. A file that does not exist yet reads as empty, and a
/// file that shrinks (rewritten by a new run) is read again from its start.
#[derive(Debug)]
pub struct SamplesFollower {
    path: PathBuf,
    file: Option<File>,
    offset: u64,
    pending: Vec<u8>,
    line_no: usize,
}

impl SamplesFollower {
    /// A follower of `path`; nothing is opened until the first poll.
    ///
    /// ```
    /// use std::io::Write as _;
    /// # let dir = std::env::temp_dir().join(format!("runlog-doc-fo-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir).unwrap();
    /// let path = dir.join("samples.jsonl");
    /// let mut follower = runlog::SamplesFollower::new(&path);
    /// assert!(follower.poll()?.is_empty()); // not created yet
    /// let mut file = std::fs::File::create(&path).unwrap();
    /// file.write_all(br#"{"at_s":0.0,"kind":"phase","#).unwrap();
    /// assert!(follower.poll()?.is_empty()); // incomplete line
    /// file.write_all(b"\"name\":\"run\"}\n").unwrap();
    /// assert_eq!(follower.poll()?.len(), 1);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), runlog::RunlogError>(())
    /// ```
    #[must_use]
    pub fn new(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
            file: None,
            offset: 0,
            pending: Vec::new(),
            line_no: 0,
        }
    }

    /// The file being followed.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The complete lines written since the last poll, in order.
    ///
    /// # Errors
    /// [`RunlogError::Io`] when the file cannot be opened (other than not existing yet) or
    /// read. [`RunlogError::Json`] with the 1-based line number for a complete line that
    /// does not parse; lines before it are returned first (by this poll), the error by the
    /// next, and polling may go on past it.
    pub fn poll(&mut self) -> Result<Vec<Line>, RunlogError> {
        if !self.read_new_bytes()? {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        let mut error = None;
        let mut start = 0;
        while let Some(len) = self.pending[start..].iter().position(|&b| b == b'\n') {
            let raw = &self.pending[start..start + len];
            let next = start + len + 1;
            if is_blank(raw) {
                self.line_no += 1;
                start = next;
                continue;
            }
            match Line::from_json_slice(raw) {
                Ok(line) => out.push(line),
                // Hand back the good lines now; the bad one is reported by the next poll.
                Err(_) if !out.is_empty() => break,
                Err(e) => error = Some(RunlogError::json(&self.path, Some(self.line_no + 1), e)),
            }
            self.line_no += 1;
            start = next;
            if error.is_some() {
                break;
            }
        }
        self.pending.drain(..start);
        match error {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    /// Appends new bytes to `pending`; `false` when the file does not exist yet.
    fn read_new_bytes(&mut self) -> Result<bool, RunlogError> {
        let io_err = |e| RunlogError::io(&self.path, e);
        if self.file.is_none() {
            match crate::files::open_regular(&self.path) {
                Ok(f) => self.file = Some(f),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
                Err(e) => return Err(io_err(e)),
            }
        }
        let Some(file) = self.file.as_mut() else {
            return Ok(false);
        };
        let len = file.metadata().map_err(io_err)?.len();
        if len < self.offset {
            self.offset = 0;
            self.line_no = 0;
            self.pending.clear();
        }
        file.seek(SeekFrom::Start(self.offset)).map_err(io_err)?;
        let read = file.read_to_end(&mut self.pending).map_err(io_err)?;
        self.offset += read as u64;
        Ok(true)
    }
}
