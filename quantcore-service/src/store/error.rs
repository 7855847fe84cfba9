//! The store's error type.

use uuid::Uuid;

/// A store failure, by what the caller can do about it.
///
/// [`StoreError::Database`] wraps the driver error: log it, never show it to an API client
/// (it may carry SQL text).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A PostgreSQL schema name other than lower-case ASCII letters, digits and `_`.
    #[error("invalid schema name {schema:?}: use lower-case ASCII letters, digits and _")]
    InvalidSchemaName { schema: String },
    /// The URL names no supported backend.
    #[error("unsupported database URL {url:?}: expected sqlite:PATH or postgres://…")]
    UnsupportedUrl { url: String },
    /// Creating the folder of a SQLite file failed.
    #[error("cannot create the database folder {path}: {source}")]
    CreateDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    /// The database refused or failed an operation.
    #[error("database error during {operation}: {source}")]
    Database {
        operation: &'static str,
        source: sqlx::Error,
    },
    /// Applying the migrations failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The `validate_order` trigger refused the order.
    #[error("order {order_id} is invalid: {reason}")]
    InvalidOrder { order_id: Uuid, reason: String },
    /// Cash would not cover the order (or its commission): the order is stored as
    /// `REJECTED` and nothing else changed.
    #[error("order {order_id}: insufficient funds, {required} required, {available} available")]
    InsufficientFunds {
        order_id: Uuid,
        required: f64,
        available: f64,
    },
    /// A sell exceeds the quantity held: the order is stored as `REJECTED`.
    #[error("order {order_id}: cannot sell {requested} {symbol}, {held} held")]
    InsufficientPosition {
        order_id: Uuid,
        symbol: String,
        requested: f64,
        held: f64,
    },
    /// The caller's fill plan refused the fill; nothing was written.
    #[error("order {order_id}: fill plan refused: {source}")]
    PlanRejected {
        order_id: Uuid,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// An order with this id exists already.
    #[error("order {order_id} exists already")]
    DuplicateOrder { order_id: Uuid },
    /// A [`FillBatch`](super::FillBatch) used after one of its fills failed: its
    /// transaction is to be rolled back (drop it) and the work done again.
    #[error("the fill batch failed earlier and is rolled back; do its fills again")]
    BatchPoisoned,
    /// No account row: call `Store::ensure_account` first.
    #[error("no account: call ensure_account first")]
    NoAccount,
    /// A value that cannot be stored (not finite, out of range).
    #[error("`{field}` {reason}, was {value}")]
    InvalidValue {
        field: &'static str,
        value: f64,
        reason: &'static str,
    },
    /// A bar failed the core's validation.
    #[error("bar of {symbol}: {source}")]
    InvalidBar {
        symbol: String,
        source: quantcore::Error,
    },
    /// A stored value this build cannot read (an unknown enum spelling, say).
    #[error("corrupt value in {table}.{column}: {value:?}")]
    Corrupt {
        table: &'static str,
        column: &'static str,
        value: String,
    },
}

impl StoreError {
    /// Whether retrying the same call later may succeed: the connection was lost or
    /// refused (a database restart, a network cut), the pool timed out, or the database
    /// asked for a retry (PostgreSQL SQLSTATE classes `08` connection exception and `57P`
    /// operator intervention, `40001` serialization failure, `40P01` deadlock; SQLite
    /// `BUSY` and `LOCKED`). Every other error is permanent for that input.
    ///
    /// Safe to retry because every write is one transaction: a failed call changed
    /// nothing, or (a commit whose answer was lost) its idempotency marker makes the
    /// retry a no-op.
    pub fn is_transient(&self) -> bool {
        let Self::Database { source, .. } = self else {
            return false;
        };
        match source {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::BeginFailed => true,
            sqlx::Error::Database(db) => db.code().is_some_and(|code| {
                code.starts_with("08")
                    || code.starts_with("57P")
                    || code == "40001"
                    || code == "40P01"
                    // SQLite result codes are numbers; the low byte is the primary code.
                    || code
                        .parse::<u32>()
                        .is_ok_and(|n| matches!(n & 0xff, 5 | 6))
            }),
            _ => false,
        }
    }

    /// Wraps a driver error with the operation that failed.
    pub(crate) fn db(operation: &'static str) -> impl FnOnce(sqlx::Error) -> Self {
        move |source| Self::Database { operation, source }
    }
}

/// Checks that `value` is finite; the databases would store NaN or ±infinity silently.
pub(crate) fn finite(field: &'static str, value: f64) -> Result<f64, StoreError> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(StoreError::InvalidValue {
            field,
            value,
            reason: "must be finite",
        })
    }
}

/// The message prefix both backends' `validate_order` triggers use.
pub(crate) const INVALID_ORDER_PREFIX: &str = "invalid order: ";
