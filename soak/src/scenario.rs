//! Resolves the scenario: defaults, then a preset or a scenario file, then
//! flags; validated once at the end.

use std::time::Duration;

use runlog::{Policy, ScenarioConfig, SpillConfig, SpillSync};

use crate::cli::{PolicyArg, Preset, ScenarioArgs, SpillSyncArg};

/// Why the scenario could not be resolved. Every message names what the user wrote: the
/// flag and its value, or the scenario file and its key.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The scenario file could not be read or parsed.
    #[error(transparent)]
    File(#[from] runlog::RunlogError),
    /// A value is out of range (the message names the flag or the file and key).
    #[error("{0}")]
    Invalid(String),
    /// The payload shape does not parse or its file cannot be loaded.
    #[error("{0}")]
    Payload(String),
    /// Flags (or keys) that would have no effect together.
    #[error("{0}")]
    Conflict(String),
}

/// The preset names a scenario file's `preset` label may hold.
pub const PRESETS: &[&str] = &["quick", "tempo", "pi4"];

/// The starting scenario of a preset.
pub fn preset(preset: Preset) -> ScenarioConfig {
    let mut config = ScenarioConfig::default();
    match preset {
        Preset::Quick => config.duration_s = 10.0,
        Preset::Tempo => config.duration_s = 300.0,
        Preset::Pi4 => {
            config.duration_s = 300.0;
            config.producers = 8;
            config.payload = "fixed:10KiB".into();
            config.max_batch_bytes = Some(256 * 1024);
            config.max_buffered_bytes = 64 * 1024 * 1024;
            config.consumer_delay_us = 200;
        }
    }
    config.preset = Some(format!("{preset:?}").to_lowercase());
    config
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Applies the flags that were given on top of `base`.
fn apply_flags(mut c: ScenarioConfig, a: &ScenarioArgs) -> ScenarioConfig {
    if let Some(d) = a.duration {
        c.duration_s = d.as_secs_f64();
    }
    if let Some(n) = a.producers {
        c.producers = n;
    }
    if let Some(p) = &a.payload {
        c.payload = p.clone();
    }
    if let Some(r) = a.rate {
        c.rate_per_sec = r.per_second();
    }
    let set_us = |field: &mut u64, d: Option<Duration>| {
        if let Some(d) = d {
            *field = micros(d);
        }
    };
    set_us(&mut c.backoff_us, a.backoff);
    set_us(&mut c.consumer_delay_us, a.consumer_delay);
    set_us(&mut c.consumer_cost_per_kib_us, a.consumer_cost_per_kib);
    set_us(&mut c.consumer_jitter_us, a.consumer_jitter);
    set_us(&mut c.interval_us, a.interval);
    set_us(&mut c.interval_jitter_us, a.interval_jitter);
    set_us(&mut c.block_timeout_us, a.block_timeout);
    if let Some(d) = a.stall_every {
        c.consumer_stall_every_ms = Some(millis(d));
    }
    if let Some(d) = a.stall_for {
        c.consumer_stall_for_ms = millis(d);
    }
    if let Some(b) = a.max_batch_bytes {
        c.max_batch_bytes = b.0;
    }
    if let Some(n) = a.max_batch_items {
        c.max_batch_items = n.0;
    }
    if let Some(b) = a.max_buffered_bytes {
        c.max_buffered_bytes = b;
    }
    if let Some(n) = a.partitions {
        c.partitions = n;
    }
    if let Some(p) = a.policy {
        c.policy = match p {
            PolicyArg::Reject => Policy::Reject,
            PolicyArg::Block => Policy::Block,
            PolicyArg::DropOldest => Policy::DropOldest,
        };
    }
    if let Some(w) = a.weigh {
        c.weighing = w.into();
    }
    if let Some(s) = a.producer_scheduling {
        c.producer_scheduling = s.into();
    }
    if let Some(d) = a.sample_every {
        c.sample_every_ms = millis(d);
    }
    if let Some(s) = a.seed {
        c.seed = s;
    }
    if let Some(t) = a.target {
        c.target = t.into();
    }
    if let Some(d) = a.drain_timeout {
        c.drain_timeout_ms = millis(d);
    }
    if let Some(n) = a.cpus {
        c.cpus = Some(n);
    }
    if a.no_latency {
        c.record_latency = false;
    }
    c.thresholds.merge(a.thresholds.iter().cloned());
    apply_spill_flags(&mut c, a);
    c
}

/// `--spill-dir` gives the scenario a disk tier (or moves the file's); the other disk tier
/// flags change the tier there is.
fn apply_spill_flags(c: &mut ScenarioConfig, a: &ScenarioArgs) {
    if let Some(dir) = &a.spill_dir {
        c.spill.get_or_insert_with(SpillConfig::default).dir = dir.clone();
    }
    let Some(spill) = c.spill.as_mut() else {
        return;
    };
    if let Some(bytes) = a.max_spill_bytes {
        spill.max_disk_bytes = bytes;
    }
    match a.spill_sync {
        Some(SpillSyncArg::EveryBatch) => spill.sync = SpillSync::EveryBatch,
        Some(SpillSyncArg::Os) => spill.sync = SpillSync::Os,
        Some(SpillSyncArg::Every(d)) => {
            spill.sync = SpillSync::Interval;
            spill.sync_interval_ms = millis(d);
        }
        None => {}
    }
    if a.spill_write_ahead {
        spill.write_ahead = true;
    }
}

/// The scenario the flags describe.
///
/// # Errors
///
/// [`ScenarioError`] for an unreadable scenario file, an out-of-range value
/// (naming the flag and what was typed, or the file and key), a bad payload shape, or
/// flags that would have no effect together.
pub fn resolve(args: &ScenarioArgs) -> Result<ScenarioConfig, ScenarioError> {
    resolve_from(args, ScenarioConfig::default())
}

/// [`resolve`], starting from `default` rather than the default scenario when neither a
/// preset nor a scenario file is given (a subcommand's own starting point).
///
/// # Errors
///
/// As [`resolve`].
pub fn resolve_from(
    args: &ScenarioArgs,
    default: ScenarioConfig,
) -> Result<ScenarioConfig, ScenarioError> {
    resolve_adjusted(args, default, |_| {})
}

/// [`resolve_from`], with `adjust` applied after the flags and before every check: what a
/// subcommand sets whatever the flags say (the crash test's write-ahead disk tier).
///
/// # Errors
///
/// As [`resolve`].
pub fn resolve_adjusted(
    args: &ScenarioArgs,
    default: ScenarioConfig,
    adjust: impl FnOnce(&mut ScenarioConfig),
) -> Result<ScenarioConfig, ScenarioError> {
    let file = args.config.as_deref();
    let base = match (file, args.preset) {
        (Some(path), _) => from_file(path)?,
        (None, Some(p)) => preset(p),
        (None, None) => default,
    };
    let mut config = apply_flags(base.clone(), args);
    adjust(&mut config);
    config
        .validate()
        .map_err(|e| ScenarioError::Invalid(crate::explain::explain(&e, args, file)))?;
    payload_spec(args, &config)?;
    no_effect(args, &config, file)?;
    check_machine(args, &config)?;
    Ok(config)
}

/// The payload's shape, a shape that does not parse named as the user wrote it.
fn payload_spec(
    args: &ScenarioArgs,
    config: &ScenarioConfig,
) -> Result<loadgen::PayloadSpec, ScenarioError> {
    config.payload.parse::<loadgen::PayloadSpec>().map_err(|e| {
        ScenarioError::Payload(match (&args.payload, args.config.as_deref()) {
            (None, Some(file)) => format!("{}: `payload`: {e}", file.display()),
            _ => format!("--payload: {e}"),
        })
    })
}

/// What this machine (or this payload) refuses in `config`, named as the user wrote it in
/// `args` (the run checks it again): see [`crate::checks::machine`].
///
/// # Errors
///
/// [`ScenarioError::Payload`] for a payload that cannot be loaded,
/// [`ScenarioError::Invalid`] for a value refused.
fn check_machine(args: &ScenarioArgs, config: &ScenarioConfig) -> Result<(), ScenarioError> {
    let file = args.config.as_deref();
    let spec = payload_spec(args, config)?;
    let payload = loadgen::PayloadSource::load(&spec).map_err(|e| {
        let name = crate::explain::name_of("payload", &config.payload, args, file);
        ScenarioError::Payload(format!("{name}: {e}"))
    })?;
    crate::checks::machine(config, &payload).map_err(|refusal| {
        let name = crate::explain::name_of(refusal.field, &refusal.value, args, file);
        ScenarioError::Invalid(refusal.named(&name))
    })
}

/// A scenario file, every error naming the file (and the key).
fn from_file(path: &std::path::Path) -> Result<ScenarioConfig, ScenarioError> {
    let config = ScenarioConfig::from_toml_file(path).map_err(|e| match e {
        // The file alone is out of range (no flag is involved yet): named by file and key.
        runlog::RunlogError::Config(e) => ScenarioError::Invalid(crate::explain::explain(
            &e,
            &ScenarioArgs::default(),
            Some(path),
        )),
        other => ScenarioError::File(other),
    })?;
    if let Some(label) = config.preset.as_deref() {
        if !PRESETS.contains(&label) {
            return Err(ScenarioError::Invalid(format!(
                "{}: `preset` = {label:?} is not a preset (known: {}); it only labels the values the file sets",
                path.display(),
                PRESETS.join(", ")
            )));
        }
    }
    Ok(config)
}

/// Refuses flags that would be silently ignored in this combination.
fn no_effect(
    args: &ScenarioArgs,
    config: &ScenarioConfig,
    file: Option<&std::path::Path>,
) -> Result<(), ScenarioError> {
    let conflict = |m: String| Err(ScenarioError::Conflict(m));
    if config.consumer_stall_every_ms.is_none() && config.consumer_stall_for_ms > 0 {
        let from = if args.stall_for.is_some() {
            "--stall-for".to_owned()
        } else {
            file.map_or("`consumer_stall_for_ms`".into(), |f| {
                format!("{}: `consumer_stall_for_ms`", f.display())
            })
        };
        return conflict(format!(
            "{from} has no effect without --stall-every (how often the consumer stalls)"
        ));
    }
    if config.consumer_stall_every_ms.is_some() && config.consumer_stall_for_ms == 0 {
        return conflict(
            "--stall-every has no effect without --stall-for (how long each stall lasts)".into(),
        );
    }
    let target = config.target;
    if target.is_reference() && args.policy.is_some() {
        return conflict(format!(
            "--policy has no effect with --target {target}: a reference channel has no overload policy"
        ));
    }
    if target.is_reference() && args.block_timeout.is_some() {
        return conflict(format!(
            "--block-timeout has no effect with --target {target}"
        ));
    }
    spill_effect(args, config, file)?;
    if config.policy != Policy::Block && args.block_timeout.is_some() {
        return conflict("--block-timeout has no effect without --policy block".into());
    }
    if !config.record_latency {
        if let Some(t) = config.thresholds.iter().find(|t| t.metric.is_latency()) {
            return conflict(format!(
                "--threshold '{t}' judges latency, which --no-latency does not record"
            ));
        }
    }
    Ok(())
}

/// Refuses disk tier flags without a tier, and a tier for a target that has none.
fn spill_effect(
    args: &ScenarioArgs,
    config: &ScenarioConfig,
    file: Option<&std::path::Path>,
) -> Result<(), ScenarioError> {
    let given = [
        (args.max_spill_bytes.is_some(), "--max-spill-bytes"),
        (args.spill_sync.is_some(), "--spill-sync"),
        (args.spill_write_ahead, "--spill-write-ahead"),
    ];
    if config.spill.is_none() {
        if let Some((_, flag)) = given.iter().find(|(given, _)| *given) {
            return Err(ScenarioError::Conflict(format!(
                "{flag} has no effect without --spill-dir (the disk tier's directory)"
            )));
        }
        return Ok(());
    }
    let target = config.target;
    if target.is_reference() {
        let from = match (&args.spill_dir, file) {
            (None, Some(file)) => format!("{}: `spill`", file.display()),
            _ => "--spill-dir".to_owned(),
        };
        return Err(ScenarioError::Conflict(format!(
            "{from} has no effect with --target {target}: only the dispatcher has a disk tier"
        )));
    }
    Ok(())
}

/// What is kept but worth saying: values from a scenario file that have no effect.
pub fn warnings(args: &ScenarioArgs, config: &ScenarioConfig) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(file) = &args.config {
        let default = ScenarioConfig::default();
        if config.target.is_reference() && config.policy != default.policy {
            out.push(format!(
                "{}: `policy` has no effect with the {} reference",
                file.display(),
                config.target
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_flags_is_the_default_scenario() {
        let c = resolve(&ScenarioArgs::default()).expect("valid");
        assert_eq!(c, ScenarioConfig::default());
        assert_eq!(
            (c.duration_s, c.producers, c.consumer_delay_us),
            (60.0, 32, 200)
        );
        assert_eq!(
            (c.interval_us, c.max_batch_bytes, c.max_buffered_bytes),
            (10_000, Some(32 * 1024), 64 << 20)
        );
    }

    #[test]
    fn producers_run_as_batch_unless_asked_for_normal() {
        let c = resolve(&ScenarioArgs::default()).expect("valid");
        assert_eq!(c.producer_scheduling, runlog::ProducerScheduling::Batch);
        let args = ScenarioArgs {
            producer_scheduling: Some(crate::cli::SchedulingArg::Normal),
            ..ScenarioArgs::default()
        };
        let c = resolve(&args).expect("valid");
        assert_eq!(c.producer_scheduling, runlog::ProducerScheduling::Normal);
    }

    #[test]
    fn flags_override_the_preset() {
        let args = ScenarioArgs {
            preset: Some(Preset::Pi4),
            producers: Some(4),
            consumer_delay: Some(Duration::ZERO),
            ..ScenarioArgs::default()
        };
        let c = resolve(&args).expect("valid");
        assert_eq!(c.payload, "fixed:10KiB");
        assert_eq!((c.producers, c.consumer_delay_us), (4, 0));
        assert_eq!(c.preset.as_deref(), Some("pi4"));
    }

    #[test]
    fn every_preset_is_valid() {
        for p in [Preset::Quick, Preset::Tempo, Preset::Pi4] {
            assert!(preset(p).validate().is_ok(), "{p:?}");
        }
    }

    #[test]
    fn out_of_range_values_name_the_field() {
        let args = ScenarioArgs {
            producers: Some(0),
            ..ScenarioArgs::default()
        };
        let err = resolve(&args).unwrap_err();
        assert!(err.to_string().contains("--producers 0"), "{err}");
        let args = ScenarioArgs {
            max_batch_bytes: Some(crate::cli::Limit(Some(1 << 40))),
            ..ScenarioArgs::default()
        };
        assert!(
            resolve(&args)
                .unwrap_err()
                .to_string()
                .contains("--max-batch-bytes")
        );
    }

    #[test]
    fn a_bad_payload_shape_is_refused() {
        let args = ScenarioArgs {
            payload: Some("gaussian".into()),
            ..ScenarioArgs::default()
        };
        assert!(matches!(resolve(&args), Err(ScenarioError::Payload(_))));
    }

    #[test]
    fn a_scenario_file_is_the_base() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.toml");
        std::fs::write(&path, "producers = 3\nconsumer_delay_us = 50\n").expect("write");
        let args = ScenarioArgs {
            config: Some(path),
            consumer_delay: Some(Duration::from_micros(70)),
            ..ScenarioArgs::default()
        };
        let c = resolve(&args).expect("valid");
        assert_eq!((c.producers, c.consumer_delay_us), (3, 70));
    }
}
