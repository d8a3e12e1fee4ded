//! The spill log's errors: one enum for the store, one struct for codecs.

use std::error::Error as StdError;
use std::io;
use std::path::PathBuf;

/// Why an operation on the spill log failed.
///
/// Every variant names the file or directory and the values involved, so a
/// message is enough to act on without a debugger.
///
/// # Examples
///
/// ```
/// use dispatcher::spill::{Spill, SpillError};
///
/// let err = Spill::new("/tmp/x").segment_bytes(10).validate().unwrap_err();
/// assert!(matches!(err, SpillError::Config { .. }));
/// assert!(err.to_string().contains("10"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpillError {
    /// A setting of [`Spill`](super::Spill) is out of range.
    #[error("spill setting {setting} = {given} is out of range: {allowed}")]
    Config {
        /// The builder method, e.g. `segment_bytes`.
        setting: &'static str,
        /// The value given.
        given: String,
        /// The allowed range, in words.
        allowed: String,
    },
    /// Another [`SpillLog`](super::SpillLog), in this process or another,
    /// holds the directory's lock file.
    #[error("spill directory {} is locked by another open spill log", dir.display())]
    Locked {
        /// The spill directory.
        dir: PathBuf,
    },
    /// The directory holds a file the spill log did not write (or one of its
    /// file names whose content is not a spill file). Nothing was changed.
    #[error("{} is not a spill log file; the spill directory must be empty or hold only spill files", path.display())]
    Foreign {
        /// The foreign file.
        path: PathBuf,
    },
    /// A spill file was written by another, incompatible format version.
    #[error("{} has spill format version {found}, this build reads version {expected}", path.display())]
    Version {
        /// The file.
        path: PathBuf,
        /// The version in the file's header.
        found: u32,
        /// The version this build writes and reads.
        expected: u32,
    },
    /// A spill file changed under the log in a way recovery cannot repair
    /// (a bad acknowledgement file, a record whose checksum fails after it
    /// was verified at open).
    #[error("{} is corrupt at byte {offset}: {reason}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The byte offset of the damage in the file.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// Appending would take the log over `max_disk_bytes`. Nothing was
    /// written; acknowledge records to make room.
    #[error(
        "spill log is full: appending needs {needed} bytes on disk, {free} of max_disk_bytes are free"
    )]
    Full {
        /// The file bytes the append needs (frame, plus a segment header when
        /// it opens a new segment).
        needed: u64,
        /// The bytes left under `max_disk_bytes`.
        free: u64,
    },
    /// A record can never be appended: larger than a frame holds
    /// (`u32::MAX` bytes) or than `max_disk_bytes` leaves room for.
    #[error("a spill record of {len} bytes is larger than the maximum of {max} bytes")]
    TooLarge {
        /// The payload's length.
        len: u64,
        /// The largest payload a frame holds.
        max: u64,
    },
    /// [`SpillLog::ack`](super::SpillLog::ack) was given a sequence number
    /// that was never appended.
    #[error("cannot acknowledge up to sequence {upto}: the highest appended is {highest}")]
    AckAhead {
        /// The sequence number given.
        upto: u64,
        /// The highest sequence number appended so far (0: none).
        highest: u64,
    },
    /// An I/O operation on a spill file failed (ENOSPC, EIO, permissions…).
    /// The log stays consistent: a partly written frame is cut back.
    #[error("spill I/O on {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
}

impl SpillError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        SpillError::Io {
            path: path.into(),
            source,
        }
    }
}

/// Why a [`Codec`](super::Codec) could not decode a spilled record.
///
/// # Examples
///
/// ```
/// use dispatcher::spill::{Codec, Raw};
///
/// let err = <Raw as Codec<String>>::decode(&Raw, &[0xff, 0xfe]).unwrap_err();
/// assert!(err.to_string().contains("UTF-8"));
/// ```
#[derive(Debug, thiserror::Error)]
#[error("cannot decode a spilled record: {reason}")]
pub struct DecodeError {
    reason: String,
    #[source]
    source: Option<Box<dyn StdError + Send + Sync + 'static>>,
}

impl DecodeError {
    /// An error with a reason only.
    ///
    /// # Examples
    ///
    /// ```
    /// let e = dispatcher::spill::DecodeError::new("record too short");
    /// assert!(e.to_string().ends_with("record too short"));
    /// ```
    pub fn new(reason: impl Into<String>) -> Self {
        DecodeError {
            reason: reason.into(),
            source: None,
        }
    }

    /// An error with a reason and the underlying error.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::error::Error;
    /// let utf8 = String::from_utf8(vec![0xff]).unwrap_err();
    /// let e = dispatcher::spill::DecodeError::with_source("not UTF-8", utf8);
    /// assert!(e.source().is_some());
    /// ```
    pub fn with_source(
        reason: impl Into<String>,
        source: impl StdError + Send + Sync + 'static,
    ) -> Self {
        DecodeError {
            reason: reason.into(),
            source: Some(Box::new(source)),
        }
    }

    /// The reason, without the source.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(dispatcher::spill::DecodeError::new("short").reason(), "short");
    /// ```
    pub fn reason(&self) -> &str {
        &self.reason
    }
}
