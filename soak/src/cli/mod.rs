//! Command-line arguments. Values are parsed (and refused with a message
//! naming the flag and the accepted form) by clap; `main.rs` only parses and
//! hands over to [`crate::app::main`].
//!
//! The help is built in [`command_for`]: flags under headings (Load, Payload, Consumer,
//! Dispatcher limits, Run, Output, Export, and each subcommand's own), the default
//! scenario's values as `[default: …]` (taken from [`ScenarioConfig::default`], the one
//! source), and examples that name the program as the user ran it ([`crate::program`]).
//!
//! [`Cli`] and its subcommands ([`Command`]) are here; the scenario flags they share in
//! `scenario`, the help's defaults and examples in `help`, the value parsers in
//! `values`.

use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, FromArgMatches, Parser, ValueEnum};
use loadgen::units::{Rate, parse_bytes, parse_duration};
use runlog::{Policy, ScenarioConfig, TargetKind};

use crate::sink::SinkSpec;

mod command;
mod help;
mod scenario;
mod values;

pub use command::{Command, CompareFormat};
pub use help::{command, command_for, completions, man, scenario_defaults, scenario_defaults_of};
pub use scenario::{
    Limit, PolicyArg, Preset, ScenarioArgs, SchedulingArg, SpillSyncArg, TargetArg, WeighArg,
};
use values::*;
/// Where run directories go unless `--out` says otherwise.
pub const DEFAULT_OUT: &str = "target/soak";

/// What `--version` prints after the name: the crate version and the git revision the
/// build script found (`unknown` outside a git checkout; `-dirty` with local changes).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (git ",
    env!("METRONOME_GIT_REV"),
    ")"
);

/// The help headings, one per group of flags.
pub mod heading {
    /// What the scenario is and how it is judged: preset, file, duration, thresholds.
    pub const RUN: &str = "Run";
    /// Who offers the load and how hard.
    pub const LOAD: &str = "Load";
    /// What the events carry.
    pub const PAYLOAD: &str = "Payload";
    /// Where batches go: the simulated consumer, or a NATS sink instead.
    pub const CONSUMER: &str = "Consumer";
    /// The dispatcher's batching and memory limits and its overload policy.
    pub const LIMITS: &str = "Dispatcher limits";
    /// What is written and printed.
    pub const OUTPUT: &str = "Output";
    /// What the run exposes to other programs while it lasts.
    pub const EXPORT: &str = "Export";
    /// `tune`'s own search settings.
    pub const TUNE: &str = "Tuning";
    /// `compare`'s judgement settings.
    pub const COMPARE: &str = "Comparison";
    /// The dispatcher's durable disk tier.
    pub const DISK: &str = "Disk tier";
    /// `crash-test`'s own settings.
    pub const CRASH: &str = "Crash test";
}

use heading::{COMPARE, CONSUMER, CRASH, DISK, EXPORT, LIMITS, LOAD, OUTPUT, PAYLOAD, RUN, TUNE};

/// Soak the Metronome dispatcher under backpressure and record the run.
///
/// With no arguments, runs the default scenario: 60 s of telemetry payloads
/// from 32 producers into a consumer that spends 200us per batch, 10ms
/// interval, 32KiB batches, 64MiB buffered, reject policy.
#[derive(Debug, Parser)]
#[command(name = "soak", version = VERSION, about, long_about = None, args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// Something other than a run.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// The scenario to run.
    #[command(flatten)]
    pub scenario: ScenarioArgs,

    /// Where run directories go; `<out>/<run-id>/`, with `<out>/latest` pointing at the
    /// newest [default: target/soak].
    #[arg(short, long, value_name = "DIR", help_heading = OUTPUT)]
    pub out: Option<PathBuf>,

    /// Print results.json to stdout (progress and summary go to stderr); with --repeat,
    /// group.json.
    #[arg(long, help_heading = OUTPUT)]
    pub json: bool,

    /// Run the scenario N times (1..=1000) into one group directory `<out>/<group-id>/`:
    /// a complete run directory per run and group.json listing them, with `<out>/latest`
    /// pointing at the group. `compare` takes a group on either side [default: off, one
    /// run directory].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000),
          conflicts_with_all = ["tui", "metrics_addr"], help_heading = RUN)]
    pub repeat: Option<u32>,

    /// Exit 1 when the verdict is WARN too, not only on FAIL: for runs that must be clean.
    #[arg(long, help_heading = OUTPUT)]
    pub fail_on_warn: bool,

    /// No progress lines, only the summary.
    #[arg(long, short, help_heading = OUTPUT)]
    pub quiet: bool,

    /// Show the live dashboard (default when stdout is a terminal).
    #[arg(long, conflicts_with = "no_tui", help_heading = OUTPUT)]
    pub tui: bool,

    /// Print progress lines instead of the dashboard.
    #[arg(long, help_heading = OUTPUT)]
    pub no_tui: bool,

    /// Dashboard frames per second at most (1..=60).
    #[arg(long, value_name = "N", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..=60), help_heading = OUTPUT)]
    pub fps: u32,

    /// Also write the end-of-run summary as Markdown to PATH, e.g. for a CI job's page
    /// [default: off].
    #[arg(long, value_name = "PATH", conflicts_with = "repeat", help_heading = EXPORT)]
    pub summary_md: Option<PathBuf>,

    /// Serve Prometheus metrics at http://HOST:PORT/metrics while the run lasts
    /// [default: off]. 127.0.0.1:9464 stays on this machine; 0.0.0.0:9464
    /// exposes the endpoint to the network.
    #[arg(long, value_name = "HOST:PORT", value_parser = socket_addr, help_heading = EXPORT)]
    pub metrics_addr: Option<SocketAddr>,

    /// Where batches go.
    #[command(flatten)]
    pub sink: SinkArgs,

    /// More diagnostics on stderr: -v shows debug, -vv trace (without it, warnings only).
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count, global = true,
          conflicts_with = "log_level", help_heading = OUTPUT)]
    pub verbose: u8,

    /// Diagnostics on stderr from LEVEL up: error, warn, info, debug or trace
    /// [default: warn].
    #[arg(long, value_name = "LEVEL", value_enum, global = true, hide_possible_values = true,
          help_heading = OUTPUT)]
    pub log_level: Option<LogLevel>,
}

/// How much diagnostics `-v` / `--log-level` show on stderr (see [`crate::logging`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    /// Only errors.
    Error,
    /// Errors and warnings (the default).
    Warn,
    /// And what the run does, in brief.
    Info,
    /// And each step: the scenario resolved, the run directory, phases, signals (`-v`).
    Debug,
    /// Everything (`-vv`).
    Trace,
}

/// `--sink` and its settings (a run's, and tune's).
#[derive(Debug, Default, Args)]
#[command(next_help_heading = CONSUMER)]
pub struct SinkArgs {
    /// Deliver batches to a NATS JetStream server instead of the simulated
    /// consumer, e.g. nats://127.0.0.1:4222 (the consumer's delay, cost,
    /// jitter and stalls are then off) [default: off, the simulated consumer].
    #[arg(
        long,
        value_name = "URL",
        value_parser = nats_url,
        conflicts_with_all = ["consumer_delay", "consumer_cost_per_kib", "consumer_jitter", "stall_every", "stall_for"],
    )]
    pub sink: Option<String>,

    /// With --sink: the subject every event is published to.
    #[arg(long, value_name = "SUBJECT", requires = "sink", default_value = "metronome.events", value_parser = nats_subject)]
    pub subject: String,

    /// With --sink: the JetStream stream that stores the subject (created if missing).
    #[arg(long, value_name = "NAME", requires = "sink", default_value = crate::sink::DEFAULT_STREAM, value_parser = stream_name)]
    pub stream: String,
}

impl Cli {
    /// The diagnostics level asked for: `--log-level`, else `-v` (debug) / `-vv` (trace),
    /// else warnings only.
    pub fn log_level(&self) -> LogLevel {
        self.log_level.unwrap_or(match self.verbose {
            0 => LogLevel::Warn,
            1 => LogLevel::Debug,
            _ => LogLevel::Trace,
        })
    }

    /// Where run directories go.
    pub fn out_dir(&self) -> PathBuf {
        out_dir(self.out.as_deref())
    }

    /// How messages name the output directory: the flag when the user gave it, the
    /// default (and how to change it) otherwise.
    pub fn out_label(&self) -> String {
        out_label(self.out.as_deref())
    }

    /// Where the run's batches go.
    pub fn sink_spec(&self) -> SinkSpec {
        self.sink.spec()
    }
}

impl SinkArgs {
    /// Where batches go.
    pub fn spec(&self) -> SinkSpec {
        match &self.sink {
            None => SinkSpec::InProcess,
            Some(url) => SinkSpec::Nats {
                url: url.clone(),
                subject: self.subject.clone(),
                stream: self.stream.clone(),
            },
        }
    }
}

/// Where run directories go: `out`, or the default.
pub fn out_dir(out: Option<&std::path::Path>) -> PathBuf {
    out.map_or_else(|| PathBuf::from(DEFAULT_OUT), PathBuf::from)
}

/// How messages name the output directory `out` (`None`: the default).
pub fn out_label(out: Option<&std::path::Path>) -> String {
    match out {
        Some(dir) => format!("--out {}", dir.display()),
        None => {
            format!("the default output directory {DEFAULT_OUT} (choose another with --out DIR)")
        }
    }
}
/// Parses the process's arguments (exiting with clap's message and code 2 on an error),
/// keeping what the user typed for the scenario flags.
pub fn parse() -> Cli {
    let matches = command().get_matches();
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    cli.scenario.typed = typed_values(&matches);
    match (cli.command.as_mut(), matches.subcommand()) {
        (Some(Command::Tune { scenario, .. }), Some(("tune", sub)))
        | (Some(Command::CrashTest { scenario, .. }), Some(("crash-test", sub))) => {
            scenario.typed = typed_values(sub);
        }
        _ => {}
    }
    cli
}

/// The last value typed for every argument given on the command line, by id.
fn typed_values(matches: &clap::ArgMatches) -> BTreeMap<String, String> {
    matches
        .ids()
        .filter(|id| {
            matches.value_source(id.as_str()) == Some(clap::parser::ValueSource::CommandLine)
        })
        .filter_map(|id| {
            let raw = matches.try_get_raw(id.as_str()).ok()??.next_back()?;
            Some((id.to_string(), raw.to_string_lossy().into_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests;
