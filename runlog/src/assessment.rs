//! The verdict of a run: pass, warn or fail, per section and overall.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::threshold::ThresholdResult;

/// A verdict. Ordered from best to worst: `Pass < Warn < Fail`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Within expectations (`"pass"`).
    #[default]
    Pass,
    /// Worth a look (`"warn"`).
    Warn,
    /// The contract or a gate was broken (`"fail"`).
    Fail,
}

impl Status {
    /// The worse of two verdicts.
    ///
    /// ```
    /// use runlog::Status;
    /// assert_eq!(Status::worst(Status::Warn, Status::Pass), Status::Warn);
    /// assert_eq!(Status::worst(Status::Warn, Status::Fail), Status::Fail);
    /// ```
    #[must_use]
    pub fn worst(a: Status, b: Status) -> Status {
        a.max(b)
    }

    /// The lowercase name, as serialized.
    ///
    /// ```
    /// assert_eq!(runlog::Status::Fail.as_str(), "fail");
    /// ```
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Warn => "warn",
            Self::Fail => "fail",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One assessed aspect of a run with the reasons for its verdict.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Section {
    /// The verdict.
    pub status: Status,
    /// Human-readable findings, one sentence each.
    pub notes: Vec<String>,
}

impl Section {
    /// A section with a verdict and its notes.
    ///
    /// ```
    /// let s = runlog::Section::new(runlog::Status::Warn, ["rejected 2.5% of attempts"]);
    /// assert_eq!(s.notes.len(), 1);
    /// ```
    #[must_use]
    pub fn new<I, S>(status: Status, notes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            status,
            notes: notes.into_iter().map(Into::into).collect(),
        }
    }
}

/// The verdict of a run: `overall` is the worst of the four sections and the user's
/// thresholds (a failed threshold fails the run).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Assessment {
    /// The worst section status.
    pub overall: Status,
    /// Nothing accepted was lost: accepted == delivered + dropped + undelivered.
    pub correctness: Section,
    /// The run applied real backpressure.
    pub pressure: Section,
    /// Heap and buffered bytes stayed within bounds.
    pub memory: Section,
    /// Shutdown drained in time.
    pub drain: Section,
    /// The user's thresholds, each judged against the run (empty when none were set;
    /// records written before thresholds existed read as empty).
    #[serde(default)]
    pub thresholds: Vec<ThresholdResult>,
    /// What the verdict did not judge, one sentence each (e.g. latency without a latency
    /// threshold), so a pass is never read as covering it.
    #[serde(default)]
    pub not_judged: Vec<String>,
}

impl Assessment {
    /// An assessment whose `overall` is the worst of the sections.
    ///
    /// ```
    /// use runlog::{Assessment, Section, Status};
    /// let ok = Section::new(Status::Pass, Vec::<String>::new());
    /// let a = Assessment::new(ok.clone(), Section::new(Status::Warn, ["no pressure"]), ok.clone(), ok);
    /// assert_eq!(a.overall, Status::Warn);
    /// ```
    #[must_use]
    pub fn new(correctness: Section, pressure: Section, memory: Section, drain: Section) -> Self {
        let overall = [&pressure, &memory, &drain]
            .iter()
            .fold(correctness.status, |acc, s| Status::worst(acc, s.status));
        Self {
            overall,
            correctness,
            pressure,
            memory,
            drain,
            thresholds: Vec::new(),
            not_judged: Vec::new(),
        }
    }

    /// Adds the judged thresholds (a failed one fails the run) and what was not judged.
    ///
    /// ```
    /// use runlog::{Assessment, RunResults, Status, Threshold};
    /// let t: Threshold = "refused<1%".parse()?;
    /// let mut run = RunResults::default();
    /// (run.totals.attempted, run.totals.rejected) = (100, 5);
    /// let a = Assessment::default().with_thresholds(vec![t.evaluate(&run)], Vec::new());
    /// assert_eq!(a.overall, Status::Fail);
    /// # Ok::<(), runlog::ThresholdError>(())
    /// ```
    #[must_use]
    pub fn with_thresholds(
        mut self,
        thresholds: Vec<ThresholdResult>,
        not_judged: Vec<String>,
    ) -> Self {
        if thresholds.iter().any(|t| !t.passed) {
            self.overall = Status::Fail;
        }
        self.thresholds = thresholds;
        self.not_judged = not_judged;
        self
    }

    /// The thresholds that failed.
    pub fn failed_thresholds(&self) -> impl Iterator<Item = &ThresholdResult> {
        self.thresholds.iter().filter(|t| !t.passed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_serializes_lowercase() {
        assert_eq!(serde_json::to_string(&Status::Warn).unwrap(), "\"warn\"");
        let s: Status = serde_json::from_str("\"fail\"").unwrap();
        assert_eq!(s, Status::Fail);
    }

    #[test]
    fn overall_is_worst_section() {
        let pass = Section::default();
        let fail = Section::new(Status::Fail, ["lost 3 events"]);
        let a = Assessment::new(pass.clone(), pass.clone(), pass.clone(), fail);
        assert_eq!(a.overall, Status::Fail);
        let a = Assessment::new(pass.clone(), pass.clone(), pass.clone(), pass);
        assert_eq!(a.overall, Status::Pass);
    }
}
