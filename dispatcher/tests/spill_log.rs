//! The spill log (feature `spill`): round trips, recovery from torn and
//! damaged files, refusals, the byte limit, a model-checked random sequence
//! of operations, ENOSPC on a tiny tmpfs, and a SIGKILL mid-append.

use std::collections::VecDeque;
use std::fs::{self, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

mod tmpfs_kit;

use dispatcher::spill::{Spill, SpillError, SpillLog, SyncPolicy};
use proptest::prelude::*;
use tmpfs_kit::small_tmpfs;

const HEADER: u64 = 24;
const FRAME: u64 = 8;

fn payload(seq: u64, len: usize) -> Vec<u8> {
    let mut p = seq.to_le_bytes().repeat(len / 8 + 1);
    p.truncate(len);
    p
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    v.sort();
    v
}

fn read_all(log: &mut SpillLog) -> Vec<(u64, Vec<u8>)> {
    let mut out = Vec::new();
    while let Some(r) = log.read_next().unwrap() {
        out.push(r);
    }
    out
}

fn small(dir: &Path) -> Spill {
    Spill::new(dir)
        .segment_bytes(4096)
        .max_disk_bytes(1 << 20)
        .sync(SyncPolicy::Os)
}

#[test]
fn round_trip_in_order_across_segment_rolls() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, rec) = small(dir.path()).open().unwrap();
    assert_eq!(rec.events, 0);
    let mut expected = Vec::new();
    for i in 0..200u64 {
        let p = payload(i, (i as usize * 37) % 700);
        let seq = log.append(&p).unwrap();
        assert_eq!(seq, i + 1);
        expected.push((seq, p));
        if i % 50 == 49 {
            // Interleave reads with appends.
            let got = read_all(&mut log);
            assert_eq!(got.len(), 50);
        }
    }
    assert!(segments(dir.path()).len() > 10, "rolled");
    for p in segments(dir.path()) {
        // Every segment keeps to segment_bytes (no record is larger).
        assert!(fs::metadata(&p).unwrap().len() <= 4096);
    }
    drop(log);
    let (mut log, rec) = small(dir.path()).open().unwrap();
    assert_eq!(rec.events, 200);
    assert_eq!(
        rec.bytes,
        expected.iter().map(|(_, p)| p.len() as u64).sum::<u64>()
    );
    assert_eq!(read_all(&mut log), expected);
    let s = log.stats();
    assert_eq!(
        s.disk_bytes,
        segments(dir.path())
            .iter()
            .map(|p| fs::metadata(p).unwrap().len())
            .sum::<u64>()
    );
}

#[test]
fn a_record_larger_than_a_segment_gets_one_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = small(dir.path()).open().unwrap();
    log.append(b"small").unwrap();
    let big = payload(9, 100_000);
    log.append(&big).unwrap();
    log.append(b"after").unwrap();
    assert_eq!(segments(dir.path()).len(), 3);
    let got: Vec<Vec<u8>> = read_all(&mut log).into_iter().map(|(_, p)| p).collect();
    assert_eq!(got, vec![b"small".to_vec(), big, b"after".to_vec()]);
}

#[test]
fn reopen_after_drop_replays_only_unacked() {
    let dir = tempfile::tempdir().unwrap();
    let spill = small(dir.path());
    let (mut log, _) = spill.open().unwrap();
    for i in 1..=30u64 {
        log.append(&payload(i, 100)).unwrap();
    }
    // Read 20, acknowledge 12: 13..=30 come back after a reopen.
    for _ in 0..20 {
        log.read_next().unwrap().unwrap();
    }
    log.ack(12).unwrap();
    let s = log.stats();
    assert_eq!(
        (s.pending_events, s.unread_events, s.replayed_events),
        (18, 10, 20)
    );
    drop(log);
    let (mut log, rec) = spill.open().unwrap();
    assert_eq!(rec.events, 18);
    assert_eq!(log.acked(), 12);
    let got = read_all(&mut log);
    assert_eq!(got.first().unwrap().0, 13);
    assert_eq!(got.len(), 18);
    for (seq, p) in got {
        assert_eq!(p, payload(seq, 100));
    }
    // New appends continue the sequence.
    assert_eq!(log.append(b"next").unwrap(), 31);
}

#[test]
fn ack_before_reading_skips_and_ack_ahead_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = small(dir.path()).open().unwrap();
    for i in 1..=10u64 {
        log.append(&payload(i, 500)).unwrap();
    }
    log.ack(7).unwrap();
    assert_eq!(log.read_next().unwrap().unwrap().0, 8);
    log.ack(3).unwrap(); // below: no-op
    assert_eq!(log.acked(), 7);
    let err = log.ack(11).unwrap_err();
    assert!(
        matches!(
            err,
            SpillError::AckAhead {
                upto: 11,
                highest: 10
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("11") && err.to_string().contains("10"));
}

#[test]
fn ack_deletes_whole_segments() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = small(dir.path()).open().unwrap();
    // 24 + 3 * (8 + 1200) = 3648; a fourth would pass 4096: 3 per segment.
    for i in 1..=9u64 {
        log.append(&payload(i, 1200)).unwrap();
    }
    let segs = segments(dir.path());
    assert_eq!(segs.len(), 3);
    assert!(segs[1].ends_with("00000000000000000004.seg"));
    log.ack(5).unwrap(); // all of segment 1, part of segment 2
    assert_eq!(segments(dir.path()), segs[1..]);
    assert_eq!(log.stats().disk_bytes, 2 * (HEADER + 3 * (FRAME + 1200)));
    log.ack(9).unwrap(); // everything, the active segment too
    assert!(segments(dir.path()).is_empty());
    assert_eq!(log.stats().disk_bytes, 0);
    assert_eq!(log.read_next().unwrap(), None);
    // Sequence numbers are not reused, also after a reopen with nothing
    // left on disk.
    assert_eq!(log.append(b"x").unwrap(), 10);
    log.ack(10).unwrap();
    drop(log);
    let (mut log, rec) = small(dir.path()).open().unwrap();
    assert_eq!(rec.events, 0);
    assert_eq!(log.append(b"y").unwrap(), 11);
    assert_eq!(read_all(&mut log), vec![(11, b"y".to_vec())]);
}

#[test]
fn an_interrupted_ack_is_finished_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let spill = small(dir.path());
    let (mut log, _) = spill.open().unwrap();
    for i in 1..=9u64 {
        log.append(&payload(i, 1200)).unwrap();
    }
    let first = segments(dir.path())[0].clone();
    let saved = fs::read(&first).unwrap();
    log.ack(4).unwrap();
    drop(log);
    // As if the process died after the ack file was renamed, before the
    // segment was removed, and while writing the next ack.
    fs::write(&first, &saved).unwrap();
    fs::write(dir.path().join("ack.tmp"), b"MTRSP").unwrap();
    let (mut log, rec) = spill.open().unwrap();
    assert_eq!(rec.events, 5);
    assert!(!first.exists(), "the fully acknowledged segment is removed");
    assert!(!dir.path().join("ack.tmp").exists());
    assert_eq!(read_all(&mut log).first().unwrap().0, 5);
}

#[test]
fn torn_tail_is_truncated_and_appends_continue() {
    let dir = tempfile::tempdir().unwrap();
    let spill = small(dir.path());
    let (mut log, _) = spill.open().unwrap();
    for i in 1..=10u64 {
        log.append(&payload(i, 100)).unwrap();
    }
    drop(log);
    let seg = segments(dir.path()).pop().unwrap();
    let len = fs::metadata(&seg).unwrap().len();
    assert_eq!(len, HEADER + 10 * 108);
    // Cut the last frame in the middle of its payload.
    OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(len - 50)
        .unwrap();
    let (mut log, rec) = spill.open().unwrap();
    assert_eq!(rec.events, 9);
    assert_eq!(rec.torn_records, 1);
    assert_eq!(rec.truncated_bytes, 108 - 50);
    assert_eq!(fs::metadata(&seg).unwrap().len(), HEADER + 9 * 108);
    let next = log.append(b"after the tear").unwrap();
    assert!(
        next > 10,
        "the torn record's sequence number is not reused: {next}"
    );
    let got = read_all(&mut log);
    assert_eq!(got.len(), 10);
    assert_eq!(got[8], (9, payload(9, 100)));
    assert_eq!(got[9], (next, b"after the tear".to_vec()));
    drop(log);
    let (mut log, rec) = spill.open().unwrap();
    assert_eq!((rec.events, rec.torn_records), (10, 0));
    assert_eq!(read_all(&mut log).len(), 10);

    // A tear inside the frame header, too.
    drop(log);
    let last = segments(dir.path()).pop().unwrap();
    let len = fs::metadata(&last).unwrap().len();
    let mut f = OpenOptions::new().append(true).open(&last).unwrap();
    f.write_all(&[5, 0, 0]).unwrap();
    drop(f);
    let (_log, rec) = spill.open().unwrap();
    assert_eq!(
        (rec.events, rec.torn_records, rec.truncated_bytes),
        (10, 1, 3)
    );
    assert_eq!(fs::metadata(&last).unwrap().len(), len);
}

#[test]
fn flipped_byte_counts_a_bad_checksum_and_keeps_later_segments() {
    let dir = tempfile::tempdir().unwrap();
    let spill = small(dir.path());
    let (mut log, _) = spill.open().unwrap();
    for i in 1..=9u64 {
        log.append(&payload(i, 1200)).unwrap();
    }
    drop(log);
    let segs = segments(dir.path());
    assert_eq!(segs.len(), 3);
    // Flip a payload byte of record 5 (the second of segment 2).
    let mut bytes = fs::read(&segs[1]).unwrap();
    let at = (HEADER + (FRAME + 1200) + FRAME + 10) as usize;
    bytes[at] ^= 0x40;
    fs::write(&segs[1], &bytes).unwrap();
    let (mut log, rec) = spill.open().unwrap();
    // Records 5 and 6 are cut (6 follows the bad frame in its segment);
    // segment 3 is whole and kept.
    assert_eq!(rec.torn_records, 1);
    assert_eq!(rec.truncated_bytes, 2 * (FRAME + 1200));
    assert_eq!(rec.events, 7);
    let seqs: Vec<u64> = read_all(&mut log).into_iter().map(|(s, _)| s).collect();
    assert_eq!(seqs, vec![1, 2, 3, 4, 7, 8, 9]);
    assert_eq!(log.append(b"x").unwrap(), 10);
    assert_eq!(log.stats().pending_events, 8);
}

#[test]
fn huge_length_field_is_bounded_by_the_segment() {
    let dir = tempfile::tempdir().unwrap();
    let spill = small(dir.path());
    let (mut log, _) = spill.open().unwrap();
    for i in 1..=3u64 {
        log.append(&payload(i, 64)).unwrap();
    }
    drop(log);
    let seg = segments(dir.path()).pop().unwrap();
    let mut bytes = fs::read(&seg).unwrap();
    let second = (HEADER + FRAME + 64) as usize;
    bytes[second..second + 4].copy_from_slice(&0xFFFF_FFFFu32.to_le_bytes());
    fs::write(&seg, &bytes).unwrap();
    let (mut log, rec) = spill.open().unwrap();
    assert_eq!((rec.events, rec.torn_records), (1, 1));
    assert_eq!(rec.truncated_bytes, 2 * (FRAME + 64));
    assert_eq!(read_all(&mut log), vec![(1, payload(1, 64))]);
}

#[test]
fn zeroed_tail_is_not_read_as_empty_records() {
    // A file extended with zeros (power failure before the data reached
    // the device) must not turn into empty records.
    let dir = tempfile::tempdir().unwrap();
    let spill = small(dir.path());
    let (mut log, _) = spill.open().unwrap();
    log.append(b"real").unwrap();
    drop(log);
    let seg = segments(dir.path()).pop().unwrap();
    let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
    f.write_all(&[0u8; 64]).unwrap();
    drop(f);
    let (_log, rec) = spill.open().unwrap();
    assert_eq!(
        (rec.events, rec.torn_records, rec.truncated_bytes),
        (1, 1, 64)
    );
}

#[test]
fn foreign_file_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let notes = dir.path().join("notes.txt");
    fs::write(&notes, "mine").unwrap();
    let err = SpillLog::open(&small(dir.path())).unwrap_err();
    match &err {
        SpillError::Foreign { path } => assert_eq!(path, &notes),
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains("notes.txt"));
    assert_eq!(fs::read_to_string(&notes).unwrap(), "mine");
    assert!(
        !dir.path().join("lock").exists(),
        "nothing created in a foreign directory"
    );

    // A file with a segment's name but not a segment's content.
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("00000000000000000001.seg");
    fs::write(&fake, b"this is not a spill segment at all").unwrap();
    let err = SpillLog::open(&small(dir.path())).unwrap_err();
    assert!(
        matches!(&err, SpillError::Foreign { path } if path == &fake),
        "{err}"
    );
    assert!(fake.exists());

    // A subdirectory; a path that is a file.
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("sub")).unwrap();
    assert!(matches!(
        SpillLog::open(&small(dir.path())),
        Err(SpillError::Foreign { .. })
    ));
    let file = dir.path().join("sub").join("f");
    fs::write(&file, "x").unwrap();
    assert!(matches!(
        SpillLog::open(&small(&file)),
        Err(SpillError::Foreign { .. })
    ));

    // A missing directory is created.
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("a").join("b");
    SpillLog::open(&small(&nested)).unwrap();
    assert!(nested.join("lock").exists());
}

#[test]
fn wrong_version_header_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = small(dir.path()).open().unwrap();
    log.append(b"x").unwrap();
    drop(log);
    let seg = segments(dir.path()).pop().unwrap();
    let mut bytes = fs::read(&seg).unwrap();
    bytes[8..12].copy_from_slice(&7u32.to_le_bytes());
    fs::write(&seg, &bytes).unwrap();
    let err = SpillLog::open(&small(dir.path())).unwrap_err();
    assert!(
        matches!(&err, SpillError::Version { found: 7, expected: 1, path } if path == &seg),
        "{err}"
    );
    assert_eq!(fs::read(&seg).unwrap(), bytes, "left as it was");
}

#[test]
fn two_opens_on_one_dir_are_locked() {
    let dir = tempfile::tempdir().unwrap();
    let spill = small(dir.path());
    let (log, _) = spill.open().unwrap();
    let err = spill.open().unwrap_err();
    assert!(
        matches!(&err, SpillError::Locked { dir: d } if d == dir.path()),
        "{err}"
    );
    drop(log);
    spill.open().unwrap();
}

#[test]
fn full_at_max_disk_bytes_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let spill = Spill::new(dir.path())
        .segment_bytes(4096)
        .max_disk_bytes(8192)
        .sync(SyncPolicy::Os);
    let (mut log, _) = spill.open().unwrap();
    // Segments of 3 frames: 24 + 3 * 1208 = 3648 bytes. Two take 7296; a
    // third needs 24 + 1208 = 1232 more, and 896 are free.
    for i in 1..=6u64 {
        log.append(&payload(i, 1200)).unwrap();
    }
    let before = segments(dir.path());
    let err = log.append(&payload(7, 1200)).unwrap_err();
    assert!(
        matches!(
            err,
            SpillError::Full {
                needed: 1232,
                free: 896
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("1232") && err.to_string().contains("896"));
    assert_eq!(segments(dir.path()), before, "no segment created");
    let on_disk: u64 = before.iter().map(|p| fs::metadata(p).unwrap().len()).sum();
    assert_eq!(on_disk, 7296, "nothing written by the refused append");
    assert_eq!(log.stats().disk_bytes, 7296);
    // A small record that fits in the active segment is still taken.
    assert_eq!(log.append(b"tiny").unwrap(), 7);
    // Acknowledging the first segment makes room.
    log.ack(3).unwrap();
    assert_eq!(log.append(&payload(8, 1200)).unwrap(), 8);
    drop(log);
    let (mut log, rec) = spill.open().unwrap();
    assert_eq!(rec.events, 5);
    let seqs: Vec<u64> = read_all(&mut log).into_iter().map(|(s, _)| s).collect();
    assert_eq!(seqs, [4, 5, 6, 7, 8]);
}

#[test]
fn config_errors_name_value_and_range() {
    let dir = tempfile::tempdir().unwrap();
    let err = SpillLog::open(&Spill::new(dir.path()).segment_bytes(100)).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("segment_bytes = 100") && msg.contains("4096"),
        "{msg}"
    );
    assert!(segments(dir.path()).is_empty());
}

#[test]
fn a_record_that_can_never_fit_is_too_large_not_full() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = Spill::new(dir.path())
        .segment_bytes(4096)
        .max_disk_bytes(8192)
        .open()
        .unwrap();
    let err = log.append(&[0u8; 8192 - 32 + 1]).unwrap_err();
    assert!(
        matches!(
            err,
            SpillError::TooLarge {
                len: 8161,
                max: 8160
            }
        ),
        "{err}"
    );
    assert_eq!(log.append(&[0u8; 8160]).unwrap(), 1);
    assert_eq!(log.stats().disk_bytes, 8192);
}

// ---------------------------------------------------------------------------
// A random sequence of operations against a model.

#[derive(Debug, Clone)]
enum Op {
    Append(usize),
    Read,
    /// Acknowledge the n-th (mod len) record of the model.
    Ack(usize),
    /// Acknowledge something never appended.
    AckAhead,
    Reopen,
    Sync,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0usize..1500).prop_map(Op::Append),
        5 => Just(Op::Read),
        2 => any::<usize>().prop_map(Op::Ack),
        1 => Just(Op::AckAhead),
        1 => Just(Op::Reopen),
        1 => Just(Op::Sync),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn random_operations_match_a_model(ops in proptest::collection::vec(op(), 1..120)) {
        let dir = tempfile::tempdir().unwrap();
        let spill = Spill::new(dir.path()).segment_bytes(4096).max_disk_bytes(1 << 30).sync(SyncPolicy::EveryBatch);
        let (mut log, _) = spill.open().unwrap();
        // Appended, not acknowledged, in order; `cursor` of them read since open.
        let mut model: VecDeque<(u64, Vec<u8>)> = VecDeque::new();
        let mut cursor = 0usize;
        let mut last_seq = 0u64;
        for op in ops {
            match op {
                Op::Append(len) => {
                    let p = payload(last_seq + 1, len);
                    let seq = log.append(&p).unwrap();
                    prop_assert!(seq > last_seq);
                    last_seq = seq;
                    model.push_back((seq, p));
                }
                Op::Read => {
                    let got = log.read_next().unwrap();
                    prop_assert_eq!(got.as_ref(), model.get(cursor));
                    if got.is_some() { cursor += 1; }
                }
                Op::Ack(n) => {
                    if model.is_empty() { continue; }
                    let upto = model[n % model.len()].0;
                    log.ack(upto).unwrap();
                    while model.front().is_some_and(|(s, _)| *s <= upto) {
                        model.pop_front();
                        cursor = cursor.saturating_sub(1);
                    }
                }
                Op::AckAhead => {
                    let is_ahead = matches!(log.ack(last_seq + 1), Err(SpillError::AckAhead { .. }));
                    prop_assert!(is_ahead);
                }
                Op::Reopen => {
                    drop(log);
                    let (l, rec) = spill.open().unwrap();
                    log = l;
                    prop_assert_eq!(rec.events, model.len() as u64);
                    prop_assert_eq!(rec.torn_records, 0);
                    cursor = 0;
                }
                Op::Sync => log.sync().unwrap(),
            }
            let s = log.stats();
            prop_assert_eq!(s.pending_events, model.len() as u64);
            prop_assert_eq!(s.unread_events, (model.len() - cursor) as u64);
            let on_disk: u64 = segments(dir.path()).iter().map(|p| fs::metadata(p).unwrap().len()).sum();
            prop_assert_eq!(s.disk_bytes, on_disk);
        }
        // Everything left is read back exactly once, in order, after a reopen.
        drop(log);
        let (mut log, _) = spill.open().unwrap();
        let all = read_all(&mut log);
        prop_assert_eq!(all, model.into_iter().collect::<Vec<_>>());
    }
}

// ---------------------------------------------------------------------------
// ENOSPC on a 64 KiB tmpfs.

#[test]
fn enospc_is_an_io_error_and_the_log_recovers() {
    let Some(tmpfs) = small_tmpfs() else {
        return;
    };
    let mnt = tmpfs.path();
    let filler = mnt.join("filler");
    fs::write(&filler, vec![1u8; 16 * 1024]).unwrap();
    let spill = Spill::new(mnt.join("spill"))
        .segment_bytes(1 << 20)
        .max_disk_bytes(1 << 30)
        .sync(SyncPolicy::EveryBatch);
    let (mut log, _) = spill.open().unwrap();
    let mut appended = Vec::new();
    let err = loop {
        let p = payload(appended.len() as u64, 1000);
        match log.append(&p) {
            Ok(seq) => appended.push((seq, p)),
            Err(e) => break e,
        }
        assert!(appended.len() < 1000, "the tmpfs never filled up");
    };
    match &err {
        SpillError::Io { source, .. } => assert_eq!(source.raw_os_error(), Some(28), "{err}"),
        other => panic!("expected Io(ENOSPC), got {other}"),
    }
    assert!(!appended.is_empty());
    // The partial frame was cut back: the file holds whole frames only.
    let seg = segments(&mnt.join("spill")).pop().unwrap();
    assert_eq!(fs::metadata(&seg).unwrap().len(), log.stats().disk_bytes);
    // Still full: still an error, still consistent.
    assert!(log.append(&payload(0, 1000)).is_err());
    // Free space: appends continue.
    fs::remove_file(&filler).unwrap();
    for _ in 0..5 {
        let p = payload(appended.len() as u64, 1000);
        let seq = log.append(&p).unwrap();
        appended.push((seq, p));
    }
    log.sync().unwrap();
    let mut reread = Vec::new();
    while let Some(r) = log.read_next().unwrap() {
        reread.push(r);
    }
    assert_eq!(reread, appended);
    drop(log);
    let (mut log, rec) = spill.open().unwrap();
    assert_eq!((rec.events, rec.torn_records), (appended.len() as u64, 0));
    assert_eq!(read_all(&mut log), appended);
}

/// A disk so full that not even the new ack file fits: acknowledging
/// deletes the delivered segments first and then writes it, so the room
/// comes back and appends continue.
#[test]
fn acknowledging_on_a_full_disk_frees_it() {
    let Some(tmpfs) = small_tmpfs() else {
        return;
    };
    let mnt = tmpfs.path();
    let spill = Spill::new(mnt.join("spill"))
        .segment_bytes(8 * 1024)
        .max_disk_bytes(1 << 30)
        .sync(SyncPolicy::Os);
    let (mut log, _) = spill.open().unwrap();
    let mut last = 0;
    while let Ok(seq) = log.append(&payload(last, 1000)) {
        last = seq;
        assert!(last < 1000, "the tmpfs never filled up");
    }
    assert!(log.stats().disk_bytes > 40 * 1024);
    while log.read_next().unwrap().is_some() {}
    log.ack(last).expect("acknowledging frees what it needs");
    assert_eq!(log.stats().disk_bytes, 0);
    let seq = log.append(&payload(0, 1000)).expect("room again");
    drop(log);
    let (mut log, recovered) = spill.open().unwrap();
    assert_eq!(recovered.events, 1, "only the new record is unacknowledged");
    assert_eq!(read_all(&mut log).first().map(|r| r.0), Some(seq));
}

/// A directory refused as not ours is left as it was: no lock file.
#[test]
fn a_refused_directory_gets_no_lock_file() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("00000000000000000001.seg");
    fs::write(&fake, b"not a segment, but named like one: 24+ bytes").unwrap();
    let err = Spill::new(dir.path()).open().unwrap_err();
    assert!(matches!(err, SpillError::Foreign { .. }), "{err}");
    let mut names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(names, ["00000000000000000001.seg"]);
}

// ---------------------------------------------------------------------------
// SIGKILL mid-append: every record whose append returned is recovered.

const CHILD_ENV: &str = "SPILL_LOG_KILL_CHILD_DIR";

/// Child mode of `sigkill_mid_append_loses_nothing_returned`: appends until
/// killed, printing each returned sequence number. A no-op otherwise.
#[test]
fn kill_child() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let (mut log, _) = Spill::new(PathBuf::from(dir))
        .segment_bytes(64 * 1024)
        .max_disk_bytes(1 << 30)
        .sync(SyncPolicy::Os)
        .open()
        .unwrap();
    let stdout = std::io::stdout();
    for i in 0u64.. {
        let seq = log
            .append(&payload(i + 1, 1 + (i as usize * 131) % 3000))
            .unwrap();
        let mut out = stdout.lock();
        writeln!(out, "seq {seq}").unwrap();
        out.flush().unwrap();
    }
}

#[test]
fn sigkill_mid_append_loses_nothing_returned() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "kill_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = Vec::new();
    for line in lines.by_ref() {
        if let Some(seq) = line.unwrap().strip_prefix("seq ") {
            printed.push(seq.parse::<u64>().unwrap());
            if printed.len() == 5000 {
                break;
            }
        }
    }
    assert_eq!(printed.len(), 5000, "the child stopped early");
    child.kill().unwrap(); // SIGKILL, mid-append with high likelihood
    for line in lines {
        if let Some(seq) = line.unwrap().strip_prefix("seq ") {
            printed.push(seq.parse().unwrap());
        }
    }
    child.wait().unwrap();
    let (mut log, rec) = Spill::new(dir.path())
        .segment_bytes(64 * 1024)
        .open()
        .unwrap();
    assert!(
        rec.events >= printed.len() as u64,
        "{rec:?} < {} printed",
        printed.len()
    );
    let all = read_all(&mut log);
    let mut it = all.iter();
    for seq in printed {
        let (s, p) = it
            .find(|(s, _)| *s == seq)
            .unwrap_or_else(|| panic!("seq {seq} lost"));
        assert_eq!(p, &payload(*s, 1 + ((*s - 1) as usize * 131) % 3000));
    }
    assert!(segments(dir.path()).len() > 1, "the child rolled segments");
}
