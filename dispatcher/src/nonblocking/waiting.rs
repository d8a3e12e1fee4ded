//! The async twin of [`Signal::wait`]: one helper that every future of this
//! module polls, so an async wait follows the same rule as a blocking one
//! (check, listen, check again, then sleep until news or the instant the
//! check asked for).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use futures_timer::Delay;

use crate::signal::{Check, Listener, Signal};

/// The listener and timer of one waiting future; empty when not waiting.
#[derive(Default)]
pub(crate) struct Waiting {
    listener: Option<Listener>,
    /// A listener that was told, kept until the check after it is done
    /// (then it passes the news on: see `Signal::wait_for`).
    told: Option<Listener>,
    /// A timer for the instant the last check asked to wait until.
    timer: Option<(Instant, Delay)>,
}

impl Waiting {
    /// Polls a wait on `signal`: ready with what `check` found, or pending
    /// with the task's waker registered for news and a timer armed for the
    /// instant `check` asked for. A `check` that asks to wait until an
    /// instant must be ready once that instant has passed.
    pub(crate) fn poll<R>(
        &mut self,
        signal: &Signal,
        cx: &mut Context<'_>,
        check: impl FnMut() -> Check<R>,
    ) -> Poll<R> {
        self.poll_for(signal, 0, cx, check)
    }

    /// [`poll`](Self::poll) for a waiter that needs `need` bytes of room.
    pub(crate) fn poll_for<R>(
        &mut self,
        signal: &Signal,
        need: usize,
        cx: &mut Context<'_>,
        mut check: impl FnMut() -> Check<R>,
    ) -> Poll<R> {
        loop {
            let until = match check() {
                Check::Ready(done) => {
                    self.stop();
                    return Poll::Ready(done);
                }
                Check::Wait(until) => until,
            };
            // Told, and the check after it is done: the news goes on.
            drop(self.told.take());
            let Some(listener) = &mut self.listener else {
                // Listen, then look again before sleeping.
                self.listener = Some(signal.listen(need));
                continue;
            };
            if listener.poll(cx).is_ready() {
                self.told = self.listener.take();
                continue;
            }
            if self.timer_fired(until, cx) {
                continue;
            }
            return Poll::Pending;
        }
    }

    /// Stops waiting: forgets the waker and the timer (news it was told
    /// goes on to others).
    pub(crate) fn stop(&mut self) {
        self.told = None;
        self.listener = None;
        self.timer = None;
    }

    /// Arms (or keeps) a timer for `until`; true once it has fired.
    fn timer_fired(&mut self, until: Option<Instant>, cx: &mut Context<'_>) -> bool {
        let Some(until) = until else {
            self.timer = None;
            return false;
        };
        if self.timer.as_ref().is_none_or(|(at, _)| *at != until) {
            let left = until.saturating_duration_since(Instant::now());
            self.timer = Some((until, Delay::new(left)));
        }
        let (_, delay) = self.timer.as_mut().expect("armed above");
        if Pin::new(delay).poll(cx).is_pending() {
            return false;
        }
        self.timer = None;
        true
    }
}
