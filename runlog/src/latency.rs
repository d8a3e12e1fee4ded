//! Latency percentiles, in microseconds, summarized from an HdrHistogram.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Enqueue-to-delivery latency percentiles, in microseconds.
///
/// All fields are zero when nothing was delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Number of recorded deliveries.
    pub count: u64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest recorded value.
    pub max: u64,
}

impl LatencySummary {
    /// Summarizes a histogram whose values are microseconds.
    ///
    /// Percentiles are HdrHistogram's (equivalent within the histogram's precision).
    ///
    /// ```
    /// use hdrhistogram::Histogram;
    /// let mut h = Histogram::<u64>::new(3).unwrap();
    /// for us in 1..=1000 {
    ///     h.record(us).unwrap();
    /// }
    /// let s = runlog::LatencySummary::from_histogram(&h);
    /// assert_eq!((s.count, s.p50, s.p99, s.max), (1000, 500, 990, 1000));
    /// ```
    #[must_use]
    pub fn from_histogram(histogram: &Histogram<u64>) -> Self {
        if histogram.is_empty() {
            return Self::default();
        }
        Self {
            count: histogram.len(),
            p50: histogram.value_at_quantile(0.50),
            p90: histogram.value_at_quantile(0.90),
            p99: histogram.value_at_quantile(0.99),
            p999: histogram.value_at_quantile(0.999),
            max: histogram.max(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_histogram_is_all_zero() {
        let h = Histogram::<u64>::new(3).unwrap();
        assert_eq!(
            LatencySummary::from_histogram(&h),
            LatencySummary::default()
        );
    }

    #[test]
    fn percentiles_are_ordered() {
        let mut h = Histogram::<u64>::new(3).unwrap();
        for v in [5, 7, 9, 200, 300_000] {
            h.record(v).unwrap();
        }
        let s = LatencySummary::from_histogram(&h);
        assert!(s.p50 <= s.p90 && s.p90 <= s.p99 && s.p99 <= s.p999 && s.p999 <= s.max);
        assert_eq!(s.count, 5);
        assert_eq!(h.highest_equivalent(300_000), s.max);
    }
}
