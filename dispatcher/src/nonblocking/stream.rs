//! Batches as a `futures` `Stream`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use futures_core::Stream;
use futures_timer::Delay;

use crate::batch::Batch;
use crate::receiver::Batches;
use crate::shared::PolledBatch;
use crate::weight::Weight;

/// A [`Stream`] of batches; get one with
/// [`Batches::into_stream`](crate::Batches::into_stream). It ends once the
/// dispatcher is closed and drained. Like the blocking receiver it cuts a
/// batch whose interval elapsed, waking on a runtime-agnostic timer.
///
/// # Examples
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use std::time::Duration;
/// use futures_util::StreamExt;
/// use dispatcher::Dispatcher;
///
/// let (dispatcher, batches) = Dispatcher::<String>::builder()
///     .interval(Duration::from_millis(5))
///     .build()?;
/// let mut stream = batches.into_stream();
/// dispatcher.producer().try_enqueue("tick".into())?;
/// let batch = stream.next().await.expect("a batch after 5 ms");
/// assert_eq!(batch.items(), ["tick"]);
/// drop(dispatcher);
/// assert!(stream.next().await.is_none());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
pub struct BatchStream<T: Weight> {
    batches: Batches<T>,
    slot: Option<u64>,
    /// A timer for the open batch's deadline, and that deadline.
    timer: Option<(Instant, Delay)>,
}

impl<T: Weight> BatchStream<T> {
    pub(crate) fn new(batches: Batches<T>) -> Self {
        BatchStream {
            batches,
            slot: None,
            timer: None,
        }
    }
}

// Nothing in the stream is pinned in place.
impl<T: Weight> Unpin for BatchStream<T> {}

impl<T: Weight> fmt::Debug for BatchStream<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchStream")
            .field("waiting", &self.slot.is_some())
            .finish()
    }
}

impl<T: Weight> Stream for BatchStream<T> {
    type Item = Batch<T>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Batch<T>>> {
        let this = self.get_mut();
        let shared = Arc::clone(this.batches.shared());
        loop {
            match shared.poll_batch(&mut this.slot, cx.waker()) {
                PolledBatch::Ready(sealed) => {
                    this.timer = None;
                    return Poll::Ready(Some(Batch::new(sealed, shared)));
                }
                PolledBatch::Closed => {
                    this.timer = None;
                    return Poll::Ready(None);
                }
                PolledBatch::Pending(None) => {
                    this.timer = None;
                    return Poll::Pending;
                }
                PolledBatch::Pending(Some(due)) => {
                    if this.timer.as_ref().is_none_or(|(at, _)| *at != due) {
                        let left = due.saturating_duration_since(Instant::now());
                        this.timer = Some((due, Delay::new(left)));
                    }
                    let (_, delay) = this.timer.as_mut().expect("set above");
                    if Pin::new(delay).poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    // The deadline passed: look again, which cuts the batch.
                    this.timer = None;
                }
            }
        }
    }
}

impl<T: Weight> Drop for BatchStream<T> {
    fn drop(&mut self) {
        self.batches.shared().forget_waker(&mut self.slot, false);
    }
}
