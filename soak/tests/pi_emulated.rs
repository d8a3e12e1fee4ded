//! Checks a run that `scripts/pi-emulate.sh` brought back from an emulated Raspberry Pi
//! (an aarch64 kernel under qemu-system-aarch64): the record is complete, says it ran on
//! aarch64 and on an emulated machine, and every accepted event is accounted for.
//!
//! It needs that run, so it is ignored by default: `scripts/pi-emulate-check.sh` makes the
//! run and calls it with `METRONOME_PI_EMULATED_RUN` set to the run directory.

use std::path::PathBuf;

use runlog::{RunDir, Status, read_hlog, read_results, read_samples};

#[test]
#[ignore = "needs a run from the emulated Pi: scripts/pi-emulate-check.sh makes one"]
fn the_emulated_pi_run_is_a_complete_aarch64_record() {
    let dir = std::env::var_os("METRONOME_PI_EMULATED_RUN")
        .map(PathBuf::from)
        .expect("METRONOME_PI_EMULATED_RUN: the run directory scripts/pi-emulate.sh brought back");
    let run = RunDir::open(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));

    // The record reads with this build's runlog: the contract held across machines.
    let r = read_results(&run.results_path()).unwrap();
    let env = &r.environment;
    assert_eq!(env.arch, "aarch64", "{env:?}");
    assert!(env.is_emulated(), "environment.emulation unset: {env:?}");
    assert!(
        env.page_size_bytes >= 4096 && env.page_size_bytes.is_power_of_two(),
        "{env:?}"
    );
    assert!(env.cpu_count >= 1 && env.total_memory_bytes > 0, "{env:?}");
    assert!(
        env.jemalloc
            .as_deref()
            .is_some_and(|j| j.contains("page 2^")),
        "jemalloc built with a fixed page size (scripts/pi-build.sh): {env:?}"
    );

    let (t, d) = (&r.totals, &r.drain);
    assert!(t.delivered > 0, "nothing delivered: {t:?}");
    assert_eq!(
        t.accepted,
        t.delivered + t.dropped + d.undelivered + d.in_flight + d.failed,
        "accepted == delivered + dropped + drain.undelivered (+ in flight + failed): {t:?} {d:?}"
    );
    assert!(r.interrupted.is_none(), "{:?}", r.interrupted);
    assert_ne!(r.assessment.overall, Status::Fail, "{:#?}", r.assessment);

    let samples = read_samples(&run.samples_path()).unwrap();
    assert!(!samples.samples.is_empty() && samples.truncated.is_none());
    assert!(!read_hlog(&run.hlog_path()).unwrap().is_empty());
    let report = std::fs::read_to_string(run.report_path()).unwrap();
    assert!(
        report.contains("EMULATED"),
        "the report's header says the run was emulated"
    );
}
