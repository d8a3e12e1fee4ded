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

/// The heap growth over the second half of the run phase: allocated heap bytes per second,
/// fitted by least squares. The drain's release of the buffer is not growth, so drain
/// samples are left out.
pub(crate) fn heap_slope(samples: &[Sample]) -> Option<Fit> {
    let points: Vec<(f64, f64)> = run_phase(samples)
        .iter()
        .map(|s| (s.t_s, s.heap_allocated_bytes as f64))
        .collect();
    runlog::second_half_fit(&points)
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
        assert_eq!((fit.from_s, fit.to_s), (5.0, 10.0));
    }
}
