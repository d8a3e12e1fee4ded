//! Where producers send events: the [`Target`] trait and its dispatcher
//! implementation. The reference channels are [`crate::channel`], [`crate::crossbeam`], [`crate::tokio_mpsc`].

use std::sync::Arc;

use dispatcher::{EnqueueError, Producer};

use crate::event::Event;

/// Something producers offer events to.
///
/// `offer` is called from many producer threads at once through an
/// `Arc<dyn Target>`, once per event, so implementations must not allocate
/// or take a lock beyond what the target itself needs.
///
/// # Examples
///
/// A target that accepts everything and counts it:
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use loadgen::{Event, Offer, Target};
///
/// #[derive(Default)]
/// struct Sink(AtomicU64);
///
/// impl Target for Sink {
///     fn offer(&self, _event: Event) -> Offer {
///         self.0.fetch_add(1, Ordering::Relaxed);
///         Offer::Accepted
///     }
/// }
///
/// let sink = Sink::default();
/// let event = Event::new(vec![1], 0, 0, 0);
/// assert!(matches!(sink.offer(event), Offer::Accepted));
/// assert_eq!(sink.0.load(Ordering::Relaxed), 1);
/// ```
pub trait Target: Send + Sync {
    /// Offers one event; the target either takes it or hands it back.
    fn offer(&self, event: Event) -> Offer;

    /// A target for one more producer thread, if this one hands out
    /// handles of its own (the dispatcher: each handle admits into the next
    /// partition); `None` to share this one.
    fn fork(&self) -> Option<Arc<dyn Target>> {
        None
    }
}

/// What became of an offered event.
///
/// There is no "dropped" outcome: under a drop-oldest policy the offered
/// event is accepted and older ones are evicted, which only the target can
/// see; the dispatcher counts those evictions in its own stats.
#[derive(Debug)]
#[must_use = "a refused event should be counted"]
pub enum Offer {
    /// The target took the event.
    Accepted,
    /// The target refused the event (full, wait timed out, or too large to
    /// ever fit) and handed it back.
    Refused(Event),
    /// The target is closed and will accept nothing more; the event is handed back.
    Closed(Event),
}

/// The dispatcher as a [`Target`]: offers go through
/// [`Producer::enqueue`], so they follow the dispatcher's configured
/// [`Policy`](dispatcher::Policy) (refuse, block up to a timeout, or evict
/// the oldest).
///
/// `Full`, `Timeout` and `TooLarge` become [`Offer::Refused`]; `Closed`
/// becomes [`Offer::Closed`].
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use dispatcher::{Dispatcher, Policy};
/// use loadgen::{DispatcherTarget, Event, Offer, Target};
///
/// let (dispatcher, _batches) = Dispatcher::<Event>::builder()
///     .max_buffered_bytes(8)
///     .policy(Policy::Reject)
///     .build()?;
/// let target: Arc<dyn Target> = Arc::new(DispatcherTarget::new(dispatcher.producer()));
/// let event = |len| Event::new(vec![0; len], 0, 0, 0);
/// assert!(matches!(target.offer(event(6)), Offer::Accepted));
/// assert!(matches!(target.offer(event(6)), Offer::Refused(_))); // full
/// assert!(matches!(target.offer(event(9)), Offer::Refused(_))); // too large
/// # Ok::<(), dispatcher::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct DispatcherTarget {
    producer: Producer<Event>,
}

impl DispatcherTarget {
    /// Wraps a dispatcher producer handle.
    pub fn new(producer: Producer<Event>) -> Self {
        Self { producer }
    }
}

impl std::fmt::Debug for DispatcherTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DispatcherTarget").finish_non_exhaustive()
    }
}

impl Target for DispatcherTarget {
    fn offer(&self, event: Event) -> Offer {
        match self.producer.enqueue(event) {
            Ok(()) => Offer::Accepted,
            Err(EnqueueError::Closed(event)) => Offer::Closed(event),
            Err(refused) => Offer::Refused(refused.into_inner()),
        }
    }

    /// A new producer handle: the next partition, if the dispatcher has several.
    fn fork(&self) -> Option<Arc<dyn Target>> {
        Some(Arc::new(self.clone()))
    }
}

impl<T: Target + ?Sized> Target for Arc<T> {
    fn offer(&self, event: Event) -> Offer {
        (**self).offer(event)
    }

    fn fork(&self) -> Option<Arc<dyn Target>> {
        (**self).fork()
    }
}
