//! Figures for progress lines and the summary, in the one vocabulary of
//! [`runlog::human`]: these adapt the soak's integer counters to it.

pub use runlog::human::count;

/// Bytes in binary units: `1536` -> `1.5 KiB`.
pub fn bytes(n: u64) -> String {
    runlog::human::bytes(n as f64)
}

/// Microseconds, scaled: `850` -> `850 us`, `12_300` -> `12.3 ms`.
pub fn micros(us: u64) -> String {
    runlog::human::micros(us as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speaks_the_shared_vocabulary() {
        assert_eq!(count(5_321.0), "5.3k");
        assert_eq!(bytes(64 << 20), "64.0 MiB");
        assert_eq!(micros(850), "850 us");
        assert_eq!(micros(12_300), "12.3 ms");
        assert_eq!(micros(2_500_000), "2.5 s");
    }
}
