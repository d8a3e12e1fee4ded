//! The verdict on each metric: values from runs (at least [`MIN_RUNS`] a side) or else
//! from sample intervals, the bootstrap interval of the change of their median, and the
//! verdict against the noise threshold. Sample intervals can show that two runs agree
//! (no change), never that one is worse or better: they hold none of the variation
//! between runs.

use super::metrics::{METRICS, MetricDef, intervals};
use super::stats::{self, Change};
use super::{Basis, Direction, MIN_INTERVALS, MIN_RUNS, MetricComparison, Side, Verdict};
use crate::figures::KeyFigures;

/// Every metric of both sides, judged.
pub(super) fn judge_all(
    base: &Side,
    candidate: &Side,
    noise_pct: Option<f64>,
    primary: &[&str],
) -> Vec<MetricComparison> {
    let figures =
        |side: &Side| -> Vec<KeyFigures> { side.runs.iter().map(KeyFigures::of).collect() };
    let (fb, fc) = (figures(base), figures(candidate));
    METRICS
        .iter()
        .map(|m| {
            let noise = noise_pct.unwrap_or(m.noise_pct);
            let mut judged = judge(m, (base, candidate), (&fb, &fc), noise);
            judged.primary = primary.contains(&m.key);
            judged
        })
        .collect()
}

/// The values a metric is judged on, and where they came from.
fn values(
    m: &MetricDef,
    sides: (&Side, &Side),
    figures: (&[KeyFigures], &[KeyFigures]),
) -> (Vec<f64>, Vec<f64>, Basis) {
    let runs = |f: &[KeyFigures]| -> Vec<f64> { f.iter().filter_map(m.run).collect() };
    let (rb, rc) = (runs(figures.0), runs(figures.1));
    if rb.is_empty() || rc.is_empty() {
        return (rb, rc, Basis::Missing);
    }
    if rb.len() >= MIN_RUNS && rc.len() >= MIN_RUNS {
        return (rb, rc, Basis::Runs);
    }
    if let Some(read) = m.interval {
        let (ib, ic) = (
            intervals(&sides.0.runs, read),
            intervals(&sides.1.runs, read),
        );
        if ib.len() >= MIN_INTERVALS && ic.len() >= MIN_INTERVALS {
            return (ib, ic, Basis::Intervals);
        }
    }
    (rb, rc, Basis::TooFew)
}

fn judge(
    m: &MetricDef,
    sides: (&Side, &Side),
    figures: (&[KeyFigures], &[KeyFigures]),
    noise: f64,
) -> MetricComparison {
    let (vb, vc, basis) = values(m, sides, figures);
    let (base, candidate) = (stats::median(&vb), stats::median(&vc));
    let mut out = MetricComparison {
        key: m.key,
        label: m.label,
        direction: m.direction,
        unit: m.unit,
        primary: false,
        base,
        candidate,
        counts: (vb.len(), vc.len()),
        change_pct: None,
        ci_pct: None,
        noise_pct: noise,
        basis,
        verdict: Verdict::Unavailable,
        runs_needed: None,
        note: String::new(),
    };
    let (Some(b), Some(c)) = (base, candidate) else {
        out.note = "a side did not measure it".into();
        return out;
    };
    out.change_pct = (b > 0.0).then(|| (c / b - 1.0) * 100.0);
    if b == c && (basis == Basis::TooFew || b == 0.0) {
        out.verdict = Verdict::NoChange;
        out.note = "identical on both sides".into();
        return out;
    }
    if basis == Basis::TooFew {
        out.verdict = Verdict::Inconclusive;
        out.runs_needed = Some(MIN_RUNS);
        out.note = format!(
            "{} and {} runs: fewer than {MIN_RUNS} a side say nothing about this metric's noise; needs at least {MIN_RUNS} runs a side (--repeat {MIN_RUNS})",
            vb.len(),
            vc.len()
        );
        return out;
    }
    let Some(change) = stats::change(&vb, &vc) else {
        out.verdict = Verdict::Inconclusive;
        out.note = "no relative change from a base of zero".into();
        return out;
    };
    out.ci_pct = Some(change.ci_pct);
    let judged = classify(m.direction, &change, noise);
    // Sample intervals hold none of the variation between runs: two runs of one build,
    // back to back, differed by 27% in theirs (`aa-delay0`). From them a difference
    // beyond the noise is a lead, not a verdict.
    out.verdict = match judged {
        Verdict::Regressed | Verdict::Improved if basis == Basis::Intervals => {
            Verdict::Inconclusive
        }
        judged => judged,
    };
    out.runs_needed = match (out.verdict, basis) {
        (Verdict::Inconclusive, Basis::Runs) => {
            stats::needed(vb.len().min(vc.len()), &change, noise)
        }
        // Single runs cannot settle it, however many sample intervals they hold.
        (Verdict::Inconclusive, _) => Some(MIN_RUNS),
        _ => None,
    };
    out.note = note(&out, judged, &change);
    out
}

/// The verdict of a change against the noise threshold: regressed or improved only when
/// the whole interval is beyond it, no change only when the whole interval is within it.
pub(super) fn classify(direction: Direction, change: &Change, noise: f64) -> Verdict {
    let (lo, hi) = change.ci_pct;
    let (worse_lo, worse_hi) = match direction {
        Direction::HigherIsBetter => (-hi, -lo),
        Direction::LowerIsBetter => (lo, hi),
    };
    if worse_lo > noise {
        Verdict::Regressed
    } else if worse_hi < -noise {
        Verdict::Improved
    } else if lo >= -noise && hi <= noise {
        Verdict::NoChange
    } else {
        Verdict::Inconclusive
    }
}

/// What the verdict rests on; `judged` is the interval's verdict before single runs'
/// sample intervals were kept from calling a difference.
fn note(m: &MetricComparison, judged: Verdict, change: &Change) -> String {
    let (lo, hi) = change.ci_pct;
    let ci = format!("95% CI {lo:+.1}%..{hi:+.1}%");
    let noise = m.noise_pct;
    let said = match (judged, m.runs_needed) {
        (Verdict::Regressed | Verdict::Improved, needed) => {
            let way = if judged == Verdict::Regressed {
                "worse"
            } else {
                "better"
            };
            let beyond = format!(
                "{way} by {:.1}% ({ci}), beyond the ±{noise}% noise threshold",
                change.estimate_pct.abs()
            );
            match needed {
                Some(n) => format!("{beyond}, but from fewer than {n} runs a side"),
                None => beyond,
            }
        }
        (Verdict::NoChange, _) => format!("within the ±{noise}% noise threshold ({ci})"),
        (_, Some(n)) if m.basis == Basis::Intervals => format!(
            "the {ci} straddles the ±{noise}% noise threshold, from fewer than {n} runs a side"
        ),
        (_, Some(n)) => format!(
            "the {ci} straddles the ±{noise}% noise threshold: about {n} runs a side would settle it"
        ),
        (_, None) if m.basis == Basis::Runs => format!(
            "the {ci} straddles the ±{noise}% noise threshold: more than {} runs a side would be needed (the spread is too wide, or the change sits at the threshold)",
            stats::MAX_NEEDED
        ),
        (_, None) => format!("the {ci} straddles the ±{noise}% noise threshold"),
    };
    if m.basis == Basis::Intervals {
        format!("{said}; {INTERVALS_CAVEAT}")
    } else {
        said
    }
}

/// What a verdict drawn from sample intervals does not cover.
pub(crate) const INTERVALS_CAVEAT: &str = "noise from the runs' own sample intervals, not from repeated runs: run-to-run variation is not in it (--repeat 3 or more measures it)";

#[cfg(test)]
mod tests {
    use super::*;

    fn change(lo: f64, hi: f64) -> Change {
        Change {
            estimate_pct: (lo + hi) / 2.0,
            ci_pct: (lo, hi),
        }
    }

    #[test]
    fn verdicts_need_the_whole_interval_past_or_within_the_noise() {
        let up = Direction::HigherIsBetter;
        let down = Direction::LowerIsBetter;
        assert_eq!(classify(up, &change(-20.0, -8.0), 5.0), Verdict::Regressed);
        assert_eq!(classify(down, &change(-20.0, -8.0), 5.0), Verdict::Improved);
        assert_eq!(classify(down, &change(8.0, 20.0), 5.0), Verdict::Regressed);
        assert_eq!(classify(up, &change(-3.0, 4.0), 5.0), Verdict::NoChange);
        assert_eq!(classify(up, &change(-3.0, 9.0), 5.0), Verdict::Inconclusive);
        // Significant but small: within the noise threshold on both ends is no change.
        assert_eq!(classify(up, &change(1.0, 3.0), 5.0), Verdict::NoChange);
    }
}
