//! Measures every workload under callgrind at two sizes and turns the
//! differences into per-event metrics.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Result, anyhow, bail};

use crate::baseline::{Baseline, Metric};
use crate::callgrind::{Callgrind, Counted};
use crate::workloads::Workload;

/// Default tolerance of instruction counts: nearly deterministic on one
/// toolchain (two runs of the same build have differed by up to 0.03%, under
/// one instruction an event), with room for a compiler update's drift.
pub(crate) const INSTRUCTIONS_THRESHOLD_PCT: f64 = 3.0;
/// Default tolerance of allocation counts: exact, so only rounding room.
pub(crate) const ALLOCATIONS_THRESHOLD_PCT: f64 = 2.0;

/// The per-event cost of one workload, from runs of `events` and `2 * events`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct PerEvent {
    pub(crate) instructions: f64,
    pub(crate) allocations: f64,
}

impl PerEvent {
    /// The steady-state cost per event: `(large - small) / events`, where
    /// `large` ran `2 * events` events and `small` ran `events`.
    ///
    /// # Errors
    /// When the larger run counted less than the smaller one.
    pub(crate) fn from_runs(small: Counted, large: Counted, events: u64) -> Result<PerEvent> {
        let diff = |what: &str, a: u64, b: u64| {
            b.checked_sub(a).ok_or_else(|| {
                anyhow!("{what}: {b} with 2N events < {a} with N: the measured region is not what the workload runs")
            })
        };
        let n = events as f64;
        Ok(PerEvent {
            instructions: diff("instructions", small.instructions, large.instructions)? as f64 / n,
            allocations: diff("allocations", small.allocations, large.allocations)? as f64 / n,
        })
    }
}

/// Runs every workload at `events` and `2 * events` under callgrind, `jobs`
/// runs at a time, and returns the metrics (thresholds at their defaults).
///
/// # Errors
/// The first run that failed.
pub(crate) fn measure(callgrind: &Callgrind, events: u64, jobs: usize) -> Result<Baseline> {
    let runs: Vec<(Workload, u64)> = Workload::ALL
        .into_iter()
        .flat_map(|w| [(w, 2 * events), (w, events)])
        .collect();
    let results: Vec<Mutex<Option<Result<Counted>>>> =
        runs.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let (Some(&(workload, n)), Some(slot)) = (runs.get(i), results.get(i)) else {
                        break;
                    };
                    let counted = callgrind.count(workload, n);
                    *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(counted);
                }
            });
        }
    });
    let mut counted = Vec::with_capacity(runs.len());
    for slot in results {
        match slot.into_inner().unwrap_or_else(|e| e.into_inner()) {
            Some(result) => counted.push(result?),
            None => bail!("a callgrind run did not report"),
        }
    }
    let mut metrics = Baseline::default();
    for (workload, pair) in Workload::ALL.into_iter().zip(counted.chunks(2)) {
        let [large, small] = pair else {
            bail!("callgrind runs out of step");
        };
        let per_event = PerEvent::from_runs(*small, *large, events)?;
        insert(&mut metrics, workload, per_event);
    }
    Ok(metrics)
}

fn insert(metrics: &mut Baseline, workload: Workload, per_event: PerEvent) {
    let mut add = |suffix: &str, value: f64, unit: &str, threshold_pct: f64| {
        metrics.metrics.insert(
            format!("{}.{suffix}", workload.name()),
            Metric {
                // Three decimals: the counts are exact, the quotient need not be.
                value: (value * 1000.0).round() / 1000.0,
                unit: unit.to_owned(),
                lower_is_better: true,
                threshold_pct,
            },
        );
    };
    add(
        "instructions_per_event",
        per_event.instructions,
        "instructions/event",
        INSTRUCTIONS_THRESHOLD_PCT,
    );
    add(
        "allocations_per_event",
        per_event.allocations,
        "allocations/event",
        ALLOCATIONS_THRESHOLD_PCT,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counted(instructions: u64, allocations: u64) -> Counted {
        Counted {
            instructions,
            allocations,
        }
    }

    #[test]
    fn the_difference_cancels_fixed_costs() {
        // 1000 fixed + 300/event, 2 fixed allocations + 1/event.
        let small = counted(1_000 + 300 * 64, 2 + 64);
        let large = counted(1_000 + 300 * 128, 2 + 128);
        let per = PerEvent::from_runs(small, large, 64).unwrap();
        assert_eq!(
            per,
            PerEvent {
                instructions: 300.0,
                allocations: 1.0
            }
        );
    }

    #[test]
    fn a_shrinking_count_is_an_error() {
        let err = PerEvent::from_runs(counted(10, 0), counted(5, 0), 64).unwrap_err();
        assert!(err.to_string().contains("instructions"), "{err}");
    }
}
