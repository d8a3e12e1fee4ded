//! The `metrics` feature: every counter and gauge of `Stats` reaches the
//! installed recorder. The recorder is process-wide, so this binary holds
//! this one test.

#![cfg(feature = "metrics")]

mod common;

use std::time::Duration;

use common::{fails_first_attempt, quick_retry};
use dispatcher::Dispatcher;

/// A metric's name, labels and value.
type Series = (
    String,
    Vec<(String, String)>,
    metrics_util::debugging::DebugValue,
);

#[test]
fn every_counter_reaches_the_metrics_recorder() {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().expect("first recorder");

    let dispatcher = Dispatcher::<String>::builder()
        .name("checkout")
        .max_batch_items(2)
        .max_buffered_bytes(8)
        .retry(quick_retry(2))
        .build_with_sink(fails_first_attempt())
        .unwrap();
    let producer = dispatcher.producer();
    for event in ["aa", "bb", "cc"] {
        producer.try_enqueue(event.into()).unwrap();
    }
    assert!(producer.try_enqueue("too large".into()).is_err());
    dispatcher.flush_and_wait(Duration::from_secs(10)).unwrap();
    dispatcher.publish_metrics();
    let stats = dispatcher.stats();

    let values: Vec<Series> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let key = key.key();
            let labels = key
                .labels()
                .map(|l| (l.key().to_string(), l.value().to_string()))
                .collect();
            (key.name().to_string(), labels, value)
        })
        .collect();
    let value = |name: &str, extra: Option<(&str, &str)>| {
        values
            .iter()
            .find(|(n, labels, _)| {
                n == name
                    && labels.contains(&("dispatcher".into(), "checkout".into()))
                    && extra.is_none_or(|(k, v)| labels.contains(&(k.into(), v.into())))
            })
            .map(|(_, _, v)| v)
            .unwrap_or_else(|| panic!("{name} {extra:?} missing from {values:?}"))
    };
    assert_eq!(
        value("dispatcher_accepted_total", None),
        &DebugValue::Counter(3)
    );
    assert_eq!(
        value("dispatcher_delivered_total", None),
        &DebugValue::Counter(3)
    );
    assert_eq!(
        value("dispatcher_retries_total", None),
        &DebugValue::Counter(stats.retries)
    );
    assert_eq!(
        value("dispatcher_rejected_total", Some(("reason", "too_large"))),
        &DebugValue::Counter(1)
    );
    assert_eq!(
        value("dispatcher_batches_total", Some(("reason", "items"))),
        &DebugValue::Counter(stats.flushes.items)
    );
    assert!(matches!(
        value("dispatcher_max_buffered_bytes", None),
        DebugValue::Gauge(max) if max.into_inner() == 8.0
    ));
    for name in dispatcher::metrics::METRIC_NAMES {
        assert!(
            values.iter().any(|(n, _, _)| n == name),
            "{name} never published"
        );
    }
    dispatcher.shutdown(Duration::from_secs(10)).unwrap();
}
