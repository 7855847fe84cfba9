//! The one pass over an equity curve that [`Metrics::compute`](super::Metrics::compute)
//! makes: it checks the curve, computes the returns, follows the maximum drawdown
//! episode (recovery included) and feeds the moments (`moments.rs`) and the tail
//! statistics (`tails.rs`), block by block while the block's returns are in the L1
//! cache; the returns are never stored.
//!
//! The returns, the drawdown and the order statistics are those of the separate scans
//! the pass replaced, bit for bit (the tests compare them with those scans, kept for
//! that); the moments and the CVaR add the same terms in another order (a few ulps).
//! Only the error path scans again, to name the first bad row exactly as
//! [`check_curve`] does.
//!
//! # How the pass is laid out
//! The curve is read in blocks of [`BLOCK`] points. For each block, a loop the compiler
//! vectorizes (packed divisions and comparisons) writes the block's returns to a small
//! buffer and takes the extremes of each run of [`RUN`] points; then the moments and
//! the tails read the block, and the drawdown's state machine runs only on the runs
//! whose highest point reaches the running peak or whose lowest falls below the floor
//! that could deepen the worst drawdown (on any other run it would change nothing).
//! The points after the last whole block form a shorter block.
//!
//! The equity is checked through the returns, which the pass computes anyway: the
//! mean of the returns is finite and none is at or below -1 only if every point is
//! finite and positive (given the first one, by induction: a finite `e_t / e_{t-1}`
//! above 0 needs a finite positive `e_t`). The converse can fail (a ratio that
//! overflows on a valid curve), so this is only a fast path: when it does not clear
//! the curve, [`check_curve`] decides, and a curve it accepts goes on with the numbers
//! already computed. The timestamps' order is checked in the same pass, unless the
//! caller vouches for it ([`TimestampOrder::Trusted`]).
//!
//! # The same pass over a curve still being written
//! [`scan_feed`] runs the pass on a curve another thread writes to a
//! [`CurveFeed`] (a backtest, see `Backtester::measured`): it takes the blocks as
//! they are published, so that its work hides behind the simulation. The moments,
//! the drawdown and the checks are the one pass's, block for block. The tails cannot
//! be: their brackets come from a sample of the whole curve. So the returns are
//! stored (8 MB for a million points, in a buffer the thread keeps) and, once the
//! first eighth of the curve is in, brackets are placed from a sample of it (four
//! times the one pass's sample, and wider by 1% of the returns on each side:
//! [`TailScan::start_early`]); the stored blocks, then each new block, are counted
//! against them. Each time another eighth is in, the brackets are checked
//! ([`TailScan::holds`]); when the curve has drifted from its start they are placed
//! again from all the returns so far and those are counted again, while the run goes
//! on (at most [`PLACINGS`] placings). Then they are narrowed to the values the
//! ranks can still reach with the returns still to come ([`TailScan::narrow`]). When
//! the run ends, the ranks are usually inside those brackets: only the selections
//! among a few thousand copies are left (about 0.05 ms on the million-bar bench's
//! curve, 0.4 ms before the brackets were narrowed). When the ranks still end up
//! outside, the stored returns are counted again from a sample of the whole, as the
//! one pass does (about 2.3 ms more on a million points). The order statistics are
//! exact either way; the CVaR's sum splits at the brackets' values, so it may differ
//! from the one pass's by a few ulps. Whatever the fast checks do not clear goes to
//! the one pass ([`FeedPass::resolve`]), for the same errors.

use super::drawdown::{DrawdownPeriod, check_curve, check_shape};
use super::feed::CurveFeed;
use super::moments::RunningMoments;
use super::returns::{Moments, Tails};
use super::tails::{
    EARLY_SAMPLE, MAX_BLOCK, SAMPLED_FROM, TailScan, tails_by_selection, tails_of_stored,
};
use crate::error::Result;

/// Points per block: the block's returns (2 KB) stay in the L1 cache between the
/// vectorized loop and the placing.
const BLOCK: usize = 256;

/// Points per run, the unit the drawdown's state machine skips.
const RUN: usize = 8;

/// Runs per block.
const RUNS: usize = BLOCK / RUN;

/// The most times [`scan_feed`] places the tails' brackets (once early, then again
/// when the curve drifts from its start).
const PLACINGS: usize = 3;

const _: () = assert!(BLOCK <= MAX_BLOCK, "a block too long for the tails");

/// What the pass over the curve found.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CurvePass {
    /// The moments and extremes of the returns.
    pub(crate) moments: Moments,
    /// VaR, CVaR and tail ratio at 5% / 95%.
    pub(crate) tails: Tails,
    /// `min_t(E_t / max_{s<=t} E_s - 1)` <= 0.
    pub(crate) max_drawdown: f64,
    /// Its episode, `None` when the equity never fell below a previous peak.
    pub(crate) period: Option<DrawdownPeriod>,
}

/// Whether [`scan_curve`] checks the order of the timestamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimestampOrder {
    /// Check that they are non-decreasing (an error names the first row that is not).
    Check,
    /// The caller guarantees that they are non-decreasing (e.g. they come from a
    /// validated `BarSeries`): the pass does not read them, but for the drawdown's
    /// dates.
    Trusted,
}

/// The running peak and the deepest drawdown so far, as `max_drawdown_period` keeps
/// them, plus the recovery of the deepest one.
struct Drawdown {
    peak: f64,
    peak_index: usize,
    worst: f64,
    worst_peak: usize,
    worst_trough: usize,
    /// Only a point below `floor` can deepen the worst drawdown: a multiplication per
    /// new peak instead of a division per point. The margin of a few ulps keeps every
    /// candidate; the exact division decides.
    floor: f64,
    /// The first new peak after the deepest trough: the running peak stays the
    /// episode's peak until then, so that is the first point back at its equity.
    recovery: Option<usize>,
    /// True from a new deepest trough until its recovery.
    awaiting_recovery: bool,
}

fn floor_of(peak: f64, worst: f64) -> f64 {
    peak * (1.0 + worst) * (1.0 + 4.0 * f64::EPSILON)
}

impl Drawdown {
    /// The state after the first point, the starting capital and first peak.
    fn start(first: f64) -> Drawdown {
        Drawdown {
            peak: first,
            peak_index: 0,
            worst: 0.0,
            worst_peak: 0,
            worst_trough: 0,
            floor: floor_of(first, 0.0),
            recovery: None,
            awaiting_recovery: false,
        }
    }

    /// False when no point of a run with these extremes can change the state: none
    /// reaches the peak and none is below the floor (true for NaN, to be safe).
    #[inline(always)]
    fn may_change(&self, high: f64, low: f64) -> bool {
        let quiet = (high < self.peak) & (low >= self.floor);
        !quiet
    }

    /// Point `i`, of equity `e`, as `max_drawdown_period` sees it.
    #[inline(always)]
    fn see(&mut self, i: usize, e: f64) {
        if e >= self.peak {
            // `>=`: a return to the same level starts a new episode from here.
            self.peak = e;
            self.peak_index = i;
            self.floor = floor_of(e, self.worst);
            if self.awaiting_recovery {
                self.recovery = Some(i);
                self.awaiting_recovery = false;
            }
        } else if e < self.floor {
            let drawdown = e / self.peak - 1.0;
            if drawdown < self.worst {
                self.worst = drawdown;
                self.worst_peak = self.peak_index;
                self.worst_trough = i;
                self.floor = floor_of(self.peak, drawdown);
                self.recovery = None;
                self.awaiting_recovery = true;
            }
        }
    }

    fn finish(self, timestamps: &[i64]) -> (f64, Option<DrawdownPeriod>) {
        if self.worst == 0.0 {
            return (0.0, None);
        }
        let end = self.recovery.unwrap_or(timestamps.len() - 1);
        let period = DrawdownPeriod {
            depth: self.worst,
            peak_index: self.worst_peak,
            peak_timestamp: timestamps[self.worst_peak],
            trough_index: self.worst_trough,
            trough_timestamp: timestamps[self.worst_trough],
            recovery_index: self.recovery,
            recovery_timestamp: self.recovery.map(|i| timestamps[i]),
            duration_periods: end - self.worst_peak,
            duration_seconds: timestamps[end] - timestamps[self.worst_peak],
        };
        (self.worst, Some(period))
    }
}

/// One block's returns and what the drawdown needs from it.
struct Block {
    returns: [f64; BLOCK],
    /// Highest and lowest point of each run.
    highs: [f64; RUNS],
    lows: [f64; RUNS],
}

impl Block {
    fn new() -> Block {
        Block {
            returns: [0.0; BLOCK],
            highs: [0.0; RUNS],
            lows: [0.0; RUNS],
        }
    }

    /// The returns of `points` against `previous` (each [`BLOCK`] long) and the runs'
    /// extremes. Straight-line code over fixed-size arrays, so the compiler
    /// vectorizes it.
    #[inline(always)]
    fn fill(&mut self, points: &[f64], previous: &[f64]) {
        let (points, _) = points.as_chunks::<RUN>();
        let (previous, _) = previous.as_chunks::<RUN>();
        let (returns, _) = self.returns.as_chunks_mut::<RUN>();
        let extremes = self.highs.iter_mut().zip(self.lows.iter_mut());
        let runs = points.iter().zip(previous).zip(returns).zip(extremes);
        for (((e, p), r), (run_high, run_low)) in runs {
            *r = std::array::from_fn(|k| e[k] / p[k] - 1.0);
            let (mut high, mut low) = (*e, *e);
            let mut width = RUN / 2;
            while width > 0 {
                for k in 0..width {
                    let (h, l) = (high[k + width], low[k + width]);
                    high[k] = if h > high[k] { h } else { high[k] };
                    low[k] = if l < low[k] { l } else { low[k] };
                }
                width /= 2;
            }
            (*run_high, *run_low) = (high[0], low[0]);
        }
    }
}

/// True when every `times[k] >= previous[k]`.
///
/// Branch-free and in 64-bit adds, xors and ands only, which SSE2 has (it has no
/// 64-bit comparison): `t < p` exactly when the sign of `t - p` corrected for
/// overflow is set, and the overflow of `t - p` is the sign of
/// `(t ^ p) & (t ^ (t - p))`.
#[inline(always)]
fn non_decreasing(times: &[i64], previous: &[i64]) -> bool {
    let negative = times.iter().zip(previous).fold(0, |negative, (&t, &p)| {
        let difference = t.wrapping_sub(p);
        negative | (difference ^ ((t ^ p) & (t ^ difference)))
    });
    negative >= 0
}

/// True for an equity value that is finite and positive (false for NaN).
#[inline(always)]
fn valid_equity(value: f64) -> bool {
    (value > 0.0) & (value < f64::INFINITY)
}

/// Checks the curve as [`check_curve`] does (the timestamps' order only with
/// [`TimestampOrder::Check`]) and computes, in one pass over it, the returns
/// `equity[t] / equity[t - 1] - 1`' moments (about `target` for the downside) and
/// extremes, their tail statistics at 5% / 95% and the maximum drawdown with its
/// episode (as `max_drawdown_period`).
///
/// `buffer` may hold anything on entry; it receives the returns near the tails'
/// percentiles (a few percent of them; all of them when the tails' sample misleads).
///
/// # Errors
/// Those of [`check_curve`], for the same first bad row.
pub(crate) fn scan_curve(
    timestamps: &[i64],
    equity: &[f64],
    target: f64,
    order: TimestampOrder,
    buffer: &mut Vec<f64>,
) -> Result<CurvePass> {
    check_shape(timestamps, equity)?;
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, checked just above.
        return unsafe {
            match order {
                TimestampOrder::Check => scan_avx2::<true>(timestamps, equity, target, buffer),
                TimestampOrder::Trusted => scan_avx2::<false>(timestamps, equity, target, buffer),
            }
        };
    }
    match order {
        TimestampOrder::Check => scan::<true>(timestamps, equity, target, buffer),
        TimestampOrder::Trusted => scan::<false>(timestamps, equity, target, buffer),
    }
}

/// [`scan`] compiled for AVX2: four doubles per instruction instead of two, and
/// 64-bit comparisons. The same operations in the same order (Rust never fuses a
/// multiplication and an addition, nor reorders floating-point sums), so the same
/// bits as the baseline build.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn scan_avx2<const CHECK_ORDER: bool>(
    timestamps: &[i64],
    equity: &[f64],
    target: f64,
    buffer: &mut Vec<f64>,
) -> Result<CurvePass> {
    scan::<CHECK_ORDER>(timestamps, equity, target, buffer)
}

/// [`scan_curve`], compiled once with the timestamps' check and once without.
#[inline(always)]
fn scan<const CHECK_ORDER: bool>(
    timestamps: &[i64],
    equity: &[f64],
    target: f64,
    buffer: &mut Vec<f64>,
) -> Result<CurvePass> {
    let n = equity.len() - 1;
    let mut tails = TailScan::start(equity, buffer);
    let mut pass = Pass::start(equity[0]);
    let whole = n - n % BLOCK;
    let mut count = |_: usize, returns: &[f64]| tails.add_block(returns, buffer);
    pass.whole_blocks::<CHECK_ORDER>(timestamps, equity, 0, whole, target, &mut count);
    pass.rest::<CHECK_ORDER>(timestamps, equity, whole, target, &mut count);

    if !pass.valid() {
        // Either a bad point, named as the separate check names it, or a valid curve
        // the fast checks could not clear (see the module docs): then go on.
        check_curve(timestamps, equity)?;
    }
    let tails = match tails.finish(buffer) {
        Some(tails) => tails,
        None => tails_by_selection(equity, buffer),
    };
    Ok(pass.finish(tails, timestamps))
}

/// The state of the pass but for the tails: the moments, the drawdown, the checks.
struct Pass {
    moments: RunningMoments,
    drawdown: Drawdown,
    /// The first point is valid (the returns vouch for the others).
    first_valid: bool,
    /// Every timestamp checked so far follows the previous one.
    sorted: bool,
    block: Block,
}

impl Pass {
    fn start(first: f64) -> Pass {
        Pass {
            moments: RunningMoments::new(),
            drawdown: Drawdown::start(first),
            first_valid: valid_equity(first),
            sorted: true,
            block: Block::new(),
        }
    }

    /// The whole blocks of returns `from..to` (multiples of [`BLOCK`]; return `i` is
    /// point `i + 1` against point `i`), each also handed to `sink` with its first
    /// index. `timestamps` is read only when `CHECK_ORDER`.
    #[inline(always)]
    fn whole_blocks<const CHECK_ORDER: bool>(
        &mut self,
        timestamps: &[i64],
        equity: &[f64],
        from: usize,
        to: usize,
        target: f64,
        sink: &mut impl FnMut(usize, &[f64]),
    ) {
        let (before, after) = (&equity[..to], &equity[1..=to]);
        let block = &mut self.block;
        for start in (from..to).step_by(BLOCK) {
            let points = &after[start..start + BLOCK];
            block.fill(points, &before[start..start + BLOCK]);
            if CHECK_ORDER {
                self.sorted &= non_decreasing(
                    &timestamps[start + 1..start + 1 + BLOCK],
                    &timestamps[start..start + BLOCK],
                );
            }
            self.moments.add_block(&block.returns, target);
            sink(start, &block.returns);
            let (runs, _) = points.as_chunks::<RUN>();
            for ((run, &high), (&low, offset)) in runs
                .iter()
                .zip(&block.highs)
                .zip(block.lows.iter().zip((start + 1..).step_by(RUN)))
            {
                if self.drawdown.may_change(high, low) {
                    for (k, &e) in run.iter().enumerate() {
                        self.drawdown.see(offset + k, e);
                    }
                }
            }
        }
    }

    /// The returns from `from` (a multiple of [`BLOCK`]) to the end of the curve, one
    /// by one into a shorter block, handed to `sink` as `whole_blocks` does.
    #[inline(always)]
    fn rest<const CHECK_ORDER: bool>(
        &mut self,
        timestamps: &[i64],
        equity: &[f64],
        from: usize,
        target: f64,
        sink: &mut impl FnMut(usize, &[f64]),
    ) {
        let n = equity.len() - 1;
        let rest = &mut self.block.returns[..n - from];
        for (k, slot) in rest.iter_mut().enumerate() {
            let i = from + k;
            let e = equity[i + 1];
            if CHECK_ORDER {
                self.sorted &= timestamps[i + 1] >= timestamps[i];
            }
            *slot = e / equity[i] - 1.0;
            self.drawdown.see(i + 1, e);
        }
        self.moments.add_block(rest, target);
        sink(from, rest);
    }

    /// True when the fast checks cleared the curve (after the last block).
    fn valid(&self) -> bool {
        self.first_valid & self.moments.finite_above_minus_one() & self.sorted
    }

    fn finish(self, tails: Tails, timestamps: &[i64]) -> CurvePass {
        let (max_drawdown, period) = self.drawdown.finish(timestamps);
        CurvePass {
            moments: self.moments.finish(),
            tails,
            max_drawdown,
            period,
        }
    }
}

/// What [`scan_feed`] found: a [`CurvePass`] but for the drawdown's dates, which
/// [`resolve`](FeedPass::resolve) adds from the curve's timestamps.
pub(crate) struct FeedPass {
    /// `None` for a curve with no point.
    pass: Option<Pass>,
    /// `None` when the fast checks did not clear the curve.
    tails: Option<Tails>,
}

impl FeedPass {
    /// The pass over `equity`, the curve the feed received, at `timestamps`
    /// (non-decreasing, as for [`TimestampOrder::Trusted`]): the same numbers, bit
    /// for bit, and the same errors as [`scan_curve`].
    pub(crate) fn resolve(
        self,
        timestamps: &[i64],
        equity: &[f64],
        target: f64,
        buffer: &mut Vec<f64>,
    ) -> Result<CurvePass> {
        check_shape(timestamps, equity)?;
        match (self.pass, self.tails) {
            (Some(pass), Some(tails)) => Ok(pass.finish(tails, timestamps)),
            // A bad point, or a valid curve the fast checks could not clear: the one
            // pass says which.
            _ => scan_curve(timestamps, equity, target, TimestampOrder::Trusted, buffer),
        }
    }
}

/// The pass of [`scan_curve`] over a curve another thread is writing: block by block
/// as the points are published, while the curve is still being written, so that only
/// the tails (which need the whole curve to place their brackets) are left when it is
/// complete. The block's returns go to `returns` (resized to the feed's capacity; the
/// tails read them there); `buffer` as for `scan_curve`.
pub(crate) fn scan_feed(
    feed: &CurveFeed,
    target: f64,
    returns: &mut Vec<f64>,
    buffer: &mut Vec<f64>,
) -> FeedPass {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, checked just above.
        return unsafe { scan_feed_avx2(feed, target, returns, buffer) };
    }
    stream(feed, target, returns, buffer)
}

/// [`stream`] compiled for AVX2, as [`scan_avx2`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn scan_feed_avx2(
    feed: &CurveFeed,
    target: f64,
    returns: &mut Vec<f64>,
    buffer: &mut Vec<f64>,
) -> FeedPass {
    stream(feed, target, returns, buffer)
}

#[inline(always)]
fn stream(
    feed: &CurveFeed,
    target: f64,
    returns: &mut Vec<f64>,
    buffer: &mut Vec<f64>,
) -> FeedPass {
    let (mut equity, mut closed) = feed.wait_past(0);
    let Some(&first) = equity.first() else {
        return FeedPass {
            pass: None,
            tails: None,
        };
    };
    let most = feed.capacity() - 1;
    if returns.len() < most {
        returns.resize(most, 0.0);
    }
    // The tails start counting once this many returns are in (see `start_early`);
    // the returns before are counted then, from `returns`. Each time as many more are
    // in, the brackets are checked and, if the curve has drifted from its start,
    // placed again from all the returns so far (at most `PLACINGS` times in all:
    // each counts the stored returns again), then narrowed to where the ranks can
    // still go with the returns still to come.
    let early =
        (most >= SAMPLED_FROM).then(|| (most / 8).max(EARLY_SAMPLE).next_multiple_of(BLOCK));
    let mut tails: Option<TailScan> = None;
    let mut placings = 0;
    let mut next_check = early.unwrap_or(usize::MAX);
    let mut pass = Pass::start(first);
    let mut done = 0;
    loop {
        let available = equity.len() - 1;
        let whole = available - available % BLOCK;
        if whole > done {
            let mut sink = |start: usize, block: &[f64]| {
                returns[start..start + block.len()].copy_from_slice(block);
                if let Some(tails) = &mut tails {
                    tails.add_block(block, buffer);
                }
            };
            pass.whole_blocks::<false>(&[], equity, done, whole, target, &mut sink);
            done = whole;
            if done >= next_check {
                next_check = done + early.unwrap_or(usize::MAX);
                let placed = tails.as_ref().is_some_and(|scan| scan.holds(done, buffer));
                if !placed && placings < PLACINGS {
                    placings += 1;
                    let mut scan = TailScan::start_early(&returns[..done], most, buffer);
                    for block in returns[..done].chunks(BLOCK) {
                        scan.add_block(block, buffer);
                    }
                    tails = Some(scan);
                }
                if let Some(scan) = &mut tails {
                    scan.narrow(done, buffer);
                }
            }
        }
        if closed {
            break;
        }
        // until one more whole block of returns is there
        (equity, closed) = feed.wait_past(done + BLOCK);
    }
    let mut sink = |start: usize, block: &[f64]| {
        returns[start..start + block.len()].copy_from_slice(block);
        if let Some(tails) = &mut tails {
            tails.add_block(block, buffer);
        }
    };
    pass.rest::<false>(&[], equity, done, target, &mut sink);
    let n = equity.len() - 1;
    if !pass.valid() {
        return FeedPass {
            pass: Some(pass),
            tails: None,
        };
    }
    let early_tails = match tails {
        Some(mut scan) => {
            scan.set_len(n);
            scan.finish(buffer)
        }
        None => None,
    };
    let tails = match early_tails {
        Some(tails) => tails,
        // Too short for early brackets, or they missed: a pass over the returns.
        None => tails_of_stored(&mut returns[..n], buffer),
    };
    FeedPass {
        pass: Some(pass),
        tails: Some(tails),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::metrics::drawdown::max_drawdown_period;
    use crate::metrics::returns::reference_moments;
    use crate::metrics::undefined::Metric;
    use rand::{Rng, SeedableRng, rngs::StdRng};

    fn scan_checked(
        timestamps: &[i64],
        equity: &[f64],
        target: f64,
        out: &mut Vec<f64>,
    ) -> Result<CurvePass> {
        scan_curve(timestamps, equity, target, TimestampOrder::Check, out)
    }

    /// `|a - b| <= tolerance`, or both non-finite (a sum that overflowed on a curve
    /// whose ratios reach 1e300: infinite or NaN depending on the order of its
    /// terms, undefined either way: the metrics from it are `Overflow` or infinite).
    pub(crate) fn near(a: f64, b: f64, tolerance: f64) -> bool {
        a == b || !(a.is_finite() || b.is_finite()) || (a - b).abs() <= tolerance
    }

    /// The same reason, or values [`near`] within `tolerance`.
    pub(crate) fn near_metric(a: Metric, b: Metric, tolerance: f64) -> bool {
        match (a, b) {
            (Ok(a), Ok(b)) => near(a, b, tolerance),
            (a, b) => a == b,
        }
    }

    /// The pass against the separate computations it replaced: the drawdown (depth
    /// and episode) and the order statistics (VaR, tail ratio: exact values, from a
    /// selection over all the returns) bit for bit; the moments and the CVaR, whose
    /// sums run in another order, within a few ulps of the natural scale of each sum
    /// (its condition number: `1e-12` times `sum |d|^k` for a centered sum,
    /// `max |r|` for the mean; for the CVaR `2 * count * eps * max |r|`, the bound of
    /// any order of a sum of `count` terms). A wrong formula misses by far more.
    /// Also checks the trusted-timestamps path gives the same bits.
    pub(crate) fn assert_same_as_separate_scans(
        timestamps: &[i64],
        equity: &[f64],
        target: f64,
        out: &mut Vec<f64>,
    ) -> CurvePass {
        let pass = scan_checked(timestamps, equity, target, out).unwrap();
        let trusted = scan_curve(timestamps, equity, target, TimestampOrder::Trusted, out).unwrap();
        assert_eq!(format!("{pass:?}"), format!("{trusted:?}"));

        let returns: Vec<f64> = equity.windows(2).map(|w| w[1] / w[0] - 1.0).collect();
        let (depth, period) = max_drawdown_period(timestamps, equity);
        assert_eq!(pass.max_drawdown.to_bits(), depth.to_bits());
        assert_eq!(pass.period, period);

        let tails = Tails::of(&mut returns.clone(), 0.05);
        let bits = |m: Metric| m.map(f64::to_bits);
        assert_eq!(bits(pass.tails.value_at_risk), bits(tails.value_at_risk));
        assert_eq!(bits(pass.tails.tail_ratio), bits(tails.tail_ratio));
        let largest = returns.iter().fold(0.0_f64, |a, r| a.max(r.abs()));
        let count = ((returns.len().max(1) - 1) as f64 * 0.05).floor() + 1.0;
        assert!(near_metric(
            pass.tails.conditional_value_at_risk,
            tails.conditional_value_at_risk,
            2.0 * count * f64::EPSILON * largest
        ));

        let (new, old) = (pass.moments, reference_moments(&returns, target));
        assert_eq!(new.n, old.n);
        assert_eq!(
            (new.best.to_bits(), new.worst.to_bits()),
            (old.best.to_bits(), old.worst.to_bits())
        );
        let scale = |k: i32| {
            returns
                .iter()
                .map(|x| (x - old.mean).abs().powi(k))
                .sum::<f64>()
        };
        let squares: f64 = returns.iter().map(|x| (x - target).min(0.0).powi(2)).sum();
        assert!(
            near(new.mean, old.mean, 1e-12 * largest),
            "{} {}",
            new.mean,
            old.mean
        );
        assert!(
            near(new.m2, old.m2, 1e-12 * scale(2)),
            "{} {}",
            new.m2,
            old.m2
        );
        assert!(
            near(new.m3, old.m3, 1e-12 * scale(3)),
            "{} {}",
            new.m3,
            old.m3
        );
        assert!(
            near(new.m4, old.m4, 1e-12 * scale(4)),
            "{} {}",
            new.m4,
            old.m4
        );
        assert!(near(
            new.downside_squares,
            old.downside_squares,
            1e-12 * squares
        ));
        pass
    }

    #[test]
    fn matches_the_separate_scans_on_random_curves() {
        let mut rng = StdRng::seed_from_u64(41);
        // one buffer for all: stale contents of every length before each curve
        let mut out = Vec::new();
        for case in 0..400 {
            // short curves (the one-by-one tail only) and curves of a few blocks
            let n = if case % 3 == 0 {
                rng.gen_range(BLOCK..5 * BLOCK)
            } else {
                rng.gen_range(1..BLOCK)
            };
            let mut equity = vec![rng.gen_range(1.0..1e4)];
            let mut peak = equity[0];
            // flat stretches (out of the market) of about 20 points, on two curves
            // in three
            let mut flat = false;
            for _ in 1..n {
                let last = equity[equity.len() - 1];
                flat ^= case % 3 != 2 && rng.gen_bool(0.05);
                let next = match rng.gen_range(0..6) {
                    _ if flat => last,
                    0 => last,
                    1 => peak,
                    2 => (last + rng.gen_range(-3..=3) as f64).max(0.5),
                    _ => last * (1.0 + rng.gen_range(-0.1..0.1)),
                };
                peak = peak.max(next);
                equity.push(next);
            }
            let timestamps: Vec<i64> = (0..n as i64).map(|i| i * 60 + (case % 3)).collect();
            assert_same_as_separate_scans(&timestamps, &equity, 0.0, &mut out);
        }
    }

    /// Valid curves whose ratios overflow to infinity or underflow to zero: the fast
    /// checks cannot clear them, the full check does, and the pass goes on with the
    /// numbers of the separate scans.
    #[test]
    fn valid_curves_the_fast_checks_cannot_clear_still_pass() {
        let mut out = Vec::new();
        let timestamps: Vec<i64> = (0..300).collect();
        for (at, value) in [
            (3, 1e300),
            (3, 1e-300),
            (200, f64::MAX),
            (299, f64::MIN_POSITIVE),
        ] {
            let mut equity = vec![1.0; 300];
            equity[at] = value;
            assert!(check_curve(&timestamps, &equity).is_ok());
            assert_same_as_separate_scans(&timestamps, &equity, 0.0, &mut out);
        }
    }

    #[test]
    fn recovery_is_the_first_point_back_at_the_deepest_episodes_peak() {
        let mut out = vec![f64::NAN; 50];
        // 100, 110 (peak), 88 (trough, -20%), 105, 110 (recovery at 4), 120, 96 (-20%
        // again from 120, not deeper: the first episode stays), 97
        let equity = [100.0, 110.0, 88.0, 105.0, 110.0, 120.0, 96.0, 97.0];
        let timestamps: Vec<i64> = (0..8).map(|i| i * 10).collect();
        let pass = scan_checked(&timestamps, &equity, 0.0, &mut out).unwrap();
        let period = pass.period.unwrap();
        assert_eq!(
            (
                period.peak_index,
                period.trough_index,
                period.recovery_index
            ),
            (1, 2, Some(4))
        );
        assert_eq!((period.duration_periods, period.duration_seconds), (3, 30));
        assert_same_as_separate_scans(&timestamps, &equity, 0.0, &mut out);
        // a deeper fall after the recovery replaces it, unrecovered: runs to the end
        let equity = [100.0, 110.0, 88.0, 110.0, 120.0, 60.0, 119.0];
        let pass = scan_checked(&timestamps[..7], &equity, 0.0, &mut out).unwrap();
        let period = pass.period.unwrap();
        assert_eq!(
            (
                period.peak_index,
                period.trough_index,
                period.recovery_index
            ),
            (4, 5, None)
        );
        assert_eq!(period.duration_periods, 2);
        assert_same_as_separate_scans(&timestamps[..7], &equity, 0.01, &mut out);
    }

    #[test]
    fn errors_name_the_first_bad_row_as_check_curve_does() {
        let mut out = Vec::new();
        // two whole blocks and a tail; rows at both ends of each part
        let n = 2 * BLOCK + 11;
        let timestamps: Vec<i64> = (0..n as i64).collect();
        let rows = [
            0,
            1,
            7,
            8,
            BLOCK - 1,
            BLOCK,
            BLOCK + 1,
            2 * BLOCK,
            2 * BLOCK + 1,
            n - 1,
        ];
        for row in rows {
            for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 0.0, -0.0, -3.0] {
                let mut equity: Vec<f64> = (0..n).map(|i| 100.0 + (i % 7) as f64).collect();
                equity[row] = bad;
                let fused = scan_checked(&timestamps, &equity, 0.0, &mut out).unwrap_err();
                let separate = check_curve(&timestamps, &equity).unwrap_err();
                assert_eq!(fused.to_string(), separate.to_string());
            }
            if row > 0 {
                let mut unsorted = timestamps.clone();
                unsorted[row] = -1;
                let fused = scan_checked(&unsorted, &vec![1.0; n], 0.0, &mut out).unwrap_err();
                let separate = check_curve(&unsorted, &vec![1.0; n]).unwrap_err();
                assert_eq!(fused.to_string(), separate.to_string());
                assert!(fused.to_string().contains(&format!("row {row}")), "{fused}");
            }
        }
        assert!(scan_checked(&[], &[], 0.0, &mut out).is_err());
        assert!(scan_checked(&[1], &[1.0, 2.0], 0.0, &mut out).is_err());
    }

    /// The pass over `equity` written by another thread (`scan_feed`, then
    /// `resolve`): point by point, with pauses so that the pass catches up with the
    /// writer in mid-curve and waits for it.
    fn streamed(timestamps: &[i64], equity: &[f64], target: f64) -> Result<CurvePass> {
        // room for more points than written: a run may write fewer than its bound
        let feed = CurveFeed::with_capacity(equity.len() + 3);
        let pass = std::thread::scope(|scope| {
            let reader = scope.spawn(|| {
                // stale buffers, as a thread's kept ones
                let (mut returns, mut buffer) = (vec![f64::NAN; 7], vec![-1.0; 3]);
                scan_feed(&feed, target, &mut returns, &mut buffer)
            });
            let mut writer = feed.writer();
            for (i, &e) in equity.iter().enumerate() {
                writer.push(e);
                if i % 20_000 == 19_999 {
                    std::thread::sleep(std::time::Duration::from_micros(300));
                }
            }
            drop(writer);
            reader.join().unwrap()
        });
        let written = feed.into_vec();
        let bits = |curve: &[f64]| curve.iter().map(|e| e.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&written), bits(equity));
        pass.resolve(timestamps, &written, target, &mut Vec::new())
    }

    /// The streamed pass gives what the one pass gives: the same bits or the same
    /// error, but for the CVaR when the tails counted from early brackets (its sum
    /// then splits at other values: within the bound of any order of its terms, as in
    /// [`assert_same_as_separate_scans`]).
    fn assert_streamed_as_one_pass(timestamps: &[i64], equity: &[f64], target: f64) {
        let one = scan_curve(
            timestamps,
            equity,
            target,
            TimestampOrder::Trusted,
            &mut Vec::new(),
        );
        let streamed = streamed(timestamps, equity, target);
        match (one, streamed) {
            (Ok(one), Ok(mut streamed)) => {
                let largest = equity
                    .windows(2)
                    .fold(0.0_f64, |a, w| a.max((w[1] / w[0] - 1.0).abs()));
                let count = ((equity.len().max(2) - 2) as f64 * 0.05).floor() + 1.0;
                let cvar = |pass: &CurvePass| pass.tails.conditional_value_at_risk;
                assert!(near_metric(
                    cvar(&one),
                    cvar(&streamed),
                    2.0 * count * f64::EPSILON * largest
                ));
                streamed.tails.conditional_value_at_risk = cvar(&one);
                assert_eq!(format!("{one:?}"), format!("{streamed:?}"));
            }
            (Err(one), Err(streamed)) => assert_eq!(one.to_string(), streamed.to_string()),
            (one, streamed) => panic!("one pass {one:?}, streamed {streamed:?}"),
        }
    }

    /// Random walks with flat stretches, from a point to past the tails' sampling
    /// threshold (where the brackets come from the stored returns' sample).
    #[test]
    fn a_curve_scanned_while_written_gives_the_one_pass_bits() {
        let mut rng = StdRng::seed_from_u64(7);
        let lengths = [
            1,
            2,
            BLOCK,
            BLOCK + 1,
            3 * BLOCK + 5,
            40_000,
            140_000,
            300_001,
        ];
        for (case, &n) in lengths.iter().enumerate() {
            let mut equity = vec![1e6];
            let mut flat = false;
            for _ in 1..n {
                let last = equity[equity.len() - 1];
                flat ^= rng.gen_bool(0.05);
                equity.push(if flat {
                    last
                } else {
                    last * (1.0 + rng.gen_range(-0.02..0.021))
                });
            }
            let timestamps: Vec<i64> = (0..n as i64).map(|i| 1_000 + i * 60).collect();
            assert_streamed_as_one_pass(&timestamps, &equity, 0.001 * case as f64);
        }
        // Calm at first, then three times as volatile: the early brackets, placed
        // from the calm start, miss the tails of the whole; the returns are counted
        // again from the stored ones.
        let n = 300_000;
        let mut equity = vec![1e6];
        for i in 1..n {
            let scale = if i < n / 4 { 0.01 } else { 0.03 };
            equity.push(equity[i - 1] * (1.0 + rng.gen_range(-scale..scale)));
        }
        let timestamps: Vec<i64> = (0..n as i64).collect();
        assert_streamed_as_one_pass(&timestamps, &equity, 0.0);
    }

    /// The cases where the streamed pass cannot finish alone: a bad point (the same
    /// error, naming the same row), a valid curve whose ratios overflow, copies that
    /// overflow the tails' buffer, and no point at all.
    #[test]
    fn bad_and_unusual_curves_streamed_give_the_one_pass_answer() {
        let n = 150_000;
        let timestamps: Vec<i64> = (0..n as i64).collect();
        let walk: Vec<f64> = (0..n).map(|i| 100.0 + (i % 13) as f64).collect();
        for (row, bad) in [
            (0, f64::NAN),
            (4_097, -1.0),
            (90_000, f64::INFINITY),
            (n - 1, 0.0),
        ] {
            let mut equity = walk.clone();
            equity[row] = bad;
            assert!(streamed(&timestamps, &equity, 0.0).is_err());
            assert_streamed_as_one_pass(&timestamps, &equity, 0.0);
        }
        let mut overflowing = walk.clone();
        overflowing[70_000] = 1e300;
        assert!(streamed(&timestamps, &overflowing, 0.0).is_ok());
        assert_streamed_as_one_pass(&timestamps, &overflowing, 0.0);
        // half the returns one value at the 5th percentile: the copies overflow
        let alternating: Vec<f64> = (0..n)
            .map(|i| if i % 2 == 0 { 100.0 } else { 99.0 })
            .collect();
        assert_streamed_as_one_pass(&timestamps, &alternating, 0.0);
        assert!(streamed(&[], &[], 0.0).is_err());
    }
}
