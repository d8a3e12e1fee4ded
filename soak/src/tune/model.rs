//! A simulated machine with a known edge, for testing the search without
//! real timing: probes cost their planned time but take none.

use super::search::{Machine, Measured, Point};

/// A machine whose limits are known exactly.
///
/// - It delivers at most `capacity_per_sec` events per second.
/// - p99 latency is `base_latency_us` plus the interval, and grows without
///   bound (queueing) once the offered rate passes the capacity.
/// - A burst of `burst_intervals` intervals' worth of offered bytes must fit
///   in the buffered limit, or events are rejected.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelMachine {
    /// Most events per second it can deliver.
    pub capacity_per_sec: f64,
    /// Bytes per event.
    pub event_bytes: f64,
    /// Latency floor, added to the interval.
    pub base_latency_us: u64,
    /// How many intervals' worth of bytes a burst holds.
    pub burst_intervals: f64,
    /// Heap the process needs besides the buffer.
    pub base_heap_bytes: u64,
    /// Probes taken so far.
    pub probes: usize,
}

impl ModelMachine {
    /// A machine delivering at most `capacity_per_sec` events of 300 bytes.
    #[must_use]
    pub fn new(capacity_per_sec: f64) -> Self {
        Self {
            capacity_per_sec,
            event_bytes: 300.0,
            base_latency_us: 1_000,
            burst_intervals: 4.0,
            base_heap_bytes: 8 << 20,
            probes: 0,
        }
    }

    /// The bytes a burst at `rate` holds with this interval.
    #[must_use]
    pub fn burst_bytes(&self, rate: f64, interval_us: u64) -> u64 {
        (rate * self.event_bytes * interval_us as f64 / 1e6 * self.burst_intervals) as u64
    }
}

impl Machine for ModelMachine {
    type Error = std::convert::Infallible;

    fn probe(&mut self, point: &Point, probe_s: f64) -> Result<Measured, Self::Error> {
        self.probes += 1;
        let offered = point
            .rate_per_sec
            .map_or(self.capacity_per_sec * 1.5, |r| r as f64);
        let delivered = offered.min(self.capacity_per_sec);
        let burst = self.burst_bytes(offered, point.interval_us);
        let overflow = burst > point.max_buffered_bytes || offered > self.capacity_per_sec;
        let overload = offered / self.capacity_per_sec.max(1e-9);
        let p99_us = if overload > 1.0 {
            (point.interval_us + self.base_latency_us) * 100
        } else {
            point.interval_us + self.base_latency_us
        };
        let rejected_pct = if overflow {
            (100.0 * (1.0 - delivered / offered)).max(1.0)
        } else {
            0.0
        };
        let held = burst.min(point.max_buffered_bytes);
        Ok(Measured {
            offered_per_sec: offered,
            undelivered: 0,
            earlier: 0,
            delivered_per_sec: delivered,
            delivered_bytes_per_sec: delivered * self.event_bytes,
            rejected_pct,
            p99_us,
            peak_heap_bytes: self.base_heap_bytes + held,
            // A sampled gauge sees only part of the real burst.
            burst_bytes: held / 2,
            elapsed_s: probe_s,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tune::TuneError;
    use crate::tune::recommend::{recommend, write_tuned};
    use crate::tune::search::{Plan, SearchOutcome, search};
    use runlog::ScenarioConfig;

    fn start() -> Point {
        Point {
            interval_us: 10_000,
            max_batch_bytes: 32 << 10,
            max_buffered_bytes: 64 << 20,
            rate_per_sec: None,
        }
    }

    fn run(machine: &mut ModelMachine, budget_s: f64, target_us: Option<u64>) -> SearchOutcome {
        let plan = Plan::new(budget_s, 1.0, target_us, start());
        search(machine, &plan, &mut |_, _| {}).unwrap_or_else(|e| match e {})
    }

    #[test]
    fn converges_to_the_known_edge() {
        let mut machine = ModelMachine::new(100_000.0);
        let outcome = run(&mut machine, 1000.0, None);
        let edge = outcome.edge.expect("an edge");
        let rate = edge.best.point.rate_per_sec.expect("open loop") as f64;
        assert!((100_000.0 / 1.15..=100_000.0).contains(&rate), "{rate}");
        let failing = edge.failing.clone().expect("a failing point");
        assert!(failing.point.rate_per_sec.is_none_or(|r| r as f64 > rate));
        let operating = edge.operating_rate_per_sec;
        assert_eq!(operating, (rate * 0.8) as u64);
        let needed = machine.burst_bytes(operating as f64, edge.shape.point.interval_us);
        let rec = recommend(&edge, &runlog::ScenarioConfig::default(), 1 << 40);
        let buffered = rec.config.max_buffered_bytes;
        assert!(buffered >= needed, "{buffered} < {needed}");
        assert!(buffered <= needed * 4, "{buffered} > 4 x {needed}");
    }

    #[test]
    fn budgets_of_15_30_and_60_s_recommend_alike() {
        let recommended: Vec<runlog::ScenarioConfig> = [15.0, 30.0, 60.0]
            .iter()
            .map(|&budget: &f64| {
                let probe_s = crate::tune::probe_seconds(budget);
                let verify_s = probe_s * crate::tune::verify::VERIFY_PROBES;
                let plan = Plan::new(budget - 2.0 * verify_s, probe_s, None, start());
                let mut machine = ModelMachine::new(100_000.0);
                let outcome =
                    search(&mut machine, &plan, &mut |_, _| {}).unwrap_or_else(|e| match e {});
                let edge = outcome.edge.expect("an edge within the budget");
                recommend(&edge, &runlog::ScenarioConfig::default(), 1 << 40).config
            })
            .collect();
        let rates: Vec<f64> = recommended
            .iter()
            .map(|c| c.rate_per_sec.expect("a rate") as f64)
            .collect();
        let buffered: Vec<f64> = recommended
            .iter()
            .map(|c| c.max_buffered_bytes as f64)
            .collect();
        let spread = |v: &[f64]| {
            v.iter().copied().fold(0.0, f64::max) / v.iter().copied().fold(f64::MAX, f64::min)
        };
        assert!(spread(&rates) <= 1.25, "{rates:?}");
        assert!(spread(&buffered) <= 2.0, "{buffered:?}");
    }

    #[test]
    fn a_clearly_better_shape_replaces_the_start_and_noise_does_not() {
        let mut machine = ModelMachine::new(100_000.0);
        machine.base_latency_us = 0;
        let edge = run(&mut machine, 1000.0, Some(15_000))
            .edge
            .expect("an edge");
        assert_eq!(edge.shape.point.interval_us, 5_000, "half the p99 wins");

        let mut machine = ModelMachine::new(100_000.0);
        let edge = run(&mut machine, 1000.0, Some(15_000))
            .edge
            .expect("an edge");
        assert_eq!(
            edge.shape.point.interval_us, 10_000,
            "6 ms vs 11 ms is not enough"
        );

        let mut machine = ModelMachine::new(100_000.0);
        machine.base_latency_us = 0;
        let edge = run(&mut machine, 1000.0, Some(40_000))
            .edge
            .expect("an edge");
        assert_eq!(
            edge.shape.point.interval_us, 10_000,
            "10 ms against a 40 ms target needs no better shape"
        );
    }

    #[test]
    fn respects_the_budget_counting_probe_time() {
        let mut machine = ModelMachine::new(100_000.0);
        let outcome = run(&mut machine, 5.5, None);
        assert!(outcome.spent_s <= 5.5, "{}", outcome.spent_s);
        assert_eq!(machine.probes, 5);
        assert_eq!(outcome.probes.len(), 5);
    }

    #[test]
    fn a_machine_where_nothing_is_healthy_gets_no_recommendation() {
        let mut machine = ModelMachine::new(100_000.0);
        machine.base_latency_us = 1_000_000;
        let outcome = run(&mut machine, 1000.0, Some(20_000));
        assert!(outcome.edge.is_none());
        assert!(
            outcome.message.starts_with("nothing healthy"),
            "{}",
            outcome.message
        );
        assert!(outcome.message.contains("p99"), "{}", outcome.message);

        let mut dead = ModelMachine::new(0.0);
        let outcome = run(&mut dead, 1000.0, None);
        assert!(outcome.edge.is_none());
        assert!(
            outcome.message.contains("nothing was delivered"),
            "{}",
            outcome.message
        );
    }

    #[test]
    fn recommendation_stays_under_the_memory_cap_and_round_trips() {
        let mut machine = ModelMachine::new(100_000.0);
        let edge = run(&mut machine, 1000.0, None).edge.expect("an edge");
        let cap = 256 << 10;
        let rec = recommend(&edge, &runlog::ScenarioConfig::default(), cap);
        assert!(rec.config.max_buffered_bytes <= cap);
        assert!(rec.config.max_batch_bytes.expect("set") <= rec.config.max_buffered_bytes);
        assert_eq!(rec.reasons.len(), 4);
        assert!(
            rec.reasons[1].contains("burst window"),
            "{}",
            rec.reasons[1]
        );

        let roomy = recommend(&edge, &runlog::ScenarioConfig::default(), 1 << 40);
        let burst = edge.shape.measured.burst_bytes;
        let window = edge.shape.measured.delivered_bytes_per_sec * 0.02 * 4.0;
        assert_eq!(
            roomy.config.max_buffered_bytes,
            (burst * 2).max(window as u64).max(64 << 10)
        );
        let promise: Vec<String> = roomy
            .config
            .thresholds
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(promise, ["p99<=20000us", "refused<=0"]);

        let dir = tempfile::tempdir().expect("tempdir");
        let comment = ["Tuned for: a model.".to_owned(), "Two\nlines.".to_owned()];
        let path = write_tuned(&roomy.config, dir.path(), &comment).expect("written");
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(
            text.starts_with("# Tuned for: a model.\n# Two\n# lines.\n"),
            "{text}"
        );
        let read = runlog::ScenarioConfig::from_toml_file(&path).expect("parses");
        assert_eq!(read, roomy.config);

        // A write that fails (here its temporary file cannot be created) keeps the
        // previous tuned.toml whole and says which file.
        let blocker = dir
            .path()
            .join(format!(".tuned.toml.tmp-{}", std::process::id()));
        std::fs::create_dir(&blocker).expect("mkdir");
        let err = write_tuned(&ScenarioConfig::default(), dir.path(), &[]).expect_err("fails");
        assert!(matches!(err, TuneError::Write { .. }), "{err}");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), text);
    }
}
