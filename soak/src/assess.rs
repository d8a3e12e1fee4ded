//! The verdict of a run: pure functions from measured facts to an
//! [`Assessment`], so every rule is unit-tested without running a soak.

use runlog::{Assessment, Section, Status};

use crate::sampler::MemoryPoint;

const MIB: f64 = 1024.0 * 1024.0;

/// Everything the verdict is drawn from, in plain numbers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    /// Events the producers offered.
    pub attempted: u64,
    /// Events the producers saw accepted.
    pub accepted_by_producers: u64,
    /// Events the dispatcher counted as accepted (equals the producers' count
    /// when the accounting is right).
    pub accepted: u64,
    /// Events the consumer received.
    pub consumed: u64,
    /// Events the dispatcher counted as delivered.
    pub delivered: u64,
    /// Events the dispatcher counted as evicted (DropOldest).
    pub dropped: u64,
    /// Evicted events the eviction hook actually received.
    pub evicted_seen: u64,
    /// Events refused (full, timeout, too large, closed).
    pub rejected: u64,
    /// Accepted events shutdown handed back undelivered.
    pub undelivered: u64,
    /// Latency samples recorded, when latency was recorded.
    pub latency_count: Option<u64>,
    /// The highest `max_buffered_bytes` in force during the run.
    pub max_buffered_bytes: u64,
    /// The exact peak of buffered bytes, from the dispatcher.
    pub peak_buffered_bytes: u64,
    /// The highest sampled jemalloc `stats.allocated`.
    pub peak_heap_bytes: u64,
    /// `(t_s, heap_allocated_bytes)` per sample, for the leak slope.
    pub heap_series: Vec<(f64, u64)>,
    /// Run length, seconds.
    pub duration_s: f64,
    /// Average delivered events per second.
    pub avg_delivered_per_sec: f64,
    /// What the simulated consumer can take at most, events per second,
    /// when it has a per-batch cost.
    pub consumer_bound_per_sec: Option<f64>,
    /// Time from the end of production until everything was delivered.
    pub drain_us: u64,
    /// The drain deadline.
    pub drain_deadline_us: u64,
    /// Sink mode: events whose batch the sink gave up on (handed to the error hook).
    pub failed: u64,
    /// Sink mode: events still inside a sink call at the drain deadline.
    pub in_flight: u64,
    /// Where batches went, in sink mode (`None` for the in-process consumer).
    pub sink: Option<String>,
    /// Sink mode: the last error the sink gave up with.
    pub sink_error: Option<String>,
    /// Memory at every run-phase sample, with the limit in force then.
    pub memory_series: Vec<MemoryPoint>,
    /// The signal that cut the run short and when (seconds), if one did.
    pub interrupted: Option<(String, f64)>,
    /// The run length the scenario asked for, seconds.
    pub planned_s: f64,
}

/// How far past the drain deadline a drain may end (joining threads, one poll) and still
/// count as within it.
pub const DRAIN_GRACE_US: u64 = 250_000;

/// Draws the four sections and the overall status.
pub fn assess(facts: &Facts) -> Assessment {
    Assessment::new(
        correctness(facts),
        pressure(facts),
        memory(facts),
        drain(facts),
    )
}

fn section(notes: Vec<(Status, String)>) -> Section {
    let status = notes
        .iter()
        .fold(Status::Pass, |acc, (s, _)| Status::worst(acc, *s));
    Section::new(status, notes.into_iter().map(|(_, n)| n))
}

fn correctness(f: &Facts) -> Section {
    let mut notes = accounting(f);
    if f.delivered == 0 {
        notes.push((
            Status::Fail,
            format!(
                "nothing was delivered: {} offered, {} accepted, {} refused; a run that delivers nothing proves nothing",
                f.attempted, f.accepted, f.rejected
            ),
        ));
    }
    if let Some(note) = sink_note(f) {
        notes.push((Status::Warn, note));
    }
    if notes.iter().all(|(s, _)| *s != Status::Fail) {
        notes.push((
            Status::Pass,
            format!(
                "every accepted event accounted for: {} delivered, {} evicted, {} undelivered, {} failed, {} in flight of {} accepted",
                f.delivered, f.dropped, f.undelivered, f.failed, f.in_flight, f.accepted
            ),
        ));
    }
    section(notes)
}

/// Every count agrees with every other: what was accepted is delivered, evicted, handed
/// back, failed or in flight, and each side counted the same.
fn accounting(f: &Facts) -> Vec<(Status, String)> {
    let mut notes = Vec::new();
    let accounted = f.delivered + f.dropped + f.undelivered + f.failed + f.in_flight;
    if f.accepted_by_producers != f.accepted {
        notes.push((
            Status::Fail,
            format!(
                "producers saw {} accepted but the dispatcher counted {}",
                f.accepted_by_producers, f.accepted
            ),
        ));
    }
    if accounted != f.accepted {
        notes.push((
            Status::Fail,
            format!(
                "lost events: accepted {} != delivered {} + dropped {} + undelivered {} + failed {} + in flight {}",
                f.accepted, f.delivered, f.dropped, f.undelivered, f.failed, f.in_flight
            ),
        ));
    }
    // A sink call that completes between the deadline and the count may be acknowledged
    // by the sink and still counted in flight by the dispatcher.
    if f.consumed < f.delivered || f.consumed - f.delivered > f.in_flight {
        notes.push((
            Status::Fail,
            format!(
                "consumer received {} but {} were delivered",
                f.consumed, f.delivered
            ),
        ));
    }
    if f.evicted_seen != f.dropped {
        notes.push((
            Status::Fail,
            format!(
                "{} evictions counted but {} reached the hook",
                f.dropped, f.evicted_seen
            ),
        ));
    }
    if let Some(count) = f.latency_count.filter(|&c| c != f.consumed) {
        notes.push((
            Status::Fail,
            format!(
                "{count} latencies recorded for {} received events",
                f.consumed
            ),
        ));
    }
    notes
}

/// What the sink left unsettled, naming it as the cause.
fn sink_note(f: &Facts) -> Option<String> {
    let sink = f.sink.as_deref()?;
    if f.failed == 0 && f.in_flight == 0 {
        return None;
    }
    let last = f
        .sink_error
        .as_deref()
        .map_or_else(String::new, |e| format!("; last error: {e}"));
    Some(format!(
        "the sink {sink} failed: it gave up on {} events and {} were still inside a sink call at the drain deadline (the broker stopped answering or died){last}",
        f.failed, f.in_flight
    ))
}

fn pressure(f: &Facts) -> Section {
    let refused_pct = percent(f.rejected + f.dropped, f.attempted);
    let buffered_pct = percent(f.peak_buffered_bytes, f.max_buffered_bytes);
    let utilisation = f
        .consumer_bound_per_sec
        .filter(|&b| b > 0.0)
        .map(|bound| f.avg_delivered_per_sec / bound * 100.0);
    let mut signals = vec![format!(
        "{refused_pct:.2}% of offers refused or evicted; buffered peaked at {buffered_pct:.1}% of the limit"
    )];
    if let Some(u) = utilisation {
        signals.push(format!("consumer ran at {u:.1}% of its bound"));
    }
    let pressed =
        refused_pct > 0.0 || buffered_pct >= 50.0 || utilisation.is_some_and(|u| u >= 80.0);
    let mut status = if pressed { Status::Pass } else { Status::Warn };
    if !pressed {
        signals.push(
            "no backpressure: the consumer kept up; raise the load or the consumer delay".into(),
        );
    }
    if let Some((signal, at_s)) = &f.interrupted {
        status = Status::Warn;
        signals.insert(
            0,
            format!(
                "the run was cut short by {signal} at {at_s:.1} s of the planned {:.1} s: the figures cover {:.1} s",
                f.planned_s, f.duration_s
            ),
        );
    }
    Section::new(status, signals)
}

fn heap_budget(limit: u64) -> f64 {
    1.25 * limit as f64 + 8.0 * MIB
}

fn memory(f: &Facts) -> Section {
    let mut notes = Vec::new();
    if f.peak_buffered_bytes > f.max_buffered_bytes {
        notes.push((
            Status::Fail,
            format!(
                "buffered bytes peaked at {} above the limit {}",
                f.peak_buffered_bytes, f.max_buffered_bytes
            ),
        ));
    }
    if let Some(over) = f
        .memory_series
        .iter()
        .find(|m| m.buffered_bytes > m.limit_bytes)
    {
        notes.push((
            Status::Fail,
            format!(
                "buffered bytes were {} at {:.1} s, above the {} limit in force then",
                over.buffered_bytes, over.t_s, over.limit_bytes
            ),
        ));
    }
    notes.push(heap_note(f));
    if let Some(slope) = second_half_slope(&f.heap_series) {
        let half = f.duration_s / 2.0;
        let growth = slope * half;
        let tolerated = 0.1 * f.max_buffered_bytes as f64 + MIB;
        let status = if growth > tolerated {
            Status::Warn
        } else {
            Status::Pass
        };
        let verdict = if status == Status::Warn {
            "looks like a leak"
        } else {
            "flat"
        };
        notes.push((
            status,
            format!(
                "heap slope over the second half {:+.1} KiB/s ({verdict}: {:+.2} MiB over {half:.0} s, tolerance {:.2} MiB)",
                slope / 1024.0,
                growth / MIB,
                tolerated / MIB
            ),
        ));
    }
    section(notes)
}

/// The heap against the limit in force at each sample, not the highest ever set: raising
/// the limit late must not excuse an earlier excess.
fn heap_note(f: &Facts) -> (Status, String) {
    let worst = f.memory_series.iter().max_by(|a, b| {
        let ratio = |m: &MemoryPoint| m.heap_bytes as f64 / heap_budget(m.limit_bytes);
        ratio(a).total_cmp(&ratio(b))
    });
    let (heap, limit, at) = match worst {
        Some(m) => (m.heap_bytes, m.limit_bytes, format!(" at {:.1} s", m.t_s)),
        None => (f.peak_heap_bytes, f.max_buffered_bytes, String::new()),
    };
    let budget = heap_budget(limit);
    let heap_note = format!(
        "heap {:.1} MiB{at} against the {:.1} MiB buffered limit in force then ({:.2}x; budget 1.25x + 8 MiB = {:.1} MiB)",
        heap as f64 / MIB,
        limit as f64 / MIB,
        heap as f64 / limit.max(1) as f64,
        budget / MIB
    );
    let over = heap as f64 > budget;
    (if over { Status::Warn } else { Status::Pass }, heap_note)
}

fn drain(f: &Facts) -> Section {
    let deadline_ms = f.drain_deadline_us / 1000;
    let mut notes = Vec::new();
    if f.undelivered > 0 {
        notes.push(format!(
            "{} accepted events were still undelivered at the {deadline_ms} ms deadline (returned, not lost)",
            f.undelivered
        ));
    }
    if f.in_flight > 0 {
        notes.push(format!(
            "{} accepted events were inside a sink call at the {deadline_ms} ms deadline",
            f.in_flight
        ));
    }
    if f.drain_us > f.drain_deadline_us + DRAIN_GRACE_US {
        notes.push(format!(
            "the drain took {:.3} s, past the {deadline_ms} ms deadline",
            f.drain_us as f64 / 1e6
        ));
    }
    if !notes.is_empty() {
        return Section::new(Status::Fail, notes);
    }
    Section::new(
        Status::Pass,
        [format!(
            "drained in {} us (deadline {deadline_ms} ms)",
            f.drain_us
        )],
    )
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64 * 100.0
    }
}

/// Least-squares slope (bytes per second) over the second half of the run,
/// the same fit the report draws ([`runlog::second_half_fit`]); `None` with
/// fewer than four points there, too few to call a trend.
pub fn second_half_slope(series: &[(f64, u64)]) -> Option<f64> {
    let points: Vec<(f64, f64)> = series.iter().map(|&(t, h)| (t, h as f64)).collect();
    runlog::second_half_fit(&points)
        .filter(|fit| fit.points >= 4)
        .map(|fit| fit.slope_per_s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn healthy() -> Facts {
        Facts {
            attempted: 1_000,
            accepted_by_producers: 900,
            accepted: 900,
            consumed: 900,
            delivered: 900,
            rejected: 100,
            latency_count: Some(900),
            max_buffered_bytes: 64 << 20,
            peak_buffered_bytes: 60 << 20,
            peak_heap_bytes: 70 << 20,
            heap_series: (0..20).map(|t| (t as f64, 50 << 20)).collect(),
            duration_s: 20.0,
            drain_us: 150,
            drain_deadline_us: 5_000_000,
            ..Facts::default()
        }
    }

    #[test]
    fn a_healthy_run_passes_every_section() {
        let a = assess(&healthy());
        assert_eq!(a.overall, Status::Pass, "{a:#?}");
    }

    #[test]
    fn a_lost_event_fails_correctness() {
        let a = assess(&Facts {
            delivered: 899,
            consumed: 899,
            latency_count: Some(899),
            ..healthy()
        });
        assert_eq!(a.correctness.status, Status::Fail);
        assert!(a.correctness.notes[0].contains("lost events"));
        assert_eq!(a.overall, Status::Fail);
    }

    #[test]
    fn unseen_evictions_fail_correctness() {
        let f = Facts {
            dropped: 5,
            evicted_seen: 4,
            delivered: 895,
            consumed: 895,
            latency_count: Some(895),
            ..healthy()
        };
        assert_eq!(assess(&f).correctness.status, Status::Fail);
    }

    #[test]
    fn no_pressure_warns() {
        let f = Facts {
            rejected: 0,
            peak_buffered_bytes: 1 << 20,
            attempted: 900,
            ..healthy()
        };
        let a = assess(&f);
        assert_eq!(a.pressure.status, Status::Warn);
        assert!(
            a.pressure
                .notes
                .iter()
                .any(|n| n.contains("no backpressure"))
        );
    }

    #[test]
    fn a_saturated_consumer_counts_as_pressure() {
        let f = Facts {
            rejected: 0,
            attempted: 900,
            peak_buffered_bytes: 1 << 20,
            avg_delivered_per_sec: 95.0,
            consumer_bound_per_sec: Some(100.0),
            ..healthy()
        };
        assert_eq!(assess(&f).pressure.status, Status::Pass);
    }

    #[test]
    fn buffered_over_the_limit_fails_memory() {
        let f = Facts {
            peak_buffered_bytes: (64 << 20) + 1,
            ..healthy()
        };
        assert_eq!(assess(&f).memory.status, Status::Fail);
    }

    #[test]
    fn heap_over_budget_warns() {
        let f = Facts {
            peak_heap_bytes: 100 << 20,
            ..healthy()
        };
        assert_eq!(assess(&f).memory.status, Status::Warn);
    }

    #[test]
    fn a_growing_heap_warns_of_a_leak() {
        let series = (0..20)
            .map(|t| (t as f64, (50 << 20) + t * (2 << 20)))
            .collect();
        let a = assess(&Facts {
            heap_series: series,
            ..healthy()
        });
        assert_eq!(a.memory.status, Status::Warn);
        assert!(a.memory.notes.iter().any(|n| n.contains("leak")));
    }

    #[test]
    fn slope_is_exact_on_a_line() {
        let series: Vec<_> = (0..10).map(|t| (t as f64, 1000 + 10 * t)).collect();
        let slope = second_half_slope(&series).expect("enough points");
        assert!((slope - 10.0).abs() < 1e-9);
        assert_eq!(second_half_slope(&series[..5]), None);
    }

    #[test]
    fn undelivered_events_fail_the_drain() {
        let f = Facts {
            undelivered: 3,
            delivered: 897,
            consumed: 897,
            latency_count: Some(897),
            ..healthy()
        };
        let a = assess(&f);
        assert_eq!(a.drain.status, Status::Fail);
        assert_eq!(a.correctness.status, Status::Pass);
    }

    #[test]
    fn memory_is_judged_against_the_limit_in_force_at_each_sample() {
        let point = |t_s, heap_bytes, limit_bytes| MemoryPoint {
            t_s,
            heap_bytes,
            buffered_bytes: 0,
            limit_bytes,
        };
        // 200 MiB of heap under a 64 MiB limit, then the limit raised to 1 GiB: the late
        // raise does not excuse the early excess.
        let f = Facts {
            max_buffered_bytes: 1 << 30,
            peak_heap_bytes: 200 << 20,
            memory_series: vec![
                point(1.0, 200 << 20, 64 << 20),
                point(2.0, 100 << 20, 1 << 30),
            ],
            ..healthy()
        };
        let a = assess(&f);
        assert_eq!(a.memory.status, Status::Warn, "{:#?}", a.memory);
        assert!(
            a.memory.notes.iter().any(|n| n.contains("at 1.0 s")),
            "{:#?}",
            a.memory
        );
        let over = Facts {
            memory_series: vec![MemoryPoint {
                buffered_bytes: 65 << 20,
                ..point(1.0, 70 << 20, 64 << 20)
            }],
            ..healthy()
        };
        assert_eq!(assess(&over).memory.status, Status::Fail);
    }

    #[test]
    fn nothing_delivered_never_passes() {
        let f = Facts {
            accepted_by_producers: 0,
            accepted: 0,
            consumed: 0,
            delivered: 0,
            rejected: 1_000,
            latency_count: Some(0),
            ..healthy()
        };
        assert_eq!(assess(&f).correctness.status, Status::Fail);
    }
}
