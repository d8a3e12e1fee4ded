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
use crate::lanes::Lanes;
use crate::pool::Pool;
use crate::receiver::Batches;
use crate::shared::{PolledBatch, Shared};
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
        let lanes = Arc::clone(this.batches.lanes());
        let polled = match lanes.pool() {
            None => this.poll_one(lanes.first(), cx),
            Some(pool) => this.poll_all(&lanes, pool, cx),
        };
        if matches!(polled, Poll::Ready(Some(_))) {
            lanes.publish_metrics_now_and_then();
        }
        polled
    }
}

impl<T: Weight> BatchStream<T> {
    /// Without partitions: the one partition registers our waker.
    fn poll_one(&mut self, one: &Arc<Shared<T>>, cx: &mut Context<'_>) -> Poll<Option<Batch<T>>> {
        loop {
            match one.poll_batch(&mut self.slot, cx.waker()) {
                PolledBatch::Ready(sealed) => {
                    self.timer = None;
                    return Poll::Ready(Some(Batch::new(sealed, Arc::clone(one))));
                }
                PolledBatch::Closed => {
                    self.timer = None;
                    return Poll::Ready(None);
                }
                PolledBatch::Pending(due) => {
                    if !self.due_passed(due, cx) {
                        return Poll::Pending;
                    }
                }
            }
        }
    }

    /// With partitions: look at all of them, waiting on the shared signal.
    fn poll_all(
        &mut self,
        lanes: &Lanes<T>,
        pool: &Pool,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Batch<T>>> {
        loop {
            let seen = pool.generation();
            match lanes.poll_scan() {
                Ok((home, sealed)) => {
                    pool.forget_batch(&mut self.slot);
                    self.timer = None;
                    // Others may be waiting while more is ready.
                    pool.signal_batch();
                    return Poll::Ready(Some(Batch::new(sealed, home)));
                }
                Err((None, true)) => {
                    pool.forget_batch(&mut self.slot);
                    self.timer = None;
                    return Poll::Ready(None);
                }
                Err((due, _)) => {
                    if !pool.register_batch(&mut self.slot, cx.waker(), seen) {
                        continue; // a batch was signalled meanwhile
                    }
                    if !self.due_passed(due, cx) {
                        return Poll::Pending;
                    }
                }
            }
        }
    }

    /// Arms the timer for the open batch's deadline; true if it passed.
    fn due_passed(&mut self, due: Option<Instant>, cx: &mut Context<'_>) -> bool {
        let Some(due) = due else {
            self.timer = None;
            return false;
        };
        if self.timer.as_ref().is_none_or(|(at, _)| *at != due) {
            let left = due.saturating_duration_since(Instant::now());
            self.timer = Some((due, Delay::new(left)));
        }
        let (_, delay) = self.timer.as_mut().expect("set above");
        if Pin::new(delay).poll(cx).is_pending() {
            return false;
        }
        self.timer = None;
        true
    }
}

impl<T: Weight> Drop for BatchStream<T> {
    fn drop(&mut self) {
        let lanes = self.batches.lanes();
        match lanes.pool() {
            None => lanes.first().forget_batch_waker(&mut self.slot),
            Some(pool) => pool.forget_batch(&mut self.slot),
        }
    }
}
