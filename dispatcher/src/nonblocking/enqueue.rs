//! `enqueue(item).await`: admission that waits for room without blocking.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use super::waiting::Waiting;
use crate::clock::Deadline;
use crate::config::Policy;
use crate::core::Core;
use crate::error::{EnqueueError, TryEnqueueError};
use crate::weight::{Weight, charge};

/// A producer for async code; get one with
/// [`Dispatcher::async_producer`](crate::Dispatcher::async_producer) or
/// [`Producer::into_async`](crate::Producer::into_async). Cheap to clone.
///
/// # Examples
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use std::time::Duration;
/// use dispatcher::{Dispatcher, Policy};
///
/// let (dispatcher, batches) = Dispatcher::<Vec<u8>>::builder()
///     .policy(Policy::Block { timeout: Duration::from_secs(1) })
///     .build()?;
/// dispatcher.async_producer().enqueue(vec![1, 2, 3]).await?;
/// dispatcher.flush();
/// assert_eq!(batches.try_recv()?.len(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
pub struct AsyncProducer<T> {
    core: Arc<Core<T>>,
    /// The partition this handle admits into.
    part: usize,
}

impl<T> Clone for AsyncProducer<T> {
    /// A new handle, on the next partition.
    fn clone(&self) -> Self {
        let core = Arc::clone(&self.core);
        let part = core.next_partition();
        AsyncProducer { core, part }
    }
}

impl<T> fmt::Debug for AsyncProducer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AsyncProducer { .. }")
    }
}

impl<T: Weight> AsyncProducer<T> {
    pub(crate) fn from_parts(core: Arc<Core<T>>, part: usize) -> Self {
        AsyncProducer { core, part }
    }

    /// Enqueues `item` following the dispatcher's [`Policy`]: under `Block`
    /// the returned future waits for room (at most the policy's timeout)
    /// without blocking the thread; under `Reject` and `DropOldest` it
    /// completes at once, like [`Producer::enqueue`](crate::Producer::enqueue).
    ///
    /// **Cancel safety.** Dropping the future before it completes never
    /// enqueues the item and never loses an accepted event: admission
    /// happens in one step under the dispatcher's lock, inside `poll`. The
    /// not-yet-enqueued item is dropped with the future; to keep it, poll
    /// the future through `&mut` (e.g. in `select!`) and take it back with
    /// [`EnqueueFuture::cancel`].
    ///
    /// # Errors
    ///
    /// The future resolves to [`EnqueueError`], handing the item back:
    /// `Timeout` when no room came in time, `Full`, `TooLarge`, `Closed`,
    /// `Refused` as for the blocking call.
    pub fn enqueue(&self, item: T) -> EnqueueFuture<T> {
        EnqueueFuture {
            core: Arc::clone(&self.core),
            part: self.part,
            weight: charge(self.core.weighing, &item),
            item: Some(item),
            deadline: None,
            waiting: Waiting::default(),
        }
    }

    /// Admits without waiting; see
    /// [`Producer::try_enqueue`](crate::Producer::try_enqueue).
    ///
    /// # Errors
    ///
    /// As for [`Producer::try_enqueue`](crate::Producer::try_enqueue).
    pub fn try_enqueue(&self, item: T) -> Result<(), TryEnqueueError<T>> {
        self.core.try_enqueue(self.part, item)
    }
}

/// The future of [`AsyncProducer::enqueue`].
#[must_use = "futures do nothing unless awaited"]
pub struct EnqueueFuture<T: Weight> {
    core: Arc<Core<T>>,
    part: usize,
    /// The item until it is admitted or handed back.
    item: Option<T>,
    weight: usize,
    /// Set on the first poll; the clock is read when room is first missing.
    deadline: Option<Deadline>,
    waiting: Waiting,
}

// The item is only ever moved out whole, never pinned in place, so the
// future can move freely whatever `T` is.
impl<T: Weight> Unpin for EnqueueFuture<T> {}

impl<T: Weight> fmt::Debug for EnqueueFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnqueueFuture")
            .field("pending", &self.item.is_some())
            .field("deadline", &self.deadline)
            .finish()
    }
}

impl<T: Weight> EnqueueFuture<T> {
    /// Stops waiting and hands the item back if it was not enqueued yet
    /// (`None` if it was, or the future already completed).
    ///
    /// # Examples
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use std::time::Duration;
    /// use dispatcher::{Dispatcher, Policy};
    ///
    /// let (dispatcher, _batches) = Dispatcher::<Vec<u8>>::builder()
    ///     .max_buffered_bytes(4)
    ///     .policy(Policy::Block { timeout: Duration::from_secs(60) })
    ///     .build()?;
    /// let producer = dispatcher.async_producer();
    /// producer.enqueue(vec![0; 4]).await?; // the dispatcher is now full
    /// let mut waiting = producer.enqueue(vec![9]);
    /// tokio::select! {
    ///     _ = &mut waiting => unreachable!("no room was freed"),
    ///     _ = tokio::time::sleep(Duration::from_millis(10)) => {}
    /// }
    /// assert_eq!(waiting.cancel(), Some(vec![9]));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn cancel(&mut self) -> Option<T> {
        self.waiting.stop();
        self.item.take()
    }
}

impl<T: Weight> Future for EnqueueFuture<T> {
    type Output = Result<(), EnqueueError<T>>;

    /// # Panics
    ///
    /// If polled again after it completed (or after [`cancel`](Self::cancel)),
    /// and, like the blocking calls, when a hook or `Weight::weight` panicked
    /// during the admission (the admission itself completed).
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        assert!(this.item.is_some(), "EnqueueFuture polled after completion");
        let Policy::Block { timeout } = this.core.policy else {
            let item = this.item.take().expect("checked above");
            return Poll::Ready(this.core.try_enqueue(this.part, item).map_err(Into::into));
        };
        let deadline = this.deadline.get_or_insert(Deadline::In(timeout));
        let (core, part, weight, item) = (&this.core, this.part, this.weight, &mut this.item);
        this.waiting.poll_for(&core.budget.room, weight, cx, || {
            core.admit_or_wait(part, item, weight, deadline)
        })
    }
}
