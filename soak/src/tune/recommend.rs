//! From the edge to a recommendation: the limits, one line of reasoning per
//! limit, the promise as thresholds, and the `tuned.toml` scenario that runs them
//! with the tuner's reasoning as comments.

use std::path::{Path, PathBuf};

use runlog::ScenarioConfig;

use super::TuneError;
use super::search::{Edge, OPERATING_FRACTION, Probe};
use crate::human;

/// Headroom over the largest burst the buffer held at the operating rate.
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
/// consumer, policy), never above `memory_cap_bytes` of buffered bytes. The buffered limit
/// is computed from what the shape probe measured, never from how far a bisection got, so
/// budgets of different sizes recommend alike.
#[must_use]
pub fn recommend(edge: &Edge, base: &ScenarioConfig, memory_cap_bytes: u64) -> Recommendation {
    let best = &edge.shape;
    let burst = best.measured.burst_bytes;
    let buffered = buffered_for(best, edge.best.target_us, memory_cap_bytes);
    let batch = best.point.max_batch_bytes.min(buffered);
    let rate = Some(edge.operating_rate_per_sec);
    let mut config = ScenarioConfig {
        interval_us: best.point.interval_us,
        interval_jitter_us: 0,
        max_batch_bytes: Some(batch),
        max_buffered_bytes: buffered,
        rate_per_sec: rate,
        preset: None,
        // The probing run's own length and sampling are not the user's.
        duration_s: ScenarioConfig::default().duration_s,
        sample_every_ms: ScenarioConfig::default().sample_every_ms,
        thresholds: runlog::Thresholds::default(),
        ..base.clone()
    };
    config.thresholds = promise(best.target_us);
    let reasons = vec![
        rate_reason(edge),
        buffered_reason(
            best,
            edge.best.target_us,
            (burst, buffered, memory_cap_bytes),
        ),
        format!(
            "max batch {}: about {:.1} batches per interval at that rate \
             (delivered bytes/s x interval / batch); p99 {} against {}",
            human::bytes(batch),
            best.measured.delivered_bytes_per_sec * best.point.interval_us as f64
                / 1e6
                / batch.max(1) as f64,
            human::micros(best.measured.p99_us),
            human::micros(best.target_us),
        ),
        shape_reason(edge),
    ];
    Recommendation { config, reasons }
}

/// The buffered limit for the shape probe's measurements: the larger of
/// [`STALL_TARGETS`] latency targets of delivery, [`BUFFERED_HEADROOM`] times the largest
/// burst seen, and two batches; within the memory cap.
fn buffered_for(best: &Probe, target_us: u64, cap: u64) -> u64 {
    target_window_bytes(best, target_us)
        .max(best.measured.burst_bytes.saturating_mul(BUFFERED_HEADROOM))
        .max(best.point.max_batch_bytes.saturating_mul(2))
        .min(cap)
        .max(1024)
}

/// The tuner's promise as thresholds: nothing refused, p99 within the target. A run of
/// `tuned.toml` fails if it breaks them.
#[must_use]
pub fn promise(target_us: u64) -> runlog::Thresholds {
    let p99 = format!("p99<={target_us}us");
    let mut thresholds = runlog::Thresholds::default();
    thresholds.merge(
        ["refused<=0", p99.as_str()]
            .iter()
            .filter_map(|t| t.parse().ok()),
    );
    thresholds
}

/// Why this interval (and batch): the scenario's own, kept, or an alternative that halved
/// the p99 of a shape that needed it.
fn shape_reason(edge: &Edge) -> String {
    let best = &edge.shape;
    let under = 100.0 * (1.0 - best.measured.p99_us as f64 / best.target_us.max(1) as f64);
    let start = &edge.best.point;
    let kept = best.point.interval_us == start.interval_us
        && best.point.max_batch_bytes == start.max_batch_bytes;
    if kept {
        format!(
            "interval {}: the scenario's own, kept: healthy at that rate with p99 {} \
             ({under:.0}% under target), and no alternative did clearly better where it was needed",
            human::micros(best.point.interval_us),
            human::micros(best.measured.p99_us),
        )
    } else {
        format!(
            "interval {}: an alternative to the scenario's {} that at least halved a p99 \
             which needed it (now {}, {under:.0}% under target)",
            human::micros(best.point.interval_us),
            human::micros(start.interval_us),
            human::micros(best.measured.p99_us),
        )
    }
}

fn rate_reason(edge: &Edge) -> String {
    let best = &edge.best;
    let beyond = edge.failing.as_ref().map_or_else(
        || "no failing point was probed beyond it".to_owned(),
        |f| {
            let offered = f
                .point
                .rate_per_sec
                .map_or_else(|| "unlimited".to_owned(), human::rate);
            format!(
                "the next point, {offered}, failed: {}",
                f.problem.as_deref().unwrap_or("unhealthy")
            )
        },
    );
    format!(
        "rate {}: {:.0}% of the most sustainable delivered rate ({}/s, 0 rejected, \
         p99 {}); {beyond}",
        human::rate(edge.operating_rate_per_sec),
        OPERATING_FRACTION * 100.0,
        human::count(best.measured.delivered_per_sec),
        human::micros(best.measured.p99_us),
    )
}

/// Latency targets of delivery the buffer holds: a consumer stall that long costs latency
/// (p99 holds while such stalls are rare), not refused events. Sampled buffer gauges miss
/// short bursts, so the buffer is sized by time, not by the largest burst seen.
pub const STALL_TARGETS: f64 = 4.0;

/// What the consumer takes in [`STALL_TARGETS`] latency targets (the search's target, for
/// the scenario's starting interval: the chosen shape does not move it) at the probe's rate.
fn target_window_bytes(probe: &Probe, target_us: u64) -> u64 {
    (probe.measured.delivered_bytes_per_sec * STALL_TARGETS * target_us as f64 / 1e6) as u64
}

fn buffered_reason(
    best: &Probe,
    target_us: u64,
    (burst, buffered, cap): (u64, u64, u64),
) -> String {
    let bytes_per_sec = best.measured.delivered_bytes_per_sec.max(1.0);
    let window_ms = buffered as f64 / bytes_per_sec * 1e3;
    let capped = if buffered >= cap { " (capped)" } else { "" };
    format!(
        "max buffered {}{capped}: the larger of {STALL_TARGETS} latency targets of delivery ({}: \
         a stall that long costs latency, not refused events) and {BUFFERED_HEADROOM}x the largest \
         burst the buffer held at that rate ({}); burst window = {} / {}/s = {window_ms:.0} ms; \
         cap 1/8 of memory = {}",
        human::bytes(buffered),
        human::bytes(target_window_bytes(best, target_us)),
        human::bytes(burst),
        human::bytes(buffered),
        human::bytes(bytes_per_sec as u64),
        human::bytes(cap),
    )
}

/// Validates `config` and writes it as `dir/tuned.toml` (creating `dir`), after `comment`:
/// lines the file starts with, each written as a TOML comment.
///
/// # Errors
/// [`TuneError::Scenario`] if it does not validate or round-trip;
/// [`TuneError::Write`] if it cannot be written.
pub fn write_tuned(
    config: &ScenarioConfig,
    dir: &Path,
    comment: &[String],
) -> Result<PathBuf, TuneError> {
    config.validate().map_err(runlog::RunlogError::from)?;
    let mut text: String = comment
        .iter()
        .flat_map(|line| line.lines().map(|l| format!("# {l}\n")).collect::<Vec<_>>())
        .collect();
    if !text.is_empty() {
        text.push('\n');
    }
    text.push_str(&config.to_toml_string()?);
    ScenarioConfig::from_toml_str(&text)?;
    let path = dir.join(TUNED_FILE);
    // Atomically: a failed write (a full disk) leaves the previous file whole.
    std::fs::create_dir_all(dir)
        .and_then(|()| runlog::write_atomically(&path, text.as_bytes()))
        .map_err(|source| TuneError::Write {
            path: path.clone(),
            source,
        })?;
    Ok(path)
}
