//! Small statistics over samples: the least-squares heap slope and run-phase selection.

use runlog::{Fit, Sample};

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

/// The heap growth of the run phase: allocated heap bytes per second, fitted by least
/// squares over the second half of each stretch of unchanged limits (and pause), the
/// stretch with the largest growth shown, as the soak's verdict judges it
/// ([`runlog::heap_trend`]). The drain's release of the buffer is not growth, so drain
/// samples are left out; nor is a limit raised.
pub(crate) fn heap_slope(samples: &[Sample]) -> Option<Fit> {
    let mut stretch = 0u32;
    let mut previous: Option<&Sample> = None;
    let mut points = Vec::new();
    for s in run_phase(samples) {
        if previous.is_some_and(|p| p.limits != s.limits || p.paused != s.paused) {
            stretch += 1;
        }
        previous = Some(s);
        points.push((s.t_s, s.heap_allocated_bytes as f64, stretch));
    }
    runlog::heap_trend(&points).0
}

#[cfg(test)]
mod tests {
    use super::*;
    use runlog::least_squares;

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
        // The second half of the run phase's 1..10 s.
        assert_eq!((fit.from_s, fit.to_s), (6.0, 10.0));
    }

    #[test]
    fn a_raised_limit_is_not_heap_growth() {
        // 20 flat samples; the limit is raised at 10 s and the heap steps up with it.
        let samples: Vec<Sample> = (1..=20)
            .map(|i| {
                let mut s = Sample {
                    t_s: f64::from(i),
                    heap_allocated_bytes: if i <= 10 { 1000 } else { 5000 },
                    phase: "run".into(),
                    ..Default::default()
                };
                s.limits.max_buffered_bytes = if i <= 10 { 1 << 20 } else { 1 << 30 };
                s
            })
            .collect();
        let fit = heap_slope(&samples).unwrap();
        assert_eq!(fit.slope_per_s, 0.0, "{fit:?}");
    }
}
