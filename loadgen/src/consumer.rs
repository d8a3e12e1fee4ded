//! The consumer loop: receive batches, record latency, count, simulate work.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use dispatcher::FlushReason;
use fastrand::Rng;
use hdrhistogram::sync::Recorder;

use crate::bookkeeper::Books;
use crate::event::{Clock, duration_ns};
use crate::pacing::{ConsumerSim, Pacer, Stall, batch_cost};
use crate::source::{BatchSource, DeliveredBatch, SourceError};
use crate::tally::OriginTally;

/// The longest a consumer goes without looking at its latency recorder, in
/// a blocking receive or a simulated-work sleep. A histogram refresh waits
/// for every recorder to check in, so this bounds how long the sampler's
/// `SyncHistogram::refresh` can block on an idle or sleeping consumer.
pub const RECORDER_POLL: Duration = Duration::from_millis(5);

/// A [`ConsumerSim`] whose per-batch delay and per-KiB cost can be changed
/// while consumers run (a dashboard's "consumer delay" knob); consumers read
/// them once per batch.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use loadgen::{ConsumerControl, ConsumerSim};
///
/// let control = ConsumerControl::new(ConsumerSim::default());
/// control.set_delay_per_batch(Duration::from_micros(200));
/// assert_eq!(control.sim().delay_per_batch, Duration::from_micros(200));
/// ```
#[derive(Debug)]
pub struct ConsumerControl {
    delay_ns: AtomicU64,
    cost_per_kib_ns: AtomicU64,
    /// The simulated work was lifted (a drain): cut the current work short.
    lifted: AtomicBool,
    /// Stop sleeping at once, stall or not (the drain deadline has passed).
    aborted: AtomicBool,
    /// Take nothing more from the source (the drain deadline has passed).
    stopped: AtomicBool,
    /// Events the consumer left in its source when it was stopped.
    left: AtomicU64,
    /// When the consumer last finished counting a batch, in nanoseconds
    /// after `epoch` (0: never).
    last_delivery_ns: AtomicU64,
    epoch: Instant,
    jitter: Duration,
    stall: Option<Stall>,
    seed: u64,
}

impl ConsumerControl {
    /// Starts from `sim`.
    pub fn new(sim: ConsumerSim) -> Self {
        Self {
            delay_ns: AtomicU64::new(duration_ns(sim.delay_per_batch)),
            cost_per_kib_ns: AtomicU64::new(duration_ns(sim.cost_per_kib)),
            lifted: AtomicBool::new(false),
            aborted: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            left: AtomicU64::new(0),
            last_delivery_ns: AtomicU64::new(0),
            epoch: Instant::now(),
            jitter: sim.jitter,
            stall: sim.stall,
            seed: sim.seed,
        }
    }

    /// Changes the fixed cost of every batch from the next batch on.
    pub fn set_delay_per_batch(&self, delay: Duration) {
        self.delay_ns.store(duration_ns(delay), Ordering::Relaxed);
    }

    /// Changes the cost per KiB from the next batch on.
    pub fn set_cost_per_kib(&self, cost: Duration) {
        self.cost_per_kib_ns
            .store(duration_ns(cost), Ordering::Relaxed);
    }

    /// Lifts the simulated work for good (a drain): the per-batch delay and per-KiB cost
    /// become zero, and a consumer in the middle of a batch's work stops it within
    /// [`RECORDER_POLL`]. A stall in progress goes on (see [`abort`](Self::abort)).
    pub fn lift(&self) {
        self.set_delay_per_batch(Duration::ZERO);
        self.set_cost_per_kib(Duration::ZERO);
        self.lifted.store(true, Ordering::Release);
    }

    /// Ends every sleep at once, stalls included, within [`RECORDER_POLL`]: for a deadline
    /// that has passed. The consumer goes on receiving (without simulated work) until its
    /// source is closed.
    pub fn abort(&self) {
        self.lift();
        self.aborted.store(true, Ordering::Release);
    }

    /// Ends the consumer: [`abort`](Self::abort), and it takes no further batch; what is
    /// still in its source stays there, counted in [`left`](Self::left). For a drain
    /// whose deadline has passed over a source that would otherwise be emptied whatever
    /// it holds (a reference channel).
    pub fn stop(&self) {
        self.abort();
        self.stopped.store(true, Ordering::Release);
    }

    /// The events a stopped consumer left in its source (0 until it stopped).
    pub fn left(&self) -> u64 {
        self.left.load(Ordering::Acquire)
    }

    /// When the consumer last counted a batch as delivered, if it ever did:
    /// the end of a drain, measured without waiting for the thread.
    ///
    /// # Examples
    ///
    /// ```
    /// use loadgen::{ConsumerControl, ConsumerSim};
    /// assert!(ConsumerControl::new(ConsumerSim::default()).last_delivery().is_none());
    /// ```
    pub fn last_delivery(&self) -> Option<Instant> {
        match self.last_delivery_ns.load(Ordering::Acquire) {
            0 => None,
            ns => Some(self.epoch + Duration::from_nanos(ns)),
        }
    }

    fn note_delivery(&self, at: Instant) {
        let ns =
            u64::try_from(at.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX);
        self.last_delivery_ns.store(ns.max(1), Ordering::Release);
    }

    fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    fn is_lifted(&self) -> bool {
        self.lifted.load(Ordering::Acquire)
    }

    fn is_aborted(&self) -> bool {
        self.aborted.load(Ordering::Acquire)
    }

    /// The simulation as it stands now.
    pub fn sim(&self) -> ConsumerSim {
        ConsumerSim {
            delay_per_batch: Duration::from_nanos(self.delay_ns.load(Ordering::Relaxed)),
            cost_per_kib: Duration::from_nanos(self.cost_per_kib_ns.load(Ordering::Relaxed)),
            jitter: self.jitter,
            stall: self.stall,
            seed: self.seed,
        }
    }
}

/// Delivery counts shared by one or more consumers; updated once per batch.
#[repr(align(128))]
#[derive(Debug, Default)]
pub struct ConsumerCounters {
    delivered: AtomicU64,
    delivered_bytes: AtomicU64,
    batches: AtomicU64,
    by_reason: [AtomicU64; FlushReason::ALL.len()],
    work_ns: AtomicU64,
    /// Also counts deliveries by event origin, when given.
    tally: Option<Arc<OriginTally>>,
}

impl ConsumerCounters {
    /// All zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// All zero, also counting every delivered batch into `tally` by event origin.
    pub fn with_tally(tally: Arc<OriginTally>) -> Self {
        Self {
            tally: Some(tally),
            ..Self::default()
        }
    }

    /// The origin tally, if there is one.
    pub fn tally(&self) -> Option<&OriginTally> {
        self.tally.as_deref()
    }

    /// The counts so far.
    pub fn snapshot(&self) -> ConsumerTotals {
        ConsumerTotals {
            delivered: self.delivered.load(Ordering::Relaxed),
            delivered_bytes: self.delivered_bytes.load(Ordering::Relaxed),
            batches: self.batches.load(Ordering::Relaxed),
            batches_by_reason: self.by_reason.each_ref().map(|c| c.load(Ordering::Relaxed)),
            work_ns: self.work_ns.load(Ordering::Relaxed),
        }
    }

    /// Counts one batch delivered somewhere else than [`run_consumer`] (a
    /// real sink, say): its events, their bytes and its flush reason.
    pub fn count_batch(&self, events: u64, bytes: u64, reason: FlushReason) {
        let mut tally = ConsumerTotals {
            delivered: events,
            delivered_bytes: bytes,
            batches: 1,
            ..ConsumerTotals::default()
        };
        if let Some(i) = reason_index(reason) {
            tally.batches_by_reason[i] = 1;
        }
        self.add(&tally);
    }

    fn add(&self, batch: &ConsumerTotals) {
        self.delivered.fetch_add(batch.delivered, Ordering::Relaxed);
        self.delivered_bytes
            .fetch_add(batch.delivered_bytes, Ordering::Relaxed);
        self.batches.fetch_add(batch.batches, Ordering::Relaxed);
        for (counter, n) in self.by_reason.iter().zip(batch.batches_by_reason) {
            if n > 0 {
                counter.fetch_add(n, Ordering::Relaxed);
            }
        }
        if batch.work_ns > 0 {
            self.work_ns.fetch_add(batch.work_ns, Ordering::Relaxed);
        }
    }
}

/// Consumer counts at one moment (or one consumer's, from [`run_consumer`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ConsumerTotals {
    /// Events received.
    pub delivered: u64,
    /// Summed weight of the events received, in bytes.
    pub delivered_bytes: u64,
    /// Batches received.
    pub batches: u64,
    /// Batches per flush reason, in [`FlushReason::ALL`] order (batches
    /// from sources without reasons are counted in `batches` only).
    pub batches_by_reason: [u64; FlushReason::ALL.len()],
    /// Simulated work charged, in nanoseconds (stalls excluded).
    pub work_ns: u64,
}

impl ConsumerTotals {
    /// Batches cut for `reason`.
    ///
    /// # Examples
    ///
    /// ```
    /// use dispatcher::FlushReason;
    /// use loadgen::ConsumerTotals;
    ///
    /// let totals = ConsumerTotals { batches_by_reason: [4, 0, 0, 0, 1, 0], ..Default::default() };
    /// assert_eq!(totals.batches_for(FlushReason::Interval), 4);
    /// assert_eq!(totals.batches_for(FlushReason::Drain), 1);
    /// ```
    pub fn batches_for(&self, reason: FlushReason) -> u64 {
        reason_index(reason).map_or(0, |i| self.batches_by_reason[i])
    }
}

fn reason_index(reason: FlushReason) -> Option<usize> {
    FlushReason::ALL.iter().position(|&r| r == reason)
}

/// Receives batches from `source` until it is closed and drained.
///
/// For each batch it adds the batch to `counters`, stays busy for the
/// batch's simulated cost (see [`Pacer`]) while holding it, as a real
/// consumer writing it downstream would, and then keeps its books: every event's
/// latency (the instant the batch was received minus
/// [`Event::intended_at_ns`](crate::Event::intended_at_ns), in microseconds)
/// is recorded into `latency` when given, and the events are freed. Once the
/// work is [lifted](ConsumerControl::lift) for a drain, the bookkeeping moves to a
/// thread beside the consumer's (`<name>-books`), so the consumer takes each
/// next batch without waiting for it. The function returns once every batch
/// is done with, with this consumer's own totals.
///
/// Pass `latency: None` to skip recording. The owner of the histogram
/// collects samples with
/// [`SyncHistogram::refresh`](hdrhistogram::sync::SyncHistogram::refresh),
/// which waits until every recorder checks in: a waiting or sleeping
/// consumer checks in at least every [`RECORDER_POLL`], so samples land in
/// the sample interval they were recorded in, and a refresh blocks only
/// briefly. (The recorder is deliberately never marked idle: an idle
/// recorder keeps its unsent samples until its next recording after a
/// refresh, which would shift them into a later interval.)
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use hdrhistogram::{Histogram, sync::SyncHistogram};
/// use loadgen::*;
///
/// let (target, batches) = channel(100, 8);
/// for seq in 0..20 {
///     let event = Event::new(vec![0; 10], 0, 0, seq);
///     assert!(matches!(target.offer(event), Offer::Accepted));
/// }
/// drop(target); // closes the channel
///
/// let mut histogram: SyncHistogram<u64> = Histogram::new(3).unwrap().into();
/// let control = ConsumerControl::new(ConsumerSim::default());
/// let counters = ConsumerCounters::new();
/// let totals = run_consumer(batches, &control, &counters, Clock::new(), Some(histogram.recorder()));
/// assert_eq!((totals.delivered, totals.delivered_bytes, totals.batches), (20, 200, 3));
/// assert_eq!(counters.snapshot(), totals);
/// histogram.refresh();
/// assert_eq!(histogram.len(), 20);
/// ```
pub fn run_consumer<S: BatchSource>(
    mut source: S,
    control: &ConsumerControl,
    counters: &ConsumerCounters,
    clock: Clock,
    latency: Option<Recorder<u64>>,
) -> ConsumerTotals {
    consume_from(&mut source, control, counters, clock, latency)
}

/// [`run_consumer`]'s loop, leaving the source to the caller.
fn consume_from<S: BatchSource>(
    source: &mut S,
    control: &ConsumerControl,
    counters: &ConsumerCounters,
    clock: Clock,
    latency: Option<Recorder<u64>>,
) -> ConsumerTotals {
    let name = thread::current()
        .name()
        .map_or_else(|| "books".to_owned(), |name| format!("{name}-books"));
    let mut consumer = Consumer {
        control,
        counters,
        clock,
        books: Books::start(name, latency),
        pacer: Pacer::new(Instant::now(), control.stall),
        rng: Rng::with_seed(control.seed),
        totals: ConsumerTotals::default(),
    };
    // Whether the consumer went idle since its last batch: if not, the next
    // batch was already waiting and its work queues behind the previous one.
    let mut waited = false;
    loop {
        if control.is_stopped() {
            control.left.store(source.abandon(), Ordering::Release);
            break;
        }
        match source.try_recv_batch() {
            Ok(batch) => {
                consumer.consume(batch, waited);
                waited = false;
                continue;
            }
            Err(SourceError::Closed) => break,
            Err(SourceError::Empty) => waited = true,
        }
        match source.recv_batch(RECORDER_POLL) {
            Ok(batch) => {
                consumer.consume(batch, true);
                waited = false;
            }
            Err(SourceError::Empty) => consumer.check_in(),
            Err(SourceError::Closed) => break,
        }
    }
    // Past a deadline (stopped), only the latencies still to record are waited for.
    consumer.books.finish(|| control.is_stopped());
    consumer.totals
}

/// Runs [`run_consumer`] on a new thread named `name`, owning what it needs.
///
/// # Errors
///
/// The OS error if the thread cannot be started.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use loadgen::*;
///
/// let (target, batches) = channel(100, 8);
/// let control = Arc::new(ConsumerControl::new(ConsumerSim::default()));
/// let counters = Arc::new(ConsumerCounters::new());
/// let handle = spawn_consumer("consumer", batches, control, counters.clone(), Clock::new(), None)?;
/// drop(target);
/// assert_eq!(handle.join().unwrap().delivered, 0);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn spawn_consumer<S>(
    name: &str,
    source: S,
    control: std::sync::Arc<ConsumerControl>,
    counters: std::sync::Arc<ConsumerCounters>,
    clock: Clock,
    latency: Option<Recorder<u64>>,
) -> std::io::Result<JoinHandle<ConsumerTotals>>
where
    S: BatchSource + Send + 'static,
{
    let left_name = format!("{name}-left");
    thread::Builder::new().name(name.to_owned()).spawn(move || {
        let mut source = source;
        let totals = consume_from(&mut source, &control, &counters, clock, latency);
        if control.left() > 0 {
            // Stopped at a deadline with events left: whoever joins this thread (a
            // drain keeping its deadline) does not wait for their frees.
            crate::drop_elsewhere(&left_name, source);
        }
        totals
    })
}

/// One consumer's loop state.
struct Consumer<'c> {
    control: &'c ConsumerControl,
    counters: &'c ConsumerCounters,
    clock: Clock,
    /// Records latencies and frees the events (beside this thread during a drain).
    books: Books,
    pacer: Pacer,
    rng: Rng,
    totals: ConsumerTotals,
}

impl Consumer<'_> {
    /// Records, counts and works off one batch, then drops it.
    fn consume<B: DeliveredBatch>(&mut self, mut batch: B, waited: bool) {
        let now = Instant::now();
        // On the clock the producers stamp events with.
        let now_ns = self.clock.now_ns();
        if let Some(tally) = self.counters.tally() {
            tally.count(now_ns, batch.iter());
        }
        let sim = self.control.sim();
        let cost = if sim.is_free() {
            Duration::ZERO
        } else {
            batch_cost(
                sim.delay_per_batch,
                sim.cost_per_kib,
                sim.jitter,
                batch.bytes(),
                &mut self.rng,
            )
        };
        let mut tally = ConsumerTotals {
            delivered: batch.len() as u64,
            delivered_bytes: batch.bytes() as u64,
            batches: 1,
            work_ns: duration_ns(cost),
            ..ConsumerTotals::default()
        };
        if let Some(i) = batch.reason().and_then(reason_index) {
            tally.batches_by_reason[i] = 1;
        }
        // Noted before the counters show the batch, so whoever sees them
        // count it sees a last delivery no later than that.
        self.control.note_delivery(Instant::now());
        self.counters.add(&tally);
        self.totals = add(self.totals, &tally);
        if !sim.is_free() && !self.control.is_aborted() {
            let deadline = self.pacer.charge(now, waited, cost);
            self.sleep_until(deadline);
        }
        self.books
            .keep(&mut batch, now_ns, self.control.is_lifted());
    }

    /// Sleeps until `deadline`, checking in with the recorder at least
    /// every [`RECORDER_POLL`].
    fn sleep_until(&mut self, mut deadline: Instant) {
        let mut lifted = false;
        loop {
            let now = Instant::now();
            if self.control.is_aborted() {
                self.pacer.reset();
                return;
            }
            if !lifted && self.control.is_lifted() {
                // The work is lifted: only a stall in progress still holds the consumer.
                lifted = true;
                self.pacer.reset();
                deadline = deadline.min(self.pacer.stall_end(now));
            }
            if deadline <= now {
                return;
            }
            thread::sleep((deadline - now).min(RECORDER_POLL));
            self.check_in();
        }
    }

    /// Lets a pending histogram refresh collect this recorder's samples.
    fn check_in(&mut self) {
        self.books.check_in();
    }
}

fn add(a: ConsumerTotals, b: &ConsumerTotals) -> ConsumerTotals {
    let mut by_reason = a.batches_by_reason;
    for (sum, n) in by_reason.iter_mut().zip(b.batches_by_reason) {
        *sum += n;
    }
    ConsumerTotals {
        delivered: a.delivered + b.delivered,
        delivered_bytes: a.delivered_bytes + b.delivered_bytes,
        batches: a.batches + b.batches,
        batches_by_reason: by_reason,
        work_ns: a.work_ns + b.work_ns,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;
    use crate::reference::channel;
    use crate::target::{Offer, Target};
    use hdrhistogram::Histogram;
    use hdrhistogram::sync::SyncHistogram;
    use std::sync::Arc;

    fn event(seq: u64) -> Event {
        Event::new(vec![0; 100], 0, 0, seq)
    }

    #[test]
    fn live_settings_reach_the_sim() {
        let sim = ConsumerSim {
            jitter: Duration::from_micros(3),
            seed: 9,
            ..ConsumerSim::default()
        };
        let control = ConsumerControl::new(sim);
        assert_eq!(control.sim(), sim);
        control.set_delay_per_batch(Duration::from_micros(200));
        control.set_cost_per_kib(Duration::from_micros(2));
        let now = control.sim();
        assert_eq!(now.delay_per_batch, Duration::from_micros(200));
        assert_eq!(now.cost_per_kib, Duration::from_micros(2));
        assert_eq!((now.jitter, now.seed), (sim.jitter, 9));
    }

    #[test]
    fn counters_split_batches_by_reason() {
        let counters = ConsumerCounters::new();
        let mut tally = ConsumerTotals {
            delivered: 3,
            delivered_bytes: 30,
            batches: 1,
            ..ConsumerTotals::default()
        };
        tally.batches_by_reason[reason_index(FlushReason::Bytes).unwrap()] = 1;
        counters.add(&tally);
        counters.add(&tally);
        let totals = counters.snapshot();
        assert_eq!((totals.delivered, totals.batches), (6, 2));
        assert_eq!(totals.batches_for(FlushReason::Bytes), 2);
        assert_eq!(totals.batches_for(FlushReason::Interval), 0);
        assert_eq!(add(tally, &tally), totals);
    }

    #[test]
    fn the_last_delivery_is_when_the_last_batch_was_counted() {
        let (target, batches) = channel(10, 10);
        let control = Arc::new(ConsumerControl::new(ConsumerSim::default()));
        let counters = Arc::new(ConsumerCounters::new());
        assert!(control.last_delivery().is_none());
        let consumer = spawn_consumer(
            "consumer",
            batches,
            Arc::clone(&control),
            counters.clone(),
            Clock::new(),
            None,
        )
        .unwrap();
        let before = Instant::now();
        assert!(matches!(target.offer(event(0)), Offer::Accepted));
        drop(target);
        consumer.join().unwrap();
        let after = Instant::now();
        let last = control.last_delivery().expect("a batch was delivered");
        assert!(
            before <= last && last <= after,
            "{before:?} {last:?} {after:?}"
        );
    }

    #[test]
    fn a_waiting_consumer_does_not_hold_up_histogram_refresh() {
        let (target, batches) = channel(10, 10);
        let mut histogram: SyncHistogram<u64> = Histogram::new(3).unwrap().into();
        let control = Arc::new(ConsumerControl::new(ConsumerSim::default()));
        let counters = Arc::new(ConsumerCounters::new());
        let consumer = spawn_consumer(
            "consumer",
            batches,
            control,
            counters.clone(),
            Clock::new(),
            Some(histogram.recorder()),
        )
        .unwrap();
        assert!(matches!(target.offer(event(0)), Offer::Accepted));
        while counters.snapshot().delivered == 0 {
            thread::sleep(Duration::from_millis(1));
        }
        // The consumer now waits for the next batch, checking in with its
        // recorder, so a refresh completes with the sample rather than
        // running into its timeout.
        let began = Instant::now();
        histogram.refresh_timeout(Duration::from_secs(10));
        assert!(began.elapsed() < Duration::from_secs(5));
        assert_eq!(histogram.len(), 1);
        drop(target);
        assert_eq!(consumer.join().unwrap().delivered, 1);
    }
}
