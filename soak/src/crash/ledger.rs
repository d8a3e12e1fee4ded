//! The crash test's evidence: the ids of the events a child run saw accepted and
//! delivered, in files that survive a `SIGKILL`, and the tally that compares them.
//!
//! An id is the event's producer field (the child run's index in its high bits, see
//! [`tag`]) and its sequence number: `producer << 40 | seq`, as a `u64`. Every file holds
//! ids as 8 little-endian bytes each, appended by plain `write(2)` calls on an unbuffered
//! file: once a call returns, the bytes are in the kernel's page cache, which a killed
//! process cannot take back. A kill can cut the last call of a file short; what does not
//! fill 8 bytes at the end is a torn record, counted and left out.
//!
//! - `accepted-RRRR-FFFF.ids`: one per producer handle `FFFF` of run `RRRR`, one id per
//!   event, written after the dispatcher returned `Ok` for it.
//! - `delivered-RRRR.ids`: one per run, the ids of a batch in one write, made when the
//!   consumer receives the batch, before it is dropped (which acknowledges it).

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::path::{Path, PathBuf};

use loadgen::Event;

/// Bits of an id below the producer field: the event's sequence number.
const SEQ_BITS: u32 = 40;
/// Bits of the producer field that hold the producer's index; the run index is above.
const PRODUCER_BITS: u32 = 12;
/// The most runs one crash test makes: the run index must fit above the producer index in
/// an event's 24-bit producer field.
pub const MAX_RUNS: u32 = 1 << (24 - PRODUCER_BITS);

/// `event` with run `run`'s index in the high bits of its producer field, so every child
/// run's ids are its own. The payload is moved, not copied.
pub fn tag(event: Event, run: u32) -> Event {
    let producer = (run << PRODUCER_BITS) | (event.producer() & ((1 << PRODUCER_BITS) - 1));
    let (intended, seq) = (event.intended_at_ns, event.seq());
    Event::new(event.payload.into_vec(), intended, producer, seq)
}

/// The id of a tagged event.
pub fn id(event: &Event) -> u64 {
    (u64::from(event.producer()) << SEQ_BITS) | event.seq()
}

/// An id in words: `run 3, producer 1, event 4,512`.
pub fn describe(id: u64) -> String {
    let producer = id >> SEQ_BITS;
    format!(
        "run {}, producer {}, event {}",
        producer >> PRODUCER_BITS,
        producer & ((1 << PRODUCER_BITS) - 1),
        runlog::human::grouped(id & ((1 << SEQ_BITS) - 1))
    )
}

/// A new, empty id file of run `run`'s producer handle `handle`.
///
/// # Errors
///
/// The file cannot be created (or exists already: evidence is never overwritten).
pub fn accepted_file(dir: &Path, run: u32, handle: u32) -> io::Result<File> {
    create(&accepted_path(dir, run, handle))
}

/// The id file of run `run`'s producer handle `handle`.
pub fn accepted_path(dir: &Path, run: u32, handle: u32) -> PathBuf {
    dir.join(format!("accepted-{run:04}-{handle:04}.ids"))
}

/// A new, empty file for the ids run `run` delivers.
///
/// # Errors
///
/// As [`accepted_file`].
pub fn delivered_file(dir: &Path, run: u32) -> io::Result<File> {
    create(&delivered_path(dir, run))
}

/// The file of the ids run `run` delivers.
pub fn delivered_path(dir: &Path, run: u32) -> PathBuf {
    dir.join(format!("delivered-{run:04}.ids"))
}

fn create(path: &Path) -> io::Result<File> {
    OpenOptions::new().append(true).create_new(true).open(path)
}

/// Appends `ids` to `file` with as few `write` calls as the kernel allows (one, for a
/// regular file), through `buf`.
///
/// # Errors
///
/// The write's.
pub fn append(file: &File, buf: &mut Vec<u8>, ids: impl Iterator<Item = u64>) -> io::Result<()> {
    buf.clear();
    for id in ids {
        buf.extend_from_slice(&id.to_le_bytes());
    }
    let mut file = file;
    file.write_all(buf)
}

/// What the id files of a crash test say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// Distinct ids recorded as accepted.
    pub accepted: u64,
    /// Ids recorded as delivered, duplicates included.
    pub delivered: u64,
    /// Distinct ids recorded as delivered.
    pub delivered_distinct: u64,
    /// Accepted ids never delivered, and not on disk either.
    pub lost: u64,
    /// Accepted ids never delivered but still on disk when the last run ended: not lost
    /// (the next run on the directory delivers them first).
    pub left_on_disk: u64,
    /// Ids on disk when the last run ended that were delivered already (they will be
    /// again) or have no accepted record (taken just before a kill).
    pub on_disk_otherwise: u64,
    /// Deliveries beyond the first of an id.
    pub duplicated: u64,
    /// Delivered ids with no accepted record: accepted just before a kill, which came
    /// before the record was written.
    pub unrecorded: u64,
    /// Files whose last record a kill cut short (left out).
    pub torn: u64,
    /// The first few lost ids.
    pub lost_ids: Vec<u64>,
}

/// How many lost ids a [`Tally`] keeps to show.
const LOST_SHOWN: usize = 5;

/// Reads every id file in `dir` and compares accepted with delivered.
///
/// # Errors
///
/// A file that cannot be read.
pub fn tally(dir: &Path) -> io::Result<Tally> {
    tally_with(dir, &[])
}

/// [`tally`], with the ids still on disk when the last run ended (`on_disk`): an accepted
/// id never delivered but on disk is left there, not lost.
///
/// # Errors
///
/// A file that cannot be read.
pub fn tally_with(dir: &Path, on_disk: &[u64]) -> io::Result<Tally> {
    let mut on_disk = on_disk.to_vec();
    on_disk.sort_unstable();
    on_disk.dedup();
    let mut accepted = Vec::new();
    let mut delivered = Vec::new();
    let mut torn = 0;
    for path in files(dir)? {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let into = if name.starts_with("accepted-") {
            &mut accepted
        } else if name.starts_with("delivered-") {
            &mut delivered
        } else {
            continue;
        };
        torn += u64::from(read_ids(&path, into)?);
    }
    accepted.sort_unstable();
    accepted.dedup();
    delivered.sort_unstable();
    let mut t = Tally {
        accepted: accepted.len() as u64,
        delivered: delivered.len() as u64,
        torn,
        ..Tally::default()
    };
    let mut seen = delivered.clone();
    seen.dedup();
    t.delivered_distinct = seen.len() as u64;
    t.duplicated = t.delivered - t.delivered_distinct;
    for id in &accepted {
        if seen.binary_search(id).is_ok() {
            continue;
        }
        if on_disk.binary_search(id).is_ok() {
            t.left_on_disk += 1;
            continue;
        }
        t.lost += 1;
        if t.lost_ids.len() < LOST_SHOWN {
            t.lost_ids.push(*id);
        }
    }
    t.on_disk_otherwise = on_disk.len() as u64 - t.left_on_disk;
    t.unrecorded = seen
        .iter()
        .filter(|id| accepted.binary_search(id).is_err())
        .count() as u64;
    Ok(t)
}

/// How many ids run `run` has recorded so far: accepted and delivered.
///
/// # Errors
///
/// The directory cannot be listed.
pub fn progress(dir: &Path, run: u32) -> io::Result<(u64, u64)> {
    let accepted_prefix = format!("accepted-{run:04}-");
    let delivered_name = format!("delivered-{run:04}.ids");
    let mut counts = (0, 0);
    for path in files(dir)? {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let len = std::fs::metadata(&path).map_or(0, |m| m.len()) / 8;
        if name.starts_with(&accepted_prefix) {
            counts.0 += len;
        } else if name == delivered_name {
            counts.1 += len;
        }
    }
    Ok(counts)
}

/// The `.ids` files in `dir`, by name.
fn files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut by_name = BTreeMap::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "ids") {
            by_name.insert(path.file_name().map(ToOwned::to_owned), path);
        }
    }
    Ok(by_name.into_values().collect())
}

/// Appends the ids of the file at `path` to `into`; whether its end was torn.
fn read_ids(path: &Path, into: &mut Vec<u64>) -> io::Result<bool> {
    let mut bytes = Vec::new();
    File::open(path)?.read_to_end(&mut bytes)?;
    let whole = bytes.chunks_exact(8);
    let torn = !whole.remainder().is_empty();
    into.extend(whole.map(|c| {
        let mut word = [0u8; 8];
        word.copy_from_slice(c);
        u64::from_le_bytes(word)
    }));
    Ok(torn)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, ids: &[u64], tail: &[u8]) {
        let mut bytes: Vec<u8> = ids.iter().flat_map(|id| id.to_le_bytes()).collect();
        bytes.extend_from_slice(tail);
        std::fs::write(dir.join(name), bytes).expect("write");
    }

    #[test]
    fn a_tag_keeps_the_event_and_names_the_run() {
        let event = Event::new(b"payload".to_vec(), 42, 3, 77);
        let tagged = tag(event, 9);
        assert_eq!((tagged.producer(), tagged.seq()), ((9 << 12) | 3, 77));
        assert_eq!(
            (&*tagged.payload, tagged.intended_at_ns),
            (&b"payload"[..], 42)
        );
        assert_eq!(describe(id(&tagged)), "run 9, producer 3, event 77");
        let last = tag(Event::new(vec![], 0, 4095, 0), MAX_RUNS - 1);
        assert_eq!(describe(id(&last)), "run 4095, producer 4095, event 0");
    }

    #[test]
    fn the_tally_counts_loss_duplicates_and_torn_ends() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path();
        write(dir, "accepted-0000-0001.ids", &[1, 2, 3], &[]);
        write(
            dir,
            "accepted-0001-0001.ids",
            &[10, 11],
            &[0xff, 0xff, 0xff],
        );
        write(dir, "delivered-0000.ids", &[1, 2, 2], &[]);
        write(dir, "delivered-0001.ids", &[3, 10, 12], &[7]);
        std::fs::write(dir.join("notes.txt"), "not ids").expect("write");
        let t = tally(dir).expect("tally");
        assert_eq!((t.accepted, t.delivered, t.delivered_distinct), (5, 6, 5));
        assert_eq!((t.lost, t.duplicated, t.unrecorded, t.torn), (1, 1, 1, 2));
        assert_eq!(t.lost_ids, [11]);
        assert_eq!((t.left_on_disk, t.on_disk_otherwise), (0, 0));
        assert_eq!(progress(dir, 1).expect("progress"), (2, 3));
        // 11 still on disk: left there, not lost; 2 and 99 on disk too (delivered already,
        // or never written down as accepted).
        let t = tally_with(dir, &[11, 2, 99, 11]).expect("tally");
        assert_eq!((t.lost, t.left_on_disk, t.on_disk_otherwise), (0, 1, 2));
        assert!(t.lost_ids.is_empty());
    }

    #[test]
    fn appended_ids_read_back_and_files_are_never_reused() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let file = accepted_file(tmp.path(), 2, 1).expect("created");
        let mut buf = Vec::new();
        append(&file, &mut buf, [5, 6].into_iter()).expect("written");
        append(&file, &mut buf, std::iter::once(7)).expect("written");
        let mut ids = Vec::new();
        let path = tmp.path().join("accepted-0002-0001.ids");
        assert!(!read_ids(&path, &mut ids).expect("read"));
        assert_eq!(ids, [5, 6, 7]);
        assert!(accepted_file(tmp.path(), 2, 1).is_err());
    }
}
