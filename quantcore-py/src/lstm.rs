//! `LstmPredictor` and `SignalGenerator`.
//!
//! Training and prediction run with the GIL released; the per-epoch progress callback
//! re-attaches to call Python once per epoch. A callback returning `False` stops
//! training after that epoch (the best weights are restored); an exception raised by it
//! stops training too and is re-raised.

use std::ops::ControlFlow;

use numpy::PyArray1;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use quantcore::features::windows::BarFeature;
use quantcore::ml::lstm::{EpochProgress, LstmConfig, LstmNetwork, LstmPredictor, Scaler};
use quantcore::signal::{Prediction, SignalConfig, SignalGenerator};

use crate::arrays::to_numpy;
use crate::data::PyBarSeries;
use crate::errors::IntoPyResult;
use crate::metrics::to_python;

fn feature(name: &str) -> PyResult<BarFeature> {
    Ok(match name {
        "log_return" => BarFeature::LogReturn,
        "range" => BarFeature::Range,
        "log_volume_change" => BarFeature::LogVolumeChange,
        "body" => BarFeature::Body,
        "gap" => BarFeature::Gap,
        other => {
            return Err(PyValueError::new_err(format!(
                "unknown LSTM feature {other:?}; use log_return, range, log_volume_change, body or gap"
            )));
        }
    })
}

/// The keyword arguments shared by `train` and `load_pytorch`, as an `LstmConfig`.
#[allow(clippy::too_many_arguments)] // one argument per config field
fn config(
    window: usize,
    features: Option<Vec<String>>,
    hidden_size: usize,
    num_layers: usize,
    dropout: f64,
    epochs: usize,
    batch_size: usize,
    learning_rate: f64,
    weight_decay: f64,
    validation_fraction: f64,
    patience: Option<usize>,
    seed: u64,
) -> PyResult<LstmConfig> {
    let features = match features {
        Some(names) => names
            .iter()
            .map(|n| feature(n))
            .collect::<PyResult<Vec<_>>>()?,
        None => BarFeature::ALL.to_vec(),
    };
    let config = LstmConfig {
        window,
        features,
        hidden_size,
        num_layers,
        dropout,
        epochs,
        batch_size,
        learning_rate,
        weight_decay,
        validation_fraction,
        patience,
        seed,
    };
    config.validate().into_py()?;
    Ok(config)
}

fn progress_dict<'py>(py: Python<'py>, progress: &EpochProgress) -> PyResult<Bound<'py, PyAny>> {
    to_python(py, progress)
}

/// An LSTM that predicts the next bar's close from the last ``window`` bars (candle,
/// CPU, f32): standardized per-bar features in, the next log return out, turned into
/// a price. Train with :meth:`train`, or load a saved model or PyTorch weights.
#[pyclass(name = "LstmPredictor", module = "quantcore", frozen)]
pub struct PyLstmPredictor {
    inner: LstmPredictor,
}

#[pymethods]
impl PyLstmPredictor {
    /// Trains on ``series`` (chronological split: the last ``validation_fraction``
    /// validates and drives early stopping; the scaler sees the training part only).
    ///
    /// ``progress`` is called after each epoch with a dict (``epoch``, ``epochs``,
    /// ``train_loss``, ``val_loss``, ``best_epoch``, ``best_val_loss``); returning
    /// ``False`` stops training. ``progress=True`` shows a tqdm bar when tqdm is
    /// installed (a line per epoch otherwise). The GIL is released while training.
    #[staticmethod]
    #[pyo3(signature = (series, *, window=30, features=None, hidden_size=64, num_layers=1, dropout=0.0, epochs=50, batch_size=64, learning_rate=1e-3, weight_decay=0.01, validation_fraction=0.2, patience=Some(5), seed=42, progress=None))]
    #[allow(clippy::too_many_arguments)] // the config's fields and the callback
    fn train(
        py: Python<'_>,
        series: &PyBarSeries,
        window: usize,
        features: Option<Vec<String>>,
        hidden_size: usize,
        num_layers: usize,
        dropout: f64,
        epochs: usize,
        batch_size: usize,
        learning_rate: f64,
        weight_decay: f64,
        validation_fraction: f64,
        patience: Option<usize>,
        seed: u64,
        progress: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let config = config(
            window,
            features,
            hidden_size,
            num_layers,
            dropout,
            epochs,
            batch_size,
            learning_rate,
            weight_decay,
            validation_fraction,
            patience,
            seed,
        )?;
        let callback: Option<Py<PyAny>> = match progress {
            None => None,
            Some(p) if p.is_instance_of::<pyo3::types::PyBool>() => {
                if p.extract::<bool>()? {
                    let bar = py
                        .import("quantcore._progress")?
                        .call_method1("epoch_bar", (epochs,))?;
                    Some(bar.unbind())
                } else {
                    None
                }
            }
            Some(p) => Some(p.clone().unbind()),
        };
        let bars = &series.inner;
        let mut failure: Option<PyErr> = None;
        let trained = py.detach(|| {
            LstmPredictor::train(bars, &config, |epoch: EpochProgress| {
                let Some(callback) = &callback else {
                    return ControlFlow::Continue(());
                };
                Python::attach(|py| {
                    let answer =
                        progress_dict(py, &epoch).and_then(|dict| callback.bind(py).call1((dict,)));
                    match answer {
                        Ok(value)
                            if value.is_instance_of::<pyo3::types::PyBool>()
                                && !value.is_truthy().unwrap_or(true) =>
                        {
                            ControlFlow::Break(())
                        }
                        Ok(_) => ControlFlow::Continue(()),
                        Err(err) => {
                            failure = Some(err);
                            ControlFlow::Break(())
                        }
                    }
                })
            })
        });
        if let Some(callback) = &callback
            && let Ok(close) = callback.bind(py).getattr("close")
        {
            close.call0()?;
        }
        if let Some(err) = failure {
            return Err(err);
        }
        Ok(PyLstmPredictor {
            inner: trained.into_py()?,
        })
    }

    /// Loads a model saved by :meth:`save` (a directory with ``model.safetensors`` and
    /// ``model.json``).
    #[staticmethod]
    fn load(py: Python<'_>, path: std::path::PathBuf) -> PyResult<Self> {
        let inner = py.detach(|| LstmPredictor::load(&path)).into_py()?;
        Ok(PyLstmPredictor { inner })
    }

    /// Builds a predictor from PyTorch weights: a safetensors file of an ``nn.LSTM``
    /// (``lstm.weight_ih_l0``, ... or without the ``lstm.`` prefix) and an
    /// ``nn.Linear`` head (``head.weight``/``head.bias``), saved with
    /// ``safetensors.torch.save_file(model.state_dict(), path)``, with the scaler
    /// statistics used in Python (``feature_mean``, ``feature_scale``, ``target_mean``,
    /// ``target_scale``). Sizes must match ``window``/``features``/``hidden_size``/
    /// ``num_layers``; a missing, extra or misshapen tensor raises :class:`ModelError`
    /// naming it.
    #[staticmethod]
    #[pyo3(signature = (weights, *, feature_mean, feature_scale, target_mean, target_scale, window=30, features=None, hidden_size=64, num_layers=1))]
    #[allow(clippy::too_many_arguments)] // the scaler's and the architecture's fields
    fn load_pytorch(
        py: Python<'_>,
        weights: std::path::PathBuf,
        feature_mean: Vec<f64>,
        feature_scale: Vec<f64>,
        target_mean: f64,
        target_scale: f64,
        window: usize,
        features: Option<Vec<String>>,
        hidden_size: usize,
        num_layers: usize,
    ) -> PyResult<Self> {
        let defaults = LstmConfig::default();
        let config = config(
            window,
            features,
            hidden_size,
            num_layers,
            defaults.dropout,
            defaults.epochs,
            defaults.batch_size,
            defaults.learning_rate,
            defaults.weight_decay,
            defaults.validation_fraction,
            defaults.patience,
            defaults.seed,
        )?;
        let scaler = Scaler {
            feature_mean,
            feature_scale,
            target_mean,
            target_scale,
        };
        let inner = py
            .detach(|| {
                let network = LstmNetwork::load_safetensors(
                    &weights,
                    config.input_size(),
                    config.hidden_size,
                    config.num_layers,
                )?;
                LstmPredictor::from_parts(config, scaler, network)
            })
            .into_py()?;
        Ok(PyLstmPredictor { inner })
    }

    /// Saves the model to directory ``path`` (created if needed).
    fn save(&self, py: Python<'_>, path: std::path::PathBuf) -> PyResult<()> {
        let model = &self.inner;
        py.detach(|| model.save(&path)).into_py()
    }

    /// The predicted close of the bar after the series' last one.
    fn predict(&self, py: Python<'_>, series: &PyBarSeries) -> PyResult<f64> {
        let (model, bars) = (&self.inner, &series.inner);
        py.detach(|| model.predict(bars)).into_py()
    }

    /// One prediction per bar from bar ``window`` on: element ``k`` predicts the close
    /// of bar ``window + k + 1`` from the bars up to ``window + k`` (float64).
    fn predict_batch<'py>(
        &self,
        py: Python<'py>,
        series: &PyBarSeries,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let (model, bars) = (&self.inner, &series.inner);
        let predictions = py.detach(|| model.predict_batch(bars)).into_py()?;
        Ok(to_numpy(py, predictions))
    }

    /// The configuration as a dict.
    #[getter]
    fn config<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_python(py, self.inner.config())
    }

    /// The scaler statistics as a dict.
    #[getter]
    fn scaler<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_python(py, self.inner.scaler())
    }

    /// The training history (losses per epoch, best epoch, stop reason), or ``None``
    /// for a model loaded from PyTorch weights.
    #[getter]
    fn history<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.inner.history().map(|h| to_python(py, h)).transpose()
    }

    /// Bars of input per prediction (a prediction needs ``window + 1`` bars).
    #[getter]
    fn window(&self) -> usize {
        self.inner.config().window
    }

    fn __repr__(&self) -> String {
        let c = self.inner.config();
        format!(
            "LstmPredictor(window={}, features={}, hidden_size={}, num_layers={})",
            c.window,
            c.features.len(),
            c.hidden_size,
            c.num_layers
        )
    }
}

/// Turns a predicted price into a BUY/SELL/HOLD signal with a confidence and
/// volatility-scaled stop-loss and take-profit levels.
///
/// Defaults: commission 0.001 and slippage 5 bps per side (threshold: the round-trip
/// cost, 0.003), stop-loss 2 sigma, take-profit 3 sigma, no minimum confidence.
#[pyclass(name = "SignalGenerator", module = "quantcore", frozen)]
pub struct PySignalGenerator {
    inner: SignalGenerator,
}

#[pymethods]
impl PySignalGenerator {
    #[new]
    #[pyo3(signature = (*, commission=0.001, slippage_bps=5.0, threshold=None, stop_loss_multiple=Some(2.0), take_profit_multiple=Some(3.0), min_confidence=0.0))]
    fn new(
        commission: f64,
        slippage_bps: f64,
        threshold: Option<f64>,
        stop_loss_multiple: Option<f64>,
        take_profit_multiple: Option<f64>,
        min_confidence: f64,
    ) -> PyResult<Self> {
        let inner = SignalGenerator::new(SignalConfig {
            commission,
            slippage_bps,
            threshold,
            stop_loss_multiple,
            take_profit_multiple,
            min_confidence,
        })
        .into_py()?;
        Ok(PySignalGenerator { inner })
    }

    /// The signal for a predicted price: a dict with ``symbol``, ``action``
    /// (``"BUY"``/``"SELL"``/``"HOLD"``), ``confidence``, ``price``,
    /// ``predicted_price``, ``expected_return``, ``stop_loss``, ``take_profit``,
    /// ``created_at``. ``volatility`` is the standard deviation of simple returns over
    /// the prediction's horizon, as a fraction of the price.
    #[pyo3(signature = (symbol, timestamp, predicted_price, current_price, volatility))]
    fn generate<'py>(
        &self,
        py: Python<'py>,
        symbol: String,
        timestamp: i64,
        predicted_price: f64,
        current_price: f64,
        volatility: f64,
    ) -> PyResult<Bound<'py, PyAny>> {
        let prediction = Prediction {
            symbol,
            timestamp,
            predicted_price,
        };
        let signal = self
            .inner
            .generate(&prediction, current_price, volatility)
            .into_py()?;
        to_python(py, &signal)
    }

    /// The minimum absolute expected return for a BUY or SELL.
    #[getter]
    fn threshold(&self) -> f64 {
        self.inner.threshold()
    }

    fn __repr__(&self) -> String {
        format!("SignalGenerator({:?})", self.inner.config())
    }
}

/// Registers the classes.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyLstmPredictor>()?;
    m.add_class::<PySignalGenerator>()?;
    Ok(())
}
