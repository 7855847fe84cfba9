//! Store conformance suite: one set of scenarios, run against SQLite and PostgreSQL.
//!
//! Every scenario is an `async fn(Arc<dyn Store>)` in [`scenarios`] asserting fixed,
//! hand-computed expectations; the `conformance!` macro runs each one on both backends, so
//! passing on both proves both give the same answers. `postgres::backends_agree` also runs
//! one scripted session on both and compares everything they return.
//!
//! PostgreSQL is real: run the suite through `scripts/with-postgres.sh`, which starts a
//! throwaway server and exports `QUANTCORE_TEST_DATABASE_URL`:
//!
//! ```text
//! scripts/with-postgres.sh cargo test -p quantcore-service --locked
//! ```
//!
//! Without that variable the PostgreSQL tests fail, saying so, unless
//! `QUANTCORE_SKIP_POSTGRES=1` is set (then they print that they were skipped). Each
//! PostgreSQL test works in its own schema, so the tests run in parallel.

use crate::stores::postgres_store;
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use quantcore::data::Bar;
use quantcore_service::messages::{AnomalyMessage, SignalAction, SignalMessage};
use quantcore_service::store::{
    Analysis, FillBatch, FillEffects, FillOutcome, FillPlan, FillRequest, LockedState, OrderKind,
    OrderRequest, OrderStatus, PgStore, PositionState, Prediction, ProcessedKey, Side, SqliteStore,
    Store, StoreError,
};
use uuid::Uuid;

/// Relative tolerance between backends and against hand computations: PostgreSQL's float8
/// aggregates (Youngs–Cramer) and the Rust two-pass formulas differ in the last bits.
const TOLERANCE: f64 = 1e-9;

fn close(actual: f64, expected: f64) -> bool {
    (actual - expected).abs() <= TOLERANCE * expected.abs().max(1.0)
}

#[track_caller]
fn assert_close(actual: f64, expected: f64) {
    assert!(close(actual, expected), "{actual} != {expected}");
}

#[track_caller]
fn assert_close_opt(actual: Option<f64>, expected: f64) {
    let actual = actual.unwrap_or_else(|| panic!("expected {expected}, was None"));
    assert_close(actual, expected);
}

/// Day `n` of January 2024, midnight UTC.
fn day(n: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, n, 0, 0, 0).unwrap()
}

fn order(symbol: &str, side: Side, quantity: f64) -> OrderRequest {
    OrderRequest {
        id: Uuid::now_v7(),
        symbol: symbol.into(),
        side,
        kind: OrderKind::Market,
        quantity,
        limit_price: None,
        created_at: day(1),
    }
}

fn fill(order: OrderRequest, price: f64, commission: f64, at: DateTime<Utc>) -> FillRequest {
    FillRequest {
        order,
        price,
        commission,
        filled_at: at,
        processed: None,
    }
}

/// A plan that checks the locked state it is given and returns fixed effects.
fn expect_plan(expected: LockedState, effects: FillEffects) -> FillPlan {
    Box::new(move |locked: &LockedState| {
        assert_eq!(*locked, expected, "locked state handed to the plan");
        Ok(effects)
    })
}

/// A plan for a buy from flat at `price`: the test's own arithmetic, no core rule.
fn plain_buy(quantity: f64, price: f64, commission: f64) -> FillPlan {
    Box::new(move |locked: &LockedState| {
        let held = locked.position.quantity;
        let average = (held * locked.position.average_price + quantity * price) / (held + quantity);
        Ok(FillEffects {
            position: PositionState {
                quantity: held + quantity,
                average_price: average,
                realized_pnl: locked.position.realized_pnl,
            },
            cash_delta: -(quantity * price) - commission,
            realized_pnl: 0.0,
            exit_levels: None,
        })
    })
}

fn bar(timestamp: i64, close: f64) -> Bar {
    Bar {
        timestamp,
        open: close,
        high: close + 1.0,
        low: close - 1.0,
        close,
        volume: 1000.0,
    }
}

/// The scenarios: each takes a freshly migrated, empty store.
mod scenarios {
    use super::*;

    pub async fn bars_upsert_and_replace(store: Arc<dyn Store>) {
        let written = store
            .upsert_bars("ACME", &[bar(60, 10.0), bar(120, 11.0), bar(180, 12.0)])
            .await
            .unwrap();
        assert_eq!(written, 3);
        store.upsert_bars("GLOBEX", &[bar(60, 50.0)]).await.unwrap();
        // 180 is replaced, 240 is new.
        store
            .upsert_bars("ACME", &[bar(180, 12.5), bar(240, 13.0)])
            .await
            .unwrap();

        let bars = store.last_bars("ACME", 10).await.unwrap();
        let closes: Vec<f64> = bars.iter().map(|b| b.close).collect();
        let times: Vec<i64> = bars.iter().map(|b| b.timestamp).collect();
        assert_eq!(times, [60, 120, 180, 240], "oldest first, no duplicate");
        assert_eq!(closes, [10.0, 11.0, 12.5, 13.0]);
        assert_eq!(bars[2], bar(180, 12.5), "every field round-trips");

        let last_two = store.last_bars("ACME", 2).await.unwrap();
        assert_eq!(last_two, [bar(180, 12.5), bar(240, 13.0)]);
        // A window ending at a given bar (the ml role behind a fast replay).
        let until = store.bars_until("ACME", Some(180), 2).await.unwrap();
        assert_eq!(until, [bar(120, 11.0), bar(180, 12.5)]);
        let until = store.bars_until("ACME", Some(179), 5).await.unwrap();
        assert_eq!(until, [bar(60, 10.0), bar(120, 11.0)]);
        assert!(
            store
                .bars_until("ACME", Some(59), 5)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(store.bars_until("ACME", None, 2).await.unwrap(), last_two);
        assert_eq!(store.last_bars("GLOBEX", 10).await.unwrap().len(), 1);
        assert!(store.last_bars("NONE", 10).await.unwrap().is_empty());

        // An invalid bar in a batch: rejected with the core's error, nothing written.
        let mut bad = bar(300, 14.0);
        bad.high = 13.0;
        let error = store
            .upsert_bars("ACME", &[bar(299, 5.0), bad])
            .await
            .unwrap_err();
        assert!(
            matches!(error, StoreError::InvalidBar { ref symbol, .. } if symbol == "ACME"),
            "{error}"
        );
        assert!(error.to_string().contains("row 1"), "{error}");
        assert_eq!(store.last_bars("ACME", 10).await.unwrap().len(), 4);

        // A large batch crosses the chunk size (1000 rows per statement).
        let many: Vec<Bar> = (0..2500).map(|i| bar(1_000_000 + i * 60, 20.0)).collect();
        assert_eq!(store.upsert_bars("BULK", &many).await.unwrap(), 2500);
        let tail = store.last_bars("BULK", 30).await.unwrap();
        assert_eq!(tail.len(), 30);
        assert_eq!(tail[29].timestamp, 1_000_000 + 2499 * 60);
    }

    pub async fn ml_outputs_round_trip(store: Arc<dyn Store>) {
        let prediction = Prediction {
            symbol: "ACME".into(),
            timestamp: 1_704_067_200,
            current_price: 10.0,
            predicted_price: 10.4,
            model: "lstm-v1".into(),
        };
        let signal = SignalMessage {
            symbol: "ACME".into(),
            timestamp: 1_704_067_200,
            action: SignalAction::Buy,
            confidence: 0.75,
            price: 10.0,
            predicted_price: 10.4,
            stop_loss: Some(9.5),
            take_profit: None,
            expected_return: 0.04,
        };
        let anomaly = AnomalyMessage {
            symbol: "ACME".into(),
            timestamp: 1_704_067_200,
            score: 0.62,
            is_anomaly: false,
        };
        let first = store.insert_prediction(&prediction).await.unwrap();
        store.insert_signal(&signal).await.unwrap();
        store.insert_anomaly(&anomaly).await.unwrap();
        let key = ProcessedKey::new("ml", Uuid::now_v7());
        let analysis = Analysis {
            processed: Some(key.clone()),
            prediction: Some(Prediction {
                predicted_price: 10.6,
                ..prediction.clone()
            }),
            signal: Some(signal.clone()),
            anomaly: Some(anomaly.clone()),
        };
        let ids = store.record_analysis(&analysis).await.unwrap().unwrap();
        assert!(ids.prediction.unwrap() > first);
        assert!(ids.signal.is_some() && ids.anomaly.is_some());
        // The same message again: nothing written.
        assert_eq!(store.record_analysis(&analysis).await.unwrap(), None);

        let predictions = store.predictions("ACME", 10).await.unwrap();
        assert_eq!(predictions.len(), 2);
        assert_eq!(predictions[0].record, prediction);
        assert_eq!(predictions[1].record.predicted_price, 10.6);
        assert_eq!(predictions[1].id, ids.prediction.unwrap());
        let signals = store.signals("ACME", 10).await.unwrap();
        assert_eq!(signals.len(), 2);
        assert_eq!(signals[1].record, signal);
        let anomalies = store.anomalies("ACME", 1).await.unwrap();
        assert_eq!(anomalies.len(), 1, "limit keeps the newest");
        assert_eq!(anomalies[0].id, ids.anomaly.unwrap());
        assert_eq!(anomalies[0].record, anomaly);
        assert!(store.signals("GLOBEX", 10).await.unwrap().is_empty());
    }

    pub async fn batch_writes_are_one_transaction_with_per_item_idempotency(store: Arc<dyn Store>) {
        let analysis = |n: u32, key: &ProcessedKey| Analysis {
            processed: Some(key.clone()),
            prediction: Some(Prediction {
                symbol: "ACME".into(),
                timestamp: 1_704_067_200 + i64::from(n) * 60,
                current_price: 10.0,
                predicted_price: 10.0 + f64::from(n),
                model: "sma-trend".into(),
            }),
            signal: None,
            anomaly: Some(AnomalyMessage {
                symbol: "ACME".into(),
                timestamp: 1_704_067_200 + i64::from(n) * 60,
                score: 0.5,
                is_anomaly: false,
            }),
        };
        let keys: Vec<ProcessedKey> = (0..3)
            .map(|_| ProcessedKey::new("ml", Uuid::now_v7()))
            .collect();
        // Item 1 was processed before: the batch skips it and writes the others.
        store
            .record_analysis(&Analysis {
                prediction: None,
                anomaly: None,
                ..analysis(1, &keys[1])
            })
            .await
            .unwrap()
            .unwrap();
        let batch: Vec<Analysis> = (0..3).map(|n| analysis(n, &keys[n as usize])).collect();
        let answers = store.record_analyses(&batch).await.unwrap();
        assert_eq!(answers.len(), 3);
        assert!(answers[0].is_some() && answers[1].is_none() && answers[2].is_some());
        let predictions = store.predictions("ACME", 10).await.unwrap();
        let prices: Vec<f64> = predictions
            .iter()
            .map(|p| p.record.predicted_price)
            .collect();
        assert_eq!(
            prices,
            [10.0, 12.0],
            "in batch order, the duplicate left out"
        );
        assert_eq!(predictions[1].id, answers[2].unwrap().prediction.unwrap());
        assert_eq!(store.anomalies("ACME", 10).await.unwrap().len(), 2);
        // Again: every item is a duplicate, nothing written.
        assert_eq!(
            store.record_analyses(&batch).await.unwrap(),
            vec![None, None, None]
        );
        assert_eq!(store.predictions("ACME", 10).await.unwrap().len(), 2);
        // All or nothing: an invalid item rolls the whole batch back, markers included.
        let fresh = ProcessedKey::new("ml", Uuid::now_v7());
        let mut bad = analysis(9, &ProcessedKey::new("ml", Uuid::now_v7()));
        bad.prediction.as_mut().unwrap().predicted_price = f64::NAN;
        assert!(
            store
                .record_analyses(&[analysis(8, &fresh), bad])
                .await
                .is_err()
        );
        assert_eq!(store.predictions("ACME", 10).await.unwrap().len(), 2);
        assert!(store.mark_processed(&fresh).await.unwrap(), "rolled back");

        // Markers in one transaction: repeats (before or within the batch) are `false`.
        let marked = ProcessedKey::new("trade", Uuid::now_v7());
        store.mark_processed(&marked).await.unwrap();
        let new = ProcessedKey::new("trade", Uuid::now_v7());
        assert_eq!(
            store
                .mark_processed_batch(&[new.clone(), marked.clone(), new.clone()])
                .await
                .unwrap(),
            vec![true, false, false]
        );
        assert!(!store.mark_processed(&new).await.unwrap());
        assert!(store.mark_processed_batch(&[]).await.unwrap().is_empty());
    }

    /// Batches larger than one multi-row statement (1,000 rows), with items that have only
    /// some of the outputs and repeats mixed in: every item's ids point at its own rows, in
    /// batch order, and the markers answer per key.
    pub async fn large_batches_span_several_statements(store: Arc<dyn Store>) {
        const N: usize = 2_500;
        let keys: Vec<ProcessedKey> = (0..N)
            .map(|_| ProcessedKey::new("ml", Uuid::now_v7()))
            .collect();
        let at = |n: usize| 1_704_067_200 + n as i64 * 60;
        let analysis = |n: usize| Analysis {
            processed: Some(keys[n].clone()),
            // Every item but each 7th has a prediction; each 3rd a signal; odd ones a score.
            prediction: (!n.is_multiple_of(7)).then(|| Prediction {
                symbol: "ACME".into(),
                timestamp: at(n),
                current_price: 10.0,
                predicted_price: n as f64,
                model: "sma-trend".into(),
            }),
            signal: n.is_multiple_of(3).then(|| SignalMessage {
                symbol: "ACME".into(),
                timestamp: at(n),
                action: SignalAction::Buy,
                confidence: 0.5,
                price: 10.0,
                predicted_price: n as f64,
                stop_loss: Some(9.0),
                take_profit: None,
                expected_return: 0.01,
            }),
            anomaly: (n % 2 == 1).then(|| AnomalyMessage {
                symbol: "ACME".into(),
                timestamp: at(n),
                score: n as f64 / N as f64,
                is_anomaly: n % 10 == 1,
            }),
        };
        // Items 0..100 were processed before: left out of the batch's writes.
        assert!(
            store
                .mark_processed_batch(&keys[..100])
                .await
                .unwrap()
                .iter()
                .all(|fresh| *fresh)
        );
        let batch: Vec<Analysis> = (0..N).map(analysis).collect();
        let answers = store.record_analyses(&batch).await.unwrap();
        assert_eq!(answers.len(), N);
        let predictions = store.predictions("ACME", N).await.unwrap();
        let signals = store.signals("ACME", N).await.unwrap();
        let anomalies = store.anomalies("ACME", N).await.unwrap();
        let by_id =
            |ids: Vec<(i64, usize)>| ids.into_iter().collect::<std::collections::HashMap<_, _>>();
        let prediction_of = by_id(
            predictions
                .iter()
                .map(|p| (p.id, (p.record.timestamp - at(0)) as usize / 60))
                .collect(),
        );
        let signal_of = by_id(
            signals
                .iter()
                .map(|s| (s.id, (s.record.timestamp - at(0)) as usize / 60))
                .collect(),
        );
        let anomaly_of = by_id(
            anomalies
                .iter()
                .map(|a| (a.id, (a.record.timestamp - at(0)) as usize / 60))
                .collect(),
        );
        for (n, answer) in answers.iter().enumerate() {
            if n < 100 {
                assert_eq!(*answer, None, "item {n} was processed before");
                continue;
            }
            let ids = answer.unwrap_or_else(|| panic!("item {n} is new"));
            let item = &batch[n];
            assert_eq!(
                ids.prediction.is_some(),
                item.prediction.is_some(),
                "item {n}"
            );
            assert_eq!(ids.signal.is_some(), item.signal.is_some(), "item {n}");
            assert_eq!(ids.anomaly.is_some(), item.anomaly.is_some(), "item {n}");
            if let Some(id) = ids.prediction {
                assert_eq!(prediction_of[&id], n, "prediction id of item {n}");
            }
            if let Some(id) = ids.signal {
                assert_eq!(signal_of[&id], n, "signal id of item {n}");
            }
            if let Some(id) = ids.anomaly {
                assert_eq!(anomaly_of[&id], n, "anomaly id of item {n}");
            }
        }
        let new = |every: fn(usize) -> bool| (100..N).filter(|n| every(*n)).count();
        assert_eq!(predictions.len(), new(|n| !n.is_multiple_of(7)));
        assert_eq!(signals.len(), new(|n| n.is_multiple_of(3)));
        assert_eq!(anomalies.len(), new(|n| n % 2 == 1));
        // Rows read back in batch order, with their own values.
        assert!(
            predictions
                .windows(2)
                .all(|w| w[0].record.timestamp < w[1].record.timestamp)
        );
        for p in &predictions {
            assert_eq!(
                p.record.predicted_price,
                ((p.record.timestamp - at(0)) / 60) as f64
            );
        }
        // The whole batch again: all duplicates, nothing written.
        assert!(
            store
                .record_analyses(&batch)
                .await
                .unwrap()
                .iter()
                .all(Option::is_none)
        );
        assert_eq!(
            store.predictions("ACME", N).await.unwrap().len(),
            predictions.len()
        );
        // Markers across chunks: the first half new, a repeat inside the batch `false`.
        let more: Vec<ProcessedKey> = (0..1_500)
            .map(|_| ProcessedKey::new("trade", Uuid::now_v7()))
            .collect();
        let mut marks: Vec<ProcessedKey> = more.clone();
        marks.extend(keys[..1_200].iter().cloned());
        marks.push(more[1_499].clone());
        let fresh = store.mark_processed_batch(&marks).await.unwrap();
        assert_eq!(fresh.len(), marks.len());
        assert!(fresh[..1_500].iter().all(|f| *f));
        assert!(
            fresh[1_500..].iter().all(|f| !*f),
            "ml keys are marked, the repeat too"
        );
    }

    pub async fn fills_update_position_cash_and_trades(store: Arc<dyn Store>) {
        assert!(matches!(store.cash().await, Err(StoreError::NoAccount)));
        assert_eq!(
            store.ensure_account(10_000.0, day(1)).await.unwrap(),
            10_000.0
        );
        assert_eq!(
            store.ensure_account(99.0, day(1)).await.unwrap(),
            10_000.0,
            "an existing account is kept"
        );

        // Buy 10 @ 100, commission 1.
        let buy = order("ACME", Side::Buy, 10.0);
        let buy_id = buy.id;
        let outcome = store
            .execute_fill(
                &fill(buy, 100.0, 1.0, day(2)),
                expect_plan(
                    LockedState {
                        cash: 10_000.0,
                        position: PositionState::default(),
                    },
                    FillEffects {
                        position: PositionState {
                            quantity: 10.0,
                            average_price: 100.0,
                            realized_pnl: 0.0,
                        },
                        cash_delta: -1001.0,
                        realized_pnl: 0.0,
                        exit_levels: None,
                    },
                ),
            )
            .await
            .unwrap();
        let FillOutcome::Filled(receipt) = outcome else {
            panic!("expected a fill, was {outcome:?}");
        };
        assert_eq!(receipt.order_id, buy_id);
        assert_eq!(receipt.cash_after, 8999.0);

        // Buy 5 @ 110: average (1000 + 550) / 15.
        let average = 1550.0 / 15.0;
        store
            .execute_fill(
                &fill(order("ACME", Side::Buy, 5.0), 110.0, 0.0, day(3)),
                expect_plan(
                    LockedState {
                        cash: 8999.0,
                        position: PositionState {
                            quantity: 10.0,
                            average_price: 100.0,
                            realized_pnl: 0.0,
                        },
                    },
                    FillEffects {
                        position: PositionState {
                            quantity: 15.0,
                            average_price: average,
                            realized_pnl: 0.0,
                        },
                        cash_delta: -550.0,
                        realized_pnl: 0.0,
                        exit_levels: None,
                    },
                ),
            )
            .await
            .unwrap();

        // Sell 8 @ 120: realized 8 * (120 - average).
        let realized = 8.0 * (120.0 - average);
        let sell = order("ACME", Side::Sell, 8.0);
        let sell_id = sell.id;
        store
            .execute_fill(
                &fill(sell, 120.0, 0.0, day(4)),
                expect_plan(
                    LockedState {
                        cash: 8449.0,
                        position: PositionState {
                            quantity: 15.0,
                            average_price: average,
                            realized_pnl: 0.0,
                        },
                    },
                    FillEffects {
                        position: PositionState {
                            quantity: 7.0,
                            average_price: average,
                            realized_pnl: realized,
                        },
                        cash_delta: 960.0,
                        realized_pnl: realized,
                        exit_levels: None,
                    },
                ),
            )
            .await
            .unwrap();

        assert_eq!(store.cash().await.unwrap(), 9409.0);
        let position = store.position("ACME").await.unwrap().unwrap();
        assert_eq!(position.quantity, 7.0);
        assert_eq!(position.average_price, average);
        assert_eq!(position.realized_pnl, realized);
        assert_eq!(
            position.current_price,
            Some(120.0),
            "marked at the fill price"
        );
        assert_eq!(position.updated_at, day(4));
        assert_eq!(store.positions().await.unwrap().len(), 1);
        assert_eq!(store.position("GLOBEX").await.unwrap(), None);

        let bought = store.order(buy_id).await.unwrap().unwrap();
        assert_eq!(bought.status, OrderStatus::Filled);
        assert_eq!(bought.side, Side::Buy);
        assert_eq!(bought.kind, OrderKind::Market);
        assert_eq!(bought.filled_price, Some(100.0));
        assert_eq!(bought.commission, Some(1.0));
        assert_eq!(bought.filled_at, Some(day(2)));
        assert_eq!(bought.created_at, day(1));
        assert_eq!(bought.reject_reason, None);
        assert_eq!(store.order(Uuid::now_v7()).await.unwrap(), None);

        let trades = store.trades(10).await.unwrap();
        assert_eq!(trades.len(), 3);
        assert_eq!(trades[0].order_id, buy_id);
        assert_eq!(trades[2].order_id, sell_id);
        assert_eq!(trades[2].side, Side::Sell);
        assert_eq!(trades[2].quantity, 8.0);
        assert_eq!(trades[2].realized_pnl, realized);
        assert_eq!(trades[0].commission, 1.0);
        assert_eq!(trades[1].executed_at, day(3));
        assert_eq!(store.trades(1).await.unwrap()[0].order_id, sell_id);

        // Mark to market at 125: unrealized 7 * (125 - average).
        assert!(store.mark_position("ACME", 125.0, day(5)).await.unwrap());
        assert!(!store.mark_position("NONE", 1.0, day(5)).await.unwrap());
        let pnl = store.position_pnl("ACME").await.unwrap().unwrap();
        assert_close(pnl.realized, realized);
        assert_close(pnl.unrealized, 7.0 * (125.0 - average));
        assert_close(pnl.total, realized + 7.0 * (125.0 - average));
        assert_eq!(store.position_pnl("NONE").await.unwrap(), None);

        // Snapshots: the account's first, then one per position change (the trigger).
        let history = store.portfolio_history(day(1), day(31)).await.unwrap();
        let totals: Vec<f64> = history.iter().map(|s| s.total_value).collect();
        let expected = [10_000.0, 9999.0, 10_099.0, 10_249.0, 10_284.0];
        assert_eq!(totals.len(), expected.len(), "{totals:?}");
        for (total, expected) in totals.iter().zip(expected) {
            assert_close(*total, expected);
        }
        assert_eq!(history[4].cash, 9409.0);
        assert_close(history[4].positions_value, 875.0);
        let times: Vec<_> = history.iter().map(|s| s.timestamp).collect();
        assert_eq!(times, [day(1), day(2), day(3), day(4), day(5)]);
        assert_eq!(
            store.portfolio_history(day(3), day(4)).await.unwrap().len(),
            2,
            "the range is inclusive"
        );
    }

    pub async fn short_funds_are_refused_and_cash_never_goes_negative(store: Arc<dyn Store>) {
        store.ensure_account(1000.0, day(1)).await.unwrap();

        // 20 @ 100 needs 2000: refused by the funds check.
        let big = order("ACME", Side::Buy, 20.0);
        let big_id = big.id;
        let error = store
            .execute_fill(&fill(big, 100.0, 0.0, day(2)), plain_buy(20.0, 100.0, 0.0))
            .await
            .unwrap_err();
        match error {
            StoreError::InsufficientFunds {
                order_id,
                required,
                available,
            } => {
                assert_eq!(order_id, big_id);
                assert_eq!(required, 2000.0);
                assert_eq!(available, 1000.0);
            }
            other => panic!("expected InsufficientFunds, was {other}"),
        }
        let rejected = store.order(big_id).await.unwrap().unwrap();
        assert_eq!(rejected.status, OrderStatus::Rejected);
        assert!(
            rejected
                .reject_reason
                .as_deref()
                .unwrap()
                .contains("insufficient funds"),
            "{rejected:?}"
        );

        // 10 @ 100 passes the check (1000 >= 1000) but the commission would overdraw.
        let error = store
            .execute_fill(
                &fill(order("ACME", Side::Buy, 10.0), 100.0, 5.0, day(2)),
                plain_buy(10.0, 100.0, 5.0),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(error, StoreError::InsufficientFunds { required, available, .. }
                if required == 1005.0 && available == 1000.0),
            "{error}"
        );

        // Selling what is not held.
        let error = store
            .execute_fill(
                &fill(order("ACME", Side::Sell, 1.0), 100.0, 0.0, day(2)),
                plain_buy(1.0, 100.0, 0.0),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(error, StoreError::InsufficientPosition { ref symbol, requested, held, .. }
                if symbol == "ACME" && requested == 1.0 && held == 0.0),
            "{error}"
        );

        // Nothing but the rejected orders changed.
        assert_eq!(store.cash().await.unwrap(), 1000.0);
        assert!(store.trades(10).await.unwrap().is_empty());
        assert!(store.positions().await.unwrap().is_empty());
        assert_eq!(
            store
                .portfolio_history(day(1), day(31))
                .await
                .unwrap()
                .len(),
            1
        );

        // 24 concurrent buys of 1 @ 100 against 1000 of cash: exactly 10 fill.
        let tasks: Vec<_> = (0..24)
            .map(|i| {
                let store = store.clone();
                let symbol = if i % 2 == 0 { "ACME" } else { "GLOBEX" };
                tokio::spawn(async move {
                    store
                        .execute_fill(
                            &fill(order(symbol, Side::Buy, 1.0), 100.0, 0.0, day(3)),
                            plain_buy(1.0, 100.0, 0.0),
                        )
                        .await
                })
            })
            .collect();
        let mut filled = 0;
        let mut refused = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(FillOutcome::Filled(receipt)) => {
                    assert!(receipt.cash_after >= 0.0);
                    filled += 1;
                }
                Err(StoreError::InsufficientFunds { .. }) => refused += 1,
                other => panic!("unexpected outcome {other:?}"),
            }
        }
        assert_eq!((filled, refused), (10, 14));
        assert_eq!(store.cash().await.unwrap(), 0.0);
        let held: f64 = store
            .positions()
            .await
            .unwrap()
            .iter()
            .map(|p| p.quantity)
            .sum();
        assert_eq!(held, 10.0);
        assert_eq!(store.trades(100).await.unwrap().len(), 10);
    }

    pub async fn processing_is_idempotent(store: Arc<dyn Store>) {
        store.ensure_account(10_000.0, day(1)).await.unwrap();
        let id = Uuid::now_v7();
        let key = ProcessedKey::new("trade", id);
        assert!(store.mark_processed(&key).await.unwrap());
        assert!(!store.mark_processed(&key).await.unwrap());
        assert!(
            store
                .mark_processed(&ProcessedKey::new("ml", id))
                .await
                .unwrap(),
            "another consumer handles the same message on its own"
        );

        // A redelivered signal never creates a second order.
        let signal_key = ProcessedKey::new("trade", Uuid::now_v7());
        let first = order("ACME", Side::Buy, 10.0);
        let mut request = fill(first, 100.0, 0.0, day(2));
        request.processed = Some(signal_key.clone());
        let outcome = store
            .execute_fill(&request, plain_buy(10.0, 100.0, 0.0))
            .await
            .unwrap();
        assert!(matches!(outcome, FillOutcome::Filled(_)));
        let mut again = fill(order("ACME", Side::Buy, 10.0), 100.0, 0.0, day(2));
        again.processed = Some(signal_key.clone());
        let outcome = store
            .execute_fill(&again, plain_buy(10.0, 100.0, 0.0))
            .await
            .unwrap();
        assert_eq!(outcome, FillOutcome::Duplicate);
        assert_eq!(store.order(again.order.id).await.unwrap(), None);
        assert_eq!(store.trades(10).await.unwrap().len(), 1);
        assert_eq!(store.cash().await.unwrap(), 9000.0);

        // A refused fill is marked too: its redelivery is a duplicate, not a retry.
        let refused_key = ProcessedKey::new("trade", Uuid::now_v7());
        let mut big = fill(order("ACME", Side::Buy, 1000.0), 100.0, 0.0, day(3));
        big.processed = Some(refused_key.clone());
        assert!(matches!(
            store
                .execute_fill(&big, plain_buy(1000.0, 100.0, 0.0))
                .await,
            Err(StoreError::InsufficientFunds { .. })
        ));
        big.order.id = Uuid::now_v7();
        assert_eq!(
            store
                .execute_fill(&big, plain_buy(1000.0, 100.0, 0.0))
                .await
                .unwrap(),
            FillOutcome::Duplicate
        );

        // A fill whose plan fails rolls back its marker: the message can be retried.
        let retry_key = ProcessedKey::new("trade", Uuid::now_v7());
        let mut failing = fill(order("ACME", Side::Buy, 1.0), 100.0, 0.0, day(3));
        failing.processed = Some(retry_key.clone());
        let error = store
            .execute_fill(
                &failing,
                Box::new(|_: &LockedState| Err("risk limit".into())),
            )
            .await
            .unwrap_err();
        assert!(matches!(error, StoreError::PlanRejected { .. }), "{error}");
        assert_eq!(error.to_string().split(": ").last(), Some("risk limit"));
        assert_eq!(store.order(failing.order.id).await.unwrap(), None);
        assert!(store.mark_processed(&retry_key).await.unwrap());
    }

    pub async fn invalid_orders_are_refused_by_validate_order(store: Arc<dyn Store>) {
        store.ensure_account(10_000.0, day(1)).await.unwrap();
        let key = ProcessedKey::new("trade", Uuid::now_v7());
        let mut zero = fill(order("ACME", Side::Buy, 0.0), 100.0, 0.0, day(2));
        zero.processed = Some(key.clone());
        let error = store
            .execute_fill(&zero, plain_buy(0.0, 100.0, 0.0))
            .await
            .unwrap_err();
        match &error {
            StoreError::InvalidOrder { order_id, reason } => {
                assert_eq!(*order_id, zero.order.id);
                assert_eq!(reason, "quantity must be positive");
            }
            other => panic!("expected InvalidOrder, was {other}"),
        }
        let negative = fill(order("ACME", Side::Sell, -3.0), 100.0, 0.0, day(2));
        assert!(matches!(
            store
                .execute_fill(&negative, plain_buy(-3.0, 100.0, 0.0))
                .await,
            Err(StoreError::InvalidOrder { .. })
        ));
        let mut limit = order("ACME", Side::Buy, 1.0);
        limit.kind = OrderKind::Limit;
        let error = store
            .execute_fill(
                &fill(limit.clone(), 100.0, 0.0, day(2)),
                plain_buy(1.0, 100.0, 0.0),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(&error, StoreError::InvalidOrder { reason, .. }
                if reason == "a limit order needs a positive limit price"),
            "{error}"
        );
        // With its price the same limit order is fine.
        limit.limit_price = Some(101.0);
        let limit_id = limit.id;
        store
            .execute_fill(&fill(limit, 100.0, 0.0, day(2)), plain_buy(1.0, 100.0, 0.0))
            .await
            .unwrap();
        let stored = store.order(limit_id).await.unwrap().unwrap();
        assert_eq!(stored.kind, OrderKind::Limit);
        assert_eq!(stored.limit_price, Some(101.0));

        // Nothing of the refused orders was kept, and the marker was rolled back.
        assert_eq!(store.order(zero.order.id).await.unwrap(), None);
        assert!(store.mark_processed(&key).await.unwrap());
        assert_eq!(store.cash().await.unwrap(), 9900.0);

        // Non-finite numbers never reach SQL; a reused order id is reported as such.
        let nan = fill(order("ACME", Side::Buy, f64::NAN), 100.0, 0.0, day(2));
        assert!(matches!(
            store.execute_fill(&nan, plain_buy(1.0, 100.0, 0.0)).await,
            Err(StoreError::InvalidValue {
                field: "quantity",
                ..
            })
        ));
        let reused = fill(
            OrderRequest {
                id: limit_id,
                ..order("ACME", Side::Buy, 1.0)
            },
            100.0,
            0.0,
            day(2),
        );
        assert!(matches!(
            store.execute_fill(&reused, plain_buy(1.0, 100.0, 0.0)).await,
            Err(StoreError::DuplicateOrder { order_id }) if order_id == limit_id
        ));
    }

    pub async fn portfolio_stats_match_a_hand_computation(store: Arc<dyn Store>) {
        let empty = store.portfolio_stats(day(1), day(31), 252.0).await.unwrap();
        assert_eq!(empty.snapshots, 0);
        assert_eq!(empty.total_return, None);

        // Values 100000 (account), 100000 (buy 100 @ 100), 101000, 99500, 100500 (marks).
        store.ensure_account(100_000.0, day(1)).await.unwrap();
        store
            .execute_fill(
                &fill(order("ACME", Side::Buy, 100.0), 100.0, 0.0, day(2)),
                plain_buy(100.0, 100.0, 0.0),
            )
            .await
            .unwrap();
        for (n, price) in [(3, 110.0), (4, 95.0), (5, 105.0)] {
            store.mark_position("ACME", price, day(n)).await.unwrap();
        }

        // Expected numbers from Python's statistics module (stdev is ddof=1):
        // r = [0, 0.01, 99500/101000-1, 100500/99500-1].
        let stats = store.portfolio_stats(day(1), day(5), 252.0).await.unwrap();
        assert_eq!(stats.snapshots, 5);
        assert_eq!(stats.start_value, Some(100_000.0));
        assert_eq!(stats.end_value, Some(100_500.0));
        assert_close_opt(stats.total_return, 0.005);
        assert_close_opt(stats.volatility, 0.186_667_241_395_727_6);
        assert_close_opt(stats.sharpe_ratio, 1.754_578_159_190_559_4);
        assert_close_opt(stats.max_drawdown, -0.014_851_485_148_514_865);

        // A sub-range and another annualization: values 101000, 99500, 100500.
        let stats = store.portfolio_stats(day(3), day(5), 12.0).await.unwrap();
        assert_eq!(stats.snapshots, 3);
        assert_close_opt(stats.total_return, -0.004_950_495_049_504_955);
        assert_close_opt(stats.volatility, 0.060_996_547_901_039_02);
        assert_close_opt(stats.sharpe_ratio, -0.472_279_241_116_033_3);
        assert_close_opt(stats.max_drawdown, -0.014_851_485_148_514_865);

        // Two snapshots: a return but no sample deviation.
        let stats = store.portfolio_stats(day(4), day(5), 252.0).await.unwrap();
        assert_eq!(stats.snapshots, 2);
        assert_close_opt(stats.total_return, 100_500.0 / 99_500.0 - 1.0);
        assert_eq!(stats.volatility, None);
        assert_eq!(stats.sharpe_ratio, None);
        assert_eq!(stats.max_drawdown, Some(0.0));
        assert!(matches!(
            store.portfolio_stats(day(1), day(5), 0.0).await,
            Err(StoreError::InvalidValue { .. })
        ));
    }
}

/// Declares one test per scenario and backend.
macro_rules! conformance {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    let (store, _dir) = super::sqlite_store().await;
                    super::scenarios::$scenario(store).await;
                }
            )*
        }

        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    let Some(store) = super::postgres_store().await else { return };
                    super::scenarios::$scenario(store.clone()).await;
                    super::drop_schema(&store).await;
                }
            )*

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn backends_agree() {
                let Some(pg) = super::postgres_store().await else { return };
                let (sqlite, _dir) = super::sqlite_store().await;
                let pg_dyn: std::sync::Arc<dyn quantcore_service::store::Store> = pg.clone();
                super::compare_backends(pg_dyn, sqlite).await;
                super::drop_schema(&pg).await;
            }
        }
    };
}

conformance!(
    bars_upsert_and_replace,
    ml_outputs_round_trip,
    batch_writes_are_one_transaction_with_per_item_idempotency,
    large_batches_span_several_statements,
    fills_update_position_cash_and_trades,
    short_funds_are_refused_and_cash_never_goes_negative,
    processing_is_idempotent,
    invalid_orders_are_refused_by_validate_order,
    portfolio_stats_match_a_hand_computation,
);

/// The scripted session of `backends_agree` (fills, refusals of funds and position, marks
/// between), in fill batches and one transaction per fill: the books, orders, trades and
/// snapshots are the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_fill_batches_agree_with_one_transaction_per_fill() {
    let (one_by_one, _a) = sqlite_store().await;
    let (batched, _b) = sqlite_store().await;
    compare_sessions((one_by_one, false), (batched, true)).await;
}

/// A refusal of funds inside a fill batch keeps its `REJECTED` order and the batch goes on;
/// a refused plan poisons it, and rolling back undoes every fill of it. Reads outside the
/// batch do not see it before it commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_fill_batch_refusals_poisoning_and_roll_back() {
    let (store, _dir) = sqlite_store().await;
    store.ensure_account(1_000.0, day(1)).await.unwrap();
    let mut batch = store
        .begin_fill_batch()
        .await
        .unwrap()
        .expect("a fill batch");
    let first = order("ACME", Side::Buy, 5.0);
    let first_id = first.id;
    let outcome = batch
        .execute_fill(&fill(first, 100.0, 0.0, day(2)), plain_buy(5.0, 100.0, 0.0))
        .await
        .unwrap();
    assert!(matches!(outcome, FillOutcome::Filled(ref r) if r.cash_after == 500.0));
    // 10 @ 100 needs 1,000 and 500 are left: refused, the batch goes on.
    let big = order("ACME", Side::Buy, 10.0);
    let big_id = big.id;
    let refused = batch
        .execute_fill(&fill(big, 100.0, 0.0, day(2)), plain_buy(10.0, 100.0, 0.0))
        .await;
    assert!(
        matches!(refused, Err(StoreError::InsufficientFunds { available, .. }) if available == 500.0),
        "{refused:?}"
    );
    assert!(!batch.is_poisoned());
    // The batch holds the write lock and its fills are not committed: a plain read sees
    // the cash before it.
    assert_eq!(store.cash().await.unwrap(), 1_000.0);
    batch.commit().await.unwrap();
    assert_eq!(store.cash().await.unwrap(), 500.0);
    assert_eq!(
        store.order(big_id).await.unwrap().unwrap().status,
        OrderStatus::Rejected
    );
    assert_eq!(
        store.order(first_id).await.unwrap().unwrap().status,
        OrderStatus::Filled
    );

    // A fill, then a plan that refuses: the batch is poisoned and rolled back whole.
    let mut batch = store
        .begin_fill_batch()
        .await
        .unwrap()
        .expect("a fill batch");
    let kept = order("ACME", Side::Buy, 1.0);
    let kept_id = kept.id;
    batch
        .execute_fill(&fill(kept, 100.0, 0.0, day(3)), plain_buy(1.0, 100.0, 0.0))
        .await
        .unwrap();
    let refusing: FillPlan = Box::new(|_: &LockedState| Err("the plan says no".into()));
    let error = batch
        .execute_fill(
            &fill(order("ACME", Side::Buy, 1.0), 100.0, 0.0, day(3)),
            refusing,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(error, StoreError::PlanRejected { .. }),
        "{error:?}"
    );
    assert!(batch.is_poisoned());
    let after = batch
        .execute_fill(
            &fill(order("ACME", Side::Buy, 1.0), 100.0, 0.0, day(3)),
            plain_buy(1.0, 100.0, 0.0),
        )
        .await;
    assert!(matches!(after, Err(StoreError::BatchPoisoned)), "{after:?}");
    assert!(matches!(
        batch.commit().await,
        Err(StoreError::BatchPoisoned)
    ));
    // Dropped uncommitted (the commit refused): nothing of it stays.
    assert_eq!(store.cash().await.unwrap(), 500.0);
    assert_eq!(store.order(kept_id).await.unwrap(), None);
    assert_eq!(store.position("ACME").await.unwrap().unwrap().quantity, 5.0);
    // The write lock is free again.
    let again = order("ACME", Side::Buy, 1.0);
    store
        .execute_fill(&fill(again, 100.0, 0.0, day(4)), plain_buy(1.0, 100.0, 0.0))
        .await
        .unwrap();
    assert_eq!(store.cash().await.unwrap(), 400.0);
}

async fn sqlite_store() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("test.db").display());
    let store = SqliteStore::connect(&url, 4).await.unwrap();
    store.migrate().await.unwrap();
    (Arc::new(store), dir)
}

/// Drops the test's schema (best effort: the throwaway cluster goes anyway).
async fn drop_schema(store: &PgStore) {
    let schema: String = sqlx::query_scalar("SELECT current_schema()")
        .fetch_one(store.pool())
        .await
        .unwrap();
    if schema.starts_with("t_") {
        let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
            .execute(store.pool())
            .await;
    }
}

/// Runs one scripted session on both stores and compares everything they return.
async fn compare_backends(first: Arc<dyn Store>, second: Arc<dyn Store>) {
    compare_sessions((first, false), (second, false)).await;
}

/// Runs one scripted session on both stores, each with its fills in fill batches
/// ([`Store::begin_fill_batch`], committed before each mark) or one transaction each, and
/// compares everything they return.
async fn compare_sessions(first: (Arc<dyn Store>, bool), second: (Arc<dyn Store>, bool)) {
    async fn session(store: &Arc<dyn Store>, batched: bool) -> Vec<Result<FillOutcome, String>> {
        store.ensure_account(50_000.0, day(1)).await.unwrap();
        let mut open: Option<Box<dyn FillBatch>> = None;
        let mut outcomes = Vec::new();
        // A deterministic mix of buys, sells, refusals and marks over three symbols.
        let symbols = ["ACME", "GLOBEX", "INITECH"];
        for step in 0..30_u32 {
            let symbol = symbols[step as usize % 3];
            let price = 50.0 + f64::from((step * 37) % 23) * 1.25;
            let at = day(2) + chrono::Duration::hours(i64::from(step));
            let side = if step % 4 == 3 { Side::Sell } else { Side::Buy };
            let quantity = f64::from(1 + (step * 13) % 40);
            let mut request = fill(order(symbol, side, quantity), price, 0.5, at);
            request.order.id = Uuid::from_u128(u128::from(step) + 1);
            let plan: FillPlan = Box::new(move |locked: &LockedState| {
                let p = locked.position;
                Ok(match side {
                    Side::Buy => FillEffects {
                        position: PositionState {
                            quantity: p.quantity + quantity,
                            average_price: (p.quantity * p.average_price + quantity * price)
                                / (p.quantity + quantity),
                            realized_pnl: p.realized_pnl,
                        },
                        cash_delta: -(quantity * price) - 0.5,
                        realized_pnl: 0.0,
                        exit_levels: None,
                    },
                    Side::Sell => {
                        let realized = quantity * (price - p.average_price);
                        FillEffects {
                            position: PositionState {
                                quantity: p.quantity - quantity,
                                average_price: p.average_price,
                                realized_pnl: p.realized_pnl + realized,
                            },
                            cash_delta: quantity * price - 0.5,
                            realized_pnl: realized,
                            exit_levels: None,
                        }
                    }
                })
            });
            if batched && open.is_none() {
                open = Some(
                    store
                        .begin_fill_batch()
                        .await
                        .unwrap()
                        .expect("a fill batch"),
                );
            }
            let outcome = match &mut open {
                Some(batch) => batch.execute_fill(&request, plan).await,
                None => store.execute_fill(&request, plan).await,
            };
            outcomes.push(outcome.map_err(|error| error.to_string()));
            if step % 5 == 4 {
                if let Some(batch) = open.take() {
                    batch.commit().await.unwrap();
                }
                store
                    .mark_position(symbol, price * 1.01, at + chrono::Duration::minutes(30))
                    .await
                    .unwrap();
            }
        }
        if let Some(batch) = open.take() {
            batch.commit().await.unwrap();
        }
        outcomes
    }

    let outcomes = [
        session(&first.0, first.1).await,
        session(&second.0, second.1).await,
    ];
    let (first, second) = (first.0, second.0);
    assert_eq!(
        outcomes[0], outcomes[1],
        "fill outcomes and refusal messages"
    );
    let refusals = outcomes[0].iter().filter(|o| o.is_err()).count();
    assert!(
        refusals > 0 && refusals < 30,
        "the session exercises fills and refusals, had {refusals} refusals"
    );

    assert_eq!(first.cash().await.unwrap(), second.cash().await.unwrap());
    assert_eq!(
        first.positions().await.unwrap(),
        second.positions().await.unwrap()
    );
    let strip_ids = |trades: Vec<quantcore_service::store::TradeRow>| {
        trades
            .into_iter()
            .map(|t| {
                (
                    t.order_id,
                    t.side,
                    t.quantity,
                    t.price,
                    t.realized_pnl,
                    t.executed_at,
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        strip_ids(first.trades(100).await.unwrap()),
        strip_ids(second.trades(100).await.unwrap())
    );
    for step in 0..30_u128 {
        let id = Uuid::from_u128(step + 1);
        assert_eq!(
            first.order(id).await.unwrap(),
            second.order(id).await.unwrap(),
            "order {id}"
        );
    }
    let history = [
        first.portfolio_history(day(1), day(31)).await.unwrap(),
        second.portfolio_history(day(1), day(31)).await.unwrap(),
    ];
    assert_eq!(history[0].len(), history[1].len());
    for (a, b) in history[0].iter().zip(&history[1]) {
        assert_eq!(a.timestamp, b.timestamp);
        assert_eq!(a.cash, b.cash);
        assert_close(a.total_value, b.total_value);
    }
    let stats = [
        first.portfolio_stats(day(1), day(31), 252.0).await.unwrap(),
        second
            .portfolio_stats(day(1), day(31), 252.0)
            .await
            .unwrap(),
    ];
    assert_eq!(stats[0].snapshots, stats[1].snapshots);
    for (a, b) in [
        (stats[0].total_return, stats[1].total_return),
        (stats[0].volatility, stats[1].volatility),
        (stats[0].sharpe_ratio, stats[1].sharpe_ratio),
        (stats[0].max_drawdown, stats[1].max_drawdown),
    ] {
        assert_close(a.unwrap(), b.unwrap());
    }
    // And both equal the Rust formulas applied to the snapshot values.
    let values: Vec<f64> = history[0].iter().map(|s| s.total_value).collect();
    let direct = quantcore_service::store::stats::portfolio_stats(&values, 252.0);
    assert_close(stats[0].sharpe_ratio.unwrap(), direct.sharpe_ratio.unwrap());
    assert_close(stats[0].max_drawdown.unwrap(), direct.max_drawdown.unwrap());
}
