//! End to end on the embedded default: replay bundled bars through ingest -> ml -> trade on
//! SQLite and the in-process bus, then check the stored money against an independent
//! replay of the stored trades through the core portfolio.

use crate::stores::{postgres, sqlite};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use quantcore::execution::Fill;
use quantcore::order::Instrument;
use quantcore::portfolio::Portfolio;
use quantcore_service::bus::{self, Bus, MemoryBus};
use quantcore_service::messages::{Envelope, SignalAction, SignalMessage, topics};
use quantcore_service::roles::{self, MlSettings, Stats, TradeSettings};
use quantcore_service::store::{OrderStatus, Side, Store};
use tokio::task::JoinSet;

const BARS: usize = 250;

fn count(counter: &std::sync::atomic::AtomicU64) -> u64 {
    Stats::get(counter)
}

/// Waits until `done` holds (checked every 20 ms) or panics after 60 s.
async fn wait_for(what: &str, done: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_bars_trade_and_the_books_balance_on_sqlite() {
    let (store, _dir) = sqlite().await;
    replay_and_check(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_bars_trade_and_the_books_balance_on_postgres() {
    if let Some(store) = postgres().await {
        replay_and_check(store).await;
    }
}

async fn replay_and_check(store: Arc<dyn Store>) {
    let memory = Arc::new(MemoryBus::new(4));
    let bus: Arc<dyn Bus> = memory.clone();
    // A poison message first: each consumer group dead-letters it and moves on.
    bus.publish(topics::MARKET_DATA, "ACME", b"{not json")
        .await
        .unwrap();
    let stats = Arc::new(Stats::default());
    let settings = TradeSettings::default();
    let mut tasks = JoinSet::new();
    tasks.spawn(roles::ml_role(
        store.clone(),
        bus.clone(),
        MlSettings::default(),
        stats.clone(),
    ));
    tasks.spawn(roles::trade_role(
        store.clone(),
        bus.clone(),
        settings.clone(),
        stats.clone(),
    ));
    tasks.spawn(roles::mark_role(
        store.clone(),
        bus.clone(),
        roles::groups::MARK.to_owned(),
        settings.clone(),
        stats.clone(),
    ));
    let daily = quantcore::sample::daily().unwrap();
    let symbols = ["ACME", "GLOBEX"];
    for symbol in symbols {
        let bars: Vec<_> = daily[symbol].iter().take(BARS).collect();
        let replay = roles::replay_symbol(
            store.clone(),
            bus.clone(),
            symbol.to_owned(),
            bars,
            Duration::ZERO,
            stats.clone(),
        );
        tasks.spawn(async move { replay.await.map(|_| ()) });
    }
    let total = (BARS * symbols.len()) as u64;
    wait_for("the pipeline", || {
        count(&stats.bars_ingested) == total
            && count(&stats.bars_analysed) == total
            && count(&stats.bars_marked) == total
            && count(&stats.signals_handled) == count(&stats.signals_published)
    })
    .await;

    assert_eq!(
        memory.retained(&topics::dead_letter(topics::MARKET_DATA)),
        2,
        "the poison message, dead-lettered by the ml and mark groups"
    );

    // Every bar is stored; every analysed bar past the warm-up has a prediction.
    for symbol in symbols {
        assert_eq!(store.last_bars(symbol, 10_000).await.unwrap().len(), BARS);
        let predictions = store.predictions(symbol, 10_000).await.unwrap();
        assert_eq!(predictions.len(), BARS - 30 + 1, "{symbol}");
        assert!(predictions.iter().all(|p| p.record.model == "sma-trend"));
        let anomalies = store.anomalies(symbol, 10_000).await.unwrap();
        assert_eq!(
            anomalies.len(),
            predictions.len(),
            "{symbol}: one score per prediction"
        );
        assert!(
            anomalies
                .iter()
                .all(|a| a.record.score > 0.0 && a.record.score <= 1.0)
        );
    }
    let published = count(&stats.signals_published);
    let filled = count(&stats.orders_filled);
    assert!(published > 0, "the sample data gives signals");
    assert!(filled > 0, "some signals become orders");

    // Each filled order has exactly one trade, with the order's quantity and price.
    let trades = store.trades(100_000).await.unwrap();
    assert_eq!(trades.len() as u64, filled);
    let ids: HashSet<_> = trades.iter().map(|t| t.order_id).collect();
    assert_eq!(ids.len(), trades.len(), "one trade per order");
    for trade in &trades {
        let order = store
            .order(trade.order_id)
            .await
            .unwrap()
            .expect("order of a trade");
        assert_eq!(order.status, OrderStatus::Filled);
        assert_eq!(order.quantity, trade.quantity);
        assert_eq!(order.filled_price, Some(trade.price));
        assert_eq!(order.side, trade.side);
    }

    // Independent check: the stored trades replayed through a fresh core portfolio give the
    // stored cash and positions.
    let mut book = Portfolio::new(settings.initial_cash).unwrap();
    let mut ids = BTreeMap::new();
    for symbol in symbols {
        ids.insert(symbol, book.register(Instrument::new(symbol)).unwrap());
    }
    for (n, trade) in trades.iter().enumerate() {
        book.apply_fill(&Fill {
            order_id: n as u64,
            symbol: ids[trade.symbol.as_str()],
            side: match trade.side {
                Side::Buy => quantcore::order::Side::Buy,
                Side::Sell => quantcore::order::Side::Sell,
            },
            quantity: trade.quantity,
            price: trade.price,
            commission: trade.commission,
            timestamp: trade.executed_at.timestamp(),
        })
        .unwrap();
    }
    let cash = store.cash().await.unwrap();
    assert!(cash >= 0.0);
    assert!(
        (cash - book.cash()).abs() < 1e-6,
        "cash {cash} vs {}",
        book.cash()
    );
    let positions = store.positions().await.unwrap();
    let mut positions_value = 0.0;
    for row in &positions {
        let core = book.position_of(&row.symbol).unwrap();
        assert!(
            (row.quantity - core.quantity).abs() < 1e-9,
            "{}",
            row.symbol
        );
        if row.quantity != 0.0 {
            assert!((row.average_price - core.average_price).abs() < 1e-6);
        }
        // Marked at the last replayed close, or at a fill price when the symbol's last
        // fill was booked after that mark (the two roles run concurrently).
        let close = daily[row.symbol.as_str()].bar(BARS - 1).close;
        let last_fill = trades
            .iter()
            .rev()
            .find(|t| t.symbol == row.symbol)
            .map(|t| t.price);
        let mark = row.current_price.expect("marked");
        assert!(
            mark == close || Some(mark) == last_fill,
            "{}: {mark}",
            row.symbol
        );
        positions_value += row.quantity * mark;
    }
    // The last snapshot written is cash plus the marked positions. (By id: snapshots carry
    // the simulated bar time, and a fill of an earlier bar may be booked after the mark of
    // a later one.)
    let history = store
        .portfolio_history(
            chrono::DateTime::from_timestamp(0, 0).unwrap(),
            chrono::DateTime::from_timestamp(4_102_444_800, 0).unwrap(),
        )
        .await
        .unwrap();
    let last = history.iter().max_by_key(|s| s.id).expect("snapshots");
    assert!((last.cash - cash).abs() < 1e-6);
    assert!((last.total_value - (cash + positions_value)).abs() < 1e-6);
    let (_, value) = roles::portfolio_value(store.as_ref()).await.unwrap();
    assert!((value - (cash + positions_value)).abs() < 1e-6);

    // A redelivered signal never makes a second order.
    let signal = Envelope::new(SignalMessage {
        symbol: "ACME".into(),
        timestamp: daily["ACME"].bar(BARS - 1).timestamp,
        action: SignalAction::Buy,
        confidence: 0.9,
        price: daily["ACME"].bar(BARS - 1).close,
        predicted_price: daily["ACME"].bar(BARS - 1).close * 1.05,
        stop_loss: None,
        take_profit: None,
        expected_return: 0.05,
    });
    let handled = count(&stats.signals_handled);
    bus::publish(bus.as_ref(), topics::TRADING_SIGNALS, &signal)
        .await
        .unwrap();
    bus::publish(bus.as_ref(), topics::TRADING_SIGNALS, &signal)
        .await
        .unwrap();
    wait_for("the redelivery", || {
        count(&stats.signals_handled) == handled + 2
    })
    .await;
    let after = store.trades(100_000).await.unwrap().len();
    assert!(
        after <= trades.len() + 1,
        "{after} trades after one signal sent twice"
    );
    tasks.abort_all();
}
