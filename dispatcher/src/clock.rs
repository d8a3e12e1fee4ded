//! Instants computed from durations a user may set as large as they like
//! (`Duration::MAX` means "never"): they saturate instead of overflowing.

use std::time::{Duration, Instant};

/// About a century: far enough to mean "never", close enough to add to
/// any instant a program sees.
const NEVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// When a wait must end: an instant, or a timeout that starts when the
/// wait does (read from the clock only then: an admission that finds room
/// at once never asks the clock).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Deadline {
    At(Instant),
    In(Duration),
}

impl Deadline {
    /// The instant, fixing it now if it was a timeout.
    pub(crate) fn instant(&mut self) -> Instant {
        let at = match *self {
            Deadline::At(at) => at,
            Deadline::In(timeout) => deadline_after(timeout),
        };
        *self = Deadline::At(at);
        at
    }
}

/// `now + timeout`, or a far-future instant if that does not fit.
pub(crate) fn deadline_after(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout).unwrap_or_else(|| far_future(now))
}

/// An instant far after `from`, standing for "never".
pub(crate) fn far_future(from: Instant) -> Instant {
    from.checked_add(NEVER).unwrap_or(from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_timeouts_saturate() {
        let now = Instant::now();
        assert!(deadline_after(Duration::MAX) > now + Duration::from_secs(3600 * 24 * 365));
        assert!(deadline_after(Duration::from_millis(1)) >= now);
    }
}
