//! The consumer's bookkeeping for each delivered batch: recording each event's
//! enqueue-to-delivery latency and freeing the events; during a drain, on a
//! thread of its own.
//!
//! A batch is delivered the moment the consumer has it; what the harness then
//! does with every event (a histogram record, a free) is bookkeeping, not the
//! consumer's work. It costs tens of nanoseconds an event, and on the
//! consumer's thread it paces how fast the consumer takes its next batch: a
//! drain of 64 MiB of small events spent most of its time there. So once the
//! consumer's work is lifted for a drain, the consumer hands each batch's
//! events (moved, not copied), with the instant it received them, to a
//! bookkeeper thread, and takes the next batch at once; the latencies
//! recorded are those it would have recorded. The producers have stopped by
//! then, so the bookkeeper has a processor to itself on a machine with two.
//!
//! While the run goes on the consumer keeps each batch's books itself: a second
//! thread handed tens of thousands of batches a second cost 22% of the
//! delivered rate with no consumer delay (32 producers, 2 processors).
//!
//! Bounded: at most [`DRAIN_BATCHES`] batches wait for the bookkeeper, and only
//! during a drain, when nothing is admitted any more: what moves there was
//! already counted in the buffer, which empties as fast. Both sides record
//! into one recorder, so a histogram refresh waits for one recorder, as before.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};

use hdrhistogram::sync::Recorder;

use crate::consumer::RECORDER_POLL;
use crate::event::Event;
use crate::source::DeliveredBatch;

/// At most this many delivered batches wait for the bookkeeper during a drain.
const DRAIN_BATCHES: usize = 1 << 16;

/// Emptied event vectors kept for the next batches.
const SPARES: usize = 4;

/// The latency recorder, shared by the consumer and its bookkeeper.
type Shared = Arc<Mutex<Recorder<u64>>>;

/// One delivered batch's events, and when the consumer received them.
struct Delivered {
    events: Vec<Event>,
    at_ns: u64,
}

/// Keeps a consumer's books: during a drain on a bookkeeper thread (when it
/// could be started, and has room), on the consumer's thread otherwise.
pub(crate) struct Books {
    latency: Option<Shared>,
    keeper: Option<Keeper>,
}

/// The consumer's side of the bookkeeper thread.
struct Keeper {
    to: Sender<Delivered>,
    spares: Receiver<Vec<Event>>,
    progress: Arc<Progress>,
    /// Disconnected once the bookkeeper has recorded everything and let go of the recorder.
    done: Receiver<()>,
    thread: JoinHandle<()>,
}

impl Books {
    /// Records into `latency` when given; the bookkeeper thread is named `name` (the
    /// consumer keeps all its books itself if it cannot be started).
    pub(crate) fn start(name: String, latency: Option<Recorder<u64>>) -> Self {
        let latency = latency.map(|recorder| Arc::new(Mutex::new(recorder)));
        // Unbounded as a channel, bounded by `waiting`: every batch is counted there
        // before it is sent, against DRAIN_BATCHES.
        let (to, from) = mpsc::channel::<Delivered>();
        let (spare_to, spares) = mpsc::sync_channel(SPARES);
        let (done_to, done) = mpsc::sync_channel::<()>(0);
        let progress = Arc::new(Progress::default());
        let (shared, theirs) = (latency.clone(), Arc::clone(&progress));
        let keeper = thread::Builder::new()
            .name(name.clone())
            .spawn(move || {
                keep_books(&from, &spare_to, &theirs, shared, &name);
                // Last, after the recorder is let go: the consumer's wait ends.
                drop(done_to);
            })
            .ok()
            .map(|thread| Keeper {
                to,
                spares,
                progress,
                done,
                thread,
            });
        Self { latency, keeper }
    }

    /// Keeps the books of `batch`, received at `at_ns`: while `draining`, takes its
    /// events for the bookkeeper (unless [`DRAIN_BATCHES`] are waiting); otherwise
    /// records their latencies here. What the batch still holds is freed when the
    /// caller drops it.
    pub(crate) fn keep<B: DeliveredBatch>(&self, batch: &mut B, at_ns: u64, draining: bool) {
        if draining
            && let Some(keeper) = &self.keeper
            && keeper.progress.waiting.load(Ordering::Acquire) < DRAIN_BATCHES
        {
            let events = batch.take_events(keeper.spares.try_recv().unwrap_or_default());
            keeper.progress.waiting.fetch_add(1, Ordering::AcqRel);
            if let Err(mpsc::SendError(lost)) = keeper.to.send(Delivered { events, at_ns }) {
                // The bookkeeper is gone (it panicked, which shows when it is joined):
                // the books are kept here instead.
                keeper.progress.waiting.fetch_sub(1, Ordering::AcqRel);
                record(self.latency.as_ref(), &lost.events, lost.at_ns);
            }
            return;
        }
        record(self.latency.as_ref(), batch, at_ns);
    }

    /// Lets a pending histogram refresh collect the recorder's samples.
    pub(crate) fn check_in(&self) {
        check_in(self.latency.as_ref());
    }

    /// Waits until the bookkeeper is done with every batch handed over. Once
    /// `stopped` says a deadline passed (it is asked at least every
    /// [`RECORDER_POLL`]), it waits only for the latencies still to record, which
    /// are cheap, and leaves the frees to a thread of their own: every delivered
    /// event's latency is in the recorder when this returns, however it ends.
    ///
    /// # Panics
    ///
    /// If the bookkeeper thread panicked (a bug): the panic goes on on this thread.
    pub(crate) fn finish(self, stopped: impl Fn() -> bool) {
        let Self { latency, keeper } = self;
        let Some(keeper) = keeper else {
            return;
        };
        drop(keeper.to);
        loop {
            match keeper.done.recv_timeout(RECORDER_POLL) {
                Ok(()) | Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {
                    if stopped() {
                        keeper.progress.hurry.store(true, Ordering::Release);
                    }
                    check_in(latency.as_ref());
                }
            }
        }
        // It has let go of everything: the join returns at once.
        if let Err(panic) = keeper.thread.join() {
            std::panic::resume_unwind(panic);
        }
    }
}

/// Records each event's latency from its intended time to `at_ns`, in microseconds.
fn record(latency: Option<&Shared>, events: &[Event], at_ns: u64) {
    if let Some(shared) = latency {
        let mut recorder = lock(shared);
        for event in events {
            recorder.saturating_record(event.latency_us(at_ns));
        }
    }
}

/// Lets a pending histogram refresh collect the recorder's samples.
fn check_in(latency: Option<&Shared>) {
    if let Some(shared) = latency {
        // Recording zero occurrences changes nothing (not even min or max), but hands
        // over the samples if a refresh is pending.
        lock(shared).saturating_record_n(0, 0);
    }
}

fn lock(shared: &Shared) -> MutexGuard<'_, Recorder<u64>> {
    // Recording cannot leave the histogram half-written: a poisoned lock is still good.
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How far the bookkeeper is, and whether it must hurry: shared with the consumer's side.
#[derive(Default)]
struct Progress {
    /// Batches handed over whose latencies are not recorded yet.
    waiting: AtomicUsize,
    /// A deadline passed: record what is left, leave the frees to a thread of their own.
    hurry: AtomicBool,
}

/// The bookkeeper thread: keeps each batch's books in turn until the consumer lets go. It need
/// not check in with the recorder while it waits: the consumer does (see
/// [`crate::run_consumer`]), and a refresh waits for the one recorder they share. In a
/// hurry (a deadline passed) it only records, and the events are freed on a thread of
/// their own (`<name>-left`), so the consumer waiting for the latencies does not wait
/// for the frees.
fn keep_books(
    from: &Receiver<Delivered>,
    spares: &SyncSender<Vec<Event>>,
    with: &Progress,
    latency: Option<Shared>,
    name: &str,
) {
    let mut left = Vec::new();
    for Delivered { mut events, at_ns } in from {
        record(latency.as_ref(), &events, at_ns);
        with.waiting.fetch_sub(1, Ordering::AcqRel);
        if with.hurry.load(Ordering::Acquire) {
            left.push(events);
            continue;
        }
        events.clear();
        // A full spare list (or a consumer gone) frees the vector instead.
        let _ = spares.try_send(events);
    }
    drop(latency);
    if !left.is_empty() {
        crate::drop_elsewhere(&format!("{name}-left"), left);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::channel;
    use crate::source::BatchSource;
    use crate::target::{Offer, Target};
    use hdrhistogram::Histogram;
    use hdrhistogram::sync::SyncHistogram;

    /// `n` events of `len` bytes, meant to be sent at 0, 1000, 2000 … ns.
    fn fill(target: &impl Target, n: u64, len: usize) {
        for seq in 0..n {
            let event = Event::new(vec![7; len], seq * 1_000, 0, seq);
            assert!(matches!(target.offer(event), Offer::Accepted));
        }
    }

    fn histogram() -> SyncHistogram<u64> {
        Histogram::<u64>::new_with_bounds(1, 1_000_000, 3)
            .unwrap()
            .into()
    }

    #[test]
    fn running_batches_are_kept_in_place_and_drained_ones_beside() {
        for draining in [false, true] {
            let (target, mut batches) = channel(1_000, 100);
            fill(&target, 1_000, 16);
            let mut histogram = histogram();
            let books = Books::start("books-test".to_owned(), Some(histogram.recorder()));
            let at_ns = 5_000_000;
            let mut handed = 0;
            while let Ok(mut batch) = batches.try_recv_batch() {
                books.keep(&mut batch, at_ns, draining);
                // Handed over: the batch is left empty; kept here: it keeps its events.
                handed += usize::from(batch.is_empty());
                assert_eq!(batch.bytes(), 100 * 16, "a batch's weight stays");
            }
            assert_eq!(handed, if draining { 10 } else { 0 });
            books.finish(|| false);
            histogram.refresh();
            assert_eq!(histogram.len(), 1_000, "draining {draining}");
            // Latency = receipt - intended, in microseconds: 5000 down to 4001.
            assert!(histogram.equivalent(histogram.max(), 5_000));
            assert!(histogram.equivalent(histogram.min(), 4_001));
            assert!(
                (histogram.mean() - 4_500.5).abs() < 3.0,
                "{}",
                histogram.mean()
            );
        }
    }

    #[test]
    fn handed_over_batches_are_done_and_their_vectors_come_back() {
        let (target, mut batches) = channel(64, 8);
        fill(&target, 64, 1_000);
        let books = Books::start("books-test".to_owned(), None);
        while let Ok(mut batch) = batches.try_recv_batch() {
            books.keep(&mut batch, 0, true);
            assert!(batch.is_empty());
        }
        let keeper = books.keeper.as_ref().expect("the bookkeeper started");
        while keeper.progress.waiting.load(Ordering::Acquire) > 0 {
            std::thread::yield_now();
        }
        // Emptied, with their buffers, for the next batches.
        let spare = keeper.spares.try_recv().expect("a vector came back");
        assert!(spare.is_empty() && spare.capacity() >= 8);
        books.finish(|| false);
    }

    #[test]
    fn a_refresh_is_not_held_up_by_an_idle_bookkeeper() {
        let mut histogram = histogram();
        let books = Books::start("books-test".to_owned(), Some(histogram.recorder()));
        let (target, mut batches) = channel(10, 10);
        fill(&target, 3, 1);
        let mut batch = batches.try_recv_batch().unwrap();
        books.keep(&mut batch, 10_000, true);
        drop(batch);
        let waiting = &books
            .keeper
            .as_ref()
            .expect("the bookkeeper started")
            .progress
            .waiting;
        while waiting.load(Ordering::Acquire) > 0 {
            std::thread::yield_now();
        }
        // The bookkeeper recorded and went back to waiting; the consumer checks in.
        let refresher = std::thread::spawn(move || {
            histogram.refresh_timeout(std::time::Duration::from_secs(30));
            histogram
        });
        while !refresher.is_finished() {
            books.check_in();
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let histogram = refresher.join().unwrap();
        assert_eq!(histogram.len(), 3);
        books.finish(|| false);
    }
}
