//! Markers on a run's timeline: reconfigurations, phase changes, warnings.

use serde::{Deserialize, Serialize};

/// Something that happened at a point of a run.
///
/// Serialized flat: `{"at_s":12.5,"kind":"phase","name":"drain"}`.
///
/// ```
/// use runlog::{Event, EventKind};
/// let e = Event::new(12.5, EventKind::Phase { name: "drain".into() });
/// assert_eq!(serde_json::to_string(&e)?, r#"{"at_s":12.5,"kind":"phase","name":"drain"}"#);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Seconds since the run started.
    pub at_s: f64,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

impl Event {
    /// An event at `at_s` seconds into the run.
    ///
    /// ```
    /// let e = runlog::Event::new(1.0, runlog::EventKind::Warning { message: "slow".into() });
    /// assert_eq!(e.at_s, 1.0);
    /// ```
    #[must_use]
    pub fn new(at_s: f64, kind: EventKind) -> Self {
        Self { at_s, kind }
    }
}

/// The kinds of [`Event`], tagged by a `kind` key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKind {
    /// A limit was changed while running.
    Reconfigure {
        /// The [`Knob::name`](crate::Knob::name), e.g. `"interval_us"`.
        knob: String,
        /// The previous value, as text (`"unlimited"` for none).
        from: String,
        /// The new value, as text.
        to: String,
        /// Who changed it, e.g. `"tui"`, `"schedule"`, `"tune"`.
        source: String,
    },
    /// The run entered a phase, e.g. `"run"` or `"drain"`.
    Phase {
        /// The phase name.
        name: String,
    },
    /// Something worth a look that is not a failure.
    Warning {
        /// What happened.
        message: String,
    },
    /// The run was interrupted by a signal (`SIGINT`, `SIGTERM`, `SIGHUP`).
    Interrupted {
        /// The signal's name, e.g. `"SIGTERM"`.
        signal: String,
        /// What the run did about it: `"drain"` (the first signal: stop the producers,
        /// drain, write the record) or `"exit"` (a second one: write what there is, leave).
        action: String,
    },
}

/// One line for people: `interval 10 ms -> 5 ms (tui)`, `phase drain`,
/// `warning: …`, `SIGTERM: drain`.
impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Reconfigure {
                knob,
                from,
                to,
                source,
            } => match crate::Knob::from_name(knob) {
                Some(k) => write!(
                    f,
                    "{k} {} -> {} ({source})",
                    k.show_text(from),
                    k.show_text(to)
                ),
                None => write!(
                    f,
                    "{} {} -> {} ({source})",
                    unknown_knob_label(knob),
                    unknown_knob_value(knob, from),
                    unknown_knob_value(knob, to)
                ),
            },
            Self::Phase { name } => write!(f, "phase {name}"),
            Self::Warning { message } => write!(f, "warning: {message}"),
            Self::Interrupted { signal, action } => write!(f, "{signal}: {action}"),
        }
    }
}

/// A knob this build does not know (a record from a newer one), in words: its key
/// without the unit suffix, underscores as spaces (`max_flush_bytes` -> `max flush`).
fn unknown_knob_label(key: &str) -> String {
    let bare = ["_per_sec", "_bytes", "_us", "_ms", "_s"]
        .iter()
        .find_map(|suffix| key.strip_suffix(suffix))
        .unwrap_or(key);
    bare.replace('_', " ")
}

/// A value of a knob this build does not know, in the unit its key names (`134217728` of
/// `max_flush_bytes` -> `128.0 MiB`); text that is not a number as it is.
fn unknown_knob_value(key: &str, text: &str) -> String {
    use crate::human;
    let Ok(v) = text.parse::<u64>() else {
        return text.to_owned();
    };
    if key.ends_with("_bytes") {
        human::bytes(v)
    } else if key.ends_with("_per_sec") {
        human::rate(v)
    } else if key.ends_with("_us") {
        human::micros(v)
    } else if key.ends_with("_ms") {
        human::micros(v.saturating_mul(1000))
    } else if key.ends_with("_s") {
        human::micros(v.saturating_mul(1_000_000))
    } else {
        human::count(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_knob_this_build_does_not_know_reads_in_words_and_figures() {
        let kind = EventKind::Reconfigure {
            knob: "max_flush_bytes".into(),
            from: "134217728".into(),
            to: "unlimited".into(),
            source: "tui".into(),
        };
        assert_eq!(kind.to_string(), "max flush 128.0 MiB -> unlimited (tui)");
        let kind = EventKind::Reconfigure {
            knob: "flush_every_us".into(),
            from: "20000".into(),
            to: "5000".into(),
            source: "control".into(),
        };
        assert_eq!(kind.to_string(), "flush every 20 ms -> 5 ms (control)");
    }

    #[test]
    fn reconfigure_round_trips_flat() {
        let e = Event::new(
            3.25,
            EventKind::Reconfigure {
                knob: "interval_us".into(),
                from: "10000".into(),
                to: "5000".into(),
                source: "tui".into(),
            },
        );
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["kind"], "reconfigure");
        assert_eq!(v["knob"], "interval_us");
        assert_eq!(serde_json::from_value::<Event>(v).unwrap(), e);
    }

    #[test]
    fn events_read_as_one_line_with_units() {
        let change = EventKind::Reconfigure {
            knob: "interval_us".into(),
            from: "10000".into(),
            to: "5000".into(),
            source: "tui".into(),
        };
        assert_eq!(change.to_string(), "interval 10 ms -> 5 ms (tui)");
        let phase = EventKind::Phase { name: "run".into() };
        assert_eq!(phase.to_string(), "phase run");
    }

    #[test]
    fn integer_time_is_accepted() {
        let e: Event =
            serde_json::from_str(r#"{"at_s":2,"kind":"warning","message":"m"}"#).unwrap();
        assert_eq!(e.at_s, 2.0);
    }
}
