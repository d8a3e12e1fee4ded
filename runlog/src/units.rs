//! The values a threshold takes, and how they are shown: durations, shares, rates, bytes.

use crate::human;

/// What kind of value a metric has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Microseconds: `50ms`, `200us`, `1.5s`, `2m`.
    Duration,
    /// A percentage of offers (`1%`) or a count (`100`).
    Share,
    /// Events per second: `500k`, `500k/s`, `1.5M`.
    Rate,
    /// Bytes: `96MiB`, `100MB`, `4096`.
    Bytes,
}

/// The longest duration a threshold takes: one hour, in microseconds.
const MAX_DURATION_US: f64 = 3_600_000_000.0;
/// The largest rate: 10^9 events per second.
const MAX_RATE: f64 = 1e9;
/// The largest size: 1 TiB.
const MAX_BYTES: f64 = 1_099_511_627_776.0;

impl Kind {
    /// The accepted forms and range, for error messages.
    pub(crate) fn expected(self) -> &'static str {
        match self {
            Self::Duration => "a duration from 0 to 1h, e.g. 50ms, 200us, 1.5s",
            Self::Share => "a percentage in 0%..=100% (e.g. 1%) or a count of events (e.g. 100)",
            Self::Rate => "events per second from 0 to 1G, e.g. 500k, 500k/s, 1.5M",
            Self::Bytes => "a size from 0 to 1TiB, e.g. 96MiB, 100MB, 4096",
        }
    }
}

/// Parses `text` as a value of `kind`: the value in the kind's unit and, for shares,
/// whether it is a percentage. `None` when it does not parse or is out of range.
pub(crate) fn parse(kind: Kind, text: &str) -> Option<(f64, bool)> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok().filter(|n: &f64| n.is_finite())?;
    let unit = unit.trim();
    let (value, percent, max) = match kind {
        Kind::Duration => (number * duration_unit(unit)?, false, MAX_DURATION_US),
        Kind::Share => match unit {
            "%" => (number, true, 100.0),
            "" if number.fract() == 0.0 => (number, false, f64::MAX),
            _ => return None,
        },
        Kind::Rate => {
            let unit = unit.strip_suffix("/s").unwrap_or(unit);
            let scale = match unit {
                "" => 1.0,
                "k" | "K" => 1e3,
                "M" => 1e6,
                "G" => 1e9,
                _ => return None,
            };
            (number * scale, false, MAX_RATE)
        }
        Kind::Bytes => (number * bytes_unit(unit)?, false, MAX_BYTES),
    };
    (value <= max).then_some((value, percent))
}

fn duration_unit(unit: &str) -> Option<f64> {
    Some(match unit {
        "ns" => 1e-3,
        "us" | "µs" => 1.0,
        "ms" => 1e3,
        "s" => 1e6,
        "m" | "min" => 60e6,
        "h" => 3600e6,
        _ => return None,
    })
}

fn bytes_unit(unit: &str) -> Option<f64> {
    let k = 1024.0_f64;
    Some(match unit {
        "" | "B" => 1.0,
        "KB" | "kB" => 1e3,
        "KiB" => k,
        "MB" => 1e6,
        "MiB" => k * k,
        "GB" => 1e9,
        "GiB" => k * k * k,
        "TB" => 1e12,
        "TiB" => k * k * k * k,
        _ => return None,
    })
}

/// The unit's name in `assessment.thresholds`.
pub(crate) fn unit_name(kind: Kind, percent: bool) -> &'static str {
    match kind {
        Kind::Duration => "us",
        Kind::Share if percent => "percent",
        Kind::Share => "count",
        Kind::Rate => "per_sec",
        Kind::Bytes => "bytes",
    }
}

/// A value of `kind` for people: `61 ms`, `2.00%`, `523.4k/s`, `87.1 MiB`.
pub(crate) fn show(kind: Kind, value: f64, percent: bool) -> String {
    match kind {
        Kind::Duration => human::micros(value),
        Kind::Share if percent => human::percent(value),
        Kind::Share => format!("{value:.0}"),
        Kind::Rate => human::rate(value),
        Kind::Bytes => human::bytes(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_parse_in_their_units_and_ranges() {
        assert_eq!(parse(Kind::Duration, "50ms"), Some((50_000.0, false)));
        assert_eq!(parse(Kind::Duration, "2h"), None);
        assert_eq!(parse(Kind::Share, "1.5%"), Some((1.5, true)));
        assert_eq!(parse(Kind::Share, "1.5"), None);
        assert_eq!(parse(Kind::Rate, "1.5M/s"), Some((1.5e6, false)));
        assert_eq!(parse(Kind::Bytes, "1KiB"), Some((1024.0, false)));
        assert_eq!(parse(Kind::Bytes, "1 lots"), None);
        assert_eq!(parse(Kind::Bytes, "-1"), None);
    }

    #[test]
    fn values_show_readably() {
        assert_eq!(show(Kind::Duration, 61_000.0, false), "61 ms");
        assert_eq!(show(Kind::Rate, 523_400.0, false), "523.4k/s");
        assert_eq!(show(Kind::Bytes, 96.0 * 1024.0 * 1024.0, false), "96.0 MiB");
    }
}
