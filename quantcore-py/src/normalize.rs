//! `quantcore.normalize`: market-data wire formats into bar series.

use std::collections::BTreeMap;

use pyo3::prelude::*;
use pyo3::types::PyDict;
use quantcore::BarSeries;
use quantcore::normalize::yahoo::{PartialBar, YahooMeta};
use quantcore::normalize::{ParseOptions, alpaca, csv as csv_format, yahoo};

use crate::arrays::to_numpy;
use crate::data::{PyBarSeries, dropped_rows, validation};
use crate::errors::IntoPyResult;

fn series_dict<'py>(
    py: Python<'py>,
    series: BTreeMap<String, BarSeries>,
) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    for (symbol, series) in series {
        dict.set_item(symbol, PyBarSeries::from(series))?;
    }
    Ok(dict)
}

fn meta_dict<'py>(py: Python<'py>, meta: &YahooMeta) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    dict.set_item("symbol", &meta.symbol)?;
    dict.set_item("currency", &meta.currency)?;
    dict.set_item("exchange_name", &meta.exchange_name)?;
    dict.set_item("instrument_type", &meta.instrument_type)?;
    dict.set_item("exchange_timezone_name", &meta.exchange_timezone_name)?;
    dict.set_item("timezone", &meta.timezone)?;
    dict.set_item("gmt_offset", meta.gmt_offset)?;
    dict.set_item("regular_market_price", meta.regular_market_price)?;
    dict.set_item("regular_market_time", meta.regular_market_time)?;
    dict.set_item("data_granularity", &meta.data_granularity)?;
    dict.set_item("range", &meta.range)?;
    dict.set_item(
        "regular_trading_period",
        meta.regular_trading_period.map(|p| (p.start, p.end)),
    )?;
    Ok(dict)
}

fn yahoo_options(lenient: bool, drop_partial_bar: bool, as_of: Option<i64>) -> ParseOptions {
    let options = validation(lenient).drop_partial_bar(drop_partial_bar);
    match as_of {
        Some(t) => options.as_of(t),
        None => options,
    }
}

/// Parses a Yahoo Finance v8 chart response (the JSON bytes).
///
/// Returns a dict: ``series`` (:class:`BarSeries` tagged with the symbol, with the
/// adjusted close when present), ``meta`` (currency, exchange, granularity, ...),
/// ``skipped_null_rows``, ``partial_bar`` (``{"state": "complete" | "kept" |
/// "dropped", "timestamp": int | None}``: whether the last bar is still forming) and
/// ``dropped`` (rows removed in lenient mode).
///
/// Raises :class:`ParseError` for malformed JSON or an error object from Yahoo,
/// :class:`InvalidDataError` for an invalid row unless ``lenient``.
#[pyfunction]
#[pyo3(signature = (data, *, lenient=false, drop_partial_bar=false, as_of=None))]
pub fn yahoo_chart<'py>(
    py: Python<'py>,
    data: &[u8],
    lenient: bool,
    drop_partial_bar: bool,
    as_of: Option<i64>,
) -> PyResult<Bound<'py, PyDict>> {
    let options = yahoo_options(lenient, drop_partial_bar, as_of);
    let chart = py.detach(|| yahoo::parse_chart(data, &options)).into_py()?;
    let out = PyDict::new(py);
    out.set_item("meta", meta_dict(py, &chart.meta)?)?;
    out.set_item("skipped_null_rows", chart.skipped_null_rows)?;
    let partial = PyDict::new(py);
    let (state, timestamp) = match chart.partial_bar {
        PartialBar::Complete => ("complete", None),
        PartialBar::Kept { timestamp } => ("kept", Some(timestamp)),
        PartialBar::Dropped { timestamp } => ("dropped", Some(timestamp)),
    };
    partial.set_item("state", state)?;
    partial.set_item("timestamp", timestamp)?;
    out.set_item("partial_bar", partial)?;
    out.set_item("dropped", dropped_rows(py, &chart.dropped)?)?;
    out.set_item("series", PyBarSeries::from(chart.series))?;
    Ok(out)
}

fn alpaca_bars_dict<'py>(
    py: Python<'py>,
    bars: alpaca::AlpacaBars,
) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    out.set_item("trade_counts", bars.trade_counts.map(|v| to_numpy(py, v)))?;
    out.set_item("vwap", bars.vwap.map(|v| to_numpy(py, v)))?;
    out.set_item("dropped", dropped_rows(py, &bars.dropped)?)?;
    out.set_item("series", PyBarSeries::from(bars.series))?;
    Ok(out)
}

/// Parses one page of Alpaca v2 bars for one symbol (the JSON bytes).
///
/// Returns a dict: ``series``, ``symbol``, ``trade_counts`` and ``vwap`` (numpy
/// arrays, or ``None`` when some bar lacks them), ``next_page_token`` (``None`` on the
/// last page) and ``dropped``.
#[pyfunction]
#[pyo3(signature = (data, *, lenient=false))]
pub fn alpaca_bars<'py>(
    py: Python<'py>,
    data: &[u8],
    lenient: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let options = validation(lenient);
    let page = py.detach(|| alpaca::parse_bars(data, &options)).into_py()?;
    let out = alpaca_bars_dict(py, page.bars)?;
    out.set_item("symbol", page.symbol)?;
    out.set_item("next_page_token", page.next_page_token)?;
    Ok(out)
}

/// Parses one page of Alpaca v2 bars for several symbols.
///
/// Returns a dict: ``bars`` (symbol → the dict :func:`alpaca_bars` gives for one
/// symbol, without ``symbol`` and ``next_page_token``) and ``next_page_token``.
#[pyfunction]
#[pyo3(signature = (data, *, lenient=false))]
pub fn alpaca_multi_bars<'py>(
    py: Python<'py>,
    data: &[u8],
    lenient: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let options = validation(lenient);
    let page = py
        .detach(|| alpaca::parse_multi_bars(data, &options))
        .into_py()?;
    let bars = PyDict::new(py);
    for (symbol, symbol_bars) in page.bars {
        bars.set_item(symbol, alpaca_bars_dict(py, symbol_bars)?)?;
    }
    let out = PyDict::new(py);
    out.set_item("bars", bars)?;
    out.set_item("next_page_token", page.next_page_token)?;
    Ok(out)
}

/// Parses CSV text (bytes) holding one series: pandas/yfinance ``to_csv`` layouts,
/// ``Date``/``Datetime``/``timestamp`` columns (RFC 3339, ``YYYY-MM-DD``, Unix
/// seconds), optional ``Adj Close`` and ``symbol``.
///
/// Returns a dict: ``series`` and ``dropped``.
#[pyfunction]
#[pyo3(name = "csv", signature = (data, *, lenient=false))]
pub fn parse_csv<'py>(py: Python<'py>, data: &[u8], lenient: bool) -> PyResult<Bound<'py, PyDict>> {
    let options = validation(lenient);
    let bars = py
        .detach(|| csv_format::parse_bars(data, &options))
        .into_py()?;
    let out = PyDict::new(py);
    out.set_item("dropped", dropped_rows(py, &bars.dropped)?)?;
    out.set_item("series", PyBarSeries::from(bars.series))?;
    Ok(out)
}

/// Parses CSV text (bytes) with a ``symbol`` column into one series per symbol.
///
/// Returns a dict: ``series`` (symbol → :class:`BarSeries`) and ``dropped``.
#[pyfunction]
#[pyo3(signature = (data, *, lenient=false))]
pub fn csv_by_symbol<'py>(
    py: Python<'py>,
    data: &[u8],
    lenient: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let options = validation(lenient);
    let bars = py
        .detach(|| csv_format::parse_bars_by_symbol(data, &options))
        .into_py()?;
    let out = PyDict::new(py);
    out.set_item("dropped", dropped_rows(py, &bars.dropped)?)?;
    out.set_item("series", series_dict(py, bars.series)?)?;
    Ok(out)
}

/// Reads a CSV file holding one series; as :func:`csv`.
///
/// Raises :class:`FileError` when the file cannot be read.
#[pyfunction]
#[pyo3(signature = (path, *, lenient=false))]
pub fn read_csv<'py>(
    py: Python<'py>,
    path: std::path::PathBuf,
    lenient: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let options = validation(lenient);
    let bars = py
        .detach(|| csv_format::read_bars(&path, &options))
        .into_py()?;
    let out = PyDict::new(py);
    out.set_item("dropped", dropped_rows(py, &bars.dropped)?)?;
    out.set_item("series", PyBarSeries::from(bars.series))?;
    Ok(out)
}

/// Reads a CSV file with a ``symbol`` column; as :func:`csv_by_symbol`.
#[pyfunction]
#[pyo3(signature = (path, *, lenient=false))]
pub fn read_csv_by_symbol<'py>(
    py: Python<'py>,
    path: std::path::PathBuf,
    lenient: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let options = validation(lenient);
    let bars = py
        .detach(|| csv_format::read_bars_by_symbol(&path, &options))
        .into_py()?;
    let out = PyDict::new(py);
    out.set_item("dropped", dropped_rows(py, &bars.dropped)?)?;
    out.set_item("series", series_dict(py, bars.series)?)?;
    Ok(out)
}

/// Registers the functions on the `normalize` submodule.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(yahoo_chart, m)?)?;
    m.add_function(wrap_pyfunction!(alpaca_bars, m)?)?;
    m.add_function(wrap_pyfunction!(alpaca_multi_bars, m)?)?;
    m.add_function(wrap_pyfunction!(parse_csv, m)?)?;
    m.add_function(wrap_pyfunction!(csv_by_symbol, m)?)?;
    m.add_function(wrap_pyfunction!(read_csv, m)?)?;
    m.add_function(wrap_pyfunction!(read_csv_by_symbol, m)?)?;
    Ok(())
}

/// `sample.daily()` / `sample.minute()`.
pub mod sample {
    use super::*;

    /// Daily bars of the bundled **synthetic** sample symbols (``ACME``, ``GLOBEX``,
    /// ``INITECH``; weekdays 2019-01-02 to 2024-12-31), by symbol.
    #[pyfunction]
    pub fn daily(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
        let series = py.detach(quantcore::sample::daily).into_py()?;
        series_dict(py, series)
    }

    /// One-minute bars of the bundled synthetic sample symbols (three sessions,
    /// 2024-03-04 to 2024-03-06), by symbol.
    #[pyfunction]
    pub fn minute(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
        let series = py.detach(quantcore::sample::minute).into_py()?;
        series_dict(py, series)
    }

    /// Registers the functions on the `sample` submodule.
    pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
        m.add_function(wrap_pyfunction!(daily, m)?)?;
        m.add_function(wrap_pyfunction!(minute, m)?)?;
        m.add("SYMBOLS", quantcore::sample::SYMBOLS.to_vec())?;
        m.add(
            "DAILY_CSV",
            pyo3::types::PyBytes::new(m.py(), quantcore::sample::DAILY_CSV),
        )?;
        Ok(())
    }
}
