//! `--peers crossbeam-full`: the crossbeam batcher held to the dispatcher's
//! batch contract, not a peer a user would pick.
//!
//! The consumer of `--peers crossbeam` takes what has arrived: with one
//! producer and a consumer faster than it, most of its batches hold one or
//! two events. The dispatcher's batches here are cut at 64 KiB (never past
//! it) or once their first event has waited out the 1 ms interval. This
//! consumer cuts its batches the same way from the same bounded channel:
//! it waits for a batch's first event, then for more until the next would
//! take the batch past 64 KiB (that one opens the next batch), the batch
//! holds exactly 64 KiB, or 1 ms has passed since the first arrived; then
//! it drops the batch. The run's last events go without waiting out the
//! interval, as the dispatcher's do (its last producer flushes).
//!
//! Two differences remain, both small. The interval runs from an event's
//! receipt, not from its send (the dispatcher's from when it joins the
//! batch), and an event already waiting in the channel still joins a batch
//! whose interval has just passed (crossbeam's `recv_deadline` takes what
//! is there before it looks at the clock). And the dispatcher cuts batches
//! per partition, each filled by its own producers, where this consumer
//! fills one batch from all of them: with one producer the two agree.
//!
//! Beside the dispatcher and `--peers crossbeam`, it splits the
//! dispatcher's ratio to the crossbeam batcher in two: what waiting for
//! full batches costs a consumer on the machine and allocator at hand
//! (crossbeam-full against crossbeam), and what is the dispatcher's own
//! (the dispatcher against crossbeam-full).

use std::hint::black_box;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;

use super::runs::{BATCH_BYTES, INTERVAL, crossbeam_timed};

/// Crossbeam's bounded channel, drained in the dispatcher's batches.
pub(crate) fn crossbeam_full_run(producers: usize, total: usize, size: usize) -> Duration {
    crossbeam_timed(producers, total, size, |rx| {
        consume(rx, total, size, INTERVAL, |batch| {
            black_box(batch);
        });
    })
}

/// Takes `total` events of `size` bytes from `rx` in batches cut as the
/// dispatcher cuts them with `interval`, handing each to `batch_done`.
fn consume(
    rx: &Receiver<Vec<u8>>,
    total: usize,
    size: usize,
    interval: Duration,
    mut batch_done: impl FnMut(&[Vec<u8>]),
) {
    let mut batch = Vec::with_capacity(BATCH_BYTES / size + 1);
    let mut next: Option<(Vec<u8>, Instant)> = None;
    let mut seen = 0;
    while seen < total {
        let (first, arrived) = next.take().unwrap_or_else(|| {
            let event = rx.recv().expect("bench recv");
            (event, Instant::now())
        });
        batch.push(first);
        next = fill(rx, &mut batch, total - seen, arrived + interval);
        seen += batch.len();
        batch_done(&batch);
        batch.clear();
    }
    assert!(next.is_none(), "an event was taken past the run's end");
}

/// Fills `batch`, which holds its first event, from `rx` as the dispatcher
/// cuts its batches: until it holds exactly [`BATCH_BYTES`], or the next
/// event would take it past them (that event is returned with when it
/// arrived: it opens the next batch), or `due` passes, or it holds `most`
/// events (the run's last ones go without waiting).
fn fill(
    rx: &Receiver<Vec<u8>>,
    batch: &mut Vec<Vec<u8>>,
    most: usize,
    due: Instant,
) -> Option<(Vec<u8>, Instant)> {
    let mut bytes: usize = batch.iter().map(Vec::len).sum();
    while bytes < BATCH_BYTES && batch.len() < most {
        let event = rx.recv_deadline(due).ok()?;
        if bytes + event.len() > BATCH_BYTES {
            return Some((event, Instant::now()));
        }
        bytes += event.len();
        batch.push(event);
    }
    None
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::thread;

    use super::*;

    /// A batch filled from `queued` events of `size` bytes waiting in the
    /// channel, with its deadline 5 s away: its length, and whether an
    /// event was carried to the next. Fails if it waited for the deadline
    /// (every case here is cut by size or by the run's end).
    fn filled(queued: usize, size: usize, most: usize) -> (usize, bool) {
        let (tx, rx) = crossbeam_channel::unbounded();
        for _ in 0..queued {
            tx.send(vec![0u8; size]).unwrap();
        }
        let mut batch = vec![rx.recv().unwrap()];
        let start = Instant::now();
        let next = fill(&rx, &mut batch, most, start + Duration::from_secs(5));
        assert!(start.elapsed() < Duration::from_secs(2), "waited");
        (batch.len(), next.is_some())
    }

    #[test]
    fn batches_are_cut_as_the_dispatcher_cuts_them() {
        // Six 10 KiB events fit in 64 KiB; the seventh opens the next batch.
        assert_eq!(filled(10, 10 * 1024, usize::MAX), (6, true));
        // 64 B events fill a batch exactly, and nothing is carried.
        assert_eq!(filled(1100, 64, usize::MAX), (1024, false));
        // An event larger than a batch is a batch alone (the next one
        // stays in the channel: nothing was taken past it).
        assert_eq!(filled(3, 100 * 1024, usize::MAX), (1, false));
        // The run's last events go without waiting for the deadline.
        assert_eq!(filled(3, 64, 3), (3, false));
    }

    /// How many events a batch opened now gathers when a second event is
    /// sent `after`, with its deadline `due` away, and how long it took.
    fn gathered(after: Duration, due: Duration) -> (usize, Duration) {
        let (tx, rx) = crossbeam_channel::unbounded();
        let sender = thread::spawn(move || {
            thread::sleep(after);
            let _ = tx.send(vec![0u8; 64]);
        });
        let start = Instant::now();
        let mut batch = vec![vec![0u8; 64]];
        fill(&rx, &mut batch, 2, start + due);
        let took = start.elapsed();
        sender.join().unwrap();
        (batch.len(), took)
    }

    #[test]
    fn a_batch_waits_for_events_until_its_deadline_and_no_longer() {
        // Not greedy: an event sent 20 ms later still joins (the batch
        // is done at it: two is all this one may hold).
        let (len, took) = gathered(Duration::from_millis(20), Duration::from_secs(5));
        assert_eq!(len, 2);
        assert!(took < Duration::from_secs(2), "{took:?}");
        // An event sent after the deadline does not.
        let (len, took) = gathered(Duration::from_millis(300), Duration::from_millis(20));
        assert_eq!(len, 1);
        assert!(took >= Duration::from_millis(20), "{took:?}");
    }

    /// The batch lengths of a run of `total` events of `size` bytes from
    /// one producer, with an interval that never ends (every cut is by
    /// size, or the run's end). Fails if the run does not end within 20 s.
    fn run_batches(total: usize, size: usize) -> Vec<usize> {
        let (done_tx, done_rx) = mpsc::channel();
        thread::spawn(move || {
            let (tx, rx) = crossbeam_channel::bounded(16);
            let producer = thread::spawn(move || {
                for _ in 0..total {
                    tx.send(vec![0u8; size]).unwrap();
                }
                // The sender stays: as in a run, the channel never closes.
                tx
            });
            let mut lengths = Vec::new();
            consume(&rx, total, size, Duration::from_secs(3600), |batch| {
                lengths.push(batch.len());
            });
            drop(producer.join());
            done_tx.send(lengths).unwrap();
        });
        done_rx
            .recv_timeout(Duration::from_secs(20))
            .expect("the run ended without waiting out the interval")
    }

    #[test]
    fn a_run_takes_every_event_once_in_full_batches() {
        let mut expected = vec![6; 8];
        expected.push(2);
        assert_eq!(run_batches(50, 10 * 1024), expected);
        assert_eq!(run_batches(2_100, 64), vec![1024, 1024, 52]);
        assert_eq!(run_batches(3, 100 * 1024), vec![1, 1, 1]);
    }

    #[test]
    fn every_event_of_a_timed_run_arrives() {
        // The benchmark's own run, with several producers: a run that lost
        // or held back an event would wait for it forever.
        let (done_tx, done_rx) = mpsc::channel();
        thread::spawn(move || {
            for (producers, total, size) in [(1, 50, 10 * 1024), (3, 2_000, 64), (2, 7, 100 * 1024)]
            {
                crossbeam_full_run(producers, total, size);
            }
            done_tx.send(()).unwrap();
        });
        done_rx
            .recv_timeout(Duration::from_secs(60))
            .expect("every run received all its events");
    }
}
