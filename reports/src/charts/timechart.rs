//! The time chart: lines over seconds since the start, event markers, a y axis in units.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{Area, DrawError, LegendEntry, Marker, font, frame, house_mesh, palette, tick_label};
use crate::downsample;
use crate::format::Scale;

/// How a line is stroked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LineStyle {
    /// A data series.
    Solid,
    /// A limit or a fitted line.
    Dashed,
}

/// One series of a time chart, in raw units (the chart's [`Scale`] divides them).
#[derive(Debug, Clone)]
pub(crate) struct Line {
    pub(crate) label: String,
    pub(crate) color: RGBColor,
    pub(crate) style: LineStyle,
    pub(crate) points: Vec<(f64, f64)>,
}

impl Line {
    pub(crate) fn solid(
        label: impl Into<String>,
        color: RGBColor,
        points: Vec<(f64, f64)>,
    ) -> Line {
        Line {
            label: label.into(),
            color,
            style: LineStyle::Solid,
            points,
        }
    }

    pub(crate) fn dashed(
        label: impl Into<String>,
        color: RGBColor,
        points: Vec<(f64, f64)>,
    ) -> Line {
        Line {
            label: label.into(),
            color,
            style: LineStyle::Dashed,
            points,
        }
    }
}

/// A chart of lines over time.
#[derive(Debug, Clone)]
pub(crate) struct TimeChart<'a> {
    /// The SVG element id.
    pub(crate) id: &'static str,
    pub(crate) title: String,
    /// What the y axis shows; the unit is appended in parentheses.
    pub(crate) y_desc: &'static str,
    pub(crate) scale: Scale,
    pub(crate) lines: Vec<Line>,
    pub(crate) markers: &'a [Marker],
    /// The end of the x axis, in seconds.
    pub(crate) x_max: f64,
    /// The top of the y axis in raw units; larger values are drawn at the top edge.
    /// `None`: the largest value.
    pub(crate) y_cap: Option<f64>,
    /// Muted text after the legend.
    pub(crate) note: Option<String>,
}

/// Room above the plot for marker labels.
const MARKER_STRIP: i32 = 30;

impl<'a> TimeChart<'a> {
    /// A chart over `timeline` (its markers and x range), with no y cap or note.
    pub(crate) fn over(
        timeline: &'a super::Timeline<'_>,
        id: &'static str,
        title: impl Into<String>,
        y_desc: &'static str,
        scale: Scale,
        lines: Vec<Line>,
    ) -> Self {
        TimeChart {
            id,
            title: title.into(),
            y_desc,
            scale,
            lines,
            markers: &timeline.markers,
            x_max: timeline.x_max,
            y_cap: None,
            note: None,
        }
    }

    /// The chart as an `<svg>` element.
    pub(crate) fn render(&self) -> String {
        super::svg(self.id, &self.title, |root| self.draw(root))
    }

    fn draw(&self, root: &Area<'_>) -> Result<(), DrawError> {
        let legend: Vec<LegendEntry> = self
            .lines
            .iter()
            .map(|l| LegendEntry {
                label: l.label.clone(),
                color: l.color,
                dashed: l.style == LineStyle::Dashed,
            })
            .collect();
        let body = frame(root, &self.title, &legend, self.note.as_deref())?;
        if self.lines.iter().all(|l| l.points.is_empty()) {
            return super::empty_message(&body, "no samples");
        }
        let top = self.y_top() / self.scale.div;
        let x_max = if self.x_max > 0.0 { self.x_max } else { 1.0 };
        let mut chart = ChartBuilder::on(&body)
            .margin_left(8)
            .margin_right(22)
            .margin_top(MARKER_STRIP)
            .margin_bottom(6)
            .x_label_area_size(38)
            .y_label_area_size(62)
            .build_cartesian_2d(0.0..x_max, 0.0..top)?;
        let y_fmt = |v: &f64| tick_label(*v);
        let x_fmt = |v: &f64| tick_label(*v);
        house_mesh(&mut chart.configure_mesh())
            .light_line_style(palette::GRID.mix(0.5))
            .x_labels(8)
            .y_labels(6)
            .x_label_formatter(&x_fmt)
            .y_label_formatter(&y_fmt)
            .x_desc("time since start (s)")
            .y_desc(format!("{} ({})", self.y_desc, self.scale.unit))
            .draw()?;
        self.draw_lines(&mut chart, top)?;
        draw_markers(root, &chart, self.markers, top)
    }

    /// The series, pooled, scaled and clamped to the axis. The first line listed is drawn
    /// last (on top); dashed limits and fits go over all of them, so a series running along
    /// its limit still shows through the gaps.
    fn draw_lines(&self, chart: &mut Chart<'_, '_>, top: f64) -> Result<(), DrawError> {
        let solid = self
            .lines
            .iter()
            .rev()
            .filter(|l| l.style == LineStyle::Solid);
        let dashed = self.lines.iter().filter(|l| l.style == LineStyle::Dashed);
        for line in solid.chain(dashed) {
            let points: Vec<(f64, f64)> = downsample::bounded(&line.points)
                .into_iter()
                .map(|(t, v)| (t, (v / self.scale.div).clamp(0.0, top)))
                .collect();
            let style = line.color.stroke_width(2);
            match line.style {
                LineStyle::Solid => {
                    chart.draw_series(LineSeries::new(points, style))?;
                }
                LineStyle::Dashed => {
                    chart.draw_series(DashedLineSeries::new(points, 7, 5, style))?;
                }
            }
        }
        Ok(())
    }

    /// The y axis' top in raw units: the cap, or the largest value, with headroom.
    fn y_top(&self) -> f64 {
        let max = self.y_cap.unwrap_or_else(|| {
            self.lines
                .iter()
                .flat_map(|l| l.points.iter().map(|p| p.1))
                .fold(0.0, f64::max)
        });
        if max > 0.0 {
            max * 1.08
        } else {
            self.scale.div
        }
    }
}

type Chart<'a, 'b> = ChartContext<
    'a,
    SVGBackend<'b>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

/// Vertical lines at each marker, with their labels in the strip above the plot, staggered
/// over two rows so neighbours do not overlap; labels near the right edge grow leftwards.
pub(crate) fn draw_markers(
    root: &Area<'_>,
    chart: &Chart<'_, '_>,
    markers: &[Marker],
    top: f64,
) -> Result<(), DrawError> {
    let x_range = chart.x_range();
    let mut row_end = [i32::MIN; 2];
    for marker in markers
        .iter()
        .filter(|m| x_range.contains(&m.at_s) || m.at_s == x_range.end)
    {
        let (x, y_top) = chart.backend_coord(&(marker.at_s, top));
        let (_, y_bottom) = chart.backend_coord(&(marker.at_s, 0.0));
        let width = super::text_width(&marker.label, 11.0);
        let plot_right = chart.backend_coord(&(x_range.end, 0.0)).0;
        let grows_left = x + width > plot_right + 20;
        let (anchor, start, end) = if grows_left {
            (HPos::Right, x - width, x)
        } else {
            (HPos::Left, x, x + width)
        };
        let row = row_end.iter().position(|&e| e + 6 < start).unwrap_or(0);
        row_end[row] = end;
        let y = y_top - 6 - 14 * row as i32;
        // The line rises beside its label like a flag pole, so each label finds its line.
        let line = marker.color.mix(0.8).stroke_width(1);
        root.draw(&PathElement::new(vec![(x, y - 11), (x, y_bottom)], line))?;
        let style = font(11.0)
            .color(&marker.color)
            .pos(Pos::new(anchor, VPos::Bottom));
        let text_x = if grows_left { x - 3 } else { x + 3 };
        root.draw(&Text::new(marker.label.clone(), (text_x, y), style))?;
    }
    Ok(())
}
