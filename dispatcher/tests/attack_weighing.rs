//! Attacking `Weighing::Occupancy` by its contract: the bound holds with any
//! partitions and policy, every accepted event is accounted for exactly once,
//! refusals hand the event back, batches carry what their events were charged.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dispatcher::weight::allocation;
use dispatcher::{Dispatcher, Limits, Policy, TryEnqueueError, Weighing, Weight};

/// An event with an identity and a heap payload with spare capacity.
#[derive(Debug)]
struct Ev {
    id: u64,
    data: Vec<u8>,
}

impl Weight for Ev {
    fn weight(&self) -> usize {
        self.data.len()
    }
    fn occupancy(&self) -> usize {
        std::mem::size_of::<Self>() + allocation(self.data.capacity())
    }
}

fn ev(id: u64, len: usize, spare: usize) -> Ev {
    let mut data = Vec::with_capacity(len + spare);
    data.resize(len, 1);
    Ev { id, data }
}

/// Tiny xorshift so runs are reproducible without a dev-dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn randomized(policy: Policy, partitions: usize, seed: u64) {
    const MAX: usize = 16 * 1024;
    let evicted: Arc<Mutex<Vec<u64>>> = Arc::default();
    let evicted_hook = Arc::clone(&evicted);
    let (dispatcher, batches) = Dispatcher::<Ev>::builder()
        .max_buffered_bytes(MAX)
        .max_batch_bytes(4 * 1024)
        .partitions(partitions)
        .interval(Duration::from_millis(2))
        .policy(policy)
        .weighing(Weighing::Occupancy)
        .on_evict(move |e: Ev| evicted_hook.lock().unwrap().push(e.id))
        .build()
        .expect("valid");
    let dispatcher = Arc::new(dispatcher);
    let done = Arc::new(AtomicBool::new(false));
    let over = Arc::new(AtomicUsize::new(0));

    // Consumer: checks each batch's bytes against its events' charges.
    let consumer = std::thread::spawn(move || {
        let mut delivered = Vec::new();
        let mut bad = Vec::new();
        for batch in batches.iter() {
            let sum: usize = batch.items().iter().map(|e| e.occupancy().max(1)).sum();
            if sum != batch.bytes() {
                bad.push((batch.bytes(), sum));
            }
            delivered.extend(batch.items().iter().map(|e| e.id));
            std::thread::sleep(Duration::from_micros(300));
        }
        (delivered, bad)
    });
    // Monitor: the bound at every look.
    let monitor = {
        let (d, done, over) = (
            Arc::clone(&dispatcher),
            Arc::clone(&done),
            Arc::clone(&over),
        );
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                let s = d.stats();
                if s.buffered_bytes > MAX || s.peak_buffered_bytes > MAX {
                    over.fetch_max(
                        s.buffered_bytes.max(s.peak_buffered_bytes),
                        Ordering::Relaxed,
                    );
                }
                std::thread::yield_now();
            }
        })
    };
    // A limit changer: lowers and raises the limits while producers run.
    let changer = {
        let (d, done) = (Arc::clone(&dispatcher), Arc::clone(&done));
        std::thread::spawn(move || {
            let mut i = 0u32;
            while !done.load(Ordering::Relaxed) {
                let mut limits: Limits = d.limits();
                limits.max_batch_bytes = Some(if i % 2 == 0 { 256 } else { 4096 });
                limits.max_batch_items = if i % 3 == 0 { Some(2) } else { None };
                d.set_limits(limits).expect("valid limits");
                i += 1;
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };

    let producers: Vec<_> = (0..4u64)
        .map(|t| {
            let producer = dispatcher.producer();
            std::thread::spawn(move || {
                let mut rng = Rng(seed ^ (t + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
                let mut accepted = Vec::new();
                let mut next = t << 40;
                for _ in 0..3_000 {
                    let group = rng.below(4) == 0;
                    let make = |rng: &mut Rng, id: u64| {
                        ev(id, rng.below(900) as usize, rng.below(300) as usize)
                    };
                    if group {
                        let n = 1 + rng.below(4) as usize;
                        let items: Vec<Ev> =
                            (0..n).map(|k| make(&mut rng, next + k as u64)).collect();
                        let ids: Vec<u64> = items.iter().map(|e| e.id).collect();
                        next += n as u64;
                        match producer.try_enqueue_all(items) {
                            Ok(()) => accepted.extend(ids),
                            Err(e) => {
                                let back = e.into_inner();
                                let back_ids: Vec<u64> = back.iter().map(|e| e.id).collect();
                                assert_eq!(back_ids, ids, "all-or-nothing hands all back");
                            }
                        }
                    } else {
                        let item = make(&mut rng, next);
                        let id = next;
                        next += 1;
                        let outcome = match policy {
                            Policy::Block { .. } => producer
                                .enqueue_timeout(item, Duration::from_millis(5))
                                .map_err(|e| e.into_inner()),
                            _ => producer.try_enqueue(item).map_err(|e| e.into_inner()),
                        };
                        match outcome {
                            Ok(()) => accepted.push(id),
                            Err(back) => assert_eq!(back.id, id, "the refused event comes back"),
                        }
                    }
                }
                accepted
            })
        })
        .collect();
    let mut accepted: Vec<u64> = Vec::new();
    for p in producers {
        accepted.extend(p.join().expect("producer"));
    }
    done.store(true, Ordering::Relaxed);
    monitor.join().unwrap();
    changer.join().unwrap();
    let dispatcher = Arc::into_inner(dispatcher).expect("sole owner");
    let stats_before = dispatcher.stats();
    let returned: Vec<u64> = dispatcher.stop().into_iter().map(|e| e.id).collect();
    let (delivered, bad) = consumer.join().unwrap();
    assert_eq!(
        over.load(Ordering::Relaxed),
        0,
        "bound broken; {stats_before:?}"
    );
    assert!(
        bad.is_empty(),
        "batch bytes != sum of charges: {:?}",
        &bad[..bad.len().min(5)]
    );

    let mut seen: HashMap<u64, &str> = HashMap::new();
    let evicted = evicted.lock().unwrap().clone();
    for (ids, how) in [
        (&delivered, "delivered"),
        (&evicted, "evicted"),
        (&returned, "returned"),
    ] {
        for id in ids {
            if let Some(prev) = seen.insert(*id, how) {
                panic!("event {id} both {prev} and {how}");
            }
        }
    }
    let accepted_set: std::collections::HashSet<u64> = accepted.iter().copied().collect();
    for id in seen.keys() {
        assert!(
            accepted_set.contains(id),
            "event {id} came out but was refused"
        );
    }
    let lost: Vec<_> = accepted
        .iter()
        .filter(|id| !seen.contains_key(id))
        .collect();
    assert!(
        lost.is_empty(),
        "{} accepted events lost, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
    if !matches!(policy, Policy::DropOldest) {
        assert!(evicted.is_empty(), "only drop-oldest evicts");
    }
}

#[test]
fn randomized_reject_one_partition() {
    randomized(Policy::Reject, 1, 0xDEAD_BEEF);
}

#[test]
fn randomized_reject_many_partitions() {
    randomized(Policy::Reject, 5, 0x1234_5678);
}

#[test]
fn randomized_block_many_partitions() {
    randomized(
        Policy::Block {
            timeout: Duration::from_millis(5),
        },
        3,
        0xABCD,
    );
}

#[test]
fn randomized_drop_oldest_one_partition() {
    randomized(Policy::DropOldest, 1, 0x5555);
}

#[test]
fn randomized_drop_oldest_many_partitions() {
    randomized(Policy::DropOldest, 4, 0x7777);
}

/// An event whose occupancy panics when told to.
#[derive(Debug)]
struct Touchy {
    id: u64,
    panic: Arc<AtomicBool>,
}
impl Weight for Touchy {
    fn weight(&self) -> usize {
        100
    }
    fn occupancy(&self) -> usize {
        assert!(!self.panic.load(Ordering::Relaxed), "occupancy panics");
        200
    }
}

#[test]
fn occupancy_panicking_after_admission_loses_nothing_and_keeps_counters_exact() {
    let panic = Arc::new(AtomicBool::new(false));
    let evicted: Arc<Mutex<Vec<u64>>> = Arc::default();
    let hook = Arc::clone(&evicted);
    let (dispatcher, batches) = Dispatcher::<Touchy>::builder()
        .max_buffered_bytes(1000)
        .interval(Duration::from_secs(3600))
        .policy(Policy::DropOldest)
        .weighing(Weighing::Occupancy)
        .on_evict(move |e: Touchy| hook.lock().unwrap().push(e.id))
        .build()
        .expect("valid");
    let producer = dispatcher.producer();
    for id in 0..5 {
        producer
            .try_enqueue(Touchy {
                id,
                panic: Arc::clone(&panic),
            })
            .expect("fits");
    }
    assert_eq!(dispatcher.stats().buffered_bytes, 1000);
    // Now every re-weighing panics: lowering the batch limit re-cuts, evicting re-weighs.
    panic.store(true, Ordering::Relaxed);
    let mut limits = dispatcher.limits();
    limits.max_batch_bytes = Some(300);
    let cut = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        dispatcher.set_limits(limits)
    }));
    let _ = cut;
    let s = dispatcher.stats();
    assert!(s.buffered_bytes <= 1000, "{s:?}");
    assert_eq!(
        s.buffered_items, 5,
        "set_limits never drops an accepted event: {s:?}"
    );
    // A new event: its own weighing panics at admission; it is not accepted.
    let admitted = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        producer.try_enqueue(Touchy {
            id: 99,
            panic: Arc::clone(&panic),
        })
    }));
    assert!(admitted.is_err(), "weighing the new event panics");
    panic.store(false, Ordering::Relaxed);
    let s = dispatcher.stats();
    assert_eq!(s.accepted, 5, "{s:?}");
    assert!(s.buffered_bytes <= 1000, "{s:?}");
    drop(producer);
    let returned: Vec<u64> = dispatcher.stop().into_iter().map(|e| e.id).collect();
    let mut out: Vec<u64> = batches
        .iter()
        .flat_map(|b| b.into_vec())
        .map(|e| e.id)
        .chain(returned)
        .chain(evicted.lock().unwrap().iter().copied())
        .collect();
    out.sort_unstable();
    assert_eq!(
        out,
        vec![0, 1, 2, 3, 4],
        "every accepted event exactly once"
    );
}

/// An event whose occupancy grows every time it is asked.
#[derive(Debug)]
struct Growing {
    id: u64,
    asked: AtomicUsize,
}
impl Weight for Growing {
    fn weight(&self) -> usize {
        10
    }
    fn occupancy(&self) -> usize {
        let n = self.asked.fetch_add(1, Ordering::Relaxed);
        100 + n * 500
    }
}

#[test]
fn occupancy_changing_after_admission_keeps_the_bound_and_the_events() {
    let evicted: Arc<Mutex<Vec<u64>>> = Arc::default();
    let hook = Arc::clone(&evicted);
    let (dispatcher, batches) = Dispatcher::<Growing>::builder()
        .max_buffered_bytes(1000)
        .max_batch_bytes(1000)
        .interval(Duration::from_secs(3600))
        .policy(Policy::DropOldest)
        .weighing(Weighing::Occupancy)
        .on_evict(move |e: Growing| hook.lock().unwrap().push(e.id))
        .build()
        .expect("valid");
    let producer = dispatcher.producer();
    let mut accepted = 0u64;
    for id in 0..50 {
        producer
            .try_enqueue(Growing {
                id,
                asked: AtomicUsize::new(0),
            })
            .expect("drop-oldest admits what fits alone");
        accepted += 1;
        let s = dispatcher.stats();
        assert!(s.buffered_bytes <= 1000, "after {id}: {s:?}");
        if id % 7 == 0 {
            let mut limits = dispatcher.limits();
            limits.max_batch_bytes = Some(if id % 2 == 0 { 150 } else { 1000 });
            dispatcher.set_limits(limits).expect("valid");
            let s = dispatcher.stats();
            assert!(s.buffered_bytes <= 1000, "after limits at {id}: {s:?}");
        }
    }
    drop(producer);
    let returned = dispatcher.stop();
    let delivered: Vec<u64> = batches
        .iter()
        .flat_map(|b| b.into_vec())
        .map(|e| e.id)
        .collect();
    let total =
        returned.len() as u64 + delivered.len() as u64 + evicted.lock().unwrap().len() as u64;
    assert_eq!(
        total, accepted,
        "every accepted event delivered, evicted or returned"
    );
}

/// An event claiming an enormous occupancy.
#[derive(Debug)]
struct Huge(usize);
impl Weight for Huge {
    fn weight(&self) -> usize {
        1
    }
    fn occupancy(&self) -> usize {
        self.0
    }
}

#[test]
fn huge_occupancies_are_refused_and_handed_back_without_eviction() {
    for policy in [
        Policy::Reject,
        Policy::DropOldest,
        Policy::Block {
            timeout: Duration::from_millis(1),
        },
    ] {
        let (dispatcher, _batches) = Dispatcher::<Huge>::builder()
            .max_buffered_bytes(1 << 20)
            .interval(Duration::from_secs(3600))
            .policy(policy)
            .weighing(Weighing::Occupancy)
            .build()
            .expect("valid");
        let producer = dispatcher.producer();
        producer.try_enqueue(Huge(1000)).expect("fits");
        producer
            .try_enqueue(Huge(0))
            .expect("zero is charged one byte");
        assert_eq!(dispatcher.stats().buffered_bytes, 1001, "{policy}");
        for big in [usize::MAX, usize::MAX / 2 + 1, (1 << 20) + 1] {
            let err = producer.try_enqueue(Huge(big)).unwrap_err();
            assert!(
                matches!(err, TryEnqueueError::TooLarge(Huge(b)) if b == big),
                "{policy}: {err:?}"
            );
            // Two that each fit but overflow usize together.
            let group = producer
                .try_enqueue_all(vec![Huge(usize::MAX), Huge(usize::MAX)])
                .unwrap_err()
                .into_inner();
            assert_eq!(group.len(), 2);
            let group = producer
                .try_enqueue_all(vec![Huge(600_000), Huge(600_000)])
                .unwrap_err()
                .into_inner();
            assert_eq!(
                group.len(),
                2,
                "{policy}: a group over the limit is refused whole"
            );
        }
        let s = dispatcher.stats();
        assert_eq!(
            (s.buffered_bytes, s.buffered_items, s.dropped),
            (1001, 2, 0),
            "{policy}: {s:?}"
        );
        assert_eq!(dispatcher.stop().len(), 2);
    }
}

#[test]
fn allocation_contract_holds_across_the_range() {
    assert_eq!(allocation(0), 0);
    for n in 1..=8 {
        assert_eq!(allocation(n), 8);
    }
    for n in 9..=128 {
        assert_eq!(allocation(n), n.next_multiple_of(16), "{n}");
    }
    let mut prev = 0;
    for n in 1..=(1usize << 20) {
        let a = allocation(n);
        assert!(a >= n && a >= prev, "{n} -> {a}");
        if (129..=16 * 1024).contains(&n) {
            let pow = n.next_power_of_two();
            let step = pow / 8; // four classes between pow/2 and pow
            assert_eq!(a, n.next_multiple_of(step.max(16)), "{n}");
        } else if n > 16 * 1024 {
            assert_eq!(a, n.next_multiple_of(4096), "{n}");
        }
        prev = a;
    }
    for n in [
        usize::MAX,
        usize::MAX - 1,
        usize::MAX - 4095,
        usize::MAX / 2 + 3,
    ] {
        assert!(allocation(n) >= n, "{n}");
    }
    assert_eq!(allocation(usize::MAX - 4094), usize::MAX);
}

#[test]
fn vec_and_string_occupancy_count_their_capacity() {
    let v: Vec<u8> = Vec::with_capacity(3000);
    assert_eq!(v.occupancy(), 24 + 3072);
    let mut s = String::with_capacity(129);
    s.push('x');
    assert_eq!(s.occupancy(), 24 + 160);
    let (dispatcher, _b) = Dispatcher::<Vec<u8>>::builder()
        .max_buffered_bytes(100_000)
        .interval(Duration::from_secs(3600))
        .weighing(Weighing::Occupancy)
        .build()
        .expect("valid");
    let p = dispatcher.producer();
    p.try_enqueue(Vec::with_capacity(3000)).unwrap();
    p.try_enqueue(Vec::new()).unwrap();
    assert_eq!(dispatcher.stats().buffered_bytes, 24 + 3072 + 24);
    drop(p);
    dispatcher.stop();
}

#[test]
fn drop_oldest_refusals_evict_nothing_and_lowered_limits_drop_nothing_silently() {
    let evicted: Arc<Mutex<Vec<u64>>> = Arc::default();
    let hook = Arc::clone(&evicted);
    let (dispatcher, batches) = Dispatcher::<Ev>::builder()
        .max_buffered_bytes(4096)
        .interval(Duration::from_secs(3600))
        .policy(Policy::DropOldest)
        .weighing(Weighing::Occupancy)
        .on_evict(move |e: Ev| hook.lock().unwrap().push(e.id))
        .build()
        .expect("valid");
    let producer = dispatcher.producer();
    let each = ev(0, 100, 0).occupancy();
    let mut id = 0;
    while dispatcher.stats().buffered_bytes + each <= 4096 {
        producer.try_enqueue(ev(id, 100, 0)).expect("fits");
        id += 1;
    }
    let before = dispatcher.stats();
    // A group over the whole limit: refused, nothing evicted.
    let group: Vec<Ev> = (0..50).map(|k| ev(1000 + k, 100, 0)).collect();
    let back = producer.try_enqueue_all(group).unwrap_err().into_inner();
    assert_eq!(back.len(), 50);
    // One event over the whole limit: refused, nothing evicted.
    let one = producer.try_enqueue(ev(2000, 5000, 0)).unwrap_err();
    assert!(
        matches!(one, TryEnqueueError::TooLarge(ref e) if e.id == 2000),
        "{one:?}"
    );
    let after = dispatcher.stats();
    assert_eq!(
        (after.buffered_bytes, after.buffered_items, after.dropped),
        (before.buffered_bytes, before.buffered_items, 0)
    );
    assert!(evicted.lock().unwrap().is_empty());
    // A group that fits only by evicting: admitted whole, the evicted are counted and handed over.
    let group: Vec<Ev> = (0..3).map(|k| ev(3000 + k, 100, 0)).collect();
    producer
        .try_enqueue_all(group)
        .expect("drop-oldest makes room");
    // Lower the limit below what is buffered, then keep admitting.
    let mut limits = dispatcher.limits();
    limits.max_buffered_bytes = 1024;
    limits.max_batch_bytes = Some(512);
    dispatcher.set_limits(limits).expect("valid");
    assert_eq!(
        dispatcher.stats().dropped,
        evicted.lock().unwrap().len() as u64,
        "lowering limits drops nothing by itself"
    );
    for k in 0..20 {
        producer
            .try_enqueue(ev(4000 + k, 100, 0))
            .expect("drop-oldest admits");
    }
    let s = dispatcher.stats();
    assert_eq!(s.dropped, evicted.lock().unwrap().len() as u64, "{s:?}");
    drop(producer);
    let returned = dispatcher.stop();
    let delivered: usize = batches.iter().map(|b| b.items().len()).sum();
    let accepted = id as usize + 3 + 20;
    assert_eq!(
        returned.len() + delivered + evicted.lock().unwrap().len(),
        accepted,
        "every accepted event delivered, evicted or returned"
    );
}
