//! End to end: bundled sample bars replayed through ingest -> ml -> trade, on the embedded
//! default (SQLite + in-process bus) and distributed (PostgreSQL + Kafka, each role with its
//! own store pool, Kafka client and consumer group; Kafka is librdkafka's mock cluster, or
//! the broker of `KAFKA_BROKERS`).
//!
//! What is checked: the orders, trades, positions, cash and portfolio value the service
//! stored equal a direct computation with the core library of the same decisions — the
//! signals the ml role stored, taken in feed order and traded by hand with
//! `quantcore::portfolio::Portfolio`, `quantcore::order::Sizing`,
//! `quantcore::risk::check_risk_limits` and `quantcore::execution::ExecutionModel` under
//! the trade role's settings — order by order, to 1e-9. The distributed run also equals the
//! embedded one.
//!
//! The feed is lock-step (see `tests/support/mod.rs`): one bar at a time, the pipeline
//! idle before the next, so the trade role sees the signals in a fixed order.

use crate::support;

use std::collections::BTreeMap;

use crate::support::{Deployment, Pipeline, sample_feed};
use quantcore::execution::ExecutionModel;
use quantcore::order::{Instrument, Order, Side as CoreSide, SizingInput};
use quantcore::portfolio::Portfolio;
use quantcore::risk::check_risk_limits;
use quantcore_service::messages::{SignalAction, SignalMessage};
use quantcore_service::roles::{self, Stats, TradeSettings};
use quantcore_service::store::{OrderStatus, Side, Store};

const SYMBOLS: [&str; 3] = ["ACME", "GLOBEX", "INITECH"];
const BARS: usize = 160;
const WINDOW: usize = 30;
const TOLERANCE: f64 = 1e-9;

/// One fill: what the service stored, or what the core computed.
#[derive(Debug, Clone, PartialEq)]
struct FillRecord {
    symbol: String,
    side: CoreSide,
    quantity: f64,
    price: f64,
    commission: f64,
    /// The signal's (bar's) time, Unix seconds.
    timestamp: i64,
}

/// The books after a run.
#[derive(Debug, Clone)]
struct Books {
    fills: Vec<FillRecord>,
    /// Signals the risk check (or the store) refused.
    refused: u64,
    cash: f64,
    /// Quantity, average price, realized PnL by symbol (open or closed positions).
    positions: BTreeMap<String, (f64, f64, f64)>,
    /// Cash plus positions at their last marks.
    value: f64,
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= TOLERANCE
}

#[track_caller]
fn assert_books_equal(what: &str, actual: &Books, expected: &Books) {
    assert_eq!(
        actual.fills.len(),
        expected.fills.len(),
        "{what}: number of fills"
    );
    for (n, (a, e)) in actual.fills.iter().zip(&expected.fills).enumerate() {
        assert!(
            a.symbol == e.symbol
                && a.side == e.side
                && a.timestamp == e.timestamp
                && close(a.quantity, e.quantity)
                && close(a.price, e.price)
                && close(a.commission, e.commission),
            "{what}: fill {n}: {a:?} vs {e:?}"
        );
    }
    assert_eq!(actual.refused, expected.refused, "{what}: refused signals");
    assert!(
        close(actual.cash, expected.cash),
        "{what}: cash {} vs {}",
        actual.cash,
        expected.cash
    );
    assert_eq!(
        actual.positions.keys().collect::<Vec<_>>(),
        expected.positions.keys().collect::<Vec<_>>(),
        "{what}: position symbols"
    );
    for (symbol, a) in &actual.positions {
        let e = expected.positions[symbol];
        assert!(
            close(a.0, e.0) && close(a.1, e.1) && close(a.2, e.2),
            "{what}: {symbol} position {a:?} vs {e:?}"
        );
    }
    assert!(
        close(actual.value, expected.value),
        "{what}: portfolio value {} vs {}",
        actual.value,
        expected.value
    );
}

fn core_side(side: Side) -> CoreSide {
    match side {
        Side::Buy => CoreSide::Buy,
        Side::Sell => CoreSide::Sell,
    }
}

/// The signals the ml role stored, in feed order (bar time, then symbol).
async fn stored_signals(store: &dyn Store) -> Vec<SignalMessage> {
    let mut signals = Vec::new();
    for symbol in SYMBOLS {
        let stored = store.signals(symbol, 100_000).await.unwrap();
        assert_eq!(
            stored.len(),
            BARS - WINDOW + 1,
            "{symbol}: one signal per bar after the warm-up"
        );
        signals.extend(stored.into_iter().map(|s| s.record));
    }
    signals.sort_by(|a, b| (a.timestamp, &a.symbol).cmp(&(b.timestamp, &b.symbol)));
    signals
}

/// Trades `signals` with the core alone, under the trade role's rules: a BUY is sized by
/// confidence on the equity at the last fill prices and bought at the signal's price plus
/// slippage; a SELL sells the whole long position; an order the risk limits refuse is
/// dropped.
fn core_books(signals: &[SignalMessage], settings: &TradeSettings) -> Books {
    let execution: &ExecutionModel = &settings.execution;
    let mut book = Portfolio::new(settings.initial_cash)
        .unwrap()
        .with_short_selling(settings.limits.allow_short);
    for symbol in SYMBOLS {
        book.register(Instrument::new(symbol)).unwrap();
    }
    let mut fills = Vec::new();
    let mut refused = 0;
    for (n, signal) in signals.iter().enumerate() {
        let id = book.resolve(&signal.symbol).unwrap();
        let held = book.position(id).unwrap().quantity;
        let (side, quantity) = match signal.action {
            SignalAction::Hold => continue,
            SignalAction::Sell if held > 0.0 => (CoreSide::Sell, held),
            SignalAction::Sell => continue,
            SignalAction::Buy => {
                let quantity = settings
                    .sizing
                    .quantity(
                        SizingInput {
                            equity: book.equity(),
                            price: execution.market_price(CoreSide::Buy, signal.price),
                            confidence: signal.confidence,
                        },
                        &Instrument::new(&signal.symbol),
                        &settings.limits,
                        &execution.commission,
                    )
                    .unwrap();
                (CoreSide::Buy, quantity)
            }
        };
        if quantity <= 0.0 {
            continue;
        }
        let order = Order::market(n as u64, id, side, quantity, signal.timestamp);
        let fill = execution
            .fill_market(&order, signal.price, signal.timestamp)
            .unwrap();
        if check_risk_limits(
            &settings.limits,
            &book,
            &order,
            fill.price,
            &execution.commission,
        )
        .is_err()
        {
            refused += 1;
            continue;
        }
        book.apply_fill(&fill).unwrap();
        fills.push(FillRecord {
            symbol: signal.symbol.clone(),
            side,
            quantity,
            price: fill.price,
            commission: fill.commission,
            timestamp: signal.timestamp,
        });
    }
    let positions = book
        .positions()
        .iter()
        .zip(SYMBOLS)
        .filter(|(_, symbol)| fills.iter().any(|f| f.symbol == *symbol))
        .map(|(p, symbol)| {
            (
                symbol.to_owned(),
                (p.quantity, p.average_price, p.realized_pnl),
            )
        })
        .collect();
    Books {
        fills,
        refused,
        cash: book.cash(),
        positions,
        value: book.equity(),
    }
}

/// The books as the service stored them; checks each trade against its order on the way.
async fn stored_books(store: &dyn Store, trade: &Stats) -> Books {
    let trades = store.trades(100_000).await.unwrap();
    let mut fills = Vec::new();
    for trade in &trades {
        let order = store.order(trade.order_id).await.unwrap().expect("order");
        assert_eq!(order.status, OrderStatus::Filled);
        assert_eq!(
            (order.symbol.as_str(), order.side, order.quantity),
            (trade.symbol.as_str(), trade.side, trade.quantity)
        );
        assert_eq!(order.filled_price, Some(trade.price));
        assert_eq!(order.commission, Some(trade.commission));
        fills.push(FillRecord {
            symbol: trade.symbol.clone(),
            side: core_side(trade.side),
            quantity: trade.quantity,
            price: trade.price,
            commission: trade.commission,
            timestamp: trade.executed_at.timestamp(),
        });
    }
    assert_eq!(Stats::get(&trade.orders_filled), trades.len() as u64);
    let positions = store
        .positions()
        .await
        .unwrap()
        .into_iter()
        .map(|p| (p.symbol, (p.quantity, p.average_price, p.realized_pnl)))
        .collect();
    let (cash, value) = roles::portfolio_value(store).await.unwrap();
    // The last snapshot (the position trigger's) says the same.
    let history = store
        .portfolio_history(
            chrono::DateTime::from_timestamp(0, 0).unwrap(),
            chrono::DateTime::from_timestamp(4_102_444_800, 0).unwrap(),
        )
        .await
        .unwrap();
    let last = history.iter().max_by_key(|s| s.id).expect("snapshots");
    assert!(close(last.cash, cash) && close(last.total_value, value));
    Books {
        fills,
        refused: Stats::get(&trade.orders_refused),
        cash,
        positions,
        value,
    }
}

/// Runs the feed on `deployment`, checks the stored books against the core's, returns them.
async fn run_and_check(deployment: Deployment) -> Books {
    let mut pipeline = Pipeline::start(&deployment).await;
    let feed = sample_feed(&SYMBOLS, BARS);
    for (symbol, bar) in feed {
        pipeline.feed(&symbol, bar).await;
    }
    let store = deployment.open_store().await;
    for symbol in SYMBOLS {
        assert_eq!(
            store.last_bars(symbol, 100_000).await.unwrap().len(),
            BARS,
            "{}: every bar stored once",
            deployment.name
        );
    }
    let signals = stored_signals(store.as_ref()).await;
    let published = signals
        .iter()
        .filter(|s| s.action != SignalAction::Hold)
        .count() as u64;
    assert_eq!(Stats::get(&pipeline.ml.signals_published), published);
    assert_eq!(Stats::get(&pipeline.trade.signals_handled), published);

    let settings = support::trade_settings(&deployment);
    let expected = core_books(&signals, &settings);
    let actual = stored_books(store.as_ref(), &pipeline.trade).await;
    eprintln!(
        "{}: {} signals, {} fills, {} refused, cash {:.2}, value {:.2}",
        deployment.name,
        published,
        actual.fills.len(),
        actual.refused,
        actual.cash,
        actual.value
    );
    assert!(
        expected.fills.len() >= 10 && expected.fills.iter().any(|f| f.side == CoreSide::Sell),
        "the sample gives buys and sells: {:?}",
        expected.fills.len()
    );
    assert_books_equal(deployment.name, &actual, &expected);
    pipeline.stop().await;
    actual
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_run_equals_the_core_computation() {
    run_and_check(Deployment::embedded()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_and_kafka_mock_run_equals_the_core_and_the_embedded_run() {
    let Some(url) = support::postgres_url() else {
        return;
    };
    let distributed = run_and_check(Deployment::postgres_kafka_mock(url)).await;
    let embedded = run_and_check(Deployment::embedded()).await;
    assert_books_equal("distributed vs embedded", &distributed, &embedded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_and_kafka_broker_run_equals_the_core_computation() {
    let Some(url) = support::postgres_url() else {
        return;
    };
    let Some(deployment) = Deployment::postgres_kafka_broker(url).await else {
        return;
    };
    run_and_check(deployment).await;
}
