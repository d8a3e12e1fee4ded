//! The event log: the run's timeline markers and the dashboard's own messages, with
//! repeats collapsed into one line and a scroll position.

use runlog::{Event, EventKind, Knob};

use crate::format;
use crate::ring::Ring;

/// Lines `PgUp` / `PgDn` (`[` / `]`) scroll the event log by.
pub const LOG_PAGE: usize = 5;

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
    /// How many times it happened in a row (1: once); shown as `×N`.
    pub repeats: u32,
    /// When it last happened (equal to `at_s` when it happened once).
    pub last_at_s: f64,
}

impl LogEntry {
    /// The log line for a run event. A limit is named as the limits panel names it
    /// ([`Knob::label`]: `max buffered`), never by its record key (`max_buffered_bytes`).
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
    /// assert_eq!(entry.text, "interval 10 ms -> 5 ms (control)");
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
                let name = Knob::from_name(knob).map_or(knob.as_str(), |k| k.label());
                (LogKind::Change, format!("{name} {from} -> {to} ({source})"))
            }
            EventKind::Phase { name } => (LogKind::Phase, name.clone()),
            EventKind::Warning { message } => (LogKind::Warning, message.clone()),
            EventKind::Interrupted { signal, action } => {
                (LogKind::Warning, format!("{signal}: {action}"))
            }
        };
        Self::new(event.at_s, kind, text)
    }

    /// An entry that happened once, at `at_s`.
    #[must_use]
    pub fn new(at_s: f64, kind: LogKind, text: String) -> Self {
        Self {
            at_s,
            kind,
            text,
            repeats: 1,
            last_at_s: at_s,
        }
    }

    /// Whether `other` says the same thing (kind and text), whenever it happened.
    #[must_use]
    pub fn same_as(&self, other: &Self) -> bool {
        self.kind == other.kind && self.text == other.text
    }
}

/// The kept entries, newest last, and how far the view is scrolled back.
#[derive(Debug)]
pub(crate) struct Log {
    entries: Ring<LogEntry>,
    /// Lines the view is scrolled back from the newest (0: following the newest).
    scroll: usize,
}

impl Log {
    /// An empty log keeping at most `capacity` lines.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            entries: Ring::new(capacity),
            scroll: 0,
        }
    }

    /// Appends `entry`, or counts it into the newest line when it says the same thing. A
    /// view scrolled back stays on the lines it shows.
    pub(crate) fn push(&mut self, entry: LogEntry) {
        if let Some(last) = self.entries.last_mut().filter(|last| last.same_as(&entry)) {
            last.repeats = last.repeats.saturating_add(entry.repeats);
            last.last_at_s = entry.last_at_s;
            return;
        }
        self.entries.push(entry);
        if self.scroll > 0 {
            self.scroll += 1;
        }
    }

    /// Oldest first.
    pub(crate) fn iter(&self) -> impl DoubleEndedIterator<Item = &LogEntry> + ExactSizeIterator {
        self.entries.iter()
    }

    /// The newest line.
    pub(crate) fn last(&self) -> Option<&LogEntry> {
        self.entries.last()
    }

    /// Scrolls back (`older`) or forward by `lines`; forward stops at the newest.
    pub(crate) fn scroll(&mut self, older: bool, lines: usize) {
        self.scroll = if older {
            (self.scroll + lines).min(self.entries.len().saturating_sub(1))
        } else {
            self.scroll.saturating_sub(lines)
        };
    }

    /// Back to following the newest line.
    pub(crate) fn follow(&mut self) {
        self.scroll = 0;
    }

    /// The first line to show and how many newer lines are below the view, for a view
    /// `height` lines tall.
    pub(crate) fn window(&self, height: usize) -> (usize, usize) {
        let len = self.entries.len();
        let below = self.scroll.min(len.saturating_sub(height));
        (len.saturating_sub(height + below), below)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn warning(at_s: f64, text: &str) -> LogEntry {
        LogEntry::new(at_s, LogKind::Warning, text.to_owned())
    }

    #[test]
    fn repeats_in_a_row_collapse_into_one_line() {
        let mut log = Log::new(10);
        for t in 0..4 {
            log.push(warning(f64::from(t), "sink: 3 attempts timed out"));
        }
        log.push(warning(5.0, "something else"));
        log.push(warning(6.0, "sink: 3 attempts timed out"));
        let lines: Vec<_> = log
            .iter()
            .map(|e| (e.repeats, e.at_s, e.last_at_s))
            .collect();
        assert_eq!(lines, [(4, 0.0, 3.0), (1, 5.0, 5.0), (1, 6.0, 6.0)]);
    }

    #[test]
    fn a_scrolled_view_stays_put_and_clamps() {
        let mut log = Log::new(100);
        for t in 0..20 {
            log.push(warning(f64::from(t), &format!("line {t}")));
        }
        assert_eq!(log.window(5), (15, 0));
        log.scroll(true, LOG_PAGE);
        assert_eq!(log.window(5), (10, 5));
        log.push(warning(20.0, "line 20"));
        assert_eq!(log.window(5), (10, 6), "new lines do not move the view");
        log.scroll(true, 1000);
        assert_eq!(log.window(5), (0, 16), "clamped at the oldest page");
        log.scroll(false, 3);
        log.follow();
        assert_eq!(log.window(5), (16, 0));
    }
}
