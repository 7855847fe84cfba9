//! A fixed-capacity ring buffer of `f64`, allocated once at construction.
//!
//! The rolling indicators keep their window here: [`Ring::push`] overwrites the oldest
//! value once the buffer is full and hands it back, so a running sum or moment can be
//! updated in O(1) without allocating.

/// Fixed-capacity ring buffer; the window of a rolling indicator.
#[derive(Debug, Clone)]
pub(crate) struct Ring {
    buf: Box<[f64]>,
    /// Slot the next push writes to.
    head: usize,
    len: usize,
}

impl Ring {
    /// An empty ring holding up to `capacity` values; `capacity` must be at least 1
    /// (the indicators check their period before building one).
    pub(crate) fn new(capacity: usize) -> Self {
        debug_assert!(capacity >= 1, "ring capacity must be at least 1");
        Ring {
            buf: vec![0.0; capacity].into_boxed_slice(),
            head: 0,
            len: 0,
        }
    }

    /// Appends `x`; returns the value it evicted when the ring was already full.
    #[inline]
    pub(crate) fn push(&mut self, x: f64) -> Option<f64> {
        let capacity = self.buf.len();
        let slot = &mut self.buf[self.head];
        let evicted = if self.len == capacity {
            Some(*slot)
        } else {
            self.len += 1;
            None
        };
        *slot = x;
        self.head += 1;
        if self.head == capacity {
            self.head = 0;
        }
        evicted
    }

    /// True when the ring holds `capacity` values.
    #[inline]
    pub(crate) fn is_full(&self) -> bool {
        self.len == self.buf.len()
    }

    /// True right after a push that filled the last slot of the buffer: the window
    /// has been entirely rewritten since the previous such moment. Indicators use it
    /// to recompute their running sums from scratch once per window.
    #[inline]
    pub(crate) fn just_wrapped(&self) -> bool {
        self.head == 0 && self.is_full()
    }

    /// Number of values held.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The values held, in storage order (not time order once the ring has wrapped);
    /// enough for order-free recomputations such as sums.
    #[inline]
    pub(crate) fn values(&self) -> &[f64] {
        &self.buf[..self.len]
    }

    /// Forgets every value, keeping the allocation.
    pub(crate) fn clear(&mut self) {
        self.head = 0;
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_oldest_once_full() {
        let mut ring = Ring::new(3);
        assert_eq!(ring.push(1.0), None);
        assert_eq!(ring.push(2.0), None);
        assert!(!ring.is_full());
        assert_eq!(ring.push(3.0), None);
        assert!(ring.is_full());
        assert!(ring.just_wrapped());
        assert_eq!(ring.push(4.0), Some(1.0));
        assert!(!ring.just_wrapped());
        assert_eq!(ring.push(5.0), Some(2.0));
        assert_eq!(ring.push(6.0), Some(3.0));
        assert!(ring.just_wrapped());
        let mut held = ring.values().to_vec();
        held.sort_by(f64::total_cmp);
        assert_eq!(held, vec![4.0, 5.0, 6.0]);
        ring.clear();
        assert_eq!(ring.len(), 0);
        assert_eq!(ring.push(7.0), None);
        assert_eq!(ring.values(), &[7.0]);
    }

    #[test]
    fn capacity_one_returns_previous_value() {
        let mut ring = Ring::new(1);
        assert_eq!(ring.push(1.0), None);
        assert_eq!(ring.push(2.0), Some(1.0));
        assert_eq!(ring.push(3.0), Some(2.0));
    }
}
