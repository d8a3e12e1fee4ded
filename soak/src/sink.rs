//! `--sink`: batches leave the process for a real broker instead of the
//! simulated consumer. `--sink nats://127.0.0.1:4222 --subject metronome.events`
//! runs the dispatcher in sink mode with the `dispatcher` crate's NATS
//! JetStream sink, wrapped in [`Measured`], which counts a batch delivered and
//! records its events' enqueue-to-delivery latency when the stream has
//! acknowledged all of it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{RecvTimeoutError, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use dispatcher::Batch;
use dispatcher::sink::nats::{NatsSink, NatsSinkError};
use dispatcher::sink::{FlushContext, Sink, SinkError};
use loadgen::{Clock, ConsumerCounters, ConsumerTotals, Event};
use runlog::ScenarioConfig;

use crate::sampler::SharedLatency;

/// The run record's `sink` for the simulated consumer.
pub const IN_PROCESS: &str = "in-process";

/// The stream `--stream` names unless told otherwise.
pub const DEFAULT_STREAM: &str = "METRONOME";

/// How many batches are written to the broker at once: while one worker
/// waits for its batch's acks, another publishes the next batch.
pub const FLUSH_WORKERS: usize = 2;

/// How long one write (publish a batch, await its acks) may take.
pub const FLUSH_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the stream remembers message ids to drop retried duplicates:
/// longer than every attempt of a batch with its backoffs (3 x 10 s + 2 s).
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(60);

/// A sink shared by the run's flush workers.
pub type SharedSink = Arc<dyn Sink<Event>>;

/// A sink of the caller's own, soaked like the NATS sink: `describe` names it in the run
/// record's `sink`.
#[derive(Clone)]
pub struct CustomSink {
    /// What the record calls it, e.g. `"s3 uploader"`.
    pub name: String,
    /// The sink.
    pub sink: SharedSink,
}

impl std::fmt::Debug for CustomSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CustomSink")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl PartialEq for CustomSink {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && Arc::ptr_eq(&self.sink, &other.sink)
    }
}

impl Eq for CustomSink {}

/// Where the run's batches go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SinkSpec {
    /// The simulated in-process consumer (or the channel reference).
    #[default]
    InProcess,
    /// A NATS JetStream subject.
    Nats {
        /// The server, e.g. `nats://127.0.0.1:4222`.
        url: String,
        /// The subject every event is published to.
        subject: String,
        /// The stream that stores the subject, created if missing.
        stream: String,
    },
    /// A sink given in code (a library user's, or a test's).
    Custom(CustomSink),
}

impl SinkSpec {
    /// What the run record's `sink` says.
    ///
    /// ```
    /// use soak::sink::SinkSpec;
    /// assert_eq!(SinkSpec::InProcess.describe(), "in-process");
    /// let nats = SinkSpec::Nats {
    ///     url: "nats://127.0.0.1:4222".into(),
    ///     subject: "metronome.events".into(),
    ///     stream: "METRONOME".into(),
    /// };
    /// assert_eq!(nats.describe(), "nats://127.0.0.1:4222 metronome.events");
    /// ```
    pub fn describe(&self) -> String {
        match self {
            SinkSpec::InProcess => IN_PROCESS.to_owned(),
            SinkSpec::Nats { url, subject, .. } => format!("{url} {subject}"),
            SinkSpec::Custom(custom) => custom.name.clone(),
        }
    }
}

/// How long connecting to the broker, its handshake and setting up the stream may take
/// in all before the run is refused.
pub const SETUP_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the sink could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The sink refused (no server, a bad subject, a refused stream).
    #[error(transparent)]
    Nats(#[from] NatsSinkError),
    /// Nothing answered like a NATS server in time.
    #[error(
        "no NATS handshake from {url} within {} s: something accepts connections there but does not speak NATS (or the server is stuck)",
        timeout.as_secs()
    )]
    Timeout {
        /// The server given.
        url: String,
        /// How long it was given.
        timeout: Duration,
    },
}

/// [`connect`] within `timeout` in all (TCP, handshake, stream set-up), on a helper thread:
/// a server that accepts connections but never answers cannot hang the start. A set-up that
/// gives up is left to end on its own (the process does not wait for it).
///
/// # Errors
///
/// [`SetupError::Nats`] as [`connect`]; [`SetupError::Timeout`] when it takes longer.
pub fn connect_within(
    spec: &SinkSpec,
    run_id: &str,
    timeout: Duration,
) -> Result<Option<SharedSink>, SetupError> {
    let url = match spec {
        SinkSpec::InProcess => return Ok(None),
        SinkSpec::Custom(custom) => return Ok(Some(Arc::clone(&custom.sink))),
        SinkSpec::Nats { url, .. } => url,
    };
    let (tx, rx) = sync_channel(1);
    let (spec, run_id) = (spec.clone(), run_id.to_owned());
    std::thread::Builder::new()
        .name("sink-setup".into())
        .spawn(move || {
            let _ = tx.send(connect(&spec, &run_id));
        })
        .map_err(NatsSinkError::Runtime)?;
    match rx.recv_timeout(timeout) {
        Ok(result) => Ok(result?.map(|sink| Arc::new(sink) as SharedSink)),
        Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
            Err(SetupError::Timeout {
                url: url.clone(),
                timeout,
            })
        }
    }
}

/// Connects to the broker `spec` names and makes sure its stream exists.
/// Every event is published as its payload, with the id
/// `<run_id>.<producer>.<seq>` (so retried duplicates are dropped by the
/// stream). `None` for the in-process consumer.
///
/// # Errors
///
/// The sink's [`NatsSinkError`]: no server, a bad subject, a refused stream.
pub fn connect(spec: &SinkSpec, run_id: &str) -> Result<Option<NatsSink<Event>>, NatsSinkError> {
    let SinkSpec::Nats {
        url,
        subject,
        stream,
    } = spec
    else {
        return Ok(None);
    };
    let run_id = run_id.to_owned();
    let sink = NatsSink::connect(url, subject, |event: &Event| {
        bytes::Bytes::copy_from_slice(&event.payload)
    })?
    .with_msg_id(move |event| format!("{run_id}.{}.{}", event.producer(), event.seq()));
    sink.ensure_stream(stream, DUPLICATE_WINDOW)?;
    Ok(Some(sink))
}

/// The scenario as run into `sink`: a real sink replaces the simulated
/// consumer, so its delay, cost, jitter and stalls are off (and the record
/// says so).
///
/// ```
/// use soak::sink::{SinkSpec, scenario_for};
/// let config = runlog::ScenarioConfig::default();
/// let nats = SinkSpec::Nats {
///     url: "nats://127.0.0.1:4222".into(),
///     subject: "s".into(),
///     stream: "S".into(),
/// };
/// assert_eq!(scenario_for(&config, &nats)?.consumer_delay_us, 0);
/// assert_eq!(scenario_for(&config, &SinkSpec::InProcess)?, config);
/// # Ok::<(), String>(())
/// ```
///
/// # Errors
///
/// A message naming `--sink` if the scenario drives the channel reference.
pub fn scenario_for(config: &ScenarioConfig, sink: &SinkSpec) -> Result<ScenarioConfig, String> {
    if *sink == SinkSpec::InProcess {
        return Ok(config.clone());
    }
    if config.target.is_reference() {
        return Err(format!(
            "--sink needs the dispatcher as the target, not --target {}",
            config.target
        ));
    }
    Ok(ScenarioConfig {
        consumer_delay_us: 0,
        consumer_cost_per_kib_us: 0,
        consumer_jitter_us: 0,
        consumer_stall_every_ms: None,
        consumer_stall_for_ms: 0,
        ..config.clone()
    })
}

/// Delivery counts kept by [`Measured`], read like the consumer's.
#[derive(Debug, Default)]
pub struct SinkCounters {
    acknowledged: ConsumerCounters,
    failed: AtomicU64,
    last_error: Mutex<Option<String>>,
    /// Set when the run's drain has ended: a write that completes later is not counted.
    closed: AtomicBool,
}

impl SinkCounters {
    /// Counters that also count what the sink acknowledged into `tally`, by event origin.
    pub fn with_tally(tally: Arc<loadgen::OriginTally>) -> Self {
        Self {
            acknowledged: ConsumerCounters::with_tally(tally),
            ..Self::default()
        }
    }

    /// What was acknowledged so far, in the consumer's terms.
    pub fn snapshot(&self) -> ConsumerTotals {
        self.acknowledged.snapshot()
    }

    /// Stops counting: what the sink acknowledges from now on comes after the run's drain
    /// (the record counts it as in flight at the deadline).
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// The last error a write gave up with, if any.
    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Counts a batch the sink gave up on (every attempt failed).
    pub fn failed(&self, events: usize, error: String) {
        self.failed.fetch_add(events as u64, Ordering::Relaxed);
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(error);
    }

    /// A warning for the run record if the sink gave up on any event.
    pub fn failure_warning(&self) -> Option<String> {
        let failed = self.failed.load(Ordering::Relaxed);
        let last = self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        (failed > 0).then(|| {
            format!(
                "the sink gave up on {failed} events; last error: {}",
                last.as_deref().unwrap_or("unknown")
            )
        })
    }

    fn count(&self, batch: &Batch<Event>) {
        self.acknowledged
            .count_batch(batch.len() as u64, batch.bytes() as u64, batch.reason());
    }
}

/// A sink that counts what `inner` acknowledged and records each event's
/// enqueue-to-acknowledgement latency into one histogram all flush workers share (the
/// sampler empties it at every sample, so no worker's latencies are left behind).
pub struct Measured<S> {
    inner: S,
    counters: Arc<SinkCounters>,
    clock: Clock,
    latency: Option<SharedLatency>,
}

impl<S> Measured<S> {
    /// Wraps `inner`; `latency` (if recorded) is where every worker records.
    pub fn new(
        inner: S,
        counters: Arc<SinkCounters>,
        clock: Clock,
        latency: Option<SharedLatency>,
    ) -> Self {
        Measured {
            inner,
            counters,
            clock,
            latency,
        }
    }
}

impl<S: Sink<Event>> Sink<Event> for Measured<S> {
    fn write(&self, batch: &Batch<Event>, ctx: &FlushContext) -> Result<(), SinkError> {
        self.inner.write(batch, ctx)?;
        if self.counters.is_closed() {
            return Ok(());
        }
        let now_ns = self.clock.now_ns();
        if let Some(latency) = &self.latency {
            let mut latency = latency.lock().unwrap_or_else(PoisonError::into_inner);
            for event in batch.iter() {
                latency.saturating_record(event.latency_us(now_ns));
            }
        }
        self.counters.count(batch);
        if let Some(tally) = self.counters.acknowledged.tally() {
            tally.count(now_ns, batch.iter());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dispatcher::Dispatcher;

    #[test]
    fn acknowledged_batches_are_counted_and_timed_failed_ones_are_not() {
        let fail_first = AtomicU64::new(1);
        let inner = dispatcher::sink::from_fn(move |_batch: &Batch<Event>, _ctx: &FlushContext| {
            if fail_first.fetch_sub(1, Ordering::Relaxed) == 1 {
                Err(std::io::Error::other("no ack"))
            } else {
                Ok(())
            }
        });
        let counters = Arc::new(SinkCounters::default());
        let latency = crate::sampler::shared_latency();
        let clock = Clock::new();
        let measured = Measured::new(inner, Arc::clone(&counters), clock, Some(latency.clone()));
        let dispatcher = Dispatcher::<Event>::builder()
            .max_batch_items(2)
            .retry(dispatcher::sink::Retry::new(
                2,
                Duration::from_millis(1),
                Duration::from_millis(1),
            ))
            .build_with_sink(measured)
            .unwrap();
        let producer = dispatcher.producer();
        for seq in 0..3 {
            producer
                .try_enqueue(Event::new(vec![0; 10], clock.now_ns(), 0, seq))
                .unwrap();
        }
        drop(producer);
        let report = dispatcher.shutdown(Duration::from_secs(5)).unwrap();
        let totals = counters.snapshot();
        assert_eq!((totals.delivered, totals.delivered_bytes), (3, 30));
        assert_eq!(totals.delivered, report.stats.delivered);
        assert_eq!(report.stats.retries, 1);
        assert_eq!(
            latency.lock().unwrap().len(),
            3,
            "one latency per acknowledged event"
        );
        assert!(counters.failure_warning().is_none());
    }
}
