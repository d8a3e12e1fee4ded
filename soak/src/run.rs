//! One soak run: producers -> subject -> consumer, sampled every interval,
//! drained, assessed and written to its run directory.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use hdrhistogram::sync::SyncHistogram;
use loadgen::{ConsumerSim, PayloadSource, Stall};
use runlog::{Control, HlogWriter, RunDir, RunResults, SamplesWriter, ScenarioConfig};

pub use crate::compose::consumer_bound_per_sec;
use crate::exporter::{Exporter, RunLabels};
use crate::lock::RunLock;
use crate::progress::Progress;
use crate::record::{Record, Snapshot};
use crate::sampler::latency_histogram;
use crate::signals::{Interrupt, PartialRecord};
use crate::sink::SinkSpec;
use crate::subject::SubjectError;

/// Where and how to run.
#[derive(Clone)]
pub struct RunOptions {
    /// Base directory for run directories.
    pub out: PathBuf,
    /// Serve Prometheus metrics here while the run lasts (see [`crate::exporter`]).
    pub metrics_addr: Option<SocketAddr>,
    /// Where batches go (see [`crate::sink`]).
    pub sink: SinkSpec,
    /// Signals to obey (see [`crate::signals`]); `None`: the process's default handling.
    pub interrupt: Option<Arc<Interrupt>>,
    /// How to name the output directory in messages: `--out DIR` when the user gave it,
    /// otherwise the default's description.
    pub out_label: Option<String>,
    /// A tuner's hooks into the run (see [`crate::hooks`]).
    pub probe: Option<Arc<crate::hooks::ProbeHooks>>,
    /// A crash test's child run: where it writes down what it accepts and delivers (see
    /// [`crate::crash::witness`]).
    pub witness: Option<Arc<crate::crash::witness::Witness>>,
}

impl std::fmt::Debug for RunOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunOptions")
            .field("out", &self.out)
            .field("metrics_addr", &self.metrics_addr)
            .field("sink", &self.sink)
            .finish_non_exhaustive()
    }
}

impl RunOptions {
    /// Runs under `out` into the in-process consumer, with no metrics endpoint.
    ///
    /// ```
    /// let options = soak::run::RunOptions::new("target/soak");
    /// assert!(options.metrics_addr.is_none());
    /// ```
    pub fn new(out: impl Into<PathBuf>) -> Self {
        RunOptions {
            out: out.into(),
            metrics_addr: None,
            sink: SinkSpec::InProcess,
            interrupt: None,
            out_label: None,
            probe: None,
            witness: None,
        }
    }

    fn out_label(&self) -> String {
        self.out_label
            .clone()
            .unwrap_or_else(|| format!("--out {}", self.out.display()))
    }
}

/// What a finished run leaves.
#[derive(Debug)]
pub struct RunOutcome {
    /// The run directory.
    pub dir: RunDir,
    /// What was written to `results.json` (or would have been).
    pub results: RunResults,
    /// Why the record is incomplete (a file that could not be written), if it is.
    pub incomplete: Option<String>,
}

/// Why a run could not start or complete.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Bad input found before the run started (exit code 2).
    #[error("{0}")]
    Input(String),
    /// The run directory or a record file could not be created.
    #[error(transparent)]
    Record(#[from] runlog::RunlogError),
    /// The subject or a thread failed.
    #[error(transparent)]
    Subject(#[from] SubjectError),
    /// A producer thread panicked.
    #[error("{0}")]
    Producer(String),
    /// A signal arrived before the run could start (see [`crate::signals`]).
    #[error("{} before the run started", .0.name())]
    Interrupted(crate::signals::Caught),
}

impl RunError {
    /// The process exit code for this error (see [`crate::app`]): 2 for bad input, 3 for a
    /// record that cannot be written, 128 + the signal for a run that a signal stopped
    /// before it started, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            RunError::Input(_) => crate::app::EXIT_USAGE,
            RunError::Record(_) => crate::app::EXIT_IO,
            RunError::Interrupted(caught) => caught.exit_code(),
            RunError::Subject(_) | RunError::Producer(_) => crate::app::EXIT_FAIL,
        }
    }
}

pub(crate) fn consumer_sim(config: &ScenarioConfig) -> ConsumerSim {
    ConsumerSim {
        delay_per_batch: Duration::from_micros(config.consumer_delay_us),
        cost_per_kib: Duration::from_micros(config.consumer_cost_per_kib_us),
        jitter: Duration::from_micros(config.consumer_jitter_us),
        stall: config.consumer_stall_every_ms.map(|every| Stall {
            every: Duration::from_millis(every),
            duration: Duration::from_millis(config.consumer_stall_for_ms),
        }),
        seed: config.seed,
    }
}

/// A run whose input is checked and whose directory exists, ready to start.
pub struct Prepared {
    pub(crate) config: ScenarioConfig,
    pub(crate) payload: PayloadSource,
    pub(crate) record: Record,
    pub(crate) latency: Option<SyncHistogram<u64>>,
    /// Connected before the run, so a missing broker fails early.
    pub(crate) sink: Option<crate::sink::SharedSink>,
    /// The disk tier, opened (locked and recovered) before the run directory exists.
    pub(crate) spill: Option<crate::spill::Opened>,
    pub(crate) interrupt: Option<Arc<Interrupt>>,
    pub(crate) probe: Option<Arc<crate::hooks::ProbeHooks>>,
    pub(crate) witness: Option<Arc<crate::crash::witness::Witness>>,
}

/// Checks the input and creates the run directory, before anything runs.
///
/// Everything that can refuse the run is checked before the directory is created (and
/// before `latest` moves): the payload, the machine's limits (`--cpus`, producers per
/// core, memory), the output directory, the disk tier's directory, the metrics address and
/// the sink.
///
/// # Errors
///
/// [`RunError::Input`] for a bad payload, an unwritable output directory, a
/// `--spill-dir` that cannot be opened (see [`crate::spill::open`]), a
/// `--metrics-addr` that cannot be listened on, or a `--sink` that cannot be
/// reached or used; [`RunError::Record`] if the record files cannot be created.
pub fn prepare(config: &ScenarioConfig, options: &RunOptions) -> Result<Prepared, RunError> {
    let interrupt = options.interrupt.as_deref();
    if let Some(interrupt) = interrupt {
        interrupt.preparing();
    }
    let prepared = prepare_run(config, options);
    if let (Err(_), Some(interrupt)) = (&prepared, interrupt) {
        interrupt.idle();
    }
    prepared
}

fn prepare_run(config: &ScenarioConfig, options: &RunOptions) -> Result<Prepared, RunError> {
    let config = &crate::sink::scenario_for(config, &options.sink).map_err(RunError::Input)?;
    let bad_payload = |e: &dyn std::fmt::Display| RunError::Input(format!("--payload: {e}"));
    let spec = config.payload.parse().map_err(|e| bad_payload(&e))?;
    let payload = PayloadSource::load(&spec).map_err(|e| bad_payload(&e))?;
    crate::checks::before_run(config, &payload, &options.out).map_err(|e| {
        RunError::Input(e.replace(
            &format!("--out {}", options.out.display()),
            &options.out_label(),
        ))
    })?;
    // Locked before anything else is created: a directory in use refuses the run. Until
    // it is kept below, a later refusal (`?`) drops it, and what opening it created (its
    // directory, its lock file) is removed: a refused run leaves nothing behind.
    let spill = config
        .spill
        .as_ref()
        .map(crate::spill::open)
        .transpose()
        .map_err(RunError::Input)?;
    let run_id = runlog::new_run_id();
    // Before the run directory exists, so a bad address leaves nothing behind.
    let exporter = options
        .metrics_addr
        .map(|addr| Exporter::start(addr, &RunLabels::for_run(&run_id, config)))
        .transpose()
        .map_err(|e| RunError::Input(e.to_string()))?;
    let sink = crate::sink::connect_within(&options.sink, &run_id, crate::sink::SETUP_TIMEOUT)
        .map_err(|e| RunError::Input(sink_error(&options.sink, &e.to_string())))?;
    let snapshot = Arc::new(Mutex::new(Snapshot {
        base: RunResults {
            run_id: run_id.clone(),
            config: config.clone(),
            sink: options.sink.describe(),
            ..RunResults::default()
        },
        ..Snapshot::default()
    }));
    // Before the directory exists: once it does, an interrupted run always leaves a record.
    if let Some(interrupt) = &options.interrupt {
        let partial = Arc::clone(&snapshot);
        interrupt
            .arm(PartialRecord {
                path: options.out.join(&run_id).join("results.json"),
                compose: Box::new(move |first, second| {
                    partial
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .partial(first, second)
                }),
            })
            .map_err(RunError::Interrupted)?;
    }
    let dir = RunDir::create(&options.out, &run_id)
        .map_err(|e| RunError::Input(format!("{}: {e}", options.out_label())))?;
    tracing::debug!("run directory created: {}", dir.path().display());
    let lock = RunLock::hold(dir.path()).ok();
    let latency: Option<SyncHistogram<u64>> =
        config.record_latency.then(|| latency_histogram().into());
    let hlog = match latency {
        Some(_) => Some(HlogWriter::create(&dir.hlog_path(), SystemTime::now())?),
        None => None,
    };
    let record = Record {
        samples: Some(SamplesWriter::create(&dir.samples_path())?),
        hlog,
        events: Vec::new(),
        exporter,
        broken: None,
        snapshot,
        _lock: lock,
        dir,
    };
    Ok(Prepared {
        config: config.clone(),
        payload,
        record,
        latency,
        sink,
        spill: spill.map(crate::spill::Opening::keep),
        interrupt: options.interrupt.clone(),
        probe: options.probe.clone(),
        witness: options.witness.clone(),
    })
}

/// `--sink URL: why`, on one line, naming the server once.
fn sink_error(spec: &SinkSpec, why: &str) -> String {
    let why = one_line(why);
    match spec {
        SinkSpec::Nats { url, .. } if !why.contains(url.as_str()) => format!("--sink {url}: {why}"),
        _ => format!("--sink: {why}"),
    }
}

/// `text` on one line: what a server sent back may hold line breaks.
fn one_line(text: &str) -> String {
    text.split(['\r', '\n'])
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Prepares and runs the scenario: see [`prepare`] and [`Prepared::run`].
///
/// # Errors
///
/// As [`prepare`] and [`Prepared::run`].
pub fn run(
    config: &ScenarioConfig,
    options: &RunOptions,
    progress: &mut Progress,
    controls: Option<&Receiver<Control>>,
) -> Result<RunOutcome, RunError> {
    prepare(config, options)?.run(progress, controls)
}

impl Prepared {
    /// The run directory, already created (its samples.jsonl too, empty).
    pub fn dir(&self) -> &RunDir {
        &self.record.dir
    }

    /// The scenario.
    pub fn config(&self) -> &ScenarioConfig {
        &self.config
    }

    /// Where the metrics endpoint serves, if there is one.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.record.exporter.as_ref().map(Exporter::addr)
    }

    /// Runs the scenario, writing the run directory as it goes. Commands on
    /// `controls` (from a dashboard) are applied live and recorded as events; a
    /// signal (see [`crate::signals`]) stops it like a `Stop` command.
    ///
    /// # Errors
    ///
    /// [`RunError::Subject`] or [`RunError::Producer`] if a thread fails. A record file
    /// that cannot be written does not end the run: see [`RunOutcome::incomplete`].
    pub fn run(
        self,
        progress: &mut Progress,
        controls: Option<&Receiver<Control>>,
    ) -> Result<RunOutcome, RunError> {
        crate::execute::execute(self, progress, controls)
    }
}
