//! A randomized, seeded, multi-threaded no-loss test. Each round draws a
//! configuration (4..=16 producers, every policy, 1..=4 partitions, random
//! limits, pull mode with 1..=3 receivers or sink mode with a sink that fails
//! some attempts), runs producers that mix `try_enqueue`, `enqueue`,
//! `enqueue_timeout` and `try_enqueue_all` with random weights (some heavier
//! than the limit), sometimes a thread changing the limits live, and ends
//! with `shutdown` or `stop` in the middle of the load.
//!
//! Every event is unique (producer, sequence number). Independent records:
//! what producers got `Ok` for and what every `Err` handed back; what the
//! receivers or the sink delivered; what `on_evict`, `on_flush_error` and
//! shutdown/stop handed back. Checked: every accepted event has exactly one
//! fate (delivered, dropped, failed, returned), no refused event has any,
//! per-producer order (with one consumer), the counters agree with the
//! records, and the byte bound holds (watched continuously).
//!
//! `CONCURRENT_RANDOM_SEED=<u64>` replays a run; `CONCURRENT_RANDOM_ROUNDS`
//! sets the rounds per test.

#![allow(missing_docs)]

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::{Ev, ev, quick_retry, with_watchdog};
use dispatcher::sink::FlushContext;
use dispatcher::{
    Batch, Dispatcher, EnqueueError, EnqueueTimeoutError, Policy, Producer, RecvTimeoutError,
    Stats, TryEnqueueError,
};

type Id = (u8, u32);

fn id(e: &Ev) -> Id {
    (e.producer, e.seq)
}

/// The master seed: from the environment, or from the clock (printed).
fn master_seed() -> u64 {
    let seed = std::env::var("CONCURRENT_RANDOM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    println!("CONCURRENT_RANDOM_SEED={seed}");
    seed
}

fn rounds() -> u64 {
    std::env::var("CONCURRENT_RANDOM_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(24)
}

#[derive(Debug, Clone)]
struct Config {
    producers: u8,
    ops: u32,
    policy: Policy,
    partitions: usize,
    max_buffered: usize,
    max_batch_bytes: Option<usize>,
    max_batch_items: Option<usize>,
    interval: Duration,
    live_limits: bool,
    /// Pull mode: receivers; sink mode: 0.
    receivers: usize,
    /// Sink mode: flush workers, attempts, failure percentage.
    sink: Option<(usize, u32, u64)>,
    stop: bool,
    end_after: Duration,
    shutdown_timeout: Duration,
}

impl Config {
    fn draw(rng: &mut fastrand::Rng, sink: bool) -> Self {
        let max_buffered = rng.usize(256..=4096);
        Config {
            producers: rng.u8(4..=16),
            ops: rng.u32(1000..=4000),
            policy: match rng.u8(0..3) {
                0 => Policy::Reject,
                1 => common::block(Duration::from_micros(rng.u64(200..=3000))),
                _ => Policy::DropOldest,
            },
            partitions: rng.usize(1..=4),
            max_buffered,
            max_batch_bytes: rng.bool().then(|| rng.usize(1..=max_buffered)),
            max_batch_items: rng.bool().then(|| rng.usize(1..=64)),
            interval: Duration::from_micros(rng.u64(500..=5000)),
            live_limits: rng.bool(),
            receivers: if sink { 0 } else { rng.usize(1..=3) },
            sink: sink.then(|| (rng.usize(1..=3), rng.u32(1..=3), rng.u64(0..=40))),
            stop: rng.u8(0..4) == 0,
            end_after: Duration::from_millis(rng.u64(5..=40)),
            shutdown_timeout: if rng.u8(0..4) == 0 {
                Duration::from_millis(rng.u64(0..=2))
            } else {
                Duration::from_secs(2)
            },
        }
    }

    /// Whether one consumer sees every batch in the order they were taken.
    fn single_consumer(&self) -> bool {
        match self.sink {
            Some((workers, _, _)) => workers == 1,
            None => self.receivers == 1,
        }
    }
}

/// What the receivers, the sink and the hooks saw, each on its own.
#[derive(Default)]
struct Records {
    /// Delivered batches, in the order the consumers recorded them.
    delivered: Mutex<Vec<Vec<Id>>>,
    /// Every sink attempt's events (duplicates allowed: at least once).
    attempted: Mutex<Vec<Id>>,
    dropped: Mutex<Vec<Id>>,
    failed: Mutex<Vec<Id>>,
}

/// What one producer thread saw.
#[derive(Default)]
struct Produced {
    accepted: Vec<u32>,
    refused: Vec<u32>,
    problems: Vec<String>,
    /// Whether the end (shutdown or stop) came while this producer ran.
    saw_closed: bool,
}

impl Produced {
    fn refused_item(&mut self, sent: &Ev, back: &Ev) {
        if sent != back {
            self.problems
                .push(format!("refusal handed back {back:?} for {sent:?}"));
        }
        self.refused.push(sent.seq);
    }
}

fn weight(rng: &mut fastrand::Rng, max: usize) -> usize {
    match rng.u8(0..100) {
        0..=2 => rng.usize(max + 1..=max * 2), // heavier than the limit
        3..=6 => 0,                            // charged one byte
        _ => rng.usize(1..=(max / 6).max(1)),
    }
}

fn produce(producer: Producer<Ev>, me: u8, cfg: Config, seed: u64) -> Produced {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut out = Produced::default();
    let mut seq = 0;
    let mut closed = false;
    while seq < cfg.ops && !closed {
        if seq % 16 == 0 {
            thread::yield_now(); // leave the consumers some CPU
        }
        match rng.u8(0..10) {
            0..=3 => {
                let e = ev(me, seq, weight(&mut rng, cfg.max_buffered));
                seq += 1;
                match producer.try_enqueue(e.clone()) {
                    Ok(()) => out.accepted.push(e.seq),
                    Err(err) => {
                        closed = matches!(err, TryEnqueueError::Closed(_));
                        out.refused_item(&e, &err.into_inner());
                    }
                }
            }
            4..=5 => {
                let e = ev(me, seq, weight(&mut rng, cfg.max_buffered));
                seq += 1;
                match producer.enqueue(e.clone()) {
                    Ok(()) => out.accepted.push(e.seq),
                    Err(err) => {
                        closed = matches!(err, EnqueueError::Closed(_));
                        out.refused_item(&e, &err.into_inner());
                    }
                }
            }
            6..=7 => {
                let e = ev(me, seq, weight(&mut rng, cfg.max_buffered));
                seq += 1;
                let timeout = Duration::from_micros(rng.u64(0..=2000));
                match producer.enqueue_timeout(e.clone(), timeout) {
                    Ok(()) => out.accepted.push(e.seq),
                    Err(err) => {
                        closed = matches!(err, EnqueueTimeoutError::Closed(_));
                        out.refused_item(&e, &err.into_inner());
                    }
                }
            }
            _ => {
                let n = rng.u32(1..=4);
                let group: Vec<Ev> = (seq..seq + n)
                    .map(|s| ev(me, s, weight(&mut rng, cfg.max_buffered / 4)))
                    .collect();
                seq += n;
                match producer.try_enqueue_all(group.clone()) {
                    Ok(()) => out.accepted.extend(group.iter().map(|e| e.seq)),
                    Err(err) => {
                        closed = matches!(err, TryEnqueueError::Closed(_));
                        let back = err.into_inner();
                        if back != group {
                            out.problems
                                .push(format!("group refusal handed back {back:?}"));
                        }
                        out.refused.extend(group.iter().map(|e| e.seq));
                    }
                }
            }
        }
    }
    out.saw_closed = closed;
    out
}

/// Limits the watcher holds the gauges to.
struct Bound {
    /// The highest `max_buffered_bytes` ever in force.
    highest: AtomicUsize,
    violations: Mutex<Vec<String>>,
    done: AtomicBool,
}

fn watch(dispatcher: &Dispatcher<Ev>, bound: &Bound, fixed: Option<usize>) -> Stats {
    let mut last = dispatcher.stats();
    let mut reported = 0;
    while !bound.done.load(SeqCst) {
        last = dispatcher.stats();
        // Read after the stats: a limit raised meanwhile counts.
        let highest = bound.highest.load(SeqCst);
        let limit = fixed.unwrap_or(highest);
        if (last.buffered_bytes > limit || last.peak_buffered_bytes > limit) && reported < 3 {
            reported += 1;
            bound.violations.lock().unwrap().push(format!(
                "buffered_bytes {} / peak {} above the limit {limit} (live limits: {})",
                last.buffered_bytes,
                last.peak_buffered_bytes,
                fixed.is_none()
            ));
        }
        thread::sleep(Duration::from_micros(200));
    }
    last
}

fn change_limits(dispatcher: &Dispatcher<Ev>, bound: &Bound, cfg: &Config, seed: u64) {
    let mut rng = fastrand::Rng::with_seed(seed);
    while !bound.done.load(SeqCst) {
        thread::sleep(Duration::from_micros(rng.u64(300..=3000)));
        let mut limits = dispatcher.limits();
        limits.max_buffered_bytes = rng.usize(cfg.max_buffered / 4..=cfg.max_buffered * 2);
        limits.max_batch_bytes = rng.bool().then(|| rng.usize(1..=limits.max_buffered_bytes));
        limits.max_batch_items = rng.bool().then(|| rng.usize(1..=64));
        limits.interval = Duration::from_micros(rng.u64(500..=5000));
        bound.highest.fetch_max(limits.max_buffered_bytes, SeqCst);
        dispatcher.set_limits(limits).expect("valid limits");
    }
}

/// Builds the round's dispatcher; in pull mode also starts the receivers.
fn start(
    cfg: &Config,
    records: &Arc<Records>,
    seed: u64,
) -> (Dispatcher<Ev>, Vec<thread::JoinHandle<()>>) {
    let dropped = Arc::clone(records);
    let mut builder = Dispatcher::<Ev>::builder()
        .interval(cfg.interval)
        .max_buffered_bytes(cfg.max_buffered)
        .partitions(cfg.partitions)
        .policy(cfg.policy)
        .jitter_seed(seed)
        .on_evict(move |e| dropped.dropped.lock().unwrap().push(id(&e)));
    if let Some(bytes) = cfg.max_batch_bytes {
        builder = builder.max_batch_bytes(bytes);
    }
    if let Some(items) = cfg.max_batch_items {
        builder = builder.max_batch_items(items);
    }
    if let Some((workers, attempts, fail_pct)) = cfg.sink {
        let (failed, sunk) = (Arc::clone(records), Arc::clone(records));
        let dispatcher = builder
            .flush_workers(workers)
            .flush_timeout(Duration::from_secs(1))
            .retry(quick_retry(attempts))
            .on_flush_error(move |_failure, batch: Batch<Ev>| {
                failed.failed.lock().unwrap().extend(batch.iter().map(id));
            })
            .build_with_sink(dispatcher::sink::from_fn(
                move |batch: &Batch<Ev>, ctx: &FlushContext| {
                    let ids: Vec<Id> = batch.iter().map(id).collect();
                    sunk.attempted.lock().unwrap().extend(&ids);
                    let first = ids
                        .first()
                        .map_or(0, |&(p, s)| (u64::from(p) << 32) | u64::from(s));
                    let mut rng = fastrand::Rng::with_seed(seed ^ first ^ u64::from(ctx.attempt()));
                    thread::sleep(Duration::from_micros(rng.u64(0..=300)));
                    if rng.u64(0..100) < fail_pct {
                        return Err(std::io::Error::other("injected failure"));
                    }
                    sunk.delivered.lock().unwrap().push(ids);
                    Ok(())
                },
            ))
            .expect("valid sink config");
        return (dispatcher, Vec::new());
    }
    let (dispatcher, batches) = builder.build().expect("valid config");
    let receivers = (0..cfg.receivers)
        .map(|r| {
            let (batches, records) = (batches.clone(), Arc::clone(records));
            let mut rng = fastrand::Rng::with_seed(seed ^ (r as u64 + 7));
            thread::spawn(move || {
                loop {
                    match batches.recv_timeout(Duration::from_millis(50)) {
                        Ok(batch) => {
                            let ids = batch.iter().map(id).collect();
                            records.delivered.lock().unwrap().push(ids);
                            drop(batch);
                            thread::sleep(Duration::from_micros(rng.u64(0..=200)));
                        }
                        Err(RecvTimeoutError::Timeout) => {}
                        Err(_) => break,
                    }
                }
            })
        })
        .collect();
    (dispatcher, receivers)
}

/// How many events met each fate over a run (printed, to show coverage).
#[derive(Debug, Default)]
struct Tally {
    accepted: usize,
    refused: usize,
    delivered: usize,
    dropped: usize,
    failed: usize,
    returned: usize,
    /// Rounds that ended while some producer was still producing.
    ended_mid_load: usize,
}

/// Runs one round; returns what went wrong.
fn round(cfg: &Config, seed: u64, tally: &mut Tally) -> Vec<String> {
    let records = Arc::new(Records::default());
    let (dispatcher, receivers) = start(cfg, &records, seed);
    let producers: Vec<_> = (0..cfg.producers)
        .map(|me| {
            let (producer, cfg) = (dispatcher.producer(), cfg.clone());
            let seed = seed.wrapping_mul(31).wrapping_add(u64::from(me));
            thread::spawn(move || produce(producer, me, cfg, seed))
        })
        .collect();
    let bound = Bound {
        highest: AtomicUsize::new(cfg.max_buffered),
        violations: Mutex::new(Vec::new()),
        done: AtomicBool::new(false),
    };
    let fixed = (!cfg.live_limits).then_some(cfg.max_buffered);
    let watched = thread::scope(|s| {
        let watcher = s.spawn(|| watch(&dispatcher, &bound, fixed));
        if cfg.live_limits {
            s.spawn(|| change_limits(&dispatcher, &bound, cfg, seed ^ 0x5eed));
        }
        thread::sleep(cfg.end_after);
        bound.done.store(true, SeqCst);
        watcher.join().expect("watcher")
    });
    let mut problems = bound.violations.into_inner().unwrap();
    let highest = bound.highest.load(SeqCst);

    // End in the middle of the load.
    let (returned, final_stats) = if cfg.stop {
        (dispatcher.stop().into_vec(), None)
    } else {
        match dispatcher.shutdown(cfg.shutdown_timeout) {
            Ok(report) => (Vec::new(), Some(report.stats)),
            Err(timeout) => {
                let stats = timeout.report.stats;
                (timeout.into_inner().into_vec(), Some(stats))
            }
        }
    };
    let produced: Vec<Produced> = producers
        .into_iter()
        .map(|p| p.join().expect("producer"))
        .collect();
    for r in receivers {
        r.join().expect("receiver");
    }

    let mut accepted: HashMap<Id, usize> = HashMap::new();
    let mut refused: HashMap<Id, usize> = HashMap::new();
    for (me, p) in produced.iter().enumerate() {
        problems.extend(p.problems.iter().cloned());
        for &seq in &p.accepted {
            accepted.insert((me as u8, seq), 0);
        }
        for &seq in &p.refused {
            refused.insert((me as u8, seq), 0);
        }
    }
    // A sink still writing when shutdown or stop returned settles later.
    let settled = || {
        records
            .delivered
            .lock()
            .unwrap()
            .iter()
            .map(Vec::len)
            .sum::<usize>()
            + records.dropped.lock().unwrap().len()
            + records.failed.lock().unwrap().len()
            + returned.len()
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while settled() < accepted.len() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(1));
    }

    let delivered = records.delivered.lock().unwrap().clone();
    let dropped = records.dropped.lock().unwrap().clone();
    let failed = records.failed.lock().unwrap().clone();
    let returned: Vec<Id> = returned.iter().map(id).collect();
    tally.ended_mid_load += usize::from(produced.iter().any(|p| p.saw_closed));
    tally.accepted += accepted.len();
    tally.refused += refused.len();
    tally.delivered += delivered.iter().map(Vec::len).sum::<usize>();
    tally.dropped += dropped.len();
    tally.failed += failed.len();
    tally.returned += returned.len();
    let mut fates: HashMap<Id, Vec<&str>> = HashMap::new();
    let all = delivered.iter().flatten().map(|i| (i, "delivered"));
    let all = all
        .chain(dropped.iter().map(|i| (i, "dropped")))
        .chain(failed.iter().map(|i| (i, "failed")))
        .chain(returned.iter().map(|i| (i, "returned")));
    for (i, fate) in all {
        fates.entry(*i).or_default().push(fate);
    }
    let mut lost = Vec::new();
    for i in accepted.keys() {
        match fates.get(i).map(Vec::as_slice) {
            None | Some([]) => lost.push(*i),
            Some([_]) => {}
            Some(many) => problems.push(format!("accepted {i:?} has several fates: {many:?}")),
        }
    }
    if !lost.is_empty() {
        lost.sort_unstable();
        problems.push(format!(
            "{} accepted events have no fate (lost), e.g. {:?}",
            lost.len(),
            &lost[..lost.len().min(5)]
        ));
    }
    for (i, fate) in &fates {
        if refused.contains_key(i) {
            problems.push(format!("refused {i:?} turned up as {fate:?}"));
        } else if !accepted.contains_key(i) {
            problems.push(format!("{i:?} was never accepted but is {fate:?}"));
        }
    }
    if cfg.sink.is_some() {
        let attempted: HashSet<Id> = records.attempted.lock().unwrap().iter().copied().collect();
        if delivered.iter().flatten().any(|i| !attempted.contains(i)) {
            problems.push("an event counted delivered never reached the sink".into());
        }
    }

    // Per-producer order: within every batch, and across batches with
    // one consumer.
    let mut last: HashMap<u8, u32> = HashMap::new();
    for batch in &delivered {
        let mut in_batch: HashMap<u8, u32> = HashMap::new();
        for &(p, seq) in batch {
            let seen = if cfg.single_consumer() {
                last.insert(p, seq)
            } else {
                in_batch.insert(p, seq)
            };
            if seen.is_some_and(|before| before >= seq) {
                problems.push(format!("producer {p}: seq {seq} delivered after {seen:?}"));
            }
        }
    }

    // The counters against the records.
    let ok = accepted.len() as u64;
    if let Some(stats) = final_stats {
        if stats.accepted != ok {
            problems.push(format!(
                "stats.accepted {} != {ok} Ok'd events",
                stats.accepted
            ));
        }
        let settled = stats.delivered + stats.dropped + stats.returned + stats.failed;
        if settled + stats.buffered_items as u64 != stats.accepted {
            problems.push(format!("stats do not balance: {stats:?}"));
        }
        if stats.in_flight_items == 0 {
            let counted = [
                (
                    "delivered",
                    stats.delivered,
                    delivered.iter().map(Vec::len).sum(),
                ),
                ("dropped", stats.dropped, dropped.len()),
                ("failed", stats.failed, failed.len()),
                ("returned", stats.returned, returned.len()),
            ];
            for (what, stat, seen) in counted {
                if stat != seen as u64 {
                    problems.push(format!("stats.{what} {stat} != {seen} recorded"));
                }
            }
            if settled != stats.accepted {
                problems.push(format!("accepted != settled after shutdown: {stats:?}"));
            }
        }
        if stats.peak_buffered_bytes > highest {
            problems.push(format!(
                "peak_buffered_bytes {} > the highest limit set {highest}",
                stats.peak_buffered_bytes
            ));
        }
    } else if watched.accepted > ok {
        problems.push(format!("stats.accepted {} > {ok} Ok'd", watched.accepted));
    }
    problems
}

fn run(sink: bool) {
    let seed = master_seed();
    let rounds = rounds();
    let outcomes = with_watchdog(Duration::from_secs(120), "randomized rounds", move || {
        let mut failures = Vec::new();
        let mut tally = Tally::default();
        for r in 0..rounds {
            let round_seed = seed.wrapping_add(r.wrapping_mul(0x9e37_79b9));
            let cfg = Config::draw(&mut fastrand::Rng::with_seed(round_seed), sink);
            let problems = round(&cfg, round_seed, &mut tally);
            if !problems.is_empty() {
                failures.push(format!(
                    "round {r} ({cfg:?}):\n    {}",
                    problems[..problems.len().min(6)].join("\n    ")
                ));
            }
        }
        println!("{rounds} rounds: {tally:?}");
        failures
    });
    assert!(
        outcomes.is_empty(),
        "CONCURRENT_RANDOM_SEED={seed}: {} of {rounds} rounds failed:\n{}",
        outcomes.len(),
        outcomes.join("\n")
    );
}

#[test]
fn random_concurrent_load_in_pull_mode_loses_nothing() {
    run(false);
}

#[test]
fn random_concurrent_load_in_sink_mode_loses_nothing() {
    run(true);
}
