//! Batches as a `futures` `Stream`.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;

use super::waiting::Waiting;
use crate::batch::Batch;
use crate::receiver::Batches;
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
    waiting: Waiting,
}

impl<T: Weight> BatchStream<T> {
    pub(crate) fn new(batches: Batches<T>) -> Self {
        BatchStream {
            batches,
            waiting: Waiting::default(),
        }
    }
}

// Nothing in the stream is pinned in place.
impl<T: Weight> Unpin for BatchStream<T> {}

impl<T: Weight> fmt::Debug for BatchStream<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BatchStream { .. }")
    }
}

impl<T: Weight> Stream for BatchStream<T> {
    type Item = Batch<T>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Batch<T>>> {
        let this = self.get_mut();
        let core = this.batches.core();
        let received = this
            .waiting
            .poll(core.ready_signal(), cx, || core.look_for_batch(None));
        received.map(|taken| taken.ok().map(|taken| this.batches.batch(taken)))
    }
}
