//! What a tuner reaches into a running soak with: the producers' switches and counters,
//! and the deliveries counted by event origin ([`loadgen::OriginTally`]), so each probe
//! measures its own events only.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use loadgen::{Clock, OriginTally, ProducerControl, ProducerCounters, ProducerTotals};

/// Handed to a run through [`RunOptions::probe`](crate::run::RunOptions); the run attaches
/// its producers when it starts them.
#[derive(Debug, Default)]
pub struct ProbeHooks {
    /// Deliveries by event origin, counted by the run's consumer (or sink).
    pub tally: Arc<OriginTally>,
    producers: OnceLock<Attached>,
}

/// What the run hands over once its producers exist.
#[derive(Debug)]
struct Attached {
    control: Arc<ProducerControl>,
    counters: Arc<ProducerCounters>,
    /// The clock the producers stamp events on.
    clock: Clock,
}

impl ProbeHooks {
    /// Hooks for one run.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub(crate) fn attach(
        &self,
        control: Arc<ProducerControl>,
        counters: Arc<ProducerCounters>,
        clock: Clock,
    ) {
        let _ = self.producers.set(Attached {
            control,
            counters,
            clock,
        });
    }

    /// Opens the tally's window from now (on the producers' clock, so events
    /// are told apart by their own stamps) and returns the instant it opened.
    /// Before the run attached, the window takes every event.
    pub fn open_window(&self) -> Instant {
        let from_ns = self
            .producers
            .get()
            .map_or(0, |attached| attached.clock.now_ns());
        let from = Instant::now();
        self.tally.open(from_ns);
        from
    }

    /// Whether the run has started its producers.
    pub fn attached(&self) -> bool {
        self.producers.get().is_some()
    }

    /// Pauses the producers (within a few milliseconds: see [`loadgen::CONTROL_POLL`]).
    pub fn pause(&self) {
        if let Some(attached) = self.producers.get() {
            attached.control.pause();
        }
    }

    /// Resumes them; an open-loop schedule restarts from now.
    pub fn resume(&self) {
        if let Some(attached) = self.producers.get() {
            attached.control.resume();
        }
    }

    /// What the producers offered so far.
    pub fn offered(&self) -> ProducerTotals {
        self.producers
            .get()
            .map(|attached| attached.counters.snapshot())
            .unwrap_or_default()
    }
}
