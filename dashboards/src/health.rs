//! Whether what the run shows is trouble, or the backpressure a loaded run is meant to
//! show.
//!
//! A saturated run refuses events (reject policy), blocks producers (block) or fills its
//! buffer: that is the dispatcher doing its job under a consumer slower than its
//! producers, which the default scenario sets up on purpose, so it is shown as expected
//! (yellow), never as an alarm. Under the drop-oldest policy evicting the oldest buffered
//! events to make room is that policy working as designed: shown as expected too. Red is
//! kept for real problems: events evicted under a policy that never evicts, a run that
//! stopped delivering, a run that died.

use runlog::{Policy, Sample};

/// A buffer at least this full is shown as saturated.
pub const SATURATED_AT: f64 = 0.9;

/// The run's health as the header, the buffered gauge and the charts colour it.
#[derive(Debug, Clone, PartialEq)]
pub enum Health {
    /// No sample yet.
    Unknown,
    /// Delivering, nothing refused, the buffer below [`SATURATED_AT`].
    Healthy,
    /// Healthy under load: refusing events or the buffer nearly full, nothing lost.
    Backpressure,
    /// Healthy under load with the drop-oldest policy: the oldest buffered events were
    /// evicted to make room, as that policy is meant to; `evicted` so far in the run.
    Evicting {
        /// Accepted events evicted since the run started.
        evicted: u64,
    },
    /// Something is wrong; the text says what.
    Problem(String),
}

impl Health {
    /// Judges the newest sample of a run under `policy` (`None`: not known, as when
    /// watching a run without its results; only drop-oldest evicts, so evictions are
    /// taken as its), and whether the run died without finishing.
    ///
    /// ```
    /// use dashboards::Health;
    /// use runlog::{Policy, Sample};
    /// let mut s = Sample { phase: "run".into(), delivered_per_sec: 10.0, ..Default::default() };
    /// s.rejected_per_sec = 500.0;
    /// assert_eq!(Health::of(Some(&s), Some(Policy::Reject), false), Health::Backpressure);
    /// s.totals.dropped = 3;
    /// assert!(Health::of(Some(&s), Some(Policy::Reject), false).is_problem());
    /// assert_eq!(
    ///     Health::of(Some(&s), Some(Policy::DropOldest), false),
    ///     Health::Evicting { evicted: 3 }
    /// );
    /// ```
    #[must_use]
    pub fn of(latest: Option<&Sample>, policy: Option<Policy>, gone: bool) -> Self {
        if gone {
            return Self::Problem("the run died before it finished".to_owned());
        }
        let Some(s) = latest else {
            return Self::Unknown;
        };
        let evicts = matches!(policy, None | Some(Policy::DropOldest));
        if s.totals.dropped > 0 && !evicts {
            return Self::Problem(format!(
                "{} accepted events evicted (lost)",
                runlog::human::count(s.totals.dropped)
            ));
        }
        let stalled = s.phase == "run"
            && !s.paused
            && s.interval_s > 0.0
            && s.delivered_per_sec == 0.0
            && s.buffered_items > 0;
        if stalled {
            return Self::Problem("nothing delivered in the last interval".to_owned());
        }
        let limit = s.limits.max_buffered_bytes;
        let full = limit > 0 && s.buffered_bytes as f64 >= SATURATED_AT * limit as f64;
        if s.totals.dropped > 0 {
            Self::Evicting {
                evicted: s.totals.dropped,
            }
        } else if s.rejected_per_sec > 0.0 || full {
            Self::Backpressure
        } else {
            Self::Healthy
        }
    }

    /// Whether this is a real problem (the only case drawn red).
    #[must_use]
    pub fn is_problem(&self) -> bool {
        matches!(self, Self::Problem(_))
    }

    /// Whether this is the load the run is meant to show (drawn yellow): backpressure,
    /// or evictions under drop-oldest.
    #[must_use]
    pub fn is_expected_load(&self) -> bool {
        matches!(self, Self::Backpressure | Self::Evicting { .. })
    }

    /// The header's badge for it: its text and whether it is a problem; `None` when
    /// there is nothing to say.
    #[must_use]
    pub fn badge(&self) -> Option<(String, bool)> {
        match self {
            Self::Unknown | Self::Healthy => None,
            Self::Backpressure => Some(("BACKPRESSURE (expected)".to_owned(), false)),
            Self::Evicting { evicted } => Some((
                format!(
                    "EVICTING OLDEST (policy): {} evicted",
                    runlog::human::count(*evicted)
                ),
                false,
            )),
            Self::Problem(why) => Some((format!("PROBLEM: {why}"), true)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn running() -> Sample {
        Sample {
            phase: "run".into(),
            interval_s: 1.0,
            delivered_per_sec: 1000.0,
            buffered_items: 10,
            ..Default::default()
        }
    }

    const REJECT: Option<Policy> = Some(Policy::Reject);
    const DROP_OLDEST: Option<Policy> = Some(Policy::DropOldest);

    #[test]
    fn a_saturated_run_is_backpressure_not_a_problem() {
        let mut s = running();
        assert_eq!(Health::of(Some(&s), REJECT, false), Health::Healthy);
        s.rejected_per_sec = 1e5;
        assert_eq!(Health::of(Some(&s), REJECT, false), Health::Backpressure);
        s.rejected_per_sec = 0.0;
        s.limits.max_buffered_bytes = 100;
        s.buffered_bytes = 95;
        assert_eq!(Health::of(Some(&s), REJECT, false), Health::Backpressure);
        assert!(Health::Backpressure.is_expected_load());
    }

    #[test]
    fn evicting_the_oldest_is_drop_oldest_working_not_a_problem() {
        let mut s = running();
        s.limits.max_buffered_bytes = 100;
        s.buffered_bytes = 100;
        s.dropped_per_sec = 2_000.0;
        s.totals.dropped = 1_500;
        for policy in [DROP_OLDEST, None] {
            let health = Health::of(Some(&s), policy, false);
            assert_eq!(health, Health::Evicting { evicted: 1_500 }, "{policy:?}");
            assert!(!health.is_problem() && health.is_expected_load());
            let (text, problem) = health.badge().expect("a badge");
            assert_eq!(text, "EVICTING OLDEST (policy): 1.5k evicted");
            assert!(!problem);
        }
        // A real problem still wins over the policy's evictions.
        s.delivered_per_sec = 0.0;
        assert!(Health::of(Some(&s), DROP_OLDEST, false).is_problem());
        assert!(Health::of(Some(&running()), DROP_OLDEST, true).is_problem());
    }

    #[test]
    fn eviction_under_a_policy_that_never_evicts_is_a_problem() {
        let mut s = running();
        s.totals.dropped = 1;
        for policy in [REJECT, Some(Policy::Block)] {
            let health = Health::of(Some(&s), policy, false);
            assert!(health.is_problem(), "{policy:?}: {health:?}");
            let (text, problem) = health.badge().expect("a badge");
            assert_eq!(text, "PROBLEM: 1 accepted events evicted (lost)");
            assert!(problem);
        }
    }

    #[test]
    fn loss_a_stall_or_a_dead_run_is_a_problem() {
        let mut s = running();
        s.totals.dropped = 1;
        assert!(Health::of(Some(&s), REJECT, false).is_problem());
        let mut s = running();
        s.delivered_per_sec = 0.0;
        assert!(Health::of(Some(&s), REJECT, false).is_problem());
        s.paused = true;
        assert!(
            !Health::of(Some(&s), REJECT, false).is_problem(),
            "paused: nothing to deliver"
        );
        assert!(Health::of(Some(&running()), REJECT, true).is_problem());
        assert_eq!(Health::of(None, REJECT, false), Health::Unknown);
    }
}
