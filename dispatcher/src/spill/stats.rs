//! Counters of a spill log.

/// A snapshot of a [`SpillLog`](super::SpillLog)'s counters, from
/// [`SpillLog::stats`](super::SpillLog::stats).
///
/// `spilled_*` and `replayed_events` count since this open; the others
/// describe the log as it is.
///
/// # Examples
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let (mut log, _) = dispatcher::spill::Spill::new(dir.path()).open()?;
/// log.append(b"abc")?;
/// log.append(b"de")?;
/// log.read_next()?;
/// let s = log.stats();
/// assert_eq!((s.spilled_events, s.spilled_bytes), (2, 5));
/// assert_eq!((s.replayed_events, s.pending_events, s.unread_events), (1, 2, 1));
/// assert_eq!(s.disk_bytes, 24 + 8 + 3 + 8 + 2); // segment header, two frames
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SpillStats {
    /// Records appended since open.
    pub spilled_events: u64,
    /// Payload bytes appended since open.
    pub spilled_bytes: u64,
    /// Records returned by `read_next` since open.
    pub replayed_events: u64,
    /// File bytes of the segments on disk (headers and frames included).
    pub disk_bytes: u64,
    /// The configured limit of `disk_bytes`.
    pub max_disk_bytes: u64,
    /// Records on disk not yet acknowledged (appended or recovered).
    pub pending_events: u64,
    /// Records on disk after the read cursor (not yet returned by
    /// `read_next` since open, nor skipped by an acknowledgement).
    pub unread_events: u64,
}
