//! Memory attack on the consumer's bookkeeping (loadgen), measured with jemalloc (the
//! allocator of everything linking `soak`): with 64 KiB payloads (past jemalloc's thread
//! cache, so `stats.allocated` follows them exactly), at every receive the heap holds the
//! events still in the source plus whatever batches wait outside it. Not lifted: none may
//! wait (each batch's events are freed before the next receive). Lifted: at most what the
//! source held. And nothing is left once `run_consumer` returns.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use hdrhistogram::sync::SyncHistogram;
use loadgen::{
    BatchSource, Clock, ConsumerControl, ConsumerCounters, ConsumerSim, Event, Offer, SourceError,
    Target, crossbeam, run_consumer,
};
use tikv_jemalloc_ctl::{epoch, stats};

use soak as _;

const PAYLOAD: i64 = 64 * 1024;
const N: i64 = 1_500;

fn allocated() -> i64 {
    epoch::advance().unwrap();
    stats::allocated::read().unwrap() as i64
}

struct Watch<S> {
    inner: S,
    baseline: i64,
    received: i64,
    worst: Arc<AtomicI64>,
}

impl<S> Watch<S> {
    fn look(&self) {
        let in_source = (N - self.received) * PAYLOAD;
        let outside = (allocated() - self.baseline - in_source) / PAYLOAD;
        self.worst.fetch_max(outside, Ordering::Relaxed);
    }
}

impl<S: BatchSource> BatchSource for Watch<S> {
    type Batch<'a>
        = S::Batch<'a>
    where
        Self: 'a;

    fn recv_batch(&mut self, timeout: Duration) -> Result<Self::Batch<'_>, SourceError> {
        self.look();
        let batch = self.inner.recv_batch(timeout)?;
        self.received += batch.len() as i64;
        Ok(batch)
    }

    fn try_recv_batch(&mut self) -> Result<Self::Batch<'_>, SourceError> {
        self.look();
        let batch = self.inner.try_recv_batch()?;
        self.received += batch.len() as i64;
        Ok(batch)
    }
}

/// The most events alive outside the source at any receive, and what is left after.
fn run(lifted: bool) -> (i64, i64) {
    let mut histogram: SyncHistogram<u64> =
        Histogram::new_with_bounds(1, 1 << 40, 2).unwrap().into();
    let (target, batches) = crossbeam(N as usize, 10);
    let baseline = allocated();
    for i in 0..N {
        assert!(matches!(
            target.offer(Event::new(vec![3; PAYLOAD as usize], 0, 0, i as u64)),
            Offer::Accepted
        ));
    }
    drop(target);
    let worst = Arc::new(AtomicI64::new(i64::MIN));
    let control = ConsumerControl::new(ConsumerSim {
        delay_per_batch: if lifted {
            Duration::ZERO
        } else {
            Duration::from_micros(100)
        },
        ..ConsumerSim::default()
    });
    if lifted {
        control.lift();
    }
    let counters = ConsumerCounters::new();
    let totals = run_consumer(
        Watch {
            inner: batches,
            baseline,
            received: 0,
            worst: Arc::clone(&worst),
        },
        &control,
        &counters,
        Clock::new(),
        Some(histogram.recorder()),
    );
    assert_eq!(totals.delivered, N as u64);
    histogram.refresh();
    assert_eq!(histogram.len(), N as u64);
    let left = (allocated() - baseline) / PAYLOAD;
    (worst.load(Ordering::Relaxed), left)
}

#[test]
fn no_batch_waits_outside_the_source_unless_lifted_and_then_at_most_what_it_held() {
    let (worst, left) = run(false);
    eprintln!("not lifted: at most {worst} events outside the source at a receive; {left} left");
    assert!(
        worst <= 0,
        "not lifted: {worst} events alive outside the source"
    );
    assert!(left <= 0, "{left} events alive after run_consumer returned");
    let (worst, left) = run(true);
    eprintln!("lifted: at most {worst} events outside the source at a receive; {left} left");
    assert!(worst <= N, "lifted: {worst} events outside the source");
    assert!(left <= 0, "{left} events alive after run_consumer returned");
}
