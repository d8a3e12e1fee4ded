//! The memory verdict on real runs: a sink that keeps every batch (a real leak) fails it,
//! the same run with a sink that keeps nothing passes it, and so does the README's
//! `--consumer-delay 0s` example.

use std::sync::{Arc, Mutex};

use dispatcher::Batch;
use dispatcher::sink::{self, FlushContext};
use loadgen::Event;
use runlog::{ScenarioConfig, Status};
use soak::progress::Progress;
use soak::run::{RunOptions, run};
use soak::sink::{CustomSink, SinkSpec};

/// Runs in this process share one heap: one at a time.
static HEAP: Mutex<()> = Mutex::new(());

fn scenario() -> ScenarioConfig {
    ScenarioConfig {
        duration_s: 2.0,
        producers: 2,
        payload: "fixed:1KiB".into(),
        rate_per_sec: Some(20_000),
        max_buffered_bytes: 4 << 20,
        sample_every_ms: 200,
        ..ScenarioConfig::default()
    }
}

fn soak_into(config: &ScenarioConfig, sink: SinkSpec) -> runlog::RunResults {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = RunOptions {
        sink,
        ..RunOptions::new(dir.path())
    };
    run(config, &options, &mut Progress::new(true), None)
        .expect("the run completes")
        .results
}

fn custom(name: &str, keep: bool) -> SinkSpec {
    let kept: Mutex<Vec<Box<[u8]>>> = Mutex::new(Vec::new());
    let sink = sink::from_fn(move |batch: &Batch<Event>, _ctx: &FlushContext| {
        if keep {
            let mut kept = kept.lock().expect("not poisoned");
            kept.extend(batch.iter().map(|e| e.payload.clone()));
        }
        Ok::<(), std::io::Error>(())
    });
    SinkSpec::Custom(CustomSink {
        name: name.into(),
        sink: Arc::new(sink),
    })
}

#[test]
fn a_sink_that_keeps_every_batch_fails_the_memory_verdict() {
    let _heap = HEAP
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let config = scenario();

    let honest = soak_into(&config, custom("forgets", false));
    assert_eq!(honest.sink, "forgets");
    assert_eq!(
        honest.assessment.memory.status,
        Status::Pass,
        "{:#?}",
        honest.assessment.memory
    );
    assert!(
        honest.memory.heap_per_buffered_byte >= 1.0,
        "{:?}",
        honest.memory
    );
    assert!(honest.memory.heap_budget_bytes > 0);

    let leaky = soak_into(&config, custom("keeps everything", true));
    assert_eq!(
        leaky.assessment.memory.status,
        Status::Fail,
        "{:#?}",
        leaky.assessment.memory
    );
    assert_eq!(leaky.assessment.overall, Status::Fail);
    let note = &leaky.assessment.memory.notes.join("\n");
    assert!(note.contains("more than the buffer explains"), "{note}");
    assert!(leaky.memory.peak_heap_bytes > leaky.memory.heap_budget_bytes);
}

#[test]
fn the_readme_s_no_consumer_delay_example_passes_memory() {
    let _heap = HEAP
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let config = ScenarioConfig {
        duration_s: 2.0,
        consumer_delay_us: 0,
        sample_every_ms: 250,
        max_buffered_bytes: 8 << 20,
        ..ScenarioConfig::default()
    };
    let results = soak_into(&config, SinkSpec::InProcess);
    assert_eq!(
        results.assessment.memory.status,
        Status::Pass,
        "{:#?}",
        results.assessment.memory
    );
}

#[test]
fn raising_the_limit_mid_run_is_not_read_as_a_leak() {
    let _heap = HEAP
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    // The buffer fills to 4 MiB, then the limit goes to 16 MiB and the buffer (and heap)
    // fill again: a step, not growth, and the heap is judged against the limit in force.
    let config = ScenarioConfig {
        duration_s: 3.0,
        producers: 2,
        payload: "fixed:1KiB".into(),
        max_buffered_bytes: 4 << 20,
        consumer_delay_us: 2_000,
        sample_every_ms: 100,
        ..ScenarioConfig::default()
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let (tx, rx) = std::sync::mpsc::sync_channel(4);
    let raise = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(1500));
        let _ = tx.send(runlog::Control::SetMaxBufferedBytes { bytes: 16 << 20 });
        std::thread::sleep(std::time::Duration::from_secs(3));
    });
    let results = run(
        &config,
        &RunOptions::new(dir.path()),
        &mut Progress::new(true),
        Some(&rx),
    )
    .expect("the run completes")
    .results;
    raise.join().expect("joined");
    let memory = &results.assessment.memory;
    assert_eq!(memory.status, Status::Pass, "{memory:#?}");
    let trend = memory
        .notes
        .iter()
        .find(|n| n.contains("slope"))
        .expect("a trend note");
    assert!(trend.contains("stretches of unchanged limits"), "{trend}");
}
