//! The scenario: everything needed to rerun a soak, as a TOML file and as `results.json` `config`.

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::RunlogError;
use crate::scheduling::ProducerScheduling;
use crate::spill::SpillConfig;
use crate::threshold::Thresholds;

/// What the dispatcher does when admitting an event would exceed `max_buffered_bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Policy {
    /// Refuse the event with a typed error that hands it back (`"reject"`).
    #[default]
    Reject,
    /// Wait for room, up to `block_timeout_us` (`"block"`).
    Block,
    /// Evict the oldest buffered events to make room, counting them (`"drop-oldest"`).
    DropOldest,
}

/// What `max_buffered_bytes` counts for each event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Weighing {
    /// The payload bytes only, as other batchers count (`"payload"`): the heap the
    /// buffer holds is larger by each event's struct and the allocator's rounding.
    Payload,
    /// What each event occupies: its struct and its allocation's size class
    /// (`"occupancy"`), so the limit is the heap the buffer holds.
    #[default]
    Occupancy,
}

/// What the load generator drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetKind {
    /// The product: the batching dispatcher (`"dispatcher"`).
    #[default]
    Dispatcher,
    /// A bare bounded `std::sync::mpsc` channel, as a reference (`"channel"`).
    Channel,
    /// A bounded `crossbeam-channel` drained in batches, as a reference (`"crossbeam"`).
    Crossbeam,
    /// A bounded `tokio::sync::mpsc` channel drained in batches, as a reference (`"tokio"`).
    Tokio,
}

impl TargetKind {
    /// Every target, in the order `--help` lists them.
    pub const ALL: [TargetKind; 4] = [
        TargetKind::Dispatcher,
        TargetKind::Channel,
        TargetKind::Crossbeam,
        TargetKind::Tokio,
    ];

    /// The name a scenario file, `--target` and the report use.
    ///
    /// ```
    /// assert_eq!(runlog::TargetKind::Crossbeam.name(), "crossbeam");
    /// ```
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            TargetKind::Dispatcher => "dispatcher",
            TargetKind::Channel => "channel",
            TargetKind::Crossbeam => "crossbeam",
            TargetKind::Tokio => "tokio",
        }
    }

    /// Whether this is one of the reference channels (no byte bound, no
    /// policy, no limits to change) rather than the dispatcher.
    #[must_use]
    pub const fn is_reference(self) -> bool {
        !matches!(self, TargetKind::Dispatcher)
    }
}

impl std::fmt::Display for TargetKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One soak scenario.
///
/// Serialized as the `config` object of `results.json` and as a TOML scenario file. Every
/// key is optional in TOML: a missing key takes the default scenario's value (see
/// [`ScenarioConfig::default`]), and an unknown key is an error.
///
/// `None` in an `Option` limit means "no limit". JSON writes it as `null`; TOML has no null,
/// so a missing key means the default and `max_batch_bytes = "unlimited"` spells `None`
/// (the string `"unlimited"` is accepted by every `Option<u64>` key, in TOML and JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScenarioConfig {
    /// How long producers run, in seconds (the drain comes after).
    pub duration_s: f64,
    /// Number of producer threads.
    pub producers: u32,
    /// Payload shape name, as known to the load generator (e.g. `"telemetry"`).
    pub payload: String,
    /// Total offered rate over all producers; `None` is unlimited.
    #[serde(deserialize_with = "opt_limit::deserialize")]
    pub rate_per_sec: Option<u64>,
    /// How long a producer backs off after a refused event.
    pub backoff_us: u64,
    /// How the operating system schedules the producer threads. Records written
    /// before the key existed read as `normal`, the class they ran in (see
    /// [`read_results`](crate::read_results)), so `compare` tells them apart from a
    /// run with `batch`; a scenario without the key gets the default, `batch`.
    pub producer_scheduling: ProducerScheduling,
    /// Fixed time the consumer spends per batch.
    pub consumer_delay_us: u64,
    /// Extra consumer time per KiB of batch.
    pub consumer_cost_per_kib_us: u64,
    /// Uniform random jitter added to the consumer delay.
    pub consumer_jitter_us: u64,
    /// When set, the consumer stalls every this many milliseconds.
    #[serde(deserialize_with = "opt_limit::deserialize")]
    pub consumer_stall_every_ms: Option<u64>,
    /// Length of each consumer stall.
    pub consumer_stall_for_ms: u64,
    /// Flush interval of the dispatcher.
    pub interval_us: u64,
    /// Random jitter applied to the flush interval (at most `interval_us`).
    pub interval_jitter_us: u64,
    /// Flush a batch once it holds this many bytes; `None` disables the byte trigger.
    #[serde(deserialize_with = "opt_limit::deserialize")]
    pub max_batch_bytes: Option<u64>,
    /// Flush a batch once it holds this many events; `None` disables the count trigger.
    #[serde(deserialize_with = "opt_limit::deserialize")]
    pub max_batch_items: Option<u64>,
    /// Bound on accepted, not yet delivered bytes.
    pub max_buffered_bytes: u64,
    /// Overload policy.
    pub policy: Policy,
    /// What `max_buffered_bytes` counts for each event (records written before this
    /// key existed read as occupancy, but were weighed by payload).
    pub weighing: Weighing,
    /// How long a `block` producer waits for room.
    pub block_timeout_us: u64,
    /// Batch builders the dispatcher spreads producers over (each producer
    /// thread has its own handle); they share `max_buffered_bytes`. Records
    /// written before the key existed read as the default (8), but ran with 1.
    pub partitions: u32,
    /// Sample interval of the run record.
    pub sample_every_ms: u64,
    /// Seed of every random choice in the run.
    pub seed: u64,
    /// What the load generator drives.
    pub target: TargetKind,
    /// Deadline for draining accepted events at shutdown.
    pub drain_timeout_ms: u64,
    /// When set, the run is pinned to this many CPUs.
    pub cpus: Option<u32>,
    /// Name of the preset the scenario came from, if any.
    pub preset: Option<String>,
    /// Whether enqueue-to-delivery latency is recorded.
    pub record_latency: bool,
    /// User thresholds judged when the run ends (a `[thresholds]` table; see
    /// [`Thresholds`]). Absent when there are none; they do not change what runs.
    #[serde(skip_serializing_if = "Thresholds::is_empty")]
    pub thresholds: Thresholds,
    /// The dispatcher's disk tier (a `[spill]` table; see [`SpillConfig`]). Absent without
    /// one, and in records written before the key existed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spill: Option<SpillConfig>,
}

impl Default for ScenarioConfig {
    /// The default scenario: 32 producers, telemetry payloads, 200 us consumer delay,
    /// 10 ms interval, 32 KiB batches, 64 MiB buffered, reject policy, 60 s.
    fn default() -> Self {
        Self {
            duration_s: 60.0,
            producers: 32,
            payload: "telemetry".to_owned(),
            rate_per_sec: None,
            backoff_us: 100,
            producer_scheduling: ProducerScheduling::Batch,
            consumer_delay_us: 200,
            consumer_cost_per_kib_us: 0,
            consumer_jitter_us: 0,
            consumer_stall_every_ms: None,
            consumer_stall_for_ms: 0,
            interval_us: 10_000,
            interval_jitter_us: 0,
            max_batch_bytes: Some(32 * 1024),
            max_batch_items: None,
            max_buffered_bytes: 64 * 1024 * 1024,
            policy: Policy::Reject,
            weighing: Weighing::Occupancy,
            block_timeout_us: 1000,
            partitions: 8,
            sample_every_ms: 1000,
            seed: 1,
            target: TargetKind::Dispatcher,
            drain_timeout_ms: 5000,
            cpus: None,
            preset: None,
            record_latency: true,
            thresholds: Thresholds::default(),
            spill: None,
        }
    }
}

/// A scenario value outside its allowed range.
///
/// The message is one line naming the field, the value and the allowed range, e.g.
/// ``scenario `producers` = 0 is out of range (allowed: 1..=4096)``.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The field's value is outside the allowed range.
    #[error("scenario `{field}` = {value} is out of range (allowed: {allowed})")]
    OutOfRange {
        /// The scenario key.
        field: &'static str,
        /// The refused value, as written in a scenario file.
        value: String,
        /// The allowed range.
        allowed: String,
    },
}

impl ConfigError {
    /// The scenario key that was refused.
    ///
    /// ```
    /// let config = runlog::ScenarioConfig { producers: 0, ..Default::default() };
    /// assert_eq!(config.validate().unwrap_err().field(), "producers");
    /// ```
    #[must_use]
    pub fn field(&self) -> &'static str {
        match self {
            Self::OutOfRange { field, .. } => field,
        }
    }
}

fn check(
    ok: bool,
    field: &'static str,
    value: impl fmt::Display,
    allowed: impl fmt::Display,
) -> Result<(), ConfigError> {
    if ok {
        Ok(())
    } else {
        Err(ConfigError::OutOfRange {
            field,
            value: value.to_string(),
            allowed: allowed.to_string(),
        })
    }
}

fn check_opt(
    value: Option<u64>,
    field: &'static str,
    min: u64,
    max: u64,
) -> Result<(), ConfigError> {
    match value {
        None => Ok(()),
        Some(v) if max == u64::MAX => check(v >= min, field, v, format_args!(">= {min}")),
        Some(v) => check(
            (min..=max).contains(&v),
            field,
            v,
            format_args!("{min}..={max}"),
        ),
    }
}

/// Upper bounds of the scenario's values: a run never starts with a value it cannot keep
/// (a deadline past the end of time, a limit no machine has). The live limits a dashboard
/// changes are held to the same bounds (see [`Limits::apply`](crate::Limits::apply)).
pub mod bounds {
    /// The longest run: 30 days.
    pub const MAX_DURATION_S: f64 = 30.0 * 24.0 * 3600.0;
    /// The most producer threads.
    pub const MAX_PRODUCERS: u32 = 4096;
    /// The highest offered rate, events per second.
    pub const MAX_RATE_PER_SEC: u64 = 1_000_000_000;
    /// The longest flush interval: 60 s.
    pub const MAX_INTERVAL_US: u64 = 60_000_000;
    /// The longest simulated consumer work per batch (and per KiB, and jitter): 60 s.
    pub const MAX_CONSUMER_DELAY_US: u64 = 60_000_000;
    /// The longest producer back-off: 10 s.
    pub const MAX_BACKOFF_US: u64 = 10_000_000;
    /// The longest wait for room under the block policy: 60 s.
    pub const MAX_BLOCK_TIMEOUT_US: u64 = 60_000_000;
    /// The longest consumer stall (and the longest time between stalls): 24 h.
    pub const MAX_STALL_MS: u64 = 24 * 3600 * 1000;
    /// The longest drain deadline: 1 h.
    pub const MAX_DRAIN_TIMEOUT_MS: u64 = 3600 * 1000;
    /// The largest buffered limit: 1 TiB (a machine's memory bounds it further).
    pub const MAX_BUFFERED_BYTES: u64 = 1 << 40;
    /// The most CPUs a run can be pinned to.
    pub const MAX_CPUS: u32 = 65_536;
    /// The largest scenario file read.
    pub const MAX_SCENARIO_FILE_BYTES: u64 = 1 << 20;
}

use bounds::*;

pub(crate) fn check_range(
    value: u64,
    field: &'static str,
    min: u64,
    max: u64,
) -> Result<(), ConfigError> {
    check(
        (min..=max).contains(&value),
        field,
        value,
        format_args!("{min}..={max}"),
    )
}

impl ScenarioConfig {
    /// Checks every value against its allowed range (see [`bounds`]).
    ///
    /// ```
    /// use runlog::ScenarioConfig;
    /// assert!(ScenarioConfig::default().validate().is_ok());
    /// let bad = ScenarioConfig { sample_every_ms: 5, ..Default::default() };
    /// assert_eq!(
    ///     bad.validate().unwrap_err().to_string(),
    ///     "scenario `sample_every_ms` = 5 is out of range (allowed: 10..=60000)"
    /// );
    /// ```
    ///
    /// # Errors
    /// The first out-of-range field, as a [`ConfigError`].
    pub fn validate(&self) -> Result<(), ConfigError> {
        let d = self.duration_s;
        check(
            d.is_finite() && d > 0.0 && d <= MAX_DURATION_S,
            "duration_s",
            d,
            "> 0 s and <= 30 days",
        )?;
        let p = self.producers;
        check(
            (1..=MAX_PRODUCERS).contains(&p),
            "producers",
            p,
            format_args!("1..={MAX_PRODUCERS}"),
        )?;
        check_opt(self.rate_per_sec, "rate_per_sec", 1, MAX_RATE_PER_SEC)?;
        check_range(self.backoff_us, "backoff_us", 0, MAX_BACKOFF_US)?;
        self.validate_consumer()?;
        let i = self.interval_us;
        check_range(i, "interval_us", 1, MAX_INTERVAL_US)?;
        let j = self.interval_jitter_us;
        check(
            j <= i,
            "interval_jitter_us",
            j,
            format_args!("0..={i} (interval_us)"),
        )?;
        let parts = self.partitions;
        check((1..=256).contains(&parts), "partitions", parts, "1..=256")?;
        let buffered = self.max_buffered_bytes;
        check_range(buffered, "max_buffered_bytes", 1, MAX_BUFFERED_BYTES)?;
        check_opt(self.max_batch_bytes, "max_batch_bytes", 1, buffered)?;
        check_opt(self.max_batch_items, "max_batch_items", 1, u64::MAX)?;
        let b = self.block_timeout_us;
        check_range(b, "block_timeout_us", 1, MAX_BLOCK_TIMEOUT_US)?;
        let s = self.sample_every_ms;
        check(
            (10..=60_000).contains(&s),
            "sample_every_ms",
            s,
            "10..=60000",
        )?;
        let t = self.drain_timeout_ms;
        check_range(t, "drain_timeout_ms", 1, MAX_DRAIN_TIMEOUT_MS)?;
        if let Some(c) = self.cpus {
            check(
                (1..=MAX_CPUS).contains(&c),
                "cpus",
                c,
                format_args!("1..={MAX_CPUS}"),
            )?;
        }
        if let Some(spill) = &self.spill {
            spill.validate()?;
        }
        Ok(())
    }

    fn validate_consumer(&self) -> Result<(), ConfigError> {
        let delay = MAX_CONSUMER_DELAY_US;
        check_range(self.consumer_delay_us, "consumer_delay_us", 0, delay)?;
        check_range(
            self.consumer_cost_per_kib_us,
            "consumer_cost_per_kib_us",
            0,
            delay,
        )?;
        check_range(self.consumer_jitter_us, "consumer_jitter_us", 0, delay)?;
        check_opt(
            self.consumer_stall_every_ms,
            "consumer_stall_every_ms",
            1,
            MAX_STALL_MS,
        )?;
        check_range(
            self.consumer_stall_for_ms,
            "consumer_stall_for_ms",
            0,
            MAX_STALL_MS,
        )
    }

    /// Parses a TOML scenario and validates it.
    ///
    /// Missing keys take their defaults; unknown keys are refused.
    ///
    /// ```
    /// use runlog::{Policy, ScenarioConfig};
    /// let config = ScenarioConfig::from_toml_str("producers = 4\npolicy = \"drop-oldest\"\n")?;
    /// assert_eq!(config.producers, 4);
    /// assert_eq!(config.policy, Policy::DropOldest);
    /// assert_eq!(config.interval_us, 10_000);
    /// # Ok::<(), runlog::RunlogError>(())
    /// ```
    ///
    /// # Errors
    /// [`RunlogError::Toml`] (path `<string>`) naming the line, column and key for a syntax
    /// error, an unknown key or a wrongly typed value; [`RunlogError::Config`] for a value out
    /// of range.
    pub fn from_toml_str(text: &str) -> Result<Self, RunlogError> {
        Self::parse_toml(text, Path::new("<string>"))
    }

    /// Reads and validates a TOML scenario file.
    ///
    /// ```no_run
    /// let config = runlog::ScenarioConfig::from_toml_file("scenarios/pi.toml".as_ref())?;
    /// # Ok::<(), runlog::RunlogError>(())
    /// ```
    ///
    /// # Errors
    /// [`RunlogError::Io`] when the file cannot be read, is not a regular file (a FIFO or a
    /// device is refused before it is opened, so nothing blocks) or is larger than
    /// [`bounds::MAX_SCENARIO_FILE_BYTES`]; otherwise as [`ScenarioConfig::from_toml_str`]
    /// with the file's path.
    pub fn from_toml_file(path: &Path) -> Result<Self, RunlogError> {
        let text = read_regular_file(path, MAX_SCENARIO_FILE_BYTES)?;
        Self::parse_toml(&text, path)
    }

    fn parse_toml(text: &str, path: &Path) -> Result<Self, RunlogError> {
        let config: Self = toml::from_str(text).map_err(|e| RunlogError::Toml {
            path: path.to_path_buf(),
            message: describe_toml_error(text, &e),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Writes the scenario as TOML that [`ScenarioConfig::from_toml_str`] reads back equal.
    ///
    /// ```
    /// use runlog::ScenarioConfig;
    /// let config = ScenarioConfig { max_batch_bytes: None, ..Default::default() };
    /// let text = config.to_toml_string()?;
    /// assert!(text.contains("max_batch_bytes = \"unlimited\""));
    /// assert_eq!(ScenarioConfig::from_toml_str(&text)?, config);
    /// # Ok::<(), runlog::RunlogError>(())
    /// ```
    ///
    /// # Errors
    /// [`RunlogError::Toml`] when a value has no TOML form (an integer above `i64::MAX`).
    pub fn to_toml_string(&self) -> Result<String, RunlogError> {
        let mut text = toml::to_string(self).map_err(|e| RunlogError::Toml {
            path: "<string>".into(),
            message: e.to_string(),
        })?;
        // TOML omits `None`, which would read back as the default `Some(32 KiB)`. The key
        // goes before the first table (`[thresholds]`), or it would belong to that table.
        if self.max_batch_bytes.is_none() {
            let at = text
                .match_indices('\n')
                .map(|(i, _)| i + 1)
                .find(|&i| text[i..].starts_with('['))
                .unwrap_or(text.len());
            text.insert_str(at, "max_batch_bytes = \"unlimited\"\n");
        }
        Ok(text)
    }
}

/// Reads a regular file of at most `limit` bytes as UTF-8 text. Special files (FIFOs,
/// devices, directories) are refused from their metadata, before they are opened: opening
/// a FIFO would wait for a writer, and a device may never end.
pub(crate) fn read_regular_file(path: &Path, limit: u64) -> Result<String, RunlogError> {
    let bytes = crate::files::read_regular(path, limit).map_err(|e| RunlogError::io(path, e))?;
    String::from_utf8(bytes).map_err(|_| {
        let e = std::io::Error::new(std::io::ErrorKind::InvalidInput, "not UTF-8 text");
        RunlogError::io(path, e)
    })
}

/// One line: `line L, column C: <message>` (the toml crate's own display spans several lines).
fn describe_toml_error(text: &str, err: &toml::de::Error) -> String {
    let message = err.message().trim_end();
    match err.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message.to_owned(),
    }
}

/// Lenient `Option<u64>`: an integer, `null`, or the string `"unlimited"`/`"none"` for `None`.
mod opt_limit {
    use std::fmt;

    use serde::Deserializer;
    use serde::de::{self, Visitor};

    struct OptLimit;

    impl<'de> Visitor<'de> for OptLimit {
        type Value = Option<u64>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a non-negative integer or \"unlimited\"")
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v))
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            u64::try_from(v)
                .map(Some)
                .map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            match v {
                "unlimited" | "none" => Ok(None),
                _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
            }
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(OptLimit)
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        d.deserialize_option(OptLimit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_scenario_is_valid_and_matches_the_reference_soak() {
        let c = ScenarioConfig::default();
        c.validate().unwrap();
        assert_eq!(c.max_batch_bytes, Some(32 * 1024));
        assert_eq!(c.max_buffered_bytes, 64 << 20);
        assert_eq!(c.producers, 32);
    }

    #[test]
    fn empty_toml_is_the_default_scenario() {
        assert_eq!(
            ScenarioConfig::from_toml_str("").unwrap(),
            ScenarioConfig::default()
        );
    }

    #[test]
    fn policy_and_target_use_kebab_case() {
        let json = serde_json::to_string(&Policy::DropOldest).unwrap();
        assert_eq!(json, "\"drop-oldest\"");
        for target in TargetKind::ALL {
            let json = serde_json::to_string(&target).unwrap();
            assert_eq!(json, format!("\"{}\"", target.name()), "{target:?}");
            assert_eq!(serde_json::from_str::<TargetKind>(&json).unwrap(), target);
        }
    }

    #[test]
    fn json_null_and_unlimited_both_mean_none() {
        let c: ScenarioConfig = serde_json::from_str(r#"{"max_batch_bytes": null}"#).unwrap();
        assert_eq!(c.max_batch_bytes, None);
        let c: ScenarioConfig =
            serde_json::from_str(r#"{"rate_per_sec": "unlimited", "max_batch_items": 64}"#)
                .unwrap();
        assert_eq!((c.rate_per_sec, c.max_batch_items), (None, Some(64)));
    }

    #[test]
    fn negative_limit_is_refused() {
        let err = ScenarioConfig::from_toml_str("max_batch_items = -3").unwrap_err();
        assert!(err.to_string().contains("line 1"), "{err}");
    }

    #[test]
    fn toml_error_is_one_line_with_position() {
        let err = ScenarioConfig::from_toml_str("producers = 4\nproducers = 5\n").unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("<string>: line 2, column 1: "), "{msg}");
        assert!(!msg.contains('\n'), "{msg}");
    }
}
