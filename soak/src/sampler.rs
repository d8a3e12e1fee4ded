//! Turns cumulative counters into one [`Sample`] per interval: rates, gauges,
//! memory and this interval's latency percentiles. Also keeps the run-wide
//! figures the results need (peaks, the whole-run latency histogram).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use dispatcher::{FlushReason, Stats};
use hdrhistogram::Histogram;
use hdrhistogram::sync::SyncHistogram;
use loadgen::{ConsumerTotals, ProducerTotals};
use runlog::{FlushReasonCounts, LatencySummary, Limits, Sample, SpillSample, Totals};

use crate::memory::{MemoryProbe, MemoryReading};

/// Highest latency tracked, microseconds (one hour); higher values saturate.
pub const MAX_LATENCY_US: u64 = 3_600_000_000;

/// A latency histogram with the bounds every recorder and merge uses.
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("static histogram bounds are valid")
}

/// Counters read at one instant.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Readings {
    /// What the producers offered and saw accepted.
    pub producers: ProducerTotals,
    /// What the consumer received.
    pub consumer: ConsumerTotals,
    /// The dispatcher's own counters (none for the channel reference).
    pub dispatcher: Option<Stats>,
    /// The limits in force.
    pub limits: Limits,
    /// Whether producers are paused.
    pub paused: bool,
}

impl Readings {
    /// Cumulative totals in the run record's terms.
    pub fn totals(&self) -> Totals {
        let p = &self.producers;
        Totals {
            attempted: p.attempted,
            accepted: p.accepted,
            rejected: p.rejected + p.closed,
            dropped: self.dispatcher.map_or(0, |s| s.dropped),
            delivered: self.consumer.delivered,
            batches: self.consumer.batches,
        }
    }

    /// Batches received so far, by flush reason.
    pub fn flush_reasons_total(&self) -> FlushReasonCounts {
        let c = &self.consumer;
        FlushReasonCounts {
            interval: c.batches_for(FlushReason::Interval),
            bytes: c.batches_for(FlushReason::Bytes),
            items: c.batches_for(FlushReason::Items),
            manual: c.batches_for(FlushReason::Manual),
            drain: c.batches_for(FlushReason::Drain),
        }
    }
}

/// Run-wide extremes, updated with every sample.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Peaks {
    /// Highest jemalloc `stats.allocated`.
    pub heap_bytes: u64,
    /// Highest RSS.
    pub rss_bytes: u64,
    /// Highest `max_buffered_bytes` in force.
    pub limit_bytes: u64,
    /// Lowest and highest per-interval delivered rate in the run phase.
    pub min_delivered_per_sec: Option<f64>,
    /// See `min_delivered_per_sec`.
    pub max_delivered_per_sec: f64,
    /// Highest bytes the disk tier's files took at a sample.
    pub disk_bytes: u64,
}

/// Where a sink's flush workers record latency: one histogram they share, emptied by the
/// sampler at every sample (so every worker's latencies are merged, whether it is busy,
/// idle or stuck in a call).
pub type SharedLatency = Arc<Mutex<Histogram<u64>>>;

/// A new, empty [`SharedLatency`].
pub fn shared_latency() -> SharedLatency {
    Arc::new(Mutex::new(latency_histogram()))
}

/// Memory at one run-phase sample, with the buffered limit in force then.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct MemoryPoint {
    /// Seconds since the start.
    pub t_s: f64,
    /// jemalloc `stats.allocated`.
    pub heap_bytes: u64,
    /// Buffered bytes at the sample.
    pub buffered_bytes: u64,
    /// The limit in force over the interval: the higher of the limits at this sample and
    /// the previous one (a lowered limit takes a moment to be met).
    pub limit_bytes: u64,
    /// Which stretch of unchanged limits (and pause) the sample belongs to: it goes up by
    /// one at every change, so the heap trend is fitted within stretches only.
    pub stretch: u32,
}

/// Produces samples; owned by the one sampler thread.
pub struct Sampler {
    /// The sink's shared latency histogram, in sink mode.
    shared: Option<SharedLatency>,
    /// The buffered limit at the previous run-phase sample.
    last_limit: Option<u64>,
    /// The limits and pause of the previous run-phase sample, and its stretch.
    last_stretch: Option<(Limits, bool, u32)>,
    /// Memory per run-phase sample, judged against the limit in force then.
    pub memory_series: Vec<MemoryPoint>,
    start: Instant,
    last_at: Instant,
    last: Readings,
    memory: MemoryProbe,
    latency: Option<SyncHistogram<u64>>,
    run_latency: Histogram<u64>,
    /// Run-wide extremes so far.
    pub peaks: Peaks,
    /// The last memory reading.
    pub last_memory: MemoryReading,
    /// What the heap may hold, measured before the clock started.
    pub heap_model: Option<crate::assess::HeapModel>,
}

impl Sampler {
    /// A sampler whose run started at `start`; `latency` is the histogram the
    /// consumer's recorder feeds, if latency is recorded.
    pub fn new(start: Instant, latency: Option<SyncHistogram<u64>>) -> Self {
        Sampler {
            shared: None,
            last_limit: None,
            last_stretch: None,
            memory_series: Vec::new(),
            start,
            last_at: start,
            last: Readings::default(),
            memory: MemoryProbe::new(),
            latency,
            run_latency: latency_histogram(),
            peaks: Peaks::default(),
            last_memory: MemoryReading::default(),
            heap_model: None,
        }
    }

    /// Also collects the latencies a sink's flush workers record into `shared`.
    #[must_use]
    pub fn with_shared_latency(mut self, shared: Option<SharedLatency>) -> Self {
        self.shared = shared;
        self
    }

    /// The instant the run started.
    pub fn start(&self) -> Instant {
        self.start
    }

    /// Takes one sample from `now`'s readings. Returns it with this
    /// interval's latency histogram (for the interval log), if recorded.
    pub fn sample(
        &mut self,
        now: Instant,
        readings: Readings,
        phase: &str,
    ) -> (Sample, Option<Histogram<u64>>) {
        let interval_s = now.duration_since(self.last_at).as_secs_f64().max(1e-9);
        let t_s = now.duration_since(self.start).as_secs_f64();
        let (totals, prev) = (readings.totals(), self.last.totals());
        let rate = |cur: u64, old: u64| cur.saturating_sub(old) as f64 / interval_s;
        let delivered_bytes =
            readings.consumer.delivered_bytes - self.last.consumer.delivered_bytes;
        let batches = totals.batches - prev.batches;
        let (latency_us, interval_hist) = self.take_latency();
        let memory = self.memory.read();
        let stats = readings.dispatcher.unwrap_or_default();
        let buffered_items = readings
            .dispatcher
            .map_or(totals.accepted.saturating_sub(totals.delivered), |s| {
                s.buffered_items as u64
            });
        let sample = Sample {
            t_s,
            interval_s,
            attempted_per_sec: rate(totals.attempted, prev.attempted),
            accepted_per_sec: rate(totals.accepted, prev.accepted),
            rejected_per_sec: rate(totals.rejected, prev.rejected),
            dropped_per_sec: rate(totals.dropped, prev.dropped),
            delivered_per_sec: rate(totals.delivered, prev.delivered),
            batches_per_sec: rate(totals.batches, prev.batches),
            delivered_bytes_per_sec: delivered_bytes as f64 / interval_s,
            totals,
            buffered_bytes: stats.buffered_bytes as u64,
            buffered_items,
            peak_buffered_bytes: stats.peak_buffered_bytes as u64,
            heap_allocated_bytes: memory.heap_allocated_bytes,
            heap_resident_bytes: memory.heap_resident_bytes,
            rss_bytes: memory.rss_bytes,
            cpu_percent: memory.cpu_percent,
            latency_us,
            mean_batch_bytes: if batches == 0 {
                0.0
            } else {
                delivered_bytes as f64 / batches as f64
            },
            flush_reasons: diff_reasons(
                readings.flush_reasons_total(),
                self.last.flush_reasons_total(),
            ),
            limits: readings.limits.clone(),
            paused: readings.paused,
            phase: phase.to_string(),
            spill: spill_sample(
                readings.dispatcher.as_ref(),
                self.last.dispatcher.as_ref(),
                interval_s,
            ),
        };
        self.note_peaks(&sample, phase);
        self.last = readings;
        self.last_at = now;
        self.last_memory = memory;
        (sample, interval_hist)
    }

    fn take_latency(&mut self) -> (LatencySummary, Option<Histogram<u64>>) {
        let Some(sync) = self.latency.as_mut() else {
            return (LatencySummary::default(), None);
        };
        sync.refresh_timeout(std::time::Duration::from_millis(50));
        let mut interval: Histogram<u64> = (**sync).clone();
        sync.reset();
        if let Some(shared) = &self.shared {
            let mut shared = shared.lock().unwrap_or_else(PoisonError::into_inner);
            let _ = interval.add(&*shared);
            shared.reset();
        }
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.run_latency.add(&interval);
        (LatencySummary::from_histogram(&interval), Some(interval))
    }

    fn note_peaks(&mut self, s: &Sample, phase: &str) {
        let p = &mut self.peaks;
        p.heap_bytes = p.heap_bytes.max(s.heap_allocated_bytes);
        p.rss_bytes = p.rss_bytes.max(s.rss_bytes);
        p.limit_bytes = p.limit_bytes.max(s.limits.max_buffered_bytes);
        if let Some(spill) = &s.spill {
            p.disk_bytes = p.disk_bytes.max(spill.disk_bytes);
        }
        if phase == "run" {
            let limit = s.limits.max_buffered_bytes;
            let stretch = match &self.last_stretch {
                Some((limits, paused, n)) if *limits == s.limits && *paused == s.paused => *n,
                Some((_, _, n)) => n + 1,
                None => 0,
            };
            self.last_stretch = Some((s.limits.clone(), s.paused, stretch));
            self.memory_series.push(MemoryPoint {
                t_s: s.t_s,
                heap_bytes: s.heap_allocated_bytes,
                buffered_bytes: s.buffered_bytes,
                limit_bytes: limit.max(self.last_limit.unwrap_or(limit)),
                stretch,
            });
            self.last_limit = Some(limit);
            p.max_delivered_per_sec = p.max_delivered_per_sec.max(s.delivered_per_sec);
            let min = p.min_delivered_per_sec.get_or_insert(s.delivered_per_sec);
            *min = min.min(s.delivered_per_sec);
        }
    }

    /// Seconds since the run started.
    pub fn elapsed_s(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    /// Enqueue-to-delivery latency over every interval so far.
    pub fn run_latency(&self) -> &Histogram<u64> {
        &self.run_latency
    }

    /// The readings of the last sample.
    pub fn last_readings(&self) -> &Readings {
        &self.last
    }

    /// Seconds from the start to the last sample: the time the last readings cover.
    pub fn last_t_s(&self) -> f64 {
        self.last_at.duration_since(self.start).as_secs_f64()
    }
}

/// The disk tier's readings over an interval of `interval_s` from `prev` to `now`, when the
/// dispatcher has a tier (its budget is never zero).
fn spill_sample(now: Option<&Stats>, prev: Option<&Stats>, interval_s: f64) -> Option<SpillSample> {
    let now = now.map(|s| s.spill).filter(|s| s.max_disk_bytes > 0)?;
    let prev = prev.map(|s| s.spill).unwrap_or_default();
    let rate = |cur: u64, old: u64| cur.saturating_sub(old) as f64 / interval_s;
    Some(SpillSample {
        spilled_per_sec: rate(now.spilled, prev.spilled),
        replayed_per_sec: rate(now.replayed, prev.replayed),
        spilled_total: now.spilled,
        replayed_total: now.replayed,
        backlog_events: now.backlog,
        disk_bytes: now.disk_bytes,
        max_disk_bytes: now.max_disk_bytes,
        fallbacks_total: now.fallbacks,
        errors_total: now.errors,
    })
}

fn diff_reasons(cur: FlushReasonCounts, old: FlushReasonCounts) -> FlushReasonCounts {
    FlushReasonCounts {
        interval: cur.interval - old.interval,
        bytes: cur.bytes - old.bytes,
        items: cur.items - old.items,
        manual: cur.manual - old.manual,
        drain: cur.drain - old.drain,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn readings(
        attempted: u64,
        accepted: u64,
        delivered: u64,
        bytes: u64,
        batches: u64,
    ) -> Readings {
        Readings {
            producers: ProducerTotals {
                attempted,
                accepted,
                rejected: attempted - accepted,
                closed: 0,
            },
            consumer: ConsumerTotals {
                delivered,
                delivered_bytes: bytes,
                batches,
                ..ConsumerTotals::default()
            },
            limits: Limits {
                max_buffered_bytes: 1000,
                ..Limits::default()
            },
            ..Readings::default()
        }
    }

    #[test]
    fn rates_are_deltas_over_the_interval() {
        let start = Instant::now();
        let mut sampler = Sampler::new(start, None);
        let (first, _) = sampler.sample(
            start + Duration::from_secs(1),
            readings(100, 90, 80, 8_000, 4),
            "run",
        );
        assert_eq!(
            (first.attempted_per_sec, first.rejected_per_sec),
            (100.0, 10.0)
        );
        assert_eq!(
            (first.delivered_per_sec, first.mean_batch_bytes),
            (80.0, 2_000.0)
        );
        let (second, _) = sampler.sample(
            start + Duration::from_secs(3),
            readings(300, 250, 200, 20_000, 10),
            "run",
        );
        assert_eq!((second.interval_s, second.t_s), (2.0, 3.0));
        assert_eq!(
            (second.accepted_per_sec, second.delivered_per_sec),
            (80.0, 60.0)
        );
        assert_eq!(second.totals.delivered, 200);
        assert_eq!(second.buffered_items, 50);
        assert_eq!(sampler.peaks.min_delivered_per_sec, Some(60.0));
        assert_eq!(sampler.peaks.max_delivered_per_sec, 80.0);
        assert_eq!(sampler.peaks.limit_bytes, 1000);
    }

    #[test]
    fn a_disk_tier_is_sampled_with_its_rates_and_peak() {
        let start = Instant::now();
        let mut sampler = Sampler::new(start, None);
        let with = |spilled: u64, replayed: u64, disk_bytes: u64| {
            let mut stats = Stats::default();
            stats.spill.spilled = spilled;
            stats.spill.replayed = replayed;
            stats.spill.backlog = spilled - replayed;
            stats.spill.disk_bytes = disk_bytes;
            stats.spill.max_disk_bytes = 1 << 20;
            Readings {
                dispatcher: Some(stats),
                ..Readings::default()
            }
        };
        let (first, _) =
            sampler.sample(start + Duration::from_secs(1), with(100, 40, 9_000), "run");
        let (second, _) =
            sampler.sample(start + Duration::from_secs(3), with(300, 240, 4_000), "run");
        let s = second.spill.expect("a disk tier");
        assert_eq!((s.spilled_per_sec, s.replayed_per_sec), (100.0, 100.0));
        assert_eq!(
            (s.spilled_total, s.backlog_events, s.max_disk_bytes),
            (300, 60, 1 << 20)
        );
        assert_eq!(first.spill.map(|s| s.spilled_per_sec), Some(100.0));
        assert_eq!(sampler.peaks.disk_bytes, 9_000);
        let (none, _) = sampler.sample(start + Duration::from_secs(4), Readings::default(), "run");
        assert!(none.spill.is_none(), "no tier, no readings");
    }

    #[test]
    fn latency_is_per_interval_and_accumulates_for_the_run() {
        let start = Instant::now();
        let sync: SyncHistogram<u64> = latency_histogram().into();
        let mut recorder = sync.recorder();
        let mut sampler = Sampler::new(start, Some(sync));
        recorder.record(100).expect("in range");
        recorder.record(300).expect("in range");
        drop(recorder);
        let (s, hist) = sampler.sample(start + Duration::from_secs(1), Readings::default(), "run");
        assert_eq!(s.latency_us.count, 2);
        assert_eq!(hist.map(|h| h.len()), Some(2));
        let (s, _) = sampler.sample(start + Duration::from_secs(2), Readings::default(), "run");
        assert_eq!(s.latency_us.count, 0);
        assert_eq!(sampler.run_latency().len(), 2);
    }
}
