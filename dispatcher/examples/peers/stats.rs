//! The statistics of the verdict: medians, ranges, and a bootstrap interval
//! of the median. The values are the rounds' paired ratios (dispatcher /
//! peer, measured in the same round), not two independent sets of runs.

use std::fmt;

/// Resamples drawn for an interval.
const RESAMPLES: usize = 2000;

/// The median and the range of a set of values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Spread {
    pub(crate) median: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
}

impl Spread {
    /// Of a non-empty set.
    pub(crate) fn of(values: &[f64]) -> Spread {
        let sorted = sorted(values);
        Spread {
            median: median_of_sorted(&sorted),
            min: sorted[0],
            max: sorted[sorted.len() - 1],
        }
    }
}

impl fmt::Display for Spread {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.2} ({:.2}-{:.2})", self.median, self.min, self.max)
    }
}

/// A 95% percentile-bootstrap interval of the median of `values` (non-empty):
/// the values are drawn again with replacement, `RESAMPLES` times, with a
/// generator seeded by `seed` (the same input gives the same interval).
pub(crate) fn median_interval(values: &[f64], seed: u64) -> (f64, f64) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut draw = vec![0.0; values.len()];
    let mut medians: Vec<f64> = (0..RESAMPLES)
        .map(|_| {
            for slot in &mut draw {
                *slot = values[rng.usize(..values.len())];
            }
            draw.sort_by(f64::total_cmp);
            median_of_sorted(&draw)
        })
        .collect();
    medians.sort_by(f64::total_cmp);
    let at = |share: f64| medians[((RESAMPLES - 1) as f64 * share).round() as usize];
    (at(0.025), at(0.975))
}

/// How far from 1 the whole interval must be for a verdict other than
/// "even". Two runs of the same thing differ by that much on a shared
/// 2-core machine: against itself (`--peers control`, 15 sweeps of 15
/// rounds, 135 pairs), the interval alone excluded 1 in 13 pairs (10%, for
/// a nominal 5%), and excluded 1 +- `EVEN_WITHIN` in 1.
pub(crate) const EVEN_WITHIN: f64 = 0.05;

/// Where the dispatcher stands against a peer, from the interval of the
/// median ratio (dispatcher / peer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The whole interval is above 1 + [`EVEN_WITHIN`].
    Ahead,
    /// The whole interval is below 1 - [`EVEN_WITHIN`].
    Behind,
    /// The interval reaches into 1 +- [`EVEN_WITHIN`]: the rounds cannot
    /// tell them apart from two runs of the same thing.
    Even,
}

impl Verdict {
    pub(crate) fn of(lo: f64, hi: f64) -> Verdict {
        if lo > 1.0 + EVEN_WITHIN {
            Verdict::Ahead
        } else if hi < 1.0 - EVEN_WITHIN {
            Verdict::Behind
        } else {
            Verdict::Even
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Ahead => "ahead",
            Verdict::Behind => "behind",
            Verdict::Even => "even (within noise)",
        })
    }
}

fn sorted(values: &[f64]) -> Vec<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted
}

fn median_of_sorted(sorted: &[f64]) -> f64 {
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_gives_the_median_and_range() {
        let odd = Spread::of(&[3.0, 1.0, 2.0]);
        assert_eq!((odd.median, odd.min, odd.max), (2.0, 1.0, 3.0));
        let even = Spread::of(&[4.0, 1.0, 3.0, 2.0]);
        assert_eq!((even.median, even.min, even.max), (2.5, 1.0, 4.0));
        assert_eq!(even.to_string(), "2.50 (1.00-4.00)");
    }

    #[test]
    fn the_interval_holds_the_median_and_stays_in_the_range() {
        let values = [0.9, 1.1, 1.0, 1.3, 0.8, 1.2, 1.05];
        let (lo, hi) = median_interval(&values, 7);
        assert!(lo <= 1.05 && 1.05 <= hi, "({lo}, {hi})");
        assert!(lo >= 0.8 && hi <= 1.3, "({lo}, {hi})");
        assert_eq!(median_interval(&values, 7), (lo, hi), "seeded: repeatable");
    }

    #[test]
    fn identical_values_give_a_point_interval() {
        assert_eq!(median_interval(&[1.5; 9], 1), (1.5, 1.5));
    }

    #[test]
    fn noisy_rounds_around_one_are_even_and_clear_ones_are_not() {
        // Ratios of two runs of the same thing on a noisy machine.
        let noise = [0.81, 0.96, 1.05, 1.17, 1.17, 1.00, 0.88, 1.12, 0.93, 1.04];
        let (lo, hi) = median_interval(&noise, 3);
        assert_eq!(Verdict::of(lo, hi), Verdict::Even, "({lo}, {hi})");
        let ahead: Vec<f64> = noise.iter().map(|r| r * 1.6).collect();
        let (lo, hi) = median_interval(&ahead, 3);
        assert_eq!(Verdict::of(lo, hi), Verdict::Ahead, "({lo}, {hi})");
        let behind: Vec<f64> = noise.iter().map(|r| r * 0.6).collect();
        let (lo, hi) = median_interval(&behind, 3);
        assert_eq!(Verdict::of(lo, hi), Verdict::Behind, "({lo}, {hi})");
    }

    #[test]
    fn an_interval_must_clear_the_noise_band_not_only_one() {
        // Intervals that exclude 1 but not 1 +- 5%: what two runs of the
        // dispatcher itself gave on this machine.
        assert_eq!(Verdict::of(1.01, 1.04), Verdict::Even);
        assert_eq!(Verdict::of(0.96, 0.99), Verdict::Even);
        assert_eq!(Verdict::of(1.03, 1.25), Verdict::Even);
        assert_eq!(Verdict::of(0.73, 0.99), Verdict::Even);
        // Clear of the band on either side.
        assert_eq!(Verdict::of(1.06, 1.20), Verdict::Ahead);
        assert_eq!(Verdict::of(0.74, 0.94), Verdict::Behind);
        // The band's edges belong to it.
        assert_eq!(Verdict::of(1.0 + EVEN_WITHIN, 1.3), Verdict::Even);
        assert_eq!(Verdict::of(0.7, 1.0 - EVEN_WITHIN), Verdict::Even);
    }
}
