//! Push delivery: the dispatcher writes batches to a sink on its own flush
//! workers, with a per-call timeout, bounded retries and a dead-letter hook.
//!
//! Build with [`Builder::build_with_sink`](crate::Builder::build_with_sink)
//! (or [`build_with_sink_meta`](crate::Builder::build_with_sink_meta) to
//! hand every call a value of yours, such as the destination or tenant).
//! A batch stays charged against `max_buffered_bytes` until the sink is done
//! with it, so retries cannot grow memory past the limit; it counts as
//! delivered only when a write returns `Ok`.
//!
//! Delivery is at least once: a write that failed or timed out may have
//! reached the destination, and its retry writes the batch again.
//!
//! # Examples
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use std::time::Duration;
//! use dispatcher::{Dispatcher, sink};
//!
//! let written = Arc::new(Mutex::new(Vec::new()));
//! let out = Arc::clone(&written);
//! let dispatcher = Dispatcher::<String>::builder()
//!     .max_batch_items(2)
//!     .build_with_sink(sink::from_fn(move |batch, _ctx| {
//!         out.lock().unwrap().push(batch.join(","));
//!         Ok::<(), std::io::Error>(())
//!     }))?;
//! let producer = dispatcher.producer();
//! for event in ["a", "b", "c"] {
//!     producer.try_enqueue(event.to_string())?;
//! }
//! let report = dispatcher.shutdown(Duration::from_secs(5))?;
//! assert_eq!(report.delivered_total, 3);
//! assert_eq!(*written.lock().unwrap(), ["a,b", "c"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod failure;
#[cfg(feature = "nats")]
pub mod nats;
mod retry;
pub(crate) mod runner;
mod worker;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::batch::Batch;

pub(crate) use failure::{ErrorHook, hand_to_hook, panic_message};
pub use failure::{FlushError, FlushFailure, SinkError};
pub use retry::Retry;
pub(crate) use retry::SinkConfig;
pub(crate) use worker::SinkWorkers;

/// Where batches go in sink mode. Called on the dispatcher's flush workers,
/// possibly from several at once (see
/// [`Builder::flush_workers`](crate::Builder::flush_workers)), so it takes
/// `&self`: keep mutable state behind a lock of your own.
///
/// Return `Ok` only once the batch is safely written: the dispatcher then
/// counts it delivered and frees its bytes. An error (or a panic, which is
/// caught) is retried as [`Retry`] says, and after the last attempt the
/// batch goes to the `on_flush_error` hook.
///
/// # Examples
///
/// ```
/// use std::io::Write;
/// use std::sync::Mutex;
/// use dispatcher::Batch;
/// use dispatcher::sink::{FlushContext, Sink, SinkError};
///
/// /// Writes each batch as one line to any writer.
/// struct Lines<W>(Mutex<W>);
///
/// impl<W: Write + Send + 'static> Sink<String> for Lines<W> {
///     fn write(&self, batch: &Batch<String>, _ctx: &FlushContext) -> Result<(), SinkError> {
///         let mut out = self.0.lock().unwrap();
///         writeln!(out, "{}", batch.join(" "))?;
///         Ok(())
///     }
/// }
/// ```
pub trait Sink<T, M = ()>: Send + Sync + 'static {
    /// Writes one batch. `ctx` says which attempt this is, when the attempt
    /// must end, and carries the builder's metadata.
    ///
    /// # Errors
    ///
    /// Any error: the attempt failed and the batch may be retried.
    fn write(&self, batch: &Batch<T>, ctx: &FlushContext<M>) -> Result<(), SinkError>;
}

impl<T, M, S: Sink<T, M> + ?Sized> Sink<T, M> for Arc<S> {
    fn write(&self, batch: &Batch<T>, ctx: &FlushContext<M>) -> Result<(), SinkError> {
        (**self).write(batch, ctx)
    }
}

/// A [`Sink`] made from a closure; see [`from_fn`].
pub struct FnSink<F>(F);

impl<F> fmt::Debug for FnSink<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FnSink")
    }
}

/// Makes a [`Sink`] of a closure `|batch, ctx| -> Result<(), E>` for any
/// error type `E`.
///
/// # Examples
///
/// ```
/// use dispatcher::sink;
///
/// let print = sink::from_fn(|batch: &dispatcher::Batch<String>, _ctx: &sink::FlushContext| {
///     println!("{} events", batch.len());
///     Ok::<_, std::io::Error>(())
/// });
/// # drop(print);
/// ```
pub fn from_fn<T, M, F, E>(write: F) -> FnSink<F>
where
    F: Fn(&Batch<T>, &FlushContext<M>) -> Result<(), E> + Send + Sync + 'static,
    E: Into<SinkError>,
{
    FnSink(write)
}

impl<T, M, F, E> Sink<T, M> for FnSink<F>
where
    F: Fn(&Batch<T>, &FlushContext<M>) -> Result<(), E> + Send + Sync + 'static,
    E: Into<SinkError>,
{
    fn write(&self, batch: &Batch<T>, ctx: &FlushContext<M>) -> Result<(), SinkError> {
        (self.0)(batch, ctx).map_err(Into::into)
    }
}

/// What a sink call knows besides the batch.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use dispatcher::{Dispatcher, sink};
///
/// // Every call learns which tenant the dispatcher serves.
/// let dispatcher = Dispatcher::<String>::builder().build_with_sink_meta(
///     "tenant-7".to_string(),
///     sink::from_fn(|batch: &dispatcher::Batch<String>, ctx: &sink::FlushContext<String>| {
///         assert_eq!(ctx.metadata(), "tenant-7");
///         assert_eq!(ctx.attempt(), 1);
///         assert!(ctx.remaining() <= Duration::from_secs(30));
///         Ok::<_, std::io::Error>(())
///     }),
/// )?;
/// dispatcher.producer().try_enqueue("e".into())?;
/// dispatcher.shutdown(Duration::from_secs(5))?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct FlushContext<M = ()> {
    metadata: Arc<M>,
    attempt: u32,
    deadline: Instant,
    worker: usize,
}

impl<M> FlushContext<M> {
    pub(crate) fn new(metadata: Arc<M>, attempt: u32, deadline: Instant, worker: usize) -> Self {
        FlushContext {
            metadata,
            attempt,
            deadline,
            worker,
        }
    }

    /// The value given to
    /// [`build_with_sink_meta`](crate::Builder::build_with_sink_meta)
    /// (`()` otherwise).
    pub fn metadata(&self) -> &M {
        &self.metadata
    }

    /// Which attempt this is for the batch, from 1.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// When this attempt must be done (`flush_timeout` after it started).
    /// A blocking sink should give up by then, e.g. with socket timeouts.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Time left until [`deadline`](Self::deadline), zero if past.
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// Which flush worker makes the call, from 0.
    pub fn worker(&self) -> usize {
        self.worker
    }
}

impl<M: fmt::Debug> fmt::Debug for FlushContext<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlushContext")
            .field("metadata", &self.metadata)
            .field("attempt", &self.attempt)
            .field("deadline", &self.deadline)
            .field("worker", &self.worker)
            .finish()
    }
}
