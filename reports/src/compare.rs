//! Comparing two runs of one scenario: key figures side by side, a direction-aware verdict
//! per metric against a threshold, and a refusal when the scenarios differ.

use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::CompareError;
use crate::figures::KeyFigures;
use crate::format;
use crate::record::{RunRecord, Warning};
use crate::report::write_file;

/// The file name of a comparison written into the candidate's run directory.
pub const COMPARE_FILE: &str = "compare.html";

/// `config` keys that do not make two scenarios different: `seed` only changes which
/// random payloads are drawn, and `preset` is the name the values came from (the values
/// themselves are compared).
pub const IGNORED_CONFIG_KEYS: &[&str] = &["seed", "preset"];

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
#[derive(Debug, Clone, PartialEq)]
pub struct CompareOptions {
    /// A metric changed when it moved by more than this many percent of the base value.
    pub threshold_pct: f64,
    /// Compare even when the scenarios differ (the differences are listed in the page).
    pub force: bool,
    /// Where to write the page; `None` is `compare.html` in the candidate's run directory.
    pub output: Option<PathBuf>,
    /// Overwrite `output` even when it is not a previous comparison page (a run's record
    /// file, anything else). Without it such a file is refused, untouched.
    pub overwrite: bool,
}

impl Default for CompareOptions {
    /// A 5% threshold, no force, the candidate's directory.
    fn default() -> Self {
        Self {
            threshold_pct: 5.0,
            force: false,
            output: None,
            overwrite: false,
        }
    }
}

/// A key whose value differs between the two runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigDifference {
    /// The `config` (or `environment`) key.
    pub key: String,
    /// The base run's value, as JSON text (`none` for null, `(missing)` when absent).
    pub base: String,
    /// The candidate run's value, in the same form.
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
            Self::PerSec => format::rate(value),
            Self::Bytes => format::bytes(value),
            Self::Micros => format::micros(value),
        }
    }
}

/// The judgement on one metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Better by more than the threshold.
    Improved,
    /// Worse by more than the threshold.
    Regressed,
    /// Within the threshold.
    Unchanged,
    /// One of the runs lacks the figure (no `results.json`, no latency recorded).
    Unavailable,
}

impl Verdict {
    /// The lowercase name: `"improved"`, `"regressed"`, `"unchanged"`, `"unavailable"`.
    ///
    /// ```
    /// assert_eq!(reports::Verdict::Regressed.as_str(), "regressed");
    /// ```
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Improved => "improved",
            Self::Regressed => "regressed",
            Self::Unchanged => "unchanged",
            Self::Unavailable => "unavailable",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One metric of both runs and its verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricComparison {
    /// A stable key, e.g. `"avg_delivered_per_sec"`, `"latency_p99_us"`.
    pub key: &'static str,
    /// A readable name, e.g. `"delivered/s (avg)"`.
    pub label: &'static str,
    /// Which way is better.
    pub direction: Direction,
    /// The unit of both values.
    pub unit: Unit,
    /// The base run's value.
    pub base: Option<f64>,
    /// The candidate run's value.
    pub candidate: Option<f64>,
    /// `(candidate - base) / base`, in percent; `None` when a value is missing or base is 0.
    pub change_pct: Option<f64>,
    /// The verdict against the threshold.
    pub verdict: Verdict,
}

impl MetricComparison {
    /// `candidate / base`; `None` when a value is missing or base is 0.
    ///
    /// ```
    /// use reports::{Direction, MetricComparison, Unit, Verdict};
    /// let m = MetricComparison { key: "k", label: "k", direction: Direction::LowerIsBetter, unit: Unit::Bytes,
    ///     base: Some(4.0), candidate: Some(5.0), change_pct: Some(25.0), verdict: Verdict::Regressed };
    /// assert_eq!(m.ratio(), Some(1.25));
    /// ```
    #[must_use]
    pub fn ratio(&self) -> Option<f64> {
        match (self.base, self.candidate) {
            (Some(b), Some(c)) if b != 0.0 => Some(c / b),
            _ => None,
        }
    }
}

/// The metrics compared, with how to read each from [`KeyFigures`].
type Extract = fn(&KeyFigures) -> Option<f64>;
const METRICS: &[(&str, &str, Direction, Unit, Extract)] = &[
    (
        "avg_delivered_per_sec",
        "delivered/s (avg)",
        Direction::HigherIsBetter,
        Unit::PerSec,
        |f| Some(f.avg_delivered_per_sec),
    ),
    (
        "peak_heap_bytes",
        "peak heap",
        Direction::LowerIsBetter,
        Unit::Bytes,
        |f| Some(f.peak_heap_bytes as f64),
    ),
    (
        "peak_rss_bytes",
        "peak RSS",
        Direction::LowerIsBetter,
        Unit::Bytes,
        |f| Some(f.peak_rss_bytes as f64),
    ),
    (
        "latency_p50_us",
        "latency p50",
        Direction::LowerIsBetter,
        Unit::Micros,
        |f| latency(f, f.latency_us.p50),
    ),
    (
        "latency_p99_us",
        "latency p99",
        Direction::LowerIsBetter,
        Unit::Micros,
        |f| latency(f, f.latency_us.p99),
    ),
    (
        "latency_p999_us",
        "latency p99.9",
        Direction::LowerIsBetter,
        Unit::Micros,
        |f| latency(f, f.latency_us.p999),
    ),
    (
        "latency_max_us",
        "latency max",
        Direction::LowerIsBetter,
        Unit::Micros,
        |f| latency(f, f.latency_us.max),
    ),
    (
        "drain_us",
        "drain time",
        Direction::LowerIsBetter,
        Unit::Micros,
        |f| f.drain_us.map(|d| d as f64),
    ),
];

fn latency(f: &KeyFigures, value: u64) -> Option<f64> {
    (f.latency_us.count > 0).then_some(value as f64)
}

/// The verdict on one metric: changed when it moved by more than `threshold_pct` percent.
fn judge(
    direction: Direction,
    base: Option<f64>,
    candidate: Option<f64>,
    threshold_pct: f64,
) -> (Option<f64>, Verdict) {
    let (Some(b), Some(c)) = (base, candidate) else {
        return (None, Verdict::Unavailable);
    };
    let change_pct = (b != 0.0).then(|| (c - b) / b.abs() * 100.0);
    let moved = match change_pct {
        Some(pct) => pct.abs() > threshold_pct,
        None => c != b,
    };
    if !moved {
        return (change_pct, Verdict::Unchanged);
    }
    let up = c > b;
    let better = up == (direction == Direction::HigherIsBetter);
    (
        change_pct,
        if better {
            Verdict::Improved
        } else {
            Verdict::Regressed
        },
    )
}

/// The outcome of comparing a candidate run with a base run.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// The base run's id.
    pub base_id: String,
    /// The candidate run's id.
    pub candidate_id: String,
    /// The threshold the verdicts were made against, in percent.
    pub threshold_pct: f64,
    /// Every metric, in display order.
    pub metrics: Vec<MetricComparison>,
    /// `config` keys that differ (non-empty only when forced).
    pub config_differences: Vec<ConfigDifference>,
    /// Machine differences: reported, never a reason to refuse.
    pub environment_differences: Vec<ConfigDifference>,
    /// What is missing or cut short in the base record.
    pub base_warnings: Vec<Warning>,
    /// What is missing or cut short in the candidate record.
    pub candidate_warnings: Vec<Warning>,
    /// Where the page was written; `None` from [`Comparison::evaluate`].
    pub path: Option<PathBuf>,
}

impl Comparison {
    /// Compares two records without writing anything.
    ///
    /// ```
    /// use reports::{CompareOptions, Comparison, RunRecord, Verdict};
    /// let mut base = RunRecord { results: Some(Default::default()), ..Default::default() };
    /// base.results.as_mut().unwrap().throughput.avg_delivered_per_sec = 100.0;
    /// let mut candidate = base.clone();
    /// candidate.results.as_mut().unwrap().throughput.avg_delivered_per_sec = 80.0;
    /// let c = Comparison::evaluate(&base, &candidate, &CompareOptions::default())?;
    /// assert_eq!(c.metric("avg_delivered_per_sec").unwrap().verdict, Verdict::Regressed);
    /// assert!(c.regressed());
    /// # Ok::<(), reports::CompareError>(())
    /// ```
    ///
    /// # Errors
    /// [`CompareError::Incomparable`] when the scenarios differ (outside
    /// [`IGNORED_CONFIG_KEYS`], or a run has no `results.json` and so no scenario) and
    /// `force` is off; [`CompareError::BadThreshold`] for a negative or NaN threshold.
    pub fn evaluate(
        base: &RunRecord,
        candidate: &RunRecord,
        opts: &CompareOptions,
    ) -> Result<Comparison, CompareError> {
        if opts.threshold_pct.is_nan() || opts.threshold_pct < 0.0 {
            return Err(CompareError::BadThreshold(opts.threshold_pct));
        }
        let config_differences = config_differences(base, candidate);
        if !config_differences.is_empty() && !opts.force {
            return Err(CompareError::Incomparable {
                differences: config_differences,
            });
        }
        let (fb, fc) = (KeyFigures::of(base), KeyFigures::of(candidate));
        let metrics = METRICS
            .iter()
            .map(|&(key, label, direction, unit, extract)| {
                let (b, c) = (extract(&fb), extract(&fc));
                let (change_pct, verdict) = judge(direction, b, c, opts.threshold_pct);
                MetricComparison {
                    key,
                    label,
                    direction,
                    unit,
                    base: b,
                    candidate: c,
                    change_pct,
                    verdict,
                }
            })
            .collect();
        Ok(Comparison {
            base_id: base.run_id.clone(),
            candidate_id: candidate.run_id.clone(),
            threshold_pct: opts.threshold_pct,
            metrics,
            config_differences,
            environment_differences: environment_differences(base, candidate),
            base_warnings: base.warnings.clone(),
            candidate_warnings: candidate.warnings.clone(),
            path: None,
        })
    }

    /// Whether any metric regressed: what `--fail-on-regression` exits 1 on.
    #[must_use]
    pub fn regressed(&self) -> bool {
        self.metrics.iter().any(|m| m.verdict == Verdict::Regressed)
    }

    /// Whether any metric improved and none regressed.
    #[must_use]
    pub fn improved(&self) -> bool {
        !self.regressed() && self.metrics.iter().any(|m| m.verdict == Verdict::Improved)
    }

    /// The overall verdict: regressed if any metric regressed, else improved if any
    /// improved, else unchanged.
    #[must_use]
    pub fn overall(&self) -> Verdict {
        if self.regressed() {
            Verdict::Regressed
        } else if self.improved() {
            Verdict::Improved
        } else {
            Verdict::Unchanged
        }
    }

    /// The metric with this key (see [`MetricComparison::key`]).
    #[must_use]
    pub fn metric(&self, key: &str) -> Option<&MetricComparison> {
        self.metrics.iter().find(|m| m.key == key)
    }
}

/// The differing keys of two JSON objects, `skip` left out, in key order.
fn differences(
    base: &Value,
    candidate: &Value,
    keys: Option<&[&str]>,
    skip: &[&str],
) -> Vec<ConfigDifference> {
    let empty = serde_json::Map::new();
    let (b, c) = (
        base.as_object().unwrap_or(&empty),
        candidate.as_object().unwrap_or(&empty),
    );
    let mut all: Vec<&String> = b.keys().chain(c.keys()).collect();
    all.sort();
    all.dedup();
    let text = |v: Option<&Value>| match v {
        None => "(missing)".to_owned(),
        Some(Value::Null) => "none".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    all.into_iter()
        .filter(|k| {
            !skip.contains(&k.as_str()) && keys.is_none_or(|keys| keys.contains(&k.as_str()))
        })
        .filter(|k| b.get(*k) != c.get(*k))
        .map(|k| ConfigDifference {
            key: k.clone(),
            base: text(b.get(k)),
            candidate: text(c.get(k)),
        })
        .collect()
}

/// Differences of `config`; a run without `results.json` has no known scenario.
fn config_differences(base: &RunRecord, candidate: &RunRecord) -> Vec<ConfigDifference> {
    match (&base.results, &candidate.results) {
        (Some(b), Some(c)) => {
            let to_value =
                |r: &runlog::RunResults| serde_json::to_value(&r.config).unwrap_or_default();
            differences(&to_value(b), &to_value(c), None, IGNORED_CONFIG_KEYS)
        }
        (b, c) => {
            let state = |r: &Option<runlog::RunResults>| {
                if r.is_some() {
                    "known"
                } else {
                    "unknown (no results.json)"
                }
            };
            vec![ConfigDifference {
                key: "config".into(),
                base: state(b).into(),
                candidate: state(c).into(),
            }]
        }
    }
}

fn environment_differences(base: &RunRecord, candidate: &RunRecord) -> Vec<ConfigDifference> {
    match (&base.results, &candidate.results) {
        (Some(b), Some(c)) => {
            let to_value =
                |r: &runlog::RunResults| serde_json::to_value(&r.environment).unwrap_or_default();
            differences(&to_value(b), &to_value(c), Some(ENVIRONMENT_KEYS), &[])
        }
        _ => Vec::new(),
    }
}

/// Reads two run directories, compares them and writes the comparison page (by default
/// `compare.html` in the candidate's directory).
///
/// ```no_run
/// use reports::{compare, CompareOptions};
/// let opts = CompareOptions { threshold_pct: 10.0, ..Default::default() };
/// let c = compare("target/soak/base".as_ref(), "target/soak/latest".as_ref(), &opts)?;
/// println!("{}: {}", c.path.as_ref().unwrap().display(), c.overall());
/// std::process::exit(i32::from(c.regressed())); // --fail-on-regression
/// # Ok::<(), reports::CompareError>(())
/// ```
///
/// # Errors
/// [`CompareError::Report`] when a record cannot be read or the page cannot be written
/// (naming the file); otherwise as [`Comparison::evaluate`].
pub fn compare(
    base: &Path,
    candidate: &Path,
    opts: &CompareOptions,
) -> Result<Comparison, CompareError> {
    let base_record = RunRecord::load(base)?;
    let candidate_record = RunRecord::load(candidate)?;
    let mut comparison = Comparison::evaluate(&base_record, &candidate_record, opts)?;
    let out = opts
        .output
        .clone()
        .unwrap_or_else(|| candidate.join(COMPARE_FILE));
    crate::output::check_output(&out, opts.overwrite)?;
    let html = crate::compare_page::render(&base_record, &candidate_record, &comparison);
    write_file(&out, &html)?;
    comparison.path = Some(out);
    Ok(comparison)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_follow_the_direction_and_threshold() {
        let up = Direction::HigherIsBetter;
        let down = Direction::LowerIsBetter;
        assert_eq!(
            judge(up, Some(100.0), Some(106.0), 5.0).1,
            Verdict::Improved
        );
        assert_eq!(
            judge(up, Some(100.0), Some(94.0), 5.0).1,
            Verdict::Regressed
        );
        assert_eq!(
            judge(up, Some(100.0), Some(104.0), 5.0).1,
            Verdict::Unchanged
        );
        assert_eq!(
            judge(down, Some(100.0), Some(106.0), 5.0).1,
            Verdict::Regressed
        );
        assert_eq!(
            judge(down, Some(100.0), Some(90.0), 5.0).1,
            Verdict::Improved
        );
        assert_eq!(
            judge(down, Some(0.0), Some(5.0), 5.0),
            (None, Verdict::Regressed)
        );
        assert_eq!(judge(down, Some(0.0), Some(0.0), 5.0).1, Verdict::Unchanged);
        assert_eq!(
            judge(down, None, Some(1.0), 5.0),
            (None, Verdict::Unavailable)
        );
    }

    #[test]
    fn differences_skip_ignored_keys_and_name_both_values() {
        let b = serde_json::json!({"seed": 1, "producers": 32, "max_batch_bytes": null});
        let c = serde_json::json!({"seed": 2, "producers": 16, "max_batch_bytes": 4096});
        let d = differences(&b, &c, None, IGNORED_CONFIG_KEYS);
        assert_eq!(
            describe_differences(&d),
            "max_batch_bytes (none vs 4096), producers (32 vs 16)"
        );
    }
}
