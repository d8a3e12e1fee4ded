//! The attack tests' exactly-once check (`attack_kit::ledger::verify`)
//! against hand-made fates: it passes what is right and names each kind of
//! wrong, so a scenario that lost, doubled, invented or reordered an event
//! cannot pass it.

mod attack_kit;

use attack_kit::Id;
use attack_kit::ledger::{Fates, verify, verify_allowing};

/// Handle 1 accepted 0..4 and handle 2 accepted 0..2.
fn accepted() -> Vec<Id> {
    vec![(1, 0), (1, 1), (1, 2), (1, 3), (2, 0), (2, 1)]
}

/// Every accepted event once: two receivers, an eviction, one handed back.
fn right() -> Fates {
    Fates {
        streams: vec![
            ("receiver 0".into(), vec![(1, 0), (2, 0), (1, 2)]),
            ("receiver 1".into(), vec![(1, 1), (2, 1)]),
        ],
        evicted: vec![],
        failed: vec![],
        returned: vec![(1, 3)],
    }
}

fn broken(fates: &Fates) -> String {
    verify(&accepted(), fates).expect_err("the ledger must refuse these fates")
}

#[test]
fn every_event_once_in_each_handles_order_passes() {
    assert_eq!(verify(&accepted(), &right()), Ok(()));
    let mut evicted = right();
    evicted.returned.clear();
    evicted.evicted.push((1, 3));
    assert_eq!(verify(&accepted(), &evicted), Ok(()));
    let mut failed = right();
    failed.returned.clear();
    failed.failed.push((1, 3));
    assert_eq!(verify(&accepted(), &failed), Ok(()));
    assert_eq!(failed.fated(), accepted().len());
}

#[test]
fn a_lost_event_is_named() {
    let mut fates = right();
    fates.returned.clear();
    let problem = broken(&fates);
    assert!(
        problem.contains("LOST 1") && problem.contains("(1, 3)"),
        "{problem}"
    );
}

#[test]
fn an_event_seen_twice_is_named_with_both_fates() {
    let mut fates = right();
    fates.evicted.push((2, 1));
    let problem = broken(&fates);
    assert!(
        problem.contains("TWICE") && problem.contains("receiver 1") && problem.contains("evicted"),
        "{problem}"
    );
}

#[test]
fn an_event_never_accepted_is_named() {
    let mut fates = right();
    fates.streams[1].1.push((2, 7));
    fates.returned.push((9, 0)); // a handle that accepted nothing
    let problem = broken(&fates);
    assert!(
        problem.contains("never accepted yet seen: [(2, 7), (9, 0)]"),
        "{problem}"
    );
}

#[test]
fn a_handles_events_out_of_order_are_named_in_a_stream_and_in_what_came_back() {
    let mut fates = right();
    fates.streams[0].1 = vec![(1, 2), (2, 0), (1, 0)];
    let problem = broken(&fates);
    assert!(
        problem.contains("OUT OF ORDER") && problem.contains("receiver 0: handle 1 seq 0 after 2"),
        "{problem}"
    );

    let mut fates = right();
    fates.streams[0].1.retain(|&id| id != (1, 2));
    fates.returned = vec![(1, 3), (1, 2)];
    let problem = broken(&fates);
    assert!(
        problem.contains("returned: handle 1 seq 2 after 3"),
        "{problem}"
    );
}

#[test]
fn an_event_whose_call_panicked_may_have_one_fate_or_none_never_two() {
    let maybe = [(3, 0), (3, 1)];
    let mut fates = right();
    assert_eq!(verify_allowing(&accepted(), &maybe, &fates), Ok(()));
    fates.streams[1].1.push((3, 0));
    assert_eq!(verify_allowing(&accepted(), &maybe, &fates), Ok(()));
    // Without the allowance it is an event nobody accepted.
    assert!(verify(&accepted(), &fates).is_err());
    fates.failed.push((3, 0));
    let problem = verify_allowing(&accepted(), &maybe, &fates).expect_err("two fates");
    assert!(
        problem.contains("TWICE") && problem.contains("(3, 0)") && problem.contains("failed"),
        "{problem}"
    );
}
