//! Opening a directory: what is in it, and repairing what a crash left.
//! The rules are on [`Recovered`].

use std::collections::VecDeque;
use std::fs::{self, OpenOptions};
use std::io::Read;
use std::path::{Path, PathBuf};

use super::ack::{self, ACK_FILE, ACK_TMP};
use super::error::SpillError;
use super::frame::{self, FRAME_HEADER_LEN, FrameHeader};
use super::lock::LOCK_FILE;
use super::segment::{self, HEADER_LEN, HeaderCheck, SegmentReader};

/// What [`SpillLog::open`](super::SpillLog::open) found and repaired.
///
/// # Recovery rules
///
/// In order:
///
/// 1. Every entry must be ours: `lock`, `ack`, `ack.tmp`, or a segment file
///    name. Anything else (a file, a directory, a link) is
///    [`SpillError::Foreign`] and nothing is changed. This check runs before
///    the lock file is created, so a foreign directory is left untouched.
/// 2. `ack.tmp` (an acknowledgement interrupted before its rename) is
///    removed; `ack` gives the acknowledged sequence number (0: none).
/// 3. Segments are read in sequence order. A segment whose header is cut
///    short (a crash while creating it) holds no record and is removed; a
///    wrong magic is `Foreign`, a wrong version `Version`, a damaged header
///    `Corrupt`: an error, never a guess.
/// 4. Every frame of every segment is checked: its length against the bytes
///    left in the file (so a length of `0xFFFF_FFFF` allocates nothing) and
///    its checksum. At the first frame that fails, the segment is truncated
///    to the last good frame; that is one *torn record* and the bytes cut
///    are *truncated bytes*. What came after it in that segment is lost
///    (a length field cannot be trusted past a bad frame).
/// 5. Later segments are checked the same way and kept (up to their own
///    first bad frame, if any) when they start after the previous one
///    ends: at-least-once prefers keeping intact records to a gap-free
///    sequence. The sequence numbers of the records cut out are
///    skipped, never reused. Segments overlapping a previous one can only be
///    made by hand: `Corrupt`.
/// 6. Segments whose records are all acknowledged are removed (an
///    acknowledgement's removals interrupted by a crash).
///
/// The next sequence number is the highest of: one past the last record,
/// one past the acknowledged one, the first sequence of any segment seen,
/// and, when the last segment was truncated, one past the most records its
/// cut bytes could have held (one per 8 bytes, plus one): sequence numbers
/// are never given twice, even to a record lost in a torn tail. A log that resumes
/// after a gap starts a new segment at the next sequence number.
///
/// # Examples
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let spill = dispatcher::spill::Spill::new(dir.path());
/// let (mut log, _) = spill.open()?;
/// log.append(b"kept")?;
/// drop(log);
/// let (_log, recovered) = spill.open()?;
/// assert_eq!((recovered.events, recovered.bytes), (1, 4));
/// assert_eq!((recovered.torn_records, recovered.truncated_bytes), (0, 0));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Recovered {
    /// Records after the acknowledged point, to be read again.
    pub events: u64,
    /// Their payload bytes.
    pub bytes: u64,
    /// Frames found torn (cut short) or failing their checksum; each
    /// truncated its segment.
    pub torn_records: u64,
    /// Bytes cut from segments (torn frames, what followed them in their
    /// segment, and segments with a torn header).
    pub truncated_bytes: u64,
}

/// One segment on disk.
#[derive(Debug, Clone)]
pub(crate) struct SegmentMeta {
    /// Its first record's sequence number (and its name).
    pub(crate) first_seq: u64,
    /// One past its last record's sequence number.
    pub(crate) end_seq: u64,
    /// Its length in bytes: the header and whole frames.
    pub(crate) len: u64,
    pub(crate) path: PathBuf,
}

/// The state of a directory after recovery.
#[derive(Debug)]
pub(crate) struct Scan {
    pub(crate) segments: VecDeque<SegmentMeta>,
    pub(crate) acked: u64,
    pub(crate) next_seq: u64,
    pub(crate) recovered: Recovered,
}

enum Entry {
    Segment(u64, PathBuf),
    AckTmp(PathBuf),
    Other,
}

/// Lists `dir`, refusing anything that is not ours.
fn list(dir: &Path) -> Result<Vec<Entry>, SpillError> {
    let mut out = Vec::new();
    let entries = fs::read_dir(dir).map_err(|e| SpillError::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| SpillError::io(dir, e))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(|e| SpillError::io(&path, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            return Err(SpillError::Foreign { path });
        };
        if !kind.is_file() {
            return Err(SpillError::Foreign { path });
        }
        match name {
            LOCK_FILE | ACK_FILE => out.push(Entry::Other),
            ACK_TMP => out.push(Entry::AckTmp(path)),
            _ => match segment::parse_name(name) {
                Some(seq) => out.push(Entry::Segment(seq, path)),
                None => return Err(SpillError::Foreign { path }),
            },
        }
    }
    Ok(out)
}

/// Checks, before anything is created in it, that `dir` holds only spill
/// files (or is missing or empty).
pub(crate) fn precheck(dir: &Path) -> Result<(), SpillError> {
    // The directory itself may be a symbolic link to one.
    match fs::metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(SpillError::io(dir, e)),
        Ok(m) if !m.is_dir() => Err(SpillError::Foreign { path: dir.into() }),
        Ok(_) => list(dir).map(drop),
    }
}

/// Recovers `dir`, which the caller has locked.
pub(crate) fn recover(dir: &Path) -> Result<Scan, SpillError> {
    let mut segments = Vec::new();
    for entry in list(dir)? {
        match entry {
            Entry::Segment(seq, path) => segments.push((seq, path)),
            Entry::AckTmp(path) => {
                let mut head = [0u8; 8];
                let n = fs::File::open(&path)
                    .and_then(|mut f| f.read(&mut head))
                    .map_err(|e| SpillError::io(&path, e))?;
                if !ack::looks_like_ack(&head[..n]) {
                    return Err(SpillError::Foreign { path });
                }
                fs::remove_file(&path).map_err(|e| SpillError::io(&path, e))?;
            }
            Entry::Other => {}
        }
    }
    segments.sort_unstable_by_key(|(seq, _)| *seq);
    let acked = ack::read(dir)?;

    let mut recovered = Recovered::default();
    let mut kept = VecDeque::with_capacity(segments.len());
    let mut next_seq = acked.saturating_add(1);
    let mut prev_end = 0u64;
    let mut changed = false;
    let mut tail_bound = 0u64;
    for (first_seq, path) in segments {
        if first_seq < prev_end || first_seq == 0 {
            return Err(SpillError::Corrupt {
                path,
                offset: 0,
                reason: format!(
                    "the segment starts at sequence {first_seq}, inside the previous one (which ends before {prev_end})"
                ),
            });
        }
        next_seq = next_seq.max(first_seq);
        let cut_before = recovered.truncated_bytes;
        let Some(meta) = scan_segment(&path, first_seq, &mut recovered, acked)? else {
            changed = true;
            continue;
        };
        prev_end = meta.end_seq;
        next_seq = next_seq.max(meta.end_seq);
        let cut = recovered.truncated_bytes - cut_before;
        // The bytes cut held at most one record per frame header's worth
        // of bytes (plus a partial one). A later segment bounds the
        // sequence numbers lost; past the last one, skip that many so none
        // that was handed out is given again.
        tail_bound = if cut > 0 {
            meta.end_seq
                .saturating_add(cut / FRAME_HEADER_LEN as u64 + 1)
        } else {
            0
        };
        if meta.end_seq <= acked.saturating_add(1) {
            // Every record acknowledged: an interrupted acknowledgement.
            fs::remove_file(&meta.path).map_err(|e| SpillError::io(&meta.path, e))?;
            changed = true;
            continue;
        }
        kept.push_back(meta);
    }
    next_seq = next_seq.max(tail_bound);
    if changed || recovered.truncated_bytes > 0 {
        segment::sync_dir(dir)?;
    }
    Ok(Scan {
        segments: kept,
        acked,
        next_seq,
        recovered,
    })
}

/// Verifies one segment, truncating it at its first bad frame. `None` when
/// its header was torn and it was removed.
fn scan_segment(
    path: &Path,
    first_seq: u64,
    recovered: &mut Recovered,
    acked: u64,
) -> Result<Option<SegmentMeta>, SpillError> {
    let io = |e| SpillError::io(path, e);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(io)?;
    let file_len = file.metadata().map_err(io)?.len();
    let mut reader = SegmentReader::new(
        file.try_clone().map_err(io)?,
        0,
        file_len,
        SegmentReader::BUF,
    )
    .map_err(io)?;
    let head_len = file_len.min(HEADER_LEN as u64) as usize;
    let mut head = [0u8; HEADER_LEN];
    reader.read_exact(&mut head[..head_len]).map_err(io)?;
    if segment::check_header(path, &head[..head_len], first_seq)? == HeaderCheck::Torn {
        drop(file);
        fs::remove_file(path).map_err(io)?;
        recovered.truncated_bytes += file_len;
        return Ok(None);
    }

    let mut seq = first_seq;
    loop {
        let pos = reader.pos();
        let left = reader.remaining();
        if left == 0 {
            break;
        }
        let good = if left < FRAME_HEADER_LEN as u64 {
            false
        } else {
            let mut h = [0u8; FRAME_HEADER_LEN];
            reader.read_exact(&mut h).map_err(io)?;
            let h = FrameHeader::parse(h);
            if u64::from(h.len) > reader.remaining() {
                false
            } else {
                let mut crc = 0u32;
                reader
                    .consume(u64::from(h.len), |s| crc = crc32c::crc32c_append(crc, s))
                    .map_err(io)?;
                if frame::mask(crc) == h.checksum {
                    if seq > acked {
                        recovered.events += 1;
                        recovered.bytes += u64::from(h.len);
                    }
                    seq += 1;
                    true
                } else {
                    false
                }
            }
        };
        if !good {
            file.set_len(pos).map_err(io)?;
            file.sync_all().map_err(io)?;
            recovered.torn_records += 1;
            recovered.truncated_bytes += file_len - pos;
            return Ok(Some(SegmentMeta {
                first_seq,
                end_seq: seq,
                len: pos,
                path: path.into(),
            }));
        }
    }
    Ok(Some(SegmentMeta {
        first_seq,
        end_seq: seq,
        len: file_len,
        path: path.into(),
    }))
}
