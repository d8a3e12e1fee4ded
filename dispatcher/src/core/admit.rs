//! Admission: an event (or a group) is weighed outside any lock, refused
//! early from lock-free readings when it cannot fit, then admitted under
//! its partition's lock after its bytes are reserved in the budget.
//!
//! DropOldest makes room without ever breaking the bound or evicting for
//! nothing: it works out what it owes (what the new bytes exceed the limit
//! by, at most their own weight), reserves the rest, and only once that
//! reservation succeeded evicts at least what it owes. The evicted events'
//! bytes are never handed back to the budget in between, where another
//! partition could take them: they pay for the new event directly. It
//! evicts from its own partition when that holds enough; otherwise it
//! locks every partition, in index order, and evicts its own oldest events
//! first, then the others'. If even that cannot make room (everything else
//! is in a sink call), it refuses and has evicted nothing.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Instant;

use super::{Core, Guard};
use crate::budget::{Seen, Short, Shortfall};
use crate::clock::Deadline;
use crate::config::Policy;
use crate::error::{EnqueueError, TryEnqueueError};
use crate::signal::Check;
use crate::state::{Caught, State};
use crate::sync::Ordering::Relaxed;
use crate::weight::{Weight, charge};

/// Why an admission was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    Full,
    TooLarge,
    Closed,
    /// By the `can_add` hook.
    Refused,
}

/// What is being admitted: one event, or a group that goes in whole.
pub(crate) trait Payload<T>: Sized {
    /// How many events.
    fn count(&self) -> u64;
    /// Whether the `can_add` hook lets every event in.
    fn admitted_by(&self, st: &State<T>) -> bool;
    /// Appends the events, whose bytes are reserved.
    fn append_to(self, st: &mut State<T>);
    /// Shows every event to the `on_reject` hook.
    fn show(&self, observer: &mut dyn FnMut(&T));
    /// The events, for the disk tier; and whether they go in whole.
    #[cfg(feature = "spill")]
    fn events(&self) -> (&[T], bool);
}

/// One event and its weight.
pub(crate) struct One<T>(pub(crate) T, pub(crate) usize);

/// A group and each event's weight.
pub(crate) struct Group<T>(pub(crate) Vec<T>, pub(crate) Vec<usize>);

impl<T> Payload<T> for One<T> {
    fn count(&self) -> u64 {
        1
    }
    #[inline]
    fn admitted_by(&self, st: &State<T>) -> bool {
        st.hook_admits(&self.0)
    }
    #[inline(always)]
    fn append_to(self, st: &mut State<T>) {
        st.append(self.0, self.1);
    }
    fn show(&self, observer: &mut dyn FnMut(&T)) {
        observer(&self.0);
    }
    #[cfg(feature = "spill")]
    fn events(&self) -> (&[T], bool) {
        (std::slice::from_ref(&self.0), false)
    }
}

impl<T> Payload<T> for Group<T> {
    fn count(&self) -> u64 {
        self.0.len() as u64
    }
    fn admitted_by(&self, st: &State<T>) -> bool {
        self.0.iter().all(|item| st.hook_admits(item))
    }
    fn append_to(self, st: &mut State<T>) {
        for (item, weight) in self.0.into_iter().zip(self.1) {
            st.append(item, weight);
        }
    }
    fn show(&self, observer: &mut dyn FnMut(&T)) {
        self.0.iter().for_each(observer);
    }
    #[cfg(feature = "spill")]
    fn events(&self) -> (&[T], bool) {
        (&self.0, true)
    }
}

type Admitted<P> = Result<(), (Refusal, P)>;

impl<T: Weight> Core<T> {
    /// Admits without waiting; under DropOldest evicts to make room.
    pub(crate) fn try_enqueue(&self, at: usize, item: T) -> Result<(), TryEnqueueError<T>> {
        let weight = charge(self.weighing, &item);
        self.admit_any(at, One(item, weight), weight)
            .map_err(|(refusal, payload)| {
                let (error, One(item, _)) = self.refuse(at, refusal, payload);
                error(item)
            })
    }

    /// Admits all of `items` or none.
    pub(crate) fn try_enqueue_all(
        &self,
        at: usize,
        items: Vec<T>,
    ) -> Result<(), TryEnqueueError<Vec<T>>> {
        // Weighed once, outside the lock; a sum that overflows never fits.
        let weighing = self.weighing;
        let weights: Vec<usize> = items.iter().map(|item| charge(weighing, item)).collect();
        let total = weights
            .iter()
            .try_fold(0usize, |sum, &w| sum.checked_add(w));
        let group = Group(items, weights);
        let admitted = match total {
            Some(total) => self.admit_any(at, group, total),
            None => Err((Refusal::TooLarge, group)),
        };
        admitted.map_err(|(refusal, group)| {
            let (error, Group(items, _)) = self.refuse(at, refusal, group);
            error(items)
        })
    }

    /// Admits, waiting for room until `deadline`; under DropOldest evicts
    /// instead, and waits only when nothing can be evicted (everything else
    /// is inside a sink call).
    pub(crate) fn enqueue_until(
        &self,
        at: usize,
        item: T,
        deadline: Deadline,
    ) -> Result<(), EnqueueError<T>> {
        let weight = charge(self.weighing, &item);
        // The first look outside the wait: most admissions are done by it,
        // and skip the waiter's set-up (its loop, listener and back-off).
        match self.admit_any(at, One(item, weight), weight) {
            Ok(()) => Ok(()),
            Err((Refusal::Full, One(item, _))) => self.wait_to_admit(at, item, weight, deadline),
            Err((refusal, payload)) => Err(self.refuse_for_good(at, refusal, payload)),
        }
    }

    /// [`enqueue_until`](Self::enqueue_until) once the first look found no
    /// room: waits for it. Out of line, so the first look does not pay for
    /// the wait's set-up in its own prologue.
    #[cold]
    #[inline(never)]
    fn wait_to_admit(
        &self,
        at: usize,
        item: T,
        weight: usize,
        mut deadline: Deadline,
    ) -> Result<(), EnqueueError<T>> {
        let mut slot = Some(item);
        self.budget.room.wait_for(weight, || {
            self.admit_or_wait(at, &mut slot, weight, &mut deadline)
        })
    }

    /// One look of a waiting admission (blocking or async): admitted,
    /// refused for good, timed out, or wait for room until `deadline`
    /// (the item is then back in `slot`).
    pub(crate) fn admit_or_wait(
        &self,
        at: usize,
        slot: &mut Option<T>,
        weight: usize,
        deadline: &mut Deadline,
    ) -> Check<Result<(), EnqueueError<T>>> {
        let item = slot.take().expect("the item is back after every look");
        match self.admit_any(at, One(item, weight), weight) {
            Ok(()) => Check::Ready(Ok(())),
            Err((Refusal::Full, One(item, _))) => {
                let until = deadline.instant();
                if Instant::now() < until {
                    *slot = Some(item);
                    return Check::Wait(Some(until));
                }
                self.parts[at].refusals.timeout.fetch_add(1, Relaxed);
                Check::Ready(Err(EnqueueError::Timeout(item)))
            }
            Err((refusal, payload)) => {
                Check::Ready(Err(self.refuse_for_good(at, refusal, payload)))
            }
        }
    }

    /// A waiting admission's refusal other than "full" (which waits):
    /// counted, shown to `on_reject`, the event handed back in the error.
    #[cold]
    fn refuse_for_good(&self, at: usize, refusal: Refusal, payload: One<T>) -> EnqueueError<T> {
        let (error, One(item, _)) = self.refuse(at, refusal, payload);
        error(item).into()
    }

    /// Counts a refusal and shows a hook's refusal to `on_reject`; returns
    /// the error to wrap the payload's events in.
    fn refuse<P: Payload<T>, I>(
        &self,
        at: usize,
        refusal: Refusal,
        payload: P,
    ) -> (fn(I) -> TryEnqueueError<I>, P) {
        let refusals = &self.parts[at].refusals;
        let (counter, error): (_, fn(I) -> TryEnqueueError<I>) = match refusal {
            Refusal::Full => (&refusals.full, TryEnqueueError::Full),
            Refusal::TooLarge => (&refusals.too_large, TryEnqueueError::TooLarge),
            Refusal::Closed => (&refusals.closed, TryEnqueueError::Closed),
            Refusal::Refused => (&refusals.refused, TryEnqueueError::Refused),
        };
        counter.fetch_add(payload.count(), Relaxed);
        if refusal == Refusal::Refused {
            if let Some(on_reject) = &self.on_reject {
                // Every event is shown, then a panic of the hook resumed.
                let mut caught = None;
                payload.show(&mut |item| {
                    let shown = catch_unwind(AssertUnwindSafe(|| on_reject(item)));
                    caught = caught.take().or(shown.err());
                });
                resume(caught);
            }
        }
        (error, payload)
    }

    /// Admits `payload` (weighing `weight` in all) through partition `at`:
    /// into memory, or onto the disk tier if there is one. Always inlined:
    /// with the disk tier compiled in (and unused), the memory-only path
    /// must not pay a call either.
    #[inline(always)]
    fn admit_any<P: Payload<T>>(&self, at: usize, payload: P, weight: usize) -> Admitted<P> {
        #[cfg(feature = "spill")]
        if let Some(tier) = &self.spill {
            return self.admit_spilling(tier, at, payload, weight);
        }
        self.admit(at, payload, weight, self.policy == Policy::DropOldest)
    }

    /// Admission with a disk tier: memory while nothing is on disk, the
    /// disk when memory is full or something is on disk already (behind
    /// it), and the memory policy when the disk is full or failing. Under
    /// DropOldest that evicts from memory and admits there: the new event
    /// then goes ahead of older ones still on disk. Write-ahead admits
    /// only what the disk took: with the disk full, every policy refuses
    /// (Block waits).
    #[cfg(feature = "spill")]
    #[inline(never)]
    fn admit_spilling<P: Payload<T>>(
        &self,
        tier: &super::spill::SpillTier<T>,
        at: usize,
        payload: P,
        weight: usize,
    ) -> Admitted<P> {
        use super::spill::Appended;
        let behind = tier.diverts();
        let payload = if behind {
            payload
        } else {
            match self.admit(at, payload, weight, false) {
                Err((Refusal::Full, payload)) => payload,
                done => return done,
            }
        };
        if weight > self.budget.max() {
            // It could never come back into memory.
            return Err((Refusal::TooLarge, payload));
        }
        let (events, group) = payload.events();
        match tier.append(at, events.iter(), group) {
            Appended::Yes => Ok(()),
            Appended::Closed => Err((Refusal::Closed, payload)),
            // Write-ahead admits nothing the disk did not take.
            Appended::No if self.policy == Policy::DropOldest && !tier.write_ahead() => {
                self.admit(at, payload, weight, true)
            }
            // Memory may hold older events' room: keep them first.
            Appended::No if behind => Err((Refusal::Full, payload)),
            Appended::No => self.admit(at, payload, weight, false),
        }
    }

    /// Admits `payload` (weighing `weight` in all) into partition `at`, or
    /// hands it back with the reason; `evicts` under DropOldest. Counts
    /// nothing but what it admits. Always inlined: the disk tier's path
    /// calls it too, and the memory-only hot path must not pay a call.
    #[inline(always)]
    fn admit<P: Payload<T>>(
        &self,
        at: usize,
        payload: P,
        weight: usize,
        evicts: bool,
    ) -> Admitted<P> {
        let leasing = self.leasing();
        // With leases, "full" is decided under the lock: the partition's own
        // lease may hold the bytes.
        let seen = match self.precheck(weight, evicts || leasing) {
            Ok(seen) => seen,
            Err(refusal) => return Err((refusal, payload)),
        };
        let mut st = self.lock(at);
        if !payload.admitted_by(&st) {
            resume(st.unlock());
            return Err((Refusal::Refused, payload));
        }
        if leasing || st.credit > 0 {
            // Leases are off under DropOldest, so nothing here evicts.
            if st.credit >= weight {
                // The guard is borrowed while the event is charged and
                // appended, and moved only into `unlock` once done: moved
                // into the function that charged the lease (even inlined),
                // it was copied, and the copy read it back before its stores
                // had landed, a stall at every event.
                let admitted = self.charge_lease(&mut st, payload, weight);
                resume(st.unlock());
                return admitted;
            }
            return self.admit_leasing(st, payload, weight, seen);
        }
        match self.budget.try_reserve_from(seen.word, seen.max, weight) {
            Ok(after) => {
                self.budget.note_peak(after);
                payload.append_to(&mut st);
                resume(st.unlock());
                Ok(())
            }
            Err(short) => {
                let refusal = self.refusal(short, weight);
                if evicts && refusal == Refusal::Full {
                    self.evict_for(st, at, payload, weight)
                } else {
                    Err((refusal, payload))
                }
            }
        }
    }

    /// [`admit`](Self::admit) for a partition whose lease covers `weight`,
    /// its lock held (the caller lets go): charge the lease, unless
    /// admission closed.
    #[inline(always)]
    fn charge_lease<P: Payload<T>>(
        &self,
        st: &mut Guard<'_, T>,
        payload: P,
        weight: usize,
    ) -> Admitted<P> {
        // Closure is read under the lock: `close` sets it before it takes
        // each partition's lock to drain it.
        if self.budget.is_closed() {
            return Err((Refusal::Closed, payload));
        }
        st.credit -= weight;
        // What the partitions hold is at most what is charged less this
        // lease (less the other partitions' leases, not known here).
        self.budget
            .note_peak(self.budget.used().saturating_sub(st.credit));
        payload.append_to(st);
        Ok(())
    }

    /// [`admit`](Self::admit) when the partition's lease does not cover
    /// `weight`: once a lease's worth of bytes, out of line.
    #[inline(never)]
    fn admit_leasing<P: Payload<T>>(
        &self,
        mut st: Guard<'_, T>,
        payload: P,
        weight: usize,
        seen: Seen,
    ) -> Admitted<P> {
        let need = weight - st.credit;
        let lease = self.lease();
        let reserved = match self
            .budget
            .try_reserve_from(seen.word, seen.max, need + lease)
        {
            Ok(after) => Ok((after, lease)),
            Err(Short::Full) if lease > 0 => self.budget.try_reserve(need).map(|after| (after, 0)),
            Err(short) => Err(short),
        };
        match reserved {
            Ok((after, leased)) => {
                self.budget.note_peak(after - leased);
                st.credit = leased;
                payload.append_to(&mut st);
                resume(st.unlock());
                Ok(())
            }
            Err(short) => {
                // Others may fit in what this partition leased.
                st.give_back_lease();
                resume(st.unlock());
                Err((self.refusal(short, weight), payload))
            }
        }
    }

    /// The lock-free refusal, or what the budget looked like. "Full" is
    /// not decided here when `later` (DropOldest evicts; a lease may hold
    /// the bytes) or when a `can_add` hook may refuse first.
    #[inline]
    fn precheck(&self, weight: usize, later: bool) -> Result<Seen, Refusal> {
        let full_counts = !later && !self.filters;
        self.budget
            .look(weight, full_counts)
            .map_err(|shortfall| match shortfall {
                Shortfall::Full => Refusal::Full,
                Shortfall::TooLarge => Refusal::TooLarge,
                Shortfall::Closed => Refusal::Closed,
            })
    }

    fn refusal(&self, short: Short, weight: usize) -> Refusal {
        match short {
            Short::Closed => Refusal::Closed,
            Short::Full if weight > self.budget.max() => Refusal::TooLarge,
            Short::Full => Refusal::Full,
        }
    }

    /// What admitting `weight` bytes now must evict: what they exceed the
    /// limit by, but never more than their own weight (over a lowered limit
    /// the budget then does not grow, and a limit change alone evicts
    /// nothing).
    fn owed(&self, weight: usize) -> usize {
        (self.budget.used().saturating_add(weight))
            .saturating_sub(self.budget.max())
            .min(weight)
    }

    /// DropOldest, partition `at` locked: evict from it if it holds enough,
    /// otherwise from every partition.
    fn evict_for<P: Payload<T>>(
        &self,
        mut st: Guard<'_, T>,
        at: usize,
        payload: P,
        weight: usize,
    ) -> Admitted<P> {
        match self.reserve_owed(weight, st.evictable_bytes()) {
            Ok((owed, after)) => {
                let mut evicted = Vec::new();
                let freed = self.evict(&mut st, owed, &mut evicted);
                self.paid_by_eviction(&mut st, owed, freed, after);
                payload.append_to(&mut st);
                let caught = st.unlock();
                self.done(caught, evicted)
            }
            Err(Refusal::Full) if self.parts.len() > 1 => {
                drop(st);
                self.evict_anywhere(at, payload, weight)
            }
            Err(refusal) => {
                resume(st.unlock());
                Err((refusal, payload))
            }
        }
    }

    /// DropOldest across partitions: with every partition locked (in index
    /// order, the only place that holds more than one lock), evict `at`'s
    /// oldest events first, then the other partitions'.
    fn evict_anywhere<P: Payload<T>>(&self, at: usize, payload: P, weight: usize) -> Admitted<P> {
        let mut guards: Vec<_> = (0..self.parts.len()).map(|p| self.lock(p)).collect();
        if !payload.admitted_by(&guards[at]) {
            return fail(guards, Refusal::Refused, payload);
        }
        let evictable = guards.iter().map(|st| st.evictable_bytes()).sum();
        let (owed, after) = match self.reserve_owed(weight, evictable) {
            Ok(reserved) => reserved,
            Err(refusal) => return fail(guards, refusal, payload),
        };
        let mut evicted = Vec::new();
        let mut freed = 0;
        let n = guards.len();
        for p in (0..n).map(|i| (at + i) % n) {
            let take = owed.saturating_sub(freed).min(guards[p].evictable_bytes());
            if take > 0 {
                freed += self.evict(&mut guards[p], take, &mut evicted);
            }
        }
        self.paid_by_eviction(&mut guards[at], owed, freed, after);
        payload.append_to(&mut guards[at]);
        let caught = take_caught(&mut guards);
        drop(guards);
        self.done(caught, evicted)
    }

    /// Reserves the part of `weight` that eviction will not pay for, and
    /// returns the part it must (at most `evictable` bytes) with the bytes
    /// charged after the reservation, or the refusal. Nothing is evicted
    /// yet, so a refusal has evicted nothing.
    fn reserve_owed(&self, weight: usize, evictable: usize) -> Result<(usize, usize), Refusal> {
        loop {
            let owed = self.owed(weight);
            if weight > self.budget.max() {
                return Err(Refusal::TooLarge);
            }
            if owed > evictable {
                return Err(Refusal::Full);
            }
            match self.budget.try_reserve(weight - owed) {
                Ok(after) => return Ok((owed, after)),
                Err(Short::Closed) => return Err(Refusal::Closed),
                // Others took room meanwhile: this admission owes more.
                Err(Short::Full) => {}
            }
        }
    }

    /// Eviction freed `freed` bytes where `owed` were due: the excess goes
    /// back to the budget when the lock is released, and the peak is what
    /// is held once it has.
    fn paid_by_eviction(&self, st: &mut State<T>, owed: usize, freed: usize, after: usize) {
        st.free(freed - owed);
        self.budget.note_peak(after - (freed - owed));
    }

    /// Evicts at least `owed` bytes from a locked partition. With an
    /// eviction hook the events are kept for it (it runs after the locks
    /// are released); without one they are dropped here.
    fn evict(&self, st: &mut State<T>, owed: usize, evicted: &mut Vec<T>) -> usize {
        if self.on_evict.is_some() {
            st.evict(owed, &mut |old| evicted.push(old))
        } else {
            st.evict(owed, &mut drop)
        }
    }

    /// With the locks released: hands evicted events to the hook, and
    /// resumes a panic of user code caught meanwhile.
    fn done<P>(&self, caught: Option<Caught>, evicted: Vec<T>) -> Admitted<P> {
        let mut caught = caught;
        if let Some(hook) = &self.on_evict {
            for item in evicted {
                let handed = catch_unwind(AssertUnwindSafe(|| hook(item)));
                caught = caught.or(handed.err());
            }
        }
        resume(caught);
        Ok(())
    }
}

/// Releases the locks and refuses, resuming a caught panic first.
fn fail<T, P>(mut guards: Vec<Guard<'_, T>>, refusal: Refusal, payload: P) -> Admitted<P> {
    let caught = take_caught(&mut guards);
    drop(guards);
    resume(caught);
    Err((refusal, payload))
}

fn take_caught<T>(guards: &mut [Guard<'_, T>]) -> Option<Caught> {
    guards
        .iter_mut()
        .fold(None, |first, st| first.or(st.take_caught()))
}

/// Resumes a panic of user code on the caller's thread, once the operation
/// it interrupted is complete and the lock released.
#[inline(always)]
pub(crate) fn resume(caught: Option<Caught>) {
    if let Some(panic) = caught {
        std::panic::resume_unwind(panic);
    }
}
