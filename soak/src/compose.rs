//! The end of a run: from the sampler, the final readings and the drain to the
//! `results.json` record and its assessment.

use runlog::{
    BatchStats, Drain, Event, Interruption, LatencySummary, Memory, RunResults, ScenarioConfig,
    SpillTotals, Throughput,
};

use crate::assess::{Facts, assess};
use crate::sampler::{Readings, Sampler};
use crate::subject::Drained;

/// Everything the record is composed from.
pub(crate) struct Composition<'a> {
    pub(crate) config: &'a ScenarioConfig,
    /// The record's fixed parts: id, start, environment, sink.
    pub(crate) base: RunResults,
    pub(crate) sampler: &'a Sampler,
    pub(crate) readings: &'a Readings,
    pub(crate) drained: &'a Drained,
    /// The last run-phase sample's readings: rates are over the run, not the drain.
    pub(crate) at_run_end: &'a Readings,
    /// The last run-phase sample's time: the run's length, measured where its counts were
    /// read (so the average is never below the lowest per-sample rate).
    pub(crate) run_elapsed: f64,
    pub(crate) shutdown_us: u64,
    pub(crate) events: Vec<Event>,
    /// Sink mode: the last error the sink gave up with.
    pub(crate) sink_error: Option<String>,
    pub(crate) interrupted: Option<Interruption>,
}

pub(crate) fn compose(c: Composition<'_>) -> RunResults {
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
    let model = c.sampler.heap_model;
    let memory = Memory {
        peak_heap_bytes: peaks.heap_bytes,
        final_heap_bytes: c.sampler.last_memory.heap_allocated_bytes,
        peak_rss_bytes: peaks.rss_bytes,
        peak_buffered_bytes: stats.peak_buffered_bytes as u64,
        max_buffered_bytes: peaks.limit_bytes,
        baseline_heap_bytes: model.map_or(0, |m| m.baseline_bytes),
        heap_per_buffered_byte: model.map_or(0.0, |m| m.cost.per_buffered_byte),
        heap_budget_bytes: crate::assess::tightest_budget(model.as_ref(), &c.sampler.memory_series),
    };
    let latency_us = if c.config.record_latency {
        LatencySummary::from_histogram(c.sampler.run_latency())
    } else {
        LatencySummary::default()
    };
    let facts = facts(&c, &throughput);
    let spill = facts.spill.clone();
    let batches = consumer.batches;
    let results = RunResults {
        config: c.config.clone(),
        totals,
        throughput,
        memory,
        latency_us,
        drain: Drain {
            drain_us: c.drained.drain_us,
            shutdown_us: c.shutdown_us,
            undelivered: c.drained.undelivered,
            in_flight: c.drained.in_flight,
            failed: c.drained.failed,
            buffered_bytes_at_start: c.drained.buffered_bytes_at_start,
            buffered_events_at_start: c.drained.buffered_events_at_start,
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
        interrupted: c.interrupted,
        spill,
        ..c.base
    };
    with_thresholds(results)
}

/// What the disk tier did, when the run had one: the final counters, the peak of the
/// samples (and of the end), the last error.
fn spill_totals(c: &Composition<'_>) -> Option<SpillTotals> {
    c.config.spill.as_ref()?;
    let s = c.readings.dispatcher.unwrap_or_default().spill;
    Some(SpillTotals {
        spilled: s.spilled,
        replayed: s.replayed,
        left_on_disk: s.backlog,
        recovered: s.recovered_events,
        recovered_bytes: s.recovered_bytes,
        torn: s.torn,
        fallbacks: s.fallbacks,
        errors: s.errors,
        undeliverable: s.undeliverable,
        peak_disk_bytes: c.sampler.peaks.disk_bytes.max(s.disk_bytes),
        max_disk_bytes: s.max_disk_bytes,
        last_error: c.drained.spill_error.clone(),
    })
}

/// The record with its thresholds judged (a failed one fails the run) and what the
/// verdict did not judge.
pub(crate) fn with_thresholds(mut results: RunResults) -> RunResults {
    let (judged, not_judged) = crate::thresholds::judge(&results);
    results.assessment = results.assessment.with_thresholds(judged, not_judged);
    results
}

fn facts(c: &Composition<'_>, throughput: &Throughput) -> Facts {
    let totals = c.readings.totals();
    let stats = c.readings.dispatcher.unwrap_or_default();
    let consumer = &c.readings.consumer;
    let peaks = c.sampler.peaks;
    let in_process = c.base.sink == crate::sink::IN_PROCESS;
    Facts {
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
        heaviest_read_back: c.drained.heaviest_read_back,
        peak_heap_bytes: peaks.heap_bytes,
        heap_model: c.sampler.heap_model,
        duration_s: c.run_elapsed,
        avg_delivered_per_sec: throughput.avg_delivered_per_sec,
        consumer_bound_per_sec: consumer_bound_per_sec(c.config, consumer),
        drain_us: c.drained.drain_us,
        drain_deadline_us: c.config.drain_timeout_ms * 1000,
        failed: c.drained.failed,
        in_flight: c.drained.in_flight,
        sink: (!in_process).then(|| c.base.sink.clone()),
        sink_error: c.sink_error.clone(),
        memory_series: c.sampler.memory_series.clone(),
        interrupted: c.interrupted.as_ref().map(|i| (i.signal.clone(), i.at_s)),
        planned_s: c.config.duration_s,
        spill: spill_totals(c),
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
