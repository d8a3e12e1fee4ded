//! The subcommands: work on recorded runs, tuning, crash tests, shell integration.

use super::values::*;
use super::*;

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
