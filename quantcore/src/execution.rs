//! Simulated execution: when and at what price an order fills, and what it costs.
//!
//! This module owns [`CommissionModel`], [`ExecutionModel`] (commission plus slippage),
//! [`Fill`], the record of an executed trade that
//! [`Portfolio::apply_fill`](crate::portfolio::Portfolio::apply_fill) books, and
//! [`ExecutionModel::execute`], the one pipeline an order goes through (validate, fill,
//! risk check at the fill price, book, update the order) with its [`OrderOutcome`].
//!
//! # Conventions
//! | quantity | formula |
//! |---|---|
//! | notional | `quantity * price` (account currency) |
//! | commission | `rate * notional + fixed_fee`, per fill (per side of a round trip) |
//! | market buy price | `reference * (1 + slippage_bps / 10_000)` |
//! | market sell price | `reference * (1 - slippage_bps / 10_000)` |
//! | limit buy | fills when `low <= limit`, at `min(limit, open)` |
//! | limit sell | fills when `high >= limit`, at `max(limit, open)` |
//!
//! - The *reference price* of a market order is chosen by the caller: the backtester
//!   passes this bar's close or the next bar's open (its fill timing); a stop exit
//!   passes the trigger price. Slippage always moves it against the trader.
//! - A limit order fills at its limit or better and takes no slippage: when the bar
//!   opens through the limit (a gap), it fills at the open, which is the better price.
//! - Fills are whole; there is no volume model and so no partial fill.
//!
//! ```
//! use quantcore::execution::{CommissionModel, ExecutionModel};
//! use quantcore::order::{Order, Side, SymbolId};
//! use quantcore::Bar;
//! let model = ExecutionModel::new(CommissionModel::new(0.001, 0.0)?, 10.0)?;
//! let order = Order::market(1, SymbolId(0), Side::Buy, 10.0, 0);
//! let fill = model.fill_market(&order, 100.0, 60)?;
//! assert!((fill.price - 100.1).abs() < 1e-12); // 10 bps above the reference
//! assert!((fill.commission - 1.001).abs() < 1e-12); // 0.1 % of 1_001
//!
//! // A buy limit at 95 against a bar that only dips to 96: no fill.
//! let limit = Order::limit(2, SymbolId(0), Side::Buy, 10.0, 95.0, 0);
//! let bar = Bar { timestamp: 120, open: 99.0, high: 101.0, low: 96.0, close: 100.0, volume: 1e4 };
//! assert_eq!(model.fill_limit(&limit, &bar)?, None);
//! # Ok::<(), quantcore::Error>(())
//! ```

use serde::{Deserialize, Serialize};

use crate::data::Bar;
use crate::error::{Error, Result};
use crate::order::{Order, OrderKind, Side, SymbolId, check_price, validate_order};
use crate::portfolio::{Portfolio, RoundTrip};
use crate::risk::{RiskLimits, RiskViolation, check_risk_limits};

/// Commission charged on each fill: a fraction of notional plus a fixed fee.
///
/// Defaults (spelled out in [`Default`]): `rate` 0, `fixed_fee` 0 (no commission).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CommissionModel {
    /// Fraction of notional per fill, e.g. `0.001` for 10 bps; `>= 0`.
    pub rate: f64,
    /// Fixed fee per fill in account currency; `>= 0`.
    pub fixed_fee: f64,
}

impl Default for CommissionModel {
    fn default() -> Self {
        CommissionModel {
            rate: 0.0,
            fixed_fee: 0.0,
        }
    }
}

impl CommissionModel {
    /// A checked commission model.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] listing each negative or non-finite field.
    pub fn new(rate: f64, fixed_fee: f64) -> Result<Self> {
        let model = CommissionModel { rate, fixed_fee };
        model.validate()?;
        Ok(model)
    }

    /// Checks every field.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] whose problems name each negative or non-finite field.
    pub fn validate(&self) -> Result<()> {
        into_config_error("commission model", self.problems())
    }

    fn problems(&self) -> Vec<Error> {
        self.each_problem().collect()
    }

    /// True when every field is valid: the check of every fill, four comparisons.
    #[inline]
    fn is_valid(&self) -> bool {
        self.rate.is_finite()
            && self.rate >= 0.0
            && self.fixed_fee.is_finite()
            && self.fixed_fee >= 0.0
    }

    /// The problems one by one, without collecting them.
    fn each_problem(&self) -> impl Iterator<Item = Error> {
        [("rate", self.rate), ("fixed_fee", self.fixed_fee)]
            .into_iter()
            .filter(|(_, value)| !(value.is_finite() && *value >= 0.0))
            .map(|(name, value)| {
                Error::invalid_parameter(name, value, "must be finite and non-negative")
            })
    }

    /// The commission on a fill of `notional` (sign ignored): `rate * |notional| + fixed_fee`.
    ///
    /// ```
    /// use quantcore::execution::CommissionModel;
    /// let model = CommissionModel::new(0.001, 1.0)?;
    /// assert!((model.commission(2_000.0) - 3.0).abs() < 1e-12);
    /// # Ok::<(), quantcore::Error>(())
    /// ```
    #[inline]
    pub fn commission(&self, notional: f64) -> f64 {
        self.rate * notional.abs() + self.fixed_fee
    }
}

pub(crate) fn into_config_error(config: &'static str, problems: Vec<Error>) -> Result<()> {
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::InvalidConfig { config, problems })
    }
}

/// How simulated orders fill: commission and slippage.
///
/// Defaults (spelled out in [`Default`]): no commission, `slippage_bps` 0.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExecutionModel {
    pub commission: CommissionModel,
    /// Slippage of market orders in basis points of the reference price, in `[0, 10_000)`.
    pub slippage_bps: f64,
}

impl Default for ExecutionModel {
    fn default() -> Self {
        ExecutionModel {
            commission: CommissionModel::default(),
            slippage_bps: 0.0,
        }
    }
}

impl ExecutionModel {
    /// A checked execution model.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] listing each bad field.
    pub fn new(commission: CommissionModel, slippage_bps: f64) -> Result<Self> {
        let model = ExecutionModel {
            commission,
            slippage_bps,
        };
        model.validate()?;
        Ok(model)
    }

    /// Checks every field, the commission's included.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] whose problems name each bad field.
    pub fn validate(&self) -> Result<()> {
        let mut problems = self.commission.problems();
        if !(0.0..10_000.0).contains(&self.slippage_bps) {
            problems.push(Error::invalid_parameter(
                "slippage_bps",
                self.slippage_bps,
                "must be in [0, 10000)",
            ));
        }
        into_config_error("execution model", problems)
    }

    /// The fill price of a market order: `reference` moved against the trader by the
    /// slippage (up for a buy, down for a sell).
    #[inline]
    pub fn market_price(&self, side: Side, reference: f64) -> f64 {
        reference * (1.0 + side.sign() * self.slippage_bps / 10_000.0)
    }

    /// The price at which a limit order fills against `bar`, if it does: a buy when
    /// `low <= limit`, at `min(limit, open)`; a sell when `high >= limit`, at
    /// `max(limit, open)`.
    #[inline]
    pub fn limit_price(side: Side, limit: f64, bar: &Bar) -> Option<f64> {
        match side {
            Side::Buy if bar.low <= limit => Some(limit.min(bar.open)),
            Side::Sell if bar.high >= limit => Some(limit.max(bar.open)),
            _ => None,
        }
    }

    /// Fills a market order at `reference_price` plus slippage, at `timestamp`.
    ///
    /// # Errors
    /// [`Error::OrderNotOpen`] for an order that is not new;
    /// [`Error::OrderKindMismatch`] for a limit order; [`Error::InvalidOrder`] for a bad
    /// quantity; [`Error::InvalidInput`] for a non-positive or non-finite reference
    /// price; [`Error::InvalidParameter`] when the model itself is invalid.
    pub fn fill_market(&self, order: &Order, reference_price: f64, timestamp: i64) -> Result<Fill> {
        self.check_order(order, false)?;
        check_price("reference_price", reference_price)?;
        let price = self.market_price(order.side, reference_price);
        Ok(self.make_fill(order, price, timestamp))
    }

    /// Fills a limit order against `bar` (at `bar.timestamp`), or returns `None` when
    /// the bar does not reach the limit.
    ///
    /// # Errors
    /// As [`fill_market`](Self::fill_market), with [`Error::OrderKindMismatch`] for a
    /// market order and [`Error::InvalidInput`] for a bad `open`, `high` or `low`.
    pub fn fill_limit(&self, order: &Order, bar: &Bar) -> Result<Option<Fill>> {
        self.check_order(order, true)?;
        let OrderKind::Limit { price: limit } = order.kind else {
            // check_order has rejected market orders already.
            return Ok(None);
        };
        if !(limit.is_finite() && limit > 0.0) {
            return Err(Error::InvalidOrder {
                order_id: order.id,
                field: "limit_price",
                value: limit,
                reason: "must be finite and positive",
            });
        }
        check_price("open", bar.open)?;
        check_price("high", bar.high)?;
        check_price("low", bar.low)?;
        Ok(Self::limit_price(order.side, limit, bar)
            .map(|price| self.make_fill(order, price, bar.timestamp)))
    }

    /// Fills any order against `bar`: a market order at `reference_price` plus
    /// slippage (at `bar.timestamp`), a limit order as [`fill_limit`](Self::fill_limit).
    ///
    /// # Errors
    /// As [`fill_market`](Self::fill_market) and [`fill_limit`](Self::fill_limit).
    pub fn fill_on_bar(
        &self,
        order: &Order,
        bar: &Bar,
        reference_price: f64,
    ) -> Result<Option<Fill>> {
        match order.kind {
            OrderKind::Market => self
                .fill_market(order, reference_price, bar.timestamp)
                .map(Some),
            OrderKind::Limit { .. } => self.fill_limit(order, bar),
        }
    }

    /// Checks the model, and that `order` is open, a limit order when `limit` (else a
    /// market order), and of a valid quantity.
    fn check_order(&self, order: &Order, limit: bool) -> Result<()> {
        if !(0.0..10_000.0).contains(&self.slippage_bps) {
            return Err(Error::invalid_parameter(
                "slippage_bps",
                self.slippage_bps,
                "must be in [0, 10000)",
            ));
        }
        if !self.commission.is_valid()
            && let Some(problem) = self.commission.each_problem().next()
        {
            return Err(problem);
        }
        if !order.is_open() {
            return Err(Error::OrderNotOpen {
                order_id: order.id,
                status: order.status.to_string(),
            });
        }
        let expected = if limit { "limit" } else { "market" };
        if matches!(order.kind, OrderKind::Limit { .. }) != limit {
            return Err(Error::OrderKindMismatch {
                order_id: order.id,
                expected,
                actual: order.kind.as_str(),
            });
        }
        if !(order.quantity.is_finite() && order.quantity > 0.0) {
            return Err(Error::InvalidOrder {
                order_id: order.id,
                field: "quantity",
                value: order.quantity,
                reason: "must be finite and positive",
            });
        }
        Ok(())
    }

    fn make_fill(&self, order: &Order, price: f64, timestamp: i64) -> Fill {
        Fill {
            order_id: order.id,
            symbol: order.symbol,
            side: order.side,
            quantity: order.quantity,
            price,
            commission: self.commission.commission(order.quantity * price),
            timestamp,
        }
    }
}

/// What became of an order given to [`ExecutionModel::execute`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OrderOutcome {
    /// The order filled and was booked; `round_trip` is set when it reduced, closed
    /// or flipped a position.
    Filled {
        fill: Fill,
        round_trip: Option<RoundTrip>,
    },
    /// A limit order the bar did not reach; it stays [`New`](crate::order::OrderStatus::New).
    Pending,
    /// The risk check refused it; the order is now
    /// [`Rejected`](crate::order::OrderStatus::Rejected) with the violation as reason.
    Rejected(RiskViolation),
}

impl ExecutionModel {
    /// Runs one order through the whole money pipeline against `bar`: validation,
    /// simulated fill ([`fill_on_bar`](Self::fill_on_bar): market orders at
    /// `reference_price` plus slippage), risk check at the fill price, booking in the
    /// portfolio, the order's status, and the order's stop-loss / take-profit copied
    /// to the position it opened or increased.
    ///
    /// The backtester, the service's trade role and the bindings call this, so an
    /// order is handled by the same rules everywhere.
    ///
    /// ```
    /// use quantcore::execution::{ExecutionModel, OrderOutcome};
    /// use quantcore::order::{Instrument, Order, OrderStatus, Side};
    /// use quantcore::portfolio::Portfolio;
    /// use quantcore::risk::{RiskLimits, RiskViolation};
    /// use quantcore::Bar;
    /// let mut portfolio = Portfolio::new(1_000.0)?;
    /// let x = portfolio.register(Instrument::new("X"))?;
    /// let model = ExecutionModel::default();
    /// let bar = Bar { timestamp: 60, open: 100.0, high: 101.0, low: 99.0, close: 100.0, volume: 0.0 };
    ///
    /// let mut buy = Order::market(1, x, Side::Buy, 5.0, 0).with_stop_loss(95.0);
    /// let outcome = model.execute(&mut buy, &mut portfolio, &RiskLimits::default(), &bar, bar.open)?;
    /// assert!(matches!(outcome, OrderOutcome::Filled { .. }));
    /// assert_eq!(buy.status, OrderStatus::Filled);
    /// assert_eq!(portfolio.position(x).unwrap().stop_loss, Some(95.0));
    ///
    /// // 6 more at 100 need 600 with 500 left: rejected, with the amounts.
    /// let mut more = Order::market(2, x, Side::Buy, 6.0, 0);
    /// let outcome = model.execute(&mut more, &mut portfolio, &RiskLimits::default(), &bar, bar.open)?;
    /// assert_eq!(outcome, OrderOutcome::Rejected(RiskViolation::InsufficientCash { required: 600.0, available: 500.0 }));
    /// assert!(matches!(more.status, OrderStatus::Rejected { .. }));
    /// # Ok::<(), quantcore::Error>(())
    /// ```
    ///
    /// An order without levels leaves the position's levels as they were; an order
    /// with levels replaces them.
    ///
    /// # Errors
    /// Each of these is detected before anything changes, so the order and the
    /// portfolio are left as they were: [`Error::OrderNotOpen`] for an order that is not new; the errors of
    /// [`validate_order`] (an invalid order); [`Error::InvalidInput`] for a bad
    /// reference price or bar; [`Error::ShortNotAllowed`] when the limits allow shorts
    /// but the portfolio does not.
    pub fn execute(
        &self,
        order: &mut Order,
        portfolio: &mut Portfolio,
        limits: &RiskLimits,
        bar: &Bar,
        reference_price: f64,
    ) -> Result<OrderOutcome> {
        validate_order(order, portfolio.instruments())?;
        self.execute_with(order, portfolio, limits, |model, order| {
            model.fill_on_bar(order, bar, reference_price)
        })
    }

    /// [`execute`](Self::execute) for a market order that fills at `timestamp`: the
    /// backtester's path, which then reads nothing of the bar but its time (the other
    /// columns of a long series are cold in cache at an order). The caller has checked
    /// the order with [`validate_order`] (the backtester does, to name the bar that
    /// decided it), so it is not checked twice.
    pub(crate) fn execute_market_at(
        &self,
        order: &mut Order,
        portfolio: &mut Portfolio,
        limits: &RiskLimits,
        timestamp: i64,
        reference_price: f64,
    ) -> Result<OrderOutcome> {
        self.execute_with(order, portfolio, limits, |model, order| {
            model
                .fill_market(order, reference_price, timestamp)
                .map(Some)
        })
    }

    /// The pipeline after the fill, for a valid order: `fill` is the simulated fill
    /// (or `None` for a limit the bar did not reach).
    #[inline]
    fn execute_with(
        &self,
        order: &mut Order,
        portfolio: &mut Portfolio,
        limits: &RiskLimits,
        fill: impl FnOnce(&Self, &Order) -> Result<Option<Fill>>,
    ) -> Result<OrderOutcome> {
        debug_assert!(validate_order(order, portfolio.instruments()).is_ok());
        let Some(fill) = fill(self, order)? else {
            return Ok(OrderOutcome::Pending);
        };
        if let Err(violation) =
            check_risk_limits(limits, portfolio, order, fill.price, &self.commission)
        {
            order.reject(violation.to_string())?;
            return Ok(OrderOutcome::Rejected(violation));
        }
        let round_trip = portfolio.apply_fill(&fill)?;
        order.record_fill(&fill)?;
        let position = portfolio.position(order.symbol);
        let opened_in_order_direction =
            position.is_some_and(|p| p.quantity * order.side.sign() > 0.0);
        if opened_in_order_direction && (order.stop_loss.is_some() || order.take_profit.is_some()) {
            portfolio.set_exit_levels(order.symbol, order.stop_loss, order.take_profit)?;
        }
        Ok(OrderOutcome::Filled { fill, round_trip })
    }
}

/// An executed trade: what filled, at what price, for what commission.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Fill {
    /// The order this fill executes.
    pub order_id: u64,
    pub symbol: SymbolId,
    pub side: Side,
    /// Units filled, `> 0`.
    pub quantity: f64,
    /// Price per unit, `> 0`, slippage included.
    pub price: f64,
    /// Commission paid, `>= 0`.
    pub commission: f64,
    /// Unix seconds UTC.
    pub timestamp: i64,
}

impl Fill {
    /// `quantity * price`.
    #[inline]
    pub fn notional(&self) -> f64 {
        self.quantity * self.price
    }

    /// Quantity with the side's sign: the change to the position.
    #[inline]
    pub fn signed_quantity(&self) -> f64 {
        self.side.sign() * self.quantity
    }

    /// Checks the numbers: quantity and price finite and positive, commission finite
    /// and non-negative.
    ///
    /// # Errors
    /// [`Error::InvalidFill`] naming the first bad field and its value.
    pub fn validate(&self) -> Result<()> {
        let invalid = |field, value, reason| {
            Err(Error::InvalidFill {
                order_id: self.order_id,
                field,
                value,
                reason,
            })
        };
        for (field, value) in [("quantity", self.quantity), ("price", self.price)] {
            if !(value.is_finite() && value > 0.0) {
                return invalid(field, value, "must be finite and positive");
            }
        }
        if !(self.commission.is_finite() && self.commission >= 0.0) {
            return invalid(
                "commission",
                self.commission,
                "must be finite and non-negative",
            );
        }
        Ok(())
    }
}

/// Reusable proptest strategies for execution values.
#[cfg(test)]
pub(crate) mod proptest_strategies {
    use proptest::prelude::*;

    use super::{CommissionModel, ExecutionModel};

    /// A commission model: rate up to 1 %, fixed fee up to 2.
    pub(crate) fn commission_model() -> impl Strategy<Value = CommissionModel> {
        (0.0f64..0.01, prop_oneof![Just(0.0), 0.0f64..2.0])
            .prop_map(|(rate, fixed_fee)| CommissionModel { rate, fixed_fee })
    }

    /// An execution model: a commission model and up to 50 bps of slippage.
    pub(crate) fn execution_model() -> impl Strategy<Value = ExecutionModel> {
        (commission_model(), prop_oneof![Just(0.0), 0.0f64..50.0]).prop_map(
            |(commission, slippage_bps)| ExecutionModel {
                commission,
                slippage_bps,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(open: f64, high: f64, low: f64, close: f64) -> Bar {
        Bar {
            timestamp: 3_600,
            open,
            high,
            low,
            close,
            volume: 1_000.0,
        }
    }

    fn model(rate: f64, fixed: f64, bps: f64) -> ExecutionModel {
        ExecutionModel::new(CommissionModel::new(rate, fixed).unwrap(), bps).unwrap()
    }

    fn approx(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-9, "{a} != {b}");
    }

    #[test]
    fn market_fills_move_against_the_trader() {
        let m = model(0.001, 2.0, 20.0);
        let buy = Order::market(1, SymbolId(0), Side::Buy, 10.0, 0);
        let fill = m.fill_market(&buy, 50.0, 99).unwrap();
        // 50 * (1 + 0.002) = 50.1; notional 501; commission 0.501 + 2 = 2.501.
        approx(fill.price, 50.1);
        approx(fill.commission, 2.501);
        assert_eq!(fill.timestamp, 99);
        assert_eq!(
            (fill.order_id, fill.side, fill.quantity),
            (1, Side::Buy, 10.0)
        );
        let sell = Order::market(2, SymbolId(0), Side::Sell, 10.0, 0);
        let fill = m.fill_market(&sell, 50.0, 99).unwrap();
        // 50 * (1 - 0.002) = 49.9; commission 0.499 + 2.
        approx(fill.price, 49.9);
        approx(fill.commission, 2.499);
    }

    #[test]
    fn limit_buy_fills_only_when_crossed_and_better_on_a_gap() {
        let m = model(0.0, 0.0, 25.0); // slippage must not touch limit fills
        let order = Order::limit(1, SymbolId(0), Side::Buy, 5.0, 100.0, 0);
        // Low 101 > limit 100: no fill.
        assert_eq!(
            m.fill_limit(&order, &bar(103.0, 104.0, 101.0, 102.0))
                .unwrap(),
            None
        );
        // Opens 102, dips to 99: fills at the limit, 100.
        let fill = m
            .fill_limit(&order, &bar(102.0, 103.0, 99.0, 101.0))
            .unwrap()
            .unwrap();
        assert_eq!(fill.price, 100.0);
        assert_eq!(fill.timestamp, 3_600);
        // Touches exactly 100: fills at 100.
        let fill = m
            .fill_limit(&order, &bar(101.0, 102.0, 100.0, 101.0))
            .unwrap()
            .unwrap();
        assert_eq!(fill.price, 100.0);
        // Gaps down to open at 97: fills at the open, better than the limit.
        let fill = m
            .fill_limit(&order, &bar(97.0, 98.0, 96.0, 97.5))
            .unwrap()
            .unwrap();
        assert_eq!(fill.price, 97.0);
    }

    #[test]
    fn limit_sell_mirrors() {
        let m = model(0.0, 0.0, 0.0);
        let order = Order::limit(1, SymbolId(0), Side::Sell, 5.0, 100.0, 0);
        assert_eq!(
            m.fill_limit(&order, &bar(97.0, 99.9, 96.0, 98.0)).unwrap(),
            None
        );
        let fill = m
            .fill_limit(&order, &bar(98.0, 101.0, 97.0, 99.0))
            .unwrap()
            .unwrap();
        assert_eq!(fill.price, 100.0);
        // Gap up to 104: sells at the open.
        let fill = m
            .fill_limit(&order, &bar(104.0, 105.0, 103.0, 104.0))
            .unwrap()
            .unwrap();
        assert_eq!(fill.price, 104.0);
    }

    #[test]
    fn fill_on_bar_dispatches_by_kind() {
        let m = model(0.0, 0.0, 100.0);
        let b = bar(10.0, 11.0, 9.0, 10.5);
        let market = Order::market(1, SymbolId(0), Side::Buy, 1.0, 0);
        let fill = m.fill_on_bar(&market, &b, b.open).unwrap().unwrap();
        approx(fill.price, 10.1); // the open plus 1 %
        let limit = Order::limit(2, SymbolId(0), Side::Buy, 1.0, 9.5, 0);
        assert_eq!(
            m.fill_on_bar(&limit, &b, b.open).unwrap().unwrap().price,
            9.5
        );
    }

    #[test]
    fn bad_inputs_are_typed_errors() {
        let m = model(0.0, 0.0, 0.0);
        let market = Order::market(1, SymbolId(0), Side::Buy, 1.0, 0);
        assert!(matches!(
            m.fill_market(&market, f64::NAN, 0),
            Err(Error::InvalidInput {
                field: "reference_price",
                ..
            })
        ));
        assert_eq!(
            m.fill_limit(&market, &bar(1.0, 1.0, 1.0, 1.0)),
            Err(Error::OrderKindMismatch {
                order_id: 1,
                expected: "limit",
                actual: "market"
            })
        );
        let mut done = market.clone();
        done.cancel().unwrap();
        assert_eq!(
            m.fill_market(&done, 1.0, 0),
            Err(Error::OrderNotOpen {
                order_id: 1,
                status: "cancelled".into()
            })
        );
        let zero = Order::market(3, SymbolId(0), Side::Buy, 0.0, 0);
        assert!(matches!(
            m.fill_market(&zero, 1.0, 0),
            Err(Error::InvalidOrder {
                field: "quantity",
                ..
            })
        ));
        let limit = Order::limit(4, SymbolId(0), Side::Buy, 1.0, 5.0, 0);
        assert!(matches!(
            m.fill_limit(&limit, &bar(5.0, 6.0, f64::NAN, 5.0)),
            Err(Error::InvalidInput { field: "low", .. })
        ));
        let broken = ExecutionModel {
            slippage_bps: f64::NAN,
            ..ExecutionModel::default()
        };
        assert!(matches!(
            broken.fill_market(&market, 1.0, 0),
            Err(Error::InvalidParameter {
                name: "slippage_bps",
                ..
            })
        ));
    }

    #[test]
    fn validate_reports_every_bad_field() {
        let err = ExecutionModel {
            commission: CommissionModel {
                rate: -0.1,
                fixed_fee: f64::INFINITY,
            },
            slippage_bps: 20_000.0,
        }
        .validate()
        .unwrap_err();
        let Error::InvalidConfig { config, problems } = &err else {
            panic!("{err:?}");
        };
        assert_eq!(*config, "execution model");
        let names: Vec<_> = problems
            .iter()
            .map(|p| match p {
                Error::InvalidParameter { name, .. } => *name,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(names, ["rate", "fixed_fee", "slippage_bps"]);
        assert!(err.to_string().starts_with(
            "invalid execution model: parameter `rate` must be finite and non-negative, was -0.1; "
        ));
    }

    fn book() -> (Portfolio, SymbolId) {
        let mut p = Portfolio::new(1_000.0).unwrap().with_short_selling(true);
        let x = p.register(crate::order::Instrument::new("X")).unwrap();
        (p, x)
    }

    #[test]
    fn execute_books_fills_and_copies_exit_levels() {
        let (mut p, x) = book();
        let shorts = RiskLimits {
            allow_short: true,
            ..RiskLimits::default()
        };
        let m = model(0.01, 0.0, 0.0);
        let b = bar(10.0, 11.0, 9.0, 10.5);
        // Buy 50 @ 10 with 1 %: 500 + 5 -> cash 495.
        let mut buy = Order::market(1, x, Side::Buy, 50.0, 0)
            .with_stop_loss(9.0)
            .with_take_profit(12.0);
        let outcome = m.execute(&mut buy, &mut p, &shorts, &b, b.open).unwrap();
        let OrderOutcome::Filled { fill, round_trip } = outcome else {
            panic!("{outcome:?}");
        };
        assert_eq!((fill.price, round_trip), (10.0, None));
        approx(p.cash(), 495.0);
        assert_eq!(buy.status, crate::order::OrderStatus::Filled);
        assert_eq!(buy.filled_at, Some(3_600));
        let pos = p.position(x).unwrap();
        assert_eq!((pos.stop_loss, pos.take_profit), (Some(9.0), Some(12.0)));
        // Sell 80 @ 10.5 flips to short 30; the sell's levels replace the long's.
        let mut flip = Order::market(2, x, Side::Sell, 80.0, 0).with_stop_loss(11.5);
        let outcome = m.execute(&mut flip, &mut p, &shorts, &b, b.close).unwrap();
        let OrderOutcome::Filled { round_trip, .. } = outcome else {
            panic!("{outcome:?}");
        };
        // Closed 50: gross 50 * 0.5 = 25; fees 5 + 8.4 * 50/80 = 10.25.
        approx(round_trip.unwrap().pnl, 14.75);
        let pos = p.position(x).unwrap();
        assert_eq!(pos.quantity, -30.0);
        assert_eq!((pos.stop_loss, pos.take_profit), (Some(11.5), None));
    }

    #[test]
    fn execute_rejects_leaves_pending_and_refuses_invalid_orders() {
        let (mut p, x) = book();
        let m = model(0.0, 0.0, 0.0);
        let limits = RiskLimits::default();
        let b = bar(10.0, 11.0, 9.0, 10.5);
        // Selling with nothing held and shorts not allowed by the limits.
        let mut sell = Order::market(1, x, Side::Sell, 1.0, 0);
        let before = p.clone();
        assert_eq!(
            m.execute(&mut sell, &mut p, &limits, &b, b.open).unwrap(),
            OrderOutcome::Rejected(RiskViolation::InsufficientPosition {
                requested: 1.0,
                held: 0.0
            })
        );
        assert_eq!(p, before);
        assert_eq!(
            sell.status.to_string(),
            "rejected (insufficient position: selling 1, 0 held, short selling not allowed)"
        );
        // A buy limit at 8 against a bar whose low is 9: pending, order still new.
        let mut limit = Order::limit(2, x, Side::Buy, 1.0, 8.0, 0);
        assert_eq!(
            m.execute(&mut limit, &mut p, &limits, &b, b.open).unwrap(),
            OrderOutcome::Pending
        );
        assert!(limit.is_open());
        // Half a unit of a whole-unit instrument: a typed error, nothing changed.
        let mut half = Order::market(3, x, Side::Buy, 0.5, 0);
        assert!(matches!(
            m.execute(&mut half, &mut p, &limits, &b, b.open),
            Err(Error::InvalidOrder {
                field: "quantity",
                ..
            })
        ));
        assert!(half.is_open());
        assert_eq!(p, before);
    }

    #[test]
    fn serde_defaults_and_unknown_fields() {
        let m: ExecutionModel = serde_json::from_str(r#"{"slippage_bps": 5}"#).unwrap();
        assert_eq!(m.commission, CommissionModel::default());
        assert_eq!(m.slippage_bps, 5.0);
        assert!(serde_json::from_str::<ExecutionModel>(r#"{"slipage_bps": 5}"#).is_err());
        assert!(serde_json::from_str::<CommissionModel>(r#"{"rate": 0.1, "fee": 1}"#).is_err());
    }

    #[test]
    fn fill_validation_names_the_field() {
        let fill = Fill {
            order_id: 7,
            symbol: SymbolId(0),
            side: Side::Sell,
            quantity: 1.0,
            price: 1.0,
            commission: -1.0,
            timestamp: 0,
        };
        assert_eq!(
            fill.validate(),
            Err(Error::InvalidFill {
                order_id: 7,
                field: "commission",
                value: -1.0,
                reason: "must be finite and non-negative"
            })
        );
        assert_eq!(fill.signed_quantity(), -1.0);
    }
}
