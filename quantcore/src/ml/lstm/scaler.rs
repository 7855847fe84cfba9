//! [`Scaler`]: per-feature standardisation of the inputs and of the target.

use ndarray::ArrayView2;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Mean and scale of each input feature and of the target (the next log return),
/// fitted on the *training* samples only and stored with the model.
///
/// A value `x` of feature `j` enters the network as `(x - feature_mean[j]) /
/// feature_scale[j]`; the network's output `y` means a next log return of
/// `target_mean + target_scale * y`. The scale is the population standard deviation
/// (`ddof = 0`), or 1 when that is zero, as scikit-learn's `StandardScaler` does: a
/// constant feature then maps to 0 instead of dividing by zero.
///
/// ```
/// use ndarray::array;
/// use quantcore::ml::lstm::Scaler;
/// let scaler = Scaler::fit(array![[1.0, 5.0], [3.0, 5.0]].view(), &[0.0, 0.02])?;
/// assert_eq!(scaler.feature_mean, vec![2.0, 5.0]);
/// assert_eq!(scaler.feature_scale, vec![1.0, 1.0]); // std 1, and 1 for the constant column
/// assert!((scaler.target_scale - 0.01).abs() < 1e-15);
/// # Ok::<(), quantcore::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scaler {
    /// Mean of each input feature.
    pub feature_mean: Vec<f64>,
    /// Standard deviation of each input feature (1 where it is zero).
    pub feature_scale: Vec<f64>,
    /// Mean of the target.
    pub target_mean: f64,
    /// Standard deviation of the target (1 where it is zero).
    pub target_scale: f64,
}

/// Mean and population standard deviation (1 when zero), by Welford's update.
fn mean_and_scale(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut n, mut mean, mut m2) = (0.0, 0.0, 0.0);
    for x in values {
        n += 1.0;
        let delta = x - mean;
        mean += delta / n;
        m2 += delta * (x - mean);
    }
    let std = (m2 / n).sqrt();
    (mean, if std > 0.0 { std } else { 1.0 })
}

impl Scaler {
    /// Fits the scaler on training feature rows (`samples x features`) and targets.
    ///
    /// # Errors
    /// [`Error::NotEnoughData`] when `features` has no row or `targets` is empty.
    pub fn fit(features: ArrayView2<'_, f64>, targets: &[f64]) -> Result<Self> {
        if features.nrows() == 0 || targets.is_empty() {
            return Err(Error::NotEnoughData {
                what: "fitting the scaler (training samples)",
                required: 1,
                actual: features.nrows().min(targets.len()),
            });
        }
        let (feature_mean, feature_scale) = features
            .columns()
            .into_iter()
            .map(|column| mean_and_scale(column.iter().copied()))
            .unzip();
        let (target_mean, target_scale) = mean_and_scale(targets.iter().copied());
        Ok(Scaler {
            feature_mean,
            feature_scale,
            target_mean,
            target_scale,
        })
    }

    /// Number of input features.
    pub fn n_features(&self) -> usize {
        self.feature_mean.len()
    }

    /// Checks that the scaler fits `n_features` inputs and holds finite values with
    /// positive scales (for scalers read from a file).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming the bad field.
    pub fn validate(&self, n_features: usize) -> Result<()> {
        for (name, len) in [
            ("scaler.feature_mean", self.feature_mean.len()),
            ("scaler.feature_scale", self.feature_scale.len()),
        ] {
            if len != n_features {
                return Err(Error::invalid_parameter(
                    name,
                    len,
                    "must have one value per input feature",
                ));
            }
        }
        let means = self.feature_mean.iter().chain([&self.target_mean]);
        if let Some(bad) = means.copied().find(|m| !m.is_finite()) {
            return Err(Error::invalid_parameter(
                "scaler mean",
                bad,
                "must be finite",
            ));
        }
        let scales = self.feature_scale.iter().chain([&self.target_scale]);
        if let Some(bad) = scales.copied().find(|s| !(s.is_finite() && *s > 0.0)) {
            return Err(Error::invalid_parameter(
                "scaler scale",
                bad,
                "must be finite and positive",
            ));
        }
        Ok(())
    }

    /// Standardises one row of features into `out` as `f32` (the network's dtype).
    #[inline]
    pub(crate) fn transform_row_into(&self, row: impl Iterator<Item = f64>, out: &mut [f32]) {
        for (((slot, x), mean), scale) in out
            .iter_mut()
            .zip(row)
            .zip(&self.feature_mean)
            .zip(&self.feature_scale)
        {
            *slot = ((x - mean) / scale) as f32;
        }
    }

    /// Standardises a target value.
    #[inline]
    pub fn scale_target(&self, target: f64) -> f64 {
        (target - self.target_mean) / self.target_scale
    }

    /// Turns a network output back into a log return.
    #[inline]
    pub fn unscale_target(&self, output: f64) -> f64 {
        self.target_mean + self.target_scale * output
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn fit_matches_two_pass_statistics() {
        let x = array![[1.0, -2.0], [2.0, 0.0], [6.0, 2.0], [3.0, 4.0]];
        let targets = [0.01, -0.03, 0.02];
        let s = Scaler::fit(x.view(), &targets).unwrap();
        // Column 0: mean 3, deviations -2 -1 3 0, var (4+1+9+0)/4 = 3.5.
        assert!((s.feature_mean[0] - 3.0).abs() < 1e-15);
        assert!((s.feature_scale[0] - 3.5f64.sqrt()).abs() < 1e-15);
        // Column 1: mean 1, deviations -3 -1 1 3, var 20/4 = 5.
        assert!((s.feature_mean[1] - 1.0).abs() < 1e-15);
        assert!((s.feature_scale[1] - 5f64.sqrt()).abs() < 1e-15);
        // Targets: mean 0, var (1e-4 + 9e-4 + 4e-4)/3.
        assert!(s.target_mean.abs() < 1e-17);
        assert!((s.target_scale - (14e-4f64 / 3.0).sqrt()).abs() < 1e-15);
        let mut row = [0f32; 2];
        s.transform_row_into([3.0, 1.0 + 5f64.sqrt()].into_iter(), &mut row);
        assert_eq!(row[0], 0.0);
        assert!((row[1] - 1.0).abs() < 1e-6);
        assert!((s.unscale_target(s.scale_target(0.05)) - 0.05).abs() < 1e-15);
    }

    #[test]
    fn constant_columns_get_unit_scale() {
        let s = Scaler::fit(array![[7.0], [7.0]].view(), &[0.5, 0.5]).unwrap();
        assert_eq!((s.feature_mean[0], s.feature_scale[0]), (7.0, 1.0));
        assert_eq!(s.target_scale, 1.0);
    }

    #[test]
    fn empty_input_and_bad_saved_values_are_rejected() {
        let empty = ndarray::Array2::<f64>::zeros((0, 2));
        assert!(matches!(
            Scaler::fit(empty.view(), &[1.0]).unwrap_err(),
            Error::NotEnoughData { .. }
        ));
        let good = Scaler::fit(array![[1.0], [2.0]].view(), &[0.0, 1.0]).unwrap();
        good.validate(1).unwrap();
        assert!(good.validate(2).is_err());
        let mut bad = good.clone();
        bad.feature_scale[0] = 0.0;
        assert!(bad.validate(1).is_err());
        let mut bad = good;
        bad.target_mean = f64::NAN;
        assert!(bad.validate(1).is_err());
    }
}
