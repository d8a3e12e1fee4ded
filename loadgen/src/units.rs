//! Parsing of the sizes, rates and durations that the soak CLI accepts.
//!
//! - Sizes: [`parse_bytes`] takes `64`, `10KB`, `10KiB`, `1.5MiB` (decimal
//!   units are powers of 1000, binary units powers of 1024).
//! - Rates: [`Rate`] parses `unlimited` or events per second such as `500/s`,
//!   `200k/s`, `1.5M/s`.
//! - Durations: [`parse_duration`] takes humantime's forms: `250ms`, `200us`,
//!   `0s`, `1m`, `1h 30m`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// The forms a size accepts, quoted in every size error.
const SIZE_FORMS: &str =
    "a byte count such as 64, 10KB, 10KiB, 1.5MiB (units B, KB, KiB, MB, MiB, GB, GiB, TB, TiB)";
/// The forms a rate accepts, quoted in every rate error.
const RATE_FORMS: &str = "`unlimited` or events per second such as 500/s, 200k/s, 1.5M/s";
/// The forms a duration accepts, quoted in every duration error.
const DURATION_FORMS: &str = "a duration such as 250ms, 200us, 0s, 1m, 1h 30m";

/// A size, rate or duration that could not be parsed.
///
/// The message names the input, what is wrong with it and the accepted
/// forms, on one line, so a CLI can print it as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    /// The input is not a size.
    #[error("invalid size {input:?}: {problem}; expected {SIZE_FORMS}")]
    Size {
        /// The text that was given.
        input: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// The input is not a rate.
    #[error("invalid rate {input:?}: {problem}; expected {RATE_FORMS}")]
    Rate {
        /// The text that was given.
        input: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// The input is not a duration.
    #[error("invalid duration {input:?}: {problem}; expected {DURATION_FORMS}")]
    Duration {
        /// The text that was given.
        input: String,
        /// What is wrong with it (humantime's explanation).
        problem: String,
    },
}

/// Parses a byte size: a whole or decimal number, optionally followed by a
/// unit (`B`, `KB`=1000, `KiB`=1024, `MB`, `MiB`, `GB`, `GiB`, `TB`, `TiB`;
/// case-insensitive, spaces allowed before the unit). A plain number is bytes.
///
/// # Errors
///
/// [`UnitError::Size`] if the number or unit is not recognised, the result
/// is not a whole number of bytes (`0.5B`), or it does not fit in a `u64`.
///
/// # Examples
///
/// ```
/// use loadgen::units::parse_bytes;
///
/// assert_eq!(parse_bytes("64").unwrap(), 64);
/// assert_eq!(parse_bytes("10KB").unwrap(), 10_000);
/// assert_eq!(parse_bytes("10KiB").unwrap(), 10_240);
/// assert_eq!(parse_bytes("1.5 MiB").unwrap(), 1_572_864);
/// assert!(parse_bytes("10 parsecs").is_err());
/// ```
pub fn parse_bytes(input: &str) -> Result<u64, UnitError> {
    let error = |problem| UnitError::Size {
        input: input.to_owned(),
        problem,
    };
    let (number, unit) = split_number(input.trim());
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "kib" => 1 << 10,
        "mb" => 1_000_000,
        "mib" => 1 << 20,
        "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        "tb" => 1_000_000_000_000,
        "tib" => 1 << 40,
        _ => return Err(error("unknown unit")),
    };
    let decimal = Decimal::parse(number).ok_or_else(|| error("not a number"))?;
    decimal
        .scale(multiplier)
        .map_err(|scale| error(scale.problem("bytes")))
}

/// Parses a duration with [`humantime::parse_duration`]: `250ms`, `200us`,
/// `0s`, `1m`, `1h 30m`.
///
/// # Errors
///
/// [`UnitError::Duration`] with humantime's explanation and the accepted forms.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use loadgen::units::parse_duration;
///
/// assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
/// assert_eq!(parse_duration("200us").unwrap(), Duration::from_micros(200));
/// assert_eq!(parse_duration("0s").unwrap(), Duration::ZERO);
/// assert!(parse_duration("soon").is_err());
/// ```
pub fn parse_duration(input: &str) -> Result<Duration, UnitError> {
    humantime::parse_duration(input.trim()).map_err(|e| UnitError::Duration {
        input: input.to_owned(),
        problem: e.to_string(),
    })
}

/// An offered load: as fast as admission allows, or a number of events per
/// second (at least 1).
///
/// Parses from `unlimited` or `N/s` with an optional `k` (thousand), `M`
/// (million) or `G` (billion) multiplier and decimals (`1.5M/s`); the `/s`
/// may be left off. [`Display`](fmt::Display) writes the same forms back, so
/// a rate round-trips through a string.
///
/// # Examples
///
/// ```
/// use loadgen::units::Rate;
///
/// let rate: Rate = "200k/s".parse().unwrap();
/// assert_eq!(rate, Rate::PerSecond(200_000));
/// assert_eq!(rate.per_second(), Some(200_000));
/// assert_eq!("1.5M/s".parse::<Rate>().unwrap().to_string(), "1.5M/s");
/// assert_eq!("unlimited".parse::<Rate>().unwrap(), Rate::Unlimited);
/// assert!("fast".parse::<Rate>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Rate {
    /// No pacing: every producer offers as fast as admission allows (closed loop).
    #[default]
    Unlimited,
    /// This many events per second in total, split across the producers (open loop).
    PerSecond(u64),
}

impl Rate {
    /// Events per second, or `None` when unlimited; the form
    /// [`ProducerControl::set_rate`](crate::ProducerControl::set_rate) takes.
    ///
    /// # Examples
    ///
    /// ```
    /// use loadgen::units::Rate;
    ///
    /// assert_eq!(Rate::PerSecond(500).per_second(), Some(500));
    /// assert_eq!(Rate::Unlimited.per_second(), None);
    /// ```
    pub fn per_second(self) -> Option<u64> {
        match self {
            Rate::Unlimited => None,
            Rate::PerSecond(n) => Some(n),
        }
    }
}

impl From<Option<u64>> for Rate {
    fn from(rate: Option<u64>) -> Self {
        rate.map_or(Rate::Unlimited, Rate::PerSecond)
    }
}

impl FromStr for Rate {
    type Err = UnitError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let error = |problem| UnitError::Rate {
            input: input.to_owned(),
            problem,
        };
        let text = input.trim();
        if text.eq_ignore_ascii_case("unlimited") {
            return Ok(Rate::Unlimited);
        }
        let text = text.strip_suffix("/s").unwrap_or(text);
        let (number, unit) = split_number(text);
        let multiplier: u64 = match unit.trim() {
            "" => 1,
            "k" | "K" => 1_000,
            "M" => 1_000_000,
            "G" => 1_000_000_000,
            _ => return Err(error("unknown multiplier (use k, M or G)")),
        };
        let decimal = Decimal::parse(number).ok_or_else(|| error("not a number"))?;
        match decimal.scale(multiplier) {
            Ok(0) => Err(error(
                "a rate must be at least 1/s (pause the producers instead)",
            )),
            Ok(n) => Ok(Rate::PerSecond(n)),
            Err(scale) => Err(error(scale.problem("events"))),
        }
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = match *self {
            Rate::Unlimited => return f.write_str("unlimited"),
            Rate::PerSecond(n) => n,
        };
        for (unit, suffix) in [(1_000_000_000, "G"), (1_000_000, "M"), (1_000, "k")] {
            // Use the largest unit that still shows the rate exactly with at
            // most three decimals, so the text parses back to the same value.
            if n >= unit && (u128::from(n) * 1000) % u128::from(unit) == 0 {
                let whole = n / unit;
                let millis = (n % unit) / (unit / 1000);
                if millis == 0 {
                    return write!(f, "{whole}{suffix}/s");
                }
                let frac = format!("{millis:03}");
                return write!(f, "{whole}.{}{suffix}/s", frac.trim_end_matches('0'));
            }
        }
        write!(f, "{n}/s")
    }
}

/// Splits `"1.5MiB"` into `("1.5", "MiB")`.
fn split_number(text: &str) -> (&str, &str) {
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    text.split_at(end)
}

/// A non-negative decimal number kept exact: `mantissa / 10^decimals`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Decimal {
    mantissa: u128,
    decimals: u32,
}

/// Why a decimal could not become a whole `u64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ScaleError {
    Fractional,
    Overflow,
}

impl ScaleError {
    fn problem(self, what: &'static str) -> &'static str {
        match (self, what) {
            (ScaleError::Overflow, _) => "too large",
            (ScaleError::Fractional, "bytes") => "not a whole number of bytes",
            (ScaleError::Fractional, _) => "not a whole number of events per second",
        }
    }
}

impl Decimal {
    /// At most this many decimals; more would add nothing a size or rate needs.
    const MAX_DECIMALS: u32 = 9;

    /// Parses `123`, `1.5`, `.5` or `2.`; `None` for anything else.
    fn parse(text: &str) -> Option<Decimal> {
        let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
        if whole.is_empty() && frac.is_empty() {
            return None;
        }
        let decimals = u32::try_from(frac.len()).ok()?;
        if decimals > Self::MAX_DECIMALS || whole.len() > 20 {
            return None;
        }
        let mut mantissa: u128 = 0;
        for c in whole.chars().chain(frac.chars()) {
            let digit = c.to_digit(10)?;
            mantissa = mantissa * 10 + u128::from(digit);
        }
        Some(Decimal { mantissa, decimals })
    }

    /// `self * multiplier`, which must be a whole number that fits a `u64`.
    fn scale(self, multiplier: u64) -> Result<u64, ScaleError> {
        let scaled = self.mantissa * u128::from(multiplier);
        let divisor = 10u128.pow(self.decimals);
        if scaled % divisor != 0 {
            return Err(ScaleError::Fractional);
        }
        u64::try_from(scaled / divisor).map_err(|_| ScaleError::Overflow)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_accept_decimal_and_binary_units() {
        let cases = [
            ("0", 0),
            ("64", 64),
            ("64B", 64),
            ("10KB", 10_000),
            ("10kb", 10_000),
            ("10KiB", 10_240),
            ("10 KiB", 10_240),
            ("1MiB", 1 << 20),
            ("1.5MiB", 3 << 19),
            ("2GB", 2_000_000_000),
            ("2GiB", 2 << 30),
            ("1TiB", 1 << 40),
            (" 64MiB ", 64 << 20),
            (".5KiB", 512),
        ];
        for (input, want) in cases {
            assert_eq!(parse_bytes(input), Ok(want), "{input}");
        }
    }

    #[test]
    fn size_errors_name_input_and_forms() {
        for input in [
            "",
            "KiB",
            "ten",
            "10XB",
            "1.2.3",
            "0.5B",
            "99999999999TiB",
            "-1",
        ] {
            let err = parse_bytes(input).unwrap_err();
            let text = err.to_string();
            assert!(text.contains(&format!("{input:?}")), "{text}");
            assert!(text.contains("10KiB"), "{text}");
            assert!(!text.contains('\n'), "{text}");
        }
        assert!(
            parse_bytes("0.5B")
                .unwrap_err()
                .to_string()
                .contains("whole number")
        );
        assert!(
            parse_bytes("99999999999TiB")
                .unwrap_err()
                .to_string()
                .contains("too large")
        );
    }

    #[test]
    fn rates_parse_and_round_trip() {
        let cases = [
            ("unlimited", Rate::Unlimited),
            ("Unlimited", Rate::Unlimited),
            ("500/s", Rate::PerSecond(500)),
            ("500", Rate::PerSecond(500)),
            ("200k/s", Rate::PerSecond(200_000)),
            ("200K/s", Rate::PerSecond(200_000)),
            ("1.5M/s", Rate::PerSecond(1_500_000)),
            ("2G/s", Rate::PerSecond(2_000_000_000)),
            ("1.234k/s", Rate::PerSecond(1_234)),
        ];
        for (input, want) in cases {
            let rate: Rate = input.parse().unwrap();
            assert_eq!(rate, want, "{input}");
            assert_eq!(rate.to_string().parse::<Rate>().unwrap(), rate, "{input}");
        }
        assert_eq!(Rate::PerSecond(200_000).to_string(), "200k/s");
        assert_eq!(Rate::PerSecond(1_500_000).to_string(), "1.5M/s");
        assert_eq!(Rate::PerSecond(1_234_567).to_string(), "1234.567k/s");
        assert_eq!(Rate::PerSecond(1_234_567_891).to_string(), "1234567.891k/s");
        assert_eq!(Rate::PerSecond(7).to_string(), "7/s");
        assert_eq!(Rate::Unlimited.to_string(), "unlimited");
    }

    #[test]
    fn every_rate_round_trips() {
        for n in (1..5_000u64).chain([999_999, 1_000_001, u64::MAX / 7, u64::MAX]) {
            let rate = Rate::PerSecond(n);
            assert_eq!(rate.to_string().parse::<Rate>(), Ok(rate), "{n}");
        }
    }

    #[test]
    fn rate_errors_name_input_and_forms() {
        for input in ["", "fast", "0/s", "0.5/s", "10m/s", "1.5x/s", "-5/s"] {
            let text = input.parse::<Rate>().unwrap_err().to_string();
            assert!(text.contains(&format!("{input:?}")), "{text}");
            assert!(
                text.contains("unlimited") && text.contains("200k/s"),
                "{text}"
            );
        }
    }

    #[test]
    fn durations_delegate_to_humantime() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("200us"), Ok(Duration::from_micros(200)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        let text = parse_duration("5 parsecs").unwrap_err().to_string();
        assert!(
            text.contains("\"5 parsecs\"") && text.contains("250ms"),
            "{text}"
        );
    }

    #[test]
    fn rate_converts_from_optional_events_per_second() {
        assert_eq!(Rate::from(None), Rate::Unlimited);
        assert_eq!(Rate::from(Some(3)), Rate::PerSecond(3));
    }
}
