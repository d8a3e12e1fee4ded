//! Comparing a candidate with a base, each one run or a group of repeated runs of one
//! scenario: per metric, the change of the median with a bootstrap confidence interval
//! ([`stats`]), a verdict against the metric's noise threshold (`improved`, `regressed`,
//! `no change`, or `inconclusive` with how many runs would settle it), and a headline
//! drawn from the primary metrics only. Different scenarios are refused unless forced.

mod diff;
mod judge;
mod metrics;
mod side;
pub mod stats;
pub mod text;

use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::{CompareError, ReportError};
use crate::record::Warning;
use crate::report::write_file;

pub use side::Side;

/// The file name of a comparison written into the candidate's directory.
pub const COMPARE_FILE: &str = "compare.html";

/// `config` keys that do not make two scenarios different: `seed` only changes which
/// random payloads are drawn, `preset` is the name the values came from (the values
/// themselves are compared), and `thresholds` judge a run without changing it.
pub const IGNORED_CONFIG_KEYS: &[&str] = &["seed", "preset", "thresholds"];

/// The fewest runs a side needs for its runs to be the noise model.
pub const MIN_RUNS: usize = 3;
/// The fewest sample intervals a side needs for its intervals to be the noise model.
pub const MIN_INTERVALS: usize = 5;

/// Environment keys reported when they differ. The build (`rustc`, `git_rev`) is left out:
/// comparing two builds is the point.
const ENVIRONMENT_KEYS: &[&str] = &[
    "os",
    "arch",
    "cpu_model",
    "cpu_count",
    "cpus_constrained",
    "total_memory_bytes",
    "hostname",
    "jemalloc",
    "emulation",
];

/// How [`compare`] judges and where it writes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CompareOptions {
    /// One noise threshold for every metric, in percent; `None`: each metric's own
    /// (5% for throughput and heap, 10% for p50/p99 and RSS, 15% p99.9, 25% max and drain).
    pub noise_pct: Option<f64>,
    /// The metrics the headline is drawn from (keys or short names); empty: delivered/s,
    /// p99 and peak heap.
    pub primary: Vec<String>,
    /// Compare even when the scenarios differ (the differences are listed).
    pub force: bool,
    /// Where to write the page; `None` is `compare.html` in the candidate's directory.
    pub output: Option<PathBuf>,
    /// Overwrite `output` even when it is not a previous comparison page (never a run's
    /// record file).
    pub overwrite: bool,
}

/// A key whose value differs between the two sides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigDifference {
    /// The `config` (or `environment`) key.
    pub key: String,
    /// The base's value, as JSON text (`none` for null, `(missing)` when absent).
    pub base: String,
    /// The candidate's value, in the same form.
    pub candidate: String,
}

impl fmt::Display for ConfigDifference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({} vs {})", self.key, self.base, self.candidate)
    }
}

/// `producers (32 vs 16), consumer_delay_us (200 vs 0)`.
pub(crate) fn describe_differences(differences: &[ConfigDifference]) -> String {
    let parts: Vec<String> = differences.iter().map(ToString::to_string).collect();
    parts.join(", ")
}

/// Which way a metric gets better.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Throughput: more is better.
    HigherIsBetter,
    /// Memory, latency, drain time: less is better.
    LowerIsBetter,
}

impl Direction {
    /// `"higher"` or `"lower"`: which values are better.
    #[must_use]
    pub fn better(self) -> &'static str {
        match self {
            Self::HigherIsBetter => "higher",
            Self::LowerIsBetter => "lower",
        }
    }
}

/// The unit of a metric, for display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Events per second.
    PerSec,
    /// Bytes.
    Bytes,
    /// Microseconds.
    Micros,
}

impl Unit {
    /// The value in readable form, e.g. `"723.1k/s"`, `"87.0 MiB"`, `"15.5 ms"`.
    ///
    /// ```
    /// assert_eq!(reports::Unit::Bytes.format(1536.0), "1.5 KiB");
    /// ```
    #[must_use]
    pub fn format(self, value: f64) -> String {
        match self {
            Self::PerSec => crate::format::rate(value),
            Self::Bytes => crate::format::bytes(value),
            Self::Micros => crate::format::micros(value),
        }
    }

    /// The unit's name in the JSON output: `"per_sec"`, `"bytes"`, `"us"`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::PerSec => "per_sec",
            Self::Bytes => "bytes",
            Self::Micros => "us",
        }
    }
}

/// The judgement on one metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Better, beyond the noise threshold, with the whole confidence interval; judged
    /// from runs (at least [`MIN_RUNS`] a side), never from one run's sample intervals.
    Improved,
    /// Worse, beyond the noise threshold, with the whole confidence interval; judged
    /// from runs (at least [`MIN_RUNS`] a side), never from one run's sample intervals.
    Regressed,
    /// The whole confidence interval is within the noise threshold.
    NoChange,
    /// Too few runs or too much spread to tell (see [`MetricComparison::runs_needed`]).
    Inconclusive,
    /// A side lacks the figure (no `results.json`, no latency recorded).
    Unavailable,
}

impl Verdict {
    /// `"improved"`, `"regressed"`, `"no change"`, `"inconclusive"`, `"unavailable"`.
    ///
    /// ```
    /// assert_eq!(reports::Verdict::NoChange.as_str(), "no change");
    /// ```
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Improved => "improved",
            Self::Regressed => "regressed",
            Self::NoChange => "no change",
            Self::Inconclusive => "inconclusive",
            Self::Unavailable => "unavailable",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The comparison's one-word answer, from the primary metrics only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Headline {
    /// A primary metric improved and none regressed.
    Improved,
    /// A primary metric regressed and none improved.
    Regressed,
    /// Some primary metrics improved and others regressed: a trade-off.
    Mixed,
    /// Every primary metric both sides measured is within its noise (and at least one
    /// was measured).
    NoChange,
    /// No primary metric moved for sure, and some could not be told (or none was
    /// measured on both sides).
    Inconclusive,
}

impl Headline {
    /// `"improved"`, `"regressed"`, `"mixed"`, `"no change"`, `"inconclusive"`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Improved => "improved",
            Self::Regressed => "regressed",
            Self::Mixed => "mixed",
            Self::NoChange => "no change",
            Self::Inconclusive => "inconclusive",
        }
    }
}

impl fmt::Display for Headline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a metric's noise estimate came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    /// One value per run, at least [`MIN_RUNS`] a side.
    Runs,
    /// One value per sample interval, pooled over each side's runs (too few runs): the
    /// noise within runs, not between them.
    Intervals,
    /// Too few runs, and the metric has no per-interval values (a peak, the drain).
    TooFew,
    /// A side has no value.
    Missing,
}

impl Basis {
    /// `"runs"`, `"intervals"`, `"too few runs"`, `"missing"`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Runs => "runs",
            Self::Intervals => "intervals",
            Self::TooFew => "too few runs",
            Self::Missing => "missing",
        }
    }
}

/// One metric of both sides and its verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricComparison {
    /// A stable key, e.g. `"avg_delivered_per_sec"`, `"latency_p99_us"`.
    pub key: &'static str,
    /// A readable name, e.g. `"delivered/s"`.
    pub label: &'static str,
    /// Which way is better.
    pub direction: Direction,
    /// The unit of both values.
    pub unit: Unit,
    /// Whether the headline is drawn from it.
    pub primary: bool,
    /// The base's median (of its runs, or of its intervals: see `basis`).
    pub base: Option<f64>,
    /// The candidate's median, likewise.
    pub candidate: Option<f64>,
    /// How many values each side had (runs or intervals).
    pub counts: (usize, usize),
    /// The change of the median, `candidate / base - 1`, in percent.
    pub change_pct: Option<f64>,
    /// The 95% bootstrap confidence interval of the change, in percent.
    pub ci_pct: Option<(f64, f64)>,
    /// Changes within ± this many percent are noise.
    pub noise_pct: f64,
    /// Where the noise estimate came from.
    pub basis: Basis,
    /// The verdict.
    pub verdict: Verdict,
    /// For an inconclusive verdict: about how many runs a side would settle it.
    pub runs_needed: Option<usize>,
    /// One sentence: why this verdict.
    pub note: String,
}

impl MetricComparison {
    /// `candidate / base`; `None` when a value is missing or base is 0.
    #[must_use]
    pub fn ratio(&self) -> Option<f64> {
        match (self.base, self.candidate) {
            (Some(b), Some(c)) if b != 0.0 => Some(c / b),
            _ => None,
        }
    }
}

/// The outcome of comparing a candidate with a base.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// The base: `group <id> (n runs)` or `run <id>`.
    pub base_id: String,
    /// The candidate, likewise.
    pub candidate_id: String,
    /// The runs of each side.
    pub run_ids: (Vec<String>, Vec<String>),
    /// Every metric, in display order.
    pub metrics: Vec<MetricComparison>,
    /// `config` keys that differ (non-empty only when forced).
    pub config_differences: Vec<ConfigDifference>,
    /// Machine differences: reported, never a reason to refuse.
    pub environment_differences: Vec<ConfigDifference>,
    /// What is missing or cut short in the base's records.
    pub base_warnings: Vec<Warning>,
    /// What is missing or cut short in the candidate's records.
    pub candidate_warnings: Vec<Warning>,
    /// Where the page was written; `None` from [`Comparison::evaluate`].
    pub path: Option<PathBuf>,
}

impl Comparison {
    /// Compares two sides without writing anything.
    ///
    /// ```
    /// use reports::{CompareOptions, Comparison, Headline, RunRecord, Side, Verdict};
    /// let mut base = RunRecord { results: Some(Default::default()), ..Default::default() };
    /// base.results.as_mut().unwrap().throughput.avg_delivered_per_sec = 100.0;
    /// let mut candidate = base.clone();
    /// candidate.results.as_mut().unwrap().throughput.avg_delivered_per_sec = 80.0;
    /// let c = Comparison::evaluate(&Side::single(base), &Side::single(candidate), &CompareOptions::default())?;
    /// // One run a side and no samples: no noise estimate, so no verdict either way.
    /// let m = c.metric("avg_delivered_per_sec").unwrap();
    /// assert_eq!((m.verdict, m.runs_needed), (Verdict::Inconclusive, Some(3)));
    /// assert_eq!(c.headline(), Headline::Inconclusive);
    /// # Ok::<(), reports::CompareError>(())
    /// ```
    ///
    /// # Errors
    /// [`CompareError::Incomparable`] when the scenarios differ, between the sides or
    /// among one side's runs (outside [`IGNORED_CONFIG_KEYS`], or a side's first run has
    /// no `results.json`) and `force` is off;
    /// [`CompareError::BadThreshold`] for a negative or NaN noise threshold;
    /// [`CompareError::UnknownMetric`] for a primary metric that does not exist.
    pub fn evaluate(
        base: &Side,
        candidate: &Side,
        opts: &CompareOptions,
    ) -> Result<Comparison, CompareError> {
        if let Some(noise) = opts.noise_pct {
            if noise.is_nan() || noise < 0.0 {
                return Err(CompareError::BadThreshold(noise));
            }
        }
        let primary = primary_keys(&opts.primary)?;
        let config_differences = diff::side_config_differences(&base.runs, &candidate.runs);
        if !config_differences.is_empty() && !opts.force {
            return Err(CompareError::Incomparable {
                differences: config_differences,
            });
        }
        let metrics = judge::judge_all(base, candidate, opts.noise_pct, &primary);
        let warnings = |side: &Side| side.runs.iter().flat_map(|r| r.warnings.clone()).collect();
        let ids = |side: &Side| side.runs.iter().map(|r| r.run_id.clone()).collect();
        Ok(Comparison {
            base_id: base.describe(),
            candidate_id: candidate.describe(),
            run_ids: (ids(base), ids(candidate)),
            metrics,
            config_differences,
            environment_differences: diff::environment_differences(base.first(), candidate.first()),
            base_warnings: warnings(base),
            candidate_warnings: warnings(candidate),
            path: None,
        })
    }

    /// The headline, from the primary metrics only.
    #[must_use]
    pub fn headline(&self) -> Headline {
        let primary = || self.metrics.iter().filter(|m| m.primary);
        let any = |v: Verdict| primary().any(|m| m.verdict == v);
        let measured = primary().any(|m| m.verdict != Verdict::Unavailable);
        match (any(Verdict::Regressed), any(Verdict::Improved)) {
            (true, true) => Headline::Mixed,
            (true, false) => Headline::Regressed,
            (false, true) => Headline::Improved,
            (false, false) if any(Verdict::Inconclusive) || !measured => Headline::Inconclusive,
            (false, false) => Headline::NoChange,
        }
    }

    /// Whether a primary metric regressed: what `--fail-on-regression` exits 1 on.
    #[must_use]
    pub fn regressed(&self) -> bool {
        self.metrics
            .iter()
            .any(|m| m.primary && m.verdict == Verdict::Regressed)
    }

    /// The metric with this key (see [`MetricComparison::key`]).
    #[must_use]
    pub fn metric(&self, key: &str) -> Option<&MetricComparison> {
        self.metrics.iter().find(|m| m.key == key)
    }
}

/// The keys of the primary metrics: `names` resolved, or the defaults.
fn primary_keys(names: &[String]) -> Result<Vec<&'static str>, CompareError> {
    if names.is_empty() {
        return Ok(metrics::METRICS
            .iter()
            .filter(|m| m.primary)
            .map(|m| m.key)
            .collect());
    }
    names
        .iter()
        .map(|name| {
            metrics::find(name)
                .map(|m| m.key)
                .ok_or_else(|| CompareError::UnknownMetric {
                    given: name.clone(),
                    known: metrics::names(),
                })
        })
        .collect()
}

/// Reads both sides (a run directory or a group directory each), compares them and writes
/// the comparison page (by default `compare.html` in the candidate's directory).
///
/// ```no_run
/// use reports::{compare, CompareOptions};
/// let c = compare("target/soak/base".as_ref(), "target/soak/latest".as_ref(), &CompareOptions::default())?;
/// println!("{}: {}", c.path.as_ref().unwrap().display(), c.headline());
/// std::process::exit(i32::from(c.regressed())); // --fail-on-regression
/// # Ok::<(), reports::CompareError>(())
/// ```
///
/// # Errors
/// [`CompareError::Report`] when a record cannot be read or the page cannot be written
/// (naming the file); [`CompareError::EmptyGroup`] for a group without runs;
/// [`CompareError::DuplicateRun`] for a group that lists one run twice; otherwise as
/// [`Comparison::evaluate`].
pub fn compare(
    base: &Path,
    candidate: &Path,
    opts: &CompareOptions,
) -> Result<Comparison, CompareError> {
    let base_side = Side::load(base)?;
    let candidate_side = Side::load(candidate)?;
    let mut comparison = Comparison::evaluate(&base_side, &candidate_side, opts)?;
    let out = opts
        .output
        .clone()
        .unwrap_or_else(|| candidate.join(COMPARE_FILE));
    crate::output::check_output(&out, opts.overwrite)?;
    let html = crate::compare_page::render(&base_side, &candidate_side, &comparison);
    if let Err(err) = write_file(&out, &html) {
        let source = match err {
            ReportError::Write { source, .. } => source,
            other => std::io::Error::other(other.to_string()),
        };
        return Err(CompareError::Page {
            path: out,
            source,
            comparison: Box::new(comparison),
        });
    }
    comparison.path = Some(out);
    Ok(comparison)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_skip_ignored_keys_and_name_both_values() {
        let b = serde_json::json!({"seed": 1, "producers": 32, "max_batch_bytes": null});
        let c = serde_json::json!({"seed": 2, "producers": 16, "max_batch_bytes": 4096});
        let d = diff::differences(&b, &c, None, IGNORED_CONFIG_KEYS);
        assert_eq!(
            describe_differences(&d),
            "max_batch_bytes (none vs 4096), producers (32 vs 16)"
        );
    }

    #[test]
    fn primary_metrics_take_keys_or_short_names_and_refuse_others() {
        assert_eq!(
            primary_keys(&["p99".into(), "drain_us".into()]).unwrap(),
            ["latency_p99_us", "drain_us"]
        );
        let err = primary_keys(&["p98".into()]).unwrap_err().to_string();
        assert!(
            err.contains("`p98`") && err.contains("delivered_per_sec"),
            "{err}"
        );
    }
}
