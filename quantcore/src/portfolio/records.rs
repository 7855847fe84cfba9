//! What the portfolio reports: snapshots and closed round trips.

use serde::{Deserialize, Serialize};

use super::position::{ClosedPart, PositionSide};
use crate::order::SymbolId;

/// The portfolio's value at one moment, against its initial capital.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Unix seconds UTC.
    pub timestamp: i64,
    /// `cash + positions_value`: the equity.
    pub total_value: f64,
    pub cash: f64,
    /// Sum of `quantity * current_price` over positions (shorts count negative).
    pub positions_value: f64,
    /// `total_value - initial_capital`, fees included.
    pub total_pnl: f64,
    /// `total_value / initial_capital - 1`, a fraction (0.05 = +5 %).
    pub total_return: f64,
}

/// A closed trade: a quantity opened and later closed, with its PnL.
///
/// # The rule
/// Every fill that reduces a position records one round trip for the quantity it
/// closes (a partial close records the closed part; a flip records the whole old
/// position and opens the new one at the fill price). Its entry price is the
/// position's average price at that moment and its entry time is when the position
/// was opened from flat. Commission is shared out by quantity: the round trip carries
/// `closed / open` of the opening fills' unassigned commission and `closed / filled`
/// of the closing fill's commission, so that when a position is flat again the round
/// trips' `pnl` sum exactly to the change in equity.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RoundTrip {
    pub symbol: SymbolId,
    /// Long (bought then sold) or short (sold then bought back).
    pub side: PositionSide,
    /// Units closed, `> 0`.
    pub quantity: f64,
    /// When the position was opened from flat (Unix seconds).
    pub entry_time: i64,
    /// When this part was closed (Unix seconds).
    pub exit_time: i64,
    /// Average entry price of the position when closed.
    pub entry_price: f64,
    pub exit_price: f64,
    /// `quantity * (exit_price - entry_price)`, sign flipped for shorts; before fees.
    pub gross_pnl: f64,
    /// Entry and exit commission charged to this round trip.
    pub commission: f64,
    /// `gross_pnl - commission`: the PnL trade statistics read.
    pub pnl: f64,
    /// `pnl / (entry_price * quantity)`, a fraction of the entry notional (0.05 = +5 %).
    pub return_fraction: f64,
}

impl RoundTrip {
    pub(crate) fn from_closed(symbol: SymbolId, exit_time: i64, part: ClosedPart) -> Self {
        let pnl = part.gross_pnl - part.commission;
        RoundTrip {
            symbol,
            side: part.side,
            quantity: part.quantity,
            entry_time: part.entry_time,
            exit_time,
            entry_price: part.entry_price,
            exit_price: part.exit_price,
            gross_pnl: part.gross_pnl,
            commission: part.commission,
            pnl,
            return_fraction: pnl / (part.entry_price * part.quantity),
        }
    }

    /// Seconds between entry and exit.
    pub fn duration(&self) -> i64 {
        self.exit_time - self.entry_time
    }
}
