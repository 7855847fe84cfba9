//! Two ways a service could drift from the core, closed:
//! - a bar redelivered after its analysis was stored publishes the stored signal again
//!   under the same (derived) id, so a signal whose first publication was lost is not
//!   lost, and one that arrived is dropped by the trade role as a repeat;
//! - the risk re-check inside the fill transaction sees the whole portfolio, so a
//!   fraction-of-equity limit uses the same equity as the core's check.
//!
//! On SQLite and the in-process bus (the ml role's logic is backend-neutral; the fill
//! plan runs on both backends in `store_conformance`), and on PostgreSQL for the fill plan.

use crate::stores;

use crate::stores::sqlite;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use quantcore::order::Side;
use quantcore::risk::RiskLimits;
use quantcore_service::bus::{self, Bus, MemoryBus, MessageConsumer};
use quantcore_service::messages::{
    Envelope, MarketDataMessage, SignalAction, SignalMessage, topics,
};
use quantcore_service::roles::{self, MlSettings, OrderIntent, OrderResult, Stats, TradeSettings};
use quantcore_service::store::Store;
use tokio::task::JoinSet;

async fn wait_for(what: &str, done: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Every signal message on the bus so far (read by a group of its own), by arrival.
async fn signals_on_bus(
    consumer: &mut MessageConsumer<SignalMessage>,
    expected: usize,
) -> Vec<Envelope<SignalMessage>> {
    let mut seen = Vec::new();
    while seen.len() < expected {
        let received = tokio::time::timeout(Duration::from_secs(30), consumer.next())
            .await
            .unwrap_or_else(|_| panic!("{} of {expected} signals within 30 s", seen.len()))
            .unwrap();
        seen.push(received.message);
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_bar_republishes_its_stored_signal_under_the_same_id() {
    let (store, _dir) = sqlite().await;
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new(2));
    let mut observer = MessageConsumer::<SignalMessage>::subscribe(
        bus.clone(),
        topics::TRADING_SIGNALS,
        "observer",
    )
    .await
    .unwrap();
    let stats = Arc::new(Stats::default());
    let mut tasks = JoinSet::new();
    tasks.spawn(roles::ml_role(
        store.clone(),
        bus.clone(),
        MlSettings::default(),
        stats.clone(),
    ));

    // 120 bars, stored then published as the ingest role does; the envelopes are kept so
    // that the test can redeliver them byte for byte.
    let bars: Vec<_> = quantcore::sample::daily().unwrap()["ACME"]
        .iter()
        .take(120)
        .collect();
    let mut envelopes = Vec::new();
    for bar in &bars {
        store
            .upsert_bars("ACME", std::slice::from_ref(bar))
            .await
            .unwrap();
        let envelope = Envelope::new(MarketDataMessage::from_bar("ACME", bar));
        bus::publish(bus.as_ref(), topics::MARKET_DATA, &envelope)
            .await
            .unwrap();
        envelopes.push(envelope);
    }
    wait_for("the analyses", || Stats::get(&stats.bars_analysed) == 120).await;
    let published = Stats::get(&stats.signals_published) as usize;
    assert!(published >= 2, "the sample gives signals ({published})");
    let first = signals_on_bus(&mut observer, published).await;

    // Which bar made which signal: the id is derived from the bar message's id.
    let by_id: HashMap<_, _> = first.iter().map(|m| (m.id, m)).collect();
    let derived = |bar: &Envelope<MarketDataMessage>| {
        Envelope::derived(bar.payload.clone(), bar.id, topics::TRADING_SIGNALS).id
    };
    let with_signal = envelopes
        .iter()
        .find(|bar| by_id.contains_key(&derived(bar)))
        .expect("a bar whose signal was published");
    let without_signal = envelopes
        .iter()
        .skip(60) // past the warm-up: analysed, and its signal a HOLD
        .find(|bar| !by_id.contains_key(&derived(bar)))
        .expect("a bar with a HOLD signal");
    assert_eq!(first.len(), by_id.len(), "no two signals share an id");

    // Redeliver both bars (the first publication "lost" as far as the ml role knows).
    for bar in [without_signal, with_signal] {
        bus::publish(bus.as_ref(), topics::MARKET_DATA, bar)
            .await
            .unwrap();
    }
    wait_for("the redeliveries", || {
        Stats::get(&stats.bars_analysed) >= 122
    })
    .await;
    let again = signals_on_bus(&mut observer, 1).await;
    let original = by_id[&derived(with_signal)];
    assert_eq!(
        again[0].id, original.id,
        "the same id: the trade role drops a repeat"
    );
    assert_eq!(
        again[0].payload, original.payload,
        "the stored signal, not a new one"
    );
    assert_ne!(again[0].payload.action, SignalAction::Hold);
    // Nothing else: the HOLD bar published nothing, and the analysis was not redone.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), observer.next())
            .await
            .is_err(),
        "only the one republished signal"
    );
    assert_eq!(
        Stats::get(&stats.signals_published) as usize,
        published + 1,
        "the one republication"
    );
    let stored = store.signals("ACME", 1_000).await.unwrap();
    assert_eq!(
        stored
            .iter()
            .filter(|s| s.record.action != SignalAction::Hold)
            .count(),
        published,
        "one stored signal per analysed bar, none added by the redelivery"
    );
    tasks.abort_all();
}

/// 100,000 cash, 60,000 of it in ACME. A BUY of GLOBEX for about 25,000 is within the
/// 30 % position limit of the whole equity (100,000) but not of the cash (40,000): the
/// core accepts it, and so must the re-check inside the fill transaction.
async fn fraction_of_equity_uses_the_whole_portfolio(store: Arc<dyn Store>) {
    let settings = TradeSettings {
        limits: RiskLimits {
            max_position_fraction: 0.3,
            ..TradeSettings::default().limits
        },
        ..TradeSettings::default()
    };
    store
        .ensure_account(settings.initial_cash, chrono::Utc::now())
        .await
        .unwrap();
    let order = |symbol: &str, quantity: f64, price: f64| OrderIntent {
        symbol: symbol.to_owned(),
        side: Side::Buy,
        quantity,
        reference_price: price,
        timestamp: 1_704_200_000,
    };
    // Above the limit on purpose: the first order is checked against 100,000 of cash...
    let loose = TradeSettings {
        limits: RiskLimits {
            max_position_fraction: 1.0,
            ..settings.limits
        },
        ..settings.clone()
    };
    let acme = roles::execute_order(store.as_ref(), &loose, &order("ACME", 600.0, 100.0), None)
        .await
        .unwrap();
    assert!(matches!(acme, OrderResult::Filled { .. }), "{acme:?}");
    // ...then GLOBEX: 250 x 100 = 25,000 (plus slippage and commission) < 30 % of ~99,900.
    let globex = roles::execute_order(
        store.as_ref(),
        &settings,
        &order("GLOBEX", 250.0, 100.0),
        None,
    )
    .await
    .unwrap();
    let OrderResult::Filled { cash_after, .. } = globex else {
        panic!("refused although within the limit of the whole equity: {globex:?}");
    };
    assert!(cash_after > 0.0 && cash_after < 40_000.0 - 25_000.0 + 1.0);
    // And one that is over 30 % of the whole equity is still refused, by the same rule.
    let too_big = roles::execute_order(
        store.as_ref(),
        &settings,
        &order("INITECH", 320.0, 100.0),
        None,
    )
    .await
    .unwrap();
    assert!(
        matches!(too_big, OrderResult::Refused { .. }),
        "{too_big:?}"
    );
}

#[tokio::test]
async fn the_fill_plan_sees_the_whole_portfolio_on_sqlite() {
    let (store, _dir) = sqlite().await;
    fraction_of_equity_uses_the_whole_portfolio(store).await;
}

#[tokio::test]
async fn the_fill_plan_sees_the_whole_portfolio_on_postgres() {
    let Some(store) = stores::postgres().await else {
        return;
    };
    fraction_of_equity_uses_the_whole_portfolio(store).await;
}
