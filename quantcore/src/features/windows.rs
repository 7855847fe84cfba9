//! Sliding input windows of per-bar features for sequence models (the LSTM).
//!
//! A sequence model reads, for each bar, a short vector of *stationary* features
//! computed from that bar and the one before it, and looks at the last `window` such
//! vectors. This module owns both steps:
//!
//! 1. [`bar_features`] turns a [`BarSeries`] of `n` bars into an `(n - 1) x f` matrix:
//!    row `r` holds the features of bar `r + 1` (bar 0 has no previous bar, so no row).
//! 2. [`sliding_windows`] cuts that matrix into overlapping windows of `window`
//!    consecutive rows, copied into one contiguous `(n_windows, window, f)` array, the
//!    layout a batch-first recurrent network consumes.
//!
//! # Features
//! With `o, h, l, c, v` the bar's open, high, low, close and volume, and `c'`, `v'` the
//! previous bar's close and volume ([`BarFeature`]):
//!
//! | feature | formula | meaning |
//! |---|---|---|
//! | [`LogReturn`](BarFeature::LogReturn) | `ln(c / c')` | close-to-close log return |
//! | [`Range`](BarFeature::Range) | `(h - l) / c` | intrabar range relative to the close |
//! | [`LogVolumeChange`](BarFeature::LogVolumeChange) | `ln((v + 1) / (v' + 1))` | log volume change; the `+ 1` keeps zero-volume bars finite |
//! | [`Body`](BarFeature::Body) | `ln(c / o)` | open-to-close log return of the bar |
//! | [`Gap`](BarFeature::Gap) | `ln(o / c')` | overnight gap: open against the previous close |
//!
//! `LogReturn = Gap + Body` exactly, so the three carry two degrees of freedom; they
//! are kept apart because a network learns more easily from the split.
//!
//! Every value is finite for a valid [`BarSeries`] (positive finite prices, finite
//! non-negative volume), so no NaN ever reaches a model from here.

use ndarray::{Array2, Array3, ArrayView2, Axis};
use serde::{Deserialize, Serialize};

use crate::data::BarSeries;
use crate::error::{Error, Result};

/// One per-bar input feature; see the [module docs](self) for the formulas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BarFeature {
    /// `ln(close / previous close)`.
    LogReturn,
    /// `(high - low) / close`.
    Range,
    /// `ln((volume + 1) / (previous volume + 1))`.
    LogVolumeChange,
    /// `ln(close / open)`.
    Body,
    /// `ln(open / previous close)`.
    Gap,
}

impl BarFeature {
    /// All five features in their canonical order (the LSTM's default inputs).
    pub const ALL: [BarFeature; 5] = [
        BarFeature::LogReturn,
        BarFeature::Range,
        BarFeature::LogVolumeChange,
        BarFeature::Body,
        BarFeature::Gap,
    ];

    /// The feature's value at bar `bar`, or `None` for bar 0 (no previous bar) and
    /// past the end of the series.
    ///
    /// ```
    /// use quantcore::BarSeries;
    /// use quantcore::features::windows::BarFeature;
    /// let series = BarSeries::new(vec![0, 60], vec![10.0, 11.0], vec![10.0, 12.0],
    ///     vec![10.0, 11.0], vec![10.0, 12.0], vec![5.0, 5.0])?;
    /// assert_eq!(BarFeature::Body.value_at(&series, 1), Some((12.0f64 / 11.0).ln()));
    /// assert_eq!(BarFeature::Body.value_at(&series, 0), None);
    /// # Ok::<(), quantcore::Error>(())
    /// ```
    #[inline]
    pub fn value_at(self, series: &BarSeries, bar: usize) -> Option<f64> {
        (bar >= 1 && bar < series.len()).then(|| self.value(series, bar))
    }

    /// The feature's value at bar `row`, which must be in `1..series.len()`.
    #[inline]
    pub(crate) fn value(self, series: &BarSeries, row: usize) -> f64 {
        let close = series.close();
        match self {
            BarFeature::LogReturn => (close[row] / close[row - 1]).ln(),
            BarFeature::Range => (series.high()[row] - series.low()[row]) / close[row],
            BarFeature::LogVolumeChange => {
                let volume = series.volume();
                ((volume[row] + 1.0) / (volume[row - 1] + 1.0)).ln()
            }
            BarFeature::Body => (close[row] / series.open()[row]).ln(),
            BarFeature::Gap => (series.open()[row] / close[row - 1]).ln(),
        }
    }
}

/// Per-bar features of `series`: an `(n - 1) x features.len()` matrix whose row `r`
/// holds the features of bar `r + 1`, columns in the order of `features`.
///
/// ```
/// use quantcore::BarSeries;
/// use quantcore::features::windows::{bar_features, BarFeature};
/// let series = BarSeries::new(
///     vec![0, 60, 120],
///     vec![10.0, 10.0, 11.0],
///     vec![10.0, 11.0, 11.0],
///     vec![10.0, 9.0, 11.0],
///     vec![10.0, 10.0, 11.0],
///     vec![0.0, 1.0, 3.0],
/// )?;
/// let x = bar_features(&series, &[BarFeature::LogReturn, BarFeature::Range])?;
/// assert_eq!(x.dim(), (2, 2));
/// assert_eq!(x[[0, 0]], 0.0); // 10 -> 10
/// assert!((x[[0, 1]] - 0.2).abs() < 1e-15); // (11 - 9) / 10
/// assert!((x[[1, 0]] - 1.1f64.ln()).abs() < 1e-15); // 10 -> 11
/// # Ok::<(), quantcore::Error>(())
/// ```
///
/// # Errors
/// [`Error::InvalidParameter`] when `features` is empty;
/// [`Error::NotEnoughData`] when the series has fewer than 2 bars.
pub fn bar_features(series: &BarSeries, features: &[BarFeature]) -> Result<Array2<f64>> {
    if features.is_empty() {
        return Err(Error::invalid_parameter(
            "features",
            "[]",
            "must name at least one feature",
        ));
    }
    if series.len() < 2 {
        return Err(Error::NotEnoughData {
            what: "bar features (each needs the previous bar)",
            required: 2,
            actual: series.len(),
        });
    }
    let rows = series.len() - 1;
    let mut out = Array2::zeros((rows, features.len()));
    for (r, mut row) in out.axis_iter_mut(Axis(0)).enumerate() {
        for (slot, feature) in row.iter_mut().zip(features) {
            *slot = feature.value(series, r + 1);
        }
    }
    Ok(out)
}

/// Overlapping windows of `window` consecutive rows of `features`, copied into one
/// contiguous `(n_rows - window + 1, window, n_features)` array; window `k` holds rows
/// `k .. k + window`.
///
/// ```
/// use ndarray::array;
/// use quantcore::features::windows::sliding_windows;
/// let x = array![[1.0, 10.0], [2.0, 20.0], [3.0, 30.0]];
/// let w = sliding_windows(x.view(), 2)?;
/// assert_eq!(w.dim(), (2, 2, 2));
/// assert_eq!(w[[1, 0, 1]], 20.0); // window 1 starts at row 1
/// # Ok::<(), quantcore::Error>(())
/// ```
///
/// # Errors
/// [`Error::InvalidParameter`] when `window` is 0; [`Error::NotEnoughData`] when
/// `features` has fewer than `window` rows.
pub fn sliding_windows(features: ArrayView2<'_, f64>, window: usize) -> Result<Array3<f64>> {
    if window == 0 {
        return Err(Error::invalid_parameter("window", 0, "must be at least 1"));
    }
    let (rows, width) = features.dim();
    if rows < window {
        return Err(Error::NotEnoughData {
            what: "one input window (feature rows)",
            required: window,
            actual: rows,
        });
    }
    let count = rows - window + 1;
    let mut out = Array3::zeros((count, window, width));
    for (k, mut slot) in out.axis_iter_mut(Axis(0)).enumerate() {
        slot.assign(&features.slice(ndarray::s![k..k + window, ..]));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn series() -> BarSeries {
        BarSeries::new(
            vec![0, 1, 2, 3],
            vec![100.0, 102.0, 99.0, 101.0],
            vec![101.0, 105.0, 104.0, 103.0],
            vec![99.0, 101.0, 98.0, 100.0],
            vec![100.0, 104.0, 103.0, 101.0],
            vec![0.0, 9.0, 4.0, 4.0],
        )
        .unwrap()
    }

    #[test]
    fn each_feature_matches_its_formula() {
        let x = bar_features(&series(), &BarFeature::ALL).unwrap();
        assert_eq!(x.dim(), (3, 5));
        // Bar 1: o=102 h=105 l=101 c=104 v=9, previous c=100 v=0.
        let expected_bar1 = [
            (1.04f64).ln(),
            4.0 / 104.0,
            (10.0f64).ln(),
            (104.0f64 / 102.0).ln(),
            (1.02f64).ln(),
        ];
        for (j, e) in expected_bar1.iter().enumerate() {
            assert!((x[[0, j]] - e).abs() < 1e-15, "feature {j}");
        }
        // Bar 3: o=101 h=103 l=100 c=101 v=4, previous c=103 v=4.
        assert!((x[[2, 0]] - (101.0f64 / 103.0).ln()).abs() < 1e-15);
        assert!((x[[2, 1]] - 3.0 / 101.0).abs() < 1e-15);
        assert_eq!(x[[2, 2]], 0.0);
        assert_eq!(x[[2, 3]], 0.0);
        // Log return is gap plus body.
        for r in 0..3 {
            assert!((x[[r, 0]] - x[[r, 3]] - x[[r, 4]]).abs() < 1e-15);
        }
    }

    #[test]
    fn column_order_follows_the_request() {
        let s = series();
        let all = bar_features(&s, &BarFeature::ALL).unwrap();
        let two = bar_features(&s, &[BarFeature::Gap, BarFeature::LogReturn]).unwrap();
        assert_eq!(two.column(0), all.column(4));
        assert_eq!(two.column(1), all.column(0));
    }

    #[test]
    fn too_short_series_and_empty_feature_list_are_rejected() {
        let one = series().slice(0..1);
        assert_eq!(
            bar_features(&one, &BarFeature::ALL).unwrap_err(),
            Error::NotEnoughData {
                what: "bar features (each needs the previous bar)",
                required: 2,
                actual: 1
            }
        );
        assert!(matches!(
            bar_features(&series(), &[]).unwrap_err(),
            Error::InvalidParameter {
                name: "features",
                ..
            }
        ));
    }

    #[test]
    fn windows_copy_consecutive_rows() {
        let x = array![[0.0, 0.5], [1.0, 1.5], [2.0, 2.5], [3.0, 3.5]];
        let w = sliding_windows(x.view(), 3).unwrap();
        assert_eq!(w.dim(), (2, 3, 2));
        for k in 0..2 {
            for t in 0..3 {
                assert_eq!(w[[k, t, 0]], (k + t) as f64);
                assert_eq!(w[[k, t, 1]], (k + t) as f64 + 0.5);
            }
        }
        assert!(w.is_standard_layout());
        let whole = sliding_windows(x.view(), 4).unwrap();
        assert_eq!(whole.dim(), (1, 4, 2));
    }

    #[test]
    fn bad_windows_are_rejected() {
        let x = array![[0.0], [1.0]];
        assert!(matches!(
            sliding_windows(x.view(), 0).unwrap_err(),
            Error::InvalidParameter { name: "window", .. }
        ));
        assert_eq!(
            sliding_windows(x.view(), 3).unwrap_err(),
            Error::NotEnoughData {
                what: "one input window (feature rows)",
                required: 3,
                actual: 2
            }
        );
    }
}
