//! Attacks on the new pull hand-off: a receiver takes a sealed batch without
//! the producers' lock, a dropped `Batch` hands its buffer back on a path of
//! its own, a partition's lease goes back when a batch is sealed (not when it
//! is taken), and `stats()` folds the receivers' takes in lazily.
//!
//! Written from the public contract only. Every round checks, against
//! records kept by the test itself (never the dispatcher's word):
//!
//! - every accepted event has exactly one fate (delivered to one receiver,
//!   evicted through `on_evict`, or returned by `shutdown`/`stop`), a refused
//!   one is handed back intact, and each receiver's stream keeps every
//!   handle's order (the shared ledger, `attack_kit::ledger::verify`);
//! - every `stats()` snapshot, hammered from a thread of its own while
//!   producers and receivers run, balances (`accepted` is `delivered`,
//!   `dropped`, `returned`, `failed` and `buffered_items` added up), stays
//!   within the byte bound
//!   (buffered and peak), never runs backwards, and already counts every take
//!   and admission that completed before it was read;
//! - at quiescence `buffered_bytes` / `buffered_items` are exactly the
//!   weights / count of the events still held, and `stop()` returns exactly
//!   those;
//! - a batch never mixes partitions and its `bytes()` is its events' weight;
//! - `flush_and_wait` returning Ok means every event accepted before it was
//!   taken by a receiver;
//! - under Block with leases (several partitions, >= 1 MiB), producers
//!   blocked for room are admitted once receivers free it, and a whole-limit
//!   event fits once everything was taken;
//! - `shutdown` with live receivers drains everything, short deadlines and
//!   `stop` racing takes never hang and never deliver an event they return.
//!
//! Receivers mix `recv`, `try_recv`, `recv_timeout` and the iterator (and the
//! async stream with the `async` feature), hold batches a while, hand them to
//! other threads that drop them later (some only after the dispatcher is
//! gone), drain them partly, swap their buffers, or keep them as `Vec`s.
//!
//! Rounds run for a time budget with random seeds (printed);
//! `HANDOFF_SEED=<u64>` replays one round of each test.

mod attack_kit;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use attack_kit::Id;
use attack_kit::ledger::{Fates, verify};
use dispatcher::{
    Batch, Batches, Dispatcher, EnqueueError, EnqueueTimeoutError, Policy, Producer,
    RecvTimeoutError, Stats, TryEnqueueError, TryRecvError, Weight,
};

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;

/// Hang guard for one round (never a verdict on speed).
const ROUND_LIMIT: Duration = Duration::from_secs(40);
/// Hang guard for a shutdown past its own deadline.
const SLACK: Duration = Duration::from_secs(8);

/// A test event: its producer handle, its sequence number on that handle,
/// and its weight (always >= 1).
#[derive(Debug, Clone, PartialEq, Eq)]
struct E {
    h: u32,
    s: u32,
    w: usize,
}

impl Weight for E {
    fn weight(&self) -> usize {
        self.w
    }
}

fn id(e: &E) -> Id {
    (e.h, e.s)
}

/// A handle no producer has: an event of it seen anywhere is a phantom
/// (spare buffers handed to `swap_items` carry such events).
const PHANTOM: u32 = 4000;

// ---------------------------------------------------------------------------
// The plan of a round
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Mixed,
    DropOldest,
    BlockLeases,
    Checkpoints,
    Quiesce,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// Producers, helpers and receivers stop; the counters are compared
    /// with what is held; then `stop()`.
    Quiesce,
    /// `shutdown` with a long deadline while receivers run: must drain all.
    ShutdownLong,
    /// `shutdown` with a deadline of a few ms while everything runs.
    ShutdownShort(u64),
    /// `stop()` while everything runs.
    StopLive,
    /// The dispatcher is dropped while everything runs; receivers drain.
    Drop,
}

#[derive(Debug, Clone)]
struct Plan {
    seed: u64,
    kind: Kind,
    producers: usize,
    partitions: usize,
    receivers: usize,
    policy: Policy,
    limit: usize,
    flip_to: Option<usize>,
    batch_items: Option<usize>,
    batch_bytes: Option<usize>,
    interval: Duration,
    /// Receiver 0 iterates `&batches` (only where blocking is allowed).
    iterator: bool,
    run_for: Duration,
    end: End,
}

impl Plan {
    fn draw(seed: u64, kind: Kind) -> Plan {
        let mut rng = fastrand::Rng::with_seed(seed);
        let partitions = match kind {
            Kind::BlockLeases => [2, 8][rng.usize(0..2)],
            _ => [1, 2, 8][rng.usize(0..3)],
        };
        let limit = match kind {
            Kind::BlockLeases => rng.usize(MIB..=8 * MIB),
            Kind::DropOldest => {
                if rng.u8(0..4) == 0 {
                    rng.usize(MIB..=2 * MIB)
                } else {
                    rng.usize(8..=4 * KIB)
                }
            }
            _ => {
                if rng.bool() {
                    rng.usize(MIB..=4 * MIB)
                } else {
                    rng.usize(16..=64 * KIB)
                }
            }
        };
        let block = |rng: &mut fastrand::Rng, hi_us: u64| Policy::Block {
            timeout: Duration::from_micros(rng.u64(100..=hi_us)),
        };
        let policy = match kind {
            Kind::DropOldest => Policy::DropOldest,
            Kind::BlockLeases => block(&mut rng, 20_000),
            Kind::Checkpoints => {
                if rng.bool() {
                    Policy::Reject
                } else {
                    block(&mut rng, 3000)
                }
            }
            Kind::Mixed | Kind::Quiesce => match rng.u8(0..3) {
                0 => Policy::Reject,
                1 => block(&mut rng, 3000),
                _ => Policy::DropOldest,
            },
        };
        let end = match kind {
            Kind::Quiesce => End::Quiesce,
            Kind::Checkpoints => {
                if rng.bool() {
                    End::Quiesce
                } else {
                    End::ShutdownLong
                }
            }
            _ => match rng.u8(0..5) {
                0 => End::Quiesce,
                1 => End::ShutdownLong,
                2 => End::ShutdownShort(rng.u64(0..=3)),
                3 => End::StopLive,
                _ => End::Drop,
            },
        };
        let batch_bytes = (rng.u8(0..10) < 7).then(|| rng.usize(1..=(limit / 4).max(1)));
        Plan {
            seed,
            kind,
            producers: rng.usize(2..=32),
            partitions,
            receivers: rng.usize(1..=3),
            policy,
            limit,
            flip_to: (kind != Kind::BlockLeases && rng.u8(0..10) < 3)
                .then(|| rng.usize((limit / 2).max(1)..=limit * 2)),
            batch_items: rng.bool().then(|| rng.usize(1..=64)),
            batch_bytes,
            interval: Duration::from_micros(rng.u64(200..=5000)),
            iterator: rng.bool(),
            run_for: Duration::from_millis(rng.u64(30..=150)),
            end,
        }
    }

    /// Receivers may block in `recv` / the iterator: the end closes the
    /// dispatcher while they run.
    fn blocking_receivers(&self) -> bool {
        self.end != End::Quiesce && self.kind != Kind::Checkpoints
    }

    fn bound(&self) -> usize {
        self.limit.max(self.flip_to.unwrap_or(0))
    }
}

fn draw_weight(rng: &mut fastrand::Rng, limit: usize) -> usize {
    match rng.u8(0..100) {
        0 => limit + 1 + rng.usize(0..=limit),
        1 => limit,
        2..=11 => rng.usize((limit / 8).max(1)..=(limit / 2).max(1)),
        _ => rng.usize(1..=(limit / 64).max(1)),
    }
}

// ---------------------------------------------------------------------------
// Shared records
// ---------------------------------------------------------------------------

#[derive(Default)]
struct Shared {
    stop_producers: AtomicBool,
    stop_helpers: AtomicBool,
    stop_receivers: AtomicBool,
    /// Events whose enqueue returned Ok (counted after it returned).
    ok: AtomicU64,
    /// Events / batches / bytes receivers recorded (after the take returned).
    taken: AtomicU64,
    taken_batches: AtomicU64,
    taken_bytes: AtomicU64,
    /// Per handle: the seqs accepted so far (for checkpoints).
    accepted: Vec<Mutex<Vec<u32>>>,
    /// Every delivered id (checkpoint rounds only).
    delivered: Mutex<HashSet<Id>>,
    /// Receivers inside a take (from before the call to after recording).
    busy: AtomicUsize,
    evicted: Mutex<Vec<Id>>,
    evicted_n: AtomicU64,
    problems: Mutex<Vec<String>>,
    snapshots: AtomicU64,
    checkpoints_ok: AtomicU64,
}

impl Shared {
    fn new(producers: usize) -> Shared {
        Shared {
            accepted: (0..producers).map(|_| Mutex::new(Vec::new())).collect(),
            ..Shared::default()
        }
    }

    fn problem(&self, what: String) {
        let mut problems = self.problems.lock().unwrap();
        if problems.len() < 24 {
            problems.push(what);
        }
    }
}

// ---------------------------------------------------------------------------
// Producers
// ---------------------------------------------------------------------------

/// What one producer handle had accepted: (seq, weight), in order; and how
/// many Block timeouts it saw.
#[derive(Default)]
struct Log {
    accepted: Vec<(u32, usize)>,
    timeouts: usize,
}

fn produce(p: Producer<E>, h: u32, plan: &Plan, sh: &Shared) -> Log {
    let mut rng = fastrand::Rng::with_seed(plan.seed ^ (u64::from(h) << 40) ^ 0x9e37);
    let mut log = Log::default();
    let mut seq = 0u32;
    while !sh.stop_producers.load(SeqCst) {
        if seq % 16 == 0 {
            thread::yield_now();
        }
        let op = rng.u8(0..10);
        let n = if op == 9 { rng.u32(1..=4) } else { 1 };
        let group: Vec<E> = (0..n)
            .map(|i| E {
                h,
                s: seq + i,
                w: draw_weight(&mut rng, plan.limit),
            })
            .collect();
        seq += n;
        // Ok, or (closed, timed out, what came back).
        let outcome: Result<(), (bool, bool, Vec<E>)> = match op {
            0..=3 => p.try_enqueue(group[0].clone()).map_err(|e| {
                (
                    matches!(e, TryEnqueueError::Closed(_)),
                    false,
                    vec![e.into_inner()],
                )
            }),
            4..=5 => p.enqueue(group[0].clone()).map_err(|e| {
                (
                    matches!(e, EnqueueError::Closed(_)),
                    matches!(e, EnqueueError::Timeout(_)),
                    vec![e.into_inner()],
                )
            }),
            6..=8 => p
                .enqueue_timeout(group[0].clone(), Duration::from_micros(rng.u64(0..=2000)))
                .map_err(|e| {
                    (
                        matches!(e, EnqueueTimeoutError::Closed(_)),
                        matches!(e, EnqueueTimeoutError::Timeout(_)),
                        vec![e.into_inner()],
                    )
                }),
            _ => p.try_enqueue_all(group.clone()).map_err(|e| {
                (
                    matches!(e, TryEnqueueError::Closed(_)),
                    false,
                    e.into_inner(),
                )
            }),
        };
        match outcome {
            Ok(()) => {
                log.accepted.extend(group.iter().map(|e| (e.s, e.w)));
                sh.accepted[h as usize]
                    .lock()
                    .unwrap()
                    .extend(group.iter().map(|e| e.s));
                sh.ok.fetch_add(u64::from(n), SeqCst);
            }
            Err((closed, timed_out, back)) => {
                if back != group {
                    sh.problem(format!("a refusal handed back {back:?} for {group:?}"));
                }
                if timed_out {
                    log.timeouts += 1;
                }
                if closed {
                    break;
                }
            }
        }
    }
    log
}

// ---------------------------------------------------------------------------
// Receivers
// ---------------------------------------------------------------------------

/// One receiver's view: its stream (in the order it took batches), batches
/// it keeps a while, and the channel to a holder thread.
struct Taker<'a> {
    name: String,
    plan: &'a Plan,
    sh: &'a Shared,
    rng: fastrand::Rng,
    stream: Vec<Id>,
    kept: Vec<Batch<E>>,
    holder: mpsc::Sender<Batch<E>>,
}

impl Taker<'_> {
    /// Checks and records a batch, then disposes of it one way or another.
    fn take(&mut self, mut batch: Batch<E>) {
        let ids: Vec<Id> = batch.iter().map(id).collect();
        let sum: usize = batch.iter().map(|e| e.w).sum();
        if batch.bytes() != sum {
            self.sh.problem(format!(
                "{}: batch.bytes() {} != its events' weight {sum} ({} events)",
                self.name,
                batch.bytes(),
                batch.len()
            ));
        }
        let n = self.plan.partitions as u32;
        if let Some(first) = batch.first() {
            if batch.iter().any(|e| e.h % n != first.h % n) {
                self.sh.problem(format!(
                    "{}: a batch mixes partitions: {:?}",
                    self.name,
                    attack_kit::ledger::sample(&ids)
                ));
            }
        }
        if self.plan.kind == Kind::Checkpoints {
            self.sh
                .delivered
                .lock()
                .unwrap()
                .extend(ids.iter().copied());
        }
        self.stream.extend_from_slice(&ids);
        self.sh.taken_bytes.fetch_add(batch.bytes() as u64, SeqCst);
        self.sh.taken_batches.fetch_add(1, SeqCst);
        self.sh.taken.fetch_add(ids.len() as u64, SeqCst);
        match self.rng.u8(0..12) {
            0..=3 => drop(batch),
            4..=5 => {
                let _ = self.holder.send(batch);
            }
            6 => drop(batch.into_vec()),
            7 => {
                let k = self.rng.usize(0..=batch.len());
                let taken: Vec<E> = batch.drain().take(k).collect();
                drop(taken);
                if self.rng.bool() {
                    self.kept.push(batch);
                }
            }
            8 => {
                let cap = self.rng.usize(0..=64);
                let mut spare = Vec::with_capacity(cap);
                // Stale events in the spare: emptied first, never delivered.
                for s in 0..self.rng.u32(0..=3) {
                    spare.push(E {
                        h: PHANTOM,
                        s,
                        w: 1,
                    });
                }
                let events = batch.swap_items(spare);
                if !batch.is_empty() {
                    self.sh.problem(format!(
                        "{}: swap_items left {} events",
                        self.name,
                        batch.len()
                    ));
                }
                if self.rng.bool() {
                    let _ = self.holder.send(batch);
                } else {
                    drop(batch);
                }
                drop(events);
            }
            _ => self.kept.push(batch),
        }
        while self.kept.len() > self.rng.usize(0..=4) {
            let at = self.rng.usize(0..self.kept.len());
            drop(self.kept.swap_remove(at));
        }
    }

    /// After the end: the stream stays ended.
    fn check_ended(&self, batches: &Batches<E>) {
        if !matches!(batches.try_recv(), Err(TryRecvError::Disconnected)) {
            self.sh.problem(format!(
                "{}: try_recv after the end did not say Disconnected",
                self.name
            ));
        }
        if !matches!(
            batches.recv_timeout(Duration::ZERO),
            Err(RecvTimeoutError::Disconnected)
        ) {
            self.sh.problem(format!(
                "{}: recv_timeout after the end did not say Disconnected",
                self.name
            ));
        }
    }
}

enum Got {
    Batch(Batch<E>),
    Nothing,
    Ended,
}

fn receive(
    r: usize,
    batches: Batches<E>,
    plan: &Plan,
    sh: &Shared,
    holder: mpsc::Sender<Batch<E>>,
) -> (String, Vec<Id>) {
    let mut t = Taker {
        name: format!("receiver {r}"),
        plan,
        sh,
        rng: fastrand::Rng::with_seed(plan.seed ^ 0x7ec0 ^ ((r as u64) << 20)),
        stream: Vec::new(),
        kept: Vec::new(),
        holder,
    };
    let blocking = plan.blocking_receivers();
    if r == 0 && plan.iterator && blocking {
        for batch in &batches {
            t.take(batch);
        }
        t.check_ended(&batches);
        drop(std::mem::take(&mut t.kept));
        return (t.name, t.stream);
    }
    loop {
        if plan.end == End::Quiesce && sh.stop_receivers.load(SeqCst) {
            break;
        }
        sh.busy.fetch_add(1, SeqCst);
        let got = match t.rng.u8(0..4) {
            0 if blocking => match batches.recv() {
                Ok(b) => Got::Batch(b),
                Err(_) => Got::Ended,
            },
            // Sometimes through a short-lived clone (receivers come and go).
            1 if t.rng.u8(0..6) == 0 => match batches.clone().try_recv() {
                Ok(b) => Got::Batch(b),
                Err(TryRecvError::Empty) => Got::Nothing,
                Err(_) => Got::Ended,
            },
            0 | 1 => match batches.try_recv() {
                Ok(b) => Got::Batch(b),
                Err(TryRecvError::Empty) => Got::Nothing,
                Err(_) => Got::Ended,
            },
            _ => {
                let hi = if plan.kind == Kind::Checkpoints {
                    500
                } else {
                    3000
                };
                match batches.recv_timeout(Duration::from_micros(t.rng.u64(0..=hi))) {
                    Ok(b) => Got::Batch(b),
                    Err(RecvTimeoutError::Timeout) => Got::Nothing,
                    Err(_) => Got::Ended,
                }
            }
        };
        let ended = match got {
            Got::Batch(b) => {
                t.take(b);
                false
            }
            Got::Nothing => false,
            Got::Ended => true,
        };
        sh.busy.fetch_sub(1, SeqCst);
        if ended {
            t.check_ended(&batches);
            break;
        }
        if t.rng.u8(0..8) == 0 {
            thread::sleep(Duration::from_micros(t.rng.u64(0..=300)));
        }
    }
    drop(std::mem::take(&mut t.kept));
    (t.name, t.stream)
}

/// Holds batches handed over by receivers and drops them later, in random
/// order; returns some to be dropped only after the round's end.
fn hold(rx: mpsc::Receiver<Batch<E>>, seed: u64) -> Vec<Batch<E>> {
    let mut rng = fastrand::Rng::with_seed(seed ^ 0x401d);
    let mut held: Vec<Batch<E>> = Vec::new();
    let mut late = Vec::new();
    loop {
        match rx.recv_timeout(Duration::from_micros(300)) {
            Ok(b) => {
                if rng.u8(0..12) == 0 {
                    late.push(b);
                } else {
                    held.push(b);
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        while held.len() > rng.usize(0..=8) {
            let at = rng.usize(0..held.len());
            drop(held.swap_remove(at));
        }
    }
    late
}

// ---------------------------------------------------------------------------
// Helpers: stats hammer, limits flipper, checkpoints
// ---------------------------------------------------------------------------

fn balanced(s: &Stats) -> bool {
    s.accepted == s.delivered + s.dropped + s.returned + s.failed + s.buffered_items as u64
}

fn watch_stats(d: &Dispatcher<E>, plan: &Plan, sh: &Shared) {
    let bound = plan.bound();
    let mut prev: Option<Stats> = None;
    let mut bad = 0;
    while !sh.stop_helpers.load(SeqCst) && bad < 5 {
        let ok = sh.ok.load(SeqCst);
        let taken = sh.taken.load(SeqCst);
        let taken_batches = sh.taken_batches.load(SeqCst);
        let evicted = sh.evicted_n.load(SeqCst);
        let s = d.stats();
        sh.snapshots.fetch_add(1, SeqCst);
        let mut what = Vec::new();
        if !balanced(&s) {
            what.push("accepted != delivered + dropped + returned + failed + buffered_items");
        }
        if s.buffered_bytes > bound {
            what.push("buffered_bytes above the limit");
        }
        if s.peak_buffered_bytes > bound {
            what.push("peak_buffered_bytes above the limit");
        }
        if s.accepted < ok {
            what.push("accepted behind the admissions that returned Ok before the read");
        }
        if s.delivered < taken {
            what.push("delivered behind the takes that completed before the read");
        }
        if s.batches < taken_batches {
            what.push("batches behind the takes that completed before the read");
        }
        if s.dropped < evicted {
            what.push("dropped behind the on_evict calls made before the read");
        }
        if s.returned != 0 || s.failed != 0 {
            what.push("returned/failed non-zero while running");
        }
        if s.buffered_items == 0 && s.buffered_bytes != 0 {
            what.push("no items buffered yet bytes are");
        }
        if let Some(p) = prev {
            if s.accepted < p.accepted
                || s.delivered < p.delivered
                || s.delivered_bytes < p.delivered_bytes
                || s.dropped < p.dropped
                || s.batches < p.batches
                || s.peak_buffered_bytes < p.peak_buffered_bytes
            {
                what.push("a counter ran backwards");
            }
        }
        if !what.is_empty() {
            bad += 1;
            sh.problem(format!(
                "stats snapshot: {} (ok before {ok}, taken before {taken}, batches before \
                 {taken_batches}, evicted before {evicted}, bound {bound}): {s:?} (previous: {prev:?})",
                what.join("; ")
            ));
        }
        prev = Some(s);
        if s.accepted % 3 == 0 {
            thread::yield_now();
        }
    }
}

fn flip_limits(d: &Dispatcher<E>, plan: &Plan, sh: &Shared) {
    let mut rng = fastrand::Rng::with_seed(plan.seed ^ 0xf11f);
    let mut high = false;
    while !sh.stop_helpers.load(SeqCst) {
        thread::sleep(Duration::from_micros(rng.u64(200..=3000)));
        if rng.bool() {
            d.flush();
            continue;
        }
        let Some(other) = plan.flip_to else { continue };
        high = !high;
        let mut limits = d.limits();
        limits.max_buffered_bytes = if high { other } else { plan.limit };
        limits.max_batch_bytes = plan.batch_bytes.map(|b| b.min(limits.max_buffered_bytes));
        if let Err(e) = d.set_limits(limits) {
            sh.problem(format!("set_limits({limits:?}) refused: {e}"));
        }
    }
}

fn checkpoints(d: &Dispatcher<E>, plan: &Plan, sh: &Shared) {
    let mut rng = fastrand::Rng::with_seed(plan.seed ^ 0xc4ec);
    while !sh.stop_helpers.load(SeqCst) {
        thread::sleep(Duration::from_micros(rng.u64(300..=4000)));
        let before: Vec<usize> = sh
            .accepted
            .iter()
            .map(|a| a.lock().unwrap().len())
            .collect();
        if d.flush_and_wait(Duration::from_millis(rng.u64(1..=60)))
            .is_err()
        {
            continue;
        }
        // A moment where no receiver is inside a take: every take that
        // completed before flush_and_wait returned is recorded by then.
        let since = Instant::now();
        while sh.busy.load(SeqCst) != 0 {
            if since.elapsed() > Duration::from_secs(5) {
                break;
            }
            thread::yield_now();
        }
        if sh.busy.load(SeqCst) != 0 {
            continue;
        }
        sh.checkpoints_ok.fetch_add(1, SeqCst);
        let delivered = sh.delivered.lock().unwrap();
        for (h, (list, upto)) in sh.accepted.iter().zip(before).enumerate() {
            let list = list.lock().unwrap();
            if let Some(seq) = list[..upto]
                .iter()
                .find(|&&s| !delivered.contains(&(h as u32, s)))
            {
                sh.problem(format!(
                    "flush_and_wait returned Ok, yet event {:?} accepted before it was not \
                     taken by any receiver",
                    (h, seq)
                ));
                return;
            }
        }
    }
}

// ---------------------------------------------------------------------------
// A round
// ---------------------------------------------------------------------------

fn round(plan: Plan) {
    let seed = plan.seed;
    let name = format!("{:?} HANDOFF_SEED={seed}", plan.kind);
    attack_kit::watchdog_within(&name.clone(), ROUND_LIMIT, move |progress| {
        let problems = run_round(&plan, &progress);
        assert!(
            problems.is_empty(),
            "{name}: {plan:?}\n  {}",
            problems.join("\n  ")
        );
    });
}

fn run_round(plan: &Plan, progress: &attack_kit::Progress) -> Vec<String> {
    let sh = Arc::new(Shared::new(plan.producers));
    let plan = Arc::new(plan.clone());
    let mut builder = Dispatcher::<E>::builder()
        .partitions(plan.partitions)
        .max_buffered_bytes(plan.limit)
        .policy(plan.policy)
        .interval(plan.interval)
        .jitter_seed(plan.seed);
    if let Some(x) = plan.batch_items {
        builder = builder.max_batch_items(x);
    }
    if let Some(x) = plan.batch_bytes {
        builder = builder.max_batch_bytes(x);
    }
    if plan.policy == Policy::DropOldest {
        let sh = Arc::clone(&sh);
        builder = builder.on_evict(move |e: E| {
            sh.evicted.lock().unwrap().push(id(&e));
            sh.evicted_n.fetch_add(1, SeqCst);
        });
    }
    let (d, batches) = builder.build().unwrap();
    let d = Arc::new(d);

    progress.set("starting");
    let (hold_tx, hold_rx) = mpsc::channel();
    let holder = thread::spawn({
        let seed = plan.seed;
        move || hold(hold_rx, seed)
    });
    let receivers: Vec<_> = (0..plan.receivers)
        .map(|r| {
            let (b, plan, sh, tx) = (
                batches.clone(),
                Arc::clone(&plan),
                Arc::clone(&sh),
                hold_tx.clone(),
            );
            thread::spawn(move || receive(r, b, &plan, &sh, tx))
        })
        .collect();
    drop(hold_tx);
    let producers: Vec<_> = (0..plan.producers)
        .map(|h| {
            let (p, plan, sh) = (d.producer(), Arc::clone(&plan), Arc::clone(&sh));
            thread::spawn(move || produce(p, h as u32, &plan, &sh))
        })
        .collect();
    let mut helpers = Vec::new();
    {
        let (d, plan, sh) = (Arc::clone(&d), Arc::clone(&plan), Arc::clone(&sh));
        helpers.push(thread::spawn(move || watch_stats(&d, &plan, &sh)));
    }
    {
        let (d, plan, sh) = (Arc::clone(&d), Arc::clone(&plan), Arc::clone(&sh));
        helpers.push(thread::spawn(move || flip_limits(&d, &plan, &sh)));
    }
    if plan.kind == Kind::Checkpoints {
        let (d, plan, sh) = (Arc::clone(&d), Arc::clone(&plan), Arc::clone(&sh));
        helpers.push(thread::spawn(move || checkpoints(&d, &plan, &sh)));
    }

    progress.set("running");
    thread::sleep(plan.run_for);

    let mut returned: Vec<Id> = Vec::new();
    let mut final_stats: Option<Stats> = None;
    let logs: Vec<Log>;
    let streams: Vec<(String, Vec<Id>)>;
    let mut must_drain_all = false;
    let late: Vec<Batch<E>>;

    if plan.end == End::Quiesce {
        // Receivers stop first in half the rounds, so events stay held.
        let receivers_first = plan.seed % 2 == 0;
        let mut receivers = Some(receivers);
        let mut stop_receivers = |progress: &attack_kit::Progress| {
            progress.set("quiesce: joining receivers");
            sh.stop_receivers.store(true, SeqCst);
            receivers
                .take()
                .unwrap()
                .into_iter()
                .map(|t| t.join().unwrap())
                .collect::<Vec<_>>()
        };
        let mut early = None;
        if receivers_first {
            early = Some(stop_receivers(progress));
            thread::sleep(Duration::from_millis(5));
        }
        progress.set("quiesce: joining producers");
        sh.stop_producers.store(true, SeqCst);
        logs = producers.into_iter().map(|t| t.join().unwrap()).collect();
        progress.set("quiesce: joining helpers");
        sh.stop_helpers.store(true, SeqCst);
        helpers.into_iter().for_each(|t| t.join().unwrap());
        streams = match early {
            Some(streams) => streams,
            None => stop_receivers(progress),
        };
        late = holder.join().unwrap();
        // Everything is still; the counters against the records.
        let s1 = d.stats();
        let s2 = d.stats();
        if s1 != s2 {
            sh.problem(format!(
                "two stats() reads at rest differ: {s1:?} vs {s2:?}"
            ));
        }
        check_at_rest(&s1, &logs, &streams, &sh);
        let d = Arc::try_unwrap(d).unwrap_or_else(|_| panic!("dispatcher still shared"));
        progress.set("quiesce: stop");
        let undelivered = d.stop();
        let held: usize = undelivered.iter().map(|e| e.w).sum();
        if held != s1.buffered_bytes || undelivered.len() != s1.buffered_items {
            sh.problem(format!(
                "stop() returned {} events of {held} bytes; stats at rest said {} items, {} bytes",
                undelivered.len(),
                s1.buffered_items,
                s1.buffered_bytes
            ));
        }
        returned = undelivered.iter().map(id).collect();
        final_stats = Some(s1);
        drop(batches);
    } else {
        // Helpers end first: the end consumes the dispatcher.
        sh.stop_helpers.store(true, SeqCst);
        helpers.into_iter().for_each(|t| t.join().unwrap());
        let d = Arc::try_unwrap(d).unwrap_or_else(|_| panic!("dispatcher still shared"));
        // The receivers threads' clones are the only receivers left.
        drop(batches);
        progress.set(format!("ending: {:?}", plan.end));
        let started = Instant::now();
        let deadline = match plan.end {
            End::ShutdownLong => {
                must_drain_all = true;
                let deadline = Duration::from_secs(10);
                match d.shutdown(deadline) {
                    Ok(report) => final_stats = Some(report.stats),
                    Err(t) => {
                        sh.problem(format!(
                            "shutdown({deadline:?}) with live receivers timed out: {} events \
                             undelivered; report {:?}",
                            t.undelivered.len(),
                            t.report
                        ));
                        returned = t.undelivered.iter().map(id).collect();
                        final_stats = Some(t.report.stats);
                    }
                }
                deadline
            }
            End::ShutdownShort(ms) => {
                let deadline = Duration::from_millis(ms);
                match d.shutdown(deadline) {
                    Ok(report) => final_stats = Some(report.stats),
                    Err(t) => {
                        returned = t.undelivered.iter().map(id).collect();
                        final_stats = Some(t.report.stats);
                    }
                }
                deadline
            }
            End::StopLive => {
                returned = d.stop().iter().map(id).collect();
                Duration::ZERO
            }
            End::Drop => {
                must_drain_all = true;
                drop(d);
                Duration::ZERO
            }
            End::Quiesce => unreachable!(),
        };
        let took = started.elapsed();
        if took > deadline + SLACK {
            sh.problem(format!(
                "{:?} took {took:?}, past its deadline {deadline:?} (hang guard)",
                plan.end
            ));
        }
        progress.set(format!("{:?}: joining producers", plan.end));
        sh.stop_producers.store(true, SeqCst);
        logs = producers.into_iter().map(|t| t.join().unwrap()).collect();
        progress.set(format!(
            "{:?}: joining receivers (waiting for the end of their streams)",
            plan.end
        ));
        streams = receivers.into_iter().map(|t| t.join().unwrap()).collect();
        late = holder.join().unwrap();
    }
    // Batches dropped only now, after the dispatcher is gone (or stopped).
    drop(late);

    // The ledger.
    let accepted: Vec<Id> = logs
        .iter()
        .enumerate()
        .flat_map(|(h, log)| log.accepted.iter().map(move |&(s, _)| (h as u32, s)))
        .collect();
    let fates = Fates {
        streams: streams.clone(),
        evicted: sh.evicted.lock().unwrap().clone(),
        failed: Vec::new(),
        returned: returned.clone(),
    };
    if let Err(problem) = verify(&accepted, &fates) {
        sh.problem(format!("ledger: {problem}"));
    }
    let delivered: usize = streams.iter().map(|(_, s)| s.len()).sum();
    if must_drain_all && !returned.is_empty() {
        sh.problem(format!(
            "{:?} with live receivers: {} events came back undelivered",
            plan.end,
            returned.len()
        ));
    }
    if let Some(s) = final_stats.filter(|_| plan.end != End::Quiesce) {
        let counts = [
            ("accepted", s.accepted, accepted.len()),
            ("delivered", s.delivered, delivered),
            ("dropped", s.dropped, fates.evicted.len()),
            ("returned", s.returned, returned.len()),
            ("buffered_items", s.buffered_items as u64, 0),
            ("batches", s.batches, sh.taken_batches.load(SeqCst) as usize),
        ];
        for (what, stat, seen) in counts {
            if stat != seen as u64 {
                sh.problem(format!(
                    "final stats ({:?}): {what} {stat} != {seen} recorded; {s:?}",
                    plan.end
                ));
            }
        }
        if s.delivered_bytes != sh.taken_bytes.load(SeqCst) {
            sh.problem(format!(
                "final stats: delivered_bytes {} != {} recorded",
                s.delivered_bytes,
                sh.taken_bytes.load(SeqCst)
            ));
        }
        if !balanced(&s) {
            sh.problem(format!("final stats do not balance: {s:?}"));
        }
    }
    if plan.kind == Kind::BlockLeases {
        let timeouts: usize = logs.iter().map(|l| l.timeouts).sum();
        println!("  block leases: {timeouts} Block timeouts (allowed under pressure)");
    }
    println!(
        "  {name}: accepted {}, delivered {delivered}, evicted {}, returned {}, {} stats \
         snapshots, {} exact checkpoints",
        accepted.len(),
        fates.evicted.len(),
        returned.len(),
        sh.snapshots.load(SeqCst),
        sh.checkpoints_ok.load(SeqCst),
        name = format_args!("{:?}/{:?}", plan.kind, plan.end),
    );
    sh.problems.lock().unwrap().clone()
}

/// At rest (every thread joined): the counters equal the records, and
/// `buffered_*` are exactly the events neither delivered nor evicted.
fn check_at_rest(s: &Stats, logs: &[Log], streams: &[(String, Vec<Id>)], sh: &Shared) {
    let mut weights: HashMap<Id, usize> = HashMap::new();
    for (h, log) in logs.iter().enumerate() {
        for &(seq, w) in &log.accepted {
            weights.insert((h as u32, seq), w);
        }
    }
    let evicted = sh.evicted.lock().unwrap().clone();
    let mut gone: HashSet<Id> = evicted.iter().copied().collect();
    let mut delivered = 0usize;
    let mut delivered_bytes = 0u64;
    for (_, stream) in streams {
        for i in stream {
            delivered += 1;
            delivered_bytes += weights.get(i).copied().unwrap_or(0) as u64;
            gone.insert(*i);
        }
    }
    let held: Vec<(&Id, &usize)> = weights.iter().filter(|(i, _)| !gone.contains(i)).collect();
    let held_bytes: usize = held.iter().map(|(_, w)| **w).sum();
    let counts = [
        ("accepted", s.accepted, weights.len() as u64),
        ("delivered", s.delivered, delivered as u64),
        ("delivered_bytes", s.delivered_bytes, delivered_bytes),
        ("dropped", s.dropped, evicted.len() as u64),
        ("returned", s.returned, 0),
        ("batches", s.batches, sh.taken_batches.load(SeqCst)),
        ("buffered_items", s.buffered_items as u64, held.len() as u64),
        ("buffered_bytes", s.buffered_bytes as u64, held_bytes as u64),
    ];
    for (what, stat, seen) in counts {
        if stat != seen {
            sh.problem(format!(
                "stats at rest: {what} {stat} != {seen} recorded; {s:?}"
            ));
        }
    }
    if !balanced(s) {
        sh.problem(format!("stats at rest do not balance: {s:?}"));
    }
}

/// Runs rounds of `kind` for about `budget` (one round with `HANDOFF_SEED`).
fn rounds(kind: Kind, budget: Duration) {
    let replay: Option<u64> = std::env::var("HANDOFF_SEED")
        .ok()
        .and_then(|s| s.parse().ok());
    let started = Instant::now();
    let mut master = fastrand::Rng::new();
    let mut n = 0;
    while n == 0 || (replay.is_none() && started.elapsed() < budget) {
        let seed = replay.unwrap_or_else(|| master.u64(..));
        let plan = Plan::draw(seed, kind);
        println!("{kind:?}: HANDOFF_SEED={seed} {plan:?}");
        round(plan);
        n += 1;
    }
    println!("{kind:?}: {n} rounds");
}

// ---------------------------------------------------------------------------
// The randomized attacks
// ---------------------------------------------------------------------------

/// Every policy, 1/2/8 partitions, 2-32 producers, 1-3 mixed receivers
/// holding and handing off batches, live limits and flushes, stats
/// hammered, and every kind of end racing the takes.
#[test]
fn handoff_hammer_mixed() {
    rounds(Kind::Mixed, Duration::from_secs(5));
}

/// DropOldest with tiny limits: evictions race receivers taking sealed
/// batches; no event may be both evicted and delivered.
#[test]
fn handoff_drop_oldest_evictions_race_takes() {
    rounds(Kind::DropOldest, Duration::from_secs(4));
}

/// Block with leases (several partitions, 1-8 MiB, big events): the ledger,
/// the bound and the balance under leases given back on seal.
#[test]
fn handoff_block_leases_hammer() {
    rounds(Kind::BlockLeases, Duration::from_secs(4));
}

/// `flush_and_wait` Ok means every event accepted before it was taken.
#[test]
fn handoff_flush_and_wait_is_exact() {
    rounds(Kind::Checkpoints, Duration::from_secs(4));
}

/// Everything stops; the lazily folded counters equal what is held, and
/// `stop()` returns exactly that.
#[test]
fn handoff_counters_at_rest_match_held_events() {
    rounds(Kind::Quiesce, Duration::from_secs(4));
}

// ---------------------------------------------------------------------------
// Block with leases: room must come back
// ---------------------------------------------------------------------------

/// Phased: the budget is filled by many handles (leases everywhere), then
/// producers block for room with big events (one of them the whole limit),
/// then receivers (on several threads, dropping batches elsewhere) free the
/// room. Every blocked producer must get in; none may time out (its
/// timeout is only a hang guard), nothing may be lost.
#[test]
fn handoff_blocked_producers_admitted_once_receivers_free_room() {
    let replay: Option<u64> = std::env::var("HANDOFF_SEED")
        .ok()
        .and_then(|s| s.parse().ok());
    let started = Instant::now();
    let mut master = fastrand::Rng::new();
    let mut n = 0;
    while n == 0 || (replay.is_none() && started.elapsed() < Duration::from_secs(4)) {
        let seed = replay.unwrap_or_else(|| master.u64(..));
        println!("blocked producers: HANDOFF_SEED={seed}");
        attack_kit::watchdog_within("blocked producers", ROUND_LIMIT, move |progress| {
            blocked_round(seed, &progress)
        });
        n += 1;
    }
    println!("blocked producers: {n} rounds");
}

fn blocked_round(seed: u64, progress: &attack_kit::Progress) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let partitions = [2, 8][rng.usize(0..2)];
    let limit = [MIB, rng.usize(MIB..=3 * MIB), 8 * MIB][rng.usize(0..3)];
    let handles = rng.usize(2..=16).max(partitions);
    let receivers = rng.usize(1..=3);
    let hang_guard = Duration::from_secs(15);
    let (d, batches) = Dispatcher::<E>::builder()
        .partitions(partitions)
        .max_buffered_bytes(limit)
        .max_batch_bytes(rng.usize(16 * KIB..=limit / 4))
        .interval(Duration::from_micros(rng.u64(300..=3000)))
        .policy(Policy::Block {
            timeout: hang_guard,
        })
        .build()
        .unwrap();
    let what = format!(
        "seed {seed}: {partitions} partitions, limit {limit}, {handles} handles, {receivers} receivers"
    );
    let d = Arc::new(d);
    let producers: Vec<Producer<E>> = (0..handles).map(|_| d.producer()).collect();
    let mut accepted: Vec<Vec<u32>> = vec![Vec::new(); handles];
    let mut next: Vec<u32> = vec![0; handles];

    // Phase 1: fill with small events from every handle, until every
    // handle was refused a few times (leases everywhere).
    progress.set(format!("{what}: filling"));
    let mut refusals = vec![0; handles];
    let mut filled = 0usize;
    while refusals.iter().any(|&r| r < 3) {
        let h = rng.usize(0..handles);
        let w = rng.usize(1..=4 * KIB);
        let e = E {
            h: h as u32,
            s: next[h],
            w,
        };
        match producers[h].try_enqueue(e) {
            Ok(()) => {
                accepted[h].push(next[h]);
                next[h] += 1;
                filled += w;
            }
            Err(TryEnqueueError::Full(back)) => {
                assert_eq!((back.h, back.s), (h as u32, next[h]));
                next[h] += 1;
                refusals[h] += 1;
            }
            Err(e) => panic!("{what}: filling refused with {e:?}"),
        }
    }
    let s = d.stats();
    assert!(
        s.buffered_bytes <= limit && balanced(&s),
        "{what}: after the fill {s:?}"
    );
    assert!(
        filled <= limit,
        "{what}: accepted {filled} bytes over {limit}"
    );

    // Phase 2: blocked producers with big events; handle 0 with the whole
    // limit (it fits only once every lease went back).
    progress.set(format!("{what}: blocking"));
    let mut blocked = Vec::new();
    for (h, p) in producers.into_iter().enumerate() {
        let count = if h == 0 { 1 } else { rng.usize(0..=3) };
        let sizes: Vec<usize> = (0..count)
            .map(|_| {
                if h == 0 {
                    limit
                } else {
                    rng.usize(limit / 16..=limit / 2)
                }
            })
            .collect();
        let first = next[h];
        blocked.push(thread::spawn(move || {
            let mut ok = Vec::new();
            for (i, w) in sizes.into_iter().enumerate() {
                let e = E {
                    h: h as u32,
                    s: first + i as u32,
                    w,
                };
                let t = Instant::now();
                match p.enqueue(e) {
                    Ok(()) => ok.push(first + i as u32),
                    Err(err) => {
                        return Err(format!(
                            "handle {h}: a blocked enqueue of {w} bytes failed after {:?}: {err:?}",
                            t.elapsed()
                        ));
                    }
                }
            }
            Ok(ok)
        }));
    }
    // Let them block, and watch the bound meanwhile.
    for _ in 0..10 {
        thread::sleep(Duration::from_millis(1));
        let s = d.stats();
        assert!(
            s.buffered_bytes <= limit && s.peak_buffered_bytes <= limit && balanced(&s),
            "{what}: while blocked {s:?}"
        );
    }

    // Phase 3: receivers free the room.
    progress.set(format!("{what}: receiving"));
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel::<Batch<E>>();
    let dropper = thread::spawn(move || {
        let mut rng = fastrand::Rng::with_seed(seed ^ 0xd209);
        let mut held = Vec::new();
        for b in rx {
            held.push(b);
            if held.len() > rng.usize(0..=4) {
                held.clear();
            }
        }
    });
    let takers: Vec<_> = (0..receivers)
        .map(|r| {
            let (b, stop, tx) = (batches.clone(), Arc::clone(&stop), tx.clone());
            thread::spawn(move || {
                let mut rng = fastrand::Rng::with_seed(seed ^ ((r as u64) << 8));
                let mut stream = Vec::new();
                loop {
                    let got = match rng.u8(0..3) {
                        0 => b.try_recv().map_err(|e| e == TryRecvError::Disconnected),
                        1 => b
                            .recv_timeout(Duration::from_micros(rng.u64(0..=2000)))
                            .map_err(|e| e == RecvTimeoutError::Disconnected),
                        _ => b.recv().map_err(|_| true),
                    };
                    match got {
                        Ok(batch) => {
                            stream.extend(batch.iter().map(id));
                            if rng.bool() {
                                let _ = tx.send(batch);
                            }
                        }
                        Err(true) => break,
                        Err(false) => {
                            if stop.load(SeqCst) && rng.u8(0..50) == 0 {
                                thread::yield_now();
                            }
                        }
                    }
                }
                (format!("receiver {r}"), stream)
            })
        })
        .collect();
    drop(tx);
    let mut failures = Vec::new();
    for (h, t) in blocked.into_iter().enumerate() {
        match t.join().unwrap() {
            Ok(ok) => accepted[h].extend(ok),
            Err(e) => failures.push(e),
        }
    }
    // Everything admitted: a whole-limit event needs every lease back, so
    // once all was taken it must fit again, on every handle.
    progress.set(format!("{what}: draining"));
    let start = Instant::now();
    loop {
        d.flush();
        let s = d.stats();
        if s.buffered_items == 0 {
            assert_eq!(
                s.buffered_bytes, 0,
                "{what}: nothing held but bytes are: {s:?}"
            );
            break;
        }
        assert!(start.elapsed() < hang_guard, "{what}: never drained: {s:?}");
        thread::sleep(Duration::from_millis(1));
    }
    stop.store(true, SeqCst);
    let d = Arc::try_unwrap(d).unwrap_or_else(|_| panic!("shared"));
    let report = d.shutdown(Duration::from_secs(10));
    let streams: Vec<(String, Vec<Id>)> = takers.into_iter().map(|t| t.join().unwrap()).collect();
    dropper.join().unwrap();
    assert!(failures.is_empty(), "{what}: STRANDED: {failures:?}");
    let report = report.unwrap_or_else(|t| panic!("{what}: shutdown timed out: {t:?}"));
    let fates = Fates {
        streams,
        ..Fates::default()
    };
    let accepted = attack_kit::ledger::per_handle(accepted);
    attack_kit::ledger::assert_exactly_once(&what, &accepted, &fates);
    assert_eq!(
        report.stats.accepted,
        accepted.len() as u64,
        "{what}: {report:?}"
    );
    assert_eq!(
        report.stats.delivered,
        accepted.len() as u64,
        "{what}: {report:?}"
    );
}

/// With leases (several partitions, >= 1 MiB): after everything was taken
/// (by receivers on other threads, batches dropped on yet others) a
/// whole-limit event fits at once on every handle, under Reject: no lease
/// lingers once the partitions are empty, whoever took the batches.
#[test]
fn handoff_whole_limit_fits_after_takes_with_leases() {
    let mut master = fastrand::Rng::new();
    let started = Instant::now();
    let mut n = 0;
    while n == 0 || started.elapsed() < Duration::from_secs(3) {
        let seed = std::env::var("HANDOFF_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| master.u64(..));
        println!("whole limit: HANDOFF_SEED={seed}");
        attack_kit::watchdog_within("whole limit", ROUND_LIMIT, move |_| whole_limit_round(seed));
        n += 1;
        if std::env::var("HANDOFF_SEED").is_ok() {
            break;
        }
    }
    println!("whole limit: {n} rounds");
}

fn whole_limit_round(seed: u64) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let partitions = [2, 8, rng.usize(2..=16)][rng.usize(0..3)];
    let limit = [MIB, rng.usize(MIB..=4 * MIB), 8 * MIB][rng.usize(0..3)];
    let what = format!("seed {seed}: {partitions} partitions, limit {limit}");
    let (d, batches) = Dispatcher::<E>::builder()
        .partitions(partitions)
        .max_buffered_bytes(limit)
        .max_batch_items(rng.usize(1..=64))
        .interval(Duration::from_secs(3600))
        .policy(Policy::Reject)
        .build()
        .unwrap();
    let handles: Vec<Producer<E>> = (0..partitions).map(|_| d.producer()).collect();
    let mut next = vec![0u32; partitions];
    let mut accepted: Vec<Vec<u32>> = vec![Vec::new(); partitions];
    let mut streams = Vec::new();
    for cycle in 0..4 {
        // Small events on every partition (each leases), some refused.
        for _ in 0..rng.usize(1..=400) {
            let h = rng.usize(0..partitions);
            let e = E {
                h: h as u32,
                s: next[h],
                w: rng.usize(1..=8 * KIB),
            };
            next[h] += 1;
            if handles[h].try_enqueue(e.clone()).is_ok() {
                accepted[h].push(e.s);
            }
        }
        d.flush();
        // Takers on other threads; batches dropped on yet another.
        let (tx, rx) = mpsc::channel::<Batch<E>>();
        let dropper = thread::spawn(move || {
            let held: Vec<Batch<E>> = rx.into_iter().collect();
            drop(held);
        });
        let takers: Vec<_> = (0..rng.usize(1..=3))
            .map(|r| {
                let (b, tx) = (batches.clone(), tx.clone());
                thread::spawn(move || {
                    let mut stream = Vec::new();
                    while let Ok(batch) = b.try_recv() {
                        stream.extend(batch.iter().map(id));
                        let _ = tx.send(batch);
                    }
                    (format!("cycle {cycle} receiver {r}"), stream)
                })
            })
            .collect();
        drop(tx);
        for t in takers {
            streams.push(t.join().unwrap());
        }
        // The batches may still be held by the dropper, or dropped: either way
        // they were delivered and their bytes are free.
        let s = d.stats();
        let delivered: usize = streams.iter().map(|(_, s)| s.len()).sum();
        assert_eq!(
            (s.buffered_items, s.buffered_bytes),
            (0, 0),
            "{what}, cycle {cycle}: all taken, yet stats say held: {s:?}"
        );
        assert_eq!(
            s.delivered, delivered as u64,
            "{what}, cycle {cycle}: {s:?}"
        );
        // Every handle in turn: a whole-limit event fits; take it back out.
        let mut whole: Option<Batch<E>> = None;
        for h in 0..partitions {
            let e = E {
                h: h as u32,
                s: next[h],
                w: limit,
            };
            next[h] += 1;
            if let Err(err) = handles[h].try_enqueue(e.clone()) {
                panic!(
                    "{what}, cycle {cycle}: a whole-limit event refused on handle {h} after \
                     everything was taken ({:?}): {:?}",
                    d.stats(),
                    err
                );
            }
            accepted[h].push(e.s);
            d.flush();
            let batch = batches
                .try_recv()
                .unwrap_or_else(|e| panic!("{what}: the whole-limit batch is not ready: {e:?}"));
            let ids: Vec<Id> = batch.iter().map(id).collect();
            streams.push((format!("cycle {cycle} whole {h}"), ids));
            // Held across the next admission, then dropped on another thread.
            if let Some(previous) = whole.replace(batch) {
                thread::spawn(move || drop(previous)).join().unwrap();
            }
        }
        if let Some(previous) = whole.take() {
            thread::spawn(move || drop(previous)).join().unwrap();
        }
        dropper.join().unwrap();
    }
    let undelivered = d.stop();
    assert!(undelivered.is_empty(), "{what}: {} left", undelivered.len());
    let fates = Fates {
        streams,
        ..Fates::default()
    };
    attack_kit::ledger::assert_exactly_once(
        &what,
        &attack_kit::ledger::per_handle(accepted),
        &fates,
    );
}

// ---------------------------------------------------------------------------
// The async stream
// ---------------------------------------------------------------------------

#[cfg(feature = "async")]
mod streams {
    use super::*;
    use futures_util::StreamExt;

    /// Async streams (with `next()` cancelled by timeouts mid-wait, batches
    /// held across awaits and dropped on other threads) race blocking
    /// receivers and producers; stats hammered; every end.
    #[test]
    fn handoff_async_streams_race_blocking_receivers() {
        let replay: Option<u64> = std::env::var("HANDOFF_SEED")
            .ok()
            .and_then(|s| s.parse().ok());
        let started = Instant::now();
        let mut master = fastrand::Rng::new();
        let mut n = 0;
        while n == 0 || (replay.is_none() && started.elapsed() < Duration::from_secs(4)) {
            let seed = replay.unwrap_or_else(|| master.u64(..));
            println!("async: HANDOFF_SEED={seed}");
            attack_kit::watchdog_within("async streams", ROUND_LIMIT, move |progress| {
                async_round(seed, &progress)
            });
            n += 1;
        }
        println!("async: {n} rounds");
    }

    fn async_round(seed: u64, progress: &attack_kit::Progress) {
        let mut plan = Plan::draw(seed, Kind::Mixed);
        if plan.end == End::Quiesce {
            plan.end = End::ShutdownLong;
        }
        let streams_n = fastrand::Rng::with_seed(seed ^ 0xa5).usize(1..=3);
        plan.receivers = fastrand::Rng::with_seed(seed ^ 0xa6).usize(0..=1);
        let plan = Arc::new(plan);
        let what = format!("seed {seed}: {streams_n} streams, {plan:?}");
        let sh = Arc::new(Shared::new(plan.producers));
        let mut builder = Dispatcher::<E>::builder()
            .partitions(plan.partitions)
            .max_buffered_bytes(plan.limit)
            .policy(plan.policy)
            .interval(plan.interval);
        if let Some(x) = plan.batch_bytes {
            builder = builder.max_batch_bytes(x);
        }
        if plan.policy == Policy::DropOldest {
            let sh = Arc::clone(&sh);
            builder = builder.on_evict(move |e: E| {
                sh.evicted.lock().unwrap().push(id(&e));
                sh.evicted_n.fetch_add(1, SeqCst);
            });
        }
        let (d, batches) = builder.build().unwrap();
        let d = Arc::new(d);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (hold_tx, hold_rx) = mpsc::channel();
        let holder = thread::spawn(move || hold(hold_rx, seed));
        let tasks: Vec<_> = (0..streams_n)
            .map(|k| {
                let mut stream = batches.clone().into_stream();
                let (sh, tx) = (Arc::clone(&sh), hold_tx.clone());
                rt.spawn(async move {
                    let mut rng = fastrand::Rng::with_seed(seed ^ ((k as u64) << 12));
                    let mut got: Vec<Id> = Vec::new();
                    let mut held: Vec<Batch<E>> = Vec::new();
                    loop {
                        let next = if rng.bool() {
                            stream.next().await
                        } else {
                            let wait = Duration::from_micros(rng.u64(0..=2000));
                            match tokio::time::timeout(wait, stream.next()).await {
                                Ok(next) => next,
                                Err(_) => continue,
                            }
                        };
                        let Some(batch) = next else { break };
                        let sum: usize = batch.iter().map(|e| e.w).sum();
                        if sum != batch.bytes() {
                            sh.problem(format!("stream {k}: bytes {} != {sum}", batch.bytes()));
                        }
                        got.extend(batch.iter().map(id));
                        sh.taken_batches.fetch_add(1, SeqCst);
                        sh.taken_bytes.fetch_add(batch.bytes() as u64, SeqCst);
                        sh.taken.fetch_add(batch.len() as u64, SeqCst);
                        match rng.u8(0..4) {
                            0 => drop(batch),
                            1 => {
                                let _ = tx.send(batch);
                            }
                            2 => {
                                held.push(batch);
                                tokio::time::sleep(Duration::from_micros(rng.u64(0..=500))).await;
                            }
                            _ => held.push(batch),
                        }
                        if held.len() > rng.usize(0..=3) {
                            held.clear();
                        }
                    }
                    if stream.next().await.is_some() {
                        sh.problem(format!("stream {k}: a batch after the end"));
                    }
                    (format!("stream {k}"), got)
                })
            })
            .collect();
        let receivers: Vec<_> = (0..plan.receivers)
            .map(|r| {
                let (b, plan, sh, tx) = (
                    batches.clone(),
                    Arc::clone(&plan),
                    Arc::clone(&sh),
                    hold_tx.clone(),
                );
                thread::spawn(move || receive(r, b, &plan, &sh, tx))
            })
            .collect();
        drop(hold_tx);
        drop(batches);
        let producers: Vec<_> = (0..plan.producers)
            .map(|h| {
                let (p, plan, sh) = (d.producer(), Arc::clone(&plan), Arc::clone(&sh));
                thread::spawn(move || produce(p, h as u32, &plan, &sh))
            })
            .collect();
        let watcher = {
            let (d, plan, sh) = (Arc::clone(&d), Arc::clone(&plan), Arc::clone(&sh));
            thread::spawn(move || watch_stats(&d, &plan, &sh))
        };
        let flipper = {
            let (d, plan, sh) = (Arc::clone(&d), Arc::clone(&plan), Arc::clone(&sh));
            thread::spawn(move || flip_limits(&d, &plan, &sh))
        };
        progress.set(format!("{what}: running"));
        thread::sleep(plan.run_for);
        sh.stop_helpers.store(true, SeqCst);
        watcher.join().unwrap();
        flipper.join().unwrap();
        let d = Arc::try_unwrap(d).unwrap_or_else(|_| panic!("shared"));
        progress.set(format!("{what}: ending {:?}", plan.end));
        let mut returned: Vec<Id> = Vec::new();
        let mut must_drain_all = false;
        let started = Instant::now();
        match plan.end {
            End::ShutdownLong | End::Quiesce => {
                must_drain_all = true;
                match d.shutdown(Duration::from_secs(10)) {
                    Ok(_) => {}
                    Err(t) => returned = t.undelivered.iter().map(id).collect(),
                }
            }
            End::ShutdownShort(ms) => match d.shutdown(Duration::from_millis(ms)) {
                Ok(_) => {}
                Err(t) => returned = t.undelivered.iter().map(id).collect(),
            },
            End::StopLive => returned = d.stop().iter().map(id).collect(),
            End::Drop => {
                must_drain_all = true;
                drop(d);
            }
        }
        let took = started.elapsed();
        if took > Duration::from_secs(10) + SLACK {
            sh.problem(format!("{:?} took {took:?} (hang guard)", plan.end));
        }
        sh.stop_producers.store(true, SeqCst);
        let logs: Vec<Log> = producers.into_iter().map(|t| t.join().unwrap()).collect();
        progress.set(format!("{what}: waiting for the streams' end"));
        let mut streams: Vec<(String, Vec<Id>)> = rt.block_on(async {
            let mut out = Vec::new();
            for t in tasks {
                out.push(t.await.unwrap());
            }
            out
        });
        streams.extend(receivers.into_iter().map(|t| t.join().unwrap()));
        drop(holder.join().unwrap());
        drop(rt);
        let accepted: Vec<Id> = logs
            .iter()
            .enumerate()
            .flat_map(|(h, log)| log.accepted.iter().map(move |&(s, _)| (h as u32, s)))
            .collect();
        let fates = Fates {
            streams,
            evicted: sh.evicted.lock().unwrap().clone(),
            failed: Vec::new(),
            returned: returned.clone(),
        };
        let mut problems = sh.problems.lock().unwrap().clone();
        if let Err(p) = verify(&accepted, &fates) {
            problems.push(format!("ledger: {p}"));
        }
        if must_drain_all && !returned.is_empty() {
            problems.push(format!(
                "{:?} with live streams: {} events came back undelivered",
                plan.end,
                returned.len()
            ));
        }
        println!(
            "  accepted {}, delivered {}, evicted {}, returned {}",
            accepted.len(),
            fates.delivered(),
            fates.evicted.len(),
            returned.len()
        );
        assert!(problems.is_empty(), "{what}\n  {}", problems.join("\n  "));
    }
}
