//! What can make the dashboard give up.

use std::io;

/// A failure of [`run`](crate::run): the terminal could not be driven.
///
/// Problems with the followed file (a line that does not parse, a read error) and refused
/// commands are not errors: the dashboard shows them in its event log and keeps going.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DashboardError {
    /// The terminal cannot host the dashboard (stdout or stdin is not a terminal,
    /// `TERM=dumb`, its size unreadable): found before anything was written to it.
    #[error("cannot show the dashboard: {0}")]
    Unusable(#[source] io::Error),
    /// A terminal operation failed (raw mode, alternate screen, drawing, reading input).
    #[error("terminal: cannot {action}: {source}")]
    Terminal {
        /// What the dashboard was doing, e.g. `"enter raw mode"`.
        action: &'static str,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

impl DashboardError {
    pub(crate) fn terminal(action: &'static str) -> impl FnOnce(io::Error) -> Self {
        move |source| Self::Terminal { action, source }
    }
}
