//! The line envelope of `samples.jsonl`: each line is a sample or an event.

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};

use crate::event::Event;
use crate::sample::Sample;

/// One line of `samples.jsonl`.
///
/// Lines carry no extra tag: a sample has a `t_s` key and never a `kind` key; an event
/// always has a `kind` key (and `at_s`). Reading looks for `kind` first, then `t_s`, and
/// reports a line with neither as such, so a parse error names the real problem (e.g. a
/// missing sample field) rather than "no variant matched".
///
/// ```
/// use runlog::{Event, EventKind, Line};
/// let line = Line::from_json_slice(br#"{"at_s":1.5,"kind":"phase","name":"drain"}"#)?;
/// assert_eq!(line, Line::Event(Event::new(1.5, EventKind::Phase { name: "drain".into() })));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
#[expect(
    clippy::large_enum_variant,
    reason = "nearly every line is a sample: boxing would allocate for the common case"
)]
pub enum Line {
    /// A sample interval.
    Sample(Sample),
    /// A timeline marker.
    Event(Event),
}

impl Line {
    /// Parses one line (without its newline).
    ///
    /// # Errors
    /// The JSON error: malformed JSON, neither `kind` nor `t_s`, or a missing or mistyped
    /// field of the sample or event.
    pub fn from_json_slice(bytes: &[u8]) -> Result<Line, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

impl<'de> Deserialize<'de> for Line {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        let Some(object) = value.as_object() else {
            return Err(de::Error::custom("a samples line must be a JSON object"));
        };
        if object.contains_key("kind") {
            Event::deserialize(value)
                .map(Line::Event)
                .map_err(de::Error::custom)
        } else if object.contains_key("t_s") {
            Sample::deserialize(value)
                .map(Line::Sample)
                .map_err(de::Error::custom)
        } else {
            Err(de::Error::custom(
                "neither a sample (no `t_s` key) nor an event (no `kind` key)",
            ))
        }
    }
}

impl From<Sample> for Line {
    fn from(sample: Sample) -> Self {
        Line::Sample(sample)
    }
}

impl From<Event> for Line {
    fn from(event: Event) -> Self {
        Line::Event(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventKind;

    #[test]
    fn sample_and_event_round_trip() {
        let sample = Line::Sample(Sample {
            t_s: 1.0,
            phase: "run".into(),
            ..Default::default()
        });
        let event = Line::Event(Event::new(
            0.5,
            EventKind::Warning {
                message: "x".into(),
            },
        ));
        for line in [sample, event] {
            let text = serde_json::to_vec(&line).unwrap();
            assert_eq!(Line::from_json_slice(&text).unwrap(), line);
        }
    }

    #[test]
    fn errors_name_the_problem() {
        let err = Line::from_json_slice(br#"{"t_s": 1.0}"#).unwrap_err();
        assert!(err.to_string().contains("missing field"), "{err}");
        let err = Line::from_json_slice(br#"{"x": 1}"#).unwrap_err();
        assert!(err.to_string().contains("neither a sample"), "{err}");
        let err = Line::from_json_slice(b"[1]").unwrap_err();
        assert!(err.to_string().contains("JSON object"), "{err}");
    }
}
