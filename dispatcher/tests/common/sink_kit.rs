//! Helpers of the sink-mode tests: a recording error hook, a sink held at a
//! gate, and enqueueing by sequence number.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use dispatcher::sink::{FlushContext, FlushError, FlushFailure};
use dispatcher::{Batch, Dispatcher};

use super::{Ev, Gate, PROMPTLY, ev, seqs};

/// The error of a failed batch, simplified for comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    Sink(String),
    TimedOut(Duration),
    Panicked(String),
}

/// What the error hook received for one batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub attempts: u32,
    pub cause: Cause,
    pub events: Vec<Ev>,
}

pub type Failures = Arc<Mutex<Vec<Failure>>>;

/// An `on_flush_error` hook that records what it receives.
pub fn recording_hook() -> (
    Failures,
    impl Fn(FlushFailure, Batch<Ev>) + Send + Sync + 'static,
) {
    let failures = Failures::default();
    let out = Arc::clone(&failures);
    let hook = move |failure: FlushFailure, batch: Batch<Ev>| {
        let cause = match failure.error {
            FlushError::Sink(err) => Cause::Sink(err.to_string()),
            FlushError::TimedOut(timeout) => Cause::TimedOut(timeout),
            FlushError::Panicked(message) => Cause::Panicked(message),
            other => panic!("unexpected flush error {other:?}"),
        };
        out.lock().unwrap().push(Failure {
            attempts: failure.attempts,
            cause,
            events: batch.items().to_vec(),
        });
    };
    (failures, hook)
}

pub fn failed_seqs(failures: &Failures) -> Vec<Vec<u32>> {
    failures
        .lock()
        .unwrap()
        .iter()
        .map(|f| seqs(&f.events))
        .collect()
}

pub fn enqueue_seqs(dispatcher: &Dispatcher<Ev>, range: std::ops::Range<u32>, weight: usize) {
    let producer = dispatcher.producer();
    for seq in range {
        producer.try_enqueue(ev(0, seq, weight)).unwrap();
    }
}

/// The batches a sink wrote, as sequence numbers.
pub type Written = Arc<Mutex<Vec<Vec<u32>>>>;

/// A blocking sink closure over `Ev` batches.
pub trait SinkFn:
    Fn(&Batch<Ev>, &FlushContext) -> Result<(), String> + Send + Sync + 'static
{
}
impl<F: Fn(&Batch<Ev>, &FlushContext) -> Result<(), String> + Send + Sync + 'static> SinkFn for F {}

/// A sink that waits at `gate` and records what it wrote.
pub fn gated_sink(gate: &Arc<Gate>) -> (Written, impl SinkFn) {
    let written = Written::default();
    let (out, gate) = (Arc::clone(&written), Arc::clone(gate));
    let sink = move |batch: &Batch<Ev>, _: &FlushContext| {
        gate.wait(PROMPTLY);
        out.lock().unwrap().push(seqs(batch.items()));
        Ok(())
    };
    (written, sink)
}
