//! The time chart: lines over seconds since the start, pause bands, event markers, a y
//! axis in units fitted to the steady state.

use plotters::prelude::*;

use super::drain::SteadyFit;
use super::markers::draw_markers;
use super::{
    Area, DrawError, LegendEntry, Marker, Swatch, frame, house_mesh, palette, pauses, tick_label,
};
use crate::downsample;
use crate::format::{Scale, Units};

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
    /// What the values measure: the axis scale and the drain note follow from it.
    pub(crate) units: Units,
    pub(crate) lines: Vec<Line>,
    pub(crate) markers: &'a [Marker],
    /// Paused intervals `(from_s, to_s)`, shaded.
    pub(crate) pauses: &'a [(f64, f64)],
    /// When the drain began: the y axis fits the values before it (see [`SteadyFit`]).
    pub(crate) drain_from: Option<f64>,
    /// The end of the x axis, in seconds.
    pub(crate) x_max: f64,
}

/// Room above the plot for marker labels.
const MARKER_STRIP: i32 = 30;

impl<'a> TimeChart<'a> {
    /// A chart over `timeline`: its markers, pauses, drain and x range.
    pub(crate) fn over(
        timeline: &'a super::Timeline<'_>,
        id: &'static str,
        title: impl Into<String>,
        y_desc: &'static str,
        units: Units,
        lines: Vec<Line>,
    ) -> Self {
        TimeChart {
            id,
            title: title.into(),
            y_desc,
            units,
            lines,
            markers: &timeline.markers,
            pauses: &timeline.pauses,
            drain_from: timeline.drain_from,
            x_max: timeline.x_max,
        }
    }

    /// The chart as an `<svg>` element.
    pub(crate) fn render(&self) -> String {
        super::svg(self.id, &self.title, |root| self.draw(root))
    }

    fn legend(&self) -> Vec<LegendEntry> {
        let mut legend: Vec<LegendEntry> = self
            .lines
            .iter()
            .map(|l| LegendEntry {
                label: l.label.clone(),
                color: l.color,
                swatch: match l.style {
                    LineStyle::Solid => Swatch::Line,
                    LineStyle::Dashed => Swatch::Dashed,
                },
            })
            .collect();
        if !self.pauses.is_empty() {
            legend.push(LegendEntry {
                label: "paused".into(),
                color: pauses::BAND,
                swatch: Swatch::Band,
            });
        }
        legend
    }

    fn draw(&self, root: &Area<'_>) -> Result<(), DrawError> {
        let fit = SteadyFit::of(&self.lines, self.drain_from);
        let note = fit.note(self.units);
        let body = frame(root, &self.title, &self.legend(), note.as_deref())?;
        if self.lines.iter().all(|l| l.points.is_empty()) {
            return super::empty_message(&body, "no samples");
        }
        let scale = self.units.scale(fit.top);
        let top = if fit.top > 0.0 { fit.top } else { scale.div } / scale.div;
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
            .y_desc(format!("{} ({})", self.y_desc, scale.unit))
            .draw()?;
        pauses::draw(&mut chart, self.pauses, top)?;
        self.draw_lines(&mut chart, &scale, top)?;
        draw_markers(root, &chart, self.markers, top)
    }

    /// The series, pooled, scaled and clamped to the axis. The first line listed is drawn
    /// last (on top); dashed limits and fits go over all of them, so a series running along
    /// its limit still shows through the gaps.
    fn draw_lines(
        &self,
        chart: &mut Chart<'_, '_>,
        scale: &Scale,
        top: f64,
    ) -> Result<(), DrawError> {
        let solid = self
            .lines
            .iter()
            .rev()
            .filter(|l| l.style == LineStyle::Solid);
        let dashed = self.lines.iter().filter(|l| l.style == LineStyle::Dashed);
        for line in solid.chain(dashed) {
            let points: Vec<(f64, f64)> = downsample::bounded(&line.points)
                .into_iter()
                .map(|(t, v)| (t, (v / scale.div).clamp(0.0, top)))
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
}

/// The plot of a time chart: seconds across, scaled values up.
pub(crate) type Chart<'a, 'b> = ChartContext<
    'a,
    SVGBackend<'b>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;
