//! One partition's state behind its lock: the open batch, sealed batches
//! waiting for a receiver, batches in flight, counters, and the news its
//! changes make. Single-threaded logic only; [`Core`](crate::core::Core)
//! adds the lock, the shared byte budget and the waiting.

use std::cell::Cell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::batch::{FlushReason, Receipt, Sealed};
use crate::config::Limits;
use crate::hooks::{Hooks, OpenBatch};
use crate::stats::Stats;
use crate::undelivered::Undelivered;

mod evict;
mod outbox;

pub(crate) use outbox::{Outbox, Takes};

/// A panic of user code (a hook, `Weight::weight`) caught under the lock,
/// kept until the operation is complete and the lock released.
pub(crate) type Caught = Box<dyn std::any::Any + Send>;

/// What the changes since the lock was taken mean for others; the lock's
/// guard acts on it when it lets go (see [`crate::core::Guard`]).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct News {
    /// A batch was sealed or requeued, or a batch was opened (a new
    /// deadline): receivers may have work.
    pub(crate) ready: bool,
    /// A batch left (taken in pull mode, settled, evicted, returned):
    /// drains and checkpoints may be done.
    pub(crate) settled: bool,
    /// Bytes this partition no longer holds, to release from the budget.
    pub(crate) freed: usize,
}

pub(crate) struct State<T> {
    pub(crate) limits: Limits,
    /// Counters and this partition's gauges; `buffered_bytes` is this
    /// partition's share of the budget.
    pub(crate) stats: Stats,
    pub(crate) hooks: Hooks<T>,
    /// Sink mode: a taken batch stays charged (and counted as buffered)
    /// until the sink is done with it; see [`State::settle`].
    hold_in_flight: bool,
    /// What an event is charged: eviction and re-cuts weigh again the same way.
    weighing: crate::Weighing,
    /// Shutdown or stop has taken everything: nothing requeued can be
    /// returned any more.
    retired: bool,
    news: News,
    /// Bytes of the budget this partition leased and has not charged to an
    /// event yet (see `Core::lease`). Only a partition that holds events
    /// admitted since its last release has any: every `release` gives it
    /// back.
    pub(crate) credit: usize,
    caught: Cell<Option<Caught>>,
    /// Ids of batches taken but not yet settled (sink mode; at most one per
    /// flush worker).
    in_flight: Vec<u64>,
    /// The spill marks ([`Sealed::spill`]) of the batches in flight that
    /// have one.
    in_flight_spill: Vec<u64>,
    /// The open batch's spill mark: the sequence number of its first event
    /// read back from the disk tier (later ones are higher).
    open_spill: Option<u64>,
    /// The mark the next event placed in the open batch brings with it.
    placing_spill: Option<u64>,
    in_flight_bytes: usize,
    /// The id the next sealed batch gets.
    next_id: u64,
    open: Vec<T>,
    open_bytes: usize,
    /// When the open batch got its first event, and its share of the jitter.
    open_since: Option<(Instant, Duration)>,
    /// Sealed batches, behind a lock of their own (taken inside this
    /// state's): pull receivers take them there without this state's lock.
    outbox: Arc<Outbox<T>>,
    /// A running average of batch lengths (events): new batch buffers get
    /// a sixteenth more than this. Slots are memory the byte limit does not
    /// see, so buffers are sized to what batches hold, not to the longest,
    /// and a sealed batch whose buffer holds more than a sixteenth (and 4)
    /// spare slots gives them back.
    len_hint: usize,
    rng: fastrand::Rng,
    /// The epoch sealed batches are stamped from (see [`Sealed::since`]):
    /// only receivers choosing among several partitions read the stamps.
    stamps: Option<Instant>,
}

/// The oldest waiting batch's start when none waits: later than any stamp
/// (and than the 0 of batches not stamped).
pub(crate) const UNSTAMPED: u64 = u64::MAX;

/// New batch buffers hold `len_hint / HEADROOM` slots more than the average
/// batch; a sealed one with more spare slots than that (and 4) is shrunk.
const HEADROOM: usize = 16;

impl<T> State<T> {
    pub(crate) fn new(
        limits: Limits,
        hooks: Hooks<T>,
        hold_in_flight: bool,
        weighing: crate::Weighing,
        seed: u64,
        stamps: Option<Instant>,
    ) -> Self {
        State {
            limits,
            stats: Stats::default(),
            hooks,
            hold_in_flight,
            weighing,
            retired: false,
            news: News::default(),
            credit: 0,
            caught: Cell::new(None),
            in_flight: Vec::new(),
            in_flight_spill: Vec::new(),
            open_spill: None,
            placing_spill: None,
            in_flight_bytes: 0,
            next_id: 0,
            open: Vec::new(),
            open_bytes: 0,
            open_since: None,
            outbox: Arc::new(Outbox::new()),
            len_hint: 0,
            rng: fastrand::Rng::with_seed(seed),
            stamps,
        }
    }

    /// Where this partition's sealed batches wait (shared with receivers).
    pub(crate) fn outbox(&self) -> &Arc<Outbox<T>> {
        &self.outbox
    }

    /// Folds what pull receivers took from the outbox since the last call
    /// into the statistics, which are then exact (under this lock).
    pub(crate) fn fold_takes(&mut self) {
        let taken = self.outbox.lock().taken();
        self.fold(taken);
    }

    /// [`fold_takes`](Self::fold_takes) for a caller holding the outbox's
    /// lock: `taken` is what it took out of the outbox.
    pub(crate) fn fold(&mut self, taken: Option<Takes>) {
        fold_into(&mut self.stats, taken);
    }

    /// Gives the partition's lease back to the budget with the bytes it
    /// frees (when the lock is released), so who waits for room is told.
    #[inline]
    pub(crate) fn give_back_lease(&mut self) {
        self.news.freed += std::mem::take(&mut self.credit);
    }

    /// Takes the news of the changes made since the last call, if any.
    #[inline]
    pub(crate) fn take_news(&mut self) -> Option<News> {
        let news = self.news;
        if news == News::default() {
            None
        } else {
            self.news = News::default();
            Some(news)
        }
    }

    /// Appends an event just admitted, whose bytes the caller reserved, and
    /// cuts batches as the size limits and hooks say.
    #[inline]
    pub(crate) fn append(&mut self, item: T, weight: usize) {
        self.stats.accepted += 1;
        if self.joins_open(weight) {
            // What `enter` comes to for such an event: nothing opens, nothing
            // is cut, no hook runs, the buffer does not grow.
            self.stats.buffered_items += 1;
            self.stats.buffered_bytes += weight;
            self.open.push(item);
            self.open_bytes += weight;
        } else {
            self.enter(item, weight);
        }
    }

    /// Whether an event of `weight` joins the open batch without opening
    /// it, filling it (to either size limit) or growing its buffer, with no
    /// hook to run: the path most events take, kept short.
    #[inline]
    fn joins_open(&self, weight: usize) -> bool {
        let len = self.open.len();
        len > 0
            && len < self.open.capacity()
            && !self.hooks.on_append
            && self
                .limits
                .max_batch_bytes
                .is_none_or(|max| self.open_bytes.saturating_add(weight) < max)
            && self.limits.max_batch_items.is_none_or(|max| len + 1 < max)
    }

    /// Puts an event (counted as accepted already) in the partition. Out of
    /// line: [`append`](Self::append) keeps the common case to itself.
    #[inline(never)]
    fn enter(&mut self, item: T, weight: usize) {
        if self.hooks.on_append {
            self.append_hooked(item, weight);
        } else {
            self.append_plain(item, weight);
        }
    }

    /// [`enter`](Self::enter) without the `will_overflow` and
    /// `should_flush` hooks.
    #[inline]
    fn append_plain(&mut self, item: T, weight: usize) {
        self.stats.buffered_items += 1;
        self.stats.buffered_bytes += weight;
        // An empty open batch after `place` means it sealed the event itself.
        let opens = self.open.is_empty() || self.would_overflow(weight);
        self.place(item, weight);
        if opens && !self.open.is_empty() {
            self.open_since = Some((Instant::now(), self.jitter_share()));
            self.news.ready = true;
        }
    }

    /// [`enter`](Self::enter) between the `will_overflow` and
    /// `should_flush` hooks. The first runs before the event joins a batch,
    /// the second after it is complete; a panic of either is caught and the
    /// operation completes.
    #[cold]
    #[inline(never)]
    fn append_hooked(&mut self, item: T, weight: usize) {
        self.hook_cut_before(&item);
        self.append_plain(item, weight);
        self.hook_cut_after();
    }

    #[cfg(feature = "spill")]
    /// Appends an event read back from the disk tier (record `seq`), whose
    /// bytes the caller reserved. It was counted as accepted when it was
    /// spilled, so only the gauges change.
    pub(crate) fn append_refilled(&mut self, item: T, weight: usize, seq: u64) {
        self.placing_spill = Some(seq);
        self.enter(item, weight);
        self.placing_spill = None;
    }

    #[cfg(feature = "spill")]
    /// The lowest spill mark among the batches this partition holds (open,
    /// waiting or in flight): no event read back from disk with a lower
    /// sequence number is still here.
    pub(crate) fn oldest_spilled(&self) -> Option<u64> {
        let queue = self.outbox.lock();
        let waiting = queue.batches.iter().filter_map(|sealed| sealed.spill);
        let flying = self.in_flight_spill.iter().copied();
        self.open_spill
            .into_iter()
            .chain(waiting)
            .chain(flying)
            .min()
    }

    fn open_view(&self) -> OpenBatch<'_, T> {
        OpenBatch {
            items: &self.open,
            bytes: self.open_bytes,
        }
    }

    /// Whether the `can_add` hook (if any) lets `item` join the open batch.
    #[inline]
    pub(crate) fn hook_admits(&self, item: &T) -> bool {
        match &self.hooks.can_add {
            None => true,
            Some(can_add) => self.guarded(false, || can_add(&self.open_view(), item)),
        }
    }

    /// Runs user code; if it panics, keeps the panic for the caller to
    /// resume once the state is consistent and the lock released, and
    /// answers `on_panic` instead.
    fn guarded<R>(&self, on_panic: R, user: impl FnOnce() -> R) -> R {
        guarded(&self.caught, on_panic, user)
    }

    /// The panic of user code during the last operation, if any.
    #[inline]
    pub(crate) fn take_caught(&mut self) -> Option<Caught> {
        let caught = self.caught.get_mut();
        if caught.is_some() {
            caught.take()
        } else {
            None
        }
    }

    /// Seals a non-empty open batch that the `will_overflow` hook says
    /// `item` must not join.
    fn hook_cut_before(&mut self, item: &T) {
        let cut = !self.open.is_empty()
            && self
                .hooks
                .will_overflow
                .as_ref()
                .is_some_and(|will_overflow| {
                    self.guarded(false, || will_overflow(&self.open_view(), item))
                });
        if cut {
            self.seal(FlushReason::Hook);
        }
    }

    /// Seals the open batch if the `should_flush` hook asks for it.
    fn hook_cut_after(&mut self) {
        let cut = !self.open.is_empty()
            && self
                .hooks
                .should_flush
                .as_ref()
                .is_some_and(|should_flush| {
                    self.guarded(false, || should_flush(&self.open_view()))
                });
        if cut {
            self.seal(FlushReason::Hook);
        }
    }

    /// Puts an event in the open batch, cutting batches before and after it
    /// as the size limits say. Used by admission and by re-cutting under
    /// new limits; counts nothing.
    fn place(&mut self, item: T, weight: usize) {
        if self.would_overflow(weight) {
            self.seal(FlushReason::Bytes);
        }
        self.push_open(item);
        if self.placing_spill.is_some() && self.open_spill.is_none() {
            self.open_spill = self.placing_spill;
        }
        self.open_bytes += weight;
        if let Some(reason) = self.full_reason() {
            self.seal(reason);
        }
    }

    /// Pushes onto the open batch. A full buffer grows to the average batch
    /// and a sixteenth (`len_hint`), or past that by an eighth rather than
    /// doubling (a doubled buffer can hold twice the slots its events need
    /// for as long as the batch waits).
    fn push_open(&mut self, item: T) {
        if self.open.len() == self.open.capacity() {
            let len = self.open.len();
            let hinted = self.len_hint + self.len_hint / HEADROOM;
            let want = if len < hinted {
                hinted
            } else {
                len + (len / 8).max(8)
            };
            self.open.reserve_exact(want - len);
        }
        self.open.push(item);
    }

    /// Whether `weight` more bytes would push a non-empty open batch past
    /// `max_batch_bytes` (so it is cut first: a batch exceeds the limit only
    /// with one event).
    fn would_overflow(&self, weight: usize) -> bool {
        !self.open.is_empty()
            && self
                .limits
                .max_batch_bytes
                .is_some_and(|max| self.open_bytes.saturating_add(weight) > max)
    }

    fn jitter_share(&mut self) -> Duration {
        let jitter = self.limits.interval_jitter;
        if jitter.is_zero() {
            Duration::ZERO
        } else {
            let most = u64::try_from(jitter.as_nanos()).unwrap_or(u64::MAX);
            Duration::from_nanos(self.rng.u64(0..=most))
        }
    }

    /// Which size limit the open batch has reached, if any.
    fn full_reason(&self) -> Option<FlushReason> {
        if self
            .limits
            .max_batch_bytes
            .is_some_and(|max| self.open_bytes >= max)
        {
            Some(FlushReason::Bytes)
        } else if self
            .limits
            .max_batch_items
            .is_some_and(|max| self.open.len() >= max)
        {
            Some(FlushReason::Items)
        } else {
            None
        }
    }

    /// Moves the open batch, if it holds anything, to the outbox. A lease
    /// goes back with it (see [`give_back_lease`](Self::give_back_lease)).
    pub(crate) fn seal(&mut self, reason: FlushReason) {
        if self.open.is_empty() {
            return;
        }
        let len = self.open.len();
        self.len_hint = if self.len_hint == 0 {
            len
        } else {
            self.len_hint - self.len_hint / 8 + len / 8
        };
        let id = self.next_id;
        self.next_id += 1;
        let opened = self.open_since.take();
        let since = self.stamps.map_or(0, |epoch| {
            // A batch its first event filled was never open: it is that new.
            let at = opened.map_or_else(Instant::now, |(since, _)| since);
            crate::clock::nanos_since(epoch, at)
        });
        let mut queue = self.outbox.lock();
        // The next buffer is sized by its first event (`push_open`): a
        // partition cut while the buffer is full holds no empty one.
        let mut items = std::mem::replace(&mut self.open, queue.reuse());
        trim(&mut items);
        queue.batches.push_back(Sealed {
            id,
            items,
            bytes: std::mem::take(&mut self.open_bytes),
            reason,
            spill: self.open_spill.take(),
            since,
        });
        drop(queue);
        self.news.ready = true;
        // Only a partition with an open batch holds a lease: that batch is
        // sealed in time (by size, interval, flush or close), and the lease
        // comes back with it, whether or not a receiver ever takes it.
        self.give_back_lease();
    }

    pub(crate) fn has_ready(&self) -> bool {
        !self.outbox.lock().batches.is_empty()
    }

    /// When a receiver next has to cut a batch here, in nanoseconds since
    /// `epoch` (see [`Partition::look_at`](crate::core::Partition)): the
    /// open batch's deadline (rounded down) while one is open,
    /// [`UNSTAMPED`] otherwise. Sealed batches have their own hint
    /// ([`Outbox::since`]).
    pub(crate) fn look_at(&self, epoch: Instant) -> u64 {
        self.due()
            .map_or(UNSTAMPED, |due| crate::clock::nanos_since(epoch, due))
    }

    /// When the open batch must be emitted, if it holds anything. An
    /// interval too long to add to the clock never ends.
    pub(crate) fn due(&self) -> Option<Instant> {
        self.open_since.map(|(since, share)| {
            since
                .checked_add(self.limits.interval.saturating_add(share))
                .unwrap_or_else(|| crate::clock::far_future(since))
        })
    }

    /// Seals the open batch if its interval has elapsed by `now`, which is
    /// asked only when a batch is open.
    pub(crate) fn cut_if_due(&mut self, now: impl FnOnce() -> Instant) {
        if self.due().is_some_and(|due| now() >= due) {
            self.seal(FlushReason::Interval);
        }
    }

    /// Sink mode: hands the oldest sealed batch to a flush worker. It
    /// stays charged, in flight, until [`settle`](Self::settle) or
    /// [`requeue`](Self::requeue). (Pull receivers take from the outbox,
    /// see [`Outbox::take`].)
    pub(crate) fn take_ready(&mut self) -> Option<Sealed<T>> {
        debug_assert!(self.hold_in_flight, "pull receivers take from the outbox");
        let mut sealed = self.outbox.lock().batches.pop_front()?;
        // Only a batch DropOldest evicted from can have slots to give back
        // here; waiting, it is its partition's front batch, the only one
        // eviction takes from, so one batch's slots at most wait untrimmed.
        trim(&mut sealed.items);
        self.in_flight.push(sealed.id);
        self.in_flight_spill.extend(sealed.spill);
        self.in_flight_bytes += sealed.bytes;
        self.stats.in_flight_items += sealed.items.len();
        Some(sealed)
    }

    /// Ends a taken batch's flight (sink mode): its bytes are freed and its
    /// events counted as delivered or failed.
    pub(crate) fn settle(&mut self, receipt: Receipt, delivered: bool) {
        if !self.land(receipt) {
            return;
        }
        self.release(receipt.len, receipt.bytes);
        if delivered {
            self.count_delivered(receipt.len, receipt.bytes, receipt.reason);
        } else {
            self.stats.failed += receipt.len as u64;
            self.stats.failed_batches += 1;
        }
    }

    /// Puts a taken batch that nobody settled (its flush worker or async
    /// driver was dropped mid-write) back in the queue, still charged and in
    /// sealing order, for another worker or for shutdown to return. After
    /// [`retire`](Self::retire) nobody can take it: it is counted failed and
    /// handed back for the error hook.
    pub(crate) fn requeue(&mut self, sealed: Sealed<T>) -> Option<Sealed<T>> {
        let receipt = Receipt::of(&sealed);
        if !self.land(receipt) {
            return None;
        }
        if self.retired {
            self.release(receipt.len, receipt.bytes);
            self.stats.failed += receipt.len as u64;
            self.stats.failed_batches += 1;
            return Some(sealed);
        }
        let mut queue = self.outbox.lock();
        let at = queue
            .batches
            .partition_point(|queued| queued.id < sealed.id);
        queue.batches.insert(at, sealed);
        drop(queue);
        self.news.ready = true;
        None
    }

    /// The dispatcher is done: batches that come back from now on fail.
    pub(crate) fn retire(&mut self) {
        self.retired = true;
    }

    /// Takes a batch out of the in-flight set; false if it was not in it.
    fn land(&mut self, receipt: Receipt) -> bool {
        let Some(at) = self.in_flight.iter().position(|&id| id == receipt.id) else {
            debug_assert!(false, "batch {} settled twice", receipt.id);
            return false;
        };
        self.in_flight.swap_remove(at);
        if let Some(mark) = receipt.spill {
            if let Some(at) = self.in_flight_spill.iter().position(|&m| m == mark) {
                self.in_flight_spill.swap_remove(at);
            }
        }
        self.in_flight_bytes -= receipt.bytes;
        self.stats.in_flight_items -= receipt.len;
        self.news.settled = true;
        true
    }

    /// Events leave the partition: their bytes go back to the budget when
    /// the lock is released.
    fn release(&mut self, len: usize, bytes: usize) {
        self.stats.buffered_bytes -= bytes;
        self.stats.buffered_items -= len;
        self.news.freed += bytes;
        self.news.settled = true;
        // Events left: the lease goes back with their bytes, so only a
        // partition holding events admitted since holds one.
        self.give_back_lease();
    }

    fn count_delivered(&mut self, len: usize, bytes: usize, reason: FlushReason) {
        let stats = &mut self.stats;
        stats.delivered += len as u64;
        stats.delivered_bytes += bytes as u64;
        stats.batches += 1;
        stats.flushes.bump(reason);
    }

    /// The id of the oldest batch not yet settled (sealed batches waiting,
    /// or in flight); the next id if there is none.
    pub(crate) fn oldest_unsettled(&self) -> u64 {
        let waiting = self.outbox.lock().batches.front().map(|sealed| sealed.id);
        self.in_flight
            .iter()
            .copied()
            .chain(waiting)
            .min()
            .unwrap_or(self.next_id)
    }

    /// Seals the open batch and returns the id every batch up to which must
    /// settle for everything accepted so far to be settled.
    pub(crate) fn seal_for_wait(&mut self) -> u64 {
        self.seal(FlushReason::Manual);
        self.next_id
    }

    /// Removes every undelivered event not in flight, oldest first, in the
    /// batch buffers that hold them (moved, not copied), counting it as
    /// returned.
    pub(crate) fn take_all(&mut self) -> Undelivered<T> {
        self.fold_takes();
        let mut bytes = std::mem::take(&mut self.open_bytes);
        let mut queue = self.outbox.lock();
        let mut buffers = Vec::with_capacity(queue.batches.len() + 1);
        for sealed in queue.batches.drain(..) {
            bytes += sealed.bytes;
            buffers.push(sealed.items);
        }
        drop(queue);
        buffers.push(std::mem::take(&mut self.open));
        buffers.iter_mut().for_each(trim);
        self.open_since = None;
        self.open_spill = None;
        let all = Undelivered::from_batches(buffers);
        self.stats.returned += all.len() as u64;
        self.release(all.len(), bytes);
        all
    }
}

/// Gives back the slots a batch's buffer will not use (it grew past its
/// events, came from the pool or a receiver's spare sized for longer
/// batches, or lost events to eviction), when they are more than a
/// sixteenth of its events and 4: slots are heap the byte limit does not see.
pub(crate) fn trim<T>(items: &mut Vec<T>) {
    let len = items.len();
    if items.capacity() - len > len / HEADROOM + 4 {
        items.shrink_to_fit();
    }
}

/// Counts what pull receivers took (see [`State::fold`]) in `stats`.
fn fold_into(stats: &mut Stats, taken: Option<Takes>) {
    let Some(taken) = taken else { return };
    stats.buffered_items -= taken.items;
    stats.buffered_bytes -= taken.bytes;
    stats.delivered += taken.items as u64;
    stats.delivered_bytes += taken.bytes as u64;
    stats.batches += taken.batches;
    stats.flushes.absorb(&taken.flushes);
}

/// Runs user code, keeping its panic in `caught` and answering `on_panic`
/// instead (see [`State::take_caught`]).
fn guarded<R>(caught: &Cell<Option<Caught>>, on_panic: R, user: impl FnOnce() -> R) -> R {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(user)).unwrap_or_else(|panic| {
        caught.set(Some(panic));
        on_panic
    })
}

#[cfg(test)]
mod tests;
