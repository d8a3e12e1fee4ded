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

/// `1..=60000000` in microseconds -> `1us..=1m`.
fn readable_range(unit: Unit, allowed: &str) -> String {
    let head = allowed.split(" (").next().unwrap_or(allowed);
    if let Some((lo, hi)) = head.split_once("..=") {
        return format!("{}..={}", readable(unit, lo), readable(unit, hi));
    }
    allowed.to_owned()
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
    let unit = unit_of(field);
    if let Some((flag, Some(given))) = flag_of(field, args) {
        return format!("{flag} {given}{}", meaning(unit, &given, value));
    }
    match file {
        Some(file) => format!(
            "{}: `{field}` = {value}{}",
            file.display(),
            meaning(unit, value, value)
        ),
        None => match flag_of(field, args) {
            Some((flag, _)) => format!("the default {flag} ({})", readable(unit, value)),
            None => format!("the default `{field} = {value}`"),
        },
    }
}

/// ` (90.9 TiB)`: the figure `value` (in the key's unit) means, when `written` is a bare
/// number that does not say it; nothing otherwise.
fn meaning(unit: Unit, written: &str, value: &str) -> String {
    let bare = written.trim().parse::<f64>().is_ok();
    match unit {
        Unit::Plain => String::new(),
        _ if bare => format!(" ({})", readable(unit, value)),
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
    let range = readable_range(unit, allowed);
    if let Some((_, Some(_))) = flag_of(field, args) {
        let kept = match unit {
            Unit::Micros => "; it is kept in whole microseconds",
            Unit::Millis => "; it is kept in whole milliseconds",
            _ => "",
        };
        let name = name_of(field, value, args, file);
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
                readable(unit, value)
            );
        }
    }
    let name = name_of(field, value, args, file);
    format!("{name} is out of range (allowed: {range})")
}
