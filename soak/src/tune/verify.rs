//! The tuner keeps its word: the recommendation is probed as recommended (rate, interval,
//! batch and buffered limit together) for longer than a search probe, and judged by the
//! promise it makes (nothing refused, p99 within the target). If it misses, the rate backs
//! off (and, if events were refused, the buffered limit doubles) and it is probed again,
//! as long as the budget allows; the outcome says which.

use runlog::ScenarioConfig;

use super::search::{Machine, Measured, OPERATING_FRACTION, Phase, Point, Probe, judge};

/// How many times a missed promise backs off before the tuner says it could not keep it.
pub const MAX_BACKOFFS: u32 = 2;
/// A verification probe is this many search probes long.
pub const VERIFY_PROBES: f64 = 2.0;

/// How the verification went.
#[derive(Debug, Clone, PartialEq)]
pub struct Verification {
    /// Every verification probe, in order.
    pub probes: Vec<Probe>,
    /// Whether the last one kept the promise.
    pub kept: bool,
    /// How many times the recommendation backed off.
    pub backoffs: u32,
    /// One sentence on the outcome.
    pub message: String,
}

/// The point a scenario runs at.
#[must_use]
pub fn point_of(config: &ScenarioConfig) -> Point {
    Point {
        interval_us: config.interval_us,
        max_batch_bytes: config.max_batch_bytes.unwrap_or(config.max_buffered_bytes),
        max_buffered_bytes: config.max_buffered_bytes,
        rate_per_sec: config.rate_per_sec,
    }
}

/// Probes `config` (backing it off when it misses) while `machine` allows; returns the
/// scenario that was last probed and how it went. `cap` bounds the buffered limit.
///
/// # Errors
/// The machine's error when a probe could not be taken at all and none was before.
pub fn verify<M: Machine>(
    machine: &mut M,
    mut config: ScenarioConfig,
    (probe_s, target_us, cap): (f64, u64, u64),
    on_probe: &mut dyn FnMut(&Probe),
) -> (ScenarioConfig, Verification) {
    let mut v = Verification {
        probes: Vec::new(),
        kept: false,
        backoffs: 0,
        message: String::new(),
    };
    loop {
        let point = point_of(&config);
        let measured = match machine.probe(&point, probe_s * VERIFY_PROBES) {
            Ok(m) => m,
            Err(_) => {
                v.message = format!(
                    "not verified: the budget ran out before {} (give a larger --budget)",
                    if v.probes.is_empty() {
                        "the recommendation could be probed"
                    } else {
                        "a backed-off recommendation could be probed"
                    }
                );
                return (config, v);
            }
        };
        let probe = Probe {
            phase: Phase::Verify,
            point,
            measured,
            target_us,
            problem: judge(&point, &measured, target_us),
        };
        on_probe(&probe);
        v.probes.push(probe.clone());
        if probe.healthy() {
            v.kept = true;
            v.message = kept_message(&measured, target_us, v.backoffs, probe_s * VERIFY_PROBES);
            return (config, v);
        }
        if v.backoffs == MAX_BACKOFFS {
            v.message = format!(
                "not kept: after {MAX_BACKOFFS} back-offs the recommendation still missed ({}); treat it as an upper bound",
                probe.problem.as_deref().unwrap_or("unhealthy")
            );
            return (config, v);
        }
        config = back_off(config, &measured, cap);
        v.backoffs += 1;
    }
}

/// The next, more careful scenario: the rate down to [`OPERATING_FRACTION`] of itself,
/// and twice the buffered limit if events were refused.
fn back_off(mut config: ScenarioConfig, m: &Measured, cap: u64) -> ScenarioConfig {
    config.rate_per_sec = config
        .rate_per_sec
        .map(|r| ((r as f64 * OPERATING_FRACTION) as u64).max(1));
    if m.rejected_pct > 0.0 {
        config.max_buffered_bytes = config.max_buffered_bytes.saturating_mul(2).min(cap);
    }
    config
}

fn kept_message(m: &Measured, target_us: u64, backoffs: u32, seconds: f64) -> String {
    let backed = match backoffs {
        0 => String::new(),
        n => format!(
            " after backing off {n} time{}",
            if n == 1 { "" } else { "s" }
        ),
    };
    format!(
        "kept{backed}: a {seconds:.1} s probe at the recommended settings refused nothing, delivered every event it accepted and had p99 {} (target {})",
        crate::human::micros(m.p99_us),
        crate::human::micros(target_us)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tune::model::ModelMachine;

    fn config(rate: u64) -> ScenarioConfig {
        ScenarioConfig {
            rate_per_sec: Some(rate),
            max_buffered_bytes: 64 << 20,
            ..ScenarioConfig::default()
        }
    }

    #[test]
    fn a_recommendation_within_capacity_is_kept_at_once() {
        let mut machine = ModelMachine::new(100_000.0);
        let (out, v) = verify(
            &mut machine,
            config(80_000),
            (1.0, 20_000, 1 << 30),
            &mut |_| {},
        );
        assert!(v.kept && v.backoffs == 0, "{v:?}");
        assert_eq!(out.rate_per_sec, Some(80_000));
        assert!(v.message.starts_with("kept:"), "{}", v.message);
    }

    #[test]
    fn an_overpromise_backs_off_until_kept_and_says_so() {
        let mut machine = ModelMachine::new(100_000.0);
        let (out, v) = verify(
            &mut machine,
            config(120_000),
            (1.0, 20_000, 1 << 30),
            &mut |_| {},
        );
        assert!(v.kept, "{v:?}");
        assert_eq!(v.backoffs, 1);
        assert_eq!(out.rate_per_sec, Some(96_000));
        assert!(
            v.message.contains("after backing off 1 time"),
            "{}",
            v.message
        );
        assert_eq!(v.probes.len(), 2);
    }

    #[test]
    fn a_promise_it_cannot_keep_is_reported_as_not_kept() {
        let mut machine = ModelMachine::new(100_000.0);
        let (_, v) = verify(
            &mut machine,
            config(400_000),
            (1.0, 20_000, 1 << 30),
            &mut |_| {},
        );
        assert!(!v.kept);
        assert_eq!(v.backoffs, MAX_BACKOFFS);
        assert!(v.message.starts_with("not kept"), "{}", v.message);
    }
}
