//! What machine a run happened on, for the run record.

use runlog::Environment;
use sysinfo::System;

/// Describes this machine and build. `cpus_constrained` is the `--cpus` limit,
/// if the run was pinned to fewer cores.
pub fn collect(cpus_constrained: Option<u32>) -> Environment {
    let sys = System::new().ok().map(|mut s| {
        s.refresh_memory();
        s.refresh_cpu_all();
        s
    });
    let cpu_model = sys
        .as_ref()
        .and_then(|s| s.cpus().first().map(|c| c.brand().trim().to_string()))
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| "unknown".into());
    let cpu_count = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    let cpu_count = sys
        .as_ref()
        .map_or(cpu_count, |s| (s.cpus().len() as u32).max(cpu_count));
    Environment {
        os: System::long_os_version().unwrap_or_else(|_| std::env::consts::OS.into()),
        arch: std::env::consts::ARCH.into(),
        cpu_model,
        cpu_count,
        total_memory_bytes: sys.as_ref().map_or(0, System::total_memory),
        page_size_bytes: kernel_page_size().unwrap_or(4096),
        rustc: env!("METRONOME_RUSTC").into(),
        git_rev: env!("METRONOME_GIT_REV").into(),
        jemalloc: Some(jemalloc_summary()),
        cpus_constrained,
        hostname: host_name(),
    }
}

/// This machine's host name, `unknown` if it cannot be read.
pub(crate) fn host_name() -> String {
    System::host_name().unwrap_or_else(|_| "unknown".into())
}

/// The kernel's page size, from this process's memory map (Linux).
fn kernel_page_size() -> Option<u64> {
    let smaps = std::fs::read_to_string("/proc/self/smaps").ok()?;
    let line = smaps.lines().find(|l| l.starts_with("KernelPageSize:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// jemalloc's version and the build-time settings that matter for memory figures.
fn jemalloc_summary() -> String {
    use tikv_jemalloc_ctl::{config, opt, version};
    let lg_page = env!("METRONOME_JEMALLOC_LG_PAGE");
    format!(
        "jemalloc {}; page {}; malloc_conf \"{}\"; narenas {}",
        version::read().unwrap_or("unknown"),
        if lg_page.is_empty() {
            "build default".to_string()
        } else {
            format!("2^{lg_page}")
        },
        config::malloc_conf::read().unwrap_or(""),
        opt::narenas::read().map_or_else(|_| "?".into(), |n| n.to_string()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_this_machine() {
        let env = collect(Some(1));
        assert_eq!(env.arch, std::env::consts::ARCH);
        assert!(env.cpu_count >= 1);
        assert!(env.total_memory_bytes > 0, "{env:?}");
        assert_ne!(env.cpu_model, "unknown", "{env:?}");
        assert!(env.page_size_bytes >= 4096 && env.page_size_bytes.is_power_of_two());
        assert_eq!(env.cpus_constrained, Some(1));
        assert!(env.rustc.starts_with("rustc"), "{}", env.rustc);
        assert!(
            env.jemalloc
                .as_deref()
                .is_some_and(|j| j.starts_with("jemalloc"))
        );
    }
}
