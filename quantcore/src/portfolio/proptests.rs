//! Property tests of the portfolio's accounting; the invariants are listed in the
//! [module docs](super).

use proptest::prelude::*;

use super::Portfolio;
use super::proptest_strategies::{Step, steps};
use crate::error::Error;
use crate::execution::proptest_strategies::execution_model;
use crate::execution::{CommissionModel, ExecutionModel, Fill};
use crate::order::proptest_strategies::{fractional_quantity, price, whole_quantity};
use crate::order::{Instrument, Order, Side, SymbolId, max_affordable_quantity, validate_order};
use crate::risk::{RiskLimits, RiskViolation, check_risk_limits};

const SYMBOLS: usize = 3;
const CAPITAL: f64 = 1_000_000.0;

fn portfolio(allow_short: bool, fractional: bool) -> (Portfolio, Vec<SymbolId>) {
    let mut p = Portfolio::new(CAPITAL)
        .unwrap()
        .with_short_selling(allow_short);
    let ids = (0..SYMBOLS)
        .map(|i| {
            let name = format!("S{i}");
            let instrument = if fractional {
                Instrument::fractional(name)
            } else {
                Instrument::new(name)
            };
            p.register(instrument).unwrap()
        })
        .collect();
    (p, ids)
}

fn market_fill(
    model: &ExecutionModel,
    id: u64,
    symbol: SymbolId,
    side: Side,
    q: f64,
    reference: f64,
) -> Fill {
    let order = Order::market(id, symbol, side, q, id as i64);
    model.fill_market(&order, reference, id as i64).unwrap()
}

fn close(a: f64, b: f64, scale: f64) -> bool {
    (a - b).abs() <= 1e-9 * scale.max(1.0)
}

/// An independent ledger: cash and quantities recomputed from the fills alone.
struct Replay {
    cash: f64,
    quantity: [f64; SYMBOLS],
    last_price: [f64; SYMBOLS],
    /// Sum of |cash flows|, the scale of accumulated rounding.
    turnover: f64,
}

impl Replay {
    fn new() -> Self {
        Replay {
            cash: CAPITAL,
            quantity: [0.0; SYMBOLS],
            last_price: [0.0; SYMBOLS],
            turnover: CAPITAL,
        }
    }

    fn book(&mut self, symbol: usize, fill: &Fill) {
        let flow = fill.side.sign() * fill.quantity * fill.price + fill.commission;
        self.cash -= flow;
        self.turnover += flow.abs();
        self.quantity[symbol] += fill.side.sign() * fill.quantity;
        self.last_price[symbol] = fill.price;
    }

    fn equity(&self) -> f64 {
        self.cash
            + (0..SYMBOLS)
                .map(|i| self.quantity[i] * self.last_price[i])
                .sum::<f64>()
    }
}

proptest! {
    /// Invariant 1: equity equals cash plus market value, both recomputed independently.
    #[test]
    fn equity_is_cash_plus_market_value(
        steps in steps(SYMBOLS, 1..60, whole_quantity()),
        model in execution_model(),
    ) {
        let (mut p, ids) = portfolio(true, false);
        let mut replay = Replay::new();
        for (i, step) in steps.iter().enumerate() {
            let fill = market_fill(&model, i as u64, ids[step.symbol], step.side, step.quantity, step.price);
            p.apply_fill(&fill).unwrap();
            replay.book(step.symbol, &fill);
            if let Some(mark) = step.mark {
                p.mark(ids[step.symbol], mark).unwrap();
                replay.last_price[step.symbol] = mark;
            }
            let scale = replay.turnover;
            prop_assert!(close(p.cash(), replay.cash, scale), "{} vs {}", p.cash(), replay.cash);
            for (s, id) in ids.iter().enumerate() {
                prop_assert_eq!(p.position(*id).unwrap().quantity, replay.quantity[s]);
            }
            prop_assert!(close(p.equity(), replay.equity(), scale), "{} vs {}", p.equity(), replay.equity());
            prop_assert!(close(p.equity(), p.cash() + p.positions_value(), scale));
            let snapshot = p.snapshot(i as i64);
            prop_assert!(close(snapshot.total_value, snapshot.cash + snapshot.positions_value, scale));
        }
    }

    /// Invariant 2: once flat, round trips account for the whole change in equity.
    #[test]
    fn round_trips_sum_to_the_equity_change_when_flat(
        steps in steps(SYMBOLS, 1..60, whole_quantity()),
        exit_prices in proptest::array::uniform3(price()),
        model in execution_model(),
    ) {
        let (mut p, ids) = portfolio(true, false);
        let mut turnover = CAPITAL;
        for (i, step) in steps.iter().enumerate() {
            let fill = market_fill(&model, i as u64, ids[step.symbol], step.side, step.quantity, step.price);
            turnover += fill.notional();
            p.apply_fill(&fill).unwrap();
        }
        for (s, id) in ids.iter().enumerate() {
            let held = p.position(*id).unwrap().quantity;
            if held != 0.0 {
                let side = if held > 0.0 { Side::Sell } else { Side::Buy };
                let fill = market_fill(&model, 1_000 + s as u64, *id, side, held.abs(), exit_prices[s]);
                turnover += fill.notional();
                p.apply_fill(&fill).unwrap();
            }
        }
        prop_assert_eq!(p.open_position_count(), 0);
        prop_assert!(p.positions().iter().all(|pos| pos.quantity == 0.0));
        let change = p.equity() - CAPITAL;
        let gross: f64 = p.round_trips().iter().map(|t| t.gross_pnl).sum();
        let net: f64 = p.round_trip_pnls().iter().sum();
        prop_assert!(close(gross, change + p.total_commission(), turnover), "{gross} vs {change}");
        prop_assert!(close(net, change, turnover), "{net} vs {change}");
        prop_assert!(close(p.realized_pnl(), gross, turnover));
    }

    /// Invariant 3: splitting fills into pieces at the same price changes nothing
    /// before fees.
    #[test]
    fn realized_pnl_does_not_depend_on_splitting(
        steps in steps(SYMBOLS, 1..40, whole_quantity()),
    ) {
        let free = ExecutionModel::default();
        let (mut whole, ids) = portfolio(true, false);
        let (mut split, _) = portfolio(true, false);
        let mut turnover = CAPITAL;
        for (i, step) in steps.iter().enumerate() {
            let Step { symbol, side, quantity, price, pieces, .. } = *step;
            turnover += quantity * price;
            whole.apply_fill(&market_fill(&free, i as u64, ids[symbol], side, quantity, price)).unwrap();
            // Whole-unit pieces: `pieces` parts (fewer if the quantity is smaller).
            let pieces = f64::from(pieces).min(quantity);
            let base = (quantity / pieces).floor();
            let first = quantity - base * (pieces - 1.0);
            let mut parts = vec![first];
            parts.extend(std::iter::repeat_n(base, pieces as usize - 1));
            for part in parts {
                split.apply_fill(&market_fill(&free, i as u64, ids[symbol], side, part, price)).unwrap();
            }
        }
        prop_assert!(close(whole.realized_pnl(), split.realized_pnl(), turnover),
            "{} vs {}", whole.realized_pnl(), split.realized_pnl());
        prop_assert!(close(whole.cash(), split.cash(), turnover));
        for id in &ids {
            let (a, b) = (whole.position(*id).unwrap(), split.position(*id).unwrap());
            prop_assert_eq!(a.quantity, b.quantity);
            prop_assert!(close(a.average_price, b.average_price, a.average_price));
        }
    }

    /// Invariant 4: without leverage, fills that pass the risk check keep cash >= 0,
    /// including orders sized to the last cent of cash.
    #[test]
    fn cash_never_negative_when_risk_checks_pass(
        steps in steps(SYMBOLS, 1..80, fractional_quantity()),
        fractional in any::<bool>(),
        sizing_modes in proptest::collection::vec(0u8..3, 80),
        model in execution_model(),
    ) {
        let (mut p, ids) = portfolio(false, fractional);
        p.restore_cash(1_000.0).unwrap(); // small, so that cash binds
        let limits = RiskLimits::default();
        for (i, step) in steps.iter().enumerate() {
            let id = ids[step.symbol];
            let instrument = p.instruments().instrument(id).unwrap().clone();
            let slipped = model.market_price(step.side, step.price);
            // Buys sized at the edge: all in with fees, or all in forgetting the fees
            // (must be refused when there is a commission), or at random.
            let quantity = match (step.side, sizing_modes[i]) {
                (Side::Buy, 0) => {
                    max_affordable_quantity(p.cash(), slipped, &model.commission, &instrument).unwrap()
                }
                (Side::Buy, 1) => instrument.round_down(p.cash() / slipped),
                _ => instrument.round_down(step.quantity * 20.0),
            };
            if quantity <= 0.0 {
                continue;
            }
            let order = Order::market(i as u64, id, step.side, quantity, i as i64);
            validate_order(&order, p.instruments()).unwrap();
            let fill = model.fill_market(&order, step.price, i as i64).unwrap();
            if check_risk_limits(&limits, &p, &order, fill.price, &model.commission).is_ok() {
                p.apply_fill(&fill).unwrap();
            }
            prop_assert!(p.cash() >= 0.0, "cash {} after step {i}", p.cash());
            if let Some(mark) = step.mark {
                p.mark(id, mark).unwrap();
            }
        }
    }

    /// Invariant 5: with short selling off, quantities never go below zero; the
    /// portfolio and the risk check agree on which sells to refuse.
    #[test]
    fn sells_never_exceed_the_holding_without_short(
        steps in steps(SYMBOLS, 1..60, whole_quantity()),
        rate in 0.0f64..0.01,
    ) {
        let (mut p, ids) = portfolio(false, false);
        let commission = CommissionModel { rate, fixed_fee: 0.0 };
        let model = ExecutionModel { commission, slippage_bps: 0.0 };
        let limits = RiskLimits::default();
        for (i, step) in steps.iter().enumerate() {
            let id = ids[step.symbol];
            let order = Order::market(i as u64, id, step.side, step.quantity, i as i64);
            let fill = model.fill_market(&order, step.price, i as i64).unwrap();
            let held = p.position(id).unwrap().quantity;
            let check = check_risk_limits(&limits, &p, &order, fill.price, &commission);
            let before = p.clone();
            match p.apply_fill(&fill) {
                Ok(_) => {
                    let refused = matches!(check, Err(RiskViolation::InsufficientPosition { .. }));
                    prop_assert!(!refused, "the risk check refused a sell the portfolio booked");
                }
                Err(Error::ShortNotAllowed { requested, held: reported, .. }) => {
                    prop_assert_eq!(step.side, Side::Sell);
                    prop_assert!(requested > held);
                    prop_assert_eq!(reported, held);
                    prop_assert_eq!(check, Err(RiskViolation::InsufficientPosition { requested, held }));
                    prop_assert_eq!(&p, &before);
                }
                Err(other) => prop_assert!(false, "unexpected error {other}"),
            }
            prop_assert!(p.positions().iter().all(|pos| pos.quantity >= 0.0));
        }
    }
}
