//! Changes sent but not yet seen in the file: they stay on screen over older samples.
//!
//! A sample written just before the soak applied a command can be read just after the
//! dashboard sent it; without this the display would jump back to the old value, and a
//! second key press would start from it. A change is confirmed by the soak's reconfigure
//! event (every later sample carries it), dropped when the soak refuses it, and forgotten
//! after a few samples in any case.

use runlog::{Control, EventKind, Knob, Limits};

/// Samples after which an unconfirmed change is forgotten.
const SAMPLES_TO_CONFIRM: u8 = 4;

#[derive(Debug, Clone, PartialEq)]
enum Change {
    Knob(Knob, Option<u64>),
    Paused(bool),
}

impl Change {
    /// The reconfigure event's `knob` key that confirms this change.
    fn key(&self) -> &'static str {
        match self {
            Self::Knob(knob, _) => knob.name(),
            Self::Paused(_) => "producers",
        }
    }
}

/// The changes in flight, oldest first.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    changes: Vec<(Change, u8)>,
}

impl Pending {
    /// Notes a command as sent.
    pub(crate) fn sent(&mut self, control: &Control) {
        if let Some(change) = change_of(control) {
            self.changes.push((change, SAMPLES_TO_CONFIRM));
        }
    }

    /// Forgets a command that could not be sent.
    pub(crate) fn unsent(&mut self, control: &Control) {
        if let Some(change) = change_of(control) {
            if let Some(i) = self.changes.iter().rposition(|(c, _)| *c == change) {
                self.changes.remove(i);
            }
        }
    }

    /// Forgets everything (the run is ending).
    pub(crate) fn clear(&mut self) {
        self.changes.clear();
    }

    /// Takes a run event: a reconfigure confirms the oldest change of its knob; a warning
    /// naming a knob (a refusal) drops the oldest change of that knob.
    pub(crate) fn on_event(&mut self, kind: &EventKind) {
        let i = match kind {
            EventKind::Reconfigure { knob, .. } => {
                self.changes.iter().position(|(c, _)| c.key() == knob)
            }
            EventKind::Warning { message } => self
                .changes
                .iter()
                .position(|(c, _)| message.contains(c.key())),
            EventKind::Phase { .. } | EventKind::Interrupted { .. } => None,
        };
        if let Some(i) = i {
            self.changes.remove(i);
        }
    }

    /// Lays the changes in flight over a sample's limits and paused flag, and ages them.
    pub(crate) fn on_sample(&mut self, limits: &mut Limits, paused: &mut bool) {
        self.overlay(limits, paused);
        for (_, left) in &mut self.changes {
            *left = left.saturating_sub(1);
        }
        self.changes.retain(|(_, left)| *left > 0);
    }
}

impl Pending {
    /// Lays the changes in flight over `limits` and `paused`, oldest first.
    pub(crate) fn overlay(&self, limits: &mut Limits, paused: &mut bool) {
        for (change, _) in &self.changes {
            match *change {
                Change::Knob(knob, value) => set_knob(limits, knob, value),
                Change::Paused(p) => *paused = p,
            }
        }
    }
}

fn change_of(control: &Control) -> Option<Change> {
    let change = match *control {
        Control::SetInterval { interval_us } => Change::Knob(Knob::Interval, Some(interval_us)),
        Control::SetMaxBatchBytes { bytes } => Change::Knob(Knob::MaxBatchBytes, bytes),
        Control::SetMaxBufferedBytes { bytes } => Change::Knob(Knob::MaxBufferedBytes, Some(bytes)),
        Control::SetRate { per_sec } => Change::Knob(Knob::Rate, per_sec),
        Control::SetConsumerDelay { delay_us } => Change::Knob(Knob::ConsumerDelay, Some(delay_us)),
        Control::Pause => Change::Paused(true),
        Control::Resume => Change::Paused(false),
        Control::Stop => return None,
    };
    Some(change)
}

/// Sets one knob of `limits` (`None`: unlimited / off; ignored for knobs that need a value).
pub(crate) fn set_knob(limits: &mut Limits, knob: Knob, value: Option<u64>) {
    match (knob, value) {
        (Knob::Interval, Some(v)) => limits.interval_us = v,
        (Knob::MaxBatchBytes, v) => limits.max_batch_bytes = v,
        (Knob::MaxBufferedBytes, Some(v)) => limits.max_buffered_bytes = v,
        (Knob::Rate, v) => limits.rate_per_sec = v,
        (Knob::ConsumerDelay, Some(v)) => limits.consumer_delay_us = v,
        (Knob::Interval | Knob::MaxBufferedBytes | Knob::ConsumerDelay, None) => {}
    }
}

#[cfg(test)]
mod tests {
    use runlog::ScenarioConfig;

    use super::*;

    fn reconfigure(knob: &str) -> EventKind {
        EventKind::Reconfigure {
            knob: knob.into(),
            from: String::new(),
            to: String::new(),
            source: "control".into(),
        }
    }

    #[test]
    fn a_change_holds_over_stale_samples_until_confirmed() {
        let old = Limits::from_config(&ScenarioConfig::default());
        let mut pending = Pending::default();
        pending.sent(&Control::SetInterval { interval_us: 5_000 });
        pending.sent(&Control::Pause);

        let (mut limits, mut paused) = (old.clone(), false);
        pending.on_sample(&mut limits, &mut paused);
        assert_eq!((limits.interval_us, paused), (5_000, true));

        pending.on_event(&reconfigure("interval_us"));
        pending.on_event(&reconfigure("producers"));
        let (mut limits, mut paused) = (old.clone(), false);
        pending.on_sample(&mut limits, &mut paused);
        assert_eq!((limits, paused), (old, false));
    }

    #[test]
    fn refused_or_unconfirmed_changes_are_dropped() {
        let old = Limits::from_config(&ScenarioConfig::default());
        let mut pending = Pending::default();
        pending.sent(&Control::SetRate { per_sec: Some(10) });
        let message = "control: refused: rate_per_sec = 10 is out of range".to_owned();
        pending.on_event(&EventKind::Warning { message });
        let (mut limits, mut paused) = (old.clone(), false);
        pending.on_sample(&mut limits, &mut paused);
        assert_eq!(limits.rate_per_sec, None);

        pending.sent(&Control::SetConsumerDelay { delay_us: 7 });
        for _ in 0..SAMPLES_TO_CONFIRM {
            let mut limits = old.clone();
            pending.on_sample(&mut limits, &mut paused);
            assert_eq!(limits.consumer_delay_us, 7);
        }
        let mut limits = old.clone();
        pending.on_sample(&mut limits, &mut paused);
        assert_eq!(limits.consumer_delay_us, 200);
    }
}
