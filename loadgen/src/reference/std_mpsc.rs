//! `std::sync::mpsc::sync_channel` as a reference [`Queue`].

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TryRecvError, TrySendError};
use std::time::Duration;

use super::{Queue, ReferenceBatches, ReferenceTarget, pair};
use crate::event::Event;
use crate::source::SourceError;
use crate::target::Offer;

/// The std channel's receiving half.
#[derive(Debug)]
pub struct StdQueue(Receiver<Event>);

impl Queue for StdQueue {
    type Sender = SyncSender<Event>;

    fn try_send(tx: &SyncSender<Event>, event: Event) -> Result<(), Offer> {
        tx.try_send(event).map_err(|err| match err {
            TrySendError::Full(event) => Offer::Refused(event),
            TrySendError::Disconnected(event) => Offer::Closed(event),
        })
    }

    fn recv_timeout(&mut self, timeout: Duration) -> Result<Event, SourceError> {
        self.0.recv_timeout(timeout).map_err(|err| match err {
            RecvTimeoutError::Timeout => SourceError::Empty,
            RecvTimeoutError::Disconnected => SourceError::Closed,
        })
    }

    fn try_recv(&mut self) -> Result<Event, SourceError> {
        self.0.try_recv().map_err(|err| match err {
            TryRecvError::Empty => SourceError::Empty,
            TryRecvError::Disconnected => SourceError::Closed,
        })
    }
}

/// The std reference: a `sync_channel` holding at most `capacity` events (by
/// count, not bytes), read in batches of at most `max_batch_items` (at least 1).
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
pub fn channel(
    capacity: usize,
    max_batch_items: usize,
) -> (ReferenceTarget<StdQueue>, ReferenceBatches<StdQueue>) {
    let (tx, rx) = mpsc::sync_channel(capacity);
    pair(tx, StdQueue(rx), max_batch_items)
}
