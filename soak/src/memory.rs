//! Heap (jemalloc) and process (sysinfo) memory and CPU, read by the sampler.

use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};
use tikv_jemalloc_ctl::{epoch, stats};

/// One reading of memory and CPU.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MemoryReading {
    /// jemalloc `stats.allocated`: bytes the program holds.
    pub heap_allocated_bytes: u64,
    /// jemalloc `stats.resident`: bytes of physical pages the allocator maps.
    pub heap_resident_bytes: u64,
    /// The process's resident set size.
    pub rss_bytes: u64,
    /// CPU use since the previous reading, percent of one core.
    pub cpu_percent: f64,
}

/// Reads memory and CPU. jemalloc's epoch is advanced only here, from the
/// one sampler thread that owns the probe.
pub struct MemoryProbe {
    system: Option<System>,
    pid: Option<Pid>,
}

impl MemoryProbe {
    /// A probe for this process.
    pub fn new() -> Self {
        let mut probe = MemoryProbe {
            system: System::new().ok(),
            pid: sysinfo::get_current_pid().ok(),
        };
        // The first CPU reading has no previous one to compare with.
        probe.refresh_process();
        probe
    }

    fn refresh_process(&mut self) -> Option<(u64, f64)> {
        let (system, pid) = (self.system.as_mut()?, self.pid?);
        system.refresh_processes_specifics(
            ProcessesToUpdate::Some(&[pid]),
            false,
            ProcessRefreshKind::nothing().with_memory().with_cpu(),
        );
        let process = system.process(pid)?;
        Some((process.memory(), f64::from(process.cpu_usage())))
    }

    /// Takes a reading. Figures that cannot be read on this platform are 0.
    pub fn read(&mut self) -> MemoryReading {
        let _ = epoch::advance();
        let (rss_bytes, cpu_percent) = self.refresh_process().unwrap_or_default();
        MemoryReading {
            heap_allocated_bytes: stats::allocated::read().map_or(0, |b| b as u64),
            heap_resident_bytes: stats::resident::read().map_or(0, |b| b as u64),
            rss_bytes,
            cpu_percent,
        }
    }
}

impl Default for MemoryProbe {
    fn default() -> Self {
        Self::new()
    }
}
