//! Latency of the last interval: p50, p99 and max, and a bar per percentile coloured by
//! its value against what the run's limits explain (see [`Zones`]).

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Bar, BarChart, BarGroup, Paragraph, Widget};
use runlog::{LatencySummary, Sample};

use crate::app::App;
use crate::format;
use crate::ui::{dim, palette, panel};

/// What a latency should be, from the run's limits.
///
/// An event waits for its batch to flush (at most the flush interval), then for the
/// batches ahead of it: a full buffer delivered at the current rate. So: green up to
/// twice the interval (batching alone), yellow up to the interval plus a full buffer's
/// delivery time (queueing: the backpressure of a loaded run), red beyond (more than the
/// limits explain: the consumer stalls or the run is in trouble).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Zones {
    /// The top of green, in microseconds.
    pub(crate) batching_us: f64,
    /// The top of yellow, in microseconds.
    pub(crate) queueing_us: f64,
}

impl Zones {
    /// The zones of `sample`'s limits and delivery rate.
    pub(crate) fn of(sample: &Sample) -> Self {
        let interval = sample.limits.interval_us as f64;
        let full_buffer = if sample.delivered_bytes_per_sec > 0.0 {
            sample.limits.max_buffered_bytes as f64 / sample.delivered_bytes_per_sec * 1e6
        } else {
            0.0
        };
        let batching_us = 2.0 * interval;
        Self {
            batching_us,
            queueing_us: (interval + full_buffer).max(batching_us),
        }
    }

    /// The zone of a latency of `us`: 0 batching, 1 queueing, 2 beyond.
    fn zone(&self, us: u64) -> usize {
        let us = us as f64;
        if us <= self.batching_us {
            0
        } else if us <= self.queueing_us * 1.1 {
            1
        } else {
            2
        }
    }

    /// The colour of a latency of `us`.
    pub(crate) fn colour(&self, us: u64) -> Color {
        ZONE_COLOURS[self.zone(us)]
    }

    /// What a bar's label adds for a latency of `us` without colour: nothing, `~` or `!`.
    pub(crate) fn sign(&self, us: u64) -> &'static str {
        ZONE_SIGNS[self.zone(us)]
    }
}

/// The zones' colours: batching, queueing, beyond.
const ZONE_COLOURS: [Color; 3] = [palette::GOOD, palette::NOTE, palette::BAD];
/// The zones' signs without colour, after a bar's label and in the key.
const ZONE_SIGNS: [&str; 3] = ["", "~", "!"];

/// The latest sample if it measured deliveries; otherwise says why not (`none`, or that
/// samples are still to come) in `area`.
fn with_deliveries<'a>(
    app: &'a App,
    none: &str,
    area: Rect,
    buf: &mut Buffer,
) -> Option<&'a runlog::Sample> {
    let why = match app.latest() {
        Some(sample) if sample.latency_us.count > 0 => return Some(sample),
        Some(_) => none,
        None => "waiting for samples...",
    };
    Paragraph::new(why.to_owned())
        .style(dim())
        .render(area, buf);
    None
}

pub(crate) fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let block = panel(super::interval_title("Latency, enqueue to delivery", app));
    let inner = block.inner(area);
    block.render(area, buf);
    let Some(sample) = with_deliveries(
        app,
        "no deliveries recorded in the last interval",
        inner,
        buf,
    ) else {
        return;
    };
    let zones = Zones::of(sample);
    let [summary, key, chart] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(0),
    ])
    .areas(inner);
    Paragraph::new(summary_line(&sample.latency_us)).render(summary, buf);
    Paragraph::new(zones_line(&zones, app.colour())).render(key, buf);
    // BarChart needs a row for labels and one for a bar.
    if chart.height >= 2 && chart.width >= 5 {
        bars(&sample.latency_us, &zones, chart.width, app.colour()).render(chart, buf);
    }
}

/// The compact layout's panel: p50, p99 and max of the last interval, one a line (one
/// line when the panel is one row high), each value coloured by its zone (without
/// colour: followed by its zone's sign).
pub(crate) fn render_compact(app: &App, area: Rect, buf: &mut Buffer) {
    let block = panel(super::interval_title("Latency", app));
    let inner = block.inner(area);
    block.render(area, buf);
    let Some(sample) = with_deliveries(app, "no deliveries in the last interval", inner, buf)
    else {
        return;
    };
    let zones = Zones::of(sample);
    let l = &sample.latency_us;
    let bold = Style::new().add_modifier(Modifier::BOLD);
    let values = [("p50", l.p50), ("p99", l.p99), ("max", l.max)].map(|(name, us)| {
        let sign = if app.colour() { "" } else { zones.sign(us) };
        [
            Span::styled(format!("{name} "), dim()),
            Span::styled(
                format!("{}{sign}", format::micros(us)),
                bold.fg(zones.colour(us)),
            ),
        ]
    });
    let lines: Vec<Line<'static>> = if inner.height >= 3 {
        values
            .into_iter()
            .map(|v| Line::from(Vec::from(v)))
            .collect()
    } else {
        let spans = values
            .into_iter()
            .flat_map(|[name, value]| [name, value, Span::raw("  ")])
            .collect::<Vec<_>>();
        vec![Line::from(spans)]
    };
    Paragraph::new(lines).render(inner, buf);
}

fn summary_line(l: &LatencySummary) -> Line<'static> {
    let bold = Style::new().add_modifier(Modifier::BOLD);
    let mut spans = Vec::new();
    for (name, us) in [("p50", l.p50), ("p99", l.p99), ("max", l.max)] {
        spans.push(Span::styled(format!("{name} "), dim()));
        spans.push(Span::styled(format!("{}  ", format::micros(us)), bold));
    }
    spans.push(Span::styled(format!("n={}", format::count(l.count)), dim()));
    Line::from(spans)
}

/// The key: `■ ≤20 ms batching  ■ ≤216 ms full buffer  ■ beyond`, each `■` in its
/// zone's colour, or without colour the sign the bars' labels carry (`·`, `~`, `!`).
fn zones_line(z: &Zones, colour: bool) -> Line<'static> {
    let texts = [
        format!("≤{} batching  ", format::micros(z.batching_us)),
        format!("≤{} full buffer  ", format::micros(z.queueing_us)),
        "beyond".to_owned(),
    ];
    let mut spans = Vec::new();
    for (zone, text) in texts.into_iter().enumerate() {
        let symbol = match ZONE_SIGNS[zone] {
            _ if colour => "■",
            "" => "·",
            sign => sign,
        };
        spans.push(Span::styled(
            format!("{symbol} "),
            Style::new().fg(ZONE_COLOURS[zone]),
        ));
        spans.push(Span::styled(text, dim()));
    }
    Line::from(spans)
}

fn bars(l: &LatencySummary, zones: &Zones, width: u16, colour: bool) -> BarChart<'static> {
    let values = [
        ("p50", l.p50),
        ("p90", l.p90),
        ("p99", l.p99),
        ("p999", l.p999),
        ("max", l.max),
    ];
    let gap = 1;
    let bar_width = (width.saturating_sub(gap * 4) / 5).clamp(1, 10);
    let bars: Vec<Bar<'static>> = values
        .iter()
        .map(|&(name, us)| {
            let sign = if colour { "" } else { zones.sign(us) };
            let colour = zones.colour(us);
            Bar::default()
                .label(Line::from(format!("{name}{sign}")))
                .value(us)
                .text_value(format::micros(us))
                .style(Style::new().fg(colour))
                .value_style(Style::new().fg(Color::Black).bg(colour))
        })
        .collect();
    BarChart::default()
        .data(BarGroup::default().bars(&bars))
        .bar_width(bar_width)
        .bar_gap(gap)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::testing::{app_with_samples, draw, find_row, text};

    #[test]
    fn shows_percentiles_and_bars() {
        let app = app_with_samples(2);
        let buf = draw(60, 12, |area, buf| render(&app, area, buf));
        let screen = text(&buf);
        assert!(screen.contains("Latency, enqueue to delivery"), "{screen}");
        assert!(
            screen.contains("p50 1.2 ms  p99 4.5 ms  max 9.1 ms"),
            "{screen}"
        );
        for label in ["p90", "p999", "9.1 ms"] {
            assert!(screen.contains(label), "{label}\n{screen}");
        }
    }

    /// The bars' colours for one sample's latency, by label.
    fn bar_colours(latency: LatencySummary) -> impl Fn(&str) -> Color {
        let mut app = app_with_samples(0);
        let mut s = crate::ui::testing::sample(1.0);
        s.latency_us = latency;
        app.on_line(s.into());
        let buf = draw(70, 14, |area, buf| render(&app, area, buf));
        let (labels_y, labels) = find_row(&buf, "p999").expect("labels");
        move |name: &str| {
            let x = labels.find(name).expect("label") as u16;
            buf[(x, labels_y - 1)].bg
        }
    }

    #[test]
    fn bars_are_coloured_by_value_not_by_rank() {
        // Interval 10 ms; 64 MiB delivered at 96 MB/s take ~699 ms: green up to 20 ms,
        // yellow up to ~709 ms (+10%), red beyond.
        let colour_above = bar_colours(LatencySummary {
            count: 10,
            p50: 5_000,
            p90: 15_000,
            p99: 300_000,
            p999: 600_000,
            max: 2_000_000,
        });
        assert_eq!(colour_above("p50"), palette::GOOD);
        assert_eq!(colour_above("p90"), palette::GOOD);
        assert_eq!(colour_above("p99"), palette::NOTE);
        assert_eq!(colour_above("p999"), palette::NOTE);
        assert_eq!(colour_above("max"), palette::BAD);
        // All low: every bar green, the max too (no colour by rank).
        let colour_above = bar_colours(LatencySummary {
            count: 10,
            p50: 100,
            p90: 200,
            p99: 300,
            p999: 400,
            max: 500,
        });
        assert_eq!(colour_above("max"), palette::GOOD);
    }

    #[test]
    fn without_colour_the_bars_carry_their_zone_as_a_sign() {
        let options = crate::DashboardOptions::new("x/samples.jsonl").with_colour(false);
        let mut app = crate::App::new(&options);
        let mut s = crate::ui::testing::sample(1.0);
        s.latency_us = LatencySummary {
            count: 10,
            p50: 5_000,
            p90: 15_000,
            p99: 300_000,
            p999: 600_000,
            max: 2_000_000,
        };
        app.on_line(s.into());
        let buf = draw(70, 14, |area, buf| render(&app, area, buf));
        let (_, labels) = find_row(&buf, "p999").expect("labels");
        let words: Vec<&str> = labels
            .split(|c: char| c == '│' || c.is_whitespace())
            .filter(|w| !w.is_empty())
            .collect();
        assert_eq!(
            words,
            ["p50", "p90", "p99~", "p999~", "max!"],
            "{}",
            text(&buf)
        );
        assert!(
            text(&buf).contains("· ≤20 ms batching  ~ ≤"),
            "{}",
            text(&buf)
        );
    }

    #[test]
    fn says_when_nothing_was_delivered() {
        let mut app = app_with_samples(0);
        let mut sample = crate::ui::testing::sample(1.0);
        sample.latency_us = LatencySummary::default();
        app.on_line(sample.into());
        let buf = draw(60, 6, |area, buf| render(&app, area, buf));
        assert!(text(&buf).contains("no deliveries recorded"));
    }
}
