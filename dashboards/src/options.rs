//! What the caller tells the dashboard, and what it hands back.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::SyncSender;

use runlog::{Control, Limits, Policy, ScenarioConfig};

/// Frames per second when not told otherwise.
pub const DEFAULT_FPS: u32 = 10;

/// How to run the dashboard.
///
/// ```
/// use dashboards::DashboardOptions;
/// let options = DashboardOptions::new("target/soak/latest/samples.jsonl")
///     .with_scenario(runlog::ScenarioConfig::default());
/// assert_eq!(options.fps, 10);
/// assert_eq!(options.duration_s, Some(60.0));
/// assert!(options.controls.is_none()); // read-only until a sender is given
/// ```
#[derive(Debug, Clone)]
pub struct DashboardOptions {
    /// The run's `samples.jsonl`, followed from its start. Tuned scenarios (`s`) are saved
    /// in its directory.
    pub samples_path: PathBuf,
    /// Where commands go, for a run this process drives; `None` watches read-only (a run
    /// started elsewhere).
    pub controls: Option<SyncSender<Control>>,
    /// Most frames drawn per second (clamped to 1..=60); default [`DEFAULT_FPS`].
    pub fps: u32,
    /// The scenario line of the header, e.g. `telemetry, 32 producers, reject`.
    pub title: String,
    /// Planned run length, for the progress gauge; `None` shows elapsed time only.
    pub duration_s: Option<f64>,
    /// The values `r` restores; `None` takes the scenario's, else the first sample's.
    pub starting_limits: Option<Limits>,
    /// The scenario that `s` saves with the live limits merged in; `None` merges them into
    /// [`ScenarioConfig::default`].
    pub scenario: Option<ScenarioConfig>,
    /// Whether something still writes the followed run, asked every
    /// [`POLL_EVERY`](crate::POLL_EVERY): once it says no and the run has not finished, the
    /// dashboard says the run is gone and returns [`Exit::WriterGone`]. `None`: never asked.
    pub liveness: Option<Liveness>,
    /// How hints name the program that runs a saved scenario (`cargo soak --config …`);
    /// default [`DEFAULT_PROGRAM`].
    pub program: String,
    /// What Ctrl-C does (see [`DashboardOptions::with_interrupt`]); `None`: the same as `q`.
    pub interrupt: Option<Interrupt>,
    /// Whether to draw in colour (default `true`). [`run`](crate::run) also asks
    /// [`runlog::human::colour`], so `NO_COLOR` turns colour off whatever this says;
    /// without colour every series and mark is told apart by its symbol.
    pub colour: bool,
}

/// What Ctrl-C does in the dashboard (see [`DashboardOptions::with_interrupt`]).
#[derive(Clone)]
pub struct Interrupt(Arc<dyn Fn() + Send + Sync>);

impl Interrupt {
    /// Does it.
    pub fn raise(&self) {
        (self.0)();
    }
}

impl fmt::Debug for Interrupt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Interrupt(..)")
    }
}

/// The program hints name unless [`DashboardOptions::program`] says otherwise.
pub const DEFAULT_PROGRAM: &str = "cargo soak";

/// Says whether the followed run is still being written (see
/// [`DashboardOptions::with_liveness`]).
#[derive(Clone)]
pub struct Liveness(Arc<dyn Fn() -> bool + Send + Sync>);

impl Liveness {
    /// Whether the run is still being written.
    #[must_use]
    pub fn alive(&self) -> bool {
        (self.0)()
    }
}

impl fmt::Debug for Liveness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Liveness(..)")
    }
}

impl DashboardOptions {
    /// Read-only options for `samples_path`, at [`DEFAULT_FPS`], with no scenario.
    #[must_use]
    pub fn new(samples_path: impl Into<PathBuf>) -> Self {
        Self {
            samples_path: samples_path.into(),
            controls: None,
            fps: DEFAULT_FPS,
            title: String::new(),
            duration_s: None,
            starting_limits: None,
            scenario: None,
            liveness: None,
            program: DEFAULT_PROGRAM.to_owned(),
            interrupt: None,
            colour: true,
        }
    }

    /// Draws in colour or not (see [`DashboardOptions::colour`]).
    ///
    /// ```
    /// let options = dashboards::DashboardOptions::new("run/samples.jsonl").with_colour(false);
    /// assert!(!options.colour);
    /// ```
    #[must_use]
    pub fn with_colour(mut self, colour: bool) -> Self {
        self.colour = colour;
        self
    }

    /// Names the program in hints (`soak` or `cargo soak`, as the user ran it).
    #[must_use]
    pub fn with_program(mut self, program: impl Into<String>) -> Self {
        self.program = program.into();
        self
    }

    /// Sets `scenario`, `duration_s`, `starting_limits` from `config`, and a `title`
    /// (payload, producers, policy) when none is set.
    #[must_use]
    pub fn with_scenario(mut self, config: ScenarioConfig) -> Self {
        if self.title.is_empty() {
            let preset = config
                .preset
                .as_ref()
                .map_or_else(String::new, |p| format!("{p}: "));
            let policy = match config.policy {
                Policy::Reject => "reject",
                Policy::Block => "block",
                Policy::DropOldest => "drop-oldest",
            };
            self.title = format!(
                "{preset}{} payloads, {} producers, {policy} policy",
                config.payload, config.producers
            );
        }
        self.duration_s = Some(config.duration_s);
        self.starting_limits = Some(Limits::from_config(&config));
        self.scenario = Some(config);
        self
    }

    /// Asks `alive` every poll whether something still writes the run (a process holds
    /// it): a run whose writer is gone before its final sample is shown as gone and the
    /// dashboard returns [`Exit::WriterGone`].
    ///
    /// ```
    /// let options = dashboards::DashboardOptions::new("run/samples.jsonl").with_liveness(|| true);
    /// assert!(options.liveness.is_some_and(|l| l.alive()));
    /// ```
    #[must_use]
    pub fn with_liveness(mut self, alive: impl Fn() -> bool + Send + Sync + 'static) -> Self {
        self.liveness = Some(Liveness(Arc::new(alive)));
        self
    }

    /// What Ctrl-C does. The terminal is in raw mode while the dashboard runs, so Ctrl-C
    /// reaches it as a key, not as `SIGINT`; a caller that handles `SIGINT` (drain, record,
    /// exit 130) passes something that raises it, so Ctrl-C means the same with or without
    /// the dashboard. Without it, Ctrl-C is `q`.
    ///
    /// ```
    /// let options = dashboards::DashboardOptions::new("run/samples.jsonl").with_interrupt(|| {});
    /// assert!(options.interrupt.is_some());
    /// ```
    #[must_use]
    pub fn with_interrupt(mut self, interrupt: impl Fn() + Send + Sync + 'static) -> Self {
        self.interrupt = Some(Interrupt(Arc::new(interrupt)));
        self
    }

    /// Sends commands to `controls`: the interactive mode.
    #[must_use]
    pub fn with_controls(mut self, controls: SyncSender<Control>) -> Self {
        self.controls = Some(controls);
        self
    }
}

/// How the dashboard ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The run finished on its own (its `drain` sample arrived), shown for a moment.
    RunEnded,
    /// The user quit; [`Control::Stop`] was sent and the run's `drain` sample arrived.
    Stopped,
    /// The user quit and [`Control::Stop`] was sent (or could not be), but the `drain`
    /// sample did not arrive within the grace period, or the user quit a second time.
    StopUnconfirmed,
    /// The user quit a read-only dashboard; the watched run goes on.
    Detached,
    /// The run stopped without finishing: nothing writes it any more (see
    /// [`DashboardOptions::with_liveness`]).
    WriterGone,
}
