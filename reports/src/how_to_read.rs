//! "How to read this": one plain sentence beside each verdict of the report, saying what
//! the check compares and what would change its outcome, and beside the disk tier's
//! section, saying what its charts and figures mean.

use runlog::{Status, ThresholdResult};

/// Beside the run's overall verdict.
pub(crate) fn overall(status: Option<Status>) -> &'static str {
    match status {
        Some(_) => {
            "The verdict is the worst of the checks in the assessment: one FAIL fails the run, one WARN makes it a warn; fixing that check (or its threshold) changes it."
        }
        None => {
            "No verdict: the run did not finish writing results.json, so nothing was judged; rerun it to completion."
        }
    }
}

/// Beside one assessment section, by its name in `results.json`.
pub(crate) fn section(name: &str) -> &'static str {
    match name {
        "correctness" => {
            "Compares every accepted event with what was delivered, evicted, undelivered or failed; one event unaccounted for, or nothing delivered at all, fails it."
        }
        "pressure" => {
            "Checks that the run pushed back (offers refused, the buffer at least half full, or the consumer at 80% of its pace); a consumer that kept up with the load makes it a warn."
        }
        "memory" => {
            "Compares the heap at every sample with the budget the buffered bytes explain (measured before the run); a heap over budget fails, a heap trend that keeps growing warns."
        }
        "drain" => {
            "Compares the drain's duration and what it left undelivered with the drain deadline; anything undelivered or a drain past the deadline (--drain-timeout) fails it."
        }
        _ => "One of the run's checks; its notes say what it measured.",
    }
}

/// Beside one of the user's thresholds.
pub(crate) fn threshold(t: &ThresholdResult) -> String {
    format!(
        "Compares the run's figure with your threshold {} (a --threshold flag or the scenario file); the figure crossing the limit, or a changed threshold, changes it.",
        t.threshold
    )
}

/// Beside the figures the verdict did not judge.
pub(crate) const NOT_JUDGED: &str = "These figures were measured but not judged: no threshold covers them; a --threshold on them (e.g. 'p99<20ms') makes them count in the verdict.";

/// Beside the disk tier's charts and figures.
pub(crate) const DISK_TIER: &str = "Events that found memory full were written to disk (spilled) and read back as memory freed (replayed): disk use under its budget and nothing left on disk at the end mean the tier absorbed the overload, while fallbacks or errors mean the disk was full or failing and those events met the memory policy instead.";
