//! `soak tune --json`: the outcome of a tune as one JSON document on stdout, schema
//! `metronome.tune/1`, for scripts. The human text is unchanged without `--json`; probe
//! lines still go to stderr as they finish (`-q` for none).
//!
//! Keys carry their units, as in `results.json` (`_us`, `_bytes`, `_per_sec`, `_pct`,
//! `_s`); like the run record's, they are a contract: extended, never renamed.
//!
//! ```text
//! {
//!   "schema": "metronome.tune/1",
//!   "scenario": "4 producers of telemetry payloads into a consumer spending 200 us per batch, reject policy, 1 partition",
//!   "budget_s": 20.0,
//!   "memory_cap_bytes": 4294967296,
//!   "search": {
//!     "message": "edge found at 152.0k/s after 9 probes",
//!     "spent_s": 11.3,
//!     "probes": [
//!       { "phase": "ceiling", "offered_per_sec": null, "interval_us": 10000,
//!         "max_batch_bytes": 32768, "max_buffered_bytes": 4194304,
//!         "delivered_per_sec": 301234.5, "rejected_pct": 41.2, "undelivered": 0,
//!         "p99_us": 18000, "target_us": 20000, "peak_heap_bytes": 9123456,
//!         "burst_bytes": 4194304, "elapsed_s": 1.3, "healthy": false,
//!         "problem": "41.20% rejected" }, …
//!     ]
//!   },
//!   "edge": { "best": { …a probe… }, "shape": { …a probe… },
//!             "failing": { …a probe… } | null,
//!             "operating_rate_per_sec": 121600 } | null,
//!   "recommendation": { "config": { …the keys of tuned.toml / results.json `config`… },
//!                       "reasons": ["…", …] } | null,
//!   "verification": { "kept": true, "backoffs": 0, "message": "kept: …",
//!                     "probes": [ …probes… ] } | null,
//!   "tuned_path": "target/soak/tuned.toml" | null,
//!   "run_dir": "target/soak/20261205-041500-ab12"
//! }
//! ```

use serde::Serialize;

use super::TuneReport;
use super::search::{Edge, Probe};
use super::verify::Verification;

/// The schema name of [`TuneJson`].
pub const SCHEMA: &str = "metronome.tune/1";

/// The whole document.
#[derive(Debug, Serialize)]
pub struct TuneJson<'a> {
    /// Always [`SCHEMA`].
    pub schema: &'static str,
    /// The scenario tuned for, in one line.
    pub scenario: &'a str,
    /// `--budget` in seconds.
    pub budget_s: f64,
    /// The cap on any recommended buffered limit: a fraction of the machine's memory.
    pub memory_cap_bytes: u64,
    /// Every search probe and how the search ended.
    pub search: SearchJson<'a>,
    /// The edge found: the best healthy probe and the first failing one beyond it; `null`
    /// when nothing was healthy.
    pub edge: Option<EdgeJson<'a>>,
    /// What to run; `null` when nothing was healthy.
    pub recommendation: Option<RecommendationJson<'a>>,
    /// How the recommendation's verification went; `null` without a recommendation.
    pub verification: Option<VerificationJson<'a>>,
    /// The `tuned.toml` written; `null` when none was.
    pub tuned_path: Option<String>,
    /// The probing run's directory (its record has every sample).
    pub run_dir: String,
}

/// The search.
#[derive(Debug, Serialize)]
pub struct SearchJson<'a> {
    /// One sentence on how it ended.
    pub message: &'a str,
    /// Budget spent searching, in seconds.
    pub spent_s: f64,
    /// Every search probe, in order (the verification's are under `verification`).
    pub probes: Vec<ProbeJson<'a>>,
}

/// One probe: the limits and rate it ran at, what it measured, and the verdict.
#[derive(Debug, Serialize)]
pub struct ProbeJson<'a> {
    /// `ceiling`, `rate`, `shape` or `verify`.
    pub phase: String,
    /// The offered rate; `null` is closed loop (as fast as admitted).
    pub offered_per_sec: Option<u64>,
    /// The batch interval probed.
    pub interval_us: u64,
    /// The batch byte target probed.
    pub max_batch_bytes: u64,
    /// The buffered limit probed.
    pub max_buffered_bytes: u64,
    /// The probe's own events delivered per second.
    pub delivered_per_sec: f64,
    /// Refused offers, percent of attempts.
    pub rejected_pct: f64,
    /// Accepted events of the probe not delivered by the end of its drain.
    pub undelivered: u64,
    /// p99 enqueue-to-delivery latency of the probe's events.
    pub p99_us: u64,
    /// The p99 target it was judged against.
    pub target_us: u64,
    /// The largest heap seen.
    pub peak_heap_bytes: u64,
    /// The largest buffered bytes seen (the burst the buffer absorbed).
    pub burst_bytes: u64,
    /// How long the probe took.
    pub elapsed_s: f64,
    /// Nothing refused, p99 within the target, keeping up.
    pub healthy: bool,
    /// Why it is unhealthy; `null` when healthy.
    pub problem: Option<&'a str>,
}

/// The edge.
#[derive(Debug, Serialize)]
pub struct EdgeJson<'a> {
    /// The best healthy probe.
    pub best: ProbeJson<'a>,
    /// The interval and batch chosen, probed at the operating rate.
    pub shape: ProbeJson<'a>,
    /// The first failing probe beyond it, if one was taken.
    pub failing: Option<ProbeJson<'a>>,
    /// The recommended rate: a fraction of the edge's.
    pub operating_rate_per_sec: u64,
}

/// The recommendation.
#[derive(Debug, Serialize)]
pub struct RecommendationJson<'a> {
    /// The scenario written to `tuned.toml`, with the keys of `results.json`'s `config`.
    pub config: &'a runlog::ScenarioConfig,
    /// One line of reasoning per limit.
    pub reasons: &'a [String],
}

/// The verification.
#[derive(Debug, Serialize)]
pub struct VerificationJson<'a> {
    /// Whether the last verification probe kept the promise.
    pub kept: bool,
    /// How many times the recommendation backed off.
    pub backoffs: u32,
    /// One sentence on the outcome.
    pub message: &'a str,
    /// Every verification probe, in order.
    pub probes: Vec<ProbeJson<'a>>,
}

impl<'a> TuneJson<'a> {
    /// The document for `report`, a tune of `budget_s` seconds.
    #[must_use]
    pub fn new(report: &'a TuneReport, budget_s: f64) -> Self {
        Self {
            schema: SCHEMA,
            scenario: &report.scenario,
            budget_s,
            memory_cap_bytes: report.memory_cap_bytes,
            search: SearchJson {
                message: &report.search.message,
                spent_s: report.search.spent_s,
                probes: report.search.probes.iter().map(ProbeJson::from).collect(),
            },
            edge: report.search.edge.as_ref().map(EdgeJson::from),
            recommendation: report
                .recommendation
                .as_ref()
                .map(|rec| RecommendationJson {
                    config: &rec.config,
                    reasons: &rec.reasons,
                }),
            verification: report.verification.as_ref().map(VerificationJson::from),
            tuned_path: report.tuned_path.as_ref().map(|p| p.display().to_string()),
            run_dir: report.run_dir.display().to_string(),
        }
    }

    /// The document, pretty-printed.
    ///
    /// # Errors
    /// serde_json's (none for these types in practice).
    pub fn to_string_pretty(&self) -> serde_json::Result<String> {
        serde_json::to_string_pretty(self)
    }
}

impl<'a> From<&'a Probe> for ProbeJson<'a> {
    fn from(p: &'a Probe) -> Self {
        let m = &p.measured;
        Self {
            phase: p.phase.to_string(),
            offered_per_sec: p.point.rate_per_sec,
            interval_us: p.point.interval_us,
            max_batch_bytes: p.point.max_batch_bytes,
            max_buffered_bytes: p.point.max_buffered_bytes,
            delivered_per_sec: m.delivered_per_sec,
            rejected_pct: m.rejected_pct,
            undelivered: m.undelivered,
            p99_us: m.p99_us,
            target_us: p.target_us,
            peak_heap_bytes: m.peak_heap_bytes,
            burst_bytes: m.burst_bytes,
            elapsed_s: m.elapsed_s,
            healthy: p.healthy(),
            problem: p.problem.as_deref(),
        }
    }
}

impl<'a> From<&'a Edge> for EdgeJson<'a> {
    fn from(e: &'a Edge) -> Self {
        Self {
            best: ProbeJson::from(&e.best),
            shape: ProbeJson::from(&e.shape),
            failing: e.failing.as_ref().map(ProbeJson::from),
            operating_rate_per_sec: e.operating_rate_per_sec,
        }
    }
}

impl<'a> From<&'a Verification> for VerificationJson<'a> {
    fn from(v: &'a Verification) -> Self {
        Self {
            kept: v.kept,
            backoffs: v.backoffs,
            message: &v.message,
            probes: v.probes.iter().map(ProbeJson::from).collect(),
        }
    }
}
