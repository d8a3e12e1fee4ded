//! Batch hooks together with DropOldest or Reject and live limit changes:
//! a property test that every invariant holds after every operation.

#![allow(missing_docs)]

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use common::{Ev, LONG, charge, ev, keys};
use dispatcher::{Batches, Dispatcher, Limits, Policy, TryEnqueueError};
use proptest::prelude::*;

const KEYS: u8 = 4;
const MAX_KEYS: usize = 2;
/// Events of this weight are refused by `can_add`.
const REFUSED: usize = 13;
/// An event of this weight ends its batch (`should_flush`).
const END: usize = 7;

#[derive(Debug, Clone)]
enum Op {
    Enqueue(u8, usize),
    Group(Vec<(u8, usize)>),
    Recv,
    Flush,
    SetLimits {
        max_buffered: usize,
        max_batch_bytes: Option<usize>,
        max_batch_items: Option<usize>,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..KEYS, 0usize..=20).prop_map(|(k, w)| Op::Enqueue(k, w)),
        1 => prop::collection::vec((0..KEYS, 0usize..=20), 1..4).prop_map(Op::Group),
        3 => Just(Op::Recv),
        1 => Just(Op::Flush),
        1 => (20usize..=80, prop::option::of(20usize..=40), prop::option::of(1usize..=6))
            .prop_map(|(max_buffered, max_batch_bytes, max_batch_items)| Op::SetLimits {
                max_buffered,
                max_batch_bytes: max_batch_bytes.map(|b| b.min(max_buffered)),
                max_batch_items,
            }),
    ]
}

struct Run {
    dispatcher: Dispatcher<Ev>,
    batches: Batches<Ev>,
    evicted: Arc<Mutex<Vec<Ev>>>,
    rejected: Arc<Mutex<Vec<Ev>>>,
    /// Accepted and not yet delivered, evicted or returned, by id.
    live: HashMap<u32, usize>,
    /// How often each accepted event was delivered, evicted or returned.
    fate: HashMap<u32, u32>,
    refused: Vec<Ev>,
    last_delivered: [Option<u32>; KEYS as usize],
    next_seq: u32,
    highest_limit: usize,
}

impl Run {
    fn new(policy: Policy) -> Self {
        let evicted = Arc::new(Mutex::new(Vec::new()));
        let rejected = Arc::new(Mutex::new(Vec::new()));
        let (ev_out, rej_out) = (Arc::clone(&evicted), Arc::clone(&rejected));
        let (dispatcher, batches) = Dispatcher::builder()
            .partitions(1) // the model is one sequence, whatever the handle
            .interval(LONG)
            .max_buffered_bytes(60)
            .max_batch_bytes(30)
            .policy(policy)
            .will_overflow(|open, next: &Ev| {
                let mut keys = keys(open.items());
                keys.insert(next.producer);
                keys.len() > MAX_KEYS
            })
            .should_flush(|open| open.items().last().is_some_and(|e| e.weight == END))
            .can_add(|_, e: &Ev| e.weight != REFUSED)
            .on_reject(move |e| rej_out.lock().unwrap().push(e.clone()))
            .on_evict(move |e| ev_out.lock().unwrap().push(e))
            .build()
            .unwrap();
        Run {
            dispatcher,
            batches,
            evicted,
            rejected,
            live: HashMap::new(),
            fate: HashMap::new(),
            refused: Vec::new(),
            last_delivered: [None; KEYS as usize],
            next_seq: 0,
            highest_limit: 60,
        }
    }

    fn event(&mut self, key: u8, weight: usize) -> Ev {
        self.next_seq += 1;
        ev(key, self.next_seq, weight)
    }

    fn settle(&mut self, e: &Ev) -> Result<(), TestCaseError> {
        prop_assert!(
            self.live.remove(&e.seq).is_some(),
            "{e:?} settled twice or never accepted"
        );
        *self.fate.entry(e.seq).or_default() += 1;
        Ok(())
    }

    fn apply(&mut self, op: Op) -> Result<(), TestCaseError> {
        let producer = self.dispatcher.producer();
        match op {
            Op::Enqueue(key, weight) => {
                let event = self.event(key, weight);
                match producer.try_enqueue(event.clone()) {
                    Ok(()) => {
                        prop_assert_ne!(weight, REFUSED);
                        self.live.insert(event.seq, charge(weight));
                    }
                    Err(TryEnqueueError::Refused(back)) => {
                        prop_assert_eq!(weight, REFUSED);
                        self.refused.push(back);
                    }
                    Err(TryEnqueueError::Full(_) | TryEnqueueError::TooLarge(_)) => {}
                    Err(other) => prop_assert!(false, "unexpected {other:?}"),
                }
            }
            Op::Group(spec) => {
                let group: Vec<Ev> = spec.into_iter().map(|(k, w)| self.event(k, w)).collect();
                let has_refused = group.iter().any(|e| e.weight == REFUSED);
                match producer.try_enqueue_all(group.clone()) {
                    Ok(()) => {
                        prop_assert!(!has_refused);
                        for e in &group {
                            self.live.insert(e.seq, charge(e.weight));
                        }
                    }
                    Err(TryEnqueueError::Refused(back)) => {
                        prop_assert!(has_refused);
                        prop_assert_eq!(&back, &group);
                        self.refused.extend(back);
                    }
                    Err(TryEnqueueError::Full(back) | TryEnqueueError::TooLarge(back)) => {
                        prop_assert_eq!(back, group);
                    }
                    Err(other) => prop_assert!(false, "unexpected {other:?}"),
                }
            }
            Op::Recv => {
                if let Ok(batch) = self.batches.try_recv() {
                    prop_assert!(keys(batch.items()).len() <= MAX_KEYS);
                    prop_assert_eq!(
                        batch.bytes(),
                        batch.iter().map(|e| charge(e.weight)).sum::<usize>()
                    );
                    for (i, e) in batch.iter().enumerate() {
                        if e.weight == END {
                            prop_assert_eq!(
                                i + 1,
                                batch.len(),
                                "END not last: {:?}",
                                batch.reason()
                            );
                        }
                        let last = &mut self.last_delivered[e.producer as usize];
                        prop_assert!(last.is_none_or(|l| l < e.seq));
                        *last = Some(e.seq);
                        self.settle(e)?;
                    }
                }
            }
            Op::Flush => self.dispatcher.flush(),
            Op::SetLimits {
                max_buffered,
                max_batch_bytes,
                max_batch_items,
            } => {
                let limits = Limits {
                    max_buffered_bytes: max_buffered,
                    max_batch_bytes,
                    max_batch_items,
                    ..self.dispatcher.limits()
                };
                self.dispatcher.set_limits(limits).unwrap();
                self.highest_limit = self.highest_limit.max(max_buffered);
            }
        }
        let evicted: Vec<Ev> = self.evicted.lock().unwrap().drain(..).collect();
        for e in &evicted {
            self.settle(e)?;
        }
        self.check()
    }

    fn check(&self) -> Result<(), TestCaseError> {
        let stats = self.dispatcher.stats();
        prop_assert_eq!(
            stats.accepted,
            stats.delivered
                + stats.dropped
                + stats.returned
                + stats.failed
                + stats.buffered_items as u64
        );
        prop_assert_eq!(stats.buffered_items, self.live.len());
        prop_assert_eq!(stats.buffered_bytes, self.live.values().sum::<usize>());
        prop_assert!(stats.buffered_bytes <= self.highest_limit);
        prop_assert_eq!(stats.rejected.refused, self.refused.len() as u64);
        prop_assert_eq!(&*self.rejected.lock().unwrap(), &self.refused);
        Ok(())
    }

    fn finish(self) -> Result<(), TestCaseError> {
        let Run {
            dispatcher,
            mut live,
            mut fate,
            ..
        } = self;
        let accepted = dispatcher.stats().accepted;
        for e in dispatcher.stop() {
            prop_assert!(
                live.remove(&e.seq).is_some(),
                "{:?} returned but not live",
                e
            );
            *fate.entry(e.seq).or_default() += 1;
        }
        prop_assert!(live.is_empty(), "never settled: {:?}", live);
        prop_assert_eq!(fate.len() as u64, accepted);
        prop_assert!(fate.values().all(|&n| n == 1));
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn hooks_with_drop_oldest_and_live_limits_keep_every_invariant(
        drop_oldest in any::<bool>(),
        ops in prop::collection::vec(op(), 1..80),
    ) {
        let policy = if drop_oldest { Policy::DropOldest } else { Policy::Reject };
        let mut run = Run::new(policy);
        for op in ops {
            run.apply(op)?;
        }
        run.finish()?;
    }
}
