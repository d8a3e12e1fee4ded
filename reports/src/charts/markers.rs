//! Event markers on the time charts: a vertical line per group of events, labelled in the
//! strip above the plot.
//!
//! Events closer together than [`MERGE_FRACTION`] of the time axis (a few pixels) share one
//! marker, labelled `3 events (#2)` and listed under its number in the report's marker
//! table. Labels never overprint: they are staggered over two rows, and when the full
//! labels do not fit, every marker of the chart is labelled by its number (`#2`) alone.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use runlog::{Event, EventKind};

use super::timechart::Chart;
use super::{Area, DrawError, font, palette, text_width};

/// Events closer than this share of the time axis are one marker: about 12 px of a chart.
pub(crate) const MERGE_FRACTION: f64 = 0.025;

/// One event as a marker: a reconfiguration, a phase change, a pause or a warning.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Marker {
    pub(crate) at_s: f64,
    pub(crate) label: String,
    pub(crate) color: RGBColor,
}

impl Marker {
    /// The markers of a run's events, in time order.
    pub(crate) fn of_events(events: &[Event]) -> Vec<Marker> {
        let mut markers: Vec<Marker> = events
            .iter()
            .map(|e| Marker {
                at_s: e.at_s,
                label: label(&e.kind),
                color: match &e.kind {
                    EventKind::Phase { .. } => palette::MARKER_PHASE,
                    EventKind::Reconfigure { .. } => palette::MARKER_RECONFIGURE,
                    EventKind::Warning { .. } | EventKind::Interrupted { .. } => {
                        palette::MARKER_WARNING
                    }
                },
            })
            .collect();
        markers.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));
        markers
    }
}

/// An event's marker label: short, in the words of the page.
fn label(kind: &EventKind) -> String {
    match kind {
        EventKind::Phase { name } => name.clone(),
        EventKind::Reconfigure { knob, to, .. } if knob == crate::charts::pauses::KNOB => {
            if to == crate::charts::pauses::PAUSED {
                "paused".to_owned()
            } else {
                "resumed".to_owned()
            }
        }
        EventKind::Reconfigure { knob, to, .. } => runlog::Knob::from_name(knob).map_or_else(
            || format!("{knob} = {to}"),
            |k| format!("{k} = {}", k.show_text(to)),
        ),
        EventKind::Warning { message } => format!("! {}", shorten(message, 28)),
        EventKind::Interrupted { signal, .. } => format!("! {signal}"),
    }
}

/// `text` cut to `max` characters, with an ellipsis when cut.
pub(crate) fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

/// The markers drawn as one line: one event, or several too close to tell apart.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MarkerGroup {
    /// 1, 2, ... in time order: the key into the marker table.
    pub(crate) number: usize,
    /// Where the line is drawn: the first event's time.
    pub(crate) at_s: f64,
    /// The events of the group, in time order.
    pub(crate) markers: Vec<Marker>,
}

impl MarkerGroup {
    /// Groups `markers` on an axis from 0 to `x_max` seconds: each group takes the events
    /// within [`MERGE_FRACTION`] of the axis after its first one.
    pub(crate) fn group(markers: &[Marker], x_max: f64) -> Vec<MarkerGroup> {
        let mut sorted = markers.to_vec();
        sorted.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));
        let window = x_max.max(0.0) * MERGE_FRACTION;
        let mut groups: Vec<MarkerGroup> = Vec::new();
        for marker in sorted {
            match groups.last_mut() {
                Some(g) if marker.at_s - g.at_s < window => g.markers.push(marker),
                _ => groups.push(MarkerGroup {
                    number: groups.len() + 1,
                    at_s: marker.at_s,
                    markers: vec![marker],
                }),
            }
        }
        groups
    }

    /// Whether several events share this marker.
    pub(crate) fn is_merged(&self) -> bool {
        self.markers.len() > 1
    }

    /// The key of the marker table: `#2`.
    pub(crate) fn key(&self) -> String {
        format!("#{}", self.number)
    }

    /// The full label: the event's own, or `3 events (#2)`.
    pub(crate) fn label(&self) -> String {
        match &self.markers[..] {
            [one] => one.label.clone(),
            many => format!("{} events ({})", many.len(), self.key()),
        }
    }

    /// The most urgent color of the group: warnings, then reconfigurations, then phases.
    pub(crate) fn color(&self) -> RGBColor {
        [
            palette::MARKER_WARNING,
            palette::MARKER_RECONFIGURE,
            palette::MARKER_PHASE,
        ]
        .into_iter()
        .find(|c| self.markers.iter().any(|m| m.color == *c))
        .unwrap_or_else(|| self.markers[0].color)
    }
}

/// Font size of full marker labels, and of number-only ones.
const FULL_PX: f64 = 11.0;
const KEY_PX: f64 = 10.0;
/// Rows of labels in the strip above the plot, and their spacing.
const ROWS: usize = 2;
const ROW_PX: i32 = 14;

/// Where one label goes: its row, whether it grows leftwards from its line, and its form
/// (0: the full label, 1: the number).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Slot {
    row: usize,
    grows_left: bool,
    form: usize,
}

/// Space between two labels in a row.
const GAP: i32 = 4;

/// Places one label per `xs` (ascending) in [`ROWS`] rows, at least [`GAP`] px apart,
/// each in its full form (`widths[0]`) where possible: while a label finds no row, a full
/// label in its way is cut to its number (`widths[1]`), the longest of those whose cut makes
/// room, else the longest. Labels that would pass `right` grow leftwards.
fn layout(xs: &[i32], widths: [&[i32]; 2], right: i32) -> Vec<Slot> {
    let mut forms = vec![0; xs.len()];
    loop {
        match try_layout(xs, widths, &forms, right) {
            Ok(slots) => return slots,
            Err((in_the_way, start)) => {
                let full: Vec<usize> = in_the_way.into_iter().filter(|&i| forms[i] == 0).collect();
                let longest =
                    |among: &mut dyn Iterator<Item = usize>| among.max_by_key(|&i| widths[0][i]);
                let makes_room = longest(
                    &mut full
                        .iter()
                        .copied()
                        .filter(|&i| xs[i] + widths[1][i] + GAP < start),
                );
                match makes_room.or_else(|| longest(&mut full.iter().copied())) {
                    Some(i) => forms[i] = 1,
                    // Numbers closer than the merge window allows: stagger them anyway.
                    None => {
                        return (0..xs.len())
                            .map(|i| Slot {
                                row: i % ROWS,
                                grows_left: false,
                                form: 1,
                            })
                            .collect();
                    }
                }
            }
        }
    }
}

/// One attempt of [`layout`] with the given forms: the slots, or, where a label found no
/// row, the labels holding the rows and where it starts.
fn try_layout(
    xs: &[i32],
    widths: [&[i32]; 2],
    forms: &[usize],
    right: i32,
) -> Result<Vec<Slot>, (Vec<usize>, i32)> {
    let mut rows: [Option<(usize, i32)>; ROWS] = [None; ROWS];
    let mut slots = Vec::with_capacity(xs.len());
    for (i, &x) in xs.iter().enumerate() {
        let form = forms[i];
        let w = widths[form][i];
        let grows_left = x + w > right;
        let (start, end) = if grows_left { (x - w, x) } else { (x, x + w) };
        let free = rows
            .iter()
            .position(|r| r.is_none_or(|(_, e)| e + GAP < start));
        let Some(row) = free else {
            return Err((rows.iter().flatten().map(|r| r.0).collect(), start));
        };
        rows[row] = Some((i, end));
        slots.push(Slot {
            row,
            grows_left,
            form,
        });
    }
    Ok(slots)
}

/// Vertical lines at each marker group, with their labels in the strip above the plot:
/// each its full label where the labels fit, else its number (see [`layout`]).
pub(crate) fn draw_markers(
    root: &Area<'_>,
    chart: &Chart<'_, '_>,
    markers: &[Marker],
    top: f64,
) -> Result<(), DrawError> {
    let x_range = chart.x_range();
    let groups: Vec<MarkerGroup> = MarkerGroup::group(markers, x_range.end)
        .into_iter()
        .filter(|g| x_range.contains(&g.at_s) || g.at_s == x_range.end)
        .collect();
    let xs: Vec<i32> = groups
        .iter()
        .map(|g| chart.backend_coord(&(g.at_s, top)).0)
        .collect();
    let plot_right = chart.backend_coord(&(x_range.end, 0.0)).0 + 20;
    let texts: [Vec<String>; 2] = [
        groups.iter().map(MarkerGroup::label).collect(),
        groups.iter().map(MarkerGroup::key).collect(),
    ];
    let px = [FULL_PX, KEY_PX];
    let widths: Vec<Vec<i32>> = (0..2)
        .map(|f| texts[f].iter().map(|t| text_width(t, px[f]) + 3).collect())
        .collect();
    let slots = layout(&xs, [&widths[0], &widths[1]], plot_right);
    for (i, ((group, x), slot)) in groups.iter().zip(xs).zip(slots).enumerate() {
        let (_, y_top) = chart.backend_coord(&(group.at_s, top));
        let (_, y_bottom) = chart.backend_coord(&(group.at_s, 0.0));
        let y = y_top - 6 - ROW_PX * slot.row as i32;
        let color = group.color();
        // The line rises beside its label like a flag pole, so each label finds its line.
        let line = color
            .mix(0.8)
            .stroke_width(if group.is_merged() { 2 } else { 1 });
        root.draw(&PathElement::new(vec![(x, y - 11), (x, y_bottom)], line))?;
        let (anchor, text_x) = if slot.grows_left {
            (HPos::Right, x - 3)
        } else {
            (HPos::Left, x + 3)
        };
        let style = font(px[slot.form])
            .color(&color)
            .pos(Pos::new(anchor, VPos::Bottom));
        let text = texts[slot.form][i].clone();
        root.draw(&Text::new(text, (text_x, y), style))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marker(at_s: f64, label: &str, color: RGBColor) -> Marker {
        Marker {
            at_s,
            label: label.into(),
            color,
        }
    }

    #[test]
    fn events_within_the_window_share_one_numbered_marker() {
        let markers = [
            marker(0.0, "run", palette::MARKER_PHASE),
            marker(19.9, "drain", palette::MARKER_PHASE),
            marker(19.95, "! stalled", palette::MARKER_WARNING),
            marker(10.0, "paused", palette::MARKER_RECONFIGURE),
            marker(20.0, "! SIGTERM", palette::MARKER_WARNING),
        ];
        let groups = MarkerGroup::group(&markers, 20.0);
        let labels: Vec<String> = groups.iter().map(MarkerGroup::label).collect();
        assert_eq!(labels, ["run", "paused", "3 events (#3)"]);
        assert_eq!(groups[2].color(), palette::MARKER_WARNING);
        assert_eq!(groups[2].markers.len(), 3);
        assert_eq!(groups[1].key(), "#2");
    }

    #[test]
    fn labels_in_the_way_are_cut_to_their_numbers() {
        let forms = |slots: &[Slot]| slots.iter().map(|s| s.form).collect::<Vec<_>>();
        let rows = |slots: &[Slot]| slots.iter().map(|s| s.row).collect::<Vec<_>>();
        // Room for all: full labels, staggered over the two rows.
        let slots = layout(&[0, 10, 100], [&[50, 50, 50], &[9, 9, 9]], 500);
        assert_eq!(
            (forms(&slots), rows(&slots)),
            (vec![0, 0, 0], vec![0, 1, 0])
        );
        // The third overlaps both rows: the label in its way whose number makes room is cut.
        let slots = layout(&[0, 30, 40], [&[50, 80, 50], &[9, 9, 9]], 500);
        assert_eq!(
            (forms(&slots), rows(&slots)),
            (vec![1, 0, 0], vec![0, 0, 1])
        );
        // Of two cuts that make room, the longer label's.
        let slots = layout(&[0, 10, 30], [&[50, 80, 50], &[9, 9, 9]], 500);
        assert_eq!(
            (forms(&slots), rows(&slots)),
            (vec![0, 1, 0], vec![0, 1, 1])
        );
        // Closer than the merge window allows: numbers, staggered.
        let slots = layout(&[0, 4, 8], [&[50, 80, 50], &[9, 9, 9]], 500);
        assert_eq!(
            (forms(&slots), rows(&slots)),
            (vec![1, 1, 1], vec![0, 1, 0])
        );
        // Near the right edge a label grows leftwards.
        assert!(layout(&[490], [&[50], &[9]], 500)[0].grows_left);
    }
}
