//! The event producers send, and the run clock its timestamps count from.

use std::time::{Duration, Instant};

/// The run's shared time origin: every [`Event::intended_at_ns`] and every
/// latency is measured from the same start [`Instant`], so producers and
/// consumers on different threads agree on time without wall-clock reads.
///
/// `Clock` is `Copy`; hand the same value to every thread of a run.
///
/// # Examples
///
/// ```
/// use loadgen::Clock;
///
/// let clock = Clock::new();
/// let a = clock.now_ns();
/// let b = clock.now_ns();
/// assert!(b >= a);
/// assert_eq!(clock.ns_at(clock.start()), 0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    start: Instant,
}

impl Clock {
    /// A clock whose origin is now.
    pub fn new() -> Self {
        Self::starting_at(Instant::now())
    }

    /// A clock whose origin is `start`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use loadgen::Clock;
    ///
    /// let start = Instant::now();
    /// let clock = Clock::starting_at(start);
    /// assert_eq!(clock.ns_at(start + Duration::from_micros(3)), 3_000);
    /// ```
    pub fn starting_at(start: Instant) -> Self {
        Self { start }
    }

    /// The origin.
    pub fn start(&self) -> Instant {
        self.start
    }

    /// Nanoseconds since the origin.
    pub fn now_ns(&self) -> u64 {
        self.ns_at(Instant::now())
    }

    /// Nanoseconds from the origin to `at` (0 if `at` is earlier; saturates
    /// after ~584 years).
    pub fn ns_at(&self, at: Instant) -> u64 {
        duration_ns(at.saturating_duration_since(self.start))
    }

    /// The instant `ns` nanoseconds after the origin.
    ///
    /// # Examples
    ///
    /// ```
    /// use loadgen::Clock;
    ///
    /// let clock = Clock::new();
    /// assert_eq!(clock.ns_at(clock.instant_at(1_500)), 1_500);
    /// ```
    pub fn instant_at(&self, ns: u64) -> Instant {
        self.start + Duration::from_nanos(ns)
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

/// A duration in whole nanoseconds, saturating at `u64::MAX`.
pub(crate) fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// One generated event: the unit producers offer and consumers receive.
///
/// Its [`Weight`](dispatcher::Weight) is the payload length, so admission is
/// charged for exactly the bytes the event holds beyond its fixed header.
///
/// # Examples
///
/// ```
/// use dispatcher::Weight;
/// use loadgen::Event;
///
/// let ev = Event { payload: vec![0; 100], intended_at_ns: 0, producer: 3, seq: 41 };
/// assert_eq!(ev.weight(), 100);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The payload bytes (moved through the target untouched).
    pub payload: Vec<u8>,
    /// When the event was meant to be sent, in [`Clock`] nanoseconds: the
    /// scheduled time in open loop (so latency includes any time the
    /// producer spent stuck behind the target: coordinated-omission
    /// correction), the actual offer time in closed loop.
    pub intended_at_ns: u64,
    /// Index of the producer that made it.
    pub producer: u32,
    /// The producer's sequence number for it, from 0.
    pub seq: u64,
}

impl dispatcher::Weight for Event {
    fn weight(&self) -> usize {
        self.payload.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_before_the_origin_read_zero() {
        let now = Instant::now();
        let clock = Clock::starting_at(now + Duration::from_secs(1));
        assert_eq!(clock.ns_at(now), 0);
    }

    #[test]
    fn durations_saturate() {
        assert_eq!(duration_ns(Duration::MAX), u64::MAX);
        assert_eq!(duration_ns(Duration::from_micros(7)), 7_000);
    }
}
