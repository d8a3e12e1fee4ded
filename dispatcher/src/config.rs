//! Limits, overload policy and the builder that validates them.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::budget::MAX_BYTES;
use crate::core::{Core, Parts};
use crate::dispatcher::Dispatcher;
use crate::hooks::Hooks;
use crate::receiver::Batches;
use crate::sink::{ErrorHook, SinkConfig};

/// What admission does when an event does not fit under `max_buffered_bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Policy {
    /// Refuse the event with [`EnqueueError::Full`](crate::EnqueueError::Full).
    Reject,
    /// Wait for room, at most `timeout`, then refuse with
    /// [`EnqueueError::Timeout`](crate::EnqueueError::Timeout).
    Block {
        /// How long [`Producer::enqueue`](crate::Producer::enqueue) waits for room.
        timeout: Duration,
    },
    /// Evict the oldest events not yet handed to a receiver until the new one
    /// fits (with partitions: see [`Builder::partitions`]). Every eviction
    /// is counted in [`Stats::dropped`](crate::Stats::dropped) and handed to
    /// the builder's `on_evict` callback, if any. A refusal evicts nothing.
    DropOldest,
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Policy::Reject => f.write_str("reject"),
            Policy::Block { timeout } => write!(f, "block ({timeout:?})"),
            Policy::DropOldest => f.write_str("drop-oldest"),
        }
    }
}

/// The limits a dispatcher batches and admits by; all can change while it runs
/// (see [`Dispatcher::set_limits`]).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use dispatcher::Limits;
///
/// let limits = Limits {
///     max_batch_bytes: Some(32 * 1024),
///     ..Limits::default()
/// };
/// assert!(limits.validate().is_ok());
/// assert_eq!(limits.interval, Duration::from_millis(10));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// A batch is emitted at most this long after its first event arrived
    /// (plus a random share of `interval_jitter`). Must be > 0;
    /// `Duration::MAX` means never by time.
    pub interval: Duration,
    /// Up to this much extra delay is added to each batch's interval, chosen at
    /// random, so many dispatchers do not flush in lock-step. `0..=interval`.
    pub interval_jitter: Duration,
    /// Upper bound on the summed weight of accepted, undelivered events. > 0.
    pub max_buffered_bytes: usize,
    /// A batch is emitted once it reaches this many bytes; it exceeds the
    /// limit only when a single event is itself larger. `1..=max_buffered_bytes`.
    pub max_batch_bytes: Option<usize>,
    /// A batch is emitted once it holds this many events. > 0.
    pub max_batch_items: Option<usize>,
}

impl Default for Limits {
    /// 10 ms interval, no jitter, 64 MiB buffered, no batch size limits.
    fn default() -> Self {
        Limits {
            interval: Duration::from_millis(10),
            interval_jitter: Duration::ZERO,
            max_buffered_bytes: 64 * 1024 * 1024,
            max_batch_bytes: None,
            max_batch_items: None,
        }
    }
}

impl Limits {
    /// Checks every field against its allowed range.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the first field out of range, its value and the
    /// allowed range.
    ///
    /// # Examples
    ///
    /// ```
    /// use dispatcher::Limits;
    ///
    /// let bad = Limits { max_batch_bytes: Some(1 << 30), max_buffered_bytes: 1 << 20, ..Limits::default() };
    /// let err = bad.validate().unwrap_err();
    /// assert_eq!(err.field(), "max_batch_bytes");
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.interval.is_zero() {
            return Err(ConfigError::new("interval", &self.interval, "> 0"));
        }
        if self.interval_jitter > self.interval {
            return Err(ConfigError::new(
                "interval_jitter",
                &self.interval_jitter,
                format!("0 ..= interval ({:?})", self.interval),
            ));
        }
        if self.max_buffered_bytes == 0 || self.max_buffered_bytes > MAX_BYTES {
            return Err(ConfigError::new(
                "max_buffered_bytes",
                &self.max_buffered_bytes,
                format!("1 ..= {MAX_BYTES}"),
            ));
        }
        if let Some(bytes) = self.max_batch_bytes {
            if bytes == 0 || bytes > self.max_buffered_bytes {
                return Err(ConfigError::new(
                    "max_batch_bytes",
                    &bytes,
                    format!("1 ..= max_buffered_bytes ({})", self.max_buffered_bytes),
                ));
            }
        }
        if self.max_batch_items == Some(0) {
            return Err(ConfigError::new("max_batch_items", &0, "> 0"));
        }
        Ok(())
    }
}

/// A configuration value outside its allowed range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field} = {value}: allowed {allowed}")]
pub struct ConfigError {
    field: &'static str,
    value: String,
    allowed: String,
}

impl ConfigError {
    pub(crate) fn new(
        field: &'static str,
        value: &dyn fmt::Debug,
        allowed: impl Into<String>,
    ) -> Self {
        ConfigError {
            field,
            value: format!("{value:?}"),
            allowed: allowed.into(),
        }
    }

    /// The name of the offending field, as spelled in [`Limits`] / [`Builder`].
    pub fn field(&self) -> &'static str {
        self.field
    }

    /// The offending value, formatted.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// The allowed range, in words.
    pub fn allowed(&self) -> &str {
        &self.allowed
    }
}

/// Called with each event that [`Policy::DropOldest`] evicts.
pub(crate) type EvictHook<T> = Arc<dyn Fn(T) + Send + Sync>;

/// Builds a [`Dispatcher`] and its [`Batches`] receiver; validates on
/// [`build`](Builder::build).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use dispatcher::{Dispatcher, Policy};
///
/// let (dispatcher, batches) = Dispatcher::<Vec<u8>>::builder()
///     .interval(Duration::from_millis(5))
///     .max_buffered_bytes(1 << 20)
///     .max_batch_bytes(16 * 1024)
///     .policy(Policy::Block { timeout: Duration::from_millis(50) })
///     .build()?;
/// # drop((dispatcher, batches));
/// # Ok::<(), dispatcher::ConfigError>(())
/// ```
pub struct Builder<T> {
    limits: Limits,
    policy: Policy,
    weighing: crate::Weighing,
    on_evict: Option<EvictHook<T>>,
    pub(crate) hooks: Hooks<T>,
    pub(crate) sink: SinkConfig,
    pub(crate) on_flush_error: Option<ErrorHook<T>>,
    name: Arc<str>,
    partitions: usize,
    metrics_every: Option<Duration>,
    pub(crate) seed: u64,
    #[cfg(feature = "spill")]
    spill: Option<crate::core::spill::SpillSetup<T>>,
}

impl<T> fmt::Debug for Builder<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("limits", &self.limits)
            .field("policy", &self.policy)
            .field("weighing", &self.weighing)
            .field("on_evict", &self.on_evict.is_some())
            .field("hooks", &self.hooks.names())
            .field("sink", &self.sink)
            .field("on_flush_error", &self.on_flush_error.is_some())
            .field("name", &self.name)
            .field("partitions", &self.partitions)
            .field("spill", &self.spill_dir())
            .finish()
    }
}

/// The default partition count: four per processor the process may use
/// (one processor when that cannot be told), from 4 to 64, so producer
/// threads cloned from one handle do not queue on a few locks. Producers
/// usually outnumber processors, and a producer preempted while it holds a
/// partition's lock stalls every other producer of that partition and the
/// receiver. With 4 and 32 producer threads on 2 processors, 8 partitions
/// delivered 1.08-1.34x as many events as 2 in five of the six groups of
/// 64 B, 1 KiB and 10 KiB events, and as many (1.01x) with 32 producers of
/// 1 KiB (criterion medians of 3 to 8 interleaved runs); 16 was not
/// consistently better than 8.
pub(crate) fn default_partitions() -> usize {
    let processors = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    processors.saturating_mul(4).clamp(4, 64)
}

impl<T> Default for Builder<T> {
    fn default() -> Self {
        Builder {
            limits: Limits::default(),
            policy: Policy::Reject,
            weighing: crate::Weighing::Payload,
            on_evict: None,
            hooks: Hooks::default(),
            sink: SinkConfig::default(),
            on_flush_error: None,
            name: Arc::from("dispatcher"),
            partitions: default_partitions(),
            metrics_every: None,
            seed: 0x6d65_7472_6f6e_6f6d,
            #[cfg(feature = "spill")]
            spill: None,
        }
    }
}

impl<T> Builder<T> {
    /// The disk tier's directory, if there is one (for `Debug`).
    fn spill_dir(&self) -> Option<&std::path::Path> {
        #[cfg(feature = "spill")]
        if let Some(setup) = &self.spill {
            return Some(setup.log.dir());
        }
        None
    }
}

impl<T: crate::Weight + Send + 'static> Builder<T> {
    /// Sets [`Limits::interval`] (default 10 ms).
    pub fn interval(mut self, interval: Duration) -> Self {
        self.limits.interval = interval;
        self
    }

    /// Sets [`Limits::interval_jitter`] (default 0).
    pub fn interval_jitter(mut self, jitter: Duration) -> Self {
        self.limits.interval_jitter = jitter;
        self
    }

    /// Sets [`Limits::max_buffered_bytes`] (default 64 MiB).
    pub fn max_buffered_bytes(mut self, bytes: usize) -> Self {
        self.limits.max_buffered_bytes = bytes;
        self
    }

    /// Sets [`Limits::max_batch_bytes`] (default: none).
    pub fn max_batch_bytes(mut self, bytes: usize) -> Self {
        self.limits.max_batch_bytes = Some(bytes);
        self
    }

    /// Sets [`Limits::max_batch_items`] (default: none).
    pub fn max_batch_items(mut self, items: usize) -> Self {
        self.limits.max_batch_items = Some(items);
        self
    }

    /// Replaces all limits at once.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Sets the overload [`Policy`] (default [`Policy::Reject`]).
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// What the byte limits count for each event (default
    /// [`Weighing::Payload`](crate::Weighing::Payload)): the payload, or what the
    /// event occupies in memory, so that `max_buffered_bytes` is a heap budget.
    ///
    /// ```
    /// use dispatcher::{Dispatcher, Weighing};
    ///
    /// let (dispatcher, batches) = Dispatcher::<Vec<u8>>::builder()
    ///     .max_buffered_bytes(4096)
    ///     .weighing(Weighing::Occupancy)
    ///     .build()?;
    /// let producer = dispatcher.producer();
    /// producer.try_enqueue(vec![0; 1000])?; // 24 B of struct + a 1 KiB allocation
    /// assert_eq!(dispatcher.stats().buffered_bytes, 24 + 1024);
    /// # drop(batches);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn weighing(mut self, weighing: crate::Weighing) -> Self {
        self.weighing = weighing;
        self
    }

    /// Receives every event that [`Policy::DropOldest`] evicts, on the thread
    /// of the producer whose event caused the eviction, after the dispatcher's
    /// lock is released (so the callback may enqueue elsewhere).
    pub fn on_evict(mut self, hook: impl Fn(T) + Send + Sync + 'static) -> Self {
        self.on_evict = Some(Arc::new(hook));
        self
    }

    /// Seeds the random interval jitter and retry backoff, for reproducible
    /// tests.
    pub fn jitter_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Names the dispatcher in `tracing` spans and as the `dispatcher`
    /// label of its `metrics` (default `"dispatcher"`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Arc::from(name.into());
        self
    }

    /// Feature `metrics`: also publish the stats automatically, at most once
    /// per `interval`, while batches are handed over (off by default; see
    /// [`Dispatcher::publish_metrics`]).
    #[cfg(feature = "metrics")]
    pub fn publish_metrics_every(mut self, interval: Duration) -> Self {
        self.metrics_every = Some(interval);
        self
    }

    /// Spreads producers over `n` independent batch builders, each with its
    /// own lock, that share one `max_buffered_bytes` budget (`1..=256`), so
    /// admission scales with cores and with producer threads. The default
    /// is four per processor the process may use
    /// (`std::thread::available_parallelism`), from 4 to 64;
    /// `partitions(1)` makes every event of every handle go through one
    /// batch builder, so batches mix handles and are as large as they can be.
    ///
    /// With several partitions (and a `max_buffered_bytes` of at least
    /// 1 MiB, not under DropOldest, without a disk tier) a partition leases
    /// budget bytes ahead, up to 16 KiB at a time, and charges its events to
    /// the lease under its own lock: most admissions then leave the shared
    /// budget's cache line alone. Leased bytes count against the limit, so
    /// the bound holds exactly, but an admission can find the budget full
    /// (refused, or waiting under Block) while other partitions hold
    /// unused leases: at most `(n - 1) x 16 KiB` and 1/64 of the limit in
    /// all. A partition gives its lease back whenever events leave it, and
    /// when an admission of its own finds no room. Each
    /// [`producer`](Dispatcher::producer) call and each clone of a handle
    /// gets the next partition round-robin, so one handle cloned into N
    /// threads spreads over the partitions. Events of one handle keep their
    /// order; events of different handles may be delivered in any order.
    /// Batches are cut per partition; receivers take the waiting batch
    /// whose first event joined it earliest, whatever its partition, so no
    /// partition's events wait behind the others'. Under [`Policy::DropOldest`] an
    /// admission evicts the oldest events of its own partition first and,
    /// when they are not enough, the oldest of the partitions after it;
    /// it is refused as `Full`, evicting nothing, only when the rest of the
    /// budget is held by batches inside a sink call.
    ///
    /// # Examples
    ///
    /// ```
    /// use dispatcher::Dispatcher;
    ///
    /// let (dispatcher, batches) = Dispatcher::<Vec<u8>>::builder()
    ///     .partitions(4)
    ///     .max_buffered_bytes(64)
    ///     .build()?;
    /// let producers: Vec<_> = (0..4).map(|_| dispatcher.producer()).collect();
    /// for p in &producers {
    ///     p.try_enqueue(vec![0; 16])?;
    /// }
    /// // The budget is shared: 4 x 16 bytes fill it, whatever the partition.
    /// assert!(producers[0].try_enqueue(vec![0; 1]).is_err());
    /// dispatcher.flush();
    /// assert_eq!(batches.iter().take(4).map(|b| b.len()).sum::<usize>(), 4);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn partitions(mut self, n: usize) -> Self {
        self.partitions = n;
        self
    }

    /// A durable disk tier (feature `spill`): events that do not fit in
    /// memory are appended to `log` (encoded by `codec`) instead of being
    /// refused, blocked on or evicting, and read back into batches as
    /// memory frees; the memory policy applies only when the disk budget
    /// is full too (or the disk fails). Pass what
    /// [`Spill::open`](crate::spill::Spill::open) returns: opening is where
    /// the directory is locked and recovered, with typed errors.
    ///
    /// - Order: once anything is on disk, newer events queue behind it
    ///   (each producer's order is kept across the tiers). Under
    ///   DropOldest with both tiers full, eviction makes room in memory and
    ///   the new event goes there, ahead of older events still on disk
    ///   (not with write-ahead, which admits only what the disk took: with
    ///   the disk full, every policy refuses, Block after waiting).
    /// - Acknowledgement: an event read back is acknowledged on disk once
    ///   its batch is delivered (pull mode: when the receiver drops the
    ///   [`Batch`](crate::Batch); sink mode: written, or handed to the
    ///   error hook), evicted or returned. Acknowledged records are deleted
    ///   a segment at a time.
    /// - Recovery: records left unacknowledged by an earlier run (a crash,
    ///   or a shutdown whose deadline passed) are delivered first.
    ///   Delivery is at least once: after a crash, what was read back but
    ///   not yet acknowledged is delivered again.
    /// - Bytes: events read back are charged like any admitted event and
    ///   never push memory past `max_buffered_bytes`, with one exception,
    ///   the one a lowered limit already makes: an event accepted under a
    ///   larger limit (lowered since, or a restart with a smaller one) that
    ///   no longer fits comes back alone, once memory is empty.
    /// - With [`Spill::write_ahead`](crate::spill::Spill::write_ahead) every
    ///   event goes through the disk, so a crash loses none.
    /// - Shutdown drains the disk too, within its deadline, and waits for
    ///   receivers to drop the batches read back from disk (their
    ///   acknowledgement; one still held then is delivered again after the
    ///   next start); what is left stays on disk for the next start
    ///   ([`SpillCounts::backlog`](crate::SpillCounts)).
    ///   [`Dispatcher::stop`](crate::Dispatcher::stop) leaves the disk as it
    ///   is. Events that came from disk and that shutdown or stop hands back
    ///   undelivered stay on disk too, unacknowledged: the next start
    ///   delivers them again (whatever the caller does with its copy).
    ///
    /// A worker thread (`<name>-spill`) reads the disk back. The
    /// `can_add` hook cannot be combined with a disk tier (an event on disk
    /// has no open batch to be judged against): `build` refuses it.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use dispatcher::Dispatcher;
    /// use dispatcher::spill::{Raw, Spill};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let (dispatcher, batches) = Dispatcher::<Vec<u8>>::builder()
    ///     .max_buffered_bytes(64) // room for two events in memory
    ///     .spill(Spill::new(dir.path()).open()?, Raw)
    ///     .build()?;
    /// let producer = dispatcher.producer();
    /// for i in 0..10u8 {
    ///     producer.try_enqueue(vec![i; 32])?; // never refused: 8 go to disk
    /// }
    /// assert_eq!(dispatcher.stats().spill.spilled, 8);
    /// let consumer = std::thread::spawn(move || batches.iter().map(|b| b.len()).sum::<usize>());
    /// let report = dispatcher.shutdown(Duration::from_secs(5))?;
    /// assert_eq!(consumer.join().unwrap(), 10);
    /// assert_eq!(report.stats.spill.backlog, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "spill")]
    pub fn spill(
        mut self,
        opened: (crate::spill::SpillLog, crate::spill::Recovered),
        codec: impl crate::spill::Codec<T>,
    ) -> Self {
        let (log, recovered) = opened;
        self.spill = Some(crate::core::spill::SpillSetup {
            log,
            recovered,
            codec: Box::new(crate::core::spill::record::ByCodec(codec)),
        });
        self
    }

    /// Checks the limits and the policy.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        self.limits.validate()?;
        if !(1..=256).contains(&self.partitions) {
            return Err(ConfigError::new(
                "partitions",
                &self.partitions,
                "1 ..= 256",
            ));
        }
        if let Policy::Block { timeout } = self.policy {
            if timeout.is_zero() {
                return Err(ConfigError::new("policy.timeout", &timeout, "> 0"));
            }
        }
        if let (Some(dir), true) = (self.spill_dir(), self.hooks.can_add.is_some()) {
            return Err(ConfigError::new(
                "spill",
                &dir.display(),
                "no can_add hook: an event on disk has no open batch to be judged against",
            ));
        }
        Ok(())
    }

    /// The dispatcher's core: its partitions and what they share.
    /// `hold_in_flight` for sink mode.
    pub(crate) fn core(self, hold_in_flight: bool) -> Arc<Core<T>> {
        let core = Arc::new(Core::new(Parts {
            limits: self.limits,
            policy: self.policy,
            weighing: self.weighing,
            partitions: self.partitions,
            on_evict: self.on_evict,
            hooks: self.hooks,
            hold_in_flight,
            on_flush_error: self.on_flush_error,
            name: self.name,
            metrics_every: self.metrics_every,
            seed: self.seed,
            #[cfg(feature = "spill")]
            spill: self.spill,
        }));
        #[cfg(feature = "spill")]
        core.start_spill_worker();
        core
    }

    /// Validates the configuration and creates the dispatcher and its receiver.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the first field out of range (see
    /// [`Limits::validate`]); a `Block` policy needs a timeout > 0. A sink
    /// setting (`flush_workers`, `flush_timeout`, `retry`,
    /// `on_flush_error`) is refused rather than ignored: it only means
    /// something to [`build_with_sink`](Builder::build_with_sink) and
    /// `build_with_async_sink`.
    ///
    /// # Examples
    ///
    /// ```
    /// use dispatcher::Dispatcher;
    ///
    /// let err = Dispatcher::<String>::builder().flush_workers(4).build().unwrap_err();
    /// assert_eq!(err.field(), "flush_workers");
    /// ```
    pub fn build(self) -> Result<(Dispatcher<T>, Batches<T>), ConfigError> {
        self.validate()?;
        if let Some((setting, value)) = self.sink.set_by_user.clone() {
            return Err(ConfigError {
                field: setting,
                value,
                allowed: "only with build_with_sink or build_with_async_sink: build() has no sink"
                    .into(),
            });
        }
        let core = self.core(false);
        Ok((Dispatcher::from_core(Arc::clone(&core)), Batches::new(core)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(limits: Limits) -> &'static str {
        limits.validate().unwrap_err().field()
    }

    #[test]
    fn defaults_are_valid() {
        assert_eq!(Limits::default().validate(), Ok(()));
    }

    #[test]
    fn each_out_of_range_field_is_named() {
        let d = Limits::default();
        assert_eq!(
            field_of(Limits {
                interval: Duration::ZERO,
                ..d
            }),
            "interval"
        );
        let jitter = Limits {
            interval_jitter: d.interval * 2,
            ..d
        };
        assert_eq!(field_of(jitter), "interval_jitter");
        assert_eq!(
            field_of(Limits {
                max_buffered_bytes: 0,
                ..d
            }),
            "max_buffered_bytes"
        );
        assert_eq!(
            field_of(Limits {
                max_batch_bytes: Some(0),
                ..d
            }),
            "max_batch_bytes"
        );
        let over = Limits {
            max_batch_bytes: Some(d.max_buffered_bytes + 1),
            ..d
        };
        assert_eq!(field_of(over), "max_batch_bytes");
        assert_eq!(
            field_of(Limits {
                max_batch_items: Some(0),
                ..d
            }),
            "max_batch_items"
        );
    }

    #[test]
    fn error_message_names_field_value_and_range() {
        let err = Limits {
            max_batch_bytes: Some(10),
            max_buffered_bytes: 5,
            ..Limits::default()
        }
        .validate()
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid max_batch_bytes = 10: allowed 1 ..= max_buffered_bytes (5)"
        );
        assert_eq!(err.value(), "10");
    }

    #[test]
    fn jitter_equal_to_interval_is_allowed() {
        let d = Limits::default();
        assert!(
            Limits {
                interval_jitter: d.interval,
                ..d
            }
            .validate()
            .is_ok()
        );
    }

    #[test]
    fn block_policy_needs_a_timeout() {
        let err = Builder::<Vec<u8>>::default()
            .policy(Policy::Block {
                timeout: Duration::ZERO,
            })
            .build()
            .unwrap_err();
        assert_eq!(err.field(), "policy.timeout");
    }
}
