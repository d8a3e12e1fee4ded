//! One batch's way through a sink: classify each attempt, decide whether to
//! retry, and settle the batch as delivered or failed. Shared by the
//! blocking flush workers and the async driver.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::batch::Batch;
use crate::config::{Builder, ConfigError};
use crate::lanes::Lanes;
use crate::receiver::Batches;
use crate::sink::{ErrorHook, FlushContext, FlushError, FlushFailure, SinkConfig};

/// Everything the flush workers of one dispatcher share.
pub(crate) struct Runner<T, M> {
    pub(crate) lanes: Arc<Lanes<T>>,
    pub(crate) config: SinkConfig,
    on_error: Option<ErrorHook<T>>,
    metadata: Arc<M>,
    pub(crate) abandon: Arc<Abandon>,
    pub(crate) seed: u64,
}

/// What both sink-mode builds start from: the partitions, which keep taken
/// batches charged until settled, the runner the workers share, and one
/// receiver to clone per worker.
pub(crate) struct SinkStart<T: crate::Weight, M> {
    pub(crate) lanes: Arc<Lanes<T>>,
    pub(crate) runner: Arc<Runner<T, M>>,
    pub(crate) batches: Batches<T>,
}

impl<T: crate::Weight + Send + 'static> Builder<T> {
    /// Validates a sink-mode configuration and sets up what its workers share.
    pub(crate) fn start_sink<M>(self, metadata: M) -> Result<SinkStart<T, M>, ConfigError> {
        self.validate()?;
        self.sink.validate()?;
        let lanes = self.lanes();
        lanes.hold_in_flight();
        let runner = Arc::new(Runner::new(
            Arc::clone(&lanes),
            self.sink,
            self.on_flush_error,
            metadata,
            self.seed,
        ));
        let batches = Batches::from_lanes(Arc::clone(&lanes));
        Ok(SinkStart {
            lanes,
            runner,
            batches,
        })
    }
}

/// What to do after a failed attempt.
pub(crate) enum Next {
    RetryAfter(Duration),
    GiveUp,
}

impl<T: crate::Weight, M> Runner<T, M> {
    pub(crate) fn new(
        lanes: Arc<Lanes<T>>,
        config: SinkConfig,
        on_error: Option<ErrorHook<T>>,
        metadata: M,
        seed: u64,
    ) -> Self {
        Runner {
            lanes,
            config,
            on_error,
            metadata: Arc::new(metadata),
            abandon: Arc::new(Abandon::default()),
            seed,
        }
    }

    /// The context of one attempt that starts now.
    pub(crate) fn context(&self, attempt: u32, worker: usize) -> FlushContext<M> {
        let deadline = crate::producer::deadline_after(self.config.timeout);
        FlushContext::new(Arc::clone(&self.metadata), attempt, deadline, worker)
    }

    /// Counts a failed attempt and says whether to try again.
    pub(crate) fn after_failure(
        &self,
        batch: &Batch<T>,
        error: &FlushError,
        attempt: u32,
        rng: &mut fastrand::Rng,
    ) -> Next {
        batch.home().count_attempt_failure(error);
        if attempt >= self.config.retry.max_attempts || self.abandon.is_set() {
            return Next::GiveUp;
        }
        let wait = self.config.retry.backoff(attempt, rng);
        #[cfg(feature = "tracing")]
        tracing::warn!(attempt, backoff = ?wait, %error, "sink write failed; retrying");
        Next::RetryAfter(wait)
    }

    /// A retry starts now (after its backoff).
    pub(crate) fn retrying(&self, batch: &Batch<T>) {
        batch.home().count_retry();
    }

    /// The batch was written: free its bytes, count it delivered.
    pub(crate) fn delivered(&self, batch: Batch<T>) {
        let (home, receipt) = (Arc::clone(batch.home()), batch.receipt());
        drop(batch);
        home.settle(receipt, true);
        self.lanes.publish_metrics_now_and_then();
    }

    /// The batch failed for good: hand it to the hook, then count it failed.
    pub(crate) fn failed(&self, batch: Batch<T>, error: FlushError, attempts: u32) {
        #[cfg(feature = "tracing")]
        tracing::error!(attempts, %error, events = batch.len(), "sink gave up on a batch");
        let (home, receipt) = (Arc::clone(batch.home()), batch.receipt());
        match &self.on_error {
            Some(hook) => {
                // A panicking hook must not leave the batch charged forever
                // or take the worker down with it.
                let failure = FlushFailure { error, attempts };
                let called = catch_unwind(AssertUnwindSafe(|| hook(failure, batch)));
                #[cfg(feature = "tracing")]
                if let Err(panic) = &called {
                    tracing::error!(panic = %crate::sink::panic_message(&**panic), "on_flush_error hook panicked");
                }
                drop(called);
            }
            None => drop(batch),
        }
        home.settle(receipt, false);
        self.lanes.publish_metrics_now_and_then();
    }
}

/// Set when shutdown's deadline has passed: workers stop retrying and hand
/// what they hold to the error hook.
#[derive(Default)]
pub(crate) struct Abandon {
    set: Mutex<bool>,
    changed: Condvar,
}

impl Abandon {
    pub(crate) fn set(&self) {
        *self.set.lock() = true;
        self.changed.notify_all();
    }

    pub(crate) fn is_set(&self) -> bool {
        *self.set.lock()
    }

    /// Sleeps `wait` unless abandoned first; returns whether abandoned.
    pub(crate) fn sleep(&self, wait: Duration) -> bool {
        let until = crate::producer::deadline_after(wait);
        let mut set = self.set.lock();
        while !*set && Instant::now() < until {
            self.changed.wait_until(&mut set, until);
        }
        *set
    }
}
