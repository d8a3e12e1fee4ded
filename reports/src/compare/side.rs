//! One side of a comparison: a group of repeated runs (`group.json`), or one run (a group
//! of one).

use std::path::{Path, PathBuf};

use crate::error::{CompareError, ReportError};
use crate::figures::KeyFigures;
use crate::record::RunRecord;

/// The runs on one side of a comparison.
#[derive(Debug, Clone, Default)]
pub struct Side {
    /// The directory given (a run or a group).
    pub path: PathBuf,
    /// The group's id, when the directory is a group.
    pub group_id: Option<String>,
    /// The runs, in the group's order (at least one).
    pub runs: Vec<RunRecord>,
}

impl Side {
    /// Reads a run directory, or a group directory (one holding `group.json`) and every
    /// run it lists.
    ///
    /// # Errors
    /// [`CompareError::Report`] when a record cannot be read (naming the file);
    /// [`CompareError::EmptyGroup`] for a group with no finished run;
    /// [`CompareError::DuplicateRun`] for a group that lists one run twice.
    pub fn load(path: &Path) -> Result<Side, CompareError> {
        if !runlog::is_group(path) {
            return Ok(Side {
                path: path.to_path_buf(),
                group_id: None,
                runs: vec![RunRecord::load(path)?],
            });
        }
        let group = runlog::read_group(path).map_err(ReportError::from)?;
        let runs = group
            .runs
            .iter()
            .map(|r| RunRecord::load(&path.join(&r.run_id)))
            .collect::<Result<Vec<_>, _>>()?;
        if runs.is_empty() {
            return Err(CompareError::EmptyGroup {
                path: path.to_path_buf(),
            });
        }
        let listed = group.runs.iter().map(|r| r.run_id.as_str());
        let recorded = runs.iter().map(|r| r.run_id.as_str());
        if let Some(run_id) = first_repeat(listed).or_else(|| first_repeat(recorded)) {
            return Err(CompareError::DuplicateRun {
                path: path.to_path_buf(),
                run_id: run_id.to_owned(),
            });
        }
        Ok(Side {
            path: path.to_path_buf(),
            group_id: Some(group.group_id),
            runs,
        })
    }

    /// One run as a side (a group of one).
    #[must_use]
    pub fn single(record: RunRecord) -> Side {
        Side {
            path: PathBuf::from(&record.run_id),
            group_id: None,
            runs: vec![record],
        }
    }

    /// `group 2026... (5 runs)` or `run 2026...`.
    #[must_use]
    pub fn describe(&self) -> String {
        match &self.group_id {
            Some(id) => format!("group {id} ({} runs)", self.runs.len()),
            None => format!("run {}", self.first().run_id),
        }
    }

    /// The first run (every run of a group ran the same scenario).
    #[must_use]
    pub fn first(&self) -> &RunRecord {
        &self.runs[0]
    }

    /// The run whose delivered rate is closest to the side's median: the one drawn on the
    /// overlaid charts.
    #[must_use]
    pub fn representative(&self) -> &RunRecord {
        let rates: Vec<f64> = self
            .runs
            .iter()
            .map(|r| KeyFigures::of(r).avg_delivered_per_sec)
            .collect();
        let median = super::stats::median(&rates).unwrap_or(0.0);
        let closest = rates
            .iter()
            .enumerate()
            .min_by(|a, b| (a.1 - median).abs().total_cmp(&(b.1 - median).abs()))
            .map_or(0, |(i, _)| i);
        &self.runs[closest]
    }
}

/// The first id that appears again, if any.
fn first_repeat<'a>(ids: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let mut seen = std::collections::HashSet::new();
    ids.into_iter().find(|id| !seen.insert(*id))
}
