//! Async use without blocking a runtime thread (feature `async`).
//!
//! - [`AsyncProducer::enqueue`] waits for room under
//!   [`Policy::Block`](crate::Policy::Block) by registering a waker instead
//!   of parking the thread.
//! - [`BatchStream`] is a `futures` [`Stream`](futures_core::Stream) of
//!   batches, with the interval cut by a runtime-agnostic timer.
//! - [`AsyncSink`] with
//!   [`Builder::build_with_async_sink`](crate::Builder::build_with_async_sink)
//!   returns a [`SinkDriver`] future that you spawn on your runtime: the
//!   sink's futures then run where its I/O lives.
//! - [`Dispatcher::shutdown_async`](crate::Dispatcher::shutdown_async)
//!   waits for the drain without blocking the runtime, so it also works
//!   inside a current-thread runtime that drives the sink.
//!
//! Nothing here depends on a particular runtime; the tests use tokio.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use dispatcher::{Batch, Dispatcher, Policy};
//! use dispatcher::nonblocking::AsyncSink;
//! use dispatcher::sink::{FlushContext, SinkError};
//!
//! struct Count(std::sync::atomic::AtomicUsize);
//!
//! impl AsyncSink<String> for Count {
//!     async fn write(&self, batch: &Batch<String>, _ctx: &FlushContext) -> Result<(), SinkError> {
//!         // An async client call would go here.
//!         self.0.fetch_add(batch.len(), std::sync::atomic::Ordering::SeqCst);
//!         Ok(())
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let sink = std::sync::Arc::new(Count(Default::default()));
//! let (dispatcher, driver) = Dispatcher::<String>::builder()
//!     .policy(Policy::Block { timeout: Duration::from_secs(1) })
//!     .build_with_async_sink(std::sync::Arc::clone(&sink))?;
//! tokio::spawn(driver);
//! let producer = dispatcher.async_producer();
//! for i in 0..100 {
//!     producer.enqueue(format!("event {i}")).await?;
//! }
//! let report = dispatcher.shutdown_async(Duration::from_secs(5)).await?;
//! assert_eq!(report.delivered_total, 100);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

mod enqueue;
mod shutdown;
mod sink;
mod stream;
mod waiting;

pub use enqueue::{AsyncProducer, EnqueueFuture};
pub use shutdown::ShutdownFuture;
pub use sink::{AsyncSink, SinkDriver};
pub use stream::BatchStream;
