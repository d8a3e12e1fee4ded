//! Runs one workload under valgrind's callgrind and reads what it counted.
//!
//! Callgrind counts guest instructions (`Ir`), which do not depend on the
//! machine's load: the same binary on the same input counts the same. It
//! collects only inside [`MEASURED_SYMBOL`] (`--collect-atstart=no` plus
//! `--toggle-collect`), and writes its totals to an out file whose header
//! names the events (`events: Ir`) and whose `totals:` (or older
//! `summary:`) line holds one number per event.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, bail};

use crate::workloads::{MEASURED_SYMBOL, Workload};

/// How to start valgrind, and where its out files go.
#[derive(Debug, Clone)]
pub(crate) struct Callgrind {
    /// The valgrind executable.
    pub(crate) valgrind: PathBuf,
    /// This binary, run under valgrind with `workload NAME EVENTS`.
    pub(crate) exe: PathBuf,
    /// Where the out files are written (under `target/`).
    pub(crate) out_dir: PathBuf,
}

/// What one run under callgrind counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Counted {
    /// Instructions executed inside the measured region.
    pub(crate) instructions: u64,
    /// Allocations inside the measured region, as the workload reported.
    pub(crate) allocations: u64,
}

impl Callgrind {
    /// Runs `workload` with `events` measured events under callgrind.
    ///
    /// # Errors
    /// When valgrind cannot be started or fails, the workload fails, or the
    /// out file or the workload's report cannot be read.
    pub(crate) fn count(&self, workload: Workload, events: u64) -> Result<Counted> {
        let out_file = self
            .out_dir
            .join(format!("callgrind.{}.{events}.out", workload.name()));
        let output = Command::new(&self.valgrind)
            .arg("--tool=callgrind")
            .arg("--quiet")
            .arg(format!("--callgrind-out-file={}", out_file.display()))
            .arg("--collect-atstart=no")
            .arg(format!("--toggle-collect=*{MEASURED_SYMBOL}*"))
            .arg(&self.exe)
            .args(["workload", workload.name(), &events.to_string()])
            .output()
            .with_context(|| format!("cannot start {}", self.valgrind.display()))?;
        if !output.status.success() {
            bail!(
                "{} with {events} events under callgrind failed ({}):\n{}",
                workload.name(),
                output.status,
                tail(&String::from_utf8_lossy(&output.stderr), 20)
            );
        }
        let stdout = String::from_utf8_lossy(&output.stdout);
        let allocations = parse_allocations(&stdout)
            .with_context(|| format!("{}: no allocation count in its output", workload.name()))?;
        let text = std::fs::read_to_string(&out_file)
            .with_context(|| format!("cannot read {}", out_file.display()))?;
        let instructions = parse_total_ir(&text)
            .with_context(|| format!("cannot read the totals of {}", out_file.display()))?;
        if instructions == 0 {
            bail!(
                "callgrind counted nothing inside {MEASURED_SYMBOL} ({}): \
                 --toggle-collect did not match the symbol",
                out_file.display()
            );
        }
        Ok(Counted {
            instructions,
            allocations,
        })
    }
}

/// The line a workload run prints for the parent to read.
pub(crate) fn allocations_line(allocations: u64) -> String {
    format!("allocations={allocations}")
}

fn parse_allocations(stdout: &str) -> Option<u64> {
    stdout
        .lines()
        .find_map(|line| line.strip_prefix("allocations="))
        .and_then(|n| n.trim().parse().ok())
}

/// The `Ir` total of a callgrind out file.
///
/// # Errors
/// When the file has no `events:` header naming `Ir`, or no `totals:` /
/// `summary:` line with a number in that column.
pub(crate) fn parse_total_ir(text: &str) -> Result<u64> {
    let header = |key: &str| {
        text.lines()
            .rev()
            .find_map(|line| line.strip_prefix(key).map(str::trim))
    };
    let events = header("events:").context("no `events:` line")?;
    let column = events
        .split_whitespace()
        .position(|e| e == "Ir")
        .context("the `events:` line names no `Ir`")?;
    let totals = header("totals:")
        .or_else(|| header("summary:"))
        .context("no `totals:` or `summary:` line")?;
    let field = totals
        .split_whitespace()
        .nth(column)
        .context("the totals line has no `Ir` column")?;
    field
        .parse()
        .with_context(|| format!("`{field}` is not a count"))
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The path of a program on `PATH`, if it is there.
pub(crate) fn find_on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUT: &str = "# callgrind format\nversion: 1\ncreator: callgrind-3.19.0\n\
        pid: 42\ncmd: gate workload x 64\npart: 1\n\nevents: Ir\n\nfl=(1) a.rs\nfn=(1) f\n\
        3 120\n\nsummary: 123456\n\n\ntotals: 123456\n";

    #[test]
    fn reads_the_ir_total() {
        assert_eq!(parse_total_ir(OUT).unwrap(), 123_456);
    }

    #[test]
    fn finds_ir_among_several_events() {
        let text = "events: Dr Ir Dw\ntotals: 5 77 9\n";
        assert_eq!(parse_total_ir(text).unwrap(), 77);
    }

    #[test]
    fn older_files_with_only_a_summary_line_are_read() {
        assert_eq!(parse_total_ir("events: Ir\nsummary: 9\n").unwrap(), 9);
    }

    #[test]
    fn malformed_files_are_errors_not_panics() {
        for text in [
            "",
            "events: Dr\ntotals: 1\n",
            "events: Ir\n",
            "events: Ir\ntotals: x\n",
        ] {
            assert!(parse_total_ir(text).is_err(), "{text:?}");
        }
    }

    #[test]
    fn allocation_line_round_trips() {
        let out = format!("noise\n{}\n", allocations_line(17));
        assert_eq!(parse_allocations(&out), Some(17));
        assert_eq!(parse_allocations("allocations=x"), None);
    }
}
