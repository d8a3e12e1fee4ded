//! `enqueue(item).await`: admission that waits for room without blocking.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_timer::Delay;

use crate::config::Policy;
use crate::error::{EnqueueError, TryEnqueueError};
use crate::shared::{PolledEnqueue, Shared};
use crate::weight::Weight;

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
    shared: Arc<Shared<T>>,
}

impl<T> Clone for AsyncProducer<T> {
    fn clone(&self) -> Self {
        AsyncProducer {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<T> fmt::Debug for AsyncProducer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AsyncProducer { .. }")
    }
}

impl<T: Weight> AsyncProducer<T> {
    pub(crate) fn from_shared(shared: Arc<Shared<T>>) -> Self {
        AsyncProducer { shared }
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
            shared: Arc::clone(&self.shared),
            item: Some(item),
            slot: None,
            deadline: None,
            timer: None,
        }
    }

    /// Admits without waiting; see
    /// [`Producer::try_enqueue`](crate::Producer::try_enqueue).
    ///
    /// # Errors
    ///
    /// As for [`Producer::try_enqueue`](crate::Producer::try_enqueue).
    pub fn try_enqueue(&self, item: T) -> Result<(), TryEnqueueError<T>> {
        self.shared.try_enqueue(item)
    }
}

/// The future of [`AsyncProducer::enqueue`].
#[must_use = "futures do nothing unless awaited"]
pub struct EnqueueFuture<T: Weight> {
    shared: Arc<Shared<T>>,
    item: Option<T>,
    /// Our waker's slot in the dispatcher's list of tasks waiting for room.
    slot: Option<u64>,
    deadline: Option<Instant>,
    timer: Option<Delay>,
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
        self.shared.forget_room_waker(&mut self.slot);
        self.item.take()
    }
}

impl<T: Weight> Future for EnqueueFuture<T> {
    type Output = Result<(), EnqueueError<T>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let Some(item) = this.item.take() else {
            panic!("EnqueueFuture polled after completion");
        };
        if this.deadline.is_none() {
            if let Policy::Block { timeout } = this.shared.policy {
                this.deadline = Some(crate::producer::deadline_after(timeout));
            }
        }
        match this.shared.poll_enqueue(item, &mut this.slot, cx.waker()) {
            Ok(()) => Poll::Ready(Ok(())),
            Err(PolledEnqueue::Refused(err)) => Poll::Ready(Err(err)),
            Err(PolledEnqueue::Wait(item)) => {
                let deadline = this.deadline.unwrap_or_else(Instant::now);
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() || poll_timer(&mut this.timer, left, cx) {
                    this.shared.forget_room_waker(&mut this.slot);
                    this.shared.count_timeout();
                    return Poll::Ready(Err(EnqueueError::Timeout(item)));
                }
                this.item = Some(item);
                Poll::Pending
            }
        }
    }
}

impl<T: Weight> Drop for EnqueueFuture<T> {
    fn drop(&mut self) {
        self.shared.forget_room_waker(&mut self.slot);
    }
}

/// Polls a timer set to fire `left` from its creation; true once it fired.
pub(crate) fn poll_timer(timer: &mut Option<Delay>, left: Duration, cx: &mut Context<'_>) -> bool {
    let delay = timer.get_or_insert_with(|| Delay::new(left));
    Pin::new(delay).poll(cx).is_ready()
}
