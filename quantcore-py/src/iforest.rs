//! `IsolationForest`: the core's anomaly detector with scikit-learn's method names.
//!
//! scikit-learn's conventions, which the methods of the same name follow:
//! `score_samples` is the *negated* paper score (lower is more abnormal), `offset_` the
//! negated threshold, `decision_function = score_samples - offset_` (negative for an
//! anomaly), `predict` gives -1 for an anomaly and 1 otherwise. `anomaly_score` and
//! `detect` give the core's own scale: the paper's score in (0, 1], higher is more
//! anomalous, flagged when above `threshold_`.

use numpy::PyArray1;
use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use quantcore::IsolationForest;
use quantcore::linfa::DatasetBase;
use quantcore::linfa::traits::Fit;
use quantcore::ml::iforest::{AnomalyThreshold, IsolationForestParams, MaxFeatures};

use crate::arrays::{f64_matrix, to_numpy, view};
use crate::errors::IntoPyResult;

/// Isolation Forest anomaly detection (Liu, Ting and Zhou 2008), fitted in Rust.
///
/// Parameters: ``n_trees`` (100), ``max_samples`` rows per tree (256, capped at the
/// number of rows), ``max_features`` (a fraction in (0, 1] or a column count; 1.0),
/// ``contamination`` (``"auto"`` for the 0.5 threshold, or the expected fraction of
/// anomalies in (0, 0.5]), ``score_threshold`` (an explicit threshold in (0, 1),
/// overrides ``contamination``), ``seed`` (0). Same seed, same scores, on any number of
/// threads.
///
/// ``X`` is a float64 2-D C-contiguous array (rows are samples); it is read in place,
/// never copied, and the GIL is released while trees are grown or rows scored.
#[pyclass(name = "IsolationForest", module = "quantcore")]
pub struct PyIsolationForest {
    params: IsolationForestParams,
    fitted: Option<IsolationForest>,
}

impl PyIsolationForest {
    fn model(&self) -> PyResult<&IsolationForest> {
        self.fitted.as_ref().ok_or_else(|| {
            PyRuntimeError::new_err("this IsolationForest is not fitted yet; call fit(X) first")
        })
    }

    fn scores<'py>(&self, py: Python<'py>, x: &Bound<'py, PyAny>) -> PyResult<Vec<f64>> {
        let model = self.model()?;
        let array = f64_matrix(x, "X")?;
        let values = view(&array);
        let scores = py.detach(|| model.score_samples(&values)).into_py()?;
        Ok(scores.into_raw_vec_and_offset().0)
    }
}

#[pymethods]
impl PyIsolationForest {
    #[new]
    #[pyo3(signature = (*, n_trees=100, max_samples=256, max_features=None, contamination=None, score_threshold=None, seed=0))]
    fn new(
        n_trees: usize,
        max_samples: usize,
        max_features: Option<&Bound<'_, PyAny>>,
        contamination: Option<&Bound<'_, PyAny>>,
        score_threshold: Option<f64>,
        seed: u64,
    ) -> PyResult<Self> {
        let mut params = IsolationForest::params()
            .n_trees(n_trees)
            .max_samples(max_samples)
            .seed(seed);
        if let Some(max_features) = max_features {
            params = params.max_features(if max_features.is_instance_of::<pyo3::types::PyInt>() {
                MaxFeatures::Count(max_features.extract()?)
            } else {
                MaxFeatures::Fraction(max_features.extract().map_err(|_| {
                    PyTypeError::new_err(
                        "`max_features` must be an int (a count) or a float (a fraction)",
                    )
                })?)
            });
        }
        match contamination {
            None => {}
            Some(value) if value.extract::<String>().is_ok_and(|s| s == "auto") => {}
            Some(value) => {
                let fraction: f64 = value.extract().map_err(|_| {
                    PyTypeError::new_err("`contamination` must be \"auto\" or a float in (0, 0.5]")
                })?;
                params = params.contamination(fraction);
            }
        }
        if let Some(threshold) = score_threshold {
            params = params.score_threshold(threshold);
        }
        // Rejects bad values now, with the parameter's name, rather than at fit time.
        quantcore::linfa::ParamGuard::check_ref(&params).into_py()?;
        Ok(PyIsolationForest {
            params,
            fitted: None,
        })
    }

    /// Grows the trees on ``X`` (float64, shape ``(n_samples, n_features)``) and sets
    /// the threshold. Returns ``self``.
    #[pyo3(signature = (x, y=None))]
    fn fit<'py>(
        mut this: PyRefMut<'py, Self>,
        x: &Bound<'py, PyAny>,
        y: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<PyRefMut<'py, Self>> {
        let _ = y; // unsupervised: accepted for scikit-learn compatibility, ignored
        let py = x.py();
        let array = f64_matrix(x, "X")?;
        let values = view(&array);
        let params = this.params.clone();
        let forest = py
            .detach(|| params.fit(&DatasetBase::from(values)))
            .into_py()?;
        this.fitted = Some(forest);
        Ok(this)
    }

    /// The paper's anomaly score of each row, in (0, 1]: near 1 is anomalous, well
    /// below 0.5 normal (scikit-learn's ``-score_samples``).
    fn anomaly_score<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        Ok(to_numpy(py, self.scores(py, x)?))
    }

    /// scikit-learn's ``score_samples``: the negated anomaly score; lower is more
    /// abnormal.
    fn score_samples<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let mut scores = self.scores(py, x)?;
        scores.iter_mut().for_each(|s| *s = -*s);
        Ok(to_numpy(py, scores))
    }

    /// scikit-learn's ``decision_function``: ``score_samples(X) - offset_``, negative
    /// for the rows :meth:`predict` calls anomalies.
    fn decision_function<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let threshold = self.model()?.threshold();
        let mut scores = self.scores(py, x)?;
        scores.iter_mut().for_each(|s| *s = threshold - *s);
        Ok(to_numpy(py, scores))
    }

    /// scikit-learn's ``predict``: -1 for an anomaly (score above ``threshold_``), 1
    /// otherwise (int64).
    fn predict<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray1<i64>>> {
        let model = self.model()?;
        let array = f64_matrix(x, "X")?;
        let values = view(&array);
        let detection = py.detach(|| model.detect(&values)).into_py()?;
        let labels = detection
            .flags
            .iter()
            .map(|&flag| if flag { -1 } else { 1 })
            .collect();
        Ok(to_numpy(py, labels))
    }

    /// ``fit(X).predict(X)``.
    #[pyo3(signature = (x, y=None))]
    fn fit_predict<'py>(
        this: PyRefMut<'py, Self>,
        x: &Bound<'py, PyAny>,
        y: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyArray1<i64>>> {
        let py = x.py();
        let this = Self::fit(this, x, y)?;
        this.predict(py, x)
    }

    /// Scores and flags ``X`` on the core's scale: a dict with ``scores`` (in (0, 1]),
    /// ``flags`` (bool, ``score > threshold``), ``threshold`` and ``anomalous_rows``.
    fn detect<'py>(&self, py: Python<'py>, x: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyDict>> {
        let model = self.model()?;
        let array = f64_matrix(x, "X")?;
        let values = view(&array);
        let detection = py.detach(|| model.detect(&values)).into_py()?;
        let out = PyDict::new(py);
        out.set_item("anomalous_rows", to_numpy(py, detection.anomalous_rows()))?;
        out.set_item("threshold", detection.threshold)?;
        out.set_item("flags", PyArray1::from_owned_array(py, detection.flags))?;
        out.set_item("scores", PyArray1::from_owned_array(py, detection.scores))?;
        Ok(out)
    }

    /// The score above which a row is flagged (0.5 for ``contamination="auto"``).
    #[getter]
    fn threshold_(&self) -> PyResult<f64> {
        Ok(self.model()?.threshold())
    }

    /// scikit-learn's ``offset_``: ``-threshold_``.
    #[getter]
    fn offset_(&self) -> PyResult<f64> {
        Ok(-self.model()?.threshold())
    }

    /// Number of feature columns seen in :meth:`fit`.
    #[getter]
    fn n_features_in_(&self) -> PyResult<usize> {
        Ok(self.model()?.n_features())
    }

    /// Rows each tree was grown on (``max_samples`` capped at the training rows).
    #[getter]
    fn max_samples_(&self) -> PyResult<usize> {
        Ok(self.model()?.max_samples())
    }

    /// Whether :meth:`fit` has run.
    #[getter]
    fn is_fitted(&self) -> bool {
        self.fitted.is_some()
    }

    /// The parameters as a dict.
    fn get_params<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let p = quantcore::linfa::ParamGuard::check_ref(&self.params).into_py()?;
        let out = PyDict::new(py);
        out.set_item("n_trees", p.n_trees())?;
        out.set_item("max_samples", p.max_samples())?;
        match p.max_features() {
            MaxFeatures::Fraction(f) => out.set_item("max_features", f)?,
            MaxFeatures::Count(c) => out.set_item("max_features", c)?,
        }
        match p.anomaly_threshold() {
            AnomalyThreshold::Auto => {
                out.set_item("contamination", "auto")?;
                out.set_item("score_threshold", py.None())?;
            }
            AnomalyThreshold::Contamination(f) => {
                out.set_item("contamination", f)?;
                out.set_item("score_threshold", py.None())?;
            }
            AnomalyThreshold::Score(t) => {
                out.set_item("contamination", "auto")?;
                out.set_item("score_threshold", t)?;
            }
        }
        out.set_item("seed", p.seed())?;
        Ok(out)
    }

    fn __repr__(&self) -> String {
        let fitted = if self.fitted.is_some() {
            "fitted"
        } else {
            "not fitted"
        };
        match quantcore::linfa::ParamGuard::check_ref(&self.params) {
            Ok(p) => format!(
                "IsolationForest(n_trees={}, max_samples={}, max_features={:?}, threshold={:?}, seed={}; {fitted})",
                p.n_trees(),
                p.max_samples(),
                p.max_features(),
                p.anomaly_threshold(),
                p.seed()
            ),
            Err(_) => format!("IsolationForest({fitted})"),
        }
    }
}
