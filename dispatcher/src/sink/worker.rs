//! Blocking flush workers: threads that take batches and write them to a
//! [`Sink`], and the builder methods that start them.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::batch::Batch;
use crate::clock::deadline_after;
use crate::config::{Builder, ConfigError};
use crate::core::Core;
use crate::dispatcher::Dispatcher;
use crate::receiver::Batches;
use crate::sink::runner::{Abandon, Next, Runner, SinkStart};
use crate::sink::{FlushError, Sink, SinkError, panic_message};
use crate::weight::Weight;

/// The flush workers of a sink-mode dispatcher, as its owner keeps them.
pub(crate) struct SinkWorkers {
    handles: Vec<crate::sync::thread::JoinHandle<()>>,
    abandon: Arc<Abandon>,
}

/// How long shutdown waits, after its deadline, for workers to hand what
/// they were retrying to the error hook.
const ABANDON_GRACE: Duration = Duration::from_millis(100);

impl SinkWorkers {
    pub(crate) fn new(
        handles: Vec<crate::sync::thread::JoinHandle<()>>,
        abandon: Arc<Abandon>,
    ) -> Self {
        SinkWorkers { handles, abandon }
    }

    /// After shutdown's drain (nothing is queued any more): tells workers
    /// still holding a batch — the drain's deadline passed — to stop
    /// retrying, gives them a moment to hand it to the error hook, and joins
    /// them; ones still inside a sink call are left to finish on their own.
    pub(crate) fn finish<T>(self, core: &Core<T>) {
        self.abandon.set();
        if !core.wait_in_flight(deadline_after(ABANDON_GRACE)) {
            return;
        }
        for handle in self.handles {
            let _ = handle.join();
        }
    }

    /// Stops retries at once (for `stop`).
    pub(crate) fn abandon(&self) {
        self.abandon.set();
    }
}

impl<T: Weight + Send + 'static> Builder<T> {
    /// Validates the configuration and starts a dispatcher that writes its
    /// batches to `sink` on `flush_workers` threads of its own.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] as for [`build`](Builder::build), or naming
    /// `flush_workers`, `flush_timeout` or a `retry` field.
    ///
    /// # Examples
    ///
    /// See [`crate::sink`].
    pub fn build_with_sink(self, sink: impl Sink<T>) -> Result<Dispatcher<T>, ConfigError> {
        self.build_with_sink_meta((), sink)
    }

    /// Like [`build_with_sink`](Builder::build_with_sink), handing
    /// `metadata` to every sink call through
    /// [`FlushContext::metadata`](crate::sink::FlushContext::metadata).
    ///
    /// # Errors
    ///
    /// As for [`build_with_sink`](Builder::build_with_sink).
    ///
    /// # Examples
    ///
    /// See [`FlushContext`](crate::sink::FlushContext).
    pub fn build_with_sink_meta<M: Send + Sync + 'static>(
        self,
        metadata: M,
        sink: impl Sink<T, M>,
    ) -> Result<Dispatcher<T>, ConfigError> {
        let SinkStart {
            core,
            runner,
            batches,
        } = self.start_sink(metadata)?;
        let sink = Arc::new(sink);
        let workers = runner.config.workers;
        let mut handles = Vec::with_capacity(workers);
        for worker in 0..workers {
            let (runner, sink, receiver) =
                (Arc::clone(&runner), Arc::clone(&sink), batches.clone());
            let spawned = crate::sync::thread::Builder::new()
                .name(format!("{}-flush-{worker}", core.name))
                .spawn(move || run(&runner, &*sink, &receiver, worker));
            match spawned {
                Ok(handle) => handles.push(handle),
                Err(err) => {
                    drop(batches);
                    core.stop();
                    return Err(ConfigError::new(
                        "flush_workers",
                        &workers,
                        format!("as many threads as the system can start ({err})"),
                    ));
                }
            }
        }
        drop(batches);
        let workers = SinkWorkers::new(handles, Arc::clone(&runner.abandon));
        Ok(Dispatcher::with_sink(core, workers))
    }
}

/// One flush worker: until the dispatcher is closed and drained, take a
/// batch and see it through the sink.
fn run<T: Weight, M, S: Sink<T, M> + ?Sized>(
    runner: &Runner<T, M>,
    sink: &S,
    batches: &Batches<T>,
    worker: usize,
) {
    let mut rng = fastrand::Rng::with_seed(runner.seed ^ (worker as u64).wrapping_mul(0x9e37));
    while let Ok(batch) = batches.recv() {
        deliver(runner, sink, batch, worker, &mut rng);
    }
}

fn deliver<T: Weight, M, S: Sink<T, M> + ?Sized>(
    runner: &Runner<T, M>,
    sink: &S,
    batch: Batch<T>,
    worker: usize,
    rng: &mut fastrand::Rng,
) {
    let mut attempt = 1;
    loop {
        let ctx = runner.context(attempt, worker);
        #[cfg(feature = "tracing")]
        let _span = tracing::info_span!(
            "dispatcher.flush",
            dispatcher = &*runner.core.name,
            worker,
            attempt,
            events = batch.len(),
            bytes = batch.bytes(),
            reason = batch.reason().as_str()
        )
        .entered();
        let outcome = catch_unwind(AssertUnwindSafe(|| sink.write(&batch, &ctx)));
        let error = match outcome {
            Ok(Ok(())) => return runner.delivered(batch),
            Ok(Err(err)) => classify(err, ctx.deadline(), runner.config.timeout),
            Err(panic) => FlushError::Panicked(panic_message(&*panic)),
        };
        match runner.after_failure(&error, attempt, rng) {
            Next::RetryAfter(wait) if !runner.abandon.sleep(wait) => {
                runner.retrying();
                attempt += 1;
            }
            _ => return runner.failed(batch, error, attempt),
        }
    }
}

/// An error returned after the attempt's deadline counts as a timeout.
fn classify(err: SinkError, deadline: Instant, timeout: Duration) -> FlushError {
    if Instant::now() >= deadline {
        FlushError::TimedOut(timeout)
    } else {
        FlushError::Sink(err)
    }
}
