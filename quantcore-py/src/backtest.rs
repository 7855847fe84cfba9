//! `Backtester`: the core's simulation loop with built-in strategies, Python callables,
//! boolean signals and parameter sweeps; `BacktestResult` with numpy curves.
//!
//! Built-in strategies and signals run with the GIL released. A Python callable runs
//! with the GIL held (it is Python code, called once per bar): the engine updates one
//! reusable `StrategyContext` per bar and converts the callable's answer into a core
//! `Decision`; an exception raised by the callable stops asking it (the rest of the
//! run holds) and is re-raised when the run ends.

use numpy::PyArray1;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use quantcore::BarSeries;
use quantcore::backtest::{
    BacktestConfig, BacktestResult, Backtester, BuiltinStrategy, Context, Decision, FillTiming,
    MeanReversionParams, MomentumParams, PerSymbol, StrategySpec,
};
use quantcore::metrics::{Metrics, MetricsConfig};
use quantcore::order::{Sizing, SymbolId};

use crate::arrays::{bool_array, borrowed_view, slice, to_numpy};
use crate::data::PyBarSeries;
use crate::errors::IntoPyResult;
use crate::metrics::{metrics_dict, to_python, write_file};
use crate::money::{PyExecutionModel, PyRiskLimits};

/// Fast/slow simple-moving-average crossover on the close: long while the fast average
/// is above the slow one (short below it when ``allow_short``), flat otherwise.
#[pyclass(name = "MomentumStrategy", module = "quantcore", frozen)]
#[derive(Clone)]
pub struct PyMomentumStrategy {
    params: MomentumParams,
}

#[pymethods]
impl PyMomentumStrategy {
    #[new]
    #[pyo3(signature = (fast, slow, *, allow_short=false))]
    fn new(fast: usize, slow: usize, allow_short: bool) -> PyResult<Self> {
        let params = MomentumParams {
            fast,
            slow,
            allow_short,
        };
        params.validate().into_py()?;
        Ok(PyMomentumStrategy { params })
    }

    /// Bars of the fast average.
    #[getter]
    fn fast(&self) -> usize {
        self.params.fast
    }

    /// Bars of the slow average.
    #[getter]
    fn slow(&self) -> usize {
        self.params.slow
    }

    /// Whether the strategy goes short.
    #[getter]
    fn allow_short(&self) -> bool {
        self.params.allow_short
    }

    fn __repr__(&self) -> String {
        format!(
            "MomentumStrategy(fast={}, slow={}, allow_short={})",
            self.params.fast,
            self.params.slow,
            if self.params.allow_short {
                "True"
            } else {
                "False"
            }
        )
    }
}

/// Rolling z-score mean reversion on the close: long when the z-score over ``window``
/// bars falls below ``-entry_z`` (short above ``entry_z`` when ``allow_short``),
/// flat again once it is back within ``exit_z``.
#[pyclass(name = "MeanReversionStrategy", module = "quantcore", frozen)]
#[derive(Clone)]
pub struct PyMeanReversionStrategy {
    params: MeanReversionParams,
}

#[pymethods]
impl PyMeanReversionStrategy {
    #[new]
    #[pyo3(signature = (window, entry_z, exit_z, *, allow_short=false))]
    fn new(window: usize, entry_z: f64, exit_z: f64, allow_short: bool) -> PyResult<Self> {
        let params = MeanReversionParams {
            window,
            entry_z,
            exit_z,
            allow_short,
        };
        params.validate().into_py()?;
        Ok(PyMeanReversionStrategy { params })
    }

    /// Bars of the rolling window.
    #[getter]
    fn window(&self) -> usize {
        self.params.window
    }

    /// Entry threshold in standard deviations.
    #[getter]
    fn entry_z(&self) -> f64 {
        self.params.entry_z
    }

    /// Exit threshold in standard deviations.
    #[getter]
    fn exit_z(&self) -> f64 {
        self.params.exit_z
    }

    /// Whether the strategy goes short.
    #[getter]
    fn allow_short(&self) -> bool {
        self.params.allow_short
    }

    fn __repr__(&self) -> String {
        format!(
            "MeanReversionStrategy(window={}, entry_z={}, exit_z={}, allow_short={})",
            self.params.window,
            self.params.entry_z,
            self.params.exit_z,
            if self.params.allow_short {
                "True"
            } else {
                "False"
            }
        )
    }
}

/// What a Python strategy answers for a bar. A callable may also return ``None``
/// (hold), a string (``"hold"``, ``"buy"``, ``"sell"``, ``"close"``, ``"long"``,
/// ``"short"``, ``"cancel"``) or a number (the signed target position in units).
#[pyclass(name = "Decision", module = "quantcore", frozen)]
#[derive(Clone)]
pub struct PyDecision {
    inner: Decision,
}

fn decorate(
    decision: Decision,
    limit: Option<f64>,
    stop_loss: Option<f64>,
    take_profit: Option<f64>,
    confidence: Option<f64>,
) -> PyDecision {
    let mut d = decision;
    if let Some(price) = limit {
        d = d.limit(price);
    }
    if let Some(level) = stop_loss {
        d = d.with_stop_loss(level);
    }
    if let Some(level) = take_profit {
        d = d.with_take_profit(level);
    }
    if let Some(c) = confidence {
        d = d.with_confidence(c);
    }
    PyDecision { inner: d }
}

#[pymethods]
impl PyDecision {
    /// Do nothing (a resting limit order keeps resting).
    #[staticmethod]
    fn hold() -> Self {
        PyDecision {
            inner: Decision::hold(),
        }
    }

    /// Cancel the symbol's resting limit orders.
    #[staticmethod]
    fn cancel() -> Self {
        PyDecision {
            inner: Decision::cancel(),
        }
    }

    /// Buy ``quantity`` units (or the configured sizing's quantity).
    #[staticmethod]
    #[pyo3(signature = (quantity=None, *, limit=None, stop_loss=None, take_profit=None, confidence=None))]
    fn buy(
        quantity: Option<f64>,
        limit: Option<f64>,
        stop_loss: Option<f64>,
        take_profit: Option<f64>,
        confidence: Option<f64>,
    ) -> Self {
        let d = quantity.map_or_else(Decision::buy, Decision::buy_quantity);
        decorate(d, limit, stop_loss, take_profit, confidence)
    }

    /// Sell ``quantity`` units (or the configured sizing's quantity).
    #[staticmethod]
    #[pyo3(signature = (quantity=None, *, limit=None, stop_loss=None, take_profit=None, confidence=None))]
    fn sell(
        quantity: Option<f64>,
        limit: Option<f64>,
        stop_loss: Option<f64>,
        take_profit: Option<f64>,
        confidence: Option<f64>,
    ) -> Self {
        let d = quantity.map_or_else(Decision::sell, Decision::sell_quantity);
        decorate(d, limit, stop_loss, take_profit, confidence)
    }

    /// Trade to a signed position of ``quantity`` units (0 = flat).
    #[staticmethod]
    #[pyo3(signature = (quantity, *, limit=None, stop_loss=None, take_profit=None))]
    fn target(
        quantity: f64,
        limit: Option<f64>,
        stop_loss: Option<f64>,
        take_profit: Option<f64>,
    ) -> Self {
        decorate(
            Decision::target(quantity),
            limit,
            stop_loss,
            take_profit,
            None,
        )
    }

    /// Close the position (nothing when flat).
    #[staticmethod]
    fn close() -> Self {
        PyDecision {
            inner: Decision::close(),
        }
    }

    /// Be long the configured size (closing a short first).
    #[staticmethod]
    #[pyo3(signature = (*, limit=None, stop_loss=None, take_profit=None, confidence=None))]
    fn enter_long(
        limit: Option<f64>,
        stop_loss: Option<f64>,
        take_profit: Option<f64>,
        confidence: Option<f64>,
    ) -> Self {
        decorate(
            Decision::enter_long(),
            limit,
            stop_loss,
            take_profit,
            confidence,
        )
    }

    /// Be short the configured size (closing a long first); needs short selling.
    #[staticmethod]
    #[pyo3(signature = (*, limit=None, stop_loss=None, take_profit=None, confidence=None))]
    fn enter_short(
        limit: Option<f64>,
        stop_loss: Option<f64>,
        take_profit: Option<f64>,
        confidence: Option<f64>,
    ) -> Self {
        decorate(
            Decision::enter_short(),
            limit,
            stop_loss,
            take_profit,
            confidence,
        )
    }

    fn __repr__(&self) -> String {
        format!("Decision({:?})", self.inner)
    }
}

fn decision_from(value: &Bound<'_, PyAny>) -> PyResult<Decision> {
    if value.is_none() {
        return Ok(Decision::hold());
    }
    if let Ok(decision) = value.cast::<PyDecision>() {
        return Ok(decision.get().inner);
    }
    if let Ok(text) = value.cast::<pyo3::types::PyString>() {
        return match text.to_cow()?.as_ref() {
            "hold" => Ok(Decision::hold()),
            "buy" => Ok(Decision::buy()),
            "sell" => Ok(Decision::sell()),
            "close" | "flat" => Ok(Decision::close()),
            "long" | "enter_long" => Ok(Decision::enter_long()),
            "short" | "enter_short" => Ok(Decision::enter_short()),
            "cancel" => Ok(Decision::cancel()),
            other => Err(PyValueError::new_err(format!(
                "a strategy returned {other:?}; expected \"hold\", \"buy\", \"sell\", \"close\", \"long\", \"short\", \"cancel\", a Decision, a number or None"
            ))),
        };
    }
    if !value.is_instance_of::<pyo3::types::PyBool>()
        && let Ok(target) = value.extract::<f64>()
    {
        return Ok(Decision::target(target));
    }
    Err(PyTypeError::new_err(format!(
        "a strategy must return a Decision, a string, a number (target position) or None, was {}",
        value.get_type().name()?
    )))
}

/// What a Python strategy sees on a bar. The object is reused from bar to bar: read it
/// during the call, do not keep it.
#[pyclass(name = "StrategyContext", module = "quantcore")]
pub struct PyStrategyContext {
    series: Vec<Py<PyBarSeries>>,
    names: Vec<String>,
    symbol_index: usize,
    /// Index of the bar in its symbol's series.
    #[pyo3(get)]
    index: usize,
    /// The bar's timestamp (Unix seconds).
    #[pyo3(get)]
    timestamp: i64,
    /// The bar's open.
    #[pyo3(get)]
    open: f64,
    /// The bar's high.
    #[pyo3(get)]
    high: f64,
    /// The bar's low.
    #[pyo3(get)]
    low: f64,
    /// The bar's close.
    #[pyo3(get)]
    close: f64,
    /// The bar's volume.
    #[pyo3(get)]
    volume: f64,
    /// The signed position in this symbol (long > 0).
    #[pyo3(get)]
    position: f64,
    /// The position's average price (0 when flat).
    #[pyo3(get)]
    average_price: f64,
    /// Cash on hand.
    #[pyo3(get)]
    cash: f64,
    /// Equity at the latest marks.
    #[pyo3(get)]
    equity: f64,
}

impl PyStrategyContext {
    fn update(&mut self, ctx: &Context<'_>) {
        let bar = ctx.bar();
        let position = ctx.position();
        self.symbol_index = ctx.symbol().index();
        self.index = ctx.index();
        self.timestamp = bar.timestamp;
        self.open = bar.open;
        self.high = bar.high;
        self.low = bar.low;
        self.close = bar.close;
        self.volume = bar.volume;
        self.position = position.quantity;
        self.average_price = position.average_price;
        self.cash = ctx.portfolio().cash();
        self.equity = ctx.equity();
    }
}

#[pymethods]
impl PyStrategyContext {
    /// The symbol of the bar.
    #[getter]
    fn symbol(&self) -> &str {
        &self.names[self.symbol_index]
    }

    /// A column of the symbol's bars up to and including this one (``"close"``,
    /// ``"open"``, ``"high"``, ``"low"``, ``"volume"``), as a read-only view (no copy).
    #[pyo3(signature = (column="close"))]
    fn history<'py>(&self, py: Python<'py>, column: &str) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let owner = self.series[self.symbol_index].bind(py);
        let series: &BarSeries = &owner.get().inner;
        let values = match column {
            "close" => series.close(),
            "open" => series.open(),
            "high" => series.high(),
            "low" => series.low(),
            "volume" => series.volume(),
            other => {
                return Err(PyValueError::new_err(format!(
                    "`column` must be close, open, high, low or volume, was {other:?}"
                )));
            }
        };
        // SAFETY: the series is a frozen Python object, kept alive by the array.
        unsafe { borrowed_view(owner.clone().into_any(), &values[..=self.index]) }
    }

    fn __repr__(&self) -> String {
        format!(
            "StrategyContext({} #{} t={} close={} position={})",
            self.names[self.symbol_index], self.index, self.timestamp, self.close, self.position
        )
    }
}

/// The result of a run: equity curve, returns, trades, orders, fills, exits and
/// metrics.
#[pyclass(name = "BacktestResult", module = "quantcore", frozen)]
pub struct PyBacktestResult {
    inner: BacktestResult,
}

impl PyBacktestResult {
    fn records<'py, T: serde::Serialize>(
        &self,
        py: Python<'py>,
        items: &[T],
        symbol: fn(&T) -> SymbolId,
    ) -> PyResult<Bound<'py, PyList>> {
        let list = PyList::empty(py);
        for item in items {
            let dict = to_python(py, item)?;
            dict.set_item("symbol", self.inner.symbol(symbol(item)))?;
            list.append(dict)?;
        }
        Ok(list)
    }
}

#[pymethods]
impl PyBacktestResult {
    /// Symbol names, in series order.
    #[getter]
    fn symbols(&self) -> Vec<String> {
        self.inner.symbols.clone()
    }

    /// The starting capital, then the equity at each bar's close (float64, a read-only
    /// view of the result's buffer: no copy).
    #[getter]
    fn equity<'py>(this: &Bound<'py, Self>) -> PyResult<Bound<'py, PyArray1<f64>>> {
        // SAFETY: frozen class; the vector is never mutated while the object lives.
        unsafe { borrowed_view(this.clone().into_any(), &this.get().inner.equity) }
    }

    /// One timestamp per equity point (int64; the first repeats the first bar's).
    #[getter]
    fn timestamps<'py>(this: &Bound<'py, Self>) -> PyResult<Bound<'py, PyArray1<i64>>> {
        // SAFETY: as `equity`.
        unsafe { borrowed_view(this.clone().into_any(), &this.get().inner.timestamps) }
    }

    /// Simple returns of the equity curve, one per bar (a new array).
    #[getter]
    fn returns<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        to_numpy(py, self.inner.returns())
    }

    /// The underwater curve ``equity / cummax(equity) - 1``.
    #[getter]
    fn drawdown<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let underwater = quantcore::metrics::drawdown_series(&self.inner.equity).into_py()?;
        Ok(to_numpy(py, underwater))
    }

    /// Every statistic of the run (see :func:`quantcore.metrics.compute`).
    #[getter]
    fn metrics<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        metrics_dict(py, &self.inner.metrics)
    }

    /// Closed round trips as dicts (symbol, side, quantity, entry/exit time and price,
    /// gross PnL, commission, PnL, return).
    #[getter]
    fn trades<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        self.records(py, &self.inner.trades, |t| t.symbol)
    }

    /// Every order (filled, rejected with its reason, cancelled, resting) as dicts.
    #[getter]
    fn orders<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        self.records(py, &self.inner.orders, |o| o.symbol)
    }

    /// Every fill as dicts.
    #[getter]
    fn fills<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        self.records(py, &self.inner.fills, |f| f.symbol)
    }

    /// Every stop-loss / take-profit exit as dicts.
    #[getter]
    fn exits<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        self.records(py, &self.inner.exits, |e| e.symbol)
    }

    /// Each symbol's position at the end, as dicts.
    #[getter]
    fn final_positions<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        self.records(py, &self.inner.final_positions, |p| p.symbol)
    }

    /// The portfolio at the end (cash, positions value, total value, PnL, return).
    #[getter]
    fn final_snapshot<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_python(py, &self.inner.final_snapshot)
    }

    /// Decisions whose sizing gave zero units (no order placed).
    #[getter]
    fn zero_size_decisions(&self) -> usize {
        self.inner.zero_size_decisions
    }

    /// The last equity point.
    #[getter]
    fn final_equity(&self) -> f64 {
        self.inner.final_equity()
    }

    /// The trades as a pandas DataFrame (needs pandas).
    fn trades_frame<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let trades = self.trades(py)?;
        let pandas = py
            .import("quantcore._pandas")?
            .call_method0("require_pandas")?;
        pandas.call_method1("DataFrame", (trades,))
    }

    /// The metrics as an aligned text table.
    fn report_text(&self) -> String {
        self.inner.report_text()
    }

    /// The metrics as pretty JSON.
    fn report_json(&self) -> PyResult<String> {
        self.inner.report_json().into_py()
    }

    /// A self-contained HTML report (equity and drawdown charts, every metric); written
    /// to ``path`` when given. Returns the page.
    #[pyo3(signature = (path=None, *, title="quantcore backtest"))]
    fn report_html(
        &self,
        py: Python<'_>,
        path: Option<std::path::PathBuf>,
        title: &str,
    ) -> PyResult<String> {
        let result = &self.inner;
        let page = py.detach(|| result.report_html(title)).into_py()?;
        if let Some(path) = path {
            write_file(&path, &page)?;
        }
        Ok(page)
    }

    /// Equity and drawdown charts with matplotlib (needs matplotlib); saved to
    /// ``path`` when given. Returns the Figure.
    #[pyo3(signature = (path=None, *, title=None))]
    fn plot<'py>(
        this: &Bound<'py, Self>,
        path: Option<&Bound<'py, PyAny>>,
        title: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = this.py();
        let kwargs = PyDict::new(py);
        let title =
            title.unwrap_or_else(|| format!("{} backtest", this.get().inner.symbols.join(", ")));
        kwargs.set_item("title", title)?;
        kwargs.set_item("path", path)?;
        py.import("quantcore._plot")?.getattr("plot_equity")?.call(
            (Self::timestamps(this)?, Self::equity(this)?),
            Some(&kwargs),
        )
    }

    fn __repr__(&self) -> String {
        let m = &self.inner.metrics;
        format!(
            "BacktestResult({}: {} bars, {} trades, total return {:.2}%, max drawdown {:.2}%)",
            self.inner.symbols.join(", "),
            m.n_periods,
            m.trades.n_trades,
            m.total_return * 100.0,
            m.max_drawdown * 100.0
        )
    }
}

/// A built-in strategy or a Python callable.
enum StrategyArg {
    Builtin(BuiltinStrategy),
    Callable(Py<PyAny>),
}

fn strategy_arg(strategy: &Bound<'_, PyAny>) -> PyResult<StrategyArg> {
    if let Ok(s) = strategy.cast::<PyMomentumStrategy>() {
        return StrategySpec::Momentum(s.get().params)
            .build()
            .into_py()
            .map(StrategyArg::Builtin);
    }
    if let Ok(s) = strategy.cast::<PyMeanReversionStrategy>() {
        return StrategySpec::MeanReversion(s.get().params)
            .build()
            .into_py()
            .map(StrategyArg::Builtin);
    }
    if strategy.is_callable() {
        return Ok(StrategyArg::Callable(strategy.clone().unbind()));
    }
    Err(PyTypeError::new_err(format!(
        "`strategy` must be a MomentumStrategy, a MeanReversionStrategy or a callable(ctx) -> decision, was {}",
        strategy.get_type().name()?
    )))
}

/// Runs a Python callable as the strategy of `run` (one series or several).
fn run_callable(
    py: Python<'_>,
    callable: &Bound<'_, PyAny>,
    series: Vec<Py<PyBarSeries>>,
    names: Vec<String>,
    run: impl FnOnce(&mut dyn FnMut(&Context<'_>) -> Decision) -> quantcore::Result<BacktestResult>,
) -> PyResult<BacktestResult> {
    let context = Bound::new(
        py,
        PyStrategyContext {
            series,
            names,
            symbol_index: 0,
            index: 0,
            timestamp: 0,
            open: 0.0,
            high: 0.0,
            low: 0.0,
            close: 0.0,
            volume: 0.0,
            position: 0.0,
            average_price: 0.0,
            cash: 0.0,
            equity: 0.0,
        },
    )?;
    let mut failure: Option<PyErr> = None;
    let mut strategy = |ctx: &Context<'_>| -> Decision {
        if failure.is_some() {
            return Decision::hold();
        }
        context.borrow_mut().update(ctx);
        match callable.call1((&context,)).and_then(|v| decision_from(&v)) {
            Ok(decision) => decision,
            Err(err) => {
                failure = Some(err);
                Decision::hold()
            }
        }
    };
    let result = run(&mut strategy);
    if let Some(err) = failure {
        return Err(err);
    }
    result.into_py()
}

fn fill_timing(text: &str) -> PyResult<FillTiming> {
    match text {
        "next_open" => Ok(FillTiming::NextOpen),
        "this_close" => Ok(FillTiming::ThisClose),
        other => Err(PyValueError::new_err(format!(
            "`fill_timing` must be \"next_open\" or \"this_close\", was {other:?}"
        ))),
    }
}

fn sizing(kind: &str, size: f64) -> PyResult<Sizing> {
    match kind {
        "fraction_of_equity" => Ok(Sizing::FractionOfEquity(size)),
        "fixed_quantity" => Ok(Sizing::FixedQuantity(size)),
        "confidence" => Ok(Sizing::Confidence { max_fraction: size }),
        other => Err(PyValueError::new_err(format!(
            "`sizing` must be \"fraction_of_equity\", \"fixed_quantity\" or \"confidence\", was {other:?}"
        ))),
    }
}

/// A metric of the sweep table by name, for sorting.
fn metric_key(name: &str) -> PyResult<fn(&Metrics) -> Option<f64>> {
    Ok(match name {
        "total_return" => |m| Some(m.total_return),
        "max_drawdown" => |m| Some(m.max_drawdown),
        "final_equity" => |m| Some(m.final_equity),
        "cagr" => |m| m.cagr.ok(),
        "annualized_mean_return" => |m| m.annualized_mean_return.ok(),
        "volatility" => |m| m.volatility.ok(),
        "sharpe_ratio" => |m| m.sharpe_ratio.ok(),
        "sortino_ratio" => |m| m.sortino_ratio.ok(),
        "calmar_ratio" => |m| m.calmar_ratio.ok(),
        "win_rate" => |m| m.trades.win_rate.ok(),
        "profit_factor" => |m| m.trades.profit_factor.ok(),
        "expectancy" => |m| m.trades.expectancy.ok(),
        other => {
            return Err(PyValueError::new_err(format!(
                "cannot sort by {other:?}; use total_return, max_drawdown, final_equity, cagr, annualized_mean_return, volatility, sharpe_ratio, sortino_ratio, calmar_ratio, win_rate, profit_factor or expectancy"
            )));
        }
    })
}

fn spec_from(strategy: &str, params: &Bound<'_, PyDict>) -> PyResult<StrategySpec> {
    let get = |name: &str| -> PyResult<Bound<'_, PyAny>> {
        params
            .get_item(name)?
            .ok_or_else(|| PyValueError::new_err(format!("a {strategy} grid entry needs {name:?}")))
    };
    let allow_short = match params.get_item("allow_short")? {
        Some(v) => v.extract()?,
        None => false,
    };
    match strategy {
        "momentum" => Ok(StrategySpec::Momentum(MomentumParams {
            fast: get("fast")?.extract()?,
            slow: get("slow")?.extract()?,
            allow_short,
        })),
        "mean_reversion" => Ok(StrategySpec::MeanReversion(MeanReversionParams {
            window: get("window")?.extract()?,
            entry_z: get("entry_z")?.extract()?,
            exit_z: get("exit_z")?.extract()?,
            allow_short,
        })),
        other => Err(PyValueError::new_err(format!(
            "`strategy` must be \"momentum\" or \"mean_reversion\", was {other:?}"
        ))),
    }
}

fn spec_params<'py>(py: Python<'py>, spec: &StrategySpec) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    match spec {
        StrategySpec::Momentum(p) => {
            dict.set_item("fast", p.fast)?;
            dict.set_item("slow", p.slow)?;
            dict.set_item("allow_short", p.allow_short)?;
        }
        StrategySpec::MeanReversion(p) => {
            dict.set_item("window", p.window)?;
            dict.set_item("entry_z", p.entry_z)?;
            dict.set_item("exit_z", p.exit_z)?;
            dict.set_item("allow_short", p.allow_short)?;
        }
    }
    Ok(dict)
}

/// The backtester: capital, costs, fill timing, sizing, risk limits and the metrics'
/// annualization, checked once (raises :class:`InvalidParameterError` listing every
/// bad field).
///
/// Defaults: 10,000 of capital, no costs, ``fill_timing="next_open"`` (market orders
/// fill at the next bar's open), ``sizing="fraction_of_equity"`` with ``size=1.0`` (all
/// in), long only, whole units, 252 periods per year.
#[pyclass(name = "Backtester", module = "quantcore", frozen)]
pub struct PyBacktester {
    inner: Backtester,
}

#[pymethods]
impl PyBacktester {
    #[new]
    #[pyo3(signature = (*, initial_capital=10_000.0, execution=None, fill_timing="next_open", sizing="fraction_of_equity", size=1.0, risk_limits=None, fractional=false, periods_per_year=252.0, risk_free_rate=0.0, sortino_target=0.0))]
    #[allow(clippy::too_many_arguments)] // the configuration's fields
    fn new(
        initial_capital: f64,
        execution: Option<&PyExecutionModel>,
        fill_timing: &str,
        sizing: &str,
        size: f64,
        risk_limits: Option<&PyRiskLimits>,
        fractional: bool,
        periods_per_year: f64,
        risk_free_rate: f64,
        sortino_target: f64,
    ) -> PyResult<Self> {
        let config = BacktestConfig {
            initial_capital,
            execution: execution.map(|e| e.inner).unwrap_or_default(),
            fill_timing: self::fill_timing(fill_timing)?,
            sizing: self::sizing(sizing, size)?,
            risk_limits: risk_limits.map(|r| r.inner).unwrap_or_default(),
            fractional,
            metrics: MetricsConfig {
                periods_per_year,
                risk_free_rate,
                sortino_target,
            },
        };
        Ok(PyBacktester {
            inner: Backtester::new(config).into_py()?,
        })
    }

    /// Runs ``strategy`` over ``series``: a :class:`MomentumStrategy`, a
    /// :class:`MeanReversionStrategy` (GIL released) or a callable ``f(ctx) ->
    /// decision`` taking a :class:`StrategyContext` (GIL held; see :class:`Decision`
    /// for what it may return).
    fn run(
        &self,
        py: Python<'_>,
        series: &Bound<'_, PyBarSeries>,
        strategy: &Bound<'_, PyAny>,
    ) -> PyResult<PyBacktestResult> {
        let bars = &series.get().inner;
        let backtester = &self.inner;
        let result = match strategy_arg(strategy)? {
            StrategyArg::Builtin(mut builtin) => {
                py.detach(|| backtester.run(bars, &mut builtin)).into_py()?
            }
            StrategyArg::Callable(callable) => {
                let name = bars
                    .symbol()
                    .unwrap_or(quantcore::backtest::DEFAULT_SYMBOL)
                    .to_owned();
                run_callable(
                    py,
                    callable.bind(py),
                    vec![series.clone().unbind()],
                    vec![name],
                    |mut strategy| backtester.run(bars, &mut strategy),
                )?
            }
        };
        Ok(PyBacktestResult { inner: result })
    }

    /// Runs ``strategy`` over several series aligned by timestamp with one cash pool. A
    /// built-in strategy gets one independent copy per symbol; a callable sees every
    /// symbol's bars (``ctx.symbol``).
    fn run_multi(
        &self,
        py: Python<'_>,
        series: Vec<Bound<'_, PyBarSeries>>,
        strategy: &Bound<'_, PyAny>,
    ) -> PyResult<PyBacktestResult> {
        let owned: Vec<BarSeries> = series.iter().map(|s| s.get().inner.clone()).collect();
        let backtester = &self.inner;
        let result = match strategy_arg(strategy)? {
            StrategyArg::Builtin(builtin) => {
                let mut per_symbol = PerSymbol::new(vec![builtin; owned.len()]);
                py.detach(|| backtester.run_multi(&owned, &mut per_symbol))
                    .into_py()?
            }
            StrategyArg::Callable(callable) => {
                let names = owned
                    .iter()
                    .enumerate()
                    .map(|(i, s)| {
                        s.symbol()
                            .map_or_else(|| format!("series{i}"), str::to_owned)
                    })
                    .collect();
                run_callable(
                    py,
                    callable.bind(py),
                    series.iter().map(|s| s.clone().unbind()).collect(),
                    names,
                    |mut strategy| backtester.run_multi(&owned, &mut strategy),
                )?
            }
        };
        Ok(PyBacktestResult { inner: result })
    }

    // The core's name (vectorbt's), a method of the backtester in both.
    #[allow(clippy::wrong_self_convention)]
    /// Runs boolean entry and exit signals (bool arrays, one value per bar, read in
    /// place): flat and ``entries[i]`` buys with the configured sizing, long and
    /// ``exits[i]`` closes; both on one bar do nothing (vectorbt's ``from_signals``).
    fn from_signals(
        &self,
        py: Python<'_>,
        series: &PyBarSeries,
        entries: &Bound<'_, PyAny>,
        exits: &Bound<'_, PyAny>,
    ) -> PyResult<PyBacktestResult> {
        let (entries, exits) = (bool_array(entries, "entries")?, bool_array(exits, "exits")?);
        let (entry, exit) = (slice(&entries), slice(&exits));
        let (bars, backtester) = (&series.inner, &self.inner);
        let result = py
            .detach(|| backtester.from_signals(bars, entry, exit))
            .into_py()?;
        Ok(PyBacktestResult { inner: result })
    }

    /// One backtest per parameter set of ``grid`` (dicts: ``fast``/``slow`` for
    /// ``"momentum"``, ``window``/``entry_z``/``exit_z`` for ``"mean_reversion"``,
    /// optional ``allow_short``), in parallel with the GIL released. Returns a
    /// :class:`~quantcore.SweepTable` in grid order, or sorted by ``sort_by`` (a metric
    /// name; undefined values last).
    #[pyo3(signature = (series, strategy, grid, *, sort_by=None, descending=true))]
    fn sweep<'py>(
        &self,
        py: Python<'py>,
        series: &PyBarSeries,
        strategy: &str,
        grid: Vec<Bound<'py, PyDict>>,
        sort_by: Option<&str>,
        descending: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let specs = grid
            .iter()
            .map(|params| spec_from(strategy, params))
            .collect::<PyResult<Vec<_>>>()?;
        let key = sort_by.map(metric_key).transpose()?;
        let (bars, backtester) = (&series.inner, &self.inner);
        let table = py
            .detach(|| {
                let mut table = backtester.sweep(bars, &specs, StrategySpec::build)?;
                if let Some(key) = key {
                    table.sort_by_metric(key, descending);
                }
                Ok::<_, quantcore::Error>(table)
            })
            .into_py()?;
        let rows = PyList::empty(py);
        for row in &table.rows {
            let entry = PyDict::new(py);
            entry.set_item("strategy", strategy)?;
            entry.set_item("params", spec_params(py, &row.params)?)?;
            entry.set_item("metrics", metrics_dict(py, &row.metrics)?)?;
            rows.append(entry)?;
        }
        py.import("quantcore._tables")?
            .getattr("SweepTable")?
            .call1((rows,))
    }

    fn __repr__(&self) -> String {
        format!("Backtester({:?})", self.inner.config())
    }
}

/// Registers the classes.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyBacktester>()?;
    m.add_class::<PyBacktestResult>()?;
    m.add_class::<PyMomentumStrategy>()?;
    m.add_class::<PyMeanReversionStrategy>()?;
    m.add_class::<PyDecision>()?;
    m.add_class::<PyStrategyContext>()?;
    Ok(())
}
