//! The disk tier's section: present with its charts and figures when samples carry the
//! tier's readings, absent otherwise. Checked by reading the HTML and SVG the report
//! writes.

mod common;

use common::{
    BLUE, assert_has_texts, built, copy_fixture, fixture, pause_bands, phase, polylines, producers,
    series_points, svg, table, texts, twenty_seconds_and_a_drain,
};
use reports::{RunRecord, render_html, render_run};
use runlog::human;
use runlog::{Sample, SpillSample};

const RED: &str = "#D62728";
const SPILL_CHARTS: [&str; 2] = ["chart-spill-disk", "chart-spill-rates"];
const BUDGET: u64 = 64 << 20;

/// The tier's readings at `t_s` of a run whose memory fills at 5 s: the disk takes 2 MiB
/// a second until 15 s, then gives back 1.5 MiB a second.
fn readings(t_s: f64) -> SpillSample {
    let filling = t_s.min(15.0) - 5.0;
    let emptying = (t_s - 15.0).max(0.0);
    let on_disk = (filling * 2.0 - emptying * 1.5).max(0.0);
    SpillSample {
        spilled_per_sec: if t_s <= 15.0 { 8_000.0 } else { 1_000.0 },
        replayed_per_sec: if t_s <= 15.0 { 0.0 } else { 7_000.0 },
        spilled_total: (filling * 8_000.0 + emptying * 1_000.0) as u64,
        replayed_total: (emptying * 7_000.0) as u64,
        backlog_events: (on_disk * 4_000.0) as u64,
        disk_bytes: (on_disk * f64::from(1 << 20)) as u64,
        max_disk_bytes: BUDGET,
        fallbacks_total: if t_s >= 14.0 { 1_234 } else { 0 },
        errors_total: if t_s >= 14.0 { 2 } else { 0 },
    }
}

fn sample(t_s: f64, spill: bool) -> Sample {
    Sample {
        t_s,
        interval_s: 1.0,
        delivered_per_sec: 10_000.0,
        accepted_per_sec: 10_000.0,
        buffered_bytes: 1 << 20,
        phase: "run".into(),
        spill: (spill && t_s >= 5.0).then(|| readings(t_s)),
        ..Default::default()
    }
}

/// 20 s of samples (the tier's readings from 5 s on, when `spill`), a pause from 8 s to
/// 10 s, and a drain that replays 20x the steady rate.
fn record(spill: bool) -> RunRecord {
    let samples = twenty_seconds_and_a_drain(
        |t_s| sample(t_s, spill),
        |drain| {
            if let Some(d) = drain.spill.as_mut() {
                d.replayed_per_sec = 140_000.0;
            }
        },
    );
    let events = vec![
        phase(0.0, "run"),
        producers(8.0, "running", "paused"),
        producers(10.0, "paused", "running"),
        phase(20.0, "drain"),
    ];
    built(samples, events)
}

/// The value cell of the row named `name` in a name/value table.
fn row<'a>(table: &'a str, name: &str) -> &'a str {
    let start = table
        .find(&format!("<td>{name}</td>"))
        .unwrap_or_else(|| panic!("no row {name} in {table}"));
    let row = &table[start..];
    &row[..row.find("</tr>").unwrap()]
}

#[test]
fn a_run_with_a_disk_tier_has_its_section_charts_and_figures() {
    let record = record(true);
    let html = render_html(&record);
    assert_eq!(
        html.matches("<h2 id=\"disk-tier\">Disk tier</h2>").count(),
        1
    );
    let how = &html[html
        .find("id=\"disk-tier-how\"")
        .expect("a how-to-read line")..];
    assert!(how.contains("replayed") && how.contains("budget"), "{how}");
    // The section sits after the charts and before the key of their markers.
    let at = |needle: &str| html.find(needle).unwrap_or_else(|| panic!("{needle}"));
    assert!(at("id=\"chart-cpu\"") < at("id=\"disk-tier\""));
    assert!(at("id=\"disk-tier\"") < at("id=\"table-markers\""));

    let with_readings = record
        .samples()
        .iter()
        .filter(|s| s.spill.is_some())
        .count();
    assert_eq!(with_readings, 17);
    for id in SPILL_CHARTS {
        assert_eq!(
            html.matches(&format!("<svg id=\"{id}\"")).count(),
            1,
            "{id}"
        );
        let chart = svg(&html, id);
        // Blue is the first series: one point per sample with the tier's readings.
        assert_eq!(series_points(chart, BLUE), with_readings, "{id}");
        assert_has_texts(
            id,
            &texts(chart),
            &["run", "paused", "resumed", "drain", "time since start (s)"],
        );
        // The pause: its band over the plot, and the legend's swatch.
        assert_eq!(pause_bands(chart).len(), 2, "{id}");
    }

    let disk = texts(svg(&html, "chart-spill-disk"));
    assert_has_texts(
        "chart-spill-disk",
        &disk,
        &[
            "Disk tier: bytes on disk",
            "on disk",
            "disk budget",
            "on disk (MiB)",
        ],
    );
    assert!(
        polylines(svg(&html, "chart-spill-disk"), RED).len() > 2,
        "a dashed budget line"
    );
    // The axis reaches past the 64 MiB budget, not only the 20 MiB the disk took.
    let ticks: Vec<f64> = disk.iter().filter_map(|t| t.parse().ok()).collect();
    assert!(ticks.contains(&60.0), "{ticks:?}");

    assert_has_texts(
        "chart-spill-rates",
        &texts(svg(&html, "chart-spill-rates")),
        &[
            "Disk tier: spilled and replayed",
            "spilled/s (to disk)",
            "replayed/s (back to memory)",
            "rate (k events/s)",
            // The drain's replay burst is clipped like every time chart's.
            "drain: peak 140.0k/s, clipped",
        ],
    );
}

#[test]
fn the_figures_are_the_records() {
    let record = record(true);
    let html = render_html(&record);
    let figures = table(&html, "table-disk-tier");
    let spilled: Vec<SpillSample> = record.samples().iter().filter_map(|s| s.spill).collect();
    let last = spilled.last().unwrap();
    let peak = spilled.iter().map(|d| d.disk_bytes).max().unwrap();
    assert_eq!(peak, 20 << 20, "the disk's peak, at 15 s");
    let peak_row = row(figures, "peak on disk");
    assert!(peak_row.contains(&human::bytes(peak)), "{peak_row}");
    assert!(peak_row.contains("31.25% of the budget"), "{peak_row}");
    assert!(
        peak_row.contains(&format!("{} B", human::grouped(peak))),
        "{peak_row}"
    );
    assert!(row(figures, "disk budget").contains("64.0 MiB"));
    for (name, value) in [
        ("events spilled to disk", last.spilled_total),
        ("events replayed into memory", last.replayed_total),
        ("events left on disk at the end", last.backlog_events),
        ("fallbacks (disk full or failing)", last.fallbacks_total),
        ("disk errors", last.errors_total),
    ] {
        let cell = row(figures, name);
        assert!(cell.contains(&human::grouped(value)), "{name}: {cell}");
    }
    assert!(row(figures, "fallbacks (disk full or failing)").contains("1,234"));
    assert!(row(figures, "disk errors").contains(">2<"));
    // People read words, not the record's keys.
    let section =
        &html[html.find("id=\"disk-tier\"").unwrap()..html.find("id=\"table-markers\"").unwrap()];
    for key in [
        "disk_bytes",
        "backlog_events",
        "spilled_total",
        "fallbacks_total",
        "per_sec",
    ] {
        assert!(!section.contains(key), "{key} shown");
    }
}

#[test]
fn a_record_with_readings_on_disk_renders_them() {
    // The basic fixture with the tier's readings in every sample line, rendered from disk.
    let run = copy_fixture("basic");
    let path = run.path().join("samples.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines = Vec::new();
    let mut n = 0u64;
    for line in text.lines() {
        let mut value: serde_json::Value = serde_json::from_str(line).unwrap();
        if value.get("t_s").is_some() {
            n += 1;
            value["spill"] = serde_json::json!({
                "spilled_per_sec": 1000.0, "replayed_per_sec": 900.0,
                "spilled_total": n * 1000, "replayed_total": n * 900,
                "backlog_events": n * 100, "disk_bytes": n << 20,
                "max_disk_bytes": 1u64 << 30, "fallbacks_total": 0, "errors_total": 0
            });
        }
        lines.push(value.to_string());
    }
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let rendered = render_run(run.path()).unwrap();
    let html = std::fs::read_to_string(rendered.path).unwrap();
    let figures = table(&html, "table-disk-tier");
    assert!(row(figures, "peak on disk").contains("9.0 MiB (0.88% of the budget)"));
    assert!(row(figures, "disk budget").contains("1.0 GiB"));
    assert!(row(figures, "events spilled to disk").contains("9,000"));
    assert!(row(figures, "events replayed into memory").contains("8,100"));
    assert!(row(figures, "events left on disk at the end").contains("900"));
    assert_eq!(series_points(svg(&html, "chart-spill-disk"), BLUE), 9);
}

#[test]
fn a_run_without_a_disk_tier_has_no_such_section() {
    let built = render_html(&record(false));
    let basic = render_html(&RunRecord::load(&fixture("basic")).unwrap());
    for html in [built, basic] {
        for absent in [
            "Disk tier",
            "disk-tier",
            "chart-spill-disk",
            "chart-spill-rates",
            "table-disk-tier",
            "spilled",
        ] {
            assert!(!html.contains(absent), "{absent}");
        }
        assert_eq!(html.matches("<svg id=").count(), 8, "the eight charts");
    }
}
