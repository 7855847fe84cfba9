//! `GET /openapi.json` over loopback: an OpenAPI 3 document with every route of
//! `api::ROUTES` (and nothing else), bearer auth on the mutating ones, resolvable `$ref`s, and
//! schemas whose field names match what the endpoints really answer.

use crate::common;

use std::collections::BTreeSet;

use crate::common::{get, request, sqlite_with_acme};
use quantcore_service::api::{AppState, ROUTES};
use quantcore_service::messages::{AnomalyMessage, SignalAction, SignalMessage};
use quantcore_service::roles::TradeSettings;
use quantcore_service::store::Prediction;
use quantcore_service::train::TrainingSettings;
use serde_json::Value;

/// Every `$ref` in `value`.
fn refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, item) in map {
                match (key.as_str(), item) {
                    ("$ref", Value::String(target)) => out.push(target.clone()),
                    _ => refs(item, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| refs(item, out)),
        _ => {}
    }
}

fn keys(value: &Value) -> BTreeSet<String> {
    value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .cloned()
        .collect()
}

/// The property names of component schema `name`.
fn schema_keys(document: &Value, name: &str) -> BTreeSet<String> {
    keys(&document["components"]["schemas"][name]["properties"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_lists_every_route_with_its_auth_and_matching_schemas() {
    let (store, dir) = sqlite_with_acme(300).await;
    let training = TrainingSettings {
        model_dir: dir.path().join("models"),
        ml_window: 30,
    };
    let state = AppState::new(store.clone(), TradeSettings::default(), training);
    let address = common::serve(state).await;

    let answer = get(address, "/openapi.json").await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let document = answer.json();
    assert!(
        document["openapi"].as_str().unwrap().starts_with("3."),
        "{}",
        document["openapi"]
    );
    // It parses as an OpenAPI 3 document.
    let parsed: utoipa::openapi::OpenApi = serde_json::from_value(document.clone()).unwrap();
    assert_eq!(parsed.info.title, "quantcore-service");

    // Every registered route is documented, and nothing else is.
    let documented: BTreeSet<(String, String)> = document["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .filter(|k| ["get", "post", "put", "patch", "delete"].contains(&k.as_str()))
                .map(move |method| (method.to_uppercase(), path.clone()))
        })
        .collect();
    let registered: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(documented, registered);
    assert_eq!(registered.len(), ROUTES.len(), "no route registered twice");

    // Mutating endpoints require the bearer scheme; reads do not.
    for (method, path) in ROUTES {
        let operation = &document["paths"][path][method.to_lowercase()];
        let secured = operation["security"]
            .as_array()
            .is_some_and(|s| s.iter().any(|r| r.get("bearer").is_some()));
        assert_eq!(secured, *method == "POST", "{method} {path}");
        assert!(
            operation["responses"]
                .as_object()
                .is_some_and(|r| !r.is_empty()),
            "{method} {path} documents no response"
        );
    }
    assert_eq!(
        document["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );

    // Every reference resolves.
    let mut targets = Vec::new();
    refs(&document, &mut targets);
    assert!(!targets.is_empty());
    for target in targets {
        let name = target
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("unexpected $ref {target}"));
        assert!(
            document["components"]["schemas"].get(name).is_some(),
            "dangling $ref {target}"
        );
    }

    // The schemas name the fields the endpoints answer with.
    let filled = request(
        address,
        "POST",
        "/orders",
        Some(r#"{"symbol": "ACME", "side": "BUY", "quantity": 3}"#),
        None,
    )
    .await;
    assert_eq!(filled.status, 201, "{}", filled.body);
    let filled = filled.json();
    assert_eq!(keys(&filled), schema_keys(&document, "OrderFilled"));
    let id = filled["id"].as_str().unwrap();
    let order = get(address, &format!("/orders/{id}")).await.json();
    assert_eq!(keys(&order), schema_keys(&document, "Order"));
    let positions = get(address, "/positions").await.json();
    assert_eq!(keys(&positions[0]), schema_keys(&document, "Position"));
    let trades = get(address, "/trades").await.json();
    assert_eq!(keys(&trades[0]), schema_keys(&document, "Trade"));
    let history = get(address, "/portfolio/history").await.json();
    assert_eq!(
        keys(&history[0]),
        schema_keys(&document, "PortfolioSnapshot")
    );
    let portfolio = get(address, "/portfolio").await.json();
    assert_eq!(keys(&portfolio), schema_keys(&document, "Portfolio"));
    let bars = get(address, "/market-data/ACME?limit=1").await.json();
    assert_eq!(keys(&bars[0]), schema_keys(&document, "Bar"));

    store
        .insert_prediction(&Prediction {
            symbol: "ACME".into(),
            timestamp: 1,
            current_price: 10.0,
            predicted_price: 10.5,
            model: "sma-trend".into(),
        })
        .await
        .unwrap();
    store
        .insert_signal(&SignalMessage {
            symbol: "ACME".into(),
            timestamp: 1,
            action: SignalAction::Buy,
            confidence: 0.5,
            price: 10.0,
            predicted_price: 10.5,
            stop_loss: Some(9.5),
            take_profit: Some(11.0),
            expected_return: 0.05,
        })
        .await
        .unwrap();
    store
        .insert_anomaly(&AnomalyMessage {
            symbol: "ACME".into(),
            timestamp: 1,
            score: 0.7,
            is_anomaly: true,
        })
        .await
        .unwrap();
    for (path, stored, record) in [
        ("/predictions/ACME", "StoredPrediction", "Prediction"),
        ("/signals/ACME", "StoredSignal", "Signal"),
        ("/anomalies/ACME", "StoredAnomaly", "Anomaly"),
    ] {
        let answer = get(address, path).await.json();
        assert_eq!(keys(&answer[0]), schema_keys(&document, stored), "{path}");
        assert_eq!(
            keys(&answer[0]["record"]),
            schema_keys(&document, record),
            "{path}"
        );
    }
    let backtest = request(
        address,
        "POST",
        "/backtest",
        Some(r#"{"symbol": "ACME", "strategy": {"strategy": "momentum", "fast": 5, "slow": 20}}"#),
        None,
    )
    .await;
    assert_eq!(backtest.status, 200, "{}", backtest.body);
    assert_eq!(
        keys(&backtest.json()),
        schema_keys(&document, "BacktestResult")
    );
    let error = get(address, "/orders/nope").await.json();
    assert_eq!(keys(&error), schema_keys(&document, "Error"));
}
