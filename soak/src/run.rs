//! One soak run: producers -> subject -> consumer, sampled every interval,
//! drained, assessed and written to its run directory.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant, SystemTime};

use dispatcher::sink::nats::NatsSink;
use hdrhistogram::sync::SyncHistogram;
use loadgen::{
    Clock, ConsumerControl, ConsumerCounters, ConsumerSim, PayloadSource, ProducerConfig,
    ProducerControl, ProducerCounters, Stall,
};
use runlog::{
    BatchStats, Control, Drain, Event, EventKind, HlogWriter, LatencySummary, Limits, Memory,
    RunDir, RunResults, SamplesWriter, ScenarioConfig, Throughput,
};

use crate::assess::{Facts, assess};
use crate::environment;
use crate::exporter::{Exporter, RunLabels};
use crate::harness::{Applied, Harness};
use crate::progress::Progress;
use crate::sampler::{Readings, Sampler, latency_histogram};
use crate::sink::SinkSpec;
use crate::subject::{ConsumerParts, Drained, Subject, SubjectError};

/// Where and how to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Base directory for run directories.
    pub out: PathBuf,
    /// Serve Prometheus metrics here while the run lasts (see [`crate::exporter`]).
    pub metrics_addr: Option<SocketAddr>,
    /// Where batches go (see [`crate::sink`]).
    pub sink: SinkSpec,
}

impl RunOptions {
    /// Runs under `out` into the in-process consumer, with no metrics endpoint.
    ///
    /// ```
    /// let options = soak::run::RunOptions::new("target/soak");
    /// assert!(options.metrics_addr.is_none());
    /// ```
    pub fn new(out: impl Into<PathBuf>) -> Self {
        RunOptions {
            out: out.into(),
            metrics_addr: None,
            sink: SinkSpec::InProcess,
        }
    }
}

/// What a finished run leaves.
#[derive(Debug)]
pub struct RunOutcome {
    /// The run directory.
    pub dir: RunDir,
    /// What was written to `results.json`.
    pub results: RunResults,
}

/// Why a run could not start or complete.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Bad input found before the run started (exit code 2).
    #[error("{0}")]
    Input(String),
    /// The run directory or a record file could not be written.
    #[error(transparent)]
    Record(#[from] runlog::RunlogError),
    /// The subject or a thread failed.
    #[error(transparent)]
    Subject(#[from] SubjectError),
    /// A producer thread panicked.
    #[error("{0}")]
    Producer(String),
}

/// The run directory and the files streamed into it.
struct Record {
    dir: RunDir,
    samples: SamplesWriter,
    hlog: Option<HlogWriter>,
    events: Vec<Event>,
    /// Also publishes every sample, when `--metrics-addr` is given.
    exporter: Option<Exporter>,
}

impl Record {
    fn event(&mut self, at_s: f64, kind: EventKind) -> Result<(), RunError> {
        let event = Event::new(at_s, kind);
        self.samples.write_event(&event)?;
        self.events.push(event);
        Ok(())
    }
}

fn consumer_sim(config: &ScenarioConfig) -> ConsumerSim {
    ConsumerSim {
        delay_per_batch: Duration::from_micros(config.consumer_delay_us),
        cost_per_kib: Duration::from_micros(config.consumer_cost_per_kib_us),
        jitter: Duration::from_micros(config.consumer_jitter_us),
        stall: config.consumer_stall_every_ms.map(|every| Stall {
            every: Duration::from_millis(every),
            duration: Duration::from_millis(config.consumer_stall_for_ms),
        }),
        seed: config.seed,
    }
}

/// A run whose input is checked and whose directory exists, ready to start.
pub struct Prepared {
    config: ScenarioConfig,
    payload: PayloadSource,
    run_id: String,
    record: Record,
    latency: Option<SyncHistogram<u64>>,
    /// Connected before the run, so a missing broker fails early.
    sink: Option<NatsSink<loadgen::Event>>,
    sink_name: String,
}

/// Checks the input and creates the run directory, before anything runs.
///
/// # Errors
///
/// [`RunError::Input`] for a bad payload, an unwritable output directory, a
/// `--metrics-addr` that cannot be listened on, or a `--sink` that cannot be
/// reached or used; [`RunError::Record`] if the record files cannot be created.
pub fn prepare(config: &ScenarioConfig, options: &RunOptions) -> Result<Prepared, RunError> {
    let config = &crate::sink::scenario_for(config, &options.sink).map_err(RunError::Input)?;
    let bad_payload = |e: &dyn std::fmt::Display| RunError::Input(format!("--payload: {e}"));
    let spec = config.payload.parse().map_err(|e| bad_payload(&e))?;
    let payload = PayloadSource::load(&spec).map_err(|e| bad_payload(&e))?;
    let run_id = runlog::new_run_id();
    // Before the run directory exists, so a bad address leaves nothing behind.
    let exporter = options
        .metrics_addr
        .map(|addr| Exporter::start(addr, &RunLabels::for_run(&run_id, config)))
        .transpose()
        .map_err(|e| RunError::Input(e.to_string()))?;
    let sink = crate::sink::connect(&options.sink, &run_id)
        .map_err(|e| RunError::Input(format!("--sink: {e}")))?;
    let dir = RunDir::create(&options.out, &run_id)
        .map_err(|e| RunError::Input(format!("--out {}: {e}", options.out.display())))?;
    let mut record = Record {
        samples: SamplesWriter::create(&dir.samples_path())?,
        hlog: None,
        events: Vec::new(),
        exporter,
        dir,
    };
    if let Some(cpus) = config.cpus {
        let available = crate::affinity::allowed_cores()
            .map_err(|e| RunError::Input(e.to_string()))?
            .len();
        if cpus as usize > available {
            return Err(RunError::Input(format!(
                "--cpus {cpus} is out of range (allowed: 1..={available} on this machine)"
            )));
        }
    }
    let latency: Option<SyncHistogram<u64>> =
        config.record_latency.then(|| latency_histogram().into());
    if latency.is_some() {
        record.hlog = Some(HlogWriter::create(
            &record.dir.hlog_path(),
            SystemTime::now(),
        )?);
    }
    Ok(Prepared {
        config: config.clone(),
        payload,
        run_id,
        record,
        latency,
        sink,
        sink_name: options.sink.describe(),
    })
}

/// Prepares and runs the scenario: see [`prepare`] and [`Prepared::run`].
///
/// # Errors
///
/// As [`prepare`] and [`Prepared::run`].
pub fn run(
    config: &ScenarioConfig,
    options: &RunOptions,
    progress: &mut Progress,
    controls: Option<&Receiver<Control>>,
) -> Result<RunOutcome, RunError> {
    prepare(config, options)?.run(progress, controls)
}

impl Prepared {
    /// The run directory, already created (its samples.jsonl too, empty).
    pub fn dir(&self) -> &RunDir {
        &self.record.dir
    }

    /// The scenario.
    pub fn config(&self) -> &ScenarioConfig {
        &self.config
    }

    /// Where the metrics endpoint serves, if there is one.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.record.exporter.as_ref().map(Exporter::addr)
    }

    /// Runs the scenario, writing the run directory as it goes. Commands on
    /// `controls` (from a dashboard) are applied live and recorded as events.
    ///
    /// # Errors
    ///
    /// [`RunError::Record`] if the record cannot be written; other variants
    /// if a thread fails.
    pub fn run(
        self,
        progress: &mut Progress,
        controls: Option<&Receiver<Control>>,
    ) -> Result<RunOutcome, RunError> {
        let Prepared {
            config,
            payload,
            run_id,
            mut record,
            latency,
            sink,
            sink_name,
        } = self;
        let config = &config;
        let mean_payload = payload.mean_size_hint();
        let started_at = runlog::now_rfc3339();
        let environment = environment::collect(config.cpus);
        if let Some(cpus) = config.cpus {
            // Every thread the run starts from here inherits the mask.
            crate::affinity::pin_current_thread(cpus)
                .map_err(|e| RunError::Input(e.to_string()))?;
        }
        let start = Instant::now();
        let clock = Clock::starting_at(start);
        let consumer_control = Arc::new(ConsumerControl::new(consumer_sim(config)));
        let consumer_counters = Arc::new(ConsumerCounters::new());
        let subject = Subject::start(
            config,
            mean_payload,
            ConsumerParts {
                control: Arc::clone(&consumer_control),
                counters: Arc::clone(&consumer_counters),
                clock,
                latency: latency.as_ref().map(SyncHistogram::recorder),
            },
            sink,
        )?;
        let producer_control = Arc::new(ProducerControl::new(config.rate_per_sec));
        let producer_counters = Arc::new(ProducerCounters::new(config.producers as usize));
        let mut producer_config = ProducerConfig::new(config.producers, payload);
        producer_config.seed = config.seed;
        producer_config.backoff = Duration::from_micros(config.backoff_us);
        let producers = loadgen::spawn_producers(
            producer_config,
            Arc::clone(&subject.target),
            Arc::clone(&producer_counters),
            clock,
            Arc::clone(&producer_control),
        )
        .map_err(|e| RunError::Producer(e.to_string()))?;
        let mut harness = Harness {
            subject,
            producer_control,
            producer_counters,
            consumer_control,
            consumer_counters,
            live: Limits::from_config(config),
            interval_jitter_us: config.interval_jitter_us,
        };
        let mut sampler = Sampler::new(start, latency);
        record.event(0.0, EventKind::Phase { name: "run".into() })?;
        progress.started(config, &record.dir);

        let run_end = start + Duration::from_secs_f64(config.duration_s);
        sample_until(
            run_end,
            config,
            &mut harness,
            &mut sampler,
            &mut record,
            progress,
            controls,
        )?;
        let run_elapsed = start.elapsed().as_secs_f64();
        let at_run_end = sampler.last_readings().clone();

        record.event(
            run_elapsed,
            EventKind::Phase {
                name: "drain".into(),
            },
        )?;
        let shutdown_began = Instant::now();
        harness.producer_control.stop();
        producers
            .join()
            .map_err(|e| RunError::Producer(e.to_string()))?;
        harness.consumer_control.set_delay_per_batch(Duration::ZERO);
        harness.consumer_control.set_cost_per_kib(Duration::ZERO);
        let readings_before_drain = harness.readings();
        let drained = harness
            .subject
            .drain(Duration::from_millis(config.drain_timeout_ms))?;
        let shutdown_us = shutdown_began.elapsed().as_micros() as u64;
        if let Some(message) = drained.sink_warning.clone() {
            record.event(
                start.elapsed().as_secs_f64(),
                EventKind::Warning { message },
            )?;
        }

        let final_readings = Readings {
            producers: harness.producer_counters.snapshot(),
            consumer: drained.consumer,
            dispatcher: drained.stats.or(readings_before_drain.dispatcher),
            ..readings_before_drain
        };
        let (sample, hist) = sampler.sample(Instant::now(), final_readings.clone(), "drain");
        write_sample(&mut record, &sample, hist.as_ref())?;

        let results = compose(Composition {
            config,
            run_id,
            started_at,
            environment,
            sampler: &sampler,
            readings: &final_readings,
            drained: &drained,
            at_run_end: &at_run_end,
            run_elapsed,
            shutdown_us,
            events: record.events.clone(),
            sink: sink_name,
        });
        runlog::write_results(&record.dir.results_path(), &results)?;
        Ok(RunOutcome {
            dir: record.dir,
            results,
        })
    }
}

/// Samples every `sample_every_ms` until `end` (or a `Stop` command), plus a
/// final partial interval, applying live commands as they arrive.
fn sample_until(
    end: Instant,
    config: &ScenarioConfig,
    harness: &mut Harness,
    sampler: &mut Sampler,
    record: &mut Record,
    progress: &mut Progress,
    controls: Option<&Receiver<Control>>,
) -> Result<(), RunError> {
    let every = Duration::from_millis(config.sample_every_ms);
    let mut next = Instant::now() + every;
    let mut stopping = false;
    loop {
        let tick = next.min(end);
        stopping |= wait_for_tick(tick, harness, sampler, record, controls)?;
        if record.exporter.is_some() {
            harness.subject.publish_metrics();
        }
        let now = Instant::now();
        let (sample, hist) = sampler.sample(now, harness.readings(), "run");
        write_sample(record, &sample, hist.as_ref())?;
        progress.sample(&sample, config.duration_s);
        if stopping || now >= end {
            return Ok(());
        }
        next += every;
    }
}

/// Waits until `tick`, applying commands meanwhile. True if told to stop.
fn wait_for_tick(
    tick: Instant,
    harness: &mut Harness,
    sampler: &Sampler,
    record: &mut Record,
    controls: Option<&Receiver<Control>>,
) -> Result<bool, RunError> {
    loop {
        let now = Instant::now();
        if now >= tick {
            return Ok(false);
        }
        let Some(controls) = controls else {
            std::thread::sleep(tick - now);
            return Ok(false);
        };
        let control = match controls.recv_timeout(tick - now) {
            Ok(control) => control,
            Err(RecvTimeoutError::Timeout) => return Ok(false),
            Err(RecvTimeoutError::Disconnected) => {
                std::thread::sleep(tick.saturating_duration_since(Instant::now()));
                return Ok(false);
            }
        };
        let at_s = sampler.elapsed_s();
        match harness.apply(&control, "dashboard") {
            Applied::Stop => {
                record.event(
                    at_s,
                    EventKind::Phase {
                        name: "stop requested".into(),
                    },
                )?;
                return Ok(true);
            }
            Applied::Changed(kind) | Applied::Refused(kind) => record.event(at_s, kind)?,
        }
    }
}

fn write_sample(
    record: &mut Record,
    sample: &runlog::Sample,
    hist: Option<&hdrhistogram::Histogram<u64>>,
) -> Result<(), RunError> {
    record.samples.write_sample(sample)?;
    if let Some(exporter) = record.exporter.as_mut() {
        exporter.publish(sample);
    }
    if let (Some(hlog), Some(hist)) = (record.hlog.as_mut(), hist) {
        hlog.write_interval(hist, sample.t_s - sample.interval_s, sample.interval_s)?;
    }
    Ok(())
}

struct Composition<'a> {
    config: &'a ScenarioConfig,
    run_id: String,
    started_at: String,
    environment: runlog::Environment,
    sampler: &'a Sampler,
    readings: &'a Readings,
    drained: &'a Drained,
    /// Counters at the end of the run phase: rates are over the run, not the drain.
    at_run_end: &'a Readings,
    run_elapsed: f64,
    shutdown_us: u64,
    events: Vec<Event>,
    sink: String,
}

fn compose(c: Composition<'_>) -> RunResults {
    let totals = c.readings.totals();
    let stats = c.readings.dispatcher.unwrap_or_default();
    let consumer = &c.readings.consumer;
    let peaks = c.sampler.peaks;
    let run_s = c.run_elapsed.max(1e-9);
    let in_run = c.at_run_end;
    let throughput = Throughput {
        avg_delivered_per_sec: in_run.consumer.delivered as f64 / run_s,
        min_delivered_per_sec: peaks.min_delivered_per_sec.unwrap_or(0.0),
        max_delivered_per_sec: peaks.max_delivered_per_sec,
        avg_delivered_bytes_per_sec: in_run.consumer.delivered_bytes as f64 / run_s,
        avg_accepted_per_sec: in_run.producers.accepted as f64 / run_s,
    };
    let memory = Memory {
        peak_heap_bytes: peaks.heap_bytes,
        final_heap_bytes: c.sampler.last_memory.heap_allocated_bytes,
        peak_rss_bytes: peaks.rss_bytes,
        peak_buffered_bytes: stats.peak_buffered_bytes as u64,
        max_buffered_bytes: peaks.limit_bytes,
    };
    let latency_us = if c.config.record_latency {
        LatencySummary::from_histogram(c.sampler.run_latency())
    } else {
        LatencySummary::default()
    };
    let consumer_bound = consumer_bound_per_sec(c.config, consumer);
    let facts = Facts {
        attempted: totals.attempted,
        accepted_by_producers: totals.accepted,
        accepted: c
            .readings
            .dispatcher
            .map_or(totals.accepted, |s| s.accepted),
        consumed: consumer.delivered,
        delivered: c
            .readings
            .dispatcher
            .map_or(consumer.delivered, |s| s.delivered),
        dropped: stats.dropped,
        evicted_seen: c.drained.evicted_seen,
        rejected: totals.rejected,
        undelivered: c.drained.undelivered,
        latency_count: c
            .config
            .record_latency
            .then(|| c.sampler.run_latency().len()),
        max_buffered_bytes: peaks.limit_bytes,
        peak_buffered_bytes: stats.peak_buffered_bytes as u64,
        peak_heap_bytes: peaks.heap_bytes,
        heap_series: c.sampler.heap_series.clone(),
        duration_s: c.run_elapsed,
        avg_delivered_per_sec: throughput.avg_delivered_per_sec,
        consumer_bound_per_sec: consumer_bound,
        drain_us: c.drained.drain_us,
        drain_deadline_us: c.config.drain_timeout_ms * 1000,
    };
    let batches = consumer.batches;
    RunResults {
        run_id: c.run_id,
        started_at: c.started_at,
        environment: c.environment,
        config: c.config.clone(),
        totals,
        throughput,
        memory,
        latency_us,
        drain: Drain {
            drain_us: c.drained.drain_us,
            shutdown_us: c.shutdown_us,
            undelivered: c.drained.undelivered,
        },
        events: c.events,
        assessment: assess(&facts),
        batches: BatchStats {
            mean_batch_bytes: if batches == 0 {
                0.0
            } else {
                consumer.delivered_bytes as f64 / batches as f64
            },
            flush_reasons: c.readings.flush_reasons_total(),
        },
        duration_s: c.run_elapsed,
        sink: c.sink,
        ..RunResults::default()
    }
}

/// The most events per second the simulated consumer could take, if it has
/// a per-batch cost: full batches of `max_batch_bytes`, one per delay.
pub fn consumer_bound_per_sec(
    config: &ScenarioConfig,
    consumer: &loadgen::ConsumerTotals,
) -> Option<f64> {
    let delay_s = config.consumer_delay_us as f64 / 1e6;
    let batch_bytes = config.max_batch_bytes? as f64;
    if delay_s <= 0.0 || consumer.delivered == 0 {
        return None;
    }
    let mean_event = consumer.delivered_bytes as f64 / consumer.delivered as f64;
    Some(batch_bytes / delay_s / mean_event.max(1.0))
}
