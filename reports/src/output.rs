//! Where a comparison may be written: never over a run's record, and (unless asked) only
//! over a previous comparison page.

use std::path::Path;

use crate::error::CompareError;

/// The files of a run or group directory: never overwritten by a comparison, even with
/// `overwrite`.
const RECORD_FILES: &[&str] = &[
    "results.json",
    "samples.jsonl",
    "latency.hlog",
    "run.lock",
    crate::report::REPORT_FILE,
    runlog::GROUP_FILE,
];

/// Refuses to write a comparison over anything but a previous comparison page (or, with
/// `overwrite`, over anything but a run's record files and special files).
pub(crate) fn check_output(out: &Path, overwrite: bool) -> Result<(), CompareError> {
    let refuse_as = |why: &str, overridable: bool| {
        Err(CompareError::Output {
            path: out.to_path_buf(),
            why: why.to_owned(),
            overridable,
        })
    };
    let refuse = |why: &str| refuse_as(why, false);
    let name = out.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let in_record_dir = out.parent().is_some_and(is_record_dir);
    // Not even a record file a run directory does not have yet (a single run's group.json).
    if RECORD_FILES.contains(&name) && in_record_dir {
        return refuse("it is a run's record file");
    }
    let meta = match std::fs::metadata(out) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return refuse(&e.to_string()),
    };
    if !meta.is_file() {
        return refuse("it is not a regular file");
    }
    if RECORD_FILES.contains(&name) {
        // One left outside a run directory is still someone's record.
        return refuse("it is a run's record file");
    }
    if is_compare_page(out) {
        return Ok(());
    }
    // Inside a run or group directory a comparison replaces only its own pages.
    if in_record_dir {
        return refuse("it is a file of a run's directory, not a comparison page");
    }
    if overwrite {
        return Ok(());
    }
    refuse_as("it is not a comparison page", true)
}

/// Whether `dir` holds a run's (or a group's) record.
fn is_record_dir(dir: &Path) -> bool {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    ["results.json", "samples.jsonl", runlog::GROUP_FILE]
        .iter()
        .any(|name| std::fs::symlink_metadata(dir.join(name)).is_ok())
}

/// Whether `path` starts like a page `compare` wrote.
fn is_compare_page(path: &Path) -> bool {
    use std::io::Read as _;
    let mut head = Vec::with_capacity(1024);
    let read = runlog::open_regular(path).and_then(|f| f.take(1024).read_to_end(&mut head));
    let head = String::from_utf8_lossy(&head);
    read.is_ok()
        && (head.contains(&format!(
            "<meta name=\"generator\" content=\"{}\">",
            crate::page::COMPARE_GENERATOR
        )) || head.contains("<title>Metronome comparison "))
}
