//! The events a dispatcher hands back when it stops or its shutdown runs out
//! of time: kept in the batch buffers they were cut into, moved, never
//! copied, so giving back millions of events costs no allocation at a
//! deadline.

use std::fmt;
use std::iter::Flatten;

/// Accepted events that were never delivered, oldest first within each
/// partition, as [`Dispatcher::stop`](crate::Dispatcher::stop) and a timed-out
/// [`Dispatcher::shutdown`](crate::Dispatcher::shutdown) return them.
///
/// It holds the dispatcher's own batch buffers, taken as they were: handing
/// them back allocates nothing and copies no event, whatever their number.
/// Iterate it (by value or by reference), look at the buffers with
/// [`batches`](Self::batches), or gather every event into one `Vec` with
/// [`into_vec`](Self::into_vec) (which allocates and moves each event once).
///
/// # Examples
///
/// ```
/// let (dispatcher, _batches) = dispatcher::Dispatcher::<String>::builder().build()?;
/// let producer = dispatcher.producer();
/// producer.try_enqueue("a".into())?;
/// producer.try_enqueue("b".into())?;
/// let undelivered = dispatcher.stop();
/// assert_eq!(undelivered.len(), 2);
/// assert_eq!(undelivered, ["a", "b"]);
/// for event in undelivered {
///     println!("never delivered: {event}");
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Undelivered<T> {
    batches: Vec<Vec<T>>,
    len: usize,
}

impl<T> Undelivered<T> {
    /// Wraps batch buffers, leaving out empty ones.
    pub(crate) fn from_batches(mut batches: Vec<Vec<T>>) -> Self {
        batches.retain(|batch| !batch.is_empty());
        let len = batches.iter().map(Vec::len).sum();
        Undelivered { batches, len }
    }

    /// Adds `other`'s events after these.
    pub(crate) fn append(&mut self, mut other: Undelivered<T>) {
        self.len += other.len;
        self.batches.append(&mut other.batches);
    }

    /// How many events.
    ///
    /// # Examples
    ///
    /// ```
    /// let (dispatcher, _batches) = dispatcher::Dispatcher::<String>::builder().build()?;
    /// dispatcher.producer().try_enqueue("pending".into())?;
    /// assert_eq!(dispatcher.stop().len(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether every accepted event was delivered.
    ///
    /// # Examples
    ///
    /// ```
    /// let (dispatcher, _batches) = dispatcher::Dispatcher::<String>::builder().build()?;
    /// assert!(dispatcher.stop().is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The events, by reference, in order.
    ///
    /// # Examples
    ///
    /// ```
    /// let (dispatcher, _batches) = dispatcher::Dispatcher::<String>::builder().build()?;
    /// dispatcher.producer().try_enqueue_all(["a", "bb", "ccc"].map(String::from).to_vec())?;
    /// assert_eq!(dispatcher.stop().iter().map(String::len).sum::<usize>(), 6);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn iter(&self) -> Flatten<std::slice::Iter<'_, Vec<T>>> {
        self.batches.iter().flatten()
    }

    /// The batch buffers the events are in, none of them empty.
    ///
    /// # Examples
    ///
    /// ```
    /// let (dispatcher, _batches) = dispatcher::Dispatcher::<String>::builder()
    ///     .max_batch_items(2)
    ///     .build()?;
    /// dispatcher.producer().try_enqueue_all(["a", "b", "c"].map(String::from).to_vec())?;
    /// let undelivered = dispatcher.stop();
    /// let lens: Vec<usize> = undelivered.batches().iter().map(Vec::len).collect();
    /// assert_eq!(lens, [2, 1]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn batches(&self) -> &[Vec<T>] {
        &self.batches
    }

    /// The batch buffers themselves, moved out.
    ///
    /// # Examples
    ///
    /// ```
    /// let (dispatcher, _batches) = dispatcher::Dispatcher::<String>::builder().build()?;
    /// dispatcher.producer().try_enqueue_all(["a", "b"].map(String::from).to_vec())?;
    /// assert_eq!(dispatcher.stop().into_batches(), [vec!["a", "b"]]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn into_batches(self) -> Vec<Vec<T>> {
        self.batches
    }

    /// Every event in one `Vec`, in order. This allocates room for all of
    /// them and moves each once; iterating does neither.
    ///
    /// # Examples
    ///
    /// ```
    /// let (dispatcher, _batches) = dispatcher::Dispatcher::<String>::builder()
    ///     .max_batch_items(2)
    ///     .build()?;
    /// dispatcher.producer().try_enqueue_all(["a", "b", "c"].map(String::from).to_vec())?;
    /// assert_eq!(dispatcher.stop().into_vec(), ["a", "b", "c"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn into_vec(self) -> Vec<T> {
        if self.batches.len() == 1 {
            return self.batches.into_iter().next().unwrap_or_default();
        }
        let mut all = Vec::with_capacity(self.len);
        for mut batch in self.batches {
            all.append(&mut batch);
        }
        all
    }
}

impl<T> Default for Undelivered<T> {
    fn default() -> Self {
        Undelivered {
            batches: Vec::new(),
            len: 0,
        }
    }
}

impl<T> IntoIterator for Undelivered<T> {
    type Item = T;
    type IntoIter = Flatten<std::vec::IntoIter<Vec<T>>>;

    fn into_iter(self) -> Self::IntoIter {
        self.batches.into_iter().flatten()
    }
}

impl<'a, T> IntoIterator for &'a Undelivered<T> {
    type Item = &'a T;
    type IntoIter = Flatten<std::slice::Iter<'a, Vec<T>>>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<T> From<Undelivered<T>> for Vec<T> {
    fn from(undelivered: Undelivered<T>) -> Self {
        undelivered.into_vec()
    }
}

impl<T: fmt::Debug> fmt::Debug for Undelivered<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<T: PartialEq<U>, U> PartialEq<[U]> for Undelivered<T> {
    fn eq(&self, other: &[U]) -> bool {
        self.len == other.len() && self.iter().zip(other).all(|(a, b)| a == b)
    }
}

impl<T: PartialEq<U>, U, const N: usize> PartialEq<[U; N]> for Undelivered<T> {
    fn eq(&self, other: &[U; N]) -> bool {
        *self == other[..]
    }
}

impl<T: PartialEq<U>, U> PartialEq<Vec<U>> for Undelivered<T> {
    fn eq(&self, other: &Vec<U>) -> bool {
        *self == other[..]
    }
}

impl<T: PartialEq<U>, U> PartialEq<&[U]> for Undelivered<T> {
    fn eq(&self, other: &&[U]) -> bool {
        *self == other[..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Undelivered<u32> {
        Undelivered::from_batches(vec![vec![1, 2], Vec::new(), vec![3]])
    }

    #[test]
    fn empty_buffers_are_left_out_and_order_is_kept() {
        let u = sample();
        assert_eq!((u.len(), u.batches().len()), (3, 2));
        assert_eq!(u.iter().copied().collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(u, [1, 2, 3]);
        assert_ne!(u, [1, 2]);
        assert_ne!(u, [1, 2, 4]);
        assert_eq!(format!("{u:?}"), "[1, 2, 3]");
        assert_eq!(u.into_iter().collect::<Vec<_>>(), [1, 2, 3]);
    }

    #[test]
    fn appending_and_gathering_keep_every_event() {
        let mut u = sample();
        u.append(Undelivered::from_batches(vec![vec![4, 5]]));
        assert_eq!(u.len(), 5);
        assert_eq!(Vec::from(u), [1, 2, 3, 4, 5]);
        let one = Undelivered::from_batches(vec![vec![9, 8]]);
        let ptr = one.batches()[0].as_ptr();
        let gathered = one.into_vec();
        assert_eq!(
            gathered.as_ptr(),
            ptr,
            "a single buffer is handed over, not copied"
        );
        assert!(Undelivered::<u8>::default().is_empty());
    }
}
