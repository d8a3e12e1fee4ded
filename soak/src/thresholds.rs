//! The user's thresholds judged against the finished record, and what the verdict left
//! unjudged (latency and throughput without a threshold are said to be not judged, never
//! silently passed).

use runlog::{RunResults, ThresholdResult};

use crate::human;

/// Judges every threshold of the run's scenario against its record, and lists what the
/// verdict does not cover.
pub fn judge(results: &RunResults) -> (Vec<ThresholdResult>, Vec<String>) {
    let thresholds = &results.config.thresholds;
    let judged = thresholds.iter().map(|t| t.evaluate(results)).collect();
    (judged, not_judged(results))
}

/// Latency and throughput, when no threshold judges them.
fn not_judged(r: &RunResults) -> Vec<String> {
    let thresholds = &r.config.thresholds;
    let mut out = Vec::new();
    if r.config.record_latency && r.latency_us.count > 0 && !thresholds.judges_latency() {
        let target = r.config.interval_us.saturating_mul(2);
        out.push(format!(
            "latency not judged: p99 {} at a {} interval (no latency threshold; e.g. --threshold 'p99<{}')",
            human::micros(r.latency_us.p99),
            human::micros(r.config.interval_us),
            threshold_duration(target),
        ));
    }
    if !thresholds.judges_throughput() {
        out.push(format!(
            "throughput not judged: {} delivered/s (no throughput threshold; e.g. --threshold 'delivered_per_sec>{}')",
            human::count(r.throughput.avg_delivered_per_sec),
            human::count(r.throughput.avg_delivered_per_sec * 0.9).replace(' ', ""),
        ));
    }
    out
}

/// A duration as a threshold value: `20ms`, `500us`, `2s`.
fn threshold_duration(us: u64) -> String {
    if us >= 1_000_000 && us % 1_000_000 == 0 {
        format!("{}s", us / 1_000_000)
    } else if us >= 1_000 && us % 1_000 == 0 {
        format!("{}ms", us / 1_000)
    } else {
        format!("{us}us")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_without_a_threshold_is_not_judged_and_says_so() {
        let mut r = RunResults::default();
        r.latency_us.count = 10;
        r.latency_us.p99 = 418_000;
        let (judged, not) = judge(&r);
        assert!(judged.is_empty());
        assert!(
            not[0].starts_with("latency not judged: p99 418") && not[0].contains("'p99<20ms'"),
            "{not:?}"
        );
        r.config.thresholds.merge(["p99<50ms".parse().unwrap()]);
        let (judged, not) = judge(&r);
        assert!(!judged[0].passed);
        assert!(not.iter().all(|n| !n.starts_with("latency")), "{not:?}");
    }
}
