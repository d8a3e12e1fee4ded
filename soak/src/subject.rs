//! What the producers feed: the dispatcher under test, or a bare bounded
//! channel (std, crossbeam or tokio) as a reference. Builds it with its consumer and drains it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use dispatcher::{
    Builder, Dispatcher, Limits as DispatcherLimits, Policy as DispatcherPolicy, Stats,
};
use hdrhistogram::sync::Recorder;
use loadgen::{
    Clock, ConsumerControl, ConsumerCounters, ConsumerTotals, DispatcherTarget, Event, Target,
};
use runlog::{Limits, Policy, ScenarioConfig, TargetKind};

use crate::sink::{FLUSH_TIMEOUT, FLUSH_WORKERS, Measured, SinkCounters};

/// The system under test with its consumer thread (or sink) running.
pub struct Subject {
    kind: Kind,
    /// Handed to the producers.
    pub target: Arc<dyn Target>,
    /// `None` in sink mode: the dispatcher's flush workers deliver.
    consumer: Option<JoinHandle<ConsumerTotals>>,
}

enum Kind {
    Dispatcher {
        dispatcher: Dispatcher<Event>,
        evicted: Arc<AtomicU64>,
        /// The heaviest event read back from the disk tier, as charged (0: none).
        heaviest: Arc<AtomicU64>,
        /// Sink mode: what the sink acknowledged.
        sink: Option<Arc<SinkCounters>>,
    },
    Channel,
}

/// How the end of a run went.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Drained {
    /// From closing admission until every accepted event reached the consumer.
    pub drain_us: u64,
    /// Accepted events handed back undelivered at the deadline.
    pub undelivered: u64,
    /// Evicted events the eviction hook received.
    pub evicted_seen: u64,
    /// Final dispatcher counters.
    pub stats: Option<Stats>,
    /// What the consumer received (or the sink acknowledged) in all.
    pub consumer: ConsumerTotals,
    /// Sink mode: what the sink gave up on, if anything.
    pub sink_warning: Option<String>,
    /// Sink mode: accepted events still inside a sink call when the deadline passed
    /// (neither delivered nor handed back: the broker stopped answering).
    pub in_flight: u64,
    /// Sink mode: events whose batch the sink gave up on.
    pub failed: u64,
    /// Sink mode: the last error the sink gave up with.
    pub sink_error: Option<String>,
    /// Bytes the dispatcher held when the drain began (0 for a reference target).
    pub buffered_bytes_at_start: u64,
    /// Events the dispatcher held (memory and disk tier) when the drain began.
    pub buffered_events_at_start: u64,
    /// The disk tier's last error, if it had one.
    pub spill_error: Option<String>,
    /// The heaviest event read back from the disk tier, as the dispatcher charged it (0:
    /// none was).
    pub heaviest_read_back: u64,
}

/// Why the subject could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SubjectError {
    /// The scenario's limits are not valid dispatcher limits.
    #[error("invalid dispatcher limits: {0}")]
    Config(#[from] dispatcher::ConfigError),
    /// A thread could not be started.
    #[error("cannot start the consumer thread: {0}")]
    Spawn(#[from] std::io::Error),
    /// The consumer thread panicked; its counts are lost.
    #[error("the consumer thread panicked")]
    ConsumerPanicked,
}

fn usize_of(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// The dispatcher limits a live [`Limits`] (plus the fixed jitter) describe.
pub fn dispatcher_limits(live: &Limits, interval_jitter_us: u64) -> DispatcherLimits {
    DispatcherLimits {
        interval: Duration::from_micros(live.interval_us),
        interval_jitter: Duration::from_micros(interval_jitter_us.min(live.interval_us)),
        max_buffered_bytes: usize_of(live.max_buffered_bytes),
        max_batch_bytes: live.max_batch_bytes.map(usize_of),
        max_batch_items: live.max_batch_items.map(usize_of),
    }
}

/// What the consumer thread is started with.
pub struct ConsumerParts {
    /// Live-settable simulated cost.
    pub control: Arc<ConsumerControl>,
    /// Where it counts what it receives.
    pub counters: Arc<ConsumerCounters>,
    /// The run's clock, for latency.
    pub clock: Clock,
    /// Where latency goes, if it is recorded.
    pub latency: Option<Recorder<u64>>,
    /// Sink mode: where the flush workers record latency, if it is recorded.
    pub sink_latency: Option<crate::sampler::SharedLatency>,
    /// Deliveries by event origin, for a tuner's probes.
    pub tally: Option<Arc<loadgen::OriginTally>>,
    /// A crash test's child run: the producers' events are tagged and what is accepted
    /// and received is written down (see [`crate::crash::witness`]).
    pub witness: Option<Arc<crate::crash::witness::Witness>>,
}

impl ConsumerParts {
    fn spawn<S>(self, source: S) -> std::io::Result<JoinHandle<ConsumerTotals>>
    where
        S: loadgen::BatchSource + Send + 'static,
    {
        loadgen::spawn_consumer(
            "consumer",
            source,
            self.control,
            self.counters,
            self.clock,
            self.latency,
        )
    }
}

fn dispatcher_policy(config: &ScenarioConfig) -> DispatcherPolicy {
    match config.policy {
        Policy::Reject => DispatcherPolicy::Reject,
        Policy::Block => DispatcherPolicy::Block {
            timeout: Duration::from_micros(config.block_timeout_us.max(1)),
        },
        Policy::DropOldest => DispatcherPolicy::DropOldest,
    }
}

/// The dispatcher the scenario describes, counting evictions into `evicted`, with the
/// disk tier `spill` if it has one (its events timed by `clock`, the heaviest read back
/// kept in `heaviest`).
fn builder(
    config: &ScenarioConfig,
    (evicted, heaviest): (&Arc<AtomicU64>, &Arc<AtomicU64>),
    spill: Option<crate::spill::Opened>,
    clock: Clock,
) -> Builder<Event> {
    let builder = plain_builder(config, evicted);
    match spill {
        Some(opened) => {
            let codec = crate::spill::EventCodec::new(clock)
                .weighing(weighing(config))
                .heaviest_into(Arc::clone(heaviest));
            builder.spill(opened, codec)
        }
        None => builder,
    }
}

fn plain_builder(config: &ScenarioConfig, evicted: &Arc<AtomicU64>) -> Builder<Event> {
    let seen = Arc::clone(evicted);
    Dispatcher::<Event>::builder()
        .limits(dispatcher_limits(
            &Limits::from_config(config),
            config.interval_jitter_us,
        ))
        .policy(dispatcher_policy(config))
        .weighing(weighing(config))
        .partitions(config.partitions as usize)
        .jitter_seed(config.seed)
        .name("soak")
        .on_evict(move |_event| {
            seen.fetch_add(1, Ordering::Relaxed);
        })
}

/// What the scenario's byte limits count, as the dispatcher spells it.
pub(crate) fn weighing(config: &ScenarioConfig) -> dispatcher::Weighing {
    match config.weighing {
        runlog::Weighing::Payload => dispatcher::Weighing::Payload,
        runlog::Weighing::Occupancy => dispatcher::Weighing::Occupancy,
    }
}

/// Sink mode: the dispatcher writes to `sink` on its flush workers; what
/// the sink acknowledged is counted and timed like a consumer's deliveries.
fn start_with_sink(
    config: &ScenarioConfig,
    sink: crate::sink::SharedSink,
    consumer: ConsumerParts,
    spill: Option<crate::spill::Opened>,
) -> Result<Subject, SubjectError> {
    let evicted = Arc::new(AtomicU64::new(0));
    let heaviest = Arc::new(AtomicU64::new(0));
    let counters = Arc::new(
        consumer
            .tally
            .clone()
            .map_or_else(SinkCounters::default, SinkCounters::with_tally),
    );
    let failures = Arc::clone(&counters);
    let measured = Measured::new(
        sink,
        Arc::clone(&counters),
        consumer.clock,
        consumer.sink_latency,
    );
    let dispatcher = builder(config, (&evicted, &heaviest), spill, consumer.clock)
        .flush_workers(FLUSH_WORKERS)
        .flush_timeout(FLUSH_TIMEOUT)
        .on_flush_error(move |failure, batch| {
            failures.failed(batch.len(), failure.error.to_string())
        })
        .build_with_sink(measured)?;
    Ok(Subject {
        target: Arc::new(DispatcherTarget::new(dispatcher.producer())),
        kind: Kind::Dispatcher {
            dispatcher,
            evicted,
            heaviest,
            sink: Some(counters),
        },
        consumer: None,
    })
}

impl Subject {
    /// Builds the target the scenario names and starts its consumer, or,
    /// given a `sink`, a dispatcher that writes to it instead; the dispatcher with the
    /// disk tier `spill`, if given.
    ///
    /// # Errors
    ///
    /// [`SubjectError`] if the limits are invalid or the thread cannot start.
    pub fn start(
        config: &ScenarioConfig,
        mean_payload_bytes: f64,
        consumer: ConsumerParts,
        sink: Option<crate::sink::SharedSink>,
        spill: Option<crate::spill::Opened>,
    ) -> Result<Subject, SubjectError> {
        if let Some(sink) = sink {
            return start_with_sink(config, sink, consumer, spill);
        }
        match config.target {
            TargetKind::Dispatcher => {
                let evicted = Arc::new(AtomicU64::new(0));
                let heaviest = Arc::new(AtomicU64::new(0));
                let (dispatcher, batches) =
                    builder(config, (&evicted, &heaviest), spill, consumer.clock).build()?;
                let mut target: Arc<dyn Target> =
                    Arc::new(DispatcherTarget::new(dispatcher.producer()));
                let consumer = match consumer.witness.clone() {
                    Some(witness) => {
                        target = witness.target(target)?;
                        consumer.spawn(witness.source(batches)?)?
                    }
                    None => consumer.spawn(batches)?,
                };
                Ok(Subject {
                    kind: Kind::Dispatcher {
                        dispatcher,
                        evicted,
                        heaviest,
                        sink: None,
                    },
                    target,
                    consumer: Some(consumer),
                })
            }
            TargetKind::Channel => {
                Self::reference(config, mean_payload_bytes, consumer, loadgen::channel)
            }
            TargetKind::Crossbeam => {
                Self::reference(config, mean_payload_bytes, consumer, loadgen::crossbeam)
            }
            TargetKind::Tokio => {
                Self::reference(config, mean_payload_bytes, consumer, loadgen::tokio_mpsc)
            }
        }
    }

    /// A reference channel made by `make(capacity, max_batch_items)`, holding the
    /// same bytes and cutting the same batches, counted in events of the mean size.
    fn reference<Q: loadgen::Queue>(
        config: &ScenarioConfig,
        mean_payload_bytes: f64,
        consumer: ConsumerParts,
        make: fn(usize, usize) -> (loadgen::ReferenceTarget<Q>, loadgen::ReferenceBatches<Q>),
    ) -> Result<Subject, SubjectError> {
        // What one event counts for under the scenario's weighing.
        let per_event = match config.weighing {
            runlog::Weighing::Payload => mean_payload_bytes,
            runlog::Weighing::Occupancy => mean_payload_bytes + std::mem::size_of::<Event>() as f64,
        }
        .max(1.0);
        let capacity = (config.max_buffered_bytes as f64 / per_event).max(1.0) as usize;
        let batch_items = match (config.max_batch_items, config.max_batch_bytes) {
            (Some(items), _) => usize_of(items),
            (None, Some(bytes)) => (bytes as f64 / per_event).max(1.0) as usize,
            (None, None) => capacity,
        };
        let (target, batches) = make(capacity, batch_items.max(1));
        let consumer = consumer.spawn(batches)?;
        Ok(Subject {
            kind: Kind::Channel,
            target: Arc::new(target),
            consumer: Some(consumer),
        })
    }

    /// The dispatcher's counters, if the subject is the dispatcher.
    pub fn stats(&self) -> Option<Stats> {
        match &self.kind {
            Kind::Dispatcher { dispatcher, .. } => Some(dispatcher.stats()),
            Kind::Channel => None,
        }
    }

    /// Sink mode: what the sink has acknowledged so far.
    pub fn sink_totals(&self) -> Option<ConsumerTotals> {
        match &self.kind {
            Kind::Dispatcher {
                sink: Some(counters),
                ..
            } => Some(counters.snapshot()),
            _ => None,
        }
    }

    /// Sink mode: the last error a write gave up with.
    pub fn sink_last_error(&self) -> Option<String> {
        match &self.kind {
            Kind::Dispatcher {
                sink: Some(counters),
                ..
            } => counters.last_error(),
            _ => None,
        }
    }

    /// Publishes the dispatcher's counters through the `metrics` facade now
    /// (they are also published as batches go out, at most every 100 ms).
    pub fn publish_metrics(&self) {
        if let Kind::Dispatcher { dispatcher, .. } = &self.kind {
            dispatcher.publish_metrics();
        }
    }

    /// Applies new live limits to the dispatcher (the channel has none).
    ///
    /// # Errors
    ///
    /// The dispatcher's [`dispatcher::ConfigError`]; the old limits stay.
    pub fn set_limits(
        &self,
        live: &Limits,
        interval_jitter_us: u64,
    ) -> Result<(), dispatcher::ConfigError> {
        match &self.kind {
            Kind::Dispatcher { dispatcher, .. } => {
                dispatcher.set_limits(dispatcher_limits(live, interval_jitter_us))
            }
            Kind::Channel => Ok(()),
        }
    }

    /// Closes admission, lets the consumer take everything until `deadline`, then ends
    /// whatever the consumer is doing (a stall, a long batch) and joins it: the drain never
    /// outlasts its deadline by more than a poll. What is left is counted: handed back
    /// undelivered, or (sink mode) inside a sink call at the deadline.
    ///
    /// # Errors
    ///
    /// [`SubjectError::ConsumerPanicked`] if the consumer thread panicked.
    pub fn drain(
        self,
        deadline: Instant,
        control: &ConsumerControl,
    ) -> Result<Drained, SubjectError> {
        let Subject {
            kind,
            target,
            consumer,
        } = self;
        drop(target);
        let began = Instant::now();
        let timeout = deadline.saturating_duration_since(began);
        let mut drained = Drained::default();
        let mut sink = None;
        // When the subject let go of its last event (the dispatcher's shutdown
        // returned; a reference target's source closed at `began`).
        let mut shut = began;
        if let Kind::Dispatcher {
            dispatcher,
            evicted,
            heaviest,
            sink: counters,
        } = kind
        {
            let held = dispatcher.stats();
            drained.buffered_bytes_at_start = held.buffered_bytes as u64;
            drained.buffered_events_at_start = held.buffered_items as u64 + held.spill.backlog;
            drained.spill_error = dispatcher.spill_error().map(|e| e.to_string());
            let (undelivered, report) = match dispatcher.shutdown(timeout) {
                Ok(report) => (0, report),
                Err(timeout) => {
                    let left = timeout.undelivered.len() as u64;
                    // Past the deadline already: their frees are not timed too.
                    loadgen::drop_elsewhere("undelivered", timeout.undelivered);
                    (left, *timeout.report)
                }
            };
            shut = Instant::now();
            if let Some(counters) = &counters {
                counters.close();
            }
            drained.undelivered = undelivered;
            drained.in_flight = report.stats.in_flight_items as u64;
            drained.failed = report.stats.failed;
            drained.stats = Some(report.stats);
            drained.evicted_seen = evicted.load(Ordering::Relaxed);
            // After shutdown: its worker, the one reader of the tier, has ended.
            drained.heaviest_read_back = heaviest.load(Ordering::Relaxed);
            sink = counters;
        }
        let mut end = None;
        drained.consumer = match (consumer, &sink) {
            (Some(consumer), _) => {
                let totals = join_by(consumer, deadline, control)?;
                // What a reference channel still held at the deadline (the dispatcher
                // handed its undelivered events back above: its source is empty).
                drained.undelivered += control.left();
                // The drain ends at the last delivery (or when the subject was done),
                // not when the join's polling noticed the consumer had finished.
                let delivered = control.last_delivery().filter(|at| *at > began);
                end = Some(delivered.map_or(shut, |at| at.max(shut)));
                totals
            }
            (None, Some(counters)) => counters.snapshot(),
            (None, None) => ConsumerTotals::default(),
        };
        let end = end.unwrap_or_else(Instant::now);
        drained.drain_us = end.saturating_duration_since(began).as_micros() as u64;
        drained.sink_error = sink.as_ref().and_then(|counters| counters.last_error());
        drained.sink_warning = sink.and_then(|counters| counters.failure_warning());
        Ok(drained)
    }
}

/// Waits for the consumer until `deadline`, then stops it (its sleeps, stalls included,
/// end, and it takes nothing more) and joins it: it returns within a poll, leaving what
/// its source still holds counted in [`ConsumerControl::left`].
fn join_by(
    consumer: JoinHandle<ConsumerTotals>,
    deadline: Instant,
    control: &ConsumerControl,
) -> Result<ConsumerTotals, SubjectError> {
    while !consumer.is_finished() && Instant::now() < deadline {
        std::thread::sleep(loadgen::RECORDER_POLL);
    }
    control.stop();
    consumer.join().map_err(|_| SubjectError::ConsumerPanicked)
}
