//! The SQLite store: the embedded default, one file, no server.
//!
//! - The file (and its folder) is created when missing; WAL journal, `synchronous=NORMAL`,
//!   foreign keys on, 5 s busy timeout.
//! - Writers are serialized with `BEGIN IMMEDIATE`: a fill takes the database write lock
//!   before it reads the cash and position it plans on, which is what PostgreSQL's
//!   `SELECT … FOR UPDATE` row locks give the other backend.
//! - Within one process, the write transactions of every [`SqliteStore`] on the same file
//!   (each role may have its own pool) first queue on one in-process async lock (FIFO),
//!   then begin. Without it, writers that find the file locked wait in SQLite's busy
//!   handler, which sleeps in growing steps (up to 100 ms) and polls: under load that
//!   sleeping, not the work, was most of the bar-to-order latency. Another process on
//!   the same file still meets the busy timeout.
//! - `synchronous=NORMAL` in WAL mode: a commit does not wait for the disk; the WAL is
//!   synced at checkpoints. The database stays consistent after a power loss or OS crash,
//!   but the last transactions before it may be lost (an application crash loses
//!   nothing). The bus then redelivers their uncommitted messages only if the bus itself
//!   survived: the embedded bus is in memory, so an OS crash loses its messages too.
//! - Times are stored as Unix microseconds in `INTEGER` columns; order and message ids as
//!   hyphenated UUID text.
//! - Where PostgreSQL calls a procedure (`check_available_funds`, `calculate_position_pnl`,
//!   `get_portfolio_stats`) this store computes the same thing in Rust; the triggers
//!   (`validate_order`, `update_portfolio_value`) exist in SQLite too (`migrations/sqlite`).
//! - A fill's order, cash and position are written by one `INSERT` into the `fill_writes`
//!   view, whose `INSTEAD OF` trigger (`migrations/sqlite/0004_fill_writes.sql`) does the
//!   three writes in order: each statement is a round trip to the connection's worker
//!   thread (see [Fills](super#fills)). It decides nothing; the Rust store does.

use std::collections::HashMap;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite, Transaction};
use uuid::Uuid;

use super::error::{INVALID_ORDER_PREFIX, finite};
use super::{
    Analysis, AnalysisIds, BAR_CHUNK, Backend, FillBatch, FillOutcome, FillPlan, FillReceipt,
    FillRequest, LockedState, OrderKind, OrderRow, OrderStatus, PortfolioStats, PositionPnl,
    PositionRow, PositionState, Prediction, ProcessedKey, Side, SnapshotRow, Store, StoreError,
    Stored, TradeRow, check_bars, check_effects, check_fill_request, parse_enum,
};
use crate::messages::{AnomalyMessage, SignalAction, SignalMessage};

type Result<T> = std::result::Result<T, StoreError>;

/// A turn in a database file's writer queue (see the module docs).
type WriterTurn = tokio::sync::OwnedMutexGuard<()>;

/// The writer queue of the database file at `path`, shared by every store of this process
/// on it (keyed by the canonical path when the file exists, else by `path` as given).
fn writer_queue(path: &std::path::Path) -> Arc<tokio::sync::Mutex<()>> {
    static QUEUES: OnceLock<Mutex<HashMap<PathBuf, Weak<tokio::sync::Mutex<()>>>>> =
        OnceLock::new();
    let key = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
    let mut queues = QUEUES
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    queues.retain(|_, queue| queue.strong_count() > 0);
    if let Some(queue) = queues.get(&key).and_then(Weak::upgrade) {
        return queue;
    }
    let queue = Arc::new(tokio::sync::Mutex::new(()));
    queues.insert(key, Arc::downgrade(&queue));
    queue
}

/// The SQLite implementation of [`Store`].
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// The in-process writer queue of this database file (shared by every store on it).
    writer: Arc<tokio::sync::Mutex<()>>,
}

fn micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

fn from_micros(table: &'static str, column: &'static str, value: i64) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_micros(value).ok_or(StoreError::Corrupt {
        table,
        column,
        value: value.to_string(),
    })
}

fn parse_uuid(table: &'static str, column: &'static str, text: String) -> Result<Uuid> {
    Uuid::parse_str(&text).map_err(|_| StoreError::Corrupt {
        table,
        column,
        value: text,
    })
}

/// Maps an error of the order insert: the `validate_order` triggers raise
/// `invalid order: …`, a repeated id violates the primary key.
fn order_insert_error(order_id: Uuid) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |error| {
        if let Some(db) = error.as_database_error() {
            if let Some(reason) = db.message().strip_prefix(INVALID_ORDER_PREFIX) {
                return StoreError::InvalidOrder {
                    order_id,
                    reason: reason.to_owned(),
                };
            }
            if db.is_unique_violation() {
                return StoreError::DuplicateOrder { order_id };
            }
        }
        StoreError::Database {
            operation: "insert order",
            source: error,
        }
    }
}

/// Maps an error of the `fill_writes` insert: the order's errors as
/// [`order_insert_error`], anything else a database error of the fill's writes.
fn fill_write_error(order_id: Uuid) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |error| match order_insert_error(order_id)(error) {
        StoreError::Database { source, .. } => StoreError::Database {
            operation: "write fill",
            source,
        },
        mapped => mapped,
    }
}

impl SqliteStore {
    /// Opens (creating when missing) the database file of `url` (`sqlite:PATH`,
    /// `sqlite://PATH`); does not migrate (see [`Store::migrate`]).
    ///
    /// # Errors
    /// [`StoreError::CreateDir`] when the folder cannot be made, else a connection error.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(StoreError::db("parse sqlite url"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let path = options.get_filename().to_owned();
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                path: dir.to_owned(),
                source,
            })?;
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections.max(1))
            // No ping before handing out a connection: a file connection does not go away,
            // and the ping was one more round trip to its worker thread for every query
            // and transaction.
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .map_err(StoreError::db("connect"))?;
        let writer = writer_queue(&path);
        Ok(Self { pool, writer })
    }

    /// Returns the connection pool (for tests and tools).
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Waits for this file's in-process writer queue, then begins a write transaction.
    /// Keep the guard until the transaction is committed or dropped.
    async fn begin_immediate(&self) -> Result<(WriterTurn, Transaction<'static, Sqlite>)> {
        let turn = self.writer.clone().lock_owned().await;
        let tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(StoreError::db("begin transaction"))?;
        Ok((turn, tx))
    }

    async fn insert_processed(
        tx: &mut Transaction<'static, Sqlite>,
        key: &ProcessedKey,
    ) -> Result<bool> {
        let result = sqlx::query(
            "INSERT INTO processed_messages (consumer, message_id, processed_at) \
             VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
        )
        .bind(&key.consumer)
        .bind(key.message_id.to_string())
        .bind(micros(Utc::now()))
        .execute(&mut **tx)
        .await
        .map_err(StoreError::db("mark message processed"))?;
        Ok(result.rows_affected() == 1)
    }

    /// Inserts the markers of `keys` in multi-row statements (one per `BAR_CHUNK` keys);
    /// item `i` is `true` when `keys[i]` was new (a key repeated in `keys` is `false`
    /// after its first time).
    ///
    /// Per chunk, one `SELECT` names the keys already marked (usually none), then one
    /// `INSERT` without `RETURNING` writes the others: a returned row is a message from
    /// the connection's worker thread, and this runs under the write lock, so answering
    /// with the few old keys rather than every new one keeps the lock's hold short. Both
    /// run in the caller's write transaction, so nothing can mark a key in between.
    async fn insert_processed_many(
        tx: &mut Transaction<'static, Sqlite>,
        keys: &[ProcessedKey],
        now: i64,
    ) -> Result<Vec<bool>> {
        let mut fresh = Vec::with_capacity(keys.len());
        let mut seen = std::collections::HashSet::with_capacity(keys.len());
        for chunk in keys.chunks(super::BAR_CHUNK) {
            let mut query = QueryBuilder::<Sqlite>::new(
                "SELECT consumer, message_id FROM processed_messages \
                 WHERE (consumer, message_id) IN (VALUES ",
            );
            let mut separated = query.separated(", ");
            for key in chunk {
                separated
                    .push("(")
                    .push_bind_unseparated(key.consumer.clone())
                    .push_unseparated(", ")
                    .push_bind_unseparated(key.message_id.to_string())
                    .push_unseparated(")");
            }
            query.push(")");
            let rows = query
                .build()
                .fetch_all(&mut **tx)
                .await
                .map_err(StoreError::db("read markers"))?;
            let mut marked = std::collections::HashSet::with_capacity(rows.len());
            for row in rows {
                let consumer: String = row
                    .try_get("consumer")
                    .map_err(StoreError::db("read marker"))?;
                let id: String = row
                    .try_get("message_id")
                    .map_err(StoreError::db("read marker"))?;
                marked.insert((
                    consumer,
                    parse_uuid("processed_messages", "message_id", id)?,
                ));
            }
            let mut new_keys = Vec::with_capacity(chunk.len());
            for key in chunk {
                let is_new = seen.insert((key.consumer.as_str(), key.message_id))
                    && !marked.contains(&(key.consumer.clone(), key.message_id));
                if is_new {
                    new_keys.push(key);
                }
                fresh.push(is_new);
            }
            if new_keys.is_empty() {
                continue;
            }
            let mut query = QueryBuilder::<Sqlite>::new(
                "INSERT INTO processed_messages (consumer, message_id, processed_at) ",
            );
            query.push_values(&new_keys, |mut row, key| {
                row.push_bind(key.consumer.clone())
                    .push_bind(key.message_id.to_string())
                    .push_bind(now);
            });
            query
                .build()
                .execute(&mut **tx)
                .await
                .map_err(StoreError::db("mark messages processed"))?;
        }
        Ok(fresh)
    }

    /// Runs a multi-row `INSERT` of `rows` rows into a table whose `id` is
    /// `INTEGER PRIMARY KEY AUTOINCREMENT`; the ids in row order. Such a table gives one
    /// statement's rows consecutive ids, each one above the largest ever used (it fails
    /// rather than reuse one), so they are the `rows` ids ending at the last inserted
    /// rowid: no `RETURNING` row to send back per insert.
    async fn inserted_ids(
        tx: &mut Transaction<'static, Sqlite>,
        mut query: QueryBuilder<Sqlite>,
        rows: usize,
        (table, operation): (&'static str, &'static str),
    ) -> Result<Vec<i64>> {
        let result = query
            .build()
            .execute(&mut **tx)
            .await
            .map_err(StoreError::db(operation))?;
        let last = result.last_insert_rowid();
        let rows = rows as i64;
        if result.rows_affected() != rows as u64 {
            return Err(StoreError::Corrupt {
                table,
                column: "id",
                value: format!("{} rows inserted, {rows} expected", result.rows_affected()),
            });
        }
        Ok((last - rows + 1..=last).collect())
    }

    async fn insert_prediction_in(
        tx: &mut Transaction<'static, Sqlite>,
        prediction: &Prediction,
    ) -> Result<i64> {
        finite("current_price", prediction.current_price)?;
        finite("predicted_price", prediction.predicted_price)?;
        sqlx::query(
            "INSERT INTO predictions (symbol, ts, current_price, predicted_price, model, created_at) \
             VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(&prediction.symbol)
        .bind(prediction.timestamp.saturating_mul(1_000_000))
        .bind(prediction.current_price)
        .bind(prediction.predicted_price)
        .bind(&prediction.model)
        .bind(micros(Utc::now()))
        .fetch_one(&mut **tx)
        .await
        .map_err(StoreError::db("insert prediction"))?
        .try_get(0)
        .map_err(StoreError::db("read prediction id"))
    }

    async fn insert_signal_in(
        tx: &mut Transaction<'static, Sqlite>,
        signal: &SignalMessage,
    ) -> Result<i64> {
        finite("confidence", signal.confidence)?;
        finite("price", signal.price)?;
        finite("predicted_price", signal.predicted_price)?;
        finite("expected_return", signal.expected_return)?;
        sqlx::query(
            "INSERT INTO signals (symbol, ts, action, confidence, price, predicted_price, \
             stop_loss, take_profit, expected_return, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(&signal.symbol)
        .bind(signal.timestamp.saturating_mul(1_000_000))
        .bind(signal.action.as_str())
        .bind(signal.confidence)
        .bind(signal.price)
        .bind(signal.predicted_price)
        .bind(signal.stop_loss)
        .bind(signal.take_profit)
        .bind(signal.expected_return)
        .bind(micros(Utc::now()))
        .fetch_one(&mut **tx)
        .await
        .map_err(StoreError::db("insert signal"))?
        .try_get(0)
        .map_err(StoreError::db("read signal id"))
    }

    async fn insert_anomaly_in(
        tx: &mut Transaction<'static, Sqlite>,
        anomaly: &AnomalyMessage,
    ) -> Result<i64> {
        finite("score", anomaly.score)?;
        sqlx::query(
            "INSERT INTO anomalies (symbol, ts, score, is_anomaly, created_at) \
             VALUES (?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(&anomaly.symbol)
        .bind(anomaly.timestamp.saturating_mul(1_000_000))
        .bind(anomaly.score)
        .bind(anomaly.is_anomaly)
        .bind(micros(Utc::now()))
        .fetch_one(&mut **tx)
        .await
        .map_err(StoreError::db("insert anomaly"))?
        .try_get(0)
        .map_err(StoreError::db("read anomaly id"))
    }

    /// Inserts `order`, not filled, with `status` (the `validate_order` triggers check it
    /// here, so their refusal wins over the store's).
    async fn insert_order(
        tx: &mut Transaction<'static, Sqlite>,
        order: &super::OrderRequest,
        status: OrderStatus,
        reject_reason: Option<String>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO orders (id, symbol, side, kind, quantity, limit_price, status, \
             reject_reason, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(order.id.to_string())
        .bind(&order.symbol)
        .bind(order.side.as_str())
        .bind(order.kind.as_str())
        .bind(order.quantity)
        .bind(order.limit_price)
        .bind(status.as_str())
        .bind(reject_reason)
        .bind(micros(order.created_at))
        .execute(&mut **tx)
        .await
        .map_err(order_insert_error(order.id))?;
        Ok(())
    }

    /// Inserts the order `REJECTED`, commits (keeping the idempotency marker) and returns
    /// `error`; the `validate_order` triggers' refusal of the order wins over `error`.
    async fn reject(
        mut tx: Transaction<'static, Sqlite>,
        order: &super::OrderRequest,
        error: StoreError,
    ) -> Result<FillOutcome> {
        Self::insert_order(
            &mut tx,
            order,
            OrderStatus::Rejected,
            Some(error.to_string()),
        )
        .await?;
        tx.commit().await.map_err(StoreError::db("commit"))?;
        Err(error)
    }

    /// Returns `error` after the order insert the fill would have made, rolled back: the
    /// `validate_order` triggers' refusal (or a repeated order id) wins over `error`, as
    /// when the order was inserted before the check that failed.
    async fn abort_fill(
        mut tx: Transaction<'static, Sqlite>,
        order: &super::OrderRequest,
        error: StoreError,
    ) -> Result<FillOutcome> {
        Self::insert_order(&mut tx, order, OrderStatus::New, None).await?;
        drop(tx);
        Err(error)
    }
}

fn position_row(row: &SqliteRow) -> Result<PositionRow> {
    let read = |e| StoreError::db("read position")(e);
    Ok(PositionRow {
        symbol: row.try_get("symbol").map_err(read)?,
        quantity: row.try_get("quantity").map_err(read)?,
        average_price: row.try_get("average_price").map_err(read)?,
        realized_pnl: row.try_get("realized_pnl").map_err(read)?,
        current_price: row.try_get("current_price").map_err(read)?,
        stop_loss: row.try_get("stop_loss").map_err(read)?,
        take_profit: row.try_get("take_profit").map_err(read)?,
        updated_at: from_micros(
            "positions",
            "updated_at",
            row.try_get("updated_at").map_err(read)?,
        )?,
    })
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    async fn migrate(&self) -> Result<()> {
        sqlx::migrate!("./migrations/sqlite")
            .run(&self.pool)
            .await?;
        Ok(())
    }

    async fn upsert_bars(&self, symbol: &str, bars: &[quantcore::data::Bar]) -> Result<u64> {
        check_bars(symbol, bars)?;
        let now = micros(Utc::now());
        let (_turn, mut tx) = self.begin_immediate().await?;
        let mut written = 0;
        for chunk in bars.chunks(BAR_CHUNK) {
            let mut query = QueryBuilder::<Sqlite>::new(
                "INSERT INTO market_data (symbol, ts, open, high, low, close, volume, ingested_at) ",
            );
            query.push_values(chunk, |mut row, bar| {
                row.push_bind(symbol.to_owned())
                    .push_bind(bar.timestamp.saturating_mul(1_000_000))
                    .push_bind(bar.open)
                    .push_bind(bar.high)
                    .push_bind(bar.low)
                    .push_bind(bar.close)
                    .push_bind(bar.volume)
                    .push_bind(now);
            });
            query.push(
                " ON CONFLICT (symbol, ts) DO UPDATE SET open = excluded.open, \
                 high = excluded.high, low = excluded.low, close = excluded.close, \
                 volume = excluded.volume, ingested_at = excluded.ingested_at",
            );
            written += query
                .build()
                .execute(&mut *tx)
                .await
                .map_err(StoreError::db("upsert bars"))?
                .rows_affected();
        }
        tx.commit().await.map_err(StoreError::db("commit"))?;
        Ok(written)
    }

    async fn last_bars(&self, symbol: &str, count: usize) -> Result<Vec<quantcore::data::Bar>> {
        self.bars_until(symbol, None, count).await
    }

    async fn bars_until(
        &self,
        symbol: &str,
        until: Option<i64>,
        count: usize,
    ) -> Result<Vec<quantcore::data::Bar>> {
        let until = until.map(|t| t.saturating_mul(1_000_000));
        let rows = sqlx::query(
            "SELECT ts, open, high, low, close, volume FROM market_data \
             WHERE symbol = ? AND (? IS NULL OR ts <= ?) ORDER BY ts DESC LIMIT ?",
        )
        .bind(symbol)
        .bind(until)
        .bind(until)
        .bind(super::limit(count))
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db("load bars"))?;
        let mut bars = rows
            .iter()
            .map(|row| {
                let micros: i64 = row.try_get("ts")?;
                Ok(quantcore::data::Bar {
                    timestamp: micros.div_euclid(1_000_000),
                    open: row.try_get("open")?,
                    high: row.try_get("high")?,
                    low: row.try_get("low")?,
                    close: row.try_get("close")?,
                    volume: row.try_get("volume")?,
                })
            })
            .collect::<std::result::Result<Vec<_>, sqlx::Error>>()
            .map_err(StoreError::db("read bars"))?;
        bars.reverse();
        Ok(bars)
    }

    async fn insert_prediction(&self, prediction: &Prediction) -> Result<i64> {
        let (_turn, mut tx) = self.begin_immediate().await?;
        let id = Self::insert_prediction_in(&mut tx, prediction).await?;
        tx.commit().await.map_err(StoreError::db("commit"))?;
        Ok(id)
    }

    async fn insert_signal(&self, signal: &SignalMessage) -> Result<i64> {
        let (_turn, mut tx) = self.begin_immediate().await?;
        let id = Self::insert_signal_in(&mut tx, signal).await?;
        tx.commit().await.map_err(StoreError::db("commit"))?;
        Ok(id)
    }

    async fn insert_anomaly(&self, anomaly: &AnomalyMessage) -> Result<i64> {
        let (_turn, mut tx) = self.begin_immediate().await?;
        let id = Self::insert_anomaly_in(&mut tx, anomaly).await?;
        tx.commit().await.map_err(StoreError::db("commit"))?;
        Ok(id)
    }

    async fn predictions(&self, symbol: &str, limit: usize) -> Result<Vec<Stored<Prediction>>> {
        let rows = sqlx::query(
            "SELECT * FROM (SELECT * FROM predictions WHERE symbol = ? ORDER BY id DESC LIMIT ?) \
             ORDER BY id ASC",
        )
        .bind(symbol)
        .bind(super::limit(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db("load predictions"))?;
        rows.iter()
            .map(|row| {
                let read = |e| StoreError::db("read prediction")(e);
                let ts: i64 = row.try_get("ts").map_err(read)?;
                Ok(Stored {
                    id: row.try_get("id").map_err(read)?,
                    created_at: from_micros(
                        "predictions",
                        "created_at",
                        row.try_get("created_at").map_err(read)?,
                    )?,
                    record: Prediction {
                        symbol: row.try_get("symbol").map_err(read)?,
                        timestamp: ts.div_euclid(1_000_000),
                        current_price: row.try_get("current_price").map_err(read)?,
                        predicted_price: row.try_get("predicted_price").map_err(read)?,
                        model: row.try_get("model").map_err(read)?,
                    },
                })
            })
            .collect()
    }

    async fn signals(&self, symbol: &str, limit: usize) -> Result<Vec<Stored<SignalMessage>>> {
        let rows = sqlx::query(
            "SELECT * FROM (SELECT * FROM signals WHERE symbol = ? ORDER BY id DESC LIMIT ?) \
             ORDER BY id ASC",
        )
        .bind(symbol)
        .bind(super::limit(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db("load signals"))?;
        rows.iter()
            .map(|row| {
                let read = |e| StoreError::db("read signal")(e);
                let ts: i64 = row.try_get("ts").map_err(read)?;
                Ok(Stored {
                    id: row.try_get("id").map_err(read)?,
                    created_at: from_micros(
                        "signals",
                        "created_at",
                        row.try_get("created_at").map_err(read)?,
                    )?,
                    record: SignalMessage {
                        symbol: row.try_get("symbol").map_err(read)?,
                        timestamp: ts.div_euclid(1_000_000),
                        action: parse_enum(
                            "signals",
                            "action",
                            row.try_get("action").map_err(read)?,
                            SignalAction::parse,
                        )?,
                        confidence: row.try_get("confidence").map_err(read)?,
                        price: row.try_get("price").map_err(read)?,
                        predicted_price: row.try_get("predicted_price").map_err(read)?,
                        stop_loss: row.try_get("stop_loss").map_err(read)?,
                        take_profit: row.try_get("take_profit").map_err(read)?,
                        expected_return: row.try_get("expected_return").map_err(read)?,
                    },
                })
            })
            .collect()
    }

    async fn anomalies(&self, symbol: &str, limit: usize) -> Result<Vec<Stored<AnomalyMessage>>> {
        let rows = sqlx::query(
            "SELECT * FROM (SELECT * FROM anomalies WHERE symbol = ? ORDER BY id DESC LIMIT ?) \
             ORDER BY id ASC",
        )
        .bind(symbol)
        .bind(super::limit(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db("load anomalies"))?;
        rows.iter()
            .map(|row| {
                let read = |e| StoreError::db("read anomaly")(e);
                let ts: i64 = row.try_get("ts").map_err(read)?;
                Ok(Stored {
                    id: row.try_get("id").map_err(read)?,
                    created_at: from_micros(
                        "anomalies",
                        "created_at",
                        row.try_get("created_at").map_err(read)?,
                    )?,
                    record: AnomalyMessage {
                        symbol: row.try_get("symbol").map_err(read)?,
                        timestamp: ts.div_euclid(1_000_000),
                        score: row.try_get("score").map_err(read)?,
                        is_anomaly: row.try_get("is_anomaly").map_err(read)?,
                    },
                })
            })
            .collect()
    }

    async fn record_analysis(&self, analysis: &Analysis) -> Result<Option<AnalysisIds>> {
        let (_turn, mut tx) = self.begin_immediate().await?;
        if let Some(key) = &analysis.processed
            && !Self::insert_processed(&mut tx, key).await?
        {
            return Ok(None);
        }
        let mut ids = AnalysisIds::default();
        if let Some(prediction) = &analysis.prediction {
            ids.prediction = Some(Self::insert_prediction_in(&mut tx, prediction).await?);
        }
        if let Some(signal) = &analysis.signal {
            ids.signal = Some(Self::insert_signal_in(&mut tx, signal).await?);
        }
        if let Some(anomaly) = &analysis.anomaly {
            ids.anomaly = Some(Self::insert_anomaly_in(&mut tx, anomaly).await?);
        }
        tx.commit().await.map_err(StoreError::db("commit"))?;
        Ok(Some(ids))
    }

    /// Multi-row statements: one per table and chunk (a round trip to the connection's
    /// worker thread each) instead of one per row. Row ids come back from `RETURNING`,
    /// sorted, and are matched to the items in order: the rows of one `INSERT … VALUES`
    /// take ascending rowids in the order of their rows (SQLite returns them in no
    /// promised order, hence the sort).
    async fn record_analyses(&self, analyses: &[Analysis]) -> Result<Vec<Option<AnalysisIds>>> {
        for analysis in analyses {
            if let Some(p) = &analysis.prediction {
                finite("current_price", p.current_price)?;
                finite("predicted_price", p.predicted_price)?;
            }
            if let Some(s) = &analysis.signal {
                finite("confidence", s.confidence)?;
                finite("price", s.price)?;
                finite("predicted_price", s.predicted_price)?;
                finite("expected_return", s.expected_return)?;
            }
            if let Some(a) = &analysis.anomaly {
                finite("score", a.score)?;
            }
        }
        let now = micros(Utc::now());
        let (_turn, mut tx) = self.begin_immediate().await?;
        let keys: Vec<ProcessedKey> = analyses
            .iter()
            .filter_map(|a| a.processed.clone())
            .collect();
        let mut fresh = Self::insert_processed_many(&mut tx, &keys, now)
            .await?
            .into_iter();
        let kept: Vec<bool> = analyses
            .iter()
            .map(|a| a.processed.is_none() || fresh.next() == Some(true))
            .collect();
        let mut ids = vec![AnalysisIds::default(); analyses.len()];
        let predictions: Vec<(usize, &Prediction)> = analyses
            .iter()
            .enumerate()
            .filter(|(i, _)| kept[*i])
            .filter_map(|(i, a)| Some((i, a.prediction.as_ref()?)))
            .collect();
        for chunk in predictions.chunks(super::BAR_CHUNK) {
            let mut query = QueryBuilder::<Sqlite>::new(
                "INSERT INTO predictions (symbol, ts, current_price, predicted_price, model, created_at) ",
            );
            query.push_values(chunk, |mut row, (_, p)| {
                row.push_bind(p.symbol.clone())
                    .push_bind(p.timestamp.saturating_mul(1_000_000))
                    .push_bind(p.current_price)
                    .push_bind(p.predicted_price)
                    .push_bind(p.model.clone())
                    .push_bind(now);
            });
            let returned = Self::inserted_ids(
                &mut tx,
                query,
                chunk.len(),
                ("predictions", "insert predictions"),
            )
            .await?;
            for ((i, _), id) in chunk.iter().zip(returned) {
                ids[*i].prediction = Some(id);
            }
        }
        let signals: Vec<(usize, &SignalMessage)> = analyses
            .iter()
            .enumerate()
            .filter(|(i, _)| kept[*i])
            .filter_map(|(i, a)| Some((i, a.signal.as_ref()?)))
            .collect();
        for chunk in signals.chunks(super::BAR_CHUNK) {
            let mut query = QueryBuilder::<Sqlite>::new(
                "INSERT INTO signals (symbol, ts, action, confidence, price, predicted_price, \
                 stop_loss, take_profit, expected_return, created_at) ",
            );
            query.push_values(chunk, |mut row, (_, s)| {
                row.push_bind(s.symbol.clone())
                    .push_bind(s.timestamp.saturating_mul(1_000_000))
                    .push_bind(s.action.as_str())
                    .push_bind(s.confidence)
                    .push_bind(s.price)
                    .push_bind(s.predicted_price)
                    .push_bind(s.stop_loss)
                    .push_bind(s.take_profit)
                    .push_bind(s.expected_return)
                    .push_bind(now);
            });
            let returned =
                Self::inserted_ids(&mut tx, query, chunk.len(), ("signals", "insert signals"))
                    .await?;
            for ((i, _), id) in chunk.iter().zip(returned) {
                ids[*i].signal = Some(id);
            }
        }
        let anomalies: Vec<(usize, &AnomalyMessage)> = analyses
            .iter()
            .enumerate()
            .filter(|(i, _)| kept[*i])
            .filter_map(|(i, a)| Some((i, a.anomaly.as_ref()?)))
            .collect();
        for chunk in anomalies.chunks(super::BAR_CHUNK) {
            let mut query = QueryBuilder::<Sqlite>::new(
                "INSERT INTO anomalies (symbol, ts, score, is_anomaly, created_at) ",
            );
            query.push_values(chunk, |mut row, (_, a)| {
                row.push_bind(a.symbol.clone())
                    .push_bind(a.timestamp.saturating_mul(1_000_000))
                    .push_bind(a.score)
                    .push_bind(a.is_anomaly)
                    .push_bind(now);
            });
            let returned = Self::inserted_ids(
                &mut tx,
                query,
                chunk.len(),
                ("anomalies", "insert anomalies"),
            )
            .await?;
            for ((i, _), id) in chunk.iter().zip(returned) {
                ids[*i].anomaly = Some(id);
            }
        }
        tx.commit().await.map_err(StoreError::db("commit"))?;
        Ok(ids
            .into_iter()
            .zip(kept)
            .map(|(ids, kept)| kept.then_some(ids))
            .collect())
    }

    async fn mark_processed(&self, key: &ProcessedKey) -> Result<bool> {
        let (_turn, mut tx) = self.begin_immediate().await?;
        let fresh = Self::insert_processed(&mut tx, key).await?;
        tx.commit().await.map_err(StoreError::db("commit"))?;
        Ok(fresh)
    }

    async fn mark_processed_batch(&self, keys: &[ProcessedKey]) -> Result<Vec<bool>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let (_turn, mut tx) = self.begin_immediate().await?;
        let fresh = Self::insert_processed_many(&mut tx, keys, micros(Utc::now())).await?;
        tx.commit().await.map_err(StoreError::db("commit"))?;
        Ok(fresh)
    }

    async fn ensure_account(&self, initial_cash: f64, at: DateTime<Utc>) -> Result<f64> {
        super::check_positive("initial_cash", initial_cash)?;
        // Fast path, a plain read: the trade role calls this for every signal, and a write
        // transaction each time serialized it with every other writer.
        if let Ok(cash) = self.cash().await {
            return Ok(cash);
        }
        let (_turn, mut tx) = self.begin_immediate().await?;
        let created = sqlx::query(
            "INSERT INTO account (id, cash, initial_cash, updated_at) VALUES (1, ?, ?, ?) \
             ON CONFLICT DO NOTHING",
        )
        .bind(initial_cash)
        .bind(initial_cash)
        .bind(micros(at))
        .execute(&mut *tx)
        .await
        .map_err(StoreError::db("create account"))?
        .rows_affected()
            == 1;
        if created {
            sqlx::query(
                "INSERT INTO portfolio_snapshots (ts, cash, positions_value, total_value) \
                 VALUES (?, ?, 0.0, ?)",
            )
            .bind(micros(at))
            .bind(initial_cash)
            .bind(initial_cash)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db("insert first snapshot"))?;
        }
        let cash: f64 = sqlx::query_scalar("SELECT cash FROM account WHERE id = 1")
            .fetch_one(&mut *tx)
            .await
            .map_err(StoreError::db("read cash"))?;
        tx.commit().await.map_err(StoreError::db("commit"))?;
        Ok(cash)
    }

    async fn cash(&self) -> Result<f64> {
        sqlx::query_scalar("SELECT cash FROM account WHERE id = 1")
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::db("read cash"))?
            .ok_or(StoreError::NoAccount)
    }

    async fn execute_fill(&self, request: &FillRequest, plan: FillPlan) -> Result<FillOutcome> {
        check_fill_request(request)?;
        // BEGIN IMMEDIATE takes the write lock now: no other writer can change the cash or
        // the position between the fill's reads and its writes.
        let (_turn, mut tx) = self.begin_immediate().await?;
        match fill_step(&mut tx, request, plan).await? {
            FillStep::Filled(receipt) => {
                tx.commit().await.map_err(StoreError::db("commit"))?;
                Ok(FillOutcome::Filled(receipt))
            }
            FillStep::Duplicate => Ok(FillOutcome::Duplicate),
            FillStep::Reject(error) => Self::reject(tx, &request.order, error).await,
            FillStep::Abort(error) => Self::abort_fill(tx, &request.order, error).await,
        }
    }

    async fn begin_fill_batch(&self) -> Result<Option<Box<dyn FillBatch>>> {
        let (turn, tx) = self.begin_immediate().await?;
        Ok(Some(Box::new(SqliteFillBatch {
            _turn: turn,
            tx,
            poisoned: false,
        })))
    }

    async fn mark_position(&self, symbol: &str, price: f64, at: DateTime<Utc>) -> Result<bool> {
        super::check_positive("price", price)?;
        let (_turn, mut tx) = self.begin_immediate().await?;
        let updated =
            sqlx::query("UPDATE positions SET current_price = ?, updated_at = ? WHERE symbol = ?")
                .bind(price)
                .bind(micros(at))
                .bind(symbol)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::db("mark position"))?
                .rows_affected()
                == 1;
        tx.commit().await.map_err(StoreError::db("commit"))?;
        Ok(updated)
    }

    async fn position(&self, symbol: &str) -> Result<Option<PositionRow>> {
        sqlx::query("SELECT * FROM positions WHERE symbol = ?")
            .bind(symbol)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::db("load position"))?
            .as_ref()
            .map(position_row)
            .transpose()
    }

    async fn positions(&self) -> Result<Vec<PositionRow>> {
        sqlx::query("SELECT * FROM positions ORDER BY symbol")
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db("load positions"))?
            .iter()
            .map(position_row)
            .collect()
    }

    async fn position_pnl(&self, symbol: &str) -> Result<Option<PositionPnl>> {
        // The arithmetic of calculate_position_pnl (PostgreSQL), operand for operand.
        Ok(self.position(symbol).await?.map(|p| {
            let mark = p.current_price.unwrap_or(p.average_price);
            let unrealized = p.quantity * (mark - p.average_price);
            PositionPnl {
                realized: p.realized_pnl,
                unrealized,
                total: p.realized_pnl + unrealized,
            }
        }))
    }

    async fn order(&self, id: Uuid) -> Result<Option<OrderRow>> {
        let Some(row) = sqlx::query("SELECT * FROM orders WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::db("load order"))?
        else {
            return Ok(None);
        };
        let read = |e| StoreError::db("read order")(e);
        let filled_at: Option<i64> = row.try_get("filled_at").map_err(read)?;
        Ok(Some(OrderRow {
            id: parse_uuid("orders", "id", row.try_get("id").map_err(read)?)?,
            symbol: row.try_get("symbol").map_err(read)?,
            side: parse_enum(
                "orders",
                "side",
                row.try_get("side").map_err(read)?,
                Side::parse,
            )?,
            kind: parse_enum(
                "orders",
                "kind",
                row.try_get("kind").map_err(read)?,
                OrderKind::parse,
            )?,
            quantity: row.try_get("quantity").map_err(read)?,
            limit_price: row.try_get("limit_price").map_err(read)?,
            status: parse_enum(
                "orders",
                "status",
                row.try_get("status").map_err(read)?,
                OrderStatus::parse,
            )?,
            reject_reason: row.try_get("reject_reason").map_err(read)?,
            filled_price: row.try_get("filled_price").map_err(read)?,
            commission: row.try_get("commission").map_err(read)?,
            created_at: from_micros(
                "orders",
                "created_at",
                row.try_get("created_at").map_err(read)?,
            )?,
            filled_at: filled_at
                .map(|value| from_micros("orders", "filled_at", value))
                .transpose()?,
        }))
    }

    async fn trades(&self, limit: usize) -> Result<Vec<TradeRow>> {
        let rows = sqlx::query(
            "SELECT * FROM (SELECT * FROM trades ORDER BY id DESC LIMIT ?) ORDER BY id ASC",
        )
        .bind(super::limit(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db("load trades"))?;
        rows.iter()
            .map(|row| {
                let read = |e| StoreError::db("read trade")(e);
                Ok(TradeRow {
                    id: row.try_get("id").map_err(read)?,
                    order_id: parse_uuid(
                        "trades",
                        "order_id",
                        row.try_get("order_id").map_err(read)?,
                    )?,
                    symbol: row.try_get("symbol").map_err(read)?,
                    side: parse_enum(
                        "trades",
                        "side",
                        row.try_get("side").map_err(read)?,
                        Side::parse,
                    )?,
                    quantity: row.try_get("quantity").map_err(read)?,
                    price: row.try_get("price").map_err(read)?,
                    commission: row.try_get("commission").map_err(read)?,
                    realized_pnl: row.try_get("realized_pnl").map_err(read)?,
                    executed_at: from_micros(
                        "trades",
                        "executed_at",
                        row.try_get("executed_at").map_err(read)?,
                    )?,
                })
            })
            .collect()
    }

    async fn portfolio_history(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Vec<SnapshotRow>> {
        let rows = sqlx::query(
            "SELECT id, ts, cash, positions_value, total_value FROM portfolio_snapshots \
             WHERE ts >= ? AND ts <= ? ORDER BY ts, id",
        )
        .bind(micros(start))
        .bind(micros(end))
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db("load snapshots"))?;
        rows.iter()
            .map(|row| {
                let read = |e| StoreError::db("read snapshot")(e);
                Ok(SnapshotRow {
                    id: row.try_get("id").map_err(read)?,
                    timestamp: from_micros(
                        "portfolio_snapshots",
                        "ts",
                        row.try_get("ts").map_err(read)?,
                    )?,
                    cash: row.try_get("cash").map_err(read)?,
                    positions_value: row.try_get("positions_value").map_err(read)?,
                    total_value: row.try_get("total_value").map_err(read)?,
                })
            })
            .collect()
    }

    async fn portfolio_stats(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        periods_per_year: f64,
    ) -> Result<PortfolioStats> {
        super::check_positive("periods_per_year", periods_per_year)?;
        let values: Vec<f64> = self
            .portfolio_history(start, end)
            .await?
            .iter()
            .map(|snapshot| snapshot.total_value)
            .collect();
        Ok(super::stats::portfolio_stats(&values, periods_per_year))
    }
}

/// What one fill did inside a transaction (see [`fill_step`]); the caller commits,
/// writes the refused order, or rolls back.
enum FillStep {
    Filled(FillReceipt),
    /// The marker exists: nothing was written.
    Duplicate,
    /// A funds or position check refused the fill: the marker is written, the order is
    /// to be written `REJECTED` and the transaction kept.
    Reject(StoreError),
    /// The plan or its effects were refused: the fill's writes are to be undone (after
    /// the order insert whose trigger refusal wins, see [`SqliteStore::abort_fill`]).
    Abort(StoreError),
}

/// The fill's statements on `tx`, which holds the write lock (`BEGIN IMMEDIATE`); see
/// [Fills](super#fills). An `Err` leaves `tx` to be rolled back.
async fn fill_step(
    tx: &mut Transaction<'static, Sqlite>,
    request: &FillRequest,
    plan: FillPlan,
) -> Result<FillStep> {
    let order = &request.order;
    // Every statement is a round trip to the connection's worker thread, and the
    // trade role's fills run one after another: a fill takes 4 (begin, the marker with
    // the reads, `fill_writes` with the trade, commit; it took 9). The order goes in once,
    // with its final status; a check that fails before inserts it (`reject`,
    // `abort_fill`), so the `validate_order` triggers still decide before the store's
    // own checks, as when the order went in first.
    // The cash and the position (no position row reads as zeros), in the marker's
    // insert when there is one: a repeated message inserts nothing and returns no row.
    macro_rules! state {
        () => {
            "(SELECT cash FROM account WHERE id = 1) AS cash, \
             (SELECT quantity FROM positions WHERE symbol = ?) AS quantity, \
             (SELECT average_price FROM positions WHERE symbol = ?) AS average_price, \
             (SELECT realized_pnl FROM positions WHERE symbol = ?) AS realized_pnl"
        };
    }
    let row = match &request.processed {
        Some(key) => {
            let row = sqlx::query(concat!(
                "INSERT INTO processed_messages (consumer, message_id, processed_at) \
                 VALUES (?, ?, ?) ON CONFLICT DO NOTHING RETURNING ",
                state!()
            ))
            .bind(&key.consumer)
            .bind(key.message_id.to_string())
            .bind(micros(Utc::now()))
            .bind(&order.symbol)
            .bind(&order.symbol)
            .bind(&order.symbol)
            .fetch_optional(&mut **tx)
            .await
            .map_err(StoreError::db("mark message processed"))?;
            match row {
                Some(row) => row,
                None => return Ok(FillStep::Duplicate),
            }
        }
        None => sqlx::query(concat!("SELECT ", state!()))
            .bind(&order.symbol)
            .bind(&order.symbol)
            .bind(&order.symbol)
            .fetch_one(&mut **tx)
            .await
            .map_err(StoreError::db("lock account and position"))?,
    };
    let read = |e| StoreError::db("read position")(e);
    let cash: f64 = row
        .try_get::<Option<f64>, _>("cash")
        .map_err(read)?
        .ok_or(StoreError::NoAccount)?;
    let position = match row.try_get::<Option<f64>, _>("quantity").map_err(read)? {
        Some(quantity) => PositionState {
            quantity,
            average_price: row.try_get("average_price").map_err(read)?,
            realized_pnl: row.try_get("realized_pnl").map_err(read)?,
        },
        None => PositionState::default(),
    };

    // check_available_funds, as the PostgreSQL function computes it.
    match order.side {
        Side::Buy => {
            let required = order.quantity * request.price;
            if cash < required {
                let error = StoreError::InsufficientFunds {
                    order_id: order.id,
                    required,
                    available: cash,
                };
                return Ok(FillStep::Reject(error));
            }
        }
        Side::Sell => {
            if position.quantity < order.quantity {
                let error = StoreError::InsufficientPosition {
                    order_id: order.id,
                    symbol: order.symbol.clone(),
                    requested: order.quantity,
                    held: position.quantity,
                };
                return Ok(FillStep::Reject(error));
            }
        }
    }

    let effects = match plan(&LockedState { cash, position }) {
        Ok(effects) => effects,
        Err(source) => {
            let error = StoreError::PlanRejected {
                order_id: order.id,
                source,
            };
            return Ok(FillStep::Abort(error));
        }
    };
    if let Err(error) = check_effects(&effects) {
        return Ok(FillStep::Abort(error));
    }
    let cash_after = cash + effects.cash_delta;
    if cash_after < 0.0 {
        let error = StoreError::InsufficientFunds {
            order_id: order.id,
            required: -effects.cash_delta,
            available: cash,
        };
        return Ok(FillStep::Reject(error));
    }

    let filled_at = micros(request.filled_at);
    // The order, the cash and the position in one statement (`fill_writes`, see
    // `migrations/sqlite/0004_fill_writes.sql`); `None` levels keep the stored ones.
    let keep_levels = effects.exit_levels.is_none();
    let levels = effects.exit_levels.unwrap_or_default();
    // Then the trade, in the same round trip (sqlx binds the arguments of a query's
    // statements in order): `trades.id` is AUTOINCREMENT, so the trade's id is the last
    // inserted rowid, no `RETURNING` row to send back.
    let written = sqlx::query(
        "INSERT INTO fill_writes (order_id, symbol, side, kind, quantity, limit_price, \
         created_at, price, commission, filled_at, cash_after, position_quantity, \
         average_price, realized_pnl, keep_levels, stop_loss, take_profit) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?); \
         INSERT INTO trades (order_id, symbol, side, quantity, price, commission, realized_pnl, executed_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(order.id.to_string())
    .bind(&order.symbol)
    .bind(order.side.as_str())
    .bind(order.kind.as_str())
    .bind(order.quantity)
    .bind(order.limit_price)
    .bind(micros(order.created_at))
    .bind(request.price)
    .bind(request.commission)
    .bind(filled_at)
    .bind(cash_after)
    .bind(effects.position.quantity)
    .bind(effects.position.average_price)
    .bind(effects.position.realized_pnl)
    .bind(keep_levels)
    .bind(levels.stop_loss)
    .bind(levels.take_profit)
    .bind(order.id.to_string())
    .bind(&order.symbol)
    .bind(order.side.as_str())
    .bind(order.quantity)
    .bind(request.price)
    .bind(request.commission)
    .bind(effects.realized_pnl)
    .bind(filled_at)
    .execute(&mut **tx)
    .await
    .map_err(fill_write_error(order.id))?;
    let trade_id = written.last_insert_rowid();
    Ok(FillStep::Filled(FillReceipt {
        order_id: order.id,
        trade_id,
        cash_after,
        position: effects.position,
    }))
}

/// The fills of one trade batch in one write transaction ([`Store::begin_fill_batch`]):
/// the write lock is taken once and the batch commits once, instead of a `BEGIN
/// IMMEDIATE` and a `COMMIT` (with its WAL writes) per fill.
///
/// A fill the funds or position check refuses writes its `REJECTED` order and the batch
/// goes on, as [`Store::execute_fill`] commits it. Any other error poisons the batch
/// ([`FillBatch::is_poisoned`]): the caller drops it, which rolls every fill of it back,
/// and does the work again one fill per transaction.
struct SqliteFillBatch {
    _turn: WriterTurn,
    tx: Transaction<'static, Sqlite>,
    poisoned: bool,
}

impl SqliteFillBatch {
    fn check(&self) -> Result<()> {
        if self.poisoned {
            return Err(StoreError::BatchPoisoned);
        }
        Ok(())
    }

    fn poison_on<T>(&mut self, result: Result<T>) -> Result<T> {
        if result.is_err() {
            self.poisoned = true;
        }
        result
    }
}

#[async_trait]
impl FillBatch for SqliteFillBatch {
    async fn execute_fill(&mut self, request: &FillRequest, plan: FillPlan) -> Result<FillOutcome> {
        self.check()?;
        check_fill_request(request)?;
        let step = fill_step(&mut self.tx, request, plan).await;
        match self.poison_on(step)? {
            FillStep::Filled(receipt) => Ok(FillOutcome::Filled(receipt)),
            FillStep::Duplicate => Ok(FillOutcome::Duplicate),
            FillStep::Reject(error) => {
                let written = SqliteStore::insert_order(
                    &mut self.tx,
                    &request.order,
                    OrderStatus::Rejected,
                    Some(error.to_string()),
                )
                .await;
                self.poison_on(written)?;
                Err(error)
            }
            FillStep::Abort(error) => {
                self.poisoned = true;
                Err(error)
            }
        }
    }

    async fn mark_processed_batch(&mut self, keys: &[ProcessedKey]) -> Result<Vec<bool>> {
        self.check()?;
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let fresh =
            SqliteStore::insert_processed_many(&mut self.tx, keys, micros(Utc::now())).await;
        self.poison_on(fresh)
    }

    fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    async fn commit(self: Box<Self>) -> Result<()> {
        self.check()?;
        self.tx.commit().await.map_err(StoreError::db("commit"))
    }

    async fn roll_back(self: Box<Self>) -> Result<()> {
        self.tx
            .rollback()
            .await
            .map_err(StoreError::db("roll back"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn creates_the_file_and_its_folder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/data/quantcore.db");
        let url = format!("sqlite://{}", path.display());
        let store = super::super::open(&url, 2).await.unwrap();
        assert!(path.exists());
        assert_eq!(store.backend(), Backend::Sqlite);
        // Migrating twice is a no-op.
        store.migrate().await.unwrap();
    }
}
