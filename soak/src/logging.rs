//! Diagnostics: `tracing` events to stderr, for finding out what the soak did (`-v`,
//! `-vv`, `--log-level LEVEL`). Off by default except warnings. Never on stdout, which
//! carries the summary and `--json`; coloured only when stderr is a terminal and
//! `NO_COLOR` is not set ([`runlog::human::colour`]).

use std::io::IsTerminal as _;

use tracing_subscriber::filter::LevelFilter;

use crate::cli::LogLevel;

/// The most detailed level that is shown for `level`.
#[must_use]
pub fn filter(level: LogLevel) -> LevelFilter {
    match level {
        LogLevel::Error => LevelFilter::ERROR,
        LogLevel::Warn => LevelFilter::WARN,
        LogLevel::Info => LevelFilter::INFO,
        LogLevel::Debug => LevelFilter::DEBUG,
        LogLevel::Trace => LevelFilter::TRACE,
    }
}

/// Sends `tracing` events at `level` and above to stderr, for the whole process. A second
/// call (a test that runs `app::main` twice) keeps the first.
pub fn init(level: LogLevel) {
    let ansi = runlog::human::colour(std::io::stderr().is_terminal());
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_max_level(filter(level))
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_level_shows_itself_and_above() {
        assert_eq!(filter(LogLevel::Warn), LevelFilter::WARN);
        assert!(filter(LogLevel::Trace) > filter(LogLevel::Debug));
        assert!(filter(LogLevel::Error) < filter(LogLevel::Warn));
    }
}
