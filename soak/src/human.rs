//! Human-readable figures for progress lines and the summary.

/// `1234567.0` -> `1.23M`, `5321.0` -> `5.3k`.
pub fn count(n: f64) -> String {
    let a = n.abs();
    if a >= 1e9 {
        format!("{:.2}G", n / 1e9)
    } else if a >= 1e6 {
        format!("{:.2}M", n / 1e6)
    } else if a >= 1e3 {
        format!("{:.1}k", n / 1e3)
    } else {
        format!("{n:.0}")
    }
}

/// Bytes in binary units: `1536` -> `1.5 KiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Microseconds, scaled: `850` -> `850 us`, `12_300` -> `12.3 ms`.
pub fn micros(us: u64) -> String {
    if us >= 1_000_000 {
        format!("{:.2} s", us as f64 / 1e6)
    } else if us >= 1_000 {
        format!("{:.1} ms", us as f64 / 1e3)
    } else {
        format!("{us} us")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_counts_bytes_and_times() {
        assert_eq!(count(999.0), "999");
        assert_eq!(count(5_321.0), "5.3k");
        assert_eq!(count(1_234_567.0), "1.23M");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(64 << 20), "64.0 MiB");
        assert_eq!(micros(850), "850 us");
        assert_eq!(micros(12_300), "12.3 ms");
        assert_eq!(micros(2_500_000), "2.50 s");
    }
}
