//! Figures for progress lines and the summary: the one vocabulary of [`runlog::human`].

pub use runlog::human::{bytes, count, micros, rate};

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
