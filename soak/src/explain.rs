//! Range errors in the user's terms: a scenario value out of range is named by the flag
//! and the value the user typed, by the scenario file and key it came from, or, for a
//! default that no longer fits what the user set, by what to set instead.

use std::path::Path;
use std::time::Duration;

use runlog::ConfigError;

use crate::cli::{Limit, ScenarioArgs};

/// The unit a scenario key is kept in, from its suffix.
#[derive(Clone, Copy)]
enum Unit {
    Micros,
    Millis,
    Seconds,
    Bytes,
    Plain,
}

fn unit_of(field: &str) -> Unit {
    if field.ends_with("_us") {
        Unit::Micros
    } else if field.ends_with("_ms") {
        Unit::Millis
    } else if field.ends_with("_s") {
        Unit::Seconds
    } else if field.ends_with("_bytes") {
        Unit::Bytes
    } else {
        Unit::Plain
    }
}

/// A number of the key's unit, as a user writes it (`1us`, `60s`, `32.0 KiB`).
fn readable(unit: Unit, number: &str) -> String {
    let Ok(n) = number.trim().parse::<f64>() else {
        return number.to_owned();
    };
    let duration = |secs: f64| {
        Duration::try_from_secs_f64(secs).map_or_else(
            |_| number.to_owned(),
            |d| humantime::format_duration(d).to_string(),
        )
    };
    match unit {
        Unit::Micros => duration(n / 1e6),
        Unit::Millis => duration(n / 1e3),
        Unit::Seconds => duration(n),
        Unit::Bytes => crate::human::bytes(n as u64),
        Unit::Plain => number.to_owned(),
    }
}

/// `1..=60000000` in microseconds -> `1us..=1m`, for a refused `value`: a bound whose
/// figure is rounded and reads as the value's is shown exactly too
/// (`1 B..=32.0 KiB (32,767 B)`).
fn range_against(unit: Unit, allowed: &str, value: Option<&str>) -> String {
    let Some((lo, hi)) = bounds(allowed) else {
        return allowed.to_owned();
    };
    let shown = |bound: &str| {
        let text = readable(unit, bound);
        let collides = value.is_some_and(|v| readable(unit, v) == text);
        match (unit, bound.trim().parse::<u64>()) {
            (Unit::Bytes, Ok(n)) if collides && rounded(n) => {
                format!("{text} ({} B)", runlog::human::grouped(n))
            }
            _ => text,
        }
    };
    format!("{}..={}", shown(lo), shown(hi))
}

/// The bounds of an allowed range, as written (`4096..=1099511627776 (why)`).
fn bounds(allowed: &str) -> Option<(&str, &str)> {
    let head = allowed.split(" (").next().unwrap_or(allowed);
    head.split_once("..=")
}

/// Whether [`runlog::human::bytes`] shows `n` rounded (`4095` reads `4.0 KiB`).
fn rounded(n: u64) -> bool {
    if n < 1024 {
        return false;
    }
    // The unit `bytes` picks, and its one decimal.
    let mut unit = 1024u128;
    while u128::from(n) / unit >= 1024 && unit < 1 << 50 {
        unit *= 1024;
    }
    u128::from(n) * 10 % unit != 0
}

/// [`readable`], with the exact figure beside it when the rounded one reads as a bound of
/// `allowed` (`4,095 B, just under 4.0 KiB`): a value refused for being out of range must
/// not read as one inside it (the way `runlog::LimitError` shows a live limit).
fn figure(unit: Unit, number: &str, allowed: Option<&str>) -> String {
    let text = readable(unit, number);
    let (Unit::Bytes, Some((lo, hi)), Ok(n)) =
        (unit, allowed.and_then(bounds), number.trim().parse::<u64>())
    else {
        return text;
    };
    let exact = format!("{} B", runlog::human::grouped(n));
    let on = |bound: &str| readable(unit, bound) == text;
    let exactly = |bound: &str| bound.trim().parse::<u64>().is_ok_and(|b| !rounded(b));
    let (lo_n, hi_n) = (lo.trim().parse::<u64>(), hi.trim().parse::<u64>());
    if on(lo) && exactly(lo) && lo_n.is_ok_and(|lo| n < lo) {
        format!("{exact}, just under {text}")
    } else if on(hi) && exactly(hi) && hi_n.is_ok_and(|hi| n > hi) {
        format!("{exact}, just over {text}")
    } else if (on(lo) || on(hi)) && rounded(n) {
        format!("{text}, exactly {exact}")
    } else {
        text
    }
}

/// The flag that sets a scenario key, and what the user gave for it (if anything): as
/// typed on the command line, or rendered when the arguments were built in code.
pub(crate) fn flag_of(field: &str, args: &ScenarioArgs) -> Option<(&'static str, Option<String>)> {
    let d = |v: Option<Duration>| v.map(|d| humantime::format_duration(d).to_string());
    let limit = |v: Option<Limit>| v.map(|l| l.0.map_or("none".into(), |n| n.to_string()));
    let (flag, id, rendered) = match field {
        "duration_s" => ("--duration", "duration", d(args.duration)),
        "producers" => (
            "--producers",
            "producers",
            args.producers.map(|n| n.to_string()),
        ),
        "payload" => ("--payload", "payload", args.payload.clone()),
        "rate_per_sec" => ("--rate", "rate", args.rate.map(|r| r.to_string())),
        "backoff_us" => ("--backoff", "backoff", d(args.backoff)),
        "consumer_delay_us" => ("--consumer-delay", "consumer_delay", d(args.consumer_delay)),
        "consumer_cost_per_kib_us" => (
            "--consumer-cost-per-kib",
            "consumer_cost_per_kib",
            d(args.consumer_cost_per_kib),
        ),
        "consumer_jitter_us" => (
            "--consumer-jitter",
            "consumer_jitter",
            d(args.consumer_jitter),
        ),
        "consumer_stall_every_ms" => ("--stall-every", "stall_every", d(args.stall_every)),
        "consumer_stall_for_ms" => ("--stall-for", "stall_for", d(args.stall_for)),
        "interval_us" => ("--interval", "interval", d(args.interval)),
        "interval_jitter_us" => (
            "--interval-jitter",
            "interval_jitter",
            d(args.interval_jitter),
        ),
        "max_batch_bytes" => (
            "--max-batch-bytes",
            "max_batch_bytes",
            limit(args.max_batch_bytes),
        ),
        "max_batch_items" => (
            "--max-batch-items",
            "max_batch_items",
            limit(args.max_batch_items),
        ),
        "max_buffered_bytes" => (
            "--max-buffered-bytes",
            "max_buffered_bytes",
            args.max_buffered_bytes.map(crate::human::bytes),
        ),
        "partitions" => (
            "--partitions",
            "partitions",
            args.partitions.map(|n| n.to_string()),
        ),
        "block_timeout_us" => ("--block-timeout", "block_timeout", d(args.block_timeout)),
        "sample_every_ms" => ("--sample-every", "sample_every", d(args.sample_every)),
        "drain_timeout_ms" => ("--drain-timeout", "drain_timeout", d(args.drain_timeout)),
        "cpus" => ("--cpus", "cpus", args.cpus.map(|n| n.to_string())),
        "spill.max_disk_bytes" => (
            "--max-spill-bytes",
            "max_spill_bytes",
            args.max_spill_bytes.map(crate::human::bytes),
        ),
        "spill.sync_interval_ms" => (
            "--spill-sync",
            "spill_sync",
            match args.spill_sync {
                Some(crate::cli::SpillSyncArg::Every(every)) => d(Some(every)),
                _ => None,
            },
        ),
        _ => return None,
    };
    let given = rendered.map(|rendered| args.typed(id).map_or(rendered, str::to_owned));
    Some((flag, given))
}

/// How a message names scenario key `field` (whose value is `value`): the flag and what
/// the user typed, or the scenario file and key, or the flag as a default. What the user
/// wrote is repeated as written (`--max-buffered-bytes 99999999999999`), followed by the
/// figure it means when a bare number does not say it (`(90.9 TiB)`).
pub(crate) fn name_of(
    field: &str,
    value: &str,
    args: &ScenarioArgs,
    file: Option<&Path>,
) -> String {
    name_against(field, value, args, file, None)
}

/// [`name_of`] for a value refused as outside `allowed`: a figure that rounds onto one of
/// its bounds is shown exactly too (see [`figure`]).
fn name_against(
    field: &str,
    value: &str,
    args: &ScenarioArgs,
    file: Option<&Path>,
    allowed: Option<&str>,
) -> String {
    let unit = unit_of(field);
    if let Some((flag, Some(given))) = flag_of(field, args) {
        return format!("{flag} {given}{}", meaning(unit, &given, value, allowed));
    }
    match file {
        Some(file) => format!(
            "{}: `{field}` = {value}{}",
            file.display(),
            meaning(unit, value, value, allowed)
        ),
        None => match flag_of(field, args) {
            Some((flag, _)) => format!("the default {flag} ({})", figure(unit, value, allowed)),
            None => format!("the default `{field} = {value}`"),
        },
    }
}

/// ` (90.9 TiB)`: the figure `value` (in the key's unit) means, when `written` is a bare
/// number that does not say it; nothing otherwise. Exact beside it when it rounds onto a
/// bound of `allowed`.
fn meaning(unit: Unit, written: &str, value: &str, allowed: Option<&str>) -> String {
    let bare = written.trim().parse::<f64>().is_ok();
    match unit {
        Unit::Plain => String::new(),
        _ if bare => format!(" ({})", figure(unit, value, allowed)),
        _ => String::new(),
    }
}

/// Keys whose allowed range depends on another key: a default of the first that no
/// longer fits a value the user set for the second.
const DEPENDS_ON: &[(&str, &str)] = &[
    ("max_batch_bytes", "max_buffered_bytes"),
    ("interval_jitter_us", "interval_us"),
];

/// The range error `err` in the user's terms. `file` is the scenario file the base came
/// from, if any.
pub(crate) fn explain(err: &ConfigError, args: &ScenarioArgs, file: Option<&Path>) -> String {
    let ConfigError::OutOfRange {
        field,
        value,
        allowed,
    } = err
    else {
        return err.to_string();
    };
    let unit = unit_of(field);
    let range = range_against(unit, allowed, Some(value));
    if let Some((_, Some(_))) = flag_of(field, args) {
        let kept = match unit {
            Unit::Micros => "; it is kept in whole microseconds",
            Unit::Millis => "; it is kept in whole milliseconds",
            _ => "",
        };
        let name = name_against(field, value, args, file, Some(allowed));
        return format!("{name} is out of range (allowed: {range}{kept})");
    }
    if let Some((_, other)) = DEPENDS_ON.iter().find(|(f, _)| f == field) {
        if let Some((other_flag, Some(other_given))) = flag_of(other, args) {
            let (flag, _) = flag_of(field, args).unwrap_or(("", None));
            let source = file.map_or_else(
                || "the default".to_owned(),
                |f| format!("{}'s", f.display()),
            );
            return format!(
                "{source} {flag} ({}) does not fit {other_flag} {other_given} (allowed: {range}): set {flag} as well",
                figure(unit, value, Some(allowed))
            );
        }
    }
    let name = name_against(field, value, args, file, Some(allowed));
    format!("{name} is out of range (allowed: {range})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_figure_rounded_onto_a_bound_is_shown_exactly_too() {
        let allowed = "4096..=1099511627776";
        let f = |n: &str| figure(Unit::Bytes, n, Some(allowed));
        assert_eq!(f("4095"), "4,095 B, just under 4.0 KiB");
        assert_eq!(f("1099511627777"), "1,099,511,627,777 B, just over 1.0 TiB");
        assert_eq!(f("0"), "0 B");
        assert_eq!(f("99999999999999"), "90.9 TiB");
        assert_eq!(figure(Unit::Bytes, "4095", None), "4.0 KiB");
        // A bound that is itself rounded: the value and the bound exactly.
        assert_eq!(
            figure(Unit::Bytes, "32770", Some("1..=32767")),
            "32.0 KiB, exactly 32,770 B"
        );
        assert_eq!(
            range_against(Unit::Bytes, "1..=32767", Some("32768")),
            "1 B..=32.0 KiB (32,767 B)"
        );
        assert_eq!(
            range_against(Unit::Bytes, allowed, Some("4095")),
            "4.0 KiB..=1.0 TiB"
        );
        assert_eq!(
            range_against(Unit::Micros, "1..=60000000", None),
            "1us..=1m"
        );
    }

    #[test]
    fn rounded_is_what_bytes_cannot_show_exactly() {
        for exact in [0, 1023, 1024, 1536, 4096, 64 << 20, 1 << 40] {
            assert!(!rounded(exact), "{exact}");
        }
        for inexact in [1025, 4095, 32767, (1 << 40) + 1, u64::MAX] {
            assert!(rounded(inexact), "{inexact}");
        }
    }
}
