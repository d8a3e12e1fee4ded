//! The dashboard's state: what has been seen of the run and what the user selected.
//!
//! Pure data: no terminal, no clock, no channel. [`App::on_line`] feeds it the followed
//! file, [`App::on_key`] the user's keys, and `impl Widget for &App` draws it.

use std::path::PathBuf;

use runlog::{
    Control, Event, EventKind, Knob, Limits, Line, RunlogError, Sample, SamplesFollower,
    ScenarioConfig,
};

use crate::health::Health;
use crate::log::{Log, LogEntry, LogKind};
use crate::marks::Mark;
use crate::options::DashboardOptions;
use crate::pending::Pending;
use crate::ring::Ring;

/// Samples kept for the charts (10 minutes at the default 1 s sample interval).
pub const SAMPLE_HISTORY: usize = 600;
/// Event log lines kept.
pub const EVENT_HISTORY: usize = 100;

/// Whether the dashboard may send commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The run is driven by this process: keys send [`runlog::Control`] commands.
    Interactive,
    /// Watching a run started elsewhere: control keys only say so.
    ReadOnly,
}

/// Where the followed run is, as the header shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    /// No sample yet.
    Waiting,
    /// Producing.
    Running,
    /// Producers paused; the consumer keeps delivering.
    Paused,
    /// The user asked the run to stop; waiting for the drain.
    Stopping,
    /// The run entered its drain phase.
    Draining,
    /// The final (`drain`) sample arrived.
    Done,
    /// The run stopped without finishing: nothing writes its file any more (it was
    /// killed, or its machine went down).
    Gone,
}

impl RunState {
    /// The status word of the header.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::Waiting => "waiting",
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Stopping => "stopping",
            Self::Draining => "draining",
            Self::Done => "done",
            Self::Gone => "stopped: nothing writes this run",
        }
    }
}

/// Everything the dashboard shows, updated from lines and keys.
#[derive(Debug)]
pub struct App {
    pub(crate) title: String,
    pub(crate) duration_s: Option<f64>,
    pub(crate) mode: Mode,
    pub(crate) samples: Ring<Sample>,
    pub(crate) log: Log,
    /// Limit changes, pauses and resumes, for the time charts.
    pub(crate) marks: Ring<Mark>,
    /// Draw in colour; without, series and marks differ by symbol.
    pub(crate) colour: bool,
    /// The live limits: the latest sample's, or what this dashboard just sent.
    pub(crate) limits: Option<Limits>,
    pub(crate) starting: Option<Limits>,
    pub(crate) scenario: Option<ScenarioConfig>,
    pub(crate) save_dir: Option<PathBuf>,
    /// How hints name the program (`soak` or `cargo soak`).
    pub(crate) program: String,
    pub(crate) selected: usize,
    pub(crate) paused: bool,
    pub(crate) help: bool,
    pub(crate) status: Option<String>,
    pub(crate) stopping: bool,
    pub(crate) draining: bool,
    pub(crate) done: bool,
    /// Nothing writes the run any more and it never finished.
    pub(crate) gone: bool,
    /// Changes sent and not yet confirmed by the file.
    pub(crate) pending: Pending,
    last_follow_error: Option<String>,
}

impl App {
    /// The state before any line, from the options (the sender only decides the [`Mode`]).
    ///
    /// ```
    /// use dashboards::{App, DashboardOptions, Mode, RunState};
    /// let app = App::new(&DashboardOptions::new("run/samples.jsonl"));
    /// assert_eq!((app.mode(), app.run_state()), (Mode::ReadOnly, RunState::Waiting));
    /// ```
    #[must_use]
    pub fn new(options: &DashboardOptions) -> Self {
        let starting = options
            .starting_limits
            .clone()
            .or_else(|| options.scenario.as_ref().map(Limits::from_config));
        let mode = if options.controls.is_some() {
            Mode::Interactive
        } else {
            Mode::ReadOnly
        };
        Self {
            title: options.title.clone(),
            duration_s: options.duration_s,
            mode,
            samples: Ring::new(SAMPLE_HISTORY),
            log: Log::new(EVENT_HISTORY),
            marks: Ring::new(EVENT_HISTORY),
            colour: options.colour,
            limits: starting.clone(),
            starting,
            scenario: options.scenario.clone(),
            save_dir: options.samples_path.parent().map(PathBuf::from),
            program: options.program.clone(),
            selected: 0,
            paused: false,
            help: false,
            status: None,
            stopping: false,
            draining: false,
            done: false,
            gone: false,
            pending: Pending::default(),
            last_follow_error: None,
        }
    }

    /// Takes one line of the followed file.
    ///
    /// A sample is kept (the oldest dropped past [`SAMPLE_HISTORY`]) and its limits and
    /// paused flag become the live ones; a sample with phase `drain` ends the run. An event
    /// goes to the log.
    ///
    /// ```
    /// use dashboards::{App, DashboardOptions, RunState};
    /// use runlog::{Line, Sample};
    /// let mut app = App::new(&DashboardOptions::new("samples.jsonl"));
    /// app.on_line(Line::Sample(Sample { t_s: 1.0, phase: "run".into(), ..Default::default() }));
    /// assert_eq!(app.run_state(), RunState::Running);
    /// app.on_line(Line::Sample(Sample { t_s: 1.2, phase: "drain".into(), ..Default::default() }));
    /// assert_eq!(app.run_state(), RunState::Done);
    /// ```
    pub fn on_line(&mut self, line: Line) {
        match line {
            Line::Sample(sample) => self.on_sample(sample),
            Line::Event(event) => self.on_event(&event),
        }
    }

    fn on_sample(&mut self, sample: Sample) {
        if self.starting.is_none() {
            self.starting = Some(sample.limits.clone());
        }
        let (mut limits, mut paused) = (sample.limits.clone(), sample.paused);
        self.pending.on_sample(&mut limits, &mut paused);
        (self.limits, self.paused) = (Some(limits), paused);
        if sample.phase == "drain" {
            self.draining = true;
            self.done = true;
            self.pending.clear();
        }
        self.samples.push(sample);
    }

    fn on_event(&mut self, event: &Event) {
        self.pending.on_event(&event.kind);
        match &event.kind {
            EventKind::Phase { name } if name == "drain" => self.draining = true,
            EventKind::Reconfigure { knob, to, .. } if knob == "producers" => {
                self.paused = to == "paused";
                if let Some(limits) = self.limits.as_mut() {
                    self.pending.overlay(limits, &mut self.paused);
                }
            }
            _ => {}
        }
        if let Some(mark) = Mark::from_event(event) {
            self.marks.push(mark);
        }
        self.log.push(LogEntry::from_event(event));
    }

    /// Reads what `follower` has new and applies it; returns the number of lines taken.
    ///
    /// A read or parse error is logged once as a warning (not again until it changes) and
    /// following goes on.
    pub fn poll(&mut self, follower: &mut SamplesFollower) -> usize {
        match follower.poll() {
            Ok(lines) => {
                let n = lines.len();
                for line in lines {
                    self.on_line(line);
                }
                n
            }
            Err(err) => {
                self.on_follow_error(&err);
                0
            }
        }
    }

    fn on_follow_error(&mut self, err: &RunlogError) {
        let text = err.to_string();
        if self.last_follow_error.as_deref() != Some(text.as_str()) {
            self.push_log(LogKind::Warning, text.clone());
            self.last_follow_error = Some(text);
        }
    }

    /// Logs a message of the dashboard's own, at the latest time seen.
    pub(crate) fn push_log(&mut self, kind: LogKind, text: String) {
        let at_s = self.now_s();
        self.log.push(LogEntry::new(at_s, kind, text));
    }

    /// Shows `text` on the status line and logs it.
    pub(crate) fn note(&mut self, kind: LogKind, text: String) {
        self.push_log(kind, text.clone());
        self.status = Some(text);
    }

    /// The latest run time seen, from samples and events.
    fn now_s(&self) -> f64 {
        let sample = self.samples.last().map_or(0.0, |s| s.t_s);
        let event = self.log.last().map_or(0.0, |e| e.at_s);
        sample.max(event)
    }

    /// Tells the state that commands can no longer be sent (the soak went away).
    pub fn set_read_only(&mut self, why: &str) {
        self.mode = Mode::ReadOnly;
        self.pending.clear();
        self.note(LogKind::Warning, format!("read-only from now on: {why}"));
    }

    /// Tells the state that `control` (from [`Action::Send`](crate::Action::Send)) was not
    /// sent, and why: the change is dropped and the next sample shows the real value.
    pub fn send_failed(&mut self, control: &Control, why: &str) {
        self.pending.unsent(control);
        self.note(LogKind::Warning, format!("not sent ({why}): {control:?}"));
    }

    /// Interactive or read-only.
    #[must_use]
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Where the run is.
    #[must_use]
    pub fn run_state(&self) -> RunState {
        if self.gone && !self.done {
            RunState::Gone
        } else if self.done {
            RunState::Done
        } else if self.draining {
            RunState::Draining
        } else if self.stopping {
            RunState::Stopping
        } else if self.samples.len() == 0 {
            RunState::Waiting
        } else if self.paused {
            RunState::Paused
        } else {
            RunState::Running
        }
    }

    /// Marks the run as stopped without finishing (its writer is gone): the header says
    /// so, and no command is sent any more.
    pub fn set_gone(&mut self) {
        if !self.done && !self.gone {
            self.gone = true;
            self.note(
                LogKind::Warning,
                "the run stopped writing and no process holds it: it was killed".to_owned(),
            );
        }
    }

    /// The kept samples, oldest first.
    pub fn samples(&self) -> impl DoubleEndedIterator<Item = &Sample> + ExactSizeIterator {
        self.samples.iter()
    }

    /// The newest sample.
    #[must_use]
    pub fn latest(&self) -> Option<&Sample> {
        self.samples.last()
    }

    /// The event log, oldest first; repeats in a row are one entry (see
    /// [`LogEntry::repeats`]).
    pub fn log(&self) -> impl DoubleEndedIterator<Item = &LogEntry> + ExactSizeIterator {
        self.log.iter()
    }

    /// Limit changes, pauses and resumes seen, oldest first: the time charts' marks.
    pub fn marks(&self) -> impl DoubleEndedIterator<Item = &Mark> + ExactSizeIterator {
        self.marks.iter()
    }

    /// Whether the run is healthy, under the backpressure it is loaded for, or in trouble.
    #[must_use]
    pub fn health(&self) -> Health {
        Health::of(
            self.latest(),
            self.scenario.as_ref().map(|s| s.policy),
            self.run_state() == RunState::Gone,
        )
    }

    /// Whether the dashboard draws in colour.
    #[must_use]
    pub fn colour(&self) -> bool {
        self.colour
    }

    /// The live limits, once known.
    #[must_use]
    pub fn limits(&self) -> Option<&Limits> {
        self.limits.as_ref()
    }

    /// The limits `r` restores, once known.
    #[must_use]
    pub fn starting_limits(&self) -> Option<&Limits> {
        self.starting.as_ref()
    }

    /// The knob that `+`/`-` change.
    #[must_use]
    pub fn selected_knob(&self) -> Knob {
        Knob::ALL[self.selected]
    }

    /// Whether the producers are paused (as last reported, or as just asked).
    #[must_use]
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// Whether the help overlay is shown.
    #[must_use]
    pub fn help_visible(&self) -> bool {
        self.help
    }

    /// The status line's message: the outcome of the last key.
    #[must_use]
    pub fn status(&self) -> Option<&str> {
        self.status.as_deref()
    }

    /// The header's scenario line.
    #[must_use]
    pub fn title(&self) -> &str {
        &self.title
    }
}
