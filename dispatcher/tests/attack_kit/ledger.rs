//! The one exactly-once check of the attack tests: where every accepted
//! event ended up (delivered in some ordered stream, evicted, failed in a
//! sink, or handed back), checked for events lost, seen twice, seen but
//! never accepted, and one handle's events out of order.

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

/// The ids of per-handle lists of seqs, the handle being the list's
/// position: what each producer handle was told was accepted (or, with
/// ranges, each handle's first `n`).
pub fn per_handle<L, S>(lists: impl IntoIterator<Item = L>) -> Vec<Id>
where
    L: IntoIterator<Item = S>,
    S: TryInto<u32>,
    S::Error: std::fmt::Debug,
{
    (0u32..)
        .zip(lists)
        .flat_map(|(handle, seqs)| {
            seqs.into_iter()
                .map(move |seq| (handle, seq.try_into().expect("a test's seq fits u32")))
        })
        .collect()
}

/// [`verify`], panicking with `context` and the problems if it fails.
pub fn assert_exactly_once(context: &str, accepted: &[Id], fates: &Fates) {
    if let Err(problems) = verify(accepted, fates) {
        panic!("{context}: {problems}");
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
    // Every fate's place and its events: the streams, then the lists.
    let places: Vec<(&str, &[Id])> = fates
        .streams
        .iter()
        .map(|(name, ids)| (name.as_str(), ids.as_slice()))
        .chain([
            ("evicted", fates.evicted.as_slice()),
            ("failed", fates.failed.as_slice()),
            ("returned", fates.returned.as_slice()),
        ])
        .collect();
    // One slot per (handle, seq) up to each handle's highest seq: runs
    // hand over millions of events, and a map of them took seconds in a
    // debug build.
    let mut table = Table::default();
    let every_id = places.iter().flat_map(|(_, ids)| ids.iter());
    for &i in accepted.iter().chain(maybe).chain(every_id) {
        table.size(i);
    }
    table.lay_out();
    for &i in maybe {
        table.slot(i).expected = Expected::Maybe;
    }
    for &i in accepted {
        table.slot(i).expected = Expected::Must;
    }
    for (at, (_, ids)) in places.iter().enumerate() {
        for &i in *ids {
            let slot = table.slot(i);
            slot.fates += 1;
            match slot.fates {
                1 => slot.first = at,
                2 => slot.second = at,
                _ => {}
            }
        }
    }
    let mut lost = Vec::new();
    let mut twice = Vec::new();
    let mut phantom = Vec::new();
    for (id, slot) in table.slots() {
        match (slot.expected, slot.fates) {
            (Expected::Must, 0) => lost.push(id),
            (Expected::Not, n) if n > 0 => phantom.push(id),
            (_, n) if n > 1 => twice.push((id, n, places[slot.first].0, places[slot.second].0)),
            _ => {}
        }
    }
    let mut disorder = Vec::new();
    // Each stream keeps each handle's order, and so does what came back
    // (the last place); evicted and failed events leave in no order of theirs.
    let streams = fates.streams.len();
    let ordered = places[..streams].iter().chain(places.last());
    // The last seq seen per handle in one stream, plus one (0: none yet).
    let mut last = vec![0u64; table.handles.len()];
    for &(name, stream) in ordered {
        last.fill(0);
        for &(handle, seq) in stream {
            let before = &mut last[handle as usize];
            if *before > u64::from(seq) {
                disorder.push(format!(
                    "{name}: handle {handle} seq {seq} after {}",
                    *before - 1
                ));
            }
            *before = u64::from(seq) + 1;
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

#[derive(Clone, Copy, Default, PartialEq, Eq)]
enum Expected {
    /// Nobody accepted it: any fate is a problem.
    #[default]
    Not,
    /// Accepted: exactly one fate.
    Must,
    /// Its call panicked: one fate or none.
    Maybe,
}

#[derive(Clone, Copy, Default)]
struct Slot {
    expected: Expected,
    fates: usize,
    /// Where its first and second fates were (indices of the fate names).
    first: usize,
    second: usize,
}

/// The ledger's slots: each handle's seqs `0..=highest`, one after
/// another. Handles index a vector too: a map lookup per event took
/// seconds for the millions of events of a load run in a debug build.
#[derive(Default)]
struct Table {
    /// Per handle: its highest seq and where its slots start; `None` for a
    /// handle no id has.
    handles: Vec<Option<(u32, usize)>>,
    slots: Vec<Slot>,
}

impl Table {
    /// Slots (and handles) in all past which the ids are too sparse for a table.
    const MOST: usize = 1 << 26;

    fn size(&mut self, (handle, seq): Id) {
        let h = handle as usize;
        assert!(h < Self::MOST, "the ledger's handle {handle} is too large");
        if h >= self.handles.len() {
            self.handles.resize(h + 1, None);
        }
        let highest = &mut self.handles[h].get_or_insert((seq, 0)).0;
        *highest = (*highest).max(seq);
    }

    fn lay_out(&mut self) {
        let mut start = 0;
        for (highest, at) in self.handles.iter_mut().flatten() {
            *at = start;
            start += *highest as usize + 1;
        }
        assert!(
            start <= Self::MOST,
            "the ledger's ids are too sparse: {start} slots"
        );
        self.slots = vec![Slot::default(); start];
    }

    fn slot(&mut self, (handle, seq): Id) -> &mut Slot {
        let (_, at) = self.handles[handle as usize].expect("sized");
        &mut self.slots[at + seq as usize]
    }

    /// Every slot with its id, by handle then seq.
    fn slots(&self) -> impl Iterator<Item = (Id, &Slot)> + '_ {
        (0u32..)
            .zip(&self.handles)
            .filter_map(|(handle, sized)| sized.map(|(highest, at)| (handle, highest, at)))
            .flat_map(move |(handle, highest, at)| {
                (0..=highest).map(move |seq| ((handle, seq), &self.slots[at + seq as usize]))
            })
    }
}
