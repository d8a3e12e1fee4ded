//! The memory verdict: buffered bytes against the limit in force at each sample, the heap
//! against a budget built from what the run was measured to hold per buffered byte, and
//! the heap trend fitted only over stretches of unchanged limits.

use runlog::{Section, Status};

use super::{Facts, section};
use crate::calibrate::HeapCost;
use crate::sampler::MemoryPoint;

const MIB: f64 = 1024.0 * 1024.0;

/// The margin over the measured cost of the buffer, as a fraction of it.
pub const MARGIN_FRACTION: f64 = 0.10;
/// And a fixed margin on top (allocator caches, the sampler's own buffers, a burst of
/// events in the producers' hands).
pub const MARGIN_BYTES: u64 = 4 << 20;

/// What the heap may hold, from measurements of this run: the heap at the start line, the
/// measured cost of a buffered byte, and what lives outside the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct HeapModel {
    /// The heap when every producer was ready and nothing was buffered yet.
    pub baseline_bytes: u64,
    /// The measured cost of buffering (see [`crate::calibrate`]).
    pub cost: HeapCost,
    /// What the run holds beyond the buffered events: batches in the consumer's (or the
    /// sink's) hands, the batch vectors the dispatcher keeps for reuse, the producers'
    /// events in hand.
    pub outside_bytes: u64,
}

/// The budget at one limit, in its parts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HeapBudget {
    /// The whole budget.
    pub total: f64,
    /// The buffer's share: the limit times the measured cost per byte.
    pub buffer: f64,
    /// The margin.
    pub margin: f64,
}

impl HeapModel {
    /// The budget with `limit` buffered bytes in force.
    #[must_use]
    pub fn budget(&self, limit: u64) -> HeapBudget {
        let buffer = limit as f64 * self.cost.per_buffered_byte;
        let margin = MARGIN_FRACTION * buffer + MARGIN_BYTES as f64;
        HeapBudget {
            total: self.baseline_bytes as f64 + buffer + self.outside_bytes as f64 + margin,
            buffer,
            margin,
        }
    }
}

/// The old fixed rule, used only when the heap cost could not be measured.
fn fixed_budget(limit: u64) -> f64 {
    1.25 * limit as f64 + 8.0 * MIB
}

pub(super) fn memory(f: &Facts) -> Section {
    let mut notes = Vec::new();
    notes.extend(buffered_notes(f));
    notes.push(heap_note(f));
    if let Some(note) = trend_note(f) {
        notes.push(note);
    }
    section(notes)
}

/// Buffered bytes against the limit: never above it, with the one exception the
/// dispatcher documents: an event read back from its disk tier that is heavier than the
/// limit (accepted under a larger one, lowered since, or by an earlier run with a larger
/// one) comes back alone once memory is empty, so buffered bytes may pass the limit by
/// that one event, and by nothing more. The heaviest event read back bounds it exactly.
fn buffered_notes(f: &Facts) -> Vec<(Status, String)> {
    let heaviest = f.heaviest_read_back;
    // What buffered bytes may reach with `limit` in force.
    let allowed = |limit: u64| limit.max(heaviest);
    let beyond = |limit: u64| {
        if heaviest > limit {
            format!(
                ", and above the heaviest event read back from the disk tier ({}), the most \
                 the one exception allows (an event read back that is heavier than the limit \
                 comes back alone once memory is empty)",
                exact(heaviest)
            )
        } else {
            String::new()
        }
    };
    let mut notes = Vec::new();
    let peak = f.peak_buffered_bytes;
    if peak > allowed(f.max_buffered_bytes) {
        notes.push((
            Status::Fail,
            format!(
                "buffered bytes peaked at {} above the limit {}{}",
                exact(peak),
                exact(f.max_buffered_bytes),
                beyond(f.max_buffered_bytes)
            ),
        ));
    }
    if let Some(over) = f
        .memory_series
        .iter()
        .find(|m| m.buffered_bytes > allowed(m.limit_bytes))
    {
        notes.push((
            Status::Fail,
            format!(
                "buffered bytes were {} at {:.1} s, above the {} limit in force then{}",
                exact(over.buffered_bytes),
                over.t_s,
                exact(over.limit_bytes),
                beyond(over.limit_bytes)
            ),
        ));
    }
    let over_limit = peak > f.max_buffered_bytes
        || f.memory_series
            .iter()
            .any(|m| m.buffered_bytes > m.limit_bytes);
    if notes.is_empty() && over_limit {
        notes.push((
            Status::Pass,
            format!(
                "buffered bytes peaked at {}, above the {} limit but not above the heaviest \
                 event read back from the disk tier ({}): the one exception to the limit, an \
                 event read back that is heavier than it (accepted under a larger limit, \
                 lowered since or set by an earlier run) comes back alone once memory is empty",
                exact(peak),
                exact(f.max_buffered_bytes),
                exact(heaviest)
            ),
        ));
    }
    notes
}

/// `8.0 KiB (8,224 B)`: a byte figure that a verdict turns on, rounded and exact.
fn exact(n: u64) -> String {
    let rounded = crate::human::bytes(n);
    if n < 1024 {
        rounded
    } else {
        format!("{rounded} ({} B)", runlog::human::grouped(n))
    }
}

/// The budget at the sample where the heap came closest to it (0 without a model or
/// samples): `memory.heap_budget_bytes` in the record.
#[must_use]
pub fn tightest_budget(model: Option<&HeapModel>, series: &[MemoryPoint]) -> u64 {
    let Some(model) = model else { return 0 };
    series
        .iter()
        .map(|m| {
            (
                m.heap_bytes as f64 / model.budget(m.limit_bytes).total,
                m.limit_bytes,
            )
        })
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map_or(0, |(_, limit)| model.budget(limit).total as u64)
}

/// The budget in force at one sample.
fn budget_at(f: &Facts, limit: u64) -> f64 {
    f.heap_model
        .map_or_else(|| fixed_budget(limit), |m| m.budget(limit).total)
}

/// The heap against the budget of the limit in force at each sample, not the highest ever
/// set: raising the limit late must not excuse an earlier excess. Over budget fails: the
/// heap holds more than the buffer and its measured costs explain (a leak).
fn heap_note(f: &Facts) -> (Status, String) {
    let worst = f.memory_series.iter().max_by(|a, b| {
        let ratio = |m: &MemoryPoint| m.heap_bytes as f64 / budget_at(f, m.limit_bytes);
        ratio(a).total_cmp(&ratio(b))
    });
    let (heap, limit, at) = match worst {
        Some(m) => (m.heap_bytes, m.limit_bytes, format!(" at {:.1} s", m.t_s)),
        None => (f.peak_heap_bytes, f.max_buffered_bytes, String::new()),
    };
    let budget = budget_at(f, limit);
    let over = heap as f64 > budget;
    let head = format!(
        "heap {:.1} MiB{at} against a budget of {:.1} MiB for the {:.1} MiB buffered limit in force then ({:.0}% of it)",
        heap as f64 / MIB,
        budget / MIB,
        limit as f64 / MIB,
        100.0 * heap as f64 / budget.max(1.0),
    );
    let parts = match &f.heap_model {
        Some(m) => {
            let b = m.budget(limit);
            format!(
                ": {:.1} MiB at the start line + the limit x {:.3} measured heap per buffered byte ({:.1} MiB; {:.0}-byte events) + {:.1} MiB outside the buffer (batches in hand, recycled batch vectors) + a margin of {:.1} MiB ({:.0}% + {} MiB)",
                m.baseline_bytes as f64 / MIB,
                m.cost.per_buffered_byte,
                b.buffer / MIB,
                m.cost.mean_event_bytes,
                m.outside_bytes as f64 / MIB,
                b.margin / MIB,
                MARGIN_FRACTION * 100.0,
                MARGIN_BYTES >> 20,
            )
        }
        None => ": 1.25x the limit + 8 MiB (the heap's cost per byte could not be measured)".into(),
    };
    let verdict = if over {
        "; more than the buffer explains: a leak, or memory held outside the dispatcher"
    } else {
        ""
    };
    let status = if over { Status::Fail } else { Status::Pass };
    (status, format!("{head}{parts}{verdict}"))
}

/// The heap's slope fitted only over stretches of unchanged limits (their second halves):
/// a limit raised or lowered moves the heap, and that is not growth. With a measured cost,
/// what is fitted is the heap the buffer does not explain (heap - buffered bytes x cost):
/// a buffer that fills moves the heap too, and that is not a leak either.
///
/// The buffered bytes are the most the buffer held so far in the stretch, not its level
/// at the sample: a buffer that empties for a moment (a consumer faster than producers
/// back from their back-off) hands its events' memory to the allocator's thread caches,
/// which the heap figure still counts, so the heap does not follow it down. Read at
/// its level, a buffer low at the last samples of a short run made a flat heap look
/// like a leak.
fn trend_note(f: &Facts) -> Option<(Status, String)> {
    let cost = f.heap_model.map(|m| m.cost.per_buffered_byte);
    let mut most = (u32::MAX, 0_u64);
    let points: Vec<(f64, f64, u32)> = f
        .memory_series
        .iter()
        .map(|m| {
            most = if most.0 == m.stretch {
                (m.stretch, most.1.max(m.buffered_bytes))
            } else {
                (m.stretch, m.buffered_bytes)
            };
            let explained = cost.map_or(0.0, |c| most.1 as f64 * c);
            (m.t_s, m.heap_bytes as f64 - explained, m.stretch)
        })
        .collect();
    let what = cost.map_or_else(
        || "heap".to_owned(),
        |c| format!("heap the buffer does not explain (heap - the most buffered so far x {c:.3})"),
    );
    let (fit, stretches) = runlog::heap_trend(&points);
    let scope = if stretches > 1 {
        format!(
            "fitted only over stretches of unchanged limits ({stretches} stretches; the limits changed {} times and a change is not growth)",
            stretches - 1
        )
    } else {
        "fitted over the second half of the run (the limits never changed)".to_owned()
    };
    let Some(fit) = fit else {
        return (stretches > 0).then(|| {
            (
                Status::Pass,
                format!(
                    "heap trend not judged: no stretch of unchanged limits had {} samples in its second half",
                    runlog::MIN_TREND_POINTS
                ),
            )
        });
    };
    let span = fit.to_s - fit.from_s;
    let growth = fit.slope_per_s * span;
    let limit = f
        .memory_series
        .iter()
        .find(|m| m.t_s >= fit.from_s)
        .map_or(f.max_buffered_bytes, |m| m.limit_bytes);
    let tolerated = 0.1 * limit as f64 + MIB;
    let t = slope_t(&points, &fit);
    let (status, verdict) = if growth < -tolerated {
        (Status::Pass, "falling".to_owned())
    } else if growth <= tolerated {
        (Status::Pass, "flat".to_owned())
    } else if t < MIN_SLOPE_T {
        let t = format!("{t:.1}");
        (
            Status::Pass,
            format!("noise: the slope is {t} standard errors, under {MIN_SLOPE_T}"),
        )
    } else {
        (Status::Warn, "looks like a leak".to_owned())
    };
    Some((
        status,
        format!(
            "{what}: slope {:+.1} KiB/s over {:.1}..{:.1} s ({verdict}; {:+.2} MiB over {span:.0} s, tolerance {:.2} MiB), {scope}",
            fit.slope_per_s / 1024.0,
            fit.from_s,
            fit.to_s,
            growth / MIB,
            tolerated / MIB
        ),
    ))
}

/// A slope counts as growth only this many standard errors away from flat: a heap that
/// swings (batches in the consumer's hands, recycled vectors) fits a slope by chance.
pub(super) const MIN_SLOPE_T: f64 = 3.0;

/// The fitted slope over its standard error, from the points the fit covers (infinite for
/// points exactly on the line).
fn slope_t(points: &[(f64, f64, u32)], fit: &runlog::Fit) -> f64 {
    let covered: Vec<(f64, f64)> = points
        .iter()
        .filter(|p| p.0 >= fit.from_s && p.0 <= fit.to_s)
        .map(|p| (p.0, p.1))
        .collect();
    let n = covered.len() as f64;
    if n < 3.0 {
        return f64::INFINITY;
    }
    let mean_t = covered.iter().map(|p| p.0).sum::<f64>() / n;
    let stt: f64 = covered.iter().map(|p| (p.0 - mean_t).powi(2)).sum();
    let rss: f64 = covered.iter().map(|p| (p.1 - fit.at(p.0)).powi(2)).sum();
    let se = (rss / (n - 2.0) / stt).sqrt();
    if se > 0.0 {
        fit.slope_per_s.abs() / se
    } else {
        f64::INFINITY
    }
}
