//! Orders: side, kind, status, lifecycle and validation.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::instrument::{Instruments, SymbolId};
use crate::error::{Error, Result};
use crate::execution::Fill;

/// Relative tolerance under which two quantities count as equal (a fill matching its
/// order, a sell closing a whole fractional position). Whole-unit quantities are exact.
pub const QUANTITY_TOLERANCE: f64 = 1e-9;

/// True when `a` and `b` are equal within [`QUANTITY_TOLERANCE`] of the larger.
#[inline]
pub(crate) fn quantities_equal(a: f64, b: f64) -> bool {
    (a - b).abs() <= QUANTITY_TOLERANCE * a.abs().max(b.abs())
}

/// Buy or sell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Side {
    Buy,
    Sell,
}

impl Side {
    /// `+1.0` for a buy, `-1.0` for a sell: the sign of the position change.
    #[inline]
    pub fn sign(self) -> f64 {
        match self {
            Side::Buy => 1.0,
            Side::Sell => -1.0,
        }
    }

    /// The other side (the side that closes a position opened by `self`).
    #[inline]
    pub fn opposite(self) -> Side {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }

    /// `"buy"` or `"sell"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Buy => "buy",
            Side::Sell => "sell",
        }
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How an order is priced.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum OrderKind {
    /// Fills at the reference price moved against the trader by slippage.
    Market,
    /// Fills only when the market reaches `price`, at `price` or better.
    Limit { price: f64 },
}

impl OrderKind {
    /// `"market"` or `"limit"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            OrderKind::Market => "market",
            OrderKind::Limit { .. } => "limit",
        }
    }

    /// The limit price of a limit order.
    pub fn limit_price(&self) -> Option<f64> {
        match *self {
            OrderKind::Market => None,
            OrderKind::Limit { price } => Some(price),
        }
    }
}

/// Where an order is in its life.
///
/// ```text
/// New --fill--> Filled
///     --risk or validation--> Rejected { reason }
///     --cancel (e.g. an unfilled limit order expires)--> Cancelled
/// ```
/// Fills are whole: the simulated execution has no volume limit, so there is no
/// partially filled state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum OrderStatus {
    /// Accepted and waiting for a fill.
    New,
    /// Filled in full.
    Filled,
    /// Refused, with the reason (a validation error or a risk violation).
    Rejected { reason: String },
    /// Withdrawn before filling.
    Cancelled,
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OrderStatus::New => f.write_str("new"),
            OrderStatus::Filled => f.write_str("filled"),
            OrderStatus::Rejected { reason } => write!(f, "rejected ({reason})"),
            OrderStatus::Cancelled => f.write_str("cancelled"),
        }
    }
}

/// An order for one instrument.
///
/// Quantities are unsigned (`> 0`); [`side`](Self::side) gives the direction. Times are
/// Unix seconds UTC. Optional `stop_loss` / `take_profit` levels are carried to the
/// position once the order fills (see [`Portfolio::set_exit_levels`](crate::portfolio::Portfolio::set_exit_levels)).
///
/// ```
/// use quantcore::order::{validate_order, Instrument, Instruments, Order, OrderStatus, Side};
/// let mut instruments = Instruments::new();
/// let aapl = instruments.register(Instrument::new("AAPL"))?;
/// let order = Order::limit(1, aapl, Side::Buy, 10.0, 99.5, 1_700_000_000)
///     .with_stop_loss(95.0)
///     .with_take_profit(110.0);
/// validate_order(&order, &instruments)?;
/// assert_eq!(order.status, OrderStatus::New);
///
/// // Half a share of a whole-unit instrument is refused with the field and value.
/// let bad = Order::market(2, aapl, Side::Buy, 0.5, 1_700_000_000);
/// assert_eq!(
///     validate_order(&bad, &instruments).unwrap_err().to_string(),
///     "order 2: `quantity` must be a whole number of units for this instrument, was 0.5"
/// );
/// # Ok::<(), quantcore::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    /// Caller-assigned id, unique within a run or an account.
    pub id: u64,
    pub symbol: SymbolId,
    pub side: Side,
    pub kind: OrderKind,
    /// Units to trade, `> 0`.
    pub quantity: f64,
    pub status: OrderStatus,
    /// When the order was created (Unix seconds).
    pub created_at: i64,
    /// When it filled, once [`Filled`](OrderStatus::Filled).
    pub filled_at: Option<i64>,
    /// The fill price, once filled.
    pub fill_price: Option<f64>,
    /// Stop-loss level for the resulting position.
    pub stop_loss: Option<f64>,
    /// Take-profit level for the resulting position.
    pub take_profit: Option<f64>,
}

impl Order {
    /// A new market order.
    pub fn market(id: u64, symbol: SymbolId, side: Side, quantity: f64, created_at: i64) -> Self {
        Order {
            id,
            symbol,
            side,
            kind: OrderKind::Market,
            quantity,
            status: OrderStatus::New,
            created_at,
            filled_at: None,
            fill_price: None,
            stop_loss: None,
            take_profit: None,
        }
    }

    /// A new limit order at `limit_price`.
    pub fn limit(
        id: u64,
        symbol: SymbolId,
        side: Side,
        quantity: f64,
        limit_price: f64,
        created_at: i64,
    ) -> Self {
        Order {
            kind: OrderKind::Limit { price: limit_price },
            ..Order::market(id, symbol, side, quantity, created_at)
        }
    }

    /// Sets the stop-loss level of the resulting position.
    pub fn with_stop_loss(mut self, price: f64) -> Self {
        self.stop_loss = Some(price);
        self
    }

    /// Sets the take-profit level of the resulting position.
    pub fn with_take_profit(mut self, price: f64) -> Self {
        self.take_profit = Some(price);
        self
    }

    /// True while the order can still fill ([`OrderStatus::New`]).
    #[inline]
    pub fn is_open(&self) -> bool {
        self.status == OrderStatus::New
    }

    /// Quantity with the side's sign: the change the order makes to a position.
    #[inline]
    pub fn signed_quantity(&self) -> f64 {
        self.side.sign() * self.quantity
    }

    fn ensure_open(&self) -> Result<()> {
        if self.is_open() {
            Ok(())
        } else {
            Err(Error::OrderNotOpen {
                order_id: self.id,
                status: self.status.to_string(),
            })
        }
    }

    /// Marks the order filled by `fill`.
    ///
    /// # Errors
    /// [`Error::OrderNotOpen`] unless the order is [`New`](OrderStatus::New);
    /// [`Error::FillMismatch`] when the fill's order id, symbol, side or quantity differ
    /// from the order's (quantity within [`QUANTITY_TOLERANCE`]).
    pub fn record_fill(&mut self, fill: &Fill) -> Result<()> {
        self.ensure_open()?;
        let mismatch = |field| Error::FillMismatch {
            order_id: self.id,
            fill_order_id: fill.order_id,
            field,
        };
        if fill.order_id != self.id {
            return Err(mismatch("order_id"));
        }
        if fill.symbol != self.symbol {
            return Err(mismatch("symbol"));
        }
        if fill.side != self.side {
            return Err(mismatch("side"));
        }
        if !quantities_equal(fill.quantity, self.quantity) {
            return Err(mismatch("quantity"));
        }
        self.status = OrderStatus::Filled;
        self.filled_at = Some(fill.timestamp);
        self.fill_price = Some(fill.price);
        Ok(())
    }

    /// Marks the order rejected with a reason.
    ///
    /// # Errors
    /// [`Error::OrderNotOpen`] unless the order is [`New`](OrderStatus::New).
    pub fn reject(&mut self, reason: impl Into<String>) -> Result<()> {
        self.ensure_open()?;
        self.status = OrderStatus::Rejected {
            reason: reason.into(),
        };
        Ok(())
    }

    /// Cancels the order.
    ///
    /// # Errors
    /// [`Error::OrderNotOpen`] unless the order is [`New`](OrderStatus::New).
    pub fn cancel(&mut self) -> Result<()> {
        self.ensure_open()?;
        self.status = OrderStatus::Cancelled;
        Ok(())
    }
}

/// Checks an order against the registered instruments.
///
/// Rules, in order:
/// - the symbol id is registered;
/// - `quantity` is finite and positive, and whole unless the instrument is fractional;
/// - a limit price is finite and positive;
/// - `stop_loss` and `take_profit`, when set, are finite and positive; for a buy the
///   stop is below the take-profit (and below a limit price, the take-profit above
///   it); a sell mirrors this.
///
/// The status is not checked: validating a filled order is allowed.
///
/// # Errors
/// [`Error::UnknownSymbolId`] or [`Error::InvalidOrder`] naming the field and value of
/// the first broken rule.
pub fn validate_order(order: &Order, instruments: &Instruments) -> Result<()> {
    let instrument = instruments.instrument(order.symbol)?;
    let invalid = |field, value, reason| {
        Err(Error::InvalidOrder {
            order_id: order.id,
            field,
            value,
            reason,
        })
    };
    if !(order.quantity.is_finite() && order.quantity > 0.0) {
        return invalid("quantity", order.quantity, "must be finite and positive");
    }
    if !instrument.fractional && order.quantity.fract() != 0.0 {
        return invalid(
            "quantity",
            order.quantity,
            "must be a whole number of units for this instrument",
        );
    }
    let limit = order.kind.limit_price();
    if let Some(price) = limit
        && !(price.is_finite() && price > 0.0)
    {
        return invalid("limit_price", price, "must be finite and positive");
    }
    for (field, level) in [
        ("stop_loss", order.stop_loss),
        ("take_profit", order.take_profit),
    ] {
        if let Some(level) = level
            && !(level.is_finite() && level > 0.0)
        {
            return invalid(field, level, "must be finite and positive");
        }
    }
    // For a buy the stop sits below the entry and the target above; a sell mirrors.
    let below = |a: f64, b: f64| match order.side {
        Side::Buy => a < b,
        Side::Sell => a > b,
    };
    let (stop_reason, take_reason) = match order.side {
        Side::Buy => (
            "must be below the take-profit and the limit price for a buy",
            "must be above the limit price for a buy",
        ),
        Side::Sell => (
            "must be above the take-profit and the limit price for a sell",
            "must be below the limit price for a sell",
        ),
    };
    if let Some(stop) = order.stop_loss {
        if let Some(take) = order.take_profit
            && !below(stop, take)
        {
            return invalid("stop_loss", stop, stop_reason);
        }
        if let Some(price) = limit
            && !below(stop, price)
        {
            return invalid("stop_loss", stop, stop_reason);
        }
    }
    if let (Some(take), Some(price)) = (order.take_profit, limit)
        && !below(price, take)
    {
        return invalid("take_profit", take, take_reason);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::order::Instrument;

    fn instruments() -> (Instruments, SymbolId, SymbolId) {
        let mut instruments = Instruments::new();
        let whole = instruments.register(Instrument::new("AAPL")).unwrap();
        let fractional = instruments.register(Instrument::fractional("BTC")).unwrap();
        (instruments, whole, fractional)
    }

    fn invalid_field(result: Result<()>) -> (&'static str, f64) {
        match result {
            Err(Error::InvalidOrder { field, value, .. }) => (field, value),
            other => panic!("expected InvalidOrder, was {other:?}"),
        }
    }

    #[test]
    fn valid_orders_pass() {
        let (instruments, whole, fractional) = instruments();
        validate_order(&Order::market(1, whole, Side::Buy, 3.0, 0), &instruments).unwrap();
        validate_order(
            &Order::market(2, fractional, Side::Sell, 0.25, 0),
            &instruments,
        )
        .unwrap();
        let bracket = Order::limit(3, whole, Side::Sell, 5.0, 100.0, 0)
            .with_stop_loss(105.0)
            .with_take_profit(90.0);
        validate_order(&bracket, &instruments).unwrap();
    }

    #[test]
    fn each_broken_rule_names_its_field_and_value() {
        let (instruments, whole, _) = instruments();
        let market = |q| Order::market(1, whole, Side::Buy, q, 0);
        assert_eq!(
            invalid_field(validate_order(&market(0.0), &instruments)),
            ("quantity", 0.0)
        );
        assert_eq!(
            invalid_field(validate_order(&market(-2.0), &instruments)),
            ("quantity", -2.0)
        );
        let (field, value) = invalid_field(validate_order(&market(f64::NAN), &instruments));
        assert_eq!(field, "quantity");
        assert!(value.is_nan());
        assert_eq!(
            invalid_field(validate_order(&market(1.5), &instruments)),
            ("quantity", 1.5)
        );
        let limit = Order::limit(1, whole, Side::Buy, 1.0, -3.0, 0);
        assert_eq!(
            invalid_field(validate_order(&limit, &instruments)),
            ("limit_price", -3.0)
        );
        let limit = Order::limit(1, whole, Side::Buy, 1.0, f64::INFINITY, 0);
        assert_eq!(
            invalid_field(validate_order(&limit, &instruments)),
            ("limit_price", f64::INFINITY)
        );
        // Buy with the stop above the target.
        let crossed = market(1.0).with_stop_loss(110.0).with_take_profit(100.0);
        assert_eq!(
            invalid_field(validate_order(&crossed, &instruments)),
            ("stop_loss", 110.0)
        );
        // Buy limit at 100 with a target below it.
        let target_below = Order::limit(1, whole, Side::Buy, 1.0, 100.0, 0).with_take_profit(99.0);
        assert_eq!(
            invalid_field(validate_order(&target_below, &instruments)),
            ("take_profit", 99.0)
        );
        let nan_stop = market(1.0).with_stop_loss(f64::NAN);
        assert_eq!(
            invalid_field(validate_order(&nan_stop, &instruments)).0,
            "stop_loss"
        );
        assert_eq!(
            validate_order(
                &Order::market(1, SymbolId(7), Side::Buy, 1.0, 0),
                &instruments
            ),
            Err(Error::UnknownSymbolId { id: 7 })
        );
    }

    #[test]
    fn lifecycle_records_fill_and_refuses_second_transition() {
        let (_, whole, _) = instruments();
        let mut order = Order::market(5, whole, Side::Buy, 10.0, 100);
        let fill = Fill {
            order_id: 5,
            symbol: whole,
            side: Side::Buy,
            quantity: 10.0,
            price: 101.0,
            commission: 1.01,
            timestamp: 160,
        };
        let mut wrong = fill;
        wrong.side = Side::Sell;
        assert_eq!(
            order.record_fill(&wrong),
            Err(Error::FillMismatch {
                order_id: 5,
                fill_order_id: 5,
                field: "side"
            })
        );
        order.record_fill(&fill).unwrap();
        assert_eq!(order.status, OrderStatus::Filled);
        assert_eq!(order.filled_at, Some(160));
        assert_eq!(order.fill_price, Some(101.0));
        assert_eq!(
            order.cancel(),
            Err(Error::OrderNotOpen {
                order_id: 5,
                status: "filled".into()
            })
        );
        let mut other = Order::market(6, whole, Side::Sell, 1.0, 100);
        other.reject("no cash").unwrap();
        assert_eq!(other.status.to_string(), "rejected (no cash)");
        assert!(!other.is_open());
    }

    #[test]
    fn serde_shapes_are_stable() {
        let order = Order::limit(9, SymbolId(2), Side::Sell, 4.0, 12.5, 60);
        let json = serde_json::to_value(&order).unwrap();
        assert_eq!(json["side"], "SELL");
        assert_eq!(json["symbol"], 2);
        assert_eq!(json["kind"]["type"], "limit");
        assert_eq!(json["kind"]["price"], 12.5);
        assert_eq!(json["status"]["state"], "new");
        let back: Order = serde_json::from_value(json).unwrap();
        assert_eq!(back, order);
    }

    #[test]
    fn side_helpers() {
        assert_eq!(Side::Buy.sign(), 1.0);
        assert_eq!(Side::Sell.sign(), -1.0);
        assert_eq!(Side::Buy.opposite(), Side::Sell);
        assert_eq!(
            Order::market(1, SymbolId(0), Side::Sell, 3.0, 0).signed_quantity(),
            -3.0
        );
    }
}
