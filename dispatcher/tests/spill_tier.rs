//! The disk tier wired into the dispatcher (feature `spill`): overflow to
//! disk instead of refusal, order across the tiers, the memory policy when
//! the disk is full, acknowledgement, recovery after a drop or an expired
//! shutdown, sink mode, groups, and many producers checked event by event.

#![allow(missing_docs)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use dispatcher::spill::{Raw, Spill, SyncPolicy};
use dispatcher::{Batch, Builder, Dispatcher, Policy, TryEnqueueError, sink};

const LONG: Duration = Duration::from_secs(30);

/// An event: producer id, sequence number, then padding to `len` bytes.
fn event(producer: u8, seq: u32, len: usize) -> Vec<u8> {
    let mut v = vec![producer];
    v.extend_from_slice(&seq.to_le_bytes());
    v.resize(len.max(5), 0xab);
    v
}

fn id(event: &[u8]) -> (u8, u32) {
    (
        event[0],
        u32::from_le_bytes(event[1..5].try_into().unwrap()),
    )
}

fn spill(dir: &std::path::Path) -> Spill {
    Spill::new(dir)
        .segment_bytes(64 << 10)
        .max_disk_bytes(64 << 20)
        .sync(SyncPolicy::Os)
}

fn small_memory(dir: &std::path::Path) -> Builder<Vec<u8>> {
    Dispatcher::<Vec<u8>>::builder()
        .max_buffered_bytes(1024)
        .max_batch_bytes(256)
        .interval(Duration::from_millis(2))
        .spill(spill(dir).open().unwrap(), Raw)
}

/// Receives until the end of the stream, returning every event's id.
fn drain(batches: dispatcher::Batches<Vec<u8>>) -> thread::JoinHandle<Vec<(u8, u32)>> {
    thread::spawn(move || {
        let mut seen = Vec::new();
        for batch in &batches {
            seen.extend(batch.iter().map(|e| id(e)));
        }
        seen
    })
}

fn assert_in_order_once(seen: &[(u8, u32)], producers: u8, per: u32) {
    let mut next: HashMap<u8, u32> = HashMap::new();
    for &(p, s) in seen {
        let want = next.entry(p).or_default();
        assert_eq!(s, *want, "producer {p}: got {s}, expected {want}");
        *want += 1;
    }
    for p in 0..producers {
        assert_eq!(next.get(&p).copied().unwrap_or(0), per, "producer {p}");
    }
}

#[test]
fn events_that_do_not_fit_go_to_disk_and_come_back_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (dispatcher, batches) = small_memory(dir.path()).build().unwrap();
    let producer = dispatcher.producer();
    // Nobody receives yet: memory fills, the rest goes to disk, never refused.
    for seq in 0..2000 {
        producer.try_enqueue(event(0, seq, 40)).unwrap();
    }
    let stats = dispatcher.stats();
    assert_eq!(stats.accepted, 2000);
    assert!(stats.spill.spilled >= 2000 - 1024 / 40, "{stats:?}");
    assert!(stats.buffered_bytes <= 1024 && stats.peak_buffered_bytes <= 1024);
    let consumer = drain(batches);
    let report = dispatcher.shutdown(LONG).unwrap();
    assert_in_order_once(&consumer.join().unwrap(), 1, 2000);
    let s = report.stats;
    assert_eq!(
        (s.delivered, s.spill.backlog, s.spill.replayed),
        (2000, 0, s.spill.spilled)
    );
    assert!(s.peak_buffered_bytes <= 1024);
    // Everything was acknowledged: a new start finds nothing to replay.
    let (_log, recovered) = spill(dir.path()).open().unwrap();
    assert_eq!(recovered.events, 0);
}

#[test]
fn many_producers_lose_nothing_and_keep_their_order_through_the_disk() {
    for (policy, partitions) in [
        (Policy::Reject, 1),
        (
            Policy::Block {
                timeout: Duration::from_secs(5),
            },
            3,
        ),
        (Policy::DropOldest, 2),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (dispatcher, batches) = small_memory(dir.path())
            .policy(policy)
            .partitions(partitions)
            .build()
            .unwrap();
        let consumer = thread::spawn(move || {
            let mut seen = Vec::new();
            for (n, batch) in batches.iter().enumerate() {
                if n % 16 == 0 {
                    thread::sleep(Duration::from_micros(300)); // a consumer that lags
                }
                seen.extend(batch.iter().map(|e| id(e)));
            }
            seen
        });
        const PER: u32 = 3000;
        let producers: Vec<_> = (0..4u8)
            .map(|p| {
                let producer = dispatcher.producer();
                thread::spawn(move || {
                    let mut rng = fastrand::Rng::with_seed(u64::from(p));
                    for seq in 0..PER {
                        let e = event(p, seq, rng.usize(5..120));
                        // The disk has room for everything: nothing is refused.
                        producer.try_enqueue(e).unwrap();
                    }
                })
            })
            .collect();
        producers.into_iter().for_each(|h| h.join().unwrap());
        let report = dispatcher.shutdown(LONG).unwrap();
        assert_in_order_once(&consumer.join().unwrap(), 4, PER);
        assert_eq!(
            report.stats.dropped, 0,
            "{policy:?}: the disk took the overflow"
        );
        assert!(
            report.stats.spill.spilled > 0,
            "{policy:?}: {:?}",
            report.stats
        );
        assert!(report.stats.peak_buffered_bytes <= 1024, "{policy:?}");
    }
}

#[test]
fn a_full_disk_meets_the_memory_policy_and_returns_the_event() {
    let dir = tempfile::tempdir().unwrap();
    let tiny = Spill::new(dir.path())
        .segment_bytes(4096)
        .max_disk_bytes(4096);
    let (dispatcher, _batches) = Dispatcher::<Vec<u8>>::builder()
        .max_buffered_bytes(1024)
        .spill(tiny.open().unwrap(), Raw)
        .build()
        .unwrap();
    let producer = dispatcher.producer();
    let mut accepted = 0;
    let refused = loop {
        match producer.try_enqueue(event(0, accepted, 500)) {
            Ok(()) => accepted += 1,
            Err(e) => break e,
        }
    };
    let TryEnqueueError::Full(back) = refused else {
        panic!("expected Full, got {refused:?}");
    };
    assert_eq!(id(&back), (0, accepted), "the refused event comes back");
    let s = dispatcher.stats();
    assert_eq!(
        (s.accepted, s.rejected.full, s.spill.fallbacks),
        (u64::from(accepted), 1, 1)
    );
    assert!(s.spill.disk_bytes <= 4096 && s.spill.spilled > 0, "{s:?}");
    assert!(dispatcher.spill_error().is_some());
}

#[test]
fn what_an_expired_shutdown_leaves_on_disk_is_delivered_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (dispatcher, batches) = small_memory(dir.path()).build().unwrap();
    let producer = dispatcher.producer();
    for seq in 0..500 {
        producer.try_enqueue(event(0, seq, 50)).unwrap();
    }
    drop(producer);
    // A receiver that takes nothing: the deadline passes.
    let timeout = dispatcher.shutdown(Duration::from_millis(100)).unwrap_err();
    let report = timeout.report.clone();
    let returned: Vec<_> = timeout.undelivered.iter().map(|e| id(e)).collect();
    let left = report.stats.spill.backlog;
    assert!(left > 0, "{:?}", report.stats);
    drop(batches);

    let (dispatcher, batches) = small_memory(dir.path()).build().unwrap();
    assert!(dispatcher.stats().spill.recovered_events >= left);
    let consumer = drain(batches);
    dispatcher.shutdown(LONG).unwrap();
    let mut all = returned;
    all.extend(consumer.join().unwrap());
    all.sort_unstable();
    all.dedup();
    assert_eq!(all, (0..500).map(|s| (0, s)).collect::<Vec<_>>());
}

#[test]
fn a_batch_the_receiver_still_held_at_a_crash_is_delivered_again() {
    let dir = tempfile::tempdir().unwrap();
    let (dispatcher, batches) = small_memory(dir.path()).build().unwrap();
    let producer = dispatcher.producer();
    for seq in 0..300 {
        producer.try_enqueue(event(0, seq, 50)).unwrap();
    }
    // Memory holds the first 20 events; 20.. went to disk. Take batches
    // until one holds an event read back from disk, and never drop them.
    let first_spilled = 1024 / 50;
    let mut held: Vec<Batch<Vec<u8>>> = Vec::new();
    while !held
        .iter()
        .flat_map(|b| b.iter())
        .any(|e| id(e).1 >= first_spilled)
    {
        held.push(batches.recv_timeout(LONG).unwrap());
    }
    let held_ids: Vec<_> = held.iter().flat_map(|b| b.iter().map(|e| id(e))).collect();
    // The crash: nothing is dropped, nothing shuts down.
    std::mem::forget(held);
    std::mem::forget(batches);
    std::mem::forget(producer);
    drop(dispatcher); // releases the directory, acknowledges what left memory

    let (dispatcher, batches) = small_memory(dir.path()).build().unwrap();
    let consumer = drain(batches);
    dispatcher.shutdown(LONG).unwrap();
    let again = consumer.join().unwrap();
    let replayed_held = held_ids.iter().filter(|h| again.contains(h)).count();
    assert!(
        replayed_held > 0,
        "held batches from disk come back after the crash"
    );
    // Nothing spilled is lost: every event from the first spilled one on is here.
    let mut all: Vec<_> = held_ids.into_iter().chain(again).collect();
    all.sort_unstable();
    all.dedup();
    let missing: Vec<_> = (first_spilled..300)
        .filter(|s| all.binary_search(&(0, *s)).is_err())
        .collect();
    assert!(missing.is_empty(), "lost {missing:?}");
}

#[test]
fn the_sink_acknowledges_what_it_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let written = Arc::new(Mutex::new(Vec::new()));
    let sink_written = Arc::clone(&written);
    let dispatcher = Dispatcher::<Vec<u8>>::builder()
        .max_buffered_bytes(1024)
        .max_batch_bytes(256)
        .interval(Duration::from_millis(2))
        .spill(spill(dir.path()).open().unwrap(), Raw)
        .build_with_sink(sink::from_fn(
            move |batch: &Batch<Vec<u8>>, _: &sink::FlushContext| -> Result<(), String> {
                thread::sleep(Duration::from_micros(200));
                sink_written
                    .lock()
                    .unwrap()
                    .extend(batch.iter().map(|e| id(e)));
                Ok(())
            },
        ))
        .unwrap();
    let producer = dispatcher.producer();
    for seq in 0..1500 {
        producer.try_enqueue(event(0, seq, 60)).unwrap();
    }
    let report = dispatcher.shutdown(LONG).unwrap();
    assert!(report.stats.spill.spilled > 0);
    let written = written.lock().unwrap().clone();
    assert_in_order_once(&written, 1, 1500);
    let (_log, recovered) = spill(dir.path()).open().unwrap();
    assert_eq!(
        recovered.events, 0,
        "everything the sink wrote was acknowledged"
    );
}

#[test]
fn a_group_goes_to_disk_whole_and_comes_back_whole() {
    let dir = tempfile::tempdir().unwrap();
    let (dispatcher, batches) = small_memory(dir.path()).build().unwrap();
    let producer = dispatcher.producer();
    for seq in 0..20 {
        producer.try_enqueue(event(0, seq, 50)).unwrap(); // fills memory
    }
    let group: Vec<_> = (20..30).map(|s| event(0, s, 50)).collect();
    producer.try_enqueue_all(group).unwrap();
    producer.try_enqueue(event(0, 30, 50)).unwrap();
    assert!(dispatcher.stats().spill.spilled >= 11);
    let consumer = drain(batches);
    dispatcher.shutdown(LONG).unwrap();
    assert_in_order_once(&consumer.join().unwrap(), 1, 31);
}

#[test]
fn a_second_dispatcher_cannot_open_the_same_directory_until_the_first_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let (first, _batches) = small_memory(dir.path()).build().unwrap();
    assert!(
        spill(dir.path()).open().is_err(),
        "locked while the first lives"
    );
    drop(first);
    assert!(spill(dir.path()).open().is_ok(), "released by drop");
}

#[test]
fn a_can_add_hook_cannot_be_combined_with_the_disk_tier() {
    let dir = tempfile::tempdir().unwrap();
    let err = small_memory(dir.path())
        .can_add(|_, _| true)
        .build()
        .unwrap_err();
    assert_eq!(err.field(), "spill");
    assert!(
        spill(dir.path()).open().is_ok(),
        "the refused build released the lock"
    );
}

#[test]
fn write_ahead_sends_every_event_through_the_disk() {
    let dir = tempfile::tempdir().unwrap();
    let (dispatcher, batches) = Dispatcher::<Vec<u8>>::builder()
        .max_buffered_bytes(1 << 20)
        .interval(Duration::from_millis(2))
        .spill(spill(dir.path()).write_ahead(true).open().unwrap(), Raw)
        .build()
        .unwrap();
    let consumer = drain(batches);
    let producer = dispatcher.producer();
    for seq in 0..100 {
        producer.try_enqueue(event(0, seq, 20)).unwrap();
    }
    let report = dispatcher.shutdown(LONG).unwrap();
    assert_eq!(
        (report.stats.spill.spilled, report.stats.spill.replayed),
        (100, 100)
    );
    assert_in_order_once(&consumer.join().unwrap(), 1, 100);
}

/// Decodes like `Raw`, but panics on an event whose sequence number is 25.
struct Fussy;

impl dispatcher::spill::Codec<Vec<u8>> for Fussy {
    fn encode(&self, item: &Vec<u8>, out: &mut Vec<u8>) {
        out.extend_from_slice(item);
    }
    fn decode(&self, bytes: &[u8]) -> Result<Vec<u8>, dispatcher::spill::DecodeError> {
        assert_ne!(id(bytes).1, 25, "a codec that panics");
        Ok(bytes.to_vec())
    }
}

#[test]
fn a_codec_that_panics_costs_its_record_not_the_tier() {
    let dir = tempfile::tempdir().unwrap();
    let (dispatcher, batches) = Dispatcher::<Vec<u8>>::builder()
        .max_buffered_bytes(1024)
        .interval(Duration::from_millis(2))
        .spill(spill(dir.path()).open().unwrap(), Fussy)
        .build()
        .unwrap();
    let producer = dispatcher.producer();
    for seq in 0..100 {
        producer.try_enqueue(event(0, seq, 50)).unwrap();
    }
    let consumer = drain(batches);
    let report = dispatcher.shutdown(LONG).unwrap();
    let seen = consumer.join().unwrap();
    assert_eq!(report.stats.spill.undeliverable, 1);
    assert_eq!(seen.len(), 99);
    assert!(!seen.contains(&(0, 25)));
}

#[test]
fn flush_and_wait_waits_for_what_is_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let (dispatcher, batches) = small_memory(dir.path()).build().unwrap();
    let producer = dispatcher.producer();
    for seq in 0..300 {
        producer.try_enqueue(event(0, seq, 50)).unwrap();
    }
    assert!(dispatcher.stats().spill.backlog > 0);
    let consumer = drain(batches);
    dispatcher.flush_and_wait(LONG).unwrap();
    let s = dispatcher.stats();
    assert_eq!((s.delivered, s.spill.backlog), (300, 0), "{s:?}");
    dispatcher.shutdown(LONG).unwrap();
    assert_in_order_once(&consumer.join().unwrap(), 1, 300);
}

#[test]
fn delivered_segments_are_deleted_while_the_dispatcher_runs() {
    let dir = tempfile::tempdir().unwrap();
    let small_segments = spill(dir.path()).segment_bytes(4096);
    let (dispatcher, batches) = Dispatcher::<Vec<u8>>::builder()
        .max_buffered_bytes(1024)
        .interval(Duration::from_millis(2))
        .spill(small_segments.open().unwrap(), Raw)
        .build()
        .unwrap();
    let producer = dispatcher.producer();
    for seq in 0..500 {
        producer.try_enqueue(event(0, seq, 100)).unwrap();
    }
    let before = dispatcher.stats().spill.disk_bytes;
    assert!(before > 40_000, "{before}");
    let consumer = drain(batches);
    // No shutdown yet: acknowledgements delete segments as batches go.
    let deadline = std::time::Instant::now() + LONG;
    while dispatcher.stats().spill.disk_bytes > 4096 {
        assert!(
            std::time::Instant::now() < deadline,
            "{:?}",
            dispatcher.stats().spill
        );
        thread::sleep(Duration::from_millis(10));
    }
    dispatcher.shutdown(LONG).unwrap();
    assert_in_order_once(&consumer.join().unwrap(), 1, 500);
}

#[test]
fn an_event_accepted_under_a_larger_limit_comes_back_alone_instead_of_being_lost() {
    let dir = tempfile::tempdir().unwrap();
    let (dispatcher, batches) = Dispatcher::<Vec<u8>>::builder()
        .max_buffered_bytes(1024)
        .interval(Duration::from_millis(2))
        .spill(spill(dir.path()).open().unwrap(), Raw)
        .build()
        .unwrap();
    let producer = dispatcher.producer();
    for seq in 0..30 {
        producer.try_enqueue(event(0, seq, 300)).unwrap();
    }
    assert!(dispatcher.stats().spill.backlog > 20);
    let mut limits = dispatcher.limits();
    limits.max_buffered_bytes = 200;
    limits.max_batch_bytes = Some(200);
    dispatcher.set_limits(limits).unwrap();
    let consumer = drain(batches);
    let report = dispatcher.shutdown(LONG).unwrap();
    assert_eq!(report.stats.spill.undeliverable, 0);
    assert_in_order_once(&consumer.join().unwrap(), 1, 30);
}
