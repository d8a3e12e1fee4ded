//! What both hammers (`attack_hammer.rs`, `attack_async.rs`) share: unique
//! events whose weight, with chaos, drifts between calls or panics; and the
//! fate of every event as the producers, the consumers, the sink and the
//! hooks each recorded it on their own, to be checked against each other
//! and the counters.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

use dispatcher::Weight;

use super::CHAOS;
use super::ledger::Fates;

pub use super::Id;

/// A hammer event. With `chaos`, its weight drifts between calls and
/// sometimes panics (user code the dispatcher must survive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hev {
    pub handle: u32,
    pub seq: u32,
    pub weight: usize,
    pub chaos: bool,
}

/// Counts the calls of chaotic weights, which decide what each answers.
static CHAOS_TICK: AtomicUsize = AtomicUsize::new(0);

impl Weight for Hev {
    fn weight(&self) -> usize {
        if !self.chaos {
            return self.weight;
        }
        let tick = CHAOS_TICK.fetch_add(1, SeqCst);
        if tick % 61 == 0 {
            panic!("{CHAOS} weight() panics");
        }
        match tick % 3 {
            0 => self.weight,
            1 => self.weight / 2,
            _ => self.weight.saturating_mul(2),
        }
    }
}

/// The identity of a hammer event.
pub fn hid(e: &Hev) -> Id {
    (e.handle, e.seq)
}

/// What the consumers, the sink and the hooks saw, each on its own.
#[derive(Default)]
pub struct Seen {
    pub delivered: Mutex<Vec<Vec<Id>>>,
    pub evicted: Mutex<Vec<Id>>,
    pub failed: Mutex<Vec<Id>>,
    pub problems: Mutex<Vec<String>>,
}

impl Seen {
    pub fn problem(&self, what: String) {
        let mut problems = self.problems.lock().unwrap();
        if problems.len() < 20 {
            problems.push(what);
        }
    }

    /// What was seen, and what the end handed back, as the ledger's fates
    /// (see [`super::ledger`]): one stream for a single consumer, else one
    /// per batch (several consumers or sink workers make no order between
    /// batches, each batch keeps its handles' order).
    pub fn fates(&self, returned: Vec<Id>, one_consumer: bool) -> Fates {
        let batches = self.delivered.lock().unwrap().clone();
        let streams = if one_consumer {
            vec![("delivered".to_string(), batches.concat())]
        } else {
            (0..)
                .zip(batches)
                .map(|(k, batch): (usize, _)| (format!("batch {k}"), batch))
                .collect()
        };
        Fates {
            streams,
            evicted: self.evicted.lock().unwrap().clone(),
            failed: self.failed.lock().unwrap().clone(),
            returned,
        }
    }

    pub fn fated(&self) -> usize {
        self.delivered
            .lock()
            .unwrap()
            .iter()
            .map(Vec::len)
            .sum::<usize>()
            + self.evicted.lock().unwrap().len()
            + self.failed.lock().unwrap().len()
    }
}

/// What one producer handle saw.
#[derive(Default)]
pub struct Log {
    pub accepted: Vec<u32>,
    pub refused: Vec<u32>,
    /// Calls that panicked (a hook or `weight()`): admitted or not.
    pub uncertain: Vec<u32>,
}

/// A random weight for a byte limit of `max`: mostly small, sometimes
/// empty, over the limit, or near `usize::MAX`.
pub fn draw_weight(rng: &mut fastrand::Rng, max: usize) -> usize {
    match rng.u8(0..100) {
        0 => usize::MAX - rng.usize(0..3),
        1..=3 => max + 1 + rng.usize(0..=max),
        4..=8 => 0,
        _ => rng.usize(1..=(max / 4).max(1)),
    }
}
