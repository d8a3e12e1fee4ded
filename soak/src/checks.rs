//! What is checked before anything is created: a run that cannot work is refused (exit 2)
//! before its directory, its `latest` link or its threads exist.

use std::path::Path;

use loadgen::PayloadSource;
use runlog::{RunDir, ScenarioConfig, TargetKind};

/// The most producer threads per core the run allows: past it a 2-core machine spends
/// its time switching between producers, the sampler is starved and a "1 s" run takes
/// minutes.
pub const MAX_PRODUCERS_PER_CORE: u32 = 128;

/// Every check, in order; the first that fails says why (naming the flag).
///
/// # Errors
///
/// A one-line message for the user.
pub fn before_run(
    config: &ScenarioConfig,
    payload: &PayloadSource,
    out: &Path,
) -> Result<(), String> {
    let cores = cores(config)?;
    producers(config, cores)?;
    payload_fits(config, payload)?;
    memory(config)?;
    RunDir::check_base(out).map_err(|e| format!("--out {}: {e}", out.display()))
}

/// The cores the run may use: `--cpus`, or every core this process may run on.
fn cores(config: &ScenarioConfig) -> Result<u32, String> {
    let available = crate::affinity::allowed_cores()
        .map_err(|e| e.to_string())?
        .len();
    let available = u32::try_from(available).unwrap_or(u32::MAX).max(1);
    match config.cpus {
        Some(cpus) if cpus > available => Err(format!(
            "--cpus {cpus} is out of range (allowed: 1..={available} on this machine)"
        )),
        Some(cpus) => Ok(cpus),
        None => Ok(available),
    }
}

fn producers(config: &ScenarioConfig, cores: u32) -> Result<(), String> {
    let most = cores.saturating_mul(MAX_PRODUCERS_PER_CORE);
    if config.producers > most {
        return Err(format!(
            "--producers {} is more than this machine can run: at most {most} ({MAX_PRODUCERS_PER_CORE} per core, {cores} cores); \
             beyond that the producers starve the sampler and the run's figures mean nothing",
            config.producers
        ));
    }
    Ok(())
}

/// Refuses a payload whose events can never be admitted: larger than the buffered limit,
/// every one of them would be refused as too large and nothing would be delivered.
fn payload_fits(config: &ScenarioConfig, payload: &PayloadSource) -> Result<(), String> {
    if config.target != TargetKind::Dispatcher {
        return Ok(());
    }
    let Some(largest) = payload.max_size() else {
        return Ok(());
    };
    let limit = config.max_buffered_bytes;
    if largest as u64 > limit {
        return Err(format!(
            "--payload {}: events of up to {largest} bytes do not fit in --max-buffered-bytes {limit}: \
             the dispatcher would refuse them as too large (raise --max-buffered-bytes or use smaller payloads)",
            config.payload
        ));
    }
    Ok(())
}

/// Refuses a buffered limit above half of the machine's memory.
fn memory(config: &ScenarioConfig) -> Result<(), String> {
    let total = crate::tune::total_memory_bytes();
    if total > 0 && config.max_buffered_bytes > total / 2 {
        return Err(format!(
            "--max-buffered-bytes {} is more than half of this machine's {} of memory",
            crate::human::bytes(config.max_buffered_bytes),
            crate::human::bytes(total)
        ));
    }
    Ok(())
}
