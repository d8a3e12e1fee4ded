//! A reference model of the dispatcher contract for `properties.rs`: the
//! documented admission, eviction and batching rules, executed naively on
//! plain collections (no locks, no time); and the vocabulary the property
//! tests share (limits, how a run ends, what an admission decided).

#![allow(dead_code, missing_docs, unreachable_pub)]

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use dispatcher::{FlushReason, Limits, Policy, Stats, TryEnqueueError};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use crate::common::{Ev, LONG, charge};

/// Limits small enough for a few events to fill them; the interval never
/// cuts a batch.
pub fn limits() -> impl Strategy<Value = Limits> {
    (8usize..=120)
        .prop_flat_map(|max| {
            (
                Just(max),
                proptest::option::of(1..=max),
                proptest::option::of(1usize..=6),
            )
        })
        .prop_map(|(max, bytes, items)| Limits {
            interval: LONG, // time never cuts a batch here
            interval_jitter: Duration::ZERO,
            max_buffered_bytes: max,
            max_batch_bytes: bytes,
            max_batch_items: items,
        })
}

/// What became of every accepted event: each must end up delivered,
/// returned or evicted exactly once.
#[derive(Debug, Default)]
pub struct Fates(HashMap<(u8, u32), u32>);

impl Fates {
    /// An event was accepted: it has no fate yet.
    pub fn accepted(&mut self, e: &Ev) {
        self.0.insert((e.producer, e.seq), 0);
    }

    /// Counts one fate (delivered, returned or evicted) of an accepted event.
    pub fn settle(&mut self, e: &Ev) -> Result<(), TestCaseError> {
        match self.0.get_mut(&(e.producer, e.seq)) {
            Some(count) => *count += 1,
            None => return Err(TestCaseError::fail(format!("{e:?} was never accepted"))),
        }
        Ok(())
    }

    /// Checks every accepted event met exactly one fate.
    pub fn check_each_once(&self) -> Result<(), TestCaseError> {
        let wrong: Vec<_> = self.0.iter().filter(|(_, n)| **n != 1).collect();
        prop_assert!(
            wrong.is_empty(),
            "an accepted event was lost or duplicated: {:?}",
            wrong
        );
        Ok(())
    }
}

/// How a property-test run ends.
#[derive(Debug, Clone, Copy)]
pub enum End {
    Stop,
    Shutdown,
    DrainThenShutdown,
    DropReceiversThenShutdown,
}

pub fn end() -> impl Strategy<Value = End> {
    prop_oneof![
        Just(End::Stop),
        Just(End::Shutdown),
        Just(End::DrainThenShutdown),
        Just(End::DropReceiversThenShutdown),
    ]
}

/// A sealed batch in the model, with the limits in force when it was cut.
#[derive(Debug)]
pub struct Cut {
    pub items: Vec<Ev>,
    pub bytes: usize,
    pub reason: FlushReason,
    pub limits: Limits,
    /// Cut by `set_limits` (re-cut under the new limits).
    pub by_set_limits: bool,
}

/// The contract, executed naively.
pub struct Model {
    pub limits: Limits,
    pub policy: Policy,
    pub open: Vec<Ev>,
    pub open_bytes: usize,
    pub ready: VecDeque<Cut>,
    pub stats: Stats,
    pub evicted: Vec<Ev>,
    /// Buffered bytes may exceed the limit only after it was lowered, until
    /// deliveries bring them under it; admission refuses meanwhile.
    pub over_after_lowering: bool,
}

/// What an admission decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Accepted,
    Full,
    TooLarge,
}

impl Verdict {
    /// The verdict of one enqueue, from its refusal's `Debug` form
    /// (`…::Full(..)`); a timeout counts as `Full`.
    pub fn of_refusal(refusal: Option<String>) -> Verdict {
        match refusal.as_deref() {
            None => Verdict::Accepted,
            Some(e) if e.ends_with("::Full(..)") || e.ends_with("::Timeout(..)") => Verdict::Full,
            Some(e) if e.ends_with("::TooLarge(..)") => Verdict::TooLarge,
            Some(e) => panic!("unexpected refusal {e}"),
        }
    }

    /// The verdict of a group enqueue; a refused group must come back whole.
    pub fn of_group(
        outcome: Result<(), TryEnqueueError<Vec<Ev>>>,
        group: &[Ev],
    ) -> Result<Verdict, TestCaseError> {
        let (verdict, back) = match outcome {
            Ok(()) => return Ok(Verdict::Accepted),
            Err(TryEnqueueError::Full(back)) => (Verdict::Full, back),
            Err(TryEnqueueError::TooLarge(back)) => (Verdict::TooLarge, back),
            Err(other) => return Err(TestCaseError::fail(format!("unexpected {other:?}"))),
        };
        prop_assert_eq!(&back, group);
        Ok(verdict)
    }
}

impl Model {
    pub fn new(limits: Limits, policy: Policy) -> Self {
        Model {
            limits,
            policy,
            open: Vec::new(),
            open_bytes: 0,
            ready: VecDeque::new(),
            stats: Stats::default(),
            evicted: Vec::new(),
            over_after_lowering: false,
        }
    }

    pub fn admit(&mut self, items: Vec<Ev>) -> Verdict {
        let total: usize = items.iter().map(|e| charge(e.weight)).sum();
        let max = self.limits.max_buffered_bytes;
        if total > max {
            self.stats.rejected.too_large += items.len() as u64;
            return Verdict::TooLarge;
        }
        if self.stats.buffered_bytes + total > max {
            if self.policy != Policy::DropOldest {
                return Verdict::Full; // counted by the caller: full or timeout
            }
            // Free just enough to fit; above a lowered limit, at most the
            // group's own weight, so buffered bytes never grow.
            let excess = self.stats.buffered_bytes + total - max;
            let mut owed = excess.min(total);
            while owed > 0 && self.stats.buffered_items > 0 {
                let before = self.stats.buffered_bytes;
                self.evict_oldest();
                owed = owed.saturating_sub(before - self.stats.buffered_bytes);
            }
        }
        items.into_iter().for_each(|e| self.append(e));
        self.over_after_lowering = self.stats.buffered_bytes > max;
        Verdict::Accepted
    }

    pub fn evict_oldest(&mut self) {
        let event = match self.ready.front_mut() {
            Some(cut) => {
                let event = cut.items.remove(0);
                cut.bytes -= charge(event.weight);
                if cut.items.is_empty() {
                    self.ready.pop_front();
                }
                event
            }
            None => {
                let event = self.open.remove(0);
                self.open_bytes -= charge(event.weight);
                event
            }
        };
        self.stats.buffered_bytes -= charge(event.weight);
        self.stats.buffered_items -= 1;
        self.stats.dropped += 1;
        self.evicted.push(event);
    }

    pub fn append(&mut self, event: Ev) {
        let weight = charge(event.weight);
        let max_bytes = self.limits.max_batch_bytes;
        if max_bytes.is_some_and(|max| !self.open.is_empty() && self.open_bytes + weight > max) {
            self.seal(FlushReason::Bytes, false);
        }
        self.open.push(event);
        self.open_bytes += weight;
        let stats = &mut self.stats;
        stats.accepted += 1;
        stats.buffered_items += 1;
        stats.buffered_bytes += weight;
        stats.peak_buffered_bytes = stats.peak_buffered_bytes.max(stats.buffered_bytes);
        self.cut_if_full(false);
    }

    pub fn cut_if_full(&mut self, by_set_limits: bool) {
        if self
            .limits
            .max_batch_bytes
            .is_some_and(|max| self.open_bytes >= max)
        {
            self.seal(FlushReason::Bytes, by_set_limits);
        } else if self
            .limits
            .max_batch_items
            .is_some_and(|max| self.open.len() >= max)
        {
            self.seal(FlushReason::Items, by_set_limits);
        }
    }

    pub fn seal(&mut self, reason: FlushReason, by_set_limits: bool) {
        if !self.open.is_empty() {
            self.ready.push_back(Cut {
                items: std::mem::take(&mut self.open),
                bytes: std::mem::take(&mut self.open_bytes),
                reason,
                limits: self.limits,
                by_set_limits,
            });
        }
    }

    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
        let over = limits
            .max_batch_bytes
            .is_some_and(|max| self.open_bytes >= max)
            || limits
                .max_batch_items
                .is_some_and(|max| self.open.len() >= max);
        if over {
            // Cut the open batch again, event by event, under the new limits.
            let items = std::mem::take(&mut self.open);
            self.open_bytes = 0;
            for event in items {
                let weight = charge(event.weight);
                let would_overflow = limits
                    .max_batch_bytes
                    .is_some_and(|max| !self.open.is_empty() && self.open_bytes + weight > max);
                if would_overflow {
                    self.seal(FlushReason::Bytes, true);
                }
                self.open.push(event);
                self.open_bytes += weight;
                self.cut_if_full(true);
            }
        }
        self.over_after_lowering = self.stats.buffered_bytes > limits.max_buffered_bytes;
    }

    pub fn take(&mut self) -> Option<Cut> {
        let cut = self.ready.pop_front()?;
        let stats = &mut self.stats;
        stats.buffered_bytes -= cut.bytes;
        stats.buffered_items -= cut.items.len();
        stats.delivered += cut.items.len() as u64;
        stats.delivered_bytes += cut.bytes as u64;
        stats.batches += 1;
        match cut.reason {
            FlushReason::Bytes => stats.flushes.bytes += 1,
            FlushReason::Items => stats.flushes.items += 1,
            FlushReason::Manual => stats.flushes.manual += 1,
            FlushReason::Interval => stats.flushes.interval += 1,
            FlushReason::Drain => stats.flushes.drain += 1,
            FlushReason::Hook => stats.flushes.hook += 1,
            other => panic!("unmodelled flush reason {other}"),
        }
        Some(cut)
    }

    pub fn take_all(&mut self) -> Vec<Ev> {
        let mut all: Vec<Ev> = self.ready.drain(..).flat_map(|c| c.items).collect();
        all.append(&mut self.open);
        self.open_bytes = 0;
        self.stats.returned += all.len() as u64;
        self.stats.buffered_bytes = 0;
        self.stats.buffered_items = 0;
        all
    }
}
