//! Helpers shared by the integration tests: fixture paths and a small reader of the SVG
//! that plotters writes (one element per line).

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};

use reports::RunRecord;
use runlog::{Event, EventKind, Sample, SamplesLog};

/// The first series' color (plotters writes `#RRGGBB`).
pub const BLUE: &str = "#1F77B4";
/// The pause band's fill (`charts::pauses::BAND`).
pub const BAND: &str = "#9EB9D4";

/// `tests/fixtures/<name>`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The `<svg id="{id}" ...>...</svg>` element of a page.
pub fn svg<'a>(html: &'a str, id: &str) -> &'a str {
    let open = format!("<svg id=\"{id}\"");
    let start = html.find(&open).unwrap_or_else(|| panic!("no chart {id}"));
    let end = html[start..].find("</svg>").expect("svg closed") + start;
    &html[start..end + "</svg>".len()]
}

/// The value of attribute `name` in one element's text.
fn attr<'a>(element: &'a str, name: &str) -> Option<&'a str> {
    let key = format!(" {name}=\"");
    let start = element.find(&key)? + key.len();
    let end = element[start..].find('"')? + start;
    Some(&element[start..end])
}

/// The value of attribute `name` in one element's text, as a number.
pub fn number_attr(element: &str, name: &str) -> Option<f64> {
    attr(element, name)?.parse().ok()
}

/// Every one of `labels` is among `texts` (the texts of `what`).
pub fn assert_has_texts(what: &str, texts: &[String], labels: &[&str]) {
    for label in labels {
        assert!(
            texts.iter().any(|t| t == label),
            "{what}: {label} in {texts:?}"
        );
    }
}

/// The `<table id="{id}">` of a page.
pub fn table<'a>(html: &'a str, id: &str) -> &'a str {
    let start = html
        .find(&format!("<table id=\"{id}\""))
        .unwrap_or_else(|| panic!("no table {id}"));
    let end = html[start..].find("</table>").unwrap() + start;
    &html[start..end]
}

/// The `<rect>` elements of a chart filled as a pause band: the band over the plot, and
/// the legend's swatch.
pub fn pause_bands(svg: &str) -> Vec<&str> {
    svg.lines()
        .filter(|l| l.starts_with("<rect") && l.contains(&format!("fill=\"{BAND}\"")))
        .collect()
}

/// The point counts of every `<polyline>` stroked in `color` (plotters writes `#RRGGBB`).
pub fn polylines(svg: &str, color: &str) -> Vec<usize> {
    svg.lines()
        .filter(|l| l.starts_with("<polyline") && attr(l, "stroke") == Some(color))
        .map(|l| attr(l, "points").unwrap_or("").split_whitespace().count())
        .collect()
}

/// The points of the longest polyline in `color`: the data series (legend swatches have 2).
pub fn series_points(svg: &str, color: &str) -> usize {
    polylines(svg, color).into_iter().max().unwrap_or(0)
}

/// The texts of every `<text>` element.
pub fn texts(svg: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = svg;
    while let Some(start) = rest.find("<text") {
        let body = &rest[start..];
        let open_end = body.find('>').unwrap() + 1;
        let close = body.find("</text>").unwrap();
        out.push(body[open_end..close].trim().to_owned());
        rest = &body[close..];
    }
    out
}

/// Copies a fixture into a fresh temporary directory (tests never write into fixtures).
pub fn copy_fixture(name: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(fixture(name)).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), tmp.path().join(entry.file_name())).unwrap();
    }
    tmp
}

/// The `(x, y)` pixel points of the longest polyline in `color`.
pub fn series_coords(svg: &str, color: &str) -> Vec<(i32, i32)> {
    svg.lines()
        .filter(|l| l.starts_with("<polyline") && attr(l, "stroke") == Some(color))
        .map(|l| {
            attr(l, "points")
                .unwrap_or("")
                .split_whitespace()
                .map(|p| {
                    let (x, y) = p.split_once(',').unwrap();
                    (x.parse().unwrap(), y.parse().unwrap())
                })
                .collect::<Vec<(i32, i32)>>()
        })
        .max_by_key(Vec::len)
        .unwrap_or_default()
}

/// A phase event: `name` begins at `at_s`.
pub fn phase(at_s: f64, name: &str) -> Event {
    Event::new(at_s, EventKind::Phase { name: name.into() })
}

/// The producers set from `from` to `to` (`running`, `paused`) on the dashboard at `at_s`.
pub fn producers(at_s: f64, from: &str, to: &str) -> Event {
    Event::new(
        at_s,
        EventKind::Reconfigure {
            knob: "producers".into(),
            from: from.into(),
            to: to.into(),
            source: "tui".into(),
        },
    )
}

/// Samples at 1 s, 2 s, … 20 s made by `at`, then a drain sample at 20.05 s: made by `at`,
/// its phase `drain`, then changed by `drain`.
pub fn twenty_seconds_and_a_drain(
    at: impl Fn(f64) -> Sample,
    drain: impl FnOnce(&mut Sample),
) -> Vec<Sample> {
    let mut samples: Vec<Sample> = (1..=20).map(|t| at(f64::from(t))).collect();
    let mut last = at(20.05);
    last.phase = "drain".into();
    drain(&mut last);
    samples.push(last);
    samples
}

/// A record built in memory (run id `built`) of `samples` and `events`.
pub fn built(samples: Vec<Sample>, events: Vec<Event>) -> RunRecord {
    RunRecord {
        run_id: "built".into(),
        samples: SamplesLog {
            samples,
            events,
            truncated: None,
        },
        ..Default::default()
    }
}
