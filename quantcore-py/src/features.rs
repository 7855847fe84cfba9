//! `quantcore.features`: the core's batch indicators over numpy arrays.
//!
//! Inputs are borrowed without a copy; each output is the core's `Vec`, moved into a
//! numpy array. The GIL is released while the indicator runs.

use numpy::{PyArray1, PyArray2};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use quantcore::features::{self, ReturnKind};

use crate::arrays::{f64_array, slice, to_numpy};
use crate::data::PyBarSeries;
use crate::errors::IntoPyResult;

type Output<'py> = PyResult<Bound<'py, PyArray1<f64>>>;

/// Runs a one-column indicator: borrow, release the GIL, move the result out.
fn column<'py>(
    py: Python<'py>,
    values: &Bound<'py, PyAny>,
    name: &str,
    indicator: impl FnOnce(&[f64]) -> quantcore::Result<Vec<f64>> + Send,
) -> Output<'py> {
    let array = f64_array(values, name)?;
    let input = slice(&array);
    let output = py.detach(|| indicator(input)).into_py()?;
    Ok(to_numpy(py, output))
}

/// Simple moving average: the mean of the last ``period`` values; NaN during the
/// warm-up (the first ``period - 1`` values).
#[pyfunction]
pub fn sma<'py>(py: Python<'py>, values: &Bound<'py, PyAny>, period: usize) -> Output<'py> {
    column(py, values, "values", |v| features::sma(v, period))
}

/// Exponential moving average, ``alpha = 2 / (period + 1)``, seeded with the SMA of the
/// first ``period`` values; NaN before.
#[pyfunction]
pub fn ema<'py>(py: Python<'py>, values: &Bound<'py, PyAny>, period: usize) -> Output<'py> {
    column(py, values, "values", |v| features::ema(v, period))
}

/// Simple returns ``prices[t] / prices[t - lag] - 1``; NaN for the first ``lag``.
#[pyfunction]
#[pyo3(signature = (prices, lag=1))]
pub fn simple_returns<'py>(py: Python<'py>, prices: &Bound<'py, PyAny>, lag: usize) -> Output<'py> {
    column(py, prices, "prices", |v| features::simple_returns(v, lag))
}

/// Log returns ``ln(prices[t] / prices[t - lag])``; NaN for the first ``lag``.
#[pyfunction]
#[pyo3(signature = (prices, lag=1))]
pub fn log_returns<'py>(py: Python<'py>, prices: &Bound<'py, PyAny>, lag: usize) -> Output<'py> {
    column(py, prices, "prices", |v| features::log_returns(v, lag))
}

/// Rolling volatility: the sample standard deviation (ddof 1) of the last ``period``
/// one-bar returns (``kind`` ``"simple"`` or ``"log"``), per bar (not annualized).
#[pyfunction]
#[pyo3(signature = (prices, period, kind="simple"))]
pub fn rolling_volatility<'py>(
    py: Python<'py>,
    prices: &Bound<'py, PyAny>,
    period: usize,
    kind: &str,
) -> Output<'py> {
    let kind = match kind {
        "simple" => ReturnKind::Simple,
        "log" => ReturnKind::Log,
        other => {
            return Err(PyValueError::new_err(format!(
                "`kind` must be \"simple\" or \"log\", was {other:?}"
            )));
        }
    };
    column(py, prices, "prices", |v| {
        features::rolling_volatility_of(v, period, kind)
    })
}

/// Rolling z-score ``(x_t - mean) / std`` over the last ``period`` values (ddof 1);
/// NaN during the warm-up and where the window is constant.
#[pyfunction]
pub fn rolling_zscore<'py>(
    py: Python<'py>,
    values: &Bound<'py, PyAny>,
    period: usize,
) -> Output<'py> {
    column(py, values, "values", |v| {
        features::rolling_zscore(v, period)
    })
}

/// Wilder's RSI in [0, 100]; NaN for the first ``period`` values and where the window
/// is flat.
#[pyfunction]
#[pyo3(signature = (prices, period=14))]
pub fn rsi<'py>(py: Python<'py>, prices: &Bound<'py, PyAny>, period: usize) -> Output<'py> {
    column(py, prices, "prices", |v| features::rsi(v, period))
}

/// Wilder's average true range over equal-length ``high``, ``low``, ``close``; NaN for
/// the first ``period`` values.
#[pyfunction]
#[pyo3(signature = (high, low, close, period=14))]
pub fn atr<'py>(
    py: Python<'py>,
    high: &Bound<'py, PyAny>,
    low: &Bound<'py, PyAny>,
    close: &Bound<'py, PyAny>,
    period: usize,
) -> Output<'py> {
    let (high, low, close) = (
        f64_array(high, "high")?,
        f64_array(low, "low")?,
        f64_array(close, "close")?,
    );
    let (h, l, c) = (slice(&high), slice(&low), slice(&close));
    let output = py.detach(|| features::atr(h, l, c, period)).into_py()?;
    Ok(to_numpy(py, output))
}

/// Per-bar anomaly features of a series (the Isolation Forest's input).
///
/// Returns a dict: ``values`` (float64, one row per bar from ``first_bar`` on, columns
/// ``names``: log return, range, gap, volume z-score, return z-score), ``timestamps``
/// of those bars, ``first_bar`` (warm-up bars dropped, ``window + 1``), ``window`` and
/// ``names``.
#[pyfunction]
#[pyo3(signature = (series, window=20))]
pub fn extract_features<'py>(
    py: Python<'py>,
    series: &PyBarSeries,
    window: usize,
) -> PyResult<Bound<'py, PyDict>> {
    let bars = &series.inner;
    let extracted = py
        .detach(|| features::anomaly::extract_features_with_window(bars, window))
        .into_py()?;
    let out = PyDict::new(py);
    out.set_item("timestamps", to_numpy(py, extracted.timestamps().to_vec()))?;
    out.set_item("first_bar", extracted.first_bar())?;
    out.set_item("window", extracted.window())?;
    out.set_item("names", extracted.names().to_vec())?;
    out.set_item(
        "values",
        PyArray2::from_owned_array(py, extracted.into_values()),
    )?;
    Ok(out)
}

/// Registers the functions on the `features` submodule.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(sma, m)?)?;
    m.add_function(wrap_pyfunction!(ema, m)?)?;
    m.add_function(wrap_pyfunction!(simple_returns, m)?)?;
    m.add_function(wrap_pyfunction!(log_returns, m)?)?;
    m.add_function(wrap_pyfunction!(rolling_volatility, m)?)?;
    m.add_function(wrap_pyfunction!(rolling_zscore, m)?)?;
    m.add_function(wrap_pyfunction!(rsi, m)?)?;
    m.add_function(wrap_pyfunction!(atr, m)?)?;
    m.add_function(wrap_pyfunction!(extract_features, m)?)?;
    m.add("FEATURE_NAMES", features::anomaly::FEATURE_NAMES.to_vec())?;
    Ok(())
}
