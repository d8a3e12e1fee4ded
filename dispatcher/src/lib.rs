//! An in-process batching dispatcher whose memory is bounded by bytes.
//!
//! Producers hand events to a [`Dispatcher`]; it groups them into batches and
//! emits a batch when its interval elapses, when it reaches a byte or item
//! target, on [`flush`](Dispatcher::flush), or on shutdown. Admission is
//! bounded by the summed byte [`Weight`] of accepted, undelivered events —
//! exactly, not estimated — and an explicit [`Policy`] says what happens when
//! an event does not fit: refuse it with a typed error that hands it back,
//! block for a while, or evict the oldest events and count them. Shutdown
//! delivers everything accepted within a deadline, or returns what it could
//! not deliver.
//!
//! # Tutorial
//!
//! ```
//! use std::thread;
//! use std::time::Duration;
//! use dispatcher::{Dispatcher, Policy, TryEnqueueError};
//!
//! // 1. Configure: batches of up to 32 KiB or 10 ms, at most 1 MiB held.
//! let (dispatcher, batches) = Dispatcher::<Vec<u8>>::builder()
//!     .interval(Duration::from_millis(10))
//!     .max_batch_bytes(32 * 1024)
//!     .max_buffered_bytes(1024 * 1024)
//!     .policy(Policy::Reject)
//!     .build()?;
//!
//! // 2. Consume batches on a thread of your own (or several: clone `batches`).
//! let consumer = thread::spawn(move || {
//!     let mut events = 0;
//!     for batch in &batches {
//!         events += batch.len(); // write the batch downstream here
//!     }
//!     events
//! });
//!
//! // 3. Produce from any number of threads through cheap handles.
//! let producer = dispatcher.producer();
//! for i in 0..1000u32 {
//!     match producer.try_enqueue(i.to_le_bytes().to_vec()) {
//!         Ok(()) => {}
//!         Err(TryEnqueueError::Full(event)) => drop(event), // or retry, or count
//!         Err(other) => return Err(other.into()),
//!     }
//! }
//!
//! // 4. Shut down: everything accepted reaches the consumer, or comes back.
//! let report = dispatcher.shutdown(Duration::from_secs(5))?;
//! assert_eq!(consumer.join().unwrap() as u64, report.delivered_total);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Delivery styles
//!
//! - **Pull**: [`Builder::build`] returns a [`Batches`] receiver for threads
//!   of your own (above; `examples/pull.rs`).
//! - **Push**: [`Builder::build_with_sink`] writes batches to a
//!   [`sink::Sink`] on the dispatcher's own flush workers, with a per-call
//!   timeout, bounded retries with backoff and jitter, and an
//!   `on_flush_error` dead-letter hook (`examples/ndjson_sink.rs`: a durable
//!   NDJSON file with `fsync` per batch).
//! - **Async** (feature `async`): `enqueue(..).await`, a `Stream` of batches,
//!   and async sinks driven on your runtime (`examples/async_sink.rs`).
//!
//! Batches can also be cut by hooks ([`Builder::should_flush`],
//! [`Builder::will_overflow`]) and events filtered ([`Builder::can_add`]);
//! [`Dispatcher::flush_and_wait`] is a checkpoint; [`Builder::partitions`]
//! spreads producers over independent batch builders that share one byte
//! budget.
//!
//! # Guarantees
//!
//! - `buffered_bytes <= max_buffered_bytes` at all times, with any number of
//!   partitions and under every policy. After the limit is lowered with
//!   [`Dispatcher::set_limits`] nothing is dropped: buffered bytes only go
//!   down until they are under it (admission waits, refuses, or under
//!   DropOldest evicts at least what it adds).
//! - A batch exceeds `max_batch_bytes` only when it holds a single event that
//!   is itself larger.
//! - Events enqueued through one [`Producer`] handle are delivered in the
//!   order they were accepted; each accepted event is delivered exactly once
//!   (at least once to a sink that failed and was retried), evicted and
//!   counted (DropOldest), handed to the error hook and counted (sink mode),
//!   or returned by [`Dispatcher::shutdown`] / [`Dispatcher::stop`]. A sink
//!   batch whose worker or async driver goes away mid-write goes back to its
//!   queue, still counted against the limit.
//! - A refusal evicts nothing and hands the event back. A producer waiting
//!   for room that fits is let in by the delivery that made the room; one
//!   waiting when the dispatcher closes gets `Closed`.
//! - No busy waiting: idle receivers and blocked producers sleep until they
//!   are told something changed. In pull mode the dispatcher runs no thread
//!   of its own (receivers cut batches whose interval has elapsed); in sink
//!   mode its flush workers do that.
//!
//! # Hooks
//!
//! [`Builder::can_add`], [`Builder::will_overflow`] and
//! [`Builder::should_flush`] run on the producer's thread under its
//! partition's lock, with shared references only, at points where the byte
//! accounting is complete: before anything changes (`can_add`,
//! `will_overflow`) or after the event is fully counted (`should_flush`).
//! They cannot change the accounting. Keep them short: every producer of
//! that partition waits while one runs. [`Builder::on_evict`],
//! [`Builder::on_reject`] and the sink's `on_flush_error` run after the lock
//! is released, so they may enqueue elsewhere.
//!
//! A hook that panics is caught and answers "no" (`can_add` refuses, the
//! others do not cut). The operation completes (a group stays whole,
//! waiters are woken, the counters stay exact) and only then is the panic
//! resumed on the producer's thread: the call panics although the
//! dispatcher is consistent. The same holds for [`Weight::weight`] when the
//! dispatcher asks it again (eviction, re-cutting under a lowered batch
//! limit): a panic there counts the event for one byte. The weight is
//! charged once, at admission, and the counters never trust a second
//! answer beyond what the batch was charged: an event split off a batch
//! frees its new answer, clamped so every event left keeps a byte, so
//! `buffered_bytes` and every batch's [`Batch::bytes`] stay exact sums
//! that never underflow and never pass the bound. What they cannot keep is
//! each event's own charge: if `weight` answers differently than it did at
//! admission, an evicted event can free more (or less) than it was charged,
//! and the events left are then counted for less (or more) than they were.
//! Keep `weight` stable while the dispatcher holds an event (the length of
//! a payload and the [`Weight::occupancy`] of an unchanged event are).
//!
//! # Features
//!
//! - `bytes`: [`Weight`] for `bytes::Bytes`.
//! - `async`: the `nonblocking` module (runtime-agnostic; tested on tokio).
//! - `tracing`: a span per sink attempt (`dispatcher.flush`), a warning per
//!   retry and an error per batch given up.
//! - `metrics`: every counter and gauge of [`Stats`] through the `metrics`
//!   facade (see the `metrics` module).
//! - `nats`: a sink that publishes to a NATS JetStream subject (see
//!   `sink::nats`).
//! - `spill`: a durable disk tier, `Builder::spill`: events that do not fit
//!   in memory go to a bounded, checksummed, crash-recovering on-disk log
//!   (the `spill` module) and come back in order as memory frees; see
//!   `Builder::spill` for the guarantees. `spill-serde` adds a postcard
//!   `Codec`.

#![forbid(unsafe_code)]

mod batch;
mod budget;
mod clock;
mod config;
mod core;
mod dispatcher;
mod error;
mod hooks;
#[cfg(feature = "metrics")]
pub mod metrics;
#[cfg(feature = "async")]
pub mod nonblocking;
mod producer;
mod receiver;
mod signal;
pub mod sink;
#[cfg(feature = "spill")]
pub mod spill;
mod state;
mod stats;
mod sync;
mod undelivered;
pub mod weight;

pub use batch::{Batch, FlushReason};
pub use config::{Builder, ConfigError, Limits, Policy};
pub use dispatcher::Dispatcher;
pub use error::{
    EnqueueError, EnqueueTimeoutError, FlushWaitTimeout, RecvError, RecvTimeoutError,
    ShutdownReport, ShutdownTimeout, TryEnqueueError, TryRecvError,
};
pub use hooks::OpenBatch;
pub use producer::Producer;
pub use receiver::{Batches, Iter};
pub use stats::{FlushCounts, Rejections, SpillCounts, Stats};
pub use undelivered::Undelivered;
pub use weight::{Weighing, Weight};
