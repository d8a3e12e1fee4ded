//! The `tracing` feature: a sink's attempts show up as spans and its
//! retries as warnings. The subscriber is process-wide (flush workers run on
//! threads of their own), so this binary holds this one test.

#![cfg(feature = "tracing")]

mod common;

use std::time::Duration;

use common::{fails_first_attempt, quick_retry};
use dispatcher::Dispatcher;

mod spans {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU64, Ordering};

    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Level, Metadata, Subscriber};

    /// Records span names and event levels.
    #[derive(Default)]
    pub(super) struct Recorder {
        next: AtomicU64,
        pub(super) spans: Mutex<Vec<String>>,
        pub(super) events: Mutex<Vec<Level>>,
    }

    impl Subscriber for &'static Recorder {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, span: &Attributes<'_>) -> Id {
            self.spans
                .lock()
                .unwrap()
                .push(span.metadata().name().to_string());
            Id::from_u64(self.next.fetch_add(1, Ordering::SeqCst) + 1)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, event: &Event<'_>) {
            self.events.lock().unwrap().push(*event.metadata().level());
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }
}

#[test]
fn every_sink_attempt_is_a_span_and_every_retry_a_warning() {
    let recorder: &'static spans::Recorder = Box::leak(Box::default());
    tracing::subscriber::set_global_default(recorder).expect("first subscriber");
    let dispatcher = Dispatcher::<String>::builder()
        .max_batch_items(1)
        .retry(quick_retry(2))
        .build_with_sink(fails_first_attempt())
        .unwrap();
    for event in ["a", "b", "c"] {
        dispatcher.producer().try_enqueue(event.into()).unwrap();
    }
    let report = dispatcher.shutdown(Duration::from_secs(10)).unwrap();
    assert_eq!((report.delivered_total, report.stats.retries), (3, 3));
    let spans = recorder.spans.lock().unwrap();
    let flushes = spans.iter().filter(|s| *s == "dispatcher.flush").count();
    assert_eq!(flushes, 6, "one span per attempt: {spans:?}");
    let events = recorder.events.lock().unwrap();
    let warnings = events
        .iter()
        .filter(|l| **l == tracing::Level::WARN)
        .count();
    assert_eq!(warnings, 3, "one warning per retry: {events:?}");
}
