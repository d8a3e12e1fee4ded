//! Human-readable numbers for the panels: bytes, rates, durations, limits.

use runlog::{Knob, Limits};

pub(crate) use runlog::human::{bytes, count, micros, rate, seconds};

/// A knob's value with its unit; `None` reads `unlimited` (`off` for the batch trigger).
pub(crate) fn knob_value(knob: Knob, value: Option<u64>) -> String {
    knob.show(value)
}

/// The value of `knob` in `limits`.
pub(crate) fn knob_of(limits: &Limits, knob: Knob) -> Option<u64> {
    match knob {
        Knob::Interval => Some(limits.interval_us),
        Knob::MaxBatchBytes => limits.max_batch_bytes,
        Knob::MaxBufferedBytes => Some(limits.max_buffered_bytes),
        Knob::Rate => limits.rate_per_sec,
        Knob::ConsumerDelay => Some(limits.consumer_delay_us),
    }
}

/// A reconfigure event's value text (`"10000"`, `"unlimited"`) shown with its unit, when
/// `knob_name` is a [`Knob::name`]; other text is shown as it is.
pub(crate) fn event_value(knob_name: &str, text: &str) -> String {
    Knob::from_name(knob_name).map_or_else(|| text.to_owned(), |k| k.show_text(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_read_well() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(64 << 20), "64.0 MiB");
        assert_eq!(bytes(12_897_485), "12.3 MiB");
        assert_eq!(rate(1_234_567.0), "1.23M/s");
        assert_eq!(count(12_345.0), "12.3k");
        assert_eq!(micros(850), "850 us");
        assert_eq!(micros(10_000), "10 ms");
        assert_eq!(micros(12_500), "12.5 ms");
        assert_eq!(micros(1_500_000), "1.5 s");
        assert_eq!(seconds(245.0), "4m05s");
    }

    #[test]
    fn event_values_get_units() {
        assert_eq!(event_value("interval_us", "5000"), "5 ms");
        assert_eq!(event_value("max_batch_bytes", "unlimited"), "unlimited");
        assert_eq!(event_value("rate_per_sec", "1000"), "1.0k/s");
        assert_eq!(event_value("producers", "paused"), "paused");
    }
}
