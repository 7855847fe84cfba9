//! The one pass over an equity curve that [`Metrics::compute`](super::Metrics::compute)
//! makes: it checks the curve, writes the returns blocked by sign and follows the
//! maximum drawdown episode, recovery included.
//!
//! Three separate scans used to do this (the checks, the returns, the drawdown and then
//! a search for its recovery); on a million points they read the 16 MB of the curve
//! three times and cost more than the statistics. Every number here is computed by the
//! same operations in the same order as those scans, so the results are bit for bit
//! theirs (the tests compare them); only the error path scans again, to name the first
//! bad row exactly as [`check_curve`] does.
//!
//! The returns are divided `LANES` at a time from two overlapping windows of the
//! equity, which the compiler turns into packed divisions; the division is the
//! costliest step of the loop.

use super::drawdown::{DrawdownPeriod, check_curve, check_shape};
use crate::error::Result;

/// Points handled together: their returns are divided as one packed operation.
const LANES: usize = 4;

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

    // Point i + 1 against point i, LANES points at a time, then the rest one by one.
    let (before, after) = (&equity[..n], &equity[1..]);
    let (times_before, times_after) = (&timestamps[..n], &timestamps[1..]);
    let chunks = after
        .chunks_exact(LANES)
        .zip(before.chunks_exact(LANES))
        .zip(times_after.chunks_exact(LANES).zip(times_before.chunks_exact(LANES)));
    let mut point = 1;
    for ((e, previous), (t, t_previous)) in chunks {
        let returns: [f64; LANES] = std::array::from_fn(|k| e[k] / previous[k] - 1.0);
        for k in 0..LANES {
            valid &= valid_equity(e[k]);
            sorted &= t[k] >= t_previous[k];
        }
        for k in 0..LANES {
            blocks.place(returns[k]);
            drawdown.see(point + k, e[k]);
        }
        point += LANES;
    }
    for i in point - 1..n {
        let e = after[i];
        valid &= valid_equity(e);
        sorted &= times_after[i] >= times_before[i];
        blocks.place(e / before[i] - 1.0);
        drawdown.see(i + 1, e);
    }

    if !(valid & sorted) {
        // Name the first bad row as the separate check does. The flags use its very
        // tests, so it fails here; were it to pass, the curve is valid and so is all
        // of the above.
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
            let n = rng.gen_range(1..200);
            let mut equity = vec![rng.gen_range(1.0..1e4)];
            let mut peak = equity[0];
            for _ in 1..n {
                let last = equity[equity.len() - 1];
                let next = match rng.gen_range(0..6) {
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
            (period.peak_index, period.trough_index, period.recovery_index),
            (1, 2, Some(4))
        );
        assert_eq!((period.duration_periods, period.duration_seconds), (3, 30));
        assert_same_as_separate_scans(&timestamps, &equity, &mut out);
        // a deeper fall after the recovery replaces it, unrecovered: runs to the end
        let equity = [100.0, 110.0, 88.0, 110.0, 120.0, 60.0, 119.0];
        let pass = scan_curve(&timestamps[..7], &equity, &mut out).unwrap();
        let period = pass.period.unwrap();
        assert_eq!(
            (period.peak_index, period.trough_index, period.recovery_index),
            (4, 5, None)
        );
        assert_eq!(period.duration_periods, 2);
        assert_same_as_separate_scans(&timestamps[..7], &equity, &mut out);
    }

    #[test]
    fn errors_name_the_first_bad_row_as_check_curve_does() {
        let mut out = Vec::new();
        let timestamps: Vec<i64> = (0..11).collect();
        // every row of a curve longer than one chunk, each kind of bad value
        for row in 0..11 {
            for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 0.0, -3.0] {
                let mut equity = vec![100.0; 11];
                equity[row] = bad;
                let fused = scan_curve(&timestamps, &equity, &mut out).unwrap_err();
                let separate = check_curve(&timestamps, &equity).unwrap_err();
                assert_eq!(fused.to_string(), separate.to_string());
            }
            let mut unsorted = timestamps.clone();
            if row > 0 {
                unsorted[row] = -1;
                let fused = scan_curve(&unsorted, &[1.0; 11], &mut out).unwrap_err();
                let separate = check_curve(&unsorted, &[1.0; 11]).unwrap_err();
                assert_eq!(fused.to_string(), separate.to_string());
                assert!(fused.to_string().contains(&format!("row {row}")), "{fused}");
            }
        }
        assert!(scan_curve(&[], &[], &mut out).is_err());
        assert!(scan_curve(&[1], &[1.0, 2.0], &mut out).is_err());
    }
}
