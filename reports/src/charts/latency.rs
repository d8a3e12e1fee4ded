//! Latency: per-interval percentiles over time, and the whole run's percentile spectrum.

use hdrhistogram::Histogram;
use plotters::prelude::*;

use super::{
    Area, DrawError, LegendEntry, Line, Swatch, TimeChart, Timeline, frame, house_mesh, palette,
    tick_label,
};
use crate::format::{self, Scale, Units};

/// p50, p99 and max of each sample interval (intervals without deliveries are skipped).
pub(crate) fn over_time_chart(timeline: &Timeline<'_>) -> String {
    let delivered: Vec<&runlog::Sample> = timeline
        .samples
        .iter()
        .filter(|s| s.latency_us.count > 0)
        .collect();
    let series = |f: fn(&runlog::Sample) -> u64| -> Vec<(f64, f64)> {
        delivered.iter().map(|s| (s.t_s, f(s) as f64)).collect()
    };
    let lines = vec![
        Line::solid("p50", palette::BLUE, series(|s| s.latency_us.p50)),
        Line::solid("p99", palette::ORANGE, series(|s| s.latency_us.p99)),
        Line::solid("max", palette::RED, series(|s| s.latency_us.max)),
    ];
    TimeChart::over(
        timeline,
        "chart-latency",
        "Latency per interval (enqueue to delivery)",
        "latency",
        Units::Micros,
        lines,
    )
    .render()
}

/// Steps along the "nines" axis: 50 per decade.
const STEPS_PER_NINE: usize = 50;

/// The spectrum's points: `x` in nines (`-log10(1 - q)`: 1 = p90, 2 = p99, ...), `y` in
/// microseconds, up to as many nines as the sample count supports (at most six).
pub(crate) fn spectrum_points(histogram: &Histogram<u64>) -> (Vec<(f64, f64)>, usize) {
    let supported = (histogram.len().max(1) as f64).log10().floor() as usize;
    let nines = supported.clamp(1, 6);
    let points = (0..=nines * STEPS_PER_NINE)
        .map(|i| {
            let x = i as f64 / STEPS_PER_NINE as f64;
            let q = 1.0 - 10f64.powf(-x);
            (x, histogram.value_at_quantile(q) as f64)
        })
        .collect();
    (points, nines)
}

/// The percentile of a point of the nines axis, as an axis label: `2` -> `"99%"`.
fn nines_label(x: f64) -> String {
    if (x - x.round()).abs() > 1e-6 {
        return String::new();
    }
    let pct = 100.0 * (1.0 - 10f64.powf(-x));
    let decimals = (x.round() as usize).saturating_sub(2);
    format!("{pct:.decimals$}%")
}

/// The whole-run percentile spectrum from the merged latency log; a message without one.
pub(crate) fn spectrum_chart(merged: Option<&Histogram<u64>>) -> String {
    let title = "Latency percentile spectrum (whole run, latency.hlog)";
    super::svg("chart-spectrum", title, |root| match merged {
        Some(h) => draw_spectrum(root, title, h),
        None => {
            let body = frame(root, title, &[], None)?;
            super::empty_message(&body, "no latency log")
        }
    })
}

fn draw_spectrum(
    root: &Area<'_>,
    title: &str,
    histogram: &Histogram<u64>,
) -> Result<(), DrawError> {
    let (points, nines) = spectrum_points(histogram);
    let scale = Scale::micros(histogram.max() as f64);
    let legend = [LegendEntry {
        label: format!(
            "latency at percentile (max {})",
            format::micros(histogram.max() as f64)
        ),
        color: palette::BLUE,
        swatch: Swatch::Line,
    }];
    let note = format!("{} deliveries", format::grouped(histogram.len()));
    let body = frame(root, title, &legend, Some(&note))?;
    let top = histogram.max().max(1) as f64 * 1.08 / scale.div;
    let mut chart = ChartBuilder::on(&body)
        .margin_left(8)
        .margin_right(36)
        .margin_top(12)
        .margin_bottom(6)
        .x_label_area_size(38)
        .y_label_area_size(62)
        .build_cartesian_2d(0.0..nines as f64, 0.0..top)?;
    let x_fmt = |x: &f64| nines_label(*x);
    let y_fmt = |v: &f64| tick_label(*v);
    house_mesh(&mut chart.configure_mesh())
        .light_line_style(palette::GRID.mix(0.6))
        .x_labels(nines + 1)
        .y_labels(6)
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .x_desc("percentile (log scale of nines)")
        .y_desc(format!("latency ({})", scale.unit))
        .draw()?;
    let scaled = points.into_iter().map(|(x, v)| (x, v / scale.div));
    chart.draw_series(LineSeries::new(scaled, palette::BLUE.stroke_width(2)))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nines_axis_labels() {
        assert_eq!(nines_label(0.0), "0%");
        assert_eq!(nines_label(1.0), "90%");
        assert_eq!(nines_label(2.0), "99%");
        assert_eq!(nines_label(3.0), "99.9%");
        assert_eq!(nines_label(5.0), "99.999%");
    }

    #[test]
    fn spectrum_spans_the_nines_the_count_supports() {
        let mut h = Histogram::<u64>::new(3).unwrap();
        for v in 1..=10_000u64 {
            h.record(v).unwrap();
        }
        let (points, nines) = spectrum_points(&h);
        assert_eq!(nines, 4);
        assert_eq!(points.len(), 4 * STEPS_PER_NINE + 1);
        assert!(points.windows(2).all(|w| w[0].1 <= w[1].1), "monotonic");
        let p99 = points[2 * STEPS_PER_NINE].1;
        assert!((9_890.0..=9_910.0).contains(&p99), "{p99}");
    }
}
