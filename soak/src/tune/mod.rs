//! `cargo soak tune`: which interval and byte limits are sane on this
//! machine, for this payload?
//!
//! [`tune`] runs short probes of the live dispatcher (one soak run of the user's
//! scenario, reconfigured between probes, each probe counting only its own events: see
//! [`probe`]), searches for the edge (see [`search`] for the method), recommends limits
//! with one line of reasoning each ([`mod@recommend`]), verifies the recommendation with a
//! final probe and backs off if it misses ([`verify`]), and writes `tuned.toml` (its
//! reasoning as comments, its promise as thresholds), which `cargo soak --config
//! tuned.toml` runs directly.
//!
//! ```no_run
//! use soak::tune::{TuneOptions, output, tune};
//!
//! let options = TuneOptions::new("telemetry", std::time::Duration::from_secs(20));
//! let report = tune(&options)?;
//! print!("{}", output::render(&report, true));
//! # Ok::<(), soak::tune::TuneError>(())
//! ```

pub mod json;
pub mod model;
pub mod output;
pub mod probe;
pub mod recommend;
pub mod search;
pub mod verify;

use std::path::PathBuf;
use std::time::Duration;

use runlog::ScenarioConfig;

use crate::run::RunError;
use crate::sink::SinkSpec;
use probe::LiveMachine;
use recommend::{Recommendation, recommend, write_tuned};
use search::{Plan, Point, SearchOutcome};
use verify::{VERIFY_PROBES, Verification};

/// Recommendations keep buffered bytes within this fraction of memory.
pub const MEMORY_FRACTION: u64 = 8;
/// Probe length bounds: the budget is split into about [`PLANNED_PROBES`].
const PROBE_S_RANGE: (f64, f64) = (0.5, 3.0);
/// How many probes a budget is planned for (verification counts as
/// [`VERIFY_PROBES`] each).
pub const PLANNED_PROBES: f64 = 16.0;

/// What to tune for.
#[derive(Debug, Clone)]
pub struct TuneOptions {
    /// The scenario tuned for: payload, producers, consumer, policy (its limits are the
    /// starting point, its rate and length are the tuner's).
    pub base: ScenarioConfig,
    /// Where batches go (the NATS sink, or the simulated consumer).
    pub sink: SinkSpec,
    /// Total probing time.
    pub budget: Duration,
    /// p99 enqueue-to-delivery target; `None` is twice the probed interval.
    pub latency_target: Option<Duration>,
    /// Where `tuned.toml` is written.
    pub out: PathBuf,
    /// Where the probing run's directory is written.
    pub runs_out: PathBuf,
    /// No progress bar.
    pub quiet: bool,
    /// How messages name the output directory (`--out DIR`, or the default's description).
    pub out_label: String,
    /// What the user typed for tune's flags, by id (`budget`, `latency_target`): messages
    /// repeat it. Empty for options built in code.
    pub typed: std::collections::BTreeMap<String, String>,
    /// Signals the probing run obeys (see [`crate::signals`]): the first stops it and
    /// drains it into a complete record, and tune ends.
    pub interrupt: Option<std::sync::Arc<crate::signals::Interrupt>>,
}

/// What the budget does not cover, at most: starting the probing run and draining it at
/// the end. `tune` ends within `--budget` plus this.
pub const BUDGET_MARGIN: Duration = Duration::from_secs(5);
/// The probing run's drain deadline (part of [`BUDGET_MARGIN`]).
const PROBING_DRAIN_MS: u64 = 2_000;

impl TuneError {
    /// The process exit code for this error (see [`crate::app`]): 2 for bad input, 3 for
    /// an output that cannot be written, as [`RunError::exit_code`] for the probing run,
    /// 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            TuneError::Input(_) => crate::app::EXIT_USAGE,
            TuneError::Run(err) => err.exit_code(),
            TuneError::Write { .. } | TuneError::Record { .. } => crate::app::EXIT_IO,
            TuneError::Probe(_) | TuneError::Scenario(_) => crate::app::EXIT_FAIL,
        }
    }
}

impl TuneOptions {
    /// The default scenario with `payload`; no explicit target; `tuned.toml` and the
    /// probing run under `target/soak` (generated output stays under `target/`).
    #[must_use]
    pub fn new(payload: &str, budget: Duration) -> Self {
        Self {
            base: ScenarioConfig {
                payload: payload.to_owned(),
                ..ScenarioConfig::default()
            },
            sink: SinkSpec::InProcess,
            budget,
            latency_target: None,
            out: PathBuf::from(crate::cli::DEFAULT_OUT),
            runs_out: PathBuf::from(crate::cli::DEFAULT_OUT),
            quiet: false,
            out_label: format!("--out {}", crate::cli::DEFAULT_OUT),
            typed: std::collections::BTreeMap::new(),
            interrupt: None,
        }
    }
}

/// Why tuning could not complete.
#[derive(Debug, thiserror::Error)]
pub enum TuneError {
    /// Bad input (exit code 2).
    #[error("{0}")]
    Input(String),
    /// The probing run failed.
    #[error(transparent)]
    Run(#[from] RunError),
    /// A probe could not be taken.
    #[error("probe: {0}")]
    Probe(String),
    /// The recommended scenario is not valid.
    #[error(transparent)]
    Scenario(#[from] runlog::RunlogError),
    /// The probing run's record could not be written (a full disk): its probes cannot be
    /// read back.
    #[error(
        "the probing run's record in {} could not be written ({why}): its probes cannot be read back",
        dir.display()
    )]
    Record {
        /// The probing run's directory.
        dir: PathBuf,
        /// The write that failed.
        why: String,
    },
    /// `tuned.toml` could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// What tuning found.
#[derive(Debug, Clone)]
pub struct TuneReport {
    /// Every probe, the edge and how the search ended.
    pub search: SearchOutcome,
    /// The recommendation (after any back-off); `None` when nothing was healthy.
    pub recommendation: Option<Recommendation>,
    /// How the recommendation's verification went; `None` without one.
    pub verification: Option<Verification>,
    /// The scenario tuned for, in one line.
    pub scenario: String,
    /// The written `tuned.toml`, if any.
    pub tuned_path: Option<PathBuf>,
    /// The probing run's directory.
    pub run_dir: PathBuf,
    /// The buffered-bytes cap applied (a fraction of total memory).
    pub memory_cap_bytes: u64,
}

/// The scenario `tune` was given (defaults, a preset or `--config`, then flags), refusing
/// the flags a tune decides itself or cannot use.
///
/// # Errors
/// A message naming the flag (or scenario file key) and why it has no effect.
pub fn scenario(args: &crate::cli::ScenarioArgs) -> Result<ScenarioConfig, String> {
    let decided = [
        (
            args.duration.is_some(),
            "--duration",
            "tune runs for its --budget",
        ),
        (args.rate.is_some(), "--rate", "tune searches the rate"),
        (
            args.sample_every.is_some(),
            "--sample-every",
            "tune samples as its probes need",
        ),
        (
            !args.thresholds.is_empty(),
            "--threshold",
            "tune writes its own promise as thresholds",
        ),
        (args.no_latency, "--no-latency", "tune judges latency"),
    ];
    if let Some((_, flag, why)) = decided.iter().find(|(given, _, _)| *given) {
        return Err(format!("{flag} has no effect on tune: {why}"));
    }
    let config = crate::scenario::resolve(args).map_err(|e| e.to_string())?;
    if config.target.is_reference() {
        return Err(format!(
            "--target {} cannot be tuned: a reference channel has no limits to tune",
            config.target
        ));
    }
    if config.spill.is_some() {
        return Err(
            "--spill-dir cannot be tuned: tune finds the memory limits at which nothing is \
             refused, and a disk tier takes what memory refuses; tune without it"
                .to_owned(),
        );
    }
    Ok(config)
}

/// The smallest budget: three probes and a verification of the shortest length.
pub const MIN_BUDGET: Duration =
    Duration::from_millis((PROBE_S_RANGE.0 * (3.0 + VERIFY_PROBES) * 1000.0) as u64);
/// The largest budget.
pub const MAX_BUDGET: Duration = Duration::from_secs(24 * 3600);
/// The loosest latency target.
pub const MAX_LATENCY_TARGET: Duration = Duration::from_secs(3600);

/// What the user typed for flag `id`, or `rendered` (options built in code).
fn typed(options: &TuneOptions, id: &str, rendered: Duration) -> String {
    options
        .typed
        .get(id)
        .cloned()
        .unwrap_or_else(|| humantime::format_duration(rendered).to_string())
}

/// Everything that can be refused before probing, checked before anything is created: the
/// budget, the latency target, the payload, and where the probing run and `tuned.toml` go
/// (an existing `tuned.toml` that is not a regular file is refused: tune would block on a
/// FIFO or replace a device's name).
fn check_input(options: &TuneOptions) -> Result<(), TuneError> {
    let input = |m: String| TuneError::Input(m);
    let budget_s = options.budget.as_secs_f64();
    let probe_s = probe_seconds(budget_s);
    let least = probe_s * 3.0 + probe_s * VERIFY_PROBES;
    if options.budget > MAX_BUDGET || budget_s < least {
        return Err(input(format!(
            "--budget {} is out of range (allowed: {}..={}: at least three probes and a verification)",
            typed(options, "budget", options.budget),
            humantime::format_duration(MIN_BUDGET),
            humantime::format_duration(MAX_BUDGET),
        )));
    }
    if let Some(target) = options.latency_target {
        if target.is_zero() || target > MAX_LATENCY_TARGET {
            return Err(input(format!(
                "--latency-target {} is out of range (allowed: 1us..={})",
                typed(options, "latency_target", target),
                humantime::format_duration(MAX_LATENCY_TARGET),
            )));
        }
    }
    let spec: loadgen::PayloadSpec = options
        .base
        .payload
        .parse()
        .map_err(|e| input(format!("--payload: {e}")))?;
    loadgen::PayloadSource::load(&spec).map_err(|e| input(format!("--payload: {e}")))?;
    runlog::RunDir::check_base(&options.runs_out)
        .map_err(|e| input(format!("{}: {e}", options.out_label)))?;
    let tuned = options.out.join(recommend::TUNED_FILE);
    match std::fs::symlink_metadata(&tuned) {
        Ok(meta) if !meta.is_file() => {
            return Err(input(format!(
                "{}: {} is not a regular file; tune writes tuned.toml there (move it away)",
                options.out_label,
                tuned.display()
            )));
        }
        _ => {}
    }
    writable_dir(&options.out).map_err(|e| {
        input(format!(
            "{}: cannot write tuned.toml into {}: {e}",
            options.out_label,
            options.out.display()
        ))
    })
}

/// Checks, creating nothing, that files can be written in `dir`: it is a directory (or its
/// nearest existing ancestor is, to be created later) that this process may write to.
fn writable_dir(dir: &std::path::Path) -> std::io::Result<()> {
    let mut at = Some(dir);
    while let Some(path) = at {
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_dir() => {
                return nix::unistd::access(path, nix::unistd::AccessFlags::W_OK)
                    .map_err(std::io::Error::from);
            }
            Ok(_) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::NotADirectory,
                    format!("{} is not a directory", path.display()),
                ));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                at = path.parent().filter(|p| !p.as_os_str().is_empty());
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The buffered limit the search probes with: room for [`SEARCH_BATCHES`] batches (at
/// least 4 MiB), never more than the scenario's. Enough for any healthy rate's bursts, and
/// small enough that an overloaded probe's backlog is delivered before the next starts.
#[must_use]
pub fn search_buffered(batch: u64, scenario: u64) -> u64 {
    batch
        .saturating_mul(SEARCH_BATCHES)
        .max(4 << 20)
        .min(scenario)
}

/// See [`search_buffered`].
pub const SEARCH_BATCHES: u64 = 64;

/// The search's plan: the scenario's limits (the buffered one capped for searching) as
/// the start, the latency target.
fn plan(options: &TuneOptions, config: &ScenarioConfig, budget_s: f64, probe_s: f64) -> Plan {
    let batch = config.max_batch_bytes.unwrap_or(32 << 10);
    let start = Point {
        interval_us: config.interval_us,
        max_batch_bytes: batch,
        max_buffered_bytes: search_buffered(batch, config.max_buffered_bytes),
        rate_per_sec: None,
    };
    let target_us = options.latency_target.map(|t| t.as_micros() as u64);
    Plan::new(budget_s, probe_s, target_us, start)
}

/// The recommendation for `edge`, verified (and backed off) on the live machine.
fn recommend_and_verify(
    machine: &mut LiveMachine,
    edge: &search::Edge,
    options: &TuneOptions,
    (probe_s, cap): (f64, u64),
    on_probe: &mut dyn FnMut(&search::Probe),
) -> (Recommendation, Verification) {
    let rec = recommend(edge, &options.base, cap);
    let target = edge.shape.target_us;
    let (config, v) = verify::verify(
        machine,
        rec.config.clone(),
        (probe_s, target, cap),
        on_probe,
    );
    (Recommendation { config, ..rec }, v)
}

/// The length of each probe for a budget.
#[must_use]
pub fn probe_seconds(budget_s: f64) -> f64 {
    (budget_s / PLANNED_PROBES).clamp(PROBE_S_RANGE.0, PROBE_S_RANGE.1)
}

/// The machine's memory in bytes; 0 when it cannot be read.
#[must_use]
pub fn total_memory_bytes() -> u64 {
    sysinfo::System::new().map_or(0, |mut sys| {
        sys.refresh_memory();
        sys.total_memory()
    })
}

/// 1/[`MEMORY_FRACTION`] of total memory (a 512 MiB machine if unknown).
#[must_use]
pub fn memory_cap_bytes() -> u64 {
    let total = total_memory_bytes();
    let total = match total {
        0 => 512 << 20,
        total => total,
    };
    total / MEMORY_FRACTION
}

/// The probing run: the user's scenario (payload, producers, consumer, policy, limits as
/// the starting point, capped), samples fine enough for probes, no rate (the probes set
/// it), no thresholds.
fn probing_config(options: &TuneOptions, probe_s: f64, cap: u64) -> ScenarioConfig {
    let base = &options.base;
    let sample_ms = (probe_s * 1e3 / 8.0).clamp(20.0, 500.0) as u64;
    ScenarioConfig {
        // Ended by a Stop command; long enough never to end first.
        duration_s: options.budget.as_secs_f64() * 4.0 + 60.0,
        sample_every_ms: sample_ms,
        max_buffered_bytes: base.max_buffered_bytes.min(cap),
        max_batch_bytes: base.max_batch_bytes.map(|b| b.min(cap / 4)),
        rate_per_sec: None,
        drain_timeout_ms: PROBING_DRAIN_MS,
        record_latency: true,
        thresholds: runlog::Thresholds::default(),
        ..base.clone()
    }
}

/// Probes the live dispatcher within `options.budget`, recommends limits, verifies them
/// and writes `tuned.toml` into `options.out` (only when something was healthy: otherwise
/// the report says why and has no recommendation; and never when `options.interrupt`
/// caught a signal: a search cut short recommends nothing, and `tuned_path` is `None`). `on_probe` sees every probe as it
/// finishes, with the budget spent so far.
///
/// # Errors
/// [`TuneError::Input`] for a bad payload or a budget too small for one
/// probe; [`TuneError::Run`] / [`TuneError::Probe`] if probing breaks down;
/// [`TuneError::Scenario`] / [`TuneError::Write`] for `tuned.toml`.
pub fn tune(options: &TuneOptions) -> Result<TuneReport, TuneError> {
    let mut printer = output::ProbePrinter::new(options.budget.as_secs_f64(), options.quiet);
    tune_with(options, &mut |p, spent| printer.print(p, spent))
}

/// [`tune`], calling `on_probe(probe, spent_s)` after every probe instead of printing.
///
/// # Errors
/// As [`tune`].
pub fn tune_with(
    options: &TuneOptions,
    on_probe: &mut dyn FnMut(&search::Probe, f64),
) -> Result<TuneReport, TuneError> {
    let began = std::time::Instant::now();
    check_input(options)?;
    let budget_s = options.budget.as_secs_f64();
    let probe_s = probe_seconds(budget_s);
    let verify_s = probe_s * VERIFY_PROBES;
    let cap = memory_cap_bytes();
    let config = probing_config(options, probe_s, cap);
    config
        .validate()
        .map_err(|e| TuneError::Input(e.to_string()))?;
    // The search leaves room for the verification and one back-off.
    let plan = plan(options, &config, budget_s - 2.0 * verify_s, probe_s);
    let mut machine = LiveMachine::start(
        &config,
        &options.sink,
        options.runs_out.clone(),
        options.interrupt.clone(),
    )?
    .with_deadline(began + options.budget);
    let run_dir = machine.run_dir().to_path_buf();
    let outcome = search::search(&mut machine, &plan, on_probe);
    let verified = match &outcome {
        Ok(found) => found.edge.as_ref().map(|edge| {
            let spent = found.spent_s;
            recommend_and_verify(&mut machine, edge, options, (probe_s, cap), &mut |p| {
                on_probe(p, spent + p.measured.elapsed_s);
            })
        }),
        Err(_) => None,
    };
    let finished = machine.finish()?;
    // A record that could not be written (a full disk) is why the probes read nothing.
    if let Some(why) = finished.incomplete {
        return Err(TuneError::Record { dir: run_dir, why });
    }
    let outcome = outcome?;
    let scenario = output::scenario_line(&options.base, &options.sink);
    let (recommendation, verification) = verified.unzip();
    let mut report = TuneReport {
        search: outcome,
        recommendation,
        verification,
        scenario,
        tuned_path: None,
        run_dir,
        memory_cap_bytes: cap,
    };
    // A search cut short by a signal is no recommendation: tuned.toml is not written (a
    // previous one stays as it was), and the caller says so.
    let interrupted = options
        .interrupt
        .as_deref()
        .and_then(crate::signals::Interrupt::caught);
    if let Some(caught) = interrupted {
        tracing::debug!(signal = %caught.name(), "search cut short: tuned.toml not written");
        return Ok(report);
    }
    if let Some(rec) = &report.recommendation {
        let comment = output::tuned_comment(&report, options);
        report.tuned_path = Some(write_tuned(&rec.config, &options.out, &comment)?);
    }
    Ok(report)
}
