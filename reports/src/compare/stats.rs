//! The noise model: a percentile bootstrap of the relative change of the median.
//!
//! Each side's values (one per run, or one per sample interval) are resampled with
//! replacement; the change `median(candidate*) / median(base*) - 1` is computed for every
//! resample, and the 2.5th and 97.5th percentiles of those changes are the 95% confidence
//! interval. The median, not the mean: one run hit by a neighbour's build moves a mean,
//! not a median. The resampling is seeded, so the same records always give the same
//! interval.

/// Resamples drawn.
pub const RESAMPLES: usize = 2_000;
/// The confidence of the interval.
pub const CONFIDENCE: f64 = 0.95;
/// The seed of the resampling (fixed: a comparison is reproducible).
pub const SEED: u64 = 0x6d65_7472_6f6e;

/// The median of `values` (the mean of the middle two for an even count); `None` when empty.
#[must_use]
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v = values.to_vec();
    median_in_place(&mut v)
}

fn median_in_place(v: &mut [f64]) -> Option<f64> {
    let n = v.len();
    if n == 0 {
        return None;
    }
    let (_, &mut upper, _) = v.select_nth_unstable_by(n / 2, f64::total_cmp);
    if n % 2 == 1 {
        return Some(upper);
    }
    let lower = v[..n / 2].iter().copied().fold(f64::NEG_INFINITY, f64::max);
    Some((lower + upper) / 2.0)
}

/// The estimated relative change of the median, in percent, and its confidence interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Change {
    /// `median(candidate) / median(base) - 1`, percent.
    pub estimate_pct: f64,
    /// The bootstrap interval, percent.
    pub ci_pct: (f64, f64),
}

/// The relative change of the median from `base` to `candidate` with its bootstrap
/// interval; `None` when a side is empty or the base median is not positive (no relative
/// change exists).
#[must_use]
pub fn change(base: &[f64], candidate: &[f64]) -> Option<Change> {
    let (b, c) = (median(base)?, median(candidate)?);
    if b <= 0.0 {
        return None;
    }
    let mut rng = fastrand::Rng::with_seed(SEED);
    let (mut rb, mut rc) = (vec![0.0; base.len()], vec![0.0; candidate.len()]);
    let mut changes = Vec::with_capacity(RESAMPLES);
    for _ in 0..RESAMPLES {
        resample(&mut rng, base, &mut rb);
        resample(&mut rng, candidate, &mut rc);
        let (mb, mc) = (median_in_place(&mut rb)?, median_in_place(&mut rc)?);
        if mb > 0.0 {
            changes.push((mc / mb - 1.0) * 100.0);
        }
    }
    if changes.is_empty() {
        return None;
    }
    changes.sort_by(f64::total_cmp);
    let tail = (1.0 - CONFIDENCE) / 2.0;
    let at = |q: f64| changes[((changes.len() - 1) as f64 * q).round() as usize];
    Some(Change {
        estimate_pct: (c / b - 1.0) * 100.0,
        ci_pct: (at(tail), at(1.0 - tail)),
    })
}

fn resample(rng: &mut fastrand::Rng, from: &[f64], into: &mut [f64]) {
    for slot in into.iter_mut() {
        *slot = from[rng.usize(..from.len())];
    }
}

/// The most runs a side [`needed`] names; beyond it the spread, not the count, is the
/// problem.
pub const MAX_NEEDED: usize = 100;

/// How many values a side would need for the interval to settle the verdict, if the spread
/// stays as it is: the interval narrows as one over the square root of the count. `None`
/// when the estimate sits so close to the noise threshold, or the spread is so wide, that
/// more than [`MAX_NEEDED`] would be needed.
#[must_use]
pub fn needed(n: usize, change: &Change, noise_pct: f64) -> Option<usize> {
    let half = (change.ci_pct.1 - change.ci_pct.0) / 2.0;
    let distance = (change.estimate_pct.abs() - noise_pct).abs();
    if distance < noise_pct * 0.1 || half <= 0.0 {
        return None;
    }
    let factor = (half / distance).powi(2);
    let needed = ((n as f64 * factor).ceil() as usize).max(n + 1);
    (needed <= MAX_NEEDED).then_some(needed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn identical_sides_have_no_change_and_a_tight_interval() {
        let a = [100.0, 101.0, 99.0, 100.5, 99.5];
        let c = change(&a, &a).unwrap();
        assert_eq!(c.estimate_pct, 0.0);
        assert!(
            c.ci_pct.0 < 0.0 && c.ci_pct.1 > 0.0 && c.ci_pct.1 < 2.0,
            "{c:?}"
        );
    }

    #[test]
    fn a_halving_is_seen_with_a_narrow_interval() {
        let a = [100.0, 101.0, 99.0, 100.5, 99.5];
        let b: Vec<f64> = a.iter().map(|x| x / 2.0).collect();
        let c = change(&a, &b).unwrap();
        assert!((c.estimate_pct + 50.0).abs() < 1e-9);
        assert!(c.ci_pct.1 < -45.0, "{c:?}");
    }

    #[test]
    fn the_interval_is_reproducible_and_needs_a_positive_base() {
        let a = [1.0, 5.0, 2.0, 8.0];
        let b = [3.0, 1.0, 9.0, 4.0];
        assert_eq!(change(&a, &b), change(&a, &b));
        assert_eq!(change(&[0.0], &[1.0]), None);
    }

    #[test]
    fn more_runs_are_needed_the_wider_the_interval() {
        let c = Change {
            estimate_pct: 10.0,
            ci_pct: (-2.0, 22.0),
        };
        // Half-width 12 must shrink to 5 (10% estimate, 5% noise): (12/5)^2 = 5.76x.
        assert_eq!(needed(3, &c, 5.0), Some(18));
        let edge = Change {
            estimate_pct: 5.1,
            ..c
        };
        assert_eq!(needed(3, &edge, 5.0), None);
    }
}
