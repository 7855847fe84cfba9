//! Per-bar feature vectors for anomaly detection, the input of
//! [`IsolationForest`](crate::ml::iforest::IsolationForest).
//!
//! [`extract_features`] turns a [`BarSeries`] into one row per bar with these columns
//! (in this order, named by [`FEATURE_NAMES`]); `t` is the bar, `W` the window (default
//! [`DEFAULT_WINDOW`] = 20 bars):
//!
//! | column | formula | catches |
//! |---|---|---|
//! | `log_return` | `ln(close_t / close_{t-1})` | jumps in price |
//! | `range` | `(high_t - low_t) / close_t` | unusually wide bars |
//! | `gap` | `open_t / close_{t-1} - 1` | gaps between bars |
//! | `volume_z` | `(volume_t - mean) / std` over `volume_{t-W..t-1}` | volume spikes and droughts |
//! | `return_z` | `(r_t - mean) / std` over `r_{t-W..t-1}`, `r` the log return | returns large for the recent regime |
//!
//! # Conventions
//! - The z-scores compare bar `t` with the `W` bars *before* it (not including it), so a
//!   spike is not diluted by itself; `std` is the sample standard deviation (ddof 1).
//! - A z-score is clipped to `±`[`Z_SCORE_CAP`] (100). Its denominator is floored at
//!   `1e-9 * |mean|` (and the smallest positive `f64`): over a window of constant volume
//!   an equal volume gives 0 and any other volume gives `±100`, never NaN or infinity.
//!   Beyond 100 standard deviations the exact figure tells the forest nothing more,
//!   and the cap keeps one freak bar from stretching a column's range.
//! - **Warm-up rows are dropped**, not filled: `return_z` at bar `t` needs the returns of
//!   bars `t-W..t-1`, and the first return is at bar 1, so the first row is bar `W + 1`.
//!   [`AnomalyFeatures::first_bar`] gives that offset and
//!   [`AnomalyFeatures::timestamps`] the bars' timestamps. Every value is finite (a
//!   [`BarSeries`] holds only finite, positive prices and finite volumes).
//! - Rolling means and variances are updated in O(1) per bar (Welford's add-and-remove
//!   step), recomputed exactly every `W` bars so rounding cannot accumulate: O(n)
//!   overall. Written here rather than taken from the streaming indicators of
//!   [`features`](super) so this module depends only on [`BarSeries`].
//!
//! ```
//! use quantcore::BarSeries;
//! use quantcore::features::anomaly::{FEATURE_NAMES, extract_features_with_window};
//!
//! let closes = [10.0, 10.2, 10.1, 10.3, 10.2, 12.0];
//! let series = BarSeries::new(
//!     (0..6).map(|i| i * 60).collect(),
//!     closes.to_vec(),
//!     closes.iter().map(|c| c + 0.1).collect(),
//!     closes.iter().map(|c| c - 0.1).collect(),
//!     closes.to_vec(),
//!     vec![100.0, 120.0, 90.0, 110.0, 100.0, 900.0],
//! )?;
//! let features = extract_features_with_window(&series, 3)?;
//! assert_eq!(features.first_bar(), 4); // window 3: bars 0..=3 are warm-up
//! assert_eq!(features.values().dim(), (2, FEATURE_NAMES.len()));
//! // The last bar's volume is far above the three before it: capped z-score.
//! assert!(features.values()[[1, 3]] > 30.0);
//! # Ok::<(), quantcore::Error>(())
//! ```

use ndarray::Array2;

use crate::data::BarSeries;
use crate::error::{Error, Result};

/// Names of the feature columns, in column order.
pub const FEATURE_NAMES: [&str; 5] = ["log_return", "range", "gap", "volume_z", "return_z"];

/// Trailing window of the z-scores used by [`extract_features`], in bars.
pub const DEFAULT_WINDOW: usize = 20;

/// Absolute bound of the z-score columns.
pub const Z_SCORE_CAP: f64 = 100.0;

/// Floor of a z-score's denominator, relative to the window's mean.
const RELATIVE_STD_FLOOR: f64 = 1e-9;

/// Per-bar anomaly features of a series, warm-up rows dropped.
#[derive(Debug, Clone, PartialEq)]
pub struct AnomalyFeatures {
    values: Array2<f64>,
    first_bar: usize,
    timestamps: Vec<i64>,
    window: usize,
}

impl AnomalyFeatures {
    /// The features, one row per bar from [`first_bar`](Self::first_bar) on, columns as
    /// [`FEATURE_NAMES`].
    pub fn values(&self) -> &Array2<f64> {
        &self.values
    }

    /// The features, consuming `self`.
    pub fn into_values(self) -> Array2<f64> {
        self.values
    }

    /// Index in the series of the bar of row 0 (the number of warm-up bars dropped,
    /// `window + 1`).
    pub fn first_bar(&self) -> usize {
        self.first_bar
    }

    /// Index in the series of the bar of `row`.
    pub fn bar_index(&self, row: usize) -> usize {
        self.first_bar + row
    }

    /// Timestamps of the rows' bars.
    pub fn timestamps(&self) -> &[i64] {
        &self.timestamps
    }

    /// The z-scores' trailing window, in bars.
    pub fn window(&self) -> usize {
        self.window
    }

    /// Names of the columns.
    pub fn names(&self) -> &'static [&'static str] {
        &FEATURE_NAMES
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.values.nrows()
    }

    /// True when there is no row.
    pub fn is_empty(&self) -> bool {
        self.values.nrows() == 0
    }
}

/// Per-bar anomaly features with the default window of [`DEFAULT_WINDOW`] bars; see the
/// [module docs](self) for the columns and the warm-up.
///
/// # Errors
/// [`Error::NotEnoughData`] when the series has fewer than `DEFAULT_WINDOW + 2` bars.
pub fn extract_features(series: &BarSeries) -> Result<AnomalyFeatures> {
    extract_features_with_window(series, DEFAULT_WINDOW)
}

/// Per-bar anomaly features with a `window`-bar trailing window for the z-scores.
///
/// # Errors
/// [`Error::InvalidParameter`] when `window < 2` (a sample standard deviation needs two
/// values); [`Error::NotEnoughData`] when the series has fewer than `window + 2` bars,
/// so no row would remain after the warm-up.
pub fn extract_features_with_window(series: &BarSeries, window: usize) -> Result<AnomalyFeatures> {
    if window < 2 {
        return Err(Error::invalid_parameter(
            "window",
            window,
            "must be at least 2",
        ));
    }
    let first_bar = window + 1;
    let n_bars = series.len();
    if n_bars <= first_bar {
        return Err(Error::NotEnoughData {
            what: "anomaly features (window + 2 bars)",
            required: first_bar + 1,
            actual: n_bars,
        });
    }
    let (open, high, low, close, volume) = (
        series.open(),
        series.high(),
        series.low(),
        series.close(),
        series.volume(),
    );
    // returns[i] is the log return of bar i + 1.
    let returns: Vec<f64> = close
        .windows(2)
        .map(|pair| (pair[1] / pair[0]).ln())
        .collect();
    // Entry j covers the window values[j..j + window], the window before bar j + window
    // for volumes and before bar j + window + 1 for returns.
    let volume_moments = trailing_moments(volume, window);
    let return_moments = trailing_moments(&returns, window);

    let n_rows = n_bars - first_bar;
    let mut values = Array2::zeros((n_rows, FEATURE_NAMES.len()));
    for (row, mut out) in values.rows_mut().into_iter().enumerate() {
        let bar = first_bar + row;
        let log_return = returns[bar - 1];
        let (volume_mean, volume_std) = volume_moments[bar - window];
        let (return_mean, return_std) = return_moments[bar - window - 1];
        out[0] = log_return;
        out[1] = (high[bar] - low[bar]) / close[bar];
        out[2] = open[bar] / close[bar - 1] - 1.0;
        out[3] = capped_z_score(volume[bar], volume_mean, volume_std);
        out[4] = capped_z_score(log_return, return_mean, return_std);
    }
    Ok(AnomalyFeatures {
        values,
        first_bar,
        timestamps: series.timestamps()[first_bar..].to_vec(),
        window,
    })
}

/// `(value - mean) / std`, with the denominator floored and the result clipped as in the
/// [module docs](self).
fn capped_z_score(value: f64, mean: f64, std: f64) -> f64 {
    let scale = std
        .max(RELATIVE_STD_FLOOR * mean.abs())
        .max(f64::MIN_POSITIVE);
    ((value - mean) / scale).clamp(-Z_SCORE_CAP, Z_SCORE_CAP)
}

/// Mean and sample standard deviation of every window `values[j..j + window]`, at entry
/// `j`; `window >= 2`. Empty when `values` is shorter than `window`.
fn trailing_moments(values: &[f64], window: usize) -> Vec<(f64, f64)> {
    if values.len() < window {
        return Vec::new();
    }
    let size = window as f64;
    let exact = |slice: &[f64]| {
        let mean = slice.iter().sum::<f64>() / size;
        let m2: f64 = slice.iter().map(|v| (v - mean) * (v - mean)).sum();
        (mean, m2)
    };
    let std = |m2: f64| (m2.max(0.0) / (size - 1.0)).sqrt();
    let mut moments = Vec::with_capacity(values.len() - window + 1);
    let (mut mean, mut m2) = exact(&values[..window]);
    moments.push((mean, std(m2)));
    for start in 1..=values.len() - window {
        if start % window == 0 {
            (mean, m2) = exact(&values[start..start + window]);
        } else {
            let incoming = values[start + window - 1];
            let outgoing = values[start - 1];
            let new_mean = mean + (incoming - outgoing) / size;
            m2 += (incoming - outgoing) * (incoming - new_mean + outgoing - mean);
            mean = new_mean;
        }
        moments.push((mean, std(m2)));
    }
    moments
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ml::iforest::IsolationForest;
    use linfa::DatasetBase;
    use linfa::traits::Fit;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use rand_distr::StandardNormal;

    /// Bars with the given opens, closes and volumes; high and low 1% outside the body.
    fn series(open: &[f64], close: &[f64], volume: &[f64]) -> BarSeries {
        let high = open
            .iter()
            .zip(close)
            .map(|(o, c)| o.max(*c) * 1.01)
            .collect();
        let low = open
            .iter()
            .zip(close)
            .map(|(o, c)| o.min(*c) * 0.99)
            .collect();
        BarSeries::new(
            (0..open.len() as i64).map(|i| 1_000 + 60 * i).collect(),
            open.to_vec(),
            high,
            low,
            close.to_vec(),
            volume.to_vec(),
        )
        .unwrap()
    }

    /// A random walk of `n` bars: opens at the previous close, ±1% steps.
    fn random_walk(n: usize, seed: u64) -> BarSeries {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut close = Vec::with_capacity(n);
        let mut price = 100.0;
        for _ in 0..n {
            price *= (0.01 * rng.sample::<f64, _>(StandardNormal)).exp();
            close.push(price);
        }
        let mut open = vec![100.0];
        open.extend_from_slice(&close[..n - 1]);
        let volume: Vec<f64> = (0..n).map(|_| rng.gen_range(800.0..1200.0)).collect();
        series(&open, &close, &volume)
    }

    fn naive_mean_std(values: &[f64]) -> (f64, f64) {
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
        (mean, var.sqrt())
    }

    #[test]
    fn columns_match_hand_computation() {
        // Window 2, so the first row is bar 3.
        let open = [10.0, 10.0, 11.0, 12.0, 12.0];
        let close = [10.0, 11.0, 12.0, 12.5, 12.0];
        let volume = [100.0, 200.0, 300.0, 500.0, 100.0];
        let features = extract_features_with_window(&series(&open, &close, &volume), 2).unwrap();
        assert_eq!(features.first_bar(), 3);
        assert_eq!(features.len(), 2);
        assert_eq!(features.timestamps(), &[1_180, 1_240]);
        let row = features.values().row(0);
        // Bar 3: close 12.5 after 12.0.
        assert!((row[0] - (12.5f64 / 12.0).ln()).abs() < 1e-15);
        // High 12.5 * 1.01 = 12.625, low 12.0 * 0.99 = 11.88: range 0.745 / 12.5 = 0.0596.
        assert!((row[1] - 0.0596).abs() < 1e-12);
        // Open 12 on the previous close 12: no gap.
        assert_eq!(row[2], 0.0);
        // Volumes of bars 1 and 2: mean 250, sample std sqrt(2 * 50^2) = 70.7107;
        // z = (500 - 250) / 70.7107 = 3.535534.
        assert!((row[3] - 3.535_533_906).abs() < 1e-8);
        // Returns of bars 1 and 2: ln(1.1) = 0.0953102, ln(12/11) = 0.0870114;
        // mean 0.0911608, std |0.0953102 - 0.0870114| / sqrt 2 = 0.00586814;
        // r3 = ln(12.5 / 12) = 0.0408220, z = (0.0408220 - 0.0911608) / 0.00586814 = -8.5783.
        let (r1, r2, r3) = (1.1f64.ln(), (12.0f64 / 11.0).ln(), (12.5f64 / 12.0).ln());
        let expected = (r3 - (r1 + r2) / 2.0) / ((r1 - r2).abs() / 2f64.sqrt());
        assert!((row[4] - expected).abs() < 1e-9);
        assert!((expected - (-8.5783)).abs() < 1e-4, "{expected}");

        // Bar 4: open 12 on close 12.5 is a gap of -4%.
        assert!((features.values()[[1, 2]] - (-0.04)).abs() < 1e-15);
        assert_eq!(features.bar_index(1), 4);
    }

    #[test]
    fn trailing_moments_match_naive_windows() {
        let mut rng = StdRng::seed_from_u64(3);
        // Large level, small spread: the case where sums of squares would lose digits.
        let values: Vec<f64> = (0..500).map(|_| 1e6 + rng.gen_range(-5.0..5.0)).collect();
        for window in [2, 7, 20] {
            let moments = trailing_moments(&values, window);
            assert_eq!(moments.len(), values.len() - window + 1);
            for (start, &(mean, std)) in moments.iter().enumerate() {
                let (naive_mean, naive_std) = naive_mean_std(&values[start..start + window]);
                assert!((mean - naive_mean).abs() < 1e-8, "mean at {start}");
                assert!(
                    (std - naive_std).abs() < 1e-6,
                    "std at {start}, window {window}"
                );
            }
        }
        assert!(trailing_moments(&values[..3], 4).is_empty());
    }

    #[test]
    fn constant_volume_gives_zero_then_capped_spike() {
        let n = 30;
        let price = vec![50.0; n];
        let mut volume = vec![1_000.0; n];
        volume[n - 1] = 1_001.0;
        let features = extract_features_with_window(&series(&price, &price, &volume), 5).unwrap();
        let volume_z = features.values().column(3);
        assert!(volume_z.iter().take(features.len() - 1).all(|&z| z == 0.0));
        assert_eq!(volume_z[features.len() - 1], Z_SCORE_CAP);
        // Flat prices: every return and return z-score is 0, not NaN.
        assert!(features.values().column(4).iter().all(|&z| z == 0.0));
    }

    #[test]
    fn zero_volume_series_stays_finite() {
        let n = 40;
        let price = vec![5.0; n];
        let mut volume = vec![0.0; n];
        volume[30] = 10.0;
        let features = extract_features_with_window(&series(&price, &price, &volume), 4).unwrap();
        assert!(features.values().iter().all(|v| v.is_finite()));
        assert_eq!(features.values()[[30 - 5, 3]], Z_SCORE_CAP);
    }

    #[test]
    fn default_window_drops_twenty_one_bars() {
        let walk = random_walk(100, 1);
        let features = extract_features(&walk).unwrap();
        assert_eq!(features.window(), DEFAULT_WINDOW);
        assert_eq!(features.first_bar(), 21);
        assert_eq!(features.values().dim(), (79, 5));
        assert_eq!(features.timestamps(), &walk.timestamps()[21..]);
        assert_eq!(features.names(), &FEATURE_NAMES);
        assert!(features.values().iter().all(|v| v.is_finite()));
    }

    #[test]
    fn short_series_and_bad_window_are_rejected() {
        let walk = random_walk(21, 2);
        assert_eq!(
            extract_features(&walk).unwrap_err(),
            Error::NotEnoughData {
                what: "anomaly features (window + 2 bars)",
                required: 22,
                actual: 21
            }
        );
        assert!(extract_features(&random_walk(22, 2)).unwrap().len() == 1);
        for window in [0, 1] {
            assert!(matches!(
                extract_features_with_window(&walk, window),
                Err(Error::InvalidParameter { name: "window", .. })
            ));
        }
    }

    /// End to end: a crash bar (gap down 15%, ten times the volume, a wide range) in a calm
    /// random walk gets the highest anomaly score of the series.
    #[test]
    fn forest_on_features_finds_a_crash_bar() {
        let walk = random_walk(600, 4);
        let crash = 400;
        let mut open = walk.open().to_vec();
        let mut close = walk.close().to_vec();
        let mut volume = walk.volume().to_vec();
        open[crash] = close[crash - 1] * 0.85;
        close[crash] = open[crash] * 0.97;
        volume[crash] *= 10.0;
        for later in crash + 1..close.len() {
            open[later] *= 0.85 * 0.97;
            close[later] *= 0.85 * 0.97;
        }
        let features = extract_features(&series(&open, &close, &volume)).unwrap();
        let x = features.values();
        let forest = IsolationForest::params()
            .seed(5)
            .fit(&DatasetBase::from(x.view()))
            .unwrap();
        let detection = forest.detect(x).unwrap();
        let top = detection
            .scores
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(row, _)| row)
            .unwrap();
        assert_eq!(features.bar_index(top), crash);
        assert!(detection.flags[crash - features.first_bar()]);
    }
}
