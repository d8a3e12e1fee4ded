//! Marks on the time charts: when a limit changed, when the producers paused and resumed.

use runlog::{Event, EventKind};

/// What a [`Mark`] marks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkKind {
    /// A limit changed (a reconfigure event of any knob but the producers').
    Limit,
    /// The producers paused.
    Pause,
    /// The producers resumed.
    Resume,
}

impl MarkKind {
    /// The letter drawn at the top of the mark's line, so marks read without colour.
    #[must_use]
    pub fn letter(self) -> char {
        match self {
            Self::Limit => 'L',
            Self::Pause => 'P',
            Self::Resume => 'R',
        }
    }

    /// What the chart legends call it.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Limit => "limit",
            Self::Pause => "pause",
            Self::Resume => "resume",
        }
    }
}

/// A vertical mark at a run time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mark {
    /// Seconds since the run started.
    pub at_s: f64,
    /// What happened then.
    pub kind: MarkKind,
}

impl Mark {
    /// The mark a run event makes, if any: reconfigure events only.
    ///
    /// ```
    /// use dashboards::{Mark, MarkKind};
    /// use runlog::{Event, EventKind};
    /// let pause = Event::new(4.0, EventKind::Reconfigure {
    ///     knob: "producers".into(),
    ///     from: "running".into(),
    ///     to: "paused".into(),
    ///     source: "dashboard".into(),
    /// });
    /// assert_eq!(Mark::from_event(&pause), Some(Mark { at_s: 4.0, kind: MarkKind::Pause }));
    /// ```
    #[must_use]
    pub fn from_event(event: &Event) -> Option<Self> {
        let EventKind::Reconfigure { knob, to, .. } = &event.kind else {
            return None;
        };
        let kind = match (knob.as_str(), to.as_str()) {
            ("producers", "paused") => MarkKind::Pause,
            ("producers", _) => MarkKind::Resume,
            _ => MarkKind::Limit,
        };
        Some(Self {
            at_s: event.at_s,
            kind,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reconfigure(knob: &str, to: &str) -> Event {
        Event::new(
            2.0,
            EventKind::Reconfigure {
                knob: knob.into(),
                from: "x".into(),
                to: to.into(),
                source: "dashboard".into(),
            },
        )
    }

    #[test]
    fn reconfigure_events_make_marks_and_others_do_not() {
        let kind = |e: &Event| Mark::from_event(e).map(|m| m.kind);
        assert_eq!(
            kind(&reconfigure("interval_us", "5000")),
            Some(MarkKind::Limit)
        );
        assert_eq!(
            kind(&reconfigure("producers", "paused")),
            Some(MarkKind::Pause)
        );
        assert_eq!(
            kind(&reconfigure("producers", "running")),
            Some(MarkKind::Resume)
        );
        let phase = Event::new(1.0, EventKind::Phase { name: "run".into() });
        assert_eq!(kind(&phase), None);
    }
}
