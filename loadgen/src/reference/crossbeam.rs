//! A bounded `crossbeam-channel` as a reference [`Queue`].

use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError, TrySendError};

use super::{Queue, ReferenceBatches, ReferenceTarget, pair};
use crate::event::Event;
use crate::source::SourceError;
use crate::target::Offer;

/// The crossbeam channel's receiving half.
#[derive(Debug)]
pub struct CrossbeamQueue(Receiver<Event>);

impl Queue for CrossbeamQueue {
    type Sender = Sender<Event>;

    fn try_send(tx: &Sender<Event>, event: Event) -> Result<(), Offer> {
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

    fn waiting(&self) -> Option<usize> {
        Some(self.0.len())
    }

    fn try_recv(&mut self) -> Result<Event, SourceError> {
        self.0.try_recv().map_err(|err| match err {
            TryRecvError::Empty => SourceError::Empty,
            TryRecvError::Disconnected => SourceError::Closed,
        })
    }
}

/// The crossbeam reference: a bounded `crossbeam_channel` of `capacity` events
/// (by count), read in batches of at most `max_batch_items` (at least 1).
///
/// # Panics
///
/// If `max_batch_items` is 0.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use loadgen::{crossbeam, BatchSource, Event, Offer, Target};
///
/// let (target, mut batches) = crossbeam(1, 16);
/// assert!(matches!(target.offer(Event::new(vec![1], 0, 0, 0)), Offer::Accepted));
/// assert!(matches!(target.offer(Event::new(vec![2], 0, 0, 1)), Offer::Refused(_)));
/// assert_eq!(batches.recv_batch(Duration::from_secs(1)).unwrap().len(), 1);
/// ```
pub fn crossbeam(
    capacity: usize,
    max_batch_items: usize,
) -> (
    ReferenceTarget<CrossbeamQueue>,
    ReferenceBatches<CrossbeamQueue>,
) {
    let (tx, rx) = crossbeam_channel::bounded(capacity);
    pair(tx, CrossbeamQueue(rx), max_batch_items)
}
