//! Attacks on `Batch::swap_items`, from its contract: the batch's events come out in
//! admission order without copies, `spare` (emptied first: its elements dropped) takes
//! their place, `bytes()`/`reason()` stay, dropping the batch gives the spare's buffer to
//! the dispatcher for reuse, nothing is lost or duplicated, and byte accounting
//! (`stats().buffered_bytes`, admission under the limit) is unaffected.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use dispatcher::{Batch, Batches, Dispatcher, FlushReason, Weight};

/// An event that records its drops by id.
#[derive(Debug)]
struct Tracked {
    id: u64,
    len: usize,
    drops: Arc<Mutex<HashMap<u64, u32>>>,
}

impl Weight for Tracked {
    fn weight(&self) -> usize {
        self.len
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        *self.drops.lock().unwrap().entry(self.id).or_default() += 1;
    }
}

#[derive(Default, Clone)]
struct Ledger {
    drops: Arc<Mutex<HashMap<u64, u32>>>,
}

impl Ledger {
    fn make(&self, id: u64, len: usize) -> Tracked {
        Tracked {
            id,
            len,
            drops: Arc::clone(&self.drops),
        }
    }
    fn dropped(&self, id: u64) -> u32 {
        self.drops.lock().unwrap().get(&id).copied().unwrap_or(0)
    }
    fn total(&self) -> u64 {
        self.drops
            .lock()
            .unwrap()
            .values()
            .map(|&n| u64::from(n))
            .sum()
    }
    fn assert_each_once(&self, ids: impl IntoIterator<Item = u64>) {
        let drops = self.drops.lock().unwrap();
        for id in ids {
            assert_eq!(
                drops.get(&id).copied(),
                Some(1),
                "id {id} dropped how often"
            );
        }
    }
}

const FOREIGN: u64 = 1 << 40;

#[test]
fn swap_returns_events_in_order_drops_the_spares_elements_and_keeps_bytes_and_reason() {
    let ledger = Ledger::default();
    let (dispatcher, batches) = Dispatcher::<Tracked>::builder()
        .max_buffered_bytes(1 << 20)
        .interval(Duration::from_secs(60))
        .build()
        .unwrap();
    let producer = dispatcher.producer();
    for id in 0..10 {
        producer.try_enqueue(ledger.make(id, 7)).unwrap();
    }
    dispatcher.flush();
    let mut batch = batches.recv_timeout(Duration::from_secs(5)).unwrap();
    let (bytes, reason) = (batch.bytes(), batch.reason());
    assert_eq!((bytes, reason), (70, FlushReason::Manual));
    let before = dispatcher.stats().buffered_bytes;

    let mut spare = Vec::with_capacity(64);
    for k in 0..5 {
        spare.push(ledger.make(FOREIGN + k, 1));
    }
    let events = batch.swap_items(spare);
    // The spare's own elements were dropped by the swap, exactly once, none of ours.
    ledger.assert_each_once((0..5).map(|k| FOREIGN + k));
    assert!((0..10).all(|id| ledger.dropped(id) == 0));
    assert_eq!(
        events.iter().map(|e| e.id).collect::<Vec<_>>(),
        (0..10).collect::<Vec<_>>()
    );
    assert!(batch.is_empty() && batch.items().is_empty());
    assert_eq!((batch.bytes(), batch.reason()), (bytes, reason));
    assert_eq!(
        dispatcher.stats().buffered_bytes,
        before,
        "swap moved no bytes"
    );
    drop(batch);
    assert_eq!(
        dispatcher.stats().buffered_bytes,
        before,
        "dropping the emptied batch"
    );
    assert!(
        (0..10).all(|id| ledger.dropped(id) == 0),
        "events outlive the batch"
    );
    drop(events);
    ledger.assert_each_once(0..10);
    assert_eq!(ledger.total(), 15);
    dispatcher.shutdown(Duration::from_secs(1)).unwrap();
}

#[test]
fn swapping_twice_returns_the_first_spare_emptied_and_loses_nothing() {
    let ledger = Ledger::default();
    let (dispatcher, batches) = Dispatcher::<Tracked>::builder().build().unwrap();
    let producer = dispatcher.producer();
    for id in 0..4 {
        producer.try_enqueue(ledger.make(id, 3)).unwrap();
    }
    dispatcher.flush();
    let mut batch = batches.recv_timeout(Duration::from_secs(5)).unwrap();
    let first = batch.swap_items(vec![ledger.make(FOREIGN, 1)]);
    let second = batch.swap_items(vec![ledger.make(FOREIGN + 1, 1)]);
    assert_eq!(first.len(), 4);
    assert!(
        second.is_empty(),
        "the batch held only the emptied first spare"
    );
    assert_eq!(batch.bytes(), 12);
    drop(batch);
    drop((first, second));
    ledger.assert_each_once([0, 1, 2, 3, FOREIGN, FOREIGN + 1]);
    assert_eq!(ledger.total(), 6);
    dispatcher.shutdown(Duration::from_secs(1)).unwrap();
}

/// One partition whose batches are cut by `flush` (the interval is a minute).
fn one_partition_cut_by_hand() -> (Dispatcher<Tracked>, Batches<Tracked>) {
    Dispatcher::<Tracked>::builder()
        .partitions(1)
        .interval(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// The spare's buffer goes back to the dispatcher when the batch is dropped: a later
/// batch's events come out in that very buffer (one sized for the batches: a much
/// larger one gives its spare slots back when its batch is sealed, see below).
#[test]
fn the_spares_buffer_is_reused_by_the_dispatcher() {
    let ledger = Ledger::default();
    let (dispatcher, batches) = one_partition_cut_by_hand();
    let producer = dispatcher.producer();
    // Batches of 3 events: 6 slots is within the slack a sealed batch keeps.
    let spare: Vec<Tracked> = Vec::with_capacity(6);
    let marked = spare.as_ptr() as usize;
    let mut id = 0;
    let mut round = |spare: Vec<Tracked>| -> Vec<Tracked> {
        for _ in 0..3 {
            producer.try_enqueue(ledger.make(id, 1)).unwrap();
            id += 1;
        }
        dispatcher.flush();
        let mut batch = batches.recv_timeout(Duration::from_secs(5)).unwrap();
        let events = batch.swap_items(spare);
        drop(batch);
        events
    };
    let first = round(spare);
    let mut seen = false;
    let mut held = vec![first];
    for _ in 0..20 {
        let events = round(Vec::new());
        if events.as_ptr() as usize == marked {
            assert!(events.capacity() >= 6);
            seen = true;
            break;
        }
        held.push(events);
    }
    assert!(
        seen,
        "the spare's buffer never came back out of the dispatcher"
    );
}

/// A spare far larger than the batches does not keep its slots while a batch waits in
/// it: slots are heap the byte limit does not see. The events are all there.
#[test]
fn a_spare_too_large_for_the_batches_is_shrunk_when_its_batch_is_sealed() {
    let ledger = Ledger::default();
    let (dispatcher, batches) = one_partition_cut_by_hand();
    let producer = dispatcher.producer();
    let mut largest = 0;
    for round in 0..6u64 {
        for i in 0..3 {
            producer.try_enqueue(ledger.make(round * 3 + i, 1)).unwrap();
        }
        dispatcher.flush();
        let mut batch = batches.recv_timeout(Duration::from_secs(5)).unwrap();
        // The buffer this batch waited in comes out; a spare of 4096 slots goes
        // back in, for the batches after it.
        let events = batch.swap_items(Vec::with_capacity(4096));
        drop(batch);
        assert_eq!(events.len(), 3);
        largest = largest.max(events.capacity());
    }
    assert!(largest <= 3 + 4, "a batch of 3 waited in {largest} slots");
    assert_eq!(ledger.total(), 18);
    ledger.assert_each_once(0..18);
    dispatcher.shutdown(Duration::from_secs(1)).unwrap();
}

/// Admission decisions and stats are the same whether the receiver swaps events out
/// (and keeps them alive) or drains them: the dispatcher charges bytes per batch.
#[test]
fn admission_under_the_byte_limit_is_unaffected_by_swapping() {
    fn script(swap: bool) -> Vec<String> {
        let ledger = Ledger::default();
        let (dispatcher, batches) = Dispatcher::<Tracked>::builder()
            .max_buffered_bytes(1_000)
            .max_batch_bytes(300)
            .partitions(1)
            .interval(Duration::from_secs(60))
            .build()
            .unwrap();
        let producer = dispatcher.producer();
        let mut log = Vec::new();
        let mut kept = Vec::new();
        let mut id = 0;
        for step in 0..40 {
            let len = 37 + (step * 13) % 90;
            let ok = producer.try_enqueue(ledger.make(id, len)).is_ok();
            id += 1;
            log.push(format!("{step}: enqueue {len} -> {ok}"));
            if step % 3 == 2 {
                if let Ok(mut batch) = batches.try_recv() {
                    log.push(format!(
                        "{step}: batch {} items {} bytes {:?}",
                        batch.len(),
                        batch.bytes(),
                        batch.reason()
                    ));
                    if swap {
                        let spare = if step % 2 == 0 {
                            Vec::new()
                        } else {
                            vec![ledger.make(FOREIGN + id, 5)]
                        };
                        kept.push(batch.swap_items(spare));
                    } else {
                        kept.push(batch.drain().collect());
                    }
                    log.push(format!("{step}: after take {:?}", batch.bytes()));
                }
            }
            let s = dispatcher.stats();
            log.push(format!(
                "{step}: buffered {} bytes {} items; accepted {} delivered {}",
                s.buffered_bytes, s.buffered_items, s.accepted, s.delivered
            ));
        }
        log
    }
    let plain = script(false);
    let swapped = script(true);
    for (a, b) in plain.iter().zip(&swapped) {
        assert_eq!(a, b, "drain vs swap diverge");
    }
    assert_eq!(plain.len(), swapped.len());
}

/// Several producers, several partitions, a receiver swapping with random spares (empty,
/// with capacity, holding foreign elements): every event exactly once, in each producer's
/// order, every element dropped exactly once, and the buffer empties to 0 bytes.
#[test]
fn randomized_concurrent_swaps_lose_and_duplicate_nothing() {
    for seed in 1..=4u64 {
        let ledger = Ledger::default();
        let (dispatcher, batches) = Dispatcher::<Tracked>::builder()
            .max_buffered_bytes(64 * 1024)
            .max_batch_items(1 + (seed as usize * 7) % 50)
            .partitions(seed as usize)
            .interval(Duration::from_millis(1))
            .build()
            .unwrap();
        const PRODUCERS: u64 = 4;
        const EACH: u64 = 20_000;
        let accepted = Arc::new(AtomicU64::new(0));
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                let producer = dispatcher.producer();
                let ledger = ledger.clone();
                let accepted = Arc::clone(&accepted);
                thread::spawn(move || {
                    let mut ok = Vec::new();
                    for seq in 0..EACH {
                        let id = p << 32 | seq;
                        let mut ev = ledger.make(id, (seq % 17) as usize);
                        loop {
                            match producer.try_enqueue(ev) {
                                Ok(()) => {
                                    ok.push(id);
                                    accepted.fetch_add(1, Ordering::Relaxed);
                                    break;
                                }
                                Err(e) => {
                                    ev = e.into_inner();
                                    thread::yield_now();
                                }
                            }
                        }
                    }
                    ok
                })
            })
            .collect();
        let consumer = {
            let ledger = ledger.clone();
            thread::spawn(move || {
                let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                let mut next = move || {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    rng
                };
                let mut got: Vec<u64> = Vec::new();
                let mut foreign = 0u64;
                let mut bytes_seen = 0usize;
                let mut pool: Vec<Vec<Tracked>> = Vec::new();
                loop {
                    let mut batch: Batch<Tracked> = match batches.recv() {
                        Ok(b) => b,
                        Err(_) => break,
                    };
                    let (bytes, reason) = (batch.bytes(), batch.reason());
                    // Payload weighing charges each event at least 1 byte.
                    let sum: usize = batch.iter().map(|e| e.len.max(1)).sum();
                    assert_eq!(bytes, sum, "a batch's bytes are its events' charges");
                    let spare = match next() % 4 {
                        0 => Vec::new(),
                        1 => Vec::with_capacity((next() % 5000) as usize),
                        2 => pool.pop().unwrap_or_default(),
                        _ => {
                            let mut v = pool.pop().unwrap_or_default();
                            for _ in 0..next() % 4 {
                                v.push(ledger.make(FOREIGN + foreign, 1));
                                foreign += 1;
                            }
                            v
                        }
                    };
                    let mut events = batch.swap_items(spare);
                    assert!(batch.is_empty());
                    assert_eq!((batch.bytes(), batch.reason()), (bytes, reason));
                    bytes_seen += bytes;
                    if next() % 2 == 0 {
                        drop(batch);
                    } else {
                        // Hold the emptied batch a moment longer.
                        thread::yield_now();
                        drop(batch);
                    }
                    got.extend(events.iter().map(|e| e.id));
                    events.clear();
                    if pool.len() < 8 {
                        pool.push(events);
                    }
                }
                (got, foreign, bytes_seen)
            })
        };
        let mut sent: Vec<Vec<u64>> = Vec::new();
        for p in producers {
            sent.push(p.join().unwrap());
        }
        let report = dispatcher.shutdown(Duration::from_secs(30)).unwrap();
        let (got, foreign, _bytes) = consumer.join().unwrap();
        assert_eq!(report.stats.buffered_bytes, 0, "seed {seed}");
        assert_eq!(report.stats.buffered_items, 0, "seed {seed}");
        assert_eq!(report.stats.delivered, accepted.load(Ordering::Relaxed));
        assert_eq!(
            got.len() as u64,
            PRODUCERS * EACH,
            "seed {seed}: delivered count"
        );
        // Exactly once, and in each producer's order.
        let mut last: HashMap<u64, i64> = HashMap::new();
        for id in &got {
            let (p, seq) = (id >> 32, (id & 0xFFFF_FFFF) as i64);
            let prev = last.insert(p, seq).unwrap_or(-1);
            assert!(
                seq > prev,
                "seed {seed}: producer {p} seq {seq} after {prev}"
            );
        }
        let all: Vec<u64> = sent.into_iter().flatten().collect();
        ledger.assert_each_once(all.iter().copied());
        ledger.assert_each_once((0..foreign).map(|k| FOREIGN + k));
        assert_eq!(ledger.total(), PRODUCERS * EACH + foreign, "seed {seed}");
    }
}
