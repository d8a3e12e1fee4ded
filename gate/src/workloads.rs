//! The fixed single-threaded workloads the gate counts, and the one function
//! whose inside is counted.
//!
//! Every workload runs a warm-up first (outside the count), then
//! [`gate_measured_region`] with `events` events. Callgrind collects only
//! inside that function (`--toggle-collect`), and the allocation counter
//! only around it. The gate runs each workload twice, with N and 2N events,
//! and divides the difference by N: whatever a run spends once (entering
//! the region, the first batch buffers, a pool's first growth) cancels out
//! exactly, and what is left is the steady-state cost per event.
//!
//! Payloads are recycled (the receiver hands each delivered event's buffer
//! back to the producer side), so the counts are the dispatcher's own and
//! not the allocator's price for a fresh 1 KiB buffer.

use std::alloc::System;
use std::hint::black_box;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use dispatcher::{Batches, Dispatcher, Policy, Producer};
use loadgen::{PayloadGen, PayloadSpec};
use stats_alloc::{Region, StatsAlloc};

/// The name callgrind's `--toggle-collect` matches (a glob over the
/// demangled or mangled symbol, so it holds for either mangling scheme).
pub(crate) const MEASURED_SYMBOL: &str = "gate_measured_region";

/// Events run before the measured region, so it starts in steady state.
const WARMUP_EVENTS: u64 = 4096;

/// Far beyond any run under callgrind: no batch is ever cut by its interval,
/// so every cut comes from a size limit and the counts do not depend on speed.
const NEVER: Duration = Duration::from_secs(3600);

/// Every event count must be a multiple of this (the largest batch and group
/// length below), so each run ends on a batch boundary.
pub(crate) const EVENT_QUANTUM: u64 = 64;

/// One of the fixed workloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Workload {
    /// `try_enqueue` of 64-byte events, Reject policy, nothing refused; the
    /// receiver drains with `try_recv` every 64 events (`max_batch_items`).
    TryEnqueue64B,
    /// `try_enqueue` of 1 KiB events; batches are cut by `max_batch_bytes`
    /// (16.5 KiB, so the cut happens before the 17th event would overflow).
    TryEnqueue1KiB,
    /// DropOldest steady state: the buffer holds 4 KiB, so every enqueue
    /// evicts the oldest event; evicted events go back to the producer.
    DropOldest64B,
    /// `try_enqueue_all` of groups of 16 64-byte events (the group `Vec` is
    /// built per call, as a caller must).
    TryEnqueueAll16x64B,
    /// `enqueue` under Block (never waiting: the receiver drains every 64
    /// events) of 64-byte events, through one of 8 partitions, which lease
    /// their budget: the path of a blocking producer with the defaults.
    Enqueue64BBlock8Partitions,
    /// loadgen's telemetry payload generation (one fresh `Vec` per event).
    LoadgenTelemetry,
}

impl Workload {
    /// Every workload, in report order.
    pub(crate) const ALL: [Workload; 6] = [
        Workload::TryEnqueue64B,
        Workload::TryEnqueue1KiB,
        Workload::DropOldest64B,
        Workload::TryEnqueueAll16x64B,
        Workload::Enqueue64BBlock8Partitions,
        Workload::LoadgenTelemetry,
    ];

    /// The stable name: the prefix of its metrics' names.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Workload::TryEnqueue64B => "dispatcher.try_enqueue_64b",
            Workload::TryEnqueue1KiB => "dispatcher.try_enqueue_1kib_batch_bytes",
            Workload::DropOldest64B => "dispatcher.drop_oldest_64b",
            Workload::TryEnqueueAll16x64B => "dispatcher.try_enqueue_all_16x64b",
            Workload::Enqueue64BBlock8Partitions => "dispatcher.enqueue_block_64b_8_partitions",
            Workload::LoadgenTelemetry => "loadgen.telemetry",
        }
    }

    /// The workload called `name`, if any.
    pub(crate) fn from_name(name: &str) -> Option<Workload> {
        Workload::ALL.into_iter().find(|w| w.name() == name)
    }

    fn driver(self) -> Result<Box<dyn Drive>> {
        Ok(match self {
            Workload::TryEnqueue64B => {
                Box::new(Enqueue::new(64, 64, Call::Try, |b| b.max_batch_items(64))?)
            }
            Workload::TryEnqueue1KiB => Box::new(Enqueue::new(1024, 16, Call::Try, |b| {
                b.max_batch_bytes(16 * 1024 + 512)
            })?),
            Workload::DropOldest64B => Box::new(DropOldest::new(64, 64)?),
            Workload::TryEnqueueAll16x64B => {
                Box::new(Enqueue::new(64, 64, Call::TryAll(16), |b| {
                    b.max_batch_items(64)
                })?)
            }
            Workload::Enqueue64BBlock8Partitions => {
                Box::new(Enqueue::new(64, 64, Call::Block, |b| {
                    // A count the same on any machine, as for one partition.
                    b.max_batch_items(64).partitions(8).policy(Policy::Block {
                        timeout: Duration::from_secs(60),
                    })
                })?)
            }
            Workload::LoadgenTelemetry => Box::new(Telemetry::new()?),
        })
    }
}

/// What one run of a workload counted in process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RunCounts {
    /// Allocator calls that obtained memory (alloc, alloc_zeroed, realloc)
    /// inside the measured region.
    pub(crate) allocations: u64,
}

/// Runs `workload` with `events` measured events (after the warm-up) and
/// counts the allocations inside the measured region.
///
/// # Errors
/// When the dispatcher refuses an event or cannot be built: the workload's
/// configuration no longer fits the dispatcher it measures.
pub(crate) fn run(
    allocator: &StatsAlloc<System>,
    workload: Workload,
    events: u64,
) -> Result<RunCounts> {
    if events == 0 || events % EVENT_QUANTUM != 0 {
        bail!("events must be a positive multiple of {EVENT_QUANTUM}, not {events}");
    }
    let mut driver = workload.driver()?;
    driver.drive(WARMUP_EVENTS)?;
    let region = Region::new(allocator);
    gate_measured_region(driver.as_mut(), events)
        .with_context(|| format!("workload {}", workload.name()))?;
    let change = region.change();
    Ok(RunCounts {
        allocations: (change.allocations + change.reallocations) as u64,
    })
}

/// The counted region: callgrind's `--toggle-collect` names this function.
#[inline(never)]
fn gate_measured_region(driver: &mut dyn Drive, events: u64) -> Result<()> {
    driver.drive(events)
}

/// A workload's state, driven for a number of events.
trait Drive {
    fn drive(&mut self, events: u64) -> Result<()>;
}

/// A byte filler that is not zero, so no allocator shortcut applies.
const FILL: u8 = 0x5a;

/// Enqueueing (`try_enqueue`, `try_enqueue_all` or a blocking `enqueue`)
/// with a receiver that drains after every `drain_every` events.
struct Enqueue {
    _dispatcher: Dispatcher<Vec<u8>>,
    producer: Producer<Vec<u8>>,
    batches: Batches<Vec<u8>>,
    /// Delivered payloads, reused as the next events.
    spare: Vec<Vec<u8>>,
    size: usize,
    drain_every: u64,
    call: Call,
}

/// How an [`Enqueue`] workload hands its events over.
#[derive(Debug, Clone, Copy)]
enum Call {
    /// `try_enqueue`, one event at a time.
    Try,
    /// `try_enqueue_all` of this many events at a time.
    TryAll(usize),
    /// `enqueue`, one event at a time (the policy is the builder's).
    Block,
}

impl Call {
    /// Events per call.
    fn events(self) -> usize {
        match self {
            Call::Try | Call::Block => 1,
            Call::TryAll(group) => group,
        }
    }
}

impl Enqueue {
    fn new(
        size: usize,
        drain_every: u64,
        call: Call,
        limits: impl FnOnce(dispatcher::Builder<Vec<u8>>) -> dispatcher::Builder<Vec<u8>>,
    ) -> Result<Self> {
        // One partition unless `limits` says otherwise: the default follows
        // the machine's processors, and a count must not.
        let builder = Dispatcher::<Vec<u8>>::builder()
            .partitions(1)
            .interval(NEVER)
            .max_buffered_bytes(64 * 1024 * 1024)
            .policy(Policy::Reject);
        let (dispatcher, batches) = limits(builder).build().context("gate dispatcher config")?;
        let slack = 4 * EVENT_QUANTUM as usize;
        let mut spare = Vec::with_capacity(2 * slack);
        spare.resize_with(slack, || vec![FILL; size]);
        Ok(Enqueue {
            producer: dispatcher.producer(),
            _dispatcher: dispatcher,
            batches,
            spare,
            size,
            drain_every,
            call,
        })
    }

    fn payload(&mut self) -> Vec<u8> {
        self.spare.pop().unwrap_or_else(|| vec![FILL; self.size])
    }

    fn send(&mut self) -> Result<()> {
        let refused = match self.call {
            Call::Try => {
                let payload = self.payload();
                self.producer
                    .try_enqueue(payload)
                    .err()
                    .map(|e| e.to_string())
            }
            Call::TryAll(events) => {
                let mut group = Vec::with_capacity(events);
                for _ in 0..events {
                    group.push(self.payload());
                }
                self.producer
                    .try_enqueue_all(group)
                    .err()
                    .map(|e| e.to_string())
            }
            Call::Block => {
                let payload = self.payload();
                self.producer.enqueue(payload).err().map(|e| e.to_string())
            }
        };
        match refused {
            None => Ok(()),
            Some(why) => bail!("the dispatcher refused an event ({why}): fix the gate workload"),
        }
    }

    fn drain(&mut self) {
        while let Ok(mut batch) = self.batches.try_recv() {
            self.spare.extend(batch.drain());
        }
    }
}

impl Drive for Enqueue {
    fn drive(&mut self, events: u64) -> Result<()> {
        let mut sent = 0;
        while sent < events {
            self.send()?;
            sent += self.call.events() as u64;
            if sent % self.drain_every == 0 {
                self.drain();
            }
        }
        Ok(())
    }
}

/// DropOldest steady state: the buffer is always full, so each enqueue
/// evicts; the eviction hook returns evicted payloads for reuse.
struct DropOldest {
    _dispatcher: Dispatcher<Vec<u8>>,
    producer: Producer<Vec<u8>>,
    /// Never read, but alive: admission closes when the last receiver goes.
    _batches: Batches<Vec<u8>>,
    spare: Arc<Mutex<Vec<Vec<u8>>>>,
    size: usize,
}

impl DropOldest {
    fn new(size: usize, held_events: usize) -> Result<Self> {
        let spare = Arc::new(Mutex::new(Vec::with_capacity(4 * held_events)));
        spare
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .resize_with(2 * held_events, || vec![FILL; size]);
        let hook_spare = Arc::clone(&spare);
        let (dispatcher, batches) = Dispatcher::<Vec<u8>>::builder()
            .partitions(1) // as above: the same count on any machine
            .interval(NEVER)
            .max_buffered_bytes(size * held_events)
            .max_batch_items(16)
            .policy(Policy::DropOldest)
            .on_evict(move |old| {
                hook_spare
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(old);
            })
            .build()
            .context("gate dispatcher config")?;
        Ok(DropOldest {
            producer: dispatcher.producer(),
            _dispatcher: dispatcher,
            _batches: batches,
            spare,
            size,
        })
    }
}

impl Drive for DropOldest {
    fn drive(&mut self, events: u64) -> Result<()> {
        for _ in 0..events {
            let reused = self
                .spare
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop();
            let payload = reused.unwrap_or_else(|| vec![FILL; self.size]);
            if let Err(e) = self.producer.try_enqueue(payload) {
                bail!("the dispatcher refused an event ({e}): fix the gate workload");
            }
        }
        Ok(())
    }
}

/// loadgen's telemetry generator, each payload dropped at once.
struct Telemetry {
    generator: PayloadGen,
}

impl Telemetry {
    fn new() -> Result<Self> {
        let generator =
            PayloadGen::new(&PayloadSpec::Telemetry, 42, 0).context("telemetry payloads")?;
        Ok(Telemetry { generator })
    }
}

impl Drive for Telemetry {
    fn drive(&mut self, events: u64) -> Result<()> {
        for _ in 0..events {
            black_box(self.generator.next_payload());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for w in Workload::ALL {
            assert_eq!(Workload::from_name(w.name()), Some(w));
        }
        assert_eq!(Workload::from_name("nope"), None);
    }

    #[test]
    fn every_workload_runs() {
        // Counting needs a process of its own (tests/gate.rs): the global
        // counter also sees the other tests' threads. This wrapper is not
        // the registered allocator and counts nothing; the runs must work.
        let counter = StatsAlloc::system();
        for w in Workload::ALL {
            let counts = run(&counter, w, 2 * EVENT_QUANTUM).expect("workload runs");
            assert_eq!(counts.allocations, 0, "{}", w.name());
        }
    }

    #[test]
    fn event_counts_off_the_quantum_are_refused() {
        let counter = StatsAlloc::system();
        let err = run(&counter, Workload::TryEnqueue64B, 100).unwrap_err();
        assert!(err.to_string().contains("multiple of 64"), "{err}");
    }
}
