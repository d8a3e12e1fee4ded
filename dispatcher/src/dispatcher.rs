//! The owner's handle: producers, stats, live limits, flush and shutdown.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::{Builder, ConfigError, Limits};
use crate::error::{ShutdownReport, ShutdownTimeout};
use crate::producer::{Producer, deadline_after};
use crate::shared::Shared;
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
    shared: Arc<Shared<T>>,
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
    pub(crate) fn from_shared(shared: Arc<Shared<T>>) -> Self {
        Dispatcher { shared }
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
        Producer::from_shared(Arc::clone(&self.shared))
    }

    /// A consistent snapshot of every counter and gauge. One short lock: cheap
    /// to call many times a second while producers run.
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
        self.shared.stats()
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
        self.shared.lock().limits
    }

    /// Changes the limits while running. Lowering `max_buffered_bytes` below
    /// what is buffered drops nothing: admission waits until deliveries bring
    /// the buffered bytes under the new limit. Lowering a batch limit cuts the
    /// open batch if it is already over it. A new interval applies to the open
    /// batch too.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] as for the builder; the old limits stay in force.
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
        self.shared.set_limits(limits);
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
        self.shared.flush();
    }

    /// Stops admission, cuts the open batch, and waits until receivers have
    /// taken every accepted event, or until `timeout` passes.
    ///
    /// # Errors
    ///
    /// [`ShutdownTimeout`] carrying every event that was accepted but not
    /// delivered, oldest first, if the time ran out or every receiver was
    /// dropped first. Nothing accepted is lost silently.
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
    pub fn shutdown(self, timeout: Duration) -> Result<ShutdownReport, ShutdownTimeout<T>> {
        let started = Instant::now();
        let deadline = deadline_after(timeout);
        let delivered_before = self.stats().delivered;
        self.shared.close();
        let undelivered = self.shared.drain_until(deadline);
        let stats = self.stats();
        let report = ShutdownReport {
            delivered_during_drain: stats.delivered - delivered_before,
            delivered_total: stats.delivered,
            elapsed: started.elapsed(),
            stats,
        };
        if undelivered.is_empty() {
            Ok(report)
        } else {
            Err(ShutdownTimeout {
                undelivered,
                report: Box::new(report),
            })
        }
    }

    /// Stops at once: closes admission and returns every undelivered event,
    /// oldest first, without waiting for receivers.
    ///
    /// # Examples
    ///
    /// ```
    /// let (dispatcher, _batches) = dispatcher::Dispatcher::<String>::builder().build()?;
    /// dispatcher.producer().try_enqueue("pending".into())?;
    /// assert_eq!(dispatcher.stop(), ["pending"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stop(self) -> Vec<T> {
        self.shared.stop()
    }
}

impl<T: Weight> Drop for Dispatcher<T> {
    fn drop(&mut self) {
        self.shared.close();
    }
}
