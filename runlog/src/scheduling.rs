//! How the operating system schedules the load generator's producer threads.

use serde::{Deserialize, Serialize};

/// The scheduling class of a soak's producer threads (scenario key
/// `producer_scheduling`).
///
/// Closed-loop producers sleep briefly after every refusal (`backoff_us`), tens of
/// thousands of times a second with 32 of them. With two processors, each of those
/// wake-ups could preempt the consumer under test in the middle of a batch: the
/// measured rate then said more about the load generator's wake-ups than about what
/// it drives. Producers in the batch class still get their fair share of the
/// processors, but only the scheduler's tick takes the processor from a running
/// thread on their behalf. Linux only: elsewhere producers keep the system's default,
/// and the run's record carries a warning saying so. Producers started in another class
/// than the normal one (under `chrt`, say) keep it.
///
/// # Examples
///
/// ```
/// use runlog::ProducerScheduling;
///
/// assert_eq!(ProducerScheduling::default(), ProducerScheduling::Batch);
/// assert_eq!(ProducerScheduling::Normal.name(), "normal");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProducerScheduling {
    /// Linux's `SCHED_BATCH` (`"batch"`): a producer waking up does not preempt a
    /// normal thread running on its processor.
    #[default]
    Batch,
    /// The class the soak itself runs in (`"normal"`): the system's default, unless it
    /// was started under another (with `chrt`, say).
    Normal,
}

impl ProducerScheduling {
    /// The name a scenario file and `--producer-scheduling` use.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            ProducerScheduling::Batch => "batch",
            ProducerScheduling::Normal => "normal",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ScenarioConfig;

    #[test]
    fn a_scenario_file_chooses_it_and_a_wrong_name_lists_the_right_ones() {
        let c = ScenarioConfig::from_toml_str("producer_scheduling = \"normal\"").unwrap();
        assert_eq!(c.producer_scheduling, ProducerScheduling::Normal);
        let err = ScenarioConfig::from_toml_str("producer_scheduling = \"fast\"")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("fast") && err.contains("batch") && err.contains("normal"),
            "{err}"
        );
    }

    /// The scenario of the record `json`, as `read_results` reads it from a file.
    fn read_back(name: &str, json: &str) -> ScenarioConfig {
        let dir = std::env::temp_dir().join(format!("runlog-scheduling-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.json"));
        std::fs::write(&path, json).unwrap();
        let config = crate::read_results(&path).unwrap().config;
        std::fs::remove_file(&path).unwrap();
        config
    }

    #[test]
    fn a_record_without_the_key_ran_normal_and_a_scenario_file_without_it_is_batch() {
        let mut record = serde_json::to_value(crate::RunResults::default()).unwrap();
        let config = record["config"].as_object_mut().unwrap();
        assert!(config.remove("producer_scheduling").is_some());
        let c = read_back("old", &record.to_string());
        assert_eq!(c.producer_scheduling, ProducerScheduling::Normal);
        let c = ScenarioConfig::from_toml_str("producers = 8").unwrap();
        assert_eq!(c.producer_scheduling, ProducerScheduling::Batch);
    }

    #[test]
    fn a_record_with_the_key_reads_as_written() {
        let record = serde_json::to_string(&crate::RunResults::default()).unwrap();
        let c = read_back("new", &record);
        assert_eq!(c.producer_scheduling, ProducerScheduling::Batch);
    }

    #[test]
    fn names_are_the_serialized_spelling() {
        for s in [ProducerScheduling::Batch, ProducerScheduling::Normal] {
            let json = serde_json::to_string(&s).expect("serializes");
            assert_eq!(json, format!("\"{}\"", s.name()));
        }
    }
}
