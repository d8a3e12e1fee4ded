//! The colours and symbols of the dashboard, and how it reads without colour.
//!
//! Colours are chosen to read on a dark terminal (no dark blue on black: `LightBlue`,
//! `Cyan`). Without colour (`NO_COLOR`, or [`DashboardOptions::colour`] off) every
//! series of a chart gets its own marker and legend symbol, and [`monochrome`] takes the
//! colours off the drawn screen, keeping highlights as reversed video.
//!
//! [`DashboardOptions::colour`]: crate::DashboardOptions::colour

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier};
use ratatui::symbols::Marker;

use crate::health::Health;
use crate::marks::MarkKind;

/// Secondary text: units, axis labels, placeholders.
pub(crate) const SECONDARY: Color = Color::Gray;
/// Panel borders.
pub(crate) const BORDER: Color = Color::DarkGray;
/// What is fine.
pub(crate) const GOOD: Color = Color::Green;
/// What is expected but worth seeing: backpressure, a pause, a value near its reference.
pub(crate) const NOTE: Color = Color::Yellow;
/// A real problem, and only that.
pub(crate) const BAD: Color = Color::LightRed;
/// Neutral information (phases, progress).
pub(crate) const INFO: Color = Color::LightBlue;

/// The markers of a chart's series in order, without colour; with colour every series
/// is a braille line.
const MONO_MARKERS: [Marker; 4] = [Marker::Braille, Marker::Dot, Marker::Bar, Marker::Block];

/// The marker of the `index`th series of a chart.
pub(crate) fn marker(index: usize, colour: bool) -> Marker {
    if colour {
        Marker::Braille
    } else {
        MONO_MARKERS[index % MONO_MARKERS.len()]
    }
}

/// The legend symbol of the `index`th series: a coloured square, or without colour the
/// symbol its marker draws.
pub(crate) fn legend_symbol(index: usize, colour: bool) -> &'static str {
    if colour {
        return "■";
    }
    match marker(index, colour) {
        Marker::Dot => "•",
        Marker::Bar => "▄",
        Marker::Block => "█",
        _ => "⣿",
    }
}

/// A mark's colour on the time charts.
pub(crate) fn mark_colour(kind: MarkKind) -> Color {
    match kind {
        MarkKind::Limit => Color::LightMagenta,
        MarkKind::Pause | MarkKind::Resume => Color::White,
    }
}

/// The colour of something that fills up (the buffer): green while low, yellow when
/// high or under backpressure, red only when the run has a real problem.
pub(crate) fn fill_colour(ratio: f64, health: &Health) -> Color {
    if health.is_problem() && ratio >= 0.6 {
        BAD
    } else if ratio >= 0.6 || health.is_expected_load() {
        NOTE
    } else {
        GOOD
    }
}

/// Takes every colour off `area` of `buf`. A cell with a background colour (a badge, the
/// selected row, a gauge's label) keeps its highlight as reversed video.
pub(crate) fn monochrome(buf: &mut Buffer, area: Rect) {
    let area = area.intersection(buf.area);
    for y in area.top()..area.bottom() {
        for x in area.left()..area.right() {
            let cell = &mut buf[(x, y)];
            if !matches!(cell.bg, Color::Reset | Color::Black) {
                cell.modifier.insert(Modifier::REVERSED);
            }
            cell.fg = Color::Reset;
            cell.bg = Color::Reset;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_colour_each_series_has_its_own_symbol() {
        let symbols: Vec<_> = (0..4).map(|i| legend_symbol(i, false)).collect();
        let mut unique = symbols.clone();
        unique.dedup();
        assert_eq!(unique.len(), 4, "{symbols:?}");
        assert!((0..4).all(|i| marker(i, true) == Marker::Braille));
    }

    #[test]
    fn the_buffer_fills_red_only_on_a_problem() {
        assert_eq!(fill_colour(0.95, &Health::Backpressure), NOTE);
        assert_eq!(fill_colour(0.2, &Health::Backpressure), NOTE);
        assert_eq!(fill_colour(0.95, &Health::Evicting { evicted: 9 }), NOTE);
        assert_eq!(fill_colour(0.2, &Health::Healthy), GOOD);
        assert_eq!(fill_colour(0.95, &Health::Problem("lost".into())), BAD);
    }
}
