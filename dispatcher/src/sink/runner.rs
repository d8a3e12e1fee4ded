//! One batch's way through a sink: classify each attempt, decide whether to
//! retry, and settle the batch as delivered or failed. Shared by the
//! blocking flush workers and the async driver.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::batch::Batch;
use crate::clock::deadline_after;
use crate::config::{Builder, ConfigError};
use crate::core::Core;
use crate::receiver::Batches;
use crate::signal::{Check, Signal};
use crate::sink::{FlushContext, FlushError, FlushFailure, SinkConfig, hand_to_hook};
use crate::sync::{AtomicBool, Ordering::SeqCst};

/// Everything the flush workers of one dispatcher share.
pub(crate) struct Runner<T, M> {
    pub(crate) core: Arc<Core<T>>,
    pub(crate) config: SinkConfig,
    metadata: Arc<M>,
    pub(crate) abandon: Arc<Abandon>,
    pub(crate) seed: u64,
}

/// What both sink-mode builds start from: the core, which keeps taken
/// batches charged until settled, the runner the workers share, and one
/// receiver to clone per worker.
pub(crate) struct SinkStart<T: crate::Weight, M> {
    pub(crate) core: Arc<Core<T>>,
    pub(crate) runner: Arc<Runner<T, M>>,
    pub(crate) batches: Batches<T>,
}

impl<T: crate::Weight + Send + 'static> Builder<T> {
    /// Validates a sink-mode configuration and sets up what its workers share.
    pub(crate) fn start_sink<M>(mut self, metadata: M) -> Result<SinkStart<T, M>, ConfigError> {
        self.validate()?;
        self.sink.validate()?;
        let config = std::mem::take(&mut self.sink);
        let seed = self.seed;
        let core = self.core(true);
        let runner = Arc::new(Runner::new(Arc::clone(&core), config, metadata, seed));
        let batches = Batches::new(Arc::clone(&core));
        Ok(SinkStart {
            core,
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
    pub(crate) fn new(core: Arc<Core<T>>, config: SinkConfig, metadata: M, seed: u64) -> Self {
        Runner {
            core,
            config,
            metadata: Arc::new(metadata),
            abandon: Arc::new(Abandon::default()),
            seed,
        }
    }

    /// The context of one attempt that starts now.
    pub(crate) fn context(&self, attempt: u32, worker: usize) -> FlushContext<M> {
        let deadline = deadline_after(self.config.timeout);
        FlushContext::new(Arc::clone(&self.metadata), attempt, deadline, worker)
    }

    /// Counts a failed attempt and says whether to try again.
    pub(crate) fn after_failure(
        &self,
        error: &FlushError,
        attempt: u32,
        rng: &mut fastrand::Rng,
    ) -> Next {
        self.core.count_attempt_failure(error);
        if attempt >= self.config.retry.max_attempts || self.abandon.is_set() {
            return Next::GiveUp;
        }
        let wait = self.config.retry.backoff(attempt, rng);
        #[cfg(feature = "tracing")]
        tracing::warn!(attempt, backoff = ?wait, %error, "sink write failed; retrying");
        Next::RetryAfter(wait)
    }

    /// A retry starts now (after its backoff).
    pub(crate) fn retrying(&self) {
        self.core.count_retry();
    }

    /// The batch was written: free its bytes, count it delivered.
    pub(crate) fn delivered(&self, mut batch: Batch<T>) {
        let receipt = batch.take_receipt();
        let part = batch.home().1;
        drop(batch);
        self.core.settle(part, receipt, true);
        self.core.publish_metrics_now_and_then();
    }

    /// The batch failed for good: hand it to the hook, then count it failed.
    pub(crate) fn failed(&self, mut batch: Batch<T>, error: FlushError, attempts: u32) {
        #[cfg(feature = "tracing")]
        tracing::error!(attempts, %error, events = batch.len(), "sink gave up on a batch");
        let receipt = batch.take_receipt();
        let part = batch.home().1;
        let failure = FlushFailure { error, attempts };
        hand_to_hook(self.core.on_flush_error.as_ref(), failure, batch);
        self.core.settle(part, receipt, false);
        self.core.publish_metrics_now_and_then();
    }
}

/// Set when shutdown's deadline has passed: workers stop retrying and hand
/// what they hold to the error hook.
#[derive(Default)]
pub(crate) struct Abandon {
    set: AtomicBool,
    news: Signal,
}

impl Abandon {
    pub(crate) fn set(&self) {
        self.set.store(true, SeqCst);
        self.news.notify();
    }

    pub(crate) fn is_set(&self) -> bool {
        self.set.load(SeqCst)
    }

    /// One look of a backoff sleep that ends at `until`: abandoned (true),
    /// slept out (false), or sleep on.
    pub(crate) fn look(&self, until: Instant) -> Check<bool> {
        if self.is_set() {
            Check::Ready(true)
        } else if Instant::now() >= until {
            Check::Ready(false)
        } else {
            Check::Wait(Some(until))
        }
    }

    /// What a sleeping worker waits on.
    #[cfg_attr(not(feature = "async"), allow(dead_code))]
    pub(crate) fn signal(&self) -> &Signal {
        &self.news
    }

    /// Sleeps `wait` unless abandoned first; returns whether abandoned.
    pub(crate) fn sleep(&self, wait: Duration) -> bool {
        let until = deadline_after(wait);
        self.news.wait(|| self.look(until))
    }
}
