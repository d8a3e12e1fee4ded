//! Command-line arguments. Values are parsed (and refused with a message
//! naming the flag and the accepted form) by clap; `main.rs` only parses and
//! hands over to [`crate::app::main`].

use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, CommandFactory, FromArgMatches, Parser, ValueEnum};
use loadgen::units::{Rate, parse_bytes, parse_duration};

use crate::sink::SinkSpec;

/// Where run directories go unless `--out` says otherwise.
pub const DEFAULT_OUT: &str = "target/soak";

/// Soak the Metronome dispatcher under backpressure and record the run.
///
/// With no arguments, runs the default scenario: 60 s of telemetry payloads
/// from 32 producers into a consumer that spends 200us per batch, 10ms
/// interval, 32KiB batches, 64MiB buffered, reject policy.
#[derive(Debug, Parser)]
#[command(name = "soak", version, about, long_about = None, args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// Something other than a run.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// The scenario to run.
    #[command(flatten)]
    pub scenario: ScenarioArgs,

    /// Where run directories go; `<out>/<run-id>/`, with `<out>/latest` pointing at the
    /// newest [default: target/soak].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// Print results.json to stdout (progress and summary go to stderr); with --repeat,
    /// group.json.
    #[arg(long)]
    pub json: bool,

    /// Run the scenario N times (1..=1000) into one group directory `<out>/<group-id>/`:
    /// a complete run directory per run and group.json listing them, with `<out>/latest`
    /// pointing at the group. `soak compare` takes a group on either side.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000),
          conflicts_with_all = ["tui", "metrics_addr"])]
    pub repeat: Option<u32>,

    /// No progress lines, only the summary.
    #[arg(long, short)]
    pub quiet: bool,

    /// Show the live dashboard (default when stdout is a terminal).
    #[arg(long, conflicts_with = "no_tui")]
    pub tui: bool,

    /// Print progress lines instead of the dashboard.
    #[arg(long)]
    pub no_tui: bool,

    /// Dashboard frames per second at most.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=60))]
    pub fps: u32,

    /// Serve Prometheus metrics at http://HOST:PORT/metrics while the run lasts
    /// [default: off]. 127.0.0.1:9464 stays on this machine; 0.0.0.0:9464
    /// exposes the endpoint to the network.
    #[arg(long, value_name = "HOST:PORT", value_parser = socket_addr)]
    pub metrics_addr: Option<SocketAddr>,

    /// Where batches go.
    #[command(flatten)]
    pub sink: SinkArgs,
}

/// `--sink` and its settings (a run's, and tune's).
#[derive(Debug, Default, Args)]
pub struct SinkArgs {
    /// Deliver batches to a NATS JetStream server instead of the simulated
    /// consumer, e.g. nats://127.0.0.1:4222 (the consumer's delay, cost,
    /// jitter and stalls are then off).
    #[arg(
        long,
        value_name = "nats://HOST:PORT",
        value_parser = nats_url,
        conflicts_with_all = ["consumer_delay", "consumer_cost_per_kib", "consumer_jitter", "stall_every", "stall_for"],
    )]
    pub sink: Option<String>,

    /// With --sink: the subject every event is published to.
    #[arg(long, requires = "sink", default_value = "metronome.events", value_parser = nats_subject)]
    pub subject: String,

    /// With --sink: the JetStream stream that stores the subject (created if missing).
    #[arg(long, requires = "sink", default_value = crate::sink::DEFAULT_STREAM, value_parser = stream_name)]
    pub stream: String,
}

impl Cli {
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
        /// The run directory (default: target/soak/latest).
        run_dir: Option<PathBuf>,
    },
    /// Compare a candidate with a base, each a run directory or a group of repeated runs
    /// (cargo soak --repeat N): a verdict per metric from the distributions (bootstrap of
    /// the median), a headline from the primary metrics; writes compare.html.
    Compare {
        /// The run or group compared against.
        base: PathBuf,
        /// The run or group being judged.
        candidate: PathBuf,
        /// One noise threshold for every metric, e.g. 5%: changes whose whole confidence
        /// interval stays within it are "no change" [default: each metric's own].
        #[arg(long, visible_alias = "threshold", value_name = "PCT", value_parser = percent)]
        noise: Option<f64>,
        /// The metrics the headline (and --fail-on-regression) is drawn from, comma
        /// separated: delivered_per_sec p99 peak_heap p50 p999 max peak_rss drain
        /// [default: delivered_per_sec,p99,peak_heap].
        #[arg(long, value_delimiter = ',', value_name = "METRICS")]
        primary: Vec<String>,
        /// Compare even if the scenarios differ (the differences are listed).
        #[arg(long)]
        force: bool,
        /// Exit 1 when a primary metric regressed.
        #[arg(long)]
        fail_on_regression: bool,
        /// What to print: human (aligned columns), md (a CI job summary) or json.
        #[arg(long, value_enum, default_value_t = CompareFormat::Human)]
        format: CompareFormat,
        /// Print JSON (the same as --format json).
        #[arg(long, conflicts_with = "format")]
        json: bool,
        /// Where to write the page (default: compare.html in the candidate's directory).
        #[arg(long, value_name = "FILE")]
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
        #[arg(long, default_value = "60s", value_parser = duration)]
        budget: Duration,
        /// p99 enqueue-to-delivery target [default: 2x the probed interval].
        #[arg(long, value_parser = duration)]
        latency_target: Option<Duration>,
        /// Where the probing run and tuned.toml go [default: target/soak].
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// No probe lines while probing, only the result (with every probe).
        #[arg(long, short)]
        quiet: bool,
    },
    /// Watch a run started elsewhere, read-only, by following its samples.jsonl.
    Watch {
        /// The run directory (default: target/soak/latest).
        run_dir: Option<PathBuf>,
        /// Frames per second at most.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=60))]
        fps: u32,
    },
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
    /// A bare bounded channel: the reference for overhead ratios.
    Channel,
}

/// Scenario flags; each overrides the preset or `--config` file.
#[derive(Debug, Default, Args)]
pub struct ScenarioArgs {
    /// Scenario file (TOML, the keys of results.json `config`).
    #[arg(long, value_name = "FILE.toml", conflicts_with = "preset")]
    pub config: Option<PathBuf>,
    /// Start from a preset instead of the default scenario.
    #[arg(long, value_enum)]
    pub preset: Option<Preset>,
    /// How long producers run, e.g. 60s, 5m.
    #[arg(long, value_parser = duration)]
    pub duration: Option<Duration>,
    /// Producer threads (1..=4096).
    #[arg(long)]
    pub producers: Option<u32>,
    /// Payload shape: fixed:SIZE, uniform:MIN..MAX, lognormal:MEDIAN,SIGMA, telemetry, file:PATH.
    #[arg(long, value_name = "SHAPE")]
    pub payload: Option<String>,
    /// Total offered rate: `unlimited` (closed loop) or e.g. 200k/s (open loop).
    #[arg(long, value_parser = rate)]
    pub rate: Option<Rate>,
    /// Producer pause after a refusal, e.g. 100us.
    #[arg(long, value_parser = duration)]
    pub backoff: Option<Duration>,
    /// Simulated consumer work per batch, e.g. 200us; 0s for none.
    #[arg(long, value_parser = duration)]
    pub consumer_delay: Option<Duration>,
    /// Simulated consumer work per KiB delivered, e.g. 2us.
    #[arg(long, value_parser = duration)]
    pub consumer_cost_per_kib: Option<Duration>,
    /// Random +/- jitter on the consumer's work per batch.
    #[arg(long, value_parser = duration)]
    pub consumer_jitter: Option<Duration>,
    /// The consumer stalls every this long (with --stall-for).
    #[arg(long, value_parser = duration)]
    pub stall_every: Option<Duration>,
    /// How long each consumer stall lasts.
    #[arg(long, value_parser = duration)]
    pub stall_for: Option<Duration>,
    /// Batch interval, e.g. 10ms.
    #[arg(long, value_parser = duration)]
    pub interval: Option<Duration>,
    /// Random extra interval per batch, 0..=interval.
    #[arg(long, value_parser = duration)]
    pub interval_jitter: Option<Duration>,
    /// Batch byte target, e.g. 32KiB, or `none`.
    #[arg(long, value_parser = optional_bytes, value_name = "SIZE|none")]
    pub max_batch_bytes: Option<Limit>,
    /// Batch item target, or `none`.
    #[arg(long, value_parser = optional_count, value_name = "N|none")]
    pub max_batch_items: Option<Limit>,
    /// Limit on buffered bytes, e.g. 64MiB.
    #[arg(long, value_parser = bytes, value_name = "SIZE")]
    pub max_buffered_bytes: Option<u64>,
    /// Overload policy.
    #[arg(long, value_enum)]
    pub policy: Option<PolicyArg>,
    /// How long a producer waits for room under the block policy (at least 1us: to
    /// refuse at once, use --policy reject).
    #[arg(long, value_parser = duration)]
    pub block_timeout: Option<Duration>,
    /// Batch builders (1..=256) sharing the byte budget; each producer
    /// thread admits into one, round-robin.
    #[arg(long, value_name = "N")]
    pub partitions: Option<u32>,
    /// How often to sample, e.g. 1s, 250ms.
    #[arg(long, value_parser = duration)]
    pub sample_every: Option<Duration>,
    /// Seed for payload generation.
    #[arg(long)]
    pub seed: Option<u64>,
    /// What the producers feed.
    #[arg(long, value_enum)]
    pub target: Option<TargetArg>,
    /// Deadline for draining at the end.
    #[arg(long, value_parser = duration)]
    pub drain_timeout: Option<Duration>,
    /// Pin the run to N cores, to rehearse a smaller machine (an approximation:
    /// the same number of cores, not the same cores, caches or memory).
    #[arg(long, value_name = "N")]
    pub cpus: Option<u32>,
    /// Do not record enqueue-to-delivery latency (to measure the recording's cost).
    #[arg(long)]
    pub no_latency: bool,
    /// A pass/fail threshold judged at the end, METRIC OP VALUE (repeatable), e.g.
    /// 'p99<50ms', 'refused<1%', 'delivered_per_sec>500k', 'peak_heap<96MiB'. Metrics:
    /// p50 p90 p99 p999 max refused dropped delivered_per_sec accepted_per_sec peak_heap
    /// peak_rss peak_buffered drain; operators < <= > >=. A failed threshold exits 1.
    #[arg(long = "threshold", value_name = "EXPR", value_parser = threshold)]
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

/// Parses the process's arguments (exiting with clap's message and code 2 on an error),
/// keeping what the user typed for the scenario flags.
pub fn parse() -> Cli {
    let matches = Cli::command().get_matches();
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    cli.scenario.typed = typed_values(&matches);
    if let (Some(Command::Tune { scenario, .. }), Some(("tune", sub))) =
        (cli.command.as_mut(), matches.subcommand())
    {
        scenario.typed = typed_values(sub);
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
        Cli::command().debug_assert();
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
    fn preset_and_config_exclude_each_other() {
        let err =
            Cli::try_parse_from(["soak", "--preset", "quick", "--config", "x.toml"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ArgumentConflict);
    }
}
