//! The soak's events on disk: when each was meant to be sent (as wall-clock time, so an
//! event an earlier run left behind is timed against this run's clock), its origin, and
//! its payload.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use dispatcher::spill::{Codec, DecodeError};
use dispatcher::{Weighing, Weight as _};
use loadgen::{Clock, Event};

/// Bytes before the payload: intended time (u64), producer (u32), sequence (u64).
pub(crate) const HEADER: usize = 20;

/// Encodes [`Event`]s for the disk tier: `intended (u64 LE, ns since the Unix epoch) |
/// producer (u32 LE) | seq (u64 LE) | payload`.
///
/// An event written by an earlier run and read back by this one gets the intended time
/// its wall-clock time has on this run's clock, or this clock's start if it is older: its
/// latency counts from this run's start at the earliest.
///
/// It also keeps the weight of the heaviest event it read back ([`EventCodec::heaviest`]):
/// one heavier than a lowered buffered limit comes back alone once memory is empty, the
/// one way buffered bytes may pass the limit, and the memory verdict allows exactly that.
#[derive(Debug, Clone)]
pub struct EventCodec {
    /// The run clock's origin, in nanoseconds since the Unix epoch.
    origin_ns: u64,
    /// What the dispatcher charges an event.
    weighing: Weighing,
    /// The heaviest event decoded so far, as charged (0: none).
    heaviest: Arc<AtomicU64>,
}

impl EventCodec {
    /// A codec for events timed by `clock`, weighed by their payload bytes.
    pub fn new(clock: Clock) -> Self {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        EventCodec {
            origin_ns: now.saturating_sub(clock.now_ns()),
            weighing: Weighing::Payload,
            heaviest: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Weighs what it reads back as the dispatcher charges it under `weighing`.
    #[must_use]
    pub fn weighing(mut self, weighing: Weighing) -> Self {
        self.weighing = weighing;
        self
    }

    /// Keeps the heaviest event it reads back in `heaviest` (see [`EventCodec::heaviest`]).
    #[must_use]
    pub fn heaviest_into(mut self, heaviest: Arc<AtomicU64>) -> Self {
        self.heaviest = heaviest;
        self
    }

    /// The heaviest event this codec (or a clone) has read back from disk, as the
    /// dispatcher charges it: 0 until one is read back.
    pub fn heaviest(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.heaviest)
    }
}

impl Codec<Event> for EventCodec {
    fn encode(&self, event: &Event, out: &mut Vec<u8>) {
        let wall = self.origin_ns.saturating_add(event.intended_at_ns);
        out.extend_from_slice(&wall.to_le_bytes());
        out.extend_from_slice(&event.producer().to_le_bytes());
        out.extend_from_slice(&event.seq().to_le_bytes());
        out.extend_from_slice(&event.payload);
    }

    fn decode(&self, bytes: &[u8]) -> Result<Event, DecodeError> {
        if bytes.len() < HEADER {
            return Err(DecodeError::new(format!(
                "a soak event is at least {HEADER} bytes, this record holds {}",
                bytes.len()
            )));
        }
        let (head, payload) = bytes.split_at(HEADER);
        let u64_at = |at: usize| {
            let mut word = [0u8; 8];
            word.copy_from_slice(&head[at..at + 8]);
            u64::from_le_bytes(word)
        };
        let mut producer = [0u8; 4];
        producer.copy_from_slice(&head[8..12]);
        let intended = u64_at(0).saturating_sub(self.origin_ns);
        let event = Event::new(
            payload.to_vec(),
            intended,
            u32::from_le_bytes(producer),
            u64_at(12),
        );
        // As `dispatcher::weight` charges it: at least one byte.
        let charged = match self.weighing {
            Weighing::Payload => event.weight(),
            Weighing::Occupancy => event.occupancy(),
        }
        .max(1);
        self.heaviest.fetch_max(charged as u64, Ordering::Relaxed);
        Ok(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_round_trips() {
        let codec = EventCodec::new(Clock::new());
        let event = Event::new(b"{\"a\":1}".to_vec(), 1_234_567, 4_097, (1 << 40) - 1);
        let mut buf = b"kept".to_vec();
        codec.encode(&event, &mut buf);
        let back = codec.decode(&buf[4..]).expect("decodes");
        assert_eq!(&*back.payload, &*event.payload);
        assert_eq!(
            (back.intended_at_ns, back.producer(), back.seq()),
            (1_234_567, 4_097, (1 << 40) - 1)
        );
    }

    #[test]
    fn an_older_run_s_event_is_timed_from_this_clock_s_start() {
        let earlier = EventCodec {
            origin_ns: 1_000,
            ..EventCodec::new(Clock::new())
        };
        let later = EventCodec {
            origin_ns: 5_000,
            ..EventCodec::new(Clock::new())
        };
        let mut buf = Vec::new();
        earlier.encode(&Event::new(vec![1], 10, 0, 0), &mut buf);
        assert_eq!(later.decode(&buf).expect("decodes").intended_at_ns, 0);
        assert!(later.decode(&buf[..HEADER - 1]).is_err());
    }

    #[test]
    fn it_keeps_the_heaviest_event_it_read_back_as_charged() {
        let codec = EventCodec::new(Clock::new());
        let mut buf = Vec::new();
        codec.encode(&Event::new(vec![7; 8192], 0, 1, 2), &mut buf);
        let mut small = Vec::new();
        codec.encode(&Event::new(vec![], 0, 1, 3), &mut small);
        assert_eq!(codec.heaviest().load(Ordering::Relaxed), 0);
        codec.decode(&small).expect("decodes");
        assert_eq!(
            codec.heaviest().load(Ordering::Relaxed),
            1,
            "at least a byte"
        );
        codec.decode(&buf).expect("decodes");
        codec.decode(&small).expect("decodes");
        assert_eq!(codec.heaviest().load(Ordering::Relaxed), 8192);
        let fresh = EventCodec::new(Clock::new()).weighing(Weighing::Occupancy);
        fresh.decode(&buf).expect("decodes");
        let event = Event::new(vec![7; 8192], 0, 1, 2);
        assert_eq!(
            fresh.heaviest().load(Ordering::Relaxed),
            event.occupancy() as u64
        );
        assert_eq!(fresh.heaviest().load(Ordering::Relaxed), 8224);
    }
}
