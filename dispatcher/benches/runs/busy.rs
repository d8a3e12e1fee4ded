//! The producer threads' time on a processor, for `peers --producer-time`.
//!
//! A run's rate says how long its events took, not who was working. With
//! one producer and a consumer faster than it, the producer works the whole
//! run, and its processor time per event (allocating and filling the
//! event, handing it over) is what sets the rate; with many producers on
//! few processors, their share of the run says how much of it they waited.
//! Each producer thread reads its own processor-time clock
//! (`CLOCK_THREAD_CPUTIME_ID`) before and after its events, and the run adds
//! up the differences. Off unless [`count`] was called: then a run costs
//! each producer thread two clock reads, outside its loop.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use nix::time::{ClockId, clock_gettime};

/// Whether producer threads read their processor time.
static COUNTING: AtomicBool = AtomicBool::new(false);
/// Their processor time since the last [`take`], in nanoseconds.
static NANOS: AtomicU64 = AtomicU64::new(0);
/// Whether a read failed since the last [`take`].
static UNREAD: AtomicBool = AtomicBool::new(false);

/// From now on, runs add up their producers' processor time.
#[allow(dead_code)] // the peers example's; the benchmarks never count
pub(crate) fn count() {
    COUNTING.store(true, Relaxed);
}

/// A producer thread's processor time so far, when counting.
pub(crate) fn thread_start() -> Option<u64> {
    COUNTING.load(Relaxed).then(read)?
}

/// Adds what the thread spent on a processor since `start`.
pub(crate) fn thread_end(start: Option<u64>) {
    if !COUNTING.load(Relaxed) {
        return;
    }
    match (start, read()) {
        (Some(before), Some(after)) => {
            NANOS.fetch_add(after.saturating_sub(before), Relaxed);
        }
        _ => UNREAD.store(true, Relaxed),
    }
}

/// The producers' processor time since the last call, and starts again
/// from zero; `None` when not counting or when a thread could not read it.
#[allow(dead_code)] // the peers example's
pub(crate) fn take() -> Option<Duration> {
    let nanos = NANOS.swap(0, Relaxed);
    let unread = UNREAD.swap(false, Relaxed);
    (COUNTING.load(Relaxed) && !unread).then(|| Duration::from_nanos(nanos))
}

/// This thread's time on a processor, in nanoseconds.
fn read() -> Option<u64> {
    let now = clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID).ok()?;
    let nanos = Duration::from(now).as_nanos();
    u64::try_from(nanos).ok()
}
