//! The run report: a record in, one self-contained HTML document out.

use std::path::{Path, PathBuf};

use crate::charts::{self, Timeline};
use crate::disk_tier::{self, DiskTier};
use crate::error::ReportError;
use crate::figures::KeyFigures;
use crate::format;
use crate::page;
use crate::record::{RunRecord, Warning};
use crate::tables;

/// The file name of the run report inside a run directory.
pub const REPORT_FILE: &str = "report.html";

/// A report written to disk.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct RenderedReport {
    /// Where the report was written.
    pub path: PathBuf,
    /// What is missing or cut short in the record (also shown in the report's banner).
    pub warnings: Vec<Warning>,
    /// The size of the report, in bytes.
    pub bytes: usize,
}

/// Reads the run record in `dir` and writes `dir/report.html`.
///
/// ```no_run
/// let report = reports::render_run(std::path::Path::new("target/soak/latest"))?;
/// for warning in &report.warnings {
///     eprintln!("warning: {warning}");
/// }
/// println!("wrote {}", report.path.display());
/// # Ok::<(), reports::ReportError>(())
/// ```
///
/// # Errors
/// As [`RunRecord::load`], and [`ReportError::Write`] when the report cannot be written.
pub fn render_run(dir: &Path) -> Result<RenderedReport, ReportError> {
    render_run_to(dir, &dir.join(REPORT_FILE))
}

/// Reads the run record in `dir` and writes its report to `out`.
///
/// # Errors
/// As [`render_run`].
pub fn render_run_to(dir: &Path, out: &Path) -> Result<RenderedReport, ReportError> {
    let record = RunRecord::load(dir)?;
    let html = render_html(&record);
    write_file(out, &html)?;
    Ok(RenderedReport {
        path: out.to_path_buf(),
        warnings: record.warnings,
        bytes: html.len(),
    })
}

/// Writes `text` to `path` atomically (a temporary file beside it, then a rename), naming
/// the path on failure: a full disk or a killed process leaves the previous file whole,
/// never a truncated page.
pub(crate) fn write_file(path: &Path, text: &str) -> Result<(), ReportError> {
    runlog::write_atomically(path, text.as_bytes()).map_err(|source| ReportError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Renders a record as one self-contained HTML document: inline CSS and SVG charts, no
/// scripts, no fonts, nothing fetched. Its size is bounded: time series are pooled to a
/// fixed number of points whatever the run's length.
///
/// ```
/// let record = reports::RunRecord { run_id: "demo".into(), ..Default::default() };
/// let html = reports::render_html(&record);
/// assert!(html.starts_with("<!DOCTYPE html>"));
/// assert!(html.contains("id=\"chart-throughput\""));
/// ```
#[must_use]
pub fn render_html(record: &RunRecord) -> String {
    let figures = KeyFigures::of(record);
    let results = record.results.as_ref();
    let (subtitle, scenario) = match results {
        Some(r) => (
            format!(
                "started {} · ran {}",
                r.started_at,
                format::seconds(r.duration_s)
            ),
            match r.environment.cpus_constrained {
                Some(cpus) => format!(
                    "Scenario: {} · constrained to {cpus} of {} CPUs (--cpus: an approximation of a smaller machine)",
                    runlog::human::scenario(&r.config),
                    r.environment.cpu_count
                ),
                None => format!("Scenario: {}", runlog::human::scenario(&r.config)),
            },
        ),
        None => (
            format!("{} of samples", format::seconds(figures.duration_s)),
            "Scenario unknown: the run did not finish (no results.json)".to_owned(),
        ),
    };
    let mut body = page::warning_banner(&record.warnings);
    body.push_str(&page::header_band(
        &record.run_id,
        &subtitle,
        &scenario,
        results.map(|r| &r.environment),
        &figures,
    ));
    if let Some(r) = results {
        body.push_str("<div class=\"spaced\">");
        body.push_str(&tables::assessment(&r.assessment));
        body.push_str("</div>\n");
    }
    let timeline = Timeline::of(record);
    body.push_str("<h2>Charts</h2>\n<div class=\"grid\">\n");
    for chart in chart_svgs(record, &timeline, &figures) {
        body.push_str("<section class=\"card chart-card\">");
        body.push_str(&chart);
        body.push_str("</section>\n");
    }
    body.push_str("</div>\n");
    if let Some(tier) = DiskTier::of(record.samples()) {
        body.push_str(&disk_tier::section(&timeline, &tier));
    }
    let groups = timeline.marker_groups();
    if !groups.is_empty() {
        body.push_str("<div class=\"markers\">");
        body.push_str(&tables::markers(&groups));
        body.push_str("</div>\n");
    }
    body.push_str("<h2>Figures</h2>\n<div class=\"grid\">\n");
    body.push_str(&tables::totals(&figures, results));
    body.push_str(&tables::memory(&figures, results));
    body.push_str(&tables::latency(&figures));
    if let Some(r) = results {
        body.push_str(&tables::drain(r));
    }
    body.push_str(&tables::events(record.events()));
    body.push_str(&tables::scenario(record));
    if let Some(r) = results {
        body.push_str(&tables::environment(r));
    }
    body.push_str("</div>\n<footer>Metronome run report, rendered from results.json, samples.jsonl and latency.hlog. Self-contained: it loads nothing.</footer>");
    page::document(
        page::REPORT_GENERATOR,
        &format!("Metronome run {}", record.run_id),
        &body,
    )
}

/// Every chart of the run report, in display order.
fn chart_svgs(record: &RunRecord, timeline: &Timeline<'_>, figures: &KeyFigures) -> Vec<String> {
    let flush = match &record.results {
        Some(r) => r.batches.flush_reasons,
        None => sum_flush_reasons(record),
    };
    let cores = record.results.as_ref().map(|r| {
        r.environment
            .cpus_constrained
            .unwrap_or(r.environment.cpu_count)
    });
    vec![
        charts::throughput::chart(timeline),
        charts::memory::buffered_chart(timeline),
        charts::memory::heap_chart(timeline, figures.heap_slope.as_ref()),
        charts::latency::over_time_chart(timeline),
        charts::latency::spectrum_chart(record.merged_latency().as_ref()),
        charts::batches::size_chart(timeline),
        charts::batches::flush_reasons_chart(&flush),
        charts::cpu::chart(timeline, cores),
    ]
}

/// Flush reasons over all samples: for a run without `results.json`.
fn sum_flush_reasons(record: &RunRecord) -> runlog::FlushReasonCounts {
    record
        .samples()
        .iter()
        .fold(runlog::FlushReasonCounts::default(), |mut acc, s| {
            let f = &s.flush_reasons;
            acc.interval += f.interval;
            acc.bytes += f.bytes;
            acc.items += f.items;
            acc.manual += f.manual;
            acc.drain += f.drain;
            acc
        })
}
