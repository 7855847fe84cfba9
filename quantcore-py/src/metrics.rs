//! `quantcore.metrics` and `quantcore.report`: statistics over numpy arrays.
//!
//! The return arrays are borrowed without a copy (`PyReadonlyArray1::as_slice`) and
//! the GIL is released while the core scans them. A metric the core reports as
//! undefined raises `UndefinedMetricError` with the reason as its `kind`; in the dict of
//! `compute` it is `None` with its reason under `"undefined"`, as in the core's JSON.

use numpy::PyArray1;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use quantcore::metrics::{self, Metric, Metrics, MetricsConfig, TradeStats};

use crate::arrays::{f64_array, i64_array, slice, to_numpy};
use crate::errors::{IntoPyResult, undefined_to_py_err};

/// Runs a free metric over borrowed returns with the GIL released.
fn metric(
    py: Python<'_>,
    returns: &Bound<'_, PyAny>,
    compute: impl FnOnce(&[f64]) -> Metric + Send,
) -> PyResult<f64> {
    let array = f64_array(returns, "returns")?;
    let values = slice(&array);
    py.detach(|| compute(values)).map_err(undefined_to_py_err)
}

/// Compounded return ``prod(1 + r) - 1`` (0 for no returns).
#[pyfunction]
pub fn total_return(py: Python<'_>, returns: &Bound<'_, PyAny>) -> PyResult<f64> {
    metric(py, returns, metrics::total_return)
}

/// Compound annual growth rate ``prod(1 + r) ** (periods_per_year / n) - 1``.
#[pyfunction]
#[pyo3(signature = (returns, periods_per_year=252.0))]
pub fn cagr(py: Python<'_>, returns: &Bound<'_, PyAny>, periods_per_year: f64) -> PyResult<f64> {
    metric(py, returns, |r| metrics::cagr(r, periods_per_year))
}

/// Arithmetic annualized return ``mean(r) * periods_per_year``.
#[pyfunction]
#[pyo3(signature = (returns, periods_per_year=252.0))]
pub fn annualized_mean_return(
    py: Python<'_>,
    returns: &Bound<'_, PyAny>,
    periods_per_year: f64,
) -> PyResult<f64> {
    metric(py, returns, |r| {
        metrics::annualized_mean_return(r, periods_per_year)
    })
}

/// Annualized volatility ``std(r, ddof=1) * sqrt(periods_per_year)``.
#[pyfunction]
#[pyo3(signature = (returns, periods_per_year=252.0))]
pub fn annual_volatility(
    py: Python<'_>,
    returns: &Bound<'_, PyAny>,
    periods_per_year: f64,
) -> PyResult<f64> {
    metric(py, returns, |r| {
        metrics::annual_volatility(r, periods_per_year)
    })
}

/// Sharpe ratio ``mean(r - risk_free_rate) / std(r, ddof=1) * sqrt(periods_per_year)``,
/// the risk-free rate per period.
#[pyfunction]
#[pyo3(signature = (returns, risk_free_rate=0.0, periods_per_year=252.0))]
pub fn sharpe_ratio(
    py: Python<'_>,
    returns: &Bound<'_, PyAny>,
    risk_free_rate: f64,
    periods_per_year: f64,
) -> PyResult<f64> {
    metric(py, returns, |r| {
        metrics::sharpe_ratio(r, risk_free_rate, periods_per_year)
    })
}

/// Annualized downside deviation ``sqrt(mean(min(r - target, 0) ** 2)) *
/// sqrt(periods_per_year)``, the mean over all periods (empyrical).
#[pyfunction]
#[pyo3(signature = (returns, target=0.0, periods_per_year=252.0))]
pub fn downside_deviation(
    py: Python<'_>,
    returns: &Bound<'_, PyAny>,
    target: f64,
    periods_per_year: f64,
) -> PyResult<f64> {
    metric(py, returns, |r| {
        metrics::downside_deviation(r, target, periods_per_year)
    })
}

/// Sortino ratio ``mean(r - target) * periods_per_year / downside_deviation``
/// (empyrical's convention).
#[pyfunction]
#[pyo3(signature = (returns, target=0.0, periods_per_year=252.0))]
pub fn sortino_ratio(
    py: Python<'_>,
    returns: &Bound<'_, PyAny>,
    target: f64,
    periods_per_year: f64,
) -> PyResult<f64> {
    metric(py, returns, |r| {
        metrics::sortino_ratio(r, target, periods_per_year)
    })
}

/// Maximum drawdown of the equity compounded from 1: ``min(E / cummax(E) - 1)``, a
/// fraction <= 0 (the starting capital is the first peak).
#[pyfunction]
pub fn max_drawdown(py: Python<'_>, returns: &Bound<'_, PyAny>) -> PyResult<f64> {
    metric(py, returns, metrics::max_drawdown)
}

/// Calmar ratio ``cagr / abs(max_drawdown)``.
#[pyfunction]
#[pyo3(signature = (returns, periods_per_year=252.0))]
pub fn calmar_ratio(
    py: Python<'_>,
    returns: &Bound<'_, PyAny>,
    periods_per_year: f64,
) -> PyResult<f64> {
    metric(py, returns, |r| metrics::calmar_ratio(r, periods_per_year))
}

/// Population skewness (scipy's ``skew`` default, ``bias=True``).
#[pyfunction]
pub fn skewness(py: Python<'_>, returns: &Bound<'_, PyAny>) -> PyResult<f64> {
    metric(py, returns, metrics::skewness)
}

/// Population excess kurtosis (scipy's ``kurtosis`` default; 0 for a normal).
#[pyfunction]
pub fn excess_kurtosis(py: Python<'_>, returns: &Bound<'_, PyAny>) -> PyResult<f64> {
    metric(py, returns, metrics::excess_kurtosis)
}

/// Tail ratio ``abs(p95) / abs(p5)`` (numpy's linear-interpolation percentiles).
#[pyfunction]
pub fn tail_ratio(py: Python<'_>, returns: &Bound<'_, PyAny>) -> PyResult<f64> {
    metric(py, returns, metrics::tail_ratio)
}

/// Historical value at risk: the ``cutoff`` percentile of the returns (numpy's
/// linear interpolation); ``cutoff=0.05`` for 95% VaR.
#[pyfunction]
#[pyo3(signature = (returns, cutoff=0.05))]
pub fn value_at_risk(py: Python<'_>, returns: &Bound<'_, PyAny>, cutoff: f64) -> PyResult<f64> {
    metric(py, returns, |r| metrics::value_at_risk(r, cutoff))
}

/// Conditional value at risk (expected shortfall): the mean of the lowest
/// ``floor((n - 1) * cutoff) + 1`` returns (empyrical).
#[pyfunction]
#[pyo3(signature = (returns, cutoff=0.05))]
pub fn conditional_value_at_risk(
    py: Python<'_>,
    returns: &Bound<'_, PyAny>,
    cutoff: f64,
) -> PyResult<f64> {
    metric(py, returns, |r| {
        metrics::conditional_value_at_risk(r, cutoff)
    })
}

/// The underwater curve ``equity / cummax(equity) - 1`` (<= 0), one value per point.
#[pyfunction]
pub fn drawdown_series<'py>(
    py: Python<'py>,
    equity: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let array = f64_array(equity, "equity")?;
    let values = slice(&array);
    let underwater = py.detach(|| metrics::drawdown_series(values)).into_py()?;
    Ok(to_numpy(py, underwater))
}

/// `json.loads`, imported once.
fn json_loads<'py>(py: Python<'py>, text: &str) -> PyResult<Bound<'py, PyAny>> {
    static LOADS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    LOADS
        .get_or_try_init(py, || {
            Ok::<_, PyErr>(py.import("json")?.getattr("loads")?.unbind())
        })?
        .bind(py)
        .call1((text,))
}

/// A serializable core value as Python objects, through the core's own JSON form
/// (numbers round-trip exactly; undefined metrics are `None` with their reason under
/// `"undefined"`).
pub fn to_python<'py, T: serde::Serialize + ?Sized>(
    py: Python<'py>,
    value: &T,
) -> PyResult<Bound<'py, PyAny>> {
    let text = serde_json::to_string(value).map_err(|e| {
        crate::errors::to_py_err(quantcore::Error::Serialization {
            what: "result",
            message: e.to_string(),
        })
    })?;
    json_loads(py, &text)
}

/// The metrics' dict.
pub fn metrics_dict<'py>(py: Python<'py>, metrics: &Metrics) -> PyResult<Bound<'py, PyAny>> {
    let text = quantcore::report::json(metrics).into_py()?;
    json_loads(py, &text)
}

/// Borrowed inputs of `compute` and the reports.
pub struct Curve<'py> {
    timestamps: numpy::PyReadonlyArray1<'py, i64>,
    equity: numpy::PyReadonlyArray1<'py, f64>,
    trade_pnls: Option<numpy::PyReadonlyArray1<'py, f64>>,
    config: MetricsConfig,
}

impl<'py> Curve<'py> {
    pub fn new(
        timestamps: &Bound<'py, PyAny>,
        equity: &Bound<'py, PyAny>,
        trade_pnls: Option<&Bound<'py, PyAny>>,
        periods_per_year: f64,
        risk_free_rate: f64,
        sortino_target: f64,
    ) -> PyResult<Self> {
        Ok(Curve {
            timestamps: i64_array(timestamps, "timestamps")?,
            equity: f64_array(equity, "equity")?,
            trade_pnls: trade_pnls.map(|t| f64_array(t, "trade_pnls")).transpose()?,
            config: MetricsConfig {
                periods_per_year,
                risk_free_rate,
                sortino_target,
            },
        })
    }

    /// Computes the metrics with the GIL released.
    pub fn compute(&self, py: Python<'_>) -> PyResult<Metrics> {
        let (ts, equity) = (slice(&self.timestamps), slice(&self.equity));
        let pnls = self.trade_pnls.as_ref().map(slice).unwrap_or(&[]);
        let config = self.config;
        py.detach(|| Metrics::compute(ts, equity, pnls, &config))
            .into_py()
    }
}

/// Every return, risk and trade statistic of an equity curve (empyrical's
/// conventions), as a dict.
///
/// ``timestamps`` (int64 Unix seconds, non-decreasing) and ``equity`` (float64,
/// positive; ``equity[0]`` is the starting capital) have one entry per point;
/// ``trade_pnls`` are the PnLs of closed trades. An undefined metric is ``None`` and
/// its reason is under ``result["undefined"][name]``. Nothing is copied.
#[pyfunction]
#[pyo3(signature = (timestamps, equity, trade_pnls=None, *, periods_per_year=252.0, risk_free_rate=0.0, sortino_target=0.0))]
pub fn compute<'py>(
    py: Python<'py>,
    timestamps: &Bound<'py, PyAny>,
    equity: &Bound<'py, PyAny>,
    trade_pnls: Option<&Bound<'py, PyAny>>,
    periods_per_year: f64,
    risk_free_rate: f64,
    sortino_target: f64,
) -> PyResult<Bound<'py, PyAny>> {
    let curve = Curve::new(
        timestamps,
        equity,
        trade_pnls,
        periods_per_year,
        risk_free_rate,
        sortino_target,
    )?;
    let metrics = curve.compute(py)?;
    metrics_dict(py, &metrics)
}

/// Statistics of closed trades from their PnLs (win rate, profit factor, expectancy,
/// ...), as a dict; undefined values are ``None`` with reasons under ``"undefined"``.
#[pyfunction]
pub fn trade_stats<'py>(
    py: Python<'py>,
    trade_pnls: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let array = f64_array(trade_pnls, "trade_pnls")?;
    let values = slice(&array);
    let stats = py.detach(|| TradeStats::compute(values)).into_py()?;
    to_python(py, &stats)
}

/// The metrics of an equity curve as an aligned text table (undefined values as
/// ``n/a (reason)``).
#[pyfunction]
#[pyo3(signature = (timestamps, equity, trade_pnls=None, *, periods_per_year=252.0, risk_free_rate=0.0, sortino_target=0.0))]
pub fn text(
    py: Python<'_>,
    timestamps: &Bound<'_, PyAny>,
    equity: &Bound<'_, PyAny>,
    trade_pnls: Option<&Bound<'_, PyAny>>,
    periods_per_year: f64,
    risk_free_rate: f64,
    sortino_target: f64,
) -> PyResult<String> {
    let curve = Curve::new(
        timestamps,
        equity,
        trade_pnls,
        periods_per_year,
        risk_free_rate,
        sortino_target,
    )?;
    let metrics = curve.compute(py)?;
    Ok(quantcore::report::text(&metrics))
}

/// A self-contained HTML report (headline figures, equity and drawdown charts as
/// inline SVG, the metrics table) of an equity curve; written to ``path`` when given.
/// Returns the page.
#[pyfunction]
#[pyo3(signature = (timestamps, equity, trade_pnls=None, *, title="quantcore report", path=None, periods_per_year=252.0, risk_free_rate=0.0, sortino_target=0.0))]
#[allow(clippy::too_many_arguments)] // the curve, the report's options and the metrics' config
pub fn html(
    py: Python<'_>,
    timestamps: &Bound<'_, PyAny>,
    equity: &Bound<'_, PyAny>,
    trade_pnls: Option<&Bound<'_, PyAny>>,
    title: &str,
    path: Option<std::path::PathBuf>,
    periods_per_year: f64,
    risk_free_rate: f64,
    sortino_target: f64,
) -> PyResult<String> {
    let curve = Curve::new(
        timestamps,
        equity,
        trade_pnls,
        periods_per_year,
        risk_free_rate,
        sortino_target,
    )?;
    let metrics = curve.compute(py)?;
    let (ts, eq) = (slice(&curve.timestamps), slice(&curve.equity));
    let page = py
        .detach(|| quantcore::report::html(title, ts, eq, &metrics))
        .into_py()?;
    if let Some(path) = path {
        write_file(&path, &page)?;
    }
    Ok(page)
}

/// Writes a report to a file, failing as the core's `Error::Io`.
pub fn write_file(path: &std::path::Path, contents: &str) -> PyResult<()> {
    std::fs::write(path, contents)
        .map_err(|e| quantcore::Error::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        })
        .into_py()
}

/// Registers the functions on the `metrics` submodule.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(total_return, m)?)?;
    m.add_function(wrap_pyfunction!(cagr, m)?)?;
    m.add_function(wrap_pyfunction!(annualized_mean_return, m)?)?;
    m.add_function(wrap_pyfunction!(annual_volatility, m)?)?;
    m.add_function(wrap_pyfunction!(sharpe_ratio, m)?)?;
    m.add_function(wrap_pyfunction!(downside_deviation, m)?)?;
    m.add_function(wrap_pyfunction!(sortino_ratio, m)?)?;
    m.add_function(wrap_pyfunction!(max_drawdown, m)?)?;
    m.add_function(wrap_pyfunction!(calmar_ratio, m)?)?;
    m.add_function(wrap_pyfunction!(skewness, m)?)?;
    m.add_function(wrap_pyfunction!(excess_kurtosis, m)?)?;
    m.add_function(wrap_pyfunction!(tail_ratio, m)?)?;
    m.add_function(wrap_pyfunction!(value_at_risk, m)?)?;
    m.add_function(wrap_pyfunction!(conditional_value_at_risk, m)?)?;
    m.add_function(wrap_pyfunction!(drawdown_series, m)?)?;
    m.add_function(wrap_pyfunction!(compute, m)?)?;
    m.add_function(wrap_pyfunction!(trade_stats, m)?)?;
    m.add("TRADING_DAYS_PER_YEAR", metrics::TRADING_DAYS_PER_YEAR)?;
    Ok(())
}

/// Registers the functions on the `report` submodule.
pub fn register_report(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(text, m)?)?;
    m.add_function(wrap_pyfunction!(html, m)?)?;
    Ok(())
}
