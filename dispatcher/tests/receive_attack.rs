//! Black-box attack on the receive path (receivers looking for batches over
//! partitions): exactly-once + order under random load and live limits, and
//! the latency of interval-cut batches to sleeping receivers, sinks and the
//! async stream. Public API only.
//!
//! Timing tests print their distributions (`--nocapture`). Every test takes
//! one global lock so timings are not skewed by the other tests of this file.
//! Soak variants are `#[ignore]`d: `cargo test --release -p dispatcher
//! --all-features --test receive_attack -- --ignored --nocapture`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use dispatcher::{
    Batches, Dispatcher, EnqueueError, EnqueueTimeoutError, FlushReason, Limits, Policy, Producer,
    RecvTimeoutError, TryEnqueueError, TryRecvError, Weight,
};

// ---------------------------------------------------------------- helpers

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The draws the tests make, on `fastrand` (as the other attack tests),
/// reproducible from the seed.
struct Rng(fastrand::Rng);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(fastrand::Rng::with_seed(seed))
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0.u64(..n.max(1))
    }
    fn range(&mut self, lo: u64, hi_incl: u64) -> u64 {
        self.0.u64(lo..=hi_incl)
    }
    fn chance(&mut self, num: u64, den: u64) -> bool {
        self.0.u64(..den) < num
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.0.usize(..xs.len())]
    }
}

fn seed_base() -> u64 {
    std::env::var("ATTACK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        })
}

/// An event with an identity: producer, per-producer sequence, enqueue time.
#[derive(Debug)]
struct Ev {
    p: u32,
    seq: u64,
    at: Instant,
    pad: usize,
}

impl Weight for Ev {
    fn weight(&self) -> usize {
        self.pad
    }
}

fn ev(p: u32, seq: u64, pad: usize) -> Ev {
    Ev {
        p,
        seq,
        at: Instant::now(),
        pad,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Prints and returns (p50, p90, p99, max) in ms of a set of durations;
/// fails, by `label`, on an empty set (a run that measured nothing).
fn dist(label: &str, xs: &mut [f64]) -> (f64, f64, f64, f64) {
    assert!(!xs.is_empty(), "{label}: nothing was measured");
    xs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let q = |f: f64| xs[((xs.len() as f64 - 1.0) * f).round() as usize];
    let r = (q(0.5), q(0.9), q(0.99), q(1.0));
    eprintln!(
        "{label}: n={} min={:.2} p50={:.2} p90={:.2} p99={:.2} max={:.2} ms",
        xs.len(),
        xs[0],
        r.0,
        r.1,
        r.2,
        r.3
    );
    r
}

/// The fewest samples [`assert_prompt`] judges the 90th percentile of.
/// Below 20 the p90 sample is the largest or the second largest, so one
/// scheduling stall of a slow or noisy host (not the code) would decide
/// it; the median and the maximum are judged whatever the count.
const P90_MIN_SAMPLES: usize = 20;

/// Distribution judgement for "prompt" (overshoot past the due time, ms):
/// median within 15 ms, 90% within 50 ms (from [`P90_MIN_SAMPLES`]
/// samples on), all within 250 ms.
fn assert_prompt(label: &str, overshoot_ms: &mut [f64]) {
    let (p50, p90, _, max) = dist(label, overshoot_ms);
    assert!(p50 <= 15.0, "{label}: median overshoot {p50:.2} ms");
    if overshoot_ms.len() >= P90_MIN_SAMPLES {
        assert!(p90 <= 50.0, "{label}: p90 overshoot {p90:.2} ms");
    }
    assert!(
        max <= 250.0,
        "{label}: max overshoot {max:.2} ms (receiver slept through?)"
    );
}

/// What a receiver thread reports of each batch: when it got it, its
/// events (producer, sequence, enqueue instant) and why it was cut.
type Report = (Instant, Vec<(u32, u64, Instant)>, FlushReason);
type Seen = mpsc::Sender<Report>;

/// A pull-mode dispatcher over some partitions, its producer handles (one
/// per partition: handle `i` admits into partition `i`), what its receiver
/// threads ([`spawn_recv`]) report of every batch, and those threads.
struct Rig(
    Dispatcher<Ev>,
    Vec<Producer<Ev>>,
    mpsc::Receiver<Report>,
    Vec<thread::JoinHandle<()>>,
);

impl Rig {
    /// Builds `builder` with `parts` partitions and starts `receivers`.
    fn new(builder: dispatcher::Builder<Ev>, parts: usize, receivers: usize) -> Rig {
        let (d, batches) = builder.partitions(parts).build().unwrap();
        let prods = (0..parts).map(|_| d.producer()).collect();
        let (tx, rx) = mpsc::channel();
        let threads = (0..receivers)
            .map(|_| spawn_recv(batches.clone(), tx.clone()))
            .collect();
        Rig(d, prods, rx, threads)
    }

    /// Shuts the dispatcher down and waits for every receiver to end.
    fn finish(self) {
        let Rig(d, prods, _, threads) = self;
        drop(prods);
        d.shutdown(Duration::from_secs(5)).unwrap();
        for h in threads {
            h.join().unwrap();
        }
    }
}

/// A receiver thread: blocking `recv` (never a timeout, so a missed wake-up
/// shows as a long latency, not a poll), forwarding each batch.
fn spawn_recv(batches: Batches<Ev>, out: Seen) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        while let Ok(b) = batches.recv() {
            if out.send(report(&b)).is_err() {
                return;
            }
        }
    })
}

// ------------------------------------------- randomized exactly-once + order

#[derive(Debug, Clone, Copy)]
enum Pol {
    Reject,
    Block,
    DropOldest,
}

#[derive(Debug, Clone)]
struct Cfg {
    seed: u64,
    partitions: usize,
    producers: usize,
    receivers: usize,
    events: u64,
    pol: Pol,
    limits: Limits,
    live_limits: bool,
    max_pad: u64,
}

fn random_cfg(seed: u64, events: u64) -> Cfg {
    let mut r = Rng::new(seed);
    let buffered = r.pick(&[600usize, 4 * 1024, 64 * 1024, 2 << 20]);
    let mut limits = draw_limits(
        &mut r,
        buffered,
        &[
            Duration::from_micros(200),
            Duration::from_millis(1),
            Duration::from_millis(5),
            Duration::from_millis(30),
            Duration::from_secs(3600),
        ],
        64,
    );
    if limits.interval > Duration::from_secs(60)
        && limits.max_batch_bytes.is_none()
        && limits.max_batch_items.is_none()
    {
        // nothing would ever cut the open batch: producers just stall (by design)
        limits.max_batch_items = Some(16);
    }
    Cfg {
        seed,
        partitions: r.pick(&[1, 2, 3, 8, 32]),
        producers: r.range(1, 6) as usize,
        receivers: r.range(1, 4) as usize,
        events,
        pol: r.pick(&[Pol::Reject, Pol::Block, Pol::DropOldest]),
        limits,
        live_limits: r.chance(2, 3),
        max_pad: r.pick(&[1, 16, 200]).min(buffered as u64),
    }
}

fn random_limits(r: &mut Rng, base: &Limits) -> Limits {
    let buffered = if r.chance(1, 4) {
        r.range(
            256.max(base.max_buffered_bytes as u64 / 4),
            base.max_buffered_bytes as u64 * 2,
        ) as usize
    } else {
        base.max_buffered_bytes
    };
    draw_limits(
        r,
        buffered,
        &[
            Duration::from_micros(100),
            Duration::from_millis(1),
            Duration::from_millis(3),
            Duration::from_millis(20),
            Duration::from_secs(3600),
        ],
        100,
    )
}

/// Limits with one of `intervals`, no jitter, `buffered` bytes, and each
/// batch limit drawn or left out (up to `buffered` bytes, `max_items` events).
fn draw_limits(r: &mut Rng, buffered: usize, intervals: &[Duration], max_items: u64) -> Limits {
    Limits {
        interval: r.pick(intervals),
        interval_jitter: Duration::ZERO,
        max_buffered_bytes: buffered,
        max_batch_bytes: r.chance(1, 2).then(|| r.range(1, buffered as u64) as usize),
        max_batch_items: r.chance(1, 2).then(|| r.range(1, max_items) as usize),
    }
}

fn run_exactly_once(cfg: &Cfg) {
    let started = Instant::now();
    let evicted: Arc<Mutex<Vec<(u32, u64)>>> = Arc::default();
    let ev_hook = Arc::clone(&evicted);
    let policy = match cfg.pol {
        Pol::Reject => Policy::Reject,
        Pol::Block => Policy::Block {
            timeout: Duration::from_millis(20),
        },
        Pol::DropOldest => Policy::DropOldest,
    };
    let (d, batches) = Dispatcher::<Ev>::builder()
        .limits(cfg.limits)
        .partitions(cfg.partitions)
        .policy(policy)
        .on_evict(move |e: Ev| ev_hook.lock().unwrap().push((e.p, e.seq)))
        .jitter_seed(cfg.seed)
        .build()
        .unwrap_or_else(|e| panic!("{cfg:?}: {e}"));
    let d = Arc::new(d);

    // receivers
    let (done_tx, done_rx) = mpsc::channel::<usize>();
    let mut recv_handles = Vec::new();
    for k in 0..cfg.receivers {
        let b = batches.clone();
        let done = done_tx.clone();
        let mut r = Rng::new(cfg.seed ^ (0xAAAA + k as u64));
        recv_handles.push(thread::spawn(move || {
            let mut got: Vec<(u32, u64)> = Vec::new();
            let mut take = |batch: dispatcher::Batch<Ev>| {
                assert!(!batch.is_empty(), "empty batch delivered");
                let sum: usize = batch.items().iter().map(|e| e.pad).sum();
                assert_eq!(sum, batch.bytes(), "batch.bytes() != summed weights");
                got.extend(batch.items().iter().map(|e| (e.p, e.seq)));
            };
            loop {
                match r.below(4) {
                    0 => match b.recv() {
                        Ok(x) => take(x),
                        Err(_) => break,
                    },
                    1 => match b.recv_timeout(Duration::from_micros(r.range(0, 20_000))) {
                        Ok(x) => take(x),
                        Err(RecvTimeoutError::Timeout) => {}
                        Err(RecvTimeoutError::Disconnected) => break,
                        Err(e) => panic!("{e:?}"),
                    },
                    2 => match b.try_recv() {
                        Ok(x) => take(x),
                        Err(TryRecvError::Empty) => {
                            thread::sleep(Duration::from_micros(r.range(0, 500)))
                        }
                        Err(TryRecvError::Disconnected) => break,
                        Err(e) => panic!("{e:?}"),
                    },
                    _ => {
                        let n = r.range(1, 4);
                        let mut it = b.iter();
                        let mut ended = false;
                        for _ in 0..n {
                            match it.next() {
                                Some(x) => take(x),
                                None => {
                                    ended = true;
                                    break;
                                }
                            }
                        }
                        if ended {
                            break;
                        }
                    }
                }
                if r.chance(1, 30) {
                    thread::sleep(Duration::from_micros(r.range(0, 3000)));
                }
            }
            done.send(k).unwrap();
            got
        }));
    }
    drop(batches);
    drop(done_tx);

    // limits changer
    let stop = Arc::new(AtomicBool::new(false));
    let changer = cfg.live_limits.then(|| {
        let d = Arc::clone(&d);
        let stop = Arc::clone(&stop);
        let base = cfg.limits;
        let mut r = Rng::new(cfg.seed ^ 0xC4A9);
        thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                thread::sleep(Duration::from_micros(r.range(200, 8000)));
                let l = random_limits(&mut r, &base);
                d.set_limits(l).unwrap_or_else(|e| panic!("{l:?}: {e}"));
                if r.chance(1, 10) {
                    d.flush();
                }
                n += 1;
            }
            // end with the original limits so the drain is not slowed
            d.set_limits(base).unwrap();
            n
        })
    });

    // producers: each clone of one handle takes the next partition
    let root = d.producer();
    let mut prod_handles = Vec::new();
    for p in 0..cfg.producers {
        let h = root.clone();
        let cfg = cfg.clone();
        prod_handles.push(thread::spawn(move || {
            let mut r = Rng::new(cfg.seed ^ (0x1000 + p as u64));
            let mut accepted = Vec::new();
            let mut seq = 0u64;
            while seq < cfg.events {
                let pad = r.range(1, cfg.max_pad) as usize;
                match r.below(10) {
                    0 => {
                        // group, all or nothing
                        let n = r.range(1, 4);
                        let group: Vec<Ev> = (0..n).map(|i| ev(p as u32, seq + i, pad)).collect();
                        match h.try_enqueue_all(group) {
                            Ok(()) => accepted.extend(seq..seq + n),
                            Err(TryEnqueueError::Full(_) | TryEnqueueError::TooLarge(_)) => {}
                            Err(e) => panic!("group: {e:?}"),
                        }
                        seq += n;
                        continue;
                    }
                    1 | 2 => match h.try_enqueue(ev(p as u32, seq, pad)) {
                        Ok(()) => accepted.push(seq),
                        Err(TryEnqueueError::Full(_)) => {}
                        Err(e) => panic!("try: {e:?}"),
                    },
                    3 => match h.enqueue_timeout(
                        ev(p as u32, seq, pad),
                        Duration::from_millis(r.range(0, 5)),
                    ) {
                        Ok(()) => accepted.push(seq),
                        Err(EnqueueTimeoutError::Timeout(_)) => {}
                        Err(e) => panic!("timeout: {e:?}"),
                    },
                    _ => match h.enqueue(ev(p as u32, seq, pad)) {
                        Ok(()) => accepted.push(seq),
                        Err(EnqueueError::Full(_) | EnqueueError::Timeout(_)) => {}
                        Err(e) => panic!("enqueue: {e:?}"),
                    },
                }
                seq += 1;
                if r.chance(1, 200) {
                    thread::sleep(Duration::from_micros(r.range(0, 2000)));
                }
            }
            accepted
        }));
    }
    drop(root);
    let accepted: Vec<Vec<u64>> = prod_handles
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    stop.store(true, Ordering::Relaxed);
    let changes = changer.map(|h| h.join().unwrap()).unwrap_or(0);

    let Ok(d) = Arc::try_unwrap(d) else {
        panic!("dispatcher still shared");
    };
    let report = d.shutdown(Duration::from_secs(20)).unwrap_or_else(|t| {
        panic!(
            "{cfg:?}: shutdown timed out, {} undelivered",
            t.undelivered.len()
        )
    });
    // every receiver must end once drained
    for _ in 0..cfg.receivers {
        done_rx
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("{cfg:?}: a receiver did not end after shutdown"));
    }
    let per_recv: Vec<Vec<(u32, u64)>> = recv_handles
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();

    // order: within each receiver's stream, each producer's seqs increase
    for (k, got) in per_recv.iter().enumerate() {
        let mut last: HashMap<u32, u64> = HashMap::new();
        for &(p, s) in got {
            if let Some(&prev) = last.get(&p) {
                assert!(
                    s > prev,
                    "{cfg:?}: receiver {k}: producer {p} seq {s} after {prev}"
                );
            }
            last.insert(p, s);
        }
    }
    // exactly once: delivered + evicted == accepted, no duplicates
    let mut seen: HashMap<(u32, u64), u8> = HashMap::new();
    let mut delivered = 0u64;
    for got in &per_recv {
        for &id in got {
            *seen.entry(id).or_default() += 1;
            delivered += 1;
        }
    }
    let evicted = evicted.lock().unwrap().clone();
    for &id in &evicted {
        *seen.entry(id).or_default() += 1;
    }
    let mut total_acc = 0u64;
    for (p, acc) in accepted.iter().enumerate() {
        total_acc += acc.len() as u64;
        for &s in acc {
            match seen.remove(&(p as u32, s)) {
                Some(1) => {}
                Some(n) => panic!("{cfg:?}: event ({p},{s}) seen {n} times"),
                None => panic!("{cfg:?}: accepted event ({p},{s}) lost"),
            }
        }
    }
    assert!(
        seen.is_empty(),
        "{cfg:?}: delivered events never accepted: {:?}",
        seen.keys().take(5).collect::<Vec<_>>()
    );
    if !matches!(cfg.pol, Pol::DropOldest) {
        assert!(evicted.is_empty(), "{cfg:?}: evictions under {:?}", cfg.pol);
    }
    let s = &report.stats;
    assert_eq!(s.accepted, total_acc, "{cfg:?}: stats.accepted");
    assert_eq!(s.delivered, delivered, "{cfg:?}: stats.delivered");
    assert_eq!(
        report.delivered_total, delivered,
        "{cfg:?}: delivered_total"
    );
    assert_eq!(s.dropped, evicted.len() as u64, "{cfg:?}: stats.dropped");
    assert_eq!(s.returned, 0);
    assert_eq!(s.buffered_items, 0);
    assert_eq!(s.buffered_bytes, 0);
    if started.elapsed() > Duration::from_secs(2) {
        eprintln!("slow config: {cfg:?}");
    }
    eprintln!(
        "{:>7.1} ms seed={} parts={} prods={} recvs={} pol={:?} live={} changes={} accepted={} delivered={} dropped={}",
        ms(started.elapsed()),
        cfg.seed,
        cfg.partitions,
        cfg.producers,
        cfg.receivers,
        cfg.pol,
        cfg.live_limits,
        changes,
        total_acc,
        delivered,
        s.dropped
    );
}

#[test]
fn exactly_once_and_order_random() {
    let _g = serial();
    let base = seed_base();
    let t0 = Instant::now();
    let mut i = 0;
    // time-boxed: ~5 s in debug
    while i < 4 || (t0.elapsed() < Duration::from_secs(3) && i < 40) {
        let cfg = random_cfg(base.wrapping_add(i), 1500);
        run_exactly_once(&cfg);
        i += 1;
    }
    eprintln!("exactly_once_and_order_random: {i} configurations from seed {base}");
}

#[test]
#[ignore]
fn soak_exactly_once_and_order_random() {
    let _g = serial();
    let base = seed_base();
    let t0 = Instant::now();
    let mut i = 0;
    while t0.elapsed() < Duration::from_secs(120) {
        let cfg = random_cfg(base.wrapping_add(i), 20_000);
        run_exactly_once(&cfg);
        i += 1;
    }
    eprintln!("soak: {i} configurations from seed {base}");
}

// ------------------------------------------------ interval latency, pull mode

/// One receiver (or several) already asleep in `recv`; one event per trial
/// in a random partition; latency from enqueue to `recv` returning, minus
/// the interval.
fn pull_latency(
    partitions: usize,
    receivers: usize,
    interval: Duration,
    trials: usize,
    seed: u64,
) -> Vec<f64> {
    let built = Dispatcher::<Ev>::builder().interval(interval);
    let Rig(d, prods, rx, threads) = Rig::new(built, partitions, receivers);
    let mut r = Rng::new(seed);
    let mut over = Vec::new();
    for t in 0..trials {
        thread::sleep(Duration::from_millis(r.range(3, 25))); // receivers asleep by now
        let e = ev(0, t as u64, 1);
        let at = e.at;
        prods[r.below(partitions as u64) as usize]
            .try_enqueue(e)
            .unwrap();
        match rx.recv_timeout(Duration::from_secs(5) + interval) {
            Ok((when, ids, reason)) => {
                assert_eq!(ids.len(), 1);
                assert_eq!(reason, FlushReason::Interval);
                let lat = when - at;
                assert!(
                    lat + Duration::from_micros(500) >= interval,
                    "batch early: {:?} < {:?}",
                    lat,
                    interval
                );
                over.push(ms(lat.saturating_sub(interval)));
            }
            Err(_) => panic!(
                "parts={partitions} recvs={receivers}: no batch 5 s after its interval (trial {t})"
            ),
        }
    }
    Rig(d, prods, rx, threads).finish();
    over
}

#[test]
fn interval_latency_sleeping_receiver_by_partitions() {
    let _g = serial();
    let seed = seed_base();
    for parts in [1, 2, 8, 32] {
        let mut o = pull_latency(parts, 1, Duration::from_millis(10), 20, seed ^ parts as u64);
        assert_prompt(
            &format!("pull overshoot parts={parts} recv=1 iv=10ms"),
            &mut o,
        );
    }
}

#[test]
fn interval_latency_several_receivers() {
    let _g = serial();
    let seed = seed_base();
    for (parts, recvs) in [(1, 3), (8, 2), (32, 4)] {
        let mut o = pull_latency(
            parts,
            recvs,
            Duration::from_millis(10),
            20,
            seed ^ (parts * recvs) as u64,
        );
        assert_prompt(
            &format!("pull overshoot parts={parts} recv={recvs} iv=10ms"),
            &mut o,
        );
    }
}

#[test]
#[ignore]
fn soak_interval_latency() {
    let _g = serial();
    let seed = seed_base();
    for parts in [1, 2, 8, 32, 256] {
        for recvs in [1, 2, 4] {
            for iv in [1u64, 10, 50] {
                let mut o = pull_latency(
                    parts,
                    recvs,
                    Duration::from_millis(iv),
                    60,
                    seed ^ parts as u64 ^ (recvs << 8) as u64,
                );
                assert_prompt(
                    &format!("pull overshoot parts={parts} recv={recvs} iv={iv}ms"),
                    &mut o,
                );
            }
        }
    }
}

/// Events opened in partition A keep the receiver's next look far away (1 h
/// interval); a size-cut batch in partition B must still be taken at once.
#[test]
fn size_cut_in_other_partition_wakes_receiver() {
    let _g = serial();
    for parts in [2, 8, 32] {
        let built = Dispatcher::<Ev>::builder()
            .interval(Duration::from_secs(3600))
            .max_batch_items(3);
        let Rig(d, prods, rx, threads) = Rig::new(built, parts, 1);
        let mut lats = Vec::new();
        for t in 0..20u64 {
            // an open, far-off batch in partition t % parts
            prods[(t as usize) % parts]
                .try_enqueue(ev(0, t * 10, 1))
                .unwrap();
            thread::sleep(Duration::from_millis(5));
            let q = &prods[(t as usize + 1) % parts];
            let at = Instant::now();
            for i in 1..=3 {
                q.try_enqueue(ev(1, t * 10 + i, 1)).unwrap();
            }
            let (when, ids, reason) = rx
                .recv_timeout(Duration::from_secs(5))
                .expect("size-cut batch not taken");
            assert_eq!(reason, FlushReason::Items);
            assert_eq!(ids.len(), 3);
            lats.push(ms(when - at));
            // take the open 1-event batch away again
            d.flush();
            let (_, ids, _) = rx
                .recv_timeout(Duration::from_secs(5))
                .expect("flushed batch not taken");
            assert_eq!(ids.len(), 1);
        }
        assert_prompt(
            &format!("size-cut in other partition, parts={parts} (latency)"),
            &mut lats,
        );
        Rig(d, prods, rx, threads).finish();
    }
}

/// `flush()` and a lowered batch limit cut the open batch while the receiver
/// sleeps behind a 1 h interval.
#[test]
fn flush_and_lowered_batch_limit_wake_receiver() {
    let _g = serial();
    for parts in [1, 8] {
        let (d, batches) = Dispatcher::<Ev>::builder()
            .interval(Duration::from_secs(3600))
            .max_batch_items(100)
            .partitions(parts)
            .build()
            .unwrap();
        let p = d.producer();
        let (tx, rx) = mpsc::channel();
        let h = spawn_recv(batches, tx);
        let mut fl = Vec::new();
        let mut lo = Vec::new();
        for t in 0..15u64 {
            for i in 0..5 {
                p.try_enqueue(ev(0, t * 10 + i, 1)).unwrap();
            }
            thread::sleep(Duration::from_millis(5));
            let at = Instant::now();
            d.flush();
            let (when, ids, reason) = rx
                .recv_timeout(Duration::from_secs(5))
                .expect("flushed batch not taken");
            assert_eq!((ids.len(), reason), (5, FlushReason::Manual));
            fl.push(ms(when - at));

            for i in 0..5 {
                p.try_enqueue(ev(0, t * 10 + 5 + i, 1)).unwrap();
            }
            thread::sleep(Duration::from_millis(5));
            let mut l = d.limits();
            l.max_batch_items = Some(3);
            let at = Instant::now();
            d.set_limits(l).unwrap();
            let mut n = 0;
            let mut last = at;
            while n < 5 {
                let (when, ids, _) = rx.recv_timeout(Duration::from_secs(5)).unwrap_or_else(|_| {
                    panic!("parts={parts}: lowering max_batch_items to 3 under 5 open events: only {n} delivered")
                });
                n += ids.len();
                last = when;
                if n == 3 || n == 5 {
                    // the 2 left over may be a new open batch under 1 h: flush them
                    if n == 3 {
                        d.flush();
                    }
                }
            }
            lo.push(ms(last - at));
            l.max_batch_items = Some(100);
            d.set_limits(l).unwrap();
        }
        assert_prompt(&format!("flush wake parts={parts}"), &mut fl);
        assert_prompt(
            &format!("lowered max_batch_items wake parts={parts}"),
            &mut lo,
        );
        d.shutdown(Duration::from_secs(5)).unwrap();
        h.join().unwrap();
    }
}

/// Interval 1 h, an event, the receiver asleep; then `set_limits` to 10 ms.
/// Rustdoc: "A batch is emitted at most this long after its first event
/// arrived" and "A new interval applies to the open batch too": the event
/// is already 30 ms old, so the batch is overdue at the change.
#[test]
fn set_limits_shortens_interval_while_receiver_sleeps() {
    let _g = serial();
    for parts in [1, 2, 8, 32] {
        let built = Dispatcher::<Ev>::builder().interval(Duration::from_secs(3600));
        let Rig(d, prods, rx, threads) = Rig::new(built, parts, 1);
        let mut r = Rng::new(seed_base() ^ parts as u64);
        // Changed 30 ms after the event: from the change.
        let mut overdue = cut_to_ten_ms(&d, &prods, &rx, &mut r, 0, Duration::from_millis(30));
        let mut future = Vec::new(); // change 2 ms after the event to 40 ms: from event + 40 ms
        for t in 0..6u64 {
            let mut l = d.limits();
            l.interval = Duration::from_secs(3600);
            d.set_limits(l).unwrap();
            let q = &prods[r.below(parts as u64) as usize];
            let e = ev(0, 1000 + t, 1);
            let ev_at = e.at;
            q.try_enqueue(e).unwrap();
            thread::sleep(Duration::from_millis(2));
            l.interval = Duration::from_millis(40);
            d.set_limits(l).unwrap();
            let (when, _, _) = rx.recv_timeout(Duration::from_secs(5)).unwrap_or_else(|_| {
                panic!("parts={parts}: open batch not emitted 5 s after interval 1h -> 40ms")
            });
            let lat = when - ev_at;
            assert!(
                lat + Duration::from_millis(1) >= Duration::from_millis(40),
                "emitted early: {lat:?}"
            );
            future.push(ms(lat - Duration::from_millis(40).min(lat)));
        }
        assert_prompt(
            &format!("1h->10ms (30 ms after event) parts={parts}: from the change"),
            &mut overdue,
        );
        assert_prompt(
            &format!("1h->40ms (2 ms after event) parts={parts}: overshoot past event+40ms"),
            &mut future,
        );
        Rig(d, prods, rx, threads).finish();
    }
}

/// Interval 20 ms, event, then lengthened to 150 ms at +5 ms: the batch
/// should come at about event + 150 ms (new interval applies to the open
/// batch); it must not be lost in between either.
///
/// A trial counts only if `set_limits` returned before the old deadline
/// (event + 20 ms): on a slow or noisy host the 5 ms sleep or the call can
/// overrun it, and then a batch cut on the old interval is right, not
/// early. Such trials are redone: up to 40 attempts for the 5 that count.
#[test]
fn set_limits_lengthens_interval_while_receiver_sleeps() {
    const LENGTHEN_TRIALS: usize = 5;
    const LENGTHEN_ATTEMPTS: u64 = 40;
    let _g = serial();
    let old = Duration::from_millis(20);
    for parts in [1, 32] {
        let built = Dispatcher::<Ev>::builder().interval(old);
        let Rig(d, prods, rx, threads) = Rig::new(built, parts, 1);
        let mut r = Rng::new(seed_base() ^ 77 ^ parts as u64);
        let mut over = Vec::new();
        let mut early = 0;
        let mut late_changes = 0;
        for t in 0..LENGTHEN_ATTEMPTS {
            if over.len() == LENGTHEN_TRIALS {
                break;
            }
            let mut l = d.limits();
            l.interval = old;
            d.set_limits(l).unwrap();
            let e = ev(0, t, 1);
            let at = e.at;
            prods[r.below(parts as u64) as usize]
                .try_enqueue(e)
                .unwrap();
            thread::sleep(Duration::from_millis(5));
            l.interval = Duration::from_millis(150);
            d.set_limits(l).unwrap();
            let changed = Instant::now();
            let (when, _, _) = rx
                .recv_timeout(Duration::from_secs(5))
                .expect("lengthened batch never came");
            if changed >= at + old {
                late_changes += 1;
                eprintln!(
                    "lengthen parts={parts}: set_limits returned {:.2} ms after the event, \
                     past the old deadline: trial redone",
                    ms(changed - at)
                );
                continue;
            }
            let lat = when - at;
            if lat < Duration::from_millis(140) {
                early += 1;
                eprintln!(
                    "lengthen parts={parts}: emitted after {:.2} ms (< 150 ms)",
                    ms(lat)
                );
            }
            over.push(ms(lat.saturating_sub(Duration::from_millis(150))));
        }
        assert_eq!(
            over.len(),
            LENGTHEN_TRIALS,
            "parts={parts}: in {LENGTHEN_ATTEMPTS} attempts only {} changed the interval \
             before the old deadline ({late_changes} too late)",
            over.len()
        );
        assert_prompt(
            &format!("20ms->150ms parts={parts}: overshoot past event+150ms"),
            &mut over,
        );
        assert_eq!(
            early, 0,
            "parts={parts}: {early}/{LENGTHEN_TRIALS} batches emitted on the old (shorter) interval"
        );
        Rig(d, prods, rx, threads).finish();
    }
}

/// Sparse random load, random partitions and receivers, live interval
/// changes: every event must be delivered by the latest time the contract
/// allows, computed from the recorded set_limits history.
fn sparse_latency(seed: u64, duration: Duration) -> Vec<f64> {
    let mut r = Rng::new(seed);
    let parts = r.pick(&[1usize, 2, 8, 32]);
    let recvs = r.range(1, 3) as usize;
    let producers = 4usize;
    let jitter = if r.chance(1, 3) {
        Duration::from_millis(5)
    } else {
        Duration::ZERO
    };
    let iv0 = Duration::from_millis(20);
    let (d, batches) = Dispatcher::<Ev>::builder()
        .interval(iv0)
        .interval_jitter(jitter)
        .partitions(parts)
        .jitter_seed(seed)
        .build()
        .unwrap();
    let d = Arc::new(d);
    // (call start, call end, interval)
    let history: Arc<Mutex<Vec<(Instant, Instant, Duration)>>> = Arc::new(Mutex::new(vec![{
        let n = Instant::now();
        (n, n, iv0)
    }]));
    let (tx, rx) = mpsc::channel();
    let hs: Vec<_> = (0..recvs)
        .map(|_| spawn_recv(batches.clone(), tx.clone()))
        .collect();
    drop((batches, tx));
    let stop = Arc::new(AtomicBool::new(false));
    let changer = {
        let d = Arc::clone(&d);
        let stop = Arc::clone(&stop);
        let history = Arc::clone(&history);
        let mut r = Rng::new(seed ^ 5);
        thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                thread::sleep(Duration::from_millis(r.range(10, 120)));
                let iv = Duration::from_millis(r.pick(&[5u64, 10, 20, 60, 250, 3_600_000]));
                let mut l = d.limits();
                l.interval = iv;
                l.interval_jitter = jitter.min(iv);
                let s = Instant::now();
                d.set_limits(l).unwrap();
                let e = Instant::now();
                history.lock().unwrap().push((s, e, iv));
            }
            let mut l = d.limits();
            l.interval = iv0;
            let s = Instant::now();
            d.set_limits(l).unwrap();
            history.lock().unwrap().push((s, Instant::now(), iv0));
        })
    };
    let root = d.producer();
    let seqs = Arc::new(AtomicU64::new(0));
    let ph: Vec<_> = (0..producers)
        .map(|p| {
            let h = root.clone();
            let mut r = Rng::new(seed ^ (p as u64 + 100));
            let seqs = Arc::clone(&seqs);
            thread::spawn(move || {
                let t0 = Instant::now();
                while t0.elapsed() < duration {
                    thread::sleep(Duration::from_micros(r.range(0, 40_000)));
                    h.try_enqueue(ev(p as u32, seqs.fetch_add(1, Ordering::Relaxed), 1))
                        .unwrap();
                }
            })
        })
        .collect();
    drop(root);
    for h in ph {
        h.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    changer.join().unwrap();
    let d = Arc::try_unwrap(d).ok().unwrap();
    let shut_at = Instant::now();
    d.shutdown(Duration::from_secs(10)).unwrap();
    for h in hs {
        h.join().unwrap();
    }
    let history = history.lock().unwrap().clone();
    let total = seqs.load(Ordering::Relaxed);
    let mut got = 0u64;
    let mut over = Vec::new();
    let mut worst: Option<(f64, Instant, Instant, Instant)> = None;
    for (when, ids, _) in rx.iter() {
        for (_, _, at) in ids {
            got += 1;
            // segment in force at `at`: the last change whose call ended before it
            let mut k = history.iter().rposition(|h| h.1 <= at).unwrap_or(0);
            let bound = loop {
                let (_, s_end, iv) = history[k];
                let start = if k == 0 { at } else { s_end.max(at) };
                let dl = start.max(at + iv + jitter.min(iv));
                match history.get(k + 1) {
                    // a deadline within 1 ms of the next change may be re-deadlined
                    // by it (the open batch takes the new interval): not judged
                    Some(&(next_start, _, _)) if dl + Duration::from_millis(1) >= next_start => {
                        k += 1
                    }
                    _ => break dl,
                }
            };
            let bound = bound.min(shut_at.max(at));
            if when > bound {
                let o = ms(when - bound);
                if worst.is_none_or(|w| o > w.0) {
                    worst = Some((o, at, bound, when));
                }
                over.push(o);
            } else {
                over.push(0.0);
            }
        }
    }
    assert_eq!(got, total, "events lost or duplicated in sparse run");
    if let Some((o, at, bound, when)) = worst {
        let t0 = history[0].0;
        eprintln!(
            "  worst overshoot {o:.2} ms: event at +{:.1} ms, bound +{:.1}, delivered +{:.1}; parts={parts} recvs={recvs} jitter={jitter:?}",
            ms(at - t0),
            ms(bound - t0),
            ms(when - t0)
        );
        if o > 20.0 {
            for (s, e, iv) in &history {
                eprintln!(
                    "    change {:.1}..{:.1} ms -> {iv:?}",
                    ms(*s - t0),
                    ms(*e - t0)
                );
            }
        }
    }
    eprintln!(
        "sparse seed={seed} parts={parts} recvs={recvs} events={total} changes={}",
        history.len() - 1
    );
    over
}

#[test]
fn sparse_random_latency_with_live_interval_changes() {
    let _g = serial();
    let base = seed_base();
    let mut all = Vec::new();
    for i in 0..2 {
        all.extend(sparse_latency(
            base.wrapping_add(i),
            Duration::from_millis(1000),
        ));
    }
    assert_prompt(
        "sparse: overshoot past the contract's latest time, all events",
        &mut all,
    );
}

#[test]
#[ignore]
fn soak_sparse_random_latency() {
    let _g = serial();
    let base = seed_base();
    let mut all = Vec::new();
    for i in 0..20 {
        all.extend(sparse_latency(base.wrapping_add(i), Duration::from_secs(4)));
    }
    assert_prompt("sparse soak: overshoot, all events", &mut all);
}

// ------------------------------------------------------------ sink mode

/// What a consumer reports of a batch: when it got it, its events and why
/// it was cut (as [`spawn_recv`] does).
fn report(b: &dispatcher::Batch<Ev>) -> Report {
    let ids = b.items().iter().map(|e| (e.p, e.seq, e.at)).collect();
    (Instant::now(), ids, b.reason())
}

/// Interval-cut batches reaching a consumer that reports on `rx`, under a
/// 10 ms interval: 15 single events after random pauses, each due 10 ms
/// after it was enqueued; then 6 batches opened under a 1 h interval that
/// is cut to 10 ms 20 ms later, each due at the change. Returns how late
/// each came past its due time, in ms, for the two kinds.
fn ten_ms_trials(
    d: &Dispatcher<Ev>,
    prods: &[Producer<Ev>],
    rx: &mpsc::Receiver<Report>,
    seed: u64,
) -> (Vec<f64>, Vec<f64>) {
    let iv = Duration::from_millis(10);
    let mut r = Rng::new(seed);
    let next = |what: &str| {
        let (when, ids, _) = rx
            .recv_timeout(Duration::from_secs(5))
            .unwrap_or_else(|_| panic!("{what}: no batch within 5 s"));
        assert_eq!(ids.len(), 1, "{what}: one event a batch");
        (when, ids[0].2)
    };
    let mut over = Vec::new();
    for t in 0..15u64 {
        thread::sleep(Duration::from_millis(r.range(3, 25)));
        prods[r.below(prods.len() as u64) as usize]
            .try_enqueue(ev(0, t, 1))
            .unwrap();
        let (when, at) = next("10 ms interval");
        over.push(ms((when - at).saturating_sub(iv)));
    }
    let short = cut_to_ten_ms(d, prods, rx, &mut r, 100, Duration::from_millis(20));
    (over, short)
}

/// 6 batches of one event each (sequence numbers from `first`), opened
/// under a 1 h interval that `set_limits` cuts to 10 ms `after` the event:
/// overdue at the change, each must come at once, cut by the interval.
/// Returns how long each took after the change, in ms.
fn cut_to_ten_ms(
    d: &Dispatcher<Ev>,
    prods: &[Producer<Ev>],
    rx: &mpsc::Receiver<Report>,
    r: &mut Rng,
    first: u64,
    after: Duration,
) -> Vec<f64> {
    let mut from_change = Vec::new();
    for t in first..first + 6 {
        let mut l = d.limits();
        l.interval = Duration::from_secs(3600);
        d.set_limits(l).unwrap();
        prods[r.below(prods.len() as u64) as usize]
            .try_enqueue(ev(0, t, 1))
            .unwrap();
        thread::sleep(after);
        l.interval = Duration::from_millis(10);
        let changed = Instant::now();
        d.set_limits(l).unwrap();
        let (when, ids, reason) = rx
            .recv_timeout(Duration::from_secs(5))
            .unwrap_or_else(|_| panic!("open batch not emitted 5 s after interval 1h -> 10ms"));
        assert_eq!(ids.len(), 1, "one event a batch");
        assert_eq!(reason, FlushReason::Interval);
        from_change.push(ms(when - changed));
    }
    from_change
}

#[test]
fn interval_latency_sink() {
    let _g = serial();
    for (parts, workers) in [(1, 1), (8, 1), (32, 2)] {
        let (tx, rx) = mpsc::channel();
        let tx = Mutex::new(tx);
        let d = Dispatcher::<Ev>::builder()
            .interval(Duration::from_millis(10))
            .partitions(parts)
            .flush_workers(workers)
            .build_with_sink(dispatcher::sink::from_fn(
                move |b: &dispatcher::Batch<Ev>, _: &dispatcher::sink::FlushContext| {
                    tx.lock().unwrap().send(report(b)).ok();
                    Ok::<(), std::io::Error>(())
                },
            ))
            .unwrap();
        let prods: Vec<_> = (0..parts).map(|_| d.producer()).collect();
        let (mut over, mut short) = ten_ms_trials(&d, &prods, &rx, seed_base() ^ 99);
        assert_prompt(
            &format!("sink overshoot parts={parts} workers={workers} iv=10ms"),
            &mut over,
        );
        assert_prompt(
            &format!("sink 1h->10ms from change parts={parts}"),
            &mut short,
        );
        let rep = d.shutdown(Duration::from_secs(5)).unwrap();
        assert_eq!(rep.delivered_total, 21);
    }
}

// ------------------------------------------------------------ async stream

#[cfg(feature = "async")]
#[test]
fn interval_latency_async_stream() {
    use tokio_stream::StreamExt;
    let _g = serial();
    for parts in [1, 8, 32] {
        let (d, batches) = Dispatcher::<Ev>::builder()
            .interval(Duration::from_millis(10))
            .partitions(parts)
            .build()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let h = thread::spawn(move || {
            rt.block_on(async move {
                let mut s = batches.into_stream();
                while let Some(b) = s.next().await {
                    tx.send(report(&b)).ok();
                }
            })
        });
        let prods: Vec<_> = (0..parts).map(|_| d.producer()).collect();
        let (mut over, mut short) = ten_ms_trials(&d, &prods, &rx, seed_base() ^ 1234);
        assert_prompt(
            &format!("stream overshoot parts={parts} iv=10ms"),
            &mut over,
        );
        assert_prompt(
            &format!("stream 1h->10ms from change parts={parts}"),
            &mut short,
        );
        d.shutdown(Duration::from_secs(5)).unwrap();
        h.join().unwrap();
    }
}

// ------------------------------------------------------------ never hangs

#[test]
fn recv_timeout_returns_on_time() {
    let _g = serial();
    for parts in [1, 8, 32] {
        let (d, batches) = Dispatcher::<Ev>::builder()
            .interval(Duration::from_secs(3600))
            .partitions(parts)
            .build()
            .unwrap();
        let prods: Vec<_> = (0..parts).map(|_| d.producer()).collect();
        let mut over = Vec::new();
        for t in 0..20u64 {
            if t % 2 == 1 {
                // an open, far-off batch somewhere: must not shorten nor prolong the wait
                prods[t as usize % parts].try_enqueue(ev(0, t, 1)).unwrap();
            }
            let to = Duration::from_millis(5 + t % 4 * 10);
            let s = Instant::now();
            assert_eq!(
                batches.recv_timeout(to).unwrap_err(),
                RecvTimeoutError::Timeout
            );
            let el = s.elapsed();
            assert!(el >= to, "recv_timeout returned early: {el:?} < {to:?}");
            over.push(ms(el - to));
        }
        assert_prompt(&format!("recv_timeout overshoot parts={parts}"), &mut over);
        drop(d);
        // dropped dispatcher: the open batches are cut, then the end
        let mut n = 0;
        loop {
            match batches.recv_timeout(Duration::from_secs(2)) {
                Ok(b) => n += b.len(),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(e) => panic!("after drop: {e:?} with {n} received"),
            }
        }
        assert_eq!(n, 10);
    }
}

/// How soon after `shutdown` returns a receiver blocked in `recv` must
/// return. Nothing but the end wakes it (the interval is an hour), so this
/// only tells a hang from a slow or noisy host.
const RETURN_AFTER_SHUTDOWN: Duration = Duration::from_secs(2);

#[test]
fn blocked_receivers_return_after_shutdown() {
    let _g = serial();
    for (parts, recvs) in [(1, 1), (8, 3), (32, 4)] {
        let (d, batches) = Dispatcher::<Ev>::builder()
            .interval(Duration::from_secs(3600))
            .partitions(parts)
            .build()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        let hs: Vec<_> = (0..recvs)
            .map(|_| {
                let b = batches.clone();
                let tx = tx.clone();
                thread::spawn(move || {
                    let mut n = 0;
                    while let Ok(x) = b.recv() {
                        n += x.len();
                    }
                    tx.send(Instant::now()).unwrap();
                    n
                })
            })
            .collect();
        drop(batches);
        let p = d.producer();
        for i in 0..(parts as u64 * 3) {
            p.clone().try_enqueue(ev(0, i, 1)).unwrap();
        }
        thread::sleep(Duration::from_millis(30));
        let s = Instant::now();
        let rep = d.shutdown(Duration::from_secs(5)).unwrap();
        for _ in 0..recvs {
            let w = rx
                .recv_timeout(Duration::from_secs(5))
                .expect("a receiver blocked in recv never returned");
            assert!(
                w - s < RETURN_AFTER_SHUTDOWN,
                "receiver returned {:?} after shutdown",
                w - s
            );
        }
        let n: usize = hs.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(n as u64, rep.delivered_total);
        assert_eq!(n, parts * 3);
    }
}

/// README: "With several partitions a receiver takes the batch that has
/// waited longest, whatever its partition."
#[test]
fn oldest_ready_batch_first_across_partitions() {
    let _g = serial();
    let (d, batches) = Dispatcher::<Ev>::builder()
        .interval(Duration::from_secs(3600))
        .max_batch_items(2)
        .partitions(8)
        .build()
        .unwrap();
    let prods: Vec<_> = (0..8).map(|_| d.producer()).collect();
    let order = [5usize, 2, 7, 0, 3];
    for (k, &i) in order.iter().enumerate() {
        prods[i].try_enqueue(ev(i as u32, k as u64 * 2, 1)).unwrap();
        thread::sleep(Duration::from_millis(2));
        prods[i]
            .try_enqueue(ev(i as u32, k as u64 * 2 + 1, 1))
            .unwrap();
    }
    let got: Vec<u32> = (0..order.len())
        .map(|_| batches.try_recv().unwrap().items()[0].p)
        .collect();
    assert_eq!(got, order.iter().map(|&i| i as u32).collect::<Vec<_>>());
}

// ------------------------------------------------------------ races / hand-over

/// Ping-pong: the next event is enqueued the moment the previous batch is
/// seen (the receiver is re-entering its wait), into a random partition,
/// after a random spin of 0-50 us. Interval 1 ms.
fn pingpong(parts: usize, recvs: usize, trials: usize, seed: u64) -> Vec<f64> {
    let iv = Duration::from_millis(1);
    let built = Dispatcher::<Ev>::builder().interval(iv);
    let Rig(d, prods, rx, threads) = Rig::new(built, parts, recvs);
    let mut r = Rng::new(seed);
    let mut over = Vec::new();
    for t in 0..trials {
        let spin = Duration::from_nanos(r.range(0, 50_000));
        let s = Instant::now();
        while s.elapsed() < spin {
            std::hint::spin_loop();
        }
        let e = ev(0, t as u64, 1);
        let at = e.at;
        prods[r.below(parts as u64) as usize]
            .try_enqueue(e)
            .unwrap();
        let (when, _, _) = rx.recv_timeout(Duration::from_secs(5)).unwrap_or_else(|_| {
            panic!("pingpong parts={parts} recvs={recvs}: trial {t} never delivered")
        });
        over.push(ms((when - at).saturating_sub(iv)));
    }
    Rig(d, prods, rx, threads).finish();
    over
}

#[test]
fn pingpong_enqueue_as_receiver_reenters() {
    let _g = serial();
    let seed = seed_base();
    for (parts, recvs) in [(1, 1), (2, 1), (8, 2), (32, 1), (32, 3)] {
        let mut o = pingpong(parts, recvs, 200, seed ^ parts as u64);
        assert_prompt(
            &format!("pingpong parts={parts} recvs={recvs} iv=1ms"),
            &mut o,
        );
    }
}

/// Receiver A waits with a short `recv_timeout` that expires before the
/// batch's interval and then goes away for 400 ms (or is dropped); B has
/// been in `recv` all along. B must cut the batch on time: a wake-up or the
/// interval watch must not be left with A.
fn handover(parts: usize, drop_a: bool, trials: usize, linger: Duration, seed: u64) -> Vec<f64> {
    let iv = Duration::from_millis(15);
    let (d, batches) = Dispatcher::<Ev>::builder()
        .interval(iv)
        .partitions(parts)
        .build()
        .unwrap();
    let prods: Vec<_> = (0..parts).map(|_| d.producer()).collect();
    let (tx, rx) = mpsc::channel();
    let b = spawn_recv(batches.clone(), tx.clone());
    let mut r = Rng::new(seed);
    let mut over = Vec::new();
    let mut a_took = 0;
    for t in 0..trials {
        let a_batches = batches.clone();
        // At most half the interval: A's timeout ends well before the batch
        // is due, so only a timer some 8 ms late hands A the batch.
        let a_to = Duration::from_micros(r.range(0, 7_000));
        let (a_tx, a_rx) = mpsc::channel();
        let a = thread::spawn(move || {
            a_tx.send(()).unwrap();
            let res = a_batches.recv_timeout(a_to);
            let took = res.is_ok();
            if !drop_a {
                thread::sleep(linger);
            }
            drop(a_batches);
            took
        });
        a_rx.recv().unwrap();
        thread::sleep(Duration::from_micros(r.range(0, 2000))); // A is (about to be) waiting
        let e = ev(0, t as u64, 1);
        let at = e.at;
        prods[r.below(parts as u64) as usize]
            .try_enqueue(e)
            .unwrap();
        match rx.recv_timeout(Duration::from_secs(3)) {
            Ok((when, _, _)) => over.push(ms((when - at).saturating_sub(iv))),
            Err(_) => {
                // A took it (and drops it): not our measurement
                if a.join().unwrap() {
                    a_took += 1;
                    continue;
                }
                panic!(
                    "handover parts={parts} drop_a={drop_a}: batch lost / B never woke (trial {t})"
                );
            }
        }
        assert!(
            !a.join().unwrap(),
            "A and B both got a batch for one event?"
        );
    }
    drop(batches);
    d.shutdown(Duration::from_secs(5)).unwrap();
    b.join().unwrap();
    if a_took > 0 {
        eprintln!("  (A took {a_took} batches; its timeout ran past the interval)");
    }
    over
}

#[test]
fn timed_out_receiver_does_not_keep_the_interval_watch() {
    let _g = serial();
    let seed = seed_base();
    for parts in [1, 32] {
        handover_case(parts, 4, Duration::from_millis(300), seed);
    }
}

fn handover_case(parts: usize, trials: usize, linger: Duration, seed: u64) {
    for drop_a in [false, true] {
        let mut o = handover(
            parts,
            drop_a,
            trials,
            linger,
            seed ^ parts as u64 ^ drop_a as u64,
        );
        let label =
            format!("handover (A times out, dropped={drop_a}, linger {linger:?}) parts={parts}");
        let max = o.iter().cloned().fold(0.0, f64::max);
        assert!(
            max < ms(linger) * 0.6,
            "{label}: overshoot {max:.2} ms ~ A's linger: B slept through"
        );
        assert_prompt(&label, &mut o);
    }
}

#[test]
#[ignore]
fn soak_handover() {
    let _g = serial();
    let seed = seed_base();
    for parts in [1, 2, 8, 32] {
        handover_case(parts, 40, Duration::from_millis(300), seed);
    }
}

/// Random tiny delays between the event and the change 1 h -> 1 ms.
#[test]
fn set_limits_shorten_race_random_delay() {
    let _g = serial();
    let mut r = Rng::new(seed_base() ^ 4242);
    for parts in [1, 8, 32] {
        let built = Dispatcher::<Ev>::builder().interval(Duration::from_secs(3600));
        let Rig(d, prods, rx, threads) = Rig::new(built, parts, 1);
        let mut over = Vec::new();
        for t in 0..80u64 {
            let mut l = d.limits();
            l.interval = Duration::from_secs(3600);
            d.set_limits(l).unwrap();
            let e = ev(0, t, 1);
            let at = e.at;
            prods[r.below(parts as u64) as usize]
                .try_enqueue(e)
                .unwrap();
            let spin = Duration::from_nanos(r.range(0, 300_000));
            while at.elapsed() < spin {
                std::hint::spin_loop();
            }
            l.interval = Duration::from_millis(1);
            d.set_limits(l).unwrap();
            let ch = Instant::now();
            let (when, _, _) = rx
                .recv_timeout(Duration::from_secs(5))
                .expect("1h -> 1ms: never delivered");
            let due = ch.max(at + Duration::from_millis(1));
            over.push(ms(when.saturating_duration_since(due)));
        }
        assert_prompt(
            &format!("1h->1ms random delay parts={parts}: overshoot past max(change, event+1ms)"),
            &mut over,
        );
        Rig(d, prods, rx, threads).finish();
    }
}

/// An async stream whose `next()` is cancelled (timeout) before the batch
/// is due; a blocking receiver must still take it on time.
///
/// The stream's timeout is at most half the 50 ms interval, so a tokio
/// timer (or the stream's thread) running up to 25 ms late on a busy host
/// still cancels the wait before the batch is due. A trial whose stream
/// took the batch anyway is not measured.
#[cfg(feature = "async")]
#[test]
fn cancelled_stream_wait_does_not_keep_the_interval_watch() {
    use tokio_stream::StreamExt;
    let _g = serial();
    let iv = Duration::from_millis(50);
    for parts in [1, 32] {
        let (d, batches) = Dispatcher::<Ev>::builder()
            .interval(iv)
            .partitions(parts)
            .build()
            .unwrap();
        let prods: Vec<_> = (0..parts).map(|_| d.producer()).collect();
        let (tx, rx) = mpsc::channel();
        let b = spawn_recv(batches.clone(), tx);
        let mut over = Vec::new();
        let mut r = Rng::new(seed_base() ^ 31337);
        for t in 0..6u64 {
            let stream_batches = batches.clone();
            let cut = Duration::from_micros(r.range(1000, iv.as_micros() as u64 / 2));
            let (go_tx, go_rx) = mpsc::channel();
            let sh = {
                thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap();
                    rt.block_on(async move {
                        let mut s = stream_batches.into_stream();
                        go_tx.send(()).unwrap();
                        let got = tokio::time::timeout(cut, s.next()).await;
                        let took = matches!(got, Ok(Some(_)));
                        tokio::time::sleep(Duration::from_millis(120)).await; // stream alive, idle
                        took
                    })
                })
            };
            go_rx.recv().unwrap();
            let e = ev(0, t, 1);
            let at = e.at;
            prods[r.below(parts as u64) as usize]
                .try_enqueue(e)
                .unwrap();
            match rx.recv_timeout(Duration::from_secs(3)) {
                Ok((when, _, _)) => over.push(ms((when - at).saturating_sub(iv))),
                Err(_) => {
                    assert!(
                        sh.join().unwrap(),
                        "parts={parts}: batch never delivered (trial {t})"
                    );
                    continue;
                }
            }
            assert!(!sh.join().unwrap());
        }
        assert_prompt(
            &format!("cancelled stream wait, blocking B parts={parts}"),
            &mut over,
        );
        drop(batches);
        d.shutdown(Duration::from_secs(5)).unwrap();
        b.join().unwrap();
    }
}

/// A `should_flush` cut in one partition while the receiver sleeps behind
/// a 1 h interval elsewhere.
#[test]
fn hook_cut_wakes_receiver() {
    let _g = serial();
    for parts in [1, 8, 32] {
        let built = Dispatcher::<Ev>::builder()
            .interval(Duration::from_secs(3600))
            .should_flush(|open| open.items().last().is_some_and(|e| e.pad == 7));
        let Rig(d, prods, rx, threads) = Rig::new(built, parts, 1);
        let mut lat = Vec::new();
        for t in 0..15u64 {
            prods[t as usize % parts]
                .try_enqueue(ev(0, t * 2, 1))
                .unwrap(); // far-off open batch
            thread::sleep(Duration::from_millis(3));
            let q = &prods[(t as usize + parts / 2) % parts];
            let at = Instant::now();
            q.try_enqueue(ev(1, t * 2 + 1, 7)).unwrap();
            let (when, ids, reason) = rx
                .recv_timeout(Duration::from_secs(5))
                .expect("hook-cut batch not taken");
            assert_eq!(reason, FlushReason::Hook);
            assert!(ids.iter().any(|i| i.0 == 1));
            lat.push(ms(when - at));
            if ids.len() == 1 {
                d.flush();
                rx.recv_timeout(Duration::from_secs(5))
                    .expect("flushed batch not taken");
            }
        }
        assert_prompt(&format!("hook cut wake parts={parts}"), &mut lat);
        Rig(d, prods, rx, threads).finish();
    }
}

#[cfg(feature = "spill")]
mod spill_replay {
    use super::*;
    use dispatcher::spill::{Codec, DecodeError, Spill};
    use std::sync::OnceLock;

    static BASE: OnceLock<Instant> = OnceLock::new();

    struct EvCodec;
    impl Codec<Ev> for EvCodec {
        fn encode(&self, e: &Ev, out: &mut Vec<u8>) {
            let base = *BASE.get_or_init(Instant::now);
            out.extend_from_slice(&e.p.to_le_bytes());
            out.extend_from_slice(&e.seq.to_le_bytes());
            out.extend_from_slice(&((e.at - base).as_nanos() as u64).to_le_bytes());
            out.extend_from_slice(&(e.pad as u64).to_le_bytes());
        }
        fn decode(&self, b: &[u8]) -> Result<Ev, DecodeError> {
            let base = *BASE.get().unwrap();
            let u = |r: std::ops::Range<usize>| u64::from_le_bytes(b[r].try_into().unwrap());
            Ok(Ev {
                p: u32::from_le_bytes(b[0..4].try_into().unwrap()),
                seq: u(4..12),
                at: base + Duration::from_nanos(u(12..20)),
                pad: u(20..28) as usize,
            })
        }
    }

    /// Events read back from the disk tier into a partition while the
    /// receiver sleeps must be cut on the interval like any other: each
    /// batch comes within interval + slack of the one before. The slack is
    /// a second: a receiver that slept through a replayed batch waits for
    /// news that never comes (the 5 s receive limit), while disk reads and
    /// writes on a slow host can take far more than the interval.
    #[test]
    fn replayed_events_are_cut_on_the_interval() {
        let _g = serial();
        BASE.get_or_init(Instant::now);
        for parts in [1, 8] {
            let dir = tempfile::tempdir().unwrap();
            let iv = Duration::from_millis(10);
            let (d, batches) = Dispatcher::<Ev>::builder()
                .interval(iv)
                .partitions(parts)
                .max_buffered_bytes(100)
                .spill(Spill::new(dir.path()).open().unwrap(), EvCodec)
                .build()
                .unwrap();
            let (tx, rx) = mpsc::channel();
            let h = spawn_recv(batches, tx);
            thread::sleep(Duration::from_millis(5));
            let p = d.producer();
            let n = 20u64;
            for i in 0..n {
                p.try_enqueue(ev(0, i, 40)).unwrap();
            }
            let spilled = d.stats().spill.spilled;
            let mut got = Vec::new();
            let mut gaps = Vec::new();
            let mut last = Instant::now();
            while (got.len() as u64) < n {
                let (when, ids, _) = rx.recv_timeout(Duration::from_secs(5)).unwrap_or_else(|_| {
                    panic!("parts={parts}: replayed events stuck: {} of {n} delivered ({spilled} spilled)", got.len())
                });
                gaps.push(ms(when.saturating_duration_since(last)));
                last = when;
                got.extend(ids.iter().map(|i| i.1));
            }
            assert_eq!(got, (0..n).collect::<Vec<_>>(), "order across the tiers");
            let max = gaps.iter().cloned().fold(0.0, f64::max);
            dist(
                &format!("spill replay: gap between batches parts={parts} spilled={spilled}"),
                &mut gaps,
            );
            assert!(
                max <= ms(iv + Duration::from_secs(1)),
                "parts={parts}: a replayed batch waited {max:.2} ms after the previous one"
            );
            d.shutdown(Duration::from_secs(5)).unwrap();
            h.join().unwrap();
        }
    }
}
