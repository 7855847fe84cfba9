//! Pre-trade risk limits and the check that applies them.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::execution::{CommissionModel, into_config_error};
use crate::order::{Order, Side, quantities_equal};
use crate::portfolio::{Portfolio, cash_after};

/// Limits every order must pass before it fills.
///
/// Defaults (spelled out in [`Default`]): a position may be worth up to 100 % of
/// equity, no per-order notional cap, no cap on open positions, no short selling, no
/// drawdown kill switch.
///
/// ```
/// use quantcore::risk::RiskLimits;
/// let limits: RiskLimits = serde_json::from_str(r#"{"max_position_fraction": 0.25, "max_drawdown": 0.2}"#)?;
/// assert_eq!(limits.max_open_positions, None);
/// limits.validate()?;
/// assert!(serde_json::from_str::<RiskLimits>(r#"{"max_positon_fraction": 0.25}"#).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RiskLimits {
    /// The largest position notional `|quantity| * price` as a fraction of equity,
    /// finite and `> 0` (values above 1 only matter for shorts: buys also need cash).
    pub max_position_fraction: f64,
    /// The largest notional of one order, finite and `> 0`; `None` for no cap.
    pub max_order_notional: Option<f64>,
    /// The most positions open at once, `>= 1`; `None` for no cap.
    pub max_open_positions: Option<usize>,
    /// Whether a sell may take a position below zero.
    pub allow_short: bool,
    /// Kill switch: once the portfolio's drawdown reaches this fraction (in `(0, 1]`,
    /// e.g. `0.2` for -20 %), orders that add exposure are refused for good; orders
    /// that reduce a position still pass. `None` for no kill switch.
    pub max_drawdown: Option<f64>,
}

impl Default for RiskLimits {
    fn default() -> Self {
        RiskLimits {
            max_position_fraction: 1.0,
            max_order_notional: None,
            max_open_positions: None,
            allow_short: false,
            max_drawdown: None,
        }
    }
}

impl RiskLimits {
    /// Checks every field.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] whose problems ([`Error::InvalidParameter`]) name each
    /// bad field.
    pub fn validate(&self) -> Result<()> {
        let mut problems = Vec::new();
        if !(self.max_position_fraction.is_finite() && self.max_position_fraction > 0.0) {
            problems.push(Error::invalid_parameter(
                "max_position_fraction",
                self.max_position_fraction,
                "must be finite and positive",
            ));
        }
        if let Some(cap) = self.max_order_notional
            && !(cap.is_finite() && cap > 0.0)
        {
            problems.push(Error::invalid_parameter(
                "max_order_notional",
                cap,
                "must be finite and positive",
            ));
        }
        if self.max_open_positions == Some(0) {
            problems.push(Error::invalid_parameter(
                "max_open_positions",
                0,
                "must be at least 1",
            ));
        }
        if let Some(limit) = self.max_drawdown
            && !(limit > 0.0 && limit <= 1.0)
        {
            problems.push(Error::invalid_parameter(
                "max_drawdown",
                limit,
                "must be in (0, 1]",
            ));
        }
        into_config_error("risk limits", problems)
    }

    /// Checks an order against the limits; see [`check_risk_limits`].
    ///
    /// # Errors
    /// The first [`RiskViolation`].
    pub fn check(
        &self,
        portfolio: &Portfolio,
        order: &Order,
        price: f64,
        commission: &CommissionModel,
    ) -> Result<(), RiskViolation> {
        check_risk_limits(self, portfolio, order, price, commission)
    }
}

/// Why an order failed the risk check, with the amounts involved.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum RiskViolation {
    /// The price to check at is not finite and positive.
    #[error("price must be finite and positive, was {price}")]
    InvalidPrice { price: f64 },
    /// The order quantity is not finite and positive.
    #[error("quantity must be finite and positive, was {quantity}")]
    InvalidQuantity { quantity: f64 },
    /// The order's symbol is not in the portfolio.
    #[error("unknown symbol id {id}")]
    UnknownSymbol { id: u32 },
    /// Buying would take cash below zero: `required` is `quantity * price + commission`.
    #[error("insufficient cash: {required} required with commission, {available} available")]
    InsufficientCash { required: f64, available: f64 },
    /// Selling more than held with short selling off.
    #[error("insufficient position: selling {requested}, {held} held, short selling not allowed")]
    InsufficientPosition { requested: f64, held: f64 },
    /// The resulting position's notional would exceed `max_position_fraction * equity`.
    #[error("position notional {notional} would exceed the limit of {limit}")]
    PositionTooLarge { notional: f64, limit: f64 },
    /// The order's notional exceeds `max_order_notional`.
    #[error("order notional {notional} exceeds the limit of {limit}")]
    OrderTooLarge { notional: f64, limit: f64 },
    /// Opening another position would exceed `max_open_positions`.
    #[error("{open} positions already open, the limit is {limit}")]
    TooManyOpenPositions { open: usize, limit: usize },
    /// The drawdown kill switch has tripped: `drawdown` (a fraction `<= 0`) reached
    /// `-limit`, and the order adds exposure.
    #[error("drawdown {drawdown} reached the kill switch at -{limit}; new exposure is halted")]
    DrawdownHalt { drawdown: f64, limit: f64 },
}

impl RiskViolation {
    /// By how much the limit is exceeded, in the limit's unit: cash short, units
    /// oversold, notional over the cap, positions over the cap, drawdown beyond the
    /// switch. `None` for the invalid-input variants.
    pub fn excess(&self) -> Option<f64> {
        match *self {
            RiskViolation::InvalidPrice { .. }
            | RiskViolation::InvalidQuantity { .. }
            | RiskViolation::UnknownSymbol { .. } => None,
            RiskViolation::InsufficientCash {
                required,
                available,
            } => Some(required - available),
            RiskViolation::InsufficientPosition { requested, held } => Some(requested - held),
            RiskViolation::PositionTooLarge { notional, limit }
            | RiskViolation::OrderTooLarge { notional, limit } => Some(notional - limit),
            RiskViolation::TooManyOpenPositions { open, limit } => {
                Some((open + 1) as f64 - limit as f64)
            }
            RiskViolation::DrawdownHalt { drawdown, limit } => Some(-drawdown - limit),
        }
    }

    /// The violation as a crate [`Error`] for `?`: [`Error::OrderRejected`].
    pub fn into_error(self, order_id: u64) -> Error {
        Error::OrderRejected {
            order_id,
            violation: self,
        }
    }
}

/// Checks whether `order`, filled at `price` with `commission`, stays within `limits`
/// given the `portfolio` now.
///
/// Pass the expected fill price (slippage included); the backtester passes the
/// actual fill price, so that an accepted buy can never take cash below zero.
///
/// Let `held` be the signed position and `after = held + side * quantity`. An order
/// *adds exposure* when `|after| > |held|` or it flips the sign. The checks, in order:
/// 1. inputs: price and quantity finite and positive, symbol in the portfolio;
/// 2. short selling off: `after < 0` → [`InsufficientPosition`](RiskViolation::InsufficientPosition)
///    (a sell within [`QUANTITY_TOLERANCE`](crate::order::QUANTITY_TOLERANCE) of the
///    holding closes it);
/// 3. cash, for every order: `cash - (side * quantity * price + commission) < 0` →
///    [`InsufficientCash`](RiskViolation::InsufficientCash) (for a sell this only
///    fails when the fees exceed cash plus proceeds);
/// 4. only for orders that add exposure:
///    - kill switch: `min(portfolio.max_drawdown(), portfolio.current_drawdown()) <= -max_drawdown`
///      → [`DrawdownHalt`](RiskViolation::DrawdownHalt);
///    - `quantity * price > max_order_notional` → [`OrderTooLarge`](RiskViolation::OrderTooLarge);
///    - opening from flat with `max_open_positions` already open →
///      [`TooManyOpenPositions`](RiskViolation::TooManyOpenPositions);
///    - `|after| * price > max_position_fraction * equity` →
///      [`PositionTooLarge`](RiskViolation::PositionTooLarge).
///
/// Orders that only reduce a position pass every limit but the cash check: a risk
/// limit never traps a trader in a position.
///
/// ```
/// use quantcore::execution::CommissionModel;
/// use quantcore::order::{Instrument, Order, Side};
/// use quantcore::portfolio::Portfolio;
/// use quantcore::risk::{check_risk_limits, RiskLimits, RiskViolation};
/// let mut portfolio = Portfolio::new(1_000.0)?;
/// let x = portfolio.register(Instrument::new("X"))?;
/// let fee = CommissionModel::new(0.01, 0.0)?;
/// // 10 @ 100 costs 1_000 + 1 % = 1_010 > 1_000.
/// let order = Order::market(1, x, Side::Buy, 10.0, 0);
/// let violation = check_risk_limits(&RiskLimits::default(), &portfolio, &order, 100.0, &fee).unwrap_err();
/// assert_eq!(violation, RiskViolation::InsufficientCash { required: 1_010.0, available: 1_000.0 });
/// assert_eq!(violation.excess(), Some(10.0));
/// # Ok::<(), quantcore::Error>(())
/// ```
///
/// # Errors
/// The first [`RiskViolation`], as listed above.
pub fn check_risk_limits(
    limits: &RiskLimits,
    portfolio: &Portfolio,
    order: &Order,
    price: f64,
    commission: &CommissionModel,
) -> Result<(), RiskViolation> {
    if !(price.is_finite() && price > 0.0) {
        return Err(RiskViolation::InvalidPrice { price });
    }
    let quantity = order.quantity;
    if !(quantity.is_finite() && quantity > 0.0) {
        return Err(RiskViolation::InvalidQuantity { quantity });
    }
    let Some(position) = portfolio.position(order.symbol) else {
        return Err(RiskViolation::UnknownSymbol { id: order.symbol.0 });
    };
    let held = position.quantity;
    let closes_exactly = held != 0.0
        && (held > 0.0) == (order.side == Side::Sell)
        && quantities_equal(quantity, held.abs());
    let after = if closes_exactly {
        0.0
    } else {
        held + order.signed_quantity()
    };

    if !limits.allow_short && after < 0.0 {
        return Err(RiskViolation::InsufficientPosition {
            requested: quantity,
            held: held.max(0.0),
        });
    }

    let fee = commission.commission(quantity * price);
    let available = portfolio.cash();
    if cash_after(available, order.side, quantity, price, fee) < 0.0 {
        return Err(RiskViolation::InsufficientCash {
            required: order.side.sign() * (quantity * price) + fee,
            available,
        });
    }

    let flips = held != 0.0 && after != 0.0 && (held > 0.0) != (after > 0.0);
    let adds_exposure = after.abs() > held.abs() || flips;
    if adds_exposure {
        if let Some(limit) = limits.max_drawdown {
            let drawdown = portfolio.max_drawdown().min(portfolio.current_drawdown());
            if drawdown <= -limit {
                return Err(RiskViolation::DrawdownHalt { drawdown, limit });
            }
        }
        let notional = quantity * price;
        if let Some(limit) = limits.max_order_notional
            && notional > limit
        {
            return Err(RiskViolation::OrderTooLarge { notional, limit });
        }
        if let Some(limit) = limits.max_open_positions {
            let open = portfolio.open_position_count();
            if held == 0.0 && open >= limit {
                return Err(RiskViolation::TooManyOpenPositions { open, limit });
            }
        }
        let position_notional = after.abs() * price;
        let limit = limits.max_position_fraction * portfolio.equity();
        if position_notional > limit {
            return Err(RiskViolation::PositionTooLarge {
                notional: position_notional,
                limit,
            });
        }
    }

    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::execution::Fill;
    use crate::order::{Instrument, SymbolId};

    fn approx(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-9, "{a} != {b}");
    }

    fn fill(id: u64, symbol: SymbolId, side: Side, quantity: f64, price: f64) -> Fill {
        Fill {
            order_id: id,
            symbol,
            side,
            quantity,
            price,
            commission: 0.0,
            timestamp: 0,
        }
    }

    /// 10_000 cash, 20 X held at 100 (marked 100): cash 8_000, equity 10_000.
    fn setup(allow_short: bool) -> (Portfolio, SymbolId, SymbolId) {
        let mut p = Portfolio::new(10_000.0)
            .unwrap()
            .with_short_selling(allow_short);
        let x = p.register(Instrument::new("X")).unwrap();
        let y = p.register(Instrument::new("Y")).unwrap();
        p.apply_fill(&fill(0, x, Side::Buy, 20.0, 100.0)).unwrap();
        (p, x, y)
    }

    const FREE: CommissionModel = CommissionModel {
        rate: 0.0,
        fixed_fee: 0.0,
    };

    #[test]
    fn insufficient_cash_counts_commission() {
        let (p, _, y) = setup(false);
        // 8_000 cash; 79 Y @ 100 = 7_900 + 1 % = 7_979 fits; 80 = 8_000 + 80 = 8_080 does not.
        let fee = CommissionModel::new(0.01, 0.0).unwrap();
        let limits = RiskLimits::default();
        let ok = Order::market(1, y, Side::Buy, 79.0, 0);
        assert_eq!(check_risk_limits(&limits, &p, &ok, 100.0, &fee), Ok(()));
        let big = Order::market(2, y, Side::Buy, 80.0, 0);
        let v = check_risk_limits(&limits, &p, &big, 100.0, &fee).unwrap_err();
        assert_eq!(
            v,
            RiskViolation::InsufficientCash {
                required: 8_080.0,
                available: 8_000.0
            }
        );
        approx(v.excess().unwrap(), 80.0);
    }

    #[test]
    fn selling_more_than_held_without_short() {
        let (p, x, _) = setup(false);
        let limits = RiskLimits::default();
        let sell = Order::market(1, x, Side::Sell, 25.0, 0);
        let v = check_risk_limits(&limits, &p, &sell, 100.0, &FREE).unwrap_err();
        assert_eq!(
            v,
            RiskViolation::InsufficientPosition {
                requested: 25.0,
                held: 20.0
            }
        );
        assert_eq!(v.excess(), Some(5.0));
        // Selling exactly the holding is fine.
        let all = Order::market(2, x, Side::Sell, 20.0, 0);
        assert_eq!(check_risk_limits(&limits, &p, &all, 100.0, &FREE), Ok(()));
    }

    #[test]
    fn position_limit_measures_the_resulting_position() {
        let (p, x, _) = setup(false);
        let limits = RiskLimits {
            max_position_fraction: 0.25,
            ..RiskLimits::default()
        };
        // Equity 10_000 -> limit 2_500. Holding 20 @ 100 = 2_000; +5 = 2_500 fits,
        // +6 = 2_600 does not.
        let ok = Order::market(1, x, Side::Buy, 5.0, 0);
        assert_eq!(check_risk_limits(&limits, &p, &ok, 100.0, &FREE), Ok(()));
        let big = Order::market(2, x, Side::Buy, 6.0, 0);
        let v = check_risk_limits(&limits, &p, &big, 100.0, &FREE).unwrap_err();
        assert_eq!(
            v,
            RiskViolation::PositionTooLarge {
                notional: 2_600.0,
                limit: 2_500.0
            }
        );
        assert_eq!(v.excess(), Some(100.0));
        // Reducing is never blocked by the position limit, even when over it.
        let tight = RiskLimits {
            max_position_fraction: 0.01,
            ..RiskLimits::default()
        };
        let reduce = Order::market(3, x, Side::Sell, 1.0, 0);
        assert_eq!(check_risk_limits(&tight, &p, &reduce, 100.0, &FREE), Ok(()));
    }

    #[test]
    fn order_notional_cap() {
        let (p, _, y) = setup(false);
        let limits = RiskLimits {
            max_order_notional: Some(1_000.0),
            ..RiskLimits::default()
        };
        let big = Order::market(1, y, Side::Buy, 11.0, 0);
        assert_eq!(
            check_risk_limits(&limits, &p, &big, 100.0, &FREE),
            Err(RiskViolation::OrderTooLarge {
                notional: 1_100.0,
                limit: 1_000.0
            })
        );
    }

    #[test]
    fn open_positions_cap_only_blocks_new_positions() {
        let (p, x, y) = setup(false);
        let limits = RiskLimits {
            max_open_positions: Some(1),
            ..RiskLimits::default()
        };
        let new = Order::market(1, y, Side::Buy, 1.0, 0);
        assert_eq!(
            check_risk_limits(&limits, &p, &new, 100.0, &FREE),
            Err(RiskViolation::TooManyOpenPositions { open: 1, limit: 1 })
        );
        // Adding to the open position is allowed.
        let more = Order::market(2, x, Side::Buy, 1.0, 0);
        assert_eq!(check_risk_limits(&limits, &p, &more, 100.0, &FREE), Ok(()));
    }

    #[test]
    fn drawdown_kill_switch_halts_new_exposure_and_latches() {
        let (mut p, x, y) = setup(false);
        let limits = RiskLimits {
            max_drawdown: Some(0.1),
            ..RiskLimits::default()
        };
        // X from 100 to 45: equity 8_000 + 20 * 45 = 8_900, drawdown -11 %.
        p.mark(x, 45.0).unwrap();
        approx(p.update_drawdown(), -0.11);
        let buy = Order::market(1, y, Side::Buy, 1.0, 0);
        let v = check_risk_limits(&limits, &p, &buy, 100.0, &FREE).unwrap_err();
        let RiskViolation::DrawdownHalt { drawdown, limit } = v else {
            panic!("{v:?}");
        };
        approx(drawdown, -0.11);
        assert_eq!(limit, 0.1);
        approx(v.excess().unwrap(), 0.01);
        // Recovery does not reset the switch: the worst drawdown seen is kept.
        p.mark(x, 100.0).unwrap();
        p.update_drawdown();
        assert!(check_risk_limits(&limits, &p, &buy, 100.0, &FREE).is_err());
        // Selling (reducing) is still allowed.
        let sell = Order::market(2, x, Side::Sell, 5.0, 0);
        assert_eq!(check_risk_limits(&limits, &p, &sell, 100.0, &FREE), Ok(()));
        // Even unrecorded, a current drawdown beyond the switch halts buys.
        let (mut q, x2, _) = setup(false);
        q.mark(x2, 40.0).unwrap(); // equity 8_800: -12 %
        assert!(matches!(
            check_risk_limits(&limits, &q, &buy, 100.0, &FREE),
            Err(RiskViolation::DrawdownHalt { .. })
        ));
    }

    #[test]
    fn shorts_when_allowed_and_flips_add_exposure() {
        let (p, x, y) = setup(true);
        let limits = RiskLimits {
            allow_short: true,
            max_position_fraction: 0.5,
            ..RiskLimits::default()
        };
        // Short 50 Y @ 100 = 5_000 = 50 % of 10_000: fits; 51 does not.
        let short = Order::market(1, y, Side::Sell, 50.0, 0);
        assert_eq!(check_risk_limits(&limits, &p, &short, 100.0, &FREE), Ok(()));
        let too_big = Order::market(2, y, Side::Sell, 51.0, 0);
        assert!(matches!(
            check_risk_limits(&limits, &p, &too_big, 100.0, &FREE),
            Err(RiskViolation::PositionTooLarge { .. })
        ));
        // Flip X from +20 to -60: |after| 60 * 100 = 6_000 > 5_000.
        let flip = Order::market(3, x, Side::Sell, 80.0, 0);
        assert_eq!(
            check_risk_limits(&limits, &p, &flip, 100.0, &FREE),
            Err(RiskViolation::PositionTooLarge {
                notional: 6_000.0,
                limit: 5_000.0
            })
        );
    }

    #[test]
    fn invalid_inputs_are_violations_not_panics() {
        let (p, x, _) = setup(false);
        let limits = RiskLimits::default();
        let order = Order::market(1, x, Side::Buy, 1.0, 0);
        assert!(matches!(
            check_risk_limits(&limits, &p, &order, f64::NAN, &FREE),
            Err(RiskViolation::InvalidPrice { .. })
        ));
        let zero = Order::market(2, x, Side::Buy, 0.0, 0);
        assert_eq!(
            check_risk_limits(&limits, &p, &zero, 1.0, &FREE),
            Err(RiskViolation::InvalidQuantity { quantity: 0.0 })
        );
        let unknown = Order::market(3, SymbolId(42), Side::Buy, 1.0, 0);
        assert_eq!(
            check_risk_limits(&limits, &p, &unknown, 1.0, &FREE),
            Err(RiskViolation::UnknownSymbol { id: 42 })
        );
        assert_eq!(
            RiskViolation::UnknownSymbol { id: 42 }
                .into_error(3)
                .to_string(),
            "order 3 rejected: unknown symbol id 42"
        );
    }

    #[test]
    fn validate_reports_every_bad_field() {
        let bad = RiskLimits {
            max_position_fraction: f64::NAN,
            max_order_notional: Some(-1.0),
            max_open_positions: Some(0),
            allow_short: false,
            max_drawdown: Some(1.5),
        };
        let Err(Error::InvalidConfig { config, problems }) = bad.validate() else {
            panic!("expected InvalidConfig");
        };
        assert_eq!(config, "risk limits");
        let names: Vec<_> = problems
            .iter()
            .map(|p| match p {
                Error::InvalidParameter { name, .. } => *name,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            names,
            [
                "max_position_fraction",
                "max_order_notional",
                "max_open_positions",
                "max_drawdown"
            ]
        );
        RiskLimits::default().validate().unwrap();
    }
}
