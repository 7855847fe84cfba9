//! The position updater's stop-loss and take-profit on both stores (SQLite in a temp file,
//! PostgreSQL from `scripts/with-postgres.sh`).
//!
//! A long of 10 ACME bought at 100 (reference; filled at 100.05 with the default 5 bps
//! slippage and 0.1 % commission) carries a stop at 95 and a take-profit at 110. Expected
//! exit prices are computed by hand from the core's rules: the exit is at the level, or at
//! the open when the bar opens through it, less 5 bps of slippage on the sell.

use crate::stores::{postgres, sqlite};
use std::sync::Arc;
use std::time::Duration;

use quantcore::risk::ExitReason;
use quantcore_service::bus::{self, Bus, MemoryBus};
use quantcore_service::messages::{Envelope, MarketDataMessage, topics};
use quantcore_service::roles::{self, ExitOutcome, OrderIntent, OrderResult, Stats, TradeSettings};
use quantcore_service::store::{ExitLevels, ProcessedKey, Side, Store};

const CASH: f64 = 100_000.0;
const SLIPPAGE: f64 = 0.0005;
const COMMISSION: f64 = 0.001;

fn approx(actual: f64, expected: f64, what: &str) {
    assert!(
        (actual - expected).abs() < 1e-6,
        "{what}: {actual} != {expected}"
    );
}

fn bar(timestamp: i64, open: f64, high: f64, low: f64, close: f64) -> MarketDataMessage {
    MarketDataMessage {
        symbol: "ACME".into(),
        timestamp,
        open,
        high,
        low,
        close,
        volume: 1_000.0,
    }
}

/// Buys `quantity` ACME at reference 100 with `levels`; returns the cash after.
async fn buy(
    store: &dyn Store,
    settings: &TradeSettings,
    quantity: f64,
    levels: ExitLevels,
) -> f64 {
    let intent = OrderIntent {
        symbol: "ACME".into(),
        side: quantcore::order::Side::Buy,
        quantity,
        reference_price: 100.0,
        timestamp: 1_000,
    };
    match roles::execute_order_with_exits(store, settings, &intent, levels, None)
        .await
        .unwrap()
    {
        OrderResult::Filled { cash_after, .. } => cash_after,
        other => panic!("buy not filled: {other:?}"),
    }
}

fn levels(stop: f64, take: f64) -> ExitLevels {
    ExitLevels {
        stop_loss: Some(stop),
        take_profit: Some(take),
    }
}

fn key() -> ProcessedKey {
    ProcessedKey::new("mark", uuid::Uuid::now_v7())
}

/// Cash after buying 10 at 100 with slippage and commission, by hand:
/// price 100.05, notional 1000.5, commission 1.0005.
const CASH_AFTER_BUY: f64 = CASH - 1_000.5 - 1.0005;

/// Cash after selling 10 at `exit` (before slippage).
fn cash_after_exit(exit: f64) -> f64 {
    let price = exit * (1.0 - SLIPPAGE);
    CASH_AFTER_BUY + 10.0 * price - 10.0 * price * COMMISSION
}

async fn exit_scenarios(store: Arc<dyn Store>) {
    let settings = TradeSettings::default();
    let store = store.as_ref();
    store
        .ensure_account(CASH, chrono::Utc::now())
        .await
        .unwrap();

    // The levels are stored with the opening fill.
    approx(
        buy(store, &settings, 10.0, levels(95.0, 110.0)).await,
        CASH_AFTER_BUY,
        "cash after buy",
    );
    let position = store.position("ACME").await.unwrap().unwrap();
    assert_eq!(
        (position.stop_loss, position.take_profit),
        (Some(95.0), Some(110.0))
    );

    // A bar inside the levels leaves the position open.
    let quiet = bar(2_000, 100.0, 109.9, 95.01, 101.0);
    let outcome = roles::apply_exits(store, &settings, &quiet, Some(key()))
        .await
        .unwrap();
    assert_eq!(outcome, ExitOutcome::Untouched);
    assert_eq!(
        store.position("ACME").await.unwrap().unwrap().quantity,
        10.0
    );

    // The low crosses 95: sold at the stop less slippage.
    let crossing = bar(3_000, 99.0, 100.0, 94.5, 96.0);
    let crossing_key = key();
    let outcome = roles::apply_exits(store, &settings, &crossing, Some(crossing_key.clone()))
        .await
        .unwrap();
    let ExitOutcome::Triggered {
        reason,
        trigger_price,
        result: OrderResult::Filled {
            price, cash_after, ..
        },
    } = outcome
    else {
        panic!("expected a filled stop, was {outcome:?}");
    };
    assert_eq!((reason, trigger_price), (ExitReason::StopLoss, 95.0));
    approx(price, 94.9525, "stop fill price");
    approx(cash_after, cash_after_exit(95.0), "cash after the stop");
    approx(
        store.cash().await.unwrap(),
        cash_after_exit(95.0),
        "stored cash",
    );
    let position = store.position("ACME").await.unwrap().unwrap();
    assert_eq!(position.quantity, 0.0);
    assert_eq!(
        (position.stop_loss, position.take_profit),
        (None, None),
        "cleared on close"
    );
    let trades = store.trades(10).await.unwrap();
    assert_eq!(trades.len(), 2);
    assert_eq!((trades[1].side, trades[1].quantity), (Side::Sell, 10.0));
    approx(trades[1].price, 94.9525, "trade price");

    // A new position, then the same bar redelivered: the key was used, nothing sells.
    buy(store, &settings, 10.0, levels(95.0, 110.0)).await;
    let outcome = roles::apply_exits(store, &settings, &crossing, Some(crossing_key))
        .await
        .unwrap();
    assert!(
        matches!(
            outcome,
            ExitOutcome::Triggered {
                result: OrderResult::Duplicate,
                ..
            }
        ),
        "{outcome:?}"
    );
    assert_eq!(
        store.position("ACME").await.unwrap().unwrap().quantity,
        10.0
    );
    assert_eq!(store.trades(10).await.unwrap().len(), 3);

    // A gap through the stop fills at the open: 90 less slippage.
    let gap = bar(4_000, 90.0, 92.0, 89.0, 91.0);
    let outcome = roles::apply_exits(store, &settings, &gap, Some(key()))
        .await
        .unwrap();
    let ExitOutcome::Triggered {
        reason,
        trigger_price,
        result: OrderResult::Filled { price, .. },
    } = outcome
    else {
        panic!("expected a filled gap stop, was {outcome:?}");
    };
    assert_eq!((reason, trigger_price), (ExitReason::StopLoss, 90.0));
    approx(price, 89.955, "gap fill price");
}

async fn take_profit_scenarios(store: Arc<dyn Store>) {
    let settings = TradeSettings::default();
    let store = store.as_ref();
    store
        .ensure_account(CASH, chrono::Utc::now())
        .await
        .unwrap();
    buy(store, &settings, 10.0, levels(95.0, 110.0)).await;
    // A buy without levels adds to the position and keeps them.
    buy(store, &settings, 5.0, ExitLevels::NONE).await;
    let position = store.position("ACME").await.unwrap().unwrap();
    assert_eq!(position.quantity, 15.0);
    assert_eq!(
        (position.stop_loss, position.take_profit),
        (Some(95.0), Some(110.0))
    );

    // The high reaches 110: sold at the target less slippage, all 15.
    let reaching = bar(2_000, 105.0, 111.0, 104.0, 109.0);
    let outcome = roles::apply_exits(store, &settings, &reaching, Some(key()))
        .await
        .unwrap();
    let ExitOutcome::Triggered {
        reason,
        trigger_price,
        result: OrderResult::Filled { price, .. },
    } = outcome
    else {
        panic!("expected a filled take-profit, was {outcome:?}");
    };
    assert_eq!((reason, trigger_price), (ExitReason::TakeProfit, 110.0));
    approx(price, 109.945, "take-profit fill price");
    let trades = store.trades(10).await.unwrap();
    assert_eq!((trades[2].side, trades[2].quantity), (Side::Sell, 15.0));

    // A gap up over the target fills at the open.
    buy(store, &settings, 10.0, levels(95.0, 110.0)).await;
    let gap = bar(3_000, 115.0, 116.0, 94.0, 100.0);
    let outcome = roles::apply_exits(store, &settings, &gap, Some(key()))
        .await
        .unwrap();
    let ExitOutcome::Triggered {
        reason,
        trigger_price,
        result: OrderResult::Filled { price, .. },
    } = outcome
    else {
        panic!("expected a filled gap take-profit, was {outcome:?}");
    };
    assert_eq!((reason, trigger_price), (ExitReason::TakeProfit, 115.0));
    approx(price, 115.0 * (1.0 - SLIPPAGE), "gap take-profit price");
    assert_eq!(store.position("ACME").await.unwrap().unwrap().quantity, 0.0);
}

/// The role over the in-process bus: one bar that crosses the stop, published twice with
/// the same envelope (a redelivery), sells once; the quiet bars before it only mark.
async fn role_scenario(store: Arc<dyn Store>) {
    let settings = TradeSettings::default();
    store
        .ensure_account(CASH, chrono::Utc::now())
        .await
        .unwrap();
    buy(store.as_ref(), &settings, 10.0, levels(95.0, 110.0)).await;
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new(1));
    let stats = Arc::new(Stats::default());
    let role = tokio::spawn(roles::mark_role(
        store.clone(),
        bus.clone(),
        "mark".into(),
        settings,
        stats.clone(),
    ));
    // A new consumer group starts at the earliest retained message: no race with the role.
    let quiet = Envelope::new(bar(2_000, 100.0, 102.0, 99.0, 101.5));
    let crossing = Envelope::new(bar(3_000, 99.0, 100.0, 94.0, 96.0));
    for message in [&quiet, &crossing, &crossing] {
        bus::publish(bus.as_ref(), topics::MARKET_DATA, message)
            .await
            .unwrap();
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while Stats::get(&stats.bars_marked) < 3 {
        assert!(tokio::time::Instant::now() < deadline, "bars not marked");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    role.abort();
    assert_eq!(
        Stats::get(&stats.orders_filled),
        1,
        "one exit for two deliveries"
    );
    let trades = store.trades(10).await.unwrap();
    assert_eq!(trades.len(), 2);
    approx(trades[1].price, 94.9525, "stop fill price");
    let position = store.position("ACME").await.unwrap().unwrap();
    assert_eq!(position.quantity, 0.0);
    approx(store.cash().await.unwrap(), cash_after_exit(95.0), "cash");
}

#[tokio::test]
async fn stop_loss_sells_once_at_the_core_price_on_sqlite() {
    let (store, _dir) = sqlite().await;
    exit_scenarios(store).await;
}

#[tokio::test]
async fn stop_loss_sells_once_at_the_core_price_on_postgres() {
    if let Some(store) = postgres().await {
        exit_scenarios(store).await;
    }
}

#[tokio::test]
async fn take_profit_sells_at_the_target_or_the_gap_on_sqlite() {
    let (store, _dir) = sqlite().await;
    take_profit_scenarios(store).await;
}

#[tokio::test]
async fn take_profit_sells_at_the_target_or_the_gap_on_postgres() {
    if let Some(store) = postgres().await {
        take_profit_scenarios(store).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_position_updater_sells_a_redelivered_stop_once_on_sqlite() {
    let (store, _dir) = sqlite().await;
    role_scenario(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_position_updater_sells_a_redelivered_stop_once_on_postgres() {
    if let Some(store) = postgres().await {
        role_scenario(store).await;
    }
}
