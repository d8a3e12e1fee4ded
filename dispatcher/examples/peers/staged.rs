//! `--peers staged`: one simple staged design, not a peer a user would pick.
//!
//! Each producer thread owns its open batch outright (no lock, no shared
//! state but the budget), reserves each event's bytes with one
//! compare-and-swap on a shared counter (yielding while they do not fit),
//! and hands a batch over a bounded crossbeam channel once the next event
//! would take it past 64 KiB, or once it holds exactly that: the
//! dispatcher's batches, cut the same way. Its last, partial batch goes when
//! the thread is done. The consumer takes batches, drops them and gives
//! their bytes back. It has no interval, no policies but waiting, no
//! statistics and no shutdown.
//!
//! It shows what this one design reaches on the machine at hand, beside the
//! dispatcher and the crossbeam batcher: per-thread staging with one atomic
//! reservation an event, the direction the issue names. It is not a lower
//! bound: leases instead of a reservation an event, recycled batch buffers,
//! a parked wait, or handing over what has arrived could each do better.

use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering::AcqRel, Ordering::Acquire};
use std::thread;
use std::time::Duration;

use crossbeam_channel::Sender;

use super::runs::{BATCH_BYTES, BUFFERED_BYTES, timed_run};

/// A batch handed over, and the bytes it holds.
type Sealed = (Vec<Vec<u8>>, usize);

/// One producer thread's open batch. Dropped when the thread is done: its
/// partial batch goes then.
struct Staging<'a> {
    used: &'a AtomicUsize,
    tx: Sender<Sealed>,
    open: Vec<Vec<u8>>,
    bytes: usize,
}

impl Staging<'_> {
    fn send(&mut self, event: Vec<u8>) {
        let weight = event.len();
        if self.bytes > 0 && self.bytes + weight > BATCH_BYTES {
            self.seal();
        }
        reserve(self.used, weight);
        self.bytes += weight;
        self.open.push(event);
        if self.bytes >= BATCH_BYTES {
            self.seal();
        }
    }

    fn seal(&mut self) {
        // The next batch's buffer is sized as this one was: for a batch.
        let capacity = self.open.capacity();
        let batch = std::mem::replace(&mut self.open, Vec::with_capacity(capacity));
        let bytes = std::mem::take(&mut self.bytes);
        self.tx.send((batch, bytes)).expect("bench staged send");
    }
}

impl Drop for Staging<'_> {
    fn drop(&mut self) {
        if !self.open.is_empty() {
            self.seal();
        }
    }
}

/// Reserves `weight` bytes of the bound if they fit now.
fn try_reserve(used: &AtomicUsize, weight: usize) -> bool {
    let mut seen = used.load(Acquire);
    while seen + weight <= BUFFERED_BYTES {
        match used.compare_exchange_weak(seen, seen + weight, AcqRel, Acquire) {
            Ok(_) => return true,
            Err(now) => seen = now,
        }
    }
    false
}

/// Reserves `weight` bytes of the bound, yielding while they do not fit.
fn reserve(used: &AtomicUsize, weight: usize) {
    while !try_reserve(used, weight) {
        thread::yield_now();
    }
}

/// The staged run: see the module's docs.
pub(crate) fn staged_run(producers: usize, total: usize, size: usize) -> Duration {
    let run = measured(producers, total, size);
    // Checked at every run, outside its timing: a run that broke the
    // design's own rules would measure something else.
    assert_eq!(run.left, 0, "staged: bytes still reserved after the run");
    assert!(
        run.largest <= BATCH_BYTES.max(size),
        "staged: a batch of {} bytes passed the target",
        run.largest
    );
    run.elapsed
}

/// What a staged run saw: its time, and what `staged_run` and the tests
/// check of it.
struct Measured {
    elapsed: Duration,
    /// Bytes still reserved once every event was taken.
    left: usize,
    /// The largest batch taken, in bytes.
    largest: usize,
}

fn measured(producers: usize, total: usize, size: usize) -> Measured {
    let used = AtomicUsize::new(0);
    let per_batch = BATCH_BYTES / size + 1;
    // Every batch but each producer's last holds more than half of 64 KiB
    // (one is cut early only when the next event would pass 64 KiB), so
    // the bound holds at most twice its 64 KiB batches, and this many never
    // makes a producer wait on the channel: only the bound makes it wait.
    let (tx, rx) =
        crossbeam_channel::bounded::<Sealed>(BUFFERED_BYTES / BATCH_BYTES * 2 + producers);
    let used = &used;
    let mut largest = 0;
    let elapsed = timed_run(
        producers,
        total,
        size,
        || {
            let mut staging = Staging {
                used,
                tx: tx.clone(),
                open: Vec::with_capacity(per_batch),
                bytes: 0,
            };
            move |event| staging.send(event)
        },
        || {
            let mut seen = 0;
            while seen < total {
                let (batch, bytes) = rx.recv().expect("bench staged recv");
                seen += black_box(batch.len());
                largest = largest.max(bytes);
                drop(batch);
                used.fetch_sub(bytes, AcqRel);
            }
        },
    );
    Measured {
        elapsed,
        left: used.load(Acquire),
        largest,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reservation_fits_under_the_bound_or_is_refused() {
        let used = AtomicUsize::new(BUFFERED_BYTES - 10);
        assert!(!try_reserve(&used, 11));
        assert_eq!(used.load(Acquire), BUFFERED_BYTES - 10);
        assert!(try_reserve(&used, 10));
        assert_eq!(used.load(Acquire), BUFFERED_BYTES);
        assert!(!try_reserve(&used, 1));
    }

    #[test]
    fn every_event_arrives_in_batches_cut_at_the_target() {
        // 10 KiB events: six make a batch (a seventh would pass 64 KiB);
        // partial batches arrive when each of 3 producers is done.
        let run = measured(3, 1000, 10 * 1024);
        assert_eq!(run.left, 0, "every taken batch's bytes are given back");
        assert_eq!(run.largest, 6 * 10 * 1024);
        // Events of exactly a 64th of the target fill a batch exactly.
        let run = measured(2, 1000, BATCH_BYTES / 64);
        assert_eq!((run.left, run.largest), (0, BATCH_BYTES));
    }
}
