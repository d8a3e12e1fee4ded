//! Batches: mean batch size over time against the byte target, and flush reasons.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use runlog::FlushReasonCounts;

use super::{Area, DrawError, Line, TimeChart, Timeline, font, frame, house_mesh, palette};
use crate::format::{self, Units};

/// Mean bytes per delivered batch of each interval (intervals without batches skipped),
/// with the `max_batch_bytes` target in force.
pub(crate) fn size_chart(timeline: &Timeline<'_>) -> String {
    let means: Vec<(f64, f64)> = timeline
        .samples
        .iter()
        .filter(|s| s.batches_per_sec > 0.0)
        .map(|s| (s.t_s, s.mean_batch_bytes))
        .collect();
    let target = timeline.limit_steps("max_batch_bytes", |s| s.limits.max_batch_bytes);
    let mut lines = vec![Line::solid("mean batch bytes", palette::BLUE, means)];
    if !target.is_empty() {
        lines.push(Line::dashed("max batch target", palette::RED, target));
    }
    TimeChart::over(
        timeline,
        "chart-batch-size",
        "Batch size",
        "mean batch",
        Units::Bytes,
        lines,
    )
    .render()
}

/// The flush reasons with their names, in display order.
pub(crate) fn reasons(counts: &FlushReasonCounts) -> [(&'static str, u64); 5] {
    [
        ("interval", counts.interval),
        ("bytes", counts.bytes),
        ("items", counts.items),
        ("manual", counts.manual),
        ("drain", counts.drain),
    ]
}

/// A bar per flush reason with the total number of batches it cut.
pub(crate) fn flush_reasons_chart(counts: &FlushReasonCounts) -> String {
    let title = "Flush reasons (batches, whole run)";
    super::svg("chart-flush-reasons", title, |root| {
        draw_bars(root, title, counts)
    })
}

fn draw_bars(root: &Area<'_>, title: &str, counts: &FlushReasonCounts) -> Result<(), DrawError> {
    let note = format!("{} batches in all", format::grouped(counts.total()));
    let body = frame(root, title, &[], Some(&note))?;
    if counts.total() == 0 {
        return super::empty_message(&body, "no batches");
    }
    let bars = reasons(counts);
    let top = bars.iter().map(|b| b.1).max().unwrap_or(1) as f64 * 1.15;
    let mut chart = ChartBuilder::on(&body)
        .margin_left(8)
        .margin_right(22)
        .margin_top(12)
        .margin_bottom(6)
        .x_label_area_size(38)
        .y_label_area_size(62)
        .build_cartesian_2d(-0.5..bars.len() as f64 - 0.5, 0.0..top)?;
    let x_fmt = |x: &f64| {
        let on_bar = (x - x.round()).abs() < 1e-6 && *x >= 0.0;
        let bar = on_bar.then(|| bars.get(x.round() as usize)).flatten();
        bar.map_or_else(String::new, |b| b.0.to_owned())
    };
    let y_fmt = |v: &f64| runlog::human::count(*v);
    house_mesh(&mut chart.configure_mesh())
        .disable_x_mesh()
        .light_line_style(palette::GRID.mix(0.6))
        .x_labels(bars.len())
        .y_labels(6)
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .x_desc("flush reason")
        .y_desc("batches")
        .draw()?;
    chart.draw_series(bars.iter().enumerate().map(|(i, (_, n))| {
        let x = i as f64;
        Rectangle::new(
            [(x - 0.3, 0.0), (x + 0.3, *n as f64)],
            palette::BLUE.filled(),
        )
    }))?;
    let label_style = font(11.0)
        .color(&palette::INK)
        .pos(Pos::new(HPos::Center, VPos::Bottom));
    for (i, (_, n)) in bars.iter().enumerate() {
        let (x, y) = chart.backend_coord(&(i as f64, *n as f64));
        root.draw(&Text::new(
            format::grouped(*n),
            (x, y - 3),
            label_style.clone(),
        ))?;
    }
    Ok(())
}
