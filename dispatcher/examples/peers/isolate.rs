//! `--isolate`: every measured run in a process of its own.
//!
//! Targets run in one process share its heap: a round of one leaves the
//! allocator's arenas, free lists and trimmed pages as it shaped them, and
//! the next target's round starts from there. A production process runs one
//! of them for its lifetime. Isolated, each run is this binary started
//! again with `--child`, which makes one warm-up run (its heap then is the
//! target's own, in a steady state) and then the measured one, and prints
//! the measured run's nanoseconds.

use std::process::Command;
use std::time::Duration;

use super::runs::Run;

/// One run to make in a child process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Child {
    pub(crate) target: String,
    pub(crate) producers: usize,
    pub(crate) total: usize,
    pub(crate) size: usize,
}

impl Child {
    /// The `--child` argument: `TARGET:PRODUCERS:EVENTS:SIZE`.
    fn arg(&self) -> String {
        format!(
            "{}:{}:{}:{}",
            self.target, self.producers, self.total, self.size
        )
    }

    /// Parses a `--child` argument.
    pub(crate) fn parse(arg: &str) -> Result<Child, String> {
        let fields: Vec<&str> = arg.split(':').collect();
        let [target, producers, total, size] = fields[..] else {
            return Err(format!(
                "`{arg}`: expected TARGET:PRODUCERS:EVENTS:SIZE (4 fields)"
            ));
        };
        let number = |what: &str, value: &str| {
            value
                .parse::<usize>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| format!("`{arg}`: {what} `{value}` is not a whole number >= 1"))
        };
        Ok(Child {
            target: target.to_owned(),
            producers: number("PRODUCERS", producers)?,
            total: number("EVENTS", total)?,
            size: number("SIZE", size)?,
        })
    }

    /// In the child: one warm-up run of `run`, then the measured one.
    pub(crate) fn measure(&self, run: Run) -> Duration {
        run(self.producers, self.total, self.size);
        run(self.producers, self.total, self.size)
    }

    /// In the parent: starts this binary as a child for the run and reads
    /// the measured nanoseconds it prints.
    pub(crate) fn spawn(&self) -> Result<Duration, String> {
        let exe = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
        let output = Command::new(&exe)
            .args(["--child", &self.arg()])
            .output()
            .map_err(|e| format!("cannot start {}: {e}", exe.display()))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            return Err(format!(
                "child run {} failed ({}): {}",
                self.arg(),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        stdout
            .trim()
            .parse::<u64>()
            .map(Duration::from_nanos)
            .map_err(|_| {
                format!(
                    "child run {} printed `{}`, not nanoseconds",
                    self.arg(),
                    stdout.trim()
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_argument_round_trips_and_bad_ones_name_what_is_wrong() {
        let child = Child {
            target: "crossbeam".into(),
            producers: 4,
            total: 1000,
            size: 64,
        };
        assert_eq!(Child::parse(&child.arg()), Ok(child));
        assert!(
            Child::parse("crossbeam:4:1000")
                .unwrap_err()
                .contains("4 fields")
        );
        assert!(
            Child::parse("crossbeam:0:1000:64")
                .unwrap_err()
                .contains("PRODUCERS `0`")
        );
        assert!(
            Child::parse("crossbeam:4:x:64")
                .unwrap_err()
                .contains("EVENTS `x`")
        );
    }
}
