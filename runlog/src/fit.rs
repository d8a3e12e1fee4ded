//! The heap-growth fit: a least-squares line over the second half of a run.
//! The soak's leak check and the report's heap chart both use it, so they
//! always agree.

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
    /// How many points it was fitted to.
    pub points: usize,
}

impl Fit {
    /// The line's value at `t_s`.
    ///
    /// ```
    /// let fit = runlog::Fit { slope_per_s: 2.0, intercept: 1.0, from_s: 0.0, to_s: 4.0, points: 5 };
    /// assert_eq!(fit.at(3.0), 7.0);
    /// ```
    #[must_use]
    pub fn at(&self, t_s: f64) -> f64 {
        self.intercept + self.slope_per_s * t_s
    }
}

/// Fits `y = intercept + slope * t` by least squares: `(slope, intercept)`,
/// `None` for fewer than two distinct times.
///
/// ```
/// let (slope, intercept) = runlog::least_squares(&[(0.0, 1.0), (1.0, 3.0), (2.0, 5.0)]).unwrap();
/// assert_eq!((slope, intercept), (2.0, 1.0));
/// ```
#[must_use]
pub fn least_squares(points: &[(f64, f64)]) -> Option<(f64, f64)> {
    if points.len() < 2 {
        return None;
    }
    let n = points.len() as f64;
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

/// The least-squares line through the points of the second half of the run
/// (`t >= last t / 2`); `None` if fewer than two distinct times are there.
/// Pass run-phase points only: the drain's release of the buffer is not growth.
///
/// ```
/// let heap: Vec<(f64, f64)> = (0..10).map(|t| (t as f64, 100.0 + 8.0 * t as f64)).collect();
/// let fit = runlog::second_half_fit(&heap).unwrap();
/// assert_eq!((fit.slope_per_s, fit.from_s, fit.points), (8.0, 5.0, 5));
/// ```
#[must_use]
pub fn second_half_fit(points: &[(f64, f64)]) -> Option<Fit> {
    let end = points.last()?.0;
    let half: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .filter(|p| p.0 >= end / 2.0)
        .collect();
    let (slope_per_s, intercept) = least_squares(&half)?;
    Some(Fit {
        slope_per_s,
        intercept,
        from_s: half.first()?.0,
        to_s: end,
        points: half.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fits_an_exact_line_and_needs_two_times() {
        let points = [(0.0, 1.0), (2.0, 5.0), (4.0, 9.0)];
        assert_eq!(least_squares(&points), Some((2.0, 1.0)));
        assert_eq!(least_squares(&points[..1]), None);
        assert_eq!(least_squares(&[(1.0, 1.0), (1.0, 2.0)]), None);
    }

    #[test]
    fn the_second_half_is_by_time() {
        let points: Vec<(f64, f64)> = (0..=10)
            .map(|t| (t as f64, if t < 5 { 0.0 } else { t as f64 }))
            .collect();
        let fit = second_half_fit(&points).expect("fit");
        assert_eq!((fit.from_s, fit.to_s, fit.points), (5.0, 10.0, 6));
        assert!((fit.slope_per_s - 1.0).abs() < 1e-12);
        assert_eq!(second_half_fit(&[]), None);
    }
}
