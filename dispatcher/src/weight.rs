//! The byte weight that admission is bounded by.

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
    /// The event's weight in bytes.
    fn weight(&self) -> usize;
}

impl Weight for Vec<u8> {
    fn weight(&self) -> usize {
        self.len()
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
}

#[cfg(feature = "bytes")]
impl Weight for bytes::Bytes {
    fn weight(&self) -> usize {
        self.len()
    }
}

/// What admission charges for an event: its weight, at least one byte.
pub(crate) fn charge<T: Weight>(item: &T) -> usize {
    item.weight().max(1)
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
        assert_eq!(charge(&Vec::<u8>::new()), 1);
        assert_eq!(charge(&vec![1u8; 5]), 5);
    }

    #[cfg(feature = "bytes")]
    #[test]
    fn bytes_weigh_their_length() {
        assert_eq!(bytes::Bytes::from_static(b"abcd").weight(), 4);
    }
}
