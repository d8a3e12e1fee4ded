//! Unit tests of the state behind the lock.

use super::*;
use crate::hooks::Hooks;

fn state(limits: Limits) -> State<Vec<u8>> {
    limits.validate().expect("valid limits");
    State::new(
        limits,
        Hooks::default(),
        false,
        crate::Weighing::Payload,
        1,
        None,
    )
}

/// What a pull receiver does: takes the outbox's oldest batch, without
/// this state; the state folds the take into its statistics (as a
/// snapshot or an eviction does, next time they lock it).
fn take<T>(st: &mut State<T>) -> Option<Sealed<T>> {
    let sealed = st.outbox().take(|_| ());
    st.fold_takes();
    sealed
}

/// Appends an event of `len` bytes; returns whether receivers were told.
fn add(st: &mut State<Vec<u8>>, len: usize) -> bool {
    st.take_news();
    st.append(vec![len as u8; len], len);
    st.take_news().unwrap_or_default().ready
}

fn reasons(st: &mut State<Vec<u8>>) -> Vec<(usize, FlushReason)> {
    std::iter::from_fn(|| take(st))
        .map(|s| (s.bytes, s.reason))
        .collect()
}

#[test]
fn cuts_before_an_event_that_would_overflow_the_batch() {
    let mut st = state(Limits {
        max_batch_bytes: Some(10),
        ..Limits::default()
    });
    add(&mut st, 6);
    add(&mut st, 6);
    assert_eq!(reasons(&mut st), [(6, FlushReason::Bytes)]);
    add(&mut st, 4);
    assert_eq!(reasons(&mut st), [(10, FlushReason::Bytes)]);
}

#[test]
fn an_oversized_event_travels_alone() {
    let mut st = state(Limits {
        max_batch_bytes: Some(10),
        ..Limits::default()
    });
    add(&mut st, 3);
    add(&mut st, 25);
    assert_eq!(
        reasons(&mut st),
        [(3, FlushReason::Bytes), (25, FlushReason::Bytes)]
    );
}

#[test]
fn cuts_at_the_item_limit() {
    let mut st = state(Limits {
        max_batch_items: Some(2),
        ..Limits::default()
    });
    for _ in 0..5 {
        add(&mut st, 1);
    }
    assert_eq!(
        reasons(&mut st),
        [(2, FlushReason::Items), (2, FlushReason::Items)]
    );
    assert_eq!(st.stats.buffered_items, 1);
}

#[test]
fn a_batch_taken_from_the_outbox_is_delivered_once_folded() {
    let mut st = state(Limits::default());
    add(&mut st, 7);
    add(&mut st, 2);
    st.seal(FlushReason::Manual);
    let mut leaving = 0;
    let sealed = st.outbox().take(|sealed| leaving += sealed.bytes);
    assert_eq!(sealed.map(|s| s.items.len()), Some(2));
    assert_eq!(
        leaving, 9,
        "its bytes are given back under the outbox's lock"
    );
    assert_eq!(st.outbox().since(), UNSTAMPED, "nothing waits");
    // Not folded yet: the state still counts it.
    assert_eq!(st.stats.buffered_bytes, 9);
    st.fold_takes();
    let s = &st.stats;
    assert_eq!(
        (
            s.buffered_bytes,
            s.buffered_items,
            s.delivered,
            s.delivered_bytes
        ),
        (0, 0, 2, 9)
    );
    assert_eq!((s.batches, s.flushes.manual), (1, 1));
    st.fold_takes();
    assert_eq!(st.stats.delivered, 2, "folded once");
}

#[test]
fn sealing_gives_the_lease_back_and_publishes_the_batch() {
    let mut st = state(Limits::default());
    add(&mut st, 4);
    st.credit = 100;
    st.take_news();
    assert_eq!(st.outbox().since(), UNSTAMPED);
    st.seal(FlushReason::Manual);
    let news = st.take_news().unwrap_or_default();
    assert_eq!((news.freed, news.ready, st.credit), (100, true, 0));
    assert_ne!(st.outbox().since(), UNSTAMPED, "a batch waits");
}

#[test]
fn a_sink_batch_stays_charged_until_settled_or_requeued() {
    let mut st: State<Vec<u8>> = State::new(
        Limits::default(),
        Hooks::default(),
        true,
        crate::Weighing::Payload,
        1,
        None,
    );
    st.append(vec![0; 5], 5);
    st.append(vec![0; 3], 3);
    st.seal(FlushReason::Manual);
    st.take_news();
    let sealed = st.take_ready().expect("a batch");
    assert_eq!(
        (
            st.take_news().unwrap_or_default().freed,
            st.stats.in_flight_items
        ),
        (0, 2)
    );
    st.requeue(sealed);
    assert_eq!(
        (
            st.stats.in_flight_items,
            st.take_news().unwrap_or_default().ready
        ),
        (0, true)
    );
    let sealed = st.take_ready().expect("requeued at the head");
    st.settle(Receipt::of(&sealed), true);
    assert_eq!(
        (st.take_news().unwrap_or_default().freed, st.stats.delivered),
        (8, 2)
    );
}

#[test]
fn an_interval_too_long_for_the_clock_never_ends() {
    let mut st = state(Limits {
        interval: std::time::Duration::MAX,
        interval_jitter: std::time::Duration::MAX,
        ..Limits::default()
    });
    add(&mut st, 1);
    let due = st.due().expect("a batch is open");
    st.cut_if_due(Instant::now);
    assert!(due > Instant::now() + std::time::Duration::from_secs(365 * 24 * 3600));
    assert!(!st.has_ready());
}

/// A receiver locks a partition only once its `look_at` instant has come:
/// never later than a batch is due to be cut. Sealed batches are the
/// outbox's hint.
#[test]
fn look_at_is_the_open_batchs_deadline() {
    let epoch = Instant::now();
    let interval = std::time::Duration::from_millis(5);
    let mut st = state(Limits {
        interval,
        ..Limits::default()
    });
    assert_eq!(st.look_at(epoch), UNSTAMPED, "empty: nothing to look at");
    add(&mut st, 1);
    let due = st.due().expect("a batch is open");
    let due_ns = u64::try_from((due - epoch).as_nanos()).unwrap();
    assert_eq!(st.look_at(epoch), due_ns);
    st.seal(FlushReason::Manual);
    assert_eq!(st.look_at(epoch), UNSTAMPED, "sealed: nothing to cut");
    add(&mut st, 1);
    assert!(st.look_at(epoch) >= due_ns, "a new open batch");
    st.seal(FlushReason::Manual);
    reasons(&mut st);
    assert_eq!(st.look_at(epoch), UNSTAMPED);
    // An interval too long for the clock is still an open batch, far off.
    let mut never = state(Limits {
        interval: std::time::Duration::MAX,
        ..Limits::default()
    });
    add(&mut never, 1);
    let far = never.look_at(epoch);
    assert!(far != UNSTAMPED && far > 50 * 365 * 24 * 3600 * 1_000_000_000);
}

#[test]
fn opening_a_batch_sets_a_deadline_and_asks_for_a_wakeup() {
    let mut st = state(Limits::default());
    assert_eq!(st.due(), None);
    assert!(add(&mut st, 1));
    assert!(st.due().is_some());
    assert!(!add(&mut st, 1));
    st.seal(FlushReason::Manual);
    assert_eq!(st.due(), None);
}

#[test]
fn eviction_takes_the_oldest_first_and_counts() {
    let mut st = state(Limits {
        max_buffered_bytes: 10,
        max_batch_bytes: Some(4),
        ..Limits::default()
    });
    for len in [4, 3, 3] {
        add(&mut st, len);
    }
    let mut evicted = Vec::new();
    assert_eq!(st.evictable_bytes(), 10);
    let freed = st.evict(5, &mut |item: Vec<u8>| evicted.push(item.len()));
    assert_eq!((freed, evicted), (7, vec![4, 3]));
    assert_eq!((st.stats.dropped, st.stats.buffered_bytes), (2, 3));
    assert_eq!(
        st.take_news().unwrap_or_default().freed,
        0,
        "evicted bytes pay for the new event"
    );
}

#[test]
fn lowering_the_batch_limit_cuts_without_dropping() {
    let mut st = state(Limits::default());
    add(&mut st, 8);
    let limits = Limits {
        max_batch_bytes: Some(4),
        ..st.limits
    };
    st.set_limits(limits);
    assert_eq!(reasons(&mut st), [(8, FlushReason::Bytes)]);
    assert_eq!(st.stats.delivered, 1);
}

#[test]
fn take_all_returns_everything_in_order() {
    let mut st = state(Limits {
        max_batch_items: Some(2),
        ..Limits::default()
    });
    for len in 1..=5 {
        add(&mut st, len);
    }
    let lens: Vec<usize> = st.take_all().iter().map(Vec::len).collect();
    assert_eq!(lens, [1, 2, 3, 4, 5]);
    assert_eq!((st.stats.returned, st.stats.buffered_bytes), (5, 0));
}

/// A `Weight` that answers `first`, then `again` (or panics if `None`).
struct Fickle {
    first: usize,
    again: Option<usize>,
    asked: std::cell::Cell<bool>,
}

impl Fickle {
    fn new(first: usize, again: Option<usize>) -> Self {
        Fickle {
            first,
            again,
            asked: std::cell::Cell::new(false),
        }
    }
}

impl crate::Weight for Fickle {
    fn weight(&self) -> usize {
        if !self.asked.replace(true) {
            return self.first;
        }
        self.again.expect("a Weight that panics when asked again")
    }
}

fn fickle_state(events: impl IntoIterator<Item = Fickle>) -> State<Fickle> {
    let limits = Limits {
        max_buffered_bytes: 100,
        ..Limits::default()
    };
    let mut st = State::new(
        limits,
        Hooks::default(),
        false,
        crate::Weighing::Payload,
        1,
        None,
    );
    for event in events {
        let weight = crate::weight::charge(crate::Weighing::Payload, &event);
        st.append(event, weight);
    }
    st
}

#[test]
fn eviction_stays_exact_when_weight_changes() {
    let mut st = fickle_state((0..4).map(|_| Fickle::new(10, Some(10_000))));
    assert_eq!(st.stats.buffered_bytes, 40);
    // Asked again, the first event claims 10,000 bytes: it frees at most
    // what leaves each of the other three events a byte.
    let freed = st.evict(5, &mut drop);
    assert_eq!(
        (freed, st.stats.buffered_bytes, st.stats.buffered_items),
        (37, 3, 3)
    );
    st.seal(FlushReason::Manual);
    let sealed = take(&mut st).expect("the rest");
    assert_eq!(
        (sealed.bytes, sealed.items.len(), st.stats.buffered_bytes),
        (3, 3, 0)
    );
}

#[test]
fn a_recut_stays_exact_when_weight_panics() {
    let mut st = fickle_state((0..3).map(|_| Fickle::new(10, None)));
    let limits = Limits {
        max_batch_bytes: Some(15),
        ..st.limits
    };
    st.set_limits(limits);
    assert!(
        st.take_caught().is_some(),
        "the panic is kept for the caller"
    );
    let batches: Vec<(usize, usize)> = std::iter::from_fn(|| take(&mut st))
        .map(|s| (s.items.len(), s.bytes))
        .collect();
    assert_eq!(
        batches,
        [(2, 2), (1, 28)],
        "one byte each for the panicking answers"
    );
    assert_eq!((st.stats.buffered_bytes, st.stats.delivered), (0, 3));
}

/// Seals a manual batch of `n` one-byte events; returns its buffer's
/// capacity.
fn sealed_capacity(st: &mut State<Vec<u8>>, n: usize) -> (usize, usize) {
    for _ in 0..n {
        add(st, 1);
    }
    st.seal(FlushReason::Manual);
    let sealed = take(st).expect("the batch");
    (sealed.items.len(), sealed.items.capacity())
}

#[test]
fn sealed_buffers_keep_few_slots_their_events_do_not_use() {
    let mut st = state(Limits::default());
    // The first batch sets the average: 96 events.
    assert_eq!(sealed_capacity(&mut st, 96).0, 96);
    // Sized for the average and a sixteenth: a batch of that size keeps
    // its buffer as it was.
    let (len, cap) = sealed_capacity(&mut st, 96);
    assert_eq!((len, cap), (96, 96 + 96 / 16));
    // A batch three times as long grew its buffer by doubling: it gives
    // the slots back.
    let (len, cap) = sealed_capacity(&mut st, 300);
    assert_eq!(len, 300);
    assert!(cap <= 300 + 300 / 16 + 4, "{cap} slots for 300 events");
    // A short batch in a buffer sized for long ones.
    let (len, cap) = sealed_capacity(&mut st, 10);
    assert_eq!(len, 10);
    assert!(cap <= 10 + 4, "{cap} slots for 10 events");
}
