//! `results.json`: the summary of one run, and its reader and writer.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::assessment::Assessment;
use crate::config::ScenarioConfig;
use crate::environment::Environment;
use crate::error::RunlogError;
use crate::event::Event;
use crate::latency::LatencySummary;
use crate::sample::{FlushReasonCounts, Totals};

/// The schema this crate writes and reads, the value of the `schema` key.
pub const SCHEMA: &str = "metronome.run/1";

/// Delivered and accepted throughput over the run (events per second unless named bytes).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Throughput {
    /// Delivered events over the measured duration.
    pub avg_delivered_per_sec: f64,
    /// Lowest per-sample delivery rate.
    pub min_delivered_per_sec: f64,
    /// Highest per-sample delivery rate.
    pub max_delivered_per_sec: f64,
    /// Delivered payload bytes over the measured duration.
    pub avg_delivered_bytes_per_sec: f64,
    /// Accepted events over the measured duration.
    pub avg_accepted_per_sec: f64,
}

/// Memory high-water marks, the configured bound, and what the heap was judged against.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Memory {
    /// Largest sampled heap allocation.
    pub peak_heap_bytes: u64,
    /// Heap allocation after the drain.
    pub final_heap_bytes: u64,
    /// Largest sampled resident set size.
    pub peak_rss_bytes: u64,
    /// Largest buffered bytes (exact, from the dispatcher).
    pub peak_buffered_bytes: u64,
    /// The configured bound on buffered bytes (the largest in force during the run).
    pub max_buffered_bytes: u64,
    /// The heap when every producer was ready and nothing was buffered yet (0 in records
    /// written before it was measured, or when it could not be).
    #[serde(default)]
    pub baseline_heap_bytes: u64,
    /// Heap bytes per buffered byte, measured before the run with its payload and batch
    /// limits (0 when not measured).
    #[serde(default)]
    pub heap_per_buffered_byte: f64,
    /// The heap budget at the sample where the heap came closest to (or went furthest
    /// past) it, for the limit in force there (0 in older records).
    #[serde(default)]
    pub heap_budget_bytes: u64,
}

/// How shutdown went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Drain {
    /// From close to the last delivery.
    pub drain_us: u64,
    /// From close to all threads joined.
    pub shutdown_us: u64,
    /// Accepted events handed back undelivered because the drain deadline passed.
    pub undelivered: u64,
    /// Sink mode: accepted events still inside a sink call when the deadline passed
    /// (neither delivered nor handed back: the broker stopped answering).
    #[serde(default)]
    pub in_flight: u64,
    /// Sink mode: accepted events whose batch the sink gave up on.
    #[serde(default)]
    pub failed: u64,
    /// Bytes accepted and not yet delivered when the drain began (what the
    /// drain had to move; 0 in older records and for reference targets,
    /// which do not weigh what they hold).
    #[serde(default)]
    pub buffered_bytes_at_start: u64,
    /// Events accepted and not yet delivered when the drain began (disk
    /// tier included).
    #[serde(default)]
    pub buffered_events_at_start: u64,
}

impl Drain {
    /// Drain time per MiB that was buffered when it began, in microseconds;
    /// `None` when nothing was (or the record does not say).
    ///
    /// # Examples
    ///
    /// ```
    /// let d = runlog::Drain { drain_us: 3_000, buffered_bytes_at_start: 2 << 20, ..Default::default() };
    /// assert_eq!(d.us_per_buffered_mib(), Some(1_500.0));
    /// assert_eq!(runlog::Drain::default().us_per_buffered_mib(), None);
    /// ```
    pub fn us_per_buffered_mib(&self) -> Option<f64> {
        (self.buffered_bytes_at_start > 0).then(|| {
            self.drain_us as f64 / (self.buffered_bytes_at_start as f64 / (1 << 20) as f64)
        })
    }
}

/// Batch shape over the run.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct BatchStats {
    /// Mean bytes per delivered batch.
    pub mean_batch_bytes: f64,
    /// Batches per flush reason.
    pub flush_reasons: FlushReasonCounts,
}

/// `results.json`: the summary of one run. Its key names are a contract (see ARCHITECTURE.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResults {
    /// Always [`SCHEMA`]; checked on read.
    pub schema: String,
    /// The run directory's name, e.g. `20261123-103512-a3f9`.
    pub run_id: String,
    /// When the run started, RFC 3339 UTC (see [`now_rfc3339`](crate::now_rfc3339)).
    pub started_at: String,
    /// The machine and build.
    pub environment: Environment,
    /// The scenario as run (its starting limits).
    pub config: ScenarioConfig,
    /// Final cumulative counts.
    pub totals: Totals,
    /// Throughput over the run.
    pub throughput: Throughput,
    /// Memory high-water marks.
    pub memory: Memory,
    /// Enqueue-to-delivery latency over the whole run.
    pub latency_us: LatencySummary,
    /// How shutdown went.
    pub drain: Drain,
    /// Reconfigure, phase and warning markers, in time order.
    pub events: Vec<Event>,
    /// The verdict.
    pub assessment: Assessment,
    /// Batch shape over the run.
    pub batches: BatchStats,
    /// Measured length of the producing phase.
    pub duration_s: f64,
    /// Where batches went (`"in-process"` for the simulated consumer).
    #[serde(default = "default_sink")]
    pub sink: String,
    /// Set when a signal cut the run short; absent for a run that ran its course.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interrupted: Option<Interruption>,
    /// What the dispatcher's disk tier did, when the run had one (`config.spill`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spill: Option<crate::SpillTotals>,
}

/// How a signal cut a run short.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Interruption {
    /// The first signal's name, e.g. `"SIGTERM"`.
    pub signal: String,
    /// When it arrived, seconds since the run started.
    pub at_s: f64,
    /// `true` when a second signal made the run leave at once: the record holds what was
    /// known at the last sample (no drain, no final counts) and is marked as partial.
    pub partial: bool,
}

fn default_sink() -> String {
    "in-process".to_owned()
}

impl Default for RunResults {
    /// An empty record with `schema` = [`SCHEMA`] and `sink` = `"in-process"`.
    fn default() -> Self {
        Self {
            schema: SCHEMA.to_owned(),
            run_id: String::new(),
            started_at: String::new(),
            environment: Environment::default(),
            config: ScenarioConfig::default(),
            totals: Totals::default(),
            throughput: Throughput::default(),
            memory: Memory::default(),
            latency_us: LatencySummary::default(),
            drain: Drain::default(),
            events: Vec::new(),
            assessment: Assessment::default(),
            batches: BatchStats::default(),
            duration_s: 0.0,
            sink: default_sink(),
            interrupted: None,
            spill: None,
        }
    }
}

/// Writes `results.json` as pretty JSON, atomically: a reader never sees half a file.
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("runlog-doc-wr-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("results.json");
/// let results = runlog::RunResults { run_id: "demo".into(), ..Default::default() };
/// runlog::write_results(&path, &results)?;
/// assert_eq!(runlog::read_results(&path)?, results);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), runlog::RunlogError>(())
/// ```
///
/// # Errors
/// [`RunlogError::Io`] when the temporary file cannot be written or renamed;
/// [`RunlogError::Json`] when a value cannot be serialized (a non-finite `f64`).
pub fn write_results(path: &Path, results: &RunResults) -> Result<(), RunlogError> {
    write_json_atomically(path, results)
}

/// Writes `value` as pretty JSON to `path` through a temporary file and a rename.
pub(crate) fn write_json_atomically<T: Serialize>(
    path: &Path,
    value: &T,
) -> Result<(), RunlogError> {
    let mut text =
        serde_json::to_vec_pretty(value).map_err(|e| RunlogError::json(path, None, e))?;
    text.push(b'\n');
    crate::files::write_atomically(path, &text).map_err(|e| RunlogError::io(path, e))
}

/// Only the `schema` key, read before the rest so another schema gets a clear error, and
/// which scenario keys a record written before them lacks.
#[derive(Deserialize)]
struct SchemaProbe {
    schema: Option<String>,
    #[serde(default)]
    config: ConfigProbe,
}

/// The scenario keys whose absence says when the record was written.
#[derive(Deserialize, Default)]
struct ConfigProbe {
    producer_scheduling: Option<serde::de::IgnoredAny>,
}

/// Reads `results.json`, refusing any schema other than [`SCHEMA`].
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("runlog-doc-rd-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("results.json");
/// std::fs::write(&path, r#"{"schema": "metronome.run/2"}"#).unwrap();
/// let err = runlog::read_results(&path).unwrap_err();
/// assert!(matches!(err, runlog::RunlogError::Schema { .. }));
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
///
/// # Errors
/// [`RunlogError::Io`] when the file cannot be read, is not a regular file (a FIFO is
/// refused before it is opened) or is larger than [`MAX_RECORD_BYTES`](crate::MAX_RECORD_BYTES);
/// [`RunlogError::Schema`] for another or
/// a missing schema; [`RunlogError::Json`] with the line for malformed JSON or a missing or
/// mistyped key; [`RunlogError::Invalid`] for a figure no run can have (a negative
/// `duration_s`).
pub fn read_results(path: &Path) -> Result<RunResults, RunlogError> {
    let bytes = crate::files::read_regular(path, crate::files::MAX_RECORD_BYTES)
        .map_err(|e| RunlogError::io(path, e))?;
    let json_err = |e: serde_json::Error| {
        let line = (e.line() > 0).then(|| e.line());
        RunlogError::json(path, line, e)
    };
    let text = String::from_utf8(bytes).map_err(|e| {
        let e = std::io::Error::new(std::io::ErrorKind::InvalidData, e.utf8_error());
        RunlogError::io(path, e)
    })?;
    let probe: SchemaProbe = serde_json::from_str(&text).map_err(json_err)?;
    if probe.schema.as_deref() != Some(SCHEMA) {
        return Err(RunlogError::Schema {
            path: path.to_path_buf(),
            found: probe.schema.unwrap_or_default(),
        });
    }
    let mut results: RunResults = serde_json::from_str(&text).map_err(json_err)?;
    if probe.config.producer_scheduling.is_none() {
        // Written before the key existed: the producers ran in the class the soak ran in.
        results.config.producer_scheduling = crate::ProducerScheduling::Normal;
    }
    check_figures(path, &results)?;
    Ok(results)
}

/// Refuses figures no run can have (a negative or non-finite duration): a report drawn
/// from them would be nonsense.
fn check_figures(path: &Path, results: &RunResults) -> Result<(), RunlogError> {
    let d = results.duration_s;
    if !(d.is_finite() && d >= 0.0) {
        return Err(RunlogError::Invalid {
            path: path.to_path_buf(),
            message: format!("`duration_s` = {d} is not a duration (a number of seconds >= 0)"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_record_carries_the_schema() {
        let r = RunResults::default();
        assert_eq!(r.schema, SCHEMA);
        assert_eq!(r.sink, "in-process");
    }

    #[test]
    fn missing_sink_defaults_to_in_process() {
        let mut v = serde_json::to_value(RunResults::default()).unwrap();
        v.as_object_mut().unwrap().remove("sink");
        let r: RunResults = serde_json::from_value(v).unwrap();
        assert_eq!(r.sink, "in-process");
    }
}
