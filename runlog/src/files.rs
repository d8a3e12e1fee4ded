//! The one way record files are written and read: outputs atomically (a reader, or a full
//! disk, never leaves half a file), inputs only when they are regular files (a FIFO named
//! `results.json` would make a reader wait forever for a writer) and, where they should be
//! small, within a size limit.

use std::fs::File;
use std::io::{self, ErrorKind, Read as _, Write as _};
use std::path::Path;

/// The largest `results.json` or `group.json` read: far beyond any real record.
pub const MAX_RECORD_BYTES: u64 = 256 << 20;

/// Writes `bytes` to `path` atomically: into a temporary file beside it, flushed to disk
/// (`fsync`), then renamed over it. On any failure the temporary file is removed and the
/// previous file, if any, is left whole.
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("runlog-doc-atomic-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("tuned.toml");
/// runlog::write_atomically(&path, b"producers = 4\n")?;
/// assert_eq!(std::fs::read_to_string(&path)?, "producers = 4\n");
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Errors
/// The OS error of the write, the flush or the rename.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let name = path
        .file_name()
        .map_or_else(|| "output".into(), |n| n.to_string_lossy().into_owned());
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let written = File::create(&tmp)
        .and_then(|mut file| {
            file.write_all(bytes)?;
            file.sync_all()
        })
        .and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// "not a regular file", as an error.
fn not_regular() -> io::Error {
    io::Error::new(ErrorKind::InvalidInput, "not a regular file")
}

/// Opens `path` for reading only if it is a regular file: a FIFO, a device or a directory is
/// refused from its metadata before it is opened (opening a FIFO waits for a writer), and
/// checked again once open (it may have been replaced in between).
///
/// # Errors
/// The OS error, or [`ErrorKind::InvalidInput`] "not a regular file".
pub fn open_regular(path: &Path) -> io::Result<File> {
    if !std::fs::metadata(path)?.is_file() {
        return Err(not_regular());
    }
    let file = File::open(path)?;
    if !file.metadata()?.is_file() {
        return Err(not_regular());
    }
    Ok(file)
}

/// Reads the regular file `path` whole, refusing one larger than `limit` bytes.
///
/// # Errors
/// As [`open_regular`], the read's OS error, or [`ErrorKind::InvalidInput`] "larger than
/// the N-byte limit".
pub fn read_regular(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    let too_large = || {
        io::Error::new(
            ErrorKind::InvalidInput,
            format!("larger than the {limit}-byte limit"),
        )
    };
    let file = open_regular(path)?;
    if file.metadata()?.len() > limit {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(too_large());
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_is_not_read() {
        let dir = std::env::temp_dir();
        let err = read_regular(&dir, 10).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.to_string().contains("not a regular file"), "{err}");
    }

    #[test]
    fn a_file_past_the_limit_is_refused() {
        let path = std::env::temp_dir().join(format!("runlog-files-big-{}", std::process::id()));
        std::fs::write(&path, b"0123456789").unwrap();
        assert!(read_regular(&path, 9).is_err());
        assert_eq!(read_regular(&path, 10).unwrap().len(), 10);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_failed_write_keeps_the_previous_file() {
        let dir = std::env::temp_dir().join(format!("runlog-files-keep-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("out.toml");
        write_atomically(&path, b"old").unwrap();
        // A directory in the way of the rename: the write fails, the old file stays.
        let blocked = dir.join("sub");
        std::fs::create_dir_all(blocked.join("x")).unwrap();
        assert!(write_atomically(&blocked, b"new").is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        let leftovers = std::fs::read_dir(&dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .contains(".tmp-")
            })
            .count();
        assert_eq!(leftovers, 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
