//! Newline-delimited records loaded once from a file and replayed in a cycle.

use std::fs::File;
use std::io::Read;
use std::ops::Range;
use std::path::{Path, PathBuf};

use super::PayloadError;

/// The most a payload file may hold: it is loaded whole into memory once and
/// shared by every producer, so it counts against the run's heap.
pub const MAX_FILE_BYTES: u64 = 256 << 20;

/// A file's records: one buffer plus the byte span of each record within it.
#[derive(Debug)]
pub(crate) struct Records {
    data: Box<[u8]>,
    /// Offsets fit in `u32` because the file is capped at [`MAX_FILE_BYTES`].
    spans: Box<[(u32, u32)]>,
}

impl Records {
    /// Loads `path`, splitting on `\n` (a trailing `\r` is dropped, blank
    /// lines are skipped).
    pub(crate) fn load(path: &Path) -> Result<Records, PayloadError> {
        Self::load_capped(path, MAX_FILE_BYTES)
    }

    fn load_capped(path: &Path, limit: u64) -> Result<Records, PayloadError> {
        let io_error = |source| PayloadError::Io {
            path: path.to_owned(),
            source,
        };
        let too_large = || PayloadError::FileTooLarge {
            path: path.to_owned(),
            limit,
        };
        // Refuse a FIFO or a device from its metadata, before opening it: opening a FIFO
        // waits for a writer, and a device may never end.
        let meta = std::fs::metadata(path).map_err(io_error)?;
        if !meta.is_file() {
            return Err(PayloadError::NotAFile {
                path: path.to_owned(),
            });
        }
        let file = File::open(path).map_err(io_error)?;
        let declared = file.metadata().map_err(io_error)?.len();
        if declared > limit {
            return Err(too_large());
        }
        // Read through `take` as well: special files may not declare a length.
        let mut data = Vec::with_capacity(usize::try_from(declared).unwrap_or(0));
        file.take(limit + 1)
            .read_to_end(&mut data)
            .map_err(io_error)?;
        if data.len() as u64 > limit {
            return Err(too_large());
        }
        Self::from_bytes(data.into_boxed_slice(), path)
    }

    fn from_bytes(data: Box<[u8]>, path: &Path) -> Result<Records, PayloadError> {
        let mut spans = Vec::new();
        let mut start = 0usize;
        for line in data.split(|&b| b == b'\n') {
            let end = start + line.len();
            let trimmed = if line.ends_with(b"\r") { end - 1 } else { end };
            if trimmed > start {
                spans.push((offset(start), offset(trimmed)));
            }
            start = end + 1;
        }
        if spans.is_empty() {
            return Err(PayloadError::EmptyFile {
                path: PathBuf::from(path),
            });
        }
        Ok(Records {
            data,
            spans: spans.into_boxed_slice(),
        })
    }

    /// How many records there are (at least one).
    pub(crate) fn len(&self) -> usize {
        self.spans.len()
    }

    /// The bytes of record `index` (`index < len()`).
    pub(crate) fn get(&self, index: usize) -> &[u8] {
        let (start, end) = self.spans[index];
        &self.data[range(start, end)]
    }

    /// The longest record, in bytes.
    pub(crate) fn max_len(&self) -> usize {
        self.spans
            .iter()
            .map(|&(s, e)| (e - s) as usize)
            .max()
            .unwrap_or(0)
    }

    /// The mean record length in bytes.
    pub(crate) fn mean_len(&self) -> f64 {
        let total: u64 = self.spans.iter().map(|&(s, e)| u64::from(e - s)).sum();
        total as f64 / self.spans.len() as f64
    }
}

/// Offsets are below [`MAX_FILE_BYTES`] (< 4 GiB), so they fit in `u32`.
fn offset(at: usize) -> u32 {
    u32::try_from(at).expect("payload files are capped below 4 GiB")
}

fn range(start: u32, end: u32) -> Range<usize> {
    start as usize..end as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn records(text: &str) -> Result<Records, PayloadError> {
        Records::from_bytes(text.as_bytes().into(), Path::new("mem"))
    }

    #[test]
    fn lines_become_records_without_separators() {
        let r = records("alpha\r\nbeta\n\n\ngamma").unwrap();
        assert_eq!(r.len(), 3);
        assert_eq!(r.get(0), b"alpha");
        assert_eq!(r.get(1), b"beta");
        assert_eq!(r.get(2), b"gamma");
        assert!((r.mean_len() - 14.0 / 3.0).abs() < 1e-9);
    }

    #[test]
    fn blank_input_is_an_error_naming_the_path() {
        for text in ["", "\n\n", "\r\n"] {
            let err = records(text).unwrap_err();
            assert!(matches!(err, PayloadError::EmptyFile { .. }));
            assert!(err.to_string().contains("mem"), "{err}");
        }
    }

    #[test]
    fn missing_and_oversized_files_are_errors_naming_the_path() {
        let dir = std::env::temp_dir().join(format!("loadgen-records-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("missing.jsonl");
        let err = Records::load(&missing).unwrap_err();
        assert!(err.to_string().contains("missing.jsonl"), "{err}");

        let big = dir.join("big.jsonl");
        let mut file = File::create(&big).unwrap();
        writeln!(file, "0123456789").unwrap();
        drop(file);
        let err = Records::load_capped(&big, 5).unwrap_err();
        assert!(matches!(err, PayloadError::FileTooLarge { limit: 5, .. }));
        assert!(err.to_string().contains("big.jsonl"), "{err}");
        assert_eq!(Records::load_capped(&big, 11).unwrap().len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
