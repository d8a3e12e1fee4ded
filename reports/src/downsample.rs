//! Min/max pooling: bounds the points of a time series while keeping every spike.

/// Points per series above which a series is pooled: about one point per pixel of a chart.
pub(crate) const MAX_POINTS: usize = 600;

/// Reduces `points` to at most `2 * buckets` points: the series is cut into `buckets` runs
/// of consecutive points and each run keeps its lowest and its highest point, in time
/// order. A spike is never averaged away, unlike with mean pooling or decimation.
///
/// Series of at most `2 * buckets` points are returned unchanged.
pub(crate) fn min_max_pool(points: &[(f64, f64)], buckets: usize) -> Vec<(f64, f64)> {
    if buckets == 0 || points.len() <= 2 * buckets {
        return points.to_vec();
    }
    let mut out = Vec::with_capacity(2 * buckets);
    for b in 0..buckets {
        let start = b * points.len() / buckets;
        let end = (b + 1) * points.len() / buckets;
        let chunk = &points[start..end];
        let (mut lo, mut hi) = (0, 0);
        for (i, p) in chunk.iter().enumerate() {
            if p.1 < chunk[lo].1 {
                lo = i;
            }
            if p.1 > chunk[hi].1 {
                hi = i;
            }
        }
        out.push(chunk[lo.min(hi)]);
        if lo != hi {
            out.push(chunk[lo.max(hi)]);
        }
    }
    out
}

/// Pools a series to at most [`MAX_POINTS`] points.
pub(crate) fn bounded(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    min_max_pool(points, MAX_POINTS / 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_series_are_unchanged() {
        let points = vec![(0.0, 1.0), (1.0, 5.0), (2.0, 2.0)];
        assert_eq!(min_max_pool(&points, 2), points);
    }

    #[test]
    fn a_single_spike_survives_pooling() {
        let mut points: Vec<(f64, f64)> = (0..3600).map(|i| (f64::from(i), 10.0)).collect();
        points[1234].1 = 1e6;
        points[2000].1 = -5.0;
        let pooled = min_max_pool(&points, 100);
        assert!(pooled.len() <= 200, "{}", pooled.len());
        assert!(pooled.contains(&(1234.0, 1e6)));
        assert!(pooled.contains(&(2000.0, -5.0)));
        assert!(
            pooled.windows(2).all(|w| w[0].0 < w[1].0),
            "time order is kept"
        );
        assert_eq!(pooled.first().unwrap().0, 0.0);
    }

    #[test]
    fn bounded_caps_the_point_count() {
        let points: Vec<(f64, f64)> = (0..3600)
            .map(|i| (f64::from(i), f64::from(i % 7)))
            .collect();
        assert!(bounded(&points).len() <= MAX_POINTS);
    }
}
