//! What the producers feed: the dispatcher under test, or a bare bounded
//! channel as the reference. Builds it with its consumer and drains it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use dispatcher::{Dispatcher, Limits as DispatcherLimits, Policy as DispatcherPolicy, Stats};
use hdrhistogram::sync::Recorder;
use loadgen::{
    Clock, ConsumerControl, ConsumerCounters, ConsumerTotals, DispatcherTarget, Event, Target,
};
use runlog::{Limits, Policy, ScenarioConfig, TargetKind};

/// The system under test with its consumer thread running.
pub struct Subject {
    kind: Kind,
    /// Handed to the producers.
    pub target: Arc<dyn Target>,
    consumer: JoinHandle<ConsumerTotals>,
}

enum Kind {
    Dispatcher {
        dispatcher: Dispatcher<Event>,
        evicted: Arc<AtomicU64>,
    },
    Channel,
}

/// How the end of a run went.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Drained {
    /// From closing admission until every accepted event reached the consumer.
    pub drain_us: u64,
    /// Accepted events handed back undelivered at the deadline.
    pub undelivered: u64,
    /// Evicted events the eviction hook received.
    pub evicted_seen: u64,
    /// Final dispatcher counters.
    pub stats: Option<Stats>,
    /// What the consumer received in all.
    pub consumer: ConsumerTotals,
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

impl Subject {
    /// Builds the target the scenario names and starts its consumer.
    ///
    /// # Errors
    ///
    /// [`SubjectError`] if the limits are invalid or the thread cannot start.
    pub fn start(
        config: &ScenarioConfig,
        mean_payload_bytes: f64,
        consumer: ConsumerParts,
    ) -> Result<Subject, SubjectError> {
        match config.target {
            TargetKind::Dispatcher => {
                let evicted = Arc::new(AtomicU64::new(0));
                let seen = Arc::clone(&evicted);
                let (dispatcher, batches) = Dispatcher::<Event>::builder()
                    .limits(dispatcher_limits(
                        &Limits::from_config(config),
                        config.interval_jitter_us,
                    ))
                    .policy(dispatcher_policy(config))
                    .jitter_seed(config.seed)
                    .on_evict(move |_event| {
                        seen.fetch_add(1, Ordering::Relaxed);
                    })
                    .build()?;
                let target: Arc<dyn Target> =
                    Arc::new(DispatcherTarget::new(dispatcher.producer()));
                let consumer = consumer.spawn(batches)?;
                Ok(Subject {
                    kind: Kind::Dispatcher {
                        dispatcher,
                        evicted,
                    },
                    target,
                    consumer,
                })
            }
            TargetKind::Channel => {
                // The same bytes and batch sizes, counted in events of the mean size.
                let per_event = mean_payload_bytes.max(1.0);
                let capacity = (config.max_buffered_bytes as f64 / per_event).max(1.0) as usize;
                let batch_items = match (config.max_batch_items, config.max_batch_bytes) {
                    (Some(items), _) => usize_of(items),
                    (None, Some(bytes)) => (bytes as f64 / per_event).max(1.0) as usize,
                    (None, None) => capacity,
                };
                let (target, batches) = loadgen::channel(capacity, batch_items.max(1));
                let consumer = consumer.spawn(batches)?;
                Ok(Subject {
                    kind: Kind::Channel,
                    target: Arc::new(target),
                    consumer,
                })
            }
        }
    }

    /// The dispatcher's counters, if the subject is the dispatcher.
    pub fn stats(&self) -> Option<Stats> {
        match &self.kind {
            Kind::Dispatcher { dispatcher, .. } => Some(dispatcher.stats()),
            Kind::Channel => None,
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

    /// Closes admission once producers have stopped, lets the consumer take
    /// everything within `timeout`, and joins it.
    ///
    /// # Errors
    ///
    /// [`SubjectError::ConsumerPanicked`] if the consumer thread panicked.
    pub fn drain(self, timeout: Duration) -> Result<Drained, SubjectError> {
        let Subject {
            kind,
            target,
            consumer,
        } = self;
        drop(target);
        let began = Instant::now();
        let (undelivered, stats, evicted_seen) = match kind {
            Kind::Dispatcher {
                dispatcher,
                evicted,
            } => {
                let (undelivered, report) = match dispatcher.shutdown(timeout) {
                    Ok(report) => (0, report),
                    Err(timeout) => (timeout.undelivered.len() as u64, *timeout.report),
                };
                (undelivered, Some(report.stats), Some(evicted))
            }
            Kind::Channel => (0, None, None),
        };
        let consumer_totals = consumer
            .join()
            .map_err(|_| SubjectError::ConsumerPanicked)?;
        let drain_us = began.elapsed().as_micros() as u64;
        Ok(Drained {
            drain_us,
            undelivered,
            evicted_seen: evicted_seen.map_or(0, |e| e.load(Ordering::Relaxed)),
            stats,
            consumer: consumer_totals,
        })
    }
}
