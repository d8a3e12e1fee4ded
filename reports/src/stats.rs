//! Small statistics over samples: the least-squares heap slope and run-phase selection.

use runlog::Sample;

/// A straight line fitted by least squares over part of a run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fit {
    /// The slope, in units of y per second.
    pub slope_per_s: f64,
    /// The value of the line at `t = 0`.
    pub intercept: f64,
    /// The first second the fit covers.
    pub from_s: f64,
    /// The last second the fit covers.
    pub to_s: f64,
}

impl Fit {
    /// The line's value at `t_s`.
    ///
    /// ```
    /// let fit = reports::Fit { slope_per_s: 2.0, intercept: 1.0, from_s: 0.0, to_s: 4.0 };
    /// assert_eq!(fit.at(3.0), 7.0);
    /// ```
    #[must_use]
    pub fn at(&self, t_s: f64) -> f64 {
        self.intercept + self.slope_per_s * t_s
    }
}

/// Fits `y = intercept + slope * t` by least squares; `None` for fewer than two distinct times.
pub(crate) fn least_squares(points: &[(f64, f64)]) -> Option<(f64, f64)> {
    let n = points.len() as f64;
    if points.len() < 2 {
        return None;
    }
    let mean_t = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let (mut stt, mut sty) = (0.0, 0.0);
    for &(t, y) in points {
        stt += (t - mean_t) * (t - mean_t);
        sty += (t - mean_t) * (y - mean_y);
    }
    if stt <= f64::EPSILON {
        return None;
    }
    let slope = sty / stt;
    Some((slope, mean_y - slope * mean_t))
}

/// The samples taken while producers ran: the drain's burst would distort rates and slopes.
/// All samples when none is marked `"run"` (a record written before phases existed).
pub(crate) fn run_phase(samples: &[Sample]) -> Vec<&Sample> {
    let run: Vec<&Sample> = samples.iter().filter(|s| s.phase != "drain").collect();
    if run.is_empty() {
        samples.iter().collect()
    } else {
        run
    }
}

/// The heap growth over the second half of the run phase: allocated heap bytes per second,
/// fitted by least squares. The drain's release of the buffer is not growth, so drain
/// samples are left out.
pub(crate) fn heap_slope(samples: &[Sample]) -> Option<Fit> {
    let run = run_phase(samples);
    let end = run.last()?.t_s;
    let half = end / 2.0;
    let points: Vec<(f64, f64)> = run
        .iter()
        .filter(|s| s.t_s >= half)
        .map(|s| (s.t_s, s.heap_allocated_bytes as f64))
        .collect();
    let (slope_per_s, intercept) = least_squares(&points)?;
    Some(Fit {
        slope_per_s,
        intercept,
        from_s: points.first()?.0,
        to_s: end,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fits_an_exact_line() {
        let points: Vec<(f64, f64)> = (0..10)
            .map(|i| (f64::from(i), 3.0 * f64::from(i) + 5.0))
            .collect();
        let (slope, intercept) = least_squares(&points).unwrap();
        assert!((slope - 3.0).abs() < 1e-9 && (intercept - 5.0).abs() < 1e-9);
        assert_eq!(least_squares(&points[..1]), None);
    }

    #[test]
    fn heap_slope_uses_the_second_half_of_the_run_phase() {
        let mut samples: Vec<Sample> = (1..=10)
            .map(|i| Sample {
                t_s: f64::from(i),
                // Flat first half, growing 100 B/s over the second.
                heap_allocated_bytes: if i <= 5 {
                    1000
                } else {
                    1000 + 100 * (i - 5) as u64
                },
                phase: "run".into(),
                ..Default::default()
            })
            .collect();
        samples.push(Sample {
            t_s: 10.1,
            heap_allocated_bytes: 0,
            phase: "drain".into(),
            ..Default::default()
        });
        let fit = heap_slope(&samples).unwrap();
        assert!((fit.slope_per_s - 100.0).abs() < 1e-9, "{fit:?}");
        assert_eq!((fit.from_s, fit.to_s), (5.0, 10.0));
    }
}
