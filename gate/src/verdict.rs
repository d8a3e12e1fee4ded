//! Compares a measurement with a baseline: one verdict per metric.

use std::fmt;

use crate::baseline::{Baseline, Metric};

/// How one metric fared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Within its threshold (or better).
    Pass,
    /// Moved the wrong way past its threshold.
    Fail,
    /// Measured, but not in the baseline: reported, never failing.
    New,
    /// In the baseline, but not measured: the baseline is stale.
    Missing,
}

impl Outcome {
    /// Whether this outcome fails the gate.
    pub(crate) fn fails(self) -> bool {
        matches!(self, Outcome::Fail | Outcome::Missing)
    }

    fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "PASS",
            Outcome::Fail => "FAIL",
            Outcome::New => "NEW (not in baseline)",
            Outcome::Missing => "FAIL (in baseline, not measured)",
        }
    }
}

/// One metric's verdict line.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Verdict {
    pub(crate) name: String,
    pub(crate) baseline: Option<f64>,
    pub(crate) current: Option<f64>,
    pub(crate) threshold_pct: Option<f64>,
    pub(crate) outcome: Outcome,
}

impl Verdict {
    /// The signed change from baseline to current, in percent of the
    /// baseline (`None` if either is missing; infinite from a zero baseline).
    pub(crate) fn change_pct(&self) -> Option<f64> {
        let (base, cur) = (self.baseline?, self.current?);
        Some(if base == 0.0 {
            if cur == 0.0 {
                0.0
            } else {
                f64::INFINITY.copysign(cur)
            }
        } else {
            (cur - base) / base.abs() * 100.0
        })
    }
}

fn number(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{v:.3}"))
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let change = self
            .change_pct()
            .map_or_else(|| "-".to_owned(), |c| format!("{c:+.2}%"));
        let threshold = self
            .threshold_pct
            .map_or_else(|| "-".to_owned(), |t| format!("{t}%"));
        // The formatter's width pads the name, so a caller can align a table.
        let name_width = f.width().unwrap_or(0);
        write!(
            f,
            "{:<name_width$}  baseline {:>10}  current {:>10}  change {:>8}  threshold {:>4}  {}",
            self.name,
            number(self.baseline),
            number(self.current),
            change,
            threshold,
            self.outcome.as_str()
        )
    }
}

/// Whether `current` moved past `metric`'s threshold in the wrong direction.
/// From a zero baseline any move the wrong way regresses.
pub(crate) fn regressed(metric: &Metric, current: f64) -> bool {
    // Rounding slack only: the counts are exact, their quotients are not.
    const SLACK: f64 = 1e-9;
    let allowed = metric.value.abs() * metric.threshold_pct / 100.0 + SLACK;
    if metric.lower_is_better {
        current > metric.value + allowed
    } else {
        current < metric.value - allowed
    }
}

/// One verdict per metric of either side, baseline order first.
pub(crate) fn compare(baseline: &Baseline, current: &Baseline) -> Vec<Verdict> {
    let mut verdicts: Vec<Verdict> = baseline
        .metrics
        .iter()
        .map(|(name, metric)| {
            let now = current.metrics.get(name).map(|m| m.value);
            let outcome = match now {
                None => Outcome::Missing,
                Some(now) if regressed(metric, now) => Outcome::Fail,
                Some(_) => Outcome::Pass,
            };
            Verdict {
                name: name.clone(),
                baseline: Some(metric.value),
                current: now,
                threshold_pct: Some(metric.threshold_pct),
                outcome,
            }
        })
        .collect();
    verdicts.extend(
        current
            .metrics
            .iter()
            .filter(|(name, _)| !baseline.metrics.contains_key(*name))
            .map(|(name, metric)| Verdict {
                name: name.clone(),
                baseline: None,
                current: Some(metric.value),
                threshold_pct: None,
                outcome: Outcome::New,
            }),
    );
    verdicts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metric(value: f64, threshold_pct: f64, lower_is_better: bool) -> Metric {
        Metric {
            value,
            unit: "u".into(),
            lower_is_better,
            threshold_pct,
        }
    }

    fn set(entries: &[(&str, Metric)]) -> Baseline {
        Baseline {
            metrics: entries
                .iter()
                .map(|(n, m)| ((*n).to_owned(), m.clone()))
                .collect(),
        }
    }

    #[test]
    fn threshold_is_inclusive_and_directional() {
        let lower = metric(100.0, 5.0, true);
        assert!(!regressed(&lower, 105.0));
        assert!(regressed(&lower, 105.01));
        assert!(!regressed(&lower, 50.0));
        let higher = metric(100.0, 5.0, false);
        assert!(!regressed(&higher, 95.0));
        assert!(regressed(&higher, 94.99));
        assert!(!regressed(&higher, 200.0));
    }

    #[test]
    fn from_zero_any_increase_regresses() {
        let zero = metric(0.0, 10.0, true);
        assert!(!regressed(&zero, 0.0));
        assert!(regressed(&zero, 0.001));
    }

    #[test]
    fn verdicts_cover_both_sides() {
        let base = set(&[
            ("a", metric(100.0, 5.0, true)),
            ("gone", metric(1.0, 5.0, true)),
        ]);
        let now = set(&[
            ("a", metric(120.0, 5.0, true)),
            ("fresh", metric(3.0, 5.0, true)),
        ]);
        let v = compare(&base, &now);
        let outcomes: Vec<_> = v.iter().map(|v| (v.name.as_str(), v.outcome)).collect();
        assert_eq!(
            outcomes,
            [
                ("a", Outcome::Fail),
                ("gone", Outcome::Missing),
                ("fresh", Outcome::New)
            ]
        );
        assert_eq!(v[0].change_pct(), Some(20.0));
        let line = v[0].to_string();
        for part in ["a ", "100.000", "120.000", "+20.00%", "5%", "FAIL"] {
            assert!(line.contains(part), "{line}");
        }
        assert!(!Outcome::New.fails() && Outcome::Missing.fails());
    }

    #[test]
    fn change_from_zero_is_infinite_not_nan() {
        let v = Verdict {
            name: "z".into(),
            baseline: Some(0.0),
            current: Some(1.0),
            threshold_pct: Some(1.0),
            outcome: Outcome::Fail,
        };
        assert_eq!(v.change_pct(), Some(f64::INFINITY));
        assert!(v.to_string().contains("+inf%"));
    }
}
