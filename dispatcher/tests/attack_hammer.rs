//! The thread hammer, an attack on the whole contract under load: every
//! accepted event has exactly one fate (delivered, evicted, failed or
//! returned) and keeps its order per producer handle, a refused one has
//! none, the byte bound holds, a checkpoint covers what was accepted before
//! it, and the counters agree with what was seen.
//!
//! Many producer threads with random sizes under every policy and 1..=8
//! partitions, live limits flipping, receivers that come and go,
//! checkpoints, optionally panicking hooks and weights (whose weight also
//! drifts between calls), and an end (shutdown or stop) in the middle of
//! the load. Every event is unique; independent records of every fate are
//! checked against each other and the counters. Every round runs under a
//! watchdog, so a deadlock fails the test (naming the round) instead of
//! hanging the suite.
//!
//! `ATTACK_SEED=<u64>` replays one round.

mod attack_kit;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use attack_kit::hammer::{Hev, Id, Log, Seen, hid};
use attack_kit::ledger::{per_handle, verify_allowing};
use attack_kit::thread_hammer::{
    End, Plan, hammer_checkpoints, hammer_flip, hammer_produce, hammer_watch,
};
use attack_kit::{CHAOS, Progress, assert_balanced, quiet_chaos_panics, watchdog};
use dispatcher::sink::{self, FlushContext};
use dispatcher::{Batch, Dispatcher, TryEnqueueError};

fn build_hammer(
    plan: &Plan,
    seen: &Arc<Seen>,
) -> (Dispatcher<Hev>, Option<dispatcher::Batches<Hev>>) {
    let evicted = Arc::clone(seen);
    let mut builder = Dispatcher::<Hev>::builder()
        .interval(plan.interval)
        .max_buffered_bytes(plan.max_buffered)
        .partitions(plan.partitions)
        .policy(plan.policy)
        .jitter_seed(plan.seed)
        .on_evict(move |e| evicted.evicted.lock().unwrap().push(hid(&e)));
    if let Some(items) = plan.max_batch_items {
        builder = builder.max_batch_items(items);
    }
    if let Some(bytes) = plan.max_batch_bytes {
        builder = builder.max_batch_bytes(bytes);
    }
    if plan.chaos {
        let tick = Arc::new(AtomicUsize::new(0));
        let (a, b, c) = (Arc::clone(&tick), Arc::clone(&tick), tick);
        builder = builder
            .should_flush(move |open| {
                let n = a.fetch_add(1, SeqCst);
                assert!(n % 97 != 5, "{CHAOS} should_flush panics");
                open.len() % 7 == 3
            })
            .will_overflow(move |_, next: &Hev| {
                let n = b.fetch_add(1, SeqCst);
                assert!(n % 89 != 7, "{CHAOS} will_overflow panics");
                next.seq % 11 == 0
            })
            .can_add(move |_, next: &Hev| {
                let n = c.fetch_add(1, SeqCst);
                assert!(n % 83 != 9, "{CHAOS} can_add panics");
                next.seq % 13 != 1
            });
    }
    let Some(sink) = plan.sink else {
        let (dispatcher, batches) = builder.build().unwrap();
        return (dispatcher, Some(batches));
    };
    let (failed, written) = (Arc::clone(seen), Arc::clone(seen));
    let seed = plan.seed;
    let flush_timeout = Duration::from_millis(5);
    let dispatcher = builder
        .flush_workers(sink.workers)
        .flush_timeout(flush_timeout)
        .retry(dispatcher::sink::Retry::new(
            sink.attempts,
            Duration::from_micros(200),
            Duration::from_millis(2),
        ))
        .on_flush_error(move |_, batch: Batch<Hev>| {
            failed.failed.lock().unwrap().extend(batch.iter().map(hid));
        })
        .build_with_sink(sink::from_fn(
            move |batch: &Batch<Hev>, ctx: &FlushContext| -> Result<(), String> {
                let first = batch
                    .first()
                    .map_or(0, |e| (u64::from(e.handle) << 32) | u64::from(e.seq));
                let mut rng = fastrand::Rng::with_seed(seed ^ first ^ u64::from(ctx.attempt()));
                if rng.u64(0..100) < sink.slow_pct {
                    thread::sleep(flush_timeout * 2);
                    return Err("slow".into());
                }
                thread::sleep(Duration::from_micros(rng.u64(0..=200)));
                if rng.u64(0..100) < sink.fail_pct {
                    return Err("injected failure".into());
                }
                written
                    .delivered
                    .lock()
                    .unwrap()
                    .push(batch.iter().map(hid).collect());
                Ok(())
            },
        ))
        .unwrap();
    (dispatcher, None)
}

fn hammer_round(plan: Plan, progress: &Progress) {
    progress.set(format!("round {plan:?}: starting"));
    let seen = Arc::new(Seen::default());
    let (dispatcher, batches) = build_hammer(&plan, &seen);
    let dispatcher = Arc::new(dispatcher);
    let stop = Arc::new(AtomicBool::new(false));
    let ending = Arc::new(AtomicBool::new(false));
    let plan = Arc::new(plan);

    // Consumers (pull mode).
    let mut consumers = Vec::new();
    if let Some(batches) = batches {
        let batches = Arc::new(batches);
        for _ in 0..plan.receivers.max(1) {
            let (batches, seen) = (Arc::clone(&batches), Arc::clone(&seen));
            consumers.push(thread::spawn(move || {
                for batch in &*batches {
                    let ids: Vec<Id> = batch.iter().map(hid).collect();
                    seen.delivered.lock().unwrap().push(ids);
                }
            }));
        }
        if plan.churn {
            // Receivers that come and go: clones that take a few batches.
            let (batches, seen, ending) =
                (Arc::clone(&batches), Arc::clone(&seen), Arc::clone(&ending));
            consumers.push(thread::spawn(move || {
                let mut rng = fastrand::Rng::new();
                while !ending.load(SeqCst) {
                    let clone = (*batches).clone();
                    let seen = Arc::clone(&seen);
                    let takes = rng.usize(0..4);
                    thread::spawn(move || {
                        for _ in 0..takes {
                            if let Ok(batch) = clone.recv_timeout(Duration::from_millis(2)) {
                                let ids: Vec<Id> = batch.iter().map(hid).collect();
                                seen.delivered.lock().unwrap().push(ids);
                            }
                        }
                    })
                    .join()
                    .unwrap();
                }
            }));
        }
    }

    // Producers: one handle each.
    let accepted: Vec<Arc<Mutex<Vec<u32>>>> = (0..plan.producers).map(|_| Arc::default()).collect();
    let producers: Vec<_> = (0..plan.producers)
        .map(|h| {
            let producer = dispatcher.producer();
            let (plan, stop, seen, list) = (
                Arc::clone(&plan),
                Arc::clone(&stop),
                Arc::clone(&seen),
                Arc::clone(&accepted[h]),
            );
            thread::spawn(move || hammer_produce(producer, h as u32, &plan, &stop, &seen, &list))
        })
        .collect();

    // Helpers that need the dispatcher itself.
    let bound = plan.max_buffered.max(plan.flip_to.unwrap_or(0));
    let helpers = vec![
        {
            let (d, e, s) = (
                Arc::clone(&dispatcher),
                Arc::clone(&ending),
                Arc::clone(&seen),
            );
            thread::spawn(move || hammer_watch(&d, bound, &e, &s))
        },
        {
            let (d, e, p) = (
                Arc::clone(&dispatcher),
                Arc::clone(&ending),
                Arc::clone(&plan),
            );
            thread::spawn(move || hammer_flip(&d, &p, &e))
        },
        {
            let (d, e, p, s) = (
                Arc::clone(&dispatcher),
                Arc::clone(&ending),
                Arc::clone(&plan),
                Arc::clone(&seen),
            );
            let lists = accepted.clone();
            thread::spawn(move || hammer_checkpoints(&d, &p, &e, &s, &lists))
        },
    ];

    thread::sleep(plan.run_for);
    progress.set(format!("round {plan:?}: ending the helpers"));
    ending.store(true, SeqCst);
    for helper in helpers {
        helper.join().unwrap();
    }
    let late = dispatcher.producer();
    let dispatcher = Arc::try_unwrap(dispatcher).unwrap_or_else(|_| panic!("helpers ended"));
    progress.set(format!("round {plan:?}: {:?} under load", plan.end));
    let (returned, report) = match plan.end {
        End::Stop => (dispatcher.stop().into_vec(), None),
        End::Shutdown(timeout) => match dispatcher.shutdown(timeout) {
            Ok(report) => (Vec::new(), Some(report.stats)),
            Err(err) => {
                let stats = err.report.stats;
                (err.into_inner().into_vec(), Some(stats))
            }
        },
    };
    if !matches!(
        late.try_enqueue(Hev {
            handle: 999,
            seq: 0,
            weight: 1,
            chaos: false
        }),
        Err(TryEnqueueError::Closed(_))
    ) {
        seen.problem("a producer was not refused as Closed after the end".into());
    }
    progress.set(format!("round {plan:?}: joining producers"));
    stop.store(true, SeqCst);
    let logs: Vec<Log> = producers.into_iter().map(|p| p.join().unwrap()).collect();
    progress.set(format!("round {plan:?}: joining consumers"));
    for consumer in consumers {
        consumer.join().unwrap();
    }

    // In sink mode batches still in a call settle on their own: wait until
    // every accepted event has a fate (or the limit passes).
    let returned_ids: Vec<Id> = returned.iter().map(hid).collect();
    let expected = report.map(|stats| stats.accepted as usize);
    let certain = per_handle(logs.iter().map(|l| l.accepted.iter().copied()));
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let fated = seen.fated() + returned_ids.len();
        let settled = match expected {
            Some(expected) => fated >= expected,
            None => {
                let mut all: std::collections::HashSet<Id> = returned_ids.iter().copied().collect();
                all.extend(seen.delivered.lock().unwrap().iter().flatten().copied());
                all.extend(seen.evicted.lock().unwrap().iter().copied());
                all.extend(seen.failed.lock().unwrap().iter().copied());
                certain.iter().all(|id| all.contains(id))
            }
        };
        if settled || Instant::now() >= deadline {
            break;
        }
        thread::sleep(Duration::from_millis(2));
    }

    // Every fate, by the attack tests' one exactly-once check: each event a
    // producer was told was accepted has one, each whose call panicked at
    // most one, nothing else any; each batch (and, for a single consumer,
    // all it took, and what came back) keeps its handles' order.
    let fates = seen.fates(returned_ids, plan.single_consumer());
    let delivered = fates.delivered();
    let maybe = per_handle(logs.iter().map(|l| l.uncertain.iter().copied()));
    let mut problems = seen.problems.lock().unwrap().clone();
    if let Err(broken) = verify_allowing(&certain, &maybe, &fates) {
        problems.push(broken);
    }
    let sure = certain.len();
    let fated = fates.fated();
    if let Some(stats) = report {
        if stats.accepted as usize != fated {
            problems.push(format!(
                "stats.accepted {} but {fated} events have a fate ({sure} accepted for sure): {stats:?}",
                stats.accepted
            ));
        }
        if plan.sink.is_none() {
            if stats.delivered as usize != delivered || stats.buffered_items != 0 {
                problems.push(format!(
                    "stats say {} delivered, {} buffered; the consumers got {delivered}: {stats:?}",
                    stats.delivered, stats.buffered_items
                ));
            }
            if stats.returned as usize != fates.returned.len() {
                problems.push(format!(
                    "stats.returned {} but {} returned",
                    stats.returned,
                    fates.returned.len()
                ));
            }
        }
        if stats.buffered_items != stats.in_flight_items {
            problems.push(format!(
                "after the end, events are buffered outside the sink: {stats:?}"
            ));
        }
        assert_balanced(&stats);
    }
    println!(
        "  {:?} p{} {:?}: accepted {sure}, refused {}, uncertain {}, delivered {}, evicted {}, failed {}, returned {}",
        plan.end,
        plan.partitions,
        plan.policy,
        logs.iter().map(|l| l.refused.len()).sum::<usize>(),
        logs.iter().map(|l| l.uncertain.len()).sum::<usize>(),
        delivered,
        fates.evicted.len(),
        fates.failed.len(),
        fates.returned.len()
    );
    assert!(
        problems.is_empty(),
        "ATTACK_SEED={} {plan:?}\n{} problem(s):\n{}",
        plan.seed,
        problems.len(),
        problems.join("\n")
    );
}

/// Runs hammer rounds for about `budget`; `ATTACK_SEED` replays one round.
fn hammer(name: &str, budget: Duration, sink: bool, chaos: bool) {
    quiet_chaos_panics();
    let replay: Option<u64> = std::env::var("ATTACK_SEED")
        .ok()
        .and_then(|s| s.parse().ok());
    let name = name.to_string();
    watchdog(&name.clone(), move |progress| {
        let started = Instant::now();
        let mut master = fastrand::Rng::new();
        let mut rounds = 0;
        while rounds == 0 || (replay.is_none() && started.elapsed() < budget) {
            let seed = replay.unwrap_or_else(|| master.u64(..));
            println!("{name}: ATTACK_SEED={seed}");
            hammer_round(Plan::draw(seed, sink, chaos), &progress);
            rounds += 1;
        }
        println!("{name}: {rounds} rounds");
    });
}

#[test]
fn hammer_pull_mode() {
    hammer("hammer pull", Duration::from_secs(3), false, false);
}

#[test]
fn hammer_sink_mode() {
    hammer("hammer sink", Duration::from_secs(3), true, false);
}

#[test]
fn hammer_pull_mode_with_panicking_hooks_and_weights() {
    hammer("hammer pull chaos", Duration::from_secs(2), false, true);
}

#[test]
fn hammer_sink_mode_with_panicking_hooks_and_weights() {
    hammer("hammer sink chaos", Duration::from_secs(2), true, true);
}
