//! The machine a run happened on (the soak crate fills it in).

use serde::{Deserialize, Serialize};

/// Where and with what a run was made: enough to tell whether two runs are comparable.
///
/// ```
/// let env = runlog::Environment { cpu_count: 2, os: "linux".into(), ..Default::default() };
/// assert_eq!(env.jemalloc, None);
/// assert!(!env.is_emulated());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Environment {
    /// Operating system, e.g. `"linux"`.
    pub os: String,
    /// CPU architecture, e.g. `"x86_64"`.
    pub arch: String,
    /// CPU brand string.
    pub cpu_model: String,
    /// Logical CPUs of the machine.
    pub cpu_count: u32,
    /// Physical memory.
    pub total_memory_bytes: u64,
    /// Memory page size.
    pub page_size_bytes: u64,
    /// `rustc --version` of the build.
    pub rustc: String,
    /// Git revision of the build (with a `-dirty` suffix when the tree was modified).
    pub git_rev: String,
    /// jemalloc configuration summary, when jemalloc is the allocator.
    #[serde(default)]
    pub jemalloc: Option<String>,
    /// CPUs the run was restricted to, when it was.
    #[serde(default)]
    pub cpus_constrained: Option<u32>,
    /// Host name of the machine.
    #[serde(default)]
    pub hostname: String,
    /// The emulated machine the run was made on, when it was one, e.g. `"qemu-system-aarch64
    /// 7.2 (TCG on x86_64), -M virt -cpu cortex-a72; device tree: linux,dummy-virt"`: its
    /// figures are the emulator's, not the hardware's. `None` on hardware, and in records
    /// written before the field existed.
    #[serde(default)]
    pub emulation: Option<String>,
}

impl Environment {
    /// Whether the run was made on an emulated machine (see [`Environment::emulation`]).
    #[must_use]
    pub fn is_emulated(&self) -> bool {
        self.emulation.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_from_before_the_emulation_field_reads_as_hardware() {
        let old = r#"{"os":"linux","arch":"aarch64","cpu_model":"Cortex-A72","cpu_count":4,
            "total_memory_bytes":4000000000,"page_size_bytes":4096,"rustc":"rustc 1.96.0",
            "git_rev":"5bf054b","jemalloc":null,"cpus_constrained":null,"hostname":"pi"}"#;
        let env: Environment = serde_json::from_str(old).unwrap();
        assert_eq!(env.emulation, None);
        assert!(!env.is_emulated());
        assert_eq!(env.cpu_model, "Cortex-A72");
    }

    #[test]
    fn emulation_is_written_and_read_back() {
        let env = Environment {
            arch: "aarch64".into(),
            emulation: Some("qemu-system-aarch64 -M virt".into()),
            ..Default::default()
        };
        let json = serde_json::to_value(&env).unwrap();
        assert_eq!(json["emulation"], "qemu-system-aarch64 -M virt");
        let back: Environment = serde_json::from_value(json).unwrap();
        assert_eq!(back, env);
        assert!(back.is_emulated());
        let hardware = serde_json::to_value(Environment::default()).unwrap();
        assert_eq!(hardware["emulation"], serde_json::Value::Null);
    }
}
