//! The report's charts: plotters drawing into SVG strings, one `<svg id=...>` per chart.
//!
//! Every chart has a frame drawn here: a title, a legend row above the plot (so it never
//! hides data) and, on time charts, event markers. Text is emitted as SVG `<text>` and laid
//! out by the browser: no font is read or embedded.

pub(crate) mod batches;
pub(crate) mod cpu;
pub(crate) mod drain;
pub(crate) mod latency;
pub(crate) mod markers;
pub(crate) mod memory;
pub(crate) mod pauses;
pub(crate) mod spill;
pub(crate) mod throughput;
pub(crate) mod timechart;

use plotters::chart::MeshStyle;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use runlog::{Event, EventKind};

use crate::html::escape_html;

pub(crate) use markers::{Marker, MarkerGroup};
pub(crate) use timechart::{Line, TimeChart};

/// Width of one chart, in CSS pixels (two fit side by side on a 1280 px screen).
pub(crate) const WIDTH: u32 = 600;
/// Height of one chart, in CSS pixels.
pub(crate) const HEIGHT: u32 = 340;

/// The drawing area charts draw on.
pub(crate) type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
/// What drawing on [`Area`] can fail with.
pub(crate) type DrawError =
    DrawingAreaErrorKind<<SVGBackend<'static> as DrawingBackend>::ErrorType>;

/// Series colors: distinguishable, and readable on white.
pub(crate) mod palette {
    use plotters::style::RGBColor;

    /// Primary series (delivered, allocated heap, p50).
    pub(crate) const BLUE: RGBColor = RGBColor(0x1f, 0x77, 0xb4);
    /// Second series (accepted, resident heap, p99).
    pub(crate) const ORANGE: RGBColor = RGBColor(0xe6, 0x7e, 0x00);
    /// Third series.
    pub(crate) const GREEN: RGBColor = RGBColor(0x2c, 0xa0, 0x2c);
    /// Refusals, limits, maxima.
    pub(crate) const RED: RGBColor = RGBColor(0xd6, 0x27, 0x28);
    /// Fitted lines.
    pub(crate) const PURPLE: RGBColor = RGBColor(0x94, 0x67, 0xbd);
    /// Secondary series.
    pub(crate) const BROWN: RGBColor = RGBColor(0x8c, 0x56, 0x4b);
    /// Phase markers.
    pub(crate) const MARKER_PHASE: RGBColor = RGBColor(0x80, 0x80, 0x80);
    /// Reconfiguration markers.
    pub(crate) const MARKER_RECONFIGURE: RGBColor = RGBColor(0x7b, 0x32, 0x94);
    /// Warning markers.
    pub(crate) const MARKER_WARNING: RGBColor = RGBColor(0xb3, 0x6b, 0x00);
    /// Text and axes.
    pub(crate) const INK: RGBColor = RGBColor(0x33, 0x33, 0x33);
    /// Secondary text.
    pub(crate) const MUTED: RGBColor = RGBColor(0x6b, 0x6b, 0x6b);
    /// Grid lines.
    pub(crate) const GRID: RGBColor = RGBColor(0xe4, 0xe4, 0xe4);
}

/// A sans-serif font of `px` CSS pixels (plotters writes `font-size = size / 1.24`).
/// The house style of every chart's grid, axes and labels; callers add the
/// light grid's strength, tick counts, formatters and descriptions.
pub(crate) fn house_mesh<'m, 'a, 'b, X: Ranged, Y: Ranged, DB: DrawingBackend>(
    mesh: &'m mut MeshStyle<'a, 'b, X, Y, DB>,
) -> &'m mut MeshStyle<'a, 'b, X, Y, DB> {
    mesh.max_light_lines(1)
        .bold_line_style(palette::GRID)
        .axis_style(palette::MUTED)
        .label_style(font(11.0).color(&palette::INK))
        .axis_desc_style(font(12.0).color(&palette::INK))
}

pub(crate) fn font(px: f64) -> FontDesc<'static> {
    ("sans-serif", px * 1.24).into_font()
}

/// Estimated width of `text` at `px`: the browser lays it out, this only spaces legends.
pub(crate) fn text_width(text: &str, px: f64) -> i32 {
    (text.chars().count() as f64 * px * 0.58).ceil() as i32
}

/// How a legend entry shows its series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Swatch {
    /// A short solid line: a data series.
    Line,
    /// A short dashed line: a limit or a fit.
    Dashed,
    /// A light box: a shaded interval.
    Band,
}

/// One legend entry: a short line (or box) in the series' color, then its label.
#[derive(Debug, Clone)]
pub(crate) struct LegendEntry {
    pub(crate) label: String,
    pub(crate) color: RGBColor,
    pub(crate) swatch: Swatch,
}

const TITLE_PX: f64 = 15.0;
const LEGEND_PX: f64 = 12.0;
const LEGEND_ROW: i32 = 17;

/// Draws the title and the legend rows at the top of `root` and returns the area left for
/// the plot. `note` (muted text) follows the legend entries.
pub(crate) fn frame<'a>(
    root: &Area<'a>,
    title: &str,
    legend: &[LegendEntry],
    note: Option<&str>,
) -> Result<Area<'a>, DrawError> {
    root.fill(&WHITE)?;
    let title_style = font(TITLE_PX).style(FontStyle::Bold).color(&palette::INK);
    root.draw(&Text::new(
        title.to_owned(),
        (12, 8),
        title_style.pos(Pos::new(HPos::Left, VPos::Top)),
    ))?;
    let width = root.dim_in_pixel().0 as i32 - 12;
    let (mut x, mut y) = (12, 32);
    let text_style = font(LEGEND_PX)
        .color(&palette::INK)
        .pos(Pos::new(HPos::Left, VPos::Center));
    for entry in legend {
        let w = 26 + text_width(&entry.label, LEGEND_PX) + 14;
        if x + w > width && x > 12 {
            (x, y) = (12, y + LEGEND_ROW);
        }
        let style = entry.color.stroke_width(3);
        match entry.swatch {
            Swatch::Dashed => {
                root.draw(&PathElement::new(vec![(x, y), (x + 8, y)], style))?;
                root.draw(&PathElement::new(vec![(x + 13, y), (x + 21, y)], style))?;
            }
            Swatch::Line => root.draw(&PathElement::new(vec![(x, y), (x + 21, y)], style))?,
            Swatch::Band => root.draw(&Rectangle::new(
                [(x, y - 6), (x + 21, y + 6)],
                entry.color.mix(pauses::BAND_OPACITY).filled(),
            ))?,
        }
        root.draw(&Text::new(
            entry.label.clone(),
            (x + 26, y),
            text_style.clone(),
        ))?;
        x += w;
    }
    if let Some(note) = note {
        let w = text_width(note, LEGEND_PX - 1.0);
        if x + w > width && x > 12 {
            (x, y) = (12, y + LEGEND_ROW);
        }
        let style = font(LEGEND_PX - 1.0)
            .style(FontStyle::Italic)
            .color(&palette::MUTED)
            .pos(Pos::new(HPos::Left, VPos::Center));
        root.draw(&Text::new(note.to_owned(), (x, y), style))?;
    }
    let header = (y + LEGEND_ROW / 2 + 4) as u32;
    Ok(root.split_vertically(header).1)
}

/// Draws a chart into an SVG string, tagged with `id` and an accessible title. A drawing
/// error (none is expected when drawing into memory) becomes a visible message instead.
pub(crate) fn svg(
    id: &str,
    title: &str,
    draw: impl FnOnce(&Area<'_>) -> Result<(), DrawError>,
) -> String {
    let mut buf = String::new();
    let outcome = {
        let root = SVGBackend::with_string(&mut buf, (WIDTH, HEIGHT)).into_drawing_area();
        draw(&root).and_then(|()| root.present())
    };
    if let Err(e) = outcome {
        return format!(
            "<svg id=\"{id}\" class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"60\"><text x=\"10\" y=\"30\">{}: {}</text></svg>",
            escape_html(title),
            escape_html(&e.to_string())
        );
    }
    let tag = format!(
        "<svg id=\"{id}\" class=\"chart\" role=\"img\" aria-label=\"{}\" ",
        escape_html(title)
    );
    buf.replacen("<svg ", &tag, 1)
}

/// Draws a muted message in the middle of `area`: for charts without data.
pub(crate) fn empty_message(area: &Area<'_>, message: &str) -> Result<(), DrawError> {
    let (w, h) = area.dim_in_pixel();
    let style = font(14.0)
        .color(&palette::MUTED)
        .pos(Pos::new(HPos::Center, VPos::Center));
    area.draw(&Text::new(
        message.to_owned(),
        (w as i32 / 2, h as i32 / 2),
        style,
    ))
}

/// Axis tick labels: at most two decimals, trailing zeros trimmed (`2`, `2.5`, `0.25`).
pub(crate) fn tick_label(value: f64) -> String {
    let text = format!("{value:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".to_owned()
    } else {
        text.to_owned()
    }
}

/// What every time chart of one run shares: the samples, the event markers, the x extent.
#[derive(Debug, Clone)]
pub(crate) struct Timeline<'a> {
    pub(crate) samples: &'a [runlog::Sample],
    pub(crate) events: &'a [Event],
    pub(crate) markers: Vec<Marker>,
    /// Paused intervals `(from_s, to_s)`.
    pub(crate) pauses: Vec<(f64, f64)>,
    /// When the drain began: the time of the first drain-phase sample, if any.
    pub(crate) drain_from: Option<f64>,
    pub(crate) x_max: f64,
}

impl<'a> Timeline<'a> {
    /// The timeline of a record: its samples, and markers for its events.
    pub(crate) fn of(record: &'a crate::RunRecord) -> Timeline<'a> {
        let samples = record.samples();
        let events = record.events();
        let markers = Marker::of_events(events);
        let last_sample = samples.last().map_or(0.0, |s| s.t_s);
        let last_event = markers.last().map_or(0.0, |m| m.at_s);
        let x_max = last_sample.max(last_event);
        Timeline {
            samples,
            events,
            markers,
            pauses: pauses::of_events(events, x_max),
            drain_from: samples.iter().find(|s| s.phase == "drain").map(|s| s.t_s),
            x_max,
        }
    }

    /// The event markers as the charts draw them: merged where too close to tell apart.
    pub(crate) fn marker_groups(&self) -> Vec<MarkerGroup> {
        MarkerGroup::group(&self.markers, self.x_max)
    }

    /// One value per sample, as `(t_s, value)` points.
    pub(crate) fn series(&self, value: impl Fn(&runlog::Sample) -> f64) -> Vec<(f64, f64)> {
        self.samples.iter().map(|s| (s.t_s, value(s))).collect()
    }

    /// One value per sample that has it, as `(t_s, value)` points: for readings only some
    /// samples carry (the disk tier's).
    pub(crate) fn partial_series(
        &self,
        value: impl Fn(&runlog::Sample) -> Option<f64>,
    ) -> Vec<(f64, f64)> {
        self.samples
            .iter()
            .filter_map(|s| value(s).map(|v| (s.t_s, v)))
            .collect()
    }

    /// A limit that can change live, as a step line starting at 0 s. The step is drawn at
    /// the reconfigure event of `knob` when one was logged, else at the end of the interval
    /// in which the limit changed. Empty while the limit is off.
    pub(crate) fn limit_steps(
        &self,
        knob: &str,
        limit: impl Fn(&runlog::Sample) -> Option<u64>,
    ) -> Vec<(f64, f64)> {
        let mut points: Vec<(f64, f64)> = Vec::new();
        let mut previous: Option<(f64, u64)> = None;
        for sample in self.samples {
            let Some(value) = limit(sample) else {
                previous = None;
                continue;
            };
            match previous {
                None if points.is_empty() => points.push((0.0, value as f64)),
                Some((since, p)) if p != value => {
                    let at = self.reconfigured_at(knob, since, sample.t_s);
                    points.push((at, p as f64));
                    points.push((at, value as f64));
                }
                _ => {}
            }
            points.push((sample.t_s, value as f64));
            previous = Some((sample.t_s, value));
        }
        points
    }

    /// When `knob` was last reconfigured in `(after, until]`; `until` when no event says.
    fn reconfigured_at(&self, knob: &str, after: f64, until: f64) -> f64 {
        self.events
            .iter()
            .rev()
            .find(|e| {
                matches!(&e.kind, EventKind::Reconfigure { knob: k, .. } if k == knob)
                    && e.at_s > after
                    && e.at_s <= until
            })
            .map_or(until, |e| e.at_s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use runlog::Sample;

    fn sample(t_s: f64, limit: u64) -> Sample {
        let mut s = Sample {
            t_s,
            ..Default::default()
        };
        s.limits.max_buffered_bytes = limit;
        s
    }

    #[test]
    fn a_limit_steps_at_its_reconfigure_event() {
        let samples = [sample(1.0, 100), sample(2.0, 100), sample(3.0, 50)];
        let events = [Event::new(
            2.4,
            EventKind::Reconfigure {
                knob: "max_buffered_bytes".into(),
                from: "100".into(),
                to: "50".into(),
                source: "tui".into(),
            },
        )];
        let timeline = Timeline {
            samples: &samples,
            events: &events,
            markers: Vec::new(),
            pauses: Vec::new(),
            drain_from: None,
            x_max: 3.0,
        };
        let steps =
            timeline.limit_steps("max_buffered_bytes", |s| Some(s.limits.max_buffered_bytes));
        assert_eq!(
            steps,
            [
                (0.0, 100.0),
                (1.0, 100.0),
                (2.0, 100.0),
                (2.4, 100.0),
                (2.4, 50.0),
                (3.0, 50.0)
            ]
        );
        // Without an event the step is at the end of the interval it happened in.
        let timeline = Timeline {
            events: &[],
            ..timeline
        };
        let steps =
            timeline.limit_steps("max_buffered_bytes", |s| Some(s.limits.max_buffered_bytes));
        assert_eq!(steps[3..], [(3.0, 100.0), (3.0, 50.0), (3.0, 50.0)]);
    }

    #[test]
    fn marker_labels_are_readable() {
        let events = [
            Event::new(
                2.0,
                EventKind::Reconfigure {
                    knob: "interval_us".into(),
                    from: "10000".into(),
                    to: "5000".into(),
                    source: "tui".into(),
                },
            ),
            Event::new(1.0, EventKind::Phase { name: "run".into() }),
            Event::new(
                3.0,
                EventKind::Reconfigure {
                    knob: "rate_per_sec".into(),
                    from: "1000".into(),
                    to: "unlimited".into(),
                    source: "tui".into(),
                },
            ),
        ];
        let labels: Vec<String> = Marker::of_events(&events)
            .into_iter()
            .map(|m| m.label)
            .collect();
        assert_eq!(labels, ["run", "interval = 5 ms", "rate = unlimited"]);
        assert_eq!(tick_label(2.50), "2.5");
        assert_eq!(tick_label(-0.0), "0");
        assert_eq!(markers::shorten("abcdef", 4), "abc…");
    }
}
