//! Human-readable numbers: counts, rates, bytes, durations, and axis scales.

pub(crate) use runlog::human::{bytes, grouped, micros, percent, rate, seconds};

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

/// `part / whole` as a percentage, 0 when `whole` is 0.
pub(crate) fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

/// What a time chart's values measure: how its axis is scaled and a value is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Units {
    /// Events per second.
    Rate,
    /// Bytes.
    Bytes,
    /// Microseconds.
    Micros,
    /// Percent of one CPU core.
    CorePercent,
}

impl Units {
    /// The axis scale for values up to `max`.
    pub(crate) fn scale(self, max: f64) -> Scale {
        match self {
            Units::Rate => Scale::rate(max),
            Units::Bytes => Scale::bytes(max),
            Units::Micros => Scale::micros(max),
            Units::CorePercent => Scale::plain("% of one core"),
        }
    }

    /// One value in words for people: `16.86M/s`, `64.0 MiB`, `412 ms`, `134.21%`.
    pub(crate) fn show(self, value: f64) -> String {
        match self {
            Units::Rate => rate(value),
            Units::Bytes => bytes(value),
            Units::Micros => micros(value),
            Units::CorePercent => percent(value),
        }
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

    /// Microseconds, in us, ms or s by the largest value.
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
                unit: "us",
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
    fn the_page_speaks_the_shared_vocabulary() {
        assert_eq!(grouped(14_761_244), "14,761,244");
        assert_eq!(rate(723_117.6), "723.1k/s");
        assert_eq!(bytes(91_200_800.0), "87.0 MiB");
        assert_eq!(bytes_rate(-2048.0), "-2.0 KiB/s");
        assert_eq!(micros(15_519.0), "15.5 ms");
        assert_eq!(micros(250.0), "250 us");
        assert_eq!(Scale::bytes(67_108_864.0).unit, "MiB");
        assert_eq!(Scale::rate(5.9e6).unit, "M events/s");
        assert_eq!(Scale::micros(500.0).unit, "us");
        assert_eq!(Units::Rate.show(16_860_784.0), "16.86M/s");
        assert_eq!(Units::Bytes.scale(67_108_864.0).unit, "MiB");
    }
}
