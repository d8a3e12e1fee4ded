//! What the heap holds per buffered byte, measured before a run on this machine with this
//! payload and these batch limits: the real dispatcher is filled with generated events
//! (payloads in their allocator size classes, the event structs, the batch vectors with
//! their growth policy) on this thread, and jemalloc's count of what this thread holds
//! (allocated minus freed: other threads' allocations never blur it) is read before and
//! after, then
//! the batches are taken and dropped to see what the dispatcher keeps for reuse. Nothing
//! is assumed about any of these costs: they are read off the allocator.

use std::time::Duration;

use dispatcher::{Dispatcher, Policy};
use loadgen::{Event, PayloadSource};
use runlog::ScenarioConfig;
use tikv_jemalloc_ctl::{epoch, stats};

const MIB: u64 = 1 << 20;
/// The least the calibration fills: enough that allocator caches are noise.
const MIN_FILL: u64 = 8 * MIB;
/// The most it fills, whatever the batch size.
const MAX_FILL: u64 = 64 * MIB;
/// Batches filled at least: more than the dispatcher keeps for reuse (64 per partition).
const MIN_BATCHES: u64 = 96;

/// The heap cost of buffering, measured.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct HeapCost {
    /// Heap bytes per buffered byte while events wait in the dispatcher (>= 1: the
    /// payload, its size-class rounding, the event struct, its batch-vector slot).
    pub per_buffered_byte: f64,
    /// Heap the dispatcher keeps once its batches are delivered (recycled batch
    /// vectors), per partition.
    pub retained_per_partition: u64,
    /// Mean weight of the events measured.
    pub mean_event_bytes: f64,
    /// Bytes buffered for the measurement.
    pub filled_bytes: u64,
}

/// The heap now, as the sampler reads it (jemalloc `stats.allocated`).
pub fn allocated() -> u64 {
    let _ = epoch::advance();
    stats::allocated::read().map_or(0, |b| b as u64)
}

/// What this thread holds now: jemalloc's per-thread allocated minus deallocated bytes
/// (a pull-mode dispatcher runs no thread of its own, so everything it allocates here
/// is counted here). `None` without jemalloc's per-thread counters.
fn held_by_this_thread() -> Option<u64> {
    let allocated = tikv_jemalloc_ctl::thread::allocatedp::read().ok()?.get();
    let freed = tikv_jemalloc_ctl::thread::deallocatedp::read().ok()?.get();
    Some(allocated.wrapping_sub(freed))
}

/// Measures the heap cost of buffering `config`'s payload with its batch limits; `None`
/// when jemalloc reports nothing (another allocator) or the dispatcher refuses the limits.
pub fn calibrate(config: &ScenarioConfig, payload: &PayloadSource) -> Option<HeapCost> {
    let batch = config
        .max_batch_bytes
        .unwrap_or(config.max_buffered_bytes)
        .min(config.max_buffered_bytes)
        .max(1);
    let fill = batch.saturating_mul(MIN_BATCHES).clamp(MIN_FILL, MAX_FILL);
    // One partition: one handle fills one anyway, and the heap it keeps is
    // counted per partition, whatever the machine's default count.
    let mut builder = Dispatcher::<Event>::builder()
        .partitions(1)
        .interval(Duration::MAX)
        .max_batch_bytes(usize::try_from(batch).ok()?)
        .max_buffered_bytes(usize::try_from(fill.saturating_mul(2)).ok()?)
        .weighing(crate::subject::weighing(config))
        .policy(Policy::Reject);
    if let Some(items) = config.max_batch_items {
        builder = builder.max_batch_items(usize::try_from(items).ok()?);
    }
    let (dispatcher, batches) = builder.build().ok()?;
    let producer = dispatcher.producer();
    let mut generator = payload.generator(config.seed ^ 0x5eed, 0);
    let before = held_by_this_thread()?;
    let (mut bytes, mut events) = (0u64, 0u64);
    while bytes < fill {
        let payload = generator.next_payload();
        if producer
            .try_enqueue(Event::new(payload, 0, 0, events))
            .is_err()
        {
            break;
        }
        // What the event was charged, under the scenario's weighing.
        bytes = dispatcher.stats().buffered_bytes as u64;
        events += 1;
    }
    let held = held_by_this_thread()?.wrapping_sub(before);
    dispatcher.flush();
    while let Ok(batch) = batches.try_recv() {
        drop(batch);
    }
    let left = dispatcher.stats().buffered_bytes as u64;
    let retained = held_by_this_thread()?.wrapping_sub(before);
    drop(producer);
    drop(dispatcher);
    drop(batches);
    if bytes == 0 {
        return None;
    }
    let per_buffered_byte = (held as f64 / bytes as f64).max(1.0);
    Some(HeapCost {
        per_buffered_byte,
        retained_per_partition: retained.saturating_sub((left as f64 * per_buffered_byte) as u64),
        mean_event_bytes: bytes as f64 / events.max(1) as f64,
        filled_bytes: bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payload_byte_costs_more_than_a_byte_and_a_small_event_more_than_a_large_one() {
        let config = ScenarioConfig {
            weighing: runlog::Weighing::Payload,
            ..ScenarioConfig::default()
        };
        let small = PayloadSource::load(&"fixed:100".parse().unwrap()).unwrap();
        let large = PayloadSource::load(&"fixed:10KiB".parse().unwrap()).unwrap();
        let small = calibrate(&config, &small).expect("jemalloc reports");
        let large = calibrate(&config, &large).expect("jemalloc reports");
        // 100 B payloads: the 32-byte event and its slot are a third again.
        assert!(small.per_buffered_byte > 1.2, "{small:?}");
        assert!(
            large.per_buffered_byte < small.per_buffered_byte,
            "{large:?}"
        );
        assert!(large.per_buffered_byte >= 1.0);
        assert!((small.mean_event_bytes - 100.0).abs() < 1e-9);
    }

    #[test]
    fn an_occupancy_byte_costs_about_a_byte_whatever_the_event_size() {
        let config = ScenarioConfig::default();
        assert_eq!(config.weighing, runlog::Weighing::Occupancy);
        for (spec, charged) in [("fixed:100", 32.0 + 112.0), ("fixed:10KiB", 32.0 + 10240.0)] {
            let payload = PayloadSource::load(&spec.parse().unwrap()).unwrap();
            let cost = calibrate(&config, &payload).expect("jemalloc reports");
            // Only the batch vectors' spare slots are not charged.
            assert!(cost.per_buffered_byte < 1.1, "{spec}: {cost:?}");
            assert!(
                (cost.mean_event_bytes - charged).abs() < 1e-9,
                "{spec}: {cost:?}"
            );
        }
    }
}
