//! Segment files: names, the header, creation, and a bounded reader.
//!
//! A segment is `NNNNNNNNNNNNNNNNNNNN.seg` (its first sequence number, 20
//! digits so names sort as numbers) and starts with a 24-byte header:
//!
//! ```text
//! magic "MTRSPILL" (8) | version u32 LE (4) | first sequence u64 LE (8) | masked crc32c of the 20 bytes before (4)
//! ```
//!
//! then frames back to back (see `frame`).

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::error::SpillError;
use super::frame;

/// The first bytes of every segment file.
pub(crate) const MAGIC: [u8; 8] = *b"MTRSPILL";
/// The format version this build writes and reads.
pub(crate) const VERSION: u32 = 1;
/// Bytes of a segment header.
pub(crate) const HEADER_LEN: usize = 24;

/// The file name of the segment whose first record is `first_seq`.
pub(crate) fn file_name(first_seq: u64) -> String {
    format!("{first_seq:020}.seg")
}

/// The first sequence number a segment file name stands for, if the name
/// is one.
pub(crate) fn parse_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".seg")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The header of the segment starting at `first_seq`.
pub(crate) fn header(first_seq: u64) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(&MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_le_bytes());
    h[12..20].copy_from_slice(&first_seq.to_le_bytes());
    let crc = frame::checksum(&h[..20]);
    h[20..].copy_from_slice(&crc.to_le_bytes());
    h
}

/// What the first bytes of a segment file say.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum HeaderCheck {
    /// A whole, valid header.
    Valid,
    /// Fewer bytes than a header, all of them a prefix of the expected one:
    /// the log stopped while creating the segment.
    Torn,
}

/// Checks the first bytes of the segment file at `path`, named for
/// `first_seq`.
pub(crate) fn check_header(
    path: &Path,
    bytes: &[u8],
    first_seq: u64,
) -> Result<HeaderCheck, SpillError> {
    let expected = header(first_seq);
    if bytes.len() < HEADER_LEN {
        return if expected.starts_with(bytes) {
            Ok(HeaderCheck::Torn)
        } else {
            Err(SpillError::Foreign { path: path.into() })
        };
    }
    if bytes[..8] != MAGIC {
        return Err(SpillError::Foreign { path: path.into() });
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    if version != VERSION {
        return Err(SpillError::Version {
            path: path.into(),
            found: version,
            expected: VERSION,
        });
    }
    let stored = u32::from_le_bytes(bytes[20..24].try_into().expect("4 bytes"));
    if stored != frame::checksum(&bytes[..20]) {
        return Err(SpillError::Corrupt {
            path: path.into(),
            offset: 0,
            reason: "the segment header's checksum does not match".into(),
        });
    }
    let seq = u64::from_le_bytes(bytes[12..20].try_into().expect("8 bytes"));
    if seq != first_seq {
        return Err(SpillError::Corrupt {
            path: path.into(),
            offset: 12,
            reason: format!("the header says first sequence {seq}, the file name {first_seq}"),
        });
    }
    Ok(HeaderCheck::Valid)
}

/// Creates the segment file for `first_seq` in `dir` and writes its header.
/// On failure nothing is left behind (best effort: the removal of a file
/// whose header could not be written may itself fail; recovery then finds a
/// torn header and removes it).
pub(crate) fn create(dir: &Path, first_seq: u64) -> Result<(File, PathBuf), SpillError> {
    let path = dir.join(file_name(first_seq));
    let mut options = OpenOptions::new();
    options.read(true).write(true);
    let mut file = match options.clone().create_new(true).open(&path) {
        Ok(file) => file,
        // A previous create whose header write failed and whose removal
        // failed too: a file shorter than a header is that leftover.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let file = options.open(&path).map_err(|e| SpillError::io(&path, e))?;
            let len = file.metadata().map_err(|e| SpillError::io(&path, e))?.len();
            if len >= HEADER_LEN as u64 {
                return Err(SpillError::io(&path, e));
            }
            file.set_len(0).map_err(|e| SpillError::io(&path, e))?;
            file
        }
        Err(e) => return Err(SpillError::io(&path, e)),
    };
    if let Err(e) = file.write_all(&header(first_seq)) {
        drop(file);
        let _ = std::fs::remove_file(&path);
        return Err(SpillError::io(&path, e));
    }
    Ok((file, path))
}

/// `fsync` of a directory, so that files created, renamed or removed in it
/// survive a power failure.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), SpillError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| SpillError::io(dir, e))
}

/// A sequential reader over a segment file that never reads at or past
/// `limit` (the bytes known to be whole frames), with a buffer of a fixed
/// size. Large reads bypass the buffer.
pub(crate) struct SegmentReader {
    file: File,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    /// The position of the OS file cursor, which is that of `buf[end]`.
    file_pos: u64,
    limit: u64,
}

impl SegmentReader {
    /// The buffer size.
    pub(crate) const BUF: usize = 256 * 1024;

    /// A reader of `file` from `pos`, up to `limit`.
    pub(crate) fn new(mut file: File, pos: u64, limit: u64, buf: usize) -> io::Result<Self> {
        file.seek(SeekFrom::Start(pos))?;
        Ok(SegmentReader {
            file,
            buf: vec![0; buf].into_boxed_slice(),
            start: 0,
            end: 0,
            file_pos: pos,
            limit,
        })
    }

    /// The position of the next byte read.
    pub(crate) fn pos(&self) -> u64 {
        self.file_pos - (self.end - self.start) as u64
    }

    /// The bytes left before the limit.
    pub(crate) fn remaining(&self) -> u64 {
        self.limit.saturating_sub(self.pos())
    }

    /// Raises the limit (the segment grew by whole frames).
    pub(crate) fn set_limit(&mut self, limit: u64) {
        debug_assert!(limit >= self.pos());
        self.limit = limit;
    }

    fn fill(&mut self) -> io::Result<()> {
        let room = (self.limit.saturating_sub(self.file_pos)).min(self.buf.len() as u64) as usize;
        if room == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let n = read_some(&mut self.file, &mut self.buf[..room])?;
        self.start = 0;
        self.end = n;
        self.file_pos += n as u64;
        Ok(())
    }

    /// Fills `out`; the caller has checked `out.len() <= remaining()`.
    pub(crate) fn read_exact(&mut self, out: &mut [u8]) -> io::Result<()> {
        let mut done = 0;
        while done < out.len() {
            if self.start == self.end {
                let want = out.len() - done;
                if want >= self.buf.len() {
                    let cap = (self.limit.saturating_sub(self.file_pos)).min(want as u64) as usize;
                    if cap == 0 {
                        return Err(io::ErrorKind::UnexpectedEof.into());
                    }
                    let n = read_some(&mut self.file, &mut out[done..done + cap])?;
                    self.file_pos += n as u64;
                    done += n;
                    continue;
                }
                self.fill()?;
            }
            let n = (self.end - self.start).min(out.len() - done);
            out[done..done + n].copy_from_slice(&self.buf[self.start..self.start + n]);
            self.start += n;
            done += n;
        }
        Ok(())
    }

    /// Passes the next `n` bytes to `f` in pieces; the caller has checked
    /// `n <= remaining()`.
    pub(crate) fn consume(&mut self, mut n: u64, mut f: impl FnMut(&[u8])) -> io::Result<()> {
        while n > 0 {
            if self.start == self.end {
                self.fill()?;
            }
            let take = ((self.end - self.start) as u64).min(n) as usize;
            f(&self.buf[self.start..self.start + take]);
            self.start += take;
            n -= take as u64;
        }
        Ok(())
    }

    /// Skips `n` bytes; the caller has checked `n <= remaining()`.
    pub(crate) fn skip(&mut self, n: u64) -> io::Result<()> {
        let buffered = (self.end - self.start) as u64;
        if n <= buffered {
            self.start += n as usize;
            return Ok(());
        }
        let target = self.pos() + n;
        self.start = 0;
        self.end = 0;
        self.file.seek(SeekFrom::Start(target))?;
        self.file_pos = target;
        Ok(())
    }
}

/// One `read`, retried on `Interrupted`; end of file is an error (the
/// caller only reads bytes known to be there).
fn read_some(file: &mut File, out: &mut [u8]) -> io::Result<usize> {
    loop {
        match file.read(out) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_sort() {
        assert_eq!(file_name(42), "00000000000000000042.seg");
        assert_eq!(parse_name(&file_name(u64::MAX)), Some(u64::MAX));
        assert_eq!(parse_name("42.seg"), None);
        assert_eq!(parse_name("0000000000000000004x.seg"), None);
        assert_eq!(parse_name("00000000000000000042.seg.tmp"), None);
        assert!(file_name(9) < file_name(10));
    }

    #[test]
    fn header_checks() {
        let p = Path::new("x.seg");
        let h = header(7);
        assert_eq!(check_header(p, &h, 7).unwrap(), HeaderCheck::Valid);
        assert_eq!(check_header(p, &h[..5], 7).unwrap(), HeaderCheck::Torn);
        assert_eq!(check_header(p, &[], 7).unwrap(), HeaderCheck::Torn);
        assert!(matches!(
            check_header(p, b"hello", 7),
            Err(SpillError::Foreign { .. })
        ));
        assert!(matches!(
            check_header(p, &h, 8),
            Err(SpillError::Corrupt { .. })
        ));
        let mut v2 = h;
        v2[8] = 2;
        assert!(matches!(
            check_header(p, &v2, 7),
            Err(SpillError::Version {
                found: 2,
                expected: 1,
                ..
            })
        ));
    }

    #[test]
    fn create_reuses_only_a_leftover_shorter_than_a_header() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(file_name(5));
        std::fs::write(&path, &header(5)[..3]).unwrap();
        let (_file, p) = create(dir.path(), 5).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), header(5));
        assert!(matches!(create(dir.path(), 5), Err(SpillError::Io { .. })));
    }

    #[test]
    fn reader_respects_limit_and_bypasses_buffer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let data: Vec<u8> = (0..100u8).collect();
        std::fs::write(&path, &data).unwrap();
        let mut r = SegmentReader::new(File::open(&path).unwrap(), 10, 60, 16).unwrap();
        let mut a = [0u8; 5];
        r.read_exact(&mut a).unwrap();
        assert_eq!(a, [10, 11, 12, 13, 14]);
        let mut big = [0u8; 20];
        r.read_exact(&mut big).unwrap();
        assert_eq!(big[0], 15);
        assert_eq!(big[19], 34);
        r.skip(5).unwrap();
        let mut sum = 0u64;
        r.consume(10, |s| sum += s.iter().map(|&b| u64::from(b)).sum::<u64>())
            .unwrap();
        assert_eq!(sum, (40..50u64).sum::<u64>());
        assert_eq!(r.remaining(), 10);
        let mut too_far = [0u8; 11];
        assert!(r.read_exact(&mut too_far).is_err());
    }
}
