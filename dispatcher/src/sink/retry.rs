//! Sink-mode settings: how many batches are written at once, how long a
//! call may take, how often and how patiently a failed write is tried
//! again, and where a batch goes when every attempt failed.

use std::sync::Arc;
use std::time::Duration;

use crate::batch::Batch;
use crate::config::{Builder, ConfigError};
use crate::sink::FlushFailure;

/// Bounded retries with exponential backoff and jitter.
///
/// Retry `n` (the `n+1`-th attempt) waits a random time between half and
/// all of `min(cap, base × 2^(n-1))`, so writers that failed together do not
/// retry in lock-step.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use dispatcher::sink::Retry;
///
/// // Up to 5 attempts; waits of 5-10 ms, 10-20 ms, 20-40 ms, then 25-50 ms.
/// let retry = Retry::new(5, Duration::from_millis(10), Duration::from_millis(50));
/// assert!(retry.validate().is_ok());
/// assert_eq!(Retry::new(0, retry.base, retry.cap).validate().unwrap_err().field(), "retry.max_attempts");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Retry {
    /// Attempts per batch, the first included (`1..=1000`; 1 means no retry).
    pub max_attempts: u32,
    /// Backoff before the first retry (> 0).
    pub base: Duration,
    /// The longest backoff (`>= base`).
    pub cap: Duration,
}

impl Default for Retry {
    /// 3 attempts, 50 ms base, 2 s cap.
    fn default() -> Self {
        Retry {
            max_attempts: 3,
            base: Duration::from_millis(50),
            cap: Duration::from_secs(2),
        }
    }
}

impl Retry {
    /// `max_attempts` attempts per batch (the first included), the first
    /// retry after `base`, each later one after twice as long, at most
    /// `cap`. Checked by the builder (see [`validate`](Self::validate)).
    pub const fn new(max_attempts: u32, base: Duration, cap: Duration) -> Self {
        Retry {
            max_attempts,
            base,
            cap,
        }
    }

    /// One attempt, no retry.
    pub const NEVER: Retry = Retry {
        max_attempts: 1,
        base: Duration::from_millis(1),
        cap: Duration::from_millis(1),
    };

    /// Checks every field against its allowed range.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming `retry.max_attempts`, `retry.base` or
    /// `retry.cap`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=1000).contains(&self.max_attempts) {
            return Err(ConfigError::new(
                "retry.max_attempts",
                &self.max_attempts,
                "1 ..= 1000",
            ));
        }
        if self.base.is_zero() {
            return Err(ConfigError::new("retry.base", &self.base, "> 0"));
        }
        if self.cap < self.base {
            return Err(ConfigError::new(
                "retry.cap",
                &self.cap,
                format!(">= retry.base ({:?})", self.base),
            ));
        }
        Ok(())
    }

    /// The wait before retry number `retry` (1 for the first retry).
    pub(crate) fn backoff(&self, retry: u32, rng: &mut fastrand::Rng) -> Duration {
        let doublings = retry.saturating_sub(1).min(32);
        let full = self
            .base
            .checked_mul(1u32 << doublings.min(31))
            .map_or(self.cap, |d| d.min(self.cap));
        let half = full / 2;
        let spread = (full - half).as_nanos() as u64;
        half + Duration::from_nanos(rng.u64(0..=spread))
    }
}

/// Sink-mode settings, validated together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SinkConfig {
    pub(crate) workers: usize,
    pub(crate) timeout: Duration,
    pub(crate) retry: Retry,
    /// The first sink setting the user made, and its value: `build()`
    /// refuses it rather than ignore it.
    pub(crate) set_by_user: Option<(&'static str, String)>,
}

impl Default for SinkConfig {
    fn default() -> Self {
        SinkConfig {
            workers: 1,
            timeout: Duration::from_secs(30),
            retry: Retry::default(),
            set_by_user: None,
        }
    }
}

impl SinkConfig {
    /// Remembers the first sink setting made, for `build()` to refuse.
    fn noticed(&mut self, setting: &'static str, value: &dyn std::fmt::Debug) {
        if self.set_by_user.is_none() {
            self.set_by_user = Some((setting, format!("{value:?}")));
        }
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=1024).contains(&self.workers) {
            return Err(ConfigError::new(
                "flush_workers",
                &self.workers,
                "1 ..= 1024",
            ));
        }
        if self.timeout.is_zero() {
            return Err(ConfigError::new("flush_timeout", &self.timeout, "> 0"));
        }
        self.retry.validate()
    }
}

/// Setting how sink mode writes.
impl<T: crate::Weight + Send + 'static> Builder<T> {
    /// Sink mode: how many batches are written at once (default 1,
    /// `1..=1024`). With one worker the sink sees batches in the order they
    /// were cut; with more, each batch keeps its order but batches may
    /// complete in any order.
    pub fn flush_workers(mut self, workers: usize) -> Self {
        self.sink.workers = workers;
        self.sink.noticed("flush_workers", &workers);
        self
    }

    /// Sink mode: the time one sink call may take (default 30 s). An async
    /// sink's call is cancelled when it runs out; a blocking sink is handed
    /// the deadline in its [`FlushContext`](crate::sink::FlushContext) and
    /// an error it returns after the deadline counts as a timeout.
    pub fn flush_timeout(mut self, timeout: Duration) -> Self {
        self.sink.timeout = timeout;
        self.sink.noticed("flush_timeout", &timeout);
        self
    }

    /// Sink mode: how failed writes are retried (default
    /// [`Retry::default`]).
    pub fn retry(mut self, retry: Retry) -> Self {
        self.sink.retry = retry;
        self.sink.noticed("retry", &retry);
        self
    }

    /// Sink mode: receives each batch the sink failed to write on every
    /// attempt — the exact events — with the last error, on the flush
    /// worker's thread. Route them to a dead-letter store here. Without this
    /// hook failed events are counted in [`Stats::failed`](crate::Stats::failed)
    /// and dropped.
    pub fn on_flush_error(
        mut self,
        hook: impl Fn(FlushFailure, Batch<T>) + Send + Sync + 'static,
    ) -> Self {
        self.on_flush_error = Some(Arc::new(hook));
        self.sink.noticed("on_flush_error", &"a hook");
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_jitter_and_stops_at_the_cap() {
        let retry = Retry {
            max_attempts: 10,
            base: Duration::from_millis(8),
            cap: Duration::from_millis(100),
        };
        let mut rng = fastrand::Rng::with_seed(7);
        for (n, full) in [
            (1, 8),
            (2, 16),
            (3, 32),
            (4, 64),
            (5, 100),
            (30, 100),
            (u32::MAX, 100),
        ] {
            for _ in 0..50 {
                let d = retry.backoff(n, &mut rng);
                let full = Duration::from_millis(full);
                assert!(
                    d >= full / 2 && d <= full,
                    "retry {n}: {d:?} outside {full:?}/2..={full:?}"
                );
            }
        }
    }

    #[test]
    fn bad_settings_are_named() {
        let field = |r: Retry| r.validate().unwrap_err().field();
        let ok = Retry::default();
        assert_eq!(
            field(Retry {
                max_attempts: 0,
                ..ok
            }),
            "retry.max_attempts"
        );
        assert_eq!(
            field(Retry {
                max_attempts: 1001,
                ..ok
            }),
            "retry.max_attempts"
        );
        assert_eq!(
            field(Retry {
                base: Duration::ZERO,
                ..ok
            }),
            "retry.base"
        );
        assert_eq!(
            field(Retry {
                cap: Duration::from_millis(1),
                ..ok
            }),
            "retry.cap"
        );
        assert!(Retry::NEVER.validate().is_ok());
        let cfg = |c: SinkConfig| c.validate().unwrap_err().field();
        let d = SinkConfig::default();
        assert_eq!(
            cfg(SinkConfig {
                workers: 0,
                ..d.clone()
            }),
            "flush_workers"
        );
        assert_eq!(
            cfg(SinkConfig {
                timeout: Duration::ZERO,
                ..d.clone()
            }),
            "flush_timeout"
        );
    }
}
