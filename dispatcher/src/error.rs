//! Per-operation errors. Every refusal hands the caller's item back.

use std::fmt;
use std::time::Duration;

/// Why [`Producer::try_enqueue`](crate::Producer::try_enqueue) (or
/// [`try_enqueue_all`](crate::Producer::try_enqueue_all)) refused an item.
#[derive(PartialEq, Eq, Clone, Copy, thiserror::Error)]
#[non_exhaustive]
pub enum TryEnqueueError<T> {
    /// No room under `max_buffered_bytes` right now.
    #[error("dispatcher is full")]
    Full(T),
    /// The item alone weighs more than `max_buffered_bytes`; it can never fit.
    #[error("item weighs more than max_buffered_bytes")]
    TooLarge(T),
    /// The dispatcher is shutting down or stopped, or every receiver is gone.
    #[error("dispatcher is closed")]
    Closed(T),
    /// The builder's `can_add` hook refused it.
    #[error("refused by the can_add hook")]
    Refused(T),
}

/// Why [`Producer::enqueue`](crate::Producer::enqueue) refused an item under
/// the dispatcher's [`Policy`](crate::Policy).
#[derive(PartialEq, Eq, Clone, Copy, thiserror::Error)]
#[non_exhaustive]
pub enum EnqueueError<T> {
    /// No room, under [`Policy::Reject`](crate::Policy::Reject).
    #[error("dispatcher is full")]
    Full(T),
    /// No room appeared within the wait, under [`Policy::Block`](crate::Policy::Block).
    #[error("timed out waiting for room")]
    Timeout(T),
    /// The item alone weighs more than `max_buffered_bytes`; it can never fit.
    #[error("item weighs more than max_buffered_bytes")]
    TooLarge(T),
    /// The dispatcher is shutting down or stopped, or every receiver is gone.
    #[error("dispatcher is closed")]
    Closed(T),
    /// The builder's `can_add` hook refused it.
    #[error("refused by the can_add hook")]
    Refused(T),
}

/// Why [`Producer::enqueue_timeout`](crate::Producer::enqueue_timeout) refused an item.
#[derive(PartialEq, Eq, Clone, Copy, thiserror::Error)]
#[non_exhaustive]
pub enum EnqueueTimeoutError<T> {
    /// No room appeared before the timeout.
    #[error("timed out waiting for room")]
    Timeout(T),
    /// The item alone weighs more than `max_buffered_bytes`; it can never fit.
    #[error("item weighs more than max_buffered_bytes")]
    TooLarge(T),
    /// The dispatcher is shutting down or stopped, or every receiver is gone.
    #[error("dispatcher is closed")]
    Closed(T),
    /// The builder's `can_add` hook refused it.
    #[error("refused by the can_add hook")]
    Refused(T),
}

macro_rules! refusal_common {
    ($name:ident { $($variant:ident),+ }) => {
        impl<T> $name<T> {
            /// Returns the refused item.
            pub fn into_inner(self) -> T {
                match self {
                    $($name::$variant(item) => item),+
                }
            }
        }

        // Debug without requiring `T: Debug`, like std's channel errors.
        impl<T> fmt::Debug for $name<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $($name::$variant(_) => f.write_str(concat!(stringify!($name), "::", stringify!($variant), "(..)"))),+
                }
            }
        }
    };
}

refusal_common!(TryEnqueueError {
    Full,
    TooLarge,
    Closed,
    Refused
});
refusal_common!(EnqueueError {
    Full,
    Timeout,
    TooLarge,
    Closed,
    Refused
});
refusal_common!(EnqueueTimeoutError {
    Timeout,
    TooLarge,
    Closed,
    Refused
});

impl<T> From<TryEnqueueError<T>> for EnqueueError<T> {
    /// The same refusal, as [`Producer::enqueue`](crate::Producer::enqueue) reports it.
    fn from(err: TryEnqueueError<T>) -> Self {
        match err {
            TryEnqueueError::Full(item) => EnqueueError::Full(item),
            TryEnqueueError::TooLarge(item) => EnqueueError::TooLarge(item),
            TryEnqueueError::Closed(item) => EnqueueError::Closed(item),
            TryEnqueueError::Refused(item) => EnqueueError::Refused(item),
        }
    }
}

/// [`Batches::recv`](crate::Batches::recv) found the dispatcher closed and
/// every accepted event already delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("dispatcher is closed and drained")]
pub struct RecvError;

/// Why [`Batches::recv_timeout`](crate::Batches::recv_timeout) returned no batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecvTimeoutError {
    /// No batch became ready in time.
    #[error("timed out waiting for a batch")]
    Timeout,
    /// The dispatcher is closed and drained.
    #[error("dispatcher is closed and drained")]
    Disconnected,
}

/// Why [`Batches::try_recv`](crate::Batches::try_recv) returned no batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TryRecvError {
    /// No batch is ready now.
    #[error("no batch is ready")]
    Empty,
    /// The dispatcher is closed and drained.
    #[error("dispatcher is closed and drained")]
    Disconnected,
}

/// [`Dispatcher::flush_and_wait`](crate::Dispatcher::flush_and_wait) ran out
/// of time before the batches settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("batches did not settle within {timeout:?}")]
pub struct FlushWaitTimeout {
    /// The time that was allowed.
    pub timeout: Duration,
}

/// [`Dispatcher::shutdown`](crate::Dispatcher::shutdown) ran out of time (or
/// every receiver was gone) before all accepted events were delivered. It
/// carries every undelivered event back, oldest first within each partition,
/// in the batch buffers that held them (see [`Undelivered`](crate::Undelivered)).
#[derive(thiserror::Error)]
#[error(
    "shutdown deadline passed with {} events undelivered and {} inside a sink call",
    .undelivered.len(),
    .report.stats.in_flight_items
)]
#[non_exhaustive]
pub struct ShutdownTimeout<T> {
    /// Events that were accepted but never handed to a receiver.
    pub undelivered: crate::Undelivered<T>,
    /// How far the drain got (boxed: it carries the final [`Stats`](crate::Stats)).
    pub report: Box<crate::ShutdownReport>,
}

impl<T> ShutdownTimeout<T> {
    /// Returns the undelivered events, oldest first within each partition.
    pub fn into_inner(self) -> crate::Undelivered<T> {
        self.undelivered
    }
}

impl<T> fmt::Debug for ShutdownTimeout<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShutdownTimeout")
            .field("undelivered", &self.undelivered.len())
            .field("report", &self.report)
            .finish()
    }
}

/// What a completed (or timed-out) shutdown achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Events handed to receivers between the start of shutdown and its end.
    pub delivered_during_drain: u64,
    /// Events handed to receivers over the dispatcher's whole life.
    pub delivered_total: u64,
    /// From the call to `shutdown` until it returned.
    pub elapsed: Duration,
    /// The final counters: a dispatcher that was shut down is gone, so this
    /// is the last word on what it accepted, delivered, evicted and returned.
    pub stats: crate::Stats,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_returns_the_item() {
        assert_eq!(TryEnqueueError::Full(1).into_inner(), 1);
        assert_eq!(TryEnqueueError::TooLarge(2).into_inner(), 2);
        assert_eq!(TryEnqueueError::Closed(3).into_inner(), 3);
        assert_eq!(EnqueueError::Full(4).into_inner(), 4);
        assert_eq!(EnqueueError::Timeout(5).into_inner(), 5);
        assert_eq!(EnqueueError::TooLarge(6).into_inner(), 6);
        assert_eq!(EnqueueError::Closed(7).into_inner(), 7);
        assert_eq!(EnqueueTimeoutError::Timeout(8).into_inner(), 8);
        assert_eq!(EnqueueTimeoutError::TooLarge(9).into_inner(), 9);
        assert_eq!(EnqueueTimeoutError::Closed(10).into_inner(), 10);
    }

    #[test]
    fn debug_does_not_need_debug_items() {
        struct Opaque;
        let err = TryEnqueueError::Full(Opaque);
        assert_eq!(format!("{err:?}"), "TryEnqueueError::Full(..)");
        assert_eq!(err.to_string(), "dispatcher is full");
    }
}
