//! `samples.jsonl`: streamed writing and whole-file reading.

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::RunlogError;
use crate::event::Event;
use crate::line::Line;
use crate::sample::Sample;

/// Appends samples and events to `samples.jsonl`, one JSON object per line.
///
/// Each line goes to the operating system in one write as soon as it is written, so a run
/// killed midway keeps every complete line (at most the last one is cut).
#[derive(Debug)]
pub struct SamplesWriter {
    path: PathBuf,
    file: File,
    buf: Vec<u8>,
}

impl SamplesWriter {
    /// Creates (or truncates) the file.
    ///
    /// ```
    /// use runlog::{Event, EventKind, Sample, SamplesWriter};
    /// # let dir = std::env::temp_dir().join(format!("runlog-doc-sw-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir).unwrap();
    /// let path = dir.join("samples.jsonl");
    /// let mut writer = SamplesWriter::create(&path)?;
    /// writer.write_event(&Event::new(0.0, EventKind::Phase { name: "run".into() }))?;
    /// writer.write_sample(&Sample { t_s: 1.0, phase: "run".into(), ..Default::default() })?;
    /// let log = runlog::read_samples(&path)?;
    /// assert_eq!((log.samples.len(), log.events.len()), (1, 1));
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), runlog::RunlogError>(())
    /// ```
    ///
    /// # Errors
    /// [`RunlogError::Io`] when the file cannot be created.
    pub fn create(path: &Path) -> Result<Self, RunlogError> {
        let file = File::create(path).map_err(|e| RunlogError::io(path, e))?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
            buf: Vec::with_capacity(1024),
        })
    }

    /// The file being written.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one sample line.
    ///
    /// # Errors
    /// [`RunlogError::Json`] for a non-finite `f64`; [`RunlogError::Io`] when the write fails.
    pub fn write_sample(&mut self, sample: &Sample) -> Result<(), RunlogError> {
        self.write_value(sample)
    }

    /// Appends one event line, so a live follower sees it when it happens.
    ///
    /// # Errors
    /// As [`SamplesWriter::write_sample`].
    pub fn write_event(&mut self, event: &Event) -> Result<(), RunlogError> {
        self.write_value(event)
    }

    /// Appends a sample or event line.
    ///
    /// # Errors
    /// As [`SamplesWriter::write_sample`].
    pub fn write_line(&mut self, line: &Line) -> Result<(), RunlogError> {
        self.write_value(line)
    }

    fn write_value<T: Serialize>(&mut self, value: &T) -> Result<(), RunlogError> {
        self.buf.clear();
        serde_json::to_writer(&mut self.buf, value)
            .map_err(|e| RunlogError::json(&self.path, None, e))?;
        self.buf.push(b'\n');
        // One write per line: a reader sees whole lines, or a cut last line after a kill.
        self.file
            .write_all(&self.buf)
            .and_then(|()| self.file.flush())
            .map_err(|e| RunlogError::io(&self.path, e))
    }
}

/// Where a killed run cut `samples.jsonl`: its last line was incomplete or unparseable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Truncation {
    /// The 1-based line number of the cut line.
    pub line: usize,
    /// How many bytes of it were there.
    pub bytes: usize,
}

/// The contents of a `samples.jsonl`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SamplesLog {
    /// The samples, in file order.
    pub samples: Vec<Sample>,
    /// The events, in file order.
    pub events: Vec<Event>,
    /// Set when the last line was cut (a killed run); everything before it was read.
    pub truncated: Option<Truncation>,
}

pub(crate) fn is_blank(line: &[u8]) -> bool {
    line.iter().all(u8::is_ascii_whitespace)
}

/// Reads a whole `samples.jsonl`.
///
/// An incomplete or unparseable last line is not an error: it is reported in
/// [`SamplesLog::truncated`]. Blank lines are skipped.
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("runlog-doc-rs-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("samples.jsonl");
/// std::fs::write(&path, "{\"at_s\":0.0,\"kind\":\"phase\",\"name\":\"run\"}\n{\"t_s\":1.0,\"inter").unwrap();
/// let log = runlog::read_samples(&path)?;
/// assert_eq!(log.events.len(), 1);
/// assert_eq!(log.truncated, Some(runlog::Truncation { line: 2, bytes: 17 }));
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), runlog::RunlogError>(())
/// ```
///
/// # Errors
/// [`RunlogError::Io`] when the file cannot be read; [`RunlogError::Json`] with the path and
/// 1-based line number for a bad line other than the last.
pub fn read_samples(path: &Path) -> Result<SamplesLog, RunlogError> {
    let bytes = read_all(path)?;
    let lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
    let last = lines.iter().rposition(|l| !is_blank(l));
    let mut log = SamplesLog::default();
    for (index, raw) in lines.iter().enumerate() {
        if is_blank(raw) {
            continue;
        }
        match Line::from_json_slice(raw) {
            Ok(Line::Sample(sample)) => log.samples.push(sample),
            Ok(Line::Event(event)) => log.events.push(event),
            Err(_) if Some(index) == last => {
                log.truncated = Some(Truncation {
                    line: index + 1,
                    bytes: raw.len(),
                });
            }
            Err(e) => return Err(RunlogError::json(path, Some(index + 1), e)),
        }
    }
    Ok(log)
}

/// A whole record file that may be large (`samples.jsonl`, `latency.hlog`): only if it is a
/// regular file (see [`open_regular`](crate::open_regular)).
pub(crate) fn read_all(path: &Path) -> Result<Vec<u8>, RunlogError> {
    use std::io::Read as _;
    let mut bytes = Vec::new();
    crate::files::open_regular(path)
        .and_then(|mut file| file.read_to_end(&mut bytes))
        .map_err(|e| RunlogError::io(path, e))?;
    Ok(bytes)
}
