//! Live control of running producers: open-loop rate, pause, resume, stop.
//! Assertions are loose on purpose: they check behaviour, not speed. What must
//! happen is waited for (up to seconds), never assumed done after a fixed sleep.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant};

use loadgen::{
    CONTROL_POLL, Clock, Event, Offer, PayloadSource, PayloadSpec, ProducerConfig, ProducerControl,
    ProducerCounters, ProducerSet, Target, spawn_producers,
};

/// How long anything asked of the producers may take on a slow host.
const PATIENCE: Duration = Duration::from_secs(5);

/// Accepts and discards everything, remembering the earliest and the latest
/// intended time.
struct Sink {
    first_intended_ns: AtomicU64,
    latest_intended_ns: AtomicU64,
}

impl Default for Sink {
    fn default() -> Self {
        Sink {
            first_intended_ns: AtomicU64::new(u64::MAX),
            latest_intended_ns: AtomicU64::new(0),
        }
    }
}

impl Target for Sink {
    fn offer(&self, event: Event) -> Offer {
        self.first_intended_ns
            .fetch_min(event.intended_at_ns, Ordering::Relaxed);
        self.latest_intended_ns
            .fetch_max(event.intended_at_ns, Ordering::Relaxed);
        Offer::Accepted
    }
}

/// Waits until `done` holds, failing with `what` after [`PATIENCE`].
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < deadline, "{what} within {PATIENCE:?}");
        sleep(Duration::from_millis(1));
    }
}

/// Waits until the producers have been quiet for a while (an offer begun before
/// a pause may still finish after it), then returns the count they rest at.
fn settled(counters: &ProducerCounters) -> u64 {
    let quiet = (CONTROL_POLL * 4).max(Duration::from_millis(20));
    let mut at = attempted(counters);
    wait_until("the producers go quiet", || {
        sleep(quiet);
        let now = attempted(counters);
        std::mem::replace(&mut at, now) == now
    });
    at
}

fn start(producers: u32, rate: Option<u64>) -> (ProducerSet, Arc<ProducerCounters>, Arc<Sink>) {
    let payload = PayloadSource::load(&PayloadSpec::Fixed(16)).unwrap();
    let counters = Arc::new(ProducerCounters::new(producers as usize));
    let sink = Arc::new(Sink::default());
    let set = spawn_producers(
        ProducerConfig::new(producers, payload),
        sink.clone(),
        counters.clone(),
        Clock::new(),
        Arc::new(ProducerControl::new(rate)),
    )
    .unwrap();
    (set, counters, sink)
}

fn attempted(counters: &ProducerCounters) -> u64 {
    counters.snapshot().attempted
}

/// Stops the set and checks it finishes promptly.
fn stop_promptly(set: ProducerSet) {
    set.control().stop();
    let deadline = Instant::now() + Duration::from_secs(2);
    while !set.is_finished() {
        assert!(Instant::now() < deadline, "producers did not stop");
        sleep(Duration::from_millis(1));
    }
    set.join().unwrap();
}

#[test]
fn open_loop_roughly_keeps_its_rate() {
    let (set, counters, _sink) = start(4, Some(10_000));
    let began = Instant::now();
    sleep(Duration::from_millis(300));
    let sent = attempted(&counters);
    let expected = 10_000.0 * began.elapsed().as_secs_f64();
    let ratio = sent as f64 / expected;
    assert!(
        (0.5..=1.5).contains(&ratio),
        "sent {sent}, expected ~{expected:.0}"
    );

    // A zero rate idles the producers.
    set.control().set_rate(Some(0));
    let idle_from = settled(&counters);
    sleep(Duration::from_millis(50));
    assert_eq!(attempted(&counters), idle_from);
    stop_promptly(set);
}

#[test]
fn pause_resume_and_stop_take_effect() {
    let (set, counters, _sink) = start(2, None);
    wait_until("a closed loop produces", || attempted(&counters) > 0);

    set.control().pause();
    let paused_at = settled(&counters);
    sleep(Duration::from_millis(50));
    assert_eq!(
        attempted(&counters),
        paused_at,
        "paused producers send nothing"
    );

    set.control().resume();
    wait_until("resumed producers send again", || {
        attempted(&counters) > paused_at
    });

    stop_promptly(set);
    let totals = counters.snapshot();
    assert_eq!(totals.attempted, totals.accepted);
}

#[test]
fn open_loop_stamps_intended_times_on_schedule() {
    // One producer at 1000/s: the n-th event is intended ~n ms after the
    // first, whatever the actual send time, so the latest intended time tracks
    // the schedule. (Counted from the first event, not the clock's origin: the
    // producer starts some time after its clock, more on a slow host.)
    let (set, counters, sink) = start(1, Some(1_000));
    sleep(Duration::from_millis(100));
    wait_until("two events are sent", || attempted(&counters) >= 2);
    stop_promptly(set);
    let first = sink.first_intended_ns.load(Ordering::Relaxed);
    let latest = sink.latest_intended_ns.load(Ordering::Relaxed);
    let latest_ms = latest.saturating_sub(first) as f64 / 1e6;
    let sent = attempted(&counters) as f64;
    assert!(
        (latest_ms - (sent - 1.0)).abs() <= 2.0,
        "event {sent} intended {latest_ms} ms after the first"
    );
}
