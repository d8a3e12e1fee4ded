//! The simulated consumer's work time, as pure arithmetic on instants.
//!
//! A batch costs `delay_per_batch + cost_per_kib * KiB ± jitter`. The
//! consumer is paced by deadline rather than by sleeping each cost in turn:
//! it keeps `busy_until` and advances it by each batch's cost. `thread::sleep`
//! overshoots by ~50–80 µs on Linux; sleeping `cost` per batch would add that
//! to every batch and make the consumer slower than its configured bound
//! (`max_batch_bytes / delay`). With a deadline, a batch that was already
//! waiting when the consumer woke starts at the previous deadline, so the
//! overshoot is paid back instead of accumulating.

use std::time::{Duration, Instant};

use fastrand::Rng;

/// How far behind its deadlines the consumer may fall and still catch up by
/// working without pause. Lateness beyond this (the thread was descheduled
/// for a long while) is forgiven rather than repaid in a burst. It is long
/// on purpose: a shorter one forgives the time a busy machine keeps the
/// consumer off the CPU, and the consumer then beats its own bound.
pub const MAX_CATCH_UP: Duration = Duration::from_secs(1);

/// The consumer's simulated work: its cost per batch and its stalls.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use loadgen::{ConsumerSim, Stall};
///
/// // Tempo's soak consumer: 200 µs per batch.
/// let sim = ConsumerSim {
///     delay_per_batch: Duration::from_micros(200),
///     ..ConsumerSim::default()
/// };
/// assert!(!sim.is_free());
/// let stalling = ConsumerSim {
///     stall: Some(Stall { every: Duration::from_secs(10), duration: Duration::from_secs(1) }),
///     ..ConsumerSim::default()
/// };
/// assert!(!stalling.is_free());
/// assert!(ConsumerSim::default().is_free());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConsumerSim {
    /// Fixed cost of every batch (settable live through
    /// [`ConsumerControl`](crate::ConsumerControl)).
    pub delay_per_batch: Duration,
    /// Additional cost per KiB (1024 bytes) of batch weight.
    pub cost_per_kib: Duration,
    /// Each batch's cost varies uniformly by up to this much either way
    /// (never below zero).
    pub jitter: Duration,
    /// Periodic stalls during which nothing is consumed.
    pub stall: Option<Stall>,
    /// Seed for the jitter.
    pub seed: u64,
}

impl ConsumerSim {
    /// Whether batches cost nothing at all (the consumer then never sleeps
    /// and never reads the clock for pacing).
    pub fn is_free(&self) -> bool {
        self.delay_per_batch.is_zero()
            && self.cost_per_kib.is_zero()
            && self.jitter.is_zero()
            && self.stall.is_none()
    }
}

/// A periodic stall: the consumer stops for `duration` at every multiple of
/// `every` after it starts (`duration` should be shorter than `every`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stall {
    /// Time between stall starts (must be non-zero to have effect).
    pub every: Duration,
    /// How long each stall lasts.
    pub duration: Duration,
}

/// The cost of one batch of `bytes` bytes.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use loadgen::batch_cost;
///
/// let mut rng = fastrand::Rng::with_seed(1);
/// let us = Duration::from_micros;
/// // 200 µs + 10 µs per KiB * 4 KiB, no jitter:
/// assert_eq!(batch_cost(us(200), us(10), Duration::ZERO, 4096, &mut rng), us(240));
/// ```
pub fn batch_cost(
    delay: Duration,
    per_kib: Duration,
    jitter: Duration,
    bytes: usize,
    rng: &mut Rng,
) -> Duration {
    let per_kib_ns = per_kib.as_nanos() * bytes as u128 / 1024;
    let base_ns = (delay.as_nanos() + per_kib_ns) as i128;
    let jitter_ns = jitter.as_nanos().min(u64::MAX as u128 / 2) as u64;
    let offset = if jitter_ns == 0 {
        0
    } else {
        i128::from(rng.u64(..=2 * jitter_ns)) - i128::from(jitter_ns)
    };
    let total = (base_ns + offset).max(0);
    Duration::from_nanos(u64::try_from(total).unwrap_or(u64::MAX))
}

/// Deadline-based pacing of the consumer (see the module docs).
#[derive(Debug, Clone)]
pub struct Pacer {
    origin: Instant,
    busy_until: Option<Instant>,
    stall: Option<Stall>,
}

impl Pacer {
    /// A pacer whose stall windows count from `origin`.
    pub fn new(origin: Instant, stall: Option<Stall>) -> Self {
        Self {
            origin,
            busy_until: None,
            stall,
        }
    }

    /// Charges a batch that costs `cost`, received at `now`. `waited` says
    /// whether the consumer had to wait for it (it was idle); if not, the
    /// batch was ready while the consumer was still busy, so its work starts
    /// at the previous deadline rather than at `now`. Returns the new
    /// deadline: the consumer should sleep until then (if it is later than
    /// the current time).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use loadgen::Pacer;
    ///
    /// let t0 = Instant::now();
    /// let us = Duration::from_micros;
    /// let mut pacer = Pacer::new(t0, None);
    /// assert_eq!(pacer.charge(t0, true, us(200)), t0 + us(200));
    /// // Woke 70 µs late with the next batch already waiting: the overshoot
    /// // is paid back, not added.
    /// assert_eq!(pacer.charge(t0 + us(270), false, us(200)), t0 + us(400));
    /// ```
    pub fn charge(&mut self, now: Instant, waited: bool, cost: Duration) -> Instant {
        let start = match self.busy_until {
            None => now,
            Some(busy) if waited => busy.max(now),
            Some(busy) => busy.max(now.checked_sub(MAX_CATCH_UP).unwrap_or(busy)),
        };
        let start = self.after_stall(start);
        let deadline = start + cost;
        self.busy_until = Some(deadline);
        deadline
    }

    /// Forgets the work charged so far: the next batch starts when it arrives (after a
    /// stall in progress). For lifted work.
    pub fn reset(&mut self) {
        self.busy_until = None;
    }

    /// The end of the stall window `at` falls in, or `at` when it is outside every stall.
    pub fn stall_end(&self, at: Instant) -> Instant {
        self.after_stall(at)
    }

    /// `at`, or the end of the stall window it falls in.
    fn after_stall(&self, at: Instant) -> Instant {
        let Some(stall) = self.stall else {
            return at;
        };
        let every = stall.every.as_nanos();
        if every == 0 {
            return at;
        }
        let since = at.saturating_duration_since(self.origin).as_nanos();
        let window = since / every;
        if window == 0 || since - window * every >= stall.duration.as_nanos() {
            return at;
        }
        let window_start = u64::try_from(window * every).unwrap_or(u64::MAX);
        self.origin + Duration::from_nanos(window_start) + stall.duration
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    #[test]
    fn oversleep_does_not_accumulate_under_backlog() {
        let t0 = Instant::now();
        let mut pacer = Pacer::new(t0, None);
        let mut now = t0;
        let mut deadline = pacer.charge(now, true, us(200));
        // Each sleep overshoots by 70 µs; batches are always waiting.
        for _ in 0..1_000 {
            now = deadline + us(70);
            deadline = pacer.charge(now, false, us(200));
        }
        // 1001 batches at 200 µs each, plus the final sleep's overshoot only.
        assert_eq!(deadline, t0 + us(200) * 1_001);
        assert_eq!(now - t0, us(200) * 1_000 + us(70));
    }

    #[test]
    fn an_idle_consumer_starts_when_the_batch_arrives() {
        let t0 = Instant::now();
        let mut pacer = Pacer::new(t0, None);
        pacer.charge(t0, true, us(200));
        assert_eq!(pacer.charge(t0 + us(1_000), true, us(200)), t0 + us(1_200));
        // Arriving before the deadline (another consumer's wake-up, say)
        // still queues behind the current work.
        assert_eq!(pacer.charge(t0 + us(1_100), true, us(200)), t0 + us(1_400));
    }

    #[test]
    fn long_lateness_is_forgiven_beyond_the_catch_up_limit() {
        let t0 = Instant::now();
        let mut pacer = Pacer::new(t0, None);
        pacer.charge(t0, true, us(100));
        // Later than the catch-up limit allows, whatever that limit is.
        let late = t0 + MAX_CATCH_UP + Duration::from_millis(50);
        assert_eq!(
            pacer.charge(late, false, us(100)),
            late - MAX_CATCH_UP + us(100)
        );
    }

    #[test]
    fn stalls_push_work_to_the_end_of_the_window() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let stall = Stall {
            every: ms(100),
            duration: ms(10),
        };
        let mut pacer = Pacer::new(t0, Some(stall));
        // Before the first window: unaffected.
        assert_eq!(pacer.charge(t0 + ms(5), true, ms(1)), t0 + ms(6));
        // Inside the window at 100..110 ms: starts at 110 ms.
        assert_eq!(pacer.charge(t0 + ms(103), true, ms(1)), t0 + ms(111));
        // Between windows: unaffected. Second window 200..210 ms.
        assert_eq!(pacer.charge(t0 + ms(150), true, ms(1)), t0 + ms(151));
        assert_eq!(pacer.charge(t0 + ms(209), true, ms(1)), t0 + ms(211));
    }

    #[test]
    fn cost_scales_with_bytes_and_jitter_stays_in_bounds() {
        let mut rng = Rng::with_seed(3);
        let zero = Duration::ZERO;
        assert_eq!(batch_cost(us(200), zero, zero, 1 << 20, &mut rng), us(200));
        assert_eq!(batch_cost(zero, us(1), zero, 32 * 1024, &mut rng), us(32));
        assert_eq!(batch_cost(zero, us(2), zero, 512, &mut rng), us(1));
        let mut seen_low = false;
        let mut seen_high = false;
        for _ in 0..1_000 {
            let cost = batch_cost(us(100), zero, us(50), 0, &mut rng);
            assert!((us(50)..=us(150)).contains(&cost), "{cost:?}");
            seen_low |= cost < us(60);
            seen_high |= cost > us(140);
        }
        assert!(seen_low && seen_high);
        // Jitter larger than the base never goes negative.
        for _ in 0..100 {
            let _ = batch_cost(us(10), zero, us(100), 0, &mut rng);
        }
    }

    #[test]
    fn free_sims_are_detected() {
        assert!(ConsumerSim::default().is_free());
        let sim = ConsumerSim {
            jitter: us(1),
            ..ConsumerSim::default()
        };
        assert!(!sim.is_free());
    }
}
