//! Progress lines while a run goes, and the summary at its end.

use std::io::Write;

use runlog::{RunDir, RunResults, Sample, ScenarioConfig, Section};

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
        let mut err = std::io::stderr().lock();
        let _ = writeln!(
            err,
            "[{:>5.1}s/{:.0}s] delivered {:>7}/s  accepted {:>7}/s  refused {:>5.1}%  buffered {:>9} / {}  heap {:>9}  p99 {}",
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

/// Peak heap (against its measured budget when there is one), buffered and RSS.
fn memory_line(m: &runlog::Memory) -> String {
    let heap = if m.heap_budget_bytes > 0 {
        format!(
            "peak heap {} (budget {} for the {} limit: {:.3} heap bytes per buffered byte, measured)",
            human::bytes(m.peak_heap_bytes),
            human::bytes(m.heap_budget_bytes),
            human::bytes(m.max_buffered_bytes),
            m.heap_per_buffered_byte,
        )
    } else {
        format!(
            "peak heap {} ({:.2}x the {} limit)",
            human::bytes(m.peak_heap_bytes),
            m.peak_heap_bytes as f64 / m.max_buffered_bytes.max(1) as f64,
            human::bytes(m.max_buffered_bytes),
        )
    };
    format!(
        "  memory       {heap}, peak buffered {}, peak RSS {}",
        human::bytes(m.peak_buffered_bytes),
        human::bytes(m.peak_rss_bytes),
    )
}

fn section_lines(name: &str, section: &Section) -> String {
    let mut out = format!("  {name:<12} {}", section.status.as_str().to_uppercase());
    for note in &section.notes {
        out.push_str(&format!("\n               - {note}"));
    }
    out
}

/// The share of offers refused or evicted, in percent (0 with no offers).
pub(crate) fn refused_pct(t: &runlog::Totals) -> f64 {
    if t.attempted > 0 {
        (t.rejected + t.dropped) as f64 / t.attempted as f64 * 100.0
    } else {
        0.0
    }
}

/// The end-of-run summary.
pub fn summary(r: &RunResults, dir: &RunDir) -> String {
    let t = &r.totals;
    let refused_pct = refused_pct(t);
    let a = &r.assessment;
    [
        format!("soak {}: {}", r.run_id, a.overall.as_str().to_uppercase()),
        format!("  scenario     {}", scenario_line(&r.config)),
        format!(
            "  throughput   {} delivered/s avg (min {}, max {}), {} delivered in {:.1} s, {refused_pct:.2}% refused or evicted",
            human::count(r.throughput.avg_delivered_per_sec),
            human::count(r.throughput.min_delivered_per_sec),
            human::count(r.throughput.max_delivered_per_sec),
            human::count(t.delivered),
            r.duration_s,
        ),
        memory_line(&r.memory),
        format!(
            "  latency      p50 {}  p99 {}  p99.9 {}  max {}",
            human::micros(r.latency_us.p50),
            human::micros(r.latency_us.p99),
            human::micros(r.latency_us.p999),
            human::micros(r.latency_us.max),
        ),
        format!(
            "  drain        {} (shutdown {}), {} undelivered",
            human::micros(r.drain.drain_us),
            human::micros(r.drain.shutdown_us),
            r.drain.undelivered
        ),
        section_lines("correctness", &a.correctness),
        section_lines("pressure", &a.pressure),
        section_lines("memory", &a.memory),
        section_lines("drain", &a.drain),
        verdict_lines(a),
        format!("  run dir      {}", dir.path().display()),
    ]
    .join("\n")
}

/// The thresholds (each PASS or FAIL with the figure), what was checked, and what was not
/// judged.
fn verdict_lines(a: &runlog::Assessment) -> String {
    let mut out = String::new();
    if !a.thresholds.is_empty() {
        let failed = a.failed_thresholds().count();
        let status = if failed == 0 { "PASS" } else { "FAIL" };
        out.push_str(&format!("  thresholds   {status}"));
        for t in &a.thresholds {
            let mark = if t.passed { "pass" } else { "FAIL" };
            out.push_str(&format!(
                "\n               - {mark} {}: {}",
                t.threshold, t.note
            ));
        }
        out.push('\n');
    }
    let thresholds = match a.thresholds.len() {
        0 => String::new(),
        1 => ", 1 threshold".to_owned(),
        n => format!(", {n} thresholds"),
    };
    out.push_str(&format!(
        "  checked      correctness, pressure, memory, drain{thresholds}"
    ));
    for note in &a.not_judged {
        out.push_str(&format!("\n               - {note}"));
    }
    out
}
