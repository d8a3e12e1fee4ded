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

/// Nanoseconds from `epoch` to `at` (0 if `at` is earlier), at most
/// `u64::MAX - 1`: `u64::MAX` is left to callers to mean "no instant".
pub(crate) fn nanos_since(epoch: Instant, at: Instant) -> u64 {
    u64::try_from(at.saturating_duration_since(epoch).as_nanos())
        .map_or(u64::MAX - 1, |nanos| nanos.min(u64::MAX - 1))
}

/// The instant `nanos` after `epoch` (see [`nanos_since`]), or a
/// far-future one if that does not fit.
pub(crate) fn instant_at(epoch: Instant, nanos: u64) -> Instant {
    epoch
        .checked_add(Duration::from_nanos(nanos))
        .unwrap_or_else(|| far_future(epoch))
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

    #[test]
    fn nanos_since_an_epoch_round_trip() {
        let epoch = Instant::now();
        let at = epoch + Duration::from_micros(1500);
        assert_eq!(nanos_since(epoch, at), 1_500_000);
        assert_eq!(instant_at(epoch, 1_500_000), at);
        assert_eq!(nanos_since(at, epoch), 0, "earlier than the epoch");
        assert!(
            instant_at(epoch, u64::MAX - 1) > epoch + Duration::from_secs(50 * 365 * 24 * 3600)
        );
    }
}
