//! The simulation loop: [`Backtester`] and the per-symbol engine every entry point
//! (one series, several series, boolean signals, sweeps) runs through.
//!
//! # One bar of one symbol, in order
//! 1. **Open**: with [`FillTiming::NextOpen`], the market order decided on the
//!    symbol's previous bar fills at this bar's open (plus slippage). It is *sized
//!    now*, from the equity at the latest marks and this fill price, so an all-in buy
//!    is not refused because the open gapped up.
//! 2. **Resting limit orders** fill when this bar crosses their limit
//!    ([`ExecutionModel::fill_on_bar`](crate::execution::ExecutionModel::fill_on_bar)).
//! 3. **Exits**: a position with a stop-loss or take-profit is checked against this
//!    bar's open, high and low ([`exit_on_bar`]: stop first when both are inside the
//!    bar, a gap through a level fills at the open); the closing market order takes
//!    slippage and commission like any other. A position opened at this bar's open
//!    (or by a limit order in this bar) is checked on this bar too: conservative.
//! 4. **Close**: the symbol is marked at its close.
//! 5. **Decision**: the strategy sees the history up to this bar and the portfolio.
//!    A market order fills now at the close ([`FillTiming::ThisClose`]) or waits for
//!    the next bar's open; a limit order rests from the next bar on.
//!
//! With several symbols, steps 1-4 run for every symbol with a bar at that timestamp
//! before any strategy is called, then the strategies are called in series order
//! (with `ThisClose`, a fill of an earlier symbol is already in the cash the next one
//! sees). Then the equity point is recorded.
//!
//! # Orders
//! Every order goes through [`ExecutionModel::execute`](crate::execution::ExecutionModel::execute):
//! validation, fill, risk check at the fill price, booking, status. A risk refusal is
//! recorded as a rejected order with the violation as reason, never an error. A
//! decision that sizes to zero units (too little equity for one unit) is recorded as
//! a rejected order of quantity 0 with the reason. A decision whose order is invalid
//! (NaN or fractional quantity on a whole-unit instrument, bad limit or exit levels)
//! stops the run with [`Error::InvalidDecision`]: that is a bug in the strategy.
//!
//! A decision becomes at most one order: a target or an entry that crosses zero is
//! one order that flips the position (one commission), the portfolio splitting it
//! into a round trip and a new position.
//!
//! # End of the data
//! A market order decided on a symbol's last bar with `NextOpen` has no bar to fill
//! on: it is dropped and not recorded. Limit orders still resting are reported with
//! status [`OrderStatus::New`](crate::order::OrderStatus::New). Open positions stay
//! open, marked at their last close (they are not force-closed, so they count in the
//! equity but not in the closed trades).
//!
//! # Cost
//! Per bar of one symbol, with nothing pending and no exit levels: the strategy call
//! (inlined: the loop is generic over the strategy), one mark, one equity sum and one
//! push into the preallocated curve. Orders, fills and round trips allocate as they
//! happen; nothing else does.

use std::mem;

use super::config::{BacktestConfig, FillTiming};
use super::result::{BacktestResult, ExitEvent};
use super::strategy::{Action, Context, Decision, History, Strategy};
use crate::data::{Bar, BarSeries};
use crate::error::{Error, Result};
use crate::execution::{Fill, OrderOutcome};
use crate::metrics::Metrics;
use crate::order::{
    Instrument, Order, Side, SizingInput, SymbolId, quantities_equal, validate_order,
};
use crate::portfolio::Portfolio;
use crate::risk::exit_on_bar;

/// The name given to a series without a symbol in a single-series run.
pub const DEFAULT_SYMBOL: &str = "series";

/// Runs strategies over bar series with one [`BacktestConfig`].
///
/// ```
/// use quantcore::backtest::{Backtester, BacktestConfig, FillTiming, MomentumStrategy};
/// use quantcore::BarSeries;
/// // A price that rises for 30 bars and falls for 30.
/// let close: Vec<f64> = (0..60).map(|i| if i < 30 { 100.0 + i as f64 } else { 159.0 - i as f64 }).collect();
/// let series = BarSeries::new(
///     (0..60).map(|i| i * 86_400).collect(),
///     close.clone(),
///     close.iter().map(|c| c + 0.5).collect(),
///     close.iter().map(|c| c - 0.5).collect(),
///     close.clone(),
///     vec![1_000.0; 60],
/// )?;
/// let config = BacktestConfig { fill_timing: FillTiming::ThisClose, ..Default::default() };
/// let mut strategy = MomentumStrategy::new(3, 10)?;
/// let result = Backtester::new(config)?.run(&series, &mut strategy)?;
/// assert_eq!(result.equity.len(), 61); // the start, then one point per bar
/// assert_eq!(result.trades.len(), 1); // in on the way up, out on the way down
/// assert!(result.trades[0].pnl > 0.0);
/// # Ok::<(), quantcore::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Backtester {
    config: BacktestConfig,
}

impl Backtester {
    /// A backtester with a checked configuration.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] listing every bad field (see [`BacktestConfig::validate`]).
    pub fn new(config: BacktestConfig) -> Result<Self> {
        config.validate()?;
        Ok(Backtester { config })
    }

    /// The configuration.
    pub fn config(&self) -> &BacktestConfig {
        &self.config
    }

    /// Runs `strategy` over one series (see the [module docs](self) for the order of
    /// events within a bar). The symbol is the series' symbol, or
    /// [`DEFAULT_SYMBOL`] when it has none.
    ///
    /// # Errors
    /// [`Error::EmptySeries`] for a series without bars; the error of
    /// [`Strategy::start`]; [`Error::InvalidDecision`] for a decision that cannot be
    /// a valid order; [`Error::NonPositiveEquity`] when the equity reaches zero or
    /// below (possible with shorts), as the metrics are undefined then.
    pub fn run<S: Strategy>(&self, series: &BarSeries, strategy: &mut S) -> Result<BacktestResult> {
        let name = series.symbol().unwrap_or(DEFAULT_SYMBOL);
        if series.is_empty() {
            return Err(Error::EmptySeries {
                series: 0,
                symbol: name.to_owned(),
            });
        }
        strategy.start(1)?;
        let bar_timestamps = series.timestamps();
        let mut timestamps = Vec::with_capacity(bar_timestamps.len() + 1);
        timestamps.push(bar_timestamps[0]);
        timestamps.extend_from_slice(bar_timestamps);
        let mut engine = Engine::new(&self.config, [name], timestamps.len())?;
        for row in 0..series.len() {
            engine.before_close(0, series, row)?;
            engine.mark_close(0, series, row)?;
            engine.decide(0, series, row, strategy)?;
            engine.record_equity();
        }
        engine.finish(timestamps)
    }
}

/// A market order waiting for the symbol's next open.
#[derive(Debug, Clone, Copy)]
struct PendingMarket {
    decision: Decision,
    /// The decision's bar in the symbol's series.
    row: usize,
    created_at: i64,
}

/// Per-symbol state of a run.
#[derive(Debug, Default)]
struct Slot {
    pending: Option<PendingMarket>,
    /// Limit orders waiting for a bar that crosses their price.
    resting: Vec<Order>,
}

/// The one order a decision becomes, before it has an id.
#[derive(Debug, Clone, Copy)]
struct Leg {
    side: Side,
    /// `0.0` when sizing gave nothing.
    quantity: f64,
    /// True when the order opens, increases or flips into a position on its side:
    /// only then does it carry the decision's exit levels.
    opens: bool,
    /// The equity and price the sizing used, for the reason of a zero-size rejection.
    sized_at: Option<(f64, f64)>,
}

/// The state of one run: the portfolio, per-symbol slots and the records.
pub(crate) struct Engine<'c> {
    config: &'c BacktestConfig,
    portfolio: Portfolio,
    slots: Vec<Slot>,
    orders: Vec<Order>,
    fills: Vec<Fill>,
    exits: Vec<ExitEvent>,
    next_order_id: u64,
    equity: Vec<f64>,
    kill_switch: bool,
}

impl<'c> Engine<'c> {
    /// A fresh portfolio with one instrument per name (ids in order), and the equity
    /// curve preallocated for `points` points with the initial capital recorded.
    pub(crate) fn new<'n>(
        config: &'c BacktestConfig,
        names: impl IntoIterator<Item = &'n str>,
        points: usize,
    ) -> Result<Self> {
        let mut portfolio = Portfolio::new(config.initial_capital)?
            .with_short_selling(config.risk_limits.allow_short);
        let mut slots = Vec::new();
        for name in names {
            let instrument = if config.fractional {
                Instrument::fractional(name)
            } else {
                Instrument::new(name)
            };
            portfolio.register(instrument)?;
            slots.push(Slot::default());
        }
        let mut equity = Vec::with_capacity(points);
        equity.push(config.initial_capital);
        Ok(Engine {
            config,
            portfolio,
            slots,
            orders: Vec::new(),
            fills: Vec::new(),
            exits: Vec::new(),
            next_order_id: 1,
            equity,
            kill_switch: config.risk_limits.max_drawdown.is_some(),
        })
    }

    /// Steps 1-3 of the bar: the pending market order at the open, resting limit
    /// orders, exits. Free when there is nothing to do.
    #[inline]
    pub(crate) fn before_close(&mut self, s: usize, series: &BarSeries, row: usize) -> Result<()> {
        let slot = &self.slots[s];
        if slot.pending.is_some() {
            self.fill_pending(s, &series.bar(row))?;
        }
        if !self.slots[s].resting.is_empty() {
            self.fill_resting(s, &series.bar(row))?;
        }
        let position = &self.portfolio.positions()[s];
        if position.stop_loss.is_some() || position.take_profit.is_some() {
            self.check_exits(s, &series.bar(row))?;
        }
        Ok(())
    }

    /// Step 4: marks the symbol at the bar's close.
    #[inline]
    pub(crate) fn mark_close(&mut self, s: usize, series: &BarSeries, row: usize) -> Result<()> {
        self.portfolio.mark(SymbolId(s as u32), series.close()[row])
    }

    /// Step 5: asks the strategy and acts on the decision.
    #[inline]
    pub(crate) fn decide<S: Strategy>(
        &mut self,
        s: usize,
        series: &BarSeries,
        row: usize,
        strategy: &mut S,
    ) -> Result<()> {
        let decision = strategy.on_bar(&Context {
            history: History::from_parts(series, row),
            portfolio: &self.portfolio,
            symbol: SymbolId(s as u32),
            open_orders: &self.slots[s].resting,
        });
        if decision.is_hold() {
            return Ok(());
        }
        self.act(s, series, row, decision)
    }

    /// Appends the equity at the current marks to the curve.
    #[inline]
    pub(crate) fn record_equity(&mut self) {
        self.equity.push(self.portfolio.equity());
        if self.kill_switch {
            self.portfolio.update_drawdown();
        }
    }

    /// The run's result; `timestamps` has one entry per recorded equity point.
    pub(crate) fn finish(mut self, timestamps: Vec<i64>) -> Result<BacktestResult> {
        debug_assert_eq!(timestamps.len(), self.equity.len());
        for slot in &mut self.slots {
            self.orders.append(&mut slot.resting);
        }
        self.orders.sort_by_key(|order| order.id);
        let trade_pnls = self.portfolio.round_trip_pnls();
        let metrics = Metrics::compute(&timestamps, &self.equity, &trade_pnls, &self.config.metrics)?;
        let last = timestamps[timestamps.len() - 1];
        let symbols = self
            .portfolio
            .instruments()
            .iter()
            .map(|(_, instrument)| instrument.symbol.clone())
            .collect();
        Ok(BacktestResult {
            symbols,
            final_snapshot: self.portfolio.snapshot(last),
            final_positions: self.portfolio.positions().to_vec(),
            trades: self.portfolio.round_trips().to_vec(),
            timestamps,
            equity: self.equity,
            orders: self.orders,
            fills: self.fills,
            exits: self.exits,
            metrics,
        })
    }

    #[cold]
    #[inline(never)]
    fn act(&mut self, s: usize, series: &BarSeries, row: usize, decision: Decision) -> Result<()> {
        // Any decision but hold replaces the resting orders.
        self.cancel_resting(s)?;
        if matches!(decision.action, Action::Cancel) {
            return Ok(());
        }
        let created_at = series.timestamps()[row];
        if let Some(limit) = decision.limit_price {
            return self.place_limit(s, row, created_at, decision, limit);
        }
        match self.config.fill_timing {
            FillTiming::ThisClose => {
                let bar = series.bar(row);
                self.execute_market(s, row, created_at, decision, &bar, bar.close)?;
                // The fill marked the symbol at its (slipped) fill price.
                self.portfolio.mark(SymbolId(s as u32), bar.close)
            }
            FillTiming::NextOpen => {
                self.slots[s].pending = Some(PendingMarket {
                    decision,
                    row,
                    created_at,
                });
                Ok(())
            }
        }
    }

    #[cold]
    #[inline(never)]
    fn fill_pending(&mut self, s: usize, bar: &Bar) -> Result<()> {
        let Some(pending) = self.slots[s].pending.take() else {
            return Ok(());
        };
        self.execute_market(
            s,
            pending.row,
            pending.created_at,
            pending.decision,
            bar,
            bar.open,
        )
    }

    /// Sizes the decision at the market fill price of `reference`, then executes.
    fn execute_market(
        &mut self,
        s: usize,
        row: usize,
        created_at: i64,
        decision: Decision,
        bar: &Bar,
        reference: f64,
    ) -> Result<()> {
        let model = self.config.execution;
        let Some(leg) = self.plan(s, row, &decision, |side| {
            model.market_price(side, reference)
        })?
        else {
            return Ok(());
        };
        let id = self.next_id();
        let order = self.order_for(
            Order::market(id, SymbolId(s as u32), leg.side, leg.quantity, created_at),
            &decision,
            leg,
        );
        if leg.quantity == 0.0 && leg.sized_at.is_some() {
            self.reject_zero_size(order, leg)
        } else {
            self.validate(s, row, &order)?;
            self.execute(order, bar, reference).map(drop)
        }
    }

    fn place_limit(
        &mut self,
        s: usize,
        row: usize,
        created_at: i64,
        decision: Decision,
        limit: f64,
    ) -> Result<()> {
        let Some(leg) = self.plan(s, row, &decision, |_| limit)? else {
            return Ok(());
        };
        let id = self.next_id();
        let order = self.order_for(
            Order::limit(id, SymbolId(s as u32), leg.side, leg.quantity, limit, created_at),
            &decision,
            leg,
        );
        if leg.quantity == 0.0 && leg.sized_at.is_some() {
            return self.reject_zero_size(order, leg);
        }
        self.validate(s, row, &order)?;
        self.slots[s].resting.push(order);
        Ok(())
    }

    #[cold]
    #[inline(never)]
    fn fill_resting(&mut self, s: usize, bar: &Bar) -> Result<()> {
        let mut resting = mem::take(&mut self.slots[s].resting);
        let mut kept = Vec::new();
        for order in resting.drain(..) {
            if let Some(order) = self.execute(order, bar, bar.open)? {
                kept.push(order);
            }
        }
        // Keep the (now empty) buffer when nothing rests, to reuse its allocation.
        self.slots[s].resting = if kept.is_empty() { resting } else { kept };
        Ok(())
    }

    fn cancel_resting(&mut self, s: usize) -> Result<()> {
        let slot = &mut self.slots[s];
        for mut order in slot.resting.drain(..) {
            order.cancel()?;
            self.orders.push(order);
        }
        Ok(())
    }

    #[cold]
    #[inline(never)]
    fn check_exits(&mut self, s: usize, bar: &Bar) -> Result<()> {
        let position = &self.portfolio.positions()[s];
        let Some(trigger) = exit_on_bar(position, bar)? else {
            return Ok(());
        };
        let id = self.next_id();
        let order = trigger.to_order(id, bar.timestamp);
        self.exits.push(ExitEvent {
            order_id: id,
            symbol: trigger.symbol,
            reason: trigger.reason,
            timestamp: bar.timestamp,
            trigger_price: trigger.price,
        });
        self.execute(order, bar, trigger.price).map(drop)
    }

    /// Runs an order through the execution pipeline and records the outcome; gives a
    /// limit order the bar did not reach back.
    fn execute(&mut self, mut order: Order, bar: &Bar, reference: f64) -> Result<Option<Order>> {
        let outcome = self.config.execution.execute(
            &mut order,
            &mut self.portfolio,
            &self.config.risk_limits,
            bar,
            reference,
        )?;
        match outcome {
            OrderOutcome::Filled { fill, .. } => self.fills.push(fill),
            OrderOutcome::Rejected(_) => {}
            OrderOutcome::Pending => return Ok(Some(order)),
        }
        self.orders.push(order);
        Ok(None)
    }

    /// The order a decision asks for at `price_of(side)` (the expected fill price),
    /// or `None` when there is nothing to trade.
    fn plan(
        &self,
        s: usize,
        row: usize,
        decision: &Decision,
        price_of: impl Fn(Side) -> f64,
    ) -> Result<Option<Leg>> {
        let position = &self.portfolio.positions()[s];
        let held = position.quantity;
        let fixed = |side, quantity: f64, opens| {
            Some(Leg {
                side,
                quantity,
                opens,
                sized_at: None,
            })
        };
        let leg = match decision.action {
            Action::Hold | Action::Cancel => None,
            Action::Buy { quantity: Some(q) } => fixed(Side::Buy, q, true),
            Action::Sell { quantity: Some(q) } => fixed(Side::Sell, q, true),
            Action::Buy { quantity: None } => {
                Some(self.sized(s, row, decision, Side::Buy, 0.0, &price_of)?)
            }
            Action::Sell { quantity: None } => {
                Some(self.sized(s, row, decision, Side::Sell, 0.0, &price_of)?)
            }
            Action::Target { quantity: target } => {
                if !target.is_finite() {
                    return Err(self.invalid(
                        s,
                        row,
                        Error::InvalidInput {
                            field: "target",
                            value: target,
                            reason: "must be finite",
                        },
                    ));
                }
                if quantities_equal(target, held) {
                    None
                } else {
                    let delta = target - held;
                    let side = if delta > 0.0 { Side::Buy } else { Side::Sell };
                    // Opens, increases or flips into a position on the order's side.
                    let opens = target != 0.0 && (target * held < 0.0 || target.abs() > held.abs());
                    fixed(side, delta.abs(), opens)
                }
            }
            Action::Enter { side } => {
                if held * side.sign() > 0.0 {
                    None
                } else {
                    // Close the opposite position (if any) and open a sized one, in
                    // one flipping order; size from the equity after the close.
                    Some(self.sized(s, row, decision, side, held.abs(), &price_of)?)
                }
            }
        };
        Ok(leg)
    }

    /// A leg on `side` of `closing` units (closing an opposite position) plus the
    /// configured size, sized from the equity after the closing part at the expected
    /// fill price.
    fn sized(
        &self,
        s: usize,
        row: usize,
        decision: &Decision,
        side: Side,
        closing: f64,
        price_of: &impl Fn(Side) -> f64,
    ) -> Result<Leg> {
        let price = price_of(side);
        let position = &self.portfolio.positions()[s];
        let commission = &self.config.execution.commission;
        let mut equity = self.portfolio.equity();
        if closing > 0.0 {
            // Equity after closing at `price`: the position revalued at the fill
            // price, less the commission's rate part (the sizing takes the fixed fee
            // off once, and the flip pays it once).
            equity += position.quantity * (price - position.current_price)
                - commission.rate * closing * price;
        }
        let instrument = self
            .portfolio
            .instruments()
            .instrument(SymbolId(s as u32))?;
        let quantity = self
            .config
            .sizing
            .quantity(
                SizingInput {
                    equity,
                    price,
                    confidence: decision.confidence,
                },
                instrument,
                &self.config.risk_limits,
                commission,
            )
            .map_err(|error| self.invalid(s, row, error))?;
        let total = if quantity > 0.0 { closing + quantity } else { closing };
        Ok(Leg {
            side,
            quantity: total,
            opens: quantity > 0.0,
            sized_at: Some((equity, price)),
        })
    }

    fn order_for(&self, mut order: Order, decision: &Decision, leg: Leg) -> Order {
        if leg.opens {
            order.stop_loss = decision.stop_loss;
            order.take_profit = decision.take_profit;
        }
        order
    }

    fn reject_zero_size(&mut self, mut order: Order, leg: Leg) -> Result<()> {
        let (equity, price) = leg.sized_at.unwrap_or_default();
        let reason = format!(
            "sizing gave 0 units: {:?} of equity {equity} at price {price}",
            self.config.sizing
        );
        order.reject(reason)?;
        self.orders.push(order);
        Ok(())
    }

    fn validate(&self, s: usize, row: usize, order: &Order) -> Result<()> {
        validate_order(order, self.portfolio.instruments()).map_err(|error| self.invalid(s, row, error))
    }

    fn invalid(&self, s: usize, row: usize, source: Error) -> Error {
        Error::InvalidDecision {
            row,
            symbol: self
                .portfolio
                .instruments()
                .symbol(SymbolId(s as u32))
                .unwrap_or_default()
                .to_owned(),
            source: Box::new(source),
        }
    }

    fn next_id(&mut self) -> u64 {
        let id = self.next_order_id;
        self.next_order_id += 1;
        id
    }
}
