//! `soak crash-test`: proves that the disk tier loses nothing it accepted when the
//! process is killed.
//!
//! The test runs this program again as a child, with a write-ahead disk tier (every event
//! reaches the disk before the producer hears `Ok`), `SIGKILL`s it at a random moment
//! after it starts producing, starts it again on the same directory, `--kills` times, and
//! lets a last child run its course: its shutdown drains what is on disk. Every child
//! writes down the ids it accepted and delivered ([`witness`], [`ledger`]); at the end
//! every accepted id must have been delivered at least once. Duplicates are expected (what
//! a killed child held in memory is delivered again), losses are not.
//!
//! Everything goes into `<out>/crash-<id>/`: the scenario file the children run, their run
//! directories and logs, the id files and (without `--spill-dir`) the disk tier.

pub mod child;
pub mod ledger;
mod leftover;
mod report;
pub mod witness;

use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::{Duration, Instant};

use runlog::{RunResults, ScenarioConfig, SpillConfig, SpillSync};

use crate::cli::ScenarioArgs;
use crate::signals::Interrupt;
use child::{ChildError, Layout};

pub use report::render;

/// The longest a child waits for its first accepted event before the test gives up.
pub const START_WITHIN: Duration = Duration::from_secs(60);
/// A child is killed up to this long after it starts producing.
pub const KILL_WITHIN: Duration = Duration::from_millis(600);
/// How long a child that is to be killed would run: long enough never to end first, short
/// enough that one left behind by a killed test ends by itself.
const KILLED_RUN_S: f64 = 60.0;
/// How the default disk tier directory is shown: the test makes it in its own directory.
pub const DEFAULT_SPILL_DIR: &str = "<out>/crash-<id>/spill";

/// The scenario the test starts from (before `--preset`, `--config` and flags): a short,
/// paced load of small telemetry events, so ten kills take seconds.
pub fn base_scenario() -> ScenarioConfig {
    ScenarioConfig {
        duration_s: 1.0,
        producers: 4,
        rate_per_sec: Some(20_000),
        max_buffered_bytes: 256 * 1024,
        sample_every_ms: 250,
        drain_timeout_ms: 30_000,
        spill: Some(default_spill()),
        ..ScenarioConfig::default()
    }
}

fn default_spill() -> SpillConfig {
    SpillConfig {
        dir: PathBuf::from(DEFAULT_SPILL_DIR),
        max_disk_bytes: 64 << 20,
        sync: SpillSync::Interval,
        write_ahead: true,
        ..SpillConfig::default()
    }
}

/// What the test is asked to do.
#[derive(Debug, Clone)]
pub struct CrashOptions {
    /// The children's scenario (its duration is the last child's; the disk tier's
    /// directory may still be [`DEFAULT_SPILL_DIR`]).
    pub config: ScenarioConfig,
    /// Children killed before the last one.
    pub kills: u32,
    /// Where the test's directory goes.
    pub out: PathBuf,
    /// How messages name `out`.
    pub out_label: String,
    /// Signals: a child is not left behind when one ends the test.
    pub interrupt: Option<Arc<Interrupt>>,
}

/// Why the test could not run or finish.
#[derive(Debug, thiserror::Error)]
pub enum CrashError {
    /// Bad input, found before anything was created (exit code 2).
    #[error("{0}")]
    Input(String),
    /// A child did not do what the test needs (exit code 1), or could not write an
    /// output (exit code 3).
    #[error(transparent)]
    Child(#[from] ChildError),
    /// A file of the test could not be written or read (exit code 3).
    #[error("{what}: {source}")]
    Io {
        /// What it was.
        what: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl CrashError {
    /// The process exit code (see [`crate::app`]).
    pub fn exit_code(&self) -> u8 {
        match self {
            CrashError::Input(_) => crate::app::EXIT_USAGE,
            CrashError::Child(child) => child.exit_code(),
            CrashError::Io { .. } => crate::app::EXIT_IO,
        }
    }
}

/// What the test saw.
#[derive(Debug, Clone)]
pub struct CrashOutcome {
    /// The test's directory.
    pub work: PathBuf,
    /// The children's scenario, as run.
    pub config: ScenarioConfig,
    /// How long after its first accepted event each killed child was killed.
    pub kill_delays: Vec<Duration>,
    /// How the last child ended.
    pub last_status: ExitStatus,
    /// Its record, if it wrote one.
    pub last: Option<RunResults>,
    /// How long it took, start to exit.
    pub last_took: Duration,
    /// It could not write an output (it exited 3): what its log says. The tally stands
    /// (what it did not write down was neither acknowledged nor lost), but the test exits
    /// 3.
    pub last_output_error: Option<String>,
    /// What the id files say.
    pub tally: ledger::Tally,
}

impl CrashOutcome {
    /// Nothing accepted was lost (events still on disk are not lost).
    pub fn passed(&self) -> bool {
        self.tally.lost == 0
    }
}

/// The children's scenario: `args` over [`base_scenario`] (or over `--preset` / `--config`),
/// the disk tier always on, write-ahead unless `no_write_ahead`. Checked without touching
/// anything (the disk tier's directory is looked at by [`crash_test`], after `--out`).
///
/// # Errors
///
/// A message for the user: a bad scenario, a reference target, a disk tier directory that
/// cannot be used.
pub fn scenario(args: &ScenarioArgs, no_write_ahead: bool) -> Result<ScenarioConfig, String> {
    // The tier the children run is set before the checks: under write-ahead, the payload
    // must fit its disk budget.
    let config = crate::scenario::resolve_adjusted(args, base_scenario(), |config| {
        if !config.target.is_reference() {
            config.spill.get_or_insert_with(default_spill).write_ahead = !no_write_ahead;
        }
    })
    .map_err(|e| e.to_string())?;
    if config.target.is_reference() {
        return Err(format!(
            "--target {} cannot be crash-tested: only the dispatcher has a disk tier",
            config.target
        ));
    }
    if let Some(spill) = config.spill.as_ref() {
        if spill.dir != Path::new(DEFAULT_SPILL_DIR) {
            crate::spill::check_dir(&spill.dir)?;
        }
    }
    Ok(config)
}

/// A disk tier directory the test can use: one that can be created, or an empty tier. The
/// probe that looks into an existing one leaves it as it was (see [`crate::spill::Opening`]).
fn check_empty(dir: &Path) -> Result<(), String> {
    crate::spill::check_dir(dir)?;
    if !dir.exists() {
        return Ok(());
    }
    let probe = SpillConfig {
        dir: dir.to_path_buf(),
        ..SpillConfig::default()
    };
    let recovered = crate::spill::open(&probe)?.recovered();
    if recovered.events > 0 {
        let events = match recovered.events {
            1 => "1 event".to_owned(),
            n => format!("{} events", runlog::human::grouped(n)),
        };
        return Err(format!(
            "--spill-dir {}: holds {events} an earlier run left; the crash test counts ids \
             of its own only: use an empty or new directory (or deliver them with a run: \
             soak --spill-dir {})",
            dir.display(),
            dir.display()
        ));
    }
    Ok(())
}

/// Runs the test: `options.kills` children killed, a last one let finish, the ids tallied.
/// Progress goes to stderr, a line per kill.
///
/// # Errors
///
/// [`CrashError`]: the output directory or the disk tier's cannot be used (checked in that
/// order, before anything is created), a child cannot be started or ends on its own, a
/// file cannot be written.
pub fn crash_test(options: &CrashOptions) -> Result<CrashOutcome, CrashError> {
    // The output first: a test refused for it has not looked into the disk tier's directory.
    runlog::RunDir::check_base(&options.out)
        .map_err(|e| CrashError::Input(format!("{}: {e}", options.out_label)))?;
    if let Some(spill) = options.config.spill.as_ref() {
        if spill.dir != Path::new(DEFAULT_SPILL_DIR) {
            crate::checks::apart(&options.out, &spill.dir)
                .map_err(|e| {
                    e.replace(
                        &format!("--out {}", options.out.display()),
                        &options.out_label,
                    )
                })
                .and_then(|()| check_empty(&spill.dir))
                .map_err(CrashError::Input)?;
        }
    }
    let work = options.out.join(format!("crash-{}", runlog::new_run_id()));
    let layout = Layout::under(&work);
    let mut config = options.config.clone();
    prepare(&layout, &work, &mut config)?;
    let note = |text: String| crate::errln!("{} crash-test: {text}", crate::program::name());
    note(format!(
        "{} kills, then a run that finishes; evidence in {}",
        options.kills,
        work.display()
    ));
    let mut rng = fastrand::Rng::with_seed(config.seed);
    let mut kill_delays = Vec::new();
    for run in 0..options.kills {
        let delay = Duration::from_millis(rng.u64(0..=millis(KILL_WITHIN)));
        kill(&layout, run, delay, options.interrupt.as_deref())?;
        let (accepted, delivered) = ledger::progress(&layout.ledger, run).unwrap_or_default();
        note(format!(
            "kill {} of {}: SIGKILL {} into production (run {run}: {} accepted, {} delivered)",
            run + 1,
            options.kills,
            runlog::human::micros(delay.as_micros() as u64),
            runlog::human::grouped(accepted),
            runlog::human::grouped(delivered),
        ));
        kill_delays.push(delay);
    }
    let run = options.kills;
    note(format!(
        "run {run}: producing for {}, then draining what is on disk",
        runlog::human::seconds(config.duration_s)
    ));
    let began = Instant::now();
    let last_status = last_run(&layout, run, &config, options.interrupt.as_deref())?;
    let last_took = began.elapsed();
    note(format!(
        "run {run} ended ({}) after {}",
        report::ended(&last_status),
        runlog::human::seconds(last_took.as_secs_f64())
    ));
    let last_output_error = child::output_failed(&last_status).then(|| {
        let log = layout.log(run);
        format!(
            "run {run} could not write an output ({}): {}; its log: {}",
            report::ended(&last_status),
            child::cause(&log),
            log.display()
        )
    });
    let last = runlog::RunDir::resolve_latest(&layout.runs)
        .ok()
        .and_then(|dir| runlog::read_results(&dir.results_path()).ok());
    // What the last run left on disk (its drain deadline passed) is not lost.
    let on_disk = match config.spill.as_ref() {
        Some(spill) => leftover::ids(spill).map_err(|why| CrashError::Io {
            what: format!(
                "cannot read what run {run} left in the disk tier {}",
                spill.dir.display()
            ),
            source: std::io::Error::other(why),
        })?,
        None => Vec::new(),
    };
    let tally = ledger::tally_with(&layout.ledger, &on_disk).map_err(|source| CrashError::Io {
        what: format!("cannot read the ids in {}", layout.ledger.display()),
        source,
    })?;
    Ok(CrashOutcome {
        work,
        config,
        kill_delays,
        last_status,
        last,
        last_took,
        last_output_error,
        tally,
    })
}

/// Creates the test's directories and the children's scenario file.
fn prepare(layout: &Layout, work: &Path, config: &mut ScenarioConfig) -> Result<(), CrashError> {
    let io = |what: String| move |source| CrashError::Io { what, source };
    for dir in [work, &layout.ledger, &layout.runs, &layout.logs] {
        std::fs::create_dir_all(dir).map_err(io(format!("cannot create {}", dir.display())))?;
    }
    if let Some(spill) = config.spill.as_mut() {
        if spill.dir == Path::new(DEFAULT_SPILL_DIR) {
            spill.dir = work.join("spill");
        }
    }
    let children = ScenarioConfig {
        duration_s: KILLED_RUN_S,
        ..config.clone()
    };
    let text = children.to_toml_string().map_err(|e| CrashError::Io {
        what: "cannot write the children's scenario".into(),
        source: std::io::Error::other(e.to_string()),
    })?;
    std::fs::write(&layout.scenario, text)
        .map_err(io(format!("cannot write {}", layout.scenario.display())))
}

/// Child run `run`: started, let produce for `delay`, killed.
fn kill(
    layout: &Layout,
    run: u32,
    delay: Duration,
    interrupt: Option<&Interrupt>,
) -> Result<(), CrashError> {
    let mut child = child::start(layout, run, &[])?;
    let _guard = Guard::new(interrupt, child.pid());
    child.wait_producing(&layout.ledger, START_WITHIN)?;
    child.keep_running(delay)?;
    child.kill()?;
    Ok(())
}

/// The last child: runs for the scenario's duration, drains, ends by itself.
fn last_run(
    layout: &Layout,
    run: u32,
    config: &ScenarioConfig,
    interrupt: Option<&Interrupt>,
) -> Result<ExitStatus, CrashError> {
    let duration = format!("{}ms", (config.duration_s * 1e3).round());
    let child = child::start(layout, run, &["--duration".to_owned(), duration])?;
    let _guard = Guard::new(interrupt, child.pid());
    let within = START_WITHIN
        + Duration::from_secs_f64(config.duration_s)
        + Duration::from_millis(config.drain_timeout_ms);
    Ok(child.finish(within)?)
}

/// While it lives, a signal that ends this process kills the child first.
struct Guard<'a>(Option<&'a Interrupt>);

impl<'a> Guard<'a> {
    fn new(interrupt: Option<&'a Interrupt>, pid: u32) -> Self {
        if let Some(interrupt) = interrupt {
            interrupt.guard_child(Some(pid));
        }
        Guard(interrupt)
    }
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        if let Some(interrupt) = self.0 {
            interrupt.guard_child(None);
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
