//! Shutdown that waits without blocking the caller's runtime.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use crate::sync::Mutex;

use crate::error::{ShutdownReport, ShutdownTimeout};

type Outcome<T> = Result<ShutdownReport, ShutdownTimeout<T>>;

/// The future of
/// [`Dispatcher::shutdown_async`](crate::Dispatcher::shutdown_async).
///
/// The blocking part of shutdown (waiting for receivers or flush workers to
/// drain) runs on a short-lived thread of its own, so the runtime thread
/// that awaits this future stays free to drive the tasks the drain needs:
/// awaiting it inside a current-thread runtime that also runs the
/// [`SinkDriver`](super::SinkDriver) does not deadlock.
#[must_use = "futures do nothing unless awaited"]
pub struct ShutdownFuture<T> {
    state: Arc<Mutex<Slot<T>>>,
}

struct Slot<T> {
    outcome: Option<Outcome<T>>,
    waker: Option<Waker>,
}

impl<T> fmt::Debug for ShutdownFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ShutdownFuture { .. }")
    }
}

impl<T: Send + 'static> ShutdownFuture<T> {
    /// Runs `shutdown` on a thread and completes with its outcome.
    pub(crate) fn spawn(shutdown: impl FnOnce() -> Outcome<T> + Send + 'static) -> Self {
        let state = Arc::new(Mutex::new(Slot {
            outcome: None,
            waker: None,
        }));
        let done = Arc::clone(&state);
        let finish = move || {
            let outcome = shutdown();
            let waker = {
                let mut slot = done.lock();
                slot.outcome = Some(outcome);
                slot.waker.take()
            };
            if let Some(waker) = waker {
                waker.wake();
            }
        };
        // Kept here too, so that if no thread can be started the shutdown
        // still happens, blocking this caller, rather than being lost.
        let job = Arc::new(Mutex::new(Some(finish)));
        let on_thread = Arc::clone(&job);
        let spawned = crate::sync::thread::Builder::new()
            .name("dispatcher-shutdown".into())
            .spawn(move || on_thread.lock().take().map(|finish| finish()));
        if spawned.is_err() {
            if let Some(finish) = job.lock().take() {
                finish();
            }
        }
        ShutdownFuture { state }
    }
}

impl<T> Future for ShutdownFuture<T> {
    type Output = Outcome<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome<T>> {
        let mut slot = self.state.lock();
        match slot.outcome.take() {
            Some(outcome) => Poll::Ready(outcome),
            None => {
                slot.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}
