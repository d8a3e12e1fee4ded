//! The one time chart every panel over time uses (throughput, latency, heap and RSS, CPU):
//! a legend row above the plot, so it never covers data, a scaled y axis in the panel's
//! unit, and the run's marks (limit changes, pauses) as labelled vertical lines.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Chart, Dataset, GraphType, Paragraph, Widget};

use crate::app::App;
use crate::format;
use crate::marks::{Mark, MarkKind};
use crate::ui::{dim, palette, panel};

/// The glyph a mark's line is drawn with (in the plot's empty cells).
pub(crate) const MARK_GLYPH: &str = "┊";

/// One line of a chart.
pub(crate) struct Series {
    /// Its name in the legend.
    pub(crate) name: &'static str,
    /// Its colour (ignored without colour: its marker tells it apart).
    pub(crate) colour: Color,
    /// `(run time in s, value)`, oldest first.
    pub(crate) points: Vec<(f64, f64)>,
    /// Its newest value as the legend shows it.
    pub(crate) now: String,
}

/// A chart over run time.
pub(crate) struct TimeChart {
    pub(crate) title: String,
    pub(crate) series: Vec<Series>,
    /// The y axis' top (the bottom is 0).
    pub(crate) top: f64,
    /// How the y axis writes a value.
    pub(crate) unit: fn(f64) -> String,
}

impl TimeChart {
    /// A chart with `series`, its y axis from 0 to a little over the largest value.
    pub(crate) fn new(
        title: impl Into<String>,
        series: Vec<Series>,
        unit: fn(f64) -> String,
    ) -> Self {
        let top = series
            .iter()
            .flat_map(|s| s.points.iter().map(|&(_, y)| y))
            .fold(0.0_f64, f64::max);
        Self {
            title: title.into(),
            series,
            top: if top > 0.0 { top * 1.1 } else { 1.0 },
            unit,
        }
    }

    /// Draws the chart of `app`'s run in `area`, with `app`'s marks.
    pub(crate) fn render(&self, app: &App, area: Rect, buf: &mut Buffer) {
        let block = panel(&self.title);
        let inner = block.inner(area);
        block.render(area, buf);
        let Some((t0, t1)) = self.span() else {
            Paragraph::new("waiting for samples...")
                .style(dim())
                .render(inner, buf);
            return;
        };
        if inner.height < 5 || inner.width < 12 {
            return;
        }
        let marks: Vec<Mark> = app
            .marks()
            .filter(|m| (t0..=t1).contains(&m.at_s))
            .copied()
            .collect();
        let legend = self.legend(app.colour(), &marks, inner.width);
        // The legend takes the rows it needs above the plot.
        let rows = u16::try_from(legend.len()).unwrap_or(u16::MAX);
        let [legend_area, plot] =
            Layout::vertical([Constraint::Length(rows), Constraint::Min(0)]).areas(inner);
        Paragraph::new(legend).render(legend_area, buf);

        let datasets = self
            .series
            .iter()
            .enumerate()
            .map(|(i, s)| {
                Dataset::default()
                    .marker(palette::marker(i, app.colour()))
                    .graph_type(GraphType::Line)
                    .style(Style::new().fg(s.colour))
                    .data(&s.points)
            })
            .collect();
        let unit = self.unit;
        Chart::new(datasets)
            .x_axis(
                Axis::default()
                    .bounds([t0, t1])
                    .labels([format::seconds(t0), format::seconds(t1)])
                    .style(dim()),
            )
            .y_axis(
                Axis::default()
                    .bounds([0.0, self.top])
                    .labels([unit(0.0), unit(self.top / 2.0), unit(self.top)])
                    .style(dim()),
            )
            .legend_position(None)
            .render(plot, buf);
        if let Some(graph) = graph_area(buf, plot) {
            for mark in &marks {
                draw_mark(buf, graph, (t0, t1), mark);
            }
        }
    }

    /// The run time the chart spans: its first point to its newest, at least a second.
    fn span(&self) -> Option<(f64, f64)> {
        let times = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|&(t, _)| t));
        let t1 = times
            .clone()
            .fold(None, |m: Option<f64>, t| Some(m.map_or(t, |m| m.max(t))))?;
        let t0 = times.fold(t1, f64::min).min(t1 - 1.0);
        Some((t0, t1))
    }

    /// The legend rows, at most `width` wide: each series' symbol, name and newest value,
    /// then the marks shown; an entry that does not fit a row starts the next.
    pub(crate) fn legend(&self, colour: bool, marks: &[Mark], width: u16) -> Vec<Line<'static>> {
        let mut entries: Vec<[Span<'static>; 2]> = Vec::new();
        for (i, s) in self.series.iter().enumerate() {
            entries.push([
                Span::styled(
                    format!("{} ", palette::legend_symbol(i, colour)),
                    Style::new().fg(s.colour),
                ),
                Span::raw(format!("{} {}  ", s.name, s.now)),
            ]);
        }
        for kind in [MarkKind::Limit, MarkKind::Pause, MarkKind::Resume] {
            if marks.iter().any(|m| m.kind == kind) {
                entries.push([
                    Span::styled(
                        format!("{MARK_GLYPH}{} ", kind.letter()),
                        Style::new().fg(palette::mark_colour(kind)),
                    ),
                    Span::styled(format!("{}  ", kind.name()), dim()),
                ]);
            }
        }
        let mut rows: Vec<Line<'static>> = vec![Line::default()];
        for entry in entries {
            let entry_width: usize = entry.iter().map(Span::width).sum();
            let row = rows.last_mut().expect("a row");
            if row.width() > 0 && row.width() + entry_width > usize::from(width) + 2 {
                rows.push(Line::from(Vec::from(entry)));
            } else {
                row.spans.extend(entry);
            }
        }
        rows
    }
}

/// The plot's cells inside `area` once the chart is drawn: right of the y axis and above
/// the x axis, found from what was drawn: the axes' corner `└` and the y axis' `│` above it.
pub(crate) fn graph_area(buf: &Buffer, area: Rect) -> Option<Rect> {
    let area = area.intersection(buf.area);
    let symbol = |x, y| buf.cell(Position::new(x, y)).map(|c| c.symbol());
    let corner = area
        .rows()
        .flat_map(|row| row.columns())
        .find(|p| symbol(p.x, p.y) == Some("└"))?;
    let mut top = corner.y;
    while top > area.top() && symbol(corner.x, top - 1) == Some("│") {
        top -= 1;
    }
    let x = corner.x + 1;
    (x < area.right() && top < corner.y)
        .then(|| Rect::new(x, top, area.right() - x, corner.y - top))
}

/// The column of run time `t` in `graph`, which spans `(t0, t1)`.
pub(crate) fn column(graph: Rect, (t0, t1): (f64, f64), t: f64) -> u16 {
    let fraction = ((t - t0) / (t1 - t0)).clamp(0.0, 1.0);
    graph.x + (fraction * f64::from(graph.width.saturating_sub(1))).round() as u16
}

/// A mark: its letter in the top row, its line in the column's empty cells (data drawn
/// there stays visible).
fn draw_mark(buf: &mut Buffer, graph: Rect, span: (f64, f64), mark: &Mark) {
    let x = column(graph, span, mark.at_s);
    let style = Style::new().fg(palette::mark_colour(mark.kind));
    for y in graph.top()..graph.bottom() {
        let cell = &mut buf[(x, y)];
        if y == graph.top() {
            cell.set_char(mark.kind.letter()).set_style(style);
        } else if cell.symbol() == " " {
            cell.set_symbol(MARK_GLYPH).set_style(style);
        }
    }
}
