//! A run made on an emulated machine says so in the report's header and in a comparison,
//! so its figures are never taken for the hardware's.

mod common;

use common::{copy_fixture, fixture};
use reports::{CompareOptions, Comparison, RunRecord, Side, render_html};

const VIRT: &str = "qemu-system-aarch64 7.2 (TCG on x86_64), -M virt -cpu cortex-a72; device tree: linux,dummy-virt";

/// The `basic` fixture, copied, as if it had run on an emulated Cortex-A72.
fn emulated_record() -> (tempfile::TempDir, RunRecord) {
    let dir = copy_fixture("basic");
    let path = dir.path().join("results.json");
    let mut results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let env = &mut results["environment"];
    env["arch"] = "aarch64".into();
    env["cpu_model"] = "Cortex-A72".into();
    env["cpu_count"] = 4.into();
    env["page_size_bytes"] = 16384.into();
    env["emulation"] = VIRT.into();
    std::fs::write(&path, serde_json::to_string(&results).unwrap()).unwrap();
    let record = RunRecord::load(dir.path()).unwrap();
    (dir, record)
}

/// The header band of a report.
fn header(html: &str) -> &str {
    &html[html.find("id=\"summary\"").unwrap()..html.find("</header>").unwrap()]
}

#[test]
fn the_header_of_an_emulated_run_says_emulated_and_by_what() {
    let (_dir, record) = emulated_record();
    let html = render_html(&record);
    let band = header(&html);
    let machine = &band[band.find("id=\"machine\"").expect("a machine line")..];
    assert!(machine.contains("EMULATED"), "{machine}");
    for part in ["aarch64", "Cortex-A72", "4 CPUs", "16.0 KiB pages"] {
        assert!(machine.contains(part), "{part} in {machine}");
    }
    assert!(
        machine.contains("device tree: linux,dummy-virt"),
        "{machine}"
    );
    assert!(machine.contains("not the hardware"), "{machine}");
    // And the environment table lists it.
    let table = &html[html.find("<table id=\"table-environment\"").unwrap()..];
    assert!(table.contains("emulation") && table.contains("TCG on x86_64"));
}

#[test]
fn the_header_of_a_run_on_hardware_names_the_machine_without_a_badge() {
    // The fixture was written before `emulation` existed: it still reads, as hardware.
    let record = RunRecord::load(&fixture("basic")).unwrap();
    assert_eq!(record.results.as_ref().unwrap().environment.emulation, None);
    let html = render_html(&record);
    let band = header(&html);
    let machine = &band[band.find("id=\"machine\"").expect("a machine line")..];
    assert!(machine.contains("x86_64") && machine.contains("4.0 KiB pages"));
    assert!(!band.contains("EMULATED"), "{band}");
}

#[test]
fn comparing_an_emulated_run_with_one_on_hardware_lists_the_difference() {
    let (_dir, emulated) = emulated_record();
    let hardware = RunRecord::load(&fixture("basic")).unwrap();
    let c = Comparison::evaluate(
        &Side::single(hardware),
        &Side::single(emulated),
        &CompareOptions::default(),
    )
    .unwrap();
    let emulation = c
        .environment_differences
        .iter()
        .find(|d| d.key == "emulation")
        .expect("emulation listed among the environment differences");
    assert!(
        emulation.candidate.contains("linux,dummy-virt"),
        "{emulation:?}"
    );
}
