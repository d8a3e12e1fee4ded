//! What a tuner reaches into a running soak with: the producers' switches and counters,
//! and the deliveries counted by event origin ([`loadgen::OriginTally`]), so each probe
//! measures its own events only.

use std::sync::{Arc, OnceLock};

use loadgen::{OriginTally, ProducerControl, ProducerCounters, ProducerTotals};

/// Handed to a run through [`RunOptions::probe`](crate::run::RunOptions); the run attaches
/// its producers when it starts them.
#[derive(Debug, Default)]
pub struct ProbeHooks {
    /// Deliveries by event origin, counted by the run's consumer (or sink).
    pub tally: Arc<OriginTally>,
    producers: OnceLock<(Arc<ProducerControl>, Arc<ProducerCounters>)>,
}

impl ProbeHooks {
    /// Hooks for one run.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub(crate) fn attach(&self, control: Arc<ProducerControl>, counters: Arc<ProducerCounters>) {
        let _ = self.producers.set((control, counters));
    }

    /// Whether the run has started its producers.
    pub fn attached(&self) -> bool {
        self.producers.get().is_some()
    }

    /// Pauses the producers (within a few milliseconds: see [`loadgen::CONTROL_POLL`]).
    pub fn pause(&self) {
        if let Some((control, _)) = self.producers.get() {
            control.pause();
        }
    }

    /// Resumes them; an open-loop schedule restarts from now.
    pub fn resume(&self) {
        if let Some((control, _)) = self.producers.get() {
            control.resume();
        }
    }

    /// What the producers offered so far.
    pub fn offered(&self) -> ProducerTotals {
        self.producers
            .get()
            .map(|(_, counters)| counters.snapshot())
            .unwrap_or_default()
    }
}
