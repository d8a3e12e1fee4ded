//! The `ack` file: the highest acknowledged sequence number.
//!
//! ```text
//! magic "MTRSPACK" (8) | version u32 LE (4) | acked sequence u64 LE (8) | masked crc32c of the 20 bytes before (4)
//! ```
//!
//! It is replaced atomically: written to `ack.tmp`, `fsync`ed, renamed over
//! `ack`, and the directory `fsync`ed. A reader therefore sees the old value
//! or the new one, never a mix; `ack.tmp` left by a crash is removed on open.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;

use super::error::SpillError;
use super::frame;
use super::segment::{VERSION, sync_dir};

/// The ack file's name.
pub(crate) const ACK_FILE: &str = "ack";
/// The temporary file an ack is written to before the rename.
pub(crate) const ACK_TMP: &str = "ack.tmp";
const MAGIC: [u8; 8] = *b"MTRSPACK";
const LEN: usize = 24;

fn encode(acked: u64) -> [u8; LEN] {
    let mut b = [0u8; LEN];
    b[..8].copy_from_slice(&MAGIC);
    b[8..12].copy_from_slice(&VERSION.to_le_bytes());
    b[12..20].copy_from_slice(&acked.to_le_bytes());
    let crc = frame::checksum(&b[..20]);
    b[20..].copy_from_slice(&crc.to_le_bytes());
    b
}

/// Whether `bytes` could be the start of an ack file (for deciding that a
/// leftover `ack.tmp` is ours).
pub(crate) fn looks_like_ack(bytes: &[u8]) -> bool {
    let n = bytes.len().min(MAGIC.len());
    bytes[..n] == MAGIC[..n]
}

/// Reads the ack file of `dir`: `Ok(0)` when there is none.
pub(crate) fn read(dir: &Path) -> Result<u64, SpillError> {
    let path = dir.join(ACK_FILE);
    let meta = match fs::symlink_metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(SpillError::io(&path, e)),
    };
    if !meta.is_file() || meta.len() != LEN as u64 {
        return Err(SpillError::Foreign { path });
    }
    let bytes = fs::read(&path).map_err(|e| SpillError::io(&path, e))?;
    if bytes.len() != LEN || bytes[..8] != MAGIC {
        return Err(SpillError::Foreign { path });
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    if version != VERSION {
        return Err(SpillError::Version {
            path,
            found: version,
            expected: VERSION,
        });
    }
    let stored = u32::from_le_bytes(bytes[20..24].try_into().expect("4 bytes"));
    if stored != frame::checksum(&bytes[..20]) {
        return Err(SpillError::Corrupt {
            path,
            offset: 20,
            reason: "the acknowledgement's checksum does not match".into(),
        });
    }
    Ok(u64::from_le_bytes(
        bytes[12..20].try_into().expect("8 bytes"),
    ))
}

/// Replaces the ack file of `dir` with `acked`, durably.
pub(crate) fn write(dir: &Path, acked: u64) -> Result<(), SpillError> {
    let tmp = dir.join(ACK_TMP);
    let result = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(&encode(acked))?;
            f.sync_all()
        });
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(SpillError::io(&tmp, e));
    }
    let path = dir.join(ACK_FILE);
    fs::rename(&tmp, &path).map_err(|e| SpillError::io(&path, e))?;
    sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_read_and_damage() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()).unwrap(), 0);
        write(dir.path(), 12345).unwrap();
        assert_eq!(read(dir.path()).unwrap(), 12345);
        assert!(!dir.path().join(ACK_TMP).exists());
        let path = dir.path().join(ACK_FILE);
        let mut b = fs::read(&path).unwrap();
        b[13] ^= 1;
        fs::write(&path, &b).unwrap();
        assert!(matches!(read(dir.path()), Err(SpillError::Corrupt { .. })));
        fs::write(&path, b"not an ack file, just 24b").unwrap();
        assert!(matches!(read(dir.path()), Err(SpillError::Foreign { .. })));
        assert!(looks_like_ack(b"MTRS"));
        assert!(!looks_like_ack(b"hello"));
    }
}
