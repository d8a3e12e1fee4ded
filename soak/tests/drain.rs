//! The drain deadline holds whatever the consumer or the producers do (issue 15 item 8),
//! through the real binary.

mod common;

use std::time::{Duration, Instant};

use common::*;
use runlog::Status;

/// Far beyond duration + drain timeout + margin: a run still going then is hung.
const HUNG: Duration = Duration::from_secs(45);

fn drain_case(extra: &[&str]) -> runlog::RunResults {
    let dir = tempfile::tempdir().expect("tempdir");
    let out_dir = path(dir.path());
    let mut args = vec![
        "--duration",
        "1s",
        "--producers",
        "2",
        "--drain-timeout",
        "1s",
        "--sample-every",
        "250ms",
        "--no-tui",
        "-q",
        "--out",
        &out_dir,
    ];
    args.extend(extra);
    let out = run(&args, HUNG);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", stderr(&out));
    let dir = runlog::RunDir::resolve_latest(dir.path()).expect("latest");
    runlog::read_results(&dir.results_path()).expect("results")
}

fn assert_bounded(r: &runlog::RunResults) {
    let grace_us = soak::assess::DRAIN_GRACE_US;
    assert!(
        r.drain.drain_us <= r.config.drain_timeout_ms * 1000 + grace_us,
        "drain {} us against a {} ms deadline",
        r.drain.drain_us,
        r.config.drain_timeout_ms
    );
    let t = &r.totals;
    assert_eq!(
        t.accepted,
        t.delivered + t.dropped + r.drain.undelivered,
        "{:#?}",
        r.assessment
    );
}

#[test]
fn item08_a_stalled_consumer_does_not_outlast_the_drain_deadline() {
    let began = Instant::now();
    let r = drain_case(&["--stall-every", "500ms", "--stall-for", "1h"]);
    assert!(began.elapsed() < HUNG);
    assert_bounded(&r);
    assert!(
        r.drain.undelivered > 0,
        "what the stalled consumer never took is counted"
    );
    assert_eq!(r.assessment.drain.status, Status::Fail);
}

#[test]
fn item08_a_slow_consumer_is_woken_for_the_drain() {
    let r = drain_case(&["--consumer-delay", "30s"]);
    assert_bounded(&r);
}

#[test]
fn item08_blocked_producers_do_not_hold_the_drain() {
    let r = drain_case(&[
        "--policy",
        "block",
        "--block-timeout",
        "30s",
        "--stall-every",
        "300ms",
        "--stall-for",
        "1h",
        "--max-buffered-bytes",
        "64KiB",
    ]);
    assert_bounded(&r);
}

#[test]
fn item08_a_drain_past_its_deadline_fails() {
    // A stall that ends after the deadline: before, the drain waited it out and passed.
    let r = drain_case(&["--stall-every", "800ms", "--stall-for", "3s"]);
    assert_bounded(&r);
    assert_eq!(
        r.assessment.drain.status,
        Status::Fail,
        "{:#?}",
        r.assessment.drain
    );
}
