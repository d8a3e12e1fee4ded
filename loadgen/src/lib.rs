//! Load generation for Metronome: payload shapes, rate control, producer
//! threads and a consumer simulator, driving any [`Target`] (the dispatcher,
//! or a bare bounded channel as the reference).
//!
//! # Tutorial
//!
//! A soak run in miniature: 4 producers send telemetry events through the
//! dispatcher to a consumer that spends 50 µs on each batch, while an
//! HdrHistogram collects enqueue-to-delivery latency.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use dispatcher::{Dispatcher, Policy};
//! use hdrhistogram::{Histogram, sync::SyncHistogram};
//! use loadgen::*;
//!
//! // 1. The system under test, wrapped as a target.
//! let (dispatcher, batches) = Dispatcher::<Event>::builder()
//!     .interval(Duration::from_millis(2))
//!     .max_batch_bytes(32 * 1024)
//!     .max_buffered_bytes(256 * 1024)
//!     .policy(Policy::Reject)
//!     .build()?;
//! let target: Arc<dyn Target> = Arc::new(DispatcherTarget::new(dispatcher.producer()));
//!
//! // 2. The consumer, on its own thread, recording latency.
//! let clock = Clock::new();
//! let mut latency: SyncHistogram<u64> = Histogram::new(3)?.into();
//! let sim = ConsumerSim { delay_per_batch: Duration::from_micros(50), ..ConsumerSim::default() };
//! let consumer_counters = Arc::new(ConsumerCounters::new());
//! let consumer = spawn_consumer(
//!     "consumer",
//!     batches,
//!     Arc::new(ConsumerControl::new(sim)),
//!     consumer_counters.clone(),
//!     clock,
//!     Some(latency.recorder()),
//! )?;
//!
//! // 3. Producers: telemetry payloads ("telemetry" on the CLI), closed loop,
//! //    500 events each. `control` could pause them or set a rate meanwhile.
//! let payload = PayloadSource::load(&"telemetry".parse()?)?;
//! let mut cfg = ProducerConfig::new(4, payload);
//! cfg.events_per_producer = Some(500);
//! let counters = Arc::new(ProducerCounters::new(4));
//! let control = Arc::new(ProducerControl::new("unlimited".parse::<units::Rate>()?.per_second()));
//! let producers = spawn_producers(cfg, target, counters.clone(), clock, control)?;
//!
//! // 4. Shutdown: producers finish, the dispatcher drains, the consumer ends.
//! producers.join()?;
//! dispatcher.shutdown(Duration::from_secs(5))?;
//! let delivered = consumer.join().unwrap().delivered;
//!
//! let sent = counters.snapshot();
//! assert_eq!(sent.attempted, 2_000);
//! assert_eq!(sent.attempted, sent.accepted + sent.rejected);
//! assert_eq!(delivered, sent.accepted);
//! latency.refresh();
//! assert_eq!(latency.len(), delivered);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Modules
//!
//! - [`units`]: sizes (`10KiB`), rates (`200k/s`), durations (`250ms`).
//! - Payloads: [`PayloadSpec`] → [`PayloadSource`] → one [`PayloadGen`] per producer.
//! - Events and time: [`Event`], [`Clock`].
//! - Sending: [`Target`] with [`DispatcherTarget`] and the reference channels
//!   [`channel`] (std), [`crossbeam`] and [`tokio_mpsc`].
//! - Producers: [`spawn_producers`], [`ProducerControl`], [`ProducerCounters`],
//!   [`Scheduling`].
//! - Receiving: [`BatchSource`], [`run_consumer`], [`ConsumerSim`], [`Pacer`].

// Denied, not forbidden: `sched` makes the scheduler's FFI calls, with their proofs.
#![deny(unsafe_code)]

mod bookkeeper;
mod consumer;
mod control;
mod counters;
mod elsewhere;
mod event;
mod pacing;
mod payload;
mod producer;
mod reference;
mod sched;
mod source;
mod tally;
mod target;
pub mod units;

pub use consumer::{
    ConsumerControl, ConsumerCounters, ConsumerTotals, RECORDER_POLL, run_consumer, spawn_consumer,
};
pub use control::{CONTROL_POLL, ProducerControl};
pub use counters::{ProducerCounters, ProducerTotals};
pub use elsewhere::drop_elsewhere;
pub use event::{Clock, Event};
pub use pacing::{ConsumerSim, MAX_CATCH_UP, Pacer, Stall, batch_cost};
pub use payload::{
    MAX_FILE_BYTES, MAX_LOGNORMAL_SIGMA, MAX_PAYLOAD_BYTES, PayloadError, PayloadGen,
    PayloadSource, PayloadSpec, PayloadSpecError,
};
pub use producer::{
    DEFAULT_BACKOFF, ProducerConfig, ProducerPanicked, ProducerSet, SpawnError, spawn_producers,
};
pub use reference::{
    CrossbeamQueue, LATE_SENDERS, Queue, ReferenceBatch, ReferenceBatches, ReferenceTarget,
    StdQueue, TokioQueue, channel, crossbeam, tokio_mpsc,
};
pub use sched::{Scheduling, SchedulingError, set_scheduling};
pub use source::{BatchSource, DeliveredBatch, SourceError};
pub use tally::{OriginCounts, OriginTally};
pub use target::{DispatcherTarget, Offer, Target};
