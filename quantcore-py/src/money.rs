//! The money core: `Portfolio`, `Order`, `RiskLimits`, `ExecutionModel`.
//!
//! Orders name their instrument by symbol; the portfolio resolves it to the core's
//! `SymbolId` when the order is executed or checked. Records (positions, fills, round
//! trips, snapshots) come back as dicts through the core's serde form, with the symbol
//! name added.

use std::sync::atomic::{AtomicU64, Ordering};

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use quantcore::execution::{CommissionModel, ExecutionModel, OrderOutcome};
use quantcore::order::{Instrument, Order, OrderKind, OrderStatus, Side, SymbolId};
use quantcore::portfolio::Portfolio;
use quantcore::risk::RiskLimits;
use quantcore::{Bar, RoundTrip};

use crate::errors::{IntoPyResult, violation_to_py_err};
use crate::metrics::to_python;

/// Ids for orders created without one.
static NEXT_ORDER_ID: AtomicU64 = AtomicU64::new(1);

fn side(text: &str) -> PyResult<Side> {
    match text.to_ascii_lowercase().as_str() {
        "buy" => Ok(Side::Buy),
        "sell" => Ok(Side::Sell),
        _ => Err(PyValueError::new_err(format!(
            "`side` must be \"buy\" or \"sell\", was {text:?}"
        ))),
    }
}

/// Pre-trade risk limits every order must pass.
///
/// Defaults: a position may be worth up to 100 % of equity
/// (``max_position_fraction=1.0``), no per-order notional cap, no cap on open
/// positions, no short selling, no drawdown kill switch. Raises
/// :class:`InvalidParameterError` listing every bad field.
#[pyclass(name = "RiskLimits", module = "quantcore", frozen)]
#[derive(Clone)]
pub struct PyRiskLimits {
    pub inner: RiskLimits,
}

#[pymethods]
impl PyRiskLimits {
    #[new]
    #[pyo3(signature = (*, max_position_fraction=1.0, max_order_notional=None, max_open_positions=None, allow_short=false, max_drawdown=None))]
    fn new(
        max_position_fraction: f64,
        max_order_notional: Option<f64>,
        max_open_positions: Option<usize>,
        allow_short: bool,
        max_drawdown: Option<f64>,
    ) -> PyResult<Self> {
        let inner = RiskLimits {
            max_position_fraction,
            max_order_notional,
            max_open_positions,
            allow_short,
            max_drawdown,
        };
        inner.validate().into_py()?;
        Ok(PyRiskLimits { inner })
    }

    /// The largest position notional as a fraction of equity.
    #[getter]
    fn max_position_fraction(&self) -> f64 {
        self.inner.max_position_fraction
    }

    /// The largest notional of one order, or ``None``.
    #[getter]
    fn max_order_notional(&self) -> Option<f64> {
        self.inner.max_order_notional
    }

    /// The most positions open at once, or ``None``.
    #[getter]
    fn max_open_positions(&self) -> Option<usize> {
        self.inner.max_open_positions
    }

    /// Whether a sell may take a position below zero.
    #[getter]
    fn allow_short(&self) -> bool {
        self.inner.allow_short
    }

    /// The drawdown (a fraction) at which new exposure is halted, or ``None``.
    #[getter]
    fn max_drawdown(&self) -> Option<f64> {
        self.inner.max_drawdown
    }

    fn __repr__(&self) -> String {
        format!("{:?}", self.inner)
    }
}

/// How simulated orders fill: commission (``commission_rate`` of notional plus
/// ``fixed_fee`` per fill) and slippage of market orders in basis points, against the
/// trader. Defaults: no costs.
#[pyclass(name = "ExecutionModel", module = "quantcore", frozen)]
#[derive(Clone)]
pub struct PyExecutionModel {
    pub inner: ExecutionModel,
}

#[pymethods]
impl PyExecutionModel {
    #[new]
    #[pyo3(signature = (*, commission_rate=0.0, fixed_fee=0.0, slippage_bps=0.0))]
    fn new(commission_rate: f64, fixed_fee: f64, slippage_bps: f64) -> PyResult<Self> {
        let inner = ExecutionModel {
            commission: CommissionModel {
                rate: commission_rate,
                fixed_fee,
            },
            slippage_bps,
        };
        inner.validate().into_py()?;
        Ok(PyExecutionModel { inner })
    }

    /// Fraction of notional charged per fill.
    #[getter]
    fn commission_rate(&self) -> f64 {
        self.inner.commission.rate
    }

    /// Fixed fee per fill.
    #[getter]
    fn fixed_fee(&self) -> f64 {
        self.inner.commission.fixed_fee
    }

    /// Slippage of market orders, basis points.
    #[getter]
    fn slippage_bps(&self) -> f64 {
        self.inner.slippage_bps
    }

    /// The commission on a fill of ``notional``.
    fn commission(&self, notional: f64) -> f64 {
        self.inner.commission.commission(notional)
    }

    /// The fill price of a market order on ``side`` at ``reference`` (slippage
    /// applied against the trader).
    fn market_price(&self, side: &str, reference: f64) -> PyResult<f64> {
        Ok(self.inner.market_price(self::side(side)?, reference))
    }

    fn __repr__(&self) -> String {
        format!("{:?}", self.inner)
    }
}

/// An order for one instrument, named by symbol. Create with :meth:`market` or
/// :meth:`limit`; a :class:`Portfolio` executes it and updates its ``status``.
#[pyclass(name = "Order", module = "quantcore")]
pub struct PyOrder {
    symbol: String,
    inner: Order,
}

fn next_id(id: Option<u64>) -> u64 {
    id.unwrap_or_else(|| NEXT_ORDER_ID.fetch_add(1, Ordering::Relaxed))
}

#[pymethods]
impl PyOrder {
    /// A market order: ``side`` is ``"buy"`` or ``"sell"``, ``quantity`` > 0 units.
    #[staticmethod]
    #[pyo3(signature = (symbol, side, quantity, *, id=None, created_at=0, stop_loss=None, take_profit=None))]
    fn market(
        symbol: String,
        side: &str,
        quantity: f64,
        id: Option<u64>,
        created_at: i64,
        stop_loss: Option<f64>,
        take_profit: Option<f64>,
    ) -> PyResult<Self> {
        let order = Order::market(
            next_id(id),
            SymbolId(0),
            self::side(side)?,
            quantity,
            created_at,
        );
        Ok(PyOrder {
            symbol,
            inner: with_levels(order, stop_loss, take_profit),
        })
    }

    /// A limit order: fills when a bar trades through ``limit_price``, at the limit
    /// or better.
    #[staticmethod]
    #[pyo3(signature = (symbol, side, quantity, limit_price, *, id=None, created_at=0, stop_loss=None, take_profit=None))]
    #[allow(clippy::too_many_arguments)] // the order's fields
    fn limit(
        symbol: String,
        side: &str,
        quantity: f64,
        limit_price: f64,
        id: Option<u64>,
        created_at: i64,
        stop_loss: Option<f64>,
        take_profit: Option<f64>,
    ) -> PyResult<Self> {
        let order = Order::limit(
            next_id(id),
            SymbolId(0),
            self::side(side)?,
            quantity,
            limit_price,
            created_at,
        );
        Ok(PyOrder {
            symbol,
            inner: with_levels(order, stop_loss, take_profit),
        })
    }

    /// The order id.
    #[getter]
    fn id(&self) -> u64 {
        self.inner.id
    }

    /// The instrument's symbol.
    #[getter]
    fn symbol(&self) -> &str {
        &self.symbol
    }

    /// ``"buy"`` or ``"sell"``.
    #[getter]
    fn side(&self) -> &'static str {
        self.inner.side.as_str()
    }

    /// ``"market"`` or ``"limit"``.
    #[getter]
    fn kind(&self) -> &'static str {
        self.inner.kind.as_str()
    }

    /// Units to trade (> 0).
    #[getter]
    fn quantity(&self) -> f64 {
        self.inner.quantity
    }

    /// The limit price of a limit order, else ``None``.
    #[getter]
    fn limit_price(&self) -> Option<f64> {
        self.inner.kind.limit_price()
    }

    /// ``"new"``, ``"filled"``, ``"rejected"`` or ``"cancelled"``.
    #[getter]
    fn status(&self) -> &'static str {
        match self.inner.status {
            OrderStatus::New => "new",
            OrderStatus::Filled => "filled",
            OrderStatus::Rejected { .. } => "rejected",
            OrderStatus::Cancelled => "cancelled",
        }
    }

    /// Why the order was rejected, else ``None``.
    #[getter]
    fn reject_reason(&self) -> Option<&str> {
        match &self.inner.status {
            OrderStatus::Rejected { reason } => Some(reason),
            _ => None,
        }
    }

    /// The fill price once filled.
    #[getter]
    fn fill_price(&self) -> Option<f64> {
        self.inner.fill_price
    }

    /// The fill time once filled (Unix seconds).
    #[getter]
    fn filled_at(&self) -> Option<i64> {
        self.inner.filled_at
    }

    /// Creation time (Unix seconds).
    #[getter]
    fn created_at(&self) -> i64 {
        self.inner.created_at
    }

    /// Stop-loss level carried to the position, if any.
    #[getter]
    fn stop_loss(&self) -> Option<f64> {
        self.inner.stop_loss
    }

    /// Take-profit level carried to the position, if any.
    #[getter]
    fn take_profit(&self) -> Option<f64> {
        self.inner.take_profit
    }

    /// Withdraws an open order; raises :class:`OrderError` if it is not open.
    fn cancel(&mut self) -> PyResult<()> {
        self.inner.cancel().into_py()
    }

    fn __repr__(&self) -> String {
        let limit = match self.inner.kind {
            OrderKind::Limit { price } => format!(" @ {price}"),
            OrderKind::Market => String::new(),
        };
        format!(
            "Order(id={}, {} {} {}{limit}, {})",
            self.inner.id, self.inner.side, self.inner.quantity, self.symbol, self.inner.status
        )
    }
}

fn with_levels(order: Order, stop_loss: Option<f64>, take_profit: Option<f64>) -> Order {
    let order = match stop_loss {
        Some(level) => order.with_stop_loss(level),
        None => order,
    };
    match take_profit {
        Some(level) => order.with_take_profit(level),
        None => order,
    }
}

/// A bar from a dict (``timestamp``, ``open``, ``high``, ``low``, ``close``, optional
/// ``volume``), as ``BarSeries[i]`` gives.
fn bar_from(obj: &Bound<'_, PyAny>) -> PyResult<Bar> {
    let get = |name: &str| -> PyResult<Bound<'_, PyAny>> {
        obj.get_item(name).map_err(|_| {
            PyValueError::new_err(format!(
                "`bar` needs a {name:?} entry (a dict as BarSeries[i] gives)"
            ))
        })
    };
    Ok(Bar {
        timestamp: get("timestamp")?.extract()?,
        open: get("open")?.extract()?,
        high: get("high")?.extract()?,
        low: get("low")?.extract()?,
        close: get("close")?.extract()?,
        volume: match obj.get_item("volume") {
            Ok(v) => v.extract()?,
            Err(_) => 0.0,
        },
    })
}

/// Cash, positions and closed round trips, valued against an initial capital: the
/// one place average prices and PnL are computed.
#[pyclass(name = "Portfolio", module = "quantcore")]
pub struct PyPortfolio {
    inner: Portfolio,
}

impl PyPortfolio {
    fn name(&self, id: SymbolId) -> Option<&str> {
        self.inner.instruments().symbol(id)
    }

    fn record<'py, T: serde::Serialize>(
        &self,
        py: Python<'py>,
        value: &T,
        symbol: SymbolId,
    ) -> PyResult<Bound<'py, PyAny>> {
        let dict = to_python(py, value)?;
        dict.set_item("symbol", self.name(symbol))?;
        Ok(dict)
    }

    fn round_trip<'py>(&self, py: Python<'py>, trip: &RoundTrip) -> PyResult<Bound<'py, PyAny>> {
        let dict = self.record(py, trip, trip.symbol)?;
        dict.set_item("side", trip.side.entry_side().as_str())?;
        Ok(dict)
    }

    fn resolve(&self, order: &mut PyOrder) -> PyResult<()> {
        order.inner.symbol = self.inner.resolve(&order.symbol).into_py()?;
        Ok(())
    }
}

#[pymethods]
impl PyPortfolio {
    #[new]
    #[pyo3(signature = (initial_capital, *, allow_short=false, symbols=None))]
    fn new(
        initial_capital: f64,
        allow_short: bool,
        symbols: Option<Vec<String>>,
    ) -> PyResult<Self> {
        let mut inner = Portfolio::new(initial_capital)
            .into_py()?
            .with_short_selling(allow_short);
        for symbol in symbols.unwrap_or_default() {
            inner.register(Instrument::new(symbol)).into_py()?;
        }
        Ok(PyPortfolio { inner })
    }

    /// Registers an instrument (whole units unless ``fractional``) with a flat
    /// position.
    #[pyo3(signature = (symbol, *, fractional=false))]
    fn register(&mut self, symbol: String, fractional: bool) -> PyResult<()> {
        let instrument = if fractional {
            Instrument::fractional(symbol)
        } else {
            Instrument::new(symbol)
        };
        self.inner.register(instrument).into_py().map(|_| ())
    }

    /// Runs an order through the whole money pipeline against ``bar`` (a dict as
    /// ``BarSeries[i]``): validation, a simulated fill (market orders at
    /// ``reference_price`` plus slippage; limit orders when the bar reaches the limit),
    /// the risk check at the fill price, booking, the order's status.
    ///
    /// Returns ``{"status": "filled" | "pending" | "rejected", "fill": dict | None,
    /// "round_trip": dict | None, "violation": str | None}``; a rejection is a result,
    /// not an exception (:meth:`check` raises instead). Raises :class:`OrderError` for
    /// an invalid order.
    #[pyo3(signature = (order, bar, reference_price, *, limits=None, execution=None))]
    fn execute<'py>(
        &mut self,
        py: Python<'py>,
        order: &mut PyOrder,
        bar: &Bound<'py, PyAny>,
        reference_price: f64,
        limits: Option<&PyRiskLimits>,
        execution: Option<&PyExecutionModel>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let bar = bar_from(bar)?;
        self.resolve(order)?;
        let limits = limits.map(|l| l.inner).unwrap_or_default();
        let model = execution.map(|e| e.inner).unwrap_or_default();
        let outcome = model
            .execute(
                &mut order.inner,
                &mut self.inner,
                &limits,
                &bar,
                reference_price,
            )
            .into_py()?;
        let out = PyDict::new(py);
        let (status, fill, trip, violation) = match outcome {
            OrderOutcome::Filled { fill, round_trip } => ("filled", Some(fill), round_trip, None),
            OrderOutcome::Pending => ("pending", None, None, None),
            OrderOutcome::Rejected(violation) => ("rejected", None, None, Some(violation)),
        };
        out.set_item("status", status)?;
        let fill = match fill {
            Some(fill) => {
                let dict = self.record(py, &fill, fill.symbol)?;
                dict.set_item("side", fill.side.as_str())?;
                Some(dict)
            }
            None => None,
        };
        out.set_item("fill", fill)?;
        out.set_item(
            "round_trip",
            trip.map(|t| self.round_trip(py, &t)).transpose()?,
        )?;
        out.set_item("violation", violation.map(|v| v.to_string()))?;
        Ok(out)
    }

    /// Checks ``order`` at ``price`` against the risk limits (and the cash the
    /// commission needs); raises :class:`OrderRejectedError` naming the broken limit
    /// and by how much (``details["excess"]``).
    #[pyo3(signature = (order, price, *, limits=None, execution=None))]
    fn check(
        &self,
        order: &mut PyOrder,
        price: f64,
        limits: Option<&PyRiskLimits>,
        execution: Option<&PyExecutionModel>,
    ) -> PyResult<()> {
        self.resolve(order)?;
        let limits = limits.map(|l| l.inner).unwrap_or_default();
        let model = execution.map(|e| e.inner).unwrap_or_default();
        limits
            .check(&self.inner, &order.inner, price, &model.commission)
            .map_err(|v| violation_to_py_err(v, order.inner.id))
    }

    /// Marks ``symbol`` at ``price`` (for equity and unrealized PnL).
    fn mark(&mut self, symbol: &str, price: f64) -> PyResult<()> {
        let id = self.inner.resolve(symbol).into_py()?;
        self.inner.mark(id, price).into_py()
    }

    /// Updates the running peak and maximum drawdown; returns the current drawdown.
    fn update_drawdown(&mut self) -> f64 {
        self.inner.update_drawdown()
    }

    /// The position in ``symbol`` as a dict (``quantity`` signed: long > 0).
    fn position<'py>(&self, py: Python<'py>, symbol: &str) -> PyResult<Bound<'py, PyAny>> {
        let position = self.inner.position_of(symbol).into_py()?;
        self.record(py, position, position.symbol)
    }

    /// Every registered instrument's position, as dicts.
    fn positions<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyAny>>> {
        self.inner
            .positions()
            .iter()
            .map(|p| self.record(py, p, p.symbol))
            .collect()
    }

    /// The closed round trips (trades), oldest first, as dicts.
    fn round_trips<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyAny>>> {
        self.inner
            .round_trips()
            .iter()
            .map(|t| self.round_trip(py, t))
            .collect()
    }

    /// The portfolio's value now, stamped with ``timestamp``.
    fn snapshot<'py>(&self, py: Python<'py>, timestamp: i64) -> PyResult<Bound<'py, PyAny>> {
        to_python(py, &self.inner.snapshot(timestamp))
    }

    /// The registered symbols, in registration order.
    #[getter]
    fn symbols(&self) -> Vec<String> {
        self.inner
            .instruments()
            .iter()
            .map(|(_, i)| i.symbol.clone())
            .collect()
    }

    /// Starting capital.
    #[getter]
    fn initial_capital(&self) -> f64 {
        self.inner.initial_capital()
    }

    /// Cash on hand.
    #[getter]
    fn cash(&self) -> f64 {
        self.inner.cash()
    }

    /// Cash plus the marked value of every position.
    #[getter]
    fn equity(&self) -> f64 {
        self.inner.equity()
    }

    /// Marked value of the positions.
    #[getter]
    fn positions_value(&self) -> f64 {
        self.inner.positions_value()
    }

    /// Realized PnL before fees.
    #[getter]
    fn realized_pnl(&self) -> f64 {
        self.inner.realized_pnl()
    }

    /// Unrealized PnL at the marks.
    #[getter]
    fn unrealized_pnl(&self) -> f64 {
        self.inner.unrealized_pnl()
    }

    /// Commission paid.
    #[getter]
    fn total_commission(&self) -> f64 {
        self.inner.total_commission()
    }

    /// ``equity - initial_capital``.
    #[getter]
    fn total_pnl(&self) -> f64 {
        self.inner.total_pnl()
    }

    /// ``equity / initial_capital - 1``.
    #[getter]
    fn total_return(&self) -> f64 {
        self.inner.total_return()
    }

    /// The largest drawdown seen by :meth:`update_drawdown` (<= 0).
    #[getter]
    fn max_drawdown(&self) -> f64 {
        self.inner.max_drawdown()
    }

    /// Number of open positions.
    #[getter]
    fn open_position_count(&self) -> usize {
        self.inner.open_position_count()
    }

    fn __repr__(&self) -> String {
        format!(
            "Portfolio(equity={:.2}, cash={:.2}, open positions={})",
            self.inner.equity(),
            self.inner.cash(),
            self.inner.open_position_count()
        )
    }
}

/// Registers the classes.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyRiskLimits>()?;
    m.add_class::<PyExecutionModel>()?;
    m.add_class::<PyOrder>()?;
    m.add_class::<PyPortfolio>()?;
    Ok(())
}
