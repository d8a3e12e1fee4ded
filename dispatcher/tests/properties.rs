//! Model check: random single-threaded operation sequences against a small
//! reference model of the documented contract (admission by bytes, eviction
//! of the oldest, cuts at the batch limits, flush, live limits, stop and
//! shutdown), plus the invariants every run must keep.

#![allow(missing_docs)]

mod common;
mod model;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Ev, LONG, charge, ev};
use dispatcher::{
    Batches, Dispatcher, FlushReason, Limits, Policy, Producer, ShutdownReport, TryEnqueueError,
    TryRecvError,
};
use model::{End, Fates, Model, Verdict, end, limits};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

const PRODUCERS: u8 = 3;

#[derive(Debug, Clone)]
enum Op {
    /// `try_enqueue`, or the policy's waiting form when `waiting`.
    Enqueue {
        producer: u8,
        weight: usize,
        waiting: bool,
    },
    EnqueueAll {
        producer: u8,
        weights: Vec<usize>,
    },
    Flush,
    Recv(usize),
    SetLimits(Limits),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..PRODUCERS, 0usize..=40, any::<bool>())
            .prop_map(|(producer, weight, waiting)| Op::Enqueue { producer, weight, waiting }),
        2 => (0..PRODUCERS, vec(0usize..=20, 0..4))
            .prop_map(|(producer, weights)| Op::EnqueueAll { producer, weights }),
        1 => Just(Op::Flush),
        3 => (1usize..=3).prop_map(Op::Recv),
        1 => limits().prop_map(Op::SetLimits),
    ]
}

fn policy() -> impl Strategy<Value = Policy> {
    prop_oneof![
        Just(Policy::Reject),
        Just(Policy::Block { timeout: LONG }),
        Just(Policy::DropOldest),
    ]
}

/// The dispatcher under test beside the model, and what every event became.
struct Run {
    model: Model,
    dispatcher: Dispatcher<Ev>,
    batches: Batches<Ev>,
    producer: Producer<Ev>,
    hook: Arc<Mutex<Vec<Ev>>>,
    next_seq: [u32; PRODUCERS as usize],
    last_delivered: [Option<u32>; PRODUCERS as usize],
    /// Accepted events: how often each was delivered, returned or evicted.
    fate: Fates,
    /// Also hold batches cut by `set_limits` to the new batch limits.
    strict: bool,
}

impl Run {
    fn new(policy: Policy, limits: Limits, strict: bool) -> Self {
        let hook = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&hook);
        let (dispatcher, batches) = Dispatcher::builder()
            .limits(limits)
            .policy(policy)
            .on_evict(move |e| sink.lock().unwrap().push(e))
            .build()
            .expect("valid limits");
        let model = Model::new(limits, policy);
        let producer = dispatcher.producer();
        Run {
            model,
            dispatcher,
            batches,
            producer,
            hook,
            next_seq: [0; 3],
            last_delivered: [None; 3],
            fate: Fates::default(),
            strict,
        }
    }

    fn event(&mut self, producer: u8, weight: usize) -> Ev {
        let seq = &mut self.next_seq[producer as usize];
        *seq += 1;
        ev(producer, *seq - 1, weight)
    }

    fn apply(&mut self, op: Op) -> Result<(), TestCaseError> {
        let was_over =
            self.dispatcher.stats().buffered_bytes > self.model.limits.max_buffered_bytes;
        match op {
            Op::Enqueue {
                producer,
                weight,
                waiting,
            } => {
                let event = self.event(producer, weight);
                let expected = self.model.admit(vec![event.clone()]);
                let got = self.enqueue(event.clone(), waiting);
                prop_assert_eq!(&got, &expected, "{:?}", event);
                self.after_admission(got, vec![event], waiting, was_over)?;
            }
            Op::EnqueueAll { producer, weights } => {
                let group: Vec<Ev> = weights
                    .into_iter()
                    .map(|w| self.event(producer, w))
                    .collect();
                let expected = self.model.admit(group.clone());
                let got = Verdict::of_group(self.producer.try_enqueue_all(group.clone()), &group)?;
                prop_assert_eq!(&got, &expected, "{:?}", group);
                self.after_admission(got, group, false, was_over)?;
            }
            Op::Flush => {
                self.dispatcher.flush();
                self.model.seal(FlushReason::Manual, false);
            }
            Op::Recv(n) => (0..n).try_for_each(|_| self.recv_one())?,
            Op::SetLimits(limits) => {
                self.dispatcher.set_limits(limits).expect("valid limits");
                self.model.set_limits(limits);
            }
        }
        self.check_stats()
    }

    fn enqueue(&self, event: Ev, waiting: bool) -> Verdict {
        let refusal = match (waiting, self.model.policy) {
            (false, _) => self
                .producer
                .try_enqueue(event)
                .err()
                .map(|e| format!("{e:?}")),
            // Block with a zero wait: no receiver thread, so no waiting either.
            (true, Policy::Block { .. }) => self
                .producer
                .enqueue_timeout(event, Duration::ZERO)
                .err()
                .map(|e| format!("{e:?}")),
            (true, _) => self.producer.enqueue(event).err().map(|e| format!("{e:?}")),
        };
        Verdict::of_refusal(refusal)
    }

    fn after_admission(
        &mut self,
        got: Verdict,
        events: Vec<Ev>,
        waiting: bool,
        was_over: bool,
    ) -> Result<(), TestCaseError> {
        let stats = self.dispatcher.stats();
        match got {
            Verdict::Accepted => {
                prop_assert!(
                    !was_over || self.model.policy == Policy::DropOldest || events.is_empty(),
                    "admitted while over a lowered limit"
                );
                // DropOldest admits above a lowered limit, evicting as much as
                // it adds (the model checks the exact figures).
                prop_assert!(
                    stats.buffered_bytes <= self.model.limits.max_buffered_bytes
                        || (was_over && self.model.policy == Policy::DropOldest)
                );
                events.into_iter().for_each(|e| {
                    self.fate.accepted(&e);
                });
            }
            Verdict::Full if waiting && matches!(self.model.policy, Policy::Block { .. }) => {
                self.model.stats.rejected.timeout += events.len() as u64
            }
            Verdict::Full => self.model.stats.rejected.full += events.len() as u64,
            Verdict::TooLarge => {}
        }
        let hooked = std::mem::take(&mut *self.hook.lock().unwrap());
        let expected: Vec<Ev> = std::mem::take(&mut self.model.evicted);
        prop_assert_eq!(&hooked, &expected, "evicted events");
        hooked.iter().try_for_each(|e| self.fate.settle(e))
    }

    fn recv_one(&mut self) -> Result<(), TestCaseError> {
        let got = self.batches.try_recv();
        let Some(cut) = self.model.take() else {
            prop_assert_eq!(got.err(), Some(TryRecvError::Empty));
            // Nothing sealed: what is open is under the batch limits.
            let open = &self.model;
            prop_assert!(
                open.limits
                    .max_batch_bytes
                    .is_none_or(|m| open.open_bytes < m)
            );
            prop_assert!(
                open.limits
                    .max_batch_items
                    .is_none_or(|m| open.open.len() < m)
            );
            return Ok(());
        };
        let batch = got.map_err(|e| TestCaseError::fail(format!("expected {cut:?}, got {e:?}")))?;
        prop_assert_eq!(batch.items(), &cut.items[..]);
        prop_assert_eq!((batch.bytes(), batch.reason()), (cut.bytes, cut.reason));
        prop_assert_eq!(
            batch.bytes(),
            batch.iter().map(|e| charge(e.weight)).sum::<usize>()
        );
        if batch.len() > 1 && (self.strict || !cut.by_set_limits) {
            prop_assert!(
                cut.limits
                    .max_batch_bytes
                    .is_none_or(|m| batch.bytes() <= m),
                "{cut:?}"
            );
            prop_assert!(
                cut.limits.max_batch_items.is_none_or(|m| batch.len() <= m),
                "{cut:?}"
            );
        }
        for e in batch.iter() {
            let last = &mut self.last_delivered[e.producer as usize];
            prop_assert!(
                last.is_none_or(|l| l < e.seq),
                "producer {} out of order",
                e.producer
            );
            *last = Some(e.seq);
            self.fate.settle(e)?;
        }
        Ok(())
    }

    fn check_stats(&self) -> Result<(), TestCaseError> {
        let s = self.dispatcher.stats();
        prop_assert_eq!(s, self.model.stats);
        prop_assert_eq!(
            s.accepted,
            s.delivered + s.dropped + s.returned + s.buffered_items as u64
        );
        prop_assert!(
            s.buffered_bytes <= self.model.limits.max_buffered_bytes
                || self.model.over_after_lowering
        );
        Ok(())
    }

    fn finish(mut self, end: End) -> Result<(), TestCaseError> {
        let expected_back = match end {
            End::DrainThenShutdown => {
                self.dispatcher.flush();
                self.model.seal(FlushReason::Manual, false);
                while !self.model.ready.is_empty() {
                    self.recv_one()?;
                }
                Vec::new()
            }
            _ => self.model.take_all(),
        };
        let expected_stats = self.model.stats;
        let producer = self.producer.clone();
        let back = match end {
            End::Stop => self.dispatcher.stop().into_vec(),
            End::DropReceiversThenShutdown => {
                drop(self.batches);
                shutdown(self.dispatcher, LONG, expected_stats)?
            }
            _ => shutdown(self.dispatcher, Duration::ZERO, expected_stats)?,
        };
        prop_assert_eq!(&back, &expected_back);
        for e in &back {
            self.fate.settle(e)?;
        }
        self.fate.check_each_once()?;
        prop_assert!(matches!(
            producer.try_enqueue(ev(0, u32::MAX, 1)),
            Err(TryEnqueueError::Closed(_))
        ));
        Ok(())
    }
}

/// Shuts down; the report's final counters must be the model's.
fn shutdown(
    dispatcher: Dispatcher<Ev>,
    timeout: Duration,
    expected: dispatcher::Stats,
) -> Result<Vec<Ev>, TestCaseError> {
    let (report, back) = match dispatcher.shutdown(timeout) {
        Ok(report) => (report, Vec::new()),
        Err(timeout) => {
            let report: &ShutdownReport = &timeout.report;
            (*report, timeout.into_inner().into_vec())
        }
    };
    prop_assert_eq!(report.stats, expected);
    prop_assert_eq!(report.delivered_total, expected.delivered);
    Ok(back)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn dispatcher_matches_the_model(
        policy in policy(),
        initial in limits(),
        ops in vec(op(), 1..60),
        end in end(),
    ) {
        let mut run = Run::new(policy, initial, true);
        for op in ops {
            run.apply(op)?;
        }
        run.finish(end)?;
    }
}
