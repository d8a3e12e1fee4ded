//! Attacks on "the dispatcher's batch buffers hold few spare slots" (commit 8f33227):
//! every delivered batch's buffer must satisfy `capacity - len <= len / 16 + 4`,
//! whatever the batch sizes, spares handed back and delivery mode, with nothing
//! lost, duplicated or reordered, the byte accounting exact, and (under
//! `Weighing::Occupancy`) the real heap of a full dispatcher near its limit.
//!
//! Every test takes one lock (`serial`): the heap tests count the process's live
//! heap with a global allocator, which other tests running at once would disturb.
#![allow(unsafe_code)] // the counting global allocator

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use dispatcher::sink::{self, FlushContext, Retry};
use dispatcher::{Batch, Dispatcher, FlushReason, Limits, Policy, Weighing, Weight};

mod attack_kit;

use attack_kit::ledger::{Fates, assert_exactly_once};
use attack_kit::{Id, common};
use common::Ev;

// ---------------------------------------------------------------------------
// A counting allocator
// ---------------------------------------------------------------------------

/// `System`, counting live and peak bytes on the side.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

fn grew(by: isize) {
    let now = LIVE.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: every method forwards its arguments unchanged to `System`, whose
// `GlobalAlloc` contract is the one the caller of each method upholds; the
// counters are atomics touched after the call and never allocate, so the
// allocator is not re-entered. Every test of this file runs on it.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's `layout` contract, passed on.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size() as isize);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's `layout` contract, passed on.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size() as isize);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator, i.e. from `System`, with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for `dealloc`, with the caller's `new_size` contract.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            grew(new_size as isize - layout.size() as isize);
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------------
// Events and checks
// ---------------------------------------------------------------------------

/// The shared test event (producer, per-producer seq), weighing 1 to 7 bytes.
fn ev(producer: u8, seq: u32) -> Ev {
    common::ev(producer, seq, 1 + (seq % 7) as usize)
}

/// The slack the contract allows a buffer holding `len` events.
fn allowed(len: usize) -> usize {
    len / 16 + 4
}

/// Records every buffer that keeps more spare slots than allowed.
#[derive(Default)]
struct Slack {
    bad: Vec<String>,
    seen: usize,
}

impl Slack {
    fn check<T>(&mut self, what: &str, v: &Vec<T>) {
        self.seen += 1;
        let spare = v.capacity() - v.len();
        if spare > allowed(v.len()) {
            self.bad.push(format!(
                "{what}: len {} capacity {} (spare {spare} > {})",
                v.len(),
                v.capacity(),
                allowed(v.len())
            ));
        }
    }

    /// Checks a delivered buffer, then passes its events to `ledger`.
    fn check_and_take(&mut self, ledger: &mut Ledger, what: &str, v: &Vec<Ev>) {
        self.check(what, v);
        v.iter().for_each(|e| ledger.take(e));
    }

    fn assert_ok(&self) {
        assert!(self.seen > 0, "no buffer was checked");
        assert!(
            self.bad.is_empty(),
            "{} of {} delivered buffers keep too many spare slots:\n  {}",
            self.bad.len(),
            self.seen,
            self.bad
                .iter()
                .take(12)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n  ")
        );
    }
}

/// Every producer's events in the order they arrived, checked at the end
/// by the attack tests' one exactly-once check (`attack_kit::ledger`):
/// each sent event once, and each producer's in order.
#[derive(Default)]
struct Ledger {
    got: Vec<Id>,
}

impl Ledger {
    fn take(&mut self, e: &Ev) {
        self.got.push((u32::from(e.producer), e.seq));
    }

    fn assert_all(&self, sent: &HashMap<u8, u32>) {
        let accepted: Vec<Id> = sent
            .iter()
            .flat_map(|(&p, &n)| (0..n).map(move |seq| (u32::from(p), seq)))
            .collect();
        let fates = Fates {
            streams: vec![("delivered".into(), self.got.clone())],
            ..Fates::default()
        };
        assert_exactly_once("every producer's events", &accepted, &fates);
    }
}

/// How a consumer takes the events out of a batch.
#[derive(Debug, Clone, Copy)]
enum Take {
    IntoVec,
    SwapEmpty,
    SwapHuge,
    SwapExact,
    SwapTriple,
}

const TAKES: [Take; 5] = [
    Take::IntoVec,
    Take::SwapEmpty,
    Take::SwapHuge,
    Take::SwapExact,
    Take::SwapTriple,
];

fn take_out<T>(mut batch: Batch<T>, how: Take) -> Vec<T> {
    let len = batch.len();
    match how {
        Take::IntoVec => batch.into_vec(),
        Take::SwapEmpty => batch.swap_items(Vec::new()),
        Take::SwapHuge => batch.swap_items(Vec::with_capacity(1 << 16)),
        Take::SwapExact => batch.swap_items(Vec::with_capacity(len)),
        Take::SwapTriple => batch.swap_items(Vec::with_capacity(3 * len + 5)),
    }
}

const WAIT: Duration = Duration::from_secs(3);

/// Every byte was given back, the dispatcher shuts down, and every buffer
/// checked kept few spare slots.
fn finish(dispatcher: Dispatcher<Ev>, slack: &Slack) {
    assert_eq!(dispatcher.stats().buffered_bytes, 0);
    dispatcher.shutdown(WAIT).unwrap();
    slack.assert_ok();
}

/// Batch sizes that swing: steady, growing, shrinking suddenly, alternating,
/// one huge then tiny.
const SWING: [usize; 24] = [
    96, 96, 96, 300, 10, 1000, 1, 5000, 3, 3, 2000, 2, 64, 64, 700, 1, 1, 20_000, 5, 17, 33, 4096,
    4097, 6,
];

// ---------------------------------------------------------------------------
// Pull receiver: manual flushes with every kind of spare
// ---------------------------------------------------------------------------

#[test]
fn swinging_batch_sizes_with_every_kind_of_spare_keep_little_slack() {
    let _s = serial();
    for how in TAKES {
        let (dispatcher, batches) = Dispatcher::<Ev>::builder()
            .partitions(1)
            .interval(Duration::from_secs(3600))
            .build()
            .unwrap();
        let producer = dispatcher.producer();
        let mut slack = Slack::default();
        let mut ledger = Ledger::default();
        let mut seq = 0;
        for &n in SWING.iter().chain(SWING.iter().rev()) {
            for _ in 0..n {
                producer.try_enqueue(ev(0, seq)).unwrap();
                seq += 1;
            }
            dispatcher.flush();
            let batch = batches.recv_timeout(WAIT).expect("a batch");
            assert_eq!(batch.reason(), FlushReason::Manual);
            let v = take_out(batch, how);
            assert_eq!(v.len(), n);
            slack.check_and_take(&mut ledger, &format!("{how:?} batch of {n}"), &v);
        }
        let stats = dispatcher.stats();
        assert_eq!(stats.buffered_bytes, 0, "{how:?}: bytes left buffered");
        assert_eq!(stats.buffered_items, 0);
        assert_eq!(stats.delivered, u64::from(seq));
        ledger.assert_all(&HashMap::from([(0, seq)]));
        dispatcher.shutdown(WAIT).unwrap();
        slack.assert_ok();
    }
}

/// Batches left waiting (several sealed before any is received), then received
/// together: each sealed batch is checked, not just the last.
#[test]
fn batches_sealed_while_others_wait_keep_little_slack() {
    let _s = serial();
    let (dispatcher, batches) = Dispatcher::<Ev>::builder()
        .partitions(1)
        .interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    let producer = dispatcher.producer();
    let mut slack = Slack::default();
    let mut ledger = Ledger::default();
    let mut seq = 0;
    for round in 0..4 {
        // Give the dispatcher huge spares first, so its pool holds them.
        for _ in 0..3 {
            producer.try_enqueue(ev(0, seq)).unwrap();
            seq += 1;
            dispatcher.flush();
            let mut b = batches.recv_timeout(WAIT).unwrap();
            let v = b.swap_items(Vec::with_capacity(1 << 16));
            drop(b);
            slack.check_and_take(&mut ledger, &format!("round {round} primer"), &v);
        }
        for &n in &SWING {
            for _ in 0..n {
                producer.try_enqueue(ev(0, seq)).unwrap();
                seq += 1;
            }
            dispatcher.flush();
        }
        for &n in &SWING {
            let b = batches.recv_timeout(WAIT).unwrap();
            assert_eq!(b.len(), n);
            let v = b.into_vec();
            slack.check_and_take(
                &mut ledger,
                &format!("round {round}, queued batch of {n}"),
                &v,
            );
        }
    }
    assert_eq!(dispatcher.stats().buffered_bytes, 0);
    ledger.assert_all(&HashMap::from([(0, seq)]));
    dispatcher.shutdown(WAIT).unwrap();
    slack.assert_ok();
}

// ---------------------------------------------------------------------------
// Batches cut by items, bytes, interval, hooks, re-cuts
// ---------------------------------------------------------------------------

fn pump(
    builder: dispatcher::Builder<Ev>,
    events: u32,
    how: Take,
    weight: impl Fn(u32) -> usize,
) -> (Slack, HashMap<FlushReason, usize>) {
    let (dispatcher, batches) = builder.partitions(1).build().unwrap();
    let producer = dispatcher.producer();
    let stop = Arc::new(AtomicBool::new(false));
    let consumer = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut slack = Slack::default();
            let mut ledger = Ledger::default();
            let mut reasons = HashMap::new();
            loop {
                match batches.recv_timeout(Duration::from_millis(50)) {
                    Ok(b) => {
                        *reasons.entry(b.reason()).or_insert(0) += 1;
                        let n = b.len();
                        let v = take_out(b, how);
                        slack.check_and_take(&mut ledger, &format!("{how:?} batch of {n}"), &v);
                    }
                    Err(dispatcher::RecvTimeoutError::Timeout) if !stop.load(Ordering::SeqCst) => {}
                    Err(dispatcher::RecvTimeoutError::Timeout) => {}
                    Err(_) => break,
                }
            }
            (slack, ledger, reasons)
        })
    };
    for seq in 0..events {
        producer.enqueue(common::ev(0, seq, weight(seq))).unwrap();
        if seq % 997 == 0 {
            // Let interval cuts happen now and then.
            std::thread::sleep(Duration::from_millis(3));
        }
    }
    drop(producer);
    dispatcher.shutdown(WAIT).unwrap();
    stop.store(true, Ordering::SeqCst);
    let (slack, ledger, reasons) = consumer.join().unwrap();
    ledger.assert_all(&HashMap::from([(0, events)]));
    (slack, reasons)
}

/// [`pump`], then checks some batches were cut for `reason` and every
/// buffer kept few spare slots.
fn pump_cut_by(
    reason: FlushReason,
    builder: dispatcher::Builder<Ev>,
    events: u32,
    how: Take,
    weight: impl Fn(u32) -> usize,
) {
    let (slack, reasons) = pump(builder, events, how, weight);
    assert!(
        reasons.get(&reason).copied().unwrap_or(0) > 0,
        "no batch cut by {reason:?}: {reasons:?}"
    );
    slack.assert_ok();
}

#[test]
fn batches_cut_by_item_count_keep_little_slack() {
    let _s = serial();
    for (items, how) in [
        (7, Take::IntoVec),
        (100, Take::SwapHuge),
        (1, Take::SwapEmpty),
        (333, Take::SwapExact),
    ] {
        let b = Dispatcher::<Ev>::builder()
            .interval(Duration::from_secs(3600))
            .max_batch_items(items)
            .policy(Policy::Block { timeout: WAIT });
        pump_cut_by(FlushReason::Items, b, 5000, how, |s| 1 + (s % 5) as usize);
    }
}

#[test]
fn batches_cut_by_bytes_with_wild_weights_keep_little_slack() {
    let _s = serial();
    // Weights from 1 to 2000 bytes, batches of 4 KiB: batch lengths jump between
    // 2 and a few thousand.
    for how in [Take::IntoVec, Take::SwapHuge, Take::SwapTriple] {
        let b = Dispatcher::<Ev>::builder()
            .interval(Duration::from_secs(3600))
            .max_batch_bytes(4096)
            .max_buffered_bytes(1 << 20)
            .policy(Policy::Block { timeout: WAIT });
        pump_cut_by(FlushReason::Bytes, b, 8000, how, |s| {
            if (s / 1500) % 2 == 0 {
                1
            } else {
                1 + ((s * 7919) % 2000) as usize
            }
        });
    }
}

#[test]
fn batches_cut_by_interval_keep_little_slack() {
    let _s = serial();
    for how in [Take::IntoVec, Take::SwapHuge] {
        let b = Dispatcher::<Ev>::builder()
            .interval(Duration::from_millis(2))
            .policy(Policy::Block { timeout: WAIT });
        pump_cut_by(FlushReason::Interval, b, 6000, how, |_| 3);
    }
}

#[test]
fn batches_cut_by_hooks_keep_little_slack() {
    let _s = serial();
    // A batch ends after an event whose seq is a multiple of 997 or 5: lengths 1..=5
    // mixed with a few long batches built in a huge spare.
    let b = Dispatcher::<Ev>::builder()
        .interval(Duration::from_secs(3600))
        .policy(Policy::Block { timeout: WAIT })
        .should_flush(|open| {
            open.items().last().is_some_and(|e: &Ev| {
                e.seq % 1500 == 1499 || (e.seq / 1500) % 2 == 1 && e.seq % 5 == 0
            })
        });
    pump_cut_by(FlushReason::Hook, b, 9000, Take::SwapHuge, |_| 1);
}

/// A long open batch re-cut under lowered limits (set_limits) comes out in
/// batches that keep little slack.
#[test]
fn batches_recut_under_lowered_limits_keep_little_slack() {
    let _s = serial();
    for (items, how) in [
        (3usize, Take::IntoVec),
        (700, Take::IntoVec),
        (1, Take::SwapHuge),
    ] {
        let (dispatcher, batches) = Dispatcher::<Ev>::builder()
            .partitions(1)
            .interval(Duration::from_secs(3600))
            .build()
            .unwrap();
        let producer = dispatcher.producer();
        // Prime the pool with a huge spare so the open batch grows in it.
        producer.try_enqueue(ev(0, 0)).unwrap();
        dispatcher.flush();
        let mut b = batches.recv_timeout(WAIT).unwrap();
        let first = b.swap_items(Vec::with_capacity(1 << 16));
        drop(b);
        let mut ledger = Ledger::default();
        first.iter().for_each(|e| ledger.take(e));
        for seq in 1..5001 {
            producer.try_enqueue(ev(0, seq)).unwrap();
        }
        dispatcher
            .set_limits(Limits {
                max_batch_items: Some(items),
                interval: Duration::from_secs(3600),
                ..dispatcher.limits()
            })
            .unwrap();
        dispatcher.flush();
        let mut slack = Slack::default();
        let mut got = 1;
        while got < 5001 {
            let b = batches.recv_timeout(WAIT).expect("re-cut batch");
            let n = b.len();
            let v = take_out(b, how);
            slack.check_and_take(&mut ledger, &format!("re-cut to {items}: batch of {n}"), &v);
            got += n;
        }
        ledger.assert_all(&HashMap::from([(0, 5001)]));
        finish(dispatcher, &slack);
    }
}

// ---------------------------------------------------------------------------
// Shutdown drain, several partitions
// ---------------------------------------------------------------------------

#[test]
fn batches_cut_by_the_shutdown_drain_keep_little_slack() {
    let _s = serial();
    for parts in [1usize, 4] {
        let (dispatcher, batches) = Dispatcher::<Ev>::builder()
            .partitions(parts)
            .interval(Duration::from_secs(3600))
            .build()
            .unwrap();
        let producers: Vec<_> = (0..parts).map(|_| dispatcher.producer()).collect();
        let mut sent = HashMap::new();
        // Prime each partition's pool with huge spares, then leave open
        // batches of different lengths for shutdown to cut.
        for (i, p) in producers.iter().enumerate() {
            p.try_enqueue(ev(i as u8, 0)).unwrap();
        }
        dispatcher.flush();
        let mut ledger = Ledger::default();
        for _ in 0..parts {
            let mut b = batches.recv_timeout(WAIT).unwrap();
            let v = b.swap_items(Vec::with_capacity(1 << 16));
            v.iter().for_each(|e| ledger.take(e));
        }
        for (i, p) in producers.iter().enumerate() {
            let n = [3u32, 5000, 17, 1][i % 4];
            for seq in 1..=n {
                p.try_enqueue(ev(i as u8, seq)).unwrap();
            }
            sent.insert(i as u8, n + 1);
        }
        let consumer = std::thread::spawn(move || {
            let mut slack = Slack::default();
            let mut got = Vec::new();
            let mut reasons = Vec::new();
            while let Ok(b) = batches.recv() {
                reasons.push(b.reason());
                let n = b.len();
                let v = b.into_vec();
                slack.check(&format!("drained batch of {n}"), &v);
                got.extend(v);
            }
            (slack, got, reasons)
        });
        drop(producers);
        dispatcher.shutdown(WAIT).unwrap();
        let (slack, got, reasons) = consumer.join().unwrap();
        assert!(reasons.contains(&FlushReason::Drain), "{reasons:?}");
        got.iter().for_each(|e| ledger.take(e));
        ledger.assert_all(&sent);
        slack.assert_ok();
    }
}

#[test]
fn several_partitions_with_huge_spares_keep_little_slack() {
    let _s = serial();
    let parts = 4;
    let (dispatcher, batches) = Dispatcher::<Ev>::builder()
        .partitions(parts)
        .interval(Duration::from_millis(1))
        .max_batch_items(2000)
        .policy(Policy::Block { timeout: WAIT })
        .build()
        .unwrap();
    let per = 4000u32;
    let producers: Vec<_> = (0..parts)
        .map(|i| {
            let p = dispatcher.producer();
            std::thread::spawn(move || {
                for seq in 0..per {
                    p.enqueue(ev(i as u8, seq)).unwrap();
                    if seq % 500 == 0 {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                }
            })
        })
        .collect();
    let consumer = std::thread::spawn(move || {
        let mut slack = Slack::default();
        let mut ledger = Ledger::default();
        let mut k = 0usize;
        while let Ok(b) = batches.recv() {
            let n = b.len();
            let how = TAKES[k % TAKES.len()];
            k += 1;
            let v = take_out(b, how);
            slack.check_and_take(&mut ledger, &format!("{how:?} batch of {n}"), &v);
        }
        (slack, ledger)
    });
    for p in producers {
        p.join().unwrap();
    }
    let report = dispatcher.shutdown(WAIT).unwrap();
    let (slack, ledger) = consumer.join().unwrap();
    assert_eq!(report.stats.buffered_bytes, 0);
    ledger.assert_all(&(0..parts as u8).map(|p| (p, per)).collect());
    slack.assert_ok();
}

// ---------------------------------------------------------------------------
// DropOldest eviction
// ---------------------------------------------------------------------------

/// A sealed batch that waits while DropOldest evicts most of its events is
/// delivered in the buffer it was sealed in: the evicted events' slots stay.
#[test]
fn a_sealed_batch_mostly_evicted_by_drop_oldest_keeps_little_slack() {
    let _s = serial();
    let evicted = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&evicted);
    let (dispatcher, batches) = Dispatcher::<Ev>::builder()
        .partitions(1)
        .interval(Duration::from_secs(3600))
        .max_buffered_bytes(1000)
        .policy(Policy::DropOldest)
        .on_evict(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
        })
        .build()
        .unwrap();
    let producer = dispatcher.producer();
    for seq in 0..1000 {
        producer.try_enqueue(common::ev(0, seq, 1)).unwrap();
    }
    dispatcher.flush(); // a sealed batch of 1000
    for seq in 1000..1990 {
        producer.try_enqueue(common::ev(0, seq, 1)).unwrap(); // each evicts one
    }
    dispatcher.flush();
    assert_eq!(evicted.load(Ordering::SeqCst), 990);
    let mut slack = Slack::default();
    let mut got = Vec::new();
    for _ in 0..2 {
        let b = batches.recv_timeout(WAIT).unwrap();
        let n = b.len();
        let v = b.into_vec();
        slack.check(&format!("batch of {n} after eviction"), &v);
        got.extend(v.into_iter().map(|e| e.seq));
    }
    assert_eq!(
        got,
        (990..1990).collect::<Vec<_>>(),
        "the newest 1000 events, in order"
    );
    finish(dispatcher, &slack);
}

// ---------------------------------------------------------------------------
// Sink mode: the error hook gets the batch by value
// ---------------------------------------------------------------------------

#[test]
fn batches_handed_to_the_sink_error_hook_keep_little_slack() {
    let _s = serial();
    let seen = Arc::new(Mutex::new((Slack::default(), Ledger::default())));
    let hook_seen = Arc::clone(&seen);
    let dispatcher = Dispatcher::<Ev>::builder()
        .partitions(1)
        .interval(Duration::from_secs(3600))
        .retry(Retry::NEVER)
        .on_flush_error(move |_failure, batch: Batch<Ev>| {
            let n = batch.len();
            let v = batch.into_vec();
            let mut g = hook_seen.lock().unwrap();
            g.0.check(&format!("failed batch of {n}"), &v);
            v.iter().for_each(|e| g.1.take(e));
        })
        .build_with_sink(sink::from_fn(|_b: &Batch<Ev>, _c: &FlushContext| {
            Err::<(), _>(std::io::Error::other("down"))
        }))
        .unwrap();
    let producer = dispatcher.producer();
    let mut seq = 0;
    for &n in &SWING {
        for _ in 0..n {
            producer.try_enqueue(ev(0, seq)).unwrap();
            seq += 1;
        }
        dispatcher.flush_and_wait(WAIT).unwrap();
    }
    let stats = dispatcher.stats();
    assert_eq!(stats.buffered_bytes, 0);
    assert_eq!(stats.failed, u64::from(seq));
    drop(producer);
    dispatcher.shutdown(WAIT).unwrap();
    let g = seen.lock().unwrap();
    g.1.assert_all(&HashMap::from([(0, seq)]));
    g.0.assert_ok();
}

// ---------------------------------------------------------------------------
// Non-empty spares
// ---------------------------------------------------------------------------

/// An event that counts its drops.
struct Tracked {
    id: u64,
    drops: Arc<AtomicUsize>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

impl Weight for Tracked {
    fn weight(&self) -> usize {
        1
    }
}

/// `swap_items` empties the spare first (its docs say so): events left in a
/// spare are dropped then, never delivered again in a later batch.
#[test]
fn a_non_empty_spare_leaks_no_event_into_later_batches() {
    let _s = serial();
    let drops = Arc::new(AtomicUsize::new(0));
    let (dispatcher, batches) = Dispatcher::<Tracked>::builder()
        .partitions(1)
        .interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    let producer = dispatcher.producer();
    let mut held: Vec<Tracked> = Vec::new();
    let mut delivered = Vec::new();
    let mut id = 0;
    for round in 0..20u64 {
        let n = 1 + (round * 37) % 50;
        for _ in 0..n {
            producer
                .try_enqueue(Tracked {
                    id,
                    drops: Arc::clone(&drops),
                })
                .unwrap();
            id += 1;
        }
        dispatcher.flush();
        let mut b = batches.recv_timeout(WAIT).unwrap();
        // Hand back last round's events (not emptied) as the spare.
        let spare = std::mem::take(&mut held);
        let dropped_before = drops.load(Ordering::SeqCst);
        let spare_len = spare.len();
        let v = b.swap_items(spare);
        assert_eq!(
            drops.load(Ordering::SeqCst),
            dropped_before + spare_len,
            "the spare's events are dropped by swap_items"
        );
        assert!(b.is_empty());
        drop(b);
        delivered.extend(v.iter().map(|t| t.id));
        held = v;
    }
    drop(held);
    assert_eq!(
        delivered,
        (0..id).collect::<Vec<_>>(),
        "every event once, in order"
    );
    assert_eq!(
        drops.load(Ordering::SeqCst) as u64,
        id,
        "every event dropped once"
    );
    assert_eq!(dispatcher.stats().buffered_bytes, 0);
    dispatcher.shutdown(WAIT).unwrap();
}

// ---------------------------------------------------------------------------
// Async stream
// ---------------------------------------------------------------------------

#[cfg(feature = "async")]
#[test]
fn batches_from_the_async_stream_keep_little_slack() {
    use tokio_stream::StreamExt;
    let _s = serial();
    let (dispatcher, batches) = Dispatcher::<Ev>::builder()
        .partitions(1)
        .interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    let mut stream = batches.into_stream();
    let producer = dispatcher.producer();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut slack = Slack::default();
    let mut ledger = Ledger::default();
    let mut seq = 0;
    for (k, &n) in SWING.iter().enumerate() {
        for _ in 0..n {
            producer.try_enqueue(ev(0, seq)).unwrap();
            seq += 1;
        }
        dispatcher.flush();
        let b = rt
            .block_on(async { tokio::time::timeout(WAIT, stream.next()).await })
            .unwrap()
            .unwrap();
        let how = TAKES[k % TAKES.len()];
        let v = take_out(b, how);
        slack.check_and_take(&mut ledger, &format!("stream {how:?} batch of {n}"), &v);
    }
    ledger.assert_all(&HashMap::from([(0, seq)]));
    drop(stream);
    drop(dispatcher);
    slack.assert_ok();
}

// ---------------------------------------------------------------------------
// Heap honesty under Weighing::Occupancy
// ---------------------------------------------------------------------------

/// Fills a dispatcher (no consumer) to its limit with `size`-byte `Vec<u8>` events
/// and returns (live heap it holds, peak heap while filling, buffered bytes); with
/// `cut`, the open batches are then cut (`flush`) while it is full.
fn fill(
    limit: usize,
    size: usize,
    parts: usize,
    policy: Policy,
    batch_items: Option<usize>,
    cut: bool,
) -> (isize, isize, usize) {
    let base = live();
    PEAK.store(base, Ordering::Relaxed);
    let mut b = Dispatcher::<Vec<u8>>::builder()
        .partitions(parts)
        .max_buffered_bytes(limit)
        .weighing(Weighing::Occupancy)
        .policy(policy);
    if let Some(n) = batch_items {
        b = b.max_batch_items(n);
    }
    let (dispatcher, batches) = b.build().unwrap();
    let producers: Vec<_> = (0..parts).map(|_| dispatcher.producer()).collect();
    let mut refusals_in_a_row = 0;
    let mut k = 0usize;
    while refusals_in_a_row < 4 * parts {
        let p = &producers[k % parts];
        k += 1;
        let ok = match policy {
            Policy::Block { .. } => p
                .enqueue_timeout(vec![7u8; size], Duration::from_micros(200))
                .is_ok(),
            _ => p.try_enqueue(vec![7u8; size]).is_ok(),
        };
        if ok {
            refusals_in_a_row = 0;
        } else {
            refusals_in_a_row += 1;
        }
    }
    if cut {
        // The open batches are cut while the dispatcher is full (what the
        // interval or a receiver's next look would do too).
        dispatcher.flush();
    }
    let held = live() - base;
    let peak = PEAK.load(Ordering::Relaxed) - base;
    let buffered = dispatcher.stats().buffered_bytes;
    drop(producers);
    drop(batches);
    let _ = dispatcher.stop();
    (held, peak, buffered)
}

fn heap_bound(limit: usize) -> isize {
    (limit as f64 * 1.1) as isize + (2 << 20)
}

fn heap_table(cut: bool) -> Vec<String> {
    let limit = 16 << 20;
    let mut bad = Vec::new();
    for &size in &[64usize, 300, 10 * 1024] {
        for &parts in &[1usize, 8] {
            for policy in [
                Policy::Reject,
                Policy::Block {
                    timeout: Duration::from_millis(1),
                },
            ] {
                let (held, peak, buffered) = fill(limit, size, parts, policy, None, cut);
                let line = format!(
                    "{size} B x {parts} partitions {policy:?}{}: held {:.2} MiB, peak {:.2} MiB, buffered {:.2} MiB (limit 16 MiB, bound {:.2} MiB)",
                    if cut { ", cut while full" } else { "" },
                    held as f64 / 1048576.0,
                    peak as f64 / 1048576.0,
                    buffered as f64 / 1048576.0,
                    heap_bound(limit) as f64 / 1048576.0
                );
                eprintln!("{line}");
                assert!(buffered > limit * 9 / 10, "not filled: {line}");
                if held > heap_bound(limit) || peak > heap_bound(limit) {
                    bad.push(line);
                }
            }
        }
    }
    bad
}

#[test]
fn a_full_dispatcher_holds_about_its_limit_in_heap_under_occupancy() {
    let _s = serial();
    let bad = heap_table(false);
    assert!(
        bad.is_empty(),
        "heap over 1.1 x limit + 2 MiB:\n  {}",
        bad.join("\n  ")
    );
}

/// The same, after the open batches are cut while the dispatcher is full (a
/// flush, or the interval): sealing must not add heap the limit does not see.
#[test]
fn a_full_dispatcher_cut_while_full_holds_about_its_limit_in_heap_under_occupancy() {
    let _s = serial();
    let bad = heap_table(true);
    assert!(
        bad.is_empty(),
        "heap over 1.1 x limit + 2 MiB:\n  {}",
        bad.join("\n  ")
    );
}

/// Heap a waiting batch holds beyond its events' occupancy, as `Weighing`'s
/// docs give it ("about 100 bytes"): its record in the partition's queue and
/// its buffer's own allocation.
const PER_BATCH: isize = 128;

/// The same with small batches (a `max_batch_items` the caller may well choose):
/// every waiting batch is a buffer and an entry in the ready queue, which the
/// limit does not count; the docs say what each costs.
#[test]
fn a_full_dispatcher_of_small_batches_holds_its_limit_and_the_batches_in_heap() {
    let _s = serial();
    let limit = 16 << 20;
    let mut bad = Vec::new();
    for &(size, items) in &[(64usize, 1usize), (64, 4), (300, 1), (64, 64)] {
        for &parts in &[1usize, 8] {
            let (held, peak, buffered) =
                fill(limit, size, parts, Policy::Reject, Some(items), false);
            let occupancy = std::mem::size_of::<Vec<u8>>() + dispatcher::weight::allocation(size);
            let waiting = (buffered / occupancy).div_ceil(items) as isize;
            let bound = heap_bound(limit) + waiting * PER_BATCH;
            let line = format!(
                "{size} B, batches of {items}, {parts} partitions: held {:.2} MiB, peak {:.2} MiB, buffered {:.2} MiB (bound {:.2} MiB with {waiting} batches)",
                held as f64 / 1048576.0,
                peak as f64 / 1048576.0,
                buffered as f64 / 1048576.0,
                bound as f64 / 1048576.0
            );
            eprintln!("{line}");
            if held > bound || peak > bound {
                bad.push(line);
            }
        }
    }
    assert!(
        bad.is_empty(),
        "heap over 1.1 x limit + 2 MiB:\n  {}",
        bad.join("\n  ")
    );
}
