//! The running parts of a soak (subject, producers' and consumer's controls
//! and counters, live limits), and how live [`Control`] commands change them.

use std::sync::Arc;
use std::time::Duration;

use loadgen::{ConsumerControl, ConsumerCounters, ProducerControl, ProducerCounters};
use runlog::{Control, EventKind, Knob, Limits};

use crate::sampler::Readings;
use crate::subject::Subject;

/// Everything that lives for the length of a run.
pub struct Harness {
    /// The system under test and its consumer.
    pub subject: Subject,
    /// Rate, pause and stop for the producers.
    pub producer_control: Arc<ProducerControl>,
    /// What the producers offered.
    pub producer_counters: Arc<ProducerCounters>,
    /// The consumer's live simulated cost.
    pub consumer_control: Arc<ConsumerControl>,
    /// What the consumer received.
    pub consumer_counters: Arc<ConsumerCounters>,
    /// The limits in force.
    pub live: Limits,
    /// The scenario's fixed interval jitter (not a live knob).
    pub interval_jitter_us: u64,
}

/// What applying a [`Control`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Applied {
    /// Something changed; the event to record.
    Changed(EventKind),
    /// The command was refused; the warning to record. The run goes on.
    Refused(EventKind),
    /// The run should end now (drain, summary, report).
    Stop,
}

impl Harness {
    /// Counters and gauges now.
    pub fn readings(&self) -> Readings {
        Readings {
            producers: self.producer_counters.snapshot(),
            consumer: self
                .subject
                .sink_totals()
                .unwrap_or_else(|| self.consumer_counters.snapshot()),
            dispatcher: self.subject.stats(),
            limits: self.live.clone(),
            paused: self.producer_control.is_paused(),
        }
    }

    /// Applies a command to the live dispatcher and load generator, after
    /// checking it with [`Limits::apply`] (the same check the dashboard makes).
    pub fn apply(&mut self, control: &Control, source: &str) -> Applied {
        let refused = |message: String| Applied::Refused(EventKind::Warning { message });
        match control {
            Control::Stop => return Applied::Stop,
            Control::Pause => {
                self.producer_control.pause();
                return Applied::Changed(reconfigure("producers", "running", "paused", source));
            }
            Control::Resume => {
                self.producer_control.resume();
                return Applied::Changed(reconfigure("producers", "paused", "running", source));
            }
            _ => {}
        }
        let next = match self.live.apply(control) {
            Ok(next) => next,
            Err(err) => return refused(format!("{source}: refused: {err}")),
        };
        let Some(knob) = control.knob() else {
            return refused(format!("{source}: the command changes no limit"));
        };
        // The same machine bound the command line is held to (see `crate::checks`).
        let memory = crate::tune::total_memory_bytes();
        if knob == Knob::MaxBufferedBytes && memory > 0 && next.max_buffered_bytes > memory / 2 {
            return refused(format!(
                "{source}: refused: {knob} {} is more than half of this machine's {} of memory",
                knob.show(Some(next.max_buffered_bytes)),
                crate::human::bytes(memory)
            ));
        }
        match knob {
            Knob::Interval | Knob::MaxBatchBytes | Knob::MaxBufferedBytes => {
                if let Err(err) = self.subject.set_limits(&next, self.interval_jitter_us) {
                    return refused(format!("{source}: refused by the dispatcher: {err}"));
                }
            }
            Knob::Rate => self.producer_control.set_rate(next.rate_per_sec),
            Knob::ConsumerDelay => {
                self.consumer_control
                    .set_delay_per_batch(Duration::from_micros(next.consumer_delay_us));
            }
        }
        let (from, to) = (self.live.value_text(knob), next.value_text(knob));
        self.live = next;
        Applied::Changed(reconfigure(knob.name(), &from, &to, source))
    }
}

fn reconfigure(knob: &str, from: &str, to: &str, source: &str) -> EventKind {
    EventKind::Reconfigure {
        knob: knob.into(),
        from: from.into(),
        to: to.into(),
        source: source.into(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_refused_change_reads_in_the_knobs_name_and_figures() {
        let limits = runlog::Limits::from_config(&runlog::ScenarioConfig::default());
        let err = limits
            .apply(&runlog::Control::SetMaxBufferedBytes { bytes: 512 })
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "max buffered 512 B is out of range (allowed: 32.0 KiB..=1.0 TiB, max batch)"
        );
        let err = limits
            .apply(&runlog::Control::SetMaxBatchBytes {
                bytes: Some(1 << 40),
            })
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "max batch 1.0 TiB is out of range (allowed: 1 B..=64.0 MiB, max buffered)"
        );
    }
}
