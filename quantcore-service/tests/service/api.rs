//! The HTTP API through `tower::ServiceExt::oneshot` on a SQLite store.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use quantcore_service::api::{AppState, app};
use quantcore_service::roles::TradeSettings;
use quantcore_service::store::{self, Store};
use quantcore_service::train::TrainingSettings;
use serde_json::{Value, json};
use tower::ServiceExt;

async fn state(token: Option<&str>) -> (AppState, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("api.db").display());
    let store: Arc<dyn Store> = store::open(&url, 4).await.unwrap();
    let bars: Vec<_> = quantcore::sample::daily().unwrap()["ACME"]
        .iter()
        .take(300)
        .collect();
    store.upsert_bars("ACME", &bars).await.unwrap();
    let trade = TradeSettings::default();
    store
        .ensure_account(trade.initial_cash, chrono::Utc::now())
        .await
        .unwrap();
    let training = TrainingSettings {
        model_dir: dir.path().join("models"),
        ml_window: 30,
    };
    let mut state = AppState::new(store, trade, training);
    state.token = token.map(str::to_owned);
    state.body_limit = 64 * 1024;
    (state, dir)
}

async fn call(state: &AppState, request: Request<Body>) -> (StatusCode, Value) {
    let response = app(state.clone()).oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| panic!("not JSON ({status}): {}", String::from_utf8_lossy(&bytes)));
    (status, value)
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

fn post(uri: &str, body: &Value, token: Option<&str>) -> Request<Body> {
    let mut request = Request::post(uri).header(header::CONTENT_TYPE, "application/json");
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    request.body(Body::from(body.to_string())).unwrap()
}

#[tokio::test]
async fn health_ready_and_market_data() {
    let (state, _dir) = state(None).await;
    assert_eq!(
        call(&state, get("/health")).await,
        (StatusCode::OK, json!({"status": "ok"}))
    );
    assert_eq!(
        call(&state, get("/ready")).await,
        (StatusCode::OK, json!({"status": "ready"}))
    );
    let (status, bars) = call(&state, get("/market-data/ACME?limit=5")).await;
    assert_eq!(status, StatusCode::OK);
    let bars = bars.as_array().unwrap();
    assert_eq!(bars.len(), 5);
    let expected = quantcore::sample::daily().unwrap()["ACME"].bar(299);
    assert_eq!(bars[4]["timestamp"], json!(expected.timestamp));
    assert_eq!(bars[4]["close"], json!(expected.close));
    let (status, body) = call(&state, get("/market-data/ACME?limit=0")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("`limit`"));
    let (status, body) = call(&state, get("/market-data/ACME?limit=many")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("limit"), "{body}");
    let (status, body) = call(&state, get("/portfolio/history?start=yesterday")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = call(&state, get("/market-data/A%20B")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    state
        .store
        .insert_anomaly(&quantcore_service::messages::AnomalyMessage {
            symbol: "ACME".into(),
            timestamp: expected.timestamp,
            score: 0.8,
            is_anomaly: true,
        })
        .await
        .unwrap();
    let (status, anomalies) = call(&state, get("/anomalies/ACME")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(anomalies[0]["record"]["score"], json!(0.8));
    let (_, signals) = call(&state, get("/signals/ACME")).await;
    assert_eq!(signals, json!([]));
    let (status, body) = call(&state, get("/nowhere")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body, json!({"error": "no such endpoint"}));
}

#[tokio::test]
async fn orders_fill_at_the_last_close_and_update_the_portfolio() {
    let (state, _dir) = state(None).await;
    let close = quantcore::sample::daily().unwrap()["ACME"].bar(299).close;
    let (status, filled) = call(
        &state,
        post(
            "/orders",
            &json!({"symbol": "ACME", "side": "BUY", "quantity": 10}),
            None,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{filled}");
    // 5 bps slippage up, 0.1 % commission (the default trade settings).
    let price = close * 1.0005;
    assert!((filled["price"].as_f64().unwrap() - price).abs() < 1e-9);
    let commission = 10.0 * price * 0.001;
    assert!((filled["commission"].as_f64().unwrap() - commission).abs() < 1e-9);
    let cash = 100_000.0 - 10.0 * price - commission;
    assert!((filled["cash_after"].as_f64().unwrap() - cash).abs() < 1e-6);

    let id = filled["id"].as_str().unwrap();
    let (status, order) = call(&state, get(&format!("/orders/{id}"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(order["status"], "FILLED");
    assert_eq!(order["quantity"], json!(10.0));

    let (_, portfolio) = call(&state, get("/portfolio")).await;
    assert!((portfolio["cash"].as_f64().unwrap() - cash).abs() < 1e-6);
    // Marked at the fill price: value = cash + 10 * price.
    assert!((portfolio["total_value"].as_f64().unwrap() - (cash + 10.0 * price)).abs() < 1e-6);
    assert_eq!(portfolio["open_positions"], json!(1));
    let (_, positions) = call(&state, get("/positions")).await;
    assert_eq!(positions[0]["symbol"], "ACME");
    let (_, trades) = call(&state, get("/trades")).await;
    assert_eq!(trades.as_array().unwrap().len(), 1);
    assert_eq!(trades[0]["order_id"], json!(id));
    let (_, history) = call(&state, get("/portfolio/history")).await;
    assert!(history.as_array().unwrap().len() >= 2);

    // Selling more than held is refused by the core risk check (no shorts).
    let (status, body) = call(
        &state,
        post(
            "/orders",
            &json!({"symbol": "ACME", "side": "SELL", "quantity": 11}),
            None,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("insufficient position"),
        "{body}"
    );
    // More than the cash affords.
    let (status, body) = call(
        &state,
        post(
            "/orders",
            &json!({"symbol": "ACME", "side": "BUY", "quantity": 1e7}),
            None,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
}

#[tokio::test]
async fn bad_requests_get_json_errors() {
    let (state, _dir) = state(Some("s3cret")).await;
    let order = json!({"symbol": "ACME", "side": "BUY", "quantity": 1});
    let (status, body) = call(&state, post("/orders", &order, None)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "missing or wrong bearer token");
    let (status, _) = call(&state, post("/orders", &order, Some("wrong"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = call(&state, post("/orders", &order, Some("s3cret"))).await;
    assert_eq!(status, StatusCode::CREATED);

    for (body, needle) in [
        (
            json!({"symbol": "ACME", "side": "BUY", "quantity": -1}),
            "`quantity`",
        ),
        (
            json!({"symbol": "ACME", "side": "HODL", "quantity": 1}),
            "invalid JSON body",
        ),
        (
            json!({"symbol": "ACME", "side": "BUY", "quantity": 1, "x": 1}),
            "unknown field",
        ),
        (
            json!({"symbol": "NOPE", "side": "BUY", "quantity": 1}),
            "no market data",
        ),
    ] {
        let (status, answer) = call(&state, post("/orders", &body, Some("s3cret"))).await;
        assert!(status.is_client_error(), "{body}: {status}");
        assert!(
            answer["error"].as_str().unwrap().contains(needle),
            "{body}: {answer}"
        );
    }
    let (status, body) = call(&state, get("/orders/not-a-uuid")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("not a UUID"));
    let (status, _) = call(&state, get(&format!("/orders/{}", uuid::Uuid::nil()))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Bodies above the limit: 413.
    let big = json!({"bars": vec![json!({"timestamp": 0, "open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0, "volume": 0.0}); 2000],
                     "strategy": {"strategy": "momentum", "fast": 2, "slow": 5}});
    let (status, body) = call(&state, post("/backtest", &big, Some("s3cret"))).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        body["error"].as_str().unwrap().contains("length limit"),
        "{body}"
    );
}

#[tokio::test]
async fn backtest_is_the_library_engine() {
    let (state, _dir) = state(None).await;
    let spec = json!({"strategy": "momentum", "fast": 5, "slow": 20});
    let (status, body) = call(
        &state,
        post(
            "/backtest",
            &json!({"symbol": "ACME", "strategy": spec}),
            None,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // The same run through the library directly.
    let series = quantcore::BarSeries::from_bars(
        &quantcore::sample::daily().unwrap()["ACME"]
            .iter()
            .take(300)
            .collect::<Vec<_>>(),
    )
    .unwrap()
    .with_symbol("ACME");
    let mut strategy: quantcore::backtest::StrategySpec = serde_json::from_value(spec).unwrap();
    let mut built = strategy.build().unwrap();
    let direct = quantcore::Backtester::new(quantcore::BacktestConfig::default())
        .unwrap()
        .run(&series, &mut built)
        .unwrap();
    let curve = body["equity_curve"].as_array().unwrap();
    assert_eq!(curve.len(), direct.equity.len());
    assert_eq!(
        curve.last().unwrap()["equity"],
        json!(direct.equity.last().unwrap())
    );
    assert_eq!(
        body["trades"].as_array().unwrap().len(),
        direct.trades.len()
    );
    assert!(!direct.trades.is_empty());
    strategy = quantcore::backtest::StrategySpec::Momentum(
        quantcore::backtest::MomentumParams::new(5, 20),
    );
    let _ = strategy;

    let (status, body) = call(
        &state,
        post(
            "/backtest",
            &json!({"symbol": "ACME", "strategy": {"strategy": "momentum", "fast": 0, "slow": 5}}),
            None,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("fast"), "{body}");
    let (status, _) = call(
        &state,
        post(
            "/backtest",
            &json!({"strategy": {"strategy": "momentum", "fast": 2, "slow": 5}}),
            None,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

/// 50 concurrent buys that together need about five times the cash: exactly the affordable
/// ones fill, in some order, and cash never goes negative.
async fn concurrent_orders_never_overdraw(mut state: AppState) {
    // Cash is the binding limit here, not the position size.
    state.trade.limits.max_position_fraction = 2.0;
    let close = quantcore::sample::daily().unwrap()["ACME"].bar(299).close;
    let price = close * 1.0005;
    let unit_cost = price * 1.001;
    // Each order costs about 10 % of the cash: 50 of them need about five times the cash.
    let quantity = (100_000.0 / unit_cost / 10.0).floor();
    let order = json!({"symbol": "ACME", "side": "BUY", "quantity": quantity});
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let state = state.clone();
        let order = order.clone();
        tasks.spawn(async move { call(&state, post("/orders", &order, None)).await });
    }
    let mut filled = 0;
    while let Some(done) = tasks.join_next().await {
        let (status, body) = done.unwrap();
        match status {
            StatusCode::CREATED => filled += 1,
            StatusCode::UNPROCESSABLE_ENTITY => {}
            other => panic!("{other}: {body}"),
        }
    }
    let cost = quantity * price * 1.001;
    let affordable = (100_000.0 / cost).floor() as usize;
    assert_eq!(
        filled, affordable,
        "filled {filled} of {affordable} affordable"
    );
    let cash = state.store.cash().await.unwrap();
    assert!(cash >= 0.0);
    assert!(
        (cash - (100_000.0 - filled as f64 * cost)).abs() < 1e-6,
        "{cash}"
    );
    let trades = state.store.trades(1000).await.unwrap();
    assert_eq!(trades.len(), filled);
    let position = state.store.position("ACME").await.unwrap().unwrap();
    assert_eq!(position.quantity, filled as f64 * quantity);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_orders_never_overdraw_on_sqlite() {
    let (state, _dir) = state(None).await;
    concurrent_orders_never_overdraw(state).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_orders_never_overdraw_on_postgres() {
    let Ok(url) = std::env::var("QUANTCORE_TEST_DATABASE_URL") else {
        if std::env::var("QUANTCORE_SKIP_POSTGRES").as_deref() == Ok("1") {
            let _ = std::io::Write::write_all(
                &mut std::io::stderr(),
                b"SKIPPED: PostgreSQL test (QUANTCORE_SKIP_POSTGRES=1)\n",
            );
            return;
        }
        panic!(
            "QUANTCORE_TEST_DATABASE_URL is not set: run through scripts/with-postgres.sh, \
             or set QUANTCORE_SKIP_POSTGRES=1 to skip explicitly"
        );
    };
    let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
    let pg = store::PgStore::connect_in_schema(&url, &schema, 8)
        .await
        .unwrap();
    pg.migrate().await.unwrap();
    let store: Arc<dyn Store> = Arc::new(pg);
    let (mut state, _dir) = state(None).await;
    let bars = state.store.last_bars("ACME", 300).await.unwrap();
    store.upsert_bars("ACME", &bars).await.unwrap();
    store
        .ensure_account(state.trade.initial_cash, chrono::Utc::now())
        .await
        .unwrap();
    state.store = store;
    concurrent_orders_never_overdraw(state).await;
}
