//! `BarSeries`: the core's validated columnar bars.

use numpy::PyArray1;
use pyo3::exceptions::{PyIndexError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PySlice, PyType};
use quantcore::normalize::{ParseOptions, Validation, csv};
use quantcore::{Bar, BarSeries, DroppedRows};

use crate::arrays::{borrowed_view, f64_array, i64_array, slice};
use crate::errors::IntoPyResult;

/// A validated series of OHLCV bars (timestamps in Unix seconds UTC of the bar's start).
///
/// Every price is finite and positive, volume finite and non-negative,
/// ``high >= max(open, close)``, ``low <= min(open, close)``, timestamps strictly
/// increasing. Build one with :meth:`from_arrays`, :meth:`from_pandas`,
/// :meth:`from_csv`, the parsers of :mod:`quantcore.normalize` or
/// :func:`quantcore.sample.daily`.
///
/// The series is immutable. Its columns (``timestamps``, ``open``, ..., ``volume``) are
/// read-only numpy views of the Rust buffers: reading them copies nothing.
#[pyclass(name = "BarSeries", module = "quantcore", frozen, eq)]
#[derive(Clone, PartialEq)]
pub struct PyBarSeries {
    pub inner: BarSeries,
}

impl From<BarSeries> for PyBarSeries {
    fn from(inner: BarSeries) -> Self {
        PyBarSeries { inner }
    }
}

/// The rows a lenient parse dropped, as `[{"row", "kind", "message"}, ...]`.
pub fn dropped_rows<'py>(py: Python<'py>, dropped: &DroppedRows) -> PyResult<Bound<'py, PyAny>> {
    let rows = pyo3::types::PyList::empty(py);
    for (row, reason) in &dropped.rows {
        let entry = PyDict::new(py);
        entry.set_item("row", row)?;
        let err = crate::errors::to_py_err(reason.clone());
        let value = err.value(py);
        entry.set_item("kind", value.getattr("kind")?)?;
        entry.set_item("field", value.getattr("field")?)?;
        entry.set_item("message", reason.to_string())?;
        rows.append(entry)?;
    }
    Ok(rows.into_any())
}

/// A bar as a dict.
pub fn bar_dict<'py>(py: Python<'py>, bar: &Bar) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    dict.set_item("timestamp", bar.timestamp)?;
    dict.set_item("open", bar.open)?;
    dict.set_item("high", bar.high)?;
    dict.set_item("low", bar.low)?;
    dict.set_item("close", bar.close)?;
    dict.set_item("volume", bar.volume)?;
    Ok(dict)
}

pub fn validation(lenient: bool) -> ParseOptions {
    ParseOptions::default().validation(if lenient {
        Validation::Lenient
    } else {
        Validation::Strict
    })
}

type Columns = (Vec<i64>, Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>);

fn columns(
    timestamps: &Bound<'_, PyAny>,
    open: &Bound<'_, PyAny>,
    high: &Bound<'_, PyAny>,
    low: &Bound<'_, PyAny>,
    close: &Bound<'_, PyAny>,
    volume: &Bound<'_, PyAny>,
) -> PyResult<Columns> {
    // The series owns its columns: this is the one copy, made once.
    let copy = |obj: &Bound<'_, PyAny>, name: &str| -> PyResult<Vec<f64>> {
        Ok(slice(&f64_array(obj, name)?).to_vec())
    };
    Ok((
        slice(&i64_array(timestamps, "timestamps")?).to_vec(),
        copy(open, "open")?,
        copy(high, "high")?,
        copy(low, "low")?,
        copy(close, "close")?,
        copy(volume, "volume")?,
    ))
}

impl PyBarSeries {
    fn column<'py>(
        this: &Bound<'py, Self>,
        pick: fn(&BarSeries) -> &[f64],
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let values = pick(&this.get().inner);
        // SAFETY: the class is frozen, so the series' vectors are never mutated or
        // reallocated while the Python object (the array's base) is alive.
        unsafe { borrowed_view(this.clone().into_any(), values) }
    }
}

#[pymethods]
impl PyBarSeries {
    /// Builds a series from columns, validating every row (the columns are copied
    /// once into the series).
    ///
    /// ``timestamps`` is an int64 array of Unix seconds; the prices and volume are
    /// float64 arrays of the same length. Raises :class:`InvalidDataError` naming the
    /// first invalid row, field and value.
    #[classmethod]
    #[pyo3(signature = (timestamps, open, high, low, close, volume, *, adj_close=None, symbol=None))]
    #[allow(clippy::too_many_arguments)] // one argument per column, as the core's constructor
    fn from_arrays(
        _cls: &Bound<'_, PyType>,
        py: Python<'_>,
        timestamps: &Bound<'_, PyAny>,
        open: &Bound<'_, PyAny>,
        high: &Bound<'_, PyAny>,
        low: &Bound<'_, PyAny>,
        close: &Bound<'_, PyAny>,
        volume: &Bound<'_, PyAny>,
        adj_close: Option<&Bound<'_, PyAny>>,
        symbol: Option<String>,
    ) -> PyResult<Self> {
        let (ts, o, h, l, c, v) = columns(timestamps, open, high, low, close, volume)?;
        let adj = adj_close
            .map(|a| f64_array(a, "adj_close").map(|a| slice(&a).to_vec()))
            .transpose()?;
        let series = py.detach(|| -> quantcore::Result<BarSeries> {
            let series = BarSeries::new(ts, o, h, l, c, v)?;
            let series = match adj {
                Some(adj) => series.with_adj_close(adj)?,
                None => series,
            };
            Ok(match symbol {
                Some(symbol) => series.with_symbol(symbol),
                None => series,
            })
        });
        series.into_py().map(Into::into)
    }

    /// Like :meth:`from_arrays`, but drops invalid rows instead of raising.
    ///
    /// Returns ``(series, dropped)`` where ``dropped`` lists ``{"row", "kind",
    /// "field", "message"}`` for each removed row (of duplicates, the first stays).
    #[classmethod]
    #[pyo3(signature = (timestamps, open, high, low, close, volume, *, symbol=None))]
    #[allow(clippy::too_many_arguments)] // one argument per column, as the core's constructor
    fn from_arrays_lenient<'py>(
        _cls: &Bound<'py, PyType>,
        py: Python<'py>,
        timestamps: &Bound<'py, PyAny>,
        open: &Bound<'py, PyAny>,
        high: &Bound<'py, PyAny>,
        low: &Bound<'py, PyAny>,
        close: &Bound<'py, PyAny>,
        volume: &Bound<'py, PyAny>,
        symbol: Option<String>,
    ) -> PyResult<(Self, Bound<'py, PyAny>)> {
        let (ts, o, h, l, c, v) = columns(timestamps, open, high, low, close, volume)?;
        let (series, dropped) = py
            .detach(|| BarSeries::new_lenient(ts, o, h, l, c, v))
            .into_py()?;
        let series = match symbol {
            Some(symbol) => series.with_symbol(symbol),
            None => series,
        };
        Ok((series.into(), dropped_rows(py, &dropped)?))
    }

    /// Reads a CSV file holding one series (yfinance/pandas ``to_csv`` layouts,
    /// ``Date``/``Datetime``/``timestamp`` columns, optional ``Adj Close``).
    ///
    /// Raises :class:`ParseError` for a malformed file, :class:`InvalidDataError` for
    /// an invalid row (unless ``lenient``, which drops such rows), :class:`FileError`
    /// when the file cannot be read.
    #[classmethod]
    #[pyo3(signature = (path, *, lenient=false))]
    fn from_csv(
        _cls: &Bound<'_, PyType>,
        py: Python<'_>,
        path: std::path::PathBuf,
        lenient: bool,
    ) -> PyResult<Self> {
        let options = validation(lenient);
        py.detach(|| csv::read_bars(&path, &options))
            .into_py()
            .map(|bars| bars.series.into())
    }

    /// Builds a series from a pandas DataFrame with yfinance-style columns (``Open``,
    /// ``High``, ``Low``, ``Close``, ``Volume``, optional ``Adj Close``; any case) and a
    /// ``DatetimeIndex`` (or a ``Date``/``Datetime``/``timestamp`` column). Naive
    /// times are read as UTC. Needs pandas.
    #[classmethod]
    #[pyo3(signature = (frame, *, symbol=None))]
    fn from_pandas<'py>(
        cls: &Bound<'py, PyType>,
        frame: &Bound<'py, PyAny>,
        symbol: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = cls.py();
        py.import("quantcore._pandas")?
            .getattr("bars_from_frame")?
            .call1((cls, frame, symbol))
    }

    /// The series as a pandas DataFrame (``Open``, ``High``, ``Low``, ``Close``,
    /// ``Volume``, ``Adj Close`` when present) indexed by a UTC ``DatetimeIndex``.
    /// Needs pandas.
    fn to_pandas<'py>(this: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        this.py()
            .import("quantcore._pandas")?
            .getattr("bars_to_frame")?
            .call1((this,))
    }

    /// The columns as a dict of read-only numpy arrays (views, no copy):
    /// ``timestamps``, ``open``, ``high``, ``low``, ``close``, ``volume`` and
    /// ``adj_close`` when present.
    fn to_numpy<'py>(this: &Bound<'py, Self>) -> PyResult<Bound<'py, PyDict>> {
        let py = this.py();
        let dict = PyDict::new(py);
        dict.set_item("timestamps", Self::timestamps(this)?)?;
        dict.set_item("open", Self::open(this)?)?;
        dict.set_item("high", Self::high(this)?)?;
        dict.set_item("low", Self::low(this)?)?;
        dict.set_item("close", Self::close(this)?)?;
        dict.set_item("volume", Self::volume(this)?)?;
        if let Some(adj) = Self::adj_close(this)? {
            dict.set_item("adj_close", adj)?;
        }
        Ok(dict)
    }

    /// A copy tagged with ``symbol``.
    fn with_symbol(&self, symbol: String) -> Self {
        self.inner.clone().with_symbol(symbol).into()
    }

    /// The symbol, when tagged.
    #[getter]
    fn symbol(&self) -> Option<&str> {
        self.inner.symbol()
    }

    /// Bar start times, Unix seconds UTC (int64, read-only view).
    #[getter]
    fn timestamps<'py>(this: &Bound<'py, Self>) -> PyResult<Bound<'py, PyArray1<i64>>> {
        let values = this.get().inner.timestamps();
        // SAFETY: frozen class, see `column`.
        unsafe { borrowed_view(this.clone().into_any(), values) }
    }

    /// Open prices (float64, read-only view).
    #[getter]
    fn open<'py>(this: &Bound<'py, Self>) -> PyResult<Bound<'py, PyArray1<f64>>> {
        Self::column(this, BarSeries::open)
    }

    /// High prices (float64, read-only view).
    #[getter]
    fn high<'py>(this: &Bound<'py, Self>) -> PyResult<Bound<'py, PyArray1<f64>>> {
        Self::column(this, BarSeries::high)
    }

    /// Low prices (float64, read-only view).
    #[getter]
    fn low<'py>(this: &Bound<'py, Self>) -> PyResult<Bound<'py, PyArray1<f64>>> {
        Self::column(this, BarSeries::low)
    }

    /// Close prices (float64, read-only view).
    #[getter]
    fn close<'py>(this: &Bound<'py, Self>) -> PyResult<Bound<'py, PyArray1<f64>>> {
        Self::column(this, BarSeries::close)
    }

    /// Volumes (float64, read-only view).
    #[getter]
    fn volume<'py>(this: &Bound<'py, Self>) -> PyResult<Bound<'py, PyArray1<f64>>> {
        Self::column(this, BarSeries::volume)
    }

    /// Adjusted closes (float64, read-only view), or ``None`` when the source had none.
    #[getter]
    fn adj_close<'py>(this: &Bound<'py, Self>) -> PyResult<Option<Bound<'py, PyArray1<f64>>>> {
        match this.get().inner.adj_close() {
            // SAFETY: frozen class, see `column`.
            Some(values) => unsafe { borrowed_view(this.clone().into_any(), values) }.map(Some),
            None => Ok(None),
        }
    }

    /// The bar at ``index`` as a dict (negative indices count from the end), or a new
    /// series for a slice with step 1.
    fn __getitem__<'py>(
        &self,
        py: Python<'py>,
        index: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let len = self.inner.len();
        if let Ok(slice_obj) = index.cast::<PySlice>() {
            let indices = slice_obj.indices(len as isize)?;
            if indices.step != 1 {
                return Err(PyValueError::new_err(format!(
                    "a bar series slices with step 1 only, was {}",
                    indices.step
                )));
            }
            let (start, stop) = (
                indices.start as usize,
                (indices.stop.max(indices.start)) as usize,
            );
            let part: PyBarSeries = self.inner.slice(start..stop).into();
            return Ok(Bound::new(py, part)?.into_any());
        }
        let i: isize = index.extract()?;
        let position = if i < 0 { i + len as isize } else { i };
        if position < 0 || position as usize >= len {
            return Err(PyIndexError::new_err(format!(
                "bar index {i} is out of range for a series of {len} bars"
            )));
        }
        Ok(bar_dict(py, &self.inner.bar(position as usize))?.into_any())
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    fn __repr__(&self) -> String {
        let symbol = self
            .inner
            .symbol()
            .map(|s| format!("{s:?}, "))
            .unwrap_or_default();
        match (
            self.inner.timestamps().first(),
            self.inner.timestamps().last(),
        ) {
            (Some(first), Some(last)) => format!(
                "BarSeries({symbol}{} bars, {first}..={last})",
                self.inner.len()
            ),
            _ => format!("BarSeries({symbol}0 bars)"),
        }
    }
}
