//! The crate's error type: every failure names the file (and line) it concerns.

use std::path::{Path, PathBuf};

use crate::config::ConfigError;

/// Everything that can go wrong reading or writing a run record.
///
/// Each variant carries the path it concerns, so a message such as
/// `target/soak/latest/samples.jsonl:17: expected value` is enough to find the problem.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunlogError {
    /// A file-system operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A JSON document or JSON line did not parse (or did not serialize).
    #[error("{}{}: {source}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    Json {
        /// The file concerned.
        path: PathBuf,
        /// The 1-based line number, where it applies.
        line: Option<usize>,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },
    /// `results.json` declares a schema this crate does not read.
    #[error(
        "{}: unsupported schema {found:?} (this build reads {expected:?})",
        path.display(),
        expected = crate::results::SCHEMA
    )]
    Schema {
        /// The file concerned.
        path: PathBuf,
        /// The schema string found in the file (empty when the key was missing).
        found: String,
    },
    /// A TOML scenario did not parse or serialize.
    #[error("{}: {message}", path.display())]
    Toml {
        /// The file concerned, or `<string>` when parsing from memory.
        path: PathBuf,
        /// What went wrong, with the line and column or key where known.
        message: String,
    },
    /// A scenario value is out of range.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A record holds a value no run can have.
    #[error("{}: {message}", path.display())]
    Invalid {
        /// The file concerned.
        path: PathBuf,
        /// Which value, and why it is refused.
        message: String,
    },
    /// A latency interval log could not be written or read.
    #[error("{}: {message}", path.display())]
    Hlog {
        /// The file concerned.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

impl RunlogError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn json(path: &Path, line: Option<usize>, source: serde_json::Error) -> Self {
        Self::Json {
            path: path.to_path_buf(),
            line,
            source,
        }
    }

    pub(crate) fn hlog(path: &Path, message: impl Into<String>) -> Self {
        Self::Hlog {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_error_message_names_file_and_line() {
        let source = serde_json::from_str::<u32>("x").unwrap_err();
        let err = RunlogError::json(Path::new("a/samples.jsonl"), Some(7), source);
        let msg = err.to_string();
        assert!(msg.starts_with("a/samples.jsonl:7: "), "{msg}");
    }

    #[test]
    fn schema_error_names_both_schemas() {
        let err = RunlogError::Schema {
            path: "r.json".into(),
            found: "other/2".into(),
        };
        let msg = err.to_string();
        assert!(
            msg.contains("other/2") && msg.contains("metronome.run/1"),
            "{msg}"
        );
    }
}
