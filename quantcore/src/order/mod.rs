//! Orders: what to trade, how much, and whether the request is well formed.
//!
//! This module owns
//! - instruments and their ids: [`Instrument`] (symbol, whether fractional quantities
//!   are allowed), [`Instruments`] (the registry), [`SymbolId`] (a small integer used
//!   everywhere on the hot path instead of a string);
//! - the order itself: [`Side`], [`OrderKind`] (market or limit), [`OrderStatus`]
//!   (new, filled, rejected with a reason, cancelled) and [`Order`];
//! - [`validate_order`]: quantity finite and positive, whole units unless the
//!   instrument is fractional, limit price finite and positive, stop-loss and
//!   take-profit on the right side, symbol registered;
//! - sizing: [`Sizing`] (fixed quantity, fraction of equity, or scaled by a signal's
//!   confidence) and [`max_affordable_quantity`].
//!
//! # Conventions
//! - Quantities are units of the instrument and always positive on an order; the
//!   [`Side`] gives the direction (`Side::sign`: buy `+1`, sell `-1`).
//! - Prices are in the account currency per unit; times are Unix seconds UTC.
//! - Quantities compare equal within a relative [`QUANTITY_TOLERANCE`] (1e-9) where a
//!   fractional position is closed or a fill matched to its order.
//!
//! # From a signal to an order
//! The module does not depend on `signal`: the caller passes the side and confidence
//! as plain values.
//!
//! ```
//! use quantcore::execution::CommissionModel;
//! use quantcore::order::{validate_order, Instrument, Instruments, Order, Side, Sizing, SizingInput};
//! use quantcore::risk::RiskLimits;
//! let mut instruments = Instruments::new();
//! let aapl = instruments.register(Instrument::new("AAPL"))?;
//! // A BUY signal at 200.0 with confidence 0.8, stop 190, target 220.
//! let (side, confidence, price) = (Side::Buy, 0.8, 200.0);
//! let sizing = Sizing::Confidence { max_fraction: 0.5 };
//! let input = SizingInput { equity: 50_000.0, price, confidence };
//! let limits = RiskLimits::default();
//! let quantity = sizing.quantity(input, instruments.instrument(aapl)?, &limits, &CommissionModel::default())?;
//! assert_eq!(quantity, 100.0); // 0.5 * 0.8 * 50_000 / 200
//! let order = Order::market(1, aapl, side, quantity, 1_700_000_000)
//!     .with_stop_loss(190.0)
//!     .with_take_profit(220.0);
//! validate_order(&order, &instruments)?;
//! # Ok::<(), quantcore::Error>(())
//! ```

mod instrument;
mod orders;
mod sizing;

pub use instrument::{Instrument, Instruments, SymbolId};
pub(crate) use orders::quantities_equal;
pub use orders::{Order, OrderKind, OrderStatus, QUANTITY_TOLERANCE, Side, validate_order};
pub use sizing::{Sizing, SizingInput, max_affordable_quantity};
pub(crate) use sizing::{check_finite, check_price};

/// Reusable proptest strategies for order-level values.
#[cfg(test)]
pub(crate) mod proptest_strategies {
    use proptest::prelude::*;

    use super::Side;

    /// Either side, evenly.
    pub(crate) fn side() -> impl Strategy<Value = Side> {
        prop_oneof![Just(Side::Buy), Just(Side::Sell)]
    }

    /// A price in a realistic range, positive and finite.
    pub(crate) fn price() -> impl Strategy<Value = f64> {
        1.0f64..1_000.0
    }

    /// A whole-unit quantity, `1..=100`.
    pub(crate) fn whole_quantity() -> impl Strategy<Value = f64> {
        (1u32..=100).prop_map(f64::from)
    }

    /// A fractional quantity in `(0, 10)`.
    pub(crate) fn fractional_quantity() -> impl Strategy<Value = f64> {
        0.001f64..10.0
    }
}
