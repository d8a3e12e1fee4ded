//! The run record while a run goes: the run directory, the files streamed into it, the
//! events so far, and what a second signal would write (the snapshot).
//!
//! Writing the record never stops a run: the first write that fails (a full disk, a
//! directory removed) is kept in [`Record::broken`], said once on stderr, and the run goes
//! on to its verdict; the exit code then says the record is incomplete.

use std::sync::{Arc, Mutex, PoisonError};

use hdrhistogram::Histogram;
use runlog::{
    Assessment, Drain, Event, EventKind, HlogWriter, Interruption, LatencySummary, Memory, RunDir,
    RunResults, Sample, SamplesWriter, Section, Status, Throughput,
};

use crate::exporter::Exporter;
use crate::lock::RunLock;
use crate::sampler::{Peaks, Sampler};
use crate::signals::Caught;

/// The run directory and the files streamed into it.
pub(crate) struct Record {
    pub(crate) dir: RunDir,
    pub(crate) samples: Option<SamplesWriter>,
    pub(crate) hlog: Option<HlogWriter>,
    pub(crate) events: Vec<Event>,
    /// Also publishes every sample, when `--metrics-addr` is given.
    pub(crate) exporter: Option<Exporter>,
    /// The first record write that failed.
    pub(crate) broken: Option<String>,
    /// What a second signal writes.
    pub(crate) snapshot: Arc<Mutex<Snapshot>>,
    /// Held while the run writes the directory (see [`crate::lock`]).
    pub(crate) _lock: Option<RunLock>,
}

impl Record {
    /// Appends an event to `samples.jsonl` and the record.
    pub(crate) fn event(&mut self, at_s: f64, kind: EventKind) {
        if let EventKind::Phase { name } = &kind {
            tracing::debug!("phase: {name} at {}", runlog::human::seconds(at_s));
        }
        let event = Event::new(at_s, kind);
        if let Some(samples) = self.samples.as_mut() {
            if let Err(err) = samples.write_event(&event) {
                self.broke(err.to_string());
            }
        }
        self.snapshot().events.push(event.clone());
        self.events.push(event);
    }

    /// Appends a sample (and its latency interval) and publishes it.
    pub(crate) fn sample(&mut self, sample: &Sample, hist: Option<&Histogram<u64>>) {
        if let Some(samples) = self.samples.as_mut() {
            if let Err(err) = samples.write_sample(sample) {
                self.broke(err.to_string());
            }
        }
        if let Some(exporter) = self.exporter.as_mut() {
            exporter.publish(sample, hist);
        }
        if let (Some(hlog), Some(hist)) = (self.hlog.as_mut(), hist) {
            if let Err(err) =
                hlog.write_interval(hist, sample.t_s - sample.interval_s, sample.interval_s)
            {
                self.broke(err.to_string());
            }
        }
    }

    /// Keeps what a second signal would write up to date with the last sample.
    pub(crate) fn snapshot_sample(&self, sample: &Sample, sampler: &Sampler) {
        let mut snapshot = self.snapshot();
        snapshot.last = Some(sample.clone());
        snapshot.peaks = sampler.peaks;
        snapshot.latency = LatencySummary::from_histogram(sampler.run_latency());
    }

    fn snapshot(&self) -> std::sync::MutexGuard<'_, Snapshot> {
        self.snapshot.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn broke(&mut self, why: String) {
        if self.broken.is_none() {
            crate::errln!(
                "{}: warning: the run record is incomplete: {why}",
                crate::program::name()
            );
            self.broken = Some(why);
            // Stop writing the broken files; the run goes on to its verdict.
            self.samples = None;
            self.hlog = None;
        }
    }
}

/// What the run knew at its last sample: a second signal writes it as a partial record.
#[derive(Debug, Clone, Default)]
pub(crate) struct Snapshot {
    /// The record's fixed parts (id, start, environment, scenario, sink).
    pub(crate) base: RunResults,
    pub(crate) last: Option<Sample>,
    pub(crate) peaks: Peaks,
    pub(crate) latency: LatencySummary,
    pub(crate) events: Vec<Event>,
    /// When the run started.
    pub(crate) start: Option<std::time::Instant>,
}

impl Snapshot {
    /// The partial record: figures as of the last sample, no drain (what was accepted and
    /// neither delivered nor evicted is counted as undelivered, so the totals balance), an
    /// assessment that says it is partial, and `interrupted.partial` set.
    pub(crate) fn partial(&self, first: &Caught, second: &str) -> RunResults {
        let since = |at: std::time::Instant| {
            self.start
                .map_or(0.0, |s| at.saturating_duration_since(s).as_secs_f64())
        };
        let (at_s, now_s) = (since(first.at), since(std::time::Instant::now()));
        let last = self.last.clone().unwrap_or_default();
        let t = last.t_s.max(1e-9);
        let mut events = self.events.clone();
        events.push(Event::new(
            now_s,
            EventKind::Interrupted {
                signal: second.to_owned(),
                action: "exit".into(),
            },
        ));
        let cut = format!(
            "partial record: a second signal ({second}) stopped the run at once at {now_s:.1} s \
             (the first, {}, at {at_s:.1} s); figures are as of the last sample at {:.1} s, \
             and the drain did not finish",
            first.name(),
            last.t_s
        );
        // Every accepted event is accounted for: what was neither delivered nor evicted at
        // the last sample (buffered, or inside the consumer or a sink call) is left
        // undelivered when the process leaves.
        // With a disk tier, what was on disk stays there for the next start.
        let totals = last.totals;
        let on_disk = last.spill.map_or(0, |s| s.backlog_events);
        let left = totals
            .accepted
            .saturating_sub(totals.delivered)
            .saturating_sub(totals.dropped)
            .saturating_sub(on_disk);
        let mut cut = format!(
            "{cut}; {} accepted events were neither delivered nor evicted by then and are counted as undelivered",
            runlog::human::grouped(left)
        );
        if last.spill.is_some() {
            cut.push_str(&format!(
                ", {} were on disk (kept there for the next start)",
                runlog::human::grouped(on_disk)
            ));
        }
        let spill = last.spill.map(|s| runlog::SpillTotals {
            spilled: s.spilled_total,
            replayed: s.replayed_total,
            left_on_disk: s.backlog_events,
            fallbacks: s.fallbacks_total,
            errors: s.errors_total,
            peak_disk_bytes: self.peaks.disk_bytes.max(s.disk_bytes),
            max_disk_bytes: s.max_disk_bytes,
            ..runlog::SpillTotals::default()
        });
        let unknown = Section::new(Status::Fail, [cut.clone()]);
        crate::compose::with_thresholds(RunResults {
            totals: last.totals,
            throughput: Throughput {
                avg_delivered_per_sec: last.totals.delivered as f64 / t,
                min_delivered_per_sec: self.peaks.min_delivered_per_sec.unwrap_or(0.0),
                max_delivered_per_sec: self.peaks.max_delivered_per_sec,
                avg_delivered_bytes_per_sec: 0.0,
                avg_accepted_per_sec: last.totals.accepted as f64 / t,
            },
            memory: Memory {
                peak_heap_bytes: self.peaks.heap_bytes,
                final_heap_bytes: last.heap_allocated_bytes,
                peak_rss_bytes: self.peaks.rss_bytes,
                peak_buffered_bytes: last.peak_buffered_bytes,
                max_buffered_bytes: self.peaks.limit_bytes,
                ..Memory::default()
            },
            latency_us: self.latency,
            drain: Drain {
                undelivered: left,
                ..Drain::default()
            },
            events,
            assessment: Assessment::new(
                unknown.clone(),
                Section::new(Status::Warn, [cut]),
                Section::new(Status::Warn, ["not assessed: partial record"]),
                unknown,
            ),
            duration_s: last.t_s,
            interrupted: Some(Interruption {
                signal: first.name(),
                at_s,
                partial: true,
            }),
            spill,
            ..self.base.clone()
        })
    }
}
