//! The one pass over an equity curve that [`Metrics::compute`](super::Metrics::compute)
//! makes: it checks the curve, writes the returns blocked by sign and follows the
//! maximum drawdown episode, recovery included.
//!
//! Separate scans used to do this (the checks, the returns, the drawdown, then a search
//! for its recovery); on a million points they read the 16 MB of the curve three times
//! and took about half the time of `compute`. Every number here comes from the same
//! operations in the same order as in those scans, so the results are theirs bit for
//! bit (the tests compare them with the scans, kept for that); only the error path
//! scans again, to name the first bad row exactly as [`check_curve`] does.
//!
//! # How the pass is laid out
//! The curve is read in blocks of [`BLOCK`] points. For each block, a loop the compiler
//! vectorizes (packed divisions and comparisons) writes the block's returns to a small
//! buffer and takes the extremes of each run of [`RUN`] points; then the returns are
//! placed by sign, and the drawdown's state machine runs only on the runs whose
//! highest point reaches the running peak or whose lowest falls below the floor that
//! could deepen the worst drawdown (on any other run it would change nothing). Points
//! after the last whole block go one by one.
//!
//! The block loop checks the equity through the returns, which it computes anyway:
//! the sum of the returns is finite and none is at or below -1 only if every point is
//! finite and positive (given the first one, by induction: a finite `e_t / e_{t-1}`
//! above 0 needs a finite positive `e_t`). The converse can fail (a ratio that
//! overflows on a valid curve), so the flags are only a fast path: when they do not
//! clear the curve, [`check_curve`] decides, and a curve it accepts goes on with the
//! numbers already computed, which are those of the separate scans either way.

use super::drawdown::{DrawdownPeriod, check_curve, check_shape};
use crate::error::Result;

/// Points per block: the block's returns (2 KB) stay in the L1 cache between the
/// vectorized loop and the placing.
const BLOCK: usize = 256;

/// Points per run, the unit the drawdown's state machine skips.
const RUN: usize = 8;

/// Runs per block.
const RUNS: usize = BLOCK / RUN;

/// What the pass over the curve found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct CurvePass {
    /// Where the zero returns start (the negative ones are before).
    pub(crate) zero_start: usize,
    /// Where the positive returns start (the zeros are before).
    pub(crate) positive_start: usize,
    /// `min_t(E_t / max_{s<=t} E_s - 1)` <= 0.
    pub(crate) max_drawdown: f64,
    /// Its episode, `None` when the equity never fell below a previous peak.
    pub(crate) period: Option<DrawdownPeriod>,
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

/// Where the returns go: negatives from the front, positives from the back.
struct Blocks<'a> {
    out: &'a mut [f64],
    negative_end: usize,
    positive_start: usize,
}

impl Blocks<'_> {
    /// Writes `r` at both ends and keeps the one its sign picks, without a branch (the
    /// sign is a coin flip per period). `negative_end < positive_start` until the last
    /// return is placed, whatever the values (a NaN moves neither end).
    #[inline(always)]
    fn place(&mut self, r: f64) {
        self.out[self.negative_end] = r;
        self.out[self.positive_start - 1] = r;
        self.negative_end += usize::from(r < 0.0);
        self.positive_start -= usize::from(r > 0.0);
    }
}

/// One block's returns and what the checks and the drawdown need from it.
struct Block {
    returns: [f64; BLOCK],
    /// Highest and lowest point of each run.
    highs: [f64; RUNS],
    lows: [f64; RUNS],
    /// Per lane, over every block so far: the sum and the minimum of the returns.
    sums: [f64; RUN],
    lowest_returns: [f64; RUN],
}

impl Block {
    fn new() -> Block {
        Block {
            returns: [0.0; BLOCK],
            highs: [0.0; RUNS],
            lows: [0.0; RUNS],
            sums: [0.0; RUN],
            lowest_returns: [f64::INFINITY; RUN],
        }
    }

    /// The returns of `points` against `previous` (each [`BLOCK`] long), the runs'
    /// extremes and the checks' sums and minima. Straight-line code over fixed-size
    /// arrays, so the compiler vectorizes it.
    #[inline(always)]
    fn fill(&mut self, points: &[f64], previous: &[f64]) {
        // The accumulators in locals: through `self` they would be reloaded after
        // every store of a return.
        let (mut sums, mut lowest_returns) = (self.sums, self.lowest_returns);
        let (points, _) = points.as_chunks::<RUN>();
        let (previous, _) = previous.as_chunks::<RUN>();
        let (returns, _) = self.returns.as_chunks_mut::<RUN>();
        let extremes = self.highs.iter_mut().zip(self.lows.iter_mut());
        let runs = points.iter().zip(previous).zip(returns).zip(extremes);
        for (((e, p), r), (run_high, run_low)) in runs {
            let run: [f64; RUN] = std::array::from_fn(|k| e[k] / p[k] - 1.0);
            *r = run;
            for k in 0..RUN {
                sums[k] += run[k];
                let lowest = lowest_returns[k];
                lowest_returns[k] = if run[k] < lowest { run[k] } else { lowest };
            }
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
        (self.sums, self.lowest_returns) = (sums, lowest_returns);
    }

    /// True only if every point of the blocks so far is finite and positive, given
    /// the first point of the curve (see the module docs); may be false for a valid
    /// curve.
    fn all_valid(&self) -> bool {
        let sum: f64 = self.sums.iter().sum();
        let lowest = self
            .lowest_returns
            .iter()
            .fold(f64::INFINITY, |a, &b| a.min(b));
        sum.is_finite() & (lowest > -1.0)
    }
}

/// True when every `times[k] >= previous[k]`.
#[inline(always)]
fn non_decreasing(times: &[i64], previous: &[i64]) -> bool {
    times
        .iter()
        .zip(previous)
        .fold(true, |sorted, (t, p)| sorted & (t >= p))
}

/// True for an equity value that is finite and positive (false for NaN).
#[inline(always)]
fn valid_equity(value: f64) -> bool {
    (value > 0.0) & (value < f64::INFINITY)
}

/// Checks the curve as [`check_curve`] does, fills `out` with the returns
/// `equity[t] / equity[t - 1] - 1` blocked by sign (negatives, zeros, positives; the
/// layout of `returns_by_sign`) and finds the maximum drawdown and its episode (as
/// `max_drawdown_period`), in one pass.
///
/// `out` may hold anything on entry: it is resized to the number of returns (only
/// growing it writes zeros) and every element is then written.
///
/// # Errors
/// Those of [`check_curve`], for the same first bad row.
pub(crate) fn scan_curve(
    timestamps: &[i64],
    equity: &[f64],
    out: &mut Vec<f64>,
) -> Result<CurvePass> {
    check_shape(timestamps, equity)?;
    let n = equity.len() - 1;
    out.resize(n, 0.0);
    let mut blocks = Blocks {
        out: &mut out[..],
        negative_end: 0,
        positive_start: n,
    };
    let mut drawdown = Drawdown::start(equity[0]);
    let mut valid = valid_equity(equity[0]);
    let mut sorted = true;

    // Point i + 1 against point i.
    let (before, after) = (&equity[..n], &equity[1..]);
    let (times_before, times_after) = (&timestamps[..n], &timestamps[1..]);
    let whole = n - n % BLOCK;
    let mut block = Block::new();
    for start in (0..whole).step_by(BLOCK) {
        let points = &after[start..start + BLOCK];
        block.fill(points, &before[start..start + BLOCK]);
        sorted &= non_decreasing(
            &times_after[start..start + BLOCK],
            &times_before[start..start + BLOCK],
        );
        for &r in &block.returns {
            blocks.place(r);
        }
        let (runs, _) = points.as_chunks::<RUN>();
        for ((run, &high), (&low, offset)) in runs
            .iter()
            .zip(&block.highs)
            .zip(block.lows.iter().zip((start + 1..).step_by(RUN)))
        {
            if drawdown.may_change(high, low) {
                for (k, &e) in run.iter().enumerate() {
                    drawdown.see(offset + k, e);
                }
            }
        }
    }
    valid &= block.all_valid();
    for i in whole..n {
        let e = after[i];
        valid &= valid_equity(e);
        sorted &= times_after[i] >= times_before[i];
        blocks.place(e / before[i] - 1.0);
        drawdown.see(i + 1, e);
    }

    if !(valid & sorted) {
        // Either a bad point, named as the separate check names it, or a valid curve
        // the fast checks could not clear (see the module docs): then go on.
        check_curve(timestamps, equity)?;
    }
    let (zero_start, positive_start) = (blocks.negative_end, blocks.positive_start);
    out[zero_start..positive_start].fill(0.0);
    let (max_drawdown, period) = drawdown.finish(timestamps);
    Ok(CurvePass {
        zero_start,
        positive_start,
        max_drawdown,
        period,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::drawdown::max_drawdown_period;
    use crate::metrics::returns::returns_by_sign;
    use rand::{Rng, SeedableRng, rngs::StdRng};

    fn bits(values: &[f64]) -> Vec<u64> {
        values.iter().map(|v| v.to_bits()).collect()
    }

    /// The separate scans, each bit for bit: the same returns in the same places (the
    /// selections of the percentiles and the CVaR's sum depend on the layout), the
    /// same cuts, depth and episode.
    fn assert_same_as_separate_scans(timestamps: &[i64], equity: &[f64], out: &mut Vec<f64>) {
        let pass = scan_curve(timestamps, equity, out).unwrap();
        let mut expected = Vec::new();
        let (zero_start, positive_start) = returns_by_sign(equity, &mut expected);
        let (depth, period) = max_drawdown_period(timestamps, equity);
        assert_eq!(bits(out), bits(&expected));
        assert_eq!(
            (pass.zero_start, pass.positive_start),
            (zero_start, positive_start)
        );
        assert_eq!(pass.max_drawdown.to_bits(), depth.to_bits());
        assert_eq!(pass.period, period);
        if let Some(period) = pass.period {
            assert_eq!(period.depth.to_bits(), depth.to_bits());
        }
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
            assert_same_as_separate_scans(&timestamps, &equity, &mut out);
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
            assert_same_as_separate_scans(&timestamps, &equity, &mut out);
        }
    }

    #[test]
    fn recovery_is_the_first_point_back_at_the_deepest_episodes_peak() {
        let mut out = vec![f64::NAN; 50];
        // 100, 110 (peak), 88 (trough, -20%), 105, 110 (recovery at 4), 120, 96 (-20%
        // again from 120, not deeper: the first episode stays), 97
        let equity = [100.0, 110.0, 88.0, 105.0, 110.0, 120.0, 96.0, 97.0];
        let timestamps: Vec<i64> = (0..8).map(|i| i * 10).collect();
        let pass = scan_curve(&timestamps, &equity, &mut out).unwrap();
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
        assert_same_as_separate_scans(&timestamps, &equity, &mut out);
        // a deeper fall after the recovery replaces it, unrecovered: runs to the end
        let equity = [100.0, 110.0, 88.0, 110.0, 120.0, 60.0, 119.0];
        let pass = scan_curve(&timestamps[..7], &equity, &mut out).unwrap();
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
        assert_same_as_separate_scans(&timestamps[..7], &equity, &mut out);
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
                let fused = scan_curve(&timestamps, &equity, &mut out).unwrap_err();
                let separate = check_curve(&timestamps, &equity).unwrap_err();
                assert_eq!(fused.to_string(), separate.to_string());
            }
            if row > 0 {
                let mut unsorted = timestamps.clone();
                unsorted[row] = -1;
                let fused = scan_curve(&unsorted, &vec![1.0; n], &mut out).unwrap_err();
                let separate = check_curve(&unsorted, &vec![1.0; n]).unwrap_err();
                assert_eq!(fused.to_string(), separate.to_string());
                assert!(fused.to_string().contains(&format!("row {row}")), "{fused}");
            }
        }
        assert!(scan_curve(&[], &[], &mut out).is_err());
        assert!(scan_curve(&[1], &[1.0, 2.0], &mut out).is_err());
    }
}
