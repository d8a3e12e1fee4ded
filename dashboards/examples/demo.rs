//! Drives a simulated run interactively, so the keys can be tried without the soak:
//! `cargo run -p dashboards --example demo [-- SECONDS]`.
//!
//! A thread plays the soak: it writes made-up samples to a temporary `samples.jsonl`,
//! applies each command with `Limits::apply` and records a reconfigure or warning event,
//! just as the soak does. The numbers are invented; only their reaction to the knobs is
//! meant to look plausible.

use std::sync::mpsc::{Receiver, RecvTimeoutError, sync_channel};
use std::time::{Duration, Instant};

use runlog::{
    Control, Event, EventKind, FlushReasonCounts, LatencySummary, Limits, Sample, SamplesWriter,
    ScenarioConfig,
};

const SAMPLE_EVERY: Duration = Duration::from_millis(250);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let seconds: f64 = std::env::args().nth(1).map_or(Ok(60.0), |s| s.parse())?;
    let dir = std::env::temp_dir().join(format!("dashboards-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let config = ScenarioConfig {
        duration_s: seconds,
        ..ScenarioConfig::default()
    };
    let (tx, rx) = sync_channel(64);
    let path = dir.join("samples.jsonl");
    let mut writer = SamplesWriter::create(&path)?;
    let limits = Limits::from_config(&config);
    let soak = std::thread::spawn(move || simulate(&mut writer, limits, seconds, &rx));
    let options = dashboards::DashboardOptions::new(&path)
        .with_scenario(config)
        .with_controls(tx);
    let exit = dashboards::run(options)?;
    soak.join().map_err(|_| "simulated soak panicked")??;
    println!("dashboard: {exit:?}; run record in {}", dir.display());
    Ok(())
}

fn simulate(
    out: &mut SamplesWriter,
    mut limits: Limits,
    seconds: f64,
    rx: &Receiver<Control>,
) -> Result<(), runlog::RunlogError> {
    let start = Instant::now();
    let mut paused = false;
    out.write_event(&Event::new(0.0, EventKind::Phase { name: "run".into() }))?;
    let mut next = start + SAMPLE_EVERY;
    let mut stop = false;
    while !stop && start.elapsed().as_secs_f64() < seconds {
        match rx.recv_timeout(next.saturating_duration_since(Instant::now())) {
            Ok(Control::Stop) => stop = true,
            Ok(control) => {
                let at_s = start.elapsed().as_secs_f64();
                let kind = apply(&mut limits, &mut paused, &control);
                out.write_event(&Event::new(at_s, kind))?;
                continue;
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => stop = true,
        }
        let t_s = start.elapsed().as_secs_f64();
        out.write_sample(&made_up(t_s, &limits, paused, "run"))?;
        next += SAMPLE_EVERY;
    }
    let t_s = start.elapsed().as_secs_f64();
    out.write_event(&Event::new(
        t_s,
        EventKind::Phase {
            name: "drain".into(),
        },
    ))?;
    std::thread::sleep(Duration::from_millis(300));
    let t_s = start.elapsed().as_secs_f64();
    out.write_sample(&made_up(t_s, &limits, true, "drain"))
}

fn apply(limits: &mut Limits, paused: &mut bool, control: &Control) -> EventKind {
    let change = |from: &str, to: &str| EventKind::Reconfigure {
        knob: "producers".into(),
        from: from.into(),
        to: to.into(),
        source: "control".into(),
    };
    match (control, control.knob()) {
        (Control::Pause, _) => {
            *paused = true;
            change("running", "paused")
        }
        (Control::Resume, _) => {
            *paused = false;
            change("paused", "running")
        }
        (_, Some(knob)) => match limits.apply(control) {
            Ok(next) => {
                let (from, to) = (limits.value_text(knob), next.value_text(knob));
                *limits = next;
                EventKind::Reconfigure {
                    knob: knob.name().into(),
                    from,
                    to,
                    source: "control".into(),
                }
            }
            Err(err) => EventKind::Warning {
                message: format!("control: refused: {err}"),
            },
        },
        (_, None) => EventKind::Warning {
            message: format!("control: {control:?} changes nothing"),
        },
    }
}

/// A sample whose rates react to the limits: the consumer's delay per batch and the batch
/// size bound what can be delivered; the rate bounds what is attempted.
fn made_up(t_s: f64, limits: &Limits, paused: bool, phase: &str) -> Sample {
    let wobble = 1.0 + 0.08 * (t_s * 1.7).sin() + 0.04 * (t_s * 5.3).cos();
    let batch_bytes = limits.max_batch_bytes.unwrap_or(256 * 1024) as f64;
    let per_batch_us = limits.consumer_delay_us as f64 + 20.0 + batch_bytes / 4096.0;
    let batches_max = 1e6 / per_batch_us;
    let capacity = batches_max * batch_bytes / 250.0;
    let offered = limits.rate_per_sec.map_or(650_000.0, |r| r as f64) * wobble;
    let attempted = if paused { 0.0 } else { offered };
    let delivered = attempted.min(capacity * wobble);
    let rejected = (attempted - delivered).max(0.0);
    let fill = if capacity > 0.0 {
        (attempted / capacity).min(1.0)
    } else {
        1.0
    };
    let buffered = (limits.max_buffered_bytes as f64 * fill * 0.9 * wobble) as u64;
    let batches = (delivered * 250.0 / batch_bytes).max(1e6 / limits.interval_us as f64 * 0.2);
    let p50 = (limits.interval_us as f64 / 2.0 + per_batch_us) * wobble;
    Sample {
        t_s,
        interval_s: SAMPLE_EVERY.as_secs_f64(),
        attempted_per_sec: attempted,
        accepted_per_sec: delivered,
        rejected_per_sec: rejected,
        delivered_per_sec: delivered,
        batches_per_sec: batches,
        delivered_bytes_per_sec: delivered * 250.0,
        buffered_bytes: buffered.min(limits.max_buffered_bytes),
        peak_buffered_bytes: buffered.min(limits.max_buffered_bytes),
        heap_allocated_bytes: 20_000_000 + buffered * 2,
        heap_resident_bytes: 30_000_000 + buffered * 2,
        rss_bytes: 45_000_000 + buffered * 2,
        cpu_percent: 150.0,
        latency_us: LatencySummary {
            count: (delivered * SAMPLE_EVERY.as_secs_f64()) as u64,
            p50: p50 as u64,
            p90: (p50 * 1.8) as u64,
            p99: (p50 * 3.0) as u64,
            p999: (p50 * 4.5) as u64,
            max: (p50 * 7.0) as u64,
        },
        mean_batch_bytes: delivered * 250.0 / batches,
        flush_reasons: FlushReasonCounts {
            interval: (batches * 0.25) as u64,
            bytes: (batches * 0.75) as u64,
            drain: u64::from(phase == "drain"),
            ..FlushReasonCounts::default()
        },
        limits: limits.clone(),
        paused,
        phase: phase.into(),
        ..Sample::default()
    }
}
