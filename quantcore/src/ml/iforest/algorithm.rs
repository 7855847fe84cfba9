//! The fitted [`IsolationForest`]: linfa's `Fit` and `PredictInplace`, scores and
//! detection.
//!
//! Fitting grows the trees in parallel (rayon), tree `i` with its own generator seeded
//! from `(seed, i)`, so a seed gives the same forest whatever the number of threads.
//! Scoring walks chunks of [`CHUNK_ROWS`] rows through every tree in parallel over
//! chunks; within a chunk the trees are the outer loop, so one tree stays in L1 cache
//! while the chunk's rows pass through it. The sum of a row's path lengths is taken over
//! the trees in a fixed order, so scores do not depend on the thread count either.
//!
//! Small work stays on the calling thread: scoring at most one chunk, and growing a forest
//! of at most [`SERIAL_FIT_SAMPLES`] sampled rows in all. Handing such work to rayon's
//! pool costs a wake-up of another thread and a wait for it, more than the work itself:
//! the service's ml role refits a 50-tree forest of 64 rows and scores one row per bar,
//! from a tokio worker. The results are the same either way.

use linfa::dataset::DatasetBase;
use linfa::traits::{Fit, PredictInplace};
use ndarray::{Array1, ArrayBase, Data, Ix2};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::index;
use rayon::prelude::*;

use super::hyperparams::{AnomalyThreshold, IsolationForestValidParams};
use super::tree::{IsolationTree, average_path_length};
use crate::error::{Error, Result};

/// Rows scored together by one parallel task (64 KiB of 8-column rows).
pub const CHUNK_ROWS: usize = 1024;

/// Forests of at most this many sampled rows (`n_trees * max_samples`) are grown on the
/// calling thread (the default 100 trees of 256 rows are grown in parallel).
pub const SERIAL_FIT_SAMPLES: usize = 1 << 13;

/// A fitted Isolation Forest (Liu, Ting and Zhou 2008).
///
/// Build it with [`IsolationForest::params`] and linfa's [`Fit`]; score rows with
/// [`score_samples`](Self::score_samples), flag them with [`detect`](Self::detect) or
/// linfa's `predict` (through [`PredictInplace`], giving `Array1<bool>` with `true` for
/// an anomaly).
///
/// ```
/// use linfa::prelude::*;
/// use ndarray::{Array1, Array2, array};
/// use quantcore::ml::iforest::IsolationForest;
///
/// // 200 points on a small grid, plus one far away.
/// let mut rows: Vec<f64> = (0..200).flat_map(|i| [(i % 20) as f64, (i / 20) as f64]).collect();
/// rows.extend([100.0, -100.0]);
/// let x = Array2::from_shape_vec((201, 2), rows)?;
///
/// let forest = IsolationForest::params().n_trees(50).seed(7).fit(&DatasetBase::from(x.view()))?;
/// let detection = forest.detect(&x)?;
/// assert!(detection.flags[200]);
/// assert!(detection.scores[200] > detection.scores[55]);
///
/// // linfa's predict gives the same flags.
/// let flags: Array1<bool> = forest.predict(&x);
/// assert_eq!(flags, detection.flags);
///
/// // A NaN is rejected with its position.
/// let err = forest.score_samples(&array![[1.0, f64::NAN]]).unwrap_err();
/// assert_eq!(err.to_string(), "row 0, column 1: feature must be finite, was NaN");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct IsolationForest {
    trees: Vec<IsolationTree>,
    n_features: usize,
    max_samples: usize,
    /// `c(max_samples)`, the score's normaliser.
    normaliser: f64,
    anomaly_threshold: AnomalyThreshold,
    threshold: f64,
}

/// Scores and flags of a set of rows, from [`IsolationForest::detect`].
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    /// `true` where the row is an anomaly (`score > threshold`).
    pub flags: Array1<bool>,
    /// Anomaly score of each row, in `(0, 1]`; higher is more anomalous.
    pub scores: Array1<f64>,
    /// The threshold the flags were cut at.
    pub threshold: f64,
}

impl Detection {
    /// Indices of the flagged rows, ascending.
    pub fn anomalous_rows(&self) -> Vec<usize> {
        self.flags
            .iter()
            .enumerate()
            .filter_map(|(row, &flag)| flag.then_some(row))
            .collect()
    }
}

impl IsolationForest {
    /// Number of trees.
    pub fn n_trees(&self) -> usize {
        self.trees.len()
    }

    /// Number of feature columns the forest was fitted on (and expects).
    pub fn n_features(&self) -> usize {
        self.n_features
    }

    /// Rows each tree was grown on: the `max_samples` parameter capped at the number of
    /// training rows. The score's normaliser is `c(max_samples)`.
    pub fn max_samples(&self) -> usize {
        self.max_samples
    }

    /// The rule the threshold came from.
    pub fn anomaly_threshold(&self) -> AnomalyThreshold {
        self.anomaly_threshold
    }

    /// The score above which a row is flagged: 0.5 for [`AnomalyThreshold::Auto`], the
    /// given value for [`AnomalyThreshold::Score`], the training scores' quantile for
    /// [`AnomalyThreshold::Contamination`].
    pub fn threshold(&self) -> f64 {
        self.threshold
    }

    /// Anomaly score `s(x, n) = 2^(-E[h(x)] / c(n))` of each row, in `(0, 1]`, where
    /// `E[h(x)]` is the mean path length over the trees and `n` is
    /// [`max_samples`](Self::max_samples). Equal to scikit-learn's `-score_samples(x)`.
    /// Near 1: isolated quickly, anomalous; well below 0.5: a normal row.
    ///
    /// # Errors
    /// [`Error::FeatureCountMismatch`] when `x` does not have
    /// [`n_features`](Self::n_features) columns; [`Error::NonFiniteFeature`] naming the
    /// first NaN or infinite value (lowest row, then column).
    pub fn score_samples<D: Data<Elem = f64>>(&self, x: &ArrayBase<D, Ix2>) -> Result<Array1<f64>> {
        if x.ncols() != self.n_features {
            return Err(Error::FeatureCountMismatch {
                expected: self.n_features,
                actual: x.ncols(),
            });
        }
        let x = x.as_standard_layout();
        let values = x
            .as_slice()
            .expect("an array in standard layout is one contiguous slice");
        check_finite(values, self.n_features)?;
        Ok(Array1::from(self.scores_unchecked(values)))
    }

    /// Scores and flags `x`: a row is flagged when its score is above
    /// [`threshold`](Self::threshold).
    ///
    /// # Errors
    /// As [`score_samples`](Self::score_samples).
    pub fn detect<D: Data<Elem = f64>>(&self, x: &ArrayBase<D, Ix2>) -> Result<Detection> {
        let scores = self.score_samples(x)?;
        Ok(Detection {
            flags: scores.mapv(|score| score > self.threshold),
            scores,
            threshold: self.threshold,
        })
    }

    /// Scores of row-major `values` with `n_features` columns, in parallel over chunks,
    /// without checking the values. A NaN never takes a left branch, so a non-finite row
    /// gets some score in `(0, 1]`; callers reject or flag such rows.
    fn scores_unchecked(&self, values: &[f64]) -> Vec<f64> {
        let n_rows = values.len() / self.n_features;
        let mut scores = vec![0.0; n_rows];
        let scale = -1.0 / (self.trees.len() as f64 * self.normaliser);
        let score_chunk = |(sums, rows): (&mut [f64], &[f64])| {
            for tree in &self.trees {
                tree.add_path_lengths(rows, self.n_features, sums);
            }
            for sum in sums.iter_mut() {
                *sum = (*sum * scale).exp2();
            }
        };
        if n_rows <= CHUNK_ROWS {
            score_chunk((&mut scores, values));
        } else {
            scores
                .par_chunks_mut(CHUNK_ROWS)
                .zip(values.par_chunks(CHUNK_ROWS * self.n_features))
                .for_each(score_chunk);
        }
        scores
    }
}

/// Fits on the records of any linfa dataset; targets are ignored.
impl<D: Data<Elem = f64>, T> Fit<ArrayBase<D, Ix2>, T, Error> for IsolationForestValidParams {
    type Object = IsolationForest;

    /// Grows `n_trees` trees, each on `min(max_samples, rows)` rows drawn without
    /// replacement and on its own draw of `max_features` columns, then sets the threshold.
    ///
    /// # Errors
    /// [`Error::NotEnoughData`] for fewer than 2 rows or no column;
    /// [`Error::MaxFeaturesExceedsColumns`]; [`Error::NonFiniteFeature`] naming the first
    /// NaN or infinite value.
    fn fit(&self, dataset: &DatasetBase<ArrayBase<D, Ix2>, T>) -> Result<IsolationForest> {
        let records = &dataset.records;
        let (n_rows, n_features) = records.dim();
        if n_rows < 2 {
            return Err(Error::NotEnoughData {
                what: "isolation forest training rows",
                required: 2,
                actual: n_rows,
            });
        }
        if n_features == 0 {
            return Err(Error::NotEnoughData {
                what: "isolation forest feature columns",
                required: 1,
                actual: 0,
            });
        }
        let tree_columns = self.max_features().resolve(n_features)?;
        let records = records.as_standard_layout();
        let values = records
            .as_slice()
            .expect("an array in standard layout is one contiguous slice");
        check_finite(values, n_features)?;

        let max_samples = self.max_samples().min(n_rows);
        let seed = self.seed();
        let grow = |tree: usize| {
            let mut rng = StdRng::seed_from_u64(tree_seed(seed, tree));
            let columns: Vec<usize> = if tree_columns == n_features {
                (0..n_features).collect()
            } else {
                let mut columns = index::sample(&mut rng, n_features, tree_columns).into_vec();
                columns.sort_unstable();
                columns
            };
            let mut sample = Vec::with_capacity(max_samples * columns.len());
            for row in index::sample(&mut rng, n_rows, max_samples) {
                let row = &values[row * n_features..(row + 1) * n_features];
                sample.extend(columns.iter().map(|&column| row[column]));
            }
            IsolationTree::grow(&sample, &columns, &mut rng)
        };
        let trees = if self.n_trees() * max_samples <= SERIAL_FIT_SAMPLES {
            (0..self.n_trees()).map(grow).collect()
        } else {
            (0..self.n_trees()).into_par_iter().map(grow).collect()
        };

        let mut forest = IsolationForest {
            trees,
            n_features,
            max_samples,
            normaliser: average_path_length(max_samples),
            anomaly_threshold: self.anomaly_threshold(),
            threshold: 0.5,
        };
        forest.threshold = match self.anomaly_threshold() {
            AnomalyThreshold::Auto => 0.5,
            AnomalyThreshold::Score(threshold) => threshold,
            AnomalyThreshold::Contamination(fraction) => {
                let mut scores = forest.scores_unchecked(values);
                quantile(&mut scores, 1.0 - fraction)
            }
        };
        Ok(forest)
    }
}

/// Flags rows as anomalies (`true`) or normal (`false`), as [`IsolationForest::detect`].
///
/// linfa's trait cannot return an error, so a row holding a NaN or infinite value is
/// flagged `true`: it cannot be scored and is not a normal observation. Call
/// [`IsolationForest::detect`] to get [`Error::NonFiniteFeature`] instead.
///
/// # Panics
/// When `x` does not have [`IsolationForest::n_features`] columns, or `y` does not have
/// one entry per row (as linfa's own models do).
impl<D: Data<Elem = f64>> PredictInplace<ArrayBase<D, Ix2>, Array1<bool>> for IsolationForest {
    fn predict_inplace<'a>(&'a self, x: &'a ArrayBase<D, Ix2>, y: &mut Array1<bool>) {
        assert_eq!(
            x.ncols(),
            self.n_features,
            "the input must have as many columns as the training data"
        );
        assert_eq!(
            x.nrows(),
            y.len(),
            "the number of rows must match the number of targets"
        );
        let x = x.as_standard_layout();
        let values = x
            .as_slice()
            .expect("an array in standard layout is one contiguous slice");
        let scores = self.scores_unchecked(values);
        let rows = values.chunks_exact(self.n_features);
        for ((flag, score), row) in y.iter_mut().zip(scores).zip(rows) {
            *flag = score > self.threshold || row.iter().any(|value| !value.is_finite());
        }
    }

    fn default_target(&self, x: &ArrayBase<D, Ix2>) -> Array1<bool> {
        Array1::from_elem(x.nrows(), false)
    }
}

/// linfa's `Fit` requires the crate error to absorb linfa's; the forest itself never
/// raises one.
/// The seed of tree `tree`'s generator: SplitMix64's finaliser over the seed plus the
/// tree index times the golden-ratio increment, so neighbouring trees and seeds get
/// unrelated streams.
fn tree_seed(seed: u64, tree: usize) -> u64 {
    let mut z = seed.wrapping_add((tree as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The first non-finite value of row-major `values`, as an error naming row and column.
fn check_finite(values: &[f64], n_features: usize) -> Result<()> {
    let chunk_len = CHUNK_ROWS * n_features;
    let bad = values
        .par_chunks(chunk_len)
        .enumerate()
        .find_map_first(|(chunk, chunk_values)| {
            let offset = chunk_values.iter().position(|value| !value.is_finite())?;
            let at = chunk * chunk_len + offset;
            Some(Error::NonFiniteFeature {
                row: at / n_features,
                column: at % n_features,
                value: chunk_values[offset],
            })
        });
    bad.map_or(Ok(()), Err)
}

/// The `q` quantile of `values` by linear interpolation between order statistics (numpy's
/// default `percentile` rule). `values` is reordered; it must be non-empty and finite.
fn quantile(values: &mut [f64], q: f64) -> f64 {
    let position = q * (values.len() - 1) as f64;
    let below = position.floor() as usize;
    let fraction = position - below as f64;
    let (_, &mut low, above) = values.select_nth_unstable_by(below, f64::total_cmp);
    if fraction == 0.0 || above.is_empty() {
        return low;
    }
    let high = above.iter().copied().fold(f64::INFINITY, f64::min);
    low + fraction * (high - low)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ml::iforest::{IsolationForest, MaxFeatures};
    use linfa::traits::Predict;
    use ndarray::{Array2, Axis, array, s};
    use rand::Rng;
    use rand_distr::StandardNormal;

    /// `n_inliers` standard normal rows in `dims` dimensions followed by `n_outliers` rows
    /// whose every coordinate is ±(5 to 8): far outside the normal cloud.
    fn gaussian_with_outliers(
        n_inliers: usize,
        n_outliers: usize,
        dims: usize,
        seed: u64,
    ) -> (Array2<f64>, Vec<bool>) {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut x = Array2::zeros((n_inliers + n_outliers, dims));
        for mut row in x.rows_mut().into_iter().take(n_inliers) {
            row.mapv_inplace(|_| rng.sample(StandardNormal));
        }
        for mut row in x.rows_mut().into_iter().skip(n_inliers) {
            row.mapv_inplace(|_| {
                let sign = if rng.r#gen::<bool>() { 1.0 } else { -1.0 };
                sign * rng.gen_range(5.0..8.0)
            });
        }
        let labels = (0..n_inliers + n_outliers)
            .map(|i| i >= n_inliers)
            .collect();
        (x, labels)
    }

    /// ROC AUC by its pairwise definition: the probability that a random positive scores
    /// above a random negative, ties counting one half.
    fn roc_auc(scores: &[f64], positive: &[bool]) -> f64 {
        let (mut wins, mut pairs) = (0.0, 0.0);
        for (p, _) in scores.iter().zip(positive).filter(|(_, is)| **is) {
            for (n, _) in scores.iter().zip(positive).filter(|(_, is)| !**is) {
                pairs += 1.0;
                wins += if p > n {
                    1.0
                } else if p == n {
                    0.5
                } else {
                    0.0
                };
            }
        }
        wins / pairs
    }

    fn fit(params: crate::ml::iforest::IsolationForestParams, x: &Array2<f64>) -> IsolationForest {
        params.fit(&DatasetBase::from(x.view())).unwrap()
    }

    #[test]
    fn roc_auc_helper_matches_hand_count() {
        // Positives 0.9, 0.4; negatives 0.5, 0.1: pairs (0.9>0.5, 0.9>0.1, 0.4<0.5,
        // 0.4>0.1) give 3 wins of 4.
        let auc = roc_auc(&[0.9, 0.5, 0.4, 0.1], &[true, false, true, false]);
        assert_eq!(auc, 0.75);
    }

    #[test]
    fn separates_injected_outliers() {
        let (x, labels) = gaussian_with_outliers(2000, 40, 4, 11);
        let forest = fit(IsolationForest::params().seed(3), &x);
        let scores = forest.score_samples(&x).unwrap();
        let auc = roc_auc(scores.as_slice().unwrap(), &labels);
        assert!(auc > 0.95, "ROC AUC {auc}");
        // With the automatic threshold 0.5 most outliers are flagged, few inliers.
        let detection = forest.detect(&x).unwrap();
        let flagged_outliers = detection
            .flags
            .slice(s![2000..])
            .iter()
            .filter(|f| **f)
            .count();
        let flagged_inliers = detection
            .flags
            .slice(s![..2000])
            .iter()
            .filter(|f| **f)
            .count();
        assert!(
            flagged_outliers >= 36,
            "{flagged_outliers} of 40 outliers flagged"
        );
        assert!(
            flagged_inliers <= 100,
            "{flagged_inliers} of 2000 inliers flagged"
        );
    }

    #[test]
    fn same_seed_same_forest_other_seed_other_scores() {
        let (x, _) = gaussian_with_outliers(500, 10, 3, 5);
        let a = fit(IsolationForest::params().seed(42), &x)
            .score_samples(&x)
            .unwrap();
        let b = fit(IsolationForest::params().seed(42), &x)
            .score_samples(&x)
            .unwrap();
        let c = fit(IsolationForest::params().seed(43), &x)
            .score_samples(&x)
            .unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn results_do_not_depend_on_thread_count() {
        let (x, _) = gaussian_with_outliers(3000, 30, 3, 8);
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let forest = fit(
                    IsolationForest::params().n_trees(40).contamination(0.05),
                    &x,
                );
                (forest.threshold(), forest.score_samples(&x).unwrap())
            })
        };
        let (threshold_1, scores_1) = run(1);
        let (threshold_3, scores_3) = run(3);
        assert_eq!(threshold_1, threshold_3);
        assert_eq!(scores_1, scores_3);
    }

    /// The serial paths (a small forest grown on the calling thread, one chunk scored
    /// inline) give what the parallel ones give.
    #[test]
    fn small_work_on_the_calling_thread_matches_the_parallel_paths() {
        let (x, _) = gaussian_with_outliers(3000, 30, 3, 9);
        assert!(x.nrows() > 2 * CHUNK_ROWS);
        // Tree i depends on (seed, i) only: the serial forest of 16 trees is the first 16
        // of the parallel forest of 64.
        let params = IsolationForest::params().max_samples(256).seed(5);
        const { assert!(16 * 256 <= SERIAL_FIT_SAMPLES && 64 * 256 > SERIAL_FIT_SAMPLES) };
        let serial = fit(params.clone().n_trees(16), &x);
        let parallel = fit(params.n_trees(64), &x);
        assert_eq!(
            format!("{:?}", serial.trees),
            format!("{:?}", &parallel.trees[..16])
        );
        // Rows scored in parallel chunks, then one at a time inline.
        let whole = parallel.score_samples(&x).unwrap();
        for (row, &score) in x.outer_iter().zip(&whole).step_by(7) {
            let alone = parallel.score_samples(&row.insert_axis(Axis(0))).unwrap();
            assert_eq!(alone[0].to_bits(), score.to_bits());
        }
    }

    #[test]
    fn scores_lie_in_zero_one() {
        let (x, _) = gaussian_with_outliers(300, 5, 2, 1);
        let forest = fit(IsolationForest::params().n_trees(30), &x);
        let far = array![[1e12, -1e12], [0.0, 0.0], [-3.0, 40.0]];
        for scores in [
            forest.score_samples(&x).unwrap(),
            forest.score_samples(&far).unwrap(),
        ] {
            assert!(scores.iter().all(|&s| s > 0.0 && s <= 1.0), "{scores}");
        }
    }

    /// Three points on a line, `max_samples = 3`, height limit `ceil(log2 3) = 2`. Whatever
    /// the root threshold `p` in `[0, 2)`, the middle point 1 shares a child with one
    /// neighbour and is isolated at depth 2, so `h(1) = 2` in every tree and
    /// `s = 2^(-2 / c(3))` exactly. The point 0 is alone at depth 1 when `p < 1`
    /// (probability 1/2) and at depth 2 otherwise: `E[h(0)] = 1.5`.
    #[test]
    fn scores_match_hand_computed_three_point_case() {
        let x = array![[0.0], [1.0], [2.0]];
        let forest = fit(IsolationForest::params().n_trees(4000).seed(1), &x);
        let c3 = 2.0 * (2f64.ln() + 0.577_215_664_901_532_9) - 4.0 / 3.0;
        let scores = forest.score_samples(&x).unwrap();
        assert!((scores[1] - 2f64.powf(-2.0 / c3)).abs() < 1e-12);
        // E[h(0)] = 1.5 with a standard error of 0.5 / sqrt(4000) ≈ 0.008.
        let expected_end = 2f64.powf(-1.5 / c3);
        assert!((scores[0] - expected_end).abs() < 0.01, "{}", scores[0]);
        assert!((scores[2] - expected_end).abs() < 0.01, "{}", scores[2]);
    }

    /// Constant data cannot be split: every tree is one leaf with path length
    /// `c(max_samples)`, so every score is `2^(-1) = 0.5`.
    #[test]
    fn constant_data_scores_one_half() {
        let x = Array2::from_elem((50, 3), 7.0);
        let forest = fit(IsolationForest::params().max_samples(16), &x);
        assert_eq!(forest.max_samples(), 16);
        let scores = forest
            .score_samples(&array![[7.0, 7.0, 7.0], [1.0, 2.0, 3.0]])
            .unwrap();
        for score in scores {
            assert!((score - 0.5).abs() < 1e-12);
        }
    }

    #[test]
    fn max_samples_is_capped_at_row_count() {
        let (x, _) = gaussian_with_outliers(100, 0, 2, 2);
        let forest = fit(IsolationForest::params().n_trees(5), &x);
        assert_eq!(forest.max_samples(), 100);
    }

    #[test]
    fn contamination_flags_that_fraction_of_training_rows() {
        let (x, _) = gaussian_with_outliers(2000, 0, 3, 4);
        let forest = fit(IsolationForest::params().n_trees(50).contamination(0.1), &x);
        let detection = forest.detect(&x).unwrap();
        let flagged = detection.flags.iter().filter(|f| **f).count();
        assert!((180..=220).contains(&flagged), "{flagged} of 2000 flagged");
        // Independent quantile: sort, then interpolate at 0.9 * 1999 = 1799.1.
        let mut sorted = detection.scores.to_vec();
        sorted.sort_by(f64::total_cmp);
        let expected = sorted[1799] + 0.1 * (sorted[1800] - sorted[1799]);
        assert!((forest.threshold() - expected).abs() < 1e-12);
    }

    #[test]
    fn explicit_and_auto_thresholds() {
        let (x, _) = gaussian_with_outliers(200, 5, 2, 6);
        let auto = fit(IsolationForest::params().n_trees(20), &x);
        assert_eq!(auto.threshold(), 0.5);
        let explicit = fit(
            IsolationForest::params().n_trees(20).score_threshold(0.6),
            &x,
        );
        assert_eq!(explicit.threshold(), 0.6);
        let detection = explicit.detect(&x).unwrap();
        for (flag, score) in detection.flags.iter().zip(&detection.scores) {
            assert_eq!(*flag, *score > 0.6);
        }
    }

    #[test]
    fn predict_matches_detect_and_flags_non_finite_rows() {
        let (x, _) = gaussian_with_outliers(300, 10, 2, 9);
        let forest = fit(IsolationForest::params().n_trees(30), &x);
        let flags: Array1<bool> = forest.predict(&x);
        assert_eq!(flags, forest.detect(&x).unwrap().flags);

        let odd = array![[0.0, 0.0], [f64::NAN, 0.0], [0.0, f64::INFINITY]];
        let flags: Array1<bool> = forest.predict(&odd);
        assert_eq!(flags, array![false, true, true]);
    }

    #[test]
    fn column_major_input_scores_like_row_major() {
        let (x, _) = gaussian_with_outliers(100, 3, 3, 10);
        let forest = fit(IsolationForest::params().n_trees(20), &x);
        let transposed = x.t().to_owned();
        let column_major = transposed.t();
        assert_eq!(
            forest.score_samples(&column_major).unwrap(),
            forest.score_samples(&x).unwrap()
        );
    }

    #[test]
    fn non_finite_input_is_rejected_with_position() {
        let (mut x, _) = gaussian_with_outliers(3000, 0, 3, 12);
        let forest = fit(IsolationForest::params().n_trees(10), &x);
        // Two bad values in different chunks: the first one (lowest row) is reported.
        x[[2500, 0]] = f64::NAN;
        x[[1500, 2]] = f64::NEG_INFINITY;
        let expected = Error::NonFiniteFeature {
            row: 1500,
            column: 2,
            value: f64::NEG_INFINITY,
        };
        assert_eq!(forest.score_samples(&x).unwrap_err(), expected);
        assert_eq!(forest.detect(&x).unwrap_err(), expected);
        let err = IsolationForest::params()
            .fit(&DatasetBase::from(x.view()))
            .unwrap_err();
        assert_eq!(err, expected);
        assert_eq!(
            err.to_string(),
            "row 1500, column 2: feature must be finite, was -inf"
        );
    }

    #[test]
    fn wrong_column_count_is_rejected() {
        let (x, _) = gaussian_with_outliers(50, 0, 3, 13);
        let forest = fit(IsolationForest::params().n_trees(5), &x);
        let err = forest.score_samples(&x.slice(s![.., ..2])).unwrap_err();
        assert_eq!(
            err,
            Error::FeatureCountMismatch {
                expected: 3,
                actual: 2
            }
        );
    }

    #[test]
    fn too_little_data_is_rejected() {
        let one_row = array![[1.0, 2.0]];
        let err = IsolationForest::params()
            .fit(&DatasetBase::from(one_row.view()))
            .unwrap_err();
        assert!(matches!(
            err,
            Error::NotEnoughData {
                required: 2,
                actual: 1,
                ..
            }
        ));
        let no_columns = Array2::<f64>::zeros((10, 0));
        let err = IsolationForest::params()
            .fit(&DatasetBase::from(no_columns.view()))
            .unwrap_err();
        assert!(matches!(
            err,
            Error::NotEnoughData {
                required: 1,
                actual: 0,
                ..
            }
        ));
    }

    #[test]
    fn invalid_params_are_rejected_by_fit() {
        let (x, _) = gaussian_with_outliers(50, 0, 2, 14);
        let err = IsolationForest::params()
            .contamination(0.7)
            .fit(&DatasetBase::from(x.view()))
            .unwrap_err();
        assert!(matches!(
            err,
            Error::InvalidParameter {
                name: "contamination",
                ..
            }
        ));
        let err = IsolationForest::params()
            .max_features(MaxFeatures::Count(3))
            .fit(&DatasetBase::from(x.view()))
            .unwrap_err();
        assert_eq!(
            err,
            Error::MaxFeaturesExceedsColumns {
                requested: 3,
                available: 2
            }
        );
    }

    #[test]
    fn max_features_restricts_each_tree_to_its_columns() {
        let (x, _) = gaussian_with_outliers(200, 0, 5, 15);
        let forest = fit(
            IsolationForest::params()
                .n_trees(30)
                .max_features(MaxFeatures::Count(2)),
            &x,
        );
        let mut seen = [false; 5];
        for tree in &forest.trees {
            let columns = tree.split_columns();
            assert!(!columns.is_empty() && columns.len() <= 2, "{columns:?}");
            for column in columns {
                seen[column] = true;
            }
        }
        // 30 random pairs out of 5 columns cover every column.
        assert!(seen.iter().all(|s| *s));
    }

    #[test]
    fn fit_accepts_owned_and_view_datasets_with_targets() {
        let (x, labels) = gaussian_with_outliers(100, 2, 2, 16);
        let targets = Array1::from(labels);
        let owned = DatasetBase::new(x.clone(), targets);
        let from_owned = IsolationForest::params().n_trees(10).fit(&owned).unwrap();
        let from_view = fit(IsolationForest::params().n_trees(10), &x);
        assert_eq!(
            from_owned.score_samples(&x).unwrap(),
            from_view.score_samples(&x).unwrap()
        );
        assert_eq!(from_owned.n_trees(), 10);
        assert_eq!(from_owned.n_features(), 2);
    }

    #[test]
    fn detection_lists_anomalous_rows() {
        let detection = Detection {
            flags: array![false, true, false, true],
            scores: array![0.4, 0.7, 0.3, 0.6],
            threshold: 0.5,
        };
        assert_eq!(detection.anomalous_rows(), vec![1, 3]);
    }

    #[test]
    fn quantile_interpolates_linearly() {
        // Sorted 1, 2, 3, 4, 10: q = 0.9 sits at position 3.6, between 4 and 10.
        let mut values = [10.0, 1.0, 4.0, 3.0, 2.0];
        assert!((quantile(&mut values, 0.9) - 7.6).abs() < 1e-12);
        let mut values = [3.0, 1.0, 2.0];
        assert_eq!(quantile(&mut values, 0.5), 2.0);
        assert_eq!(quantile(&mut values, 1.0), 3.0);
    }

    #[test]
    fn models_are_send_and_sync() {
        fn has_autotraits<T: Send + Sync + Sized + Unpin>() {}
        has_autotraits::<IsolationForest>();
        has_autotraits::<Detection>();
    }
}
