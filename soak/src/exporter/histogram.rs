//! Enqueue-to-delivery latency as a Prometheus histogram in seconds
//! (`metronome_latency_seconds_bucket{le}`, `_sum`, `_count`), cumulative over the run, fed
//! with each sample interval's HdrHistogram: a fleet's p99 is then
//! `histogram_quantile(0.99, sum by (le) (rate(metronome_latency_seconds_bucket[1m])))`.
//!
//! The `metrics` facade's histograms keep every recorded value until a scrape (millions a
//! second here), so the buckets are kept and rendered by this module instead.

use std::fmt::Write as _;

use hdrhistogram::Histogram;

/// The histogram's name.
pub const LATENCY_HISTOGRAM: &str = "metronome_latency_seconds";

/// Upper bounds of the buckets, seconds: 1-2-5 steps from 10 µs to 60 s (and `+Inf`).
pub const LATENCY_BUCKETS_S: [f64; 22] = [
    0.000_01, 0.000_02, 0.000_05, 0.000_1, 0.000_2, 0.000_5, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05,
    0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0,
];

/// Cumulative bucket counts, their sum and count.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LatencyBuckets {
    /// Count per bucket (not cumulative), the last one `+Inf`.
    counts: [u64; LATENCY_BUCKETS_S.len() + 1],
    sum_s: f64,
    count: u64,
}

impl LatencyBuckets {
    /// Adds one interval's latencies (microseconds).
    pub fn add(&mut self, interval: &Histogram<u64>) {
        for v in interval.iter_recorded() {
            let (us, n) = (v.value_iterated_to(), v.count_at_value());
            let s = us as f64 / 1e6;
            let bucket = LATENCY_BUCKETS_S.partition_point(|&le| le < s);
            self.counts[bucket] += n;
            self.sum_s += s * n as f64;
            self.count += n;
        }
    }

    /// Latencies counted so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The histogram in the Prometheus text format, every series with `labels` (already
    /// rendered as `name="value",...`).
    pub fn render(&self, labels: &str) -> String {
        let mut out = format!(
            "# HELP {LATENCY_HISTOGRAM} Enqueue-to-delivery latency of delivered events, seconds\n# TYPE {LATENCY_HISTOGRAM} histogram\n"
        );
        let mut cumulative = 0;
        for (i, n) in self.counts.iter().enumerate() {
            cumulative += n;
            let le = LATENCY_BUCKETS_S
                .get(i)
                .map_or_else(|| "+Inf".to_owned(), |b| b.to_string());
            let _ = writeln!(
                out,
                "{LATENCY_HISTOGRAM}_bucket{{{labels},le=\"{le}\"}} {cumulative}"
            );
        }
        let _ = writeln!(out, "{LATENCY_HISTOGRAM}_sum{{{labels}}} {}", self.sum_s);
        let _ = writeln!(out, "{LATENCY_HISTOGRAM}_count{{{labels}}} {}", self.count);
        out
    }
}

/// `run_id="...",scenario="...",host="..."`, values escaped as the text format asks.
pub fn label_text(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            let v = v
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("{k}=\"{v}\"")
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_in_seconds_with_sum_and_count() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).unwrap();
        h.record_n(15, 3).unwrap(); // 15 µs: the 20 µs bucket
        h.record(1_500).unwrap(); // 1.5 ms: the 2 ms bucket
        h.record(90_000_000).unwrap(); // 90 s: only +Inf
        let mut b = LatencyBuckets::default();
        b.add(&h);
        b.add(&h);
        let text = b.render(&label_text(&[("host", "a\"b")]));
        assert!(
            text.contains("# TYPE metronome_latency_seconds histogram\n"),
            "{text}"
        );
        assert!(
            text.contains("metronome_latency_seconds_bucket{host=\"a\\\"b\",le=\"0.00001\"} 0\n")
        );
        assert!(
            text.contains("_bucket{host=\"a\\\"b\",le=\"0.00002\"} 6\n"),
            "{text}"
        );
        assert!(
            text.contains("_bucket{host=\"a\\\"b\",le=\"0.002\"} 8\n"),
            "{text}"
        );
        assert!(
            text.contains("_bucket{host=\"a\\\"b\",le=\"60\"} 8\n"),
            "{text}"
        );
        assert!(
            text.contains("_bucket{host=\"a\\\"b\",le=\"+Inf\"} 10\n"),
            "{text}"
        );
        assert!(text.contains("metronome_latency_seconds_count{host=\"a\\\"b\"} 10\n"));
        assert_eq!(b.count(), 10);
        let sum: f64 = text
            .lines()
            .find(|l| l.starts_with("metronome_latency_seconds_sum"))
            .and_then(|l| l.rsplit(' ').next())
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            (sum - 2.0 * (3.0 * 15e-6 + 1.5e-3 + 90.0)).abs() < 0.2,
            "{sum}"
        );
    }
}
