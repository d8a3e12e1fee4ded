//! Live control of running producers: open-loop rate, pause, resume, stop.
//! Assertions are loose on purpose: they check behaviour, not speed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant};

use loadgen::{
    Clock, Event, Offer, PayloadSource, PayloadSpec, ProducerConfig, ProducerControl,
    ProducerCounters, ProducerSet, Target, spawn_producers,
};

/// Accepts and discards everything, remembering the latest intended time.
#[derive(Default)]
struct Sink {
    latest_intended_ns: AtomicU64,
}

impl Target for Sink {
    fn offer(&self, event: Event) -> Offer {
        self.latest_intended_ns
            .fetch_max(event.intended_at_ns, Ordering::Relaxed);
        Offer::Accepted
    }
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
    sleep(Duration::from_millis(30));
    let idle_from = attempted(&counters);
    sleep(Duration::from_millis(50));
    assert_eq!(attempted(&counters), idle_from);
    stop_promptly(set);
}

#[test]
fn pause_resume_and_stop_take_effect() {
    let (set, counters, _sink) = start(2, None);
    sleep(Duration::from_millis(20));
    assert!(attempted(&counters) > 0, "closed loop produces");

    set.control().pause();
    sleep(Duration::from_millis(30));
    let paused_at = attempted(&counters);
    sleep(Duration::from_millis(50));
    assert_eq!(
        attempted(&counters),
        paused_at,
        "paused producers send nothing"
    );

    set.control().resume();
    sleep(Duration::from_millis(30));
    assert!(
        attempted(&counters) > paused_at,
        "resumed producers send again"
    );

    stop_promptly(set);
    let totals = counters.snapshot();
    assert_eq!(totals.attempted, totals.accepted);
}

#[test]
fn open_loop_stamps_intended_times_on_schedule() {
    // One producer at 1000/s: the n-th event is intended at ~n ms, whatever
    // the actual send time, so the latest intended time tracks the schedule.
    let (set, counters, sink) = start(1, Some(1_000));
    sleep(Duration::from_millis(100));
    stop_promptly(set);
    let latest_ms = sink.latest_intended_ns.load(Ordering::Relaxed) as f64 / 1e6;
    let sent = attempted(&counters) as f64;
    assert!(sent >= 2.0);
    assert!(
        (latest_ms - (sent - 1.0)).abs() <= 2.0,
        "event {sent} intended at {latest_ms} ms"
    );
}
