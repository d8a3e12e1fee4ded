//! Whether what the run shows is trouble, or the backpressure a loaded run is meant to
//! show.
//!
//! A saturated run refuses events (reject policy), blocks producers (block) or fills its
//! buffer: that is the dispatcher doing its job under a consumer slower than its
//! producers, which the default scenario sets up on purpose, so it is shown as expected
//! (yellow), never as an alarm. Red is kept for real problems: events lost after they
//! were accepted, a run that stopped delivering, a run that died.

use runlog::Sample;

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
    /// Something is wrong; the text says what.
    Problem(String),
}

impl Health {
    /// Judges the newest sample (and whether the run died without finishing).
    ///
    /// ```
    /// use dashboards::Health;
    /// use runlog::Sample;
    /// let mut s = Sample { phase: "run".into(), delivered_per_sec: 10.0, ..Default::default() };
    /// s.rejected_per_sec = 500.0;
    /// assert_eq!(Health::of(Some(&s), false), Health::Backpressure);
    /// s.totals.dropped = 3;
    /// assert!(matches!(Health::of(Some(&s), false), Health::Problem(_)));
    /// ```
    #[must_use]
    pub fn of(latest: Option<&Sample>, gone: bool) -> Self {
        if gone {
            return Self::Problem("the run died before it finished".to_owned());
        }
        let Some(s) = latest else {
            return Self::Unknown;
        };
        if s.totals.dropped > 0 {
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
        if s.rejected_per_sec > 0.0 || full {
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

    #[test]
    fn a_saturated_run_is_backpressure_not_a_problem() {
        let mut s = running();
        assert_eq!(Health::of(Some(&s), false), Health::Healthy);
        s.rejected_per_sec = 1e5;
        assert_eq!(Health::of(Some(&s), false), Health::Backpressure);
        s.rejected_per_sec = 0.0;
        s.limits.max_buffered_bytes = 100;
        s.buffered_bytes = 95;
        assert_eq!(Health::of(Some(&s), false), Health::Backpressure);
    }

    #[test]
    fn loss_a_stall_or_a_dead_run_is_a_problem() {
        let mut s = running();
        s.totals.dropped = 1;
        assert!(Health::of(Some(&s), false).is_problem());
        let mut s = running();
        s.delivered_per_sec = 0.0;
        assert!(Health::of(Some(&s), false).is_problem());
        s.paused = true;
        assert!(
            !Health::of(Some(&s), false).is_problem(),
            "paused: nothing to deliver"
        );
        assert!(Health::of(Some(&running()), true).is_problem());
        assert_eq!(Health::of(None, false), Health::Unknown);
    }
}
