//! A group of repeated runs of one scenario (`cargo soak --repeat N`): the directory
//! `<base>/<group-id>/` holds one complete run directory per repeat and `group.json`,
//! which lists them with their key figures and a summary of the group.
//!
//! ```
//! use runlog::{GroupRecord, GroupRun, RunResults, read_group, write_group};
//! # let dir = std::env::temp_dir().join(format!("runlog-doc-group-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir).unwrap();
//! let mut group = GroupRecord::new("g1", "2026-01-01T00:00:00Z", Default::default(), 2);
//! for (id, rate) in [("r1", 100.0), ("r2", 120.0)] {
//!     let mut r = RunResults { run_id: id.into(), ..Default::default() };
//!     r.throughput.avg_delivered_per_sec = rate;
//!     group.push(GroupRun::of(&r));
//! }
//! assert_eq!(group.summary.delivered_per_sec.median, 110.0);
//! write_group(&dir, &group)?;
//! assert_eq!(read_group(&dir)?, group);
//! # std::fs::remove_dir_all(&dir).unwrap();
//! # Ok::<(), runlog::RunlogError>(())
//! ```

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::assessment::Status;
use crate::config::ScenarioConfig;
use crate::error::RunlogError;
use crate::results::RunResults;

/// The schema of `group.json`.
pub const GROUP_SCHEMA: &str = "metronome.group/1";
/// The file that makes a directory a group.
pub const GROUP_FILE: &str = "group.json";

/// One run of a group, with the figures a glance needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupRun {
    /// The run directory's name, inside the group directory.
    pub run_id: String,
    /// The run's verdict.
    pub overall: Status,
    /// Delivered events per second.
    pub avg_delivered_per_sec: f64,
    /// Whole-run p99 enqueue-to-delivery latency (0 when not recorded).
    pub latency_p99_us: u64,
    /// Largest sampled heap.
    pub peak_heap_bytes: u64,
    /// Drain time.
    pub drain_us: u64,
}

impl GroupRun {
    /// The entry for a finished run.
    #[must_use]
    pub fn of(results: &RunResults) -> Self {
        Self {
            run_id: results.run_id.clone(),
            overall: results.assessment.overall,
            avg_delivered_per_sec: results.throughput.avg_delivered_per_sec,
            latency_p99_us: results.latency_us.p99,
            peak_heap_bytes: results.memory.peak_heap_bytes,
            drain_us: results.drain.drain_us,
        }
    }
}

/// Median, lowest and highest of one figure over the group's runs.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Spread {
    /// The median (the mean of the middle two for an even count).
    pub median: f64,
    /// The lowest.
    pub min: f64,
    /// The highest.
    pub max: f64,
}

impl Spread {
    /// The spread of `values` (all zero when empty).
    #[must_use]
    pub fn of(values: impl IntoIterator<Item = f64>) -> Self {
        let mut v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return Self::default();
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Self {
            median,
            min: v[0],
            max: v[n - 1],
        }
    }
}

/// The group at a glance.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct GroupSummary {
    /// Runs that passed, warned and failed.
    pub passed: u32,
    /// See `passed`.
    pub warned: u32,
    /// See `passed`.
    pub failed: u32,
    /// Delivered events per second over the runs.
    pub delivered_per_sec: Spread,
    /// p99 latency over the runs, microseconds.
    pub latency_p99_us: Spread,
    /// Peak heap over the runs, bytes.
    pub peak_heap_bytes: Spread,
}

/// `group.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupRecord {
    /// Always [`GROUP_SCHEMA`].
    pub schema: String,
    /// The group directory's name.
    pub group_id: String,
    /// When the first run started, RFC 3339 UTC.
    pub created_at: String,
    /// The scenario every run ran.
    pub config: ScenarioConfig,
    /// How many runs were asked for (`--repeat`).
    pub repeat: u32,
    /// The runs that finished, in order.
    pub runs: Vec<GroupRun>,
    /// The group at a glance.
    pub summary: GroupSummary,
}

impl GroupRecord {
    /// An empty group of `repeat` runs of `config`.
    #[must_use]
    pub fn new(group_id: &str, created_at: &str, config: ScenarioConfig, repeat: u32) -> Self {
        Self {
            schema: GROUP_SCHEMA.to_owned(),
            group_id: group_id.to_owned(),
            created_at: created_at.to_owned(),
            config,
            repeat,
            runs: Vec::new(),
            summary: GroupSummary::default(),
        }
    }

    /// Adds a finished run and updates the summary.
    pub fn push(&mut self, run: GroupRun) {
        self.runs.push(run);
        let runs = &self.runs;
        let count = |s: Status| runs.iter().filter(|r| r.overall == s).count() as u32;
        self.summary = GroupSummary {
            passed: count(Status::Pass),
            warned: count(Status::Warn),
            failed: count(Status::Fail),
            delivered_per_sec: Spread::of(runs.iter().map(|r| r.avg_delivered_per_sec)),
            latency_p99_us: Spread::of(runs.iter().map(|r| r.latency_p99_us as f64)),
            peak_heap_bytes: Spread::of(runs.iter().map(|r| r.peak_heap_bytes as f64)),
        };
    }
}

/// Whether `dir` is a group directory (holds `group.json`).
#[must_use]
pub fn is_group(dir: &Path) -> bool {
    dir.join(GROUP_FILE).is_file()
}

/// Writes `dir/group.json` atomically.
///
/// # Errors
/// As [`write_results`](crate::write_results).
pub fn write_group(dir: &Path, group: &GroupRecord) -> Result<(), RunlogError> {
    crate::results::write_json_atomically(&dir.join(GROUP_FILE), group)
}

/// Reads `dir/group.json`, refusing another schema.
///
/// # Errors
/// [`RunlogError::Io`] when it cannot be read, [`RunlogError::Invalid`] for another
/// schema, [`RunlogError::Json`] when it does not parse.
pub fn read_group(dir: &Path) -> Result<GroupRecord, RunlogError> {
    let path = dir.join(GROUP_FILE);
    let bytes = crate::files::read_regular(&path, crate::files::MAX_RECORD_BYTES)
        .map_err(|e| RunlogError::io(&path, e))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let e = std::io::Error::new(std::io::ErrorKind::InvalidData, e.utf8_error());
        RunlogError::io(&path, e)
    })?;
    let json_err = |e: serde_json::Error| {
        let line = (e.line() > 0).then(|| e.line());
        RunlogError::json(&path, line, e)
    };
    let value: serde_json::Value = serde_json::from_str(&text).map_err(json_err)?;
    let schema = value.get("schema").and_then(|s| s.as_str()).unwrap_or("");
    if schema != GROUP_SCHEMA {
        return Err(RunlogError::Invalid {
            path,
            message: format!("unsupported schema {schema:?} (this build reads {GROUP_SCHEMA:?})"),
        });
    }
    serde_json::from_value(value).map_err(json_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_takes_the_middle() {
        let s = Spread::of([3.0, 1.0, 2.0]);
        assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
        assert_eq!(Spread::of([]).median, 0.0);
    }
}
