//! The reference targets: bare bounded channels drained in batches.
//!
//! Each does what the dispatcher does at its simplest (a bounded hand-off from
//! many producers to one consumer, refuse when full) with none of its features
//! (no byte bound, no interval, no policies), so
//! `dispatcher throughput / reference throughput` shows the dispatcher's own
//! cost on any machine, against the channel a user would otherwise pick:
//!
//! - [`channel`], a `std::sync::mpsc::sync_channel`;
//! - [`crossbeam`], a bounded `crossbeam-channel`, the fastest general-purpose
//!   channel in the ecosystem;
//! - [`tokio_mpsc`], a bounded `tokio::sync::mpsc`, as an async application has it.
//!
//! They differ only in the [`Queue`] underneath: every one is offered to with
//! `try_send` and read by the same [`ReferenceBatches`], one blocking receive
//! then up to `max_batch_items - 1` more without waiting, into a reused buffer,
//! so the consumer loop is the same for all.

mod crossbeam;
mod std_mpsc;
mod tokio_mpsc;

use std::ops::Deref;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use dispatcher::FlushReason;

use crate::event::Event;
use crate::source::{BatchSource, DeliveredBatch, SourceError};
use crate::target::{Offer, Target};

pub use self::crossbeam::{CrossbeamQueue, crossbeam};
pub use self::std_mpsc::{StdQueue, channel};
pub use self::tokio_mpsc::{TokioQueue, tokio_mpsc};

/// A bounded multi-producer queue a reference target sends into.
pub trait Queue: Send + 'static {
    /// The sending half; cloned per producer when the queue needs it.
    type Sender: Send + Sync + 'static;

    /// Sends without waiting.
    ///
    /// # Errors
    ///
    /// [`Offer::Refused`] when full, [`Offer::Closed`] once the receiver is gone;
    /// both hand the event back.
    fn try_send(tx: &Self::Sender, event: Event) -> Result<(), Offer>;

    /// Waits up to `timeout` for one event.
    ///
    /// # Errors
    ///
    /// [`SourceError::Empty`] if none came in time, [`SourceError::Closed`] once
    /// every sender is gone and the queue is drained.
    fn recv_timeout(&mut self, timeout: Duration) -> Result<Event, SourceError>;

    /// Takes one event if one is ready.
    ///
    /// # Errors
    ///
    /// As [`Queue::recv_timeout`].
    fn try_recv(&mut self) -> Result<Event, SourceError>;

    /// How many events wait in the queue, if it can say without taking them.
    fn waiting(&self) -> Option<usize> {
        None
    }
}

/// The sending side of a reference channel. Offers never wait: a full channel
/// refuses, like the dispatcher's `Reject` policy. The channel closes when every
/// clone is dropped; the consumer then drains what is left and sees
/// [`SourceError::Closed`].
pub struct ReferenceTarget<Q: Queue> {
    tx: Arc<Q::Sender>,
}

impl<Q: Queue> Clone for ReferenceTarget<Q> {
    fn clone(&self) -> Self {
        Self {
            tx: Arc::clone(&self.tx),
        }
    }
}

impl<Q: Queue> std::fmt::Debug for ReferenceTarget<Q> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReferenceTarget").finish_non_exhaustive()
    }
}

impl<Q: Queue> Target for ReferenceTarget<Q> {
    fn offer(&self, event: Event) -> Offer {
        match Q::try_send(&self.tx, event) {
            Ok(()) => Offer::Accepted,
            Err(offer) => offer,
        }
    }
}

/// How long [`ReferenceBatches::abandon`] waits for the last sender to go: a
/// producer that checked its stop flag just before the drain may offer one
/// more event whenever it next gets a processor.
pub const LATE_SENDERS: Duration = Duration::from_secs(1);

/// The receiving side of a reference channel.
#[derive(Debug)]
pub struct ReferenceBatches<Q: Queue> {
    queue: Q,
    max_batch_items: usize,
    buf: Vec<Event>,
    /// The targets' shared sender: while it lives, an offer may still land.
    senders: Weak<Q::Sender>,
}

/// Pairs a queue's halves into the target and its batch reader.
fn pair<Q: Queue>(
    tx: Q::Sender,
    queue: Q,
    max_batch_items: usize,
) -> (ReferenceTarget<Q>, ReferenceBatches<Q>) {
    assert!(max_batch_items > 0, "max_batch_items must be at least 1");
    let tx = Arc::new(tx);
    let batches = ReferenceBatches {
        queue,
        max_batch_items,
        buf: Vec::with_capacity(max_batch_items.min(1 << 16)),
        senders: Arc::downgrade(&tx),
    };
    (ReferenceTarget { tx }, batches)
}

impl<Q: Queue> ReferenceBatches<Q> {
    /// Adds whatever is ready (up to the batch limit) behind `first`.
    fn fill(&mut self, first: Event) -> ReferenceBatch<'_> {
        self.buf.clear();
        let mut bytes = first.payload.len();
        self.buf.push(first);
        while self.buf.len() < self.max_batch_items {
            match self.queue.try_recv() {
                Ok(event) => {
                    bytes += event.payload.len();
                    self.buf.push(event);
                }
                Err(_) => break,
            }
        }
        ReferenceBatch {
            events: &mut self.buf,
            bytes,
        }
    }
}

impl<Q: Queue> BatchSource for ReferenceBatches<Q> {
    type Batch<'a> = ReferenceBatch<'a>;

    fn recv_batch(&mut self, timeout: Duration) -> Result<ReferenceBatch<'_>, SourceError> {
        let first = self.queue.recv_timeout(timeout)?;
        Ok(self.fill(first))
    }

    fn try_recv_batch(&mut self) -> Result<ReferenceBatch<'_>, SourceError> {
        let first = self.queue.try_recv()?;
        Ok(self.fill(first))
    }

    /// Counts what the channel holds once no offer can land any more: it first
    /// waits (up to [`LATE_SENDERS`]) for every target to be dropped, so an
    /// offer made after the count cannot go uncounted. Offers never wait, so
    /// stopped producers let go of their targets at once when they run.
    fn abandon(&mut self) -> u64 {
        let until = Instant::now() + LATE_SENDERS;
        while self.senders.strong_count() > 0 && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(1));
        }
        match self.queue.waiting() {
            Some(n) => n as u64,
            None => crate::source::take_all(self),
        }
    }
}

/// A batch from a reference channel. Dropping it drops its events and keeps
/// the buffer for the next batch.
#[derive(Debug)]
pub struct ReferenceBatch<'a> {
    events: &'a mut Vec<Event>,
    bytes: usize,
}

impl Deref for ReferenceBatch<'_> {
    type Target = [Event];

    fn deref(&self) -> &[Event] {
        self.events
    }
}

impl DeliveredBatch for ReferenceBatch<'_> {
    fn bytes(&self) -> usize {
        self.bytes
    }

    fn reason(&self) -> Option<FlushReason> {
        None
    }

    fn take_events(&mut self, mut spare: Vec<Event>) -> Vec<Event> {
        spare.clear();
        std::mem::replace(self.events, spare)
    }
}

impl Drop for ReferenceBatch<'_> {
    fn drop(&mut self) {
        self.events.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(seq: u64, len: usize) -> Event {
        Event::new(vec![0; len], 0, 0, seq)
    }

    /// The same checks for every queue: made by `make(capacity, max_batch_items)`.
    fn behaves<Q: Queue>(make: fn(usize, usize) -> (ReferenceTarget<Q>, ReferenceBatches<Q>)) {
        // Batches hold at most the limit, in order; a full channel refuses.
        let (target, mut batches) = make(6, 4);
        for seq in 0..6 {
            assert!(matches!(target.offer(event(seq, 3)), Offer::Accepted));
        }
        assert!(matches!(target.offer(event(6, 3)), Offer::Refused(e) if e.seq() == 6));
        let batch = batches.try_recv_batch().unwrap();
        let seqs: Vec<u64> = batch.iter().map(|e| e.seq()).collect();
        assert_eq!(seqs, [0, 1, 2, 3]);
        assert_eq!((batch.bytes(), batch.reason()), (12, None));
        drop(batch);
        assert_eq!(batches.try_recv_batch().unwrap().len(), 2);
        assert_eq!(batches.try_recv_batch().unwrap_err(), SourceError::Empty);
        assert_eq!(
            batches.recv_batch(Duration::from_millis(5)).unwrap_err(),
            SourceError::Empty
        );

        // Closing (every clone dropped) drains, then reports closed.
        let other = target.clone();
        assert!(matches!(other.offer(event(7, 1)), Offer::Accepted));
        drop((target, other));
        assert_eq!(batches.recv_batch(Duration::ZERO).unwrap().len(), 1);
        assert_eq!(
            batches.recv_batch(Duration::from_secs(5)).unwrap_err(),
            SourceError::Closed
        );

        // A dropped receiver closes the target and hands the event back.
        let (target, batches) = make(4, 8);
        drop(batches);
        assert!(matches!(target.offer(event(9, 1)), Offer::Closed(e) if e.seq() == 9));
    }

    /// Abandoning counts what is left without delivering it, with or without a length.
    /// An offer that lands after the consumer gave up (a producer late to see its
    /// stop) is counted too.
    fn abandons<Q: Queue>(make: fn(usize, usize) -> (ReferenceTarget<Q>, ReferenceBatches<Q>)) {
        let (target, mut batches) = make(10, 2);
        for seq in 0..7 {
            assert!(matches!(target.offer(event(seq, 1)), Offer::Accepted));
        }
        assert_eq!(batches.try_recv_batch().unwrap().len(), 2);
        let late = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            assert!(matches!(target.offer(event(7, 1)), Offer::Accepted));
        });
        assert_eq!(batches.abandon(), 6);
        late.join().unwrap();
    }

    #[test]
    fn abandoning_counts_what_is_left() {
        abandons(channel);
        abandons(crossbeam);
        abandons(tokio_mpsc);
    }

    #[test]
    fn std_sync_channel_behaves() {
        behaves(channel);
    }

    #[test]
    fn crossbeam_channel_behaves() {
        behaves(crossbeam);
    }

    #[test]
    fn tokio_mpsc_behaves() {
        behaves(tokio_mpsc);
    }

    #[test]
    fn a_receive_wakes_when_another_thread_sends() {
        let (target, mut batches) = tokio_mpsc(4, 4);
        let sender = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            assert!(matches!(target.offer(event(1, 1)), Offer::Accepted));
        });
        assert_eq!(
            batches.recv_batch(Duration::from_secs(10)).unwrap().len(),
            1
        );
        sender.join().unwrap();
    }
}
