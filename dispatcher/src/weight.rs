//! The byte weight that admission is bounded by: [`Weight`], what counts
//! ([`Weighing`]), and the allocator's size classes ([`allocation`]).

/// The number of bytes an event counts for against the dispatcher's limits.
///
/// Admission charges every accepted event its weight until the event is
/// delivered, so the weight should reflect the memory the event holds (its
/// payload, plus any overhead the caller wants to count). An event whose
/// weight is `0` is charged one byte, so even empty events stay bounded.
///
/// # Examples
///
/// ```
/// use dispatcher::Weight;
///
/// struct Reading {
///     sensor: u32,
///     json: String,
/// }
///
/// impl Weight for Reading {
///     fn weight(&self) -> usize {
///         std::mem::size_of::<u32>() + self.json.len()
///     }
/// }
///
/// let r = Reading { sensor: 7, json: "{\"t\":21.5}".into() };
/// assert_eq!(r.weight(), 4 + 10);
/// assert_eq!(b"abc".to_vec().weight(), 3);
/// ```
pub trait Weight {
    /// The event's weight in bytes: its payload, as the caller counts it.
    fn weight(&self) -> usize;

    /// The memory the event occupies while it waits: its own struct (the slot
    /// it takes in a batch) and what the allocator really set aside for its
    /// heap data. Charged instead of [`Weight::weight`] under
    /// [`Weighing::Occupancy`].
    ///
    /// The default assumes the weight is one heap allocation of that many
    /// bytes: `size_of::<Self>() + allocation(self.weight())`. Override it for
    /// anything else (several allocations, inline data, shared buffers).
    fn occupancy(&self) -> usize
    where
        Self: Sized,
    {
        std::mem::size_of::<Self>() + allocation(self.weight())
    }
}

/// What the byte limits count for each event. See [`Builder::weighing`](crate::Builder::weighing).
///
/// - `Payload` (the default) charges [`Weight::weight`]: the payload bytes, what a
///   user of other batchers expects a byte limit to mean. The heap the buffered
///   events hold is then larger than `max_buffered_bytes` by their structs and
///   the allocator's rounding (a third more for small mixed payloads).
/// - `Occupancy` charges [`Weight::occupancy`]: struct plus allocated size, so
///   `max_buffered_bytes` is the memory the buffer's events hold. Choose it
///   when the limit is a memory budget (a small device, a container limit).
///   Each waiting batch holds about 100 bytes more that no event is charged
///   (its record in its partition's queue, its buffer's own allocation, a few
///   spare slots): nothing next to batches of tens of events, but with
///   batches of one or a few small events (a small `max_batch_items`) the
///   heap can pass the limit by that much per batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Weighing {
    /// Charge [`Weight::weight`], the payload bytes.
    #[default]
    Payload,
    /// Charge [`Weight::occupancy`], the struct and the allocation.
    Occupancy,
}

/// The bytes an allocator sets aside for a request of `requested` bytes: 0 for
/// 0, else the request rounded up to jemalloc's size class: 8 and 16, then
/// steps of 16 up to 128, then four classes per doubling (160, 192, 224, 256,
/// 320, …) up to 16 KiB; above that, whole 4 KiB pages.
///
/// It is exact where jemalloc is the global allocator (as in the soak runner,
/// checked against jemalloc's own answer in its tests) and an estimate
/// elsewhere: glibc's malloc adds 8 bytes and rounds to 16 instead, which this
/// over-counts by at most a quarter.
///
/// ```
/// use dispatcher::weight::allocation;
/// assert_eq!(allocation(0), 0);
/// assert_eq!(allocation(100), 112);
/// assert_eq!(allocation(1000), 1024);
/// assert_eq!(allocation(1025), 1280);
/// assert_eq!(allocation(10 * 1024), 10 * 1024);
/// assert_eq!(allocation(33 * 1024), 36 * 1024);
/// ```
#[must_use]
pub fn allocation(requested: usize) -> usize {
    /// The smallest request jemalloc serves with whole pages.
    const LARGE: usize = 16 * 1024 + 1;
    const PAGE: usize = 4096;
    match requested {
        0 => 0,
        1..=8 => 8,
        9..=128 => requested.next_multiple_of(16),
        LARGE.. => requested
            .checked_next_multiple_of(PAGE)
            .unwrap_or(usize::MAX),
        _ => {
            // Four classes between each power of two and the next.
            let group = usize::BITS - 1 - (requested - 1).leading_zeros();
            let step = 1usize << (group - 2);
            requested
                .checked_next_multiple_of(step)
                .unwrap_or(usize::MAX)
        }
    }
}

impl Weight for Vec<u8> {
    fn weight(&self) -> usize {
        self.len()
    }

    fn occupancy(&self) -> usize {
        std::mem::size_of::<Self>() + allocation(self.capacity())
    }
}

impl Weight for Box<[u8]> {
    fn weight(&self) -> usize {
        self.len()
    }
}

impl Weight for String {
    fn weight(&self) -> usize {
        self.len()
    }

    fn occupancy(&self) -> usize {
        std::mem::size_of::<Self>() + allocation(self.capacity())
    }
}

#[cfg(feature = "bytes")]
impl Weight for bytes::Bytes {
    fn weight(&self) -> usize {
        self.len()
    }

    /// The handle and the bytes it views (the buffer may be shared with
    /// other handles, so its allocation is not this event's alone).
    fn occupancy(&self) -> usize {
        std::mem::size_of::<Self>() + self.len()
    }
}

/// What admission charges for an event under `weighing`: at least one byte.
pub(crate) fn charge<T: Weight>(weighing: Weighing, item: &T) -> usize {
    match weighing {
        Weighing::Payload => item.weight(),
        Weighing::Occupancy => item.occupancy(),
    }
    .max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_containers_weigh_their_length() {
        assert_eq!(vec![0u8; 10].weight(), 10);
        assert_eq!(vec![0u8; 3].into_boxed_slice().weight(), 3);
        assert_eq!(String::from("héllo").weight(), 6);
    }

    #[test]
    fn empty_events_are_charged_one_byte() {
        assert_eq!(charge(Weighing::Payload, &Vec::<u8>::new()), 1);
        assert_eq!(charge(Weighing::Payload, &vec![1u8; 5]), 5);
    }

    #[test]
    fn occupancy_counts_the_struct_and_the_size_class() {
        let v = Vec::<u8>::with_capacity(1000);
        assert_eq!(charge(Weighing::Occupancy, &v), 24 + 1024);
        assert_eq!(charge(Weighing::Payload, &v), 1, "empty payload: one byte");
        let s = String::from("abc");
        assert_eq!(s.occupancy(), 24 + 8);
        assert_eq!(vec![0u8; 3].into_boxed_slice().occupancy(), 16 + 8);
        assert_eq!(Vec::<u8>::new().occupancy(), 24, "no allocation");
    }

    #[test]
    fn size_classes_step_four_per_doubling_then_by_pages() {
        let classes: Vec<usize> = [1, 9, 17, 129, 161, 257, 513, 4097, 14337, 16385, 32769]
            .iter()
            .map(|&n| allocation(n))
            .collect();
        assert_eq!(
            classes,
            [8, 16, 32, 160, 192, 320, 640, 5120, 16384, 20480, 36864]
        );
        // Every class holds its request and wastes under 16 bytes or a quarter of it.
        for n in 1..100_000usize {
            let a = allocation(n);
            assert!(a >= n && (a - n < 16 || (a - n) * 4 <= n), "{n} -> {a}");
        }
        assert_eq!(allocation(usize::MAX), usize::MAX, "saturates");
    }

    #[cfg(feature = "bytes")]
    #[test]
    fn bytes_weigh_their_length() {
        assert_eq!(bytes::Bytes::from_static(b"abcd").weight(), 4);
    }
}
