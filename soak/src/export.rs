//! `soak export`: a run's samples in a form other tools read. CSV has one row per sample
//! and one column per field, named as in `samples.jsonl` (nested fields joined with a dot:
//! `latency_us.p99`, `totals.accepted`), so every column name carries its unit. Events
//! (limit changes, phases) are not samples and stay in `samples.jsonl`.

use std::path::Path;
use std::process::ExitCode;

use serde_json::Value;

use crate::app::{EXIT_PASS, EXIT_USAGE};

/// Columns that lead, in this order; the rest follow by name.
const FIRST: &[&str] = &["t_s", "interval_s", "phase"];

/// Prints the samples of the run in `run_dir` (the latest when `None`) as CSV on stdout.
pub(crate) fn csv(run_dir: Option<&Path>) -> ExitCode {
    let program = crate::program::name();
    let log = match crate::records::resolve_run(run_dir)
        .and_then(|dir| runlog::read_samples(&dir.samples_path()))
    {
        Ok(log) => log,
        Err(err) => {
            crate::errln!("{program} export: {err}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    if let Some(cut) = &log.truncated {
        crate::errln!(
            "{program} export: warning: samples.jsonl ends in a cut line (line {}, {} bytes): the run was killed; the samples before it follow",
            cut.line,
            cut.bytes
        );
    }
    let rows: Vec<Vec<(String, String)>> = log.samples.iter().map(flat).collect();
    let Some(first) = rows.first() else {
        crate::errln!("{program} export: the run has no samples");
        return ExitCode::from(EXIT_USAGE);
    };
    let header = columns(first);
    let mut out = csv::Writer::from_writer(std::io::stdout().lock());
    let written = out
        .write_record(&header)
        .and_then(|()| {
            rows.iter().try_for_each(|row| {
                out.write_record(header.iter().map(|name| {
                    row.iter()
                        .find(|(key, _)| key == name)
                        .map_or("", |(_, value)| value.as_str())
                }))
            })
        })
        .and_then(|()| out.flush().map_err(csv::Error::from));
    // Like every print: a closed pipe ends quietly, another failure exits 3 (see
    // `crate::output`).
    crate::output::kept(written.map_err(std::io::Error::from));
    ExitCode::from(EXIT_PASS)
}

/// The column names of a flattened sample: [`FIRST`], then the rest by name.
fn columns(row: &[(String, String)]) -> Vec<String> {
    let mut rest: Vec<String> = row
        .iter()
        .map(|(key, _)| key.clone())
        .filter(|key| !FIRST.contains(&key.as_str()))
        .collect();
    rest.sort();
    FIRST
        .iter()
        .map(|&k| k.to_owned())
        .filter(|k| row.iter().any(|(key, _)| key == k))
        .chain(rest)
        .collect()
}

/// A sample as `(column, value)` pairs.
fn flat(sample: &runlog::Sample) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let value = serde_json::to_value(sample).unwrap_or(Value::Null);
    flatten("", &value, &mut out);
    out
}

fn flatten(prefix: &str, value: &Value, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(fields) => {
            for (key, value) in fields {
                let name = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                flatten(&name, value, out);
            }
        }
        Value::Null => out.push((prefix.to_owned(), String::new())),
        Value::String(s) => out.push((prefix.to_owned(), s.clone())),
        other => out.push((prefix.to_owned(), other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_flattens_to_named_columns_with_time_first() {
        let sample = runlog::Sample {
            t_s: 1.5,
            phase: "run".into(),
            ..runlog::Sample::default()
        };
        let row = flat(&sample);
        let header = columns(&row);
        assert_eq!(&header[..3], ["t_s", "interval_s", "phase"]);
        assert!(header.iter().any(|h| h == "latency_us.p99"), "{header:?}");
        assert!(header.iter().any(|h| h == "totals.accepted"), "{header:?}");
        let t = row.iter().find(|(k, _)| k == "t_s").unwrap();
        assert_eq!(t.1, "1.5");
    }
}
