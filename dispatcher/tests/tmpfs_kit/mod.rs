//! A small tmpfs for the tests that need a full disk (ENOSPC), shared by
//! the spill log's tests and the disk tier's attack.

#![allow(dead_code, unreachable_pub)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A mounted 64 KiB tmpfs, unmounted when dropped.
pub struct Tmpfs {
    mnt: PathBuf,
    _base: tempfile::TempDir,
}

impl Tmpfs {
    /// Where it is mounted.
    pub fn path(&self) -> &Path {
        &self.mnt
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.mnt).status();
    }
}

/// A 64 KiB tmpfs in a temporary directory; `None` (after saying so) where
/// mounting is not permitted, unless `METRONOME_REQUIRE_TMPFS` is set.
pub fn small_tmpfs() -> Option<Tmpfs> {
    let base = tempfile::tempdir().unwrap();
    let mnt = base.path().join("mnt");
    fs::create_dir(&mnt).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
        .arg(&mnt)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        assert!(
            std::env::var_os("METRONOME_REQUIRE_TMPFS").is_none(),
            "METRONOME_REQUIRE_TMPFS is set but `mount -t tmpfs` failed"
        );
        eprintln!(
            "skipped: mounting a tmpfs is not permitted here (set METRONOME_REQUIRE_TMPFS to fail instead)"
        );
        return None;
    }
    Some(Tmpfs { mnt, _base: base })
}
