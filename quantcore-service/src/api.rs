//! The HTTP API (axum): [`app`] builds the router over an [`AppState`].
//!
//! | method and path | answer |
//! |---|---|
//! | `GET /health` | `{"status": "ok"}` while the process runs |
//! | `GET /ready` | `{"status": "ready"}` when the store answers, else 503 |
//! | `GET /metrics` | Prometheus text exposition ([`crate::telemetry`]) |
//! | `GET /openapi.json` | the OpenAPI 3 document of every route ([`crate::openapi`]) |
//! | `GET /market-data/{symbol}?limit=` | the last bars, oldest first (default 100, at most 10,000) |
//! | `GET /predictions/{symbol}?limit=`, `GET /signals/{symbol}?limit=`, `GET /anomalies/{symbol}?limit=` | the ml role's output |
//! | `GET /positions` | every position |
//! | `GET /portfolio` | cash, positions value, total value |
//! | `GET /portfolio/history?start=&end=` | snapshots (RFC 3339 times; default 1900 to 9999) |
//! | `GET /trades?limit=` | the last trades |
//! | `GET /orders/{id}` | one order, 404 when unknown |
//! | `POST /orders` | `{"symbol", "side": "BUY"/"SELL", "quantity"}`: a market order at the last stored close, through the trade role's path (core risk check, [`crate::roles::execute_order`]) |
//! | `POST /backtest` | `{"symbol"` or `"bars", "strategy": StrategySpec, "config"?: BacktestConfig}`: the library's [`quantcore::Backtester`]; returns the metrics, equity curve and trades |
//! | `GET /models`, `GET /models/{symbol}` | the trained models ([`crate::train::ModelInfo`]) |
//! | `POST /models/{symbol}/train` | [`crate::train::TrainParams`]: starts a training job on the stored bars, 202 with the job |
//! | `GET /training-jobs/{id}` | a training job's state, epochs done and model |
//!
//! [`ROUTES`] lists them; [`app`] registers exactly those. Errors are JSON
//! `{"error": "..."}` with a 4xx or 5xx status ([`ApiError`]); store errors are logged and
//! answered with a generic message (no SQL reaches the client). Mutating endpoints (`POST`)
//! need `Authorization: Bearer <token>` when a token is configured. Bodies above the
//! configured limit are refused with 413. Every request is counted in the metrics by
//! method, route template and status.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, FromRequestParts, MatchedPath, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use crate::openapi::{
    BacktestResultDoc, BarDoc, ErrorBody, OrderDoc, PositionDoc, SnapshotDoc, StatusBody,
    StoredAnomalyDoc, StoredPredictionDoc, StoredSignalDoc, StrategySpecDoc, TradeDoc,
};
use crate::roles::{self, OrderIntent, OrderResult, RoleError, Stats, TradeSettings};
use crate::store::{Store, StoreError};
use crate::telemetry::Telemetry;
use crate::train::{
    ModelInfo, TrainError, TrainParams, TrainingJob, TrainingJobs, TrainingSettings,
};

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub trade: TradeSettings,
    /// Bearer token of mutating endpoints; `None` leaves them open.
    pub token: Option<String>,
    /// Largest accepted request body, bytes.
    pub body_limit: usize,
    /// The process's metrics.
    pub telemetry: Arc<Telemetry>,
    /// Training jobs and where models are saved.
    pub training: Arc<TrainingJobs>,
}

impl AppState {
    /// A state with no token, a 1 MiB body limit, fresh metrics (over fresh [`Stats`]) and
    /// models in `training.model_dir`.
    pub fn new(store: Arc<dyn Store>, trade: TradeSettings, training: TrainingSettings) -> Self {
        let telemetry = Arc::new(Telemetry::new(Arc::new(Stats::default())));
        Self::with_telemetry(store, trade, training, telemetry)
    }

    /// As [`AppState::new`] with the process's `telemetry` (trained models are counted there).
    pub fn with_telemetry(
        store: Arc<dyn Store>,
        trade: TradeSettings,
        training: TrainingSettings,
        telemetry: Arc<Telemetry>,
    ) -> Self {
        let counted = telemetry.clone();
        Self {
            store,
            trade,
            token: None,
            body_limit: 1 << 20,
            training: Arc::new(
                TrainingJobs::new(training).with_success_hook(move || counted.model_trained()),
            ),
            telemetry,
        }
    }
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

    fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, message)
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
            | StoreError::PlanRejected { .. } => Self::unprocessable(error.to_string()),
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

impl From<TrainError> for ApiError {
    fn from(error: TrainError) -> Self {
        match error {
            TrainError::InvalidParameter(_)
            | TrainError::WindowTooLarge { .. }
            | TrainError::NotEnoughBars { .. }
            | TrainError::Core(_) => Self::unprocessable(error.to_string()),
            TrainError::AlreadyRunning { .. } => Self::new(StatusCode::CONFLICT, error.to_string()),
            TrainError::Store(error) => error.into(),
            TrainError::Io { .. } | TrainError::Task => {
                tracing::error!(%error, "training error in the API");
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, "model storage error")
            }
        }
    }
}

/// Every route: method and path template, in the order [`app`] registers them.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/health"),
    ("GET", "/ready"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("GET", "/market-data/{symbol}"),
    ("GET", "/predictions/{symbol}"),
    ("GET", "/signals/{symbol}"),
    ("GET", "/anomalies/{symbol}"),
    ("GET", "/positions"),
    ("GET", "/portfolio"),
    ("GET", "/portfolio/history"),
    ("GET", "/trades"),
    ("GET", "/orders/{id}"),
    ("POST", "/orders"),
    ("POST", "/backtest"),
    ("GET", "/models"),
    ("GET", "/models/{symbol}"),
    ("POST", "/models/{symbol}/train"),
    ("GET", "/training-jobs/{id}"),
];

/// The handler of a route of [`ROUTES`].
fn handler(method: &str, path: &str) -> MethodRouter<AppState> {
    match (method, path) {
        ("GET", "/health") => get(health),
        ("GET", "/ready") => get(ready),
        ("GET", "/metrics") => get(metrics),
        ("GET", "/openapi.json") => get(openapi_json),
        ("GET", "/market-data/{symbol}") => get(market_data),
        ("GET", "/predictions/{symbol}") => get(predictions),
        ("GET", "/signals/{symbol}") => get(signals),
        ("GET", "/anomalies/{symbol}") => get(anomalies),
        ("GET", "/positions") => get(positions),
        ("GET", "/portfolio") => get(portfolio),
        ("GET", "/portfolio/history") => get(portfolio_history),
        ("GET", "/trades") => get(trades),
        ("GET", "/orders/{id}") => get(order),
        ("POST", "/orders") => post(create_order),
        ("POST", "/backtest") => post(backtest),
        ("GET", "/models") => get(list_models),
        ("GET", "/models/{symbol}") => get(get_model),
        ("POST", "/models/{symbol}/train") => post(train_model),
        ("GET", "/training-jobs/{id}") => get(training_job),
        _ => unreachable!("every entry of ROUTES has a handler: {method} {path}"),
    }
}

/// The router of [`ROUTES`]; see the [module docs](self).
pub fn app(state: AppState) -> Router {
    let limit = state.body_limit;
    let mut router = Router::new();
    for (method, path) in ROUTES {
        router = router.route(path, handler(method, path));
    }
    router
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            count_request,
        ))
        .with_state(state)
}

/// Counts each request by method, matched route template and status.
async fn count_request(
    State(state): State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let response = next.run(request).await;
    state.telemetry.observe_http(
        method.as_str(),
        &route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
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
pub(crate) struct ApiQuery<T>(T);

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
pub(crate) struct LimitQuery {
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

/// Liveness.
#[utoipa::path(get, path = "/health", tag = "health",
    responses((status = 200, description = "The process runs", body = StatusBody)))]
pub(crate) async fn health() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// Readiness: the store answers.
#[utoipa::path(get, path = "/ready", tag = "health", responses(
    (status = 200, description = "The store answers", body = StatusBody),
    (status = 503, description = "The store does not answer", body = ErrorBody)))]
pub(crate) async fn ready(State(state): State<AppState>) -> Response {
    match state.store.positions().await {
        Ok(_) => Json(json!({ "status": "ready" })).into_response(),
        Err(error) => {
            tracing::warn!(%error, "not ready");
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "store unavailable").into_response()
        }
    }
}

/// Prometheus metrics; the portfolio gauges are read from the store at each scrape.
#[utoipa::path(get, path = "/metrics", tag = "health", responses(
    (status = 200, description = "Prometheus text exposition format 0.0.4", body = String, content_type = "text/plain")))]
pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    match roles::portfolio_value(state.store.as_ref()).await {
        Ok((cash, value)) => state.telemetry.set_portfolio(cash, value),
        Err(error) => tracing::warn!(%error, "metrics: cannot read the portfolio"),
    }
    (
        [(header::CONTENT_TYPE, crate::telemetry::CONTENT_TYPE)],
        state.telemetry.render(),
    )
        .into_response()
}

/// This API's OpenAPI 3 document.
#[utoipa::path(get, path = "/openapi.json", tag = "health", responses(
    (status = 200, description = "OpenAPI 3 document", body = Object)))]
pub(crate) async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(crate::openapi::document())
}

/// The last bars of a symbol, oldest first.
#[utoipa::path(get, path = "/market-data/{symbol}", tag = "data",
    params(("symbol" = String, Path, description = "Symbol: 1 to 32 letters, digits or . - _ ^ ="),
           ("limit" = Option<usize>, Query, description = "How many, 1 to 10,000 (default 100)")),
    responses((status = 200, description = "Bars", body = [BarDoc]),
              (status = 400, description = "Bad symbol or limit", body = ErrorBody)))]
pub(crate) async fn market_data(
    State(state): State<AppState>,
    Path(symbol): Path<String>,
    ApiQuery(query): ApiQuery<LimitQuery>,
) -> Result<Json<Vec<quantcore::Bar>>, ApiError> {
    check_symbol(&symbol)?;
    Ok(Json(state.store.last_bars(&symbol, query.get()?).await?))
}

/// The ml role's last predictions of a symbol.
#[utoipa::path(get, path = "/predictions/{symbol}", tag = "data",
    params(("symbol" = String, Path, description = "Symbol"),
           ("limit" = Option<usize>, Query, description = "How many, 1 to 10,000 (default 100)")),
    responses((status = 200, description = "Predictions", body = [StoredPredictionDoc]),
              (status = 400, description = "Bad symbol or limit", body = ErrorBody)))]
pub(crate) async fn predictions(
    State(state): State<AppState>,
    Path(symbol): Path<String>,
    ApiQuery(query): ApiQuery<LimitQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    check_symbol(&symbol)?;
    Ok(Json(json!(
        state.store.predictions(&symbol, query.get()?).await?
    )))
}

/// The ml role's last signals of a symbol.
#[utoipa::path(get, path = "/signals/{symbol}", tag = "data",
    params(("symbol" = String, Path, description = "Symbol"),
           ("limit" = Option<usize>, Query, description = "How many, 1 to 10,000 (default 100)")),
    responses((status = 200, description = "Signals", body = [StoredSignalDoc]),
              (status = 400, description = "Bad symbol or limit", body = ErrorBody)))]
pub(crate) async fn signals(
    State(state): State<AppState>,
    Path(symbol): Path<String>,
    ApiQuery(query): ApiQuery<LimitQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    check_symbol(&symbol)?;
    Ok(Json(json!(
        state.store.signals(&symbol, query.get()?).await?
    )))
}

/// The ml role's last anomaly scores of a symbol.
#[utoipa::path(get, path = "/anomalies/{symbol}", tag = "data",
    params(("symbol" = String, Path, description = "Symbol"),
           ("limit" = Option<usize>, Query, description = "How many, 1 to 10,000 (default 100)")),
    responses((status = 200, description = "Anomaly scores", body = [StoredAnomalyDoc]),
              (status = 400, description = "Bad symbol or limit", body = ErrorBody)))]
pub(crate) async fn anomalies(
    State(state): State<AppState>,
    Path(symbol): Path<String>,
    ApiQuery(query): ApiQuery<LimitQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    check_symbol(&symbol)?;
    Ok(Json(json!(
        state.store.anomalies(&symbol, query.get()?).await?
    )))
}

/// Every position.
#[utoipa::path(get, path = "/positions", tag = "trading",
    responses((status = 200, description = "Positions", body = [PositionDoc])))]
pub(crate) async fn positions(
    State(state): State<AppState>,
) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(json!(state.store.positions().await?)))
}

/// `GET /portfolio` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = Portfolio)]
pub struct PortfolioView {
    pub cash: f64,
    pub positions_value: f64,
    pub total_value: f64,
    pub open_positions: usize,
}

/// Cash, positions value (at the last marks) and total value.
#[utoipa::path(get, path = "/portfolio", tag = "trading",
    responses((status = 200, description = "Portfolio", body = PortfolioView)))]
pub(crate) async fn portfolio(
    State(state): State<AppState>,
) -> Result<Json<PortfolioView>, ApiError> {
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
pub(crate) struct HistoryQuery {
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
}

/// Portfolio value snapshots in a time range.
#[utoipa::path(get, path = "/portfolio/history", tag = "trading",
    params(("start" = Option<DateTime<Utc>>, Query, description = "RFC 3339, default 1900-01-01"),
           ("end" = Option<DateTime<Utc>>, Query, description = "RFC 3339, default 9999-12-31")),
    responses((status = 200, description = "Snapshots", body = [SnapshotDoc]),
              (status = 400, description = "Bad time or range", body = ErrorBody)))]
pub(crate) async fn portfolio_history(
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

/// The last trades.
#[utoipa::path(get, path = "/trades", tag = "trading",
    params(("limit" = Option<usize>, Query, description = "How many, 1 to 10,000 (default 100)")),
    responses((status = 200, description = "Trades", body = [TradeDoc]),
              (status = 400, description = "Bad limit", body = ErrorBody)))]
pub(crate) async fn trades(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<LimitQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(json!(state.store.trades(query.get()?).await?)))
}

/// One order.
#[utoipa::path(get, path = "/orders/{id}", tag = "trading",
    params(("id" = Uuid, Path, description = "Order id")),
    responses((status = 200, description = "The order", body = OrderDoc),
              (status = 400, description = "Not a UUID", body = ErrorBody),
              (status = 404, description = "No such order", body = ErrorBody)))]
pub(crate) async fn order(
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOrder {
    pub symbol: String,
    #[schema(value_type = crate::openapi::SideDoc)]
    pub side: crate::store::Side,
    /// `> 0`.
    pub quantity: f64,
}

/// `POST /orders` answer (201).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrderFilled {
    pub id: Uuid,
    /// Always `FILLED`.
    pub status: String,
    /// Fill price, slippage included.
    pub price: f64,
    pub commission: f64,
    pub cash_after: f64,
}

/// A market order at the last stored close, through the trade role's risk check and fill.
#[utoipa::path(post, path = "/orders", tag = "trading", request_body = NewOrder,
    security(("bearer" = [])),
    responses((status = 201, description = "Filled", body = OrderFilled),
              (status = 400, description = "Invalid body", body = ErrorBody),
              (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
              (status = 409, description = "Duplicate order", body = ErrorBody),
              (status = 413, description = "Body too large", body = ErrorBody),
              (status = 422, description = "Refused (risk check, funds, no market data)", body = ErrorBody)))]
pub(crate) async fn create_order(
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
        return Err(ApiError::unprocessable(format!(
            "no market data for {}: no price to fill at",
            order.symbol
        )));
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
    let result = roles::execute_order(state.store.as_ref(), &state.trade, &intent, None).await;
    if let Err(RoleError::Store(error)) = &result {
        let code = roles::refusal_code(&roles::RefusalCause::Store(error));
        if code != "other" {
            state.telemetry.order_refused(code);
        }
    }
    match result? {
        OrderResult::Filled {
            order_id,
            price,
            commission,
            cash_after,
        } => {
            state.telemetry.api_order_filled();
            Ok((
                StatusCode::CREATED,
                Json(OrderFilled {
                    id: order_id,
                    status: "FILLED".into(),
                    price,
                    commission,
                    cash_after,
                }),
            )
                .into_response())
        }
        OrderResult::Refused { reason, code } => {
            state.telemetry.order_refused(code);
            Err(ApiError::unprocessable(format!(
                "order refused by the risk check: {reason}"
            )))
        }
        OrderResult::Duplicate => Err(ApiError::new(StatusCode::CONFLICT, "duplicate order")),
    }
}

/// `POST /backtest` body: bars from the store (`symbol`) or given (`bars`). The CLI's
/// `backtest` command builds the same request with the bars of a CSV file or the sample.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BacktestRequest {
    /// Symbol to read from the store (without `bars`), or the name of the given bars.
    pub symbol: Option<String>,
    /// The bars to test on, oldest first.
    #[schema(value_type = Option<Vec<BarDoc>>)]
    pub bars: Option<Vec<quantcore::Bar>>,
    /// Bars read from the store for `symbol`; default 10,000.
    pub limit: Option<usize>,
    #[schema(value_type = StrategySpecDoc)]
    pub strategy: quantcore::backtest::StrategySpec,
    /// The core's `BacktestConfig` (initial capital, execution, fill timing, sizing, risk
    /// limits, metrics); every field optional.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub config: quantcore::BacktestConfig,
}

impl BacktestRequest {
    /// Runs the core [`quantcore::Backtester`] on `bars` named `symbol` with this request's
    /// strategy and config: the engine of `POST /backtest` and the `backtest` command.
    ///
    /// # Errors
    /// The core's error for invalid bars, parameters or config.
    pub fn run_on(
        &self,
        symbol: &str,
        bars: &[quantcore::Bar],
    ) -> Result<quantcore::backtest::BacktestResult, quantcore::Error> {
        let series = quantcore::BarSeries::from_bars(bars)?.with_symbol(symbol);
        let mut strategy = self.strategy.build()?;
        quantcore::Backtester::new(self.config)?.run(&series, &mut strategy)
    }
}

/// The JSON answer of `POST /backtest` for `result`.
pub fn backtest_json(result: &quantcore::backtest::BacktestResult) -> serde_json::Value {
    json!({
        "metrics": result.metrics,
        "equity_curve": result.timestamps.iter().zip(&result.equity)
            .map(|(t, e)| json!({"timestamp": t, "equity": e})).collect::<Vec<_>>(),
        "trades": result.trades,
        "fills": result.fills,
        "final_snapshot": result.final_snapshot,
    })
}

/// A backtest of a built-in strategy with the library's engine.
#[utoipa::path(post, path = "/backtest", tag = "research", request_body = BacktestRequest,
    security(("bearer" = [])),
    responses((status = 200, description = "Metrics, equity curve, trades, fills", body = BacktestResultDoc),
              (status = 400, description = "Invalid body, parameters or bars", body = ErrorBody),
              (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
              (status = 404, description = "No stored bars for the symbol", body = ErrorBody),
              (status = 413, description = "Body too large", body = ErrorBody)))]
pub(crate) async fn backtest(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<axum::body::Bytes, BytesRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    authorize(&state, &headers)?;
    let mut request: BacktestRequest = parse_body(body)?;
    let (symbol, bars) = match (request.symbol.take(), request.bars.take()) {
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
    check_symbol(&symbol)?;
    let result = tokio::task::spawn_blocking(move || request.run_on(&symbol, &bars))
        .await
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "backtest task failed"))?
        .map_err(|error| ApiError::bad_request(error.to_string()))?;
    Ok(Json(backtest_json(&result)))
}

/// The trained models.
#[utoipa::path(get, path = "/models", tag = "research",
    responses((status = 200, description = "Models by symbol", body = [ModelInfo])))]
pub(crate) async fn list_models(
    State(state): State<AppState>,
) -> Result<Json<Vec<ModelInfo>>, ApiError> {
    let dir = state.training.settings().model_dir.clone();
    let models = tokio::task::spawn_blocking(move || crate::train::list_models(&dir))
        .await
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "model listing failed"))??;
    Ok(Json(models))
}

/// The trained model of a symbol.
#[utoipa::path(get, path = "/models/{symbol}", tag = "research",
    params(("symbol" = String, Path, description = "Symbol")),
    responses((status = 200, description = "The model", body = ModelInfo),
              (status = 400, description = "Bad symbol", body = ErrorBody),
              (status = 404, description = "No model for the symbol", body = ErrorBody)))]
pub(crate) async fn get_model(
    State(state): State<AppState>,
    Path(symbol): Path<String>,
) -> Result<Json<ModelInfo>, ApiError> {
    check_symbol(&symbol)?;
    match crate::train::model_info(&state.training.settings().model_dir, &symbol)? {
        Some(model) => Ok(Json(model)),
        None => Err(ApiError::not_found(format!(
            "no trained model for {symbol}"
        ))),
    }
}

/// Starts training an LSTM on the stored bars of a symbol; poll the job with
/// `GET /training-jobs/{id}`. An empty body takes every default.
#[utoipa::path(post, path = "/models/{symbol}/train", tag = "research",
    params(("symbol" = String, Path, description = "Symbol")),
    request_body(content = Option<TrainParams>, description = "Training parameters, all optional"),
    security(("bearer" = [])),
    responses((status = 202, description = "Training started", body = TrainingJob),
              (status = 400, description = "Invalid JSON or symbol", body = ErrorBody),
              (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
              (status = 409, description = "A job of the symbol is running", body = ErrorBody),
              (status = 422, description = "Parameter out of range or too few bars", body = ErrorBody)))]
pub(crate) async fn train_model(
    State(state): State<AppState>,
    Path(symbol): Path<String>,
    headers: HeaderMap,
    body: Result<axum::body::Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    check_symbol(&symbol)?;
    let params: TrainParams = match &body {
        Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => TrainParams::default(),
        _ => parse_body(body)?,
    };
    let job = state
        .training
        .start(state.store.as_ref(), &symbol, &params)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(job)).into_response())
}

/// A training job.
#[utoipa::path(get, path = "/training-jobs/{id}", tag = "research",
    params(("id" = Uuid, Path, description = "Job id")),
    responses((status = 200, description = "The job", body = TrainingJob),
              (status = 400, description = "Not a UUID", body = ErrorBody),
              (status = 404, description = "No such job in this process", body = ErrorBody)))]
pub(crate) async fn training_job(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<TrainingJob>, ApiError> {
    let id = Uuid::parse_str(&id)
        .map_err(|_| ApiError::bad_request(format!("invalid job id {id:?}: not a UUID")))?;
    state
        .training
        .job(id)
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no training job {id}")))
}
