//! No loss, no duplicates, order kept, under load: 32 producer threads, slow
//! consumers, shutdown while producers still run. Every accepted event must
//! end up delivered, returned by shutdown, or (DropOldest) evicted — counted
//! independently by producers, consumers and the eviction hook, and checked
//! against the dispatcher's own counters.

#![allow(missing_docs)]

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::{Ev, Watched, ev};
use dispatcher::{
    Batches, Dispatcher, EnqueueError, Limits, Policy, ShutdownReport, TryEnqueueError,
};

const PRODUCERS: u8 = 32;
const PER_PRODUCER: u32 = 20_000;
const MAX_BUFFERED: usize = 64 * 1024;
const MAX_BATCH: usize = 8 * 1024;
/// Largest limits the retuning thread ever sets: the bounds that hold throughout.
const RETUNE_MAX_BUFFERED: usize = 128 * 1024;

#[derive(Debug, Clone, Copy)]
struct Load {
    policy: Policy,
    receivers: usize,
    retune: bool,
    /// The shutdown deadline: short ones leave events to return.
    deadline: Duration,
}

const PATIENT: Duration = Duration::from_secs(5);

/// What one producer thread did.
struct Produced {
    accepted: Vec<u32>,
    saw_closed: bool,
}

fn weight(producer: u8, seq: u32) -> usize {
    100 + (seq
        .wrapping_mul(2_654_435_761)
        .wrapping_add(u32::from(producer))
        % 300) as usize
}

fn produce(
    producer: dispatcher::Producer<Ev>,
    p: u8,
    policy: Policy,
    tally: &AtomicU64,
) -> Produced {
    let mut accepted = Vec::new();
    for seq in 0..PER_PRODUCER {
        let event = ev(p, seq, weight(p, seq));
        let closed = match policy {
            Policy::Reject => match producer.try_enqueue(event) {
                Ok(()) => false,
                Err(TryEnqueueError::Full(_)) => {
                    thread::sleep(Duration::from_micros(100)); // back off
                    continue;
                }
                Err(TryEnqueueError::Closed(_)) => true,
                Err(other) => panic!("producer {p}: {other:?}"),
            },
            _ => match producer.enqueue(event) {
                Ok(()) => false,
                Err(EnqueueError::Timeout(_)) => continue,
                Err(EnqueueError::Closed(_)) => true,
                Err(other) => panic!("producer {p}: {other:?}"),
            },
        };
        if closed {
            return Produced {
                accepted,
                saw_closed: true,
            };
        }
        accepted.push(seq);
        tally.fetch_add(1, Ordering::Relaxed);
        if accepted.len() % 16 == 0 {
            // Pace a little: producers that never pause starve the consumer
            // and the shutdown of the lock, and could finish before shutdown.
            thread::sleep(Duration::from_micros(100));
        }
    }
    Produced {
        accepted,
        saw_closed: false,
    }
}

/// A slow consumer; checks every batch and returns what it got, in order.
fn consume(batches: Batches<Ev>, max_multi_batch: usize) -> Vec<(u8, u32)> {
    let mut got = Vec::new();
    let mut last: Vec<Option<u32>> = vec![None; PRODUCERS as usize];
    for (n, batch) in batches.iter().enumerate() {
        thread::sleep(Duration::from_micros(50 + (n as u64 * 37) % 150));
        let bytes: usize = batch.iter().map(|e| e.weight).sum();
        assert_eq!(batch.bytes(), bytes, "batch bytes are the summed weights");
        assert!(
            batch.len() == 1 || bytes <= max_multi_batch,
            "batch of {} events, {bytes} B",
            batch.len()
        );
        for e in batch.iter() {
            let last = &mut last[e.producer as usize];
            assert!(
                last.is_none_or(|l| l < e.seq),
                "{e:?} after seq {last:?}: duplicate or reordered"
            );
            *last = Some(e.seq);
            got.push((e.producer, e.seq));
        }
    }
    got
}

/// Reads consistent snapshots while the load runs.
fn sample(dispatcher: &Dispatcher<Ev>, max_buffered: usize, stop: &AtomicBool) -> u64 {
    let mut samples = 0;
    let mut previous = dispatcher.stats();
    loop {
        let s = dispatcher.stats();
        assert_eq!(
            s.accepted,
            s.delivered + s.dropped + s.returned + s.buffered_items as u64,
            "{s:?}"
        );
        assert!(s.buffered_bytes <= max_buffered, "{s:?}");
        assert!(s.peak_buffered_bytes <= max_buffered, "{s:?}");
        assert!(s.accepted >= previous.accepted && s.delivered >= previous.delivered);
        assert!(s.rejected.total() >= previous.rejected.total() && s.dropped >= previous.dropped);
        previous = s;
        samples += 1;
        if stop.load(Ordering::Relaxed) {
            break;
        }
        thread::sleep(Duration::from_millis(1));
    }
    samples
}

/// Changes every limit every millisecond while producers run.
fn retune(dispatcher: &Dispatcher<Ev>, stop: &AtomicBool) -> usize {
    let mut n: usize = 0;
    while !stop.load(Ordering::Relaxed) {
        let interval = Duration::from_millis([1, 5, 20][n % 3]);
        let limits = Limits {
            interval,
            interval_jitter: if n % 2 == 0 {
                interval / 2
            } else {
                Duration::ZERO
            },
            max_buffered_bytes: [16 * 1024, 32 * 1024, 64 * 1024, RETUNE_MAX_BUFFERED][n % 4],
            max_batch_bytes: [None, Some(1024), Some(4 * 1024), Some(MAX_BATCH)][(n / 2) % 4],
            max_batch_items: [None, Some(8), Some(64)][(n / 3) % 3],
        };
        dispatcher.set_limits(limits).expect("valid limits");
        n += 1;
        thread::sleep(Duration::from_millis(1));
    }
    n
}

fn run(load: Load) {
    let evicted = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&evicted);
    let (dispatcher, batches) = Dispatcher::builder()
        .interval(Duration::from_millis(5))
        .max_batch_bytes(MAX_BATCH)
        .max_buffered_bytes(MAX_BUFFERED)
        .policy(load.policy)
        .on_evict(move |e: Ev| sink.lock().unwrap().push((e.producer, e.seq)))
        .build()
        .unwrap();
    // With retuning, batch limits can be lifted entirely for a while.
    let (max_buffered, max_multi_batch) = if load.retune {
        (RETUNE_MAX_BUFFERED, RETUNE_MAX_BUFFERED)
    } else {
        (MAX_BUFFERED, MAX_BATCH)
    };

    let consumers: Vec<Watched<Vec<(u8, u32)>>> = (0..load.receivers)
        .map(|_| {
            let mine = batches.clone();
            common::spawn(move || consume(mine, max_multi_batch))
        })
        .collect();
    drop(batches);
    // Producers also count their successes, so the test can decide when to
    // shut down without contending for the dispatcher's lock.
    let tally = Arc::new(AtomicU64::new(0));
    let producers: Vec<Watched<Produced>> = (0..PRODUCERS)
        .map(|p| {
            let producer = dispatcher.producer();
            let tally = Arc::clone(&tally);
            common::spawn(move || produce(producer, p, load.policy, &tally))
        })
        .collect();

    let dispatcher = Arc::new(dispatcher);
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (d, stop) = (Arc::clone(&dispatcher), Arc::clone(&stop));
        common::spawn(move || sample(&d, max_buffered, &stop))
    };
    let retuner = load.retune.then(|| {
        let (d, stop) = (Arc::clone(&dispatcher), Arc::clone(&stop));
        common::spawn(move || retune(&d, &stop))
    });

    // Let the load build, then shut down in the middle of it.
    let started = Instant::now();
    while tally.load(Ordering::Relaxed) < 60_000 && started.elapsed() < Duration::from_millis(700) {
        thread::sleep(Duration::from_millis(1));
    }
    stop.store(true, Ordering::Relaxed);
    assert!(sampler.join("sampler") > 0);
    if let Some(retuner) = retuner {
        assert!(retuner.join("retuner") > 0);
    }
    let before = dispatcher.stats();
    let dispatcher = Arc::into_inner(dispatcher).expect("only the test holds the dispatcher");
    let (report, returned) = match dispatcher.shutdown(load.deadline) {
        Ok(report) => (report, Vec::new()),
        Err(timeout) => {
            let report: &ShutdownReport = &timeout.report;
            (*report, timeout.into_inner().into_vec())
        }
    };

    let produced: Vec<Produced> = producers.into_iter().map(|p| p.join("producer")).collect();
    let delivered: Vec<Vec<(u8, u32)>> =
        consumers.into_iter().map(|c| c.join("consumer")).collect();
    let evicted = std::mem::take(&mut *evicted.lock().unwrap());
    check(
        load,
        &produced,
        &delivered,
        &returned,
        &evicted,
        &report,
        before.accepted,
    );
}

fn check(
    load: Load,
    produced: &[Produced],
    delivered: &[Vec<(u8, u32)>],
    returned: &[Ev],
    evicted: &[(u8, u32)],
    report: &ShutdownReport,
    accepted_before_shutdown: u64,
) {
    assert!(
        produced.iter().any(|p| p.saw_closed),
        "{load:?}: shutdown did not happen mid-load"
    );
    let accepted: usize = produced.iter().map(|p| p.accepted.len()).sum();
    let consumed: usize = delivered.iter().map(Vec::len).sum();
    let closed = produced.iter().filter(|p| p.saw_closed).count();
    eprintln!(
        "{load:?}: accepted {accepted}, delivered {consumed}, returned {}, evicted {}, \
         {closed} producers saw Closed",
        returned.len(),
        evicted.len()
    );
    assert!(accepted as u64 >= accepted_before_shutdown);
    // Independent counts: producers, consumers, the hook, what came back.
    assert_eq!(
        accepted,
        consumed + returned.len() + evicted.len(),
        "{load:?}: accepted != delivered + returned + evicted"
    );
    // The dispatcher's own final counters agree with them, one by one.
    let stats = report.stats;
    assert_eq!(report.delivered_total, consumed as u64, "{load:?}");
    assert_eq!(
        (
            stats.accepted,
            stats.delivered,
            stats.dropped,
            stats.returned
        ),
        (
            accepted as u64,
            consumed as u64,
            evicted.len() as u64,
            returned.len() as u64
        ),
        "{load:?}: final stats vs independent counts"
    );
    assert_eq!(
        stats.accepted,
        stats.delivered + stats.dropped + stats.returned,
        "{load:?}"
    );
    assert_eq!((stats.buffered_items, stats.buffered_bytes), (0, 0));
    let delivered_bytes: u64 = delivered
        .iter()
        .flatten()
        .map(|&(p, seq)| weight(p, seq) as u64)
        .sum();
    assert_eq!(stats.delivered_bytes, delivered_bytes, "{load:?}");
    if load.policy != Policy::DropOldest {
        assert!(evicted.is_empty());
    }

    // Every accepted event met exactly one fate; nothing else appeared.
    let mut fate = vec![vec![0u8; PER_PRODUCER as usize]; PRODUCERS as usize];
    let mut mark = |(p, seq): (u8, u32)| fate[p as usize][seq as usize] += 1;
    delivered.iter().flatten().copied().for_each(&mut mark);
    evicted.iter().copied().for_each(&mut mark);
    returned
        .iter()
        .map(|e| (e.producer, e.seq))
        .for_each(&mut mark);
    for (p, made) in produced.iter().enumerate() {
        let mut expected = vec![0u8; PER_PRODUCER as usize];
        made.accepted
            .iter()
            .for_each(|&seq| expected[seq as usize] = 1);
        assert!(
            fate[p] == expected,
            "{load:?}: producer {p}: an event lost, duplicated or invented"
        );
    }

    // Shutdown returns what was left, oldest first: after all that was delivered.
    let mut newest_delivered = vec![None; PRODUCERS as usize];
    for &(p, seq) in delivered.iter().flatten() {
        let newest = &mut newest_delivered[p as usize];
        *newest = (*newest).max(Some(seq));
    }
    let mut last_returned: Vec<Option<u32>> = vec![None; PRODUCERS as usize];
    for e in returned {
        let p = e.producer as usize;
        assert!(
            last_returned[p].is_none_or(|l| l < e.seq),
            "{load:?}: returned out of order"
        );
        assert!(
            newest_delivered[p].is_none_or(|d| d < e.seq),
            "{load:?}: returned before delivered"
        );
        last_returned[p] = Some(e.seq);
    }
}

fn stress(load: Load) {
    common::with_watchdog(Duration::from_secs(30), &format!("{load:?}"), move || {
        run(load)
    });
}

#[test]
fn reject_loses_nothing_under_load() {
    stress(Load {
        policy: Policy::Reject,
        receivers: 1,
        retune: false,
        deadline: PATIENT,
    });
}

#[test]
fn block_loses_nothing_under_load() {
    let policy = Policy::Block {
        timeout: Duration::from_millis(2),
    };
    stress(Load {
        policy,
        receivers: 1,
        retune: false,
        deadline: PATIENT,
    });
}

#[test]
fn drop_oldest_accounts_for_every_eviction_under_load() {
    stress(Load {
        policy: Policy::DropOldest,
        receivers: 1,
        retune: false,
        deadline: PATIENT,
    });
}

#[test]
fn several_receivers_share_the_load_without_duplicates() {
    stress(Load {
        policy: Policy::Reject,
        receivers: 3,
        retune: false,
        deadline: PATIENT,
    });
}

#[test]
fn limits_changing_under_load_lose_nothing() {
    let policy = Policy::Block {
        timeout: Duration::from_millis(2),
    };
    stress(Load {
        policy,
        receivers: 2,
        retune: true,
        deadline: PATIENT,
    });
}

#[test]
fn a_short_shutdown_deadline_returns_the_rest_under_load() {
    let policy = Policy::Block {
        timeout: Duration::from_millis(2),
    };
    stress(Load {
        policy,
        receivers: 1,
        retune: false,
        deadline: Duration::ZERO,
    });
    let deadline = Duration::from_micros(300);
    stress(Load {
        policy: Policy::DropOldest,
        receivers: 2,
        retune: false,
        deadline,
    });
}
