//! Async sinks, driven by a future the caller spawns on its own runtime.

use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_timer::Delay;
use futures_util::StreamExt;
use futures_util::future::{Either, FutureExt, join_all, select};

use super::waiting::Waiting;
use crate::batch::Batch;
use crate::clock::deadline_after;
use crate::config::{Builder, ConfigError};
use crate::dispatcher::Dispatcher;
use crate::nonblocking::BatchStream;
use crate::sink::runner::{Abandon, Next, Runner, SinkStart};
use crate::sink::{FlushContext, FlushError, SinkError, SinkWorkers, panic_message};
use crate::weight::Weight;

/// Where batches go in async sink mode. Like [`Sink`](crate::sink::Sink),
/// but `write` returns a future; it runs on the runtime that polls the
/// [`SinkDriver`], and is dropped (cancelled) when `flush_timeout` passes.
///
/// # Examples
///
/// ```
/// use dispatcher::Batch;
/// use dispatcher::nonblocking::AsyncSink;
/// use dispatcher::sink::{FlushContext, SinkError};
///
/// struct Upload {
///     endpoint: String,
/// }
///
/// impl AsyncSink<Vec<u8>, String> for Upload {
///     async fn write(&self, batch: &Batch<Vec<u8>>, ctx: &FlushContext<String>) -> Result<(), SinkError> {
///         // e.g. client.post(&self.endpoint).header("tenant", ctx.metadata()).body(..).send().await?
///         let _ = (&self.endpoint, ctx.metadata(), batch.bytes());
///         Ok(())
///     }
/// }
/// ```
pub trait AsyncSink<T, M = ()>: Send + Sync + 'static {
    /// Writes one batch; see [`Sink::write`](crate::sink::Sink::write).
    fn write(
        &self,
        batch: &Batch<T>,
        ctx: &FlushContext<M>,
    ) -> impl Future<Output = Result<(), SinkError>> + Send;
}

impl<T, M, S: AsyncSink<T, M>> AsyncSink<T, M> for Arc<S> {
    fn write(
        &self,
        batch: &Batch<T>,
        ctx: &FlushContext<M>,
    ) -> impl Future<Output = Result<(), SinkError>> + Send {
        (**self).write(batch, ctx)
    }
}

/// Runs an async sink's flush workers; spawn it on your runtime
/// (`tokio::spawn(driver)`). It completes once the dispatcher is closed and
/// every batch is written or handed to the error hook. Dropping it before
/// that stops delivery: shutdown then returns the undelivered events.
#[must_use = "the sink writes nothing unless the driver is spawned or awaited"]
pub struct SinkDriver {
    inner: Pin<Box<dyn Future<Output = ()> + Send>>,
}

impl fmt::Debug for SinkDriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SinkDriver { .. }")
    }
}

impl Future for SinkDriver {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.inner.as_mut().poll(cx)
    }
}

impl<T: Weight + Send + Sync + 'static> Builder<T> {
    /// Validates the configuration and builds a dispatcher whose batches go
    /// to an async `sink`, written by the returned [`SinkDriver`] with up to
    /// `flush_workers` writes at once.
    ///
    /// # Errors
    ///
    /// As for [`build_with_sink`](Builder::build_with_sink).
    ///
    /// # Examples
    ///
    /// See [`crate::nonblocking`].
    pub fn build_with_async_sink(
        self,
        sink: impl AsyncSink<T>,
    ) -> Result<(Dispatcher<T>, SinkDriver), ConfigError> {
        self.build_with_async_sink_meta((), sink)
    }

    /// Like [`build_with_async_sink`](Builder::build_with_async_sink),
    /// handing `metadata` to every call.
    ///
    /// # Errors
    ///
    /// As for [`build_with_sink`](Builder::build_with_sink).
    pub fn build_with_async_sink_meta<M: Send + Sync + 'static>(
        self,
        metadata: M,
        sink: impl AsyncSink<T, M>,
    ) -> Result<(Dispatcher<T>, SinkDriver), ConfigError> {
        let SinkStart {
            core,
            runner,
            batches,
        } = self.start_sink(metadata)?;
        let sink = Arc::new(sink);
        let workers = (0..runner.config.workers).map(|worker| {
            let stream = batches.clone().into_stream();
            drive(Arc::clone(&runner), Arc::clone(&sink), stream, worker)
        });
        let all = join_all(workers.collect::<Vec<_>>());
        drop(batches);
        let driver = SinkDriver {
            inner: Box::pin(all.map(|_| ())),
        };
        let workers = SinkWorkers::new(Vec::new(), Arc::clone(&runner.abandon));
        Ok((Dispatcher::with_sink(core, workers), driver))
    }
}

/// One async flush worker.
async fn drive<T: Weight + Send + Sync, M: Send + Sync, S: AsyncSink<T, M>>(
    runner: Arc<Runner<T, M>>,
    sink: Arc<S>,
    mut batches: BatchStream<T>,
    worker: usize,
) {
    let mut rng = fastrand::Rng::with_seed(runner.seed ^ (worker as u64).wrapping_mul(0x9e37));
    while let Some(batch) = batches.next().await {
        let mut attempt = 1;
        loop {
            let ctx = runner.context(attempt, worker);
            let outcome = attempt_once(&*sink, &batch, &ctx, runner.config.timeout).await;
            let error = match outcome {
                Ok(()) => {
                    runner.delivered(batch);
                    break;
                }
                Err(error) => error,
            };
            match runner.after_failure(&error, attempt, &mut rng) {
                Next::RetryAfter(wait) if !sleep_unless_abandoned(&runner.abandon, wait).await => {
                    runner.retrying();
                    attempt += 1;
                }
                _ => {
                    runner.failed(batch, error, attempt);
                    break;
                }
            }
        }
    }
}

/// One attempt: the sink's future, raced against `timeout`. A panic is
/// caught whether it happens while the sink builds its future or while the
/// future runs; a timed-out future is dropped (the attempt is cancelled).
async fn attempt_once<T, M, S: AsyncSink<T, M>>(
    sink: &S,
    batch: &Batch<T>,
    ctx: &FlushContext<M>,
    timeout: Duration,
) -> Result<(), FlushError> {
    let write = match std::panic::catch_unwind(AssertUnwindSafe(|| sink.write(batch, ctx))) {
        Ok(write) => AssertUnwindSafe(write).catch_unwind(),
        Err(panic) => return Err(FlushError::Panicked(panic_message(&*panic))),
    };
    match select(Box::pin(write), Delay::new(timeout)).await {
        Either::Left((Ok(Ok(())), _)) => Ok(()),
        Either::Left((Ok(Err(err)), _)) => Err(FlushError::Sink(err)),
        Either::Left((Err(panic), _)) => Err(FlushError::Panicked(panic_message(&*panic))),
        Either::Right(((), _)) => Err(FlushError::TimedOut(timeout)),
    }
}

/// Sleeps `wait` unless abandoned first; returns true as soon as abandoned.
async fn sleep_unless_abandoned(abandon: &Abandon, wait: Duration) -> bool {
    let until = deadline_after(wait);
    let mut waiting = Waiting::default();
    std::future::poll_fn(|cx| waiting.poll(abandon.signal(), cx, || abandon.look(until))).await
}
