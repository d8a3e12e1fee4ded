//! Metronome reports: a soak run record as one self-contained HTML file, and the
//! comparison of two runs.
//!
//! A run directory (`target/soak/<run-id>/`) holds `results.json`, `samples.jsonl` and
//! `latency.hlog` (see the `runlog` crate). This crate reads them and writes:
//!
//! | call | writes | for |
//! | --- | --- | --- |
//! | [`render_run`] | `<run>/report.html` | the end of every run, `cargo soak report [RUN_DIR]` |
//! | [`compare`] | `<candidate>/compare.html` (or [`CompareOptions::output`]) | `cargo soak compare BASE CANDIDATE` |
//!
//! The pages are self-contained: inline CSS and inline SVG charts drawn with plotters, no
//! scripts, no fonts, no links; they open offline. Time series are pooled (min/max per
//! bucket, so spikes survive) to a fixed number of points, so a one-hour run's report stays
//! well under 3 MB.
//!
//! # Rendering a run
//!
//! ```
//! use runlog::{Event, EventKind, RunResults, Sample, SamplesLog};
//! use reports::{RunRecord, render_html};
//!
//! // Usually: RunRecord::load(dir)? or reports::render_run(dir)? in one step.
//! let samples = (1..=10)
//!     .map(|i| Sample { t_s: f64::from(i), delivered_per_sec: 1000.0, phase: "run".into(), ..Default::default() })
//!     .collect();
//! let record = RunRecord {
//!     run_id: "demo".into(),
//!     results: Some(RunResults { run_id: "demo".into(), ..Default::default() }),
//!     samples: SamplesLog {
//!         samples,
//!         events: vec![Event::new(0.0, EventKind::Phase { name: "run".into() })],
//!         truncated: None,
//!     },
//!     ..Default::default()
//! };
//! let html = render_html(&record);
//! assert!(html.contains("<svg id=\"chart-throughput\""));
//! assert!(!html.contains("<script"));
//! ```
//!
//! A record with problems still renders when it can: a cut last line of `samples.jsonl`
//! (a killed run), a missing `results.json` (figures then come from the samples) or a
//! missing `latency.hlog` become [`Warning`]s, shown in a banner at the top of the page and
//! returned in [`RenderedReport::warnings`]. A corrupt `results.json` or a bad line inside
//! `samples.jsonl` is a [`ReportError`] naming the file and line.
//!
//! # Comparing runs
//!
//! ```no_run
//! use reports::{CompareError, CompareOptions, compare};
//!
//! // Each side is a run directory or a group of repeated runs (`cargo soak --repeat N`).
//! match compare("runs/base".as_ref(), "runs/candidate".as_ref(), &CompareOptions::default()) {
//!     Ok(c) => {
//!         print!("{}", reports::compare_text::human(&c));
//!         if c.regressed() {
//!             std::process::exit(1); // --fail-on-regression
//!         }
//!     }
//!     Err(e @ CompareError::Incomparable { .. }) => eprintln!("{e}"), // names the differing keys
//!     Err(e) => eprintln!("{e}"),
//! }
//! ```
//!
//! Sides are comparable when their `config` is equal apart from [`IGNORED_CONFIG_KEYS`]
//! (`seed`, `preset`, `thresholds`); otherwise [`compare`] refuses with
//! [`CompareError::Incomparable`] unless [`CompareOptions::force`] is set. Each metric gets
//! a [`Verdict`] from the distributions: the change of the median with a bootstrap
//! confidence interval ([`compare_stats`]) from the runs (at least [`MIN_RUNS`] a side) or,
//! with fewer, from the runs' sample intervals where that means something, judged against
//! the metric's noise threshold. Sample intervals hold no run-to-run variation, so from
//! them a metric is `NoChange` or `Inconclusive`, never `Regressed` or `Improved`. The [`Headline`] comes from the primary metrics
//! (delivered/s, p99 and peak heap unless [`CompareOptions::primary`] says otherwise).

#![forbid(unsafe_code)]

mod charts;
mod compare;
mod compare_page;
mod disk_tier;
mod downsample;
mod error;
mod figures;
mod format;
mod how_to_read;
mod html;
mod output;
mod page;
mod record;
mod report;
mod stats;
mod tables;

pub use compare::{
    Basis, COMPARE_FILE, CompareOptions, Comparison, ConfigDifference, Direction, Headline,
    IGNORED_CONFIG_KEYS, MIN_INTERVALS, MIN_RUNS, MetricComparison, Side, Unit, Verdict, compare,
    stats as compare_stats, text as compare_text,
};
pub use error::{CompareError, ReportError};
pub use figures::KeyFigures;
pub use html::escape_html;
pub use record::{RunRecord, Warning};
pub use report::{REPORT_FILE, RenderedReport, render_html, render_run, render_run_to};
pub use runlog::Fit;

/// The comparison page of two sides, as [`compare`] writes it.
///
/// ```
/// use reports::{CompareOptions, Comparison, RunRecord, Side};
/// let record = RunRecord { results: Some(Default::default()), ..Default::default() };
/// let side = Side::single(record);
/// let c = Comparison::evaluate(&side, &side, &CompareOptions::default())?;
/// let html = reports::compare_html(&side, &side, &c);
/// assert!(html.contains("id=\"cmp-delivered\""));
/// # Ok::<(), reports::CompareError>(())
/// ```
#[must_use]
pub fn compare_html(base: &Side, candidate: &Side, comparison: &Comparison) -> String {
    compare_page::render(base, candidate, comparison)
}
