//! The store: [`SpillLog`].

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::time::Instant;

use super::ack;
use super::config::{Spill, SyncPolicy};
use super::error::SpillError;
use super::frame::{self, FRAME_HEADER_LEN, FrameHeader, MAX_PAYLOAD};
use super::lock::DirLock;
use super::recovery::{self, Recovered, SegmentMeta};
use super::segment::{self, HEADER_LEN, SegmentReader};
use super::stats::SpillStats;

/// Payloads up to this size are copied behind their frame header and
/// written with one `write`; larger ones are written in two, uncopied.
const COPY_LIMIT: usize = 64 * 1024;
/// The read buffer of `read_next` (a record larger than this is read
/// straight into its own allocation).
const READ_BUF: usize = 64 * 1024;

/// A durable, bounded log of records in a directory: the spill tier's
/// store.
///
/// Records are appended with [`append`](SpillLog::append), which returns
/// each one's sequence number (monotonic from 1, never reused, also across
/// reopens and after deletion), read back in order with
/// [`read_next`](SpillLog::read_next), and acknowledged with
/// [`ack`](SpillLog::ack), which deletes the segment files whose records
/// are all acknowledged. After a crash, [`open`](SpillLog::open) replays
/// everything after the last acknowledgement: delivery is at-least-once.
///
/// The directory holds the log's files only; see the module docs for its
/// layout and recovery rules. One `SpillLog` at a time per directory: it
/// holds an exclusive lock until dropped.
///
/// # Examples
///
/// ```
/// use dispatcher::spill::{Spill, SpillLog};
///
/// let dir = tempfile::tempdir()?;
/// let spill = Spill::new(dir.path());
/// let (mut log, _) = SpillLog::open(&spill)?;
/// let a = log.append(b"first")?;
/// let b = log.append(b"second")?;
/// assert_eq!(log.read_next()?, Some((a, b"first".to_vec())));
/// log.ack(a)?; // delivered
/// drop(log); // (or a crash)
///
/// let (mut log, recovered) = SpillLog::open(&spill)?;
/// assert_eq!(recovered.events, 1);
/// assert_eq!(log.read_next()?, Some((b, b"second".to_vec())));
/// assert_eq!(log.read_next()?, None);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct SpillLog {
    cfg: Spill,
    /// The segments on disk, in order. When `writer` is `Some`, the last
    /// one is the segment it appends to.
    segments: VecDeque<SegmentMeta>,
    writer: Option<File>,
    /// The writer's file may hold bytes past the last whole frame (a failed
    /// append whose truncation failed too): cut before the next append.
    dirty_tail: bool,
    scratch: Vec<u8>,
    reader: Option<Reader>,
    /// The sequence number `read_next` looks for next.
    read_seq: u64,
    acked: u64,
    next_seq: u64,
    disk_bytes: u64,
    unsynced: bool,
    dir_unsynced: bool,
    last_sync: Instant,
    stats: SpillStats,
    _lock: DirLock,
}

/// The read cursor inside one segment.
struct Reader {
    /// The segment's first sequence number (its identity).
    first_seq: u64,
    /// The sequence number of the record at the reader's position.
    seq: u64,
    inner: SegmentReader,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("first_seq", &self.first_seq)
            .field("seq", &self.seq)
            .field("pos", &self.inner.pos())
            .finish()
    }
}

impl SpillLog {
    /// Opens the log in `spill`'s directory (creating the directory if it
    /// is missing), takes its lock, and recovers what a crash left (see
    /// the module docs for the rules). The read cursor starts after the
    /// acknowledged point.
    ///
    /// # Errors
    ///
    /// - [`SpillError::Config`]: the settings are out of range.
    /// - [`SpillError::Locked`]: another `SpillLog` has the directory open.
    /// - [`SpillError::Foreign`]: the directory holds a file that is not the
    ///   log's (or is not a directory). Nothing is changed in it.
    /// - [`SpillError::Version`]: a file of another format version.
    /// - [`SpillError::Corrupt`]: a damaged segment header or ack file.
    /// - [`SpillError::Io`]: the directory or a file could not be read,
    ///   created or repaired.
    ///
    /// # Examples
    ///
    /// ```
    /// use dispatcher::spill::{Spill, SpillError, SpillLog};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let spill = Spill::new(dir.path().join("new"));
    /// let (_log, recovered) = SpillLog::open(&spill)?;
    /// assert_eq!(recovered.events, 0);
    /// assert!(matches!(SpillLog::open(&spill), Err(SpillError::Locked { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(spill: &Spill) -> Result<(SpillLog, Recovered), SpillError> {
        spill.validate()?;
        let dir = spill.dir.as_path();
        recovery::precheck(dir)?;
        // What this open creates, to take back if the directory is refused.
        let dir_existed = dir.exists();
        let lock_existed = dir.join(super::lock::LOCK_FILE).exists();
        std::fs::create_dir_all(dir).map_err(|e| SpillError::io(dir, e))?;
        let lock = DirLock::acquire(dir)?;
        let scan = match recovery::recover(dir) {
            Ok(scan) => scan,
            Err(refused) => {
                // A directory that is not ours (or not readable as ours) is
                // left as it was found (the lock file goes while still held).
                if !lock_existed {
                    let _ = std::fs::remove_file(dir.join(super::lock::LOCK_FILE));
                }
                drop(lock);
                if !dir_existed {
                    let _ = std::fs::remove_dir(dir);
                }
                return Err(refused);
            }
        };
        let disk_bytes = scan.segments.iter().map(|s| s.len).sum();
        let recovered = scan.recovered;
        let mut log = SpillLog {
            cfg: spill.clone(),
            segments: scan.segments,
            writer: None,
            dirty_tail: false,
            scratch: Vec::new(),
            reader: None,
            read_seq: scan.acked + 1,
            acked: scan.acked,
            next_seq: scan.next_seq,
            disk_bytes,
            unsynced: false,
            dir_unsynced: false,
            last_sync: Instant::now(),
            stats: SpillStats {
                max_disk_bytes: spill.max_disk_bytes,
                pending_events: recovered.events,
                unread_events: recovered.events,
                disk_bytes,
                ..SpillStats::default()
            },
            _lock: lock,
        };
        // Go on appending to the last segment if it ends where the next
        // record starts and has room.
        if let Some(last) = log.segments.back() {
            if last.end_seq == log.next_seq && last.len < spill.segment_bytes {
                let mut file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(&last.path)
                    .map_err(|e| SpillError::io(&last.path, e))?;
                file.seek(SeekFrom::Start(last.len))
                    .map_err(|e| SpillError::io(&last.path, e))?;
                log.writer = Some(file);
            }
        }
        Ok((log, recovered))
    }

    /// Appends one record and returns its sequence number.
    ///
    /// The frame is handed to the kernel with one `write` before this
    /// returns, so a process crash after it cannot lose the record; what a
    /// power failure can lose depends on the [`SyncPolicy`]. Under
    /// `Every(d)` this call syncs when `d` has passed since the last sync.
    /// When the current segment would grow past `segment_bytes` the log
    /// rolls to a new segment first (and, unless the policy is `Os`, syncs
    /// the old one).
    ///
    /// # Errors
    ///
    /// - [`SpillError::Full`]: the frame (and the header of a new segment)
    ///   would take the segments past `max_disk_bytes`. Nothing is written.
    /// - [`SpillError::TooLarge`]: the payload can never fit: longer than
    ///   `u32::MAX`, or than `max_disk_bytes` less a segment and a frame
    ///   header. Nothing is written.
    /// - [`SpillError::Io`]: writing failed (ENOSPC, EIO…). A partly
    ///   written frame is cut back, so the log stays as it was and later
    ///   appends and recovery work; the record was not appended. Also when
    ///   the sync this append triggered (roll, `Every`) failed: then the
    ///   record *was* appended (it will be read back) but its durability is
    ///   unknown; a retry appends it twice, which at-least-once allows.
    ///
    /// # Examples
    ///
    /// ```
    /// use dispatcher::spill::{Spill, SpillError};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let (mut log, _) = Spill::new(dir.path())
    ///     .segment_bytes(4096)
    ///     .max_disk_bytes(4096)
    ///     .open()?;
    /// assert_eq!(log.append(&[7; 1000])?, 1);
    /// assert_eq!(log.append(&[7; 1000])?, 2);
    /// let full = log.append(&[7; 4000]).unwrap_err();
    /// assert!(matches!(full, SpillError::Full { needed: 4032, free: 2056 }));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn append(&mut self, payload: &[u8]) -> Result<u64, SpillError> {
        let max = MAX_PAYLOAD.min(
            self.cfg
                .max_disk_bytes
                .saturating_sub(HEADER_LEN as u64 + FRAME_HEADER_LEN as u64),
        );
        if payload.len() as u64 > max {
            return Err(SpillError::TooLarge {
                len: payload.len() as u64,
                max,
            });
        }
        self.repair_tail()?;
        let frame_len = frame::frame_len(payload.len());
        let roll = match (&self.writer, self.segments.back()) {
            (Some(_), Some(active)) => {
                active.len > HEADER_LEN as u64 && active.len + frame_len > self.cfg.segment_bytes
            }
            _ => true,
        };
        let needed = frame_len + if roll { HEADER_LEN as u64 } else { 0 };
        let free = self.cfg.max_disk_bytes.saturating_sub(self.disk_bytes);
        if needed > free {
            return Err(SpillError::Full { needed, free });
        }
        if roll {
            self.roll()?;
        }
        let active = self.segments.back_mut().expect("an active segment");
        let writer = self.writer.as_mut().expect("a writer");
        let written = if payload.len() <= COPY_LIMIT {
            self.scratch.clear();
            frame::encode(payload, &mut self.scratch);
            writer.write_all(&self.scratch)
        } else {
            let mut head = [0u8; FRAME_HEADER_LEN];
            head[..4].copy_from_slice(&(payload.len() as u32).to_le_bytes());
            head[4..].copy_from_slice(&frame::checksum(payload).to_le_bytes());
            writer
                .write_all(&head)
                .and_then(|()| writer.write_all(payload))
        };
        if let Err(e) = written {
            let path = active.path.clone();
            let len = active.len;
            // Cut back whatever part of the frame reached the file.
            if writer
                .set_len(len)
                .and_then(|()| writer.seek(SeekFrom::Start(len)).map(drop))
                .is_err()
            {
                self.dirty_tail = true;
            }
            return Err(SpillError::io(path, e));
        }
        active.len += frame_len;
        active.end_seq += 1;
        let seq = self.next_seq;
        self.next_seq += 1;
        self.disk_bytes += frame_len;
        self.unsynced = true;
        self.stats.spilled_events += 1;
        self.stats.spilled_bytes += payload.len() as u64;
        self.stats.pending_events += 1;
        self.stats.unread_events += 1;
        self.sync_if_due()?;
        Ok(seq)
    }

    /// Cuts bytes a failed append left past the last whole frame.
    fn repair_tail(&mut self) -> Result<(), SpillError> {
        if !self.dirty_tail {
            return Ok(());
        }
        let (Some(writer), Some(active)) = (self.writer.as_mut(), self.segments.back()) else {
            self.dirty_tail = false;
            return Ok(());
        };
        writer
            .set_len(active.len)
            .and_then(|()| writer.seek(SeekFrom::Start(active.len)).map(drop))
            .map_err(|e| SpillError::io(&active.path, e))?;
        self.dirty_tail = false;
        Ok(())
    }

    /// Closes the active segment (syncing it unless the policy is `Os`)
    /// and starts one at `next_seq`.
    fn roll(&mut self) -> Result<(), SpillError> {
        if let Some(old) = self.writer.take() {
            if self.cfg.sync != SyncPolicy::Os && self.unsynced {
                let path = &self.segments.back().expect("active segment").path;
                old.sync_data().map_err(|e| SpillError::io(path, e))?;
            }
        }
        let (file, path) = segment::create(&self.cfg.dir, self.next_seq)?;
        self.segments.push_back(SegmentMeta {
            first_seq: self.next_seq,
            end_seq: self.next_seq,
            len: HEADER_LEN as u64,
            path,
        });
        self.writer = Some(file);
        self.disk_bytes += HEADER_LEN as u64;
        self.dir_unsynced = true;
        self.unsynced = true;
        Ok(())
    }

    /// Forces everything appended so far to the device (`fdatasync` of the
    /// active segment, and `fsync` of the directory when segments were
    /// created since the last sync). Under [`SyncPolicy::EveryBatch`] call
    /// it after each batch of appends; the batch is durable once it
    /// returns. Works under every policy.
    ///
    /// # Errors
    ///
    /// [`SpillError::Io`] when the sync fails; whether the appended records
    /// reached the device is then unknown (they are still read back while
    /// the process runs).
    ///
    /// # Examples
    ///
    /// ```
    /// use dispatcher::spill::{Spill, SyncPolicy};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let (mut log, _) = Spill::new(dir.path()).sync(SyncPolicy::EveryBatch).open()?;
    /// for i in 0..100u32 {
    ///     log.append(&i.to_le_bytes())?;
    /// }
    /// log.sync()?; // the batch is durable
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn sync(&mut self) -> Result<(), SpillError> {
        if self.unsynced {
            if let (Some(w), Some(active)) = (&self.writer, self.segments.back()) {
                w.sync_data().map_err(|e| SpillError::io(&active.path, e))?;
            }
            self.unsynced = false;
        }
        if self.dir_unsynced {
            segment::sync_dir(&self.cfg.dir)?;
            self.dir_unsynced = false;
        }
        self.last_sync = Instant::now();
        Ok(())
    }

    /// Syncs if the policy is `Every(d)`, something is unsynced, and `d`
    /// has passed since the last sync; otherwise does nothing. Appends call
    /// it; call it from a timer too if appends may pause (see
    /// [`SyncPolicy::Every`]).
    ///
    /// # Errors
    ///
    /// As [`sync`](SpillLog::sync).
    ///
    /// # Examples
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let (mut log, _) = dispatcher::spill::Spill::new(dir.path()).open()?;
    /// log.append(b"x")?;
    /// log.sync_if_due()?; // nothing yet: 100 ms have not passed
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn sync_if_due(&mut self) -> Result<(), SpillError> {
        if let SyncPolicy::Every(d) = self.cfg.sync {
            if (self.unsynced || self.dir_unsynced) && self.last_sync.elapsed() >= d {
                self.sync()?;
            }
        }
        Ok(())
    }

    /// Returns the next record after the read cursor, in sequence order,
    /// or `None` when every record appended so far has been read. Reading
    /// does not acknowledge: a record read but not acknowledged is read
    /// again after the next open. Records acknowledged before they were
    /// read are skipped.
    ///
    /// Reading allocates the record's length, after checking it against
    /// the bytes the segment holds.
    ///
    /// # Errors
    ///
    /// - [`SpillError::Corrupt`]: a frame verified at open (or appended
    ///   since) fails its checks now: the file was changed under the log.
    /// - [`SpillError::Io`]: reading failed.
    ///
    /// # Examples
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let (mut log, _) = dispatcher::spill::Spill::new(dir.path()).open()?;
    /// assert_eq!(log.read_next()?, None);
    /// log.append(b"a")?;
    /// assert_eq!(log.read_next()?, Some((1, b"a".to_vec())));
    /// assert_eq!(log.read_next()?, None);
    /// log.append(b"b")?;
    /// assert_eq!(log.read_next()?, Some((2, b"b".to_vec())));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read_next(&mut self) -> Result<Option<(u64, Vec<u8>)>, SpillError> {
        loop {
            if self.reader.is_none() && !self.position_reader()? {
                return Ok(None);
            }
            let reader = self.reader.as_mut().expect("positioned");
            let idx = self
                .segments
                .binary_search_by_key(&reader.first_seq, |s| s.first_seq)
                .expect("the reader's segment is on disk");
            let seg = &self.segments[idx];
            if reader.seq >= seg.end_seq {
                if idx + 1 == self.segments.len() {
                    return Ok(None);
                }
                self.read_seq = self.read_seq.max(seg.end_seq);
                self.reader = None;
                continue;
            }
            reader.inner.set_limit(seg.len);
            let payload = read_frame(&mut reader.inner, &seg.path)?;
            let seq = reader.seq;
            reader.seq += 1;
            self.read_seq = seq + 1;
            self.stats.replayed_events += 1;
            self.stats.unread_events -= 1;
            return Ok(Some((seq, payload)));
        }
    }

    /// Places the reader at the first record with a sequence number at or
    /// after `read_seq`; `false` when there is none yet.
    fn position_reader(&mut self) -> Result<bool, SpillError> {
        let idx = self
            .segments
            .partition_point(|s| s.end_seq <= self.read_seq);
        let Some(seg) = self.segments.get(idx) else {
            return Ok(false);
        };
        let io = |e| SpillError::io(&seg.path, e);
        let file = File::open(&seg.path).map_err(io)?;
        let mut inner =
            SegmentReader::new(file, HEADER_LEN as u64, seg.len, READ_BUF).map_err(io)?;
        let mut seq = seg.first_seq;
        while seq < self.read_seq {
            let h = read_header(&mut inner, &seg.path)?;
            inner.skip(u64::from(h.len)).map_err(io)?;
            seq += 1;
        }
        self.read_seq = seq;
        self.reader = Some(Reader {
            first_seq: seg.first_seq,
            seq,
            inner,
        });
        Ok(true)
    }

    /// Acknowledges every record with a sequence number up to `upto`: it
    /// is never read again, in this open or after a reopen. The
    /// acknowledgement is made durable (the `ack` file is replaced
    /// atomically, with `fsync`) before the segment files whose records
    /// are all acknowledged are deleted. An `upto` at or below the current
    /// acknowledgement does nothing.
    ///
    /// # Errors
    ///
    /// - [`SpillError::AckAhead`]: `upto` was never appended. Nothing changes.
    /// - [`SpillError::Io`]: writing the `ack` file failed even after the
    ///   segments it frees were deleted (a full disk may have no room for
    ///   the new file until then): the acknowledgement stands in this log
    ///   but is not durable, so a crash before the next successful `ack`
    ///   replays records at or below `upto` still on disk (at least once,
    ///   never a loss); or deleting a segment failed (the acknowledgement
    ///   stands; the deletion is retried by the next `ack` and at open).
    ///
    /// # Examples
    ///
    /// ```
    /// use dispatcher::spill::{Spill, SpillError};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let (mut log, _) = Spill::new(dir.path()).open()?;
    /// let a = log.append(b"a")?;
    /// let b = log.append(b"b")?;
    /// log.ack(a)?;
    /// assert_eq!(log.stats().pending_events, 1);
    /// log.ack(a)?; // no-op
    /// assert!(matches!(log.ack(b + 1), Err(SpillError::AckAhead { upto: 3, highest: 2 })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn ack(&mut self, upto: u64) -> Result<(), SpillError> {
        if upto <= self.acked {
            return Ok(());
        }
        if upto >= self.next_seq {
            return Err(SpillError::AckAhead {
                upto,
                highest: self.next_seq - 1,
            });
        }
        let written = ack::write(&self.cfg.dir, upto);
        let old = self.acked;
        self.acked = upto;
        // Recount what left the pending and unread sets.
        let (mut pending_gone, mut unread_gone) = (0, 0);
        for seg in &self.segments {
            if seg.first_seq > upto {
                break;
            }
            pending_gone += overlap(seg, old + 1, upto + 1);
            unread_gone += overlap(seg, self.read_seq, upto + 1);
        }
        self.stats.pending_events -= pending_gone;
        self.stats.unread_events -= unread_gone;
        if self.read_seq <= upto {
            self.read_seq = upto + 1;
            self.reader = None;
        }
        self.delete_acked()?;
        // A full disk may have had no room for the new ack file: the
        // segments just deleted (their records were all delivered) made
        // some. Until it is written, a crash replays records at or below
        // `upto` still on disk: at least once, never a loss.
        written.or_else(|first| ack::write(&self.cfg.dir, upto).map_err(|_| first))
    }

    /// Deletes the segments whose records are all acknowledged.
    fn delete_acked(&mut self) -> Result<(), SpillError> {
        while let Some(front) = self.segments.front() {
            if front.end_seq > self.acked + 1 {
                break;
            }
            let is_active = self.segments.len() == 1 && self.writer.is_some();
            if is_active {
                if front.end_seq != self.next_seq {
                    break;
                }
                self.writer = None;
                self.dirty_tail = false;
                self.unsynced = false;
            }
            if self
                .reader
                .as_ref()
                .is_some_and(|r| r.first_seq == front.first_seq)
            {
                self.reader = None;
            }
            std::fs::remove_file(&front.path).map_err(|e| SpillError::io(&front.path, e))?;
            self.disk_bytes -= front.len;
            self.segments.pop_front();
        }
        Ok(())
    }

    /// The log's counters.
    ///
    /// # Examples
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let (log, _) = dispatcher::spill::Spill::new(dir.path()).max_disk_bytes(1 << 26).open()?;
    /// assert_eq!(log.stats().max_disk_bytes, 1 << 26);
    /// assert_eq!(log.stats().disk_bytes, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stats(&self) -> SpillStats {
        SpillStats {
            disk_bytes: self.disk_bytes,
            ..self.stats
        }
    }

    /// The settings the log was opened with.
    ///
    /// # Examples
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let (log, _) = dispatcher::spill::Spill::new(dir.path()).max_disk_bytes(1 << 40).open()?;
    /// assert_eq!(log.settings().max_disk_bytes_limit(), 1 << 40);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn settings(&self) -> &Spill {
        &self.cfg
    }

    /// The highest acknowledged sequence number (0: none).
    ///
    /// # Examples
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let (mut log, _) = dispatcher::spill::Spill::new(dir.path()).open()?;
    /// let s = log.append(b"x")?;
    /// log.ack(s)?;
    /// assert_eq!(log.acked(), s);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn acked(&self) -> u64 {
        self.acked
    }

    /// The sequence number the next append gets.
    ///
    /// # Examples
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let (mut log, _) = dispatcher::spill::Spill::new(dir.path()).open()?;
    /// assert_eq!(log.next_seq(), 1);
    /// log.append(b"x")?;
    /// assert_eq!(log.next_seq(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The directory.
    ///
    /// # Examples
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let (log, _) = dispatcher::spill::Spill::new(dir.path()).open()?;
    /// assert_eq!(log.dir(), dir.path());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn dir(&self) -> &std::path::Path {
        &self.cfg.dir
    }

    /// The segment files on disk, oldest first (for tests and tools).
    ///
    /// # Examples
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let (mut log, _) = dispatcher::spill::Spill::new(dir.path()).open()?;
    /// log.append(b"x")?;
    /// assert!(log.segment_paths()[0].ends_with("00000000000000000001.seg"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn segment_paths(&self) -> Vec<PathBuf> {
        self.segments.iter().map(|s| s.path.clone()).collect()
    }
}

/// How many records of `seg` are in `[from, to)`.
fn overlap(seg: &SegmentMeta, from: u64, to: u64) -> u64 {
    let lo = seg.first_seq.max(from);
    let hi = seg.end_seq.min(to);
    hi.saturating_sub(lo)
}

fn read_header(r: &mut SegmentReader, path: &std::path::Path) -> Result<FrameHeader, SpillError> {
    let offset = r.pos();
    if r.remaining() < FRAME_HEADER_LEN as u64 {
        return Err(SpillError::Corrupt {
            path: path.into(),
            offset,
            reason: "a frame header is cut short".into(),
        });
    }
    let mut h = [0u8; FRAME_HEADER_LEN];
    r.read_exact(&mut h).map_err(|e| SpillError::io(path, e))?;
    let h = FrameHeader::parse(h);
    if u64::from(h.len) > r.remaining() {
        return Err(SpillError::Corrupt {
            path: path.into(),
            offset,
            reason: format!(
                "a frame's length {} is more than the {} bytes left",
                h.len,
                r.remaining()
            ),
        });
    }
    Ok(h)
}

fn read_frame(r: &mut SegmentReader, path: &std::path::Path) -> Result<Vec<u8>, SpillError> {
    let offset = r.pos();
    let h = read_header(r, path)?;
    let mut payload = vec![0u8; h.len as usize];
    r.read_exact(&mut payload)
        .map_err(|e| SpillError::io(path, e))?;
    if frame::checksum(&payload) != h.checksum {
        return Err(SpillError::Corrupt {
            path: path.into(),
            offset,
            reason: "a frame's checksum does not match its payload".into(),
        });
    }
    Ok(payload)
}

impl Drop for SpillLog {
    /// Syncs unless the policy is `Os` (errors are ignored: call
    /// [`sync`](SpillLog::sync) first to see them), then releases the lock.
    fn drop(&mut self) {
        if self.cfg.sync != SyncPolicy::Os {
            let _ = self.sync();
        }
    }
}
