//! The event log: the run's timeline markers and the dashboard's own messages.

use runlog::{Event, EventKind};

use crate::format;

/// What a [`LogEntry`] records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogKind {
    /// A limit or the producers' state changed (a reconfigure event of the run).
    Change,
    /// The run entered a phase (`run`, `drain`, `stop requested`).
    Phase,
    /// A warning of the run (including commands the soak refused) or a problem reading the
    /// followed file.
    Warning,
    /// A change the dashboard refused before sending it.
    Refused,
    /// A note from the dashboard itself, e.g. where a tuned scenario was saved.
    Info,
}

impl LogKind {
    /// A short tag shown in the log.
    #[must_use]
    pub fn tag(self) -> &'static str {
        match self {
            Self::Change => "change",
            Self::Phase => "phase",
            Self::Warning => "warning",
            Self::Refused => "refused",
            Self::Info => "info",
        }
    }
}

/// One line of the event log.
#[derive(Debug, Clone, PartialEq)]
pub struct LogEntry {
    /// Seconds since the run started (for the dashboard's own entries: the latest time seen).
    pub at_s: f64,
    /// What it records.
    pub kind: LogKind,
    /// The message, e.g. `interval 10 ms -> 5 ms (control)`.
    pub text: String,
}

impl LogEntry {
    /// The log line for a run event.
    ///
    /// ```
    /// use runlog::{Event, EventKind};
    /// let event = Event::new(3.5, EventKind::Reconfigure {
    ///     knob: "interval_us".into(),
    ///     from: "10000".into(),
    ///     to: "5000".into(),
    ///     source: "control".into(),
    /// });
    /// let entry = dashboards::LogEntry::from_event(&event);
    /// assert_eq!(entry.text, "interval_us 10 ms -> 5 ms (control)");
    /// ```
    #[must_use]
    pub fn from_event(event: &Event) -> Self {
        let (kind, text) = match &event.kind {
            EventKind::Reconfigure {
                knob,
                from,
                to,
                source,
            } => {
                let (from, to) = (
                    format::event_value(knob, from),
                    format::event_value(knob, to),
                );
                (LogKind::Change, format!("{knob} {from} -> {to} ({source})"))
            }
            EventKind::Phase { name } => (LogKind::Phase, name.clone()),
            EventKind::Warning { message } => (LogKind::Warning, message.clone()),
            EventKind::Interrupted { signal, action } => {
                (LogKind::Warning, format!("{signal}: {action}"))
            }
        };
        Self {
            at_s: event.at_s,
            kind,
            text,
        }
    }
}
