//! Human-readable numbers: counts, rates, bytes, durations, and axis scales.

/// `14761244` -> `"14,761,244"`.
pub(crate) fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A decimal magnitude: `723117.6` -> `"723.1k"`.
pub(crate) fn si(value: f64) -> String {
    let a = value.abs();
    if a >= 1e9 {
        format!("{:.2}G", value / 1e9)
    } else if a >= 1e6 {
        format!("{:.2}M", value / 1e6)
    } else if a >= 1e3 {
        format!("{:.1}k", value / 1e3)
    } else if a >= 10.0 || a == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    }
}

/// Events per second: `"723.1k/s"`.
pub(crate) fn rate(per_sec: f64) -> String {
    format!("{}/s", si(per_sec))
}

/// Binary bytes: `91200800` -> `"87.0 MiB"`.
pub(crate) fn bytes(n: f64) -> String {
    let (div, unit) = bytes_unit(n.abs());
    if div == 1.0 {
        format!("{n:.0} B")
    } else {
        format!("{:.1} {unit}", n / div)
    }
}

/// Signed bytes per second, e.g. `"+12.0 KiB/s"`.
pub(crate) fn bytes_rate(per_sec: f64) -> String {
    let sign = if per_sec >= 0.0 { "+" } else { "-" };
    format!("{sign}{}/s", bytes(per_sec.abs()))
}

fn bytes_unit(n: f64) -> (f64, &'static str) {
    const KIB: f64 = 1024.0;
    if n >= KIB * KIB * KIB {
        (KIB * KIB * KIB, "GiB")
    } else if n >= KIB * KIB {
        (KIB * KIB, "MiB")
    } else if n >= KIB {
        (KIB, "KiB")
    } else {
        (1.0, "B")
    }
}

/// Microseconds as the most readable unit: `"250 µs"`, `"15.5 ms"`, `"1.26 s"`.
pub(crate) fn micros(us: f64) -> String {
    if us >= 1e6 {
        format!("{:.2} s", us / 1e6)
    } else if us >= 1e3 {
        format!("{:.1} ms", us / 1e3)
    } else {
        format!("{us:.0} µs")
    }
}

/// Seconds with one decimal: `"20.0 s"`.
pub(crate) fn seconds(s: f64) -> String {
    format!("{s:.1} s")
}

/// A percentage with two decimals: `"13.24%"`.
pub(crate) fn pct(p: f64) -> String {
    format!("{p:.2}%")
}

/// `part / whole` as a percentage, 0 when `whole` is 0.
pub(crate) fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

/// How a chart's y values are divided for display, and the unit that results.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Scale {
    /// Raw values are divided by this.
    pub(crate) div: f64,
    /// The unit of the divided values, for the axis label.
    pub(crate) unit: &'static str,
}

impl Scale {
    /// Bytes, in B, KiB, MiB or GiB by the largest value.
    pub(crate) fn bytes(max: f64) -> Scale {
        let (div, unit) = bytes_unit(max);
        Scale { div, unit }
    }

    /// Events per second, in plain, thousands or millions by the largest value.
    pub(crate) fn rate(max: f64) -> Scale {
        if max >= 1e6 {
            Scale {
                div: 1e6,
                unit: "M events/s",
            }
        } else if max >= 1e3 {
            Scale {
                div: 1e3,
                unit: "k events/s",
            }
        } else {
            Scale {
                div: 1.0,
                unit: "events/s",
            }
        }
    }

    /// Microseconds, in µs, ms or s by the largest value.
    pub(crate) fn micros(max: f64) -> Scale {
        if max >= 1e6 {
            Scale {
                div: 1e6,
                unit: "s",
            }
        } else if max >= 1e3 {
            Scale {
                div: 1e3,
                unit: "ms",
            }
        } else {
            Scale {
                div: 1.0,
                unit: "µs",
            }
        }
    }

    /// No scaling.
    pub(crate) fn plain(unit: &'static str) -> Scale {
        Scale { div: 1.0, unit }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_get_thousands_separators() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(14_761_244), "14,761,244");
    }

    #[test]
    fn units_are_chosen_by_magnitude() {
        assert_eq!(rate(723_117.6), "723.1k/s");
        assert_eq!(bytes(91_200_800.0), "87.0 MiB");
        assert_eq!(bytes(512.0), "512 B");
        assert_eq!(bytes_rate(-2048.0), "-2.0 KiB/s");
        assert_eq!(micros(15_519.0), "15.5 ms");
        assert_eq!(micros(250.0), "250 µs");
        assert_eq!(micros(1_260_000.0), "1.26 s");
        assert_eq!(Scale::bytes(67_108_864.0).unit, "MiB");
        assert_eq!(Scale::rate(5.9e6).unit, "M events/s");
    }
}
