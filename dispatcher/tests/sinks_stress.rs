//! Sink mode under load: producers under DropOldest and Block against a
//! sink that fails about 30 % of its attempts; every accepted event is
//! written once, handed to the error hook, or evicted — never lost or
//! duplicated.

#![allow(missing_docs)]

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::sink_kit::{Cause, recording_hook};
use common::{Ev, PROMPTLY, assert_balanced, ev, quick_retry};
use dispatcher::sink::{self, FlushContext};
use dispatcher::{Batch, Dispatcher, EnqueueError, Policy};

const PRODUCERS: u8 = 8;
const PER_PRODUCER: u32 = 1500;

/// Whether the attempt `attempt` of the batch starting with `first` fails:
/// about 30 %, decided by a seeded hash so a run is reproducible whatever
/// the scheduling.
fn flaky(first: &Ev, attempt: u32) -> bool {
    let mut x = 0x5eed_u64
        ^ (u64::from(first.producer) << 40)
        ^ (u64::from(first.seq) << 8)
        ^ u64::from(attempt);
    x = x.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x ^= x >> 29;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 32;
    x % 100 < 30
}

fn stress(policy: Policy) {
    let delivered = Arc::new(Mutex::new(Vec::<Vec<Ev>>::new()));
    let failed_attempts = Arc::new(AtomicUsize::new(0));
    let evicted = Arc::new(Mutex::new(Vec::new()));
    let (failures, hook) = recording_hook();
    let (out, fails, evict_out) = (
        Arc::clone(&delivered),
        Arc::clone(&failed_attempts),
        Arc::clone(&evicted),
    );
    let dispatcher = Dispatcher::builder()
        .interval(Duration::from_millis(2))
        .max_buffered_bytes(8 * 1024)
        .max_batch_bytes(1024)
        .policy(policy)
        .flush_workers(2)
        .retry(quick_retry(3))
        .on_evict(move |e| evict_out.lock().unwrap().push(e))
        .on_flush_error(hook)
        .build_with_sink(sink::from_fn(
            move |batch: &Batch<Ev>, ctx: &FlushContext| -> Result<(), String> {
                if flaky(&batch[0], ctx.attempt()) {
                    fails.fetch_add(1, Ordering::SeqCst);
                    return Err("flaky".into());
                }
                // Recorded only when the attempt succeeds.
                out.lock().unwrap().push(batch.items().to_vec());
                Ok(())
            },
        ))
        .unwrap();

    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let producer = dispatcher.producer();
            common::spawn(move || {
                let mut accepted = Vec::new();
                for seq in 0..PER_PRODUCER {
                    let event = ev(p, seq, 16 + (seq as usize * 7 + p as usize) % 48);
                    match producer.enqueue(event) {
                        Ok(()) => accepted.push(seq),
                        Err(EnqueueError::Timeout(_) | EnqueueError::Full(_)) => {}
                        Err(other) => panic!("unexpected refusal {other:?}"),
                    }
                }
                accepted
            })
        })
        .collect();
    let accepted: Vec<Vec<u32>> = producers
        .into_iter()
        .map(|p| p.join_within(PROMPTLY, "producer"))
        .collect();
    let report = dispatcher.shutdown(PROMPTLY).unwrap();

    // Every accepted event is delivered, failed or evicted exactly once.
    let delivered = delivered.lock().unwrap();
    let failures = failures.lock().unwrap();
    let evicted = evicted.lock().unwrap();
    let mut fate: std::collections::HashMap<(u8, u32), u32> = std::collections::HashMap::new();
    let all = delivered
        .iter()
        .flatten()
        .chain(failures.iter().flat_map(|f| &f.events))
        .chain(evicted.iter());
    for e in all {
        *fate.entry((e.producer, e.seq)).or_default() += 1;
    }
    let accepted_ids: HashSet<(u8, u32)> = accepted
        .iter()
        .enumerate()
        .flat_map(|(p, seqs)| seqs.iter().map(move |&s| (p as u8, s)))
        .collect();
    let duplicates: Vec<_> = fate.iter().filter(|&(_, &n)| n > 1).collect();
    assert!(duplicates.is_empty(), "seen twice: {duplicates:?}");
    let fated: HashSet<(u8, u32)> = fate.keys().copied().collect();
    assert_eq!(fated, accepted_ids);

    // Each batch keeps every producer's order.
    for batch in delivered.iter().chain(failures.iter().map(|f| &f.events)) {
        for p in 0..PRODUCERS {
            let mine: Vec<u32> = batch
                .iter()
                .filter(|e| e.producer == p)
                .map(|e| e.seq)
                .collect();
            assert!(mine.windows(2).all(|w| w[0] < w[1]), "{mine:?}");
        }
        assert!(batch.iter().map(|e| e.weight).sum::<usize>() <= 1024);
    }

    let stats = report.stats;
    let delivered_events: usize = delivered.iter().map(Vec::len).sum();
    let failed_events: usize = failures.iter().map(|f| f.events.len()).sum();
    assert_eq!(stats.accepted as usize, accepted_ids.len());
    assert_eq!(stats.delivered as usize, delivered_events);
    assert_eq!(stats.batches as usize, delivered.len());
    assert_eq!(stats.failed as usize, failed_events);
    assert_eq!(stats.failed_batches as usize, failures.len());
    assert_eq!(stats.dropped as usize, evicted.len());
    assert_eq!(stats.returned, 0);
    if let Policy::Block { .. } = policy {
        // Some 470 batches: the seeded failures exercise both retries and
        // the hook. (Under DropOldest most events may be evicted first.)
        assert!(stats.retries > 0 && !failures.is_empty(), "{stats:?}");
    }
    assert!(failures.iter().all(|f| f.attempts == 3));
    assert!(
        failures
            .iter()
            .all(|f| f.cause == Cause::Sink("flaky".into()))
    );
    // Attempts = failed attempts + successful ones = retries + batches.
    assert_eq!(
        stats.retries as usize,
        failed_attempts.load(Ordering::SeqCst) - failures.len()
    );
    assert!(stats.peak_buffered_bytes <= 8 * 1024);
    assert_eq!((stats.buffered_bytes, stats.buffered_items), (0, 0));
    assert_balanced(&stats);
    if let Policy::Block { .. } = policy {
        assert_eq!(stats.dropped, 0);
    }
}

#[test]
fn stress_flaky_sink_drop_oldest_loses_and_duplicates_nothing() {
    common::with_watchdog(PROMPTLY * 2, "stress", || stress(Policy::DropOldest));
}

#[test]
fn stress_flaky_sink_block_loses_and_duplicates_nothing() {
    common::with_watchdog(PROMPTLY * 2, "stress", || {
        stress(Policy::Block {
            timeout: Duration::from_millis(500),
        });
    });
}
