//! Where consumers take batches from: the [`BatchSource`] trait, implemented
//! for the dispatcher's [`Batches`] and for the reference channels
//! ([`ReferenceBatches`](crate::ReferenceBatches)), so one consumer loop serves all.

use std::ops::Deref;
use std::time::Duration;

use dispatcher::{Batch, Batches, FlushReason, RecvTimeoutError, TryRecvError};

use crate::event::Event;

/// A batch as a consumer sees it: its events, their summed weight, and why
/// it was cut (when the source knows).
pub trait DeliveredBatch: Deref<Target = [Event]> {
    /// The summed weight of the events in bytes.
    fn bytes(&self) -> usize;
    /// Why the batch was emitted; `None` for sources that do not cut batches
    /// for a reason (the channel reference).
    fn reason(&self) -> Option<FlushReason>;
    /// Takes the events out, in order, without copying them, leaving `spare`'s
    /// buffer (emptied first) in their place for the source to reuse; the batch's
    /// [`bytes`](Self::bytes) and [`reason`](Self::reason) stay.
    fn take_events(&mut self, spare: Vec<Event>) -> Vec<Event>;
}

/// Why no batch came back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// Nothing was ready (within the timeout).
    #[error("no batch ready")]
    Empty,
    /// The source is closed and drained: no batch will ever come.
    #[error("source closed and drained")]
    Closed,
}

/// A receiving end that hands out batches of [`Event`]s.
pub trait BatchSource {
    /// The batch type; dropping it gives any buffer back to the source.
    type Batch<'a>: DeliveredBatch
    where
        Self: 'a;

    /// Waits up to `timeout` for the next batch.
    ///
    /// # Errors
    ///
    /// [`SourceError::Empty`] if none came in time, [`SourceError::Closed`]
    /// once closed and drained.
    fn recv_batch(&mut self, timeout: Duration) -> Result<Self::Batch<'_>, SourceError>;

    /// Takes the next batch if one is ready, without waiting.
    ///
    /// # Errors
    ///
    /// As [`recv_batch`](BatchSource::recv_batch).
    fn try_recv_batch(&mut self) -> Result<Self::Batch<'_>, SourceError>;

    /// Gives up on what the source still holds: how many events that is. The default
    /// takes and drops every batch ready; a source that can count without taking
    /// overrides it. What it held is dropped with the source.
    fn abandon(&mut self) -> u64 {
        take_all(self)
    }
}

/// Takes and drops every batch `source` has ready: how many events they held.
pub(crate) fn take_all<S: BatchSource + ?Sized>(source: &mut S) -> u64 {
    let mut left = 0;
    while let Ok(batch) = source.try_recv_batch() {
        left += batch.len() as u64;
    }
    left
}

impl DeliveredBatch for Batch<Event> {
    fn bytes(&self) -> usize {
        Batch::bytes(self)
    }

    fn reason(&self) -> Option<FlushReason> {
        Some(Batch::reason(self))
    }

    fn take_events(&mut self, spare: Vec<Event>) -> Vec<Event> {
        self.swap_items(spare)
    }
}

impl BatchSource for Batches<Event> {
    type Batch<'a> = Batch<Event>;

    fn recv_batch(&mut self, timeout: Duration) -> Result<Batch<Event>, SourceError> {
        self.recv_timeout(timeout).map_err(|e| match e {
            RecvTimeoutError::Timeout => SourceError::Empty,
            _ => SourceError::Closed,
        })
    }

    fn try_recv_batch(&mut self) -> Result<Batch<Event>, SourceError> {
        self.try_recv().map_err(|e| match e {
            TryRecvError::Empty => SourceError::Empty,
            _ => SourceError::Closed,
        })
    }
}
