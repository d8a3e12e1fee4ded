//! Probes of the live dispatcher: one long-lived soak run, reconfigured
//! between probes with [`Control`] commands, its samples read back from
//! the run's `samples.jsonl`.
//!
//! One run rather than a run per probe: start-up (threads, allocator warm-up,
//! the first interval) would otherwise dominate short probes, and limits are
//! exactly what the dispatcher lets a user change live. To keep probes
//! honest, each one first settles (the backlog of the previous probe drains
//! or overflows) and only the samples after that, taken with exactly the
//! probe's limits in force, are measured.

use std::path::PathBuf;
use std::sync::mpsc::{SyncSender, sync_channel};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use runlog::{Control, Limits, Line, Sample, SamplesFollower, ScenarioConfig};

use super::TuneError;
use super::search::{Machine, Measured, Point};
use crate::progress::Progress;
use crate::run::{RunError, RunOptions, RunOutcome, prepare};

/// How long a probe waits for a late sample before giving up.
const WINDOW_PATIENCE: Duration = Duration::from_secs(15);
/// Share of each probe spent settling before measuring.
const SETTLE_FRACTION: f64 = 0.4;

/// The live dispatcher, running one soak that probes reconfigure.
pub struct LiveMachine {
    controls: SyncSender<Control>,
    follower: SamplesFollower,
    run: Option<JoinHandle<Result<RunOutcome, RunError>>>,
    live: Limits,
    sample_every: Duration,
    run_dir: PathBuf,
    /// Buffered bytes at the end of the last probe: a backlog the next one
    /// must not inherit.
    backlog: u64,
    /// When the budget is spent: no probe waits past it.
    deadline: Option<Instant>,
}

impl LiveMachine {
    /// Starts the soak run `config` (which should last longer than the
    /// search: it is stopped by [`LiveMachine::finish`]) under `runs_out`.
    ///
    /// # Errors
    /// [`TuneError::Run`] if the run cannot be prepared.
    pub fn start(config: &ScenarioConfig, runs_out: PathBuf) -> Result<Self, TuneError> {
        let prepared = prepare(config, &RunOptions::new(runs_out))?;
        let run_dir = prepared.dir().path().to_path_buf();
        let follower = SamplesFollower::new(&prepared.dir().samples_path());
        let (controls, rx) = sync_channel(16);
        let run = thread::Builder::new()
            .name("tune-run".into())
            .spawn(move || prepared.run(&mut Progress::new(true), Some(&rx)))
            .map_err(|e| TuneError::Probe(format!("cannot start the run: {e}")))?;
        Ok(Self {
            controls,
            follower,
            run: Some(run),
            live: Limits::from_config(config),
            sample_every: Duration::from_millis(config.sample_every_ms),
            run_dir,
            backlog: 0,
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
}

impl Machine for LiveMachine {
    type Error = TuneError;

    fn probe(&mut self, point: &Point, probe_s: f64) -> Result<Measured, TuneError> {
        let began = Instant::now();
        if self.deadline.is_some_and(|d| began >= d) {
            return Err(TuneError::Probe(
                "the budget ran out before this probe could start: give a larger --budget (or a smaller payload)".into(),
            ));
        }
        self.apply(point)?;
        if self.backlog > point.max_batch_bytes.saturating_mul(2) {
            self.drain_backlog(point.max_batch_bytes, probe_s)?;
        }
        // A drain eats into the probe, but measuring keeps at least half.
        let left = (probe_s - began.elapsed().as_secs_f64()).max(probe_s / 2.0);
        let settled =
            self.bounded(Instant::now() + Duration::from_secs_f64(left * SETTLE_FRACTION));
        thread::sleep(settled.saturating_duration_since(Instant::now()));
        self.samples()?;
        let measure_end =
            self.bounded(settled + Duration::from_secs_f64(left * (1.0 - SETTLE_FRACTION)));
        thread::sleep(measure_end.saturating_duration_since(Instant::now()));
        let window = self.window()?;
        self.backlog = window.last().map_or(0, |s| s.buffered_bytes);
        let mut measured = aggregate(&window);
        measured.elapsed_s = began.elapsed().as_secs_f64();
        Ok(measured)
    }
}

impl LiveMachine {
    /// At least one whole sample taken with the probe's limits in force.
    /// A starved machine may deliver samples late: wait for one up to
    /// [`WINDOW_PATIENCE`], then give up rather than measure nothing.
    fn window(&mut self) -> Result<Vec<Sample>, TuneError> {
        let deadline = self.bounded(Instant::now() + WINDOW_PATIENCE.max(self.sample_every * 10));
        loop {
            let fresh = self.samples()?;
            let live = &self.live;
            let window: Vec<Sample> = fresh
                .into_iter()
                .filter(|s| s.limits == *live && !s.paused)
                .collect();
            if !window.is_empty() {
                return Ok(window);
            }
            self.check_running()?;
            if Instant::now() >= deadline {
                let why = if self.deadline.is_some_and(|d| Instant::now() >= d) {
                    "the budget ran out before this probe could be measured: give a larger --budget (or a smaller payload)"
                } else {
                    "no sample with the probe's limits arrived: the machine is too busy to probe"
                };
                return Err(TuneError::Probe(why.into()));
            }
            thread::sleep(self.sample_every / 2);
        }
    }

    fn check_running(&self) -> Result<(), TuneError> {
        if self.run.as_ref().is_none_or(JoinHandle::is_finished) {
            return Err(TuneError::Probe("the probing run ended early".into()));
        }
        Ok(())
    }

    /// Pauses the producers until the previous probe's backlog is delivered
    /// (or `limit_s` passes), so its latency is not charged to this probe.
    fn drain_backlog(&mut self, target_bytes: u64, limit_s: f64) -> Result<(), TuneError> {
        self.send(Control::Pause)?;
        let deadline = self.bounded(Instant::now() + Duration::from_secs_f64(limit_s));
        while Instant::now() < deadline {
            thread::sleep(self.sample_every / 2);
            let drained = self
                .samples()?
                .iter()
                .any(|s| s.paused && s.buffered_bytes <= target_bytes);
            if drained {
                break;
            }
            self.check_running()?;
        }
        self.send(Control::Resume)
    }
}

/// Combines the samples of one probe: rates weighted by interval, the
/// median of the per-sample p99s (one scheduling hiccup in a short probe
/// should not decide the edge; a real overload raises most of them), the
/// largest heap and buffered bytes.
#[must_use]
pub fn aggregate(samples: &[Sample]) -> Measured {
    let seconds: f64 = samples.iter().map(|s| s.interval_s).sum::<f64>().max(1e-9);
    let sum = |f: fn(&Sample) -> f64| samples.iter().map(|s| f(s) * s.interval_s).sum::<f64>();
    let attempted = sum(|s| s.attempted_per_sec);
    let rejected = sum(|s| s.rejected_per_sec + s.dropped_per_sec);
    Measured {
        delivered_per_sec: sum(|s| s.delivered_per_sec) / seconds,
        delivered_bytes_per_sec: sum(|s| s.delivered_bytes_per_sec) / seconds,
        rejected_pct: if attempted > 0.0 {
            100.0 * rejected / attempted
        } else {
            0.0
        },
        p99_us: median_p99(samples),
        peak_heap_bytes: samples
            .iter()
            .map(|s| s.heap_allocated_bytes)
            .max()
            .unwrap_or(0),
        burst_bytes: samples.iter().map(|s| s.buffered_bytes).max().unwrap_or(0),
        elapsed_s: 0.0,
    }
}

/// The median of the per-sample p99s of the samples that delivered anything
/// (the upper one of an even count).
fn median_p99(samples: &[Sample]) -> u64 {
    let mut p99s: Vec<u64> = samples
        .iter()
        .filter(|s| s.latency_us.count > 0)
        .map(|s| s.latency_us.p99)
        .collect();
    p99s.sort_unstable();
    p99s.get(p99s.len() / 2).copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(delivered: f64, rejected: f64, p99: u64, buffered: u64) -> Sample {
        let mut s = Sample {
            interval_s: 0.1,
            attempted_per_sec: delivered + rejected,
            rejected_per_sec: rejected,
            delivered_per_sec: delivered,
            buffered_bytes: buffered,
            ..Sample::default()
        };
        s.latency_us.count = 10;
        s.latency_us.p99 = p99;
        s
    }

    #[test]
    fn aggregate_weights_rates_and_takes_the_median_p99() {
        let window = [
            sample(1000.0, 0.0, 100, 10),
            sample(1000.0, 100.0, 9000, 50),
            sample(1000.0, 0.0, 200, 20),
        ];
        let m = aggregate(&window);
        assert!((m.delivered_per_sec - 1000.0).abs() < 1e-6);
        assert!((m.rejected_pct - 100.0 * 100.0 / 3100.0).abs() < 1e-6);
        assert_eq!(m.p99_us, 200);
        assert_eq!(m.burst_bytes, 50);
        assert_eq!(aggregate(&[]).p99_us, 0);
    }
}
