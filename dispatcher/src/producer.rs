//! The cloneable handle producers enqueue through.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::clock::Deadline;
use crate::config::Policy;
use crate::core::Core;
use crate::error::{EnqueueError, EnqueueTimeoutError, TryEnqueueError};
use crate::weight::Weight;

/// A handle for enqueueing events; cheap to clone, `Send + Sync`.
///
/// Events enqueued through one handle are delivered in the order they were
/// accepted. With [`partitions`](crate::Builder::partitions) each handle
/// admits into one partition: [`Dispatcher::producer`](crate::Dispatcher::producer)
/// and every clone take the next partition round-robin, so one handle
/// cloned into N threads spreads them over the partitions, and the order
/// between two handles (clones included) is not defined. Every refusal hands
/// the event back inside the error.
///
/// # Examples
///
/// ```
/// use std::thread;
/// use dispatcher::Dispatcher;
///
/// // One partition: every handle's events go into the same batches.
/// let (dispatcher, batches) = Dispatcher::<Vec<u8>>::builder().partitions(1).build()?;
/// let handles: Vec<_> = (0..4)
///     .map(|_| {
///         let producer = dispatcher.producer();
///         thread::spawn(move || producer.try_enqueue(vec![0; 100]).is_ok())
///     })
///     .collect();
/// assert!(handles.into_iter().all(|h| h.join().unwrap()));
/// dispatcher.flush();
/// assert_eq!(batches.recv()?.len(), 4);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Producer<T> {
    core: Arc<Core<T>>,
    /// The partition this handle admits into.
    part: usize,
}

impl<T> Clone for Producer<T> {
    /// A new handle, on the next partition (see
    /// [`Builder::partitions`](crate::Builder::partitions)).
    fn clone(&self) -> Self {
        Producer::new(Arc::clone(&self.core))
    }
}

impl<T> fmt::Debug for Producer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Producer { .. }")
    }
}

impl<T> Producer<T> {
    pub(crate) fn new(core: Arc<Core<T>>) -> Self {
        let part = core.next_partition();
        Producer { core, part }
    }
}

impl<T: Weight> Producer<T> {
    /// Admits `item` if it fits now; never blocks. Under
    /// [`Policy::DropOldest`] it evicts the oldest undelivered events to make
    /// room instead of refusing.
    ///
    /// # Errors
    ///
    /// - [`TryEnqueueError::Full`]: no room (Reject and Block policies).
    /// - [`TryEnqueueError::TooLarge`]: `item` weighs more than `max_buffered_bytes`.
    /// - [`TryEnqueueError::Closed`]: shutting down, stopped, or no receiver left.
    /// - [`TryEnqueueError::Refused`]: the builder's `can_add` hook said no.
    ///
    /// # Panics
    ///
    /// If a hook of the builder (`can_add`, `will_overflow`,
    /// `should_flush`) or `Weight::weight` panicked during the admission:
    /// the panic is resumed here once the admission is complete and every
    /// lock released (see the crate docs, "Hooks").
    ///
    /// # Examples
    ///
    /// ```
    /// use dispatcher::{Dispatcher, TryEnqueueError};
    ///
    /// let (dispatcher, _batches) = Dispatcher::<Vec<u8>>::builder().max_buffered_bytes(4).build()?;
    /// let producer = dispatcher.producer();
    /// assert!(producer.try_enqueue(vec![1, 2, 3]).is_ok());
    /// match producer.try_enqueue(vec![4, 5]) {
    ///     Err(TryEnqueueError::Full(item)) => assert_eq!(item, [4, 5]),
    ///     other => panic!("expected Full, got {other:?}"),
    /// }
    /// # Ok::<(), dispatcher::ConfigError>(())
    /// ```
    pub fn try_enqueue(&self, item: T) -> Result<(), TryEnqueueError<T>> {
        self.core.try_enqueue(self.part, item)
    }

    /// Admits `item` following the dispatcher's [`Policy`]: Reject refuses at
    /// once, Block waits up to its timeout, DropOldest evicts to make room.
    ///
    /// # Errors
    ///
    /// - [`EnqueueError::Full`]: no room under Reject.
    /// - [`EnqueueError::Timeout`]: no room appeared in time under Block.
    /// - [`EnqueueError::TooLarge`]: `item` weighs more than `max_buffered_bytes`.
    /// - [`EnqueueError::Closed`]: shutting down, stopped, or no receiver left.
    /// - [`EnqueueError::Refused`]: the builder's `can_add` hook said no.
    ///
    /// # Panics
    ///
    /// If a hook of the builder (`can_add`, `will_overflow`,
    /// `should_flush`) or `Weight::weight` panicked during the admission:
    /// the panic is resumed here once the admission is complete and every
    /// lock released (see the crate docs, "Hooks").
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use dispatcher::{Dispatcher, EnqueueError, Policy};
    ///
    /// let (dispatcher, _batches) = Dispatcher::<Vec<u8>>::builder()
    ///     .max_buffered_bytes(4)
    ///     .policy(Policy::Block { timeout: Duration::from_millis(5) })
    ///     .build()?;
    /// let producer = dispatcher.producer();
    /// producer.enqueue(vec![1, 2, 3])?;
    /// // Nobody receives, so no room appears: the wait ends with the item back.
    /// assert!(matches!(producer.enqueue(vec![4, 5]), Err(EnqueueError::Timeout(_))));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn enqueue(&self, item: T) -> Result<(), EnqueueError<T>> {
        match self.core.policy {
            Policy::Reject | Policy::DropOldest => self.try_enqueue(item).map_err(Into::into),
            Policy::Block { timeout } => {
                self.core
                    .enqueue_until(self.part, item, Deadline::In(timeout))
            }
        }
    }

    /// Admits `item`, waiting up to `timeout` for room whatever the policy
    /// (under DropOldest it evicts instead of waiting).
    ///
    /// # Errors
    ///
    /// - [`EnqueueTimeoutError::Timeout`]: no room appeared in time.
    /// - [`EnqueueTimeoutError::TooLarge`]: `item` weighs more than `max_buffered_bytes`.
    /// - [`EnqueueTimeoutError::Closed`]: shutting down, stopped, or no receiver left.
    /// - [`EnqueueTimeoutError::Refused`]: the builder's `can_add` hook said no.
    ///
    /// # Panics
    ///
    /// If a hook of the builder (`can_add`, `will_overflow`,
    /// `should_flush`) or `Weight::weight` panicked during the admission:
    /// the panic is resumed here once the admission is complete and every
    /// lock released (see the crate docs, "Hooks").
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use dispatcher::Dispatcher;
    ///
    /// let (dispatcher, _batches) = Dispatcher::<String>::builder().build()?;
    /// dispatcher.producer().enqueue_timeout("hello".into(), Duration::from_millis(10))?;
    /// assert_eq!(dispatcher.stats().accepted, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn enqueue_timeout(
        &self,
        item: T,
        timeout: Duration,
    ) -> Result<(), EnqueueTimeoutError<T>> {
        self.enqueue_with(item, Deadline::In(timeout))
    }

    /// Like [`enqueue_timeout`](Producer::enqueue_timeout), with an absolute deadline.
    ///
    /// # Errors
    ///
    /// As [`enqueue_timeout`](Producer::enqueue_timeout).
    ///
    /// # Panics
    ///
    /// As [`enqueue_timeout`](Producer::enqueue_timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use dispatcher::Dispatcher;
    ///
    /// let (dispatcher, _batches) = Dispatcher::<String>::builder().build()?;
    /// let deadline = Instant::now() + Duration::from_millis(10);
    /// dispatcher.producer().enqueue_deadline("hello".into(), deadline)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn enqueue_deadline(
        &self,
        item: T,
        deadline: Instant,
    ) -> Result<(), EnqueueTimeoutError<T>> {
        self.enqueue_with(item, Deadline::At(deadline))
    }

    fn enqueue_with(&self, item: T, deadline: Deadline) -> Result<(), EnqueueTimeoutError<T>> {
        self.core
            .enqueue_until(self.part, item, deadline)
            .map_err(|err| match err {
                EnqueueError::Full(item) | EnqueueError::Timeout(item) => {
                    EnqueueTimeoutError::Timeout(item)
                }
                EnqueueError::TooLarge(item) => EnqueueTimeoutError::TooLarge(item),
                EnqueueError::Closed(item) => EnqueueTimeoutError::Closed(item),
                EnqueueError::Refused(item) => EnqueueTimeoutError::Refused(item),
            })
    }

    /// Admits all of `items` or none of them, atomically: no other producer's
    /// event lands between them in their partition, and a receiver never sees
    /// only part of the group accepted. (With several
    /// [`partitions`](crate::Builder::partitions), a batch of another
    /// partition may be delivered between two batches a large group spans.) Never blocks; under DropOldest it evicts older events
    /// to make room for the whole group.
    ///
    /// # Errors
    ///
    /// The whole group back inside [`TryEnqueueError::Full`] (no room for all
    /// of it), [`TryEnqueueError::TooLarge`] (the group alone weighs more than
    /// `max_buffered_bytes`), [`TryEnqueueError::Closed`] or
    /// [`TryEnqueueError::Refused`] (the `can_add` hook said no to one of
    /// them; `on_reject` saw each).
    ///
    /// # Panics
    ///
    /// If a hook of the builder (`can_add`, `will_overflow`,
    /// `should_flush`) or `Weight::weight` panicked during the admission:
    /// the panic is resumed here once the admission is complete and every
    /// lock released (see the crate docs, "Hooks").
    ///
    /// # Examples
    ///
    /// ```
    /// use dispatcher::{Dispatcher, TryEnqueueError};
    ///
    /// let (dispatcher, _batches) = Dispatcher::<Vec<u8>>::builder().max_buffered_bytes(10).build()?;
    /// let producer = dispatcher.producer();
    /// producer.try_enqueue_all(vec![vec![0; 4], vec![0; 4]])?;
    /// let refused = producer.try_enqueue_all(vec![vec![0; 1], vec![0; 2]]).unwrap_err();
    /// assert!(matches!(refused, TryEnqueueError::Full(ref group) if group.len() == 2));
    /// assert_eq!(dispatcher.stats().accepted, 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_enqueue_all(&self, items: Vec<T>) -> Result<(), TryEnqueueError<Vec<T>>> {
        self.core.try_enqueue_all(self.part, items)
    }
}

impl<T: Weight> Producer<T> {
    /// The same handle for async code (on the same partition).
    #[cfg(feature = "async")]
    pub fn into_async(self) -> crate::nonblocking::AsyncProducer<T> {
        crate::nonblocking::AsyncProducer::from_parts(self.core, self.part)
    }
}
