//! The event producers send, and the run clock its timestamps count from.

use std::time::{Duration, Instant};

/// The run's shared time origin: every [`Event::intended_at_ns`] and every
/// latency is measured from the same start, so producers and consumers on
/// different threads agree on time without wall-clock reads.
///
/// [`now_ns`](Self::now_ns) reads the processor's time-stamp counter where it
/// is reliable (through `quanta`: about 10 ns a reading on a 2-processor
/// x86-64 virtual machine, against about 25 ns for the OS clock behind
/// [`Instant::now`]), and the OS clock elsewhere. Producers stamp every event
/// with it, so it is the clock event times are compared on: a latency is the
/// difference of two `now_ns` readings. [`ns_at`](Self::ns_at) and
/// [`instant_at`](Self::instant_at) convert between it and [`Instant`]s
/// through the present moment, so they are exact to within the two clocks'
/// drift over how far from now the instant is. The counter's rate is
/// calibrated against the OS clock once, so the drift is their difference in
/// rate: tens of parts per million on a quiet host (tens of microseconds for
/// an instant a second away), more where an NTP daemon steers the OS clock
/// (139 ppm seen on a CI host).
///
/// `Clock` is `Copy`; hand the same value to every thread of a run. The first
/// clock of a process calibrates the counter against the OS clock, which can
/// take up to 200 ms.
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
/// assert!(clock.ns_at(clock.start()) < 1_000_000, "within a millisecond of the origin");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    start: Instant,
    /// The fast clock's reading at the clock's making (always a reading
    /// this process took, so any origin can be told from it).
    fast: quanta::Instant,
    /// Nanoseconds from that reading to `start` on the OS clock: negative
    /// for an origin in the past (hours before, or before the machine
    /// booted), positive for one in the future.
    origin: i128,
}

impl Clock {
    /// A clock whose origin is now.
    pub fn new() -> Self {
        // The process's first fast reading calibrates the counter (up to
        // 200 ms): done before the origin is taken, so a new clock reads
        // about 0, not the calibration's length.
        let _ = quanta::Instant::now();
        Self::starting_at(Instant::now())
    }

    /// A clock whose origin is `start`: in the past (however far) or in the
    /// future.
    ///
    /// Two clocks made at different moments from the same origin disagree
    /// by the clocks' difference in rate times the time between their
    /// making (tens of microseconds for seconds apart): give every thread a
    /// copy of one clock instead.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use loadgen::Clock;
    ///
    /// let start = Instant::now();
    /// let clock = Clock::starting_at(start);
    /// let ns = clock.ns_at(start + Duration::from_millis(3));
    /// assert!(ns.abs_diff(3_000_000) < 100_000, "{ns}");
    ///
    /// // An origin an hour ago reads an hour (and more) now.
    /// let hour = Duration::from_secs(3600);
    /// if let Some(earlier) = Instant::now().checked_sub(hour) {
    ///     assert!(Clock::starting_at(earlier).now_ns() >= 3_600_000_000_000);
    /// }
    /// ```
    pub fn starting_at(start: Instant) -> Self {
        let (fast, now) = paired();
        Self {
            start,
            fast,
            origin: signed_ns(start, now),
        }
    }

    /// The origin.
    pub fn start(&self) -> Instant {
        self.start
    }

    /// Nanoseconds since the origin, on the fast clock (0 before it).
    #[inline]
    pub fn now_ns(&self) -> u64 {
        clamp_ns(self.fast_ns(quanta::Instant::now()))
    }

    /// Nanoseconds from the origin to the fast clock's reading `at`
    /// (negative before the origin).
    #[inline]
    fn fast_ns(&self, at: quanta::Instant) -> i128 {
        let since = at.saturating_duration_since(self.fast).as_nanos();
        // A `u128` of nanoseconds since this process started fits.
        i128::try_from(since).unwrap_or(i128::MAX) - self.origin
    }

    /// Nanoseconds from the origin to `at` as [`now_ns`](Self::now_ns) would
    /// have read them then (0 if `at` is earlier; saturates after ~584
    /// years). Converted through the present moment: exact to within the
    /// two clocks' drift over how far from now `at` is (see [`Clock`]), so an
    /// instant closer to the origin than that drift can read 0 too.
    pub fn ns_at(&self, at: Instant) -> u64 {
        let (fast, now) = paired();
        clamp_ns(self.fast_ns(fast) + signed_ns(at, now))
    }

    /// The instant `now_ns` read `ns` nanoseconds after the origin,
    /// converted through the present moment as [`ns_at`](Self::ns_at) is
    /// (the origin itself if that instant cannot be represented).
    ///
    /// # Examples
    ///
    /// ```
    /// use loadgen::Clock;
    ///
    /// let clock = Clock::new();
    /// let ns = clock.ns_at(clock.instant_at(1_500_000));
    /// assert!(ns.abs_diff(1_500_000) < 100_000, "{ns}");
    /// ```
    pub fn instant_at(&self, ns: u64) -> Instant {
        let (fast, now) = paired();
        let ahead = i128::from(ns) - self.fast_ns(fast);
        let by = Duration::from_nanos(u64::try_from(ahead.unsigned_abs()).unwrap_or(u64::MAX));
        let at = if ahead >= 0 {
            now.checked_add(by)
        } else {
            now.checked_sub(by)
        };
        at.unwrap_or(self.start)
    }
}

/// Nanoseconds from `from` to `to`, negative if `to` is earlier.
fn signed_ns(to: Instant, from: Instant) -> i128 {
    match to.checked_duration_since(from) {
        Some(ahead) => i128::try_from(ahead.as_nanos()).unwrap_or(i128::MAX),
        None => -i128::try_from(from.duration_since(to).as_nanos()).unwrap_or(i128::MAX),
    }
}

/// A signed count of nanoseconds as a reading: 0 below, `u64::MAX` above.
#[inline]
fn clamp_ns(ns: i128) -> u64 {
    u64::try_from(ns.max(0)).unwrap_or(u64::MAX)
}

/// A reading of both clocks at one moment: the fast clock's between two of
/// the OS clock's, retried while a preemption splits them (at most 8 times).
fn paired() -> (quanta::Instant, Instant) {
    let read = || {
        let before = Instant::now();
        let fast = quanta::Instant::now();
        let split = before.elapsed();
        (split, (fast, before + split / 2))
    };
    let mut best = read();
    for _ in 1..8 {
        if best.0 < Duration::from_micros(2) {
            break;
        }
        let next = read();
        if next.0 < best.0 {
            best = next;
        }
    }
    best.1
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
    fn the_fast_clock_and_the_os_clock_agree_through_a_conversion() {
        let clock = Clock::new();
        std::thread::sleep(Duration::from_millis(5));
        // Two readings a preemption may split: bounded by the time they took.
        let began = Instant::now();
        let (fast, os) = (clock.now_ns(), clock.ns_at(Instant::now()));
        let split = duration_ns(began.elapsed());
        assert!(fast.abs_diff(os) <= split + 100_000, "{fast} against {os}");
        // At least the 5 ms slept, less what a fast clock running up to
        // 1000 ppm slower than the OS clock loses over it.
        assert!(fast + 5_000 >= 5_000_000, "{fast}");
        let began = Instant::now();
        let later = clock.instant_at(clock.now_ns() + 2_000_000);
        let ahead = later.saturating_duration_since(Instant::now());
        let took = began.elapsed();
        let slack = Duration::from_micros(100);
        assert!(
            ahead + took + slack >= Duration::from_millis(2)
                && ahead <= Duration::from_millis(2) + slack,
            "{ahead:?} ahead ({took:?} between the readings)"
        );
    }

    #[test]
    fn stamps_taken_on_one_thread_are_not_later_than_readings_after_on_another() {
        let clock = Clock::new();
        for _ in 0..100 {
            let stamped = std::thread::spawn(move || clock.now_ns())
                .join()
                .expect("thread");
            assert!(clock.now_ns() >= stamped);
        }
    }

    #[test]
    fn durations_saturate() {
        assert_eq!(duration_ns(Duration::MAX), u64::MAX);
        assert_eq!(duration_ns(Duration::from_micros(7)), 7_000);
    }
}
