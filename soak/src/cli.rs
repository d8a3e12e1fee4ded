//! Command-line arguments. Values are parsed (and refused with a message
//! naming the flag and the accepted form) by clap; `main.rs` only parses and
//! hands over to [`crate::app::main`].
//!
//! The help is built in [`command_for`]: flags under headings (Load, Payload, Consumer,
//! Dispatcher limits, Run, Output, Export, and each subcommand's own), the default
//! scenario's values as `[default: …]` (taken from [`ScenarioConfig::default`], the one
//! source), and examples that name the program as the user ran it ([`crate::program`]).

use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, FromArgMatches, Parser, ValueEnum};
use loadgen::units::{Rate, parse_bytes, parse_duration};
use runlog::{Policy, ScenarioConfig, TargetKind};

use crate::sink::SinkSpec;

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

/// Work on recorded runs.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Render report.html again from a run's record.
    Report {
        /// The run directory [default: target/soak/latest].
        #[arg(value_name = "RUN_DIR")]
        run_dir: Option<PathBuf>,
    },
    /// Print a run's samples for a spreadsheet or a notebook.
    Export {
        /// The run directory [default: target/soak/latest].
        #[arg(value_name = "RUN_DIR")]
        run_dir: Option<PathBuf>,
        /// As CSV: one row per sample, one column per field, named as in samples.jsonl
        /// (each name carries its unit: t_s, delivered_per_sec, buffered_bytes,
        /// latency_us.p99, …).
        #[arg(long, required = true, help_heading = OUTPUT)]
        csv: bool,
    },
    /// Compare a candidate with a base, each a run directory or a group of repeated runs
    /// (--repeat N): a verdict per metric from the distributions (bootstrap of the
    /// median), a headline from the primary metrics; writes compare.html.
    Compare {
        /// The run or group compared against.
        #[arg(value_name = "BASE")]
        base: PathBuf,
        /// The run or group being judged.
        #[arg(value_name = "CANDIDATE")]
        candidate: PathBuf,
        /// One noise threshold for every metric, e.g. 5%: changes whose whole confidence
        /// interval stays within it are "no change" [default: each metric's own].
        #[arg(long, visible_alias = "threshold", value_name = "PCT", value_parser = percent,
              help_heading = COMPARE)]
        noise: Option<f64>,
        /// The metrics the headline (and --fail-on-regression) is drawn from, comma
        /// separated: delivered_per_sec p99 peak_heap p50 p999 max peak_rss drain
        /// [default: delivered_per_sec,p99,peak_heap].
        #[arg(long, value_delimiter = ',', value_name = "METRICS", help_heading = COMPARE)]
        primary: Vec<String>,
        /// Compare even if the scenarios differ (the differences are listed).
        #[arg(long, help_heading = COMPARE)]
        force: bool,
        /// Exit 1 when a primary metric regressed.
        #[arg(long, help_heading = COMPARE)]
        fail_on_regression: bool,
        /// What to print: human (aligned columns), md (a CI job summary) or json.
        #[arg(long, value_name = "FORMAT", value_enum, default_value_t = CompareFormat::Human,
              help_heading = OUTPUT)]
        format: CompareFormat,
        /// Print JSON (the same as --format json).
        #[arg(long, conflicts_with = "format", help_heading = OUTPUT)]
        json: bool,
        /// Where to write the page [default: compare.html in the candidate's directory].
        #[arg(short = 'o', long, value_name = "PATH", help_heading = OUTPUT)]
        output: Option<PathBuf>,
    },
    /// Find sane interval and byte limits for this machine and scenario (the run's scenario
    /// flags and --config; its limits are where the search starts); writes tuned.toml.
    Tune {
        /// The scenario tuned for.
        #[command(flatten)]
        scenario: Box<ScenarioArgs>,
        /// Where batches go.
        #[command(flatten)]
        sink: SinkArgs,
        /// Total probing time.
        #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = duration,
              help_heading = TUNE)]
        budget: Duration,
        /// p99 enqueue-to-delivery target [default: 2x the probed interval].
        #[arg(long, value_name = "DURATION", value_parser = duration, help_heading = TUNE)]
        latency_target: Option<Duration>,
        /// Where the probing run and tuned.toml go [default: target/soak].
        #[arg(short, long, value_name = "DIR", help_heading = OUTPUT)]
        out: Option<PathBuf>,
        /// No probe lines while probing, only the result (with every probe).
        #[arg(long, short, help_heading = OUTPUT)]
        quiet: bool,
        /// Print the result as JSON (schema metronome.tune/1: every probe, the edge, the
        /// recommendation, the verification) instead of text; probe lines still go to
        /// stderr unless -q.
        #[arg(long, help_heading = OUTPUT)]
        json: bool,
    },
    /// Prove the disk tier loses nothing accepted: run the soak as a child with a
    /// write-ahead disk tier, SIGKILL it at random moments and restart it on the same
    /// directory, then let a last run drain it; every accepted event must be delivered at
    /// least once (or be still on disk, for the next run). Prints `lost N, duplicated M,
    /// left on disk K`; exits 0 only when nothing was lost.
    CrashTest {
        /// The children's scenario (--duration is the last run's; the others are killed).
        #[command(flatten)]
        scenario: Box<ScenarioArgs>,
        /// How many times a run is killed (1..=1000) before the last one finishes.
        #[arg(long, value_name = "N", default_value_t = 10,
              value_parser = clap::value_parser!(u32).range(1..=1000), help_heading = CRASH)]
        kills: u32,
        /// Where the test's directory goes: `<out>/crash-<id>/`, with the runs, their logs,
        /// the id files and (without --spill-dir) the disk tier [default: target/soak].
        #[arg(short, long, value_name = "DIR", help_heading = OUTPUT)]
        out: Option<PathBuf>,
        /// Children without write-ahead, so what they hold in memory is lost when killed:
        /// shows that the test catches a loss.
        #[arg(long, hide = true, help_heading = CRASH)]
        no_write_ahead: bool,
    },
    /// Watch a run started elsewhere, read-only, by following its samples.jsonl.
    Watch {
        /// The run directory [default: target/soak/latest].
        #[arg(value_name = "RUN_DIR")]
        run_dir: Option<PathBuf>,
        /// Frames per second at most (1..=60).
        #[arg(long, value_name = "N", default_value_t = 10,
              value_parser = clap::value_parser!(u32).range(1..=60), help_heading = OUTPUT)]
        fps: u32,
    },
    /// Print a shell completion script for the installed `soak` binary.
    Completions {
        /// The shell the script is for.
        #[arg(value_name = "SHELL", value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), e.g. `soak man > soak.1`.
    Man,
}

/// How `compare` prints its verdicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompareFormat {
    /// Aligned columns with units and an overall line.
    Human,
    /// A Markdown table, for a CI job summary.
    Md,
    /// The `metronome.compare/1` JSON document.
    Json,
}

/// A named starting point for the scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Preset {
    /// The default scenario for 10 s: a smoke test.
    Quick,
    /// The reference Go dispatcher's soak: the default scenario for 5 minutes.
    Tempo,
    /// A Raspberry Pi 4: 5 minutes of ~10 KiB payloads with intentional backpressure.
    Pi4,
}

/// What the byte limit counts, as spelled on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WeighArg {
    /// Payload bytes only, as other batchers count.
    Payload,
    /// Each event's struct and allocation: the limit is the buffer's heap.
    Occupancy,
}

impl From<WeighArg> for runlog::Weighing {
    fn from(w: WeighArg) -> runlog::Weighing {
        match w {
            WeighArg::Payload => runlog::Weighing::Payload,
            WeighArg::Occupancy => runlog::Weighing::Occupancy,
        }
    }
}

/// The producers' scheduling class, as spelled on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SchedulingArg {
    /// SCHED_BATCH: a producer waking up does not preempt a running thread.
    Batch,
    /// The class the soak itself runs in.
    Normal,
}

impl From<SchedulingArg> for runlog::ProducerScheduling {
    fn from(s: SchedulingArg) -> runlog::ProducerScheduling {
        match s {
            SchedulingArg::Batch => runlog::ProducerScheduling::Batch,
            SchedulingArg::Normal => runlog::ProducerScheduling::Normal,
        }
    }
}

/// The overload policy, as spelled on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PolicyArg {
    /// Refuse what does not fit; producers back off.
    Reject,
    /// Wait for room up to --block-timeout.
    Block,
    /// Evict the oldest undelivered events.
    DropOldest,
}

/// What the producers feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TargetArg {
    /// The dispatcher under test.
    Dispatcher,
    /// A bare bounded std channel: the reference for overhead ratios.
    Channel,
    /// A bounded crossbeam-channel drained in batches: the fastest channel peer.
    Crossbeam,
    /// A bounded tokio mpsc channel drained in batches: the async peer.
    Tokio,
}

impl From<TargetArg> for TargetKind {
    fn from(t: TargetArg) -> TargetKind {
        match t {
            TargetArg::Dispatcher => TargetKind::Dispatcher,
            TargetArg::Channel => TargetKind::Channel,
            TargetArg::Crossbeam => TargetKind::Crossbeam,
            TargetArg::Tokio => TargetKind::Tokio,
        }
    }
}

/// Scenario flags; each overrides the preset or `--config` file. Their `[default: …]`
/// is the default scenario's value, added by [`command_for`].
#[derive(Debug, Default, Args)]
pub struct ScenarioArgs {
    /// Scenario file (TOML, the keys of results.json `config`).
    #[arg(long, value_name = "PATH", conflicts_with = "preset", help_heading = RUN)]
    pub config: Option<PathBuf>,
    /// Start from a preset instead of the default scenario.
    #[arg(long, value_name = "PRESET", value_enum, help_heading = RUN)]
    pub preset: Option<Preset>,
    /// How long producers run, e.g. 60s, 5m.
    #[arg(short, long, value_name = "DURATION", value_parser = duration, help_heading = RUN)]
    pub duration: Option<Duration>,
    /// Producer threads (1..=4096).
    #[arg(short, long, value_name = "N", help_heading = LOAD)]
    pub producers: Option<u32>,
    /// Payload shape: fixed:SIZE, uniform:MIN..MAX, lognormal:MEDIAN,SIGMA, telemetry, file:PATH.
    #[arg(long, value_name = "SHAPE", help_heading = PAYLOAD)]
    pub payload: Option<String>,
    /// Total offered rate: `unlimited` (closed loop) or e.g. 200k/s (open loop).
    #[arg(long, value_name = "RATE", value_parser = rate, help_heading = LOAD)]
    pub rate: Option<Rate>,
    /// Producer pause after a refusal, e.g. 100us.
    #[arg(long, value_name = "DURATION", value_parser = duration, help_heading = LOAD)]
    pub backoff: Option<Duration>,
    /// Producer threads' scheduling class: `batch` (Linux's SCHED_BATCH: their wake-ups
    /// do not preempt the consumer) or `normal` (the class the soak runs in).
    #[arg(long, value_name = "CLASS", value_enum, help_heading = LOAD)]
    pub producer_scheduling: Option<SchedulingArg>,
    /// Simulated consumer work per batch, e.g. 200us; 0s for none.
    #[arg(long, value_name = "DURATION", value_parser = duration, help_heading = CONSUMER)]
    pub consumer_delay: Option<Duration>,
    /// Simulated consumer work per KiB delivered, e.g. 2us.
    #[arg(long, value_name = "DURATION", value_parser = duration, help_heading = CONSUMER)]
    pub consumer_cost_per_kib: Option<Duration>,
    /// Random +/- jitter on the consumer's work per batch.
    #[arg(long, value_name = "DURATION", value_parser = duration, help_heading = CONSUMER)]
    pub consumer_jitter: Option<Duration>,
    /// The consumer stalls every this long (with --stall-for).
    #[arg(long, value_name = "DURATION", value_parser = duration, help_heading = CONSUMER)]
    pub stall_every: Option<Duration>,
    /// How long each consumer stall lasts.
    #[arg(long, value_name = "DURATION", value_parser = duration, help_heading = CONSUMER)]
    pub stall_for: Option<Duration>,
    /// Batch interval, e.g. 10ms.
    #[arg(long, value_name = "DURATION", value_parser = duration, help_heading = LIMITS)]
    pub interval: Option<Duration>,
    /// Random extra interval per batch, 0..=interval.
    #[arg(long, value_name = "DURATION", value_parser = duration, help_heading = LIMITS)]
    pub interval_jitter: Option<Duration>,
    /// Batch byte target, e.g. 32KiB, or `none`.
    #[arg(long, value_parser = optional_bytes, value_name = "SIZE|none", help_heading = LIMITS)]
    pub max_batch_bytes: Option<Limit>,
    /// Batch item target, or `none`.
    #[arg(long, value_parser = optional_count, value_name = "N|none", help_heading = LIMITS)]
    pub max_batch_items: Option<Limit>,
    /// Limit on buffered bytes, e.g. 64MiB.
    #[arg(long, value_parser = bytes, value_name = "SIZE", help_heading = LIMITS)]
    pub max_buffered_bytes: Option<u64>,
    /// Overload policy.
    #[arg(long, value_name = "POLICY", value_enum, help_heading = LIMITS)]
    pub policy: Option<PolicyArg>,
    /// What --max-buffered-bytes counts per event: `occupancy` (struct and
    /// allocation: the limit is the buffer's heap) or `payload` (bytes only).
    #[arg(long, value_name = "WHAT", value_enum, help_heading = LIMITS)]
    pub weigh: Option<WeighArg>,
    /// How long a producer waits for room under the block policy (at least 1us: to
    /// refuse at once, use --policy reject).
    #[arg(long, value_name = "DURATION", value_parser = duration, help_heading = LIMITS)]
    pub block_timeout: Option<Duration>,
    /// Batch builders (1..=256, default 8) sharing the byte budget; each
    /// producer thread admits into one, round-robin.
    #[arg(long, value_name = "N", help_heading = LIMITS)]
    pub partitions: Option<u32>,
    /// Give the dispatcher a durable disk tier in DIR (created if missing; its parent
    /// must exist; empty or one of ours; apart from --out): events that do not fit in
    /// memory go to disk instead of meeting the policy, and come back in order as memory
    /// frees; what an earlier run left there is delivered first.
    #[arg(long, value_name = "DIR", help_heading = DISK)]
    pub spill_dir: Option<PathBuf>,
    /// With --spill-dir: the most the disk tier's files may take (4KiB..=1TiB); past it
    /// the policy applies.
    #[arg(long, value_parser = bytes, value_name = "SIZE", help_heading = DISK)]
    pub max_spill_bytes: Option<u64>,
    /// With --spill-dir: when what it writes is forced to the device: every-batch, an
    /// interval (1ms..=60s, e.g. 100ms) or os (left to the kernel). A process crash loses
    /// nothing written under any of them; a power failure loses what was not synced.
    #[arg(long, value_parser = spill_sync, value_name = "WHEN", help_heading = DISK)]
    pub spill_sync: Option<SpillSyncArg>,
    /// With --spill-dir: every event goes through the disk, not only those that do not
    /// fit in memory, so a crash loses nothing that was accepted.
    #[arg(long, help_heading = DISK)]
    pub spill_write_ahead: bool,
    /// How often to sample, e.g. 1s, 250ms.
    #[arg(long, value_name = "DURATION", value_parser = duration, help_heading = RUN)]
    pub sample_every: Option<Duration>,
    /// Seed for payload generation.
    #[arg(long, value_name = "N", help_heading = PAYLOAD)]
    pub seed: Option<u64>,
    /// What the producers feed.
    #[arg(long, value_name = "TARGET", value_enum, help_heading = LOAD)]
    pub target: Option<TargetArg>,
    /// Deadline for draining at the end.
    #[arg(long, value_name = "DURATION", value_parser = duration, help_heading = RUN)]
    pub drain_timeout: Option<Duration>,
    /// Pin the run to N cores, to rehearse a smaller machine (an approximation:
    /// the same number of cores, not the same cores, caches or memory).
    #[arg(long, value_name = "N", help_heading = LOAD)]
    pub cpus: Option<u32>,
    /// Do not record enqueue-to-delivery latency (to measure the recording's cost).
    #[arg(long, help_heading = RUN)]
    pub no_latency: bool,
    /// A pass/fail threshold judged at the end, METRIC OP VALUE (repeatable), e.g.
    /// 'p99<50ms', 'refused<1%', 'delivered_per_sec>500k', 'peak_heap<96MiB'. Metrics:
    /// p50 p90 p99 p999 max refused dropped delivered_per_sec accepted_per_sec peak_heap
    /// peak_rss peak_buffered drain; operators < <= > >=. A failed threshold exits 1.
    #[arg(long = "threshold", value_name = "EXPR", value_parser = threshold, help_heading = RUN)]
    pub thresholds: Vec<runlog::Threshold>,
    /// What the user typed for each flag given on the command line, by the flag's id (its
    /// field name): messages repeat it rather than a re-rendered value. Filled by
    /// [`parse`]; empty when the arguments were built in code.
    #[arg(skip)]
    pub typed: BTreeMap<String, String>,
}

impl ScenarioArgs {
    /// What the user typed for the flag whose id is `id` (`"max_buffered_bytes"`), if it
    /// was given on the command line.
    pub fn typed(&self, id: &str) -> Option<&str> {
        self.typed.get(id).map(String::as_str)
    }
}

/// The default scenario's value of every scenario flag that has one, by the flag's id,
/// spelled as the flag takes it (`60s`, `32KiB`, `none`), or in words where no value
/// says it (`off`, `all`).
pub fn scenario_defaults() -> Vec<(&'static str, String)> {
    scenario_defaults_of(&ScenarioConfig::default())
}

/// The value of every scenario flag that has one in scenario `c`, spelled as the flag
/// takes it (see [`scenario_defaults`]).
pub fn scenario_defaults_of(c: &ScenarioConfig) -> Vec<(&'static str, String)> {
    let spill = c.spill.clone().unwrap_or_default();
    let ms = |v: u64| spell_micros(v.saturating_mul(1000));
    // Whole microseconds: the default scenario's duration is whole seconds.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let duration_us = (c.duration_s * 1e6).round() as u64;
    vec![
        ("duration", spell_micros(duration_us)),
        ("producers", c.producers.to_string()),
        (
            "rate",
            c.rate_per_sec
                .map_or_else(|| "unlimited".to_owned(), |r| format!("{r}/s")),
        ),
        ("backoff", spell_micros(c.backoff_us)),
        (
            "producer_scheduling",
            c.producer_scheduling.name().to_owned(),
        ),
        ("target", c.target.name().to_owned()),
        (
            "cpus",
            c.cpus.map_or_else(|| "all".to_owned(), |n| n.to_string()),
        ),
        ("payload", c.payload.clone()),
        ("seed", c.seed.to_string()),
        ("consumer_delay", spell_micros(c.consumer_delay_us)),
        (
            "consumer_cost_per_kib",
            spell_micros(c.consumer_cost_per_kib_us),
        ),
        ("consumer_jitter", spell_micros(c.consumer_jitter_us)),
        (
            "stall_every",
            c.consumer_stall_every_ms
                .map_or_else(|| "off".to_owned(), ms),
        ),
        ("stall_for", ms(c.consumer_stall_for_ms)),
        ("interval", spell_micros(c.interval_us)),
        ("interval_jitter", spell_micros(c.interval_jitter_us)),
        (
            "max_batch_bytes",
            c.max_batch_bytes
                .map_or_else(|| "none".to_owned(), spell_bytes),
        ),
        (
            "max_batch_items",
            c.max_batch_items
                .map_or_else(|| "none".to_owned(), |n| n.to_string()),
        ),
        ("max_buffered_bytes", spell_bytes(c.max_buffered_bytes)),
        (
            "policy",
            match c.policy {
                Policy::Reject => "reject",
                Policy::Block => "block",
                Policy::DropOldest => "drop-oldest",
            }
            .to_owned(),
        ),
        (
            "weigh",
            match c.weighing {
                runlog::Weighing::Payload => "payload",
                runlog::Weighing::Occupancy => "occupancy",
            }
            .to_owned(),
        ),
        ("block_timeout", spell_micros(c.block_timeout_us)),
        ("partitions", c.partitions.to_string()),
        (
            "spill_dir",
            c.spill
                .as_ref()
                .map_or_else(|| "off".to_owned(), |s| s.dir.display().to_string()),
        ),
        ("max_spill_bytes", spell_bytes(spill.max_disk_bytes)),
        (
            "spill_sync",
            match spill.sync {
                runlog::SpillSync::EveryBatch => "every-batch".to_owned(),
                runlog::SpillSync::Interval => ms(spill.sync_interval_ms),
                runlog::SpillSync::Os => "os".to_owned(),
            },
        ),
        ("sample_every", ms(c.sample_every_ms)),
        ("drain_timeout", ms(c.drain_timeout_ms)),
    ]
}

/// `60_000_000` -> `60s`, `10_000` -> `10ms`, `200` -> `200us`, `0` -> `0s`.
fn spell_micros(us: u64) -> String {
    match us {
        0 => "0s".to_owned(),
        us if us % 1_000_000 == 0 => format!("{}s", us / 1_000_000),
        us if us % 1_000 == 0 => format!("{}ms", us / 1_000),
        us => format!("{us}us"),
    }
}

/// `32768` -> `32KiB`, `67108864` -> `64MiB`, `1000` -> `1000B`.
fn spell_bytes(b: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    UNITS
        .iter()
        .find(|(size, _)| b > 0 && b % size == 0)
        .map_or_else(
            || format!("{b}B"),
            |(size, unit)| format!("{}{unit}", b / size),
        )
}

/// One example: the command line after the program's name, and what it does.
type Example = (&'static str, &'static str);

/// The examples of the root command (`None`) and of each main subcommand.
const EXAMPLES: &[(Option<&str>, &[Example])] = &[
    (
        None,
        &[
            ("", "the default scenario (60 s)"),
            ("--preset quick -q", "a 10 s smoke test, only the summary"),
            (
                "-d 2m -p 8 --payload fixed:10KiB --policy block",
                "2 minutes, 8 producers, 10 KiB events, producers wait for room",
            ),
            (
                "-d 30s --rate 200k/s --threshold 'p99<50ms'",
                "open loop; exit 1 if p99 is 50 ms or more",
            ),
            (
                "--preset quick --repeat 5 -o target/runs/base",
                "5 runs into one group, before a change",
            ),
            (
                "--preset quick --repeat 5 -o target/runs/candidate",
                "and after it",
            ),
            (
                "compare target/runs/base/latest target/runs/candidate/latest",
                "the candidate judged against the base, metric by metric",
            ),
            ("tune --budget 30s", "find limits for this machine"),
        ],
    ),
    (
        Some("tune"),
        &[
            ("tune --budget 30s", "tune the default scenario"),
            (
                "tune -p 8 --consumer-delay 1ms --budget 30s -o target/tune",
                "a slower consumer; tuned.toml in target/tune",
            ),
            ("--config target/soak/tuned.toml", "run what it recommends"),
        ],
    ),
    (
        Some("compare"),
        &[
            (
                "compare target/runs/base/latest target/runs/candidate/latest",
                "a verdict per metric; writes compare.html beside the candidate",
            ),
            (
                "compare target/runs/base/latest target/runs/candidate/latest --noise 5% --fail-on-regression",
                "exit 1 when a primary metric regressed beyond 5%",
            ),
            (
                "compare target/runs/base/latest target/runs/candidate/latest --format md >> \"$GITHUB_STEP_SUMMARY\"",
                "a CI job summary",
            ),
        ],
    ),
    (
        Some("crash-test"),
        &[
            (
                "crash-test",
                "10 kills and a last run; exit 1 if an accepted event was lost",
            ),
            ("crash-test --kills 3 --seed 7", "3 kills at other moments"),
            (
                "crash-test --kills 20 --payload fixed:1KiB --spill-sync every-batch",
                "bigger events, a sync per append",
            ),
        ],
    ),
    (
        Some("report"),
        &[
            ("report", "the latest run's report.html again"),
            ("report target/soak/latest", "a given run's"),
        ],
    ),
    (
        Some("export"),
        &[
            (
                "export --csv > samples.csv",
                "the latest run's samples as CSV",
            ),
            ("export target/soak/latest --csv", "a given run's"),
        ],
    ),
    (
        Some("watch"),
        &[
            ("watch", "follow the latest run from another shell"),
            (
                "watch target/soak/latest --fps 4",
                "a given run, 4 frames a second",
            ),
        ],
    ),
    (
        Some("completions"),
        &[
            (
                "completions bash > ~/.local/share/bash-completion/completions/soak",
                "bash",
            ),
            (
                "completions zsh > ~/.zfunc/_soak",
                "zsh (with ~/.zfunc in $fpath)",
            ),
            (
                "completions fish > ~/.config/fish/completions/soak.fish",
                "fish",
            ),
        ],
    ),
    (
        Some("man"),
        &[("man > soak.1 && man ./soak.1", "read the man page")],
    ),
];

/// The `Examples:` section of `subcommand` (`None`: the root), each line starting with
/// `program`, styled like clap's own headings.
fn examples(program: &str, subcommand: Option<&str>, styles: &clap::builder::Styles) -> String {
    let lines = EXAMPLES
        .iter()
        .find(|(sub, _)| *sub == subcommand)
        .map_or(&[][..], |(_, lines)| lines);
    let commands: Vec<String> = lines
        .iter()
        .map(|(args, _)| {
            if args.is_empty() {
                program.to_owned()
            } else {
                format!("{program} {args}")
            }
        })
        .collect();
    let header = styles.get_header();
    let mut text = format!("{header}Examples:{header:#}\n");
    for (command, (_, what)) in commands.iter().zip(lines) {
        text.push_str(&format!("  {command}\n      {what}\n"));
    }
    text
}

/// The root command's note above its examples.
const DEFAULTS_NOTE: &str = "The scenario defaults shown are the default scenario's; --preset or --config \
     start from other values, and each flag given overrides them.";

/// The full command definition, naming the program `program` (in usage lines and
/// examples): the derive's arguments plus the default scenario's values and the examples.
pub fn command_for(program: &str) -> clap::Command {
    use clap::CommandFactory;
    let defaults = scenario_defaults();
    let with_defaults = |cmd: clap::Command| defaults_shown(cmd, &defaults);
    let crash = scenario_defaults_of(&crate::crash::base_scenario());
    let crash_test = |cmd: clap::Command| {
        defaults_shown(cmd, &crash)
            // Always on in the crash test.
            .mut_arg("spill_write_ahead", |arg| arg.hide(true))
            .mut_arg("seed", |arg| {
                let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
                arg.help(help.replacen(
                    "Seed for payload generation",
                    "Seed for payload generation and for the moments of the kills",
                    1,
                ))
            })
    };
    let root = with_defaults(Cli::command());
    let styles = root.get_styles().clone();
    let note = format!("{DEFAULTS_NOTE}\n\n{}", examples(program, None, &styles));
    let mut root = root
        .bin_name(program)
        .after_help(note.clone())
        .after_long_help(note)
        .mut_subcommand("tune", with_defaults)
        .mut_subcommand("crash-test", crash_test);
    for (sub, _) in EXAMPLES.iter().filter(|(sub, _)| sub.is_some()) {
        let sub = sub.unwrap_or_default();
        let text = examples(program, Some(sub), &styles);
        root = root.mut_subcommand(sub, |cmd| {
            cmd.after_help(text.clone()).after_long_help(text)
        });
    }
    root
}

/// `cmd` with `[default: …]` after the help of every argument `defaults` has a value for.
/// `mut_args`, not `mut_arg`: the arguments keep their order, and with it the order of the
/// headings (each heading sits where its first argument is).
fn defaults_shown(cmd: clap::Command, defaults: &[(&str, String)]) -> clap::Command {
    cmd.mut_args(
        |arg| match defaults.iter().find(|(id, _)| arg.get_id() == *id) {
            Some((_, value)) => {
                let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
                arg.help(format!("{help} [default: {value}]"))
            }
            None => arg,
        },
    )
}

/// [`command_for`] the program as the user ran it ([`crate::program::name`]).
pub fn command() -> clap::Command {
    command_for(crate::program::name())
}

/// Writes the completion script for `shell`, for the installed binary `soak`.
///
/// # Errors
///
/// The writer's.
pub fn completions(
    shell: clap_complete::Shell,
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    let mut cmd = command_for(crate::program::DIRECT);
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut cmd, crate::program::DIRECT, &mut buf);
    out.write_all(&buf)
}

/// Writes the man page (roff) of `soak` and its subcommands.
///
/// # Errors
///
/// The writer's.
pub fn man(out: &mut dyn std::io::Write) -> std::io::Result<()> {
    clap_mangen::Man::new(command_for(crate::program::DIRECT)).render(out)
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

/// `--spill-sync`, as typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpillSyncArg {
    /// `every-batch`.
    EveryBatch,
    /// An interval, e.g. `100ms`.
    Every(Duration),
    /// `os`.
    Os,
}

fn spill_sync(s: &str) -> Result<SpillSyncArg, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "every-batch" => Ok(SpillSyncArg::EveryBatch),
        "os" => Ok(SpillSyncArg::Os),
        _ => parse_duration(s)
            .map(SpillSyncArg::Every)
            .map_err(|_| format!("`{s}` is not every-batch, os or an interval such as 100ms")),
    }
}

/// A limit that can be switched off with `none`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit(pub Option<u64>);

fn percent(s: &str) -> Result<f64, String> {
    let number = s.trim().trim_end_matches('%');
    match number.parse::<f64>() {
        Ok(p) if (0.0..=1000.0).contains(&p) => Ok(p),
        _ => Err(format!("`{s}` is not a percentage in 0%..=1000% (e.g. 5%)")),
    }
}

fn threshold(s: &str) -> Result<runlog::Threshold, String> {
    s.parse().map_err(|e: runlog::ThresholdError| e.to_string())
}

fn socket_addr(s: &str) -> Result<SocketAddr, String> {
    let bad = || format!("`{s}` is not HOST:PORT (e.g. 127.0.0.1:9464)");
    s.to_socket_addrs()
        .map_err(|_| bad())?
        .next()
        .ok_or_else(bad)
}

fn nats_url(s: &str) -> Result<String, String> {
    match s.strip_prefix("nats://") {
        Some(rest) if !rest.is_empty() => Ok(s.to_owned()),
        _ => Err(format!(
            "`{s}` is not a NATS server URL (e.g. nats://127.0.0.1:4222)"
        )),
    }
}

/// One concrete NATS subject: dot-separated tokens, no spaces, no wildcards.
fn nats_subject(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.split('.').all(|t| !t.is_empty())
        && !s.chars().any(|c| c.is_whitespace() || c == '*' || c == '>');
    if ok {
        Ok(s.to_owned())
    } else {
        Err(format!(
            "`{s}` is not a NATS subject: dot-separated tokens, no spaces, no `*` or `>` (e.g. metronome.events)"
        ))
    }
}

/// A JetStream stream name: no spaces, dots, `*`, `>`, slashes.
fn stream_name(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && !s
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '.' | '*' | '>' | '/' | '\\'));
    if ok {
        Ok(s.to_owned())
    } else {
        Err(format!(
            "`{s}` is not a JetStream stream name: no spaces, `.`, `*`, `>` or slashes (e.g. METRONOME)"
        ))
    }
}

fn duration(s: &str) -> Result<Duration, String> {
    parse_duration(s).map_err(|e| e.to_string())
}

fn rate(s: &str) -> Result<Rate, String> {
    s.parse::<Rate>().map_err(|e| e.to_string())
}

fn bytes(s: &str) -> Result<u64, String> {
    parse_bytes(s).map_err(|e| e.to_string())
}

fn is_none(s: &str) -> bool {
    matches!(
        s.trim().to_ascii_lowercase().as_str(),
        "none" | "unlimited" | "off"
    )
}

fn optional_bytes(s: &str) -> Result<Limit, String> {
    if is_none(s) {
        Ok(Limit(None))
    } else {
        bytes(s).map(|b| Limit(Some(b)))
    }
}

fn optional_count(s: &str) -> Result<Limit, String> {
    if is_none(s) {
        return Ok(Limit(None));
    }
    s.trim()
        .parse::<u64>()
        .map(|n| Limit(Some(n)))
        .map_err(|_| format!("`{s}` is not a whole number of events (or `none`)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cli_definition_is_consistent() {
        command_for("soak").debug_assert();
    }

    #[test]
    fn bare_invocation_uses_every_default() {
        let cli = Cli::try_parse_from(["soak"]).expect("parses");
        assert!(cli.scenario.duration.is_none() && cli.scenario.preset.is_none());
        assert_eq!(cli.out_dir(), PathBuf::from("target/soak"));
    }

    #[test]
    fn units_parse_on_the_command_line() {
        let cli = Cli::try_parse_from([
            "soak",
            "--duration",
            "2m",
            "--max-buffered-bytes",
            "64MiB",
            "--max-batch-bytes",
            "none",
            "--rate",
            "200k/s",
            "--consumer-delay",
            "200us",
            "--policy",
            "drop-oldest",
        ])
        .expect("parses");
        let s = cli.scenario;
        assert_eq!(s.duration, Some(Duration::from_secs(120)));
        assert_eq!(s.max_buffered_bytes, Some(64 << 20));
        assert_eq!(s.max_batch_bytes, Some(Limit(None)));
        assert_eq!(s.rate, Some(Rate::PerSecond(200_000)));
        assert_eq!(s.consumer_delay, Some(Duration::from_micros(200)));
        assert_eq!(s.policy, Some(PolicyArg::DropOldest));
    }

    #[test]
    fn a_bad_value_names_the_flag() {
        let err = Cli::try_parse_from(["soak", "--max-buffered-bytes", "lots"]).unwrap_err();
        assert!(err.to_string().contains("--max-buffered-bytes"), "{err}");
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn subcommands_parse_and_exclude_run_flags() {
        let cli = Cli::try_parse_from([
            "soak",
            "compare",
            "a",
            "b",
            "--threshold",
            "2.5%",
            "--fail-on-regression",
            "--primary",
            "p99,delivered_per_sec",
            "--format",
            "md",
        ])
        .expect("parses");
        match cli.command {
            Some(Command::Compare {
                noise,
                fail_on_regression,
                force,
                primary,
                format,
                ..
            }) => {
                assert_eq!((noise, fail_on_regression, force), (Some(2.5), true, false));
                assert_eq!(primary, ["p99", "delivered_per_sec"]);
                assert_eq!(format, CompareFormat::Md);
            }
            other => panic!("expected compare, got {other:?}"),
        }
        assert!(Cli::try_parse_from(["soak", "--duration", "5s", "report"]).is_err());
        let cli = Cli::try_parse_from(["soak", "watch"]).expect("parses");
        assert!(matches!(
            cli.command,
            Some(Command::Watch {
                run_dir: None,
                fps: 10
            })
        ));
        assert!(Cli::try_parse_from(["soak", "compare", "a", "b", "--threshold", "lots"]).is_err());
    }

    #[test]
    fn the_metrics_address_is_off_unless_given() {
        let cli = Cli::try_parse_from(["soak"]).expect("parses");
        assert_eq!(cli.metrics_addr, None);
        let cli = Cli::try_parse_from(["soak", "--metrics-addr", "0.0.0.0:9464"]).expect("parses");
        assert_eq!(cli.metrics_addr, Some("0.0.0.0:9464".parse().unwrap()));
        let err = Cli::try_parse_from(["soak", "--metrics-addr", "9464"]).unwrap_err();
        assert!(err.to_string().contains("--metrics-addr"), "{err}");
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn a_sink_replaces_the_simulated_consumer() {
        let cli = Cli::try_parse_from(["soak", "--sink", "nats://127.0.0.1:4222"]).expect("parses");
        assert_eq!(
            cli.sink_spec().describe(),
            "nats://127.0.0.1:4222 metronome.events"
        );
        let err = Cli::try_parse_from(["soak", "--sink", "http://x"]).unwrap_err();
        assert!(err.to_string().contains("--sink"), "{err}");
        let err = Cli::try_parse_from(["soak", "--subject", "a.b"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::MissingRequiredArgument);
        let err = Cli::try_parse_from(["soak", "--sink", "nats://h:1", "--consumer-delay", "1ms"])
            .unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ArgumentConflict);
        assert_eq!(
            Cli::try_parse_from(["soak"]).expect("parses").sink_spec(),
            SinkSpec::InProcess
        );
    }

    #[test]
    fn repeat_takes_a_count_in_range_and_no_dashboard() {
        let cli = Cli::try_parse_from(["soak", "--repeat", "5"]).expect("parses");
        assert_eq!(cli.repeat, Some(5));
        let err = Cli::try_parse_from(["soak", "--repeat", "0"]).unwrap_err();
        assert!(err.to_string().contains("--repeat"), "{err}");
        assert!(err.to_string().contains("1..=1000"), "{err}");
        let err = Cli::try_parse_from(["soak", "--repeat", "2", "--tui"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ArgumentConflict);
        let err = Cli::try_parse_from(["soak", "--repeat", "2", "--metrics-addr", "127.0.0.1:0"])
            .unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ArgumentConflict);
    }

    #[test]
    fn verbosity_counts_and_a_level_is_named() {
        let level = |args: &[&str]| Cli::try_parse_from(args).map(|cli| cli.log_level());
        assert_eq!(level(&["soak"]).unwrap(), LogLevel::Warn);
        assert_eq!(level(&["soak", "-v"]).unwrap(), LogLevel::Debug);
        assert_eq!(level(&["soak", "-vv"]).unwrap(), LogLevel::Trace);
        assert_eq!(
            level(&["soak", "--log-level", "info"]).unwrap(),
            LogLevel::Info
        );
        assert_eq!(
            level(&["soak", "compare", "a", "b", "-v"]).unwrap(),
            LogLevel::Debug
        );
        let err = level(&["soak", "--log-level", "loud"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        let text = err.to_string();
        assert!(
            text.contains("loud") && text.contains("--log-level"),
            "{text}"
        );
        assert!(text.contains("error, warn, info, debug, trace"), "{text}");
    }

    #[test]
    fn preset_and_config_exclude_each_other() {
        let err =
            Cli::try_parse_from(["soak", "--preset", "quick", "--config", "x.toml"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ArgumentConflict);
    }
}
