//! What `cargo soak tune` prints: a progress bar while probing (stderr), the
//! table of every probe, the edge and the recommendation.

use std::fmt::Write as _;
use std::io::Write as _;

use super::TuneReport;
use super::search::Probe;
use crate::human;

/// Width of the progress bar, in cells.
const BAR_CELLS: usize = 30;

/// A one-line text progress bar on stderr, redrawn after each probe.
#[derive(Debug)]
pub struct ProgressBar {
    budget_s: f64,
    quiet: bool,
}

impl ProgressBar {
    /// A bar over `budget_s` seconds of probing; `quiet` draws nothing.
    #[must_use]
    pub fn new(budget_s: f64, quiet: bool) -> Self {
        Self { budget_s, quiet }
    }

    /// Redraws the bar after `probe`, with `spent_s` of the budget used.
    pub fn update(&mut self, probe: &Probe, spent_s: f64) {
        if self.quiet {
            return;
        }
        let line = bar_line(spent_s, self.budget_s, probe);
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r{line:<100}");
        let _ = err.flush();
    }

    /// Ends the bar's line.
    pub fn finish(&mut self) {
        if !self.quiet {
            eprintln!();
        }
    }
}

/// `[#####.....] 12.0/20 s  rate 120.0k/s ok`.
#[must_use]
pub fn bar_line(spent_s: f64, budget_s: f64, probe: &Probe) -> String {
    let frac = (spent_s / budget_s.max(1e-9)).clamp(0.0, 1.0);
    let filled = (frac * BAR_CELLS as f64).round() as usize;
    format!(
        "[{}{}] {spent_s:.1}/{budget_s:.0} s  {} {} {}",
        "#".repeat(filled),
        ".".repeat(BAR_CELLS - filled),
        probe.phase,
        offered(probe),
        if probe.healthy() { "ok" } else { "FAIL" },
    )
}

fn offered(probe: &Probe) -> String {
    probe.point.rate_per_sec.map_or_else(
        || "unlimited".into(),
        |r| format!("{}/s", human::count(r as f64)),
    )
}

/// The table of every probe, one row each.
#[must_use]
pub fn probe_table(probes: &[Probe]) -> String {
    let mut out = format!(
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
    );
    for (i, p) in probes.iter().enumerate() {
        let m = &p.measured;
        let _ = writeln!(
            out,
            "{:>3} {:<8} {:>10} {:>9} {:>10} {:>11} {:>11} {:>8.2} {:>9} {:>10}  {}",
            i + 1,
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
        );
    }
    out
}

/// The whole report: table, edge, failing point, recommendation, file.
#[must_use]
pub fn render(report: &TuneReport) -> String {
    let mut out = probe_table(&report.search.probes);
    let _ = writeln!(
        out,
        "\n{} ({:.1} s of probing)",
        report.search.message, report.search.spent_s
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
            if let Some(path) = path {
                let _ = writeln!(
                    out,
                    "\nwrote {} (run it: cargo soak --config {0})",
                    path.display()
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
