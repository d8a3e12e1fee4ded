//! Producer threads: generate events and offer them to a [`Target`].
//!
//! Two modes, switchable live through [`ProducerControl::set_rate`]:
//!
//! - **Closed loop** (rate unlimited): each producer offers as fast as
//!   admission allows. An event is stamped with the time it is offered.
//!   After a refusal the refused event is **discarded** (counted as
//!   rejected, never retried) and the producer sleeps
//!   [`backoff`](ProducerConfig::backoff) before generating the next one:
//!   retrying the same event would measure the producer's patience, not the
//!   target.
//! - **Open loop** (a rate): the total rate is split evenly across
//!   producers, each keeping its own schedule of intended send times (phases
//!   staggered so producers do not fire in unison). An event is stamped with
//!   its *intended* time; a producer that falls behind sends immediately
//!   without sleeping, so latency counts from when the event should have
//!   gone (coordinated-omission correction). Refusals are discarded and
//!   counted, without backoff: the schedule is the arrival process.
//!
//! Per event a producer allocates only the payload.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::control::{CONTROL_POLL, ProducerControl};
use crate::counters::{ProducerCounters, Slot};
use crate::event::{Clock, Event};
use crate::payload::{PayloadGen, PayloadSource};
use crate::sched::{Scheduling, SchedulingError, set_scheduling};
use crate::target::{Offer, Target};

/// How long a closed-loop producer sleeps after a refusal, unless configured.
pub const DEFAULT_BACKOFF: Duration = Duration::from_micros(100);

/// What to run: how many producers, what they send, how they back off.
///
/// The rate lives in the [`ProducerControl`], so it can change live.
#[derive(Debug, Clone)]
pub struct ProducerConfig {
    /// Number of producer threads.
    pub producers: u32,
    /// The payload shape every producer draws from.
    pub payload: PayloadSource,
    /// The run's seed: producer `i` draws from `payload.generator(seed, i)`.
    pub seed: u64,
    /// Closed-loop sleep after a refusal ([`DEFAULT_BACKOFF`]).
    pub backoff: Duration,
    /// Stop each producer after it has offered this many events (`None`:
    /// run until stopped). Makes short runs and tests exact.
    pub events_per_producer: Option<u64>,
    /// Hold every producer at the start line until [`ProducerSet::release`]: each thread
    /// prepares its payload generator, counts itself [`ready`](ProducerSet::ready) and
    /// waits (without spinning), so a run's clock can start when all of them exist.
    pub held: bool,
    /// The scheduling class each producer thread asks for before it is ready; a
    /// refusal leaves it in its class and is reported by [`ProducerSet::unscheduled`].
    pub scheduling: Scheduling,
}

impl ProducerConfig {
    /// `producers` producers sending `payload`, seed 0, default backoff, no limit.
    ///
    /// # Examples
    ///
    /// ```
    /// use loadgen::{PayloadSource, PayloadSpec, ProducerConfig, DEFAULT_BACKOFF};
    ///
    /// let payload = PayloadSource::load(&PayloadSpec::Telemetry).unwrap();
    /// let cfg = ProducerConfig::new(32, payload);
    /// assert_eq!(cfg.backoff, DEFAULT_BACKOFF);
    /// ```
    pub fn new(producers: u32, payload: PayloadSource) -> Self {
        Self {
            producers,
            payload,
            seed: 0,
            backoff: DEFAULT_BACKOFF,
            events_per_producer: None,
            held: false,
            scheduling: Scheduling::Normal,
        }
    }
}

/// Producers could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// The counters have fewer slots than there are producers.
    #[error("counters have {slots} slots for {producers} producers")]
    Counters {
        /// Producers configured.
        producers: u32,
        /// Slots available.
        slots: usize,
    },
    /// The OS refused a thread; producers already started were stopped.
    #[error("cannot start producer thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// A producer thread panicked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("producer thread {name} panicked")]
pub struct ProducerPanicked {
    /// The thread's name.
    pub name: String,
}

/// Starts `cfg.producers` threads named `producer-{i}` that offer events to
/// `target`, count outcomes in `counters` (slot `i` for producer `i`), stamp
/// times with `clock`, and obey `control`.
///
/// # Errors
///
/// [`SpawnError::Counters`] if `counters` has too few slots;
/// [`SpawnError::Thread`] if a thread cannot be started.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use loadgen::*;
///
/// let (target, _batches) = channel(1_000, 64);
/// let payload = PayloadSource::load(&PayloadSpec::Fixed(32)).unwrap();
/// let mut cfg = ProducerConfig::new(2, payload);
/// cfg.events_per_producer = Some(100);
/// let counters = Arc::new(ProducerCounters::new(2));
/// let control = Arc::new(ProducerControl::new(None));
/// let set = spawn_producers(cfg, Arc::new(target), counters.clone(), Clock::new(), control)?;
/// set.join()?;
/// let totals = counters.snapshot();
/// assert_eq!(totals.attempted, 200);
/// assert_eq!(totals.attempted, totals.accepted + totals.rejected);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn spawn_producers(
    cfg: ProducerConfig,
    target: Arc<dyn Target>,
    counters: Arc<ProducerCounters>,
    clock: Clock,
    control: Arc<ProducerControl>,
) -> Result<ProducerSet, SpawnError> {
    if counters.len() < cfg.producers as usize {
        return Err(SpawnError::Counters {
            producers: cfg.producers,
            slots: counters.len(),
        });
    }
    let gate = Arc::new(StartGate::new(!cfg.held));
    let mut set = ProducerSet {
        handles: Vec::with_capacity(cfg.producers as usize),
        control: Arc::clone(&control),
        gate: Arc::clone(&gate),
    };
    for index in 0..cfg.producers {
        let (payload, seed) = (cfg.payload.clone(), cfg.seed);
        let target = target.fork().unwrap_or_else(|| Arc::clone(&target));
        let counters = Arc::clone(&counters);
        let (control, gate) = (Arc::clone(&control), Arc::clone(&gate));
        let (producers, backoff) = (cfg.producers, cfg.backoff);
        let limit = cfg.events_per_producer.unwrap_or(u64::MAX);
        let scheduling = cfg.scheduling;
        let handle = thread::Builder::new()
            .name(format!("producer-{index}"))
            .spawn(move || {
                if let Err(refused) = set_scheduling(scheduling) {
                    gate.unscheduled(refused);
                }
                let worker = Worker {
                    index,
                    producers,
                    payload: payload.generator(seed, index),
                    target,
                    counters,
                    clock,
                    control,
                    backoff,
                    limit,
                    seq: 0,
                };
                gate.arrive_and_wait(&worker.control);
                worker.run();
            })?; // `set` drops here: stops and joins the rest
        set.handles.push(handle);
    }
    Ok(set)
}

/// Where held producers wait for [`ProducerSet::release`].
#[derive(Debug)]
struct StartGate {
    open: Mutex<bool>,
    opened: Condvar,
    ready: AtomicUsize,
    /// Producers the operating system left in their scheduling class, and why (the
    /// first refusal).
    unscheduled: Mutex<(usize, Option<SchedulingError>)>,
}

impl StartGate {
    fn new(open: bool) -> Self {
        Self {
            open: Mutex::new(open),
            opened: Condvar::new(),
            ready: AtomicUsize::new(0),
            unscheduled: Mutex::new((0, None)),
        }
    }

    fn unscheduled(&self, refused: SchedulingError) {
        let mut seen = self
            .unscheduled
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        seen.0 += 1;
        seen.1.get_or_insert(refused);
    }

    /// Counts this producer ready, then waits until the gate opens (or the producers are
    /// stopped: a stop while held ends them without producing).
    fn arrive_and_wait(&self, control: &ProducerControl) {
        self.ready.fetch_add(1, Ordering::Release);
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        while !*open && !control.is_stopped() {
            open = self
                .opened
                .wait_timeout(open, Duration::from_millis(100))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    fn open(&self) {
        *self.open.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.opened.notify_all();
    }
}

/// Running producer threads. Dropping the set stops and joins them.
#[derive(Debug)]
pub struct ProducerSet {
    handles: Vec<JoinHandle<()>>,
    control: Arc<ProducerControl>,
    gate: Arc<StartGate>,
}

impl ProducerSet {
    /// How many producers have prepared their payload generator and reached the start
    /// line (all of them, soon after the start, unless [`ProducerConfig::held`]).
    pub fn ready(&self) -> usize {
        self.gate.ready.load(Ordering::Acquire)
    }

    /// How many of the [ready](Self::ready) producers the operating system left in
    /// their scheduling class instead of [`ProducerConfig::scheduling`], with the
    /// first refusal; `None` if every one got it (or kept a class of its own, see
    /// [`Scheduling::Batch`]). Off Linux, asking for batch leaves every producer in
    /// its class.
    pub fn unscheduled(&self) -> Option<(usize, String)> {
        let seen = self
            .gate
            .unscheduled
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        seen.1.as_ref().map(|first| (seen.0, first.to_string()))
    }

    /// Lets held producers go (see [`ProducerConfig::held`]); no effect otherwise.
    pub fn release(&self) {
        self.gate.open();
    }

    /// Joins every producer that finishes by `deadline` and returns how many are still
    /// running then (a producer blocked in a long offer, say): call it again later, or
    /// [`detach`](Self::detach) them, rather than drop the set (which waits for them).
    ///
    /// # Errors
    ///
    /// [`ProducerPanicked`] naming the first joined producer that panicked (every finished
    /// one is joined regardless).
    pub fn join_until(&mut self, deadline: Instant) -> Result<usize, ProducerPanicked> {
        self.gate.open();
        let mut result = Ok(());
        loop {
            let (done, running): (Vec<_>, Vec<_>) = std::mem::take(&mut self.handles)
                .into_iter()
                .partition(|h| h.is_finished());
            self.handles = running;
            for handle in done {
                let name = handle.thread().name().unwrap_or("producer").to_owned();
                if handle.join().is_err() && result.is_ok() {
                    result = Err(ProducerPanicked { name });
                }
            }
            let now = Instant::now();
            if self.handles.is_empty() || now >= deadline {
                return result.map(|()| self.handles.len());
            }
            thread::sleep(CONTROL_POLL.min(deadline - now));
        }
    }

    /// Stops the producers and lets those still running finish on their own, without
    /// waiting for them.
    pub fn detach(mut self) {
        self.control.stop();
        self.gate.open();
        self.handles.clear();
    }

    /// The control the producers obey.
    pub fn control(&self) -> &Arc<ProducerControl> {
        &self.control
    }

    /// How many producer threads were started.
    pub fn len(&self) -> usize {
        self.handles.len()
    }

    /// Whether no producer was started.
    pub fn is_empty(&self) -> bool {
        self.handles.is_empty()
    }

    /// Whether every producer has finished (stopped, hit its event limit,
    /// or found the target closed).
    pub fn is_finished(&self) -> bool {
        self.handles.iter().all(JoinHandle::is_finished)
    }

    /// Waits until every producer has finished. It does not stop them: call
    /// [`ProducerControl::stop`] first (or use [`stop_and_join`](Self::stop_and_join))
    /// unless they run to an event limit.
    ///
    /// # Errors
    ///
    /// [`ProducerPanicked`] naming the first producer that panicked (all are
    /// joined regardless).
    pub fn join(mut self) -> Result<(), ProducerPanicked> {
        self.gate.open();
        let mut result = Ok(());
        for handle in std::mem::take(&mut self.handles) {
            let name = handle.thread().name().unwrap_or("producer").to_owned();
            if handle.join().is_err() && result.is_ok() {
                result = Err(ProducerPanicked { name });
            }
        }
        result
    }

    /// Stops the producers and waits for them.
    ///
    /// # Errors
    ///
    /// As [`join`](Self::join).
    pub fn stop_and_join(self) -> Result<(), ProducerPanicked> {
        self.control.stop();
        self.join()
    }
}

impl Drop for ProducerSet {
    fn drop(&mut self) {
        if self.handles.is_empty() {
            return;
        }
        self.control.stop();
        self.gate.open();
        for handle in self.handles.drain(..) {
            // A panic was already reported on the producer's thread.
            let _ = handle.join();
        }
    }
}

/// What a mode loop wants next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    /// A setting changed: look at the control again.
    Reconsider,
    /// The producer is done (stopped, limit reached, or target closed).
    Exit,
}

/// Producer `index`'s part of a `total` rate split over `producers` (the
/// remainder goes to the first producers).
fn share(total: u64, index: u32, producers: u32) -> u64 {
    let n = u64::from(producers);
    total / n + u64::from(u64::from(index) < total % n)
}

/// One producer thread's state.
struct Worker {
    index: u32,
    producers: u32,
    payload: PayloadGen,
    target: Arc<dyn Target>,
    counters: Arc<ProducerCounters>,
    clock: Clock,
    control: Arc<ProducerControl>,
    backoff: Duration,
    limit: u64,
    seq: u64,
}

impl Worker {
    fn run(mut self) {
        loop {
            // Read the epoch before the settings it guards.
            let epoch = self.control.epoch();
            let next = if self.control.is_stopped() || self.seq >= self.limit {
                Next::Exit
            } else if self.control.is_paused() {
                self.idle(epoch)
            } else {
                match self.control.rate() {
                    None => self.closed_loop(epoch),
                    Some(total) => self.open_loop(epoch, share(total, self.index, self.producers)),
                }
            };
            if next == Next::Exit {
                return;
            }
        }
    }

    fn closed_loop(&mut self, epoch: u64) -> Next {
        while self.control.epoch() == epoch {
            if self.seq >= self.limit {
                return Next::Exit;
            }
            let payload = self.payload.next_payload();
            let sent_at = self.clock.now_ns();
            match self.offer(payload, sent_at) {
                Offer::Accepted => {}
                Offer::Refused(_) => self.nap(self.backoff, epoch),
                Offer::Closed(_) => return Next::Exit,
            }
        }
        Next::Reconsider
    }

    fn open_loop(&mut self, epoch: u64, rate: u64) -> Next {
        if rate == 0 {
            return self.idle(epoch);
        }
        let period_ns = 1e9 / rate as f64;
        // Stagger phases so producers do not all fire at the same instant.
        let phase_ns = period_ns * f64::from(self.index) / f64::from(self.producers);
        let start_ns = self.clock.now_ns() as f64 + phase_ns;
        let mut sent: u64 = 0;
        while self.control.epoch() == epoch {
            if self.seq >= self.limit {
                return Next::Exit;
            }
            // Computed from the start each time, so rounding never drifts.
            let intended = (start_ns + sent as f64 * period_ns) as u64;
            let now = self.clock.now_ns();
            if intended > now {
                self.nap(Duration::from_nanos(intended - now), epoch);
                continue;
            }
            let payload = self.payload.next_payload();
            sent += 1;
            if let Offer::Closed(_) = self.offer(payload, intended) {
                return Next::Exit;
            }
        }
        Next::Reconsider
    }

    /// Offers one event and counts the outcome.
    fn offer(&mut self, payload: Vec<u8>, intended_at_ns: u64) -> Offer {
        let slot: &Slot = self.counters.slot(self.index as usize);
        let event = Event::new(payload, intended_at_ns, self.index, self.seq);
        self.seq += 1;
        slot.attempted();
        let offer = self.target.offer(event);
        match &offer {
            Offer::Accepted => slot.accepted(),
            Offer::Refused(_) => slot.rejected(),
            Offer::Closed(_) => slot.closed(),
        }
        offer
    }

    /// Sleeps while paused or idle, until a setting changes.
    fn idle(&self, epoch: u64) -> Next {
        while self.control.epoch() == epoch {
            thread::sleep(CONTROL_POLL);
        }
        Next::Reconsider
    }

    /// Sleeps `total`, in steps of at most [`CONTROL_POLL`], ending early if
    /// a setting changes.
    fn nap(&self, total: Duration, epoch: u64) {
        let mut left = total;
        while !left.is_zero() && self.control.epoch() == epoch {
            let step = left.min(CONTROL_POLL);
            thread::sleep(step);
            left -= step;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::PayloadSpec;
    use std::sync::Mutex;

    /// Accepts every other event.
    #[derive(Default)]
    struct Alternating(Mutex<u64>);

    impl Target for Alternating {
        fn offer(&self, event: Event) -> Offer {
            let mut n = self.0.lock().unwrap();
            *n += 1;
            if *n % 2 == 0 {
                Offer::Refused(event)
            } else {
                Offer::Accepted
            }
        }
    }

    fn config(producers: u32, limit: u64) -> ProducerConfig {
        let payload = PayloadSource::load(&PayloadSpec::Fixed(8)).unwrap();
        let mut cfg = ProducerConfig::new(producers, payload);
        cfg.backoff = Duration::ZERO;
        cfg.events_per_producer = Some(limit);
        cfg
    }

    #[test]
    fn rate_shares_add_up_to_the_total() {
        for (total, producers) in [(10, 3), (2, 5), (1_000_003, 32), (0, 4)] {
            let sum: u64 = (0..producers)
                .map(|index| share(total, index, producers))
                .sum();
            assert_eq!(sum, total);
        }
    }

    #[test]
    fn every_attempt_has_one_outcome() {
        let counters = Arc::new(ProducerCounters::new(3));
        let control = Arc::new(ProducerControl::new(None));
        let target = Arc::new(Alternating::default());
        let set = spawn_producers(
            config(3, 500),
            target,
            counters.clone(),
            Clock::new(),
            control,
        )
        .unwrap();
        assert_eq!(set.len(), 3);
        set.join().unwrap();
        let totals = counters.snapshot();
        assert_eq!(totals.attempted, 1_500);
        assert_eq!(totals.accepted + totals.rejected, 1_500);
        assert_eq!(totals.accepted, 750);
    }

    /// Accepts everything, noting the scheduling policy of the thread that offered it.
    #[cfg(target_os = "linux")]
    #[derive(Default)]
    struct PolicyProbe(Mutex<Vec<u32>>);

    #[cfg(target_os = "linux")]
    impl Target for PolicyProbe {
        fn offer(&self, _event: Event) -> Offer {
            let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
            self.0.lock().unwrap().push(crate::sched::policy_of(&stat));
            Offer::Accepted
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn producers_offer_in_the_scheduling_class_asked_for() {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        let inherited = crate::sched::policy_of(&stat);
        for (scheduling, policy) in [(Scheduling::Batch, 3), (Scheduling::Normal, inherited)] {
            let mut cfg = config(3, 4);
            cfg.scheduling = scheduling;
            let probe = Arc::new(PolicyProbe::default());
            let set = spawn_producers(
                cfg,
                probe.clone(),
                Arc::new(ProducerCounters::new(3)),
                Clock::new(),
                Arc::new(ProducerControl::default()),
            )
            .unwrap();
            while !set.is_finished() {
                thread::sleep(Duration::from_millis(1));
            }
            assert!(set.unscheduled().is_none());
            set.join().unwrap();
            let seen = probe.0.lock().unwrap().clone();
            assert_eq!(seen, vec![policy; 12], "{scheduling:?}");
        }
    }

    #[test]
    fn refused_classes_are_counted_with_the_first_reason() {
        let set = ProducerSet {
            handles: Vec::new(),
            control: Arc::new(ProducerControl::default()),
            gate: Arc::new(StartGate::new(true)),
        };
        assert!(set.unscheduled().is_none());
        for reason in ["first", "second"] {
            set.gate.unscheduled(SchedulingError {
                asked: Scheduling::Batch,
                source: std::io::Error::other(reason),
            });
        }
        let (count, why) = set.unscheduled().expect("two refusals");
        assert_eq!(count, 2);
        assert!(why.contains("batch") && why.contains("first"), "{why}");
    }

    #[test]
    fn too_few_counter_slots_is_an_error() {
        let err = spawn_producers(
            config(4, 1),
            Arc::new(Alternating::default()),
            Arc::new(ProducerCounters::new(2)),
            Clock::new(),
            Arc::new(ProducerControl::default()),
        )
        .unwrap_err();
        assert!(matches!(
            err,
            SpawnError::Counters {
                producers: 4,
                slots: 2
            }
        ));
    }

    #[test]
    fn a_closed_target_ends_the_producers() {
        let (target, batches) = crate::reference::channel(1, 1);
        drop(batches);
        let counters = Arc::new(ProducerCounters::new(2));
        let set = spawn_producers(
            config(2, u64::MAX),
            Arc::new(target),
            counters.clone(),
            Clock::new(),
            Arc::new(ProducerControl::default()),
        )
        .unwrap();
        set.join().unwrap();
        let totals = counters.snapshot();
        assert_eq!((totals.attempted, totals.closed), (2, 2));
    }
}
