//! The one exactly-once check of the attack tests: where every accepted
//! event ended up (delivered in some ordered stream, evicted, failed in a
//! sink, or handed back), checked for events lost, seen twice, seen but
//! never accepted, and one handle's events out of order.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use super::Id;

/// Where the accepted events ended up.
#[derive(Default)]
pub struct Fates {
    /// Ordered streams of delivered events: one per receiver (in the order
    /// it took them), per sink worker, or per batch where several consumers
    /// make no order between batches.
    pub streams: Vec<(String, Vec<Id>)>,
    pub evicted: Vec<Id>,
    /// Given up by a sink (the error hook's).
    pub failed: Vec<Id>,
    pub returned: Vec<Id>,
}

impl Fates {
    pub fn delivered(&self) -> usize {
        self.streams.iter().map(|(_, s)| s.len()).sum()
    }

    /// Fates in all: once the check passed, the events that have one.
    pub fn fated(&self) -> usize {
        self.delivered() + self.evicted.len() + self.failed.len() + self.returned.len()
    }
}

/// Up to 8 of `items`, and how many there are in all.
pub fn sample<T: std::fmt::Debug>(items: &[T]) -> String {
    if items.len() <= 8 {
        format!("{items:?}")
    } else {
        format!("{:?} .. ({} in all)", &items[..8], items.len())
    }
}

/// Every accepted event has exactly one fate, nothing else has one, and
/// every ordered stream (and the events handed back) keeps each handle's
/// order.
pub fn verify(accepted: &[Id], fates: &Fates) -> Result<(), String> {
    verify_allowing(accepted, &[], fates)
}

/// [`verify`], where the events of `maybe` (a call that panicked, so its
/// caller cannot know whether it was admitted) may have one fate or none.
pub fn verify_allowing(accepted: &[Id], maybe: &[Id], fates: &Fates) -> Result<(), String> {
    let mut seen: HashMap<Id, Vec<&str>> = HashMap::new();
    for (name, stream) in &fates.streams {
        for &i in stream {
            seen.entry(i).or_default().push(name);
        }
    }
    for (what, ids) in [
        ("evicted", &fates.evicted),
        ("failed", &fates.failed),
        ("returned", &fates.returned),
    ] {
        for &i in ids {
            seen.entry(i).or_default().push(what);
        }
    }
    let known: HashSet<Id> = accepted.iter().chain(maybe).copied().collect();
    let mut lost = Vec::new();
    let mut twice = Vec::new();
    for &i in accepted {
        match seen.get(&i) {
            None => lost.push(i),
            Some(fates) if fates.len() > 1 => twice.push((i, fates.clone())),
            Some(_) => {}
        }
    }
    for &i in maybe {
        if let Some(fates) = seen.get(&i).filter(|fates| fates.len() > 1) {
            twice.push((i, fates.clone()));
        }
    }
    let mut phantom: Vec<Id> = seen
        .keys()
        .filter(|i| !known.contains(i))
        .copied()
        .collect();
    phantom.sort_unstable();
    let mut disorder = Vec::new();
    let returned = ("returned".to_string(), fates.returned.clone());
    for (name, stream) in fates.streams.iter().chain(std::iter::once(&returned)) {
        let mut last: HashMap<u32, u32> = HashMap::new();
        for &(handle, seq) in stream {
            if let Some(&before) = last.get(&handle) {
                if seq <= before {
                    disorder.push(format!("{name}: handle {handle} seq {seq} after {before}"));
                }
            }
            last.insert(handle, seq);
        }
    }
    let mut problems = String::new();
    if !lost.is_empty() {
        let _ = write!(
            problems,
            "LOST {} accepted event(s) (neither delivered, evicted, failed nor handed back): {}; ",
            lost.len(),
            sample(&lost)
        );
    }
    if !twice.is_empty() {
        let _ = write!(problems, "TWICE: {}; ", sample(&twice));
    }
    if !phantom.is_empty() {
        let _ = write!(problems, "never accepted yet seen: {}; ", sample(&phantom));
    }
    if !disorder.is_empty() {
        let _ = write!(problems, "OUT OF ORDER: {}; ", sample(&disorder));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{problems}(accepted {}, maybe {}, delivered {}, evicted {}, failed {}, returned {})",
            accepted.len(),
            maybe.len(),
            fates.delivered(),
            fates.evicted.len(),
            fates.failed.len(),
            fates.returned.len()
        ))
    }
}
