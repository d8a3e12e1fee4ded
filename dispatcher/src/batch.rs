//! A batch of events handed to a receiver, and why it was cut.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use crate::core::Core;

/// Why a batch was emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum FlushReason {
    /// `interval` elapsed since the batch's first event.
    Interval,
    /// The batch reached `max_batch_bytes`, or the next event would have
    /// pushed it past.
    Bytes,
    /// The batch reached `max_batch_items`.
    Items,
    /// [`Dispatcher::flush`](crate::Dispatcher::flush) was called.
    Manual,
    /// The dispatcher is shutting down.
    Drain,
    /// The builder's `should_flush` hook asked for it, or its
    /// `will_overflow` hook said the next event must start a new batch.
    Hook,
}

impl FlushReason {
    /// Every reason, in declaration order (the order of [`FlushCounts`](crate::FlushCounts)).
    pub const ALL: [FlushReason; 6] = [
        FlushReason::Interval,
        FlushReason::Bytes,
        FlushReason::Items,
        FlushReason::Manual,
        FlushReason::Drain,
        FlushReason::Hook,
    ];

    /// A lowercase name: `interval`, `bytes`, `items`, `manual`, `drain`, `hook`.
    pub fn as_str(self) -> &'static str {
        match self {
            FlushReason::Interval => "interval",
            FlushReason::Bytes => "bytes",
            FlushReason::Items => "items",
            FlushReason::Manual => "manual",
            FlushReason::Drain => "drain",
            FlushReason::Hook => "hook",
        }
    }
}

impl fmt::Display for FlushReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A sealed batch, as the dispatcher keeps it before a receiver takes it.
pub(crate) struct Sealed<T> {
    /// Sequence number, in sealing order.
    pub(crate) id: u64,
    pub(crate) items: Vec<T>,
    pub(crate) bytes: usize,
    pub(crate) reason: FlushReason,
    /// The lowest spill sequence number among its events read back from
    /// the disk tier, if any (never above it; see `core::spill`).
    pub(crate) spill: Option<u64>,
    /// When its first event joined it, in nanoseconds since the core's
    /// epoch: with several partitions, receivers take the batch whose events
    /// have waited longest (its outbox publishes the oldest's). 0 with one
    /// partition, where nothing compares them.
    pub(crate) since: u64,
}

/// What settling a batch needs to know once its events are gone.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Receipt {
    pub(crate) id: u64,
    pub(crate) len: usize,
    pub(crate) bytes: usize,
    pub(crate) reason: FlushReason,
    pub(crate) spill: Option<u64>,
}

impl Receipt {
    pub(crate) fn of<T>(sealed: &Sealed<T>) -> Self {
        Receipt {
            id: sealed.id,
            len: sealed.items.len(),
            bytes: sealed.bytes,
            reason: sealed.reason,
            spill: sealed.spill,
        }
    }
}

/// Events emitted together, in admission order, with their total weight and
/// the reason the batch was cut.
///
/// A `Batch` dereferences to a slice of its events. Take the events out by
/// value with [`drain`](Batch::drain); when the batch is dropped its buffer goes
/// back to the dispatcher for reuse, so steady-state batching allocates nothing.
///
/// # Examples
///
/// ```
/// use dispatcher::{Dispatcher, FlushReason};
///
/// let (dispatcher, batches) = Dispatcher::<String>::builder().build()?;
/// let producer = dispatcher.producer();
/// producer.try_enqueue("a".to_string())?;
/// producer.try_enqueue("bc".to_string())?;
/// dispatcher.flush();
///
/// let mut batch = batches.recv()?;
/// assert_eq!(batch.len(), 2);
/// assert_eq!(batch.bytes(), 3);
/// assert_eq!(batch.reason(), FlushReason::Manual);
/// let owned: Vec<String> = batch.drain().collect();
/// assert_eq!(owned, ["a", "bc"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Batch<T> {
    id: u64,
    items: Vec<T>,
    bytes: usize,
    reason: FlushReason,
    /// See [`Sealed::spill`]: a pull-mode batch holding events read back
    /// from disk is acknowledged there when it is dropped.
    spill: Option<u64>,
    /// See [`Sealed::since`]: kept for a batch that goes back to its queue.
    since: u64,
    core: Arc<Core<T>>,
    /// The partition the batch was cut in.
    part: usize,
    /// Sink mode: the batch is in flight until settled. Dropped unsettled
    /// (its worker or async driver went away mid-write), it goes back to
    /// the head of its partition's queue, still charged: never lost.
    unsettled: bool,
}

impl<T> Batch<T> {
    pub(crate) fn new(sealed: Sealed<T>, core: Arc<Core<T>>, part: usize, held: bool) -> Self {
        Batch {
            id: sealed.id,
            items: sealed.items,
            bytes: sealed.bytes,
            reason: sealed.reason,
            spill: sealed.spill,
            since: sealed.since,
            core,
            part,
            unsettled: held,
        }
    }

    /// Takes over the duty to settle this batch (sink mode): from now on
    /// the caller settles it with the receipt, and dropping the batch only
    /// frees its events.
    pub(crate) fn take_receipt(&mut self) -> Receipt {
        self.unsettled = false;
        Receipt {
            id: self.id,
            len: self.items.len(),
            bytes: self.bytes,
            reason: self.reason,
            spill: self.spill.take(),
        }
    }

    /// The dispatcher and the partition the batch was cut in.
    pub(crate) fn home(&self) -> (&Arc<Core<T>>, usize) {
        (&self.core, self.part)
    }

    /// The summed weight of the events, as admission charged them (for a
    /// batch DropOldest evicted from or a re-cut split, its share of that
    /// sum: see the crate docs on a `Weight` that changes its answer).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Why the batch was cut.
    pub fn reason(&self) -> FlushReason {
        self.reason
    }

    /// The events, in admission order.
    pub fn items(&self) -> &[T] {
        &self.items
    }

    /// Moves the events out, in admission order, keeping the buffer for reuse.
    pub fn drain(&mut self) -> std::vec::Drain<'_, T> {
        debug_assert!(!self.unsettled, "a sink gets its batch by reference");
        self.items.drain(..)
    }

    /// Takes the events out as a `Vec` without copying them, leaving `spare`'s
    /// buffer (emptied first) in their place: that buffer goes back to the
    /// dispatcher for reuse when the batch is dropped. For a consumer that hands
    /// whole batches of events to another thread and gets the emptied vectors
    /// back: no event is copied, and in the steady state nothing is allocated.
    /// [`bytes`](Self::bytes) and [`reason`](Self::reason) stay as they were.
    ///
    /// # Examples
    ///
    /// ```
    /// use dispatcher::Dispatcher;
    ///
    /// let (dispatcher, batches) = Dispatcher::<String>::builder().build()?;
    /// let producer = dispatcher.producer();
    /// producer.try_enqueue("a".to_string())?;
    /// producer.try_enqueue("bc".to_string())?;
    /// dispatcher.flush();
    ///
    /// let mut batch = batches.recv()?;
    /// let events = batch.swap_items(Vec::with_capacity(16));
    /// assert_eq!(events, ["a", "bc"]);
    /// assert!(batch.is_empty());
    /// assert_eq!(batch.bytes(), 3);
    /// drop(batch); // the spare buffer goes back to the dispatcher
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn swap_items(&mut self, mut spare: Vec<T>) -> Vec<T> {
        debug_assert!(!self.unsettled, "a sink gets its batch by reference");
        spare.clear();
        std::mem::replace(&mut self.items, spare)
    }

    /// Takes the events as a `Vec` (its buffer is then not recycled).
    pub fn into_vec(mut self) -> Vec<T> {
        debug_assert!(!self.unsettled, "a sink gets its batch by reference");
        std::mem::take(&mut self.items)
    }
}

impl<T> Deref for Batch<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        &self.items
    }
}

impl<'a, T> IntoIterator for &'a Batch<T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;

    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
    }
}

impl<T> fmt::Debug for Batch<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Batch")
            .field("len", &self.items.len())
            .field("bytes", &self.bytes)
            .field("reason", &self.reason)
            .finish()
    }
}

impl<T> Drop for Batch<T> {
    fn drop(&mut self) {
        if self.unsettled {
            self.unsettled = false;
            let sealed = Sealed {
                id: self.id,
                items: std::mem::take(&mut self.items),
                bytes: self.bytes,
                reason: self.reason,
                spill: self.spill.take(),
                since: self.since,
            };
            if let Some(mut sealed) = self.core.requeue(self.part, sealed) {
                // Landed and counted failed: the error hook takes it over.
                sealed.spill = None;
                let batch = Batch::new(sealed, Arc::clone(&self.core), self.part, false);
                let failure = crate::sink::FlushFailure {
                    error: crate::sink::FlushError::Abandoned,
                    attempts: 0,
                };
                crate::sink::hand_to_hook(self.core.on_flush_error.as_ref(), failure, batch);
            }
            return;
        }
        if let Some(seq) = self.spill.take() {
            // Pull mode: the consumer is done with the batch.
            self.core.spill_returned(seq);
        }
        if self.items.capacity() == 0 {
            return;
        }
        // Drop the events here, on the receiver's thread, outside any lock.
        self.items.clear();
        self.core
            .recycle(self.part, std::mem::take(&mut self.items));
    }
}
