//! An equity curve that one thread writes while another reads what is already written:
//! how a long backtest overlaps its metrics with its simulation (see
//! `Backtester::run`).
//!
//! The curve's length is known before the run (one point per bar plus the start), so
//! its buffer is allocated once and never moves: the writer appends in place and, every
//! [`PUBLISH_EVERY`] points and when it is done, publishes how many points are written
//! (a release store); the reader sees exactly those (an acquire load) and never more.
//! Written points are never written again, so the published prefix can be read as a
//! plain slice while the writer fills the rest. At the end the buffer becomes the
//! result's `Vec<f64>` without a copy.
//!
//! Hand-written: the concurrent append-only vectors on crates.io (`boxcar`,
//! `append-only-vec`) grow in chunks, so the points are not one slice for the
//! vectorized pass over the curve and not a `Vec` at the end without a copy; a channel
//! would copy every point. This is a release store and an acquire load around a
//! preallocated buffer.

use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// Points between two publications: 32 KB, so that the reader works on a block in
/// the cache the writer just filled, and a publication (a store to a line the reader
/// polls) costs nothing next to the points it announces.
const PUBLISH_EVERY: usize = 4096;

/// A curve of at most `capacity` points, written by one [`CurveWriter`] and read by
/// anyone holding a `&CurveFeed`.
pub(crate) struct CurveFeed {
    /// The buffer of a `Vec<f64>` of this capacity, taken apart.
    points: *mut f64,
    capacity: usize,
    /// Points written and visible to readers.
    published: AtomicUsize,
    /// The writer is gone: `published` is final.
    closed: AtomicBool,
    /// One writer at a time.
    writing: AtomicBool,
}

// SAFETY: the buffer is owned like a `Vec<f64>`'s. Readers only read the published
// prefix, which the single writer (`writing` guards that there is one) never writes
// again; the writer only writes past it. The release store of `published` after the
// writes and the acquire load before the reads order them.
unsafe impl Send for CurveFeed {}
unsafe impl Sync for CurveFeed {}

impl CurveFeed {
    /// An empty feed for up to `capacity` points.
    pub(crate) fn with_capacity(capacity: usize) -> CurveFeed {
        let mut buffer = std::mem::ManuallyDrop::new(Vec::<f64>::with_capacity(capacity));
        CurveFeed {
            points: buffer.as_mut_ptr(),
            capacity: buffer.capacity(),
            published: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            writing: AtomicBool::new(false),
        }
    }

    /// The most points the feed holds.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Has the kernel map every page of the buffer now (`MADV_POPULATE_WRITE`), so
    /// that the writer does not stop at each fresh page while the kernel zeroes it.
    /// The reader's thread calls it as the run starts: a 1M-point curve is 8 MB, four
    /// transparent huge pages or 2,000 small ones, about a millisecond of faults that
    /// the writer's thread would otherwise take. Only a hint, changing no byte of the
    /// buffer: on a kernel without it (before Linux 5.14) or another platform it does
    /// nothing, and the writer faults the pages in as before.
    pub(crate) fn prefault(&self) {
        #[cfg(target_os = "linux")]
        {
            // SAFETY: sysconf has no preconditions.
            let page = match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
                size if size > 0 => size as usize,
                _ => return,
            };
            let end = self.points as usize + self.capacity * size_of::<f64>();
            let start = (self.points as usize).next_multiple_of(page);
            if end > start {
                // SAFETY: the range lies in the buffer this feed owns (its first page
                // boundary to its end), and MADV_POPULATE_WRITE only maps pages: it
                // reads and writes no byte of them, so it cannot race with the
                // writer. A failure (EINVAL on an old kernel) leaves things as they are.
                unsafe {
                    libc::madvise(
                        start as *mut libc::c_void,
                        end - start,
                        libc::MADV_POPULATE_WRITE,
                    );
                }
            }
        }
    }

    /// The writer of the curve; panics if one was already taken.
    pub(crate) fn writer(&self) -> CurveWriter<'_> {
        let taken = self.writing.swap(true, Ordering::Relaxed);
        assert!(!taken, "a CurveFeed has one writer");
        CurveWriter {
            feed: self,
            len: 0,
            next_publish: PUBLISH_EVERY,
            _not_sync: PhantomData,
        }
    }

    /// The points published so far, and whether the writer is done (then they are
    /// all the points there will be).
    pub(crate) fn published(&self) -> (&[f64], bool) {
        // `closed` first: once it is seen, the final `published` is visible too.
        let closed = self.closed.load(Ordering::Acquire);
        let len = self.published.load(Ordering::Acquire);
        // SAFETY: the first `len` points are initialized and never written again (see
        // the `Sync` impl).
        let points = unsafe { std::slice::from_raw_parts(self.points, len) };
        (points, closed)
    }

    /// Waits until more than `seen` points are published or the writer is done, and
    /// returns what [`published`](Self::published) then returns. Spins a little (the
    /// writer publishes every few tens of microseconds in a backtest), then sleeps in
    /// short naps, so that a slow writer (a strategy in Python) costs no busy core.
    ///
    /// On a rayon worker, it runs the pool's pending jobs instead of sleeping: the
    /// writer may be waiting for them (a strategy that calls `par_iter`, an ML model
    /// running on the pool), and with every worker waiting here they would never run.
    pub(crate) fn wait_past(&self, seen: usize) -> (&[f64], bool) {
        let mut spins = 0u32;
        loop {
            let (points, closed) = self.published();
            if closed || points.len() > seen {
                return (points, closed);
            }
            if spins < 2_000 {
                spins += 1;
                std::hint::spin_loop();
            } else if rayon::yield_now() != Some(rayon::Yield::Executed) {
                std::thread::sleep(Duration::from_micros(20));
            }
        }
    }

    /// The written points as a `Vec`, without a copy.
    pub(crate) fn into_vec(self) -> Vec<f64> {
        let this = std::mem::ManuallyDrop::new(self);
        debug_assert!(this.closed.load(Ordering::Relaxed) || !this.writing.load(Ordering::Relaxed));
        let len = this.published.load(Ordering::Acquire);
        // SAFETY: `points` and `capacity` are those of a `Vec<f64>` taken apart in
        // `with_capacity`, whose first `len` elements are initialized; `this` is not
        // dropped, so the buffer has one owner again.
        unsafe { Vec::from_raw_parts(this.points, len, this.capacity) }
    }
}

impl Drop for CurveFeed {
    fn drop(&mut self) {
        // SAFETY: as in `into_vec`, with no element to drop (`f64`).
        drop(unsafe { Vec::from_raw_parts(self.points, 0, self.capacity) });
    }
}

/// The one writer of a [`CurveFeed`]. Dropping it publishes every point written and
/// tells the readers that the curve is complete (also when a run fails or panics, so
/// a reader never waits forever).
pub(crate) struct CurveWriter<'f> {
    feed: &'f CurveFeed,
    /// Points written (the published ones and those not yet published).
    len: usize,
    /// Publish when `len` reaches this.
    next_publish: usize,
    /// `len` is this thread's alone.
    _not_sync: PhantomData<std::cell::Cell<()>>,
}

impl CurveWriter<'_> {
    /// Points written so far and the most the feed holds: how far along a run is.
    #[inline]
    pub(crate) fn progress(&self) -> (usize, usize) {
        (self.len, self.feed.capacity)
    }

    /// Appends a point; panics when the feed is full.
    #[inline(always)]
    pub(crate) fn push(&mut self, value: f64) {
        assert!(self.len < self.feed.capacity, "CurveFeed full");
        // SAFETY: in bounds (checked above) and past the published prefix.
        unsafe { self.feed.points.add(self.len).write(value) };
        self.len += 1;
        if self.len >= self.next_publish {
            self.publish();
        }
    }

    /// Appends `cash + quantity * price` for each price, the equity of a held position
    /// (a loop the compiler vectorizes); panics when the feed has no room for them.
    #[inline(always)]
    pub(crate) fn extend_held(&mut self, cash: f64, quantity: f64, prices: &[f64]) {
        assert!(
            prices.len() <= self.feed.capacity - self.len,
            "CurveFeed full"
        );
        // SAFETY: `prices.len()` slots past `len`, in bounds (checked above), which no
        // reader reads (they are not published) and nothing else references.
        let spare = unsafe {
            std::slice::from_raw_parts_mut(
                self.feed.points.add(self.len).cast::<MaybeUninit<f64>>(),
                prices.len(),
            )
        };
        for (slot, &price) in spare.iter_mut().zip(prices) {
            slot.write(cash + quantity * price);
        }
        self.len += prices.len();
        if self.len >= self.next_publish {
            self.publish();
        }
    }

    #[inline(never)]
    fn publish(&mut self) {
        self.feed.published.store(self.len, Ordering::Release);
        self.next_publish = self.len + PUBLISH_EVERY;
    }
}

impl Drop for CurveWriter<'_> {
    fn drop(&mut self) {
        self.feed.published.store(self.len, Ordering::Release);
        self.feed.closed.store(true, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reader_sees_published_points_and_the_vec_has_them_all() {
        let feed = CurveFeed::with_capacity(10_000);
        let mut writer = feed.writer();
        writer.push(1.0);
        writer.extend_held(10.0, 2.0, &[1.0, 2.0, 3.0]);
        // Not yet published: fewer than PUBLISH_EVERY points.
        assert_eq!(feed.published(), (&[][..], false));
        let prices: Vec<f64> = (0..PUBLISH_EVERY).map(|i| i as f64).collect();
        writer.extend_held(0.0, 1.0, &prices);
        let (points, closed) = feed.published();
        assert_eq!((points.len(), closed), (PUBLISH_EVERY + 4, false));
        assert_eq!(&points[..4], &[1.0, 12.0, 14.0, 16.0]);
        writer.push(-5.0);
        drop(writer);
        let (points, closed) = feed.published();
        assert_eq!((points.len(), closed), (PUBLISH_EVERY + 5, true));
        let curve = feed.into_vec();
        assert_eq!(curve.len(), PUBLISH_EVERY + 5);
        assert_eq!(curve[PUBLISH_EVERY + 3], (PUBLISH_EVERY - 1) as f64);
        assert_eq!(curve[PUBLISH_EVERY + 4], -5.0);
    }

    #[test]
    fn a_reader_on_another_thread_gets_every_point_in_order() {
        let n = 100_003;
        let feed = CurveFeed::with_capacity(n);
        let sum = std::thread::scope(|scope| {
            let reader = scope.spawn(|| {
                let (mut seen, mut sum) = (0, 0.0);
                loop {
                    let (points, closed) = feed.wait_past(seen);
                    for (i, &p) in points.iter().enumerate().skip(seen) {
                        assert_eq!(p, i as f64);
                        sum += p;
                    }
                    seen = points.len();
                    if closed {
                        return (seen, sum);
                    }
                }
            });
            let mut writer = feed.writer();
            let mut i = 0;
            while i < n {
                if i % 7 == 0 {
                    let run: Vec<f64> = (i..(i + 50).min(n)).map(|k| k as f64).collect();
                    writer.extend_held(0.0, 1.0, &run);
                    i += run.len();
                } else {
                    writer.push(i as f64);
                    i += 1;
                }
            }
            drop(writer);
            reader.join().unwrap()
        });
        assert_eq!(sum, (n, (n * (n - 1) / 2) as f64));
    }

    #[test]
    fn a_dropped_writer_closes_the_feed_so_a_reader_stops_waiting() {
        let feed = CurveFeed::with_capacity(8);
        let reader_saw = std::thread::scope(|scope| {
            let reader = scope.spawn(|| feed.wait_past(0));
            {
                let mut writer = feed.writer();
                writer.push(3.0);
            }
            let (points, closed) = reader.join().unwrap();
            (points.to_vec(), closed)
        });
        assert_eq!(reader_saw, (vec![3.0], true));
    }

    #[test]
    #[should_panic(expected = "CurveFeed full")]
    fn writing_past_the_capacity_panics_instead_of_overrunning() {
        let feed = CurveFeed::with_capacity(2);
        let mut writer = feed.writer();
        writer.extend_held(0.0, 1.0, &[1.0, 2.0, 3.0]);
    }

    #[test]
    #[should_panic(expected = "one writer")]
    fn a_second_writer_panics() {
        let feed = CurveFeed::with_capacity(2);
        let _first = feed.writer();
        let _second = feed.writer();
    }
}
