//! Persistence: one object-safe [`Store`] trait, a PostgreSQL and a SQLite implementation.
//!
//! # Tables (both backends)
//! | table | holds |
//! |---|---|
//! | `market_data` | bars, primary key `(symbol, ts)`: an upsert replaces a bar |
//! | `predictions`, `signals`, `anomalies` | the ml role's output |
//! | `orders` | every order, `FILLED` or `REJECTED` (with the reason) |
//! | `positions` | one row per symbol: quantity, average price, realized PnL, last mark |
//! | `trades` | one row per fill |
//! | `account` | the one cash row (`cash >= 0` is a table constraint) |
//! | `portfolio_snapshots` | cash, positions value and total after every position change |
//! | `processed_messages` | `(consumer, message_id)` of handled bus messages (idempotency) |
//!
//! PostgreSQL (`migrations/postgres`) carries the design's PL/pgSQL: `check_available_funds`,
//! the `update_portfolio_value` trigger on `positions` (inserting a snapshot),
//! `calculate_position_pnl`, `get_portfolio_stats` and the `validate_order` trigger on
//! `orders`. SQLite (`migrations/sqlite`) has the same tables and the same two triggers
//! written in SQLite's trigger language; where Postgres calls a procedure, the SQLite store
//! computes the same thing in Rust. The conformance suite
//! (`quantcore-service/tests/service/store_conformance.rs`) runs one set of scenarios against both
//! and checks they agree.
//!
//! # Fills
//! [`Store::execute_fill`] is the one write path for money. In one transaction it
//! 1. inserts the idempotency marker (a repeated message returns [`FillOutcome::Duplicate`]),
//! 2. locks the account row and the symbol's position row (PostgreSQL `SELECT … FOR UPDATE`;
//!    SQLite serializes writers with `BEGIN IMMEDIATE`),
//! 3. inserts the order (the `validate_order` trigger may refuse it),
//! 4. checks funds (PostgreSQL: `check_available_funds`; buys need
//!    `cash >= quantity * price`, sells need `held >= quantity`),
//! 5. runs the caller's [`FillPlan`] on the locked state — the core's money rules decide the
//!    new position and the cash change; the store holds none,
//! 6. refuses the fill if cash would go negative (commission included),
//! 7. updates cash, the position (the trigger writes a snapshot) with the exit levels the
//!    plan decided ([`FillEffects::exit_levels`]), inserts the trade and marks the order
//!    `FILLED`.
//!
//! A refusal at step 4 or 6 commits the order as `REJECTED` with the marker, so a redelivered
//! message is not retried, and returns [`StoreError::InsufficientFunds`] or
//! [`StoreError::InsufficientPosition`]. Any other error rolls everything back.
//!
//! The steps are few statements, since each is a round trip (to the server, or to the
//! SQLite connection's worker thread) and the trade role's fills run one after another:
//! PostgreSQL folds the marker into the account lock, the order into the position lock and
//! `check_available_funds`, and the position, trade and `FILLED` into one statement
//! (data-modifying `WITH`): 6 round trips with `BEGIN` and `COMMIT`. SQLite reads the
//! cash and position in the marker's `INSERT … RETURNING` and inserts the order once, with
//! its final status, after the checks (a check that fails inserts it first, so the
//! `validate_order` triggers' refusal still wins, as at step 3); order, cash and position
//! go in one statement through the `fill_writes` view's trigger: 5 round trips.
//!
//! # Fill batches
//! [`Store::begin_fill_batch`] opens a [`FillBatch`]: the steps above for several fills in
//! one transaction, committed once. It serves the trade role, whose fills run one after
//! another: SQLite spends most of a lone fill in `BEGIN IMMEDIATE` and `COMMIT` (taking the
//! file's write lock, writing the WAL frames), so a batch of fills costs little more than
//! its statements. The refusals of step 4 and 6 keep their `REJECTED` order in the batch;
//! any other error poisons it, and the caller drops it (rolling back all its fills) and
//! fills one by one instead, where each error has its own transaction. The batch holds the
//! write lock throughout, so other writers wait until it commits; reads outside it do not
//! see its fills before then. PostgreSQL has none yet: its fills stay one transaction each.
//!
//! # Time
//! PostgreSQL stores `TIMESTAMPTZ`; SQLite stores Unix microseconds in `INTEGER` columns.
//! Bar timestamps cross the API as Unix seconds (as in [`quantcore::data::Bar`]).

mod error;
pub mod postgres;
pub mod sqlite;
pub mod stats;
mod types;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

pub use error::StoreError;
pub use postgres::PgStore;
pub use sqlite::SqliteStore;
pub use types::*;

use crate::messages::{AnomalyMessage, SignalMessage};

/// Fills in one transaction that holds the store's write locks until
/// [`commit`](FillBatch::commit); see [Fill batches](self#fill-batches).
///
/// Dropping it uncommitted rolls back every fill it made.
#[async_trait]
pub trait FillBatch: Send {
    /// [`Store::execute_fill`] inside the batch. A refusal of the funds or position check
    /// returns its error with the `REJECTED` order written, and the batch goes on; any
    /// other error poisons the batch.
    async fn execute_fill(
        &mut self,
        request: &FillRequest,
        plan: FillPlan,
    ) -> Result<FillOutcome, StoreError>;

    /// [`Store::mark_processed_batch`] inside the batch; an error poisons it.
    async fn mark_processed_batch(
        &mut self,
        keys: &[ProcessedKey],
    ) -> Result<Vec<bool>, StoreError>;

    /// Whether a call failed in a way that leaves the transaction to be rolled back: every
    /// later call returns [`StoreError::BatchPoisoned`].
    fn is_poisoned(&self) -> bool;

    /// Commits every fill and marker of the batch.
    async fn commit(self: Box<Self>) -> Result<(), StoreError>;

    /// Rolls back every fill and marker of the batch.
    async fn roll_back(self: Box<Self>) -> Result<(), StoreError>;
}

/// Which implementation a store is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

/// The service's storage; see the [module docs](self).
///
/// Object-safe: the service holds an `Arc<dyn Store>`.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Which implementation this is.
    fn backend(&self) -> Backend;

    /// Applies the pending migrations of this backend.
    async fn migrate(&self) -> Result<(), StoreError>;

    /// Inserts or replaces bars of `symbol` (key: symbol and timestamp); returns the number
    /// of bars written. Each bar is checked with [`quantcore::data::Bar::validate`] first.
    async fn upsert_bars(
        &self,
        symbol: &str,
        bars: &[quantcore::data::Bar],
    ) -> Result<u64, StoreError>;

    /// Returns the last `count` bars of `symbol`, oldest first.
    async fn last_bars(
        &self,
        symbol: &str,
        count: usize,
    ) -> Result<Vec<quantcore::data::Bar>, StoreError>;

    /// Returns the last `count` bars of `symbol` starting at or before `until` (Unix seconds;
    /// `None`: no bound), oldest first.
    async fn bars_until(
        &self,
        symbol: &str,
        until: Option<i64>,
        count: usize,
    ) -> Result<Vec<quantcore::data::Bar>, StoreError>;

    /// Inserts a prediction; returns its id.
    async fn insert_prediction(&self, prediction: &Prediction) -> Result<i64, StoreError>;

    /// Inserts a signal; returns its id.
    async fn insert_signal(&self, signal: &SignalMessage) -> Result<i64, StoreError>;

    /// Inserts an anomaly score; returns its id.
    async fn insert_anomaly(&self, anomaly: &AnomalyMessage) -> Result<i64, StoreError>;

    /// Returns the last `limit` predictions of `symbol`, oldest first.
    async fn predictions(
        &self,
        symbol: &str,
        limit: usize,
    ) -> Result<Vec<Stored<Prediction>>, StoreError>;

    /// Returns the last `limit` signals of `symbol`, oldest first.
    async fn signals(
        &self,
        symbol: &str,
        limit: usize,
    ) -> Result<Vec<Stored<SignalMessage>>, StoreError>;

    /// Returns the last `limit` anomaly scores of `symbol`, oldest first.
    async fn anomalies(
        &self,
        symbol: &str,
        limit: usize,
    ) -> Result<Vec<Stored<AnomalyMessage>>, StoreError>;

    /// Stores the ml role's output and its idempotency marker in one transaction; `None`
    /// when the message was processed before (nothing written).
    async fn record_analysis(&self, analysis: &Analysis)
    -> Result<Option<AnalysisIds>, StoreError>;

    /// Stores several analyses in one transaction (one write lock and one commit instead of
    /// one each): item `i` of the answer is what [`Store::record_analysis`] would answer for
    /// `analyses[i]` (`None`: processed before, nothing of it written). All or nothing: an
    /// error writes none of them. The default calls [`Store::record_analysis`] per item.
    async fn record_analyses(
        &self,
        analyses: &[Analysis],
    ) -> Result<Vec<Option<AnalysisIds>>, StoreError> {
        let mut ids = Vec::with_capacity(analyses.len());
        for analysis in analyses {
            ids.push(self.record_analysis(analysis).await?);
        }
        Ok(ids)
    }

    /// Records that `key` was handled; `true` the first time, `false` after. Use the
    /// `processed` field of the write methods to mark inside the work's own transaction.
    async fn mark_processed(&self, key: &ProcessedKey) -> Result<bool, StoreError>;

    /// Records several handled keys in one transaction: item `i` of the answer is what
    /// [`Store::mark_processed`] would answer for `keys[i]` in turn (a key repeated in
    /// `keys` is `false` the second time). All or nothing. The default marks one by one.
    async fn mark_processed_batch(&self, keys: &[ProcessedKey]) -> Result<Vec<bool>, StoreError> {
        let mut fresh = Vec::with_capacity(keys.len());
        for key in keys {
            fresh.push(self.mark_processed(key).await?);
        }
        Ok(fresh)
    }

    /// Creates the account with `initial_cash` and its first snapshot (at `at`) unless it
    /// exists; returns the current cash either way.
    async fn ensure_account(&self, initial_cash: f64, at: DateTime<Utc>)
    -> Result<f64, StoreError>;

    /// Returns the cash.
    ///
    /// # Errors
    /// [`StoreError::NoAccount`] before [`Store::ensure_account`].
    async fn cash(&self) -> Result<f64, StoreError>;

    /// Inserts and fills an order in one transaction; see [Fills](self#fills).
    async fn execute_fill(
        &self,
        request: &FillRequest,
        plan: FillPlan,
    ) -> Result<FillOutcome, StoreError>;

    /// Opens a [`FillBatch`]: several fills (and markers) in one transaction, for a
    /// caller that makes many fills in a row, like the trade role with a batch of signals.
    /// `None` when this store has none (the default); the caller then fills one by one
    /// with [`Store::execute_fill`]. The SQLite store has one: a write transaction per
    /// fill is most of a fill's cost there (see [Fill batches](self#fill-batches)).
    async fn begin_fill_batch(&self) -> Result<Option<Box<dyn FillBatch>>, StoreError> {
        Ok(None)
    }

    /// Sets the mark price of `symbol`'s position (mark-to-market); the trigger writes a
    /// snapshot. Returns `false` when there is no position.
    async fn mark_position(
        &self,
        symbol: &str,
        price: f64,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Returns the position of `symbol`, if any.
    async fn position(&self, symbol: &str) -> Result<Option<PositionRow>, StoreError>;

    /// Returns every position, by symbol.
    async fn positions(&self) -> Result<Vec<PositionRow>, StoreError>;

    /// Returns the PnL of `symbol`'s position (PostgreSQL: `calculate_position_pnl`).
    async fn position_pnl(&self, symbol: &str) -> Result<Option<PositionPnl>, StoreError>;

    /// Returns the order with `id`, if any.
    async fn order(&self, id: Uuid) -> Result<Option<OrderRow>, StoreError>;

    /// Returns the last `limit` trades, oldest first.
    async fn trades(&self, limit: usize) -> Result<Vec<TradeRow>, StoreError>;

    /// Returns the snapshots with `start <= timestamp <= end`, oldest first.
    async fn portfolio_history(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Vec<SnapshotRow>, StoreError>;

    /// Statistics over the snapshots of `[start, end]` (PostgreSQL: `get_portfolio_stats`);
    /// conventions in [`stats`].
    async fn portfolio_stats(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        periods_per_year: f64,
    ) -> Result<PortfolioStats, StoreError>;
}

/// Opens the store named by `url` (`sqlite:PATH` or `postgres://…`) and applies its
/// migrations. A SQLite file and its folder are created when missing.
///
/// # Errors
/// [`StoreError::UnsupportedUrl`], a connection error or a migration error.
pub async fn open(url: &str, max_connections: u32) -> Result<Arc<dyn Store>, StoreError> {
    let store: Arc<dyn Store> = if url.starts_with("sqlite:") {
        Arc::new(SqliteStore::connect(url, max_connections).await?)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Arc::new(PgStore::connect(url, max_connections).await?)
    } else {
        return Err(StoreError::UnsupportedUrl {
            url: url.to_owned(),
        });
    };
    store.migrate().await?;
    Ok(store)
}

fn check_positive(field: &'static str, value: f64) -> Result<f64, StoreError> {
    error::finite(field, value)?;
    if value > 0.0 {
        Ok(value)
    } else {
        Err(StoreError::InvalidValue {
            field,
            value,
            reason: "must be positive",
        })
    }
}

/// Checks the numbers of a fill request before they reach SQL. Quantity and limit price
/// only need to be finite here: their business rules are the `validate_order` trigger's.
fn check_fill_request(request: &FillRequest) -> Result<(), StoreError> {
    error::finite("quantity", request.order.quantity)?;
    if let Some(limit) = request.order.limit_price {
        error::finite("limit_price", limit)?;
    }
    check_positive("price", request.price)?;
    error::finite("commission", request.commission)?;
    Ok(())
}

fn check_effects(effects: &FillEffects) -> Result<(), StoreError> {
    error::finite("position.quantity", effects.position.quantity)?;
    error::finite("position.average_price", effects.position.average_price)?;
    error::finite("position.realized_pnl", effects.position.realized_pnl)?;
    error::finite("cash_delta", effects.cash_delta)?;
    error::finite("realized_pnl", effects.realized_pnl)?;
    if let Some(levels) = effects.exit_levels {
        if let Some(stop) = levels.stop_loss {
            check_positive("stop_loss", stop)?;
        }
        if let Some(take) = levels.take_profit {
            check_positive("take_profit", take)?;
        }
    }
    Ok(())
}

fn check_bars(symbol: &str, bars: &[quantcore::data::Bar]) -> Result<(), StoreError> {
    for (row, bar) in bars.iter().enumerate() {
        bar.validate(row).map_err(|source| StoreError::InvalidBar {
            symbol: symbol.to_owned(),
            source,
        })?;
    }
    Ok(())
}

fn parse_enum<T>(
    table: &'static str,
    column: &'static str,
    text: String,
    parse: fn(&str) -> Option<T>,
) -> Result<T, StoreError> {
    parse(&text).ok_or(StoreError::Corrupt {
        table,
        column,
        value: text,
    })
}

fn limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// Rows per multi-row `INSERT` (bars, analyses' rows, idempotency markers): at most 10
/// binds a row, so at most 10,000 binds a statement, under both backends' limits (SQLite
/// 32,766, PostgreSQL 65,535).
const BAR_CHUNK: usize = 1000;
