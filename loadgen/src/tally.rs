//! Deliveries counted by event origin: the events made from a moment on (their
//! [`Event::intended_at_ns`] at or after it) are counted apart from those made before, with
//! their latency. A tuner's probe opens a window when its producers start and reads what
//! its own events did, however many events of an earlier probe are still being delivered.

use std::sync::{Mutex, PoisonError};

use hdrhistogram::Histogram;

use crate::event::Event;

/// What the events of the open window did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OriginCounts {
    /// Events made in the window and delivered.
    pub delivered: u64,
    /// Their summed weight.
    pub delivered_bytes: u64,
    /// Events made before the window and delivered while it was open.
    pub earlier: u64,
    /// Enqueue-to-delivery p99 of the window's events, microseconds (0 when none).
    pub p99_us: u64,
    /// Their largest latency, microseconds.
    pub max_us: u64,
}

#[derive(Debug)]
struct Window {
    /// The window's start on the run's clock: events stamped at or after it
    /// are the window's. A reading of the clock events are stamped on, not an
    /// `Instant` converted at every count (a conversion is off by the clocks'
    /// drift since).
    from_ns: u64,
    counts: OriginCounts,
    latency: Histogram<u64>,
}

/// Deliveries by origin, shared by the consumers (or sink) of a run and the code that
/// opens windows. Closed (counting nothing, costing one uncontended lock per batch)
/// until [`open`](Self::open).
///
/// ```
/// use std::time::Duration;
/// use loadgen::{Clock, Event, OriginTally};
///
/// let clock = Clock::new();
/// let tally = OriginTally::new();
/// let old = Event::new(vec![0; 10], clock.now_ns(), 0, 0);
/// std::thread::sleep(Duration::from_millis(1));
/// tally.open(clock.now_ns());
/// let new = Event::new(vec![0; 20], clock.now_ns(), 0, 1);
/// tally.count(clock.now_ns(), [&old, &new].into_iter());
/// let counts = tally.take();
/// assert_eq!((counts.delivered, counts.delivered_bytes, counts.earlier), (1, 20, 1));
/// assert_eq!(tally.take().delivered, 0, "closed by take");
/// ```
#[derive(Debug, Default)]
pub struct OriginTally {
    window: Mutex<Option<Window>>,
}

impl OriginTally {
    /// A closed tally.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts counting afresh: events stamped at or after `from_ns` (a reading
    /// of the run's [`Clock`](crate::Clock), the one events are stamped on)
    /// are the window's.
    pub fn open(&self, from_ns: u64) {
        let latency = Histogram::new_with_bounds(1, 3_600_000_000, 3)
            .expect("static histogram bounds are valid");
        *self.lock() = Some(Window {
            from_ns,
            counts: OriginCounts::default(),
            latency,
        });
    }

    /// What the window's events did so far (all zero when closed).
    pub fn snapshot(&self) -> OriginCounts {
        self.lock().as_ref().map(Window::counts).unwrap_or_default()
    }

    /// What the window's events did, and closes it.
    pub fn take(&self) -> OriginCounts {
        self.lock()
            .take()
            .as_ref()
            .map(Window::counts)
            .unwrap_or_default()
    }

    /// Counts delivered `events` at `now_ns` (on the run's clock).
    pub fn count<'a>(&self, now_ns: u64, events: impl Iterator<Item = &'a Event>) {
        let mut window = self.lock();
        let Some(w) = window.as_mut() else {
            return;
        };
        for event in events {
            if event.intended_at_ns < w.from_ns {
                w.counts.earlier += 1;
                continue;
            }
            w.counts.delivered += 1;
            w.counts.delivered_bytes += event.payload.len() as u64;
            w.latency.saturating_record(event.latency_us(now_ns));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Window>> {
        self.window.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Window {
    fn counts(&self) -> OriginCounts {
        let (p99_us, max_us) = if self.latency.is_empty() {
            (0, 0)
        } else {
            (self.latency.value_at_quantile(0.99), self.latency.max())
        };
        OriginCounts {
            p99_us,
            max_us,
            ..self.counts
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(intended_at_ns: u64, len: usize) -> Event {
        Event::new(vec![0; len], intended_at_ns, 0, intended_at_ns)
    }

    #[test]
    fn the_window_starts_exactly_at_its_reading() {
        let tally = OriginTally::new();
        let (before, at, after) = (event(999, 1), event(1_000, 10), event(5_000, 100));
        tally.count(2_000, [&before].into_iter());
        assert_eq!(
            tally.snapshot(),
            OriginCounts::default(),
            "closed: nothing counted"
        );
        tally.open(1_000);
        tally.count(6_000, [&before, &at, &after].into_iter());
        let counts = tally.take();
        assert_eq!(
            (counts.delivered, counts.delivered_bytes, counts.earlier),
            (2, 110, 1),
            "the event stamped at the window's start is the window's, the one a nanosecond before is not"
        );
        // Latencies of the window's events only: 5 us and 1 us.
        assert_eq!(counts.max_us, 5);
    }
}
