//! A comparison as text: aligned columns with units for people, Markdown for a CI job
//! summary, JSON (schema [`JSON_SCHEMA`]) for scripts.
//!
//! The JSON document:
//!
//! ```text
//! {
//!   "schema": "metronome.compare/1",
//!   "method": {"statistic": "median", "interval": "percentile bootstrap",
//!              "confidence": 0.95, "resamples": 2000},
//!   "base":      {"describe": "group G (5 runs)", "runs": ["R1", ...]},
//!   "candidate": {"describe": "...", "runs": [...]},
//!   "headline": "regressed" | "improved" | "mixed" | "no change" | "inconclusive",
//!   "regressed": true,              // a primary metric regressed (--fail-on-regression)
//!   "primary": ["avg_delivered_per_sec", "latency_p99_us", "peak_heap_bytes"],
//!   "metrics": [{
//!     "key": "avg_delivered_per_sec", "label": "delivered/s", "unit": "per_sec",
//!     "better": "higher", "primary": true,
//!     "base": 723112.5, "candidate": 731040.0,      // medians (null when missing)
//!     "counts": [5, 5],                              // values behind each median
//!     "basis": "runs" | "intervals" | "too few runs" | "missing",
//!     "change_pct": 1.1, "ci_pct": [-2.3, 4.0],      // null when not computed
//!     "noise_pct": 5.0,
//!     "verdict": "improved" | "regressed" | "no change" | "inconclusive" | "unavailable",
//!     "runs_needed": null,                           // a number when inconclusive
//!     "note": "within the ±5% noise threshold (95% CI -2.3%..+4.0%)"
//!   }, ...],
//!   "config_differences": [{"key": "consumer_delay_us", "base": "200", "candidate": "400"}],
//!   "environment_differences": [...],
//!   "warnings": ["base: ...", ...],
//!   "page": "path/compare.html"
//! }
//! ```

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::stats::{CONFIDENCE, RESAMPLES};
use super::{Comparison, ConfigDifference, MetricComparison, Verdict};

/// The `schema` of the JSON output.
pub const JSON_SCHEMA: &str = "metronome.compare/1";

/// The method, in one line.
pub const METHOD: &str = "bootstrap of the median (percentile interval, 95% confidence, 2000 resamples); a verdict only when the whole interval is beyond (or within) the metric's noise threshold";

fn value(m: &MetricComparison, v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".to_owned(), |v| m.unit.format(v))
}

fn change(m: &MetricComparison) -> String {
    m.change_pct
        .map_or_else(|| "n/a".to_owned(), |p| format!("{p:+.1}%"))
}

fn ci(m: &MetricComparison) -> String {
    m.ci_pct.map_or_else(
        || "-".to_owned(),
        |(lo, hi)| format!("[{lo:+.1}%, {hi:+.1}%]"),
    )
}

fn basis(m: &MetricComparison) -> String {
    let (b, c) = m.counts;
    match m.basis {
        super::Basis::Runs => format!("{b} vs {c} runs"),
        super::Basis::Intervals => format!("{b} vs {c} intervals"),
        super::Basis::TooFew => format!("{b} vs {c} runs"),
        super::Basis::Missing => "-".to_owned(),
    }
}

fn verdict(m: &MetricComparison) -> String {
    match (m.verdict, m.runs_needed) {
        (Verdict::Inconclusive, Some(n)) => format!("inconclusive: ~{n} runs a side needed"),
        (v, _) => v.as_str().to_owned(),
    }
}

/// The rows of the table, as text cells.
fn rows(c: &Comparison) -> Vec<[String; 9]> {
    c.metrics
        .iter()
        .map(|m| {
            let star = if m.primary { " *" } else { "" };
            [
                format!("{}{star}", m.label),
                m.direction.better().to_owned(),
                value(m, m.base),
                value(m, m.candidate),
                change(m),
                ci(m),
                format!("±{}%", m.noise_pct),
                basis(m),
                verdict(m),
            ]
        })
        .collect()
}

const HEADER: [&str; 9] = [
    "metric",
    "better",
    "base",
    "candidate",
    "change",
    "95% CI",
    "noise",
    "from",
    "verdict",
];

/// The overall line: the headline and what it was drawn from.
#[must_use]
pub fn overall_line(c: &Comparison) -> String {
    let list = |primary: bool| {
        c.metrics
            .iter()
            .filter(|m| m.primary == primary && m.verdict != Verdict::NoChange)
            .map(|m| format!("{} {}", m.label, verdict(m)))
            .collect::<Vec<_>>()
    };
    let moved = list(true);
    let secondary = list(false);
    let mut line = format!("overall: {}", c.headline().as_str().to_uppercase());
    if moved.is_empty() {
        line.push_str(" (every primary metric within its noise)");
    } else {
        let _ = write!(line, " ({})", moved.join(", "));
    }
    if !secondary.is_empty() {
        let _ = write!(
            line,
            "; secondary, not in the headline: {}",
            secondary.join(", ")
        );
    }
    line
}

/// Aligned columns with units, the method, the differences and the overall line.
#[must_use]
pub fn human(c: &Comparison) -> String {
    let rows = rows(c);
    let mut widths = HEADER.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 9]| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            let pad = w.saturating_sub(cell.chars().count());
            // Names left-aligned, figures right-aligned, the verdict last and unpadded.
            match i {
                0 | 1 => {
                    let _ = write!(out, "{cell}{}  ", " ".repeat(pad));
                }
                8 => out.push_str(cell),
                _ => {
                    let _ = write!(out, "{}{cell}  ", " ".repeat(pad));
                }
            }
        }
        out.trim_end().to_owned()
    };
    let mut out = format!(
        "candidate {} against base {}\nmethod: {METHOD}\n\n",
        c.candidate_id, c.base_id
    );
    out.push_str(&line(HEADER));
    out.push('\n');
    for row in &rows {
        out.push_str(&line(row.each_ref().map(String::as_str)));
        out.push('\n');
    }
    out.push_str("* primary: the headline is drawn from these only\n");
    for m in c.metrics.iter().filter(|m| m.verdict != Verdict::NoChange) {
        let note = m.note.split("; noise from").next().unwrap_or(&m.note);
        let _ = writeln!(out, "  {}: {note}", m.label);
    }
    if c.metrics.iter().any(|m| m.basis == super::Basis::Intervals) {
        let _ = writeln!(out, "  intervals: {}", super::judge::INTERVALS_CAVEAT);
    }
    for d in &c.config_differences {
        let _ = writeln!(out, "forced: the scenarios differ in {d}");
    }
    for d in &c.environment_differences {
        let _ = writeln!(out, "the machines differ in {d}");
    }
    out.push_str(&overall_line(c));
    out
}

/// A Markdown section for a CI job summary.
#[must_use]
pub fn markdown(c: &Comparison) -> String {
    let mut out = format!(
        "### Metronome comparison: {}\n\ncandidate {} against base {}\n\n| {} |\n|{}\n",
        c.headline().as_str().to_uppercase(),
        c.candidate_id,
        c.base_id,
        HEADER.join(" | "),
        " --- |".repeat(HEADER.len()),
    );
    for row in rows(c) {
        let cells: Vec<String> = row.iter().map(|s| s.replace('|', "\\|")).collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    let _ = write!(
        out,
        "\n\\* primary: the headline is drawn from these only. Method: {METHOD}.\n\n{}\n",
        overall_line(c)
    );
    for d in &c.config_differences {
        let _ = writeln!(out, "\n> forced: the scenarios differ in {d}");
    }
    out
}

fn differences(list: &[ConfigDifference]) -> Value {
    list.iter()
        .map(|d| json!({"key": d.key, "base": d.base, "candidate": d.candidate}))
        .collect()
}

/// The comparison as a JSON document of schema [`JSON_SCHEMA`].
#[must_use]
pub fn json(c: &Comparison) -> Value {
    let metrics: Vec<Value> = c
        .metrics
        .iter()
        .map(|m| {
            json!({
                "key": m.key,
                "label": m.label,
                "unit": m.unit.name(),
                "better": m.direction.better(),
                "primary": m.primary,
                "base": m.base,
                "candidate": m.candidate,
                "counts": [m.counts.0, m.counts.1],
                "basis": m.basis.as_str(),
                "change_pct": m.change_pct,
                "ci_pct": m.ci_pct.map(|(lo, hi)| [lo, hi]),
                "noise_pct": m.noise_pct,
                "verdict": m.verdict.as_str(),
                "runs_needed": m.runs_needed,
                "note": m.note,
            })
        })
        .collect();
    let warnings: Vec<String> = c
        .base_warnings
        .iter()
        .map(|w| format!("base: {w}"))
        .chain(
            c.candidate_warnings
                .iter()
                .map(|w| format!("candidate: {w}")),
        )
        .collect();
    json!({
        "schema": JSON_SCHEMA,
        "method": {
            "statistic": "median",
            "interval": "percentile bootstrap",
            "confidence": CONFIDENCE,
            "resamples": RESAMPLES,
        },
        "base": {"describe": c.base_id, "runs": c.run_ids.0},
        "candidate": {"describe": c.candidate_id, "runs": c.run_ids.1},
        "headline": c.headline().as_str(),
        "regressed": c.regressed(),
        "primary": c.metrics.iter().filter(|m| m.primary).map(|m| m.key).collect::<Vec<_>>(),
        "metrics": metrics,
        "config_differences": differences(&c.config_differences),
        "environment_differences": differences(&c.environment_differences),
        "warnings": warnings,
        "page": c.path.as_ref().map(|p| p.display().to_string()),
    })
}
