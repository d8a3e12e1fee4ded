//! `dashboards/grafana/metronome.json`: importable as is (a Grafana dashboard
//! with a Prometheus datasource input and a `host` variable), and every metric
//! its queries name is one `cargo soak --metrics-addr` exports.

use std::path::PathBuf;

use serde_json::Value;
use soak::exporter::is_exported;

fn dashboard() -> Value {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../dashboards/grafana/metronome.json");
    let text = std::fs::read_to_string(&path).expect("the dashboard file exists");
    serde_json::from_str(&text).expect("the dashboard is valid JSON")
}

/// Every panel, rows' nested panels included.
fn panels(dashboard: &Value) -> Vec<&Value> {
    fn walk<'a>(list: &'a Value, out: &mut Vec<&'a Value>) {
        for panel in list.as_array().into_iter().flatten() {
            out.push(panel);
            if let Some(nested) = panel.get("panels") {
                walk(nested, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

/// Every PromQL expression of every panel's targets, with the panel's title.
fn expressions(dashboard: &Value) -> Vec<(String, String)> {
    panels(dashboard)
        .into_iter()
        .flat_map(|panel| {
            let title = panel["title"].as_str().unwrap_or("?").to_owned();
            panel["targets"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(move |t| Some((title.clone(), t["expr"].as_str()?.to_owned())))
        })
        .collect()
}

/// Drops the contents of double-quoted strings (label values, which may hold anything).
fn strip_strings(expr: &str) -> String {
    let mut inside = false;
    expr.chars()
        .filter(|&c| {
            let keep = !inside || c == '"';
            if c == '"' {
                inside = !inside;
            }
            keep
        })
        .collect()
}

/// Drops everything between `open` and its matching `close`, keeping `open` and `close`.
fn strip(expr: &str, open: char, close: char) -> String {
    let mut depth = 0usize;
    let mut out = String::new();
    for c in expr.chars() {
        if c == open {
            depth += 1;
            if depth == 1 {
                out.push(c);
            }
        } else if c == close && depth > 0 {
            depth -= 1;
            if depth == 0 {
                out.push(c);
            }
        } else if depth == 0 {
            out.push(c);
        }
    }
    out
}

const KEYWORDS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
    "inf",
    "nan",
];

/// Aggregation operators, which may stand before `by (..)` rather than `(`.
const AGGREGATIONS: &[&str] = &[
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
];

/// The metric names a PromQL expression selects: identifiers outside label
/// matchers (`{..}`), ranges (`[..]`) and strings, that are neither functions
/// (followed by `(`), keywords, nor the label lists of `by (..)` and the like.
fn metric_names(expr: &str) -> Vec<String> {
    let bare = strip(&strip(&strip_strings(expr), '{', '}'), '[', ']');
    let chars: Vec<char> = bare.chars().collect();
    let mut names = Vec::new();
    let mut i = 0;
    let mut skip_group = false;
    while i < chars.len() {
        let c = chars[i];
        if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || "_:".contains(chars[i])) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let next = chars[i..].iter().find(|c| !c.is_whitespace());
            if KEYWORDS.contains(&word.to_ascii_lowercase().as_str()) {
                // `by (host, reason)`: the parenthesised words are labels.
                skip_group = next == Some(&'(');
            } else if next != Some(&'(') && !skip_group && !AGGREGATIONS.contains(&word.as_str()) {
                names.push(word);
            }
        } else {
            if c == ')' {
                skip_group = false;
            }
            i += 1;
        }
    }
    names
}

#[test]
fn the_name_extraction_understands_promql() {
    assert_eq!(
        metric_names(
            r#"sum by (host, reason) (rate(dispatcher_rejected_total{host=~"$host"}[$__rate_interval]))"#
        ),
        ["dispatcher_rejected_total"]
    );
    assert_eq!(
        metric_names(
            "metronome_buffered_bytes{host=~\"$host\"} / on (host) metronome_limits_max_buffered_bytes"
        ),
        [
            "metronome_buffered_bytes",
            "metronome_limits_max_buffered_bytes"
        ]
    );
}

#[test]
fn the_dashboard_is_an_importable_grafana_dashboard() {
    let d = dashboard();
    let inputs = d["__inputs"].as_array().expect("__inputs for import");
    assert!(
        inputs
            .iter()
            .any(|i| i["name"] == "DS_PROMETHEUS" && i["pluginId"] == "prometheus"),
        "a Prometheus datasource input: {inputs:?}"
    );
    assert!(d["schemaVersion"].as_u64().is_some_and(|v| v >= 36));
    assert!(d["title"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(
        d["uid"]
            .as_str()
            .is_some_and(|u| !u.is_empty() && u.len() <= 40)
    );
    assert!(
        d["id"].is_null(),
        "an exported dashboard carries no database id"
    );

    let host = d["templating"]["list"]
        .as_array()
        .and_then(|vars| vars.iter().find(|v| v["name"] == "host"))
        .expect("a `host` template variable");
    let query = host["definition"].as_str().expect("a query variable");
    assert!(
        query.starts_with("label_values(") && query.contains("host"),
        "{query}"
    );
    for name in metric_names(query.trim_start_matches("label_values")) {
        if name != "host" {
            assert!(is_exported(&name), "the host variable queries {name}");
        }
    }
    assert_eq!(host["multi"], true, "several hosts side by side");

    let ids: Vec<_> = panels(&d).iter().map(|p| p["id"].as_u64()).collect();
    assert!(ids.iter().all(Option::is_some), "every panel has an id");
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "panel ids are unique");
    for panel in panels(&d) {
        if panel["type"] != "row" {
            assert_eq!(
                panel["datasource"]["uid"], "${DS_PROMETHEUS}",
                "{}",
                panel["title"]
            );
        }
    }
}

#[test]
fn every_metric_the_dashboard_queries_is_exported() {
    let d = dashboard();
    let exprs = expressions(&d);
    assert!(exprs.len() >= 10, "the dashboard queries something");
    for (title, expr) in &exprs {
        let names = metric_names(expr);
        assert!(!names.is_empty(), "{title}: no metric in {expr}");
        for name in names {
            assert!(
                is_exported(&name),
                "{title}: {name} is not exported by --metrics-addr"
            );
        }
        assert!(
            expr.contains("host=~\"$host\""),
            "{title}: {expr} ignores the host variable"
        );
    }
}

#[test]
fn the_dashboard_shows_what_the_issue_asks_for() {
    let all: Vec<String> = expressions(&dashboard())
        .into_iter()
        .flat_map(|(_, e)| metric_names(&e))
        .collect();
    for wanted in [
        "metronome_delivered_total",
        "metronome_accepted_total",
        "metronome_buffered_bytes",
        "metronome_limits_max_buffered_bytes",
        "metronome_heap_allocated_bytes",
        "metronome_latency_seconds_bucket",
        "metronome_rejected_total",
        "metronome_dropped_total",
    ] {
        assert!(all.iter().any(|n| n == wanted), "no panel shows {wanted}");
    }
}

#[test]
fn fleet_latency_is_a_histogram_quantile_over_summed_buckets() {
    let exprs = expressions(&dashboard());
    let fleet_p99 = exprs
        .iter()
        .find(|(_, e)| {
            e.starts_with(
                "histogram_quantile(0.99, sum by (le) (rate(metronome_latency_seconds_bucket",
            )
        })
        .unwrap_or_else(|| panic!("no fleet p99 panel in {exprs:?}"));
    assert!(fleet_p99.0.contains("latency"), "{fleet_p99:?}");
}
