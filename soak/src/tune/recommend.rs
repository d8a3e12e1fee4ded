//! From the edge to a recommendation: the limits, one line of reasoning per
//! limit, and the `tuned.toml` scenario that runs them.

use std::path::{Path, PathBuf};

use runlog::ScenarioConfig;

use super::TuneError;
use super::search::{Edge, OPERATING_FRACTION, Probe};
use crate::human;

/// Headroom over the smallest buffered limit that stayed healthy.
pub const BUFFERED_HEADROOM: u64 = 2;
/// File name of the written scenario.
pub const TUNED_FILE: &str = "tuned.toml";

/// The recommended scenario and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Recommendation {
    /// The scenario to run (`cargo soak --config tuned.toml`).
    pub config: ScenarioConfig,
    /// One line of reasoning per limit.
    pub reasons: Vec<String>,
}

/// The recommendation for `edge`, on top of `base` (payload, producers,
/// consumer), never above `memory_cap_bytes` of buffered bytes.
#[must_use]
pub fn recommend(edge: &Edge, base: &ScenarioConfig, memory_cap_bytes: u64) -> Recommendation {
    let best = &edge.shape;
    let smallest = edge.smallest_buffered.point.max_buffered_bytes;
    let buffered = smallest
        .saturating_mul(BUFFERED_HEADROOM)
        .max(target_window_bytes(best))
        .max(best.point.max_batch_bytes.saturating_mul(2))
        .min(memory_cap_bytes)
        .max(1024);
    let batch = best.point.max_batch_bytes.min(buffered);
    let rate = Some(edge.operating_rate_per_sec);
    let config = ScenarioConfig {
        interval_us: best.point.interval_us,
        interval_jitter_us: 0,
        max_batch_bytes: Some(batch),
        max_buffered_bytes: buffered,
        rate_per_sec: rate,
        preset: None,
        // The probing run's own length and sampling are not the user's.
        duration_s: ScenarioConfig::default().duration_s,
        sample_every_ms: ScenarioConfig::default().sample_every_ms,
        ..base.clone()
    };
    let reasons = vec![
        rate_reason(edge),
        buffered_reason(best, smallest, buffered, memory_cap_bytes),
        format!(
            "max_batch_bytes = {}: about {:.1} batches per interval at that rate \
             (delivered bytes/s x interval / batch); p99 {} against {}",
            human::bytes(batch),
            best.measured.delivered_bytes_per_sec * best.point.interval_us as f64
                / 1e6
                / batch.max(1) as f64,
            human::micros(best.measured.p99_us),
            human::micros(best.target_us),
        ),
        format!(
            "interval_us = {}: the probed shape with a clearly lowest healthy p99 at that rate \
             ({:.0}% under target)",
            best.point.interval_us,
            100.0 * (1.0 - best.measured.p99_us as f64 / best.target_us.max(1) as f64),
        ),
    ];
    Recommendation { config, reasons }
}

fn rate_reason(edge: &Edge) -> String {
    let best = &edge.best;
    let beyond = edge.failing.as_ref().map_or_else(
        || "no failing point was probed beyond it".to_owned(),
        |f| {
            let offered = f.point.rate_per_sec.map_or_else(
                || "unlimited".to_owned(),
                |r| format!("{}/s", human::count(r as f64)),
            );
            format!(
                "the next point, {offered}, failed: {}",
                f.problem.as_deref().unwrap_or("unhealthy")
            )
        },
    );
    format!(
        "rate_per_sec = {}: {:.0}% of the most sustainable delivered rate ({}/s, 0 rejected, \
         p99 {}); {beyond}",
        edge.operating_rate_per_sec,
        OPERATING_FRACTION * 100.0,
        human::count(best.measured.delivered_per_sec),
        human::micros(best.measured.p99_us),
    )
}

/// What the consumer takes in one latency target: a buffer larger than
/// this only holds events that would miss the target anyway, and one this
/// large rides out a stall as long as the target (steadier than the
/// bisected smallest limit, which is noisy near the edge).
fn target_window_bytes(probe: &Probe) -> u64 {
    (probe.measured.delivered_bytes_per_sec * probe.target_us as f64 / 1e6) as u64
}

fn buffered_reason(best: &Probe, smallest: u64, buffered: u64, cap: u64) -> String {
    let bytes_per_sec = best.measured.delivered_bytes_per_sec.max(1.0);
    let window_ms = buffered as f64 / bytes_per_sec * 1e3;
    let capped = if buffered >= cap { " (capped)" } else { "" };
    format!(
        "max_buffered_bytes = {}{capped}: the larger of {BUFFERED_HEADROOM}x the smallest limit \
         that absorbed the observed bursts at that rate ({}) and one latency target of delivery \
         ({}); burst window = {} / {}/s = {window_ms:.0} ms; cap 1/8 of memory = {}",
        human::bytes(buffered),
        human::bytes(smallest),
        human::bytes(target_window_bytes(best)),
        human::bytes(buffered),
        human::bytes(bytes_per_sec as u64),
        human::bytes(cap),
    )
}

/// Validates `config` and writes it as `dir/tuned.toml`, creating `dir`.
///
/// # Errors
/// [`TuneError::Scenario`] if it does not validate or round-trip;
/// [`TuneError::Write`] if it cannot be written.
pub fn write_tuned(config: &ScenarioConfig, dir: &Path) -> Result<PathBuf, TuneError> {
    config.validate().map_err(runlog::RunlogError::from)?;
    let text = config.to_toml_string()?;
    ScenarioConfig::from_toml_str(&text)?;
    let path = dir.join(TUNED_FILE);
    std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&path, text))
        .map_err(|source| TuneError::Write {
            path: path.clone(),
            source,
        })?;
    Ok(path)
}
