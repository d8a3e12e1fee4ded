//! Diagnostics: `tracing` events to stderr, for finding out what the soak did (`-v`,
//! `-vv`, `--log-level LEVEL`). Off by default except warnings. Never on stdout, which
//! carries the summary and `--json`; coloured only when stderr is a terminal and
//! `NO_COLOR` is not set ([`runlog::human::colour`]).

use std::io::IsTerminal as _;
use std::sync::atomic::{AtomicBool, Ordering};

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

/// Set while the dashboard holds the terminal: a line on stderr would land in the middle
/// of its screen, so diagnostics are dropped until it gives the terminal back.
static DASHBOARD_HOLDS_THE_TERMINAL: AtomicBool = AtomicBool::new(false);

/// Runs `f` (the dashboard) with diagnostics silenced, and restores them after.
pub fn silenced<R>(f: impl FnOnce() -> R) -> R {
    struct Restore;
    impl Drop for Restore {
        fn drop(&mut self) {
            DASHBOARD_HOLDS_THE_TERMINAL.store(false, Ordering::SeqCst);
        }
    }
    DASHBOARD_HOLDS_THE_TERMINAL.store(true, Ordering::SeqCst);
    let _restore = Restore;
    f()
}

/// Where a diagnostic line goes: stderr, or nowhere while the dashboard is drawn.
fn writer() -> Box<dyn std::io::Write> {
    if DASHBOARD_HOLDS_THE_TERMINAL.load(Ordering::SeqCst) {
        Box::new(std::io::sink())
    } else {
        Box::new(std::io::stderr())
    }
}

/// Sends `tracing` events at `level` and above to stderr, for the whole process. A second
/// call (a test that runs `app::main` twice) keeps the first.
pub fn init(level: LogLevel) {
    let ansi = runlog::human::colour(std::io::stderr().is_terminal());
    let _ = tracing_subscriber::fmt()
        .with_writer(writer)
        .with_ansi(ansi)
        .with_max_level(filter(level))
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diagnostics_are_silenced_while_the_dashboard_is_drawn_and_come_back_after() {
        let during = silenced(|| DASHBOARD_HOLDS_THE_TERMINAL.load(Ordering::SeqCst));
        assert!(during);
        assert!(!DASHBOARD_HOLDS_THE_TERMINAL.load(Ordering::SeqCst));
        let caught = std::panic::catch_unwind(|| silenced(|| panic!("dashboard panicked")));
        assert!(caught.is_err());
        assert!(
            !DASHBOARD_HOLDS_THE_TERMINAL.load(Ordering::SeqCst),
            "a panic gives diagnostics back too"
        );
    }

    #[test]
    fn each_level_shows_itself_and_above() {
        assert_eq!(filter(LogLevel::Warn), LevelFilter::WARN);
        assert!(filter(LogLevel::Trace) > filter(LogLevel::Debug));
        assert!(filter(LogLevel::Error) < filter(LogLevel::Warn));
    }
}
