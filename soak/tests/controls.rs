//! Live commands (what the dashboard sends) change the running dispatcher and
//! load, are refused when out of range, and are recorded in the run record.

use std::sync::mpsc::sync_channel;
use std::thread;
use std::time::Duration;

use runlog::{Control, EventKind, ScenarioConfig, Status};
use soak::progress::Progress;
use soak::run::{RunOptions, run};

#[test]
fn commands_reach_the_running_soak_and_its_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = ScenarioConfig {
        duration_s: 30.0,
        producers: 4,
        sample_every_ms: 100,
        ..ScenarioConfig::default()
    };
    let (tx, rx) = sync_channel(8);
    let sender = thread::spawn(move || {
        thread::sleep(Duration::from_millis(300));
        tx.send(Control::SetMaxBufferedBytes { bytes: 1 << 20 })
            .expect("send");
        tx.send(Control::SetMaxBatchBytes {
            bytes: Some(1 << 30),
        })
        .expect("send");
        tx.send(Control::SetRate {
            per_sec: Some(50_000),
        })
        .expect("send");
        thread::sleep(Duration::from_millis(400));
        tx.send(Control::Stop).expect("send");
    });
    let options = RunOptions::new(dir.path());
    let outcome =
        run(&config, &options, &mut Progress::new(true), Some(&rx)).expect("the run completes");
    sender.join().expect("sender");
    let r = outcome.results;

    assert!(
        r.duration_s < 10.0,
        "Stop ended the 30 s run early ({} s)",
        r.duration_s
    );
    assert_eq!(
        r.assessment.correctness.status,
        Status::Pass,
        "{:#?}",
        r.assessment
    );
    let reconfigured: Vec<(String, String, String)> = r
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Reconfigure { knob, from, to, .. } => {
                Some((knob.clone(), from.clone(), to.clone()))
            }
            _ => None,
        })
        .collect();
    assert!(
        reconfigured.contains(&(
            "max_buffered_bytes".into(),
            (64u64 << 20).to_string(),
            (1u64 << 20).to_string()
        )),
        "{reconfigured:?}"
    );
    assert!(
        reconfigured
            .iter()
            .any(|(knob, _, to)| knob == "rate_per_sec" && to == "50000"),
        "{reconfigured:?}"
    );
    let warnings = r
        .events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::Warning { .. }))
        .count();
    assert_eq!(
        warnings, 1,
        "the batch limit above the buffered limit is refused: {:?}",
        r.events
    );

    let log = runlog::read_samples(&outcome.dir.samples_path()).expect("samples");
    let last = log.samples.last().expect("samples were written");
    assert_eq!(last.limits.max_buffered_bytes, 1 << 20);
    assert_eq!(last.limits.rate_per_sec, Some(50_000));
    assert_eq!(
        log.events.len(),
        r.events.len(),
        "events are streamed as they happen"
    );
    // The record keeps the highest limit that was in force.
    assert_eq!(r.memory.max_buffered_bytes, 64 << 20);
}
