//! The PostgreSQL store: the distributed deployment's database.
//!
//! The design's procedures and triggers live in the database (`migrations/postgres`), and
//! this store uses them: fills call `check_available_funds` under `SELECT … FOR UPDATE` row
//! locks, `validate_order` and `update_portfolio_value` fire as triggers,
//! [`Store::position_pnl`] calls `calculate_position_pnl` and [`Store::portfolio_stats`]
//! calls `get_portfolio_stats`.
//!
//! Errors raised by the procedures carry SQLSTATE `QC001` (invalid order).
//!
//! [`PgStore::connect_in_schema`] puts every table in one schema (created when missing):
//! the conformance tests give each test its own schema so they run in parallel on one
//! database.

use std::str::FromStr;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{Connection, PgConnection, Postgres, QueryBuilder, Row, Transaction};
use uuid::Uuid;

use super::error::{INVALID_ORDER_PREFIX, finite};
use super::{
    Analysis, AnalysisIds, BAR_CHUNK, Backend, FillOutcome, FillPlan, FillReceipt, FillRequest,
    LockedState, OrderKind, OrderRow, OrderStatus, PortfolioStats, PositionPnl, PositionRow,
    PositionState, Prediction, ProcessedKey, Side, SnapshotRow, Store, StoreError, Stored,
    TradeRow, check_bars, check_effects, check_fill_request, parse_enum,
};
use crate::messages::{AnomalyMessage, SignalAction, SignalMessage};

type Result<T> = std::result::Result<T, StoreError>;

/// SQLSTATE raised by `validate_order` and `check_available_funds`.
const INVALID_ORDER_SQLSTATE: &str = "QC001";

/// The PostgreSQL implementation of [`Store`].
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

fn seconds(timestamp: i64) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp(timestamp, 0).ok_or(StoreError::InvalidValue {
        field: "timestamp",
        value: timestamp as f64,
        reason: "is outside the representable time range",
    })
}

fn order_insert_error(order_id: Uuid) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |error| {
        if let Some(db) = error.as_database_error() {
            if db.code().as_deref() == Some(INVALID_ORDER_SQLSTATE) {
                let reason = db.message();
                return StoreError::InvalidOrder {
                    order_id,
                    reason: reason
                        .strip_prefix(INVALID_ORDER_PREFIX)
                        .unwrap_or(reason)
                        .to_owned(),
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

fn is_valid_schema_name(schema: &str) -> bool {
    !schema.is_empty()
        && schema.len() <= 63
        && schema
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !schema.starts_with(|c: char| c.is_ascii_digit())
}

impl PgStore {
    /// Connects to `url` (`postgres://user:password@host:port/database`); does not migrate.
    ///
    /// # Errors
    /// A URL or connection error.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self> {
        let options = PgConnectOptions::from_str(url).map_err(StoreError::db("parse url"))?;
        Self::connect_with(options, max_connections).await
    }

    /// Connects with every table in `schema` (created when missing): the connections'
    /// `search_path` is that schema. `schema` is lower-case ASCII letters, digits and `_`.
    ///
    /// # Errors
    /// [`StoreError::InvalidSchemaName`], else a connection error.
    pub async fn connect_in_schema(url: &str, schema: &str, max_connections: u32) -> Result<Self> {
        if !is_valid_schema_name(schema) {
            return Err(StoreError::InvalidSchemaName {
                schema: schema.to_owned(),
            });
        }
        let options = PgConnectOptions::from_str(url).map_err(StoreError::db("parse url"))?;
        let mut connection = PgConnection::connect_with(&options)
            .await
            .map_err(StoreError::db("connect"))?;
        // The name was checked above: letters, digits and underscores only.
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "CREATE SCHEMA IF NOT EXISTS {schema}"
        )))
        .execute(&mut connection)
        .await
        .map_err(StoreError::db("create schema"))?;
        connection
            .close()
            .await
            .map_err(StoreError::db("disconnect"))?;
        Self::connect_with(options.options([("search_path", schema)]), max_connections).await
    }

    async fn connect_with(options: PgConnectOptions, max_connections: u32) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .connect_with(options)
            .await
            .map_err(StoreError::db("connect"))?;
        Ok(Self { pool })
    }

    /// Returns the connection pool (for tests and tools).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn begin(&self) -> Result<Transaction<'static, Postgres>> {
        self.pool
            .begin()
            .await
            .map_err(StoreError::db("begin transaction"))
    }

    async fn insert_processed(
        tx: &mut Transaction<'static, Postgres>,
        key: &ProcessedKey,
    ) -> Result<bool> {
        let result = sqlx::query(
            "INSERT INTO processed_messages (consumer, message_id) VALUES ($1, $2) \
             ON CONFLICT DO NOTHING",
        )
        .bind(&key.consumer)
        .bind(key.message_id)
        .execute(&mut **tx)
        .await
        .map_err(StoreError::db("mark message processed"))?;
        Ok(result.rows_affected() == 1)
    }

    /// Inserts the markers of `keys` in multi-row statements; item `i` is `true` when
    /// `keys[i]` was new (a key repeated in `keys` is `false` after its first time).
    async fn insert_processed_many(
        tx: &mut Transaction<'static, Postgres>,
        keys: &[ProcessedKey],
    ) -> Result<Vec<bool>> {
        let mut inserted = std::collections::HashSet::new();
        for chunk in keys.chunks(super::BAR_CHUNK) {
            let mut query = QueryBuilder::<Postgres>::new(
                "INSERT INTO processed_messages (consumer, message_id) ",
            );
            query.push_values(chunk, |mut row, key| {
                row.push_bind(&key.consumer).push_bind(key.message_id);
            });
            query.push(" ON CONFLICT DO NOTHING RETURNING consumer, message_id");
            let rows = query
                .build()
                .fetch_all(&mut **tx)
                .await
                .map_err(StoreError::db("mark messages processed"))?;
            for row in rows {
                let consumer: String = row
                    .try_get("consumer")
                    .map_err(StoreError::db("read marker"))?;
                let id: Uuid = row
                    .try_get("message_id")
                    .map_err(StoreError::db("read marker"))?;
                inserted.insert((consumer, id));
            }
        }
        Ok(keys
            .iter()
            .map(|key| inserted.remove(&(key.consumer.clone(), key.message_id)))
            .collect())
    }

    /// Runs a multi-row `INSERT … RETURNING id`; the ids in ascending (row) order.
    async fn returned_ids(
        tx: &mut Transaction<'static, Postgres>,
        mut query: QueryBuilder<Postgres>,
        operation: &'static str,
    ) -> Result<Vec<i64>> {
        let mut ids: Vec<i64> = query
            .build_query_scalar()
            .fetch_all(&mut **tx)
            .await
            .map_err(StoreError::db(operation))?;
        ids.sort_unstable();
        Ok(ids)
    }

    async fn insert_prediction_in(
        tx: &mut Transaction<'static, Postgres>,
        prediction: &Prediction,
    ) -> Result<i64> {
        finite("current_price", prediction.current_price)?;
        finite("predicted_price", prediction.predicted_price)?;
        sqlx::query_scalar(
            "INSERT INTO predictions (symbol, ts, current_price, predicted_price, model) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(&prediction.symbol)
        .bind(seconds(prediction.timestamp)?)
        .bind(prediction.current_price)
        .bind(prediction.predicted_price)
        .bind(&prediction.model)
        .fetch_one(&mut **tx)
        .await
        .map_err(StoreError::db("insert prediction"))
    }

    async fn insert_signal_in(
        tx: &mut Transaction<'static, Postgres>,
        signal: &SignalMessage,
    ) -> Result<i64> {
        finite("confidence", signal.confidence)?;
        finite("price", signal.price)?;
        finite("predicted_price", signal.predicted_price)?;
        finite("expected_return", signal.expected_return)?;
        sqlx::query_scalar(
            "INSERT INTO signals (symbol, ts, action, confidence, price, predicted_price, \
             stop_loss, take_profit, expected_return) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
        )
        .bind(&signal.symbol)
        .bind(seconds(signal.timestamp)?)
        .bind(signal.action.as_str())
        .bind(signal.confidence)
        .bind(signal.price)
        .bind(signal.predicted_price)
        .bind(signal.stop_loss)
        .bind(signal.take_profit)
        .bind(signal.expected_return)
        .fetch_one(&mut **tx)
        .await
        .map_err(StoreError::db("insert signal"))
    }

    async fn insert_anomaly_in(
        tx: &mut Transaction<'static, Postgres>,
        anomaly: &AnomalyMessage,
    ) -> Result<i64> {
        finite("score", anomaly.score)?;
        sqlx::query_scalar(
            "INSERT INTO anomalies (symbol, ts, score, is_anomaly) VALUES ($1, $2, $3, $4) \
             RETURNING id",
        )
        .bind(&anomaly.symbol)
        .bind(seconds(anomaly.timestamp)?)
        .bind(anomaly.score)
        .bind(anomaly.is_anomaly)
        .fetch_one(&mut **tx)
        .await
        .map_err(StoreError::db("insert anomaly"))
    }

    /// Marks the order `REJECTED`, commits (keeping the idempotency marker) and returns
    /// `error`.
    async fn reject(
        mut tx: Transaction<'static, Postgres>,
        order_id: Uuid,
        error: StoreError,
    ) -> Result<FillOutcome> {
        sqlx::query("UPDATE orders SET status = 'REJECTED', reject_reason = $1 WHERE id = $2")
            .bind(error.to_string())
            .bind(order_id)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db("reject order"))?;
        tx.commit().await.map_err(StoreError::db("commit"))?;
        Err(error)
    }
}

fn position_row(row: &PgRow) -> Result<PositionRow> {
    let read = |e| StoreError::db("read position")(e);
    Ok(PositionRow {
        symbol: row.try_get("symbol").map_err(read)?,
        quantity: row.try_get("quantity").map_err(read)?,
        average_price: row.try_get("average_price").map_err(read)?,
        realized_pnl: row.try_get("realized_pnl").map_err(read)?,
        current_price: row.try_get("current_price").map_err(read)?,
        stop_loss: row.try_get("stop_loss").map_err(read)?,
        take_profit: row.try_get("take_profit").map_err(read)?,
        updated_at: row.try_get("updated_at").map_err(read)?,
    })
}

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    async fn migrate(&self) -> Result<()> {
        sqlx::migrate!("./migrations/postgres")
            .run(&self.pool)
            .await?;
        Ok(())
    }

    async fn upsert_bars(&self, symbol: &str, bars: &[quantcore::data::Bar]) -> Result<u64> {
        check_bars(symbol, bars)?;
        let timestamps = bars
            .iter()
            .map(|bar| seconds(bar.timestamp))
            .collect::<Result<Vec<_>>>()?;
        let mut tx = self.begin().await?;
        let mut written = 0;
        for (chunk, chunk_times) in bars.chunks(BAR_CHUNK).zip(timestamps.chunks(BAR_CHUNK)) {
            let mut query = QueryBuilder::<Postgres>::new(
                "INSERT INTO market_data (symbol, ts, open, high, low, close, volume) ",
            );
            query.push_values(chunk.iter().zip(chunk_times), |mut row, (bar, ts)| {
                row.push_bind(symbol.to_owned())
                    .push_bind(*ts)
                    .push_bind(bar.open)
                    .push_bind(bar.high)
                    .push_bind(bar.low)
                    .push_bind(bar.close)
                    .push_bind(bar.volume);
            });
            query.push(
                " ON CONFLICT (symbol, ts) DO UPDATE SET open = EXCLUDED.open, \
                 high = EXCLUDED.high, low = EXCLUDED.low, close = EXCLUDED.close, \
                 volume = EXCLUDED.volume, ingested_at = now()",
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
        let until = until.and_then(|t| DateTime::<Utc>::from_timestamp(t, 0));
        let rows = sqlx::query(
            "SELECT ts, open, high, low, close, volume FROM market_data \
             WHERE symbol = $1 AND ($2::timestamptz IS NULL OR ts <= $2) ORDER BY ts DESC LIMIT $3",
        )
        .bind(symbol)
        .bind(until)
        .bind(super::limit(count))
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db("load bars"))?;
        let mut bars = rows
            .iter()
            .map(|row| {
                let ts: DateTime<Utc> = row.try_get("ts")?;
                Ok(quantcore::data::Bar {
                    timestamp: ts.timestamp(),
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
        let mut tx = self.begin().await?;
        let id = Self::insert_prediction_in(&mut tx, prediction).await?;
        tx.commit().await.map_err(StoreError::db("commit"))?;
        Ok(id)
    }

    async fn insert_signal(&self, signal: &SignalMessage) -> Result<i64> {
        let mut tx = self.begin().await?;
        let id = Self::insert_signal_in(&mut tx, signal).await?;
        tx.commit().await.map_err(StoreError::db("commit"))?;
        Ok(id)
    }

    async fn insert_anomaly(&self, anomaly: &AnomalyMessage) -> Result<i64> {
        let mut tx = self.begin().await?;
        let id = Self::insert_anomaly_in(&mut tx, anomaly).await?;
        tx.commit().await.map_err(StoreError::db("commit"))?;
        Ok(id)
    }

    async fn predictions(&self, symbol: &str, limit: usize) -> Result<Vec<Stored<Prediction>>> {
        let rows = sqlx::query(
            "SELECT * FROM (SELECT * FROM predictions WHERE symbol = $1 ORDER BY id DESC LIMIT $2) \
             t ORDER BY id ASC",
        )
        .bind(symbol)
        .bind(super::limit(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db("load predictions"))?;
        rows.iter()
            .map(|row| {
                let read = |e| StoreError::db("read prediction")(e);
                let ts: DateTime<Utc> = row.try_get("ts").map_err(read)?;
                Ok(Stored {
                    id: row.try_get("id").map_err(read)?,
                    created_at: row.try_get("created_at").map_err(read)?,
                    record: Prediction {
                        symbol: row.try_get("symbol").map_err(read)?,
                        timestamp: ts.timestamp(),
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
            "SELECT * FROM (SELECT * FROM signals WHERE symbol = $1 ORDER BY id DESC LIMIT $2) \
             t ORDER BY id ASC",
        )
        .bind(symbol)
        .bind(super::limit(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db("load signals"))?;
        rows.iter()
            .map(|row| {
                let read = |e| StoreError::db("read signal")(e);
                let ts: DateTime<Utc> = row.try_get("ts").map_err(read)?;
                Ok(Stored {
                    id: row.try_get("id").map_err(read)?,
                    created_at: row.try_get("created_at").map_err(read)?,
                    record: SignalMessage {
                        symbol: row.try_get("symbol").map_err(read)?,
                        timestamp: ts.timestamp(),
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
            "SELECT * FROM (SELECT * FROM anomalies WHERE symbol = $1 ORDER BY id DESC LIMIT $2) \
             t ORDER BY id ASC",
        )
        .bind(symbol)
        .bind(super::limit(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db("load anomalies"))?;
        rows.iter()
            .map(|row| {
                let read = |e| StoreError::db("read anomaly")(e);
                let ts: DateTime<Utc> = row.try_get("ts").map_err(read)?;
                Ok(Stored {
                    id: row.try_get("id").map_err(read)?,
                    created_at: row.try_get("created_at").map_err(read)?,
                    record: AnomalyMessage {
                        symbol: row.try_get("symbol").map_err(read)?,
                        timestamp: ts.timestamp(),
                        score: row.try_get("score").map_err(read)?,
                        is_anomaly: row.try_get("is_anomaly").map_err(read)?,
                    },
                })
            })
            .collect()
    }

    async fn record_analysis(&self, analysis: &Analysis) -> Result<Option<AnalysisIds>> {
        let mut tx = self.begin().await?;
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

    /// Multi-row statements: one per table and chunk (a round trip each) instead of one per
    /// row. Row ids come back from `RETURNING` and are matched to the items in ascending
    /// order: a sequence hands out the ids of one statement in the order of its rows.
    async fn record_analyses(&self, analyses: &[Analysis]) -> Result<Vec<Option<AnalysisIds>>> {
        for analysis in analyses {
            if let Some(p) = &analysis.prediction {
                finite("current_price", p.current_price)?;
                finite("predicted_price", p.predicted_price)?;
                seconds(p.timestamp)?;
            }
            if let Some(s) = &analysis.signal {
                finite("confidence", s.confidence)?;
                finite("price", s.price)?;
                finite("predicted_price", s.predicted_price)?;
                finite("expected_return", s.expected_return)?;
                seconds(s.timestamp)?;
            }
            if let Some(a) = &analysis.anomaly {
                finite("score", a.score)?;
                seconds(a.timestamp)?;
            }
        }
        let mut tx = self.begin().await?;
        let keys: Vec<ProcessedKey> = analyses
            .iter()
            .filter_map(|a| a.processed.clone())
            .collect();
        let mut fresh = Self::insert_processed_many(&mut tx, &keys)
            .await?
            .into_iter();
        let kept: Vec<&Analysis> = analyses
            .iter()
            .filter(|a| a.processed.is_none() || fresh.next() == Some(true))
            .collect();
        let mut answers: Vec<Option<AnalysisIds>> = Vec::with_capacity(analyses.len());
        let mut kept_ids = vec![AnalysisIds::default(); kept.len()];
        let predictions: Vec<(usize, &Prediction)> = kept
            .iter()
            .enumerate()
            .filter_map(|(i, a)| Some((i, a.prediction.as_ref()?)))
            .collect();
        for chunk in predictions.chunks(super::BAR_CHUNK) {
            let mut query = QueryBuilder::<Postgres>::new(
                "INSERT INTO predictions (symbol, ts, current_price, predicted_price, model) ",
            );
            query.push_values(chunk, |mut row, (_, p)| {
                row.push_bind(&p.symbol)
                    .push_bind(seconds(p.timestamp).unwrap_or_default())
                    .push_bind(p.current_price)
                    .push_bind(p.predicted_price)
                    .push_bind(&p.model);
            });
            query.push(" RETURNING id");
            let ids = Self::returned_ids(&mut tx, query, "insert predictions").await?;
            for ((i, _), id) in chunk.iter().zip(ids) {
                kept_ids[*i].prediction = Some(id);
            }
        }
        let signals: Vec<(usize, &SignalMessage)> = kept
            .iter()
            .enumerate()
            .filter_map(|(i, a)| Some((i, a.signal.as_ref()?)))
            .collect();
        for chunk in signals.chunks(super::BAR_CHUNK) {
            let mut query = QueryBuilder::<Postgres>::new(
                "INSERT INTO signals (symbol, ts, action, confidence, price, predicted_price, \
                 stop_loss, take_profit, expected_return) ",
            );
            query.push_values(chunk, |mut row, (_, s)| {
                row.push_bind(&s.symbol)
                    .push_bind(seconds(s.timestamp).unwrap_or_default())
                    .push_bind(s.action.as_str())
                    .push_bind(s.confidence)
                    .push_bind(s.price)
                    .push_bind(s.predicted_price)
                    .push_bind(s.stop_loss)
                    .push_bind(s.take_profit)
                    .push_bind(s.expected_return);
            });
            query.push(" RETURNING id");
            let ids = Self::returned_ids(&mut tx, query, "insert signals").await?;
            for ((i, _), id) in chunk.iter().zip(ids) {
                kept_ids[*i].signal = Some(id);
            }
        }
        let anomalies: Vec<(usize, &AnomalyMessage)> = kept
            .iter()
            .enumerate()
            .filter_map(|(i, a)| Some((i, a.anomaly.as_ref()?)))
            .collect();
        for chunk in anomalies.chunks(super::BAR_CHUNK) {
            let mut query = QueryBuilder::<Postgres>::new(
                "INSERT INTO anomalies (symbol, ts, score, is_anomaly) ",
            );
            query.push_values(chunk, |mut row, (_, a)| {
                row.push_bind(&a.symbol)
                    .push_bind(seconds(a.timestamp).unwrap_or_default())
                    .push_bind(a.score)
                    .push_bind(a.is_anomaly);
            });
            query.push(" RETURNING id");
            let ids = Self::returned_ids(&mut tx, query, "insert anomalies").await?;
            for ((i, _), id) in chunk.iter().zip(ids) {
                kept_ids[*i].anomaly = Some(id);
            }
        }
        tx.commit().await.map_err(StoreError::db("commit"))?;
        let mut kept_ids = kept_ids.into_iter();
        let mut kept_iter = kept.iter().peekable();
        for analysis in analyses {
            if kept_iter
                .peek()
                .is_some_and(|k| std::ptr::eq(**k, analysis))
            {
                kept_iter.next();
                answers.push(kept_ids.next());
            } else {
                answers.push(None);
            }
        }
        Ok(answers)
    }

    async fn mark_processed_batch(&self, keys: &[ProcessedKey]) -> Result<Vec<bool>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.begin().await?;
        let fresh = Self::insert_processed_many(&mut tx, keys).await?;
        tx.commit().await.map_err(StoreError::db("commit"))?;
        Ok(fresh)
    }

    async fn mark_processed(&self, key: &ProcessedKey) -> Result<bool> {
        let mut tx = self.begin().await?;
        let fresh = Self::insert_processed(&mut tx, key).await?;
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
        let mut tx = self.begin().await?;
        let created = sqlx::query(
            "INSERT INTO account (id, cash, initial_cash, updated_at) VALUES (1, $1, $1, $2) \
             ON CONFLICT DO NOTHING",
        )
        .bind(initial_cash)
        .bind(at)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::db("create account"))?
        .rows_affected()
            == 1;
        if created {
            sqlx::query(
                "INSERT INTO portfolio_snapshots (ts, cash, positions_value, total_value) \
                 VALUES ($1, $2, 0, $2)",
            )
            .bind(at)
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
        let order = &request.order;
        // The trade role's fills run one after another, each statement a round trip to
        // the server: a fill takes 6 (begin, the marker with the account lock, the order
        // with the position lock and `check_available_funds`, the cash, the position with
        // the trade and the order's FILLED, commit; it took 11).
        let mut tx = self.begin().await?;
        // Lock order: account, then position. Every fill takes the account lock first, so
        // fills are serialized and never deadlock. A repeated message inserts no marker
        // (`fresh` false): nothing is written.
        let state = match &request.processed {
            Some(key) => sqlx::query(
                "WITH marker AS (INSERT INTO processed_messages (consumer, message_id) \
                 VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING 1) \
                 SELECT (SELECT cash FROM account WHERE id = 1 FOR UPDATE) AS cash, \
                 EXISTS (SELECT 1 FROM marker) AS fresh",
            )
            .bind(&key.consumer)
            .bind(key.message_id),
            None => sqlx::query(
                "SELECT (SELECT cash FROM account WHERE id = 1 FOR UPDATE) AS cash, \
                 TRUE AS fresh",
            ),
        }
        .fetch_one(&mut *tx)
        .await
        .map_err(StoreError::db("lock account"))?;
        let read = |e| StoreError::db("read account")(e);
        if !state.try_get::<bool, _>("fresh").map_err(read)? {
            return Ok(FillOutcome::Duplicate);
        }
        let cash: f64 = state
            .try_get::<Option<f64>, _>("cash")
            .map_err(read)?
            .ok_or(StoreError::NoAccount)?;
        // The order (the validate_order trigger checks it: its refusal fails the whole
        // statement, so it wins over the funds check), the position's lock and
        // check_available_funds in one statement.
        let row = sqlx::query(
            "WITH inserted AS (INSERT INTO orders \
             (id, symbol, side, kind, quantity, limit_price, status, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 'NEW', $7) RETURNING id) \
             SELECT p.quantity, p.average_price, p.realized_pnl, \
             check_available_funds($1, $2, $3, $5, $8) AS funded \
             FROM (SELECT 1) AS one LEFT JOIN LATERAL (SELECT quantity, average_price, \
             realized_pnl FROM positions WHERE symbol = $2 FOR UPDATE) AS p ON TRUE",
        )
        .bind(order.id)
        .bind(&order.symbol)
        .bind(order.side.as_str())
        .bind(order.kind.as_str())
        .bind(order.quantity)
        .bind(order.limit_price)
        .bind(order.created_at)
        .bind(request.price)
        .fetch_one(&mut *tx)
        .await
        .map_err(order_insert_error(order.id))?;
        let read = |e| StoreError::db("read position")(e);
        let position = match row.try_get::<Option<f64>, _>("quantity").map_err(read)? {
            Some(quantity) => PositionState {
                quantity,
                average_price: row.try_get("average_price").map_err(read)?,
                realized_pnl: row.try_get("realized_pnl").map_err(read)?,
            },
            None => PositionState::default(),
        };
        let funded: bool = row.try_get("funded").map_err(read)?;
        if !funded {
            let error = match order.side {
                Side::Buy => StoreError::InsufficientFunds {
                    order_id: order.id,
                    required: order.quantity * request.price,
                    available: cash,
                },
                Side::Sell => StoreError::InsufficientPosition {
                    order_id: order.id,
                    symbol: order.symbol.clone(),
                    requested: order.quantity,
                    held: position.quantity,
                },
            };
            return Self::reject(tx, order.id, error).await;
        }

        let effects =
            plan(&LockedState { cash, position }).map_err(|source| StoreError::PlanRejected {
                order_id: order.id,
                source,
            })?;
        check_effects(&effects)?;
        let cash_after = cash + effects.cash_delta;
        if cash_after < 0.0 {
            let error = StoreError::InsufficientFunds {
                order_id: order.id,
                required: -effects.cash_delta,
                available: cash,
            };
            return Self::reject(tx, order.id, error).await;
        }

        // Cash first, in its own statement: the position trigger's snapshot reads the new
        // cash.
        sqlx::query("UPDATE account SET cash = $1, updated_at = $2 WHERE id = 1")
            .bind(cash_after)
            .bind(request.filled_at)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db("update cash"))?;
        // The position (`None` levels keep the stored ones; a new row gets none), the
        // order's FILLED and the trade in one statement.
        let keep_levels = effects.exit_levels.is_none();
        let levels = effects.exit_levels.unwrap_or_default();
        let trade_id: i64 = sqlx::query_scalar(
            "WITH position AS (INSERT INTO positions (symbol, quantity, average_price, \
             realized_pnl, current_price, updated_at, stop_loss, take_profit) \
             VALUES ($2, $9, $10, $11, $5, $8, $12, $13) \
             ON CONFLICT (symbol) DO UPDATE SET quantity = EXCLUDED.quantity, \
             average_price = EXCLUDED.average_price, realized_pnl = EXCLUDED.realized_pnl, \
             current_price = EXCLUDED.current_price, updated_at = EXCLUDED.updated_at, \
             stop_loss = CASE WHEN $14 THEN positions.stop_loss ELSE EXCLUDED.stop_loss END, \
             take_profit = CASE WHEN $14 THEN positions.take_profit ELSE EXCLUDED.take_profit END \
             RETURNING 1), \
             filled AS (UPDATE orders SET status = 'FILLED', filled_price = $5, \
             commission = $6, filled_at = $8 WHERE id = $1 RETURNING 1) \
             INSERT INTO trades (order_id, symbol, side, quantity, price, commission, \
             realized_pnl, executed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(order.id)
        .bind(&order.symbol)
        .bind(order.side.as_str())
        .bind(order.quantity)
        .bind(request.price)
        .bind(request.commission)
        .bind(effects.realized_pnl)
        .bind(request.filled_at)
        .bind(effects.position.quantity)
        .bind(effects.position.average_price)
        .bind(effects.position.realized_pnl)
        .bind(levels.stop_loss)
        .bind(levels.take_profit)
        .bind(keep_levels)
        .fetch_one(&mut *tx)
        .await
        .map_err(StoreError::db("write fill"))?;
        tx.commit().await.map_err(StoreError::db("commit"))?;
        Ok(FillOutcome::Filled(FillReceipt {
            order_id: order.id,
            trade_id,
            cash_after,
            position: effects.position,
        }))
    }

    async fn mark_position(&self, symbol: &str, price: f64, at: DateTime<Utc>) -> Result<bool> {
        super::check_positive("price", price)?;
        let mut tx = self.begin().await?;
        // Take the account lock as fills do, so the trigger's snapshot never mixes this
        // mark with the cash of a fill still in flight.
        sqlx::query("SELECT cash FROM account WHERE id = 1 FOR UPDATE")
            .fetch_optional(&mut *tx)
            .await
            .map_err(StoreError::db("lock account"))?;
        let updated = sqlx::query(
            "UPDATE positions SET current_price = $1, updated_at = $2 WHERE symbol = $3",
        )
        .bind(price)
        .bind(at)
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
        sqlx::query("SELECT * FROM positions WHERE symbol = $1")
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
        let row = sqlx::query(
            "SELECT realized_pnl, unrealized_pnl, total_pnl FROM calculate_position_pnl($1)",
        )
        .bind(symbol)
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::db("calculate_position_pnl"))?;
        row.map(|row| -> std::result::Result<PositionPnl, sqlx::Error> {
            Ok(PositionPnl {
                realized: row.try_get("realized_pnl")?,
                unrealized: row.try_get("unrealized_pnl")?,
                total: row.try_get("total_pnl")?,
            })
        })
        .transpose()
        .map_err(StoreError::db("read position pnl"))
    }

    async fn order(&self, id: Uuid) -> Result<Option<OrderRow>> {
        let Some(row) = sqlx::query("SELECT * FROM orders WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::db("load order"))?
        else {
            return Ok(None);
        };
        let read = |e| StoreError::db("read order")(e);
        Ok(Some(OrderRow {
            id: row.try_get("id").map_err(read)?,
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
            created_at: row.try_get("created_at").map_err(read)?,
            filled_at: row.try_get("filled_at").map_err(read)?,
        }))
    }

    async fn trades(&self, limit: usize) -> Result<Vec<TradeRow>> {
        let rows = sqlx::query(
            "SELECT * FROM (SELECT * FROM trades ORDER BY id DESC LIMIT $1) t ORDER BY id ASC",
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
                    order_id: row.try_get("order_id").map_err(read)?,
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
                    executed_at: row.try_get("executed_at").map_err(read)?,
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
             WHERE ts >= $1 AND ts <= $2 ORDER BY ts, id",
        )
        .bind(start)
        .bind(end)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db("load snapshots"))?;
        rows.iter()
            .map(|row| {
                let read = |e| StoreError::db("read snapshot")(e);
                Ok(SnapshotRow {
                    id: row.try_get("id").map_err(read)?,
                    timestamp: row.try_get("ts").map_err(read)?,
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
        let row = sqlx::query(
            "SELECT snapshots, start_value, end_value, total_return, volatility, sharpe_ratio, \
             max_drawdown FROM get_portfolio_stats($1, $2, $3)",
        )
        .bind(start)
        .bind(end)
        .bind(periods_per_year)
        .fetch_one(&self.pool)
        .await
        .map_err(StoreError::db("get_portfolio_stats"))?;
        let read = |e| StoreError::db("read portfolio stats")(e);
        let snapshots: i64 = row.try_get("snapshots").map_err(read)?;
        Ok(PortfolioStats {
            snapshots: u64::try_from(snapshots).unwrap_or(0),
            start_value: row.try_get("start_value").map_err(read)?,
            end_value: row.try_get("end_value").map_err(read)?,
            total_return: row.try_get("total_return").map_err(read)?,
            volatility: row.try_get("volatility").map_err(read)?,
            sharpe_ratio: row.try_get("sharpe_ratio").map_err(read)?,
            max_drawdown: row.try_get("max_drawdown").map_err(read)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_are_checked() {
        assert!(is_valid_schema_name("t_0196abc"));
        assert!(!is_valid_schema_name("0abc"));
        assert!(!is_valid_schema_name("a;drop"));
        assert!(!is_valid_schema_name("Upper"));
        assert!(!is_valid_schema_name(""));
    }
}
