//! The pull side: receivers of emitted batches.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::batch::Batch;
use crate::clock::deadline_after;
use crate::core::Core;
use crate::core::receive::Taken;
use crate::error::{RecvError, RecvTimeoutError, TryRecvError};
use crate::weight::Weight;

/// Receives emitted batches, oldest first. Clone it to consume from several
/// threads; each batch goes to exactly one receiver.
///
/// A receiver also drives the interval: a batch whose interval has elapsed is
/// cut by whichever receiver is waiting for it, so a dispatcher runs no thread
/// of its own. When every receiver is dropped, admission closes (producers get
/// `Closed`) and undelivered events stay for
/// [`Dispatcher::shutdown`](crate::Dispatcher::shutdown) or
/// [`Dispatcher::stop`](crate::Dispatcher::stop) to return.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use dispatcher::{Dispatcher, FlushReason};
///
/// let (dispatcher, batches) = Dispatcher::<Vec<u8>>::builder()
///     .interval(Duration::from_millis(5))
///     .build()?;
/// dispatcher.producer().try_enqueue(vec![1, 2, 3])?;
/// let batch = batches.recv()?; // waits about 5 ms for the interval
/// assert_eq!(batch.reason(), FlushReason::Interval);
///
/// dispatcher.shutdown(Duration::from_secs(1))?;
/// assert!(batches.iter().next().is_none()); // closed and drained
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Batches<T: Weight> {
    core: Arc<Core<T>>,
}

impl<T: Weight> Batches<T> {
    pub(crate) fn new(core: Arc<Core<T>>) -> Self {
        Batches { core }
    }

    /// A taken batch as the receiver hands it out.
    pub(crate) fn batch(&self, taken: Taken<T>) -> Batch<T> {
        self.core.publish_metrics_now_and_then();
        let held = self.core.hold_in_flight;
        Batch::new(taken.sealed, Arc::clone(&self.core), taken.part, held)
    }

    /// Waits for the next batch.
    ///
    /// # Errors
    ///
    /// [`RecvError`] once the dispatcher is closed and every accepted event
    /// has been delivered (or returned to the caller).
    ///
    /// # Examples
    ///
    /// ```
    /// use dispatcher::Dispatcher;
    ///
    /// let (dispatcher, batches) = Dispatcher::<String>::builder().build()?;
    /// dispatcher.producer().try_enqueue("x".into())?;
    /// dispatcher.flush();
    /// assert_eq!(batches.recv()?.items(), ["x"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recv(&self) -> Result<Batch<T>, RecvError> {
        self.core
            .recv_until(None)
            .map(|taken| self.batch(taken))
            .map_err(|_| RecvError)
    }

    /// Waits up to `timeout` for the next batch.
    ///
    /// # Errors
    ///
    /// [`RecvTimeoutError::Timeout`] if none was ready in time;
    /// [`RecvTimeoutError::Disconnected`] once closed and drained.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use dispatcher::{Dispatcher, RecvTimeoutError};
    ///
    /// let (_dispatcher, batches) = Dispatcher::<String>::builder().build()?;
    /// let waited = batches.recv_timeout(Duration::from_millis(1));
    /// assert_eq!(waited.unwrap_err(), RecvTimeoutError::Timeout);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Batch<T>, RecvTimeoutError> {
        self.core
            .recv_until(Some(deadline_after(timeout)))
            .map(|taken| self.batch(taken))
    }

    /// Takes a batch if one is ready (or the open batch, if its interval has
    /// elapsed); never blocks.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`] if nothing is ready;
    /// [`TryRecvError::Disconnected`] once closed and drained.
    ///
    /// # Examples
    ///
    /// ```
    /// use dispatcher::{Dispatcher, TryRecvError};
    ///
    /// let (dispatcher, batches) = Dispatcher::<String>::builder().build()?;
    /// assert_eq!(batches.try_recv().unwrap_err(), TryRecvError::Empty);
    /// drop(dispatcher);
    /// assert_eq!(batches.try_recv().unwrap_err(), TryRecvError::Disconnected);
    /// # Ok::<(), dispatcher::ConfigError>(())
    /// ```
    pub fn try_recv(&self) -> Result<Batch<T>, TryRecvError> {
        self.core
            .try_take()
            .map(|taken| self.batch(taken))
            .map_err(|err| match err {
                RecvTimeoutError::Timeout => TryRecvError::Empty,
                RecvTimeoutError::Disconnected => TryRecvError::Disconnected,
            })
    }

    /// Turns this receiver into a `futures` `Stream` of batches.
    #[cfg(feature = "async")]
    pub fn into_stream(self) -> crate::nonblocking::BatchStream<T> {
        crate::nonblocking::BatchStream::new(self)
    }

    #[cfg(feature = "async")]
    pub(crate) fn core(&self) -> &Arc<Core<T>> {
        &self.core
    }

    /// A blocking iterator over batches; it ends once the dispatcher is
    /// closed and drained.
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { batches: self }
    }
}

impl<T: Weight> Clone for Batches<T> {
    fn clone(&self) -> Self {
        self.core.add_receiver();
        Batches {
            core: Arc::clone(&self.core),
        }
    }
}

impl<T: Weight> Drop for Batches<T> {
    fn drop(&mut self) {
        self.core.remove_receiver();
    }
}

impl<T: Weight> fmt::Debug for Batches<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Batches { .. }")
    }
}

/// Blocking iterator returned by [`Batches::iter`].
#[derive(Debug)]
pub struct Iter<'a, T: Weight> {
    batches: &'a Batches<T>,
}

impl<T: Weight> Iterator for Iter<'_, T> {
    type Item = Batch<T>;

    fn next(&mut self) -> Option<Batch<T>> {
        self.batches.recv().ok()
    }
}

impl<'a, T: Weight> IntoIterator for &'a Batches<T> {
    type Item = Batch<T>;
    type IntoIter = Iter<'a, T>;

    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}
