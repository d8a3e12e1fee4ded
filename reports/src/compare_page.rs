//! The comparison page: verdicts per metric, both runs side by side, overlaid time charts.

use std::fmt::Write as _;

use runlog::Sample;

use crate::charts::{Line, Marker, TimeChart, palette};
use crate::compare::{Comparison, ConfigDifference, Headline, Side, Verdict};
use crate::format::{self, Units};
use crate::html::{Cell, Table, escape_html};
use crate::page;
use crate::record::RunRecord;

/// The base run's color on overlaid charts.
const BASE: plotters::style::RGBColor = palette::MUTED;
/// The candidate run's color.
const CANDIDATE: plotters::style::RGBColor = palette::ORANGE;

fn verdict_markup(verdict: Verdict) -> String {
    let class = match verdict {
        Verdict::Improved => "badge pass",
        Verdict::Regressed => "badge fail",
        Verdict::Inconclusive => "badge warn",
        Verdict::NoChange | Verdict::Unavailable => "badge unknown",
    };
    format!(
        "<span class=\"{class}\">{}</span>",
        verdict.as_str().to_uppercase()
    )
}

/// The banner: a forced comparison of different scenarios, and incomplete records.
fn banner(c: &Comparison) -> String {
    let mut warnings: Vec<String> = Vec::new();
    if !c.config_differences.is_empty() {
        warnings.push(format!(
            "Compared with force: the scenarios differ in {}.",
            crate::compare::describe_differences(&c.config_differences)
        ));
    }
    warnings.extend(c.base_warnings.iter().map(|w| format!("base: {w}")));
    warnings.extend(
        c.candidate_warnings
            .iter()
            .map(|w| format!("candidate: {w}")),
    );
    if warnings.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "<div class=\"banner\" id=\"warnings\" role=\"alert\"><strong>Read with care</strong><ul>",
    );
    for w in &warnings {
        let _ = write!(out, "<li>{}</li>", escape_html(w));
    }
    out.push_str("</ul></div>\n");
    out
}

/// The whole comparison page.
pub(crate) fn render(base_side: &Side, candidate_side: &Side, c: &Comparison) -> String {
    let (base, candidate) = (base_side.representative(), candidate_side.representative());
    let mut body = banner(c);
    let headline = c.headline();
    let class = match headline {
        Headline::Improved => "pass",
        Headline::Regressed => "fail",
        Headline::Mixed | Headline::Inconclusive => "warn",
        Headline::NoChange => "unknown",
    };
    let _ = write!(
        body,
        "<header class=\"band {class}\" id=\"summary\"><div class=\"verdict\"><span class=\"badge big {class}\" id=\"overall\">{}</span>\
         <h1>Comparison</h1><div class=\"sub\">candidate {} against base {} · {}</div></div><div class=\"figures\">{}</div></header>",
        headline.as_str().to_uppercase(),
        escape_html(&c.candidate_id),
        escape_html(&c.base_id),
        escape_html(crate::compare::text::METHOD),
        headline_figures(c),
    );
    let _ = writeln!(
        body,
        "<p id=\"overall-line\">{}</p>",
        escape_html(&crate::compare::text::overall_line(c))
    );
    body.push_str("<h2>Metrics</h2>\n");
    body.push_str(&metrics_table(c));
    body.push_str("<h2>Overlaid</h2>\n<div class=\"grid\">\n");
    for chart in overlay_charts(base, candidate) {
        let _ = writeln!(body, "<section class=\"card chart-card\">{chart}</section>");
    }
    body.push_str("</div>\n<h2>Runs</h2>\n<div class=\"grid\">\n");
    body.push_str(&runs_table(base_side, candidate_side));
    body.push_str(&differences_table(
        "table-differences",
        "Differences (config and machine)",
        &c.config_differences,
        &c.environment_differences,
    ));
    body.push_str(
        "</div>\n<footer>Metronome run comparison. Self-contained: it loads nothing.</footer>",
    );
    page::document(
        page::COMPARE_GENERATOR,
        &format!("Metronome comparison {} vs {}", c.candidate_id, c.base_id),
        &body,
    )
}

/// The primary metrics as big figures: candidate value, change and verdict.
fn headline_figures(c: &Comparison) -> String {
    c.metrics
        .iter()
        .filter(|m| m.primary)
        .map(|m| {
            let value = m.candidate.map_or_else(|| "n/a".to_owned(), |v| m.unit.format(v));
            let base = m.base.map_or_else(|| "n/a".to_owned(), |v| m.unit.format(v));
            let change = m.change_pct.map_or_else(String::new, |p| format!("{p:+.1}% · "));
            format!(
                "<div class=\"fig\"><div class=\"label\">{}</div><div class=\"value\">{}</div><div class=\"detail\">{}base {} · {}</div></div>",
                escape_html(m.label),
                escape_html(&value),
                escape_html(&change),
                escape_html(&base),
                verdict_markup(m.verdict)
            )
        })
        .collect()
}

fn metrics_table(c: &Comparison) -> String {
    let mut table = Table::new(
        "table-metrics",
        "Key figures (medians; * primary)",
        &[
            "metric",
            "base",
            "candidate",
            "ratio",
            "change",
            "95% CI",
            "noise",
            "better when",
            "verdict",
            "why",
        ],
    );
    for m in &c.metrics {
        let show = |v: Option<f64>| v.map_or_else(|| "n/a".to_owned(), |v| m.unit.format(v));
        let star = if m.primary { " *" } else { "" };
        table.row(vec![
            Cell::text(format!("{}{star}", m.label)),
            Cell::num(show(m.base)),
            Cell::num(show(m.candidate)),
            Cell::num(
                m.ratio()
                    .map_or_else(|| "n/a".to_owned(), |r| format!("{r:.3}x")),
            ),
            Cell::num(
                m.change_pct
                    .map_or_else(|| "n/a".to_owned(), |p| format!("{p:+.1}%")),
            ),
            Cell::num(m.ci_pct.map_or_else(
                || "-".to_owned(),
                |(lo, hi)| format!("{lo:+.1}%..{hi:+.1}%"),
            )),
            Cell::num(format!("±{}%", m.noise_pct)),
            Cell::text(m.direction.better()),
            Cell::Markup(verdict_markup(m.verdict)),
            Cell::text(&m.note),
        ]);
    }
    table.render()
}

/// How one row of the runs table reads `results.json`.
type RunField = fn(&runlog::RunResults) -> String;

fn runs_table(base_side: &Side, candidate_side: &Side) -> String {
    let (base, candidate) = (base_side.representative(), candidate_side.representative());
    let mut table = Table::new(
        "table-runs",
        "Runs (the charted run of each side)",
        &["", "base", "candidate"],
    );
    table.row(vec![
        Cell::text("side"),
        Cell::text(base_side.describe()),
        Cell::text(candidate_side.describe()),
    ]);
    let field = |r: &RunRecord, f: RunField| r.results.as_ref().map_or_else(|| "n/a".to_owned(), f);
    let rows: [(&str, RunField); 5] = [
        ("started", |r| r.started_at.clone()),
        ("git_rev", |r| r.environment.git_rev.clone()),
        ("rustc", |r| r.environment.rustc.clone()),
        ("duration", |r| format::seconds(r.duration_s)),
        ("verdict", |r| r.assessment.overall.as_str().to_owned()),
    ];
    table.row(vec![
        Cell::text("run"),
        Cell::text(&base.run_id),
        Cell::text(&candidate.run_id),
    ]);
    for (name, f) in rows {
        table.row(vec![
            Cell::text(name),
            Cell::text(field(base, f)),
            Cell::text(field(candidate, f)),
        ]);
    }
    table.render()
}

fn differences_table(
    id: &'static str,
    title: &str,
    config: &[ConfigDifference],
    env: &[ConfigDifference],
) -> String {
    let mut table = Table::new(id, title, &["key", "base", "candidate"]);
    for d in config {
        table.row(vec![
            Cell::text(format!("config.{}", d.key)),
            Cell::text(&d.base),
            Cell::text(&d.candidate),
        ]);
    }
    for d in env {
        table.row(vec![
            Cell::text(format!("environment.{}", d.key)),
            Cell::text(&d.base),
            Cell::text(&d.candidate),
        ]);
    }
    if config.is_empty() && env.is_empty() {
        table.row(vec![
            Cell::text("-"),
            Cell::text("same scenario"),
            Cell::text("same machine"),
        ]);
    }
    table.render()
}

/// Markers of both runs: the base's as they are, the candidate's where they differ.
fn markers(base: &RunRecord, candidate: &RunRecord) -> Vec<Marker> {
    let mut all = Marker::of_events(base.events());
    for m in Marker::of_events(candidate.events()) {
        let same = all
            .iter()
            .any(|b| b.label == m.label && (b.at_s - m.at_s).abs() < 0.5);
        if !same {
            all.push(Marker {
                label: format!("candidate: {}", m.label),
                ..m
            });
        }
    }
    all.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));
    all
}

/// One overlaid chart: which sample value, how titled and scaled.
struct Overlay {
    id: &'static str,
    title: &'static str,
    y_desc: &'static str,
    value: fn(&Sample) -> Option<f64>,
    units: Units,
}

const OVERLAYS: [Overlay; 4] = [
    Overlay {
        id: "cmp-delivered",
        title: "Delivered per second (run phase)",
        y_desc: "delivered",
        value: |s| (s.phase != "drain").then_some(s.delivered_per_sec),
        units: Units::Rate,
    },
    Overlay {
        id: "cmp-buffered",
        title: "Buffered bytes",
        y_desc: "buffered",
        value: |s| Some(s.buffered_bytes as f64),
        units: Units::Bytes,
    },
    Overlay {
        id: "cmp-heap",
        title: "Heap allocated",
        y_desc: "heap",
        value: |s| Some(s.heap_allocated_bytes as f64),
        units: Units::Bytes,
    },
    Overlay {
        id: "cmp-p99",
        title: "Latency p99 per interval",
        y_desc: "p99",
        value: |s| (s.latency_us.count > 0).then_some(s.latency_us.p99 as f64),
        units: Units::Micros,
    },
];

/// Delivered/s, buffered bytes, heap and p99 of both runs on shared axes.
fn overlay_charts(base: &RunRecord, candidate: &RunRecord) -> Vec<String> {
    let markers = markers(base, candidate);
    let x_max = [base, candidate]
        .iter()
        .flat_map(|r| r.samples().last().map(|s| s.t_s))
        .chain(markers.iter().map(|m| m.at_s))
        .fold(0.0, f64::max);
    let pair = |f: fn(&Sample) -> Option<f64>| -> [Vec<(f64, f64)>; 2] {
        [base, candidate].map(|r| {
            r.samples()
                .iter()
                .filter_map(|s| f(s).map(|v| (s.t_s, v)))
                .collect()
        })
    };
    OVERLAYS
        .iter()
        .map(|o| {
            let [b, c] = pair(o.value);
            TimeChart {
                id: o.id,
                title: o.title.to_owned(),
                y_desc: o.y_desc,
                units: o.units,
                lines: vec![
                    Line::solid(format!("base {}", base.run_id), BASE, b),
                    Line::solid(format!("candidate {}", candidate.run_id), CANDIDATE, c),
                ],
                markers: &markers,
                pauses: &[],
                drain_from: None,
                x_max,
            }
            .render()
        })
        .collect()
}
