//! Probes of the live dispatcher: one long-lived soak run, reconfigured between probes
//! with [`Control`] commands, each probe measuring only its own events.
//!
//! One run rather than a run per probe: start-up (threads, allocator warm-up, the first
//! interval) would otherwise dominate short probes, and limits are exactly what the
//! dispatcher lets a user change live. Probes are isolated by event origin
//! ([`loadgen::OriginTally`]): the producers are paused, the new limits applied and the
//! buffer emptied; the probe opens a window and resumes the producers; at its end they are
//! paused again and the probe's own events are followed until delivered. Offers are counted
//! between the two pauses, deliveries and latency by the events' own time of making, so
//! nothing an earlier probe left behind is counted, and nothing is delivered that was not
//! offered.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{SyncSender, sync_channel};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use runlog::{Control, Limits, Line, Sample, SamplesFollower, ScenarioConfig};

use super::TuneError;
use super::search::{Machine, Measured, Point};
use crate::hooks::ProbeHooks;
use crate::progress::Progress;
use crate::run::{RunError, RunOptions, RunOutcome, prepare};
use crate::sink::SinkSpec;

/// How long a probe waits for a late sample before giving up.
const WINDOW_PATIENCE: Duration = Duration::from_secs(15);
/// The least a probe waits for an earlier probe's backlog to be delivered before it starts.
const SETTLE_AT_LEAST: Duration = Duration::from_secs(2);
/// How long producers may take to notice a pause and finish the offer in hand.
const QUIESCE: Duration = Duration::from_millis(15);

/// The live dispatcher, running one soak that probes reconfigure.
pub struct LiveMachine {
    controls: SyncSender<Control>,
    follower: SamplesFollower,
    hooks: Arc<ProbeHooks>,
    run: Option<JoinHandle<Result<RunOutcome, RunError>>>,
    live: Limits,
    sample_every: Duration,
    run_dir: PathBuf,
    /// When the budget is spent: no probe waits past it.
    deadline: Option<Instant>,
}

impl LiveMachine {
    /// Starts the soak run `config` into `sink` (which should last longer than the search:
    /// it is stopped by [`LiveMachine::finish`]) under `runs_out`, obeying `interrupt`'s
    /// signals (a signal ends it like [`LiveMachine::finish`]).
    ///
    /// # Errors
    /// [`TuneError::Run`] if the run cannot be prepared.
    pub fn start(
        config: &ScenarioConfig,
        sink: &SinkSpec,
        runs_out: PathBuf,
        interrupt: Option<Arc<crate::signals::Interrupt>>,
    ) -> Result<Self, TuneError> {
        let hooks = ProbeHooks::new();
        let options = RunOptions {
            sink: sink.clone(),
            interrupt,
            probe: Some(Arc::clone(&hooks)),
            ..RunOptions::new(runs_out)
        };
        let prepared = prepare(config, &options)?;
        let run_dir = prepared.dir().path().to_path_buf();
        let follower = SamplesFollower::new(&prepared.dir().samples_path());
        let (controls, rx) = sync_channel(16);
        let run = thread::Builder::new()
            .name("tune-run".into())
            .spawn(move || prepared.run(&mut Progress::new(true), Some(&rx)))
            .map_err(|e| TuneError::Probe(format!("cannot start the run: {e}")))?;
        // The run measures its heap and starts its producers (paused) before probing.
        let started = Instant::now();
        while !hooks.attached() {
            if run.is_finished() || started.elapsed() > WINDOW_PATIENCE {
                return Err(TuneError::Probe("the probing run did not start".into()));
            }
            thread::sleep(Duration::from_millis(5));
        }
        Ok(Self {
            controls,
            follower,
            hooks,
            run: Some(run),
            live: Limits::from_config(config),
            sample_every: Duration::from_millis(config.sample_every_ms),
            run_dir,
            deadline: None,
        })
    }

    /// Keeps every probe within `deadline` (the end of the budget): a probe that cannot
    /// be measured by then fails rather than wait.
    #[must_use]
    pub fn with_deadline(mut self, deadline: Instant) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// `at`, or the deadline if it comes first.
    fn bounded(&self, at: Instant) -> Instant {
        self.deadline.map_or(at, |d| at.min(d))
    }

    /// The directory of the probing run.
    #[must_use]
    pub fn run_dir(&self) -> &std::path::Path {
        &self.run_dir
    }

    /// Stops the run and waits for its drain.
    ///
    /// # Errors
    /// [`TuneError::Run`] if the run failed.
    pub fn finish(mut self) -> Result<RunOutcome, TuneError> {
        self.hooks.resume();
        let _ = self.controls.send(Control::Stop);
        let run = self.run.take().expect("finish is called once");
        run.join()
            .map_err(|_| TuneError::Probe("the probing run panicked".into()))?
            .map_err(TuneError::from)
    }

    fn send(&mut self, control: Control) -> Result<(), TuneError> {
        let next = self
            .live
            .apply(&control)
            .map_err(|e| TuneError::Probe(format!("probe limits refused: {e}")))?;
        self.controls
            .send(control)
            .map_err(|_| TuneError::Probe("the probing run ended early".into()))?;
        self.live = next;
        Ok(())
    }

    /// Sends what changes, in an order every intermediate state allows.
    fn apply(&mut self, point: &Point) -> Result<(), TuneError> {
        let batch = Control::SetMaxBatchBytes {
            bytes: Some(point.max_batch_bytes),
        };
        let buffered = Control::SetMaxBufferedBytes {
            bytes: point.max_buffered_bytes,
        };
        let order = if point.max_batch_bytes <= self.live.max_buffered_bytes {
            [batch, buffered]
        } else {
            [buffered, batch]
        };
        let rest = [
            Control::SetInterval {
                interval_us: point.interval_us,
            },
            Control::SetRate {
                per_sec: point.rate_per_sec,
            },
        ];
        for control in order.into_iter().chain(rest) {
            let unchanged = self
                .live
                .apply(&control)
                .is_ok_and(|next| next == self.live);
            if !unchanged {
                self.send(control)?;
            }
        }
        Ok(())
    }

    fn samples(&mut self) -> Result<Vec<Sample>, TuneError> {
        let lines = self
            .follower
            .poll()
            .map_err(|e| TuneError::Probe(format!("reading probe samples: {e}")))?;
        Ok(lines
            .into_iter()
            .filter_map(|line| match line {
                Line::Sample(s) if s.phase == "run" => Some(s),
                _ => None,
            })
            .collect())
    }

    fn check_running(&self) -> Result<(), TuneError> {
        if self.run.as_ref().is_none_or(JoinHandle::is_finished) {
            return Err(TuneError::Probe("the probing run ended early".into()));
        }
        Ok(())
    }

    fn out_of_budget(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// Waits, producers paused, until a sample shows the probe's limits in force and the
    /// buffer empty (at most `limit`): the probe starts from nothing an earlier one left.
    fn settle(&mut self, limit: Duration) -> Result<(), TuneError> {
        let patience = WINDOW_PATIENCE.max(self.sample_every * 10).min(limit);
        let deadline = self.bounded(Instant::now() + patience);
        loop {
            let fresh = self.samples()?;
            let live = &self.live;
            let settled = fresh
                .iter()
                .any(|s| s.paused && s.limits == *live && s.buffered_bytes == 0);
            if settled {
                return Ok(());
            }
            self.check_running()?;
            if Instant::now() >= deadline {
                if self.out_of_budget() {
                    return Err(budget_ran_out());
                }
                // The previous probe's backlog is still draining: go on, it is not counted.
                return Ok(());
            }
            thread::sleep(self.sample_every / 4);
        }
    }

    /// Waits until every accepted event of the window was delivered (or `limit` passed).
    fn follow(&self, accepted: u64, limit: Duration) {
        let deadline = self.bounded(Instant::now() + limit);
        while self.hooks.tally.snapshot().delivered < accepted && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
    }
}

fn budget_ran_out() -> TuneError {
    TuneError::Probe(
        "the budget ran out before this probe could be measured: give a larger --budget (or a smaller payload)"
            .into(),
    )
}

impl Machine for LiveMachine {
    type Error = TuneError;

    fn probe(&mut self, point: &Point, probe_s: f64) -> Result<Measured, TuneError> {
        let began = Instant::now();
        if self.out_of_budget() {
            return Err(budget_ran_out());
        }
        let window = Duration::from_secs_f64(probe_s);
        self.hooks.pause();
        self.apply(point)?;
        self.settle(window.max(SETTLE_AT_LEAST))?;
        let before = self.hooks.offered();
        let from = self.hooks.open_window();
        self.hooks.resume();
        thread::sleep(
            self.bounded(from + window)
                .saturating_duration_since(Instant::now()),
        );
        self.hooks.pause();
        let produced_s = from.elapsed().as_secs_f64().max(1e-9);
        let at_end = self.hooks.tally.snapshot();
        thread::sleep(QUIESCE);
        let offered = self.hooks.offered();
        let accepted = offered.accepted - before.accepted;
        self.follow(accepted, window);
        let counts = self.hooks.tally.take();
        let samples: Vec<Sample> = self.samples()?.into_iter().filter(|s| !s.paused).collect();
        if self.out_of_budget() && samples.is_empty() {
            return Err(budget_ran_out());
        }
        let attempted = offered.attempted - before.attempted;
        let refused = (offered.rejected + offered.closed) - (before.rejected + before.closed);
        let undelivered = accepted.saturating_sub(counts.delivered);
        Ok(Measured {
            offered_per_sec: attempted as f64 / produced_s,
            delivered_per_sec: at_end.delivered as f64 / produced_s,
            delivered_bytes_per_sec: at_end.delivered_bytes as f64 / produced_s,
            rejected_pct: if attempted > 0 {
                100.0 * refused as f64 / attempted as f64
            } else {
                0.0
            },
            undelivered,
            earlier: counts.earlier,
            p99_us: counts.p99_us,
            peak_heap_bytes: samples
                .iter()
                .map(|s| s.heap_allocated_bytes)
                .max()
                .unwrap_or(0),
            burst_bytes: samples.iter().map(|s| s.buffered_bytes).max().unwrap_or(0),
            elapsed_s: began.elapsed().as_secs_f64(),
        })
    }
}
