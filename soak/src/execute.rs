//! Running a prepared soak: start the subject and the producers (the clock starts when
//! every producer is ready), sample until the end, a stop command or a signal, drain
//! within the deadline, and write the record.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::time::{Duration, Instant};

use hdrhistogram::sync::SyncHistogram;
use loadgen::{
    Clock, ConsumerControl, ConsumerCounters, ProducerConfig, ProducerControl, ProducerCounters,
    ProducerSet,
};
use runlog::{Control, EventKind, Interruption, Limits, ScenarioConfig};

use crate::assess::HeapModel;
use crate::calibrate::HeapCost;
use crate::compose::{Composition, compose};
use crate::environment;
use crate::harness::{Applied, Harness};
use crate::progress::Progress;
use crate::record::Record;
use crate::run::{Prepared, RunError, RunOutcome};
use crate::sampler::{Readings, Sampler, shared_latency};
use crate::signals::{Caught, Interrupt};
use crate::sink::FLUSH_WORKERS;
use crate::subject::{ConsumerParts, Drained, Subject};

/// The longest the sampler waits without looking for a signal.
const SIGNAL_POLL: Duration = Duration::from_millis(20);
/// How often start-up progress is shown while producers get ready.
const STARTUP_NOTE_EVERY: Duration = Duration::from_secs(1);

pub(crate) fn execute(
    prepared: Prepared,
    progress: &mut Progress,
    controls: Option<&Receiver<Control>>,
) -> Result<RunOutcome, RunError> {
    let Prepared {
        config,
        payload,
        mut record,
        latency,
        sink,
        spill,
        interrupt,
        probe,
        witness,
    } = prepared;
    let config = &config;
    let started_at = runlog::now_rfc3339();
    let environment = environment::collect(config.cpus);
    if let Some(cpus) = config.cpus {
        // Every thread the run starts from here inherits the mask.
        crate::affinity::pin_current_thread(cpus).map_err(|e| RunError::Input(e.to_string()))?;
    }
    let sink_latency = (sink.is_some() && config.record_latency).then(shared_latency);
    let recorder = latency.as_ref().map(SyncHistogram::recorder);
    let holders = if sink.is_some() { FLUSH_WORKERS } else { 1 };
    // Before anything else holds memory: what a buffered byte costs on this heap.
    let cost = crate::calibrate::calibrate(config, &payload);
    let load = (recorder, sink_latency.clone());
    let hooks = (probe.as_deref(), witness);
    let (mut harness, producers) = start_load(config, payload, (sink, spill), load, hooks)?;
    wait_ready(&producers, config.producers, progress);
    let unscheduled = producers.unscheduled();
    let heap_model = cost.map(|cost| heap_model(config, cost, holders));
    // The clock starts when every producer exists and is ready.
    let start = Instant::now();
    producers.release();
    let mut sampler = Sampler::new(start, latency).with_shared_latency(sink_latency);
    sampler.heap_model = heap_model;
    begin_snapshot(&record, (started_at, environment), start);
    record.event(0.0, EventKind::Phase { name: "run".into() });
    if let Some((count, why)) = unscheduled {
        let message = format!(
            "{count} of {} producers kept their scheduling class ({why}): \
             their wake-ups may preempt the consumer",
            config.producers
        );
        progress.note(&message);
        record.event(0.0, EventKind::Warning { message });
    }
    progress.started(config, &record.dir);
    Running {
        config,
        harness: &mut harness,
        sampler: &mut sampler,
        record: &mut record,
        progress,
        controls,
        interrupt: interrupt.as_deref(),
        sink_seen: SinkSeen::default(),
    }
    .sample_until(start + Duration::from_secs_f64(config.duration_s));
    let load = (harness, producers);
    finish(load, sampler, record, config, interrupt.as_deref())
}

/// What the heap may hold: read at the start line (every producer ready, nothing buffered),
/// plus the measured cost of the buffer and of what lives outside it.
fn heap_model(config: &ScenarioConfig, cost: HeapCost, batch_holders: usize) -> HeapModel {
    let limit = config.max_buffered_bytes;
    let batch = config.max_batch_bytes.unwrap_or(limit).min(limit) as f64;
    let in_hand = batch * cost.per_buffered_byte * batch_holders as f64;
    let producers = f64::from(config.producers) * cost.mean_event_bytes * cost.per_buffered_byte;
    let retained = cost.retained_per_partition * u64::from(config.partitions);
    HeapModel {
        baseline_bytes: crate::calibrate::allocated(),
        cost,
        outside_bytes: (in_hand + producers) as u64 + retained,
    }
}

/// The subject with its consumer (or sink) and the producers, held at the start line.
fn start_load(
    config: &ScenarioConfig,
    payload: loadgen::PayloadSource,
    (sink, spill): (
        Option<crate::sink::SharedSink>,
        Option<crate::spill::Opened>,
    ),
    (latency, sink_latency): (
        Option<hdrhistogram::sync::Recorder<u64>>,
        Option<crate::sampler::SharedLatency>,
    ),
    (probe, witness): (
        Option<&crate::hooks::ProbeHooks>,
        Option<Arc<crate::crash::witness::Witness>>,
    ),
) -> Result<(Harness, ProducerSet), RunError> {
    let clock = Clock::new();
    let tally = probe.map(|p| Arc::clone(&p.tally));
    let consumer = ConsumerParts {
        control: Arc::new(ConsumerControl::new(crate::run::consumer_sim(config))),
        counters: Arc::new(
            tally
                .clone()
                .map_or_else(ConsumerCounters::new, ConsumerCounters::with_tally),
        ),
        clock,
        latency,
        sink_latency,
        tally,
        witness,
    };
    let (consumer_control, consumer_counters) = (
        Arc::clone(&consumer.control),
        Arc::clone(&consumer.counters),
    );
    let subject = Subject::start(config, payload.mean_size_hint(), consumer, sink, spill)?;
    let (producers, producer_control, producer_counters) =
        start_producers(config, payload, &subject, clock)?;
    if let Some(probe) = probe {
        probe.attach(
            Arc::clone(&producer_control),
            Arc::clone(&producer_counters),
            clock,
        );
    }
    let harness = Harness {
        subject,
        producer_control,
        producer_counters,
        consumer_control,
        consumer_counters,
        live: Limits::from_config(config),
        interval_jitter_us: config.interval_jitter_us,
    };
    Ok((harness, producers))
}

/// The producers, held at the start line until released.
fn start_producers(
    config: &ScenarioConfig,
    payload: loadgen::PayloadSource,
    subject: &Subject,
    clock: Clock,
) -> Result<(ProducerSet, Arc<ProducerControl>, Arc<ProducerCounters>), RunError> {
    let control = Arc::new(ProducerControl::new(config.rate_per_sec));
    let counters = Arc::new(ProducerCounters::new(config.producers as usize));
    let mut producer_config = ProducerConfig::new(config.producers, payload);
    producer_config.seed = config.seed;
    producer_config.backoff = Duration::from_micros(config.backoff_us);
    producer_config.held = true;
    producer_config.scheduling = match config.producer_scheduling {
        runlog::ProducerScheduling::Batch => loadgen::Scheduling::Batch,
        runlog::ProducerScheduling::Normal => loadgen::Scheduling::Normal,
    };
    let producers = loadgen::spawn_producers(
        producer_config,
        Arc::clone(&subject.target),
        Arc::clone(&counters),
        clock,
        Arc::clone(&control),
    )
    .map_err(|e| RunError::Producer(e.to_string()))?;
    Ok((producers, control, counters))
}

/// Waits until every producer is ready, saying how far start-up got every second.
fn wait_ready(producers: &ProducerSet, count: u32, progress: &mut Progress) {
    let began = Instant::now();
    let mut next_note = began + STARTUP_NOTE_EVERY;
    while producers.ready() < count as usize {
        std::thread::sleep(Duration::from_millis(5));
        if Instant::now() >= next_note {
            progress.note(&format!(
                "starting producers: {} of {count} ready",
                producers.ready()
            ));
            next_note += STARTUP_NOTE_EVERY;
        }
    }
    progress.note(&format!(
        "{count} producers ready in {:.2} s; the clock starts now",
        began.elapsed().as_secs_f64()
    ));
}

/// Fills in the record's fixed parts (what a second signal writes follows them).
fn begin_snapshot(
    record: &Record,
    (started_at, environment): (String, runlog::Environment),
    start: Instant,
) {
    let mut snapshot = record
        .snapshot
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    snapshot.base.started_at = started_at;
    snapshot.base.environment = environment;
    snapshot.start = Some(start);
}

/// The sink's failure counters already reported as warning events.
#[derive(Debug, Default)]
struct SinkSeen {
    timeouts: u64,
    retries: u64,
    failed: u64,
}

/// The sampling phase's state.
struct Running<'a> {
    config: &'a ScenarioConfig,
    harness: &'a mut Harness,
    sampler: &'a mut Sampler,
    record: &'a mut Record,
    progress: &'a mut Progress,
    controls: Option<&'a Receiver<Control>>,
    interrupt: Option<&'a Interrupt>,
    sink_seen: SinkSeen,
}

impl Running<'_> {
    /// Samples every `sample_every_ms` until `end`, a `Stop` command or a signal, plus a
    /// final partial interval, applying live commands as they arrive.
    fn sample_until(&mut self, end: Instant) {
        let every = Duration::from_millis(self.config.sample_every_ms);
        let mut next = Instant::now() + every;
        let mut stopping = false;
        loop {
            let tick = next.min(end);
            stopping |= self.wait_for_tick(tick);
            if self.record.exporter.is_some() {
                self.harness.subject.publish_metrics();
            }
            let now = Instant::now();
            let (sample, hist) = self.sampler.sample(now, self.harness.readings(), "run");
            self.record.sample(&sample, hist.as_ref());
            self.record.snapshot_sample(&sample, self.sampler);
            self.progress.sample(&sample, self.config.duration_s);
            self.report_sink_trouble();
            if stopping || now >= end {
                return;
            }
            // A sample that took longer than the interval skips the ticks it missed
            // rather than sampling back to back.
            next = (next + every).max(Instant::now());
        }
    }

    /// Waits until `tick`, applying commands and watching for signals meanwhile. True if
    /// told to stop.
    fn wait_for_tick(&mut self, tick: Instant) -> bool {
        loop {
            if self.interrupted() {
                return true;
            }
            let now = Instant::now();
            // Commands are taken even when sampling runs late, so a busy run still obeys.
            let wait = tick.saturating_duration_since(now).min(SIGNAL_POLL);
            let Some(controls) = self.controls else {
                if wait.is_zero() {
                    return false;
                }
                std::thread::sleep(wait);
                continue;
            };
            let received = if wait.is_zero() {
                controls.try_recv().map_err(|e| match e {
                    TryRecvError::Empty => RecvTimeoutError::Timeout,
                    TryRecvError::Disconnected => RecvTimeoutError::Disconnected,
                })
            } else {
                controls.recv_timeout(wait)
            };
            let control = match received {
                Ok(control) => control,
                Err(RecvTimeoutError::Timeout) if wait.is_zero() => return false,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => {
                    self.controls = None;
                    continue;
                }
            };
            let at_s = self.sampler.elapsed_s();
            match self.harness.apply(&control, "dashboard") {
                Applied::Stop => {
                    let name = "stop requested".into();
                    self.record.event(at_s, EventKind::Phase { name });
                    return true;
                }
                Applied::Changed(kind) | Applied::Refused(kind) => self.record.event(at_s, kind),
            }
        }
    }

    /// Records the first signal as an `interrupted` event; true once one has arrived.
    fn interrupted(&mut self) -> bool {
        let Some(caught) = self.interrupt.and_then(Interrupt::caught) else {
            return false;
        };
        let at_s = caught
            .at
            .saturating_duration_since(self.sampler.start())
            .as_secs_f64();
        let kind = EventKind::Interrupted {
            signal: caught.name(),
            action: "drain".into(),
        };
        self.record.event(at_s, kind);
        true
    }

    /// Sink mode: a warning event whenever sink attempts time out, are retried or fail.
    fn report_sink_trouble(&mut self) {
        let Some(stats) = self.harness.subject.stats() else {
            return;
        };
        let seen = &mut self.sink_seen;
        let (timeouts, retries, failed) = (stats.sink_timeouts, stats.retries, stats.failed);
        if (timeouts, retries, failed) == (seen.timeouts, seen.retries, seen.failed) {
            return;
        }
        let last = self
            .harness
            .subject
            .sink_last_error()
            .map_or_else(String::new, |e| format!("; last error: {e}"));
        let message = format!(
            "sink: {} attempts timed out, {} retried, {} events given up since the last sample ({timeouts}, {retries}, {failed} in all){last}",
            timeouts - seen.timeouts,
            retries - seen.retries,
            failed - seen.failed,
        );
        (seen.timeouts, seen.retries, seen.failed) = (timeouts, retries, failed);
        let at_s = self.sampler.elapsed_s();
        self.record.event(at_s, EventKind::Warning { message });
    }
}

/// The drain, the final sample and the record.
fn finish(
    (harness, producers): (Harness, ProducerSet),
    mut sampler: Sampler,
    mut record: Record,
    config: &ScenarioConfig,
    interrupt: Option<&Interrupt>,
) -> Result<RunOutcome, RunError> {
    let run_elapsed = sampler.last_t_s();
    let at_run_end = sampler.last_readings().clone();
    let drain_phase = EventKind::Phase {
        name: "drain".into(),
    };
    record.event(sampler.elapsed_s(), drain_phase);
    let (drained, final_readings, shutdown_us) = drain(harness, producers, config)?;
    sink_warnings(&mut record, &drained, sampler.elapsed_s());
    let (sample, hist) = sampler.sample(Instant::now(), final_readings.clone(), "drain");
    record.sample(&sample, hist.as_ref());
    let base = record
        .snapshot
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .base
        .clone();
    // Composed and written while no signal can be acted on: a signal that arrives meanwhile
    // is either in the record or acted on once it is written.
    let write = |caught: Option<Caught>| {
        let interrupted = caught.map(|c| Interruption {
            signal: c.name(),
            at_s: c
                .at
                .saturating_duration_since(sampler.start())
                .as_secs_f64(),
            partial: false,
        });
        let results = compose(Composition {
            config,
            base,
            sampler: &sampler,
            readings: &final_readings,
            drained: &drained,
            at_run_end: &at_run_end,
            run_elapsed,
            shutdown_us,
            events: record.events.clone(),
            sink_error: drained.sink_error.clone(),
            interrupted,
        });
        let written = runlog::write_results(&record.dir.results_path(), &results);
        (results, written)
    };
    let (results, written) = match interrupt {
        Some(interrupt) => interrupt.while_writing(write),
        None => write(None),
    };
    let incomplete = match written {
        Ok(()) => record.broken.clone(),
        Err(err) => Some(format!("cannot write results.json: {err}")),
    };
    Ok(RunOutcome {
        dir: record.dir.clone(),
        results,
        incomplete,
    })
}

/// Sink mode: what the sink gave up on, and what it still held at the deadline.
fn sink_warnings(record: &mut Record, drained: &Drained, at_s: f64) {
    if let Some(message) = drained.sink_warning.clone() {
        record.event(at_s, EventKind::Warning { message });
    }
    if drained.in_flight > 0 {
        let stats = drained.stats.unwrap_or_default();
        let message = format!(
            "sink: {} events were still inside a sink call at the drain deadline ({} attempts timed out, {} retried in all)",
            drained.in_flight, stats.sink_timeouts, stats.retries
        );
        record.event(at_s, EventKind::Warning { message });
    }
}

/// Stops the producers and drains within the deadline, whatever the producers (blocked
/// in a long offer) or the consumer (stalled, in a long batch) are doing.
fn drain(
    harness: Harness,
    mut producers: ProducerSet,
    config: &ScenarioConfig,
) -> Result<(Drained, Readings, u64), RunError> {
    let began = Instant::now();
    let deadline = began + Duration::from_millis(config.drain_timeout_ms);
    harness.producer_control.stop();
    let producer_error = |e: loadgen::ProducerPanicked| RunError::Producer(e.to_string());
    producers.join_until(deadline).map_err(producer_error)?;
    harness.consumer_control.lift();
    let before = harness.readings();
    let Harness {
        subject,
        producer_counters,
        consumer_control,
        ..
    } = harness;
    let drained = subject.drain(deadline, &consumer_control)?;
    // Producers blocked in an offer were woken by the close: let them count it.
    let left = producers
        .join_until(Instant::now() + Duration::from_secs(1))
        .map_err(producer_error)?;
    if left > 0 {
        producers.detach();
    }
    let shutdown_us = began.elapsed().as_micros() as u64;
    let readings = Readings {
        producers: producer_counters.snapshot(),
        consumer: drained.consumer,
        dispatcher: drained.stats.or(before.dispatcher),
        ..before
    };
    Ok((drained, readings, shutdown_us))
}
