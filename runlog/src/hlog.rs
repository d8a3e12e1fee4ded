//! `latency.hlog`: one compressed HdrHistogram per sample interval (interval log V2).

use std::fmt;
use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::interval_log::{
    IntervalLogIterator, IntervalLogWriterBuilder, LogEntry,
};
use hdrhistogram::serialization::{Deserializer, V2DeflateSerializer};

use crate::error::RunlogError;
use crate::samples_io::Truncation;

/// One interval of a latency log: `(start_s, duration_s, histogram)`, with `start_s` in
/// seconds since the run started and histogram values in microseconds.
pub type HlogInterval = (f64, f64, Histogram<u64>);

/// Writes `latency.hlog`, readable by [`read_hlog`] and by HdrHistogram's own tools.
///
/// The header records the run's start as both `StartTime` and `BaseTime`, so interval
/// timestamps are seconds since the start (millisecond resolution, as the format has).
pub struct HlogWriter {
    path: PathBuf,
    file: File,
    serializer: V2DeflateSerializer,
    buf: Vec<u8>,
}

impl fmt::Debug for HlogWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HlogWriter")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl HlogWriter {
    /// Creates (or truncates) the log and writes its header.
    ///
    /// ```
    /// use hdrhistogram::Histogram;
    /// # let dir = std::env::temp_dir().join(format!("runlog-doc-hl-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir).unwrap();
    /// let path = dir.join("latency.hlog");
    /// let mut writer = runlog::HlogWriter::create(&path, std::time::SystemTime::now())?;
    /// let mut h = Histogram::<u64>::new(3).unwrap();
    /// h.record(250).unwrap();
    /// writer.write_interval(&h, 0.0, 1.0)?;
    /// let intervals = runlog::read_hlog(&path)?;
    /// assert_eq!(intervals[0].2.len(), 1);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), runlog::RunlogError>(())
    /// ```
    ///
    /// # Errors
    /// [`RunlogError::Io`] when the file cannot be created or written.
    pub fn create(path: &Path, start_time: SystemTime) -> Result<Self, RunlogError> {
        let mut file = File::create(path).map_err(|e| RunlogError::io(path, e))?;
        let mut serializer = V2DeflateSerializer::new();
        let mut buf = Vec::new();
        IntervalLogWriterBuilder::new()
            .add_comment("metronome latency log: enqueue-to-delivery, values in microseconds")
            .with_start_time(start_time)
            .with_base_time(start_time)
            .begin_log_with(&mut buf, &mut serializer)
            .map_err(|e| RunlogError::io(path, e))?;
        file.write_all(&buf).map_err(|e| RunlogError::io(path, e))?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
            serializer,
            buf,
        })
    }

    /// Appends one interval: `start_offset_s` seconds after the run's start, lasting
    /// `duration_s`. The line reaches the operating system before this returns.
    ///
    /// # Errors
    /// [`RunlogError::Hlog`] for a negative or non-finite time or a histogram that fails to
    /// serialize; [`RunlogError::Io`] when the write fails.
    pub fn write_interval(
        &mut self,
        histogram: &Histogram<u64>,
        start_offset_s: f64,
        duration_s: f64,
    ) -> Result<(), RunlogError> {
        let start = self.seconds("start_offset_s", start_offset_s)?;
        let duration = self.seconds("duration_s", duration_s)?;
        self.buf.clear();
        // A header-less writer per line: the crate's writer borrows its sink, and a whole
        // line built in memory reaches the file in one write.
        IntervalLogWriterBuilder::new()
            .begin_log_with(&mut self.buf, &mut self.serializer)
            .map_err(|e| RunlogError::io(&self.path, e))?
            .write_histogram(histogram, start, duration, None)
            .map_err(|e| RunlogError::hlog(&self.path, e.to_string()))?;
        self.file
            .write_all(&self.buf)
            .and_then(|()| self.file.flush())
            .map_err(|e| RunlogError::io(&self.path, e))
    }

    fn seconds(&self, what: &str, value: f64) -> Result<Duration, RunlogError> {
        Duration::try_from_secs_f64(value).map_err(|_| {
            RunlogError::hlog(&self.path, format!("{what} = {value} is not a time >= 0"))
        })
    }
}

/// Reads every interval of a latency log, in file order.
///
/// Timestamps are made relative to the log's `BaseTime` (or, without one, to its
/// `StartTime`). An incomplete last line (a killed run) is ignored.
///
/// # Errors
/// [`RunlogError::Io`] when the file cannot be read; [`RunlogError::Hlog`] naming the line
/// for a line that does not parse or a histogram that does not decode.
pub fn read_hlog(path: &Path) -> Result<Vec<HlogInterval>, RunlogError> {
    read_hlog_checked(path).map(|(intervals, _)| intervals)
}

/// Reads every interval of a latency log like [`read_hlog`], and says where a killed run cut
/// it: the incomplete last line, if any, as a [`Truncation`] (the same report
/// [`read_samples`](crate::read_samples) gives for `samples.jsonl`).
///
/// # Errors
/// As [`read_hlog`].
pub fn read_hlog_checked(
    path: &Path,
) -> Result<(Vec<HlogInterval>, Option<Truncation>), RunlogError> {
    let bytes = crate::samples_io::read_all(path)?;
    let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let truncated = (complete < bytes.len()).then(|| Truncation {
        line: bytes[..complete].iter().filter(|&&b| b == b'\n').count() + 1,
        bytes: bytes.len() - complete,
    });
    let intervals = parse_intervals(path, &bytes[..complete])?;
    Ok((intervals, truncated))
}

fn parse_intervals(path: &Path, bytes: &[u8]) -> Result<Vec<HlogInterval>, RunlogError> {
    let line_of = |offset: usize| {
        bytes[..offset.min(bytes.len())]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    };

    let mut base: Option<Duration> = None;
    let mut start: Option<Duration> = None;
    let mut deserializer = Deserializer::new();
    let mut intervals = Vec::new();
    for entry in IntervalLogIterator::new(bytes) {
        let entry = entry.map_err(|e| {
            let hdrhistogram::serialization::interval_log::LogIteratorError::ParseError { offset } =
                e;
            RunlogError::hlog(
                path,
                format!("line {}: not an interval log line", line_of(offset)),
            )
        })?;
        match entry {
            LogEntry::BaseTime(t) => base = Some(t),
            LogEntry::StartTime(t) => start = Some(t),
            LogEntry::Interval(interval) => {
                let n = intervals.len() + 1;
                let bad = |what: String| RunlogError::hlog(path, format!("interval {n}: {what}"));
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(interval.encoded_histogram())
                    .map_err(|e| bad(format!("bad base64: {e}")))?;
                let histogram: Histogram<u64> = deserializer
                    .deserialize(&mut raw.as_slice())
                    .map_err(|e| bad(format!("bad histogram: {e}")))?;
                let mut at = interval.start_timestamp();
                if base.is_none() {
                    // Without a BaseTime the timestamps are absolute (seconds since the epoch).
                    at = at.saturating_sub(start.unwrap_or_default());
                }
                let duration = interval.duration().as_secs_f64();
                intervals.push((at.as_secs_f64(), duration, histogram));
            }
        }
    }
    Ok(intervals)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_path(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("runlog-hlog-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("latency.hlog")
    }

    #[test]
    fn negative_offset_is_refused() {
        let path = temp_path("neg");
        let mut w = HlogWriter::create(&path, SystemTime::now()).unwrap();
        let h = Histogram::<u64>::new(3).unwrap();
        let err = w.write_interval(&h, -1.0, 1.0).unwrap_err();
        assert!(err.to_string().contains("start_offset_s = -1"), "{err}");
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn cut_last_line_is_ignored_and_garbage_names_its_line() {
        let path = temp_path("cut");
        let mut w = HlogWriter::create(&path, SystemTime::now()).unwrap();
        let mut h = Histogram::<u64>::new(3).unwrap();
        h.record(10).unwrap();
        w.write_interval(&h, 0.0, 1.0).unwrap();
        w.write_interval(&h, 1.0, 1.0).unwrap();
        let len = std::fs::metadata(&path).unwrap().len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len - 10)
            .unwrap();
        assert_eq!(read_hlog(&path).unwrap().len(), 1);

        let mut text = std::fs::read_to_string(&path).unwrap();
        text.truncate(text.rfind('\n').unwrap() + 1);
        text.push_str("not,a,histogram line\n");
        std::fs::write(&path, &text).unwrap();
        let err = read_hlog(&path).unwrap_err();
        let line = text.lines().count();
        assert!(err.to_string().contains(&format!("line {line}")), "{err}");
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }
}
