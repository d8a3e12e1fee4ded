//! The one exactly-once check of the attack tests: where every accepted
//! event ended up (delivered in some ordered stream, evicted, or handed
//! back), checked for events lost, seen twice, seen but never accepted,
//! and one handle's events out of order.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use super::Id;

/// Where the accepted events ended up.
#[derive(Default)]
pub struct Fates {
    /// Ordered streams of delivered events: one per receiver (in the order
    /// it took them) or per sink worker.
    pub streams: Vec<(String, Vec<Id>)>,
    pub evicted: Vec<Id>,
    pub returned: Vec<Id>,
}

impl Fates {
    pub fn delivered(&self) -> usize {
        self.streams.iter().map(|(_, s)| s.len()).sum()
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
    let mut seen: HashMap<Id, Vec<&str>> = HashMap::new();
    for (name, stream) in &fates.streams {
        for &i in stream {
            seen.entry(i).or_default().push(name);
        }
    }
    for &i in &fates.evicted {
        seen.entry(i).or_default().push("evicted");
    }
    for &i in &fates.returned {
        seen.entry(i).or_default().push("returned");
    }
    let accepted_set: HashSet<Id> = accepted.iter().copied().collect();
    let mut lost = Vec::new();
    let mut twice = Vec::new();
    for &i in accepted {
        match seen.get(&i) {
            None => lost.push(i),
            Some(fates) if fates.len() > 1 => twice.push((i, fates.clone())),
            Some(_) => {}
        }
    }
    let mut phantom: Vec<Id> = seen
        .keys()
        .filter(|i| !accepted_set.contains(i))
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
            "LOST {} accepted event(s) (neither delivered, evicted nor handed back): {}; ",
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
            "{problems}(accepted {}, delivered {}, evicted {}, returned {})",
            accepted.len(),
            fates.delivered(),
            fates.evicted.len(),
            fates.returned.len()
        ))
    }
}
