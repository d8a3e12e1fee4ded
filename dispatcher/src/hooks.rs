//! Batch hooks for callers whose limits are not plain bytes: a custom flush
//! trigger, a hard cut before an event that must not join the open batch,
//! and an admission filter.
//!
//! The rules they follow (where they run, what a panic does) are in the
//! crate docs, section "Hooks".

use std::fmt;
use std::sync::Arc;

use crate::config::Builder;

/// A read-only view of the batch being filled, handed to the hooks.
///
/// # Examples
///
/// ```
/// use dispatcher::Dispatcher;
///
/// // Cut a batch as soon as it holds an event that says "end".
/// let (dispatcher, batches) = Dispatcher::<String>::builder()
///     .should_flush(|open| open.items().last().is_some_and(|e| e == "end"))
///     .build()?;
/// let producer = dispatcher.producer();
/// producer.try_enqueue("a".into())?;
/// producer.try_enqueue("end".into())?;
/// let batch = batches.try_recv()?;
/// assert_eq!((batch.len(), batch.reason()), (2, dispatcher::FlushReason::Hook));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct OpenBatch<'a, T> {
    pub(crate) items: &'a [T],
    pub(crate) bytes: usize,
}

impl<T> OpenBatch<'_, T> {
    /// The events in the batch so far, in admission order.
    pub fn items(&self) -> &[T] {
        self.items
    }

    /// Their summed weight.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// How many events the batch holds.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

impl<T> fmt::Debug for OpenBatch<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenBatch")
            .field("len", &self.items.len())
            .field("bytes", &self.bytes)
            .finish()
    }
}

pub(crate) type BatchPredicate<T> = Arc<dyn Fn(&OpenBatch<'_, T>) -> bool + Send + Sync>;
pub(crate) type ItemPredicate<T> = Arc<dyn Fn(&OpenBatch<'_, T>, &T) -> bool + Send + Sync>;
pub(crate) type ItemObserver<T> = Arc<dyn Fn(&T) + Send + Sync>;

/// The hooks a builder was given; all optional.
pub(crate) struct Hooks<T> {
    /// Whether `should_flush` or `will_overflow` is set: one test on the
    /// hot path instead of two. Derived by [`Hooks::armed`].
    pub(crate) on_append: bool,
    /// Whether any hook that runs under the lock is set. Derived by
    /// [`Hooks::armed`].
    pub(crate) any: bool,
    pub(crate) should_flush: Option<BatchPredicate<T>>,
    pub(crate) will_overflow: Option<ItemPredicate<T>>,
    pub(crate) can_add: Option<ItemPredicate<T>>,
    pub(crate) on_reject: Option<ItemObserver<T>>,
}

impl<T> Default for Hooks<T> {
    fn default() -> Self {
        Hooks {
            on_append: false,
            any: false,
            should_flush: None,
            will_overflow: None,
            can_add: None,
            on_reject: None,
        }
    }
}

impl<T> Clone for Hooks<T> {
    fn clone(&self) -> Self {
        Hooks {
            on_append: self.on_append,
            any: self.any,
            should_flush: self.should_flush.clone(),
            will_overflow: self.will_overflow.clone(),
            can_add: self.can_add.clone(),
            on_reject: self.on_reject.clone(),
        }
    }
}

impl<T> Hooks<T> {
    /// The hooks with their hot-path flags derived from which are set.
    pub(crate) fn armed(mut self) -> Self {
        self.on_append = self.should_flush.is_some() || self.will_overflow.is_some();
        self.any = self.on_append || self.can_add.is_some();
        self
    }

    /// Names of the hooks set, for `Debug`.
    pub(crate) fn names(&self) -> Vec<&'static str> {
        [
            ("should_flush", self.should_flush.is_some()),
            ("will_overflow", self.will_overflow.is_some()),
            ("can_add", self.can_add.is_some()),
            ("on_reject", self.on_reject.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect()
    }
}

/// Setting the hooks.
impl<T: crate::Weight + Send + 'static> Builder<T> {
    /// Custom flush trigger, asked after each event is appended: return true
    /// to emit the batch now (reason [`Hook`](crate::FlushReason::Hook)).
    /// Runs under the partition's lock: keep it short; a panic is caught
    /// (see [the crate docs](crate#hooks)). See [`OpenBatch`] for an example.
    pub fn should_flush(
        mut self,
        hook: impl Fn(&OpenBatch<'_, T>) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.hooks.should_flush = Some(Arc::new(hook));
        self
    }

    /// Hard downstream limits: asked before an event joins a non-empty open
    /// batch; return true to emit the batch first (reason
    /// [`Hook`](crate::FlushReason::Hook)), so the event starts a new one.
    /// Runs under the partition's lock: keep it short; a panic is caught
    /// (see [the crate docs](crate#hooks)).
    ///
    /// # Examples
    ///
    /// ```
    /// use dispatcher::Dispatcher;
    ///
    /// // A downstream that takes at most 3 distinct tenants per request.
    /// let (dispatcher, batches) = Dispatcher::<String>::builder()
    ///     .will_overflow(|open, next: &String| {
    ///         let mut tenants: Vec<&str> = open.items().iter().map(|e| &e[..1]).collect();
    ///         tenants.sort();
    ///         tenants.dedup();
    ///         tenants.len() == 3 && !tenants.contains(&&next[..1])
    ///     })
    ///     .build()?;
    /// let producer = dispatcher.producer();
    /// for event in ["a1", "b1", "c1", "a2", "d1"] {
    ///     producer.try_enqueue(event.into())?;
    /// }
    /// assert_eq!(batches.try_recv()?.items(), ["a1", "b1", "c1", "a2"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn will_overflow(
        mut self,
        hook: impl Fn(&OpenBatch<'_, T>, &T) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.hooks.will_overflow = Some(Arc::new(hook));
        self
    }

    /// Admission filter: return false to refuse the event. The producer gets
    /// it back in a `Refused` error (counted in
    /// [`Rejections::refused`](crate::Rejections::refused)), after
    /// [`on_reject`](Builder::on_reject) has seen it. Runs under the
    /// partition's lock: keep it short; a panic is caught and refuses (see
    /// [the crate docs](crate#hooks)).
    ///
    /// # Examples
    ///
    /// ```
    /// use dispatcher::{Dispatcher, TryEnqueueError};
    ///
    /// let (dispatcher, _batches) = Dispatcher::<String>::builder()
    ///     .can_add(|open, event: &String| !open.items().contains(event)) // no duplicates per batch
    ///     .build()?;
    /// let producer = dispatcher.producer();
    /// producer.try_enqueue("x".into())?;
    /// let refused = producer.try_enqueue("x".into()).unwrap_err();
    /// assert!(matches!(refused, TryEnqueueError::Refused(event) if event == "x"));
    /// assert_eq!(dispatcher.stats().rejected.refused, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn can_add(
        mut self,
        hook: impl Fn(&OpenBatch<'_, T>, &T) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.hooks.can_add = Some(Arc::new(hook));
        self
    }

    /// Sees every event the `can_add` hook refuses (for logging or a
    /// dead-letter copy), on the producer's thread, outside the lock, just
    /// before the event goes back to the producer in the error.
    pub fn on_reject(mut self, hook: impl Fn(&T) + Send + Sync + 'static) -> Self {
        self.hooks.on_reject = Some(Arc::new(hook));
        self
    }
}
