//! The run record of one Metronome soak run: serde types and their readers and writers.
//!
//! A run writes one directory, `<base>/<run-id>/`, with `<base>/latest` pointing at the
//! newest run:
//!
//! | file | written by | read with |
//! | --- | --- | --- |
//! | `samples.jsonl` | [`SamplesWriter`], one line per sample interval or event | [`read_samples`], [`SamplesFollower`] (live) |
//! | `latency.hlog` | [`HlogWriter`], one histogram per sample interval | [`read_hlog`] |
//! | `results.json` | [`write_results`] at the end | [`read_results`] |
//!
//! Dashboards and reports depend on this crate only: everything they read is here, as
//! plain data. Key names of `results.json` are a contract (schema [`SCHEMA`]).
//!
//! # Writing a run
//!
//! ```
//! use runlog::*;
//! # let base = std::env::temp_dir().join(format!("runlog-doc-lib-{}", std::process::id()));
//!
//! let config = ScenarioConfig::from_toml_str("duration_s = 2.0\nproducers = 4\n")?;
//! let run = RunDir::create(&base, &new_run_id())?;
//! let mut samples = SamplesWriter::create(&run.samples_path())?;
//! samples.write_event(&Event::new(0.0, EventKind::Phase { name: "run".into() }))?;
//!
//! // A dashboard asks for a shorter interval; the soak validates and logs it.
//! let limits = Limits::from_config(&config);
//! let control = Control::SetInterval { interval_us: 5_000 };
//! let next = limits.apply(&control)?;
//! let knob = control.knob().unwrap();
//! samples.write_event(&Event::new(0.7, EventKind::Reconfigure {
//!     knob: knob.name().into(),
//!     from: limits.value_text(knob),
//!     to: next.value_text(knob),
//!     source: "tui".into(),
//! }))?;
//!
//! // Once per sample interval:
//! samples.write_sample(&Sample { t_s: 1.0, interval_s: 1.0, limits: next, phase: "run".into(), ..Default::default() })?;
//!
//! // At the end:
//! let results = RunResults {
//!     run_id: run.run_id(),
//!     started_at: now_rfc3339(),
//!     config,
//!     ..Default::default()
//! };
//! write_results(&run.results_path(), &results)?;
//!
//! // A report or CI gate reads it back.
//! let latest = RunDir::resolve_latest(&base)?;
//! assert_eq!(read_results(&latest.results_path())?.config.producers, 4);
//! let log = read_samples(&latest.samples_path())?;
//! assert_eq!((log.samples.len(), log.events.len(), log.truncated), (1, 2, None));
//! # std::fs::remove_dir_all(&base).unwrap();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Following a live run
//!
//! [`SamplesFollower::poll`] returns the complete lines written since the last poll; call
//! it from the dashboard's tick. [`Control`] is the command a dashboard sends back, and
//! [`Limits::apply`] is the one validation both sides use.

#![forbid(unsafe_code)]

mod assessment;
mod clock;
mod config;
mod control;
mod environment;
mod error;
mod event;
mod files;
mod fit;
mod follow;
mod group;
mod hlog;
pub mod human;
mod latency;
mod line;
mod results;
mod rundir;
mod sample;
mod samples_io;
mod scheduling;
mod spill;
mod threshold;
mod units;

pub use assessment::{Assessment, Section, Status};
pub use clock::{new_run_id, now_rfc3339};
pub use config::{ConfigError, Policy, ScenarioConfig, TargetKind, Weighing, bounds};
pub use control::{Control, Knob, LimitError, Limits};
pub use environment::Environment;
pub use error::RunlogError;
pub use event::{Event, EventKind};
pub use files::{MAX_RECORD_BYTES, open_regular, read_regular, write_atomically};
pub use fit::{Fit, MIN_TREND_POINTS, heap_trend, least_squares, second_half_fit};
pub use follow::SamplesFollower;
pub use group::{
    GROUP_FILE, GROUP_SCHEMA, GroupRecord, GroupRun, GroupSummary, Spread, is_group, read_group,
    write_group,
};
pub use hlog::{HlogInterval, HlogWriter, read_hlog, read_hlog_checked};
pub use latency::LatencySummary;
pub use line::Line;
pub use results::{
    BatchStats, Drain, Interruption, Memory, RunResults, SCHEMA, Throughput, read_results,
    write_results,
};
pub use rundir::{LATEST, RunDir};
pub use sample::{FlushReasonCounts, Sample, SpillSample, Totals};
pub use samples_io::{SamplesLog, SamplesWriter, Truncation, read_samples};
pub use scheduling::ProducerScheduling;
pub use spill::{
    DEFAULT_MAX_DISK_BYTES, DEFAULT_SYNC_INTERVAL_MS, MAX_MAX_DISK_BYTES, MAX_SYNC_INTERVAL_MS,
    MIN_MAX_DISK_BYTES, SpillConfig, SpillSync, SpillTotals,
};
pub use threshold::{
    METRICS as THRESHOLD_METRICS, Metric, OPERATORS, Op, Threshold, ThresholdError,
    ThresholdResult, Thresholds,
};
