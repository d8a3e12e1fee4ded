//! The heap-growth fit: a least-squares line over the second half of a run, or of each
//! stretch of it whose limits did not change. The soak's leak check and the report's heap
//! chart both use it, so they always agree.

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

/// The fewest points a stretch's fitted half needs for its slope to count as a trend.
pub const MIN_TREND_POINTS: usize = 4;

/// The heap trend over stretches of unchanged limits: `points` are `(t_s, heap, stretch)`
/// in time order, where `stretch` changes whenever the limits in force (or the pause)
/// change. Each stretch is fitted over its second half (after the heap settled to the
/// new limits); the fit returned is the one with the largest growth (slope times the
/// seconds it covers), among stretches with at least [`MIN_TREND_POINTS`] points there.
/// Also returns how many stretches there were. A change of limits is never read as growth.
///
/// ```
/// // Flat at 10, then the limit is raised and the heap steps up to 50 and stays flat.
/// let points: Vec<(f64, f64, u32)> = (0..20)
///     .map(|t| (t as f64, if t < 14 { 10.0 } else { 50.0 }, u32::from(t >= 14)))
///     .collect();
/// let (fit, stretches) = runlog::heap_trend(&points);
/// assert_eq!(stretches, 2);
/// assert_eq!(fit.unwrap().slope_per_s, 0.0);
/// // Over the whole run the step would have looked like growth.
/// let whole: Vec<(f64, f64)> = points.iter().map(|p| (p.0, p.1)).collect();
/// assert!(runlog::second_half_fit(&whole).unwrap().slope_per_s > 0.0);
/// ```
#[must_use]
pub fn heap_trend(points: &[(f64, f64, u32)]) -> (Option<Fit>, usize) {
    let mut fits = Vec::new();
    let mut stretches = 0;
    let mut rest = points;
    while let Some(first) = rest.first() {
        let len = rest.iter().take_while(|p| p.2 == first.2).count();
        let (stretch, next) = rest.split_at(len);
        stretches += 1;
        let start = stretch[0].0;
        let end = stretch[len - 1].0;
        let half: Vec<(f64, f64)> = stretch
            .iter()
            .filter(|p| p.0 >= start + (end - start) / 2.0)
            .map(|p| (p.0, p.1))
            .collect();
        if half.len() >= MIN_TREND_POINTS {
            if let Some((slope_per_s, intercept)) = least_squares(&half) {
                fits.push(Fit {
                    slope_per_s,
                    intercept,
                    from_s: half[0].0,
                    to_s: end,
                    points: half.len(),
                });
            }
        }
        rest = next;
    }
    let growth = |f: &Fit| f.slope_per_s * (f.to_s - f.from_s);
    let worst = fits
        .into_iter()
        .max_by(|a, b| growth(a).total_cmp(&growth(b)));
    (worst, stretches)
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
