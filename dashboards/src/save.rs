//! `s`: the live limits merged into the scenario, saved as a TOML scenario file.

use std::fs::OpenOptions;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use runlog::{ConfigError, Limits, RunlogError, ScenarioConfig};

use crate::app::App;
use crate::log::LogKind;

/// How many `tuned-<n>.toml` names are tried before giving up.
const MAX_SAVES: u32 = 1000;

/// The scenario with the live limits in place of its own.
///
/// ```
/// use runlog::{Limits, ScenarioConfig};
/// let scenario = ScenarioConfig { producers: 4, ..Default::default() };
/// let limits = Limits { interval_us: 2_000, ..Limits::from_config(&scenario) };
/// let tuned = dashboards::merge_limits(&scenario, &limits);
/// assert_eq!((tuned.interval_us, tuned.producers), (2_000, 4));
/// ```
#[must_use]
pub fn merge_limits(scenario: &ScenarioConfig, limits: &Limits) -> ScenarioConfig {
    ScenarioConfig {
        interval_us: limits.interval_us,
        max_batch_bytes: limits.max_batch_bytes,
        max_batch_items: limits.max_batch_items,
        max_buffered_bytes: limits.max_buffered_bytes,
        rate_per_sec: limits.rate_per_sec,
        consumer_delay_us: limits.consumer_delay_us,
        ..scenario.clone()
    }
}

/// Why a tuned scenario was not saved.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SaveError {
    #[error("the tuned scenario is invalid: {0}")]
    Invalid(#[from] ConfigError),
    #[error(transparent)]
    Toml(#[from] RunlogError),
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
}

/// Writes `scenario` to the first free `dir/tuned-<n>.toml` (n from 1), never overwriting.
pub(crate) fn write_tuned(dir: &Path, scenario: &ScenarioConfig) -> Result<PathBuf, SaveError> {
    scenario.validate()?;
    let text = scenario.to_toml_string()?;
    for n in 1..=MAX_SAVES {
        let path = dir.join(format!("tuned-{n}.toml"));
        let file = OpenOptions::new().write(true).create_new(true).open(&path);
        match file {
            Ok(mut file) => {
                return file
                    .write_all(text.as_bytes())
                    .map(|()| path.clone())
                    .map_err(|source| SaveError::Io { path, source });
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(source) => return Err(SaveError::Io { path, source }),
        }
    }
    let path = dir.join("tuned-*.toml");
    let source = io::Error::other(format!("{MAX_SAVES} tuned scenarios already saved"));
    Err(SaveError::Io { path, source })
}

impl App {
    /// `s`: saves the live limits merged into the scenario, and says where in the log.
    pub(crate) fn save_tuned(&mut self) {
        let Some(limits) = self.limits.clone() else {
            self.status = Some("no limits known yet: nothing to save".to_owned());
            return;
        };
        let dir = self.save_dir.clone().unwrap_or_else(|| PathBuf::from("."));
        let (base, note) = match &self.scenario {
            Some(scenario) => (scenario.clone(), ""),
            None => (
                ScenarioConfig::default(),
                " (scenario unknown: other keys are the defaults)",
            ),
        };
        match write_tuned(&dir, &merge_limits(&base, &limits)) {
            Ok(path) => {
                let text = format!(
                    "saved {}{note}: rerun with {} --config {}",
                    path.display(),
                    self.program,
                    path.display()
                );
                self.push_log(LogKind::Info, text);
                self.status = Some(format!("saved {}{note}", path.display()));
            }
            Err(err) => self.note(LogKind::Warning, format!("not saved: {err}")),
        }
    }
}
