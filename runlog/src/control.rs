//! Commands a dashboard sends to a running soak, and the live limits they change.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::config::ScenarioConfig;
use crate::config::bounds::{
    MAX_BUFFERED_BYTES, MAX_CONSUMER_DELAY_US, MAX_INTERVAL_US, MAX_RATE_PER_SEC,
};

/// A command to a running soak, one JSON object with a `cmd` key.
///
/// ```
/// use runlog::Control;
/// let json = serde_json::to_string(&Control::SetInterval { interval_us: 5000 })?;
/// assert_eq!(json, r#"{"cmd":"set_interval","interval_us":5000}"#);
/// assert_eq!(serde_json::from_str::<Control>(r#"{"cmd":"pause"}"#)?, Control::Pause);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Control {
    /// Change the flush interval.
    SetInterval {
        /// The new interval.
        interval_us: u64,
    },
    /// Change (or remove, with `None`) the batch byte trigger.
    SetMaxBatchBytes {
        /// The new limit.
        bytes: Option<u64>,
    },
    /// Change the bound on buffered bytes.
    SetMaxBufferedBytes {
        /// The new limit.
        bytes: u64,
    },
    /// Change (or remove, with `None`) the offered rate.
    SetRate {
        /// The new rate over all producers.
        per_sec: Option<u64>,
    },
    /// Change the consumer's fixed per-batch delay.
    SetConsumerDelay {
        /// The new delay.
        delay_us: u64,
    },
    /// Pause the producers (the consumer keeps delivering).
    Pause,
    /// Resume the producers.
    Resume,
    /// End the run early: stop producing, drain, write the record.
    Stop,
}

impl Control {
    /// The knob this command changes, if it changes one.
    ///
    /// ```
    /// use runlog::{Control, Knob};
    /// assert_eq!(Control::SetRate { per_sec: None }.knob(), Some(Knob::Rate));
    /// assert_eq!(Control::Stop.knob(), None);
    /// ```
    #[must_use]
    pub fn knob(&self) -> Option<Knob> {
        match self {
            Self::SetInterval { .. } => Some(Knob::Interval),
            Self::SetMaxBatchBytes { .. } => Some(Knob::MaxBatchBytes),
            Self::SetMaxBufferedBytes { .. } => Some(Knob::MaxBufferedBytes),
            Self::SetRate { .. } => Some(Knob::Rate),
            Self::SetConsumerDelay { .. } => Some(Knob::ConsumerDelay),
            Self::Pause | Self::Resume | Self::Stop => None,
        }
    }
}

/// A limit that can be changed while a run is going.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Knob {
    /// [`Limits::interval_us`].
    Interval,
    /// [`Limits::max_batch_bytes`].
    MaxBatchBytes,
    /// [`Limits::max_buffered_bytes`].
    MaxBufferedBytes,
    /// [`Limits::rate_per_sec`].
    Rate,
    /// [`Limits::consumer_delay_us`].
    ConsumerDelay,
}

impl Knob {
    /// Every knob, in display order.
    pub const ALL: [Knob; 5] = [
        Knob::Interval,
        Knob::MaxBatchBytes,
        Knob::MaxBufferedBytes,
        Knob::Rate,
        Knob::ConsumerDelay,
    ];

    /// The stable key, with its unit: the [`Limits`] field name, used as the `knob` of a
    /// reconfigure event.
    ///
    /// ```
    /// assert_eq!(runlog::Knob::Interval.name(), "interval_us");
    /// ```
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Interval => "interval_us",
            Self::MaxBatchBytes => "max_batch_bytes",
            Self::MaxBufferedBytes => "max_buffered_bytes",
            Self::Rate => "rate_per_sec",
            Self::ConsumerDelay => "consumer_delay_us",
        }
    }

    /// The knob whose [`Knob::name`] is `name`.
    ///
    /// ```
    /// assert_eq!(runlog::Knob::from_name("interval_us"), Some(runlog::Knob::Interval));
    /// assert_eq!(runlog::Knob::from_name("producers"), None);
    /// ```
    #[must_use]
    pub fn from_name(name: &str) -> Option<Knob> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// A value of this knob for people; `None` reads `unlimited` (`off` for the batch
    /// byte target).
    ///
    /// ```
    /// use runlog::Knob;
    /// assert_eq!(Knob::Interval.show(Some(10_000)), "10 ms");
    /// assert_eq!(Knob::MaxBufferedBytes.show(Some(64 << 20)), "64.0 MiB");
    /// assert_eq!(Knob::Rate.show(None), "unlimited");
    /// assert_eq!(Knob::MaxBatchBytes.show(None), "off");
    /// ```
    #[must_use]
    pub fn show(self, value: Option<u64>) -> String {
        use crate::human;
        match (self, value) {
            (Self::MaxBatchBytes, None) => "off".to_owned(),
            (_, None) => "unlimited".to_owned(),
            (Self::Interval | Self::ConsumerDelay, Some(us)) => human::micros(us),
            (Self::MaxBatchBytes | Self::MaxBufferedBytes, Some(b)) => human::bytes(b),
            (Self::Rate, Some(r)) => human::rate(r),
        }
    }

    /// A value as a reconfigure event records it (`"10000"`, `"unlimited"`), for people:
    /// a number gets the knob's unit, other text is shown as it is.
    ///
    /// ```
    /// assert_eq!(runlog::Knob::Interval.show_text("5000"), "5 ms");
    /// assert_eq!(runlog::Knob::Rate.show_text("unlimited"), "unlimited");
    /// ```
    #[must_use]
    pub fn show_text(self, text: &str) -> String {
        match text.parse::<u64>() {
            Ok(v) => self.show(Some(v)),
            Err(_) => text.to_owned(),
        }
    }

    /// A short human label for dashboards (also the `Display` form).
    ///
    /// ```
    /// assert_eq!(runlog::Knob::MaxBufferedBytes.to_string(), "max buffered");
    /// ```
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::Interval => "interval",
            Self::MaxBatchBytes => "max batch",
            Self::MaxBufferedBytes => "max buffered",
            Self::Rate => "rate",
            Self::ConsumerDelay => "consumer delay",
        }
    }
}

impl fmt::Display for Knob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// The live values of the changeable limits (also reported in every sample).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Limits {
    /// Flush interval.
    pub interval_us: u64,
    /// Batch byte trigger; `None` is off.
    pub max_batch_bytes: Option<u64>,
    /// Batch count trigger; `None` is off (not changeable live; reported for completeness).
    pub max_batch_items: Option<u64>,
    /// Bound on buffered bytes.
    pub max_buffered_bytes: u64,
    /// Offered rate; `None` is unlimited.
    pub rate_per_sec: Option<u64>,
    /// Consumer's fixed per-batch delay.
    pub consumer_delay_us: u64,
}

/// A [`Control`] refused by [`Limits::apply`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LimitError {
    /// The requested value is outside the allowed range.
    #[error("{knob} {value} is out of range (allowed: {allowed})")]
    OutOfRange {
        /// The knob concerned.
        knob: Knob,
        /// The refused value, for people (`512 B`).
        value: String,
        /// The allowed range given the other current limits, for people
        /// (`32.0 KiB..=1.0 TiB`).
        allowed: String,
    },
}

impl LimitError {
    /// The knob whose change was refused.
    #[must_use]
    pub fn knob(&self) -> Knob {
        match self {
            Self::OutOfRange { knob, .. } => *knob,
        }
    }
}

const MIN_BUFFERED_BYTES: u64 = 1024;

/// Refuses `value` of `knob`, allowed from `low` to `high` (`None`: unlimited), with
/// `why` the bound comes from if another limit sets it.
fn refuse(knob: Knob, value: u64, (low, high): (u64, Option<u64>), why: &str) -> LimitError {
    let show = |v| knob.show(Some(v));
    let high_text = high.map_or_else(|| "unlimited".to_owned(), show);
    // A value that rounds to a bound's figure is shown exactly too, or "64.0 MiB is out
    // of range (allowed: ..=64.0 MiB)" would read as a contradiction.
    let mut value_text = show(value);
    if value_text == show(low) || value_text == high_text {
        let unit = match knob {
            Knob::Interval | Knob::ConsumerDelay => " us",
            Knob::MaxBatchBytes | Knob::MaxBufferedBytes => " B",
            Knob::Rate => "/s",
        };
        value_text = format!("{value_text} ({}{unit})", crate::human::grouped(value));
    }
    LimitError::OutOfRange {
        knob,
        value: value_text,
        allowed: format!("{}..={high_text}{why}", show(low)),
    }
}

impl Limits {
    /// The scenario's starting limits.
    ///
    /// ```
    /// let limits = runlog::Limits::from_config(&runlog::ScenarioConfig::default());
    /// assert_eq!(limits.interval_us, 10_000);
    /// ```
    #[must_use]
    pub fn from_config(config: &ScenarioConfig) -> Self {
        Self {
            interval_us: config.interval_us,
            max_batch_bytes: config.max_batch_bytes,
            max_batch_items: config.max_batch_items,
            max_buffered_bytes: config.max_buffered_bytes,
            rate_per_sec: config.rate_per_sec,
            consumer_delay_us: config.consumer_delay_us,
        }
    }

    /// The limits after `control`, if the change is allowed; `Pause`, `Resume` and `Stop`
    /// change no limit and return a copy.
    ///
    /// Rules: `1 <= interval_us <= 60 s`; `1 <= max_batch_bytes <= max_buffered_bytes`;
    /// `max_buffered_bytes >= 1 KiB`, `>= max_batch_bytes` and `<= 1 TiB`;
    /// `1 <= rate_per_sec <= 10^9`; `consumer_delay_us <= 60 s`: the bounds a scenario is
    /// validated with (see [`crate::bounds`]), so a live change cannot reach a value a run
    /// could not start with.
    ///
    /// ```
    /// use runlog::{Control, Limits, ScenarioConfig};
    /// let limits = Limits::from_config(&ScenarioConfig::default());
    /// let next = limits.apply(&Control::SetInterval { interval_us: 2000 })?;
    /// assert_eq!(next.interval_us, 2000);
    /// let err = limits.apply(&Control::SetMaxBufferedBytes { bytes: 512 }).unwrap_err();
    /// assert_eq!(
    ///     err.to_string(),
    ///     "max buffered 512 B is out of range (allowed: 32.0 KiB..=1.0 TiB, max batch)"
    /// );
    /// # Ok::<(), runlog::LimitError>(())
    /// ```
    ///
    /// # Errors
    /// [`LimitError::OutOfRange`] naming the knob, the value and the allowed range.
    pub fn apply(&self, control: &Control) -> Result<Limits, LimitError> {
        let mut next = self.clone();
        match *control {
            Control::SetInterval { interval_us } => {
                if !(1..=MAX_INTERVAL_US).contains(&interval_us) {
                    let allowed = (1, Some(MAX_INTERVAL_US));
                    return Err(refuse(Knob::Interval, interval_us, allowed, ""));
                }
                next.interval_us = interval_us;
            }
            Control::SetMaxBatchBytes { bytes } => {
                if let Some(b) = bytes {
                    if !(1..=self.max_buffered_bytes).contains(&b) {
                        let allowed = (1, Some(self.max_buffered_bytes));
                        return Err(refuse(Knob::MaxBatchBytes, b, allowed, ", max buffered"));
                    }
                }
                next.max_batch_bytes = bytes;
            }
            Control::SetMaxBufferedBytes { bytes } => {
                let min = MIN_BUFFERED_BYTES.max(self.max_batch_bytes.unwrap_or(0));
                if !(min..=MAX_BUFFERED_BYTES).contains(&bytes) {
                    let allowed = (min, Some(MAX_BUFFERED_BYTES));
                    let why = if min > MIN_BUFFERED_BYTES {
                        ", max batch"
                    } else {
                        ""
                    };
                    return Err(refuse(Knob::MaxBufferedBytes, bytes, allowed, why));
                }
                next.max_buffered_bytes = bytes;
            }
            Control::SetRate { per_sec } => {
                if let Some(rate) = per_sec {
                    if !(1..=MAX_RATE_PER_SEC).contains(&rate) {
                        let allowed = (1, Some(MAX_RATE_PER_SEC));
                        return Err(refuse(Knob::Rate, rate, allowed, " or unlimited"));
                    }
                }
                next.rate_per_sec = per_sec;
            }
            Control::SetConsumerDelay { delay_us } => {
                if delay_us > MAX_CONSUMER_DELAY_US {
                    let allowed = (0, Some(MAX_CONSUMER_DELAY_US));
                    return Err(refuse(Knob::ConsumerDelay, delay_us, allowed, ""));
                }
                next.consumer_delay_us = delay_us;
            }
            Control::Pause | Control::Resume | Control::Stop => {}
        }
        Ok(next)
    }

    /// The current value of a knob as text, `"unlimited"` for `None`: the `from`/`to` of a
    /// reconfigure event.
    ///
    /// ```
    /// let limits = runlog::Limits::from_config(&runlog::ScenarioConfig::default());
    /// assert_eq!(limits.value_text(runlog::Knob::Rate), "unlimited");
    /// assert_eq!(limits.value_text(runlog::Knob::MaxBatchBytes), "32768");
    /// ```
    #[must_use]
    pub fn value_text(&self, knob: Knob) -> String {
        let value = match knob {
            Knob::Interval => Some(self.interval_us),
            Knob::MaxBatchBytes => self.max_batch_bytes,
            Knob::MaxBufferedBytes => Some(self.max_buffered_bytes),
            Knob::Rate => self.rate_per_sec,
            Knob::ConsumerDelay => Some(self.consumer_delay_us),
        };
        value.map_or_else(|| "unlimited".to_owned(), |v| v.to_string())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn base() -> Limits {
        Limits::from_config(&ScenarioConfig::default())
    }

    #[test]
    fn unit_commands_leave_limits_unchanged() {
        for c in [Control::Pause, Control::Resume, Control::Stop] {
            assert_eq!(base().apply(&c).unwrap(), base());
        }
    }

    #[test]
    fn knob_names_match_limits_field_names() {
        let json = serde_json::to_value(base()).unwrap();
        for knob in Knob::ALL {
            assert!(json.get(knob.name()).is_some(), "{}", knob.name());
        }
    }

    fn control() -> impl Strategy<Value = Control> {
        let opt = proptest::option::of(0u64..200_000);
        prop_oneof![
            (0u64..50_000).prop_map(|interval_us| Control::SetInterval { interval_us }),
            opt.clone()
                .prop_map(|bytes| Control::SetMaxBatchBytes { bytes }),
            (0u64..200_000).prop_map(|bytes| Control::SetMaxBufferedBytes { bytes }),
            opt.prop_map(|per_sec| Control::SetRate { per_sec }),
            (0u64..10_000).prop_map(|delay_us| Control::SetConsumerDelay { delay_us }),
            Just(Control::Pause),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]
        #[test]
        fn accepted_changes_keep_limits_consistent(
            controls in proptest::collection::vec(control(), 1..20)
        ) {
            let mut limits = Limits { max_buffered_bytes: 100_000, ..base() };
            for c in &controls {
                match limits.apply(c) {
                    Ok(next) => limits = next,
                    Err(e) => prop_assert_eq!(Some(e.knob()), c.knob()),
                }
                prop_assert!(limits.interval_us >= 1);
                prop_assert!(limits.max_buffered_bytes >= MIN_BUFFERED_BYTES);
                let batch = limits.max_batch_bytes.unwrap_or(1);
                prop_assert!((1..=limits.max_buffered_bytes).contains(&batch));
                prop_assert_ne!(limits.rate_per_sec, Some(0));
            }
        }
    }
}
