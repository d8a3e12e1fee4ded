//! `--isolate`: every measured run in a process of its own.
//!
//! Targets run in one process share its heap: a round of one leaves the
//! allocator's arenas, free lists and trimmed pages as it shaped them, and
//! the next target's round starts from there. A production process runs one
//! of them for its lifetime. Isolated, each run is this binary started
//! again with `--child`, which makes one warm-up run (its heap then is the
//! target's own, in a steady state) and then the measured one, and prints
//! the measured run's nanoseconds (and, with `--producer-time`, its
//! producers' nanoseconds on a processor).

use std::process::Command;
use std::time::Duration;

use super::runs::{Run, busy};

/// Why `--producer-time` has nothing to print.
const UNREAD: &str = "a producer thread could not read its processor-time clock \
     (--producer-time needs CLOCK_THREAD_CPUTIME_ID)";

/// What one measured run took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Timing {
    pub(crate) elapsed: Duration,
    /// Its producer threads' time on a processor, added up, when counted
    /// (`--producer-time`).
    pub(crate) producer_time: Option<Duration>,
}

impl Timing {
    /// Makes one run of `run` in this process: its time, and its producers'
    /// if counted (`--producer-time`).
    pub(crate) fn of_run(run: Run, producers: usize, total: usize, size: usize) -> Timing {
        let _earlier = busy::take();
        let elapsed = run(producers, total, size);
        Timing {
            elapsed,
            producer_time: busy::take(),
        }
    }

    /// `self`, or why its producers' time is missing when `producer_time`
    /// asked for it.
    pub(crate) fn counted(self, producer_time: bool) -> Result<Timing, &'static str> {
        if producer_time && self.producer_time.is_none() {
            Err(UNREAD)
        } else {
            Ok(self)
        }
    }

    /// What a child prints: the nanoseconds, then the producers' if counted.
    pub(crate) fn line(&self) -> String {
        match self.producer_time {
            Some(busy) => format!("{} {}", self.elapsed.as_nanos(), busy.as_nanos()),
            None => self.elapsed.as_nanos().to_string(),
        }
    }

    /// Reads a child's [`line`](Self::line).
    fn parse(line: &str) -> Option<Timing> {
        let nanos = |field: &str| field.parse::<u64>().ok().map(Duration::from_nanos);
        let mut fields = line.split_whitespace();
        let elapsed = nanos(fields.next()?)?;
        let producer_time = match fields.next() {
            Some(field) => Some(nanos(field)?),
            None => None,
        };
        fields.next().is_none().then_some(Timing {
            elapsed,
            producer_time,
        })
    }
}

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
    pub(crate) fn measure(&self, run: Run) -> Timing {
        run(self.producers, self.total, self.size);
        Timing::of_run(run, self.producers, self.total, self.size)
    }

    /// In the parent: starts this binary as a child for the run (counting
    /// its producers' time on a processor if `producer_time`) and reads
    /// what it measured.
    pub(crate) fn spawn(&self, producer_time: bool) -> Result<Timing, String> {
        let exe = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
        let mut command = Command::new(&exe);
        command.args(["--child", &self.arg()]);
        if producer_time {
            command.arg("--producer-time");
        }
        let output = command
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
        let timing = Timing::parse(stdout.trim()).ok_or_else(|| {
            format!(
                "child run {} printed `{}`, not nanoseconds",
                self.arg(),
                stdout.trim()
            )
        })?;
        timing
            .counted(producer_time)
            .map_err(|unread| format!("child run {}: {unread}", self.arg()))
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

    #[test]
    fn a_run_counts_its_producers_work_and_not_their_sleep() {
        busy::count();
        let _before = busy::take();
        let start = busy::thread_start();
        assert!(start.is_some(), "no thread processor-time clock here");
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
        }
        busy::thread_end(start);
        let worked = busy::take();
        assert!(worked.is_some_and(|worked| worked > Duration::ZERO));
        let start = busy::thread_start();
        std::thread::sleep(Duration::from_millis(50));
        busy::thread_end(start);
        let slept = busy::take().expect("counting");
        assert!(
            slept < Duration::from_millis(25),
            "50 ms asleep counted {slept:?} on a processor"
        );
    }

    #[test]
    fn a_childs_line_round_trips_with_or_without_the_producers_time() {
        let plain = Timing {
            elapsed: Duration::from_nanos(1500),
            producer_time: None,
        };
        let counted = Timing {
            producer_time: Some(Duration::from_nanos(1400)),
            ..plain
        };
        assert_eq!(plain.line(), "1500");
        assert_eq!(Timing::parse(&plain.line()), Some(plain));
        assert_eq!(counted.line(), "1500 1400");
        assert_eq!(Timing::parse(&counted.line()), Some(counted));
        // Asked for, a missing time is an error, whichever way the run was made.
        assert_eq!(plain.counted(false), Ok(plain));
        assert_eq!(plain.counted(true), Err(UNREAD));
        assert_eq!(counted.counted(true), Ok(counted));
        for bad in ["", "x", "1500 x", "1500 1400 9", "-1"] {
            assert_eq!(Timing::parse(bad), None, "`{bad}`");
        }
    }
}
