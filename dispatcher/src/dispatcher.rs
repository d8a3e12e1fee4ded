//! The owner's handle: producers, stats, live limits, flush and shutdown.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::clock::deadline_after;
use crate::config::{Builder, ConfigError, Limits};
use crate::core::Core;
use crate::error::{FlushWaitTimeout, ShutdownReport, ShutdownTimeout};
use crate::producer::Producer;
use crate::sink::SinkWorkers;
use crate::stats::Stats;
use crate::weight::Weight;

/// A batching dispatcher whose memory is bounded by bytes.
///
/// Build one with [`Dispatcher::builder`]; hand [`Producer`]s to the threads
/// that create events and read batches from the [`Batches`](crate::Batches)
/// receiver. The dispatcher runs no thread of its own. It is `Sync`, so the
/// owner can share `&Dispatcher` (for stats and live limits) while it runs.
///
/// Dropping a dispatcher without [`shutdown`](Dispatcher::shutdown) closes
/// admission and cuts the open batch; receivers can still drain what was
/// accepted and then see the end of the stream.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use dispatcher::Dispatcher;
///
/// let (dispatcher, batches) = Dispatcher::<Vec<u8>>::builder()
///     .max_batch_items(2)
///     .build()?;
/// let producer = dispatcher.producer();
/// for i in 0..5u8 {
///     producer.try_enqueue(vec![i])?;
/// }
/// let consumer = std::thread::spawn(move || batches.iter().map(|b| b.len()).collect::<Vec<_>>());
///
/// let report = dispatcher.shutdown(Duration::from_secs(1))?;
/// assert_eq!(report.delivered_total, 5);
/// assert_eq!(consumer.join().unwrap(), [2, 2, 1]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Dispatcher<T: Weight> {
    core: Arc<Core<T>>,
    /// Sink mode: the flush workers.
    sink: Option<SinkWorkers>,
}

impl<T: Weight> fmt::Debug for Dispatcher<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dispatcher")
            .field("stats", &self.stats())
            .finish()
    }
}

impl<T: Weight + Send + 'static> Dispatcher<T> {
    /// Starts configuring a dispatcher.
    ///
    /// # Examples
    ///
    /// ```
    /// let (dispatcher, batches) = dispatcher::Dispatcher::<String>::builder().build()?;
    /// # Ok::<(), dispatcher::ConfigError>(())
    /// ```
    pub fn builder() -> Builder<T> {
        Builder::default()
    }
}

impl<T: Weight> Dispatcher<T> {
    pub(crate) fn from_core(core: Arc<Core<T>>) -> Self {
        Dispatcher { core, sink: None }
    }

    pub(crate) fn with_sink(core: Arc<Core<T>>, workers: SinkWorkers) -> Self {
        Dispatcher {
            core,
            sink: Some(workers),
        }
    }

    /// A new handle for enqueueing.
    ///
    /// # Examples
    ///
    /// ```
    /// let (dispatcher, _batches) = dispatcher::Dispatcher::<String>::builder().build()?;
    /// dispatcher.producer().try_enqueue("event".into())?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn producer(&self) -> Producer<T> {
        Producer::new(Arc::clone(&self.core))
    }

    /// A new handle for enqueueing from async code (feature `async`).
    #[cfg(feature = "async")]
    pub fn async_producer(&self) -> crate::nonblocking::AsyncProducer<T> {
        self.producer().into_async()
    }

    /// A consistent snapshot of every counter and gauge. One short lock: cheap
    /// to call many times a second while producers run. With
    /// [`partitions`](Builder::partitions), each partition is read under its
    /// own lock, one after another: the sums are exact once producers pause;
    /// `buffered_bytes` never exceeds one reading of the shared budget, and
    /// `peak_buffered_bytes` can include budget bytes leased by a partition
    /// and not used yet (see [`Builder::partitions`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let (dispatcher, _batches) = dispatcher::Dispatcher::<String>::builder().build()?;
    /// dispatcher.producer().try_enqueue("abc".into())?;
    /// let stats = dispatcher.stats();
    /// assert_eq!((stats.accepted, stats.buffered_bytes, stats.peak_buffered_bytes), (1, 3, 3));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stats(&self) -> Stats {
        self.core.stats()
    }

    /// The limits in force.
    ///
    /// # Examples
    ///
    /// ```
    /// let (dispatcher, _batches) = dispatcher::Dispatcher::<String>::builder()
    ///     .max_buffered_bytes(4096)
    ///     .build()?;
    /// assert_eq!(dispatcher.limits().max_buffered_bytes, 4096);
    /// # Ok::<(), dispatcher::ConfigError>(())
    /// ```
    pub fn limits(&self) -> Limits {
        self.core.limits()
    }

    /// Changes the limits while running. Lowering `max_buffered_bytes` below
    /// what is buffered drops nothing: admission waits until deliveries bring
    /// the buffered bytes under the new limit. Lowering a batch limit cuts the
    /// open batch if it is already over it. A new interval applies to the open
    /// batch too, counted from its first event: a shorter one that has already
    /// passed emits it at once, and a longer one keeps it open, even if the old
    /// interval had just ended and no receiver had cut it yet. The interval
    /// alone decides when an open batch under its size limits leaves: a full
    /// buffer does not cut it, so with a long interval give batches a size
    /// limit well under `max_buffered_bytes`.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] as for the builder; the old limits stay in force.
    ///
    /// # Panics
    ///
    /// If `Weight::weight` panics while the open batch is cut again under a
    /// lowered batch limit: the new limits are in force, the event is kept
    /// (counted for one byte in that cut), and the panic is resumed here.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let (dispatcher, _batches) = dispatcher::Dispatcher::<String>::builder().build()?;
    /// let mut limits = dispatcher.limits();
    /// limits.interval = Duration::from_millis(50);
    /// limits.max_batch_bytes = Some(8 * 1024);
    /// dispatcher.set_limits(limits)?;
    /// assert_eq!(dispatcher.limits().max_batch_bytes, Some(8 * 1024));
    ///
    /// limits.max_batch_bytes = Some(0);
    /// assert_eq!(dispatcher.set_limits(limits).unwrap_err().field(), "max_batch_bytes");
    /// # Ok::<(), dispatcher::ConfigError>(())
    /// ```
    pub fn set_limits(&self, limits: Limits) -> Result<(), ConfigError> {
        limits.validate()?;
        self.core.set_limits(limits);
        Ok(())
    }

    /// Cuts the open batch now (reason [`Manual`](crate::FlushReason::Manual)),
    /// if it holds anything.
    ///
    /// # Examples
    ///
    /// ```
    /// let (dispatcher, batches) = dispatcher::Dispatcher::<String>::builder().build()?;
    /// dispatcher.producer().try_enqueue("now".into())?;
    /// dispatcher.flush();
    /// assert!(batches.try_recv().is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn flush(&self) {
        self.core.flush();
    }

    /// Cuts the open batch and waits until everything accepted before the
    /// call has settled: taken by a receiver (pull mode), or written by the
    /// sink or handed to its error hook (sink mode). Meant for tests and
    /// checkpoints; events accepted meanwhile are not waited for.
    ///
    /// # Errors
    ///
    /// [`FlushWaitTimeout`] if `timeout` passed first (or, in pull mode,
    /// no receiver is left to take the batches).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use dispatcher::{Dispatcher, sink};
    ///
    /// let written = Arc::new(AtomicUsize::new(0));
    /// let count = Arc::clone(&written);
    /// let dispatcher = Dispatcher::<String>::builder()
    ///     .interval(Duration::from_secs(3600))
    ///     .build_with_sink(sink::from_fn(move |batch: &dispatcher::Batch<String>, _: &sink::FlushContext| {
    ///         count.fetch_add(batch.len(), Ordering::SeqCst);
    ///         Ok::<_, std::io::Error>(())
    ///     }))?;
    /// dispatcher.producer().try_enqueue("checkpoint".into())?;
    /// dispatcher.flush_and_wait(Duration::from_secs(5))?;
    /// assert_eq!(written.load(Ordering::SeqCst), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn flush_and_wait(&self, timeout: Duration) -> Result<(), FlushWaitTimeout> {
        if self.core.flush_and_wait(deadline_after(timeout)) {
            Ok(())
        } else {
            Err(FlushWaitTimeout { timeout })
        }
    }

    /// Publishes [`stats`](Self::stats) through the `metrics` facade now
    /// (and at shutdown, and with
    /// [`Builder::publish_metrics_every`] while batches are handed over).
    /// See [`crate::metrics`] for the names.
    #[cfg(feature = "metrics")]
    pub fn publish_metrics(&self) {
        self.core.publish_metrics();
    }

    /// The last error of the disk tier (feature `spill`): a full disk, a
    /// failed write, read, sync or acknowledgement. Counted in
    /// [`SpillCounts::errors`](crate::SpillCounts) (and a full disk in
    /// `fallbacks`); `None` without a tier or before any error.
    ///
    /// # Examples
    ///
    /// ```
    /// use dispatcher::Dispatcher;
    /// use dispatcher::spill::{Raw, Spill};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let (dispatcher, _batches) = Dispatcher::<Vec<u8>>::builder()
    ///     .max_buffered_bytes(1024)
    ///     .spill(Spill::new(dir.path()).segment_bytes(4096).max_disk_bytes(4096).open()?, Raw)
    ///     .build()?;
    /// let producer = dispatcher.producer();
    /// // One event fits in memory, four on disk; then Reject applies.
    /// let accepted = (0..10).take_while(|_| producer.try_enqueue(vec![0; 1000]).is_ok()).count();
    /// assert_eq!((accepted, dispatcher.stats().spill.spilled), (5, 4));
    /// assert!(dispatcher.spill_error().unwrap().to_string().contains("full"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "spill")]
    pub fn spill_error(&self) -> Option<std::sync::Arc<crate::spill::SpillError>> {
        self.core.spill.as_ref().and_then(|tier| tier.last_error())
    }

    /// Stops admission, cuts the open batch, and waits until receivers have
    /// taken every accepted event (sink mode: until the sink has written or
    /// given up on every batch), or until `timeout` passes.
    ///
    /// In sink mode, when the time runs out, workers stop retrying and hand
    /// the batches they hold to the error hook; a batch still inside a sink
    /// call when shutdown returns is settled by its worker when the call
    /// ends (see `report.stats.in_flight_items`).
    ///
    /// # Errors
    ///
    /// [`ShutdownTimeout`] if the time ran out or every receiver was dropped
    /// first: it carries every event that was accepted but not delivered
    /// (and not in a sink call), oldest first, and its report counts the
    /// events still inside a sink call (`stats.in_flight_items`; their
    /// worker settles them when the call returns: delivered, or to the
    /// error hook). Nothing accepted is lost silently.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let (dispatcher, batches) = dispatcher::Dispatcher::<String>::builder().build()?;
    /// dispatcher.producer().try_enqueue("late".into())?;
    /// drop(batches); // nobody will receive it
    /// let timeout = dispatcher.shutdown(Duration::from_millis(10)).unwrap_err();
    /// assert_eq!(timeout.into_inner(), ["late"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn shutdown(mut self, timeout: Duration) -> Result<ShutdownReport, ShutdownTimeout<T>> {
        let started = Instant::now();
        let deadline = deadline_after(timeout);
        let delivered_before = self.stats().delivered;
        self.core.close();
        let undelivered = self.core.drain_until(deadline);
        if let Some(workers) = self.sink.take() {
            workers.finish(&self.core);
        }
        self.core.finish_spill();
        #[cfg(feature = "metrics")]
        self.core.publish_metrics();
        let stats = self.stats();
        let report = ShutdownReport {
            delivered_during_drain: stats.delivered - delivered_before,
            delivered_total: stats.delivered,
            elapsed: started.elapsed(),
            stats,
        };
        // A batch still inside a sink call is not delivered yet: the time ran
        // out for it too (its worker settles it when the call returns). So
        // did the drain of a disk tier that still holds events.
        if undelivered.is_empty()
            && report.stats.in_flight_items == 0
            && report.stats.spill.backlog == 0
        {
            Ok(report)
        } else {
            Err(ShutdownTimeout {
                undelivered,
                report: Box::new(report),
            })
        }
    }

    /// Stops at once: closes admission and returns every undelivered event,
    /// oldest first within each partition, without waiting for receivers.
    /// The events come back in the batch buffers that held them, moved, not
    /// copied (see [`Undelivered`](crate::Undelivered)).
    ///
    /// # Examples
    ///
    /// ```
    /// let (dispatcher, _batches) = dispatcher::Dispatcher::<String>::builder().build()?;
    /// dispatcher.producer().try_enqueue("pending".into())?;
    /// assert_eq!(dispatcher.stop(), ["pending"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stop(self) -> crate::Undelivered<T> {
        // Empty the queue first, so no worker that gives up takes another
        // batch to the sink after this call.
        let undelivered = self.core.stop();
        if let Some(workers) = &self.sink {
            workers.abandon();
        }
        self.core.finish_spill();
        undelivered
    }
}

#[cfg(feature = "async")]
impl<T: Weight + Send + 'static> Dispatcher<T> {
    /// [`shutdown`](Self::shutdown) for async code: the waiting happens on
    /// a thread of its own, so the runtime awaiting this keeps running —
    /// including the [`SinkDriver`](crate::nonblocking::SinkDriver) and any
    /// task the drain depends on, even on a current-thread runtime.
    ///
    /// # Errors
    ///
    /// As for [`shutdown`](Self::shutdown).
    ///
    /// # Examples
    ///
    /// See [`crate::nonblocking`].
    pub fn shutdown_async(self, timeout: Duration) -> crate::nonblocking::ShutdownFuture<T> {
        crate::nonblocking::ShutdownFuture::spawn(move || self.shutdown(timeout))
    }
}

impl<T: Weight> Drop for Dispatcher<T> {
    fn drop(&mut self) {
        self.core.close();
        self.core.finish_spill();
    }
}
