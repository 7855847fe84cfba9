//! Drawdowns of an equity curve: the underwater series and the maximum drawdown with
//! its dates.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The maximum drawdown episode of an equity curve: from the peak before the deepest
/// fall, through the trough, to the recovery (the first point back at the peak's
/// equity) if there is one.
///
/// Indices point into the equity curve (index 0 is the starting capital); timestamps
/// are the curve's (Unix seconds).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DrawdownPeriod {
    /// The drawdown at the trough, `trough / peak - 1` (< 0).
    pub depth: f64,
    pub peak_index: usize,
    pub peak_timestamp: i64,
    pub trough_index: usize,
    pub trough_timestamp: i64,
    /// First point at or above the peak's equity after the trough, if any.
    pub recovery_index: Option<usize>,
    pub recovery_timestamp: Option<i64>,
    /// Periods from the peak to the recovery, or to the last point when not recovered.
    pub duration_periods: usize,
    /// Seconds from the peak to the recovery, or to the last point when not recovered.
    pub duration_seconds: i64,
}

impl DrawdownPeriod {
    /// True when the equity came back to the peak.
    pub fn is_recovered(&self) -> bool {
        self.recovery_index.is_some()
    }
}

/// Checks an equity curve: equal lengths, at least one point, equity finite and
/// positive, timestamps non-decreasing (the starting capital may share the first bar's
/// timestamp).
pub(crate) fn check_curve(timestamps: &[i64], equity: &[f64]) -> Result<()> {
    check_shape(timestamps, equity)?;
    check_equity(equity)?;
    let sorted = timestamps
        .windows(2)
        .fold(true, |sorted, w| sorted & (w[1] >= w[0]));
    if sorted {
        return Ok(());
    }
    if let Some(row) = timestamps.windows(2).position(|w| w[1] < w[0]) {
        return Err(Error::UnsortedTimestamps {
            row: row + 1,
            timestamp: timestamps[row + 1],
            previous: timestamps[row],
        });
    }
    Ok(())
}

/// The first checks of [`check_curve`]: equal lengths and at least one point.
pub(crate) fn check_shape(timestamps: &[i64], equity: &[f64]) -> Result<()> {
    if equity.len() != timestamps.len() {
        return Err(Error::LengthMismatch {
            field: "equity",
            expected: timestamps.len(),
            actual: equity.len(),
        });
    }
    if equity.is_empty() {
        return Err(Error::NotEnoughData {
            what: "an equity curve",
            required: 1,
            actual: 0,
        });
    }
    Ok(())
}

/// Checks that every equity value is finite and positive.
pub(crate) fn check_equity(equity: &[f64]) -> Result<()> {
    // Fast path: a branch-free scan the compiler vectorizes; the slow loop below runs
    // only to name the first bad row.
    let all_valid = equity
        .iter()
        .fold(true, |valid, &v| valid & (v > 0.0) & (v < f64::INFINITY));
    if all_valid {
        return Ok(());
    }
    for (row, &value) in equity.iter().enumerate() {
        if !value.is_finite() {
            return Err(Error::NonFinite {
                row,
                field: "equity",
                value,
            });
        }
        if value <= 0.0 {
            return Err(Error::NonPositiveEquity { row, value });
        }
    }
    Ok(())
}

/// The underwater curve: `equity_t / max_{s<=t} equity_s - 1` for every point, each a
/// fraction <= 0 (0 at new highs). Same length as `equity`.
///
/// ```
/// let underwater = quantcore::metrics::drawdown_series(&[100.0, 120.0, 90.0, 120.0])?;
/// assert_eq!(underwater, vec![0.0, 0.0, -0.25, 0.0]);
/// # Ok::<(), quantcore::Error>(())
/// ```
///
/// # Errors
/// [`Error::NonFinite`] or [`Error::NonPositiveEquity`] naming the first bad point.
pub fn drawdown_series(equity: &[f64]) -> Result<Vec<f64>> {
    check_equity(equity)?;
    let mut peak = f64::NEG_INFINITY;
    Ok(equity
        .iter()
        .map(|&e| {
            peak = peak.max(e);
            e / peak - 1.0
        })
        .collect())
}

/// One pass over a checked curve: the maximum drawdown (<= 0) and its episode (None
/// when the equity never fell below a previous peak).
///
/// The reference for the tests of the fused pass in `curve`, which
/// [`Metrics::compute`](super::Metrics::compute) uses instead.
#[cfg(test)]
pub(crate) fn max_drawdown_period(
    timestamps: &[i64],
    equity: &[f64],
) -> (f64, Option<DrawdownPeriod>) {
    let (mut peak, mut peak_index) = (equity[0], 0);
    let (mut worst, mut worst_peak, mut worst_trough) = (0.0_f64, 0, 0);
    // Only a value below `floor` can deepen the worst drawdown: a multiplication per
    // new peak instead of a division per point. The margin of a few ulps keeps every
    // candidate; the exact division decides.
    let floor_of = |peak: f64, worst: f64| peak * (1.0 + worst) * (1.0 + 4.0 * f64::EPSILON);
    let mut floor = floor_of(peak, worst);
    for (i, &e) in equity.iter().enumerate() {
        if e >= peak {
            // `>=`: a return to the same level starts a new episode from here.
            peak = e;
            peak_index = i;
            floor = floor_of(peak, worst);
        } else if e < floor {
            let drawdown = e / peak - 1.0;
            if drawdown < worst {
                worst = drawdown;
                worst_peak = peak_index;
                worst_trough = i;
                floor = floor_of(peak, worst);
            }
        }
    }
    if worst == 0.0 {
        return (0.0, None);
    }
    let peak_equity = equity[worst_peak];
    let recovery_index = equity[worst_trough..]
        .iter()
        .position(|&e| e >= peak_equity)
        .map(|offset| worst_trough + offset);
    let end = recovery_index.unwrap_or(equity.len() - 1);
    let period = DrawdownPeriod {
        depth: worst,
        peak_index: worst_peak,
        peak_timestamp: timestamps[worst_peak],
        trough_index: worst_trough,
        trough_timestamp: timestamps[worst_trough],
        recovery_index,
        recovery_timestamp: recovery_index.map(|i| timestamps[i]),
        duration_periods: end - worst_peak,
        duration_seconds: timestamps[end] - timestamps[worst_peak],
    };
    (worst, Some(period))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    fn days(n: usize) -> Vec<i64> {
        (0..n as i64).map(|i| 1_600_000_000 + i * DAY).collect()
    }

    /// The multiplication pre-check skips points but never changes the answer: the
    /// same depth, bit for bit, and the same episode as a division at every point.
    #[test]
    fn precheck_matches_division_at_every_point() {
        use rand::{Rng, SeedableRng, rngs::StdRng};
        let mut rng = StdRng::seed_from_u64(3);
        for case in 0..200 {
            let n = rng.gen_range(2..400);
            let mut equity = vec![100.0];
            for _ in 1..n {
                let last = *equity.last().unwrap();
                // coarse steps make exact ties between drawdowns common
                let step = if case % 2 == 0 {
                    rng.gen_range(-3..=3) as f64
                } else {
                    rng.gen_range(-2.0..2.0)
                };
                equity.push((last + step).max(1.0));
            }
            let (mut peak, mut peak_index, mut worst, mut at) = (equity[0], 0, 0.0_f64, (0, 0));
            for (i, &e) in equity.iter().enumerate() {
                if e >= peak {
                    (peak, peak_index) = (e, i);
                } else if e / peak - 1.0 < worst {
                    (worst, at) = (e / peak - 1.0, (peak_index, i));
                }
            }
            let (depth, period) = max_drawdown_period(&days(n), &equity);
            assert_eq!(depth.to_bits(), worst.to_bits(), "case {case}");
            if let Some(period) = period {
                assert_eq!((period.peak_index, period.trough_index), at, "case {case}");
            } else {
                assert_eq!(worst, 0.0);
            }
        }
    }

    #[test]
    fn recovered_drawdown_by_hand() {
        // 100, 110 (peak, i=1), 99, 88 (trough, i=3: 88/110 - 1 = -20%), 105, 110
        // (recovery at i=5), 120: duration 5 - 1 = 4 periods = 4 days
        let equity = [100.0, 110.0, 99.0, 88.0, 105.0, 110.0, 120.0];
        let ts = days(equity.len());
        let (worst, period) = max_drawdown_period(&ts, &equity);
        let period = period.unwrap();
        assert!((worst + 0.2).abs() < 1e-12);
        assert_eq!(period.depth, worst);
        assert_eq!((period.peak_index, period.trough_index), (1, 3));
        assert_eq!(period.recovery_index, Some(5));
        assert_eq!(period.recovery_timestamp, Some(ts[5]));
        assert_eq!(period.peak_timestamp, ts[1]);
        assert_eq!(period.trough_timestamp, ts[3]);
        assert_eq!(period.duration_periods, 4);
        assert_eq!(period.duration_seconds, 4 * DAY);
        assert!(period.is_recovered());
    }

    #[test]
    fn unrecovered_drawdown_runs_to_the_end() {
        // the starting capital is the first peak: 100, 90, 80 (trough -20%), 95
        let equity = [100.0, 90.0, 80.0, 95.0];
        let ts = days(4);
        let (worst, period) = max_drawdown_period(&ts, &equity);
        let period = period.unwrap();
        assert!((worst + 0.2).abs() < 1e-12);
        assert_eq!((period.peak_index, period.trough_index), (0, 2));
        assert_eq!(period.recovery_index, None);
        assert_eq!(period.duration_periods, 3);
        assert_eq!(period.duration_seconds, 3 * DAY);
    }

    #[test]
    fn deepest_not_longest_episode_is_reported() {
        // episode A: 100 -> 95 (-5%) lasting long; episode B: 120 -> 90 (-25%)
        let equity = [100.0, 95.0, 96.0, 97.0, 98.0, 99.0, 120.0, 90.0, 121.0];
        let (worst, period) = max_drawdown_period(&days(9), &equity);
        let period = period.unwrap();
        assert!((worst + 0.25).abs() < 1e-12);
        assert_eq!((period.peak_index, period.trough_index), (6, 7));
        assert_eq!(period.recovery_index, Some(8));
    }

    #[test]
    fn a_return_to_the_peak_starts_a_new_episode() {
        // 100, 90, 100 (back at the peak), 80: the episode starts at i=2
        let (_, period) = max_drawdown_period(&days(4), &[100.0, 90.0, 100.0, 80.0]);
        assert_eq!(period.unwrap().peak_index, 2);
    }

    #[test]
    fn rising_equity_has_no_drawdown() {
        let (worst, period) = max_drawdown_period(&days(3), &[100.0, 100.0, 101.0]);
        assert_eq!(worst, 0.0);
        assert!(period.is_none());
    }

    #[test]
    fn curve_checks_name_the_row() {
        let ts = days(3);
        assert!(matches!(
            check_curve(&ts, &[1.0, 2.0]),
            Err(Error::LengthMismatch {
                field: "equity",
                expected: 3,
                actual: 2
            })
        ));
        assert!(matches!(
            check_curve(&[], &[]),
            Err(Error::NotEnoughData { .. })
        ));
        assert!(matches!(
            check_curve(&ts, &[1.0, f64::NAN, 2.0]),
            Err(Error::NonFinite {
                row: 1,
                field: "equity",
                ..
            })
        ));
        assert!(matches!(
            check_curve(&ts, &[1.0, 2.0, -2.0]),
            Err(Error::NonPositiveEquity { row: 2, .. })
        ));
        assert!(matches!(
            check_curve(&[5, 5, 4], &[1.0, 2.0, 3.0]),
            Err(Error::UnsortedTimestamps {
                row: 2,
                timestamp: 4,
                previous: 5
            })
        ));
        // equal timestamps are allowed: the starting capital may share the first bar's
        assert!(check_curve(&[5, 5, 6], &[1.0, 2.0, 3.0]).is_ok());
        assert!(matches!(
            drawdown_series(&[1.0, 0.0]),
            Err(Error::NonPositiveEquity { row: 1, .. })
        ));
    }
}
