//! The soak runner: drives the [`dispatcher`] (or a bare channel, as the
//! reference) with [`loadgen`] producers under backpressure, samples
//! throughput, memory and latency into a [`runlog`] run record, drains,
//! and assesses the run.
//!
//! The binary (`cargo soak`) parses arguments with [`cli::Cli`] and hands
//! them to [`app::main`]. A run in code:
//!
//! ```no_run
//! use soak::{progress::Progress, run::{run, RunOptions}};
//!
//! let mut config = runlog::ScenarioConfig::default();
//! config.duration_s = 5.0;
//! let options = RunOptions::new("target/soak");
//! let outcome = run(&config, &options, &mut Progress::new(true), None)?;
//! println!("{:?}", outcome.results.assessment.overall);
//! # Ok::<(), soak::run::RunError>(())
//! ```

#![forbid(unsafe_code)]

/// Heap figures come from jemalloc, so it is the allocator of everything
/// that links this crate (the binary and its tests).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

mod export;
mod output;
mod summary_md;

pub mod affinity;
pub mod app;
pub mod assess;
pub mod calibrate;
pub mod checks;
pub mod cli;
mod compose;
pub mod crash;
pub mod environment;
mod execute;
mod explain;
pub mod exporter;
pub mod harness;
pub mod hooks;
pub mod human;
pub mod live;
pub mod lock;
pub mod logging;
pub mod memory;
pub mod program;
pub mod progress;
mod record;
pub mod records;
pub mod repeat;
pub mod run;
pub mod sampler;
pub mod scenario;
pub mod signals;
pub mod sink;
pub mod spill;
pub mod style;
pub mod subject;
pub mod summary;
pub mod thresholds;
pub mod tune;
