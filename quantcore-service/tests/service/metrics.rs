//! `GET /metrics` over loopback after real pipeline activity (replay -> ml -> trade on
//! SQLite and the in-process bus, through the instrumented bus) and some HTTP requests: each
//! counter moved by what the store and the requests say it should.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use crate::common::{get, request, samples, sqlite_with_acme};
use quantcore_service::api::AppState;
use quantcore_service::bus::{Bus, MemoryBus};
use quantcore_service::messages::topics;
use quantcore_service::roles::{self, MlSettings, Stats, TradeSettings};
use quantcore_service::telemetry::{InstrumentedBus, Telemetry};
use quantcore_service::train::TrainingSettings;
use tokio::task::JoinSet;

const BARS: usize = 250;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_follow_the_pipeline_and_the_requests() {
    // An empty store: the replay below writes the bars.
    let (store, dir) = sqlite_with_acme(0).await;
    let stats = Arc::new(Stats::default());
    let telemetry = Arc::new(Telemetry::new(stats.clone()));
    let memory: Arc<dyn Bus> = Arc::new(MemoryBus::new(2));
    let bus: Arc<dyn Bus> = Arc::new(InstrumentedBus::new(memory, telemetry.clone()));
    // A poison message: the ml and the mark consumers each dead-letter it.
    bus.publish(topics::MARKET_DATA, "ACME", b"{not json")
        .await
        .unwrap();
    let trade = TradeSettings::default();
    let mut tasks = JoinSet::new();
    tasks.spawn(roles::ml_role(
        store.clone(),
        bus.clone(),
        MlSettings {
            model_dir: dir.path().join("models"),
            ..MlSettings::default()
        },
        stats.clone(),
    ));
    tasks.spawn(roles::trade_role(
        store.clone(),
        bus.clone(),
        trade.clone(),
        stats.clone(),
    ));
    tasks.spawn(roles::mark_role(
        store.clone(),
        bus.clone(),
        roles::groups::MARK.to_owned(),
        trade.clone(),
        stats.clone(),
    ));
    let bars: Vec<_> = quantcore::sample::daily().unwrap()["ACME"]
        .iter()
        .take(BARS)
        .collect();
    roles::replay_symbol(
        store.clone(),
        bus.clone(),
        "ACME".into(),
        bars,
        Duration::ZERO,
        stats.clone(),
    )
    .await
    .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let analysed = Stats::get(&stats.bars_analysed) == BARS as u64;
        let marked = Stats::get(&stats.bars_marked) == BARS as u64;
        let traded = Stats::get(&stats.signals_handled) == Stats::get(&stats.signals_published);
        if analysed && marked && traded {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "pipeline stalled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tasks.abort_all();

    let training = TrainingSettings {
        model_dir: dir.path().join("models"),
        ml_window: 30,
    };
    let state = AppState::with_telemetry(store.clone(), trade, training, telemetry);
    let address = common::serve(state).await;
    for _ in 0..3 {
        assert_eq!(get(address, "/health").await.status, 200);
    }
    assert_eq!(get(address, "/nowhere").await.status, 404);
    assert_eq!(get(address, "/orders/not-a-uuid").await.status, 400);
    // A sale of more than is held: refused by the core's risk check.
    let refused = request(
        address,
        "POST",
        "/orders",
        Some(r#"{"symbol": "ACME", "side": "SELL", "quantity": 1e9}"#),
        None,
    )
    .await;
    assert_eq!(refused.status, 422, "{}", refused.body);

    let answer = get(address, "/metrics").await;
    assert_eq!(answer.status, 200);
    assert!(
        answer
            .header("content-type")
            .unwrap()
            .starts_with("text/plain; version=0.0.4"),
        "{:?}",
        answer.headers
    );
    let metrics = samples(&answer.body);
    let value = |key: &str| {
        *metrics
            .get(key)
            .unwrap_or_else(|| panic!("no sample {key} in\n{}", answer.body))
    };

    // Pipeline counters against the store.
    let predictions = store.predictions("ACME", 10_000).await.unwrap();
    let trades = store.trades(10_000).await.unwrap();
    assert!(!trades.is_empty(), "the replay traded");
    assert_eq!(value("quantcore_bars_ingested_total"), BARS as f64);
    assert_eq!(value("quantcore_bars_analysed_total"), BARS as f64);
    assert_eq!(value("quantcore_bars_marked_total"), BARS as f64);
    assert_eq!(
        value("quantcore_predictions_total"),
        predictions.len() as f64
    );
    assert_eq!(value("quantcore_orders_filled_total"), trades.len() as f64);
    let signals = store.signals("ACME", 10_000).await.unwrap();
    let published = signals
        .iter()
        .filter(|s| s.record.action != quantcore_service::messages::SignalAction::Hold)
        .count();
    assert_eq!(value("quantcore_signals_published_total"), published as f64);
    assert_eq!(value("quantcore_signals_handled_total"), published as f64);
    // Each handled signal is either an order, a refusal or no order (nothing to sell):
    // the refusals by reason add up to the roles' count plus the API's one.
    let refusals: f64 = metrics
        .iter()
        .filter(|(k, _)| k.starts_with("quantcore_orders_refused_total{"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(refusals, Stats::get(&stats.orders_refused) as f64 + 1.0);
    assert!(value("quantcore_orders_refused_total{reason=\"insufficient_position\"}") >= 1.0);

    // Bus traffic: every bar (and the poison) published once, consumed by ml and mark.
    assert_eq!(
        value("quantcore_bus_published_total{topic=\"market_data\"}"),
        BARS as f64 + 1.0
    );
    assert_eq!(
        value("quantcore_bus_consumed_total{topic=\"market_data\"}"),
        2.0 * (BARS as f64 + 1.0)
    );
    assert_eq!(
        value("quantcore_dead_letters_total{topic=\"market_data\"}"),
        2.0
    );
    assert_eq!(
        value("quantcore_bus_published_total{topic=\"trading_signals\"}"),
        published as f64
    );
    // One latency sample per signal the trade role committed.
    assert_eq!(
        value("quantcore_bar_to_order_seconds_count"),
        published as f64
    );

    // HTTP requests by route template and status (this scrape is counted after it answers).
    assert_eq!(
        value("quantcore_http_requests_total{method=\"GET\",route=\"/health\",status=\"200\"}"),
        3.0
    );
    assert_eq!(
        value("quantcore_http_requests_total{method=\"GET\",route=\"unmatched\",status=\"404\"}"),
        1.0
    );
    assert_eq!(
        value(
            "quantcore_http_requests_total{method=\"GET\",route=\"/orders/{id}\",status=\"400\"}"
        ),
        1.0
    );
    assert_eq!(
        value("quantcore_http_requests_total{method=\"POST\",route=\"/orders\",status=\"422\"}"),
        1.0
    );

    // The portfolio gauges are the store's value.
    let (cash, total) = roles::portfolio_value(store.as_ref()).await.unwrap();
    assert!((value("quantcore_portfolio_cash") - cash).abs() < 1e-6);
    assert!((value("quantcore_portfolio_value") - total).abs() < 1e-6);

    // A second scrape counts the first.
    let again = samples(&get(address, "/metrics").await.body);
    assert_eq!(
        again["quantcore_http_requests_total{method=\"GET\",route=\"/metrics\",status=\"200\"}"],
        1.0
    );
    assert_eq!(again["quantcore_bars_ingested_total"], BARS as f64);
}
