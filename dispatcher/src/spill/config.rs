//! The spill log's settings: [`Spill`] and [`SyncPolicy`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::error::SpillError;
use super::segment::HEADER_LEN;

/// When appended records are forced from the kernel's page cache to the
/// device (`fsync`).
///
/// Every append is one `write` system call that completes before
/// [`SpillLog::append`](super::SpillLog::append) returns, so under **every**
/// policy a *process* crash (panic, abort, `SIGKILL`, OOM kill) loses
/// nothing that was appended: the bytes are in the kernel's page cache and
/// the next open finds them. The policies differ on *power failure* (or a
/// kernel crash), which loses what the kernel had not yet written back:
///
/// | policy | lost on power failure |
/// | --- | --- |
/// | `EveryBatch` | nothing that was appended before the last [`sync`](super::SpillLog::sync) returned |
/// | `Every(d)` | at most the appends of the last `d` (while appends continue; see below) |
/// | `Os` | whatever the kernel had not flushed: typically up to ~30 s of appends (Linux `dirty_expire_centisecs`), more on a busy device |
///
/// A power failure can also tear the last frame written; recovery cuts it
/// off (see [`Recovered`](super::Recovered)). Acknowledgements are always
/// written with `fsync` whatever the policy, so an acknowledged record is
/// never delivered again after a power failure unless its acknowledgement
/// itself was lost (then it is replayed: at-least-once).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use dispatcher::spill::{Spill, SyncPolicy};
///
/// let s = Spill::new("/var/spool/app").sync(SyncPolicy::Every(Duration::from_millis(50)));
/// assert_eq!(s.sync_policy(), SyncPolicy::Every(Duration::from_millis(50)));
/// assert_eq!(Spill::new("x").sync_policy(), SyncPolicy::Every(Duration::from_millis(100)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SyncPolicy {
    /// The log never syncs on its own; the caller calls
    /// [`SpillLog::sync`](super::SpillLog::sync) after each batch of appends
    /// (and only treats the batch as durable once it returned). Segments
    /// are still synced when the log rolls past them.
    EveryBatch,
    /// An append syncs when `d` or more has passed since the last sync.
    /// There is no background thread: when appends stop, the last ones stay
    /// unsynced until the next append,
    /// [`sync_if_due`](super::SpillLog::sync_if_due), [`sync`](super::SpillLog::sync)
    /// or drop, so call `sync_if_due` from a timer if idle periods matter.
    Every(Duration),
    /// Never sync; leave write-back to the kernel. Not even on roll or drop.
    Os,
}

/// Settings of a spill log, and the builder that opens one.
///
/// | setting | default | allowed |
/// | --- | --- | --- |
/// | [`max_disk_bytes`](Spill::max_disk_bytes) | 1 GiB | ≥ `segment_bytes` |
/// | [`segment_bytes`](Spill::segment_bytes) | 64 MiB | 4 KiB ..= 1 TiB |
/// | [`sync`](Spill::sync) | `Every(100 ms)` | `Every(d)` with `d > 0` |
///
/// # Examples
///
/// ```
/// use dispatcher::spill::{Spill, SpillLog, SyncPolicy};
///
/// let dir = tempfile::tempdir()?;
/// let (mut log, recovered) = Spill::new(dir.path().join("spill"))
///     .max_disk_bytes(16 << 20)
///     .segment_bytes(1 << 20)
///     .sync(SyncPolicy::Os)
///     .open()?;
/// assert_eq!(recovered.events, 0);
/// let seq = log.append(b"hello")?;
/// assert_eq!(log.read_next()?, Some((seq, b"hello".to_vec())));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Spill {
    pub(crate) dir: PathBuf,
    pub(crate) max_disk_bytes: u64,
    pub(crate) segment_bytes: u64,
    pub(crate) sync: SyncPolicy,
    pub(crate) write_ahead: bool,
}

/// The smallest `segment_bytes`: 4 KiB.
///
/// # Examples
///
/// ```
/// use dispatcher::spill::{MIN_SEGMENT_BYTES, Spill};
/// assert!(Spill::new("d").segment_bytes(MIN_SEGMENT_BYTES).max_disk_bytes(1 << 20).validate().is_ok());
/// assert!(Spill::new("d").segment_bytes(MIN_SEGMENT_BYTES - 1).validate().is_err());
/// ```
pub const MIN_SEGMENT_BYTES: u64 = 4 * 1024;
/// The largest `segment_bytes`: 1 TiB.
///
/// # Examples
///
/// ```
/// use dispatcher::spill::{MAX_SEGMENT_BYTES, Spill};
/// assert!(Spill::new("d").segment_bytes(MAX_SEGMENT_BYTES + 1).validate().is_err());
/// ```
pub const MAX_SEGMENT_BYTES: u64 = 1 << 40;

impl Spill {
    /// Settings for a log in `dir` (created on open if missing), with the
    /// defaults above.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = dispatcher::spill::Spill::new("/tmp/spill");
    /// assert_eq!(s.dir(), std::path::Path::new("/tmp/spill"));
    /// assert_eq!(s.max_disk_bytes_limit(), 1 << 30);
    /// ```
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Spill {
            dir: dir.into(),
            max_disk_bytes: 1 << 30,
            segment_bytes: 64 << 20,
            sync: SyncPolicy::Every(Duration::from_millis(100)),
            write_ahead: false,
        }
    }

    /// For a dispatcher's disk tier ([`Builder::spill`](crate::Builder::spill)):
    /// send every event through the disk, not only those that do not fit
    /// in memory (default `false`: overflow only).
    ///
    /// With overflow only, a crash loses the events that were in memory
    /// and nowhere else; write-ahead loses none of the events whose append
    /// reached the kernel (a process crash) or the device (a power failure
    /// after a sync, see [`SyncPolicy`]), at the cost of writing and
    /// reading every event.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = dispatcher::spill::Spill::new("d").write_ahead(true);
    /// assert!(s.is_write_ahead());
    /// ```
    pub fn write_ahead(mut self, every_event: bool) -> Self {
        self.write_ahead = every_event;
        self
    }

    /// Whether [`write_ahead`](Spill::write_ahead) is on.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!dispatcher::spill::Spill::new("d").is_write_ahead());
    /// ```
    pub fn is_write_ahead(&self) -> bool {
        self.write_ahead
    }

    /// The most file bytes the log's segments may take on disk, headers and
    /// frame headers included. An append that would exceed it fails with
    /// [`SpillError::Full`] and writes nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = dispatcher::spill::Spill::new("d").max_disk_bytes(8 << 20);
    /// assert_eq!(s.max_disk_bytes_limit(), 8 << 20);
    /// ```
    pub fn max_disk_bytes(mut self, bytes: u64) -> Self {
        self.max_disk_bytes = bytes;
        self
    }

    /// The size at which the log starts a new segment file. A segment holds
    /// at least one record, so a record larger than this gets a segment of
    /// its own. Acknowledged records are deleted a whole segment at a time,
    /// so smaller segments free disk sooner, larger ones mean fewer files.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = dispatcher::spill::Spill::new("d").segment_bytes(1 << 20);
    /// assert_eq!(s.segment_bytes_limit(), 1 << 20);
    /// ```
    pub fn segment_bytes(mut self, bytes: u64) -> Self {
        self.segment_bytes = bytes;
        self
    }

    /// The [`SyncPolicy`].
    ///
    /// # Examples
    ///
    /// ```
    /// use dispatcher::spill::{Spill, SyncPolicy};
    /// assert_eq!(Spill::new("d").sync(SyncPolicy::Os).sync_policy(), SyncPolicy::Os);
    /// ```
    pub fn sync(mut self, policy: SyncPolicy) -> Self {
        self.sync = policy;
        self
    }

    /// The directory.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(dispatcher::spill::Spill::new("d").dir(), std::path::Path::new("d"));
    /// ```
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The configured `max_disk_bytes`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(dispatcher::spill::Spill::new("d").max_disk_bytes_limit(), 1 << 30);
    /// ```
    pub fn max_disk_bytes_limit(&self) -> u64 {
        self.max_disk_bytes
    }

    /// The configured `segment_bytes`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(dispatcher::spill::Spill::new("d").segment_bytes_limit(), 64 << 20);
    /// ```
    pub fn segment_bytes_limit(&self) -> u64 {
        self.segment_bytes
    }

    /// The configured [`SyncPolicy`].
    ///
    /// # Examples
    ///
    /// ```
    /// use dispatcher::spill::{Spill, SyncPolicy};
    /// assert!(matches!(Spill::new("d").sync_policy(), SyncPolicy::Every(_)));
    /// ```
    pub fn sync_policy(&self) -> SyncPolicy {
        self.sync
    }

    /// Checks the settings without touching the disk.
    ///
    /// # Errors
    ///
    /// [`SpillError::Config`] naming the setting, the value given and the
    /// allowed range: `segment_bytes` outside 4 KiB ..= 1 TiB,
    /// `max_disk_bytes` below `segment_bytes`, `Every(Duration::ZERO)`.
    ///
    /// # Examples
    ///
    /// ```
    /// use dispatcher::spill::Spill;
    /// assert!(Spill::new("d").validate().is_ok());
    /// let e = Spill::new("d").segment_bytes(1 << 20).max_disk_bytes(1000).validate().unwrap_err();
    /// assert_eq!(
    ///     e.to_string(),
    ///     "spill setting max_disk_bytes = 1000 is out of range: at least segment_bytes (1048576)"
    /// );
    /// ```
    pub fn validate(&self) -> Result<(), SpillError> {
        if !(MIN_SEGMENT_BYTES..=MAX_SEGMENT_BYTES).contains(&self.segment_bytes) {
            return Err(SpillError::Config {
                setting: "segment_bytes",
                given: self.segment_bytes.to_string(),
                allowed: format!("{MIN_SEGMENT_BYTES} ..= {MAX_SEGMENT_BYTES}"),
            });
        }
        if self.max_disk_bytes < self.segment_bytes {
            return Err(SpillError::Config {
                setting: "max_disk_bytes",
                given: self.max_disk_bytes.to_string(),
                allowed: format!("at least segment_bytes ({})", self.segment_bytes),
            });
        }
        if self.sync == SyncPolicy::Every(Duration::ZERO) {
            return Err(SpillError::Config {
                setting: "sync",
                given: "Every(0s)".into(),
                allowed: "Every(d) with d > 0 (use EveryBatch to sync on demand)".into(),
            });
        }
        debug_assert!(MIN_SEGMENT_BYTES > HEADER_LEN as u64);
        Ok(())
    }

    /// Opens (or creates) the log; the same as
    /// [`SpillLog::open(&self)`](super::SpillLog::open).
    ///
    /// # Errors
    ///
    /// As [`SpillLog::open`](super::SpillLog::open).
    ///
    /// # Examples
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let (log, recovered) = dispatcher::spill::Spill::new(dir.path()).open()?;
    /// assert_eq!(log.stats().pending_events, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(&self) -> Result<(super::SpillLog, super::Recovered), SpillError> {
        super::SpillLog::open(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_value_and_range() {
        let e = Spill::new("d").segment_bytes(4095).validate().unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("segment_bytes = 4095"), "{msg}");
        assert!(msg.contains("4096 ..= "), "{msg}");
        assert!(
            Spill::new("d")
                .segment_bytes(MIN_SEGMENT_BYTES)
                .max_disk_bytes(MIN_SEGMENT_BYTES)
                .validate()
                .is_ok()
        );
        let e = Spill::new("d")
            .sync(SyncPolicy::Every(Duration::ZERO))
            .validate()
            .unwrap_err();
        assert!(e.to_string().contains("Every(0s)"));
    }
}
