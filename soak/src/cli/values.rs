//! clap value parsers: each refuses with a message naming what was typed and the
//! accepted form.

use super::*;

pub(super) fn spill_sync(s: &str) -> Result<SpillSyncArg, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "every-batch" => Ok(SpillSyncArg::EveryBatch),
        "os" => Ok(SpillSyncArg::Os),
        _ => parse_duration(s)
            .map(SpillSyncArg::Every)
            .map_err(|_| format!("`{s}` is not every-batch, os or an interval such as 100ms")),
    }
}
pub(super) fn percent(s: &str) -> Result<f64, String> {
    let number = s.trim().trim_end_matches('%');
    match number.parse::<f64>() {
        Ok(p) if (0.0..=1000.0).contains(&p) => Ok(p),
        _ => Err(format!("`{s}` is not a percentage in 0%..=1000% (e.g. 5%)")),
    }
}

pub(super) fn threshold(s: &str) -> Result<runlog::Threshold, String> {
    s.parse().map_err(|e: runlog::ThresholdError| e.to_string())
}

pub(super) fn socket_addr(s: &str) -> Result<SocketAddr, String> {
    let bad = || format!("`{s}` is not HOST:PORT (e.g. 127.0.0.1:9464)");
    s.to_socket_addrs()
        .map_err(|_| bad())?
        .next()
        .ok_or_else(bad)
}

pub(super) fn nats_url(s: &str) -> Result<String, String> {
    match s.strip_prefix("nats://") {
        Some(rest) if !rest.is_empty() => Ok(s.to_owned()),
        _ => Err(format!(
            "`{s}` is not a NATS server URL (e.g. nats://127.0.0.1:4222)"
        )),
    }
}

/// One concrete NATS subject: dot-separated tokens, no spaces, no wildcards.
pub(super) fn nats_subject(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.split('.').all(|t| !t.is_empty())
        && !s.chars().any(|c| c.is_whitespace() || c == '*' || c == '>');
    if ok {
        Ok(s.to_owned())
    } else {
        Err(format!(
            "`{s}` is not a NATS subject: dot-separated tokens, no spaces, no `*` or `>` (e.g. metronome.events)"
        ))
    }
}

/// A JetStream stream name: no spaces, dots, `*`, `>`, slashes.
pub(super) fn stream_name(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && !s
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '.' | '*' | '>' | '/' | '\\'));
    if ok {
        Ok(s.to_owned())
    } else {
        Err(format!(
            "`{s}` is not a JetStream stream name: no spaces, `.`, `*`, `>` or slashes (e.g. METRONOME)"
        ))
    }
}

pub(super) fn duration(s: &str) -> Result<Duration, String> {
    parse_duration(s).map_err(|e| e.to_string())
}

pub(super) fn rate(s: &str) -> Result<Rate, String> {
    s.parse::<Rate>().map_err(|e| e.to_string())
}

pub(super) fn bytes(s: &str) -> Result<u64, String> {
    parse_bytes(s).map_err(|e| e.to_string())
}

pub(super) fn is_none(s: &str) -> bool {
    matches!(
        s.trim().to_ascii_lowercase().as_str(),
        "none" | "unlimited" | "off"
    )
}

pub(super) fn optional_bytes(s: &str) -> Result<Limit, String> {
    if is_none(s) {
        Ok(Limit(None))
    } else {
        bytes(s).map(|b| Limit(Some(b)))
    }
}

pub(super) fn optional_count(s: &str) -> Result<Limit, String> {
    if is_none(s) {
        return Ok(Limit(None));
    }
    s.trim()
        .parse::<u64>()
        .map(|n| Limit(Some(n)))
        .map_err(|_| format!("`{s}` is not a whole number of events (or `none`)"))
}
