//! Shutdown must end every receiver, whatever it was waiting for.
//!
//! A sink worker that had delivered the last batch could go back to sleep
//! until an interval's end (an hour here) and never wake: its look had
//! seen a partition's open batch, emptied by DropOldest without a word to
//! receivers, and the drain's end (which empties every partition) told
//! nobody. Shutdown then joined the worker forever. It happened in about
//! 1.5% of runs of `sinks_lifecycle`'s DropOldest test (19 and 31 of 1500,
//! before and after the admission change); the scenario runs many times
//! here, under a watchdog.

#![allow(missing_docs)]

mod common;

use common::sink_kit::{enqueue_seqs, gated_sink};
use common::{Gate, PROMPTLY, WATCHDOG, builder, ev, wait_for, with_watchdog};
use dispatcher::Policy;
use dispatcher::sink;

/// Rounds of the scenario: at 1.5% a round, 300 hang at least once in 99
/// runs of 100 of the code before the fix (it did, in the one run tried).
const ROUNDS: usize = 300;

#[test]
fn shutdown_joins_its_sink_worker_after_drop_oldest_emptied_an_open_batch() {
    with_watchdog(WATCHDOG, "shutdown joins its sink worker", || {
        for round in 0..ROUNDS {
            let gate = Gate::new();
            let (written, sink) = gated_sink(&gate);
            let dispatcher = builder()
                .max_buffered_bytes(50)
                .policy(Policy::DropOldest)
                .build_with_sink(sink::from_fn(sink))
                .unwrap();
            // Three handles, three partitions: one batch in flight, one
            // open batch, and a producer with nothing of its own.
            let producer = dispatcher.producer();
            enqueue_seqs(&dispatcher, 0..3, 10);
            dispatcher.flush();
            wait_for(PROMPTLY, "batch taken", || {
                dispatcher.stats().in_flight_items == 3
            });
            enqueue_seqs(&dispatcher, 3..5, 10);
            // Evicts the open batch whole, from another partition.
            producer.try_enqueue(ev(0, 5, 20)).unwrap();
            gate.open();
            let report = dispatcher.shutdown(PROMPTLY).unwrap();
            assert_eq!(
                (report.delivered_total, report.stats.dropped),
                (4, 2),
                "round {round}"
            );
            assert_eq!(*written.lock().unwrap(), [vec![0, 1, 2], vec![5]]);
        }
    });
}
