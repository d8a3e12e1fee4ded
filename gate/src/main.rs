//! `gate`: Metronome's benchmark regression gate (run it through
//! `scripts/bench-gate.sh`).
//!
//! Wall-clock benchmarks swing 2x on a shared CI machine, so the gate
//! measures what does not: the instructions and allocations per event of a
//! few fixed single-threaded workloads on the enqueue-to-batch hot path
//! (and loadgen's telemetry generation). Instructions are counted by
//! valgrind's callgrind, allocations by a counting global allocator, both
//! only inside one function; each workload runs with N and 2N events and
//! the difference over N is the steady-state cost per event.
//!
//! ```text
//! gate [--baseline FILE] [--update] [--events N] [--jobs N] [--out-dir DIR] [--valgrind PATH]
//! gate workload NAME EVENTS      (one run, as the gate starts it under callgrind)
//! ```
//!
//! Exit status: 0 when every metric is within its threshold, 1 when any
//! regressed (or the baseline names a metric that is no longer measured),
//! 2 when the gate could not measure or read its input.

mod baseline;
mod callgrind;
mod cli;
mod measure;
mod verdict;
mod workloads;

use std::alloc::System;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};

use crate::baseline::Baseline;
use crate::callgrind::Callgrind;
use crate::cli::{Command, GateOptions};

/// Counts every allocation of the process; the workloads read it around
/// their measured region.
#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn main() -> ExitCode {
    let outcome = cli::parse(std::env::args().skip(1)).and_then(|command| match command {
        Command::Help => {
            println!("{}", cli::USAGE);
            Ok(true)
        }
        Command::Workload { workload, events } => {
            let counts = workloads::run(GLOBAL, workload, events)?;
            println!("{}", callgrind::allocations_line(counts.allocations));
            Ok(true)
        }
        Command::Gate(options) => gate(&options),
    });
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(err) => {
            eprintln!("bench-gate: error: {err:#}");
            ExitCode::from(2)
        }
    }
}

/// Measures, then compares with the baseline (or rewrites it); returns
/// whether the gate passes.
fn gate(options: &GateOptions) -> Result<bool> {
    let valgrind = match &options.valgrind {
        Some(path) => path.clone(),
        None => callgrind::find_on_path("valgrind").context(
            "valgrind is not installed (it counts the instructions): \
             `apt-get install valgrind`, or pass --valgrind PATH",
        )?,
    };
    // Read the baseline first: a bad path should fail before a minute of measuring.
    let old = if options.update && !options.baseline.exists() {
        None
    } else {
        Some(Baseline::load(&options.baseline)?)
    };
    std::fs::create_dir_all(&options.out_dir)
        .with_context(|| format!("cannot create {}", options.out_dir.display()))?;
    let callgrind = Callgrind {
        valgrind,
        exe: std::env::current_exe().context("cannot find the gate binary itself")?,
        out_dir: options.out_dir.clone(),
    };
    eprintln!(
        "bench-gate: counting {} workloads at N = {} and 2N events under callgrind ({} at a time)",
        workloads::Workload::ALL.len(),
        options.events,
        options.jobs
    );
    let started = std::time::Instant::now();
    let mut current = measure::measure(&callgrind, options.events, options.jobs)?;
    eprintln!(
        "bench-gate: measured in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    if let Some(old) = &old {
        keep_thresholds(&mut current, old);
    }
    let current_path = options.out_dir.join("current.json");
    current.save(&current_path)?;
    if options.update {
        current.save(&options.baseline)?;
        let width = current.metrics.keys().map(String::len).max().unwrap_or(0);
        for (name, metric) in &current.metrics {
            println!("{name:<width$}  {:>10.3} {}", metric.value, metric.unit);
        }
        println!(
            "bench-gate: baseline {} updated",
            options.baseline.display()
        );
        return Ok(true);
    }
    let old = old.unwrap_or_default();
    Ok(report(&old, &current, options))
}

/// A baseline's thresholds are a team's decision: an update keeps them.
fn keep_thresholds(current: &mut Baseline, old: &Baseline) {
    for (name, metric) in &mut current.metrics {
        if let Some(previous) = old.metrics.get(name) {
            metric.threshold_pct = previous.threshold_pct;
        }
    }
}

fn report(old: &Baseline, current: &Baseline, options: &GateOptions) -> bool {
    let verdicts = verdict::compare(old, current);
    let width = verdicts.iter().map(|v| v.name.len()).max().unwrap_or(0);
    for v in &verdicts {
        println!("{v:width$}");
    }
    let failed: Vec<String> = verdicts
        .iter()
        .filter(|v| v.outcome.fails())
        .map(|v| match (v.change_pct(), v.threshold_pct) {
            (Some(change), Some(t)) => format!("{} ({change:+.2}% > {t}%)", v.name),
            _ => format!("{} (not measured)", v.name),
        })
        .collect();
    if failed.is_empty() {
        println!(
            "bench-gate: PASS: {} metrics within their thresholds of {}",
            verdicts.len(),
            options.baseline.display()
        );
        true
    } else {
        println!(
            "bench-gate: FAIL: {} of {} metrics failed against {}: {}",
            failed.len(),
            verdicts.len(),
            options.baseline.display(),
            failed.join(", ")
        );
        println!(
            "bench-gate: if the change is intended, run scripts/bench-gate.sh --update and commit the baseline"
        );
        false
    }
}
