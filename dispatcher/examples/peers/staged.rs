//! `--peers staged`: the floor of any design that batches by bytes under an
//! exact bound, not a peer a user would pick.
//!
//! Each producer thread owns its open batch outright (no lock, no shared
//! state but the budget), reserves each event's bytes with one
//! compare-and-swap on a shared counter, and hands a batch over a bounded
//! crossbeam channel once it holds 64 KiB; its last, partial batch goes when
//! the thread is done. The consumer takes batches, drops them and gives
//! their bytes back. It has no interval, no policies but waiting (it yields
//! until the budget has room), no statistics, no shutdown: only what every
//! byte-bounded batcher must do. A design that stages events per thread and
//! admits them through one atomic reservation, as the issue suggests, is at
//! best this; its distance from the dispatcher is what such a redesign could
//! buy, and its distance from the crossbeam batcher is what batching by
//! bytes costs on this machine's allocator.

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
    per_batch: usize,
}

impl Staging<'_> {
    fn send(&mut self, event: Vec<u8>) {
        let weight = event.len();
        reserve(self.used, weight);
        self.bytes += weight;
        self.open.push(event);
        if self.bytes >= BATCH_BYTES {
            self.seal();
        }
    }

    fn seal(&mut self) {
        let batch = std::mem::replace(&mut self.open, Vec::with_capacity(self.per_batch));
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

/// Reserves `weight` bytes of the bound, yielding while they do not fit.
fn reserve(used: &AtomicUsize, weight: usize) {
    let mut seen = used.load(Acquire);
    loop {
        if seen + weight > BUFFERED_BYTES {
            thread::yield_now();
            seen = used.load(Acquire);
            continue;
        }
        match used.compare_exchange_weak(seen, seen + weight, AcqRel, Acquire) {
            Ok(_) => return,
            Err(now) => seen = now,
        }
    }
}

/// The staged run: see the module's docs.
pub(crate) fn staged_run(producers: usize, total: usize, size: usize) -> Duration {
    let used = AtomicUsize::new(0);
    let per_batch = BATCH_BYTES / size + 1;
    // Every batch but each producer's last holds 64 KiB of reserved bytes,
    // so this many never makes a producer wait on the channel: only the
    // bound makes it wait.
    let (tx, rx) = crossbeam_channel::bounded::<Sealed>(BUFFERED_BYTES / BATCH_BYTES + producers);
    let used = &used;
    timed_run(
        producers,
        total,
        size,
        || {
            let mut staging = Staging {
                used,
                tx: tx.clone(),
                open: Vec::with_capacity(per_batch),
                bytes: 0,
                per_batch,
            };
            move |event| staging.send(event)
        },
        || {
            let mut seen = 0;
            while seen < total {
                let (batch, bytes) = rx.recv().expect("bench staged recv");
                seen += black_box(batch.len());
                drop(batch);
                used.fetch_sub(bytes, AcqRel);
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_arrives_and_the_bound_is_given_back() {
        // Partial batches (3 producers, 1000 events of 1 KiB: 64 a batch)
        // arrive when each producer is done.
        staged_run(3, 1000, 1024);
        let used = AtomicUsize::new(BUFFERED_BYTES - 10);
        let waiter = thread::scope(|scope| {
            let waiting = scope.spawn(|| reserve(&used, 20));
            thread::sleep(Duration::from_millis(20));
            let still = !waiting.is_finished();
            used.fetch_sub(10, AcqRel);
            waiting.join().expect("reserve returns once there is room");
            still
        });
        assert!(waiter, "reserve must wait while 20 bytes do not fit");
        assert_eq!(used.load(Acquire), BUFFERED_BYTES);
    }
}
