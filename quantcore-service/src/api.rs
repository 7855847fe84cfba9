//! The HTTP API (axum): [`app`] builds the router over an [`AppState`].
//!
//! | method and path | answer |
//! |---|---|
//! | `GET /health` | `{"status": "ok"}` while the process runs |
//! | `GET /ready` | `{"status": "ready"}` when the store answers, else 503 |
//! | `GET /market-data/{symbol}?limit=` | the last bars, oldest first (default 100, at most 10,000) |
//! | `GET /predictions/{symbol}?limit=`, `GET /signals/{symbol}?limit=`, `GET /anomalies/{symbol}?limit=` | the ml role's output |
//! | `GET /positions` | every position |
//! | `GET /portfolio` | cash, positions value, total value |
//! | `GET /portfolio/history?start=&end=` | snapshots (RFC 3339 times; default 1900 to 9999) |
//! | `GET /trades?limit=` | the last trades |
//! | `GET /orders/{id}` | one order, 404 when unknown |
//! | `POST /orders` | `{"symbol", "side": "BUY"/"SELL", "quantity"}`: a market order at the last stored close, through the trade role's path (core risk check, [`crate::roles::execute_order`]) |
//! | `POST /backtest` | `{"symbol"` or `"bars", "strategy": StrategySpec, "config"?: BacktestConfig}`: the library's [`quantcore::Backtester`]; returns the metrics, equity curve and trades |
//!
//! Errors are JSON `{"error": "..."}` with a 4xx or 5xx status ([`ApiError`]); store errors
//! are logged and answered with a generic message (no SQL reaches the client). Mutating
//! endpoints (`POST`) need `Authorization: Bearer <token>` when a token is configured.
//! Bodies above the configured limit are refused with 413.

use std::sync::Arc;

use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use crate::roles::{self, OrderIntent, OrderResult, RoleError, TradeSettings};
use crate::store::{Store, StoreError};

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub trade: TradeSettings,
    /// Bearer token of mutating endpoints; `None` leaves them open.
    pub token: Option<String>,
    /// Largest accepted request body, bytes.
    pub body_limit: usize,
}

/// An error answer: a status and a message, sent as `{"error": message}`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.message }))).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::InvalidValue { .. } | StoreError::InvalidBar { .. } => {
                Self::bad_request(error.to_string())
            }
            StoreError::InsufficientFunds { .. }
            | StoreError::InsufficientPosition { .. }
            | StoreError::PlanRejected { .. } => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, error.to_string())
            }
            other => {
                tracing::error!(error = %other, "store error in the API");
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, "storage error")
            }
        }
    }
}

impl From<RoleError> for ApiError {
    fn from(error: RoleError) -> Self {
        match error {
            RoleError::Store(error) => error.into(),
            RoleError::Core(error) => Self::bad_request(error.to_string()),
            RoleError::Bus(error) => {
                tracing::error!(%error, "bus error in the API");
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, "bus error")
            }
        }
    }
}

/// The router; see the [module docs](self).
pub fn app(state: AppState) -> Router {
    let limit = state.body_limit;
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/market-data/{symbol}", get(market_data))
        .route("/predictions/{symbol}", get(predictions))
        .route("/signals/{symbol}", get(signals))
        .route("/anomalies/{symbol}", get(anomalies))
        .route("/positions", get(positions))
        .route("/portfolio", get(portfolio))
        .route("/portfolio/history", get(portfolio_history))
        .route("/trades", get(trades))
        .route("/orders/{id}", get(order))
        .route("/orders", post(create_order))
        .route("/backtest", post(backtest))
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

/// Serves `app(state)` on `bind` until `shutdown` resolves.
///
/// # Errors
/// The listener's error.
pub async fn serve(
    state: AppState,
    bind: std::net::SocketAddr,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(bind).await?;
    tracing::info!(address = %listener.local_addr()?, "HTTP API listening");
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await
}

const MAX_LIMIT: usize = 10_000;

/// [`Query`] with its rejection as a JSON [`ApiError`].
struct ApiQuery<T>(T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| ApiQuery(value))
            .map_err(|rejection| ApiError::new(rejection.status(), rejection.body_text()))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitQuery {
    limit: Option<usize>,
}

impl LimitQuery {
    fn get(&self) -> Result<usize, ApiError> {
        match self.limit {
            None => Ok(100),
            Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            Some(n) => Err(ApiError::bad_request(format!(
                "`limit` must be in [1, {MAX_LIMIT}], was {n}"
            ))),
        }
    }
}

fn check_symbol(symbol: &str) -> Result<(), ApiError> {
    let valid = !symbol.is_empty()
        && symbol.len() <= 32
        && symbol
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'^' | b'='));
    if valid {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "invalid symbol {symbol:?}: use 1 to 32 letters, digits or . - _ ^ ="
        )))
    }
}

fn authorize(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(token) = &state.token else {
        return Ok(());
    };
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    if given == Some(token.as_str()) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing or wrong bearer token",
        ))
    }
}

/// A JSON body parsed with a JSON error naming what is wrong (413 above the body limit).
fn parse_body<T: serde::de::DeserializeOwned>(
    body: Result<axum::body::Bytes, BytesRejection>,
) -> Result<T, ApiError> {
    let body =
        body.map_err(|rejection| ApiError::new(rejection.status(), rejection.body_text()))?;
    serde_json::from_slice(&body)
        .map_err(|error| ApiError::bad_request(format!("invalid JSON body: {error}")))
}

async fn health() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

async fn ready(State(state): State<AppState>) -> Response {
    match state.store.positions().await {
        Ok(_) => Json(json!({ "status": "ready" })).into_response(),
        Err(error) => {
            tracing::warn!(%error, "not ready");
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "store unavailable").into_response()
        }
    }
}

async fn market_data(
    State(state): State<AppState>,
    Path(symbol): Path<String>,
    ApiQuery(query): ApiQuery<LimitQuery>,
) -> Result<Json<Vec<quantcore::Bar>>, ApiError> {
    check_symbol(&symbol)?;
    Ok(Json(state.store.last_bars(&symbol, query.get()?).await?))
}

async fn predictions(
    State(state): State<AppState>,
    Path(symbol): Path<String>,
    ApiQuery(query): ApiQuery<LimitQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    check_symbol(&symbol)?;
    Ok(Json(json!(
        state.store.predictions(&symbol, query.get()?).await?
    )))
}

async fn signals(
    State(state): State<AppState>,
    Path(symbol): Path<String>,
    ApiQuery(query): ApiQuery<LimitQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    check_symbol(&symbol)?;
    Ok(Json(json!(
        state.store.signals(&symbol, query.get()?).await?
    )))
}

async fn anomalies(
    State(state): State<AppState>,
    Path(symbol): Path<String>,
    ApiQuery(query): ApiQuery<LimitQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    check_symbol(&symbol)?;
    Ok(Json(json!(
        state.store.anomalies(&symbol, query.get()?).await?
    )))
}

async fn positions(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(json!(state.store.positions().await?)))
}

/// `GET /portfolio` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PortfolioView {
    pub cash: f64,
    pub positions_value: f64,
    pub total_value: f64,
    pub open_positions: usize,
}

async fn portfolio(State(state): State<AppState>) -> Result<Json<PortfolioView>, ApiError> {
    state
        .store
        .ensure_account(state.trade.initial_cash, Utc::now())
        .await?;
    let (cash, total_value) = roles::portfolio_value(state.store.as_ref()).await?;
    let open_positions = state
        .store
        .positions()
        .await?
        .iter()
        .filter(|p| p.quantity != 0.0)
        .count();
    Ok(Json(PortfolioView {
        cash,
        positions_value: total_value - cash,
        total_value,
        open_positions,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryQuery {
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
}

async fn portfolio_history(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<HistoryQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    // Defaults inside PostgreSQL's timestamptz range (chrono's MIN/MAX are outside it).
    let start = query
        .start
        .unwrap_or_else(|| DateTime::from_timestamp(-2_208_988_800, 0).expect("1900-01-01"));
    let end = query
        .end
        .unwrap_or_else(|| DateTime::from_timestamp(253_402_300_799, 0).expect("9999-12-31"));
    if start > end {
        return Err(ApiError::bad_request("`start` must not be after `end`"));
    }
    Ok(Json(json!(
        state.store.portfolio_history(start, end).await?
    )))
}

async fn trades(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<LimitQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(json!(state.store.trades(query.get()?).await?)))
}

async fn order(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id = Uuid::parse_str(&id)
        .map_err(|_| ApiError::bad_request(format!("invalid order id {id:?}: not a UUID")))?;
    match state.store.order(id).await? {
        Some(order) => Ok(Json(json!(order))),
        None => Err(ApiError::not_found(format!("no order {id}"))),
    }
}

/// `POST /orders` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewOrder {
    pub symbol: String,
    pub side: crate::store::Side,
    /// `> 0`.
    pub quantity: f64,
}

async fn create_order(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<axum::body::Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    let order: NewOrder = parse_body(body)?;
    check_symbol(&order.symbol)?;
    if !(order.quantity.is_finite() && order.quantity > 0.0) {
        return Err(ApiError::bad_request(format!(
            "`quantity` must be finite and positive, was {}",
            order.quantity
        )));
    }
    let Some(last) = state.store.last_bars(&order.symbol, 1).await?.pop() else {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("no market data for {}: no price to fill at", order.symbol),
        ));
    };
    let intent = OrderIntent {
        symbol: order.symbol.clone(),
        side: match order.side {
            crate::store::Side::Buy => quantcore::order::Side::Buy,
            crate::store::Side::Sell => quantcore::order::Side::Sell,
        },
        quantity: order.quantity,
        reference_price: last.close,
        timestamp: Utc::now().timestamp(),
    };
    match roles::execute_order(state.store.as_ref(), &state.trade, &intent, None).await? {
        OrderResult::Filled {
            order_id,
            price,
            commission,
            cash_after,
        } => Ok((
            StatusCode::CREATED,
            Json(json!({
                "id": order_id, "status": "FILLED", "price": price,
                "commission": commission, "cash_after": cash_after,
            })),
        )
            .into_response()),
        OrderResult::Refused { reason } => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("order refused by the risk check: {reason}"),
        )),
        OrderResult::Duplicate => Err(ApiError::new(StatusCode::CONFLICT, "duplicate order")),
    }
}

/// `POST /backtest` body: bars from the store (`symbol`) or given (`bars`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BacktestRequest {
    pub symbol: Option<String>,
    pub bars: Option<Vec<quantcore::Bar>>,
    /// Bars read from the store for `symbol`; default 10,000.
    pub limit: Option<usize>,
    pub strategy: quantcore::backtest::StrategySpec,
    #[serde(default)]
    pub config: quantcore::BacktestConfig,
}

async fn backtest(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<axum::body::Bytes, BytesRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    authorize(&state, &headers)?;
    let request: BacktestRequest = parse_body(body)?;
    let (symbol, bars) = match (request.symbol, request.bars) {
        (Some(symbol), None) => {
            check_symbol(&symbol)?;
            let limit = request.limit.unwrap_or(MAX_LIMIT).clamp(1, MAX_LIMIT);
            let bars = state.store.last_bars(&symbol, limit).await?;
            if bars.is_empty() {
                return Err(ApiError::not_found(format!("no market data for {symbol}")));
            }
            (symbol, bars)
        }
        (symbol, Some(bars)) => (symbol.unwrap_or_else(|| "ASSET".into()), bars),
        (None, None) => return Err(ApiError::bad_request("give `symbol` or `bars`")),
    };
    if let Some(symbol) = Some(&symbol) {
        check_symbol(symbol)?;
    }
    let result = tokio::task::spawn_blocking(move || -> Result<_, quantcore::Error> {
        let series = quantcore::BarSeries::from_bars(&bars)?.with_symbol(symbol);
        let mut strategy = request.strategy.build()?;
        quantcore::Backtester::new(request.config)?.run(&series, &mut strategy)
    })
    .await
    .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "backtest task failed"))?
    .map_err(|error| ApiError::bad_request(error.to_string()))?;
    Ok(Json(json!({
        "metrics": result.metrics,
        "equity_curve": result.timestamps.iter().zip(&result.equity)
            .map(|(t, e)| json!({"timestamp": t, "equity": e})).collect::<Vec<_>>(),
        "trades": result.trades,
        "fills": result.fills,
        "final_snapshot": result.final_snapshot,
    })))
}
