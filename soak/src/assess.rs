//! The verdict of a run: pure functions from measured facts to an
//! [`Assessment`], so every rule is unit-tested without running a soak.

use runlog::{Assessment, Section, Status};

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
}

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
    let mut notes = Vec::new();
    let accounted = f.delivered + f.dropped + f.undelivered;
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
                "lost events: accepted {} != delivered {} + dropped {} + undelivered {}",
                f.accepted, f.delivered, f.dropped, f.undelivered
            ),
        ));
    }
    if f.consumed != f.delivered {
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
    if notes.is_empty() {
        notes.push((
            Status::Pass,
            format!(
                "every accepted event accounted for: {} delivered, {} evicted, {} undelivered of {} accepted",
                f.delivered, f.dropped, f.undelivered, f.accepted
            ),
        ));
    }
    section(notes)
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
    let status = if pressed { Status::Pass } else { Status::Warn };
    if !pressed {
        signals.push(
            "no backpressure: the consumer kept up; raise the load or the consumer delay".into(),
        );
    }
    Section::new(status, signals)
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
    let heap_budget = 1.25 * f.max_buffered_bytes as f64 + 8.0 * MIB;
    let heap_note = format!(
        "peak heap {:.1} MiB against {:.1} MiB buffered limit ({:.2}x; budget 1.25x + 8 MiB = {:.1} MiB)",
        f.peak_heap_bytes as f64 / MIB,
        f.max_buffered_bytes as f64 / MIB,
        f.peak_heap_bytes as f64 / f.max_buffered_bytes.max(1) as f64,
        heap_budget / MIB
    );
    let over = f.peak_heap_bytes as f64 > heap_budget;
    notes.push((if over { Status::Warn } else { Status::Pass }, heap_note));
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

fn drain(f: &Facts) -> Section {
    if f.undelivered > 0 {
        return Section::new(
            Status::Fail,
            [format!(
                "{} accepted events were still undelivered at the {} ms deadline (returned, not lost)",
                f.undelivered,
                f.drain_deadline_us / 1000
            )],
        );
    }
    Section::new(
        Status::Pass,
        [format!(
            "drained in {} us (deadline {} ms)",
            f.drain_us,
            f.drain_deadline_us / 1000
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
}
