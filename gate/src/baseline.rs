//! The baseline file: a contract that other tools read.
//!
//! ```json
//! {"metrics": {"<name>": {"value": 412.0, "unit": "instructions/event",
//!                         "lower_is_better": true, "threshold_pct": 5.0}}}
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context as _, Result, bail};
use serde::{Deserialize, Serialize};

/// A set of metrics with their reference values and tolerances.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Baseline {
    /// Metrics by name.
    pub(crate) metrics: BTreeMap<String, Metric>,
}

/// One metric's reference value and how far it may move.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Metric {
    /// The reference value.
    pub(crate) value: f64,
    /// What `value` counts, e.g. `instructions/event`.
    pub(crate) unit: String,
    /// Whether a smaller value is the better one.
    pub(crate) lower_is_better: bool,
    /// How far (percent of `value`) it may move the wrong way and still pass.
    pub(crate) threshold_pct: f64,
}

impl Baseline {
    /// Reads and checks a baseline file.
    ///
    /// # Errors
    /// When the file cannot be read, is not in the baseline format, or holds
    /// a value or threshold that is not a finite number (threshold >= 0).
    pub(crate) fn load(path: &Path) -> Result<Baseline> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the baseline {}", path.display()))?;
        let baseline: Baseline = serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is not a baseline ({{\"metrics\": {{name: {{value, unit, \
                 lower_is_better, threshold_pct}}}}}})",
                path.display()
            )
        })?;
        baseline
            .check()
            .with_context(|| format!("in {}", path.display()))?;
        Ok(baseline)
    }

    fn check(&self) -> Result<()> {
        for (name, metric) in &self.metrics {
            if !metric.value.is_finite() {
                bail!(
                    "metric {name}: value {} is not a finite number",
                    metric.value
                );
            }
            if !(metric.threshold_pct.is_finite() && metric.threshold_pct >= 0.0) {
                bail!(
                    "metric {name}: threshold_pct {} is not a number >= 0",
                    metric.threshold_pct
                );
            }
        }
        Ok(())
    }

    /// Writes the baseline as pretty JSON, with a final newline.
    ///
    /// # Errors
    /// When the file cannot be written.
    pub(crate) fn save(&self, path: &Path) -> Result<()> {
        let mut text = serde_json::to_string_pretty(self).context("baseline to JSON")?;
        text.push('\n');
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("gate-baseline-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    #[test]
    fn round_trips_in_the_contract_format() {
        let mut b = Baseline::default();
        b.metrics.insert(
            "x.instructions_per_event".into(),
            Metric {
                value: 412.5,
                unit: "instructions/event".into(),
                lower_is_better: true,
                threshold_pct: 5.0,
            },
        );
        let path = temp("rt.json");
        b.save(&path).unwrap();
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let m = &json["metrics"]["x.instructions_per_event"];
        assert_eq!(m["value"], 412.5);
        assert_eq!(m["unit"], "instructions/event");
        assert_eq!(m["lower_is_better"], true);
        assert_eq!(m["threshold_pct"], 5.0);
        assert_eq!(Baseline::load(&path).unwrap(), b);
    }

    #[test]
    fn bad_files_are_clear_errors() {
        let missing = Baseline::load(&temp("missing.json")).unwrap_err();
        assert!(format!("{missing:#}").contains("cannot read the baseline"));
        for (name, text, expect) in [
            ("garbage.json", "not json", "is not a baseline"),
            ("nometrics.json", "{}", "is not a baseline"),
            (
                "neg.json",
                r#"{"metrics":{"m":{"value":1,"unit":"u","lower_is_better":true,"threshold_pct":-1}}}"#,
                "threshold_pct -1",
            ),
        ] {
            let path = temp(name);
            std::fs::write(&path, text).unwrap();
            let err = format!("{:#}", Baseline::load(&path).unwrap_err());
            assert!(err.contains(expect), "{name}: {err}");
        }
    }
}
