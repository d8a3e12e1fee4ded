//! The reference target: a bare bounded `std::sync::mpsc::sync_channel`.
//!
//! It does what the dispatcher does at its simplest (bounded hand-off from
//! many producers to a consumer, refuse when full) with none of its
//! features, so `dispatcher throughput / channel throughput` shows the
//! dispatcher's own overhead on any machine. The consumer side reads it in
//! batches (one blocking receive, then up to `max_batch_items - 1` more
//! without waiting, into a reused buffer) so the consumer loop is the same.

use std::ops::Deref;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TryRecvError, TrySendError};
use std::time::Duration;

use dispatcher::FlushReason;

use crate::event::Event;
use crate::source::{BatchSource, DeliveredBatch, SourceError};
use crate::target::{Offer, Target};

/// Creates the reference channel: a [`ChannelTarget`] holding at most
/// `capacity` events (by count, not bytes), and the [`ChannelBatches`] that
/// drains it in batches of at most `max_batch_items` (at least 1).
///
/// The channel closes when every `ChannelTarget` clone is dropped; the
/// consumer then drains what is left and sees [`SourceError::Closed`].
///
/// # Panics
///
/// If `max_batch_items` is 0.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use loadgen::{channel, BatchSource, Event, Offer, Target};
///
/// let (target, mut batches) = channel(2, 16);
/// let event = |seq| Event::new(vec![0; 10], 0, 0, seq);
/// assert!(matches!(target.offer(event(0)), Offer::Accepted));
/// assert!(matches!(target.offer(event(1)), Offer::Accepted));
/// assert!(matches!(target.offer(event(2)), Offer::Refused(_))); // full
///
/// let batch = batches.recv_batch(Duration::from_secs(1)).unwrap();
/// assert_eq!(batch.len(), 2);
/// drop(batch);
/// drop(target);
/// assert!(batches.recv_batch(Duration::from_secs(1)).is_err()); // closed and drained
/// ```
pub fn channel(capacity: usize, max_batch_items: usize) -> (ChannelTarget, ChannelBatches) {
    assert!(max_batch_items > 0, "max_batch_items must be at least 1");
    let (tx, rx) = mpsc::sync_channel(capacity);
    let batches = ChannelBatches {
        rx,
        max_batch_items,
        buf: Vec::with_capacity(max_batch_items),
    };
    (ChannelTarget { tx }, batches)
}

/// The sending side of the reference channel (see [`channel`]). Offers never
/// wait: a full channel refuses, like the dispatcher's `Reject` policy.
#[derive(Debug, Clone)]
pub struct ChannelTarget {
    tx: SyncSender<Event>,
}

impl Target for ChannelTarget {
    fn offer(&self, event: Event) -> Offer {
        match self.tx.try_send(event) {
            Ok(()) => Offer::Accepted,
            Err(TrySendError::Full(event)) => Offer::Refused(event),
            Err(TrySendError::Disconnected(event)) => Offer::Closed(event),
        }
    }
}

/// The receiving side of the reference channel (see [`channel`]).
#[derive(Debug)]
pub struct ChannelBatches {
    rx: Receiver<Event>,
    max_batch_items: usize,
    buf: Vec<Event>,
}

impl ChannelBatches {
    /// Adds whatever is ready (up to the batch limit) behind `first`.
    fn fill(&mut self, first: Event) -> ChannelBatch<'_> {
        self.buf.clear();
        let mut bytes = first.payload.len();
        self.buf.push(first);
        while self.buf.len() < self.max_batch_items {
            match self.rx.try_recv() {
                Ok(event) => {
                    bytes += event.payload.len();
                    self.buf.push(event);
                }
                Err(_) => break,
            }
        }
        ChannelBatch {
            events: &mut self.buf,
            bytes,
        }
    }
}

impl BatchSource for ChannelBatches {
    type Batch<'a> = ChannelBatch<'a>;

    fn recv_batch(&mut self, timeout: Duration) -> Result<ChannelBatch<'_>, SourceError> {
        match self.rx.recv_timeout(timeout) {
            Ok(first) => Ok(self.fill(first)),
            Err(RecvTimeoutError::Timeout) => Err(SourceError::Empty),
            Err(RecvTimeoutError::Disconnected) => Err(SourceError::Closed),
        }
    }

    fn try_recv_batch(&mut self) -> Result<ChannelBatch<'_>, SourceError> {
        match self.rx.try_recv() {
            Ok(first) => Ok(self.fill(first)),
            Err(TryRecvError::Empty) => Err(SourceError::Empty),
            Err(TryRecvError::Disconnected) => Err(SourceError::Closed),
        }
    }
}

/// A batch from the reference channel. Dropping it drops its events and
/// keeps the buffer for the next batch.
#[derive(Debug)]
pub struct ChannelBatch<'a> {
    events: &'a mut Vec<Event>,
    bytes: usize,
}

impl Deref for ChannelBatch<'_> {
    type Target = [Event];

    fn deref(&self) -> &[Event] {
        self.events
    }
}

impl DeliveredBatch for ChannelBatch<'_> {
    fn bytes(&self) -> usize {
        self.bytes
    }

    fn reason(&self) -> Option<FlushReason> {
        None
    }
}

impl Drop for ChannelBatch<'_> {
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

    #[test]
    fn batches_hold_at_most_the_limit_in_order() {
        let (target, mut batches) = channel(10, 4);
        for seq in 0..6 {
            assert!(matches!(target.offer(event(seq, 3)), Offer::Accepted));
        }
        let batch = batches.try_recv_batch().unwrap();
        let seqs: Vec<u64> = batch.iter().map(|e| e.seq()).collect();
        assert_eq!(seqs, [0, 1, 2, 3]);
        assert_eq!((batch.bytes(), batch.reason()), (12, None));
        drop(batch);
        assert_eq!(batches.try_recv_batch().unwrap().len(), 2);
        assert_eq!(batches.try_recv_batch().unwrap_err(), SourceError::Empty);
    }

    #[test]
    fn closing_drains_then_reports_closed() {
        let (target, mut batches) = channel(4, 8);
        assert!(matches!(target.offer(event(0, 1)), Offer::Accepted));
        drop(target);
        assert_eq!(batches.recv_batch(Duration::ZERO).unwrap().len(), 1);
        assert_eq!(batches.try_recv_batch().unwrap_err(), SourceError::Closed);
    }

    #[test]
    fn a_dropped_receiver_closes_the_target() {
        let (target, batches) = channel(4, 8);
        drop(batches);
        assert!(matches!(target.offer(event(0, 1)), Offer::Closed(_)));
    }
}
