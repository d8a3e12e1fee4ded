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
        .filter(|b| !b.is_empty() && b != "unknown")
        .or_else(|| {
            let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").ok()?;
            cpuinfo_model(&cpuinfo)
        })
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
        emulation: emulation(),
    }
}

/// The CPU as `/proc/cpuinfo` names it, for a core sysinfo has no name for (an Arm part
/// it does not know, or QEMU's `-cpu max`): its `model name`, or else its implementer and
/// part numbers.
fn cpuinfo_model(cpuinfo: &str) -> Option<String> {
    let field = |key: &str| {
        cpuinfo.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == key && !v.trim().is_empty()).then(|| v.trim().to_owned())
        })
    };
    field("model name").or_else(|| {
        let (implementer, part) = (field("CPU implementer")?, field("CPU part")?);
        Some(format!("CPU implementer {implementer}, part {part}"))
    })
}

/// The variable through which a launcher says how it emulates the machine
/// (`scripts/pi-emulate.sh` sets it inside the guest).
pub const EMULATION_VAR: &str = "METRONOME_EMULATION";

/// Device tree `compatible` strings of boards that exist only in an emulator, with a name.
const EMULATED_BOARDS: &[(&str, &str)] = &[("linux,dummy-virt", "QEMU virt board")];

/// The emulated machine this run is on, or `None` on hardware: what the launcher says
/// ([`EMULATION_VAR`]) and what the kernel's device tree says.
fn emulation() -> Option<String> {
    let told = std::env::var(EMULATION_VAR).ok();
    let compatible = std::fs::read("/sys/firmware/devicetree/base/compatible").ok();
    describe_emulation(told.as_deref(), compatible.as_deref())
}

/// Combines a launcher's description (`told`) and the device tree's `compatible`
/// property (NUL-separated strings) into the record's `emulation`; `None` when neither
/// says the machine is emulated.
pub(crate) fn describe_emulation(told: Option<&str>, compatible: Option<&[u8]>) -> Option<String> {
    let told = told.map(str::trim).filter(|t| !t.is_empty());
    let board = compatible.and_then(|c| {
        c.split(|b| *b == 0)
            .filter_map(|s| std::str::from_utf8(s).ok())
            .find_map(|s| EMULATED_BOARDS.iter().find(|(id, _)| *id == s))
    });
    match (told, board) {
        (Some(t), Some((id, _))) => Some(format!("{t}; device tree: {id}")),
        (Some(t), None) => Some(t.to_owned()),
        (None, Some((id, name))) => Some(format!("{name} (device tree: {id})")),
        (None, None) => None,
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
        c_text(version::read().unwrap_or("unknown")),
        if lg_page.is_empty() {
            "build default".to_string()
        } else {
            format!("2^{lg_page}")
        },
        c_text(config::malloc_conf::read().unwrap_or("")),
        opt::narenas::read().map_or_else(|_| "?".into(), |n| n.to_string()),
    )
}

/// jemalloc's strings come with their C terminator: a NUL must never reach the record.
fn c_text(s: &str) -> &str {
    s.split('\0').next().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_jemalloc_summary_carries_no_nul() {
        let summary = jemalloc_summary();
        assert!(!summary.contains('\0'), "{summary:?}");
        assert!(summary.starts_with("jemalloc 5."), "{summary:?}");
        assert_eq!(c_text("5.3\0"), "5.3");
        assert_eq!(c_text(""), "");
    }

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

    #[test]
    fn an_arm_core_without_a_name_is_named_by_its_numbers() {
        let max = "processor\t: 0\nBogoMIPS\t: 125.00\nFeatures\t: fp asimd atomics\n\
                   CPU implementer\t: 0x00\nCPU architecture: 8\nCPU variant\t: 0x0\n\
                   CPU part\t: 0x051\nCPU revision\t: 0\n";
        assert_eq!(
            cpuinfo_model(max).as_deref(),
            Some("CPU implementer 0x00, part 0x051")
        );
        let x86 = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R)\n";
        assert_eq!(cpuinfo_model(x86).as_deref(), Some("Intel(R) Xeon(R)"));
        assert_eq!(cpuinfo_model("processor\t: 0\n"), None);
    }

    #[test]
    fn the_qemu_virt_board_is_recognised_from_its_device_tree() {
        let virt = b"linux,dummy-virt\0";
        assert_eq!(
            describe_emulation(None, Some(virt)).as_deref(),
            Some("QEMU virt board (device tree: linux,dummy-virt)")
        );
        assert_eq!(
            describe_emulation(Some(" qemu-system-aarch64 (TCG) "), Some(virt)).as_deref(),
            Some("qemu-system-aarch64 (TCG); device tree: linux,dummy-virt")
        );
    }

    #[test]
    fn a_real_board_is_not_emulated_unless_a_launcher_says_so() {
        let pi4 = b"raspberrypi,4-model-b\0brcm,bcm2711\0";
        assert_eq!(describe_emulation(None, Some(pi4)), None);
        assert_eq!(describe_emulation(None, None), None);
        assert_eq!(describe_emulation(Some(""), Some(pi4)), None);
        assert_eq!(
            describe_emulation(Some("qemu-x86_64"), None).as_deref(),
            Some("qemu-x86_64")
        );
    }
}
