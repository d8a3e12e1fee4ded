//! Progress lines while a run goes (the summary at its end is [`crate::summary`]).

use std::io::Write;

use runlog::{RunDir, Sample, ScenarioConfig};

use crate::human;

/// Where progress goes: one line per sample on stderr, unless quiet.
#[derive(Debug, Default)]
pub struct Progress {
    quiet: bool,
}

impl Progress {
    /// Progress lines on stderr, or none.
    pub fn new(quiet: bool) -> Self {
        Progress { quiet }
    }

    /// A line of news about the run (start-up, a signal), unless quiet.
    pub fn note(&mut self, text: &str) {
        if !self.quiet {
            crate::errln!("{}: {text}", crate::program::name());
        }
    }

    /// Announces the run.
    pub fn started(&mut self, config: &ScenarioConfig, dir: &RunDir) {
        if !self.quiet {
            crate::errln!(
                "{}: {} -> {}",
                crate::program::name(),
                scenario_line(config),
                dir.path().display()
            );
        }
    }

    /// One line for one sample.
    pub fn sample(&mut self, s: &Sample, duration_s: f64) {
        if self.quiet {
            return;
        }
        let refused = s.rejected_per_sec + s.dropped_per_sec;
        let refused_pct = if s.attempted_per_sec > 0.0 {
            refused / s.attempted_per_sec * 100.0
        } else {
            0.0
        };
        let disk = s.spill.as_ref().map_or_else(String::new, |d| {
            format!(
                "  disk {} / {} ({} events)",
                human::bytes(d.disk_bytes),
                human::bytes(d.max_disk_bytes),
                human::count(d.backlog_events)
            )
        });
        let mut err = std::io::stderr().lock();
        let _ = writeln!(
            err,
            "[{:>5.1}s/{:.0}s] delivered {:>7}/s  accepted {:>7}/s  refused {:>5.1}%  buffered {:>9} / {}  heap {:>9}  p99 {}{disk}",
            s.t_s,
            duration_s,
            human::count(s.delivered_per_sec),
            human::count(s.accepted_per_sec),
            refused_pct,
            human::bytes(s.buffered_bytes),
            human::bytes(s.limits.max_buffered_bytes),
            human::bytes(s.heap_allocated_bytes),
            human::micros(s.latency_us.p99),
        );
    }
}

/// The scenario in one line: its length, then [`runlog::human::scenario`].
pub fn scenario_line(c: &ScenarioConfig) -> String {
    format!(
        "{} · {}",
        runlog::human::seconds(c.duration_s),
        runlog::human::scenario(c)
    )
}
