//! Pauses: the stretches in which the producers were paused, from a pause event to its
//! resume (or the end of the run), shaded as light bands on every time chart.

use plotters::prelude::*;
use runlog::{Event, EventKind};

use super::DrawError;
use super::timechart::Chart;

/// The knob a pause or a resume is recorded under (`producers: running -> paused`).
pub(crate) const KNOB: &str = "producers";
/// The value of [`KNOB`] while paused.
pub(crate) const PAUSED: &str = "paused";

/// The band's fill, light enough that lines and grid show through.
pub(crate) const BAND: RGBColor = RGBColor(0x9e, 0xb9, 0xd4);
/// How opaque the band is.
pub(crate) const BAND_OPACITY: f64 = 0.28;

/// The paused intervals `(from_s, to_s)` of a run's events, in time order; a pause never
/// resumed lasts until `end_s`.
pub(crate) fn of_events(events: &[Event], end_s: f64) -> Vec<(f64, f64)> {
    let mut changes: Vec<(f64, bool)> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Reconfigure { knob, to, .. } if knob == KNOB => Some((e.at_s, to == PAUSED)),
            _ => None,
        })
        .collect();
    changes.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut bands = Vec::new();
    let mut since: Option<f64> = None;
    for (at_s, paused) in changes {
        match (since, paused) {
            (None, true) => since = Some(at_s),
            (Some(from), false) => {
                bands.push((from, at_s));
                since = None;
            }
            _ => {}
        }
    }
    if let Some(from) = since {
        bands.push((from, end_s.max(from)));
    }
    bands
}

/// Shades `bands` over the whole height (0 to `top`) of `chart`.
pub(crate) fn draw(
    chart: &mut Chart<'_, '_>,
    bands: &[(f64, f64)],
    top: f64,
) -> Result<(), DrawError> {
    let style = BAND.mix(BAND_OPACITY).filled();
    chart.draw_series(
        bands
            .iter()
            .map(|&(from, to)| Rectangle::new([(from, 0.0), (to, top)], style)),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn producers(at_s: f64, to: &str) -> Event {
        Event::new(
            at_s,
            EventKind::Reconfigure {
                knob: KNOB.into(),
                from: String::new(),
                to: to.into(),
                source: "tui".into(),
            },
        )
    }

    #[test]
    fn a_pause_lasts_until_its_resume_or_the_end() {
        let events = [
            producers(2.0, "paused"),
            producers(5.0, "running"),
            Event::new(6.0, EventKind::Phase { name: "x".into() }),
            producers(8.0, "paused"),
        ];
        assert_eq!(of_events(&events, 10.0), [(2.0, 5.0), (8.0, 10.0)]);
        assert!(of_events(&[producers(1.0, "running")], 10.0).is_empty());
    }
}
