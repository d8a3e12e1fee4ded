//! The worker that reads the disk tier back into memory as room frees,
//! and acknowledges what has left memory.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Disk, SpillTier, record};
use crate::core::Core;
use crate::signal::Check;
use crate::sync::{Ordering::Relaxed, Ordering::SeqCst};
use crate::weight::{Weight, charge};

/// How often the worker acknowledges and (under `Every`) syncs, at most.
const TICK: Duration = Duration::from_millis(50);
/// Records moved per hold of the disk lock (producers append meanwhile).
const MOVES_PER_LOCK: usize = 256;

/// A record read back, decoded and weighed, waiting for room.
pub(super) struct Transit<T> {
    pub(super) seq: u64,
    part: usize,
    items: Vec<T>,
    weights: Vec<usize>,
    total: usize,
}

/// What one refill step ended with.
enum Step {
    /// Moved what there was room for and stopped to let others in.
    Moved,
    /// The next record needs this many bytes of room.
    Room(usize),
    /// Nothing unread on disk.
    Idle,
    /// Reading failed: try again later.
    Failed,
}

impl<T: Weight + Send + 'static> Core<T> {
    /// Starts the worker of this core's disk tier, if it has one.
    pub(crate) fn start_spill_worker(self: &Arc<Self>) {
        let Some(tier) = &self.spill else { return };
        let core = Arc::clone(self);
        let handle = std::thread::Builder::new()
            .name(format!("{}-spill", self.name))
            .spawn(move || core.run_spill_worker())
            .expect("spawning the spill worker thread");
        *tier.worker.lock() = Some(handle);
    }

    fn run_spill_worker(&self) {
        let tier = self.spill.as_ref().expect("a disk tier");
        // When acknowledgements and syncs are next due; `None` while the
        // log holds nothing unacknowledged (then only news wakes the worker).
        let mut house: Option<Instant> = None;
        while !tier.stopping.load(SeqCst) {
            let step = tier.refill(self);
            let now = Instant::now();
            let urgent = tier.ack_now.swap(false, SeqCst);
            house = match house {
                Some(due) if now >= due || urgent => tier.housekeep(self).then(|| now + TICK),
                None if urgent => tier.housekeep(self).then(|| now + TICK),
                None if tier.unacknowledged() => Some(now + TICK),
                kept => kept,
            };
            // Every wait also ends when housekeeping is due: the loop does
            // it and sets the next instant (a wait past it would spin).
            let until = |ready: bool| {
                if ready
                    || tier.stopping.load(SeqCst)
                    || tier.ack_now.load(SeqCst)
                    || house.is_some_and(|due| Instant::now() >= due)
                {
                    Check::Ready(())
                } else {
                    Check::Wait(house)
                }
            };
            match step {
                Step::Moved => {}
                // Memory frees when a batch leaves or settles.
                Step::Room(need) => self.settled.wait(|| until(self.budget.fits_back(need))),
                Step::Idle => tier.wake.wait(|| until(tier.pending.load(SeqCst))),
                // Try again at the next tick.
                Step::Failed => {
                    let retry = Instant::now() + TICK;
                    tier.wake.wait(|| {
                        if tier.stopping.load(SeqCst) || Instant::now() >= retry {
                            Check::Ready(())
                        } else {
                            Check::Wait(Some(retry))
                        }
                    });
                }
            }
        }
    }
}

impl<T: Weight> SpillTier<T> {
    /// Moves records from disk into memory while there is room.
    fn refill(&self, core: &Core<T>) -> Step {
        let step = self.refill_locked(core);
        // `flush_and_wait` waits for records to come back.
        core.settled.notify();
        step
    }

    fn refill_locked(&self, core: &Core<T>) -> Step {
        let mut disk = self.disk.lock();
        for _ in 0..MOVES_PER_LOCK {
            let transit = match disk.transit.take() {
                Some(transit) => transit,
                None => match self.read(core, &mut disk) {
                    Ok(Some(transit)) => transit,
                    Ok(None) => return Step::Idle,
                    Err(()) => return Step::Failed,
                },
            };
            match core.budget.try_reserve_back(transit.total) {
                Ok(after) => {
                    core.budget.note_peak(after);
                    let count = transit.items.len() as u64;
                    core.place_replayed(transit);
                    self.counts.replayed.fetch_add(count, Relaxed);
                    saturating_sub(&self.counts.backlog, count);
                }
                Err(_) => {
                    let need = transit.total;
                    disk.transit = Some(transit);
                    return Step::Room(need);
                }
            }
        }
        Step::Moved
    }

    /// Reads the next record that can be delivered. `Ok(None)`: nothing
    /// unread (then `pending` is cleared, under the disk lock).
    fn read(&self, core: &Core<T>, disk: &mut Disk<T>) -> Result<Option<Transit<T>>, ()> {
        loop {
            let Some(log) = disk.log.as_mut() else {
                return Ok(None);
            };
            let (seq, bytes) = match log.read_next() {
                Ok(Some(read)) => read,
                Ok(None) => {
                    self.counts.backlog.store(0, Relaxed);
                    self.pending.store(false, SeqCst);
                    // Receivers and drains waiting on the tier look again.
                    core.ready.notify();
                    core.settled.notify();
                    return Ok(None);
                }
                Err(error) => {
                    self.note_error(disk, error);
                    return Err(());
                }
            };
            disk.last_read = seq;
            // The codec and `Weight` are user code: a panic makes the record
            // undeliverable, it does not end the worker.
            let weighing = core.weighing;
            let decoded = catch_unwind(AssertUnwindSafe(|| {
                record::decode(&*disk.codec, &bytes).map(|(part, items)| {
                    let weights: Vec<usize> = items.iter().map(|i| charge(weighing, i)).collect();
                    (part, items, weights)
                })
            }));
            match decoded {
                Ok(Ok((part, items, weights))) => {
                    let total = weights.iter().try_fold(0usize, |s, &w| s.checked_add(w));
                    match total {
                        Some(total) => {
                            return Ok(Some(Transit {
                                seq,
                                part: part % core.partitions(),
                                items,
                                weights,
                                total,
                            }));
                        }
                        // Weights that add up past `usize`: damage.
                        None => self.undeliverable(items.len() as u64),
                    }
                }
                Ok(Err(_)) | Err(_) => self.undeliverable(1),
            }
        }
    }

    fn undeliverable(&self, count: u64) {
        self.counts.undeliverable.fetch_add(count, Relaxed);
        saturating_sub(&self.counts.backlog, count);
    }
}

impl<T> SpillTier<T> {
    /// Acknowledges what has left memory, and syncs if the policy says so.
    /// Returns whether records stay unacknowledged (housekeeping is due
    /// again later).
    fn housekeep(&self, core: &Core<T>) -> bool {
        let mut disk = self.disk.lock();
        self.acknowledge(core, &mut disk);
        let Some(log) = disk.log.as_mut() else {
            return false;
        };
        let sync = log.sync_if_due();
        let unacknowledged = log.stats().pending_events > 0;
        if let Err(error) = sync {
            self.note_error(&mut disk, error);
        }
        unacknowledged
    }

    /// Whether the log holds records not yet acknowledged.
    fn unacknowledged(&self) -> bool {
        let disk = self.disk.lock();
        disk.log
            .as_ref()
            .is_some_and(|log| log.stats().pending_events > 0)
    }

    /// Acknowledges every record below the lowest spill mark still held:
    /// in transit, in a partition, or in a batch lent to a receiver.
    /// Partitions are read before the lent batches: a batch moves from the
    /// one to the other under its partition's lock, so it is seen once at
    /// least.
    fn acknowledge(&self, core: &Core<T>, disk: &mut Disk<T>) {
        if disk.frozen {
            return;
        }
        let mut low = disk.transit.as_ref().map(|t| t.seq);
        for part in 0..core.partitions() {
            let held = core.lock(part).oldest_spilled();
            low = low.into_iter().chain(held).min();
        }
        let lent = self.lent.lock().keys().next().copied();
        low = low.into_iter().chain(lent).min();
        let upto = low.map_or(disk.last_read, |low| low - 1);
        let Some(log) = disk.log.as_mut() else { return };
        if upto <= log.acked() {
            return;
        }
        let result = log.ack(upto);
        let freed = log.stats().disk_bytes;
        let before = self.counts.disk_bytes.swap(freed, Relaxed);
        if let Err(error) = result {
            self.note_error(disk, error);
        }
        if freed < before {
            // Producers waiting for disk room look again.
            core.budget.room.notify_all();
        }
    }

    /// Stops the worker and waits for it, then acknowledges what has left
    /// memory, syncs (unless the policy is `Os`) and closes the log,
    /// releasing its directory. What is still on disk stays there for the
    /// next start. Idempotent.
    pub(crate) fn finish(&self, core: &Core<T>) {
        self.stop_worker(core);
        let mut disk = self.disk.lock();
        disk.closed = true;
        self.acknowledge(core, &mut disk);
        if let Some(mut log) = disk.log.take() {
            if self.sync != crate::spill::SyncPolicy::Os {
                if let Err(error) = log.sync() {
                    self.note_error(&mut disk, error);
                }
            }
            self.counts
                .disk_bytes
                .store(log.stats().disk_bytes, Relaxed);
        }
        drop(disk);
        core.ready.notify();
        core.settled.notify();
    }

    /// Before shutdown or stop takes what memory holds: acknowledges what
    /// has left memory, then no more. Events read back from disk that are
    /// handed back to the caller stay on disk, unacknowledged: the next
    /// start delivers them again (the caller may drop what it gets).
    pub(crate) fn freeze(&self, core: &Core<T>) {
        let mut disk = self.disk.lock();
        self.acknowledge(core, &mut disk);
        disk.frozen = true;
    }

    /// Stops the worker: nothing more comes back from disk. Idempotent.
    pub(crate) fn stop_worker(&self, core: &Core<T>) {
        self.stopping.store(true, SeqCst);
        self.wake.notify();
        core.settled.notify();
        let handle = self.worker.lock().take();
        if let Some(handle) = handle {
            if handle.thread().id() != std::thread::current().id() {
                // A panic in the worker was already reported by the hook.
                let _ = handle.join();
            }
        }
        core.ready.notify();
        core.settled.notify();
    }
}

impl<T: Weight> Core<T> {
    /// Appends a record read back from disk to its producer's partition.
    fn place_replayed(&self, transit: Transit<T>) {
        let mut st = self.lock(transit.part);
        for (item, weight) in transit.items.into_iter().zip(transit.weights) {
            st.append_refilled(item, weight, transit.seq);
        }
        // A hook's panic: the worker cannot resume it anywhere useful; the
        // events are in place and counted.
        let _ = st.unlock();
    }
}

fn saturating_sub(counter: &crate::sync::AtomicU64, n: u64) {
    let _ = counter.fetch_update(Relaxed, Relaxed, |v| Some(v.saturating_sub(n)));
}
