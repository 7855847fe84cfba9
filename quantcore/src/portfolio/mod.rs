//! Portfolio accounting: cash, positions, PnL, snapshots and closed round trips.
//!
//! This module owns [`Portfolio`] (one cash pool, a [`Position`] per registered
//! instrument), [`Portfolio::apply_fill`], mark-to-market, [`Snapshot`] and
//! [`RoundTrip`]. It is the one place where average price and PnL are computed; the
//! backtester, the service's trade role and the Python bindings all book through it.
//!
//! # Conventions
//! | quantity | rule |
//! |---|---|
//! | position quantity | signed: long `> 0`, short `< 0` (shorts only when allowed) |
//! | cash on a fill | `cash -= side * quantity * price + commission` (a sale adds proceeds) |
//! | average price | on an increase: `(|q| * avg + fill_q * fill_price) / (|q| + fill_q)`; unchanged on a reduction; the fill price after a flip |
//! | realized PnL | on a reduction: `closed * (fill_price - avg)`, negated for a short; before fees |
//! | unrealized PnL | `quantity * (current_price - avg)` |
//! | market value | `quantity * current_price` (a short is a liability) |
//! | equity = total value | `cash + Σ market value` |
//! | total return | `equity / initial_capital - 1` |
//!
//! A fill that crosses zero (long 10, sell 15) closes the old position (one round trip
//! of 10) and opens the other side (short 5 at the fill price); its commission is
//! shared between the two parts by quantity. See [`RoundTrip`] for the round-trip
//! rule.
//!
//! # Cost
//! [`Portfolio::mark`] is O(1); [`Portfolio::equity`] sums over the registered
//! instruments (one multiply-add each); neither allocates. A fill that closes
//! something pushes one [`RoundTrip`].
//!
//! # Invariants (property-tested in `proptests.rs`)
//! 1. `cash + Σ quantity * current_price == equity()`, where cash and quantities are
//!    recomputed by an independent replay of the fills.
//! 2. When every position is flat again, the closed round trips' `gross_pnl` sum to
//!    the change in equity plus the commission paid, and their `pnl` sum to the change
//!    in equity.
//! 3. Realized PnL before fees does not depend on how a fill is split into pieces at
//!    the same price.
//! 4. Without leverage, when every fill passed
//!    [`check_risk_limits`](crate::risk::check_risk_limits) at its own price, cash
//!    never goes negative.
//! 5. With short selling off, no sequence of fills takes a quantity below zero: an
//!    oversized sell is refused.

pub(crate) mod account;
mod position;
mod records;

#[cfg(test)]
mod proptests;

pub use account::Portfolio;
pub(crate) use account::cash_after;
pub use position::{Position, PositionSide};
pub use records::{RoundTrip, Snapshot};

/// Reusable proptest strategies for portfolio-level scenarios.
#[cfg(test)]
pub(crate) mod proptest_strategies {
    use proptest::prelude::*;

    use crate::order::Side;
    use crate::order::proptest_strategies::{price, side};

    /// One step of a trading scenario: a market order on `symbol` (an index below
    /// the symbol count) at reference `price`, then optionally a mark.
    #[derive(Debug, Clone, PartialEq)]
    pub(crate) struct Step {
        pub symbol: usize,
        pub side: Side,
        pub quantity: f64,
        pub price: f64,
        pub mark: Option<f64>,
        /// How many pieces a test may split the order into, `1..=4`.
        pub pieces: u32,
    }

    /// A sequence of steps over `symbols` instruments with quantities from `quantity`.
    pub(crate) fn steps(
        symbols: usize,
        length: std::ops::Range<usize>,
        quantity: impl Strategy<Value = f64>,
    ) -> impl Strategy<Value = Vec<Step>> {
        let step = (
            0..symbols,
            side(),
            quantity,
            price(),
            proptest::option::of(price()),
            1u32..=4,
        )
            .prop_map(|(symbol, side, quantity, price, mark, pieces)| Step {
                symbol,
                side,
                quantity,
                price,
                mark,
                pieces,
            });
        proptest::collection::vec(step, length)
    }
}
