//! The verdict of a run: pure functions from measured facts to an
//! [`Assessment`], so every rule is unit-tested without running a soak.

mod memory;

use runlog::human::grouped;
use runlog::{Assessment, Section, Status};

pub use memory::{HeapBudget, HeapModel, MARGIN_BYTES, MARGIN_FRACTION, tightest_budget};

use crate::sampler::MemoryPoint;

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
    /// The heaviest event read back from the disk tier, as charged (0: none was). One
    /// heavier than a lowered limit comes back alone once memory is empty: buffered bytes
    /// may then pass the limit, by that event.
    pub heaviest_read_back: u64,
    /// The highest sampled jemalloc `stats.allocated`.
    pub peak_heap_bytes: u64,
    /// What the heap may hold, measured before the run (`None`: not measured, e.g.
    /// another allocator; a fixed rule is used then).
    pub heap_model: Option<HeapModel>,
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
    /// Memory at every run-phase sample, with the limit in force then and its stretch of
    /// unchanged limits.
    pub memory_series: Vec<MemoryPoint>,
    /// The signal that cut the run short and when (seconds), if one did.
    pub interrupted: Option<(String, f64)>,
    /// The run length the scenario asked for, seconds.
    pub planned_s: f64,
    /// What the disk tier did, when the run had one.
    pub spill: Option<runlog::SpillTotals>,
}

/// How far past the drain deadline a drain may end (joining threads, one poll) and still
/// count as within it.
pub const DRAIN_GRACE_US: u64 = 250_000;

/// Draws the four sections and the overall status.
pub fn assess(facts: &Facts) -> Assessment {
    Assessment::new(
        correctness(facts),
        pressure(facts),
        memory::memory(facts),
        drain(facts),
    )
}

pub(crate) fn section(notes: Vec<(Status, String)>) -> Section {
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
                grouped(f.attempted),
                grouped(f.accepted),
                grouped(f.rejected)
            ),
        ));
    }
    if let Some(note) = sink_note(f) {
        notes.push((Status::Warn, note));
    }
    notes.extend(disk_notes(f));
    if notes.iter().all(|(s, _)| *s != Status::Fail) {
        let (on_disk, recovered) = f.spill.as_ref().map_or_else(
            || (String::new(), String::new()),
            |s| {
                (
                    format!(", {} left on disk", grouped(s.left_on_disk)),
                    format!(" and {} recovered from disk", grouped(s.recovered)),
                )
            },
        );
        notes.push((
            Status::Pass,
            format!(
                "every accepted event accounted for: {} delivered, {} evicted, {} undelivered, {} failed, {} in flight{on_disk} of {} accepted{recovered}",
                grouped(f.delivered),
                grouped(f.dropped),
                grouped(f.undelivered),
                grouped(f.failed),
                grouped(f.in_flight),
                grouped(f.accepted)
            ),
        ));
    }
    section(notes)
}

/// The disk tier's own trouble: records it could not deliver (lost), and failed disk
/// operations (the memory policy took over meanwhile).
fn disk_notes(f: &Facts) -> Vec<(Status, String)> {
    let Some(s) = &f.spill else {
        return Vec::new();
    };
    let mut notes = Vec::new();
    if s.undeliverable > 0 {
        notes.push((
            Status::Fail,
            format!(
                "{} records read back from disk could not be delivered (undecodable, or larger than memory)",
                grouped(s.undeliverable)
            ),
        ));
    }
    if s.errors > 0 {
        let last = s
            .last_error
            .as_deref()
            .map_or_else(String::new, |e| format!("; last error: {e}"));
        notes.push((
            Status::Warn,
            format!(
                "the disk tier failed {} operations (the memory policy applied meanwhile){last}",
                grouped(s.errors)
            ),
        ));
    }
    notes
}

/// Every count agrees with every other: what was accepted is delivered, evicted, handed
/// back, failed or in flight, and each side counted the same.
fn accounting(f: &Facts) -> Vec<(Status, String)> {
    let mut notes = Vec::new();
    let (left, undeliverable, recovered) = f.spill.as_ref().map_or((0, 0, 0), |s| {
        (s.left_on_disk, s.undeliverable, s.recovered)
    });
    let accounted =
        f.delivered + f.dropped + f.undelivered + f.failed + f.in_flight + left + undeliverable;
    if f.accepted_by_producers != f.accepted {
        notes.push((
            Status::Fail,
            format!(
                "producers saw {} accepted but the dispatcher counted {}",
                grouped(f.accepted_by_producers),
                grouped(f.accepted)
            ),
        ));
    }
    if accounted != f.accepted + recovered {
        let (from_disk, on_disk) = match &f.spill {
            Some(_) => (
                format!(" + recovered {}", grouped(recovered)),
                format!(
                    " + left on disk {} + undeliverable {}",
                    grouped(left),
                    grouped(undeliverable)
                ),
            ),
            None => (String::new(), String::new()),
        };
        notes.push((
            Status::Fail,
            format!(
                "lost events: accepted {}{from_disk} != delivered {} + dropped {} + undelivered {} + failed {} + in flight {}{on_disk}",
                grouped(f.accepted),
                grouped(f.delivered),
                grouped(f.dropped),
                grouped(f.undelivered),
                grouped(f.failed),
                grouped(f.in_flight)
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
                grouped(f.consumed),
                grouped(f.delivered)
            ),
        ));
    }
    if f.evicted_seen != f.dropped {
        notes.push((
            Status::Fail,
            format!(
                "{} evictions counted but {} reached the hook",
                grouped(f.dropped),
                grouped(f.evicted_seen)
            ),
        ));
    }
    if let Some(count) = f.latency_count.filter(|&c| c != f.consumed) {
        notes.push((
            Status::Fail,
            format!(
                "{} latencies recorded for {} received events",
                grouped(count),
                grouped(f.consumed)
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
        grouped(f.failed),
        grouped(f.in_flight)
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
    let spilled = f.spill.as_ref().map_or(0, |s| s.spilled);
    if let Some(s) = &f.spill {
        signals.push(format!(
            "{} events went to the disk tier ({:.1}% of accepted), its files peaked at {} of {}; {} found it full and met the policy",
            grouped(s.spilled),
            percent(s.spilled, f.accepted),
            crate::human::bytes(s.peak_disk_bytes),
            crate::human::bytes(s.max_disk_bytes),
            grouped(s.fallbacks)
        ));
    }
    let pressed = refused_pct > 0.0
        || buffered_pct >= 50.0
        || utilisation.is_some_and(|u| u >= 80.0)
        || spilled > 0;
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

fn drain(f: &Facts) -> Section {
    let deadline = crate::human::micros(f.drain_deadline_us);
    let mut notes = Vec::new();
    if f.undelivered > 0 {
        notes.push(format!(
            "{} accepted events were still undelivered at the {deadline} deadline (returned, not lost)",
            grouped(f.undelivered)
        ));
    }
    if f.in_flight > 0 {
        notes.push(format!(
            "{} accepted events were inside a sink call at the {deadline} deadline",
            grouped(f.in_flight)
        ));
    }
    if let Some(left) = f.spill.as_ref().map(|s| s.left_on_disk).filter(|&n| n > 0) {
        notes.push(format!(
            "{} accepted events were still on disk at the {deadline} deadline (kept there: the next run on this --spill-dir delivers them first)",
            grouped(left)
        ));
    }
    if f.drain_us > f.drain_deadline_us + DRAIN_GRACE_US {
        notes.push(format!(
            "the drain took {}, past the {} deadline",
            crate::human::micros(f.drain_us),
            crate::human::micros(f.drain_deadline_us)
        ));
    }
    if !notes.is_empty() {
        return Section::new(Status::Fail, notes);
    }
    Section::new(
        Status::Pass,
        [format!(
            "drained in {} (deadline {})",
            crate::human::micros(f.drain_us),
            crate::human::micros(f.drain_deadline_us)
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

#[cfg(test)]
mod tests;
