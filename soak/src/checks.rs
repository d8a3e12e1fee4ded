//! What is checked before anything is created: a run that cannot work is refused (exit 2)
//! before its directory, its `latest` link or its threads exist.

use std::path::{Component, Path, PathBuf};

use loadgen::PayloadSource;
use runlog::{RunDir, ScenarioConfig, TargetKind};

/// The most producer threads per core the run allows: past it a 2-core machine spends
/// its time switching between producers, the sampler is starved and a "1 s" run takes
/// minutes.
pub const MAX_PRODUCERS_PER_CORE: u32 = 128;

/// A scenario value this machine (or this payload) refuses: the scenario key, its value and
/// why, with what is allowed. How the value is named depends on where it came from (the
/// flag and what was typed, or the scenario file and key): see [`Refusal::named`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} {}", self.flag_name(), self.why)]
pub struct Refusal {
    /// The scenario key (`cpus`, `producers`, `payload`, `max_buffered_bytes`).
    pub field: &'static str,
    /// Its value in the scenario.
    pub value: String,
    /// Why it is refused, with the allowed range; follows the value's name.
    pub why: String,
}

impl Refusal {
    /// The message, naming the value as `name` (`--cpus 64`, `file.toml: \`cpus\` = 64`).
    #[must_use]
    pub fn named(&self, name: &str) -> String {
        format!("{name} {}", self.why)
    }

    /// The value named by its flag (when nothing says where it came from).
    fn flag_name(&self) -> String {
        let args = crate::cli::ScenarioArgs::default();
        match crate::explain::flag_of(self.field, &args) {
            Some((flag, _)) => format!("{flag} {}", self.value),
            None => format!("`{}` = {}", self.field, self.value),
        }
    }
}

/// Every check, in order; the first that fails says why (naming the flag): the machine's
/// limits, the output directory, the disk tier's directory (apart from the output).
///
/// # Errors
///
/// A one-line message for the user.
pub fn before_run(
    config: &ScenarioConfig,
    payload: &PayloadSource,
    out: &Path,
) -> Result<(), String> {
    machine(config, payload).map_err(|e| e.to_string())?;
    RunDir::check_base(out).map_err(|e| format!("--out {}: {e}", out.display()))?;
    // What can be told of the disk tier's directory without touching it (a repeated run
    // checks it here, before its group directory exists).
    if let Some(spill) = &config.spill {
        crate::spill::check_dir(&spill.dir)?;
        apart(out, &spill.dir)?;
    }
    Ok(())
}

/// Refuses an output directory and a disk tier directory that are one and the same, or
/// one inside the other (through symbolic links too): the tier's directory holds only its
/// own files (run directories there are foreign, and the next run on it is refused), and
/// an output directory is one people clear out, while a tier may hold events not yet
/// delivered.
///
/// # Errors
///
/// One line naming both, as `--out OUT` and `--spill-dir DIR`.
pub fn apart(out: &Path, spill: &Path) -> Result<(), String> {
    let (o, s) = (resolved(out), resolved(spill));
    let (out_name, spill_name) = (
        format!("--out {}", out.display()),
        format!("--spill-dir {}", spill.display()),
    );
    if o == s {
        return Err(format!(
            "{spill_name} and {out_name} are the same directory: the disk tier's directory \
             holds only its own files (the run directories would be foreign to it, and the \
             next run on it refused): give the tier a directory of its own"
        ));
    }
    if o.starts_with(&s) {
        return Err(format!(
            "{out_name} is inside {spill_name}: the disk tier's directory holds only its \
             own files (the run directories would be foreign to it, and the next run on it \
             refused): give the tier a directory of its own"
        ));
    }
    if s.starts_with(&o) {
        return Err(format!(
            "{spill_name} is inside {out_name}: the output directory holds runs, and is \
             cleared as such, while the disk tier may hold events not yet delivered: give \
             the tier a directory outside it"
        ));
    }
    Ok(())
}

/// `path` as it would be reached: absolute, the part of it that exists with its symbolic
/// links resolved, the rest appended (`.` and `..` worked out as written).
fn resolved(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let parts: Vec<Component<'_>> = absolute.components().collect();
    for existing in (0..=parts.len()).rev() {
        let head: PathBuf = parts[..existing].iter().collect();
        let Ok(mut out) = head.canonicalize() else {
            continue;
        };
        for part in &parts[existing..] {
            match part {
                Component::ParentDir => {
                    out.pop();
                }
                Component::Normal(name) => out.push(name),
                Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
            }
        }
        return out;
    }
    absolute
}

/// The checks of the machine's limits: cores, producers per core, a payload that fits (in
/// memory, and on disk under write-ahead), memory.
///
/// # Errors
///
/// The first value refused.
pub fn machine(config: &ScenarioConfig, payload: &PayloadSource) -> Result<(), Refusal> {
    let cores = cores(config)?;
    producers(config, cores)?;
    payload_fits(config, payload)?;
    payload_fits_disk(config, payload)?;
    memory(config)
}

/// The cores the run may use: `--cpus`, or every core this process may run on.
fn cores(config: &ScenarioConfig) -> Result<u32, Refusal> {
    // Unknown (the mask cannot be read): no limit here; pinning says why it fails.
    let available = crate::affinity::allowed_cores().map_or(usize::MAX, |cores| cores.len());
    let available = u32::try_from(available).unwrap_or(u32::MAX).max(1);
    match config.cpus {
        Some(cpus) if cpus > available => Err(Refusal {
            field: "cpus",
            value: cpus.to_string(),
            why: format!("is out of range (allowed: 1..={available} on this machine)"),
        }),
        Some(cpus) => Ok(cpus),
        None => Ok(available),
    }
}

fn producers(config: &ScenarioConfig, cores: u32) -> Result<(), Refusal> {
    let most = cores.saturating_mul(MAX_PRODUCERS_PER_CORE);
    if config.producers > most {
        return Err(Refusal {
            field: "producers",
            value: config.producers.to_string(),
            why: format!(
                "is more than this machine can run: at most {most} ({MAX_PRODUCERS_PER_CORE} per core, {cores} cores; allowed: 1..={most}); \
                 beyond that the producers starve the sampler and the run's figures mean nothing"
            ),
        });
    }
    Ok(())
}

/// Refuses a payload whose events can never be admitted: larger than the buffered limit,
/// every one of them would be refused as too large and nothing would be delivered.
fn payload_fits(config: &ScenarioConfig, payload: &PayloadSource) -> Result<(), Refusal> {
    if config.target != TargetKind::Dispatcher {
        return Ok(());
    }
    let Some(largest) = payload.max_size() else {
        return Ok(());
    };
    let limit = config.max_buffered_bytes;
    if largest as u64 > limit {
        return Err(Refusal {
            field: "payload",
            value: config.payload.clone(),
            why: format!(
                "has events of up to {}, which do not fit in the buffered limit of {}: \
                 the dispatcher would refuse them as too large (raise the buffered limit or use smaller payloads)",
                crate::human::bytes(largest as u64),
                crate::human::bytes(limit),
            ),
        });
    }
    Ok(())
}

/// Refuses, under write-ahead (every event goes through the disk), a payload whose largest
/// events cannot fit the disk budget even alone: the dispatcher would refuse every one of
/// them as too large for the disk, as it refuses one larger than the buffered limit.
fn payload_fits_disk(config: &ScenarioConfig, payload: &PayloadSource) -> Result<(), Refusal> {
    let Some(spill) = config.spill.as_ref().filter(|s| s.write_ahead) else {
        return Ok(());
    };
    if config.target != TargetKind::Dispatcher {
        return Ok(());
    }
    let Some(largest) = payload.max_size() else {
        return Ok(());
    };
    let needed = crate::spill::disk_bytes_for(largest as u64);
    if needed > spill.max_disk_bytes {
        return Err(Refusal {
            field: "spill.max_disk_bytes",
            value: spill.max_disk_bytes.to_string(),
            why: format!(
                "cannot take a single event of the payload ({}) under write-ahead: every \
                 event goes through the disk, and its largest need {} there ({} of payload \
                 and {} B of headers: the event's, its record's and frame's, and a new \
                 segment's), so the dispatcher would refuse every one of them (raise the disk \
                 budget to at least {}, use smaller payloads, or leave out \
                 --spill-write-ahead)",
                config.payload,
                exact_bytes(needed),
                crate::human::bytes(largest as u64),
                crate::spill::EVENT_DISK_OVERHEAD,
                exact_bytes(needed),
            ),
        });
    }
    Ok(())
}

/// `8.1 KiB (8,247 B)`: a size that decides a refusal, rounded and exact.
fn exact_bytes(n: u64) -> String {
    let rounded = crate::human::bytes(n);
    if n < 1024 {
        rounded
    } else {
        format!("{rounded} ({} B)", runlog::human::grouped(n))
    }
}

/// Refuses a buffered limit above half of the machine's memory.
fn memory(config: &ScenarioConfig) -> Result<(), Refusal> {
    let total = crate::tune::total_memory_bytes();
    if total > 0 && config.max_buffered_bytes > total / 2 {
        return Err(Refusal {
            field: "max_buffered_bytes",
            value: config.max_buffered_bytes.to_string(),
            why: format!(
                "is more than half of this machine's {} of memory (allowed: 1 B..={})",
                crate::human::bytes(total),
                crate::human::bytes(total / 2)
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_output_and_a_disk_tier_that_overlap_are_refused() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let t = tmp.path();
        std::fs::create_dir(t.join("out")).expect("mkdir");
        std::os::unix::fs::symlink(t.join("out"), t.join("link")).expect("symlink");
        let refused = [
            (t.join("out"), t.join("out"), "are the same directory"),
            (t.join("out"), t.join("link"), "are the same directory"),
            (t.join("out"), t.join("out/./spill"), "is inside --out"),
            (t.join("new/.."), t.to_path_buf(), "are the same directory"),
            (t.join("link/runs"), t.join("out"), "is inside --spill-dir"),
            (
                t.join("out/x/../runs"),
                t.join("out/runs/spill"),
                "is inside --out",
            ),
        ];
        for (out, spill, why) in refused {
            let err = apart(&out, &spill).unwrap_err();
            assert!(
                err.contains(why),
                "{} {}: {err}",
                out.display(),
                spill.display()
            );
            assert!(err.contains(&format!("--out {}", out.display())), "{err}");
        }
        assert!(apart(&t.join("out"), &t.join("spill")).is_ok());
        assert!(apart(&t.join("out"), &t.join("outside")).is_ok());
        assert!(apart(&t.join("out/runs"), &t.join("out/spill")).is_ok());
    }

    #[test]
    fn under_write_ahead_the_largest_event_must_fit_the_disk_budget() {
        let payload = |spec: &str| {
            PayloadSource::load(&spec.parse().expect("a payload shape")).expect("loads")
        };
        let fixed = payload("fixed:8KiB");
        let needed = crate::spill::disk_bytes_for(8192);
        let mut config = ScenarioConfig {
            payload: "fixed:8KiB".into(),
            spill: Some(runlog::SpillConfig {
                dir: "spill".into(),
                max_disk_bytes: needed,
                write_ahead: true,
                ..runlog::SpillConfig::default()
            }),
            ..ScenarioConfig::default()
        };
        assert!(payload_fits_disk(&config, &fixed).is_ok());
        let spill = config.spill.as_mut().expect("a tier");
        spill.max_disk_bytes = needed - 1;
        let refusal = payload_fits_disk(&config, &fixed).unwrap_err();
        assert_eq!(refusal.field, "spill.max_disk_bytes");
        assert!(refusal.why.contains("8.1 KiB (8,247 B)"), "{}", refusal.why);
        // Overflow only: an event the disk cannot take stays in memory.
        config.spill.as_mut().expect("a tier").write_ahead = false;
        assert!(payload_fits_disk(&config, &fixed).is_ok());
    }
}
