//! Model training over loopback: `POST /models/{symbol}/train` on sample bars stored in
//! SQLite (a few epochs of a small network), the job and model listings, JSON errors for bad
//! parameters, and the ml role switching from the fallback forecast to the saved model,
//! whose predictions equal the core's `LstmPredictor` loaded from the same folder.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use crate::common::{get, request, sqlite_with_acme};
use quantcore::ml::lstm::LstmPredictor;
use quantcore_service::api::AppState;
use quantcore_service::bus::{self, Bus, MemoryBus};
use quantcore_service::messages::{Envelope, MarketDataMessage, topics};
use quantcore_service::roles::{self, MlSettings, Stats, TradeSettings};
use quantcore_service::train::TrainingSettings;
use serde_json::Value;

const PARAMS: &str = r#"{"epochs": 3, "hidden_size": 8, "window": 10, "batch_size": 32}"#;

async fn publish_bars(bus: &dyn Bus, bars: &[quantcore::Bar]) {
    for bar in bars {
        let message = Envelope::new(MarketDataMessage::from_bar("ACME", bar));
        bus::publish(bus, topics::MARKET_DATA, &message)
            .await
            .unwrap();
    }
}

async fn wait_until(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    while !done().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trained_model_is_listed_and_used_by_the_ml_role() {
    let (store, dir) = sqlite_with_acme(300).await;
    let model_dir = dir.path().join("models");
    let training = TrainingSettings {
        model_dir: model_dir.clone(),
        ml_window: 30,
    };
    let mut state = AppState::new(store.clone(), TradeSettings::default(), training);
    state.token = Some("s3cret".into());
    let address = common::serve(state).await;
    let acme: Vec<_> = quantcore::sample::daily().unwrap()["ACME"]
        .iter()
        .take(300)
        .collect();

    // The ml role runs before any model exists: the fallback forecast.
    let memory: Arc<dyn Bus> = Arc::new(MemoryBus::new(1));
    let stats = Arc::new(Stats::default());
    let ml = tokio::spawn(roles::ml_role(
        store.clone(),
        memory.clone(),
        MlSettings {
            model_dir: model_dir.clone(),
            anomaly_history: 0,
            ..MlSettings::default()
        },
        stats.clone(),
    ));
    publish_bars(memory.as_ref(), &acme[200..205]).await;
    wait_until("5 bars analysed", async || {
        Stats::get(&stats.bars_analysed) == 5
    })
    .await;
    let before = store.predictions("ACME", 100).await.unwrap();
    assert_eq!(before.len(), 5);
    assert!(before.iter().all(|p| p.record.model == "sma-trend"));

    assert_eq!(get(address, "/models").await.json(), Value::Array(vec![]));
    assert_eq!(get(address, "/models/ACME").await.status, 404);

    // Training needs the token.
    let answer = request(address, "POST", "/models/ACME/train", Some(PARAMS), None).await;
    assert_eq!(answer.status, 401, "{}", answer.body);
    let answer = request(
        address,
        "POST",
        "/models/ACME/train",
        Some(PARAMS),
        Some("s3cret"),
    )
    .await;
    assert_eq!(answer.status, 202, "{}", answer.body);
    let job = answer.json();
    assert_eq!(job["state"], "running");
    assert_eq!(job["symbol"], "ACME");
    assert_eq!(job["bars"], 300);
    assert_eq!(job["epochs"], 3);
    let job_path = format!("/training-jobs/{}", job["id"].as_str().unwrap());
    let mut finished = Value::Null;
    wait_until("the training job", async || {
        finished = get(address, &job_path).await.json();
        finished["state"] != "running"
    })
    .await;
    assert_eq!(finished["state"], "succeeded", "{finished}");
    assert_eq!(finished["epochs_done"], 3);

    let models = get(address, "/models").await.json();
    assert_eq!(models.as_array().unwrap().len(), 1);
    assert_eq!(models[0]["symbol"], "ACME");
    assert_eq!(models[0]["config"]["hidden_size"], 8);
    assert_eq!(models[0]["config"]["window"], 10);
    assert_eq!(
        models[0]["history"]["train_loss"].as_array().unwrap().len(),
        3
    );
    assert_eq!(get(address, "/models/ACME").await.json(), models[0]);
    assert_eq!(finished["model"], models[0]);

    // The ml role looks at the model file again after at most 2 s.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    publish_bars(memory.as_ref(), &acme[250..255]).await;
    wait_until("10 bars analysed", async || {
        Stats::get(&stats.bars_analysed) == 10
    })
    .await;
    ml.abort();
    let model = LstmPredictor::load(model_dir.join("ACME")).unwrap();
    let after = store.predictions("ACME", 100).await.unwrap();
    let lstm: Vec<_> = after.iter().filter(|p| p.record.model == "lstm").collect();
    assert_eq!(lstm.len(), 5, "{after:?}");
    for prediction in lstm {
        // The ml role's window: the 30 bars ending at the message's bar.
        let end = acme
            .iter()
            .position(|b| b.timestamp == prediction.record.timestamp)
            .unwrap();
        let series = quantcore::BarSeries::from_bars(&acme[end + 1 - 30..=end]).unwrap();
        let expected = model.predict(&series).unwrap();
        let predicted = prediction.record.predicted_price;
        assert!(
            (predicted - expected).abs() <= 1e-9 * expected,
            "{predicted} vs {expected}"
        );
    }
}

#[tokio::test]
async fn bad_training_requests_get_json_errors() {
    let (store, dir) = sqlite_with_acme(30).await;
    let training = TrainingSettings {
        model_dir: dir.path().join("models"),
        ml_window: 30,
    };
    let state = AppState::new(store, TradeSettings::default(), training);
    let address = common::serve(state).await;
    for (body, status, needle) in [
        (r#"{"epochs": 0}"#, 422, "epochs"),
        (r#"{"hidden_size": 0}"#, 422, "hidden_size"),
        (r#"{"learning_rate": -1}"#, 422, "learning_rate"),
        (
            r#"{"validation_fraction": 1.5}"#,
            422,
            "validation_fraction",
        ),
        (r#"{"window": 30}"#, 422, "`window` must be at most 29"),
        (r#"{"bars": 0}"#, 422, "`bars`"),
        (r#"{"epochz": 1}"#, 400, "unknown field"),
        (r#"{"epochs": "many"}"#, 400, "invalid JSON body"),
        ("not json", 400, "invalid JSON body"),
        // 30 bars stored: the default window of 29 needs 32.
        ("", 422, "30 bars stored, training needs at least 32"),
    ] {
        let answer = request(address, "POST", "/models/ACME/train", Some(body), None).await;
        assert_eq!(answer.status, status, "{body}: {}", answer.body);
        let error = answer.json()["error"].as_str().unwrap().to_owned();
        assert!(error.contains(needle), "{body}: {error}");
    }
    let answer = request(address, "POST", "/models/A%20B/train", Some("{}"), None).await;
    assert_eq!(answer.status, 400);
    let answer = request(address, "POST", "/models/NOPE/train", Some("{}"), None).await;
    assert_eq!(answer.status, 422, "{}", answer.body);
    assert_eq!(get(address, "/training-jobs/nope").await.status, 400);
    let unknown = format!("/training-jobs/{}", uuid::Uuid::nil());
    assert_eq!(get(address, &unknown).await.status, 404);
}
