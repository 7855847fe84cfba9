//! Checked hyperparameters of the Isolation Forest, in linfa's shape.
//!
//! [`IsolationForestParams`] is the unchecked builder (consuming setters, defaults listed
//! on [`IsolationForest::params`]); [`ParamGuard::check`] turns it into
//! [`IsolationForestValidParams`], on which [`Fit`](linfa::traits::Fit) is implemented.
//! linfa's blanket impl also makes the unchecked builder fittable, checking first.
//!
//! Values that depend on the data (`max_samples` larger than the number of rows,
//! [`MaxFeatures::Count`] larger than the number of columns) are resolved or rejected at
//! fit time, because the builder has not seen the data.

use linfa::ParamGuard;
use serde::{Deserialize, Serialize};

use super::algorithm::IsolationForest;
use crate::error::{Error, Result};

/// Largest accepted `max_samples`: node indices of a tree are stored as `u32`, and a tree
/// over `m` samples has up to `2m - 1` nodes.
pub const MAX_SAMPLES_LIMIT: usize = 1 << 30;

/// How many feature columns each tree may split on, as in scikit-learn's `max_features`.
///
/// Each tree draws its own subset of columns (without replacement) and splits only on
/// those.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum MaxFeatures {
    /// A fraction of the columns in `(0, 1]`: `max(1, floor(fraction * n_features))`.
    Fraction(f64),
    /// An exact number of columns, at least 1 and at most the number of columns.
    Count(usize),
}

impl MaxFeatures {
    /// The number of columns a tree uses when the data has `n_features` columns.
    ///
    /// # Errors
    /// [`Error::MaxFeaturesExceedsColumns`] when a [`MaxFeatures::Count`] is larger than
    /// `n_features`.
    pub fn resolve(self, n_features: usize) -> Result<usize> {
        match self {
            // Truncation is the rule (scikit-learn's `int(max_features * n_features)`).
            MaxFeatures::Fraction(fraction) => {
                Ok(((fraction * n_features as f64) as usize).clamp(1, n_features.max(1)))
            }
            MaxFeatures::Count(count) if count > n_features => {
                Err(Error::MaxFeaturesExceedsColumns {
                    requested: count,
                    available: n_features,
                })
            }
            MaxFeatures::Count(count) => Ok(count),
        }
    }
}

/// The rule that turns anomaly scores into flags: a row is anomalous when its score is
/// strictly above the threshold.
///
/// Scores are the paper's `s(x, n) = 2^(-E[h(x)] / c(n))` in `(0, 1]`; see the
/// [module docs](super) for the scale.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum AnomalyThreshold {
    /// Threshold 0.5, as scikit-learn's `contamination="auto"`: a row is anomalous when it
    /// is isolated faster than an average unsuccessful search in a binary search tree of
    /// `max_samples` points.
    Auto,
    /// The expected fraction of anomalies in the training data, in `(0, 0.5]`: the
    /// threshold is the `1 - fraction` quantile (linear interpolation, as numpy's
    /// `percentile`) of the training rows' scores, so about that fraction of the
    /// training rows is flagged.
    Contamination(f64),
    /// An explicit threshold on the score, in `(0, 1)`.
    Score(f64),
}

/// Checked hyperparameters of an [`IsolationForest`]; obtained from
/// [`IsolationForestParams`] through [`ParamGuard::check`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IsolationForestValidParams {
    n_trees: usize,
    max_samples: usize,
    max_features: MaxFeatures,
    anomaly_threshold: AnomalyThreshold,
    seed: u64,
}

impl IsolationForestValidParams {
    /// Number of isolation trees.
    pub fn n_trees(&self) -> usize {
        self.n_trees
    }

    /// Rows drawn (without replacement) for each tree; capped at the number of training
    /// rows at fit time.
    pub fn max_samples(&self) -> usize {
        self.max_samples
    }

    /// Columns each tree may split on.
    pub fn max_features(&self) -> MaxFeatures {
        self.max_features
    }

    /// The rule that turns scores into flags.
    pub fn anomaly_threshold(&self) -> AnomalyThreshold {
        self.anomaly_threshold
    }

    /// Seed of the random draws; tree `i` uses a generator derived from `(seed, i)`.
    pub fn seed(&self) -> u64 {
        self.seed
    }
}

/// Unchecked hyperparameters of an [`IsolationForest`], built with consuming setters from
/// [`IsolationForest::params`]. Checked by [`ParamGuard::check`], or implicitly by `fit`.
///
/// ```
/// use linfa::ParamGuard;
/// use quantcore::ml::iforest::{AnomalyThreshold, IsolationForest, MaxFeatures};
///
/// let params = IsolationForest::params()
///     .n_trees(200)
///     .max_samples(128)
///     .max_features(MaxFeatures::Count(3))
///     .contamination(0.05)
///     .seed(7)
///     .check()?;
/// assert_eq!(params.n_trees(), 200);
/// assert_eq!(params.anomaly_threshold(), AnomalyThreshold::Contamination(0.05));
///
/// // A contamination above one half is rejected with the parameter's name.
/// let err = IsolationForest::params().contamination(0.6).check().unwrap_err();
/// assert!(err.to_string().contains("contamination"));
/// # Ok::<(), quantcore::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IsolationForestParams(IsolationForestValidParams);

impl Default for IsolationForestParams {
    /// The defaults listed on [`IsolationForest::params`].
    fn default() -> Self {
        Self(IsolationForestValidParams {
            n_trees: 100,
            max_samples: 256,
            max_features: MaxFeatures::Fraction(1.0),
            anomaly_threshold: AnomalyThreshold::Auto,
            seed: 0,
        })
    }
}

impl IsolationForestParams {
    /// The default parameters; same as [`IsolationForest::params`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the number of trees (at least 1).
    pub fn n_trees(mut self, n_trees: usize) -> Self {
        self.0.n_trees = n_trees;
        self
    }

    /// Sets the number of rows drawn for each tree (at least 2, at most
    /// [`MAX_SAMPLES_LIMIT`]); capped at the number of training rows at fit time.
    pub fn max_samples(mut self, max_samples: usize) -> Self {
        self.0.max_samples = max_samples;
        self
    }

    /// Sets how many columns each tree may split on.
    pub fn max_features(mut self, max_features: MaxFeatures) -> Self {
        self.0.max_features = max_features;
        self
    }

    /// Sets the thresholding rule.
    pub fn anomaly_threshold(mut self, anomaly_threshold: AnomalyThreshold) -> Self {
        self.0.anomaly_threshold = anomaly_threshold;
        self
    }

    /// Shorthand for [`AnomalyThreshold::Contamination`]: the expected fraction of
    /// anomalies in the training data, in `(0, 0.5]`.
    pub fn contamination(self, fraction: f64) -> Self {
        self.anomaly_threshold(AnomalyThreshold::Contamination(fraction))
    }

    /// Shorthand for [`AnomalyThreshold::Score`]: flag rows whose score is above
    /// `threshold`, in `(0, 1)`.
    pub fn score_threshold(self, threshold: f64) -> Self {
        self.anomaly_threshold(AnomalyThreshold::Score(threshold))
    }

    /// Sets the seed of the random draws.
    pub fn seed(mut self, seed: u64) -> Self {
        self.0.seed = seed;
        self
    }
}

impl ParamGuard for IsolationForestParams {
    type Checked = IsolationForestValidParams;
    type Error = Error;

    /// # Errors
    /// [`Error::InvalidParameter`] naming the first invalid parameter:
    /// `n_trees` of 0, `max_samples` below 2 or above [`MAX_SAMPLES_LIMIT`],
    /// `max_features` a fraction outside `(0, 1]` or a count of 0, `contamination`
    /// outside `(0, 0.5]`, `score_threshold` outside `(0, 1)`.
    fn check_ref(&self) -> Result<&Self::Checked> {
        let p = &self.0;
        if p.n_trees == 0 {
            return Err(Error::invalid_parameter(
                "n_trees",
                p.n_trees,
                "must be at least 1",
            ));
        }
        if p.max_samples < 2 {
            return Err(Error::invalid_parameter(
                "max_samples",
                p.max_samples,
                "must be at least 2",
            ));
        }
        if p.max_samples > MAX_SAMPLES_LIMIT {
            return Err(Error::invalid_parameter(
                "max_samples",
                p.max_samples,
                "must be at most 2^30",
            ));
        }
        match p.max_features {
            // Written so that NaN fails too.
            MaxFeatures::Fraction(f) if !(f > 0.0 && f <= 1.0) => {
                return Err(Error::invalid_parameter(
                    "max_features",
                    f,
                    "must be a fraction in (0, 1]",
                ));
            }
            MaxFeatures::Count(0) => {
                return Err(Error::invalid_parameter(
                    "max_features",
                    0,
                    "must be a count of at least 1",
                ));
            }
            _ => {}
        }
        match p.anomaly_threshold {
            AnomalyThreshold::Contamination(f) if !(f > 0.0 && f <= 0.5) => {
                return Err(Error::invalid_parameter(
                    "contamination",
                    f,
                    "must be in (0, 0.5]",
                ));
            }
            AnomalyThreshold::Score(t) if !(t > 0.0 && t < 1.0) => {
                return Err(Error::invalid_parameter(
                    "score_threshold",
                    t,
                    "must be in (0, 1)",
                ));
            }
            _ => {}
        }
        Ok(p)
    }

    fn check(self) -> Result<Self::Checked> {
        self.check_ref()?;
        Ok(self.0)
    }
}

impl IsolationForest {
    /// The default hyperparameters, to adjust with the setters of
    /// [`IsolationForestParams`]:
    ///
    /// | parameter | default | meaning |
    /// |---|---|---|
    /// | `n_trees` | 100 | number of isolation trees |
    /// | `max_samples` | 256 | rows drawn without replacement per tree (capped at the number of rows) |
    /// | `max_features` | `Fraction(1.0)` | columns each tree may split on |
    /// | `anomaly_threshold` | `Auto` | score threshold 0.5 |
    /// | `seed` | 0 | seed of the random draws |
    ///
    /// ```
    /// use quantcore::ml::iforest::IsolationForest;
    /// let params = IsolationForest::params().n_trees(50).seed(3);
    /// # let _ = params;
    /// ```
    pub fn params() -> IsolationForestParams {
        IsolationForestParams::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejected_parameter(params: IsolationForestParams) -> &'static str {
        match params.check() {
            Err(Error::InvalidParameter { name, .. }) => name,
            other => panic!("expected InvalidParameter, was {other:?}"),
        }
    }

    #[test]
    fn autotraits() {
        fn has_autotraits<T: Send + Sync + Sized + Unpin>() {}
        has_autotraits::<IsolationForestParams>();
        has_autotraits::<IsolationForestValidParams>();
    }

    #[test]
    fn defaults_are_documented_values() {
        let p = IsolationForest::params().check().unwrap();
        assert_eq!(p.n_trees(), 100);
        assert_eq!(p.max_samples(), 256);
        assert_eq!(p.max_features(), MaxFeatures::Fraction(1.0));
        assert_eq!(p.anomaly_threshold(), AnomalyThreshold::Auto);
        assert_eq!(p.seed(), 0);
    }

    #[test]
    fn n_trees_cannot_be_zero() {
        assert_eq!(
            rejected_parameter(IsolationForest::params().n_trees(0)),
            "n_trees"
        );
    }

    #[test]
    fn max_samples_must_be_at_least_two() {
        for m in [0, 1] {
            assert_eq!(
                rejected_parameter(IsolationForest::params().max_samples(m)),
                "max_samples"
            );
        }
        assert!(IsolationForest::params().max_samples(2).check().is_ok());
    }

    #[test]
    fn max_samples_has_an_upper_limit() {
        let params = IsolationForest::params().max_samples(MAX_SAMPLES_LIMIT + 1);
        assert_eq!(rejected_parameter(params), "max_samples");
        assert!(
            IsolationForest::params()
                .max_samples(MAX_SAMPLES_LIMIT)
                .check()
                .is_ok()
        );
    }

    #[test]
    fn max_features_fraction_must_be_in_unit_interval() {
        for f in [0.0, -0.5, 1.5, f64::NAN, f64::INFINITY] {
            let params = IsolationForest::params().max_features(MaxFeatures::Fraction(f));
            assert_eq!(rejected_parameter(params), "max_features", "fraction {f}");
        }
        let ok = IsolationForest::params().max_features(MaxFeatures::Fraction(1.0));
        assert!(ok.check().is_ok());
    }

    #[test]
    fn max_features_count_cannot_be_zero() {
        let params = IsolationForest::params().max_features(MaxFeatures::Count(0));
        assert_eq!(rejected_parameter(params), "max_features");
    }

    #[test]
    fn contamination_must_be_in_zero_to_half() {
        for c in [0.0, -0.1, 0.51, 1.0, f64::NAN] {
            let params = IsolationForest::params().contamination(c);
            assert_eq!(rejected_parameter(params), "contamination", "fraction {c}");
        }
        assert!(IsolationForest::params().contamination(0.5).check().is_ok());
    }

    #[test]
    fn score_threshold_must_be_in_open_unit_interval() {
        for t in [0.0, 1.0, -0.2, 1.2, f64::NAN] {
            let params = IsolationForest::params().score_threshold(t);
            assert_eq!(
                rejected_parameter(params),
                "score_threshold",
                "threshold {t}"
            );
        }
        assert!(
            IsolationForest::params()
                .score_threshold(0.6)
                .check()
                .is_ok()
        );
    }

    #[test]
    fn error_message_names_parameter_and_value() {
        let err = IsolationForest::params().n_trees(0).check().unwrap_err();
        assert_eq!(
            err.to_string(),
            "parameter `n_trees` must be at least 1, was 0"
        );
    }

    #[test]
    fn max_features_resolves_against_column_count() {
        // floor(0.5 * 5) = 2; floor(0.1 * 5) = 0 is raised to 1.
        assert_eq!(MaxFeatures::Fraction(0.5).resolve(5).unwrap(), 2);
        assert_eq!(MaxFeatures::Fraction(0.1).resolve(5).unwrap(), 1);
        assert_eq!(MaxFeatures::Fraction(1.0).resolve(8).unwrap(), 8);
        assert_eq!(MaxFeatures::Count(3).resolve(8).unwrap(), 3);
        assert_eq!(
            MaxFeatures::Count(9).resolve(8),
            Err(Error::MaxFeaturesExceedsColumns {
                requested: 9,
                available: 8
            })
        );
    }
}
