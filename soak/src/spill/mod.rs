//! The dispatcher's disk tier as a run uses it (`--spill-dir`): its directory checked and
//! opened before anything of the run is created, every refusal worded for the user, and
//! the codec that writes the soak's events to disk ([`EventCodec`]).

mod codec;

use std::path::{Path, PathBuf};

use dispatcher::spill::{MIN_SEGMENT_BYTES, Recovered, Spill, SpillError, SpillLog, SyncPolicy};
use runlog::{SpillConfig, SpillSync};

pub use codec::EventCodec;

/// What [`open`] hands the dispatcher's builder: the locked, recovered log.
pub type Opened = (SpillLog, Recovered);

/// The largest segment file the soak asks for: the dispatcher's default.
const MAX_SEGMENT_BYTES: u64 = 64 << 20;

/// What the disk takes for one event beyond its payload, at most: the soak's codec header
/// ([`EventCodec`]: 20 B) and the dispatcher's own
/// ([`dispatcher::spill::EVENT_DISK_OVERHEAD`]: record, frame and segment headers). An event
/// larger than the disk budget less both is refused by the dispatcher as too large for the
/// disk.
pub const EVENT_DISK_OVERHEAD: u64 = codec::HEADER as u64 + dispatcher::spill::EVENT_DISK_OVERHEAD;

/// The disk an event of `payload` bytes needs, alone in a new segment: the least disk
/// budget that can ever take it.
pub fn disk_bytes_for(payload: u64) -> u64 {
    payload.saturating_add(EVENT_DISK_OVERHEAD)
}

/// The dispatcher's settings for `config`: segments of an eighth of the budget (so
/// acknowledged records free disk while the rest is still read back), between 4 KiB and
/// 64 MiB.
pub fn settings(config: &SpillConfig) -> Spill {
    let segment = (config.max_disk_bytes / 8)
        .clamp(MIN_SEGMENT_BYTES, MAX_SEGMENT_BYTES)
        .min(config.max_disk_bytes);
    let sync = match config.sync {
        SpillSync::EveryBatch => SyncPolicy::EveryBatch,
        SpillSync::Interval => {
            SyncPolicy::Every(std::time::Duration::from_millis(config.sync_interval_ms))
        }
        SpillSync::Os => SyncPolicy::Os,
    };
    Spill::new(&config.dir)
        .max_disk_bytes(config.max_disk_bytes)
        .segment_bytes(segment)
        .sync(sync)
        .write_ahead(config.write_ahead)
}

/// Checks the directory without touching it: its path is UTF-8 text, and it is a
/// directory, or it does not exist yet and its parent does.
///
/// # Errors
///
/// One line naming `--spill-dir` and the path, saying what is wrong.
pub fn check_dir(dir: &Path) -> Result<(), String> {
    let name = format!("--spill-dir {}", dir.display());
    if dir.to_str().is_none() {
        return Err(format!(
            "{name}: is not UTF-8 text (shown with U+FFFD for its bytes that are not); the \
             run record keeps the disk tier's directory as UTF-8 text (`config.spill.dir` in \
             results.json and scenario files), so a run on it could not be recorded: use a \
             path that is UTF-8"
        ));
    }
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(format!(
            "{name}: is a file, not a directory (the disk tier needs a directory of its own)"
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let parent = match dir.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            if parent.is_dir() {
                Ok(())
            } else {
                Err(format!(
                    "{name}: its parent {} does not exist or is not a directory (the disk \
                     tier's directory is created, its parents are not)",
                    parent.display()
                ))
            }
        }
        Err(e) => Err(format!("{name}: cannot be read: {e}")),
    }
}

/// An opened disk tier that has not been handed to a run yet, and what opening it
/// created. Dropped without [`Opening::keep`] (a later check refused the run), it is put
/// back as it was found: its `lock` file is removed if opening created it, and its
/// directory if opening created that, so a refused run leaves nothing behind.
#[derive(Debug)]
pub struct Opening {
    opened: Option<Opened>,
    dir: PathBuf,
    made_dir: bool,
    made_lock: bool,
}

impl Opening {
    /// What recovery found: the events an earlier run left unacknowledged.
    pub fn recovered(&self) -> Recovered {
        self.opened.as_ref().map(|(_, r)| *r).unwrap_or_default()
    }

    /// The tier for the run: kept as it is.
    pub fn keep(mut self) -> Opened {
        self.opened
            .take()
            .expect("an opening holds its tier until kept or dropped")
    }
}

impl Drop for Opening {
    fn drop(&mut self) {
        let Some((log, _)) = self.opened.take() else {
            return;
        };
        // The lock file goes while the lock is still held, so no other process can have
        // taken the lock on it (the dispatcher never removes one itself: that race is
        // why it is only done here, for a file this process just created).
        if self.made_lock {
            let _ = std::fs::remove_file(self.dir.join(LOCK_FILE));
        }
        drop(log);
        if self.made_dir {
            // Only if empty: anything that appeared in it meanwhile is not ours.
            let _ = std::fs::remove_dir(&self.dir);
        }
    }
}

/// The lock file a tier's directory holds (the dispatcher's name for it).
const LOCK_FILE: &str = "lock";

/// Checks and opens the disk tier: locked, and recovered (what an earlier run left
/// unacknowledged is read back first). Nothing is created when it is refused; what opening
/// created is removed again if the [`Opening`] is dropped rather than kept.
///
/// # Errors
///
/// One line naming `--spill-dir` and the path: a path that is not UTF-8, a missing
/// parent, a file, a directory holding files that are not the tier's, one another process
/// has open, or one the dispatcher cannot read (its typed error, shown).
pub fn open(config: &SpillConfig) -> Result<Opening, String> {
    check_dir(&config.dir)?;
    let missing = |path: &Path| std::fs::symlink_metadata(path).is_err();
    let made_dir = missing(&config.dir);
    let made_lock = made_dir || missing(&config.dir.join(LOCK_FILE));
    let opened = settings(config)
        .open()
        .map_err(|e| refusal(&config.dir, &e))?;
    Ok(Opening {
        opened: Some(opened),
        dir: config.dir.clone(),
        made_dir,
        made_lock,
    })
}

/// `--spill-dir DIR: why`, for an error the dispatcher gave when opening `dir`.
fn refusal(dir: &Path, err: &SpillError) -> String {
    let name = format!("--spill-dir {}", dir.display());
    match err {
        SpillError::Locked { .. } => format!(
            "{name}: is in use: another process (another soak?) has this disk tier open; \
             give each run a directory of its own, or wait for the other one to end"
        ),
        SpillError::Foreign { .. } => format!(
            "{name}: refused by the dispatcher: {err} (a disk tier's directory holds only \
             its lock, its ack and its .seg files: use an empty or new directory)"
        ),
        SpillError::Version { .. } | SpillError::Corrupt { .. } => {
            format!("{name}: refused by the dispatcher: {err}")
        }
        _ => format!("{name}: cannot be opened: {err}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path) -> SpillConfig {
        SpillConfig {
            dir: dir.to_path_buf(),
            max_disk_bytes: 1 << 20,
            ..SpillConfig::default()
        }
    }

    #[test]
    fn the_largest_event_that_fits_the_disk_budget_is_accepted_one_byte_more_is_not() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut c = config(tmp.path());
        c.max_disk_bytes = 4096;
        c.write_ahead = true;
        let opened = open(&c).expect("opens").keep();
        let (d, _batches) = dispatcher::Dispatcher::<loadgen::Event>::builder()
            .max_buffered_bytes(1 << 20)
            .spill(opened, EventCodec::new(loadgen::Clock::new()))
            .build()
            .expect("builds");
        let producer = d.producer();
        let largest = 4096 - EVENT_DISK_OVERHEAD;
        assert_eq!(disk_bytes_for(largest), 4096);
        let event = |len: u64| loadgen::Event::new(vec![7; len as usize], 0, 0, 0);
        // Too large for the disk: not written (the memory policy decides what becomes of it).
        let _ = producer.try_enqueue(event(largest + 1));
        assert_eq!(d.stats().spill.spilled, 0, "{:?}", d.stats().spill);
        producer.try_enqueue(event(largest)).expect("accepted");
        assert_eq!(d.stats().spill.spilled, 1, "{:?}", d.stats().spill);
    }

    #[test]
    fn segments_are_an_eighth_of_the_budget_within_bounds() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut c = config(tmp.path());
        assert_eq!(settings(&c).segment_bytes_limit(), 128 << 10);
        c.max_disk_bytes = 4096;
        assert_eq!(settings(&c).segment_bytes_limit(), 4096);
        c.max_disk_bytes = 1 << 40;
        assert_eq!(settings(&c).segment_bytes_limit(), 64 << 20);
        assert!(settings(&c).validate().is_ok());
    }

    #[test]
    fn a_path_that_is_not_utf8_is_refused_before_it_is_looked_at() {
        use std::os::unix::ffi::OsStrExt as _;
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut bytes = tmp.path().as_os_str().as_bytes().to_vec();
        bytes.extend_from_slice(b"/spill-\xff");
        let dir = Path::new(std::ffi::OsStr::from_bytes(&bytes));
        let err = check_dir(dir).unwrap_err();
        assert!(
            err.starts_with(&format!("--spill-dir {}", dir.display())),
            "{err}"
        );
        assert!(
            err.contains("spill-\u{FFFD}") && err.contains("UTF-8"),
            "{err}"
        );
        assert!(open(&config(dir)).is_err());
        assert!(
            std::fs::read_dir(tmp.path())
                .expect("list")
                .next()
                .is_none()
        );
    }

    #[test]
    fn refusals_name_the_flag_and_say_why() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let missing = tmp.path().join("no/such");
        let err = open(&config(&missing)).unwrap_err();
        assert!(
            err.starts_with("--spill-dir ") && err.contains("parent"),
            "{err}"
        );
        let file = tmp.path().join("file");
        std::fs::write(&file, "x").expect("write");
        let err = open(&config(&file)).unwrap_err();
        assert!(err.contains("is a file"), "{err}");
        let foreign = tmp.path().join("foreign");
        std::fs::create_dir(&foreign).expect("mkdir");
        std::fs::write(foreign.join("notes.txt"), "x").expect("write");
        let err = open(&config(&foreign)).unwrap_err();
        assert!(err.contains("refused by the dispatcher"), "{err}");
        assert!(err.contains("notes.txt"), "{err}");
        let ours = tmp.path().join("ours");
        let held = open(&config(&ours)).expect("opens").keep();
        let err = open(&config(&ours)).unwrap_err();
        assert!(err.contains("in use"), "{err}");
        drop(held);
        assert!(open(&config(&ours)).is_ok());
    }

    #[test]
    fn an_opening_dropped_unkept_leaves_the_directory_as_it_was() {
        let tmp = tempfile::tempdir().expect("tempdir");
        // A new directory: created, then removed.
        let new = tmp.path().join("new");
        let opening = open(&config(&new)).expect("opens");
        assert!(new.join(LOCK_FILE).exists());
        drop(opening);
        assert!(!new.exists());
        // An empty one: its lock file removed, the directory kept.
        let empty = tmp.path().join("empty");
        std::fs::create_dir(&empty).expect("mkdir");
        drop(open(&config(&empty)).expect("opens"));
        assert!(empty.is_dir());
        assert_eq!(std::fs::read_dir(&empty).expect("list").count(), 0);
        // One that had a lock file already: kept, and so is the directory.
        let used = tmp.path().join("used");
        drop(open(&config(&used)).expect("opens").keep());
        drop(open(&config(&used)).expect("opens"));
        assert!(used.join(LOCK_FILE).exists());
        // Kept: nothing is removed.
        let kept = tmp.path().join("kept");
        drop(open(&config(&kept)).expect("opens").keep());
        assert!(kept.join(LOCK_FILE).exists());
    }
}
