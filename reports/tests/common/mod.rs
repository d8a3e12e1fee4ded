//! Helpers shared by the integration tests: fixture paths and a small reader of the SVG
//! that plotters writes (one element per line).

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};

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
