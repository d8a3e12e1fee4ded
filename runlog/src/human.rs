//! The one vocabulary for numbers shown to people: the summary, the dashboard, the
//! report, `compare`, `tune` and error messages all format through here, so a
//! figure reads the same wherever it appears.
//!
//! The rules: counts and rates scale by 1000 (`12.3k`, `1.23M`); bytes by 1024 with
//! binary units (`64.0 MiB`); durations keep at most three significant digits in the largest
//! unit that leaves them above one, trailing zeros dropped (`850 us`, `1.25 ms`, `10 ms`,
//! `61 ms`, `411 ms`, `2.5 s`),
//! then minutes and hours (`4m05s`, `2h03m`); microseconds are written `us`, as the
//! command line accepts them.
//!
//! ```
//! use runlog::human;
//! assert_eq!(human::count(1_234_567.0), "1.23M");
//! assert_eq!(human::rate(723_612.0), "723.6k/s");
//! assert_eq!(human::bytes(64.0 * 1024.0 * 1024.0), "64.0 MiB");
//! assert_eq!(human::micros(61_000.0), "61 ms");
//! assert_eq!(human::micros(12_340.0), "12.3 ms");
//! assert_eq!(human::seconds(245.0), "4m05s");
//! assert_eq!(human::grouped(14_761_244), "14,761,244");
//! assert_eq!(human::percent(13.241), "13.24%");
//! ```

/// A number a figure is made of: a float, or any of the integer counters the record keeps
/// (so callers never convert, and a counter and a rate read alike).
pub trait Amount: Copy {
    /// The value as a float (counters beyond 2^53 round, which no figure shows).
    fn to_f64(self) -> f64;
}

macro_rules! amount {
    ($($t:ty),*) => {$(
        impl Amount for $t {
            #[allow(clippy::cast_precision_loss, clippy::cast_lossless)]
            fn to_f64(self) -> f64 {
                self as f64
            }
        }
    )*};
}
amount!(f64, u64, usize, u32, i64, i32);

/// A magnitude: `950`, `12.3k`, `1.23M`, `2.00G`; below ten, a fraction keeps two
/// decimals (`1.26`).
#[must_use]
pub fn count(n: impl Amount) -> String {
    let n = n.to_f64();
    let a = n.abs();
    if a >= 1e9 {
        format!("{:.2}G", n / 1e9)
    } else if a >= 1e6 {
        format!("{:.2}M", n / 1e6)
    } else if a >= 1e3 {
        format!("{:.1}k", n / 1e3)
    } else if a >= 10.0 || n.fract() == 0.0 {
        format!("{n:.0}")
    } else {
        format!("{n:.2}")
    }
}

/// An exact count with thousands separators: `14,761,244`.
#[must_use]
pub fn grouped(n: u64) -> String {
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

/// Events per second: `723.6k/s`.
#[must_use]
pub fn rate(per_sec: impl Amount) -> String {
    format!("{}/s", count(per_sec))
}

/// Bytes in binary units: `512 B`, `1.5 KiB`, `64.0 MiB`, `2.0 GiB`.
#[must_use]
pub fn bytes(n: impl Amount) -> String {
    let n = n.to_f64();
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n.abs() < 1024.0 {
        return format!("{n:.0} B");
    }
    let mut scaled = n / 1024.0;
    let mut unit = 0;
    while scaled.abs() >= 1024.0 && unit + 1 < UNITS.len() {
        scaled /= 1024.0;
        unit += 1;
    }
    format!("{scaled:.1} {}", UNITS[unit])
}

/// A duration given in microseconds: `850 us`, `1.25 ms`, `10 ms`, `61 ms`, `411 ms`,
/// `2.5 s`, `12.3 s`, `4m05s`, `2h03m`.
#[must_use]
pub fn micros(us: impl Amount) -> String {
    let us = us.to_f64().max(0.0);
    if us < 999.5 {
        format!("{us:.0} us")
    } else if us < 999_500.0 {
        format!("{} ms", three_digits(us / 1e3))
    } else if us < 59.95e6 {
        format!("{} s", three_digits(us / 1e6))
    } else {
        clock((us / 1e6).round() as u64)
    }
}

/// A clock reading (elapsed time, a run's length): `0.0 s`, `12.3 s`, `4m05s`, `2h03m`.
/// Measured durations (latency, drain) go through [`micros`].
#[must_use]
pub fn seconds(s: f64) -> String {
    let s = s.max(0.0);
    if s < 59.95 {
        format!("{s:.1} s")
    } else {
        clock(s.round() as u64)
    }
}

fn clock(whole: u64) -> String {
    if whole < 3600 {
        format!("{}m{:02}s", whole / 60, whole % 60)
    } else {
        format!("{}h{:02}m", whole / 3600, whole % 3600 / 60)
    }
}

/// A percentage with two decimals: `13.24%`.
#[must_use]
pub fn percent(p: f64) -> String {
    format!("{p:.2}%")
}

/// A scenario in one line: `32 producers (closed loop) · telemetry payloads · consumer
/// 200 us/batch · interval 10 ms · batch 32.0 KiB · buffered 64.0 MiB · reject policy ·
/// target dispatcher`, then ` · disk tier 64.0 MiB (write-ahead)` when it has one.
#[must_use]
pub fn scenario(c: &crate::ScenarioConfig) -> String {
    let batch = c.max_batch_bytes.map_or_else(
        || "no byte target".to_owned(),
        |b| format!("batch {}", bytes(b)),
    );
    let rate = c.rate_per_sec.map_or_else(
        || "closed loop".to_owned(),
        |r| format!("{} offered", rate(r)),
    );
    // The names a scenario file uses.
    let name = |v: serde_json::Result<serde_json::Value>| {
        v.ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    };
    let disk = c.spill.as_ref().map_or_else(String::new, |s| {
        let mode = if s.write_ahead {
            "write-ahead"
        } else {
            "overflow"
        };
        format!(" · disk tier {} ({mode})", bytes(s.max_disk_bytes))
    });
    format!(
        "{} producers ({rate}) · {} payloads · consumer {}/batch · interval {} · {batch} · buffered {} · {} policy · target {}{disk}",
        c.producers,
        c.payload,
        micros(c.consumer_delay_us),
        micros(c.interval_us),
        bytes(c.max_buffered_bytes),
        name(serde_json::to_value(c.policy)),
        c.target,
    )
}

/// At most three significant digits for a value from 1 to 999, trailing zeros dropped:
/// `1.25`, `2.5`, `61`, `411`.
fn three_digits(v: f64) -> String {
    let text = if v < 9.995 {
        format!("{v:.2}")
    } else if v < 99.95 {
        format!("{v:.1}")
    } else {
        format!("{v:.0}")
    };
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

/// Whether to colour what goes to a stream: only a terminal, and never when the user
/// set `NO_COLOR` to anything non-empty (<https://no-color.org>). The one place every
/// surface (the summary, the dashboard, error messages) asks.
///
/// ```
/// use runlog::human;
/// // A file or a pipe is never coloured.
/// assert!(!human::colour(false));
/// ```
#[must_use]
pub fn colour(terminal: bool) -> bool {
    colour_given(std::env::var_os("NO_COLOR").as_deref(), terminal)
}

fn colour_given(no_color: Option<&std::ffi::OsStr>, terminal: bool) -> bool {
    terminal && no_color.is_none_or(std::ffi::OsStr::is_empty)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_scale_by_thousands() {
        assert_eq!(count(0.0), "0");
        assert_eq!(count(999.0), "999");
        assert_eq!(count(1.264), "1.26");
        assert_eq!(count(5_321.0), "5.3k");
        assert_eq!(count(1_234_567.0), "1.23M");
        assert_eq!(count(2e9), "2.00G");
        assert_eq!(count(-5_321.0), "-5.3k");
        assert_eq!(rate(4_270_000.0), "4.27M/s");
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(1_000), "1,000");
    }

    #[test]
    fn bytes_scale_by_1024() {
        assert_eq!(bytes(512.0), "512 B");
        assert_eq!(bytes(1536.0), "1.5 KiB");
        assert_eq!(bytes(64.0 * 1024.0 * 1024.0), "64.0 MiB");
        assert_eq!(bytes(3.0 * 1024.0 * 1024.0 * 1024.0), "3.0 GiB");
        assert_eq!(bytes(-2048.0), "-2.0 KiB");
    }

    #[test]
    fn durations_keep_three_digits_then_minutes_and_hours() {
        assert_eq!(micros(0.0), "0 us");
        assert_eq!(micros(850.0), "850 us");
        assert_eq!(micros(999.6), "1 ms");
        assert_eq!(micros(1_250.0), "1.25 ms");
        assert_eq!(micros(10_000.0), "10 ms");
        assert_eq!(micros(61_000.0), "61 ms");
        assert_eq!(micros(411_000.0), "411 ms");
        assert_eq!(micros(999_700.0), "1 s");
        assert_eq!(micros(2_500_000.0), "2.5 s");
        assert_eq!(seconds(0.0), "0.0 s");
        assert_eq!(seconds(2.5), "2.5 s");
        assert_eq!(seconds(20.0), "20.0 s");
        assert_eq!(micros(245e6), "4m05s");
        assert_eq!(seconds(245.0), "4m05s");
        assert_eq!(seconds(7_380.0), "2h03m");
        assert_eq!(micros(-5.0), "0 us");
    }

    #[test]
    fn colour_only_on_a_terminal_and_never_under_no_color() {
        use std::ffi::OsStr;
        assert!(colour_given(None, true));
        assert!(!colour_given(None, false));
        assert!(!colour_given(Some(OsStr::new("1")), true));
        assert!(
            colour_given(Some(OsStr::new("")), true),
            "an empty NO_COLOR is unset"
        );
    }
}
