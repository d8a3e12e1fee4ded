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
    /// takes every batch ready and frees their events on a thread of their own; a
    /// source that can count without taking overrides it. What it held is dropped with
    /// the source.
    fn abandon(&mut self) -> u64 {
        take_all(self)
    }
}

/// Takes every batch `source` has ready, its events moved out (not copied) and freed on a
/// thread of their own, so a consumer giving up at a deadline does not spend it on frees:
/// how many events they held.
pub(crate) fn take_all<S: BatchSource + ?Sized>(source: &mut S) -> u64 {
    let mut left = 0;
    let mut taken = Vec::new();
    while let Ok(mut batch) = source.try_recv_batch() {
        left += batch.len() as u64;
        taken.push(batch.take_events(Vec::new()));
    }
    if !taken.is_empty() {
        crate::drop_elsewhere("abandoned", taken);
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

#[cfg(test)]
mod tests {
    use super::*;
    use dispatcher::Dispatcher;
    use std::time::Duration;

    #[test]
    fn abandoning_the_dispatcher_takes_and_counts_every_event_left() {
        let (dispatcher, mut batches) = Dispatcher::<Event>::builder()
            .max_batch_items(7)
            .interval(Duration::from_secs(60))
            .build()
            .unwrap();
        let producer = dispatcher.producer();
        for seq in 0..100 {
            producer
                .try_enqueue(Event::new(vec![1; 8], 0, 0, seq))
                .unwrap();
        }
        dispatcher.flush();
        assert_eq!(batches.abandon(), 100);
        assert_eq!(batches.try_recv_batch().err(), Some(SourceError::Empty));
        // Nothing left to hand back: the events were taken, not lost in the buffer.
        assert!(dispatcher.stop().is_empty());
    }
}
