//! The disk tier (feature `spill`): where events go when memory is full,
//! and how they come back.
//!
//! - Admission ([`Core::admit_spilling`](super::Core)): an event that does
//!   not fit in memory is appended to the [`SpillLog`] instead. While
//!   anything accepted is on disk (`pending`), every new event goes to disk
//!   too, behind it: order holds across the tiers. When the disk is full
//!   or failing, the memory policy applies as it would without a tier.
//! - Read back ([`refill`]): one worker thread moves records from disk into
//!   the partition their producer admits to, as the byte budget frees; it
//!   clears `pending` under the disk lock once the log has nothing unread,
//!   so no event can slip in between.
//! - Acknowledgement: a batch carries the lowest sequence number of the
//!   events it holds that came from disk (its *spill mark*, a lower bound).
//!   The worker acknowledges everything below the lowest mark still held
//!   anywhere (partitions, batches lent to pull receivers, the record in
//!   transit), so an event is acknowledged only once it is delivered,
//!   failed to the error hook, evicted or returned, and a crash replays
//!   at most what was in memory.
//!
//! Locks, in order: the disk lock, then a partition's, then the lent
//! batches' (a leaf). Admission never holds a partition lock when it takes
//! the disk lock.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::signal::Signal;
use crate::spill::{Recovered, SpillError, SpillLog, SyncPolicy};
use crate::stats::SpillCounts;
use crate::sync::{AtomicBool, AtomicU64, Mutex, Ordering::Relaxed, Ordering::SeqCst};

pub(crate) mod record;
mod refill;

/// What [`Builder::spill`](crate::Builder::spill) hands the core.
pub(crate) struct SpillSetup<T> {
    pub(crate) log: SpillLog,
    pub(crate) recovered: Recovered,
    pub(crate) codec: Box<dyn record::Coder<T>>,
}

pub(crate) struct SpillTier<T> {
    /// Accepted events are on disk or being read back: admission goes to
    /// disk, behind them. Set and cleared under the disk lock.
    pending: AtomicBool,
    /// Every event goes through the disk ([`Spill::write_ahead`](crate::spill::Spill::write_ahead)).
    write_ahead: bool,
    disk: Mutex<Disk<T>>,
    /// Spill marks of pull-mode batches handed out and not yet dropped,
    /// with how many batches carry each.
    lent: Mutex<BTreeMap<u64, usize>>,
    /// Something was appended, the disk was found full, or the worker
    /// must stop.
    wake: Signal,
    /// An append found the disk full: acknowledge now rather than at the
    /// next tick (what left memory frees segments).
    ack_now: AtomicBool,
    stopping: AtomicBool,
    worker: Mutex<Option<JoinHandle<()>>>,
    counts: Counts,
    recovered: Recovered,
    max_disk_bytes: u64,
    sync: SyncPolicy,
}

/// The log and what only its lock's holder touches.
struct Disk<T> {
    /// `None` once the tier is finished (the directory lock is released).
    log: Option<SpillLog>,
    codec: Box<dyn record::Coder<T>>,
    buf: Vec<u8>,
    /// Admission closed: nothing more is appended.
    closed: bool,
    /// A record read back that is waiting for room in memory.
    transit: Option<refill::Transit<T>>,
    /// The sequence number of the last record read back.
    last_read: u64,
    /// No acknowledgement any more: shutdown or stop is taking what memory
    /// holds, and what came from disk stays there unacknowledged.
    frozen: bool,
    last_error: Option<Arc<SpillError>>,
}

#[derive(Default)]
struct Counts {
    spilled: AtomicU64,
    replayed: AtomicU64,
    backlog: AtomicU64,
    disk_bytes: AtomicU64,
    fallbacks: AtomicU64,
    errors: AtomicU64,
    undeliverable: AtomicU64,
}

/// How an append to the disk tier ended.
pub(crate) enum Appended {
    /// On disk: accepted.
    Yes,
    /// Admission is closed.
    Closed,
    /// The disk is full or failing: the memory policy decides.
    No,
}

impl<T> SpillTier<T> {
    pub(crate) fn new(setup: SpillSetup<T>) -> Self {
        let stats = setup.log.stats();
        let last_read = setup.log.acked();
        let pending = stats.unread_events > 0;
        SpillTier {
            pending: AtomicBool::new(pending),
            write_ahead: setup.log.settings().is_write_ahead(),
            counts: Counts {
                backlog: AtomicU64::new(stats.unread_events),
                disk_bytes: AtomicU64::new(stats.disk_bytes),
                ..Counts::default()
            },
            max_disk_bytes: stats.max_disk_bytes,
            sync: setup.log.settings().sync_policy(),
            disk: Mutex::new(Disk {
                log: Some(setup.log),
                codec: setup.codec,
                buf: Vec::new(),
                closed: false,
                transit: None,
                last_read,
                frozen: false,
                last_error: None,
            }),
            lent: Mutex::new(BTreeMap::new()),
            wake: Signal::default(),
            stopping: AtomicBool::new(false),
            ack_now: AtomicBool::new(false),
            worker: Mutex::new(None),
            recovered: setup.recovered,
        }
    }

    /// Whether every event goes through the disk.
    pub(crate) fn write_ahead(&self) -> bool {
        self.write_ahead
    }

    /// Whether admission must go to disk now (behind what is there).
    #[inline]
    pub(crate) fn diverts(&self) -> bool {
        self.write_ahead || self.pending.load(SeqCst)
    }

    /// Whether the worker may still bring events into memory: receivers
    /// and drains must not conclude that nothing more will come.
    pub(crate) fn feeding(&self) -> bool {
        self.pending.load(SeqCst) && !self.stopping.load(SeqCst)
    }

    /// Appends `count` events (one record) admitted through partition
    /// `part`, unless admission closed or the disk refuses.
    pub(crate) fn append<'a>(
        &self,
        part: usize,
        items: impl ExactSizeIterator<Item = &'a T>,
        group: bool,
    ) -> Appended
    where
        T: 'a,
    {
        let count = items.len() as u64;
        let mut guard = self.disk.lock();
        let disk = &mut *guard;
        let Some(log) = disk.log.as_mut().filter(|_| !disk.closed) else {
            return Appended::Closed;
        };
        disk.buf.clear();
        record::encode(&*disk.codec, part, items, group, &mut disk.buf);
        let before = log.next_seq();
        let result = log.append(&disk.buf);
        // An append whose sync failed still appended the record: it is
        // read back like any other (its durability is what is unknown).
        let appended = log.next_seq() != before;
        let mut error = result.err();
        if appended && self.sync == SyncPolicy::EveryBatch {
            error = error.or(log.sync().err());
        }
        self.counts
            .disk_bytes
            .store(log.stats().disk_bytes, Relaxed);
        if let Some(error) = error {
            if !matches!(error, SpillError::Full { .. } | SpillError::TooLarge { .. }) {
                self.counts.errors.fetch_add(1, Relaxed);
            }
            disk.last_error = Some(Arc::new(error));
        }
        if !appended {
            drop(guard);
            self.counts.fallbacks.fetch_add(count, Relaxed);
            if !self.ack_now.swap(true, SeqCst) {
                self.wake.notify();
            }
            return Appended::No;
        }
        self.counts.spilled.fetch_add(count, Relaxed);
        self.counts.backlog.fetch_add(count, Relaxed);
        self.pending.store(true, SeqCst);
        drop(guard);
        self.wake.notify();
        Appended::Yes
    }

    /// The sequence number of the last record appended (0: none).
    pub(crate) fn last_appended(&self) -> u64 {
        let disk = self.disk.lock();
        disk.log.as_ref().map_or(0, |log| log.next_seq() - 1)
    }

    /// Whether every record up to `upto` has been read back into memory
    /// (or the tier is finished).
    pub(crate) fn read_back(&self, upto: u64) -> bool {
        let disk = self.disk.lock();
        disk.log.is_none()
            || (disk.last_read >= upto && disk.transit.as_ref().is_none_or(|t| t.seq > upto))
    }

    /// Admission closed: nothing more is appended (the worker goes on
    /// reading back until it is stopped).
    pub(crate) fn close(&self) {
        self.disk.lock().closed = true;
    }

    /// A pull-mode batch carrying spill mark `mark` was handed out.
    pub(crate) fn lend(&self, mark: u64) {
        *self.lent.lock().entry(mark).or_default() += 1;
    }

    /// The batch lent with `mark` was dropped by its consumer; true when
    /// no lent batch is left.
    pub(crate) fn returned(&self, mark: u64) -> bool {
        let mut lent = self.lent.lock();
        if let Some(count) = lent.get_mut(&mark) {
            *count -= 1;
            if *count == 0 {
                lent.remove(&mark);
            }
        }
        lent.is_empty()
    }

    /// Whether a pull receiver still holds a batch read back from disk
    /// (not acknowledged until it drops it).
    pub(crate) fn lending(&self) -> bool {
        !self.lent.lock().is_empty()
    }

    /// The last disk error (full, write, read, sync, acknowledgement).
    pub(crate) fn last_error(&self) -> Option<Arc<SpillError>> {
        self.disk.lock().last_error.clone()
    }

    pub(crate) fn counts(&self) -> SpillCounts {
        let c = &self.counts;
        SpillCounts {
            spilled: c.spilled.load(Relaxed),
            replayed: c.replayed.load(Relaxed),
            backlog: c.backlog.load(Relaxed),
            disk_bytes: c.disk_bytes.load(Relaxed),
            max_disk_bytes: self.max_disk_bytes,
            recovered_events: self.recovered.events,
            recovered_bytes: self.recovered.bytes,
            torn: self.recovered.torn_records,
            fallbacks: c.fallbacks.load(Relaxed),
            errors: c.errors.load(Relaxed),
            undeliverable: c.undeliverable.load(Relaxed),
        }
    }

    fn note_error(&self, disk: &mut Disk<T>, error: SpillError) {
        self.counts.errors.fetch_add(1, Relaxed);
        disk.last_error = Some(Arc::new(error));
    }
}
