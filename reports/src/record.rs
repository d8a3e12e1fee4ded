//! The run record as the report reads it: results, samples and latency log, any of which
//! may be missing or cut short, with the warnings that explain what is missing.

use std::fmt;
use std::path::{Path, PathBuf};

use hdrhistogram::Histogram;
use runlog::{Event, HlogInterval, RunDir, RunResults, RunlogError, Sample, SamplesLog};

use crate::error::ReportError;

/// Something wrong with a run record that still lets it render: shown as a banner at the
/// top of the report and returned to the caller (see [`RenderedReport`](crate::RenderedReport)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Warning {
    /// `samples.jsonl` ends in a cut line: the run was killed, and its tail is missing.
    SamplesTruncated {
        /// The file.
        path: PathBuf,
        /// The 1-based line number of the cut line.
        line: usize,
        /// How many bytes of it were there.
        bytes: usize,
    },
    /// `results.json` is missing: the run did not finish. Figures come from the samples.
    ResultsMissing {
        /// The file that was expected.
        path: PathBuf,
    },
    /// `samples.jsonl` is missing: the report has tables but no time charts.
    SamplesMissing {
        /// The file that was expected.
        path: PathBuf,
    },
    /// `latency.hlog` ends in a cut line: the run was killed, and its last interval is missing.
    HlogTruncated {
        /// The file.
        path: PathBuf,
        /// The 1-based line number of the cut line.
        line: usize,
        /// How many bytes of it were there.
        bytes: usize,
    },
    /// `latency.hlog` is missing or unreadable: no whole-run percentile spectrum.
    HlogUnavailable {
        /// The file concerned.
        path: PathBuf,
        /// Why it could not be used.
        reason: String,
    },
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SamplesTruncated { path, line, bytes } => write!(
                f,
                "{}:{line}: the last line is cut ({bytes} bytes): the run was killed; \
                 the charts end at the last complete sample",
                path.display()
            ),
            Self::ResultsMissing { path } => write!(
                f,
                "{}: missing: the run did not finish; totals and figures are taken from the \
                 last sample and there is no assessment",
                path.display()
            ),
            Self::HlogTruncated { path, line, bytes } => write!(
                f,
                "{}:{line}: the last line is cut ({bytes} bytes): the run was killed; \
                 the latency spectrum ends at the last complete interval",
                path.display()
            ),
            Self::SamplesMissing { path } => {
                write!(f, "{}: missing: no time charts", path.display())
            }
            Self::HlogUnavailable { path, reason } => write!(
                f,
                "{}: {reason}: no whole-run percentile spectrum",
                path.display()
            ),
        }
    }
}

/// Everything a report is drawn from: `results.json`, `samples.jsonl` and `latency.hlog`.
///
/// Build one with [`RunRecord::load`], or by hand from the `runlog` types (the fields are
/// public) to render a record that was never written to disk.
#[derive(Debug, Clone, Default)]
pub struct RunRecord {
    /// The run's name (the run directory's name, or `results.json`'s `run_id`).
    pub run_id: String,
    /// `results.json`; `None` for a run that did not finish.
    pub results: Option<RunResults>,
    /// `samples.jsonl`, with [`SamplesLog::truncated`] set when its last line was cut.
    pub samples: SamplesLog,
    /// `latency.hlog`, one histogram per sample interval; `None` when unavailable.
    pub hlog: Option<Vec<HlogInterval>>,
    /// What is missing or cut short.
    pub warnings: Vec<Warning>,
}

impl RunRecord {
    /// Reads a run directory.
    ///
    /// A missing `results.json` (a killed run), a missing or unreadable `latency.hlog` and
    /// a cut last line of `samples.jsonl` become [`Warning`]s.
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("reports-doc-load-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir).unwrap();
    /// std::fs::write(dir.join("samples.jsonl"), "{\"at_s\":0.0,\"kind\":\"phase\",\"name\":\"run\"}\n")?;
    /// let record = reports::RunRecord::load(&dir)?;
    /// assert!(record.results.is_none());
    /// assert_eq!(record.warnings.len(), 2); // no results.json, no latency.hlog
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`ReportError::Record`] when the directory does not exist, `results.json` is corrupt
    /// or has another schema, or a line of `samples.jsonl` other than the last is bad (the
    /// message names the file and line); [`ReportError::NotARun`] when neither
    /// `results.json` nor `samples.jsonl` exists.
    pub fn load(dir: &Path) -> Result<RunRecord, ReportError> {
        let run = RunDir::open(dir)?;
        let (results_path, samples_path) = (run.results_path(), run.samples_path());
        if !results_path.exists() && !samples_path.exists() {
            return Err(ReportError::NotARun {
                dir: dir.to_path_buf(),
            });
        }
        let mut warnings = Vec::new();
        let results = if results_path.exists() {
            Some(runlog::read_results(&results_path)?)
        } else {
            warnings.push(Warning::ResultsMissing { path: results_path });
            None
        };
        let samples = if samples_path.exists() {
            let samples = runlog::read_samples(&samples_path)?;
            if results.is_none() && samples.samples.is_empty() && samples.events.is_empty() {
                // A run that never started (or was refused): nothing to report.
                return Err(ReportError::NotARun {
                    dir: dir.to_path_buf(),
                });
            }
            samples
        } else {
            warnings.push(Warning::SamplesMissing {
                path: samples_path.clone(),
            });
            SamplesLog::default()
        };
        if let Some(cut) = samples.truncated {
            warnings.push(Warning::SamplesTruncated {
                path: samples_path,
                line: cut.line,
                bytes: cut.bytes,
            });
        }
        let hlog = read_optional_hlog(&run.hlog_path(), &mut warnings);
        let run_id = results
            .as_ref()
            .map_or_else(|| run.run_id(), |r| r.run_id.clone());
        Ok(RunRecord {
            run_id,
            results,
            samples,
            hlog,
            warnings,
        })
    }

    /// The reconfigure, phase and warning events: `results.json`'s when present, else
    /// those logged in `samples.jsonl`.
    #[must_use]
    pub fn events(&self) -> &[Event] {
        match &self.results {
            Some(results) if !results.events.is_empty() => &results.events,
            _ => &self.samples.events,
        }
    }

    /// The samples, in time order.
    #[must_use]
    pub fn samples(&self) -> &[Sample] {
        &self.samples.samples
    }

    /// The whole run's latency histogram: every interval of the latency log merged.
    /// `None` without a latency log or when it holds no values.
    #[must_use]
    pub fn merged_latency(&self) -> Option<Histogram<u64>> {
        let intervals = self.hlog.as_ref()?;
        let mut merged = Histogram::<u64>::new(3).ok()?;
        for (_, _, histogram) in intervals {
            // Auto-resizing: adding never fails for lack of range.
            merged.add(histogram).ok()?;
        }
        (!merged.is_empty()).then_some(merged)
    }
}

fn read_optional_hlog(path: &Path, warnings: &mut Vec<Warning>) -> Option<Vec<HlogInterval>> {
    if !path.exists() {
        warnings.push(Warning::HlogUnavailable {
            path: path.to_path_buf(),
            reason: "missing".into(),
        });
        return None;
    }
    match runlog::read_hlog_checked(path) {
        Ok((intervals, cut)) => {
            if let Some(cut) = cut {
                warnings.push(Warning::HlogTruncated {
                    path: path.to_path_buf(),
                    line: cut.line,
                    bytes: cut.bytes,
                });
            }
            Some(intervals)
        }
        Err(e) => {
            // The latency log only feeds one chart: a bad one costs that chart, not the report.
            let reason = match e {
                RunlogError::Hlog { message, .. } => message,
                other => other.to_string(),
            };
            warnings.push(Warning::HlogUnavailable {
                path: path.to_path_buf(),
                reason,
            });
            None
        }
    }
}
