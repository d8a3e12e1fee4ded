//! The dispatcher's disk tier in the run record: its settings (`config.spill`, the
//! `[spill]` table of a scenario file) and what it did over a run (`spill` in
//! `results.json`). Both are absent for a run without a tier.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::config::ConfigError;

/// When the disk tier forces what it wrote from the kernel's page cache to the device.
/// A process crash loses nothing written under any of them; they differ on power failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SpillSync {
    /// After every append (`"every-batch"`).
    EveryBatch,
    /// When `sync_interval_ms` has passed since the last sync (`"interval"`).
    #[default]
    Interval,
    /// Never: write-back is left to the kernel (`"os"`).
    Os,
}

/// The disk tier of a scenario: where it lives, how much disk it may take, when it syncs,
/// and whether every event goes through it.
///
/// ```
/// let config = runlog::ScenarioConfig::from_toml_str(
///     "[spill]\ndir = \"/var/spool/soak\"\nmax_disk_bytes = 67108864\nwrite_ahead = true\n",
/// )?;
/// let spill = config.spill.expect("a disk tier");
/// assert_eq!(spill.max_disk_bytes, 64 << 20);
/// assert_eq!(spill.sync, runlog::SpillSync::Interval);
/// assert_eq!(spill.sync_words(), "every 100 ms");
/// # Ok::<(), runlog::RunlogError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpillConfig {
    /// The tier's directory (created if missing; its parent must exist).
    pub dir: PathBuf,
    /// The most bytes its files may take on disk.
    pub max_disk_bytes: u64,
    /// When it syncs.
    pub sync: SpillSync,
    /// The interval of [`SpillSync::Interval`].
    pub sync_interval_ms: u64,
    /// Every event goes through the disk, not only those that do not fit in memory.
    pub write_ahead: bool,
}

impl Default for SpillConfig {
    /// No directory yet, 1 GiB of disk, a sync every 100 ms, overflow only (the
    /// dispatcher's own defaults).
    fn default() -> Self {
        Self {
            dir: PathBuf::new(),
            max_disk_bytes: DEFAULT_MAX_DISK_BYTES,
            sync: SpillSync::Interval,
            sync_interval_ms: DEFAULT_SYNC_INTERVAL_MS,
            write_ahead: false,
        }
    }
}

/// The default disk budget: 1 GiB.
pub const DEFAULT_MAX_DISK_BYTES: u64 = 1 << 30;
/// The default sync interval: 100 ms.
pub const DEFAULT_SYNC_INTERVAL_MS: u64 = 100;
/// The smallest disk budget: one 4 KiB segment, the smallest the dispatcher writes.
pub const MIN_MAX_DISK_BYTES: u64 = 4 * 1024;
/// The largest disk budget: 1 TiB.
pub const MAX_MAX_DISK_BYTES: u64 = 1 << 40;
/// The longest sync interval: 60 s (to never sync, use `os`).
pub const MAX_SYNC_INTERVAL_MS: u64 = 60_000;

impl SpillConfig {
    /// Checks the budget and the sync interval against their ranges.
    ///
    /// ```
    /// let bad = runlog::SpillConfig { dir: "d".into(), max_disk_bytes: 0, ..Default::default() };
    /// assert_eq!(
    ///     bad.validate().unwrap_err().to_string(),
    ///     "scenario `spill.max_disk_bytes` = 0 is out of range (allowed: 4096..=1099511627776)"
    /// );
    /// ```
    ///
    /// # Errors
    /// The first value out of range, as a [`ConfigError`].
    pub fn validate(&self) -> Result<(), ConfigError> {
        crate::config::check_range(
            self.max_disk_bytes,
            "spill.max_disk_bytes",
            MIN_MAX_DISK_BYTES,
            MAX_MAX_DISK_BYTES,
        )?;
        if self.sync == SpillSync::Interval {
            crate::config::check_range(
                self.sync_interval_ms,
                "spill.sync_interval_ms",
                1,
                MAX_SYNC_INTERVAL_MS,
            )?;
        }
        if self.dir.as_os_str().is_empty() {
            return Err(ConfigError::OutOfRange {
                field: "spill.dir",
                value: "\"\"".into(),
                allowed: "a directory path".into(),
            });
        }
        Ok(())
    }

    /// When it syncs, in words: `every batch`, `every 100 ms`, `left to the OS`.
    #[must_use]
    pub fn sync_words(&self) -> String {
        match self.sync {
            SpillSync::EveryBatch => "every batch".into(),
            SpillSync::Interval => format!(
                "every {}",
                crate::human::micros(self.sync_interval_ms.saturating_mul(1000))
            ),
            SpillSync::Os => "left to the OS".into(),
        }
    }
}

/// What the disk tier did over a run: `spill` in `results.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SpillTotals {
    /// Events accepted onto disk.
    pub spilled: u64,
    /// Events read back from disk into memory (recovered ones included).
    pub replayed: u64,
    /// Events still on disk when the run ended (kept for the next start).
    pub left_on_disk: u64,
    /// Events found unacknowledged on disk when the run started (an earlier run's).
    pub recovered: u64,
    /// Their payload bytes.
    pub recovered_bytes: u64,
    /// Damaged records cut off when the tier was opened.
    pub torn: u64,
    /// Events that found the disk full or failing and met the memory policy instead.
    pub fallbacks: u64,
    /// Disk operations that failed.
    pub errors: u64,
    /// Records read back that could not be delivered (undecodable, or larger than memory).
    pub undeliverable: u64,
    /// The most bytes the tier's files took at a sample (or at the end).
    pub peak_disk_bytes: u64,
    /// The disk budget.
    pub max_disk_bytes: u64,
    /// The last disk error, if there was one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ScenarioConfig;

    fn with_tier() -> ScenarioConfig {
        ScenarioConfig {
            spill: Some(SpillConfig {
                dir: "/var/spool/soak".into(),
                max_disk_bytes: 64 << 20,
                sync: SpillSync::EveryBatch,
                write_ahead: true,
                ..SpillConfig::default()
            }),
            ..ScenarioConfig::default()
        }
    }

    #[test]
    fn a_scenario_without_a_tier_writes_no_key() {
        let json = serde_json::to_value(ScenarioConfig::default()).expect("json");
        assert!(json.get("spill").is_none(), "{json}");
    }

    #[test]
    fn the_tier_reads_back_from_toml_and_json() {
        let config = with_tier();
        let text = config.to_toml_string().expect("toml");
        assert!(text.contains("[spill]"), "{text}");
        assert!(text.contains("sync = \"every-batch\""), "{text}");
        assert_eq!(ScenarioConfig::from_toml_str(&text).expect("reads"), config);
        let unlimited = ScenarioConfig {
            max_batch_bytes: None,
            thresholds: crate::Thresholds(vec!["p99<50ms".parse().expect("threshold")]),
            ..with_tier()
        };
        let text = unlimited.to_toml_string().expect("toml");
        assert_eq!(
            ScenarioConfig::from_toml_str(&text).expect("reads"),
            unlimited
        );
        let json = serde_json::to_string(&config).expect("json");
        let back: ScenarioConfig = serde_json::from_str(&json).expect("reads");
        assert_eq!(back, config);
    }

    #[test]
    fn out_of_range_values_are_named() {
        let mut config = with_tier();
        if let Some(s) = config.spill.as_mut() {
            s.sync = SpillSync::Interval;
            s.sync_interval_ms = 0;
        }
        let err = config.validate().unwrap_err();
        assert_eq!(err.field(), "spill.sync_interval_ms");
        let err = ScenarioConfig::from_toml_str("[spill]\nmax_disk_bytes = 10\n").unwrap_err();
        assert!(err.to_string().contains("spill.max_disk_bytes"), "{err}");
        let err = ScenarioConfig::from_toml_str("[spill]\nmax_disk_bytes = 8192\n").unwrap_err();
        assert!(err.to_string().contains("spill.dir"), "{err}");
        let err = ScenarioConfig::from_toml_str("[spill]\ndir = \"d\"\nsize = 1\n").unwrap_err();
        assert!(err.to_string().contains("size"), "{err}");
    }

    #[test]
    fn sync_reads_as_words() {
        let mut s = SpillConfig::default();
        assert_eq!(s.sync_words(), "every 100 ms");
        s.sync = SpillSync::Os;
        assert_eq!(s.sync_words(), "left to the OS");
    }
}
