//! The drain burst, treated the same way on every time chart of every run.
//!
//! When the load stops, the buffered events are delivered as fast as the consumer can
//! take them: the last sample's rate can be tens of times the steady state, and drawn to
//! scale it would flatten the whole run into the floor. So the y axis is always fitted to
//! the steady state (the samples before the drain), and what the drain draws above it is
//! clipped at the top edge, with a note naming the peak: `drain: peak 16.86M/s, clipped`.

use super::Line;
use crate::format::Units;

/// How much room the axis leaves above the largest value it fits.
pub(crate) const HEADROOM: f64 = 1.08;

/// A chart's y axis fitted to the steady state, in raw units.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SteadyFit {
    /// The top of the y axis (with headroom).
    pub(crate) top: f64,
    /// The drain's largest value, when it is above `top` and so clipped.
    pub(crate) clipped_peak: Option<f64>,
}

impl SteadyFit {
    /// Fits `lines` to the values before `drain_from` (all values when there are none, or
    /// no drain); values from `drain_from` on that pass the top are clipped.
    pub(crate) fn of(lines: &[Line], drain_from: Option<f64>) -> SteadyFit {
        let values = |steady: bool| {
            lines
                .iter()
                .flat_map(|l| l.points.iter())
                .filter(move |(t, _)| !steady || drain_from.is_none_or(|d| *t < d))
                .map(|p| p.1)
                .filter(|v| v.is_finite())
                .fold(None, |acc: Option<f64>, v| {
                    Some(acc.map_or(v, |a| a.max(v)))
                })
        };
        let all = values(false).unwrap_or(0.0);
        let steady = values(true).unwrap_or(all);
        let top = steady * HEADROOM;
        SteadyFit {
            top,
            clipped_peak: (all > top && steady > 0.0).then_some(all),
        }
    }

    /// The note for the chart's legend row when the drain is clipped.
    pub(crate) fn note(&self, units: Units) -> Option<String> {
        self.clipped_peak
            .map(|peak| format!("drain: peak {}, clipped", units.show(peak)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::charts::palette;

    #[test]
    fn a_drain_burst_twenty_times_the_steady_state_is_clipped() {
        let mut points: Vec<(f64, f64)> = (1..=10).map(|t| (f64::from(t), 1000.0)).collect();
        points.push((10.5, 20_000.0));
        let lines = [Line::solid("delivered/s", palette::BLUE, points)];
        let fit = SteadyFit::of(&lines, Some(10.2));
        assert_eq!(fit.top, 1000.0 * HEADROOM);
        assert_eq!(fit.clipped_peak, Some(20_000.0));
        assert_eq!(
            fit.note(Units::Rate).as_deref(),
            Some("drain: peak 20.0k/s, clipped")
        );
        // A drain within the headroom is drawn whole; without a drain nothing is clipped.
        let calm = [Line::solid(
            "x",
            palette::BLUE,
            vec![(1.0, 100.0), (2.0, 105.0)],
        )];
        assert_eq!(SteadyFit::of(&calm, Some(1.5)).clipped_peak, None);
        assert_eq!(SteadyFit::of(&lines, None).clipped_peak, None);
        assert_eq!(SteadyFit::of(&lines, None).top, 20_000.0 * HEADROOM);
    }
}
