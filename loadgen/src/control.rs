//! Live control of running producers: rate, pause, resume, stop.

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

/// The longest a producer sleeps between looks at its [`ProducerControl`],
/// so every change takes effect within about this long (plus one offer).
pub const CONTROL_POLL: Duration = Duration::from_millis(5);

const RUNNING: u8 = 0;
const PAUSED: u8 = 1;
const STOPPED: u8 = 2;

/// `rate` value meaning "no pacing" (closed loop).
const UNLIMITED: u64 = u64::MAX;

/// Shared switches that running producers obey without a restart.
///
/// Producers read it once per event (a single relaxed load of a counter
/// that changes only when a setting does) and at least every
/// [`CONTROL_POLL`] while sleeping, so a change takes effect within ~10 ms.
/// Pausing parks producers in short sleeps, never a spin. Changing the rate
/// or resuming restarts each open-loop producer's schedule from "now": time
/// spent paused is not owed as a burst afterwards.
///
/// # Examples
///
/// ```
/// use loadgen::ProducerControl;
///
/// let control = ProducerControl::new(Some(10_000));
/// assert_eq!(control.rate(), Some(10_000));
/// control.set_rate(None); // as fast as admission allows
/// control.pause();
/// assert!(control.is_paused());
/// control.resume();
/// control.stop();
/// control.resume(); // stop is final
/// assert!(control.is_stopped());
/// ```
#[derive(Debug)]
pub struct ProducerControl {
    state: AtomicU8,
    rate: AtomicU64,
    /// Bumped by every change, so a producer sees any change with one load.
    epoch: AtomicU64,
}

impl ProducerControl {
    /// Running, at `rate` events per second in total (open loop), or as fast
    /// as admission allows when `None` (closed loop).
    pub fn new(rate: Option<u64>) -> Self {
        Self {
            state: AtomicU8::new(RUNNING),
            rate: AtomicU64::new(rate.unwrap_or(UNLIMITED)),
            epoch: AtomicU64::new(0),
        }
    }

    /// Changes the total rate: `Some(n)` paces all producers together at `n`
    /// events per second (`Some(0)` idles them), `None` lets them run as fast
    /// as admission allows.
    pub fn set_rate(&self, rate: Option<u64>) {
        self.rate
            .store(rate.unwrap_or(UNLIMITED), Ordering::Relaxed);
        self.changed();
    }

    /// The current total rate, `None` when unlimited.
    pub fn rate(&self) -> Option<u64> {
        match self.rate.load(Ordering::Relaxed) {
            UNLIMITED => None,
            n => Some(n),
        }
    }

    /// Stops producing until [`resume`](Self::resume); no effect once stopped.
    pub fn pause(&self) {
        self.transition(RUNNING, PAUSED);
    }

    /// Resumes after [`pause`](Self::pause); no effect once stopped.
    pub fn resume(&self) {
        self.transition(PAUSED, RUNNING);
    }

    /// Stops the producers for good: their threads finish.
    pub fn stop(&self) {
        self.state.store(STOPPED, Ordering::Relaxed);
        self.changed();
    }

    /// Whether producers are paused (and not stopped).
    pub fn is_paused(&self) -> bool {
        self.state.load(Ordering::Relaxed) == PAUSED
    }

    /// Whether [`stop`](Self::stop) was called.
    pub fn is_stopped(&self) -> bool {
        self.state.load(Ordering::Relaxed) == STOPPED
    }

    /// A number that changes whenever any setting does.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    fn transition(&self, from: u8, to: u8) {
        if self
            .state
            .compare_exchange(from, to, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            self.changed();
        }
    }

    /// Publishes a change; Release pairs with [`epoch`](Self::epoch)'s
    /// Acquire so a producer that sees the new epoch sees the new settings.
    fn changed(&self) {
        self.epoch.fetch_add(1, Ordering::Release);
    }
}

impl Default for ProducerControl {
    /// Running, unlimited.
    fn default() -> Self {
        Self::new(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_change_moves_the_epoch() {
        let control = ProducerControl::new(None);
        let mut last = control.epoch();
        let mut step = |f: &dyn Fn(&ProducerControl)| {
            f(&control);
            let now = control.epoch();
            assert_ne!(now, last);
            last = now;
        };
        step(&|c| c.set_rate(Some(5)));
        step(&|c| c.pause());
        step(&|c| c.resume());
        step(&|c| c.stop());
    }

    #[test]
    fn redundant_transitions_change_nothing() {
        let control = ProducerControl::new(Some(1));
        let epoch = control.epoch();
        control.resume();
        assert_eq!(control.epoch(), epoch);
        control.stop();
        control.pause();
        assert!(control.is_stopped() && !control.is_paused());
    }

    #[test]
    fn rate_round_trips() {
        let control = ProducerControl::default();
        assert_eq!(control.rate(), None);
        control.set_rate(Some(0));
        assert_eq!(control.rate(), Some(0));
    }
}
