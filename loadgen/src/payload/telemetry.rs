//! Telemetry-shaped JSON events: the mix a web analytics client sends.
//!
//! Each event is one JSON object of roughly 100–400 bytes: page views (the
//! largest, with a user agent), clicks, form inputs, scrolls and heartbeats
//! (the smallest). Every event carries a unique `id` (producer index and
//! sequence number in hex) and a `ts` timestamp in epoch milliseconds.
//!
//! Generation must cost far less than the dispatcher spends per event, so
//! the JSON is not written per event. Each producer pre-renders a pool of
//! [`POOL`] realistic events (module `render`) whose sequence number and
//! timestamp are fixed-width placeholders. An event is then one exact-size
//! copy of a template plus two fixed-width patches (module `digits`): one
//! allocation, one `memcpy`, no branches on the data.
//!
//! The pool holds the mix in its exact proportions, shuffled; every lap of
//! [`POOL`] events visits each template once, in an order that changes
//! from lap to lap.

mod digits;
mod render;

use std::fmt;

use fastrand::Rng;

use digits::{DEC_WIDTH, HEX_WIDTH};
use render::{Kind, render};

/// log2 of [`POOL`].
const POOL_BITS: u32 = 7;

/// Templates per producer: enough that the byte stream does not look
/// periodic to a batcher, few enough (~29 KiB) that 32 producers hold
/// under 1 MiB of them: the soak's heap is mostly the buffer it measures.
pub(crate) const POOL: usize = 1 << POOL_BITS;

/// No telemetry event is longer than this (a bound the tests check).
pub(crate) const MAX_EVENT_BYTES: usize = 512;

/// 2024-01-01T00:00:00Z in milliseconds: the synthetic timeline's origin, so
/// the timestamps are deterministic for a seed and look like real ones.
const EPOCH_MS: u64 = 1_704_067_200_000;

/// Milliseconds between a producer's events on the synthetic timeline; each
/// template adds its own jitter below this.
const STEP_MS: u64 = 37;

/// Timestamps wrap back to [`EPOCH_MS`] before they would need a 14th digit
/// (after ~2 * 10^11 events of one producer), so they stay fixed-width.
const TS_SPAN_MS: u64 = 10_000_000_000_000 - EPOCH_MS;

/// Where one template lives in the pool's bytes, and where its placeholders are.
#[derive(Debug, Clone, Copy)]
struct Template {
    start: u32,
    end: u32,
    /// Offset of the id's [`HEX_WIDTH`] sequence digits from `start`.
    seq_at: u16,
    /// Offset of the timestamp's [`DEC_WIDTH`] digits from `start`.
    ts_at: u16,
    /// Added to the timestamp, below [`STEP_MS`].
    jitter_ms: u8,
}

/// One producer's pre-rendered telemetry events.
#[derive(Clone)]
pub(crate) struct TelemetryPool {
    /// Every template's JSON, back to back.
    bytes: Box<[u8]>,
    templates: Box<[Template]>,
}

impl TelemetryPool {
    /// The pool for `producer`, its contents drawn from `rng`.
    pub(crate) fn new(rng: &mut Rng, producer: u32) -> Self {
        // The mix in exact proportions (stratified), then shuffled.
        let mut kinds: Vec<Kind> = (0..POOL)
            .map(|i| Kind::at_percentile((2 * i + 1) * 100 / (2 * POOL)))
            .collect();
        rng.shuffle(&mut kinds);
        let mut bytes = Vec::with_capacity(POOL * 256);
        let templates = kinds
            .into_iter()
            .map(|kind| {
                let start = bytes.len();
                let at = render(&mut bytes, rng, producer, kind);
                let narrow = |n: usize| u16::try_from(n).expect("templates are small");
                Template {
                    start: u32::try_from(start).expect("the pool is small"),
                    end: u32::try_from(bytes.len()).expect("the pool is small"),
                    seq_at: narrow(at.seq_at),
                    ts_at: narrow(at.ts_at),
                    // STEP_MS is below 256, so the cast keeps every bit.
                    jitter_ms: rng.u64(..STEP_MS) as u8,
                }
            })
            .collect();
        Self {
            bytes: bytes.into_boxed_slice(),
            templates,
        }
    }

    /// The event with sequence number `seq`, as an exact-capacity `Vec`.
    pub(crate) fn event(&self, seq: u64) -> Vec<u8> {
        let template = self.templates[slot(seq)];
        let mut out = self.bytes[template.start as usize..template.end as usize].to_vec();
        let at = usize::from(template.seq_at);
        out[at..at + HEX_WIDTH].copy_from_slice(&digits::hex(seq));
        let at = usize::from(template.ts_at);
        out[at..at + DEC_WIDTH]
            .copy_from_slice(&digits::dec(timestamp_ms(seq, template.jitter_ms)));
        out
    }

    /// The mean event size in bytes: exact for this pool.
    pub(crate) fn mean_len(&self) -> f64 {
        self.bytes.len() as f64 / self.templates.len() as f64
    }
}

impl fmt::Debug for TelemetryPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TelemetryPool")
            .field("templates", &self.templates.len())
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

/// The template for event `seq`: lap `seq / POOL` visits every template
/// once, in the order of `seq`'s low bits XORed with a per-lap key (a
/// bijection on `0..POOL`), so consecutive laps do not replay one order.
fn slot(seq: u64) -> usize {
    let lap_key = (seq >> POOL_BITS).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - POOL_BITS);
    // Masked to POOL_BITS bits, so the cast keeps every bit.
    ((seq ^ lap_key) & (POOL as u64 - 1)) as usize
}

/// Event `seq`'s timestamp: [`STEP_MS`] apart plus the template's jitter, so a
/// producer's timestamps never go backwards (until the far-off wrap).
fn timestamp_ms(seq: u64, jitter_ms: u8) -> u64 {
    // Wrapping: sequence numbers near u64::MAX must not panic in debug builds.
    let offset = seq.wrapping_mul(STEP_MS).wrapping_add(u64::from(jitter_ms));
    EPOCH_MS + offset % TS_SPAN_MS
}

/// A stable 64-bit scramble (splitmix64's finaliser).
pub(crate) fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn every_lap_visits_every_template_once() {
        for lap in [0u64, 1, 2, 77, u64::MAX >> POOL_BITS] {
            let slots: HashSet<usize> = (0..POOL as u64)
                .map(|i| slot(lap << POOL_BITS | i))
                .collect();
            assert_eq!(slots.len(), POOL, "lap {lap}");
        }
        let order =
            |lap: u64| -> Vec<usize> { (0..8).map(|i| slot(lap << POOL_BITS | i)).collect() };
        assert_ne!(order(1), order(2));
    }

    #[test]
    fn the_pool_holds_the_mix_in_proportion() {
        let pool = TelemetryPool::new(&mut Rng::with_seed(1), 0);
        let mut seen = std::collections::BTreeMap::new();
        for seq in 0..POOL as u64 {
            let event: serde_json::Value = serde_json::from_slice(&pool.event(seq)).unwrap();
            *seen
                .entry(event["type"].as_str().unwrap().to_owned())
                .or_insert(0) += 1;
        }
        let share = |kind: &str| f64::from(seen[kind]) / POOL as f64;
        for (kind, want) in [
            ("page_view", 0.20),
            ("click", 0.25),
            ("form_input", 0.15),
            ("scroll", 0.25),
            ("heartbeat", 0.15),
        ] {
            assert!((share(kind) - want).abs() < 0.01, "{kind}: {seen:?}");
        }
    }

    #[test]
    fn extreme_sequence_numbers_stay_valid_and_fixed_width() {
        let pool = TelemetryPool::new(&mut Rng::with_seed(9), u32::MAX);
        for seq in (0..5_000).map(|i| u64::MAX - i).chain([0, 1 << 40]) {
            let event = pool.event(seq);
            assert!(
                (90..=MAX_EVENT_BYTES).contains(&event.len()),
                "{}",
                event.len()
            );
            assert_eq!(event.len(), event.capacity());
            let value: serde_json::Value = serde_json::from_slice(&event).unwrap();
            assert_eq!(value["id"], format!("ffffffff-{seq:016x}"));
            let ts = value["ts"].as_u64().unwrap();
            assert!((EPOCH_MS..10_000_000_000_000).contains(&ts), "{ts}");
        }
    }

    #[test]
    fn timestamps_step_forward_and_stay_thirteen_digits() {
        for seq in [0, 1, 1_000, u64::MAX / STEP_MS, u64::MAX] {
            for jitter in [0, STEP_MS as u8 - 1] {
                let ts = timestamp_ms(seq, jitter);
                assert!((EPOCH_MS..10_000_000_000_000).contains(&ts));
            }
        }
        assert!(timestamp_ms(1, 0) > timestamp_ms(0, STEP_MS as u8 - 1));
    }
}
