//! What `cargo soak tune` prints: each probe as it finishes (stderr), then the edge, the
//! recommendation with its reasoning and whether the verification kept the promise; and the
//! comments `tuned.toml` carries.

use std::fmt::Write as _;
use std::io::Write as _;

use super::search::Probe;
use super::{TuneOptions, TuneReport};
use crate::human;

/// Prints each probe as a table row on stderr as it finishes (the header before the first).
#[derive(Debug)]
pub struct ProbePrinter {
    budget_s: f64,
    quiet: bool,
    count: usize,
}

impl ProbePrinter {
    /// A printer for a `budget_s` tune; `quiet` prints nothing.
    #[must_use]
    pub fn new(budget_s: f64, quiet: bool) -> Self {
        Self {
            budget_s,
            quiet,
            count: 0,
        }
    }

    /// Prints `probe`, with `spent_s` of the budget used.
    pub fn print(&mut self, probe: &Probe, spent_s: f64) {
        if self.quiet {
            return;
        }
        self.count += 1;
        let mut err = std::io::stderr().lock();
        if self.count == 1 {
            let _ = write!(err, "{}", header());
        }
        let _ = writeln!(
            err,
            "{} [{spent_s:.1}/{:.0} s]",
            row(self.count, probe),
            self.budget_s
        );
        let _ = err.flush();
    }
}

fn offered(probe: &Probe) -> String {
    probe
        .point
        .rate_per_sec
        .map_or_else(|| "unlimited".into(), human::rate)
}

fn header() -> String {
    format!(
        "{:>3} {:<8} {:>10} {:>9} {:>10} {:>11} {:>11} {:>8} {:>9} {:>10}  verdict\n",
        "#",
        "phase",
        "offered",
        "interval",
        "max batch",
        "max buffer",
        "delivered/s",
        "reject%",
        "p99",
        "peak heap"
    )
}

fn row(n: usize, p: &Probe) -> String {
    let m = &p.measured;
    format!(
        "{:>3} {:<8} {:>10} {:>9} {:>10} {:>11} {:>11} {:>8.2} {:>9} {:>10}  {}",
        n,
        p.phase.to_string(),
        offered(p),
        human::micros(p.point.interval_us),
        human::bytes(p.point.max_batch_bytes),
        human::bytes(p.point.max_buffered_bytes),
        human::count(m.delivered_per_sec),
        m.rejected_pct,
        human::micros(m.p99_us),
        human::bytes(m.peak_heap_bytes),
        p.problem.as_deref().unwrap_or("ok"),
    )
}

/// The table of every probe, one row each.
#[must_use]
pub fn probe_table(probes: &[Probe]) -> String {
    let mut out = header();
    for (i, p) in probes.iter().enumerate() {
        let _ = writeln!(out, "{}", row(i + 1, p));
    }
    out
}

/// The whole report: the probe table (when `with_table`: the probes were not printed as
/// they finished), edge, failing point, recommendation, verification, file.
#[must_use]
pub fn render(report: &TuneReport, with_table: bool) -> String {
    let mut out = String::new();
    if with_table {
        let verify = report.verification.iter().flat_map(|v| v.probes.iter());
        let all: Vec<Probe> = report.search.probes.iter().chain(verify).cloned().collect();
        out.push_str(&probe_table(&all));
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "tuned for: {}\n{} ({:.1} s of searching)",
        report.scenario, report.search.message, report.search.spent_s
    );
    if let Some(edge) = &report.search.edge {
        let _ = writeln!(out, "edge:    {}", describe(&edge.best));
        if let Some(failing) = &edge.failing {
            let _ = writeln!(out, "failing: {}", describe(failing));
        }
    }
    match (&report.recommendation, &report.tuned_path) {
        (Some(rec), path) => {
            out.push_str("\nrecommendation:\n");
            for reason in &rec.reasons {
                let _ = writeln!(out, "  - {reason}");
            }
            if let Some(v) = &report.verification {
                let _ = writeln!(out, "\nverification: {}", v.message);
            }
            if let Some(path) = path {
                let _ = writeln!(
                    out,
                    "\nwrote {} (run it: {} --config {0})",
                    path.display(),
                    crate::program::name()
                );
            }
        }
        (None, _) => out.push_str("\nno recommendation: nothing healthy was found\n"),
    }
    let _ = writeln!(out, "probing run: {}", report.run_dir.display());
    out
}

fn describe(p: &Probe) -> String {
    format!(
        "offered {}, interval {}, batch {}, buffered {} -> delivered {}/s, {:.2}% rejected, p99 {} ({})",
        offered(p),
        human::micros(p.point.interval_us),
        human::bytes(p.point.max_batch_bytes),
        human::bytes(p.point.max_buffered_bytes),
        human::count(p.measured.delivered_per_sec),
        p.measured.rejected_pct,
        human::micros(p.measured.p99_us),
        p.problem.as_deref().unwrap_or("healthy"),
    )
}

/// The scenario a tune was for, in one line: what it does not search (the rate, interval
/// and limits are its answer).
#[must_use]
pub fn scenario_line(c: &runlog::ScenarioConfig, sink: &crate::sink::SinkSpec) -> String {
    let consumer = match sink {
        crate::sink::SinkSpec::InProcess => format!(
            "a consumer spending {} per batch{}",
            human::micros(c.consumer_delay_us),
            if c.consumer_cost_per_kib_us > 0 {
                format!(" and {} per KiB", human::micros(c.consumer_cost_per_kib_us))
            } else {
                String::new()
            }
        ),
        other => format!("the sink {}", other.describe()),
    };
    format!(
        "{} producers of {} payloads into {consumer}, {:?} policy, {} partition(s)",
        c.producers, c.payload, c.policy, c.partitions
    )
}

/// The comment `tuned.toml` starts with: what it was tuned for and on what, the edge, the
/// margin, the burst window, the verification, and the promise its thresholds hold a run to.
#[must_use]
pub fn tuned_comment(report: &TuneReport, options: &TuneOptions) -> Vec<String> {
    let mut out = vec![
        format!(
            "Written by `{} tune` (budget {:.0} s, {} probes) on {} ({} cores) at {}.",
            crate::program::name(),
            options.budget.as_secs_f64(),
            report.search.probes.len() + report.verification.as_ref().map_or(0, |v| v.probes.len()),
            crate::environment::host_name(),
            std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
            runlog::now_rfc3339(),
        ),
        format!("Tuned for: {}.", report.scenario),
        format!("Sink: {}.", options.sink.describe()),
    ];
    if let Some(edge) = &report.search.edge {
        out.push(format!("Edge found: {}.", describe(&edge.best)));
        if let Some(failing) = &edge.failing {
            out.push(format!("Beyond it: {}.", describe(failing)));
        }
    }
    if let Some(rec) = &report.recommendation {
        out.push(format!(
            "Margin: the rate, {}, is {:.0}% of the edge.",
            rec.config
                .rate_per_sec
                .map_or_else(|| "unlimited".to_owned(), human::rate),
            super::search::OPERATING_FRACTION * 100.0
        ));
        out.extend(rec.reasons.iter().map(|r| format!("Because: {r}.")));
    }
    if let Some(v) = &report.verification {
        out.push(format!("Verification: {}.", v.message));
    }
    out.push(format!(
        "Promise: the [thresholds] below (nothing refused, p99 within the target); \
         `{} --config tuned.toml` fails a run that breaks them.",
        crate::program::name()
    ));
    out
}
