//! A bounded FIFO: the dashboard's memory stays flat however long the run.

use std::collections::VecDeque;

/// Keeps the newest `capacity` items, dropping the oldest.
#[derive(Debug, Clone)]
pub(crate) struct Ring<T> {
    items: VecDeque<T>,
    capacity: usize,
}

impl<T> Ring<T> {
    /// An empty ring holding at most `capacity` (at least 1) items.
    pub(crate) fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            items: VecDeque::with_capacity(capacity),
            capacity,
        }
    }

    /// Appends `item`, dropping the oldest when full.
    pub(crate) fn push(&mut self, item: T) {
        if self.items.len() == self.capacity {
            self.items.pop_front();
        }
        self.items.push_back(item);
    }

    /// Oldest first.
    pub(crate) fn iter(&self) -> impl DoubleEndedIterator<Item = &T> + ExactSizeIterator {
        self.items.iter()
    }

    /// The newest item.
    pub(crate) fn last(&self) -> Option<&T> {
        self.items.back()
    }

    /// The newest item, to change it.
    pub(crate) fn last_mut(&mut self) -> Option<&mut T> {
        self.items.back_mut()
    }

    /// Number of items held.
    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_items() {
        let mut ring = Ring::new(3);
        for i in 0..10 {
            ring.push(i);
        }
        assert_eq!(ring.iter().copied().collect::<Vec<_>>(), [7, 8, 9]);
        assert_eq!((ring.last(), ring.len()), (Some(&9), 3));
    }
}
