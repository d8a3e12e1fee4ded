//! The report's tables: assessment, totals, memory, latency, drain, scenario, environment,
//! events. Every figure is shown raw (as in `results.json`) beside a readable form.

use std::fmt::Write as _;

use runlog::{Assessment, Event, EventKind, RunResults, Section, Status};
use serde_json::Value;

use crate::charts::MarkerGroup;
use crate::figures::KeyFigures;
use crate::format;
use crate::how_to_read;
use crate::html::{Cell, Table, badge, escape_html};
use crate::record::RunRecord;

/// The assessment: a badge, the notes and a "how to read this" line for each section,
/// threshold and the figures not judged.
pub(crate) fn assessment(assessment: &Assessment) -> String {
    let sections: [(&str, &Section); 4] = [
        ("correctness", &assessment.correctness),
        ("pressure", &assessment.pressure),
        ("memory", &assessment.memory),
        ("drain", &assessment.drain),
    ];
    let mut table = Table::new(
        "table-assessment",
        "Assessment",
        &["check", "verdict", "notes", "how to read this"],
    );
    for (name, section) in sections {
        table.row(vec![
            Cell::text(name),
            Cell::Markup(badge(section.status)),
            notes(&section.notes),
            how(how_to_read::section(name)),
        ]);
    }
    for t in &assessment.thresholds {
        let status = if t.passed { Status::Pass } else { Status::Fail };
        table.row(vec![
            Cell::text(format!("threshold {}", t.threshold)),
            Cell::Markup(badge(status)),
            notes(std::slice::from_ref(&t.note)),
            how(&how_to_read::threshold(t)),
        ]);
    }
    if !assessment.not_judged.is_empty() {
        table.row(vec![
            Cell::text("not judged"),
            Cell::text("-"),
            notes(&assessment.not_judged),
            how(how_to_read::NOT_JUDGED),
        ]);
    }
    table.render()
}

/// Notes as a list.
fn notes(notes: &[String]) -> Cell {
    let mut list = String::from("<ul class=\"notes\">");
    for note in notes {
        let _ = write!(list, "<li>{}</li>", escape_html(note));
    }
    list.push_str("</ul>");
    Cell::Markup(list)
}

/// A "how to read this" sentence, muted.
fn how(sentence: &str) -> Cell {
    Cell::Markup(format!(
        "<span class=\"how\">{}</span>",
        escape_html(sentence)
    ))
}

/// The key of the event markers on the time charts: each marker's number, time and the
/// events it stands for (several where they were too close to draw apart).
pub(crate) fn markers(groups: &[MarkerGroup]) -> String {
    let mut table = Table::new(
        "table-markers",
        "Event markers on the time charts",
        &["marker", "at", "events"],
    );
    for g in groups {
        let mut list = String::from("<ul class=\"notes\">");
        for m in &g.markers {
            let _ = write!(
                list,
                "<li>{}: {}</li>",
                escape_html(&format::seconds(m.at_s)),
                escape_html(&m.label)
            );
        }
        list.push_str("</ul>");
        table.row(vec![
            Cell::text(g.key()),
            Cell::num(format::seconds(g.at_s)),
            Cell::Markup(list),
        ]);
    }
    table.render()
}

/// A figure as a number cell: readable form first, then the raw value when they differ.
pub(crate) fn figure(readable: String, raw: impl ToString) -> Cell {
    let raw = raw.to_string();
    if readable == raw || raw == "0" {
        Cell::num(readable)
    } else {
        Cell::Figure(readable, raw)
    }
}

/// Totals and throughput.
pub(crate) fn totals(f: &KeyFigures, results: Option<&RunResults>) -> String {
    let t = &f.totals;
    let of_attempts = |n: u64| {
        format!(
            "{} ({} of attempts)",
            format::grouped(n),
            format::percent(format::share(n, t.attempted))
        )
    };
    let mut rows = vec![
        (
            "attempted".to_owned(),
            Cell::num(format::grouped(t.attempted)),
        ),
        ("accepted".to_owned(), Cell::num(of_attempts(t.accepted))),
        ("rejected".to_owned(), Cell::num(of_attempts(t.rejected))),
        (
            "dropped (evicted)".to_owned(),
            Cell::num(format::grouped(t.dropped)),
        ),
        (
            "delivered".to_owned(),
            Cell::num(format::grouped(t.delivered)),
        ),
        ("batches".to_owned(), Cell::num(format::grouped(t.batches))),
        (
            "duration".to_owned(),
            Cell::num(format::seconds(f.duration_s)),
        ),
        (
            "delivered/s (avg)".to_owned(),
            Cell::num(format::rate(f.avg_delivered_per_sec)),
        ),
    ];
    if let Some(r) = results {
        rows.extend(throughput_rows(r));
    }
    Table::key_values("table-totals", &titled("Totals and throughput", f), rows).render()
}

/// The throughput figures only `results.json` has.
fn throughput_rows(r: &RunResults) -> Vec<(String, Cell)> {
    let tp = &r.throughput;
    let range = format!(
        "{} .. {}",
        format::rate(tp.min_delivered_per_sec),
        format::rate(tp.max_delivered_per_sec)
    );
    vec![
        ("delivered/s (min..max per sample)".into(), Cell::num(range)),
        (
            "delivered bytes/s (avg)".into(),
            Cell::num(format!(
                "{}/s",
                format::bytes(tp.avg_delivered_bytes_per_sec)
            )),
        ),
        (
            "accepted/s (avg)".into(),
            Cell::num(format::rate(tp.avg_accepted_per_sec)),
        ),
        (
            "mean batch".into(),
            Cell::num(format::bytes(r.batches.mean_batch_bytes)),
        ),
    ]
}

fn titled(title: &str, f: &KeyFigures) -> String {
    if f.derived {
        format!("{title} (from the last sample)")
    } else {
        title.to_owned()
    }
}

/// Memory high-water marks, the limit, and the heap slope.
pub(crate) fn memory(f: &KeyFigures, results: Option<&RunResults>) -> String {
    let bytes = |n: u64| figure(format::bytes(n), format!("{} B", format::grouped(n)));
    let heap = match f.heap_to_limit() {
        Some(x) => Cell::num(format!(
            "{}  ({:.2}x the limit)",
            format::bytes(f.peak_heap_bytes),
            x
        )),
        None => bytes(f.peak_heap_bytes),
    };
    let mut rows = vec![("peak heap (allocated)".to_owned(), heap)];
    if let Some(r) = results {
        rows.push((
            "final heap (after drain)".into(),
            bytes(r.memory.final_heap_bytes),
        ));
    }
    rows.push(("peak RSS".into(), bytes(f.peak_rss_bytes)));
    rows.push(("peak buffered".into(), bytes(f.peak_buffered_bytes)));
    rows.push((
        "max buffered (largest in force)".into(),
        bytes(f.max_buffered_bytes),
    ));
    let slope = f
        .heap_slope
        .map_or_else(|| "n/a".to_owned(), |s| format::bytes_rate(s.slope_per_s));
    rows.push(("heap slope, 2nd half of the run".into(), Cell::num(slope)));
    Table::key_values("table-memory", &titled("Memory", f), rows).render()
}

/// Whole-run latency percentiles.
pub(crate) fn latency(f: &KeyFigures) -> String {
    let l = &f.latency_us;
    let us = |n: u64| figure(format::micros(n), format!("{} us", format::grouped(n)));
    let rows = vec![
        (
            "deliveries measured".to_owned(),
            Cell::num(format::grouped(l.count)),
        ),
        ("p50".to_owned(), us(l.p50)),
        ("p90".to_owned(), us(l.p90)),
        ("p99".to_owned(), us(l.p99)),
        ("p99.9".to_owned(), us(l.p999)),
        ("max".to_owned(), us(l.max)),
    ];
    let title = if f.derived {
        "Latency, enqueue to delivery (from latency.hlog)"
    } else {
        "Latency, enqueue to delivery"
    };
    Table::key_values("table-latency", title, rows).render()
}

/// How shutdown went.
pub(crate) fn drain(results: &RunResults) -> String {
    let d = &results.drain;
    let us = |n: u64| figure(format::micros(n), format!("{} us", format::grouped(n)));
    let rows = vec![
        ("drain (close to last delivery)".to_owned(), us(d.drain_us)),
        (
            "shutdown (close to threads joined)".to_owned(),
            us(d.shutdown_us),
        ),
        (
            "undelivered".to_owned(),
            Cell::num(format::grouped(d.undelivered)),
        ),
    ];
    Table::key_values("table-drain", "Drain", rows).render()
}

/// A JSON value as table text: `null` is "none".
fn value_text(key: &str, value: &Value) -> Cell {
    match value {
        Value::Null => Cell::num("none"),
        Value::Number(n) => {
            let raw = n.to_string();
            let Some(v) = n.as_f64() else {
                return Cell::num(raw);
            };
            if key.ends_with("_bytes") {
                figure(format::bytes(v), raw)
            } else if key.ends_with("_us") {
                figure(format::micros(v), raw)
            } else if key.ends_with("_ms") {
                figure(format::micros(v * 1e3), raw)
            } else if key.ends_with("per_sec") {
                figure(format::rate(v), raw)
            } else {
                Cell::num(raw)
            }
        }
        Value::String(s) => Cell::text(s.clone()),
        other => Cell::text(other.to_string()),
    }
}

/// Every key of a serializable object, with its value.
fn object_table(id: &'static str, title: &str, value: &Value) -> String {
    let rows = value
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.clone(), value_text(k, v)))
                .collect()
        })
        .unwrap_or_default();
    Table::key_values(id, title, rows).render()
}

/// The scenario (`config`), or without `results.json` the limits of the first sample.
pub(crate) fn scenario(record: &RunRecord) -> String {
    if let Some(r) = &record.results {
        let config = serde_json::to_value(&r.config).unwrap_or_default();
        return object_table("table-config", "Scenario and limits (config)", &config);
    }
    match record.samples().first() {
        Some(first) => {
            let limits = serde_json::to_value(&first.limits).unwrap_or_default();
            object_table(
                "table-config",
                "Limits (from the first sample; no results.json)",
                &limits,
            )
        }
        None => String::new(),
    }
}

/// The machine and build.
pub(crate) fn environment(results: &RunResults) -> String {
    let mut env = serde_json::to_value(&results.environment).unwrap_or_default();
    if let Some(o) = env.as_object_mut() {
        o.insert("sink".into(), Value::String(results.sink.clone()));
        o.insert(
            "started_at".into(),
            Value::String(results.started_at.clone()),
        );
    }
    object_table("table-environment", "Environment", &env)
}

/// The run's events: phase changes, reconfigurations and warnings, in time order.
pub(crate) fn events(events: &[Event]) -> String {
    let mut table = Table::new("table-events", "Events", &["at", "kind", "what"]);
    for e in events {
        let (kind, what) = match &e.kind {
            EventKind::Phase { name } => ("phase", name.clone()),
            kind @ EventKind::Reconfigure { .. } => ("reconfigure", kind.to_string()),
            EventKind::Warning { message } => ("warning", message.clone()),
            EventKind::Interrupted { signal, action } => {
                ("interrupted", format!("{signal}: {action}"))
            }
        };
        table.row(vec![
            Cell::num(format!("{:.3} s", e.at_s)),
            Cell::text(kind),
            Cell::text(what),
        ]);
    }
    if events.is_empty() {
        table.row(vec![
            Cell::text("-"),
            Cell::text("-"),
            Cell::text("no events recorded"),
        ]);
    }
    table.render()
}
