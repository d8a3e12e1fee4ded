//! A bounded `tokio::sync::mpsc` as a reference [`Queue`]: producers `try_send`
//! from their threads, as a synchronous part of an async application would; the
//! consumer waits for the first event of a batch on a current-thread runtime of
//! its own (the channel's receive is async) and takes the rest without waiting.

use std::time::Duration;

use tokio::sync::mpsc::error::{TryRecvError, TrySendError};
use tokio::sync::mpsc::{self, Receiver, Sender};

use super::{Queue, ReferenceBatches, ReferenceTarget, pair};
use crate::event::Event;
use crate::source::SourceError;
use crate::target::Offer;

/// The tokio channel's receiving half and the runtime its timed receive runs on.
#[derive(Debug)]
pub struct TokioQueue {
    rx: Receiver<Event>,
    runtime: tokio::runtime::Runtime,
}

impl Queue for TokioQueue {
    type Sender = Sender<Event>;

    fn try_send(tx: &Sender<Event>, event: Event) -> Result<(), Offer> {
        tx.try_send(event).map_err(|err| match err {
            TrySendError::Full(event) => Offer::Refused(event),
            TrySendError::Closed(event) => Offer::Closed(event),
        })
    }

    fn recv_timeout(&mut self, timeout: Duration) -> Result<Event, SourceError> {
        // Ready events are taken without entering the runtime.
        match self.try_recv() {
            Err(SourceError::Empty) if !timeout.is_zero() => {}
            ready => return ready,
        }
        let rx = &mut self.rx;
        match self
            .runtime
            .block_on(async { tokio::time::timeout(timeout, rx.recv()).await })
        {
            Ok(Some(event)) => Ok(event),
            Ok(None) => Err(SourceError::Closed),
            Err(_elapsed) => Err(SourceError::Empty),
        }
    }

    fn waiting(&self) -> Option<usize> {
        Some(self.rx.len())
    }

    fn try_recv(&mut self) -> Result<Event, SourceError> {
        self.rx.try_recv().map_err(|err| match err {
            TryRecvError::Empty => SourceError::Empty,
            TryRecvError::Disconnected => SourceError::Closed,
        })
    }
}

/// The tokio reference: a bounded `tokio::sync::mpsc` channel of `capacity`
/// events (by count, at least 1), read in batches of at most `max_batch_items`
/// (at least 1).
///
/// # Panics
///
/// If `max_batch_items` is 0, or the consumer's runtime cannot be built (the
/// process cannot create its timer).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use loadgen::{tokio_mpsc, BatchSource, Event, Offer, Target};
///
/// let (target, mut batches) = tokio_mpsc(1, 16);
/// assert!(matches!(target.offer(Event::new(vec![1], 0, 0, 0)), Offer::Accepted));
/// assert!(matches!(target.offer(Event::new(vec![2], 0, 0, 1)), Offer::Refused(_)));
/// assert_eq!(batches.recv_batch(Duration::from_secs(1)).unwrap().len(), 1);
/// ```
pub fn tokio_mpsc(
    capacity: usize,
    max_batch_items: usize,
) -> (ReferenceTarget<TokioQueue>, ReferenceBatches<TokioQueue>) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime with a timer");
    pair(tx, TokioQueue { rx, runtime }, max_batch_items)
}
