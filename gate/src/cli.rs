//! Command-line arguments (few enough to parse by hand).

use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};

use crate::workloads::{EVENT_QUANTUM, Workload};

/// Printed for `--help` and after a usage error.
pub(crate) const USAGE: &str = "\
usage: gate [--baseline FILE] [--update] [--events N] [--jobs N] [--out-dir DIR] [--valgrind PATH]
       gate workload NAME EVENTS

Counts instructions (callgrind) and allocations per event of fixed workloads
and compares them with a baseline; exit 0 pass, 1 regression, 2 error.

  --baseline FILE   baseline to compare with, or to rewrite with --update
                    [default: scripts/bench-baseline.json]
  --update          rewrite the baseline from this measurement (keeps thresholds)
  --events N        measured events per run, a multiple of 64 [default: 200000]
  --jobs N          callgrind runs at a time [default: 2]
  --out-dir DIR     callgrind out files and current.json [default: target/bench-gate]
  --valgrind PATH   valgrind executable [default: valgrind on PATH]";

/// What to do.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Command {
    Help,
    /// Run the gate.
    Gate(GateOptions),
    /// Run one workload (under callgrind, started by the gate).
    Workload {
        workload: Workload,
        events: u64,
    },
}

/// Options of a gate run.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct GateOptions {
    pub(crate) baseline: PathBuf,
    pub(crate) update: bool,
    pub(crate) events: u64,
    pub(crate) jobs: usize,
    pub(crate) out_dir: PathBuf,
    pub(crate) valgrind: Option<PathBuf>,
}

impl Default for GateOptions {
    fn default() -> Self {
        GateOptions {
            baseline: PathBuf::from("scripts/bench-baseline.json"),
            update: false,
            events: 200_000,
            jobs: 2,
            out_dir: PathBuf::from("target/bench-gate"),
            valgrind: None,
        }
    }
}

/// Parses the arguments after the program name.
///
/// # Errors
/// An unknown option, a missing or malformed value, an unknown workload.
pub(crate) fn parse(args: impl IntoIterator<Item = String>) -> Result<Command> {
    let mut args = args.into_iter();
    let mut options = GateOptions::default();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().with_context(|| format!("{name} needs a value"));
        match arg.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "workload" => return parse_workload(args),
            "--baseline" => options.baseline = value("--baseline")?.into(),
            "--update" => options.update = true,
            "--events" => options.events = events(&value("--events")?)?,
            "--jobs" => {
                let text = value("--jobs")?;
                options.jobs = text
                    .parse()
                    .ok()
                    .filter(|&j| j > 0)
                    .with_context(|| format!("--jobs {text}: not a positive number"))?;
            }
            "--out-dir" => options.out_dir = value("--out-dir")?.into(),
            "--valgrind" => options.valgrind = Some(value("--valgrind")?.into()),
            other => bail!("unknown argument `{other}`\n{USAGE}"),
        }
    }
    Ok(Command::Gate(options))
}

fn parse_workload(mut args: impl Iterator<Item = String>) -> Result<Command> {
    let names = || {
        Workload::ALL
            .iter()
            .map(|w| w.name())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let name = args
        .next()
        .with_context(|| format!("workload needs a NAME: one of {}", names()))?;
    let workload = Workload::from_name(&name)
        .with_context(|| format!("no workload `{name}`: one of {}", names()))?;
    let events = events(&args.next().context("workload needs EVENTS")?)?;
    if let Some(extra) = args.next() {
        bail!("unexpected argument `{extra}` after the workload");
    }
    Ok(Command::Workload { workload, events })
}

fn events(text: &str) -> Result<u64> {
    text.replace('_', "")
        .parse::<u64>()
        .ok()
        .filter(|&n| n > 0 && n % EVENT_QUANTUM == 0)
        .with_context(|| format!("events `{text}`: not a positive multiple of {EVENT_QUANTUM}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(line: &str) -> Result<Command> {
        parse(line.split_whitespace().map(str::to_owned))
    }

    #[test]
    fn defaults_and_options() {
        assert_eq!(
            parse_str("").unwrap(),
            Command::Gate(GateOptions::default())
        );
        let Command::Gate(o) =
            parse_str("--baseline b.json --update --events 6_400 --jobs 1").unwrap()
        else {
            panic!("not a gate command");
        };
        assert_eq!(
            (o.baseline, o.update, o.events, o.jobs),
            ("b.json".into(), true, 6400, 1)
        );
    }

    #[test]
    fn workload_command() {
        assert_eq!(
            parse_str("workload loadgen.telemetry 128").unwrap(),
            Command::Workload {
                workload: Workload::LoadgenTelemetry,
                events: 128
            }
        );
    }

    #[test]
    fn bad_input_is_an_error_with_a_reason() {
        for (line, expect) in [
            ("--bogus", "unknown argument"),
            ("--baseline", "needs a value"),
            ("--events 100", "multiple of 64"),
            ("--events -64", "multiple of 64"),
            ("--jobs 0", "positive"),
            ("workload", "needs a NAME"),
            ("workload nope 64", "no workload `nope`"),
            ("workload loadgen.telemetry", "needs EVENTS"),
        ] {
            let err = parse_str(line).unwrap_err().to_string();
            assert!(err.contains(expect), "{line}: {err}");
        }
    }
}
