//! Isolation Forest anomaly detection (Liu, Ting and Zhou 2008, "Isolation Forest",
//! ICDM), on linfa's traits.
//!
//! linfa has no Isolation Forest, and no crate among the core's dependencies offers one,
//! so it is written here against linfa's [`ParamGuard`](linfa::ParamGuard),
//! [`Fit`](linfa::traits::Fit) and [`PredictInplace`](linfa::traits::PredictInplace).
//!
//! # Method
//! Anomalies are few and different, so random axis-parallel cuts isolate them in fewer
//! steps than normal points. Each of `n_trees` trees is grown on `max_samples` rows drawn
//! without replacement (and `max_features` columns), cutting a random column at a uniform
//! threshold until a row is alone or the depth reaches `ceil(log2(max_samples))`.
//!
//! # Score scale
//! The anomaly score of a row `x` is the paper's
//!
//! `s(x, n) = 2^(-E[h(x)] / c(n))`,  `c(n) = 2 H(n - 1) - 2 (n - 1) / n`,
//! `H(i) = ln(i) + γ` (Euler's constant), `c(2) = 1`,
//!
//! with `n` the per-tree sample size and `h(x)` the depth of the leaf `x` reaches plus
//! `c(size)` for the training rows that leaf still held. Scores lie in `(0, 1]` and
//! equal scikit-learn's `-score_samples`: close to 1 is anomalous, well below 0.5 is
//! normal, and about 0.5 everywhere means the data has no distinct anomalies.
//!
//! # Flags
//! A row is flagged when its score is strictly above the threshold chosen by
//! [`AnomalyThreshold`]: 0.5 (`Auto`, scikit-learn's `contamination="auto"`), a
//! contamination fraction (the training scores' quantile) or an explicit score.
//!
//! # Determinism and parallelism
//! Trees are grown in parallel with rayon, tree `i` from a generator seeded with
//! `(seed, i)`; rows are scored in parallel chunks, each row summing the trees in a fixed
//! order. The same seed gives bit-identical scores and thresholds for any thread count.
//!
//! # Input
//! Rows are `f64` feature vectors (for bars, see
//! [`features::anomaly`](crate::features::anomaly)). A NaN or infinite value is rejected
//! with [`Error::NonFiniteFeature`](crate::Error::NonFiniteFeature) naming its row and
//! column; features need no scaling, since cuts are drawn within each column's range.
//!
//! ```
//! use linfa::prelude::*;
//! use ndarray::Array2;
//! use quantcore::ml::iforest::IsolationForest;
//!
//! let x = Array2::from_shape_fn((500, 2), |(i, j)| ((i * 7 + j * 3) % 23) as f64);
//! let forest = IsolationForest::params().contamination(0.02).seed(1).fit(&DatasetBase::from(x.view()))?;
//! let detection = forest.detect(&x)?;
//! assert!(detection.scores.iter().all(|&s| s > 0.0 && s <= 1.0));
//! # Ok::<(), quantcore::Error>(())
//! ```

mod algorithm;
mod hyperparams;
mod tree;

pub use algorithm::{CHUNK_ROWS, Detection, IsolationForest};
pub use hyperparams::{
    AnomalyThreshold, IsolationForestParams, IsolationForestValidParams, MAX_SAMPLES_LIMIT,
    MaxFeatures,
};
pub use tree::average_path_length;
