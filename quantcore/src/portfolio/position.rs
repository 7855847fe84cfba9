//! One instrument's position and the arithmetic of a fill against it.

use serde::{Deserialize, Serialize};

use crate::execution::Fill;
use crate::order::{Side, SymbolId, quantities_equal};

/// Long or short.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PositionSide {
    Long,
    Short,
}

impl PositionSide {
    /// `+1.0` for long, `-1.0` for short.
    #[inline]
    pub fn sign(self) -> f64 {
        match self {
            PositionSide::Long => 1.0,
            PositionSide::Short => -1.0,
        }
    }

    /// The order side that opened a position of this side.
    #[inline]
    pub fn entry_side(self) -> Side {
        match self {
            PositionSide::Long => Side::Buy,
            PositionSide::Short => Side::Sell,
        }
    }
}

/// The holding in one instrument.
///
/// `quantity` is signed: positive long, negative short, zero flat. A flat position
/// keeps its `realized_pnl`, `commission` and last `current_price`; its
/// `average_price` is 0 and `opened_at` is `None`.
///
/// Read it through [`Portfolio::position`](super::Portfolio::position); the fields
/// are public to read, and changed only by the portfolio (fills, marks, exit levels).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Position {
    pub symbol: SymbolId,
    /// Signed units held.
    pub quantity: f64,
    /// Average entry price of the open quantity (volume-weighted over the fills
    /// that opened or increased it); 0 when flat.
    pub average_price: f64,
    /// Realized PnL over the symbol's life, before fees: for each reduction,
    /// `closed quantity * (exit price - average price)`, sign flipped for shorts.
    pub realized_pnl: f64,
    /// Commission paid on this symbol over its life.
    pub commission: f64,
    /// The last mark (or fill) price; 0 for a symbol never traded or marked.
    pub current_price: f64,
    /// When the open position was opened from flat (or flipped); `None` when flat.
    pub opened_at: Option<i64>,
    /// Commission of the opening fills not yet charged to a round trip.
    pub entry_commission: f64,
    /// Stop-loss level, cleared when the position closes or flips.
    pub stop_loss: Option<f64>,
    /// Take-profit level, cleared when the position closes or flips.
    pub take_profit: Option<f64>,
}

/// The closed part of a position reduced by one fill, before it becomes a
/// [`RoundTrip`](super::RoundTrip).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ClosedPart {
    pub side: PositionSide,
    pub quantity: f64,
    pub entry_time: i64,
    pub entry_price: f64,
    pub exit_price: f64,
    pub gross_pnl: f64,
    pub commission: f64,
}

impl Position {
    /// A flat, never-traded position.
    pub fn flat(symbol: SymbolId) -> Self {
        Position {
            symbol,
            quantity: 0.0,
            average_price: 0.0,
            realized_pnl: 0.0,
            commission: 0.0,
            current_price: 0.0,
            opened_at: None,
            entry_commission: 0.0,
            stop_loss: None,
            take_profit: None,
        }
    }

    /// True when the quantity is not zero.
    #[inline]
    pub fn is_open(&self) -> bool {
        self.quantity != 0.0
    }

    /// Long, short, or `None` when flat.
    pub fn side(&self) -> Option<PositionSide> {
        if self.quantity > 0.0 {
            Some(PositionSide::Long)
        } else if self.quantity < 0.0 {
            Some(PositionSide::Short)
        } else {
            None
        }
    }

    /// `quantity * current_price`: negative for a short (a liability).
    #[inline]
    pub fn market_value(&self) -> f64 {
        self.quantity * self.current_price
    }

    /// `quantity * (current_price - average_price)`; 0 when flat.
    #[inline]
    pub fn unrealized_pnl(&self) -> f64 {
        if self.quantity == 0.0 {
            0.0
        } else {
            self.quantity * (self.current_price - self.average_price)
        }
    }

    /// Realized plus unrealized PnL, less all commission paid on the symbol.
    pub fn net_pnl(&self) -> f64 {
        self.realized_pnl + self.unrealized_pnl() - self.commission
    }

    /// Books a fill whose numbers the caller has validated. Returns the closed part
    /// when the fill reduces, closes or flips the position.
    pub(crate) fn apply(&mut self, fill: &Fill) -> Option<ClosedPart> {
        let held = self.quantity;
        let (q, p) = (fill.quantity, fill.price);
        self.commission += fill.commission;
        self.current_price = p;
        let increases = held == 0.0 || (held > 0.0) == (fill.side == Side::Buy);
        if increases {
            if held == 0.0 {
                self.average_price = p;
                self.opened_at = Some(fill.timestamp);
                self.entry_commission = 0.0;
            } else {
                let held_abs = held.abs();
                self.average_price = (held_abs * self.average_price + q * p) / (held_abs + q);
            }
            self.entry_commission += fill.commission;
            self.quantity = held + fill.signed_quantity();
            return None;
        }

        let held_abs = held.abs();
        let side = if held > 0.0 {
            PositionSide::Long
        } else {
            PositionSide::Short
        };
        // A fill within QUANTITY_TOLERANCE of the holding closes it exactly, so
        // fractional positions do not linger at 1e-17.
        let closes_all = q >= held_abs || quantities_equal(q, held_abs);
        let closed = if closes_all { held_abs } else { q };
        let remainder = if closes_all && !quantities_equal(q, held_abs) {
            q - held_abs
        } else {
            0.0
        };
        let exit_fee = fill.commission * (closed / q);
        let entry_fee = self.entry_commission * (closed / held_abs);
        let part = ClosedPart {
            side,
            quantity: closed,
            entry_time: self.opened_at.unwrap_or(fill.timestamp),
            entry_price: self.average_price,
            exit_price: p,
            gross_pnl: side.sign() * closed * (p - self.average_price),
            commission: entry_fee + exit_fee,
        };
        self.realized_pnl += part.gross_pnl;
        if !closes_all {
            self.quantity = held + fill.signed_quantity();
            self.entry_commission -= entry_fee;
        } else if remainder > 0.0 {
            // Flip: the rest of the fill opens a position on the other side.
            self.quantity = fill.side.sign() * remainder;
            self.average_price = p;
            self.opened_at = Some(fill.timestamp);
            self.entry_commission = fill.commission - exit_fee;
            self.stop_loss = None;
            self.take_profit = None;
        } else {
            self.quantity = 0.0;
            self.average_price = 0.0;
            self.opened_at = None;
            self.entry_commission = 0.0;
            self.stop_loss = None;
            self.take_profit = None;
        }
        Some(part)
    }
}
