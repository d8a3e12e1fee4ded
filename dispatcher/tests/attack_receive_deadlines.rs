//! Black-box attack on the receive deadlines of pull mode, written by a
//! tester who had only the public contract (rustdoc, README, ARCHITECTURE),
//! not the code. The interval's latency to a waiting receiver, in every style
//! and over partitions, is `receive_attack.rs`'s; this file keeps the edges:
//!
//! - `recv_timeout(d)` times out no earlier than `d` and not much later, also
//!   for `d` of 0, 1 ns and `Duration::MAX`, and while another receiver takes
//!   the batches its wake-ups were for; it returns a batch that becomes due;
//! - `try_recv` never blocks, even beside a blocked receiver and busy producers;
//! - `Dispatcher::flush` from a producer thread wakes a blocked receiver, every
//!   time, whatever the interval;
//! - randomized producers, partitions, limits, policies and mixed receivers,
//!   ended by shutdown or drop, lose, duplicate and reorder nothing;
//! - very long (`Duration::MAX`, hours) and very short (1 ns, 1 us) intervals
//!   neither panic nor hang, and lose or reorder nothing.
//!
//! Real threads, real time, generous bounds (a noisy 2-core machine): upper
//! bounds carry at least 500 ms of slack, lower bounds none beyond 1 ms of
//! clock rounding. Every test takes one global lock so timings are not skewed
//! by the other tests of this file, and runs under a watchdog so a lost
//! wake-up fails (naming the scenario) instead of hanging.

#![allow(
    clippy::too_many_lines,
    clippy::type_complexity,
    clippy::let_and_return,
    clippy::ok_expect,
    clippy::while_let_loop,
    missing_docs
)]

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::thread;
use std::time::{Duration, Instant};

mod attack_kit;

use attack_kit::ledger::{Fates, assert_exactly_once, per_handle};
use attack_kit::{Ev, Id, LONG, watchdog_within};
use dispatcher::{
    Batch, Batches, Dispatcher, EnqueueError, EnqueueTimeoutError, FlushReason, Policy,
    RecvTimeoutError, TryEnqueueError, TryRecvError,
};

// ------------------------------------------------------------------ helpers

/// Slack added to every upper time bound.
const SLACK: Duration = Duration::from_millis(500);
/// Clock rounding allowed on lower bounds.
const ROUNDING: Duration = Duration::from_millis(1);
/// "Eventually".
const EVENTUALLY: Duration = Duration::from_secs(10);

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The attacks' event of handle `p`, number `seq`, weighing 16 bytes.
fn ev(p: u32, seq: u64) -> Ev {
    attack_kit::ev(p, u32::try_from(seq).expect("a test's seq fits u32"), 16)
}

fn ids(batch: &[Ev]) -> Vec<Id> {
    batch.iter().map(|e| (e.handle, e.seq)).collect()
}

/// The `k`-th handle (0-based) made on a fresh dispatcher, so with `n`
/// partitions it admits into partition `k % n` (round-robin, per the docs).
fn kth_producer(d: &Dispatcher<Ev>, k: usize) -> dispatcher::Producer<Ev> {
    let mut last = d.producer();
    for _ in 0..k {
        last = d.producer();
    }
    last
}

/// Exactly-once and per-handle order over everything the receivers got,
/// by the attack tests' one check (`attack_kit::ledger`).
///
/// `accepted[p]`: the sequence numbers handle `p` had accepted, in order.
/// `streams[c]`: the batches consumer `c` received, in the order it got them.
/// `returned`: what shutdown / stop handed back.
fn check_ledger(label: &str, accepted: &[Vec<u64>], streams: &[Vec<Vec<Id>>], returned: &[Id]) {
    let accepted = per_handle(accepted.iter().map(|seqs| seqs.iter().copied()));
    let fates = Fates {
        streams: streams
            .iter()
            .enumerate()
            .map(|(c, batches)| (format!("consumer {c}"), batches.concat()))
            .collect(),
        returned: returned.to_vec(),
        ..Fates::default()
    };
    assert_exactly_once(label, &accepted, &fates);
}

/// A pull-mode dispatcher with `parts` partitions and `interval`, the rest
/// the builder's defaults.
fn pull(parts: usize, interval: Duration) -> (Dispatcher<Ev>, Batches<Ev>) {
    Dispatcher::<Ev>::builder()
        .partitions(parts)
        .interval(interval)
        .build()
        .unwrap()
}

/// How a receiver waits for its batch.
#[derive(Clone, Copy, Debug)]
enum Mode {
    Recv,
    RecvTimeout,
    Iter,
    TryRecvPoll,
}

const MODES: [Mode; 4] = [Mode::Recv, Mode::RecvTimeout, Mode::Iter, Mode::TryRecvPoll];

/// Waits for one batch the way `mode` does; `None` when the stream ended.
fn receive(batches: &Batches<Ev>, mode: Mode) -> Option<Batch<Ev>> {
    match mode {
        Mode::Recv => batches.recv().ok(),
        Mode::RecvTimeout => loop {
            match batches.recv_timeout(Duration::from_secs(30)) {
                Ok(b) => return Some(b),
                Err(RecvTimeoutError::Timeout) => continue,
                Err(_) => return None,
            }
        },
        Mode::Iter => batches.iter().next(),
        Mode::TryRecvPoll => loop {
            match batches.try_recv() {
                Ok(b) => return Some(b),
                Err(TryRecvError::Empty) => thread::sleep(Duration::from_micros(500)),
                Err(_) => return None,
            }
        },
    }
}

// ------------------------------------------------------- 2. recv_timeout

/// Contract 2: with nothing to deliver (empty, or an open batch far from
/// due), `recv_timeout(d)` returns `Timeout` no earlier than `d` and no later
/// than `d + 500 ms`.
/// Contract 2: `recv_timeout(d)` returns the batch (not `Timeout`) when it
/// becomes due before `d`, about `interval` after the event; and when the
/// batch is due only after `d`, it times out on time and a later wait gets
/// the batch at its own deadline.
/// Contract 2, edges of `d`: zero and one nanosecond return at once (a batch
/// if one is sealed or due, `Timeout` otherwise); `Duration::MAX` and
/// `from_secs(u64::MAX)` neither panic nor return early, and are woken by a
/// flush or by the end.
#[test]
fn recv_timeout_tiny_and_huge_durations() {
    let _g = serial();
    watchdog_within("recv_timeout_edges", Duration::from_secs(60), |_| {
        let mut failures = Vec::new();
        for parts in [1usize, 4] {
            let (d, batches) = pull(parts, Duration::from_millis(5));
            let producer = kth_producer(&d, parts - 1);
            for tiny in [Duration::ZERO, Duration::from_nanos(1)] {
                let t = Instant::now();
                let r = batches.recv_timeout(tiny);
                if !matches!(r, Err(RecvTimeoutError::Timeout)) || t.elapsed() > SLACK {
                    failures.push(format!(
                        "parts={parts} d={tiny:?} empty: {:?} after {:?}",
                        r.map(|b| ids(&b)),
                        t.elapsed()
                    ));
                }
                // Due (interval passed, not yet cut by anyone).
                producer.try_enqueue(ev(0, tiny.as_nanos() as u64)).unwrap();
                thread::sleep(Duration::from_millis(40));
                let t = Instant::now();
                match batches.recv_timeout(tiny) {
                    Ok(b) if b.len() == 1 => {}
                    other => failures.push(format!(
                        "parts={parts} d={tiny:?}: due batch not returned: {:?}",
                        other.map(|b| ids(&b))
                    )),
                }
                if t.elapsed() > SLACK {
                    failures.push(format!("parts={parts} d={tiny:?}: took {:?}", t.elapsed()));
                }
                // Sealed by flush.
                let mut limits = d.limits();
                limits.interval = LONG;
                d.set_limits(limits).unwrap();
                producer
                    .try_enqueue(ev(0, 10 + tiny.as_nanos() as u64))
                    .unwrap();
                d.flush();
                match batches.recv_timeout(tiny) {
                    Ok(b) if b.reason() == FlushReason::Manual => {}
                    other => failures.push(format!(
                        "parts={parts} d={tiny:?}: flushed batch not returned: {:?}",
                        other.map(|b| ids(&b))
                    )),
                }
                limits.interval = Duration::from_millis(5);
                d.set_limits(limits).unwrap();
            }
            drop(producer);
            drop(d);
        }

        // Huge waits, woken by flush from another thread, then by the end.
        for huge in [
            Duration::MAX,
            Duration::from_secs(u64::MAX),
            Duration::from_secs(u64::MAX / 2),
        ] {
            for interval in [LONG, Duration::MAX] {
                let (d, batches) = pull(2, interval);
                let d = Arc::new(d);
                let (tx, rx) = mpsc::channel();
                let consumer = thread::spawn(move || {
                    let r1 = batches.recv_timeout(huge).map(|b| (ids(&b), b.reason()));
                    let _ = tx.send(r1);
                    let r2 = batches.recv_timeout(huge).map(|b| ids(&b));
                    r2
                });
                thread::sleep(Duration::from_millis(100));
                let producer = d.producer();
                producer.try_enqueue(ev(0, 0)).unwrap();
                let t = Instant::now();
                d.flush();
                let label = format!("huge={huge:?} interval={interval:?}");
                match rx.recv_timeout(EVENTUALLY) {
                    Ok(Ok((got, FlushReason::Manual))) if got == [(0, 0)] => {
                        if t.elapsed() > Duration::from_secs(1) {
                            failures.push(format!(
                                "{label}: flush woke recv_timeout only after {:?}",
                                t.elapsed()
                            ));
                        }
                    }
                    Ok(other) => failures.push(format!("{label}: first wait gave {other:?}")),
                    Err(_) => failures.push(format!(
                        "{label}: flush did not wake recv_timeout within 10 s"
                    )),
                }
                thread::sleep(Duration::from_millis(100));
                drop(producer);
                drop(Arc::try_unwrap(d).ok().expect("sole owner"));
                let end = watchdog_join(consumer, EVENTUALLY);
                match end {
                    Some(Err(RecvTimeoutError::Disconnected)) => {}
                    other => failures.push(format!(
                        "{label}: after drop the second wait gave {other:?}"
                    )),
                }
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n  "));
    });
}

/// Joins `handle` if it finishes within `limit`; `None` otherwise (the
/// thread is leaked).
fn watchdog_join<R: Send + 'static>(handle: thread::JoinHandle<R>, limit: Duration) -> Option<R> {
    let deadline = Instant::now() + limit;
    while !handle.is_finished() {
        if Instant::now() > deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(2));
    }
    Some(handle.join().unwrap())
}

/// Contract 2 under spurious wake-ups: while other threads flush and a
/// competing receiver takes most batches, every `Timeout` one receiver gets
/// from `recv_timeout(d)` comes no earlier than `d` (nor later than
/// `d + 500 ms`), and nothing is lost or duplicated between the two.
#[test]
fn recv_timeout_never_times_out_early_while_others_take_the_batches() {
    let _g = serial();
    watchdog_within("recv_timeout_spurious", Duration::from_secs(60), |_| {
        for parts in [1usize, 4] {
            let (d, batches) = pull(parts, LONG);
            let stop = Arc::new(AtomicBool::new(false));
            let wait = Duration::from_millis(120);
            let timed = {
                let batches = batches.clone();
                thread::spawn(move || {
                    let mut got = Vec::new();
                    let mut bad = Vec::new();
                    let mut timeouts = 0;
                    loop {
                        let t = Instant::now();
                        match batches.recv_timeout(wait) {
                            Ok(b) => got.push(ids(&b)),
                            Err(RecvTimeoutError::Timeout) => {
                                timeouts += 1;
                                let took = t.elapsed();
                                if took + ROUNDING < wait || took > wait + SLACK {
                                    bad.push(took);
                                }
                            }
                            Err(_) => break,
                        }
                    }
                    (got, bad, timeouts)
                })
            };
            let greedy = thread::spawn(move || {
                let mut got = Vec::new();
                for b in &batches {
                    got.push(ids(&b));
                }
                got
            });
            let mut accepted = vec![Vec::new(); 2];
            thread::scope(|s| {
                let hs: Vec<_> = (0..2u32)
                    .map(|p| {
                        let producer = d.producer();
                        let d = &d;
                        let stop = &stop;
                        s.spawn(move || {
                            let mut mine = Vec::new();
                            let mut seq = 0;
                            let end = Instant::now() + Duration::from_millis(1500);
                            while Instant::now() < end && !stop.load(Ordering::Relaxed) {
                                if producer.try_enqueue(ev(p, seq)).is_ok() {
                                    mine.push(seq);
                                }
                                seq += 1;
                                // Sparse flushes: many wake-ups with nothing left for
                                // the timed receiver when the greedy one wins.
                                d.flush();
                                thread::sleep(Duration::from_millis(if p == 0 { 3 } else { 37 }));
                            }
                            mine
                        })
                    })
                    .collect();
                for (p, h) in hs.into_iter().enumerate() {
                    accepted[p] = h.join().unwrap();
                }
            });
            // A quiet stretch: only timeouts now.
            thread::sleep(Duration::from_millis(400));
            let report = d.shutdown(Duration::from_secs(10));
            let (got_t, bad, timeouts) = timed.join().unwrap();
            let got_g = greedy.join().unwrap();
            assert!(
                bad.is_empty(),
                "parts={parts}: recv_timeout({wait:?}) returned Timeout after {bad:?} ({timeouts} timeouts in all)"
            );
            let returned: Vec<_> = match report {
                Ok(_) => Vec::new(),
                Err(t) => ids(&t.into_inner().into_vec()),
            };
            check_ledger(
                &format!("spurious parts={parts}"),
                &accepted,
                &[got_t, got_g],
                &returned,
            );
            assert!(
                timeouts > 0,
                "parts={parts}: the timed receiver never timed out"
            );
        }
    });
}

// ------------------------------------------------------------ 3. try_recv

/// Contract 3: `try_recv` answers at once: `Empty` with nothing ready (empty,
/// or an open batch not due), the batch once it is sealed (flush, item
/// limit) or due (interval elapsed, on any partition, nobody else cut it).
/// Contract 3 under load: while another receiver is blocked in `recv`, and
/// producers on every partition enqueue and flush, no `try_recv` call takes
/// long (each < 500 ms), and the two receivers together get everything.
#[test]
fn try_recv_never_blocks_beside_a_blocked_receiver_and_busy_producers() {
    let _g = serial();
    watchdog_within("try_recv_load", Duration::from_secs(60), |_| {
        for (parts, interval) in [
            (1usize, Duration::from_millis(2)),
            (8, LONG),
            (4, Duration::from_micros(1)),
        ] {
            let (d, batches) = Dispatcher::<Ev>::builder()
                .partitions(parts)
                .interval(interval)
                .max_batch_items(16)
                .max_buffered_bytes(16 * 512)
                .build()
                .unwrap();
            let blocked = {
                let batches = batches.clone();
                thread::spawn(move || {
                    let mut got = Vec::new();
                    while let Ok(b) = batches.recv() {
                        got.push(ids(&b));
                    }
                    got
                })
            };
            let stop = AtomicBool::new(false);
            let mut accepted = vec![Vec::new(); 3];
            let mut polled = Vec::new();
            let mut slowest = Duration::ZERO;
            let mut calls = 0u64;
            thread::scope(|s| {
                let hs: Vec<_> = (0..3u32)
                    .map(|p| {
                        let producer = d.producer();
                        let (d, stop) = (&d, &stop);
                        s.spawn(move || {
                            let mut mine = Vec::new();
                            let mut seq = 0;
                            while !stop.load(Ordering::Relaxed) {
                                if producer.try_enqueue(ev(p, seq)).is_ok() {
                                    mine.push(seq);
                                }
                                seq += 1;
                                if seq % 7 == 0 {
                                    d.flush();
                                }
                                if seq % 64 == 0 {
                                    thread::yield_now();
                                }
                            }
                            mine
                        })
                    })
                    .collect();
                let end = Instant::now() + Duration::from_millis(800);
                while Instant::now() < end {
                    let t = Instant::now();
                    let r = batches.try_recv();
                    slowest = slowest.max(t.elapsed());
                    calls += 1;
                    match r {
                        Ok(b) => polled.push(ids(&b)),
                        Err(TryRecvError::Empty) => thread::yield_now(),
                        Err(e) => panic!("parts={parts}: try_recv gave {e:?} while running"),
                    }
                }
                stop.store(true, Ordering::Relaxed);
                for (p, h) in hs.into_iter().enumerate() {
                    accepted[p] = h.join().unwrap();
                }
            });
            drop(d);
            // Drain the rest with try_recv too: the end only after everything.
            let drain_end = Instant::now() + EVENTUALLY;
            loop {
                let t = Instant::now();
                let r = batches.try_recv();
                slowest = slowest.max(t.elapsed());
                match r {
                    Ok(b) => polled.push(ids(&b)),
                    Err(TryRecvError::Empty) => {
                        assert!(
                            Instant::now() < drain_end,
                            "parts={parts}: drain did not end"
                        );
                        thread::yield_now();
                    }
                    Err(_) => break,
                }
            }
            let got_blocked = blocked.join().unwrap();
            assert!(
                slowest < SLACK,
                "parts={parts} interval={interval:?}: a try_recv call took {slowest:?} ({calls} calls)"
            );
            check_ledger(
                &format!("try_recv load parts={parts}"),
                &accepted,
                &[polled, got_blocked],
                &[],
            );
        }
    });
}

// --------------------------------------------------------------- 4. flush

/// Contract 4: a producer thread that enqueues then calls `flush` wakes a
/// receiver blocked in `recv` / `recv_timeout` / `iter` / a `try_recv` loop,
/// with a one-hour or a never interval, 1 or 16 partitions, round after
/// round (a lost wake-up in any round fails within 10 s).
#[test]
fn flush_from_a_producer_thread_wakes_a_blocked_receiver_every_time() {
    let _g = serial();
    watchdog_within("flush_ping_pong", Duration::from_secs(90), |_| {
        let mut failures = Vec::new();
        for mode in MODES {
            for (parts, interval) in [(1usize, LONG), (16, Duration::MAX)] {
                let (d, batches) = pull(parts, interval);
                let d = Arc::new(d);
                let (tx, rx) = mpsc::channel();
                let consumer = thread::spawn(move || {
                    while let Some(b) = receive(&batches, mode) {
                        let _ = tx.send((Instant::now(), ids(&b), b.reason()));
                    }
                });
                let (ptx, prx) = mpsc::channel::<u32>();
                let (ack_tx, ack_rx) = mpsc::channel::<Instant>();
                let producer_thread = {
                    let d = Arc::clone(&d);
                    thread::spawn(move || {
                        // A fresh handle per round: rounds land on different partitions.
                        for round in prx {
                            let producer = d.producer();
                            producer.try_enqueue(ev(0, round.into())).unwrap();
                            let t = Instant::now();
                            d.flush();
                            ack_tx.send(t).unwrap();
                        }
                    })
                };
                let label = format!("mode={mode:?} parts={parts} interval={interval:?}");
                let mut worst = Duration::ZERO;
                for round in 0..40u32 {
                    // Let the receiver go to sleep first, some rounds.
                    if round % 4 == 0 {
                        thread::sleep(Duration::from_millis(15));
                    }
                    ptx.send(round).unwrap();
                    let flushed_at = ack_rx.recv().unwrap();
                    match rx.recv_timeout(EVENTUALLY) {
                        Ok((at, got, reason)) => {
                            worst = worst.max(at.saturating_duration_since(flushed_at));
                            if got != [(0, round)] || reason != FlushReason::Manual {
                                failures
                                    .push(format!("{label} round {round}: got {got:?} {reason:?}"));
                            }
                        }
                        Err(_) => {
                            failures.push(format!(
                                "{label} round {round}: flush did not wake the receiver within 10 s"
                            ));
                            break;
                        }
                    }
                }
                if worst > Duration::from_secs(1) {
                    failures.push(format!(
                        "{label}: a flushed batch took {worst:?} to reach the receiver"
                    ));
                }
                drop(ptx);
                producer_thread.join().unwrap();
                drop(Arc::try_unwrap(d).ok().expect("sole owner"));
                if watchdog_join(consumer, EVENTUALLY).is_none() {
                    failures.push(format!("{label}: receiver did not see the end after drop"));
                }
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n  "));
    });
}

// ------------------------------------------------- 5. shutdown and drop

// ------------------------------------------------ randomized, fixed seeds

/// Contracts 2, 3 and 5 together, over fixed seeds: several producer
/// handles (each its own thread, mixing `try_enqueue`, `enqueue`,
/// `enqueue_timeout` and `try_enqueue_all`, flushing now and then), several
/// partitions, intervals from 1 ns to `Duration::MAX`, one to three
/// receivers mixing `recv_timeout`, `try_recv`, `recv` and `iter`; the run
/// ends by `shutdown` or by drop. Every `Timeout` comes no earlier than its
/// `d`, no `try_recv` takes long, nothing accepted is lost or duplicated,
/// each receiver sees each handle's events in order.
#[test]
fn randomized_producers_partitions_and_mixed_receivers() {
    let _g = serial();
    watchdog_within("randomized", Duration::from_secs(120), |_| {
        let intervals = [
            Duration::from_nanos(1),
            Duration::from_micros(1),
            Duration::from_micros(50),
            Duration::from_millis(1),
            Duration::from_millis(7),
            Duration::from_millis(30),
            LONG,
            Duration::MAX,
        ];
        for seed in 0..48u64 {
            let mut rng =
                fastrand::Rng::with_seed(0xD15_7A7C4 ^ seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let parts = [1usize, 2, 3, 8][rng.usize(..4)];
            let interval = intervals[rng.usize(..intervals.len())];
            let jitter = if rng.bool() && interval < LONG {
                interval / 2
            } else {
                Duration::ZERO
            };
            let items = [None, Some(1), Some(7), Some(64)][rng.usize(..4)];
            let budget = if rng.bool() { 16 * 48 } else { 1 << 20 };
            let policy = if rng.bool() {
                Policy::Reject
            } else {
                Policy::Block {
                    timeout: Duration::from_millis(3),
                }
            };
            let n_producers = rng.usize(2..=5);
            let n_consumers = rng.usize(1..=3);
            let flusher = rng.bool();
            let by_drop = rng.bool();
            let label = format!(
                "seed {seed}: parts={parts} interval={interval:?} jitter={jitter:?} items={items:?} \
                 budget={budget} policy={policy:?} producers={n_producers} consumers={n_consumers} \
                 flusher={flusher} by_drop={by_drop}"
            );
            let mut b = Dispatcher::<Ev>::builder()
                .partitions(parts)
                .interval(interval)
                .interval_jitter(jitter)
                .jitter_seed(seed)
                .max_buffered_bytes(budget)
                .policy(policy);
            if let Some(n) = items {
                b = b.max_batch_items(n);
            }
            let (d, batches) = b.build().unwrap_or_else(|e| panic!("{label}: build {e:?}"));
            let violations = Arc::new(Mutex::new(Vec::<String>::new()));
            let consumers: Vec<_> = (0..n_consumers)
                .map(|c| {
                    let batches = batches.clone();
                    let violations = Arc::clone(&violations);
                    let cseed = seed * 31 + c as u64;
                    thread::spawn(move || {
                        let mut rng = fastrand::Rng::with_seed(cseed);
                        let mut got = Vec::new();
                        let bad = |s: String| {
                            violations
                                .lock()
                                .unwrap()
                                .push(format!("consumer {c}: {s}"))
                        };
                        loop {
                            match rng.u8(..8) {
                                0..=3 => {
                                    let wait = Duration::from_micros(rng.u64(0..15_000));
                                    let t = Instant::now();
                                    match batches.recv_timeout(wait) {
                                        Ok(b) => got.push(ids(&b)),
                                        Err(RecvTimeoutError::Timeout) => {
                                            let took = t.elapsed();
                                            if took + ROUNDING < wait {
                                                bad(format!("Timeout after {took:?} < d={wait:?}"));
                                            }
                                            if took > wait + SLACK {
                                                bad(format!(
                                                    "Timeout after {took:?} > d={wait:?} + 500 ms"
                                                ));
                                            }
                                        }
                                        Err(_) => break,
                                    }
                                }
                                4..=5 => {
                                    let t = Instant::now();
                                    let r = batches.try_recv();
                                    if t.elapsed() > SLACK {
                                        bad(format!("try_recv took {:?}", t.elapsed()));
                                    }
                                    match r {
                                        Ok(b) => got.push(ids(&b)),
                                        Err(TryRecvError::Empty) => {
                                            if rng.bool() {
                                                thread::yield_now();
                                            }
                                        }
                                        Err(_) => break,
                                    }
                                }
                                6 => match batches.recv() {
                                    Ok(b) => got.push(ids(&b)),
                                    Err(_) => break,
                                },
                                _ => match batches.iter().next() {
                                    Some(b) => got.push(ids(&b)),
                                    None => break,
                                },
                            }
                        }
                        for _ in 0..3 {
                            if !matches!(batches.try_recv(), Err(TryRecvError::Disconnected)) {
                                bad("try_recv not Disconnected after the end".into());
                            }
                        }
                        got
                    })
                })
                .collect();
            drop(batches);

            let mut accepted = vec![Vec::new(); n_producers];
            let stop_flusher = AtomicBool::new(false);
            let flushes = AtomicU64::new(0);
            thread::scope(|s| {
                let f = flusher.then(|| {
                    let (d, stop, flushes) = (&d, &stop_flusher, &flushes);
                    let mut rng = fastrand::Rng::with_seed(seed ^ 0xF1);
                    s.spawn(move || {
                        while !stop.load(Ordering::Relaxed) {
                            d.flush();
                            flushes.fetch_add(1, Ordering::Relaxed);
                            thread::sleep(Duration::from_micros(rng.u64(0..3000)));
                        }
                    })
                });
                let hs: Vec<_> = (0..n_producers as u32)
                    .map(|p| {
                        let producer = d.producer();
                        let d = &d;
                        let violations = &violations;
                        let mut rng = fastrand::Rng::with_seed(seed * 1000 + u64::from(p));
                        s.spawn(move || {
                            let mut mine = Vec::new();
                            let mut seq = 0u64;
                            let end = Instant::now() + Duration::from_millis(300);
                            let target = rng.u64(300..4000);
                            while seq < target && Instant::now() < end {
                                let mut one = |result: Result<(), bool>| match result {
                                    Ok(()) => {
                                        mine.push(seq);
                                        false
                                    }
                                    Err(closed) => closed,
                                };
                                let closed = match rng.u8(..10) {
                                    0..=4 => one(producer
                                        .try_enqueue(ev(p, seq))
                                        .map_err(|e| matches!(e, TryEnqueueError::Closed(_)))),
                                    5..=6 => one(producer
                                        .enqueue(ev(p, seq))
                                        .map_err(|e| matches!(e, EnqueueError::Closed(_)))),
                                    7 => one(producer
                                        .enqueue_timeout(
                                            ev(p, seq),
                                            Duration::from_micros(rng.u64(0..2000)),
                                        )
                                        .map_err(|e| matches!(e, EnqueueTimeoutError::Closed(_)))),
                                    8 => {
                                        let n = rng.u64(1..5);
                                        let group: Vec<_> =
                                            (0..n).map(|i| ev(p, seq + i)).collect();
                                        let r = producer.try_enqueue_all(group);
                                        let closed = matches!(r, Err(TryEnqueueError::Closed(_)));
                                        if r.is_ok() {
                                            mine.extend(seq..seq + n);
                                        }
                                        seq += n - 1;
                                        closed
                                    }
                                    _ => {
                                        d.flush();
                                        false
                                    }
                                };
                                if closed {
                                    violations
                                        .lock()
                                        .unwrap()
                                        .push(format!("producer {p}: Closed while running"));
                                    break;
                                }
                                seq += 1;
                                if rng.u8(..16) == 0 {
                                    thread::sleep(Duration::from_micros(rng.u64(0..500)));
                                }
                            }
                            mine
                        })
                    })
                    .collect();
                for (p, h) in hs.into_iter().enumerate() {
                    accepted[p] = h.join().unwrap();
                }
                stop_flusher.store(true, Ordering::Relaxed);
                if let Some(f) = f {
                    f.join().unwrap();
                }
            });

            let returned: Vec<Id> = if by_drop {
                drop(d);
                Vec::new()
            } else {
                match d.shutdown(Duration::from_secs(10)) {
                    Ok(_) => Vec::new(),
                    Err(t) => {
                        violations.lock().unwrap().push(format!(
                            "shutdown timed out with live receivers ({} undelivered)",
                            t.undelivered.len()
                        ));
                        ids(&t.into_inner().into_vec())
                    }
                }
            };
            let mut streams = Vec::new();
            for (c, h) in consumers.into_iter().enumerate() {
                streams.push(
                    watchdog_join(h, EVENTUALLY)
                        .unwrap_or_else(|| panic!("{label}: consumer {c} never saw the end")),
                );
            }
            let v = violations.lock().unwrap().clone();
            assert!(v.is_empty(), "{label}:\n  {}", v.join("\n  "));
            check_ledger(&label, &accepted, &streams, &returned);
        }
    });
}

// ------------------------------------------------ 6. extreme intervals

/// Contract 6, long: intervals of `Duration::MAX`, just under it,
/// `u64::MAX` seconds, half of that, a year and ten hours (with and without
/// jitter up to the interval) build, admit, time out, flush, change limits
/// and end without a panic or a hang; nothing is cut by time.
#[test]
fn huge_intervals_never_panic_or_hang() {
    let _g = serial();
    watchdog_within("huge_intervals", Duration::from_secs(60), |_| {
        let intervals = [
            Duration::MAX,
            Duration::MAX - Duration::from_nanos(1),
            Duration::from_secs(u64::MAX),
            Duration::from_secs(u64::MAX / 2),
            Duration::from_secs(365 * 24 * 3600),
            Duration::from_secs(10 * 3600),
        ];
        let mut failures = Vec::new();
        for interval in intervals {
            for jitter in [Duration::ZERO, interval / 2, interval] {
                for parts in [1usize, 4] {
                    let label = format!("interval={interval:?} jitter={jitter:?} parts={parts}");
                    let r = catch_unwind(AssertUnwindSafe(|| -> Result<(), String> {
                        let (d, batches) = Dispatcher::<Ev>::builder()
                            .partitions(parts)
                            .interval(interval)
                            .interval_jitter(jitter)
                            .build()
                            .map_err(|e| format!("build refused: {e:?}"))?;
                        let producer = kth_producer(&d, parts - 1);
                        producer
                            .try_enqueue(ev(0, 0))
                            .map_err(|e| format!("{e:?}"))?;
                        if !matches!(batches.try_recv(), Err(TryRecvError::Empty)) {
                            return Err("try_recv returned something".into());
                        }
                        let t = Instant::now();
                        match batches.recv_timeout(Duration::from_millis(60)) {
                            Err(RecvTimeoutError::Timeout) => {}
                            other => {
                                return Err(format!("recv_timeout: {:?}", other.map(|b| ids(&b))));
                            }
                        }
                        let took = t.elapsed();
                        if took + ROUNDING < Duration::from_millis(60)
                            || took > Duration::from_millis(60) + SLACK
                        {
                            return Err(format!("recv_timeout(60 ms) took {took:?}"));
                        }
                        let _ = d.stats();
                        d.set_limits(d.limits())
                            .map_err(|e| format!("set_limits: {e:?}"))?;
                        d.flush();
                        match batches.recv_timeout(Duration::from_secs(5)) {
                            Ok(b) if ids(&b) == [(0, 0)] && b.reason() == FlushReason::Manual => {}
                            other => {
                                return Err(format!("after flush: {:?}", other.map(|b| ids(&b))));
                            }
                        }
                        producer
                            .try_enqueue(ev(0, 1))
                            .map_err(|e| format!("{e:?}"))?;
                        // A receiver asleep on the far deadline, woken by the end.
                        let consumer = {
                            let batches = batches.clone();
                            thread::spawn(move || {
                                let mut got = Vec::new();
                                for b in &batches {
                                    got.extend(ids(&b));
                                }
                                got
                            })
                        };
                        thread::sleep(Duration::from_millis(30));
                        drop(producer);
                        drop(d);
                        match watchdog_join(consumer, EVENTUALLY) {
                            Some(got) if got == [(0, 1)] => Ok(()),
                            Some(got) => Err(format!("at the end got {got:?}")),
                            None => Err("a receiver never saw the end after drop".into()),
                        }
                    }));
                    match r {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => failures.push(format!("{label}: {e}")),
                        Err(p) => failures.push(format!(
                            "{label}: PANIC: {}",
                            p.downcast_ref::<String>()
                                .cloned()
                                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                                .unwrap_or_default()
                        )),
                    }
                }
            }
        }
        // Live changes between huge and tiny intervals under a sleeping receiver.
        let r = catch_unwind(AssertUnwindSafe(|| {
            let (d, batches) = pull(2, Duration::from_millis(10));
            let consumer = thread::spawn(move || {
                let mut got = Vec::new();
                while let Ok(b) = batches.recv() {
                    got.extend(ids(&b));
                }
                got
            });
            let producer = d.producer();
            let mut limits = d.limits();
            for (i, iv) in [
                Duration::MAX,
                Duration::from_nanos(1),
                Duration::from_secs(u64::MAX),
                LONG,
                Duration::from_micros(1),
            ]
            .into_iter()
            .enumerate()
            {
                limits.interval = iv;
                limits.interval_jitter = if i % 2 == 0 { iv } else { Duration::ZERO };
                d.set_limits(limits).unwrap();
                producer.try_enqueue(ev(0, i as u64)).unwrap();
                thread::sleep(Duration::from_millis(20));
            }
            drop(producer);
            drop(d);
            watchdog_join(consumer, EVENTUALLY)
        }));
        match r {
            Ok(Some(got)) if got == (0..5).map(|i| (0, i)).collect::<Vec<_>>() => {}
            Ok(other) => failures.push(format!("live interval changes: got {other:?}")),
            Err(_) => failures.push("live interval changes: PANIC".into()),
        }
        assert!(failures.is_empty(), "{}", failures.join("\n  "));
    });
}

/// Contract 6, short: with an interval of 1 ns or 1 us (with and without
/// jitter) and several producers and partitions, every accepted event
/// reaches a single receiver exactly once, each handle's in order; no hang.
#[test]
fn tiny_intervals_lose_nothing_and_keep_order() {
    let _g = serial();
    watchdog_within("tiny_intervals", Duration::from_secs(60), |_| {
        for (interval, jitter) in [
            (Duration::from_nanos(1), Duration::ZERO),
            (Duration::from_nanos(1), Duration::from_nanos(1)),
            (Duration::from_micros(1), Duration::ZERO),
            (Duration::from_micros(1), Duration::from_micros(1)),
        ] {
            for (parts, mode) in [
                (1usize, Mode::Recv),
                (4, Mode::TryRecvPoll),
                (3, Mode::RecvTimeout),
                (8, Mode::Iter),
            ] {
                let label =
                    format!("interval={interval:?} jitter={jitter:?} parts={parts} mode={mode:?}");
                let (d, batches) = Dispatcher::<Ev>::builder()
                    .partitions(parts)
                    .interval(interval)
                    .interval_jitter(jitter)
                    .max_buffered_bytes(16 * 4096)
                    .build()
                    .unwrap();
                let consumer = thread::spawn(move || {
                    let mut got = Vec::new();
                    let mut reasons = HashMap::new();
                    while let Some(b) = receive(&batches, mode) {
                        *reasons.entry(format!("{:?}", b.reason())).or_insert(0u64) += 1;
                        got.push(ids(&b));
                    }
                    (got, reasons)
                });
                let mut accepted = vec![Vec::new(); 4];
                thread::scope(|s| {
                    let hs: Vec<_> = (0..4u32)
                        .map(|p| {
                            let producer = d.producer();
                            s.spawn(move || {
                                let mut mine = Vec::new();
                                for seq in 0..3000u64 {
                                    // Block briefly for room: a tiny interval must
                                    // keep batches flowing.
                                    match producer.enqueue_timeout(ev(p, seq), Duration::from_secs(5)) {
                                        Ok(()) => mine.push(seq),
                                        Err(e) => panic!("handle {p} seq {seq}: {e:?} (stuck with a tiny interval?)"),
                                    }
                                }
                                mine
                            })
                        })
                        .collect();
                    for (p, h) in hs.into_iter().enumerate() {
                        accepted[p] = h.join().unwrap();
                    }
                });
                // Everything accepted should leave by time alone, without the end.
                let t = Instant::now();
                while d.stats().buffered_items > 0 {
                    assert!(
                        t.elapsed() < EVENTUALLY,
                        "{label}: {} events still buffered 10 s after the last enqueue, interval {interval:?}",
                        d.stats().buffered_items
                    );
                    thread::sleep(Duration::from_millis(1));
                }
                drop(d);
                let (got, reasons) = watchdog_join(consumer, EVENTUALLY)
                    .unwrap_or_else(|| panic!("{label}: receiver never saw the end"));
                assert!(
                    reasons.contains_key("Interval"),
                    "{label}: no interval batch at all: {reasons:?}"
                );
                check_ledger(&label, &accepted, &[got], &[]);
            }
        }
    });
}
