//! The time charts of a built record: merged event markers and their key, pause bands,
//! the drain burst clipped to the steady state, and a "how to read this" line per verdict.
//! Checked by reading the HTML and SVG the report writes.

mod common;

use common::{
    BAND, BLUE, assert_has_texts, built, number_attr, pause_bands, phase, producers, series_coords,
    svg, table, texts, twenty_seconds_and_a_drain,
};
use reports::{RunRecord, render_html};
use runlog::{Assessment, Event, EventKind, RunResults, Sample, Section, Status, ThresholdResult};

const TIME_CHARTS: [&str; 6] = [
    "chart-throughput",
    "chart-buffered",
    "chart-memory",
    "chart-latency",
    "chart-batch-size",
    "chart-cpu",
];

/// A steady run sample at `t_s`: 1000 delivered/s.
fn steady(t_s: f64) -> Sample {
    let mut s = Sample {
        t_s,
        interval_s: 1.0,
        delivered_per_sec: 1000.0,
        accepted_per_sec: 1000.0,
        batches_per_sec: 10.0,
        mean_batch_bytes: 4096.0,
        buffered_bytes: 1 << 20,
        heap_allocated_bytes: 8 << 20,
        rss_bytes: 16 << 20,
        cpu_percent: 50.0,
        phase: "run".into(),
        ..Default::default()
    };
    s.latency_us.count = 1000;
    s.latency_us.p50 = 2000;
    s.latency_us.p99 = 4000;
    s.latency_us.max = 5000;
    s.limits.max_buffered_bytes = 4 << 20;
    s
}

fn warning(at_s: f64, message: &str) -> Event {
    Event::new(
        at_s,
        EventKind::Warning {
            message: message.into(),
        },
    )
}

/// 20 s of steady samples, a pause from 5 s to 8 s, three warnings within 0.2 s of each
/// other at 12 s, and a drain whose burst is 20x the steady delivered rate.
fn record(events: Vec<Event>) -> RunRecord {
    let samples = twenty_seconds_and_a_drain(steady, |drain| {
        drain.delivered_per_sec = 20_000.0;
        drain.accepted_per_sec = 0.0;
    });
    built(samples, events)
}

fn events() -> Vec<Event> {
    vec![
        phase(0.0, "run"),
        producers(5.0, "running", "paused"),
        producers(8.0, "paused", "running"),
        warning(12.0, "consumer stalled"),
        warning(12.1, "sink slow"),
        warning(12.2, "heap high"),
        phase(20.0, "drain"),
    ]
}

#[test]
fn events_too_close_to_draw_apart_are_one_marker_with_a_list() {
    let html = render_html(&record(events()));
    for id in TIME_CHARTS {
        let labels = texts(svg(&html, id));
        assert_eq!(
            labels.iter().filter(|t| *t == "3 events (#4)").count(),
            1,
            "{id}: one merged marker in {labels:?}"
        );
        for single in ["consumer stalled", "sink slow", "heap high"] {
            assert!(
                !labels.iter().any(|t| t.contains(single)),
                "{id}: {single} is not drawn on its own: {labels:?}"
            );
        }
        assert_has_texts(id, &labels, &["run", "paused", "resumed", "drain"]);
    }
    // The key below the charts lists the merged marker's events under its number.
    let key = table(&html, "table-markers");
    let row = &key[key.find("<td>#4</td>").expect("marker #4 in the key")..];
    let row = &row[..row.find("</tr>").unwrap()];
    assert_eq!(row.matches("<li>").count(), 3, "{row}");
    for event in ["! consumer stalled", "! sink slow", "! heap high"] {
        assert!(row.contains(event), "{event} in {row}");
    }
    assert_eq!(
        key.matches("<tr>").count(),
        5 + 1,
        "five markers and the head"
    );
}

/// The marker labels of a chart (texts in a marker color): `(row y, from x, to x, text)`,
/// their extent estimated as the charts estimate it (0.58 em a character).
fn marker_labels(svg: &str) -> Vec<(i32, f64, f64, String)> {
    let lines: Vec<&str> = svg.lines().collect();
    let mut labels = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let is_marker = MARKER_COLORS
            .iter()
            .any(|c| line.contains(&format!("fill=\"{c}\"")));
        if !line.starts_with("<text") || !is_marker {
            continue;
        }
        let text = lines[i + 1].trim().to_owned();
        let x = number_attr(line, "x").unwrap();
        let y = number_attr(line, "y").unwrap() as i32;
        let px = number_attr(line, "font-size").unwrap();
        let width = text.chars().count() as f64 * px * 0.58;
        let (from, to) = if line.contains("text-anchor=\"end\"") {
            (x - width, x)
        } else {
            (x, x + width)
        };
        labels.push((y, from, to, text));
    }
    labels
}

/// Phase, reconfiguration and warning markers (`charts::palette::MARKER_*`).
const MARKER_COLORS: [&str; 3] = ["#808080", "#7B3294", "#B36B00"];

#[test]
fn crowded_labels_are_cut_to_their_numbers_never_overprinted() {
    // Ten long labels a second apart cannot all be spelled out in two rows.
    let events: Vec<Event> = (0..10)
        .map(|i| warning(1.0 + f64::from(i), "a long warning about the consumer"))
        .collect();
    let html = render_html(&record(events));
    for id in TIME_CHARTS {
        let labels = marker_labels(svg(&html, id));
        assert_eq!(labels.len(), 10, "{id}: one label per marker: {labels:?}");
        let numbers = labels.iter().filter(|l| l.3.starts_with('#')).count();
        assert!(
            (1..10).contains(&numbers),
            "{id}: some cut to numbers: {labels:?}"
        );
        for (i, a) in labels.iter().enumerate() {
            for b in &labels[i + 1..] {
                let overlap = a.0 == b.0 && a.1 < b.2 && b.1 < a.2;
                assert!(!overlap, "{id}: {a:?} overprints {b:?}");
            }
        }
    }
    assert_eq!(table(&html, "table-markers").matches("<td>#").count(), 10);
}

#[test]
fn a_pause_is_a_band_on_every_time_chart() {
    let html = render_html(&record(events()));
    for id in TIME_CHARTS {
        let chart = svg(&html, id);
        let bands = pause_bands(chart);
        // The band over the plot, and the legend's swatch.
        assert_eq!(bands.len(), 2, "{id}: {bands:?}");
        let widths: Vec<f64> = bands
            .iter()
            .filter_map(|b| number_attr(b, "width"))
            .collect();

        let band = widths.iter().copied().fold(0.0, f64::max);
        // 3 s of a 20.05 s axis about 500 px wide: about 75 px.
        assert!((60.0..=90.0).contains(&band), "{id}: band {band} px wide");
        assert!(texts(chart).iter().any(|t| t == "paused"), "{id}: legend");
    }
    // Without a pause event there is no band.
    let calm = render_html(&record(vec![]));
    assert!(!svg(&calm, "chart-throughput").contains(BAND));
}

#[test]
fn a_drain_burst_20x_the_steady_state_is_clipped_with_a_note() {
    let html = render_html(&record(events()));
    let chart = svg(&html, "chart-throughput");
    let labels = texts(chart);
    assert!(
        labels.iter().any(|t| t == "drain: peak 20.0k/s, clipped"),
        "{labels:?}"
    );
    // The axis fits the steady 1000/s: its unit is k events/s and its ticks stay under 1.1.
    assert!(
        labels.iter().any(|t| t == "rate (k events/s)"),
        "{labels:?}"
    );
    // (The x ticks are whole seconds from 2 s on; the y ticks are under 1.1.)
    let ticks: Vec<f64> = labels.iter().filter_map(|t| t.parse().ok()).collect();
    assert!(ticks.contains(&1.0), "a 1k/s tick: {ticks:?}");
    assert!(
        ticks.iter().all(|v| *v < 1.1 || *v >= 2.0),
        "ticks fitted to 1k/s: {ticks:?}"
    );
    // The steady line sits near the top of the plot, not squashed to the floor: the drain
    // point is clipped at the top edge, the steady points a few pixels below it (drawn to
    // the drain's scale they would be some 200 px lower, at a twentieth of the height).
    let points = series_coords(chart, BLUE);
    let (_, clipped_y) = *points.last().unwrap();
    for &(_, steady_y) in &points[..points.len() - 1] {
        let below = steady_y - clipped_y;
        assert!(
            (1..40).contains(&below),
            "steady {below} px below the top: {points:?}"
        );
    }
    // Every run gets the same treatment, so a chart the drain does not exceed says nothing.
    assert!(
        !texts(svg(&html, "chart-cpu"))
            .iter()
            .any(|t| t.starts_with("drain:"))
    );
}

#[test]
fn every_verdict_has_a_how_to_read_line() {
    let mut record = record(events());
    let pass = |note: &str| Section::new(Status::Pass, [note.to_owned()]);
    let mut assessment = Assessment {
        overall: Status::Fail,
        correctness: pass("all accounted"),
        pressure: Section::new(Status::Warn, ["no backpressure".to_owned()]),
        memory: pass("within budget"),
        drain: pass("drained"),
        thresholds: vec![ThresholdResult {
            threshold: "p99<1ms".into(),
            metric: "p99".into(),
            limit: 1000.0,
            actual: Some(4000.0),
            unit: "us".into(),
            passed: false,
            note: "p99 4 ms, over 1 ms".into(),
        }],
        not_judged: vec!["throughput not judged".into()],
    };
    assessment.overall = Status::Fail;
    record.results = Some(RunResults {
        run_id: "built".into(),
        assessment,
        ..Default::default()
    });
    let html = render_html(&record);
    let rows = table(&html, "table-assessment");
    let body = &rows[rows.find("<tbody>").unwrap()..];
    let row_count = body.matches("<tr>").count();
    assert_eq!(row_count, 4 + 1 + 1, "sections, the threshold, not judged");
    assert_eq!(body.matches("<span class=\"how\">").count(), row_count);
    for (check, words) in [
        ("correctness", "accepted event"),
        ("pressure", "kept up"),
        ("memory", "budget"),
        ("drain", "deadline"),
        ("threshold p99&lt;1ms", "your threshold p99&lt;1ms"),
        ("not judged", "--threshold"),
    ] {
        let row = &body[body.find(&format!("<td>{check}</td>")).expect(check)..];
        let row = &row[..row.find("</tr>").unwrap()];
        let how = &row[row.find("class=\"how\"").unwrap()..];
        assert!(how.contains(words), "{check}: {how}");
    }
    let band = &html[html.find("id=\"summary\"").unwrap()..html.find("</header>").unwrap()];
    assert!(band.contains("id=\"overall-how\""));
    assert!(band.contains("the worst of the checks"));
}
