//! The crate's errors: one enum per operation, each naming the file (and line) concerned.

use std::path::PathBuf;

use runlog::RunlogError;

use crate::compare::ConfigDifference;

/// Why a run report could not be rendered.
///
/// A missing `results.json` or `latency.hlog` and a cut last line of `samples.jsonl` are not
/// errors: the report still renders, with a warning (see [`Warning`](crate::Warning)).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// A run-record file could not be read or did not parse; the message names the file
    /// and, for JSON, the 1-based line (`run/samples.jsonl:17: expected value`).
    #[error(transparent)]
    Record(#[from] RunlogError),
    /// The directory holds neither `results.json` nor a `samples.jsonl` with anything in it.
    #[error("{}: not a run record (no results.json, and no samples.jsonl or an empty one)", dir.display())]
    NotARun {
        /// The directory that was searched.
        dir: PathBuf,
    },
    /// The report could not be written.
    #[error("{}: cannot write the report: {source}", path.display())]
    Write {
        /// The file that was being written.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// Why two runs could not be compared.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CompareError {
    /// One of the two run records could not be read (the message names the file).
    #[error(transparent)]
    Report(#[from] ReportError),
    /// The two runs' scenarios differ and [`CompareOptions::force`](crate::CompareOptions)
    /// was not set. The message lists every differing `config` key with both values.
    #[error(
        "runs are not comparable: their scenarios differ in {}",
        crate::compare::describe_differences(differences)
    )]
    Incomparable {
        /// The differing `config` keys, in key order.
        differences: Vec<ConfigDifference>,
    },
    /// The output is a file a comparison must not replace: a run's record file, a special
    /// file, or (unless overwriting is asked for) anything that is not a comparison page.
    #[error("refusing to overwrite {}: {why}", path.display())]
    Output {
        /// The output path.
        path: PathBuf,
        /// Why it is refused.
        why: String,
        /// Whether asking to overwrite (`CompareOptions::overwrite`) would
        /// let it through: only for a file that is not a comparison page.
        overridable: bool,
    },
    /// The noise threshold is negative or not a number.
    #[error("noise threshold {0}% is not a percentage >= 0")]
    BadThreshold(f64),
    /// A primary metric that is not compared.
    #[error("unknown metric `{given}` (known: {known})")]
    UnknownMetric {
        /// The name given.
        given: String,
        /// The names known.
        known: String,
    },
    /// The comparison was made but its page could not be written (a full disk): the
    /// comparison is here, to print its verdicts anyway.
    #[error("{}: cannot write the comparison page: {source}", path.display())]
    Page {
        /// The page that could not be written.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
        /// The comparison, complete but for its page (`path` is `None`).
        comparison: Box<crate::Comparison>,
    },
    /// A group directory whose `group.json` lists no finished run.
    #[error("{}: the group has no finished run to compare", path.display())]
    EmptyGroup {
        /// The group directory.
        path: PathBuf,
    },
    /// A group that lists one run twice (by directory, or two directories holding the
    /// same run): counted twice, it would pass for repeated runs it is not.
    #[error("{}: the group lists run {run_id} more than once", path.display())]
    DuplicateRun {
        /// The group directory.
        path: PathBuf,
        /// The run listed again.
        run_id: String,
    },
}

impl CompareError {
    /// The differing `config` keys when the runs were [`CompareError::Incomparable`].
    ///
    /// ```
    /// let err = reports::CompareError::BadThreshold(-1.0);
    /// assert!(err.differences().is_empty());
    /// ```
    #[must_use]
    pub fn differences(&self) -> &[ConfigDifference] {
        match self {
            Self::Incomparable { differences } => differences,
            _ => &[],
        }
    }
}
