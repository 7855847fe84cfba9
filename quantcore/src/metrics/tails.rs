//! The VaR, CVaR and tail ratio of [`Metrics::compute`](super::Metrics::compute)
//! inside the one pass over the curve (see `curve.rs`): exact order statistics
//! without storing the returns.
//!
//! The 5th and 95th percentiles (numpy's linear interpolation) need the values at
//! four ranks, `floor((n - 1) * q)` and the one after, for q = 0.05 and 0.95. Before
//! the pass, a sample of [`SAMPLE`] returns taken at even strides of the curve gives
//! for each percentile a bracket `[low, high]` of values that holds both of its ranks
//! with near certainty (a margin of four binomial standard deviations of the sample
//! rank on each side). During the pass, with each block of returns in the L1 cache,
//! a vectorized loop counts the returns below each bracket (and sums those below the
//! 5th percentile's, for the CVaR) and counts the zeros; a scalar loop copies the
//! nonzero returns that fall in a bracket (a few percent of them) to a buffer. After
//! the pass, each rank is found among the copies by `select_nth_unstable`, knowing
//! how many returns lie below. The zeros, which a strategy out of the market has by
//! the hundred thousand, are only counted: a bracket that contains 0 holds them as a
//! run of equal values between its negative and positive copies.
//!
//! The values are the exact order statistics, the same bits as a selection over all
//! the returns ([`Tails::of`]); only the CVaR, a mean of the lowest
//! `floor((n - 1) * 0.05) + 1` returns, adds them in another order (a few ulps).
//! When a rank falls outside its bracket (a sample unlike the whole, e.g. a curve
//! whose returns change regime at a multiple of the stride) or the copies outgrow
//! their buffer, [`TailScan::finish`] says so and the caller selects over all the
//! returns instead: slower, never wrong.
//!
//! Comparisons are IEEE (`<`), which vectorize, rather than the total order of the
//! selections: they agree on the returns of a valid curve, which are never NaN and
//! never `-0.0` (`x - 1.0` is `+0.0` when `x` is 1).

use super::returns::{Tails, lerp, smallest, tail_ratio_from, total_order};

/// Returns in the sample that places the brackets (32 KB).
pub(crate) const SAMPLE: usize = 8192;

/// Curves with fewer returns skip the sample: every nonzero return is copied.
pub(crate) const SAMPLED_FROM: usize = 16 * SAMPLE;

/// Returns in the sample of [`TailScan::start_early`] (256 KB): four times
/// [`SAMPLE`], so brackets half as wide, and half as many copies to select among when
/// the run ends.
pub(crate) const EARLY_SAMPLE: usize = 4 * SAMPLE;

/// How much wider [`TailScan::start_early`]'s brackets are on each side, as a fraction
/// of the returns: the tails of the whole curve may lie that far from those of its
/// start before the early brackets miss (each side copies that many more returns).
const EARLY_DRIFT: f64 = 0.01;

/// Independent accumulators of the counting loop, so that the compiler vectorizes.
const LANES: usize = 4;

/// The longest block [`TailScan::add_block`] takes.
pub(crate) const MAX_BLOCK: usize = 256;

/// Tail probability of the VaR and CVaR in [`Metrics`](super::Metrics) (95%
/// confidence), also the tail ratio's left percentile.
pub(crate) const VAR_CUTOFF: f64 = 0.05;

/// The percentiles: the VaR's (and the tail ratio's left tail), then the right tail.
const QUANTILES: [f64; 2] = [VAR_CUTOFF, 0.95];

/// The ranks of numpy's linear-interpolation percentile at `q` among `n` values.
#[derive(Debug, Clone, Copy)]
struct Rank {
    lower: usize,
    fraction: f64,
    /// The value at `lower + 1` is needed too.
    needs_next: bool,
}

impl Rank {
    /// As `quantile` in `returns.rs` computes them (`n >= 1`).
    fn of(n: usize, q: f64) -> Rank {
        let position = (n - 1) as f64 * q;
        let lower = (position.floor() as usize).min(n - 1);
        let fraction = position - lower as f64;
        Rank {
            lower,
            fraction,
            needs_next: fraction != 0.0 && lower + 1 < n,
        }
    }

    /// The last rank needed.
    fn last(&self) -> usize {
        self.lower + usize::from(self.needs_next)
    }
}

/// The state of the tail statistics during the pass over the curve.
#[derive(Debug, Clone)]
pub(crate) struct TailScan {
    /// Number of returns of the curve.
    n: usize,
    /// Per percentile, the bracket `[low, high]` of the values copied.
    low: [f64; 2],
    high: [f64; 2],
    /// Per percentile and lane, the returns below `low`.
    below: [[u64; LANES]; 2],
    /// Per lane, the sum of the returns below the first bracket's `low`.
    sum_below: [f64; LANES],
    /// Per lane, the zero returns.
    zeros: [u64; LANES],
    /// Copies in the buffer.
    copied: usize,
    /// The buffer was too small: the copies are incomplete.
    overflowed: bool,
}

impl TailScan {
    /// Places the brackets for a curve of `equity.len() - 1` returns (`equity` not yet
    /// checked: on a bad curve the brackets are meaningless, and the caller reports
    /// the error instead of finishing) and sizes `buffer` for the copies; `buffer`
    /// may hold anything on entry.
    pub(crate) fn start(equity: &[f64], buffer: &mut Vec<f64>) -> TailScan {
        let n = equity.len().saturating_sub(1);
        TailScan::start_with(
            n,
            n,
            SAMPLE,
            0.0,
            |i| equity[i + 1] / equity[i] - 1.0,
            buffer,
        )
    }

    /// [`start`](Self::start) for a curve of `n` returns of which only the first ones,
    /// `seen`, are known yet (at least [`EARLY_SAMPLE`] of them; the rest are still
    /// being written): the brackets come from a larger sample, of `seen` (it costs the
    /// run nothing: the pass waits for the curve anyway), and are wider by
    /// [`EARLY_DRIFT`] on each side, so that they still hold the ranks when the rest
    /// of the curve is somewhat unlike its start. When it is not, [`finish`] declines
    /// as for a misleading sample. Call [`set_len`](Self::set_len) if the curve ends
    /// up shorter than `n`.
    ///
    /// [`finish`]: Self::finish
    pub(crate) fn start_early(seen: &[f64], n: usize, buffer: &mut Vec<f64>) -> TailScan {
        debug_assert!(seen.len() >= EARLY_SAMPLE && n >= SAMPLED_FROM);
        TailScan::start_with(
            n,
            seen.len(),
            EARLY_SAMPLE,
            EARLY_DRIFT,
            |i| seen[i],
            buffer,
        )
    }

    /// The curve has `n` returns (at most the `n` of [`start_early`](Self::start_early)).
    pub(crate) fn set_len(&mut self, n: usize) {
        self.n = n;
    }

    /// True when the brackets still look right after `counted` returns: for each
    /// percentile, they hold either its ranks among the returns counted so far with a
    /// margin of half [`EARLY_DRIFT`] of them on each side (brackets placed from a
    /// sample), or the ranks where its value is expected among them once the whole
    /// curve is in ([`expected`](Self::expected) with half the margin
    /// [`narrow`](Self::narrow) keeps: narrowed brackets). The check of the
    /// brackets while the curve is still being written: when it fails, the rest of
    /// the curve has drifted from its start and the brackets are better placed
    /// again. `buffer` as [`add_block`](Self::add_block) left it. Cost: one pass over
    /// the copies.
    pub(crate) fn holds(&self, counted: usize, buffer: &[f64]) -> bool {
        if self.overflowed || counted == 0 {
            return false;
        }
        let copies = &buffer[..self.copied];
        let zeros: u64 = self.zeros.iter().sum();
        let slack = (counted as f64 * EARLY_DRIFT / 2.0) as usize;
        (0..2).all(|b| {
            let (low, high) = (self.low[b], self.high[b]);
            let below = self.below[b].iter().sum::<u64>() as usize;
            let mut inside = copies.iter().filter(|&&r| (r >= low) & (r <= high)).count();
            if (low <= 0.0) & (high >= 0.0) {
                inside += zeros as usize;
            }
            let rank = Rank::of(counted, QUANTILES[b]);
            let sampled = below + slack <= rank.lower && rank.last() + slack < below + inside;
            let (from, to) = self.expected(b, counted, 0.5);
            let narrowed = below as f64 <= from && to < (below + inside) as f64;
            sampled || narrowed
        })
    }

    /// Where the values at percentile `b`'s ranks are expected among the `counted`
    /// returns counted so far, once the `n - counted` still to come are in too: the
    /// ranks among the counted, `(from, to)`, of the final ranks less the returns to
    /// come expected below them (at the percentile's rate), widened on each side by
    /// `scale` times a margin of four binomial standard deviations of that count and
    /// [`EARLY_DRIFT`] of the returns to come (as [`start_early`](Self::start_early)
    /// allows the rest of the curve to differ from its start). Zero width once every
    /// return is counted.
    fn expected(&self, b: usize, counted: usize, scale: f64) -> (f64, f64) {
        let rank = Rank::of(self.n, QUANTILES[b]);
        let to_come = self.n.saturating_sub(counted) as f64;
        let p = rank.lower as f64 / self.n as f64;
        let expected_below = to_come * p;
        let margin = if to_come > 0.0 {
            scale * (4.0 * (to_come * p * (1.0 - p)).sqrt() + 3.0 + EARLY_DRIFT * to_come)
        } else {
            0.0
        };
        (
            rank.lower as f64 - expected_below - margin,
            rank.last() as f64 - expected_below + margin,
        )
    }

    /// Narrows the brackets, after `counted` returns, to the values at the ends of
    /// [`expected`](Self::expected)'s ranks (never widens them): the fewer returns
    /// are still to come, the fewer values a percentile's rank can still move across,
    /// so the later in the curve, the fewer copies [`finish`](Self::finish) selects
    /// among (a few thousand instead of some tens of thousands on a million returns).
    /// The counts and the CVaR's sum take in the copies and zeros between a
    /// bracket's old and new low; only the copies inside a new bracket are kept.
    /// Brackets that miss the ranks in the end make `finish` decline, as any
    /// misleading brackets do. `buffer` as [`add_block`](Self::add_block) left it.
    /// Cost: a partition and two selections of each bracket's copies, and one pass.
    pub(crate) fn narrow(&mut self, counted: usize, buffer: &mut [f64]) {
        if self.overflowed || counted == 0 || counted > self.n {
            return;
        }
        let zeros: u64 = self.zeros.iter().sum();
        let copies = &mut buffer[..self.copied];
        let (mut low, mut high) = (self.low, self.high);
        for b in 0..2 {
            let below = self.below[b].iter().sum::<u64>() as f64;
            let (old_low, old_high) = (self.low[b], self.high[b]);
            let inside = partition(copies, |r| (r >= old_low) & (r <= old_high));
            let negative = partition(&mut copies[..inside], |r| r < 0.0);
            let (negatives, positives) = copies[..inside].split_at_mut(negative);
            let zeros = if (old_low <= 0.0) & (old_high >= 0.0) {
                zeros as usize
            } else {
                0
            };
            let mut bracket = Bracket {
                negatives,
                zeros,
                positives,
            };
            let len = bracket.len() as f64;
            let (from, to) = self.expected(b, counted, 1.0);
            // indexes in the bracket, in order: values before `from` are now below
            let (first, last) = ((from - below).floor(), (to - below).ceil());
            if first > 0.0 && first < len {
                low[b] = bracket.select(first as usize);
            }
            if last >= 0.0 && last < len - 1.0 {
                high[b] = bracket.select(last as usize);
            }
        }
        // One pass: count (and sum, for the CVaR) what fell below a new low, keep
        // what is inside a new bracket.
        let mut newly_below = [0u64; 2];
        let mut sum_newly_below = 0.0;
        let mut kept = 0;
        for i in 0..copies.len() {
            let r = copies[i];
            for b in 0..2 {
                if (r >= self.low[b]) & (r < low[b]) {
                    newly_below[b] += 1;
                    if b == 0 {
                        sum_newly_below += r;
                    }
                }
            }
            copies[kept] = r;
            let inside = ((r >= low[0]) & (r <= high[0])) | ((r >= low[1]) & (r <= high[1]));
            kept += usize::from(inside);
        }
        for b in 0..2 {
            if (self.low[b] <= 0.0) & (0.0 < low[b]) {
                newly_below[b] += zeros;
            }
            self.below[b][0] += newly_below[b];
        }
        self.sum_below[0] += sum_newly_below;
        (self.low, self.high, self.copied) = (low, high, kept);
    }

    /// [`start`](Self::start) for `n` returns, the sample taken from the first
    /// `sampled` (return `i` given by `return_at(i)`), `sample` of them, the brackets
    /// wider by `drift` (a fraction of the returns) on each side.
    #[inline(always)]
    fn start_with(
        n: usize,
        sampled: usize,
        sample: usize,
        drift: f64,
        return_at: impl Fn(usize) -> f64,
        buffer: &mut Vec<f64>,
    ) -> TailScan {
        let mut scan = TailScan {
            n,
            low: [f64::NEG_INFINITY; 2],
            high: [f64::INFINITY; 2],
            below: [[0; LANES]; 2],
            sum_below: [0.0; LANES],
            zeros: [0; LANES],
            copied: 0,
            overflowed: false,
        };
        if n < SAMPLED_FROM {
            // every nonzero return is copied: the brackets are everything
            grow(buffer, n);
            return scan;
        }
        grow(buffer, sample.max(n / 8 + 1024));
        let stride = sampled / sample;
        for (j, slot) in buffer[..sample].iter_mut().enumerate() {
            let i = j * sampled / sample + stride / 2;
            *slot = return_at(i);
        }
        // The sample ranks of the bracket ends, in increasing order.
        let mut ends = [(0usize, 0usize, false); 4];
        for (b, q) in QUANTILES.into_iter().enumerate() {
            let rank = Rank::of(n, q);
            let p = rank.lower as f64 / n as f64;
            let margin = 4.0 * (sample as f64 * p * (1.0 - p)).sqrt() + 3.0 + drift * sample as f64;
            let from = (p * sample as f64 - margin).floor();
            let to = ((rank.last() + 1) as f64 / n as f64 * sample as f64 + margin).ceil();
            if from >= 0.0 {
                ends[2 * b] = (from as usize, b, false);
            } else {
                ends[2 * b] = (usize::MAX, b, false);
            }
            if to < sample as f64 {
                ends[2 * b + 1] = (to as usize, b, true);
            } else {
                ends[2 * b + 1] = (usize::MAX, b, true);
            }
        }
        ends.sort_unstable_by_key(|&(rank, _, _)| rank);
        // Nested selections: each in the part above the previous rank.
        let mut done = 0;
        for (rank, b, is_high) in ends {
            if rank == usize::MAX {
                continue; // the bracket is open on this side: stays infinite
            }
            let value = if rank < done {
                // the same rank as the previous end (ends can coincide)
                buffer[rank]
            } else {
                let (_, &mut value, _) =
                    buffer[done..sample].select_nth_unstable_by(rank - done, total_order);
                done = rank + 1;
                value
            };
            if is_high {
                scan.high[b] = value;
            } else {
                scan.low[b] = value;
            }
        }
        scan
    }

    /// Counts a block of returns and copies those in a bracket to `buffer` (the one
    /// [`start`](Self::start) sized).
    #[inline(always)]
    pub(crate) fn add_block(&mut self, returns: &[f64], buffer: &mut [f64]) {
        // First a loop the compiler vectorizes: the counts, the sum and which returns
        // to copy (`keep`, 0 or 1: the `and` of a comparison's mask with 1).
        let mut keep = [0u64; MAX_BLOCK];
        let keep = &mut keep[..returns.len()];
        let ([low0, low1], [high0, high1]) = (self.low, self.high);
        let [mut below0, mut below1] = self.below;
        let (mut sum_below, mut zeros) = (self.sum_below, self.zeros);
        let (chunks, rest) = returns.as_chunks::<LANES>();
        let (keep_chunks, keep_rest) = keep.as_chunks_mut::<LANES>();
        let count = |lane: usize,
                     r: f64,
                     keep: &mut u64,
                     below0: &mut [u64; LANES],
                     below1: &mut [u64; LANES],
                     sum_below: &mut [f64; LANES],
                     zeros: &mut [u64; LANES]| {
            let (under0, under1) = (r < low0, r < low1);
            below0[lane] += u64::from(under0);
            below1[lane] += u64::from(under1);
            sum_below[lane] += if under0 { r } else { 0.0 };
            let zero = r == 0.0;
            zeros[lane] += u64::from(zero);
            // `!(r < low)` is `r >= low`: returns are never NaN
            let inside = (!under0 & (r <= high0)) | (!under1 & (r <= high1));
            *keep = u64::from(inside & !zero);
        };
        for (chunk, flags) in chunks.iter().zip(keep_chunks) {
            for lane in 0..LANES {
                count(
                    lane,
                    chunk[lane],
                    &mut flags[lane],
                    &mut below0,
                    &mut below1,
                    &mut sum_below,
                    &mut zeros,
                );
            }
        }
        for (&r, flag) in rest.iter().zip(keep_rest) {
            count(
                0,
                r,
                flag,
                &mut below0,
                &mut below1,
                &mut sum_below,
                &mut zeros,
            );
        }
        (self.below, self.sum_below, self.zeros) = ([below0, below1], sum_below, zeros);

        if self.overflowed {
            return;
        }
        if self.copied + returns.len() > buffer.len() {
            self.overflowed = true;
            return;
        }
        // Branch-free: every return is written, the count moves past the ones kept.
        let mut copied = self.copied;
        for (&r, &flag) in returns.iter().zip(keep.iter()) {
            buffer[copied] = r;
            copied += flag as usize;
        }
        self.copied = copied;
    }

    /// The statistics, or `None` when a rank fell outside its bracket or the copies
    /// overflowed: then select over all the returns. `buffer` as the pass left it.
    pub(crate) fn finish(self, buffer: &mut [f64]) -> Option<Tails> {
        let n = self.n;
        if n == 0 {
            return Some(Tails::of(&mut [], QUANTILES[0]));
        }
        if self.overflowed {
            return None;
        }
        let zeros: u64 = self.zeros.iter().sum();
        let copies = &mut buffer[..self.copied];
        let mut percentiles = [0.0; 2];
        let mut conditional_value_at_risk = 0.0;
        for b in 0..2 {
            let (low, high) = (self.low[b], self.high[b]);
            let below = self.below[b].iter().sum::<u64>() as usize;
            // this bracket's copies first, the negative ones first among them
            let inside = partition(copies, |r| (r >= low) & (r <= high));
            let negative = partition(&mut copies[..inside], |r| r < 0.0);
            let (negatives, positives) = copies[..inside].split_at_mut(negative);
            let zeros = if (low <= 0.0) & (high >= 0.0) {
                zeros as usize
            } else {
                0
            };
            let mut bracket = Bracket {
                negatives,
                zeros,
                positives,
            };
            let rank = Rank::of(n, QUANTILES[b]);
            if rank.lower < below || rank.last() >= below + bracket.len() {
                return None;
            }
            let j = rank.lower - below;
            let value = bracket.select(j);
            percentiles[b] = if rank.needs_next {
                lerp(value, bracket.next_after(j), rank.fraction)
            } else {
                value
            };
            if b == 0 {
                let sum_below: f64 = self.sum_below.iter().sum();
                let count = rank.lower + 1;
                conditional_value_at_risk = (sum_below + bracket.sum_through(j)) / count as f64;
            }
        }
        let [p5, p95] = percentiles;
        Some(Tails {
            value_at_risk: Ok(p5),
            conditional_value_at_risk: Ok(conditional_value_at_risk),
            tail_ratio: tail_ratio_from(p5, p95),
        })
    }
}

/// Makes `buffer` at least `len` long, writing only the new elements (a kept buffer
/// is not rewritten on every call).
fn grow(buffer: &mut Vec<f64>, len: usize) {
    if buffer.len() < len {
        buffer.resize(len, 0.0);
    }
}

/// Moves the values that satisfy `keep` to the front; returns how many there are.
///
/// Branch-free (the copies of the two brackets alternate at random): every value is
/// swapped with the first one not kept, which moves it there; only a kept one
/// advances that position. `values[..front]` are kept, `values[front..=i]` are not.
fn partition(values: &mut [f64], keep: impl Fn(f64) -> bool) -> usize {
    let mut front = 0;
    for i in 0..values.len() {
        let kept = keep(values[i]);
        values.swap(front, i);
        front += usize::from(kept);
    }
    front
}

/// The values of a bracket in order: the negative copies (unordered), `zeros`
/// zeros, the positive copies (unordered).
struct Bracket<'a> {
    negatives: &'a mut [f64],
    zeros: usize,
    positives: &'a mut [f64],
}

impl Bracket<'_> {
    fn len(&self) -> usize {
        self.negatives.len() + self.zeros + self.positives.len()
    }

    /// The value at index `j` in order; the values before it then come first in
    /// their part.
    fn select(&mut self, j: usize) -> f64 {
        let before_positives = self.negatives.len() + self.zeros;
        if j < self.negatives.len() {
            *self.negatives.select_nth_unstable_by(j, total_order).1
        } else if j < before_positives {
            0.0
        } else {
            *self
                .positives
                .select_nth_unstable_by(j - before_positives, total_order)
                .1
        }
    }

    /// After [`select`](Self::select)`(j)`: the value at `j + 1` (`< len`).
    fn next_after(&self, j: usize) -> f64 {
        let (negatives, before_positives) =
            (self.negatives.len(), self.negatives.len() + self.zeros);
        if j + 1 < negatives {
            smallest(&self.negatives[j + 1..])
        } else if j + 1 < before_positives {
            0.0
        } else if j < before_positives {
            smallest(self.positives)
        } else {
            smallest(&self.positives[j - before_positives + 1..])
        }
    }

    /// After [`select`](Self::select)`(j)`: the sum of the values at `0..=j`.
    fn sum_through(&self, j: usize) -> f64 {
        let before_positives = self.negatives.len() + self.zeros;
        if j < self.negatives.len() {
            self.negatives[..=j].iter().sum()
        } else {
            let negatives: f64 = self.negatives.iter().sum();
            if j < before_positives {
                negatives
            } else {
                negatives + self.positives[..=j - before_positives].iter().sum::<f64>()
            }
        }
    }
}

/// The tail statistics by selection over all the returns of `equity` (already
/// checked), written to `buffer`: the way out when [`TailScan::finish`] declines.
pub(crate) fn tails_by_selection(equity: &[f64], buffer: &mut Vec<f64>) -> Tails {
    buffer.clear();
    buffer.extend(equity.windows(2).map(|w| w[1] / w[0] - 1.0));
    Tails::of(buffer, QUANTILES[0])
}

/// The tails of stored returns (`returns[i]` the return of point `i + 1`), the same
/// bits as the one pass over their curve: the same sample, the same blocks. Reorders
/// `returns` only when the sample misleads (then it selects among them in place).
#[inline(always)]
pub(crate) fn tails_of_stored(returns: &mut [f64], buffer: &mut Vec<f64>) -> Tails {
    let n = returns.len();
    let mut scan = TailScan::start_with(n, n, SAMPLE, 0.0, |i| returns[i], buffer);
    for block in returns.chunks(MAX_BLOCK) {
        scan.add_block(block, buffer);
    }
    match scan.finish(buffer) {
        Some(tails) => tails,
        None => Tails::of(returns, QUANTILES[0]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::curve::tests::assert_same_as_separate_scans;
    use rand::{Rng, SeedableRng, rngs::StdRng};

    /// The tails as the curve's pass computes them (blocks of 256), or `None` when
    /// [`TailScan::finish`] declines.
    fn scanned(equity: &[f64]) -> Option<Tails> {
        let mut buffer = Vec::new();
        let mut scan = TailScan::start(equity, &mut buffer);
        let returns: Vec<f64> = equity.windows(2).map(|w| w[1] / w[0] - 1.0).collect();
        for block in returns.chunks(MAX_BLOCK) {
            scan.add_block(block, &mut buffer);
        }
        scan.finish(&mut buffer)
    }

    /// `n` returns: flat stretches (zero returns) with probability `flat`, else
    /// uniform in `[low, high)`; the curve compounds them from 1e7.
    fn curve(n: usize, flat: f64, low: f64, high: f64, seed: u64) -> Vec<f64> {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut equity = vec![1e7];
        let mut in_flat = false;
        for _ in 0..n {
            let last = equity[equity.len() - 1];
            // stretches of about 20 periods
            if rng.gen_bool(0.05) {
                in_flat = rng.gen_bool(flat);
            }
            equity.push(if in_flat {
                last
            } else {
                last * (1.0 + rng.gen_range(low..high))
            });
        }
        equity
    }

    fn days(n: usize) -> Vec<i64> {
        (0..n as i64).map(|i| 1_600_000_000 + 86_400 * i).collect()
    }

    #[test]
    fn ranks_are_numpys() {
        // n = 11: position 10 * 0.05 = 0.5 -> lower 0, fraction 0.5
        let rank = Rank::of(11, 0.05);
        assert_eq!((rank.lower, rank.fraction, rank.needs_next), (0, 0.5, true));
        // n = 21: position 1.0 exactly: no next value
        let rank = Rank::of(21, 0.05);
        assert_eq!((rank.lower, rank.needs_next, rank.last()), (1, false, 1));
        // a single value is every percentile
        let rank = Rank::of(1, 0.95);
        assert_eq!((rank.lower, rank.needs_next), (0, false));
    }

    #[test]
    fn bracket_orders_negatives_zeros_positives() {
        // in order: -3, -2, -1, 0, 0, 1, 2
        let (mut negatives, mut positives) = ([-1.0, -3.0, -2.0], [2.0, 1.0]);
        let mut bracket = Bracket {
            negatives: &mut negatives,
            zeros: 2,
            positives: &mut positives,
        };
        assert_eq!(bracket.len(), 7);
        let expected = [-3.0, -2.0, -1.0, 0.0, 0.0, 1.0, 2.0];
        for j in 0..7 {
            assert_eq!(bracket.select(j), expected[j], "{j}");
            if j + 1 < 7 {
                assert_eq!(bracket.next_after(j), expected[j + 1], "{j}");
            }
            let sum: f64 = expected[..=j].iter().sum();
            assert_eq!(bracket.sum_through(j), sum, "{j}");
        }
    }

    #[test]
    fn partition_keeps_every_value() {
        let mut values = [5.0, -1.0, 3.0, -2.0, 0.5, -7.0];
        let kept = partition(&mut values, |v| v < 0.0);
        assert_eq!(kept, 3);
        let mut front = values[..3].to_vec();
        front.sort_by(f64::total_cmp);
        assert_eq!(front, [-7.0, -2.0, -1.0]);
        let mut back = values[3..].to_vec();
        back.sort_by(f64::total_cmp);
        assert_eq!(back, [0.5, 3.0, 5.0]);
    }

    /// Sampled curves (above [`SAMPLED_FROM`] returns) of the shapes a backtest gives:
    /// in the market all the time, half the time (the 5th percentile among the
    /// negative returns, zeros only counted), nearly never (both percentiles are 0, a
    /// bracket of zeros only), and 10% of the time (the 5th percentile bracket
    /// straddles the zeros). The brackets hold the ranks (`finish` does not decline)
    /// and the pass gives the separate computations' values.
    #[test]
    fn sampled_curves_match_the_separate_computations() {
        let n = SAMPLED_FROM + 3 * MAX_BLOCK + 17;
        let mut out = Vec::new();
        for (seed, flat) in [(1, 0.0), (2, 0.5), (3, 0.97), (4, 0.9)] {
            let equity = curve(n, flat, -0.02, 0.021, seed);
            assert!(scanned(&equity).is_some(), "flat {flat}");
            assert_same_as_separate_scans(&days(n + 1), &equity, 0.001, &mut out);
        }
    }

    /// Half the returns are the same nonzero value at the 5th percentile (a curve
    /// alternating between two levels): its bracket is that one value, and its
    /// copies overflow the buffer. `finish` declines; the selection over all the
    /// returns gives the values.
    #[test]
    fn overflowing_copies_fall_back_to_the_full_selection() {
        let n = SAMPLED_FROM + 100;
        let equity: Vec<f64> = (0..=n)
            .map(|i| if i % 2 == 0 { 100.0 } else { 99.0 })
            .collect();
        assert!(scanned(&equity).is_none());
        let pass = assert_same_as_separate_scans(&days(n + 1), &equity, 0.0, &mut Vec::new());
        assert_eq!(pass.tails.value_at_risk, Ok(99.0 / 100.0 - 1.0));
    }

    /// Returns of +50% exactly where the sample looks (-33% right after), small ones
    /// elsewhere: the brackets sit far above the true 5th percentile. `finish` declines; the values are
    /// still exact.
    #[test]
    fn a_misleading_sample_falls_back_to_the_full_selection() {
        let n = SAMPLED_FROM + 5_000;
        let stride = n / SAMPLE;
        let mut sampled = vec![false; n];
        for j in 0..SAMPLE {
            sampled[j * n / SAMPLE + stride / 2] = true;
        }
        let mut rng = StdRng::seed_from_u64(5);
        let mut equity = vec![100.0];
        for i in 0..n {
            // +50% where the sample looks, back down right after
            let r = if sampled[i] {
                0.5
            } else if i > 0 && sampled[i - 1] {
                1.0 / 1.5 - 1.0
            } else {
                rng.gen_range(-0.01..0.01)
            };
            equity.push(equity[equity.len() - 1] * (1.0 + r));
        }
        assert!(scanned(&equity).is_none());
        assert_same_as_separate_scans(&days(n + 1), &equity, 0.0, &mut Vec::new());
    }

    /// Brackets placed from the first eighth of a curve (`start_early`) hold the
    /// ranks of the whole when the rest is like the start, with the exact values;
    /// when the rest is three times as volatile they miss and `finish` declines
    /// (the caller then counts again from a sample of the whole).
    #[test]
    fn early_brackets_hold_on_a_steady_curve_and_decline_on_a_drifting_one() {
        let n = 8 * 4 * SAMPLE;
        let returns_of =
            |equity: &[f64]| -> Vec<f64> { equity.windows(2).map(|w| w[1] / w[0] - 1.0).collect() };
        let early = |returns: &[f64]| {
            let mut buffer = Vec::new();
            let mut scan = TailScan::start_early(&returns[..n / 8], n + 100, &mut buffer);
            for block in returns.chunks(MAX_BLOCK) {
                scan.add_block(block, &mut buffer);
            }
            scan.set_len(returns.len());
            scan.finish(&mut buffer)
        };
        let bits = |m: crate::metrics::Metric| m.map(f64::to_bits);

        let steady = returns_of(&curve(n, 0.3, -0.02, 0.021, 11));
        let tails = early(&steady).expect("steady: the early brackets hold");
        let exact = Tails::of(&mut steady.clone(), 0.05);
        assert_eq!(bits(tails.value_at_risk), bits(exact.value_at_risk));
        assert_eq!(bits(tails.tail_ratio), bits(exact.tail_ratio));
        let (Ok(cvar), Ok(exact_cvar)) = (
            tails.conditional_value_at_risk,
            exact.conditional_value_at_risk,
        ) else {
            panic!("a CVaR of nonzero returns is defined");
        };
        assert!((cvar - exact_cvar).abs() <= 2.0 * n as f64 * f64::EPSILON * 0.021);

        let mut drifting = returns_of(&curve(n, 0.3, -0.02, 0.021, 12));
        for r in &mut drifting[n / 4..] {
            *r *= 3.0;
        }
        assert!(early(&drifting).is_none());

        // `holds` sees it coming: true all along the steady curve, false on the
        // drifting one well before its end.
        let checks = |returns: &[f64]| -> Vec<bool> {
            let mut buffer = Vec::new();
            let mut scan = TailScan::start_early(&returns[..n / 8], n, &mut buffer);
            let mut checks = Vec::new();
            for (k, block) in returns.chunks(MAX_BLOCK).enumerate() {
                scan.add_block(block, &mut buffer);
                let counted = (k * MAX_BLOCK + block.len()).min(returns.len());
                if counted.is_multiple_of(n / 8) {
                    checks.push(scan.holds(counted, &buffer));
                }
            }
            checks
        };
        assert_eq!(checks(&steady), vec![true; 8]);
        let drifting_checks = checks(&drifting);
        assert_eq!(drifting_checks[..2], [true, true]);
        assert!(
            drifting_checks[2..6].contains(&false),
            "{drifting_checks:?}"
        );
    }

    /// The early brackets narrowed at each eighth, as the pass over a curve being
    /// written does: on steady curves (with and without flat stretches, so with and
    /// without zeros inside a bracket) the exact order statistics from far fewer
    /// copies; `holds` stays true on the narrowed brackets; a curve that changes after
    /// the last narrowing makes `finish` decline rather than answer wrong.
    #[test]
    fn narrowed_brackets_give_the_exact_values_from_fewer_copies() {
        let n = 8 * 4 * SAMPLE;
        let returns_of =
            |equity: &[f64]| -> Vec<f64> { equity.windows(2).map(|w| w[1] / w[0] - 1.0).collect() };
        // (tails, copies left at the end, holds at each eighth)
        let run = |returns: &[f64], narrow: bool| {
            let mut buffer = Vec::new();
            let mut scan = TailScan::start_early(&returns[..n / 8], n, &mut buffer);
            let mut checks = Vec::new();
            for (k, block) in returns.chunks(MAX_BLOCK).enumerate() {
                scan.add_block(block, &mut buffer);
                let counted = k * MAX_BLOCK + block.len();
                if counted.is_multiple_of(n / 8) && counted < n {
                    checks.push(scan.holds(counted, &buffer));
                    if narrow {
                        scan.narrow(counted, &mut buffer);
                    }
                }
            }
            let copies = scan.copied;
            (scan.finish(&mut buffer), copies, checks)
        };
        let bits = |m: crate::metrics::Metric| m.map(f64::to_bits);
        for (flat, low, high, seed) in [
            (0.3, -0.02, 0.021, 21),
            (0.0, -0.01, 0.012, 22),
            (0.9, -0.03, 0.02, 23),
            // mostly flat and only gains: the 5th percentile is among the zeros
            (0.7, 0.0001, 0.01, 24),
        ] {
            let returns = returns_of(&curve(n, flat, low, high, seed));
            let exact = Tails::of(&mut returns.clone(), 0.05);
            let (wide, wide_copies, _) = run(&returns, false);
            let (narrowed, copies, checks) = run(&returns, true);
            let (wide, narrowed) = (wide.unwrap(), narrowed.expect("steady: they hold"));
            // (long flat stretches make a clumpy curve, whose sample can mislead)
            let (_, _, wide_checks) = run(&returns, false);
            assert!(
                checks.iter().zip(&wide_checks).all(|(&c, &w)| c >= w),
                "flat {flat}: {checks:?}, wide {wide_checks:?}"
            );
            if flat < 0.5 {
                assert_eq!(checks, vec![true; 7], "flat {flat}");
            }
            for tails in [&wide, &narrowed] {
                assert_eq!(bits(tails.value_at_risk), bits(exact.value_at_risk));
                assert_eq!(bits(tails.tail_ratio), bits(exact.tail_ratio));
                let (Ok(cvar), Ok(exact_cvar)) = (
                    tails.conditional_value_at_risk,
                    exact.conditional_value_at_risk,
                ) else {
                    panic!("a CVaR of a curve with losses or gains is defined");
                };
                let scale = low.abs().max(high.abs());
                assert!((cvar - exact_cvar).abs() <= 2.0 * n as f64 * f64::EPSILON * scale);
            }
            if flat < 0.5 {
                assert!(
                    copies * 4 < wide_copies,
                    "flat {flat}: {copies} copies narrowed, {wide_copies} not"
                );
            } else {
                assert!(copies <= wide_copies, "flat {flat}");
            }
        }

        // Independent returns, 94.6% zeros and a few small losses: the 95th percentile
        // is just above the zeros, its early bracket holds them, and the narrowed one
        // starts above them, so they count below it.
        let mut rng = StdRng::seed_from_u64(26);
        let returns: Vec<f64> = (0..n)
            .map(|_| {
                if rng.gen_bool(0.946) {
                    0.0
                } else {
                    rng.gen_range(-0.0005..0.02)
                }
            })
            .collect();
        let mut buffer = Vec::new();
        let early = TailScan::start_early(&returns[..n / 8], n, &mut buffer);
        assert!(early.low[1] <= 0.0 && early.high[1] > 0.0);
        let (narrowed, _, checks) = run(&returns, true);
        assert_eq!(checks, vec![true; 7]);
        let narrowed = narrowed.expect("independent returns: they hold");
        let exact = Tails::of(&mut returns.clone(), 0.05);
        assert_eq!(bits(narrowed.value_at_risk), bits(exact.value_at_risk));
        assert_eq!(bits(narrowed.tail_ratio), bits(exact.tail_ratio));
        let mut scan = early;
        for (k, block) in returns.chunks(MAX_BLOCK).enumerate() {
            scan.add_block(block, &mut buffer);
            if (k + 1) * MAX_BLOCK == 7 * n / 8 {
                scan.narrow(7 * n / 8, &mut buffer);
                assert!(scan.low[1] > 0.0, "the narrowed bracket is above the zeros");
            }
        }

        // Steady until the last eighth, then three times as volatile: the brackets
        // narrowed at the seventh eighth miss, and `finish` declines.
        let mut late = returns_of(&curve(n, 0.3, -0.02, 0.021, 25));
        for r in &mut late[7 * n / 8..] {
            *r *= 3.0;
        }
        let (wide, _, _) = run(&late, false);
        let (narrowed, _, _) = run(&late, true);
        let exact = Tails::of(&mut late.clone(), 0.05);
        if let Some(wide) = wide {
            assert_eq!(bits(wide.value_at_risk), bits(exact.value_at_risk));
        }
        assert!(narrowed.is_none());
    }
}
