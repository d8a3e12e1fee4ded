//! Producers -> target -> consumer, bounded runs: every event is accounted
//! for, and every delivered event's latency is recorded.

use std::sync::Arc;
use std::time::Duration;

use dispatcher::{Dispatcher, FlushReason, Policy};
use hdrhistogram::Histogram;
use hdrhistogram::sync::SyncHistogram;
use loadgen::{
    BatchSource, Clock, ConsumerControl, ConsumerCounters, ConsumerSim, ConsumerTotals,
    DispatcherTarget, Event, PayloadSource, PayloadSpec, ProducerConfig, ProducerControl,
    ProducerCounters, ProducerTotals, Target, channel, spawn_consumer, spawn_producers,
};

const PRODUCERS: u32 = 4;
const EVENTS_EACH: u64 = 2_000;

struct Run {
    sent: ProducerTotals,
    received: ConsumerTotals,
    latency_count: u64,
}

/// Runs `PRODUCERS` closed-loop producers to their event limit against
/// `target`, with one consumer on `source`; `close` ends the target once
/// the producers are done.
fn run<S>(
    spec: &str,
    target: Arc<dyn Target>,
    source: S,
    sim: ConsumerSim,
    close: impl FnOnce(),
) -> Run
where
    S: BatchSource + Send + 'static,
{
    let clock = Clock::new();
    let mut histogram: SyncHistogram<u64> = Histogram::new(3).unwrap().into();
    let consumer_counters = Arc::new(ConsumerCounters::new());
    let consumer = spawn_consumer(
        "consumer",
        source,
        Arc::new(ConsumerControl::new(sim)),
        consumer_counters.clone(),
        clock,
        Some(histogram.recorder()),
    )
    .unwrap();

    let payload = PayloadSource::load(&spec.parse::<PayloadSpec>().unwrap()).unwrap();
    let mut cfg = ProducerConfig::new(PRODUCERS, payload);
    cfg.seed = 7;
    cfg.backoff = Duration::from_micros(20);
    cfg.events_per_producer = Some(EVENTS_EACH);
    let counters = Arc::new(ProducerCounters::new(PRODUCERS as usize));
    let control = Arc::new(ProducerControl::new(None));
    spawn_producers(cfg, target, counters.clone(), clock, control)
        .unwrap()
        .join()
        .unwrap();
    close();
    let received = consumer.join().unwrap();
    assert_eq!(received, consumer_counters.snapshot());
    histogram.refresh();
    Run {
        sent: counters.snapshot(),
        received,
        latency_count: histogram.len(),
    }
}

fn assert_accounted(run: &Run) {
    let sent = run.sent;
    assert_eq!(sent.attempted, u64::from(PRODUCERS) * EVENTS_EACH);
    assert_eq!(sent.attempted, sent.accepted + sent.rejected);
    assert_eq!(sent.closed, 0);
    assert_eq!(run.latency_count, run.received.delivered);
}

#[test]
fn channel_reference_delivers_every_accepted_event() {
    let (target, batches) = channel(64, 32);
    let target: Arc<dyn Target> = Arc::new(target);
    let weak = Arc::downgrade(&target);
    let run = run(
        "uniform:16..256",
        target,
        batches,
        ConsumerSim::default(),
        || {
            // Producers dropped their handles when they finished.
            assert_eq!(weak.strong_count(), 0, "channel still held open");
        },
    );
    assert_accounted(&run);
    assert_eq!(run.received.delivered, run.sent.accepted);
    assert!(run.received.batches > 0);
    assert_eq!(run.received.batches_by_reason.iter().sum::<u64>(), 0);
}

fn dispatcher(policy: Policy) -> (Dispatcher<Event>, dispatcher::Batches<Event>) {
    Dispatcher::<Event>::builder()
        .interval(Duration::from_millis(1))
        .max_batch_bytes(8 * 1024)
        .max_buffered_bytes(32 * 1024)
        .policy(policy)
        .build()
        .unwrap()
}

fn slow_consumer() -> ConsumerSim {
    ConsumerSim {
        delay_per_batch: Duration::from_micros(20),
        ..ConsumerSim::default()
    }
}

#[test]
fn dispatcher_delivers_every_accepted_event_under_pressure() {
    let (dispatcher, batches) = dispatcher(Policy::Reject);
    let target = Arc::new(DispatcherTarget::new(dispatcher.producer()));
    let mut accepted_by_dispatcher = None;
    let mut delivered_by_dispatcher = None;
    let run = run("telemetry", target, batches, slow_consumer(), || {
        accepted_by_dispatcher = Some(dispatcher.stats().accepted);
        let report = dispatcher.shutdown(Duration::from_secs(5)).unwrap();
        delivered_by_dispatcher = Some(report.delivered_total);
    });
    assert_accounted(&run);
    assert_eq!(run.received.delivered, run.sent.accepted);
    assert_eq!(accepted_by_dispatcher, Some(run.sent.accepted));
    assert_eq!(delivered_by_dispatcher, Some(run.received.delivered));
    let reasons: u64 = FlushReason::ALL
        .iter()
        .map(|&r| run.received.batches_for(r))
        .sum();
    assert_eq!(reasons, run.received.batches);
}

#[test]
fn drop_oldest_accounts_for_evictions() {
    let (dispatcher, batches) = dispatcher(Policy::DropOldest);
    let target = Arc::new(DispatcherTarget::new(dispatcher.producer()));
    let mut dropped = None;
    let run = run("fixed:512", target, batches, slow_consumer(), || {
        let report = dispatcher.stats();
        dropped = Some(report.dropped);
        dispatcher.shutdown(Duration::from_secs(5)).unwrap();
    });
    assert_accounted(&run);
    assert_eq!(run.sent.rejected, 0, "drop-oldest never refuses");
    let dropped = dropped.unwrap();
    assert_eq!(run.received.delivered + dropped, run.sent.accepted);
}
