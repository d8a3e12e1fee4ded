//! Why a batch could not be written, as the error hook learns it.

use std::sync::Arc;
use std::time::Duration;

use crate::batch::Batch;

/// The error a sink returns; any error type converts into it with `?` or
/// `.into()`.
pub type SinkError = Box<dyn std::error::Error + Send + Sync>;

/// Why one attempt to write a batch failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FlushError {
    /// The sink returned an error.
    #[error("sink failed: {0}")]
    Sink(#[source] SinkError),
    /// The attempt ran past `flush_timeout` (async sinks are cancelled then;
    /// a blocking sink returned an error after its deadline).
    #[error("sink call ran past its {0:?} timeout")]
    TimedOut(Duration),
    /// The sink panicked; the panic was caught and its message kept.
    #[error("sink panicked: {0}")]
    Panicked(String),
    /// The flush worker or async driver writing the batch went away (its
    /// `SinkDriver` was dropped) after the dispatcher had shut down or
    /// stopped, so nobody was left to write or return the batch.
    #[error("the batch's writer went away after the dispatcher shut down")]
    Abandoned,
}

/// What the `on_flush_error` hook learns besides the failed events.
#[derive(Debug)]
#[non_exhaustive]
pub struct FlushFailure {
    /// The error of the last attempt.
    pub error: FlushError,
    /// How many attempts were made. Fewer than `Retry::max_attempts` when
    /// shutdown's deadline passed while retrying; 0 for
    /// [`FlushError::Abandoned`].
    pub attempts: u32,
}

/// Called with each batch the sink gave up on.
pub(crate) type ErrorHook<T> = Arc<dyn Fn(FlushFailure, Batch<T>) + Send + Sync>;

/// Hands a failed batch to the error hook, if any (otherwise drops it). A
/// panicking hook is caught: it must not leave the batch charged forever or
/// take its worker down.
pub(crate) fn hand_to_hook<T>(hook: Option<&ErrorHook<T>>, failure: FlushFailure, batch: Batch<T>) {
    let Some(hook) = hook else {
        return;
    };
    let called = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| hook(failure, batch)));
    #[cfg(feature = "tracing")]
    if let Err(panic) = &called {
        tracing::error!(panic = %panic_message(&**panic), "on_flush_error hook panicked");
    }
    drop(called);
}

/// The message of a caught panic.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}
