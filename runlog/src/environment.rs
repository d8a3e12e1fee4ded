//! The machine a run happened on (the soak crate fills it in).

use serde::{Deserialize, Serialize};

/// Where and with what a run was made: enough to tell whether two runs are comparable.
///
/// ```
/// let env = runlog::Environment { cpu_count: 2, os: "linux".into(), ..Default::default() };
/// assert_eq!(env.jemalloc, None);
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
}
