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
/// let ev = Event::new(vec![0; 100], 0, 3, 41);
/// assert_eq!(ev.weight(), 100);
/// assert_eq!((ev.producer(), ev.seq()), (3, 41));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The payload bytes (moved through the target untouched). A boxed
    /// slice, not a `Vec`: millions of events sit in the buffer during a
    /// soak, and every byte of bookkeeping per event shows in the heap.
    pub payload: Box<[u8]>,
    /// When the event was meant to be sent, in [`Clock`] nanoseconds: the
    /// scheduled time in open loop (so latency includes any time the
    /// producer spent stuck behind the target: coordinated-omission
    /// correction), the actual offer time in closed loop.
    pub intended_at_ns: u64,
    /// The producer index (high 24 bits) and its sequence number (low 40).
    origin: u64,
}

/// Bits of [`Event::seq`]: 2^40 events per producer (over a month at
/// 300k events/s from one producer); the sequence wraps beyond that.
const SEQ_BITS: u32 = 40;

impl Event {
    /// An event from `producer`'s `seq`-th payload. `payload` should be
    /// allocated at exactly its length (generators do), so boxing it does
    /// not reallocate.
    pub fn new(payload: Vec<u8>, intended_at_ns: u64, producer: u32, seq: u64) -> Self {
        let producer = u64::from(producer) & ((1 << (64 - SEQ_BITS)) - 1);
        Event {
            payload: payload.into_boxed_slice(),
            intended_at_ns,
            origin: producer << SEQ_BITS | (seq & ((1 << SEQ_BITS) - 1)),
        }
    }

    /// Index of the producer that made it (its low 24 bits).
    pub fn producer(&self) -> u32 {
        (self.origin >> SEQ_BITS) as u32
    }

    /// The producer's sequence number for it, from 0 (its low 40 bits).
    pub fn seq(&self) -> u64 {
        self.origin & ((1 << SEQ_BITS) - 1)
    }

    /// Its enqueue-to-delivery latency when delivered at `at_ns` ([`Clock`]
    /// nanoseconds), in whole microseconds: 0 for an intended time in the future.
    ///
    /// # Examples
    ///
    /// ```
    /// use loadgen::Event;
    ///
    /// let event = Event::new(vec![1], 2_000, 0, 0);
    /// assert_eq!(event.latency_us(5_999), 3);
    /// assert_eq!(event.latency_us(1_000), 0);
    /// ```
    #[inline]
    pub fn latency_us(&self, at_ns: u64) -> u64 {
        at_ns.saturating_sub(self.intended_at_ns) / 1_000
    }
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
    fn an_event_is_32_bytes_and_keeps_its_origin() {
        assert_eq!(std::mem::size_of::<Event>(), 32);
        let ev = Event::new(vec![1, 2, 3], 9, 17, (1 << 40) + 5);
        assert_eq!((ev.producer(), ev.seq(), ev.intended_at_ns), (17, 5, 9));
        assert_eq!(&*ev.payload, [1, 2, 3]);
    }

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
