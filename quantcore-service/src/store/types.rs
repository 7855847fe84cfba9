//! The records the store reads and writes.
//!
//! Prices and quantities are `f64` (DOUBLE PRECISION / REAL), as in the core crate.
//! Event times are `DateTime<Utc>` with microsecond precision (the database's);
//! bar and signal timestamps are Unix seconds UTC, as in [`quantcore::data::Bar`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

// TODO(issue 5): map from `quantcore::order::{Side, OrderKind}` once the money core lands;
// these are the persisted spellings.

/// Order side, stored as `BUY` / `SELL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Side {
    Buy,
    Sell,
}

impl Side {
    /// Returns the stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Buy => "BUY",
            Self::Sell => "SELL",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "BUY" => Some(Self::Buy),
            "SELL" => Some(Self::Sell),
            _ => None,
        }
    }
}

/// Order kind, stored as `MARKET` / `LIMIT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum OrderKind {
    Market,
    Limit,
}

impl OrderKind {
    /// Returns the stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Market => "MARKET",
            Self::Limit => "LIMIT",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "MARKET" => Some(Self::Market),
            "LIMIT" => Some(Self::Limit),
            _ => None,
        }
    }
}

/// Order status, stored as `NEW` / `FILLED` / `REJECTED`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum OrderStatus {
    /// Inserted, not yet filled (only visible inside the filling transaction).
    New,
    Filled,
    /// Refused by the funds or holdings check; `reject_reason` says why.
    Rejected,
}

impl OrderStatus {
    /// Returns the stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "NEW",
            Self::Filled => "FILLED",
            Self::Rejected => "REJECTED",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "NEW" => Some(Self::New),
            "FILLED" => Some(Self::Filled),
            "REJECTED" => Some(Self::Rejected),
            _ => None,
        }
    }
}

/// Identifies one message handled by one consumer, for idempotent processing.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProcessedKey {
    /// The consumer (its group name): one message may be handled once by each group.
    pub consumer: String,
    /// The envelope id.
    pub message_id: Uuid,
}

impl ProcessedKey {
    /// Builds a key.
    pub fn new(consumer: impl Into<String>, message_id: Uuid) -> Self {
        Self {
            consumer: consumer.into(),
            message_id,
        }
    }
}

/// An LSTM prediction for one bar.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    pub symbol: String,
    /// Start of the last bar of the input window, Unix seconds UTC.
    pub timestamp: i64,
    pub current_price: f64,
    pub predicted_price: f64,
    /// Model name or version.
    pub model: String,
}

/// A stored record with its row id and insertion time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stored<T> {
    pub id: i64,
    pub created_at: DateTime<Utc>,
    pub record: T,
}

/// The ml role's output for one market-data message, stored in one transaction.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Analysis {
    /// Marks the message processed in the same transaction; `None` skips the marker.
    pub processed: Option<ProcessedKey>,
    pub prediction: Option<Prediction>,
    pub signal: Option<crate::messages::SignalMessage>,
    pub anomaly: Option<crate::messages::AnomalyMessage>,
}

/// Row ids assigned to an [`Analysis`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AnalysisIds {
    pub prediction: Option<i64>,
    pub signal: Option<i64>,
    pub anomaly: Option<i64>,
}

/// An order to insert and fill.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderRequest {
    /// Caller-made id (UUID v7 recommended).
    pub id: Uuid,
    pub symbol: String,
    pub side: Side,
    pub kind: OrderKind,
    /// Must be positive (the `validate_order` trigger checks it).
    pub quantity: f64,
    /// Required for limit orders (checked by `validate_order`).
    pub limit_price: Option<f64>,
    pub created_at: DateTime<Utc>,
}

/// One fill to record: the order, the execution price and fees, and the idempotency key.
#[derive(Debug, Clone, PartialEq)]
pub struct FillRequest {
    pub order: OrderRequest,
    /// Execution price per unit (after slippage, as decided by the core's `execution`).
    pub price: f64,
    /// Commission paid on this fill, in cash units.
    pub commission: f64,
    pub filled_at: DateTime<Utc>,
    /// Marks the triggering message processed in the same transaction.
    pub processed: Option<ProcessedKey>,
}

/// Position quantities as the store keeps them; computed by the caller's money rules.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct PositionState {
    /// Signed quantity held.
    pub quantity: f64,
    /// Average entry price of the quantity held (0 when flat).
    pub average_price: f64,
    /// Cumulative realized PnL of the symbol.
    pub realized_pnl: f64,
}

/// The locked state a fill is planned on: read under row locks inside the fill's transaction.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LockedState {
    pub cash: f64,
    /// The symbol's position (all zeros when there is none).
    pub position: PositionState,
}

/// What a fill changes, as computed by the caller (the core's `portfolio::apply_fill`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FillEffects {
    /// The position after the fill.
    pub position: PositionState,
    /// Signed change of cash: `-(quantity * price) - commission` for a buy,
    /// `+(quantity * price) - commission` for a sell.
    pub cash_delta: f64,
    /// Realized PnL of this fill alone (stored on the trade row).
    pub realized_pnl: f64,
    /// The position's stop-loss and take-profit after the fill: `None` keeps the stored
    /// ones, `Some` replaces them (`Some(ExitLevels::NONE)` clears them, as when the fill
    /// closes the position).
    pub exit_levels: Option<ExitLevels>,
}

/// A position's stop-loss and take-profit levels (prices; `None`: no level).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ExitLevels {
    pub stop_loss: Option<f64>,
    pub take_profit: Option<f64>,
}

impl ExitLevels {
    /// No level.
    pub const NONE: ExitLevels = ExitLevels {
        stop_loss: None,
        take_profit: None,
    };

    /// True when a level is set.
    pub fn is_set(&self) -> bool {
        self.stop_loss.is_some() || self.take_profit.is_some()
    }
}

/// The caller's money rule, run inside the fill's transaction on the locked state.
///
/// The store holds no trading rule: it locks, asks this function what changes, and
/// persists the answer. An `Err` aborts the fill ([`super::StoreError::PlanRejected`]).
pub type FillPlan = Box<
    dyn FnOnce(&LockedState) -> Result<FillEffects, Box<dyn std::error::Error + Send + Sync>>
        + Send,
>;

/// A recorded fill.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FillReceipt {
    pub order_id: Uuid,
    pub trade_id: i64,
    pub cash_after: f64,
    pub position: PositionState,
}

/// The result of [`super::Store::execute_fill`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FillOutcome {
    /// The fill was recorded.
    Filled(FillReceipt),
    /// The message was already processed: nothing was written.
    Duplicate,
}

/// A stored order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderRow {
    pub id: Uuid,
    pub symbol: String,
    pub side: Side,
    pub kind: OrderKind,
    pub quantity: f64,
    pub limit_price: Option<f64>,
    pub status: OrderStatus,
    pub reject_reason: Option<String>,
    pub filled_price: Option<f64>,
    pub commission: Option<f64>,
    pub created_at: DateTime<Utc>,
    pub filled_at: Option<DateTime<Utc>>,
}

/// A stored position.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PositionRow {
    pub symbol: String,
    pub quantity: f64,
    pub average_price: f64,
    pub realized_pnl: f64,
    /// Last mark (fill or mark-to-market price); `None` before the first.
    pub current_price: Option<f64>,
    pub updated_at: DateTime<Utc>,
    /// Stop-loss level of the open position, if any.
    pub stop_loss: Option<f64>,
    /// Take-profit level of the open position, if any.
    pub take_profit: Option<f64>,
}

/// PnL of one position, as `calculate_position_pnl` returns it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PositionPnl {
    pub realized: f64,
    /// `quantity * (current_price - average_price)`, with the average price as mark when
    /// there is no current price.
    pub unrealized: f64,
    pub total: f64,
}

/// A stored trade (one per fill).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TradeRow {
    pub id: i64,
    pub order_id: Uuid,
    pub symbol: String,
    pub side: Side,
    pub quantity: f64,
    pub price: f64,
    pub commission: f64,
    pub realized_pnl: f64,
    pub executed_at: DateTime<Utc>,
}

/// A portfolio value snapshot (written by the `update_portfolio_value` trigger).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotRow {
    pub id: i64,
    pub timestamp: DateTime<Utc>,
    pub cash: f64,
    pub positions_value: f64,
    pub total_value: f64,
}

/// Statistics over the portfolio snapshots of a time range; see [`super::stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct PortfolioStats {
    /// Snapshots in the range.
    pub snapshots: u64,
    pub start_value: Option<f64>,
    pub end_value: Option<f64>,
    /// `end / start - 1`; `None` with fewer than 2 snapshots.
    pub total_return: Option<f64>,
    /// `std(r, ddof=1) * sqrt(periods_per_year)`; `None` with fewer than 2 returns.
    pub volatility: Option<f64>,
    /// `mean(r) / std(r, ddof=1) * sqrt(periods_per_year)`; `None` with fewer than 2 returns
    /// or zero variance.
    pub sharpe_ratio: Option<f64>,
    /// `min(v_t / max_{s<=t} v_s - 1)`, a fraction `<= 0`; `None` with fewer than 2 snapshots.
    pub max_drawdown: Option<f64>,
}
