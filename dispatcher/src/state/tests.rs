//! Unit tests of the state behind the lock.

use super::*;

fn state(limits: Limits) -> State<Vec<u8>> {
    limits.validate().expect("valid limits");
    State::new(limits, 1)
}

fn add(st: &mut State<Vec<u8>>, len: usize) -> bool {
    assert_eq!(st.room_for(len), Room::Fits);
    st.append(vec![len as u8; len], len)
}

fn reasons(st: &mut State<Vec<u8>>) -> Vec<(usize, FlushReason)> {
    std::iter::from_fn(|| st.take_ready())
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
fn room_reflects_limit_and_closure() {
    let mut st = state(Limits {
        max_buffered_bytes: 10,
        ..Limits::default()
    });
    add(&mut st, 7);
    assert_eq!(st.room_for(3), Room::Fits);
    assert_eq!(st.room_for(4), Room::Full);
    assert_eq!(st.room_for(11), Room::TooLarge);
    st.close();
    assert_eq!(st.room_for(1), Room::Closed);
    assert_eq!(reasons(&mut st), [(7, FlushReason::Drain)]);
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
    st.evict_for(5, |item| evicted.push(item.len()));
    assert_eq!(evicted, [4, 3]);
    assert_eq!((st.stats.dropped, st.stats.buffered_bytes), (2, 3));
    assert_eq!(st.room_for(5), Room::Fits);
}

#[test]
fn lowering_the_batch_limit_cuts_without_dropping() {
    let mut st = state(Limits::default());
    add(&mut st, 8);
    let limits = Limits {
        max_batch_bytes: Some(4),
        ..st.limits
    };
    assert!(st.set_limits(limits));
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
