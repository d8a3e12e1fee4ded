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
//! holds exactly 64 KiB, or 1 ms has passed since the first; then it drops
//! the batch. The run's last events go without waiting out the interval,
//! as the dispatcher's do (its last producer flushes).
//!
//! Beside the dispatcher and `--peers crossbeam`, it splits the
//! dispatcher's ratio to the crossbeam batcher in two: what waiting for
//! full batches costs a consumer on the machine and allocator at hand
//! (crossbeam-full against crossbeam), and what is the dispatcher's own
//! (the dispatcher against crossbeam-full).

use std::hint::black_box;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;

use super::runs::{BATCH_BYTES, BUFFERED_BYTES, INTERVAL, timed_run};

/// Crossbeam's bounded channel, drained in the dispatcher's batches.
pub(crate) fn crossbeam_full_run(producers: usize, total: usize, size: usize) -> Duration {
    let (tx, rx) = crossbeam_channel::bounded::<Vec<u8>>(BUFFERED_BYTES / size);
    timed_run(
        producers,
        total,
        size,
        || {
            let tx = tx.clone();
            move |event| tx.send(event).expect("bench send")
        },
        || {
            let mut batch = Vec::with_capacity(BATCH_BYTES / size + 1);
            let mut next: Option<Vec<u8>> = None;
            let mut seen = 0;
            while seen < total {
                let first = match next.take() {
                    Some(event) => event,
                    None => rx.recv().expect("bench recv"),
                };
                let due = Instant::now() + INTERVAL;
                batch.push(first);
                next = fill(&rx, &mut batch, total - seen, due);
                seen += batch.len();
                black_box(&batch);
                batch.clear();
            }
        },
    )
}

/// Fills `batch`, which holds its first event, from `rx` as the dispatcher
/// cuts its batches: until it holds exactly [`BATCH_BYTES`], or the next
/// event would take it past them (that event is returned: it opens the
/// next batch), or `due` passes, or it holds `most` events (the run's
/// last ones go without waiting).
fn fill(
    rx: &Receiver<Vec<u8>>,
    batch: &mut Vec<Vec<u8>>,
    most: usize,
    due: Instant,
) -> Option<Vec<u8>> {
    let mut bytes: usize = batch.iter().map(Vec::len).sum();
    while bytes < BATCH_BYTES && batch.len() < most {
        let event = rx.recv_deadline(due).ok()?;
        if bytes + event.len() > BATCH_BYTES {
            return Some(event);
        }
        bytes += event.len();
        batch.push(event);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A batch filled from `queued` events of `size` bytes waiting in the
    /// channel: its length, and whether an event was carried to the next.
    fn filled(queued: usize, size: usize, most: usize, due: Instant) -> (usize, bool) {
        let (tx, rx) = crossbeam_channel::unbounded();
        for _ in 0..queued {
            tx.send(vec![0u8; size]).unwrap();
        }
        let mut batch = vec![rx.recv().unwrap()];
        let next = fill(&rx, &mut batch, most, due);
        (batch.len(), next.is_some())
    }

    #[test]
    fn batches_are_cut_as_the_dispatcher_cuts_them() {
        let later = Instant::now() + Duration::from_secs(3600);
        // Six 10 KiB events fit in 64 KiB; the seventh opens the next batch.
        assert_eq!(filled(10, 10 * 1024, usize::MAX, later), (6, true));
        // 64 B events fill a batch exactly, and nothing is carried.
        assert_eq!(filled(1100, 64, usize::MAX, later), (1024, false));
        // An event larger than a batch is a batch alone (the next one
        // stays in the channel: nothing was taken past it).
        assert_eq!(filled(3, 100 * 1024, usize::MAX, later), (1, false));
        // The run's last events go without waiting for the deadline (an
        // hour away: a wait would hang the test).
        assert_eq!(filled(3, 64, 3, later), (3, false));
        // A batch short of its bytes goes at its deadline.
        let soon = Instant::now() + Duration::from_millis(20);
        assert_eq!(filled(3, 64, usize::MAX, soon), (3, false));
    }

    #[test]
    fn every_event_of_a_run_arrives() {
        // A run that lost or held back an event would wait for it forever:
        // it runs on a thread of its own, and the test fails after a minute.
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
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
