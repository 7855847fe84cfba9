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
//! decision that sizes to zero units (the equity cannot pay for one unit) places no
//! order and is counted in [`BacktestResult::zero_size_decisions`]: a strategy that
//! keeps asking from an empty account would otherwise add an order per bar. A
//! decision whose order is invalid
//! (NaN or fractional quantity on a whole-unit instrument, bad limit or exit levels)
//! stops the run with [`Error::InvalidDecision`]: that is a bug in the strategy.
//!
//! A decision without a quantity is sized by the configured
//! [`Sizing`](crate::order::Sizing); a sized *buy* is then capped at
//! [`max_affordable_quantity`] of the cash, so with several positions open a fraction
//! of equity that exceeds the cash buys what the cash affords instead of being refused
//! (an explicit quantity is never changed: the risk check accepts or refuses it).
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
//! happen, their buffers growing to the count the run's rate so far projects
//! (`make_room`); nothing else does. On a run of 65,536 bars or more, the metrics' pass
//! over the curve runs on a second thread of rayon's pool while the curve is written
//! (`Backtester::measured`), so it costs the run only its last blocks and the tails'
//! selections among a few thousand values.
//!
//! # The fast path over quiet bars
//! In a one-symbol [`Backtester::run`], a bar is *quiet* when nothing but the
//! strategy's decision can change the portfolio: no market order waiting for the open,
//! no resting limit order, no stop-loss or take-profit on the position, no kill
//! switch. On a quiet bar the engine offers the strategy
//! [`Strategy::fast_forward`]: a strategy whose decisions depend on the bars and the
//! position only (the built-ins, [`from_signals`](super::from_signals)) runs its rule
//! over the following bars itself until it decides something, and the engine values
//! the held bars at `cash + quantity * close` in one tight loop (the same sum
//! [`Portfolio::equity`] forms) and copies their timestamps in one go. A property
//! test checks that the result is the same, bit for bit, as with `on_bar` on every
//! bar. Multi-symbol runs call `on_bar` on every bar.

use std::mem;

use super::config::{BacktestConfig, FillTiming};
use super::result::{BacktestResult, ExitEvent};
use super::strategy::{Action, Ahead, Context, Decision, FastForward, History, Strategy};
use crate::data::{Bar, BarSeries};
use crate::error::{Error, Result};
use crate::execution::{Fill, OrderOutcome};
use crate::metrics::Metrics;
use crate::metrics::feed::{CurveFeed, CurveWriter};
use crate::order::{
    Instrument, Order, Side, SizingInput, SymbolId, max_affordable_quantity, quantities_equal,
    validate_order,
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

    /// Runs `strategy` over one series. The symbol is the series' symbol, or
    /// [`DEFAULT_SYMBOL`] when it has none.
    ///
    /// Each bar, in order: (1) with [`FillTiming::NextOpen`] the market order
    /// decided on the previous bar is sized and filled at this bar's open; (2) resting
    /// limit orders fill if the bar crosses them; (3) a position with a stop-loss or
    /// take-profit is checked against the bar's open, high and low (the position
    /// opened at this open included); (4) the symbol is marked at the close; (5) the
    /// strategy decides, and with [`FillTiming::ThisClose`] a market order fills at
    /// the close. Then the equity point is recorded. See the
    /// [`backtest` module](crate::backtest) for the conventions.
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
        let n = bar_timestamps.len();
        let timestamps = || {
            let mut timestamps = Vec::with_capacity(n + 1);
            timestamps.push(bar_timestamps[0]);
            timestamps.extend_from_slice(bar_timestamps);
            timestamps
        };
        self.measured(n + 1, timestamps, |curve| {
            let close = series.close();
            let mut engine = Engine::new(&self.config, [name], curve)?;
            let mut row = 0;
            while row < n {
                engine.before_close(0, series, row)?;
                engine.mark_close(0, series, row);
                if engine.is_quiet(0) {
                    let ctx = engine.context(0, series, row);
                    match strategy.fast_forward(&ctx, Ahead::new(series, row)) {
                        FastForward::Unsupported => {}
                        FastForward::HoldsToEnd => {
                            engine.record_held(&close[row..]);
                            engine.mark_close(0, series, n - 1);
                            break;
                        }
                        FastForward::DecidesAt { index, decision } => {
                            if !(row..n).contains(&index) {
                                return Err(engine.fast_forward_out_of_range(row, index));
                            }
                            engine.record_held(&close[row..index]);
                            engine.mark_close(0, series, index);
                            if !decision.is_hold() {
                                engine.act(0, series, index, decision)?;
                            }
                            engine.record_equity();
                            row = index + 1;
                            continue;
                        }
                    }
                }
                engine.decide(0, series, row, strategy)?;
                engine.record_equity();
                row += 1;
            }
            Ok(engine.into_records())
        })
    }

    /// Runs `simulate`, which writes a curve of at most `points` points to the writer
    /// it is given and returns the run's records, builds the curve's timestamps with
    /// `timestamps`, and computes the metrics of that curve.
    ///
    /// On a long curve, when the global rayon pool has a second thread and this thread
    /// is not one of its workers (a sweep keeps them busy with runs of its own), that
    /// second thread does all but the simulation *while* the simulation writes the
    /// curve ([`CurveFeed`]): it has the curve's pages mapped, builds the timestamps
    /// (8 MB for a million bars) and makes the metrics' pass over the curve, and only
    /// the tails are left when the curve is complete. The metrics are the same either way, bit for bit but for the CVaR
    /// (a few ulps; see `metrics/curve.rs`); a test checks.
    ///
    /// While it waits for the curve, that thread runs the pool's other pending jobs,
    /// so a strategy that uses the pool itself cannot deadlock with it.
    pub(crate) fn measured(
        &self,
        points: usize,
        timestamps: impl FnOnce() -> Vec<i64> + Send,
        simulate: impl FnOnce(CurveWriter<'_>) -> Result<Records>,
    ) -> Result<BacktestResult> {
        let feed = CurveFeed::with_capacity(points);
        let config = &self.config.metrics;
        let (records, timestamps, pass) = if overlaps(points) {
            let (mut pass, mut stamps) = (None, Vec::new());
            let run = rayon::in_place_scope(|scope| {
                scope.spawn(|_| {
                    feed.prefault();
                    stamps = timestamps();
                    pass = Some(Metrics::scan_feed(&feed, config));
                });
                simulate(feed.writer())
            });
            (run?, stamps, pass)
        } else {
            (simulate(feed.writer())?, timestamps(), None)
        };
        let equity = feed.into_vec();
        debug_assert_eq!(timestamps.len(), equity.len());
        let trade_pnls = records.portfolio.round_trip_pnls();
        // The timestamps are a validated series' (strictly increasing, the first
        // repeated) or the union of several, in order: no need to read them again.
        let metrics = match pass {
            Some(pass) => Metrics::from_feed(pass, &timestamps, &equity, &trade_pnls, config)?,
            None => {
                Metrics::compute_with_sorted_timestamps(&timestamps, &equity, &trade_pnls, config)?
            }
        };
        Ok(records.result(timestamps, equity, metrics))
    }
}

/// Curves from this many points have their metrics computed while they are written
/// (see [`Backtester::measured`]): waking the second thread costs some tens of
/// microseconds, the pass about 3 ns a point.
const OVERLAP_FROM: usize = 1 << 16;

/// True when a run of `points` points computes its metrics on a second thread.
fn overlaps(points: usize) -> bool {
    points >= OVERLAP_FROM
        && rayon::current_thread_index().is_none()
        && rayon::current_num_threads() > 1
}

/// Makes room for one more of a run's records (orders, fills, round trips),
/// `(written, points)` the points of the
/// curve written so far and in all. A full `records` grows to the count the run's
/// rate so far projects for the whole run, a quarter more, instead of doubling: a
/// steady strategy's records are then copied a few times while they are small, not
/// at each doubling up to megabytes (the orders and fills of the million-bar bench,
/// 5 MB, cost about 0.5 ms of copies). At least double, as `Vec` grows (amortized
/// O(1) per record); beyond that, at most one record per point still to come (where
/// vectorbt sizes its order records for one order per bar from the start).
#[inline(always)]
fn make_room<T>(records: &mut Vec<T>, (written, points): (usize, usize)) {
    let len = records.len();
    if len < records.capacity() || len == 0 {
        return;
    }
    make_room_cold(records, written, points);
}

#[cold]
#[inline(never)]
fn make_room_cold<T>(records: &mut Vec<T>, written: usize, points: usize) {
    let len = records.len();
    let projected = (len as f64 * (points as f64 / written.max(1) as f64) * 1.25) as usize;
    let capacity = projected
        .min(len + points.saturating_sub(written))
        .max(2 * len);
    records.reserve_exact(capacity - len);
}

/// What a run leaves besides its curve: the portfolio and the records.
pub(crate) struct Records {
    portfolio: Portfolio,
    orders: Vec<Order>,
    fills: Vec<Fill>,
    exits: Vec<ExitEvent>,
    zero_size_decisions: usize,
}

impl Records {
    /// The run's result; `timestamps` has one entry per point of `equity`.
    fn result(self, timestamps: Vec<i64>, equity: Vec<f64>, metrics: Metrics) -> BacktestResult {
        let last = timestamps[timestamps.len() - 1];
        let symbols = self
            .portfolio
            .instruments()
            .iter()
            .map(|(_, instrument)| instrument.symbol.clone())
            .collect();
        let final_snapshot = self.portfolio.snapshot(last);
        let final_positions = self.portfolio.positions().to_vec();
        BacktestResult {
            symbols,
            final_snapshot,
            final_positions,
            trades: self.portfolio.into_round_trips(),
            timestamps,
            equity,
            orders: self.orders,
            fills: self.fills,
            exits: self.exits,
            zero_size_decisions: self.zero_size_decisions,
            metrics,
        }
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
    /// True when the configured sizing chose the quantity.
    sized: bool,
}

impl Leg {
    /// True when sizing gave no unit (an explicit zero is an invalid decision instead).
    fn sized_to_zero(&self) -> bool {
        self.sized && self.quantity == 0.0
    }
}

/// The state of one run: the portfolio, per-symbol slots and the records.
pub(crate) struct Engine<'c> {
    config: &'c BacktestConfig,
    /// The equity curve, one point per recorded bar after the initial capital.
    equity: CurveWriter<'c>,
    portfolio: Portfolio,
    slots: Vec<Slot>,
    orders: Vec<Order>,
    fills: Vec<Fill>,
    exits: Vec<ExitEvent>,
    next_order_id: u64,
    zero_size_decisions: usize,
    kill_switch: bool,
}

impl<'c> Engine<'c> {
    /// A fresh portfolio with one instrument per name (ids in order), and the equity
    /// curve written to `equity`, from the initial capital on.
    pub(crate) fn new<'n>(
        config: &'c BacktestConfig,
        names: impl IntoIterator<Item = &'n str>,
        mut equity: CurveWriter<'c>,
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
        equity.push(config.initial_capital);
        Ok(Engine {
            config,
            equity,
            portfolio,
            slots,
            orders: Vec::new(),
            fills: Vec::new(),
            exits: Vec::new(),
            next_order_id: 1,
            zero_size_decisions: 0,
            kill_switch: config.risk_limits.max_drawdown.is_some(),
        })
    }

    /// Steps 1-3 of the bar: the pending market order at the open, resting limit
    /// orders, exits. Free when there is nothing to do.
    #[inline(always)]
    pub(crate) fn before_close(&mut self, s: usize, series: &BarSeries, row: usize) -> Result<()> {
        let slot = &self.slots[s];
        if slot.pending.is_some() {
            self.fill_pending(s, series, row)?;
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

    /// Step 4: marks the symbol at the bar's close (a series' prices are checked when
    /// it is built, so there is nothing to check here).
    #[inline(always)]
    pub(crate) fn mark_close(&mut self, s: usize, series: &BarSeries, row: usize) {
        self.portfolio.mark_valid(s, series.close()[row]);
    }

    /// What the strategy sees on `row` of symbol `s`.
    #[inline(always)]
    pub(crate) fn context<'a>(
        &'a self,
        s: usize,
        series: &'a BarSeries,
        row: usize,
    ) -> Context<'a> {
        Context {
            history: History::from_parts(series, row),
            portfolio: &self.portfolio,
            symbol: SymbolId(s as u32),
            open_orders: &self.slots[s].resting,
        }
    }

    /// Step 5: asks the strategy and acts on the decision.
    #[inline(always)]
    pub(crate) fn decide<S: Strategy>(
        &mut self,
        s: usize,
        series: &BarSeries,
        row: usize,
        strategy: &mut S,
    ) -> Result<()> {
        let decision = strategy.on_bar(&self.context(s, series, row));
        if decision.is_hold() {
            return Ok(());
        }
        self.act(s, series, row, decision)
    }

    /// True when nothing but the strategy's decision can change the portfolio on the
    /// coming bars of symbol `s`: no market order waiting for the open, no resting
    /// limit order, no exit levels on the position, no kill switch to update. Then
    /// [`Strategy::fast_forward`] may skip bars.
    #[inline(always)]
    pub(crate) fn is_quiet(&self, s: usize) -> bool {
        let slot = &self.slots[s];
        let position = &self.portfolio.positions()[s];
        slot.pending.is_none()
            && slot.resting.is_empty()
            && position.stop_loss.is_none()
            && position.take_profit.is_none()
            && !self.kill_switch
    }

    /// Equity points of held bars in a one-symbol run: the cash plus the position at
    /// each close, exactly the sum [`Portfolio::equity`] forms after a mark.
    #[inline(always)]
    pub(crate) fn record_held(&mut self, close: &[f64]) {
        debug_assert_eq!(self.portfolio.positions().len(), 1);
        let cash = self.portfolio.cash();
        let quantity = self.portfolio.positions()[0].quantity;
        self.equity.extend_held(cash, quantity, close);
    }

    #[cold]
    #[inline(never)]
    fn fast_forward_out_of_range(&self, row: usize, index: usize) -> Error {
        self.invalid(
            0,
            row,
            Error::invalid_parameter(
                "fast_forward",
                index,
                "must be the index of the current or a later bar",
            ),
        )
    }

    /// Appends the equity at the current marks to the curve.
    #[inline(always)]
    pub(crate) fn record_equity(&mut self) {
        self.equity.push(self.portfolio.equity());
        if self.kill_switch {
            self.portfolio.update_drawdown();
        }
    }

    /// The records of the run, the orders in id order; the curve is complete.
    pub(crate) fn into_records(mut self) -> Records {
        for slot in &mut self.slots {
            self.orders.append(&mut slot.resting);
        }
        // Already in id order unless limit orders rested (then they were kept aside);
        // the check is a fraction of the sort's pass over the 136-byte orders.
        if !self.orders.is_sorted_by_key(|order| order.id) {
            self.orders.sort_by_key(|order| order.id);
        }
        Records {
            portfolio: self.portfolio,
            orders: self.orders,
            fills: self.fills,
            exits: self.exits,
            zero_size_decisions: self.zero_size_decisions,
        }
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
                let (timestamp, close) = (series.timestamps()[row], series.close()[row]);
                self.execute_market(s, row, created_at, decision, timestamp, close)?;
                // The fill marked the symbol at its (slipped) fill price.
                self.portfolio.mark(SymbolId(s as u32), close)
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
    fn fill_pending(&mut self, s: usize, series: &BarSeries, row: usize) -> Result<()> {
        let Some(pending) = self.slots[s].pending.take() else {
            return Ok(());
        };
        self.execute_market(
            s,
            pending.row,
            pending.created_at,
            pending.decision,
            series.timestamps()[row],
            series.open()[row],
        )
    }

    /// Sizes the decision at the market fill price of `reference`, then executes.
    fn execute_market(
        &mut self,
        s: usize,
        row: usize,
        created_at: i64,
        decision: Decision,
        timestamp: i64,
        reference: f64,
    ) -> Result<()> {
        let model = self.config.execution;
        let Some(leg) = self.plan(s, row, &decision, |side| {
            model.market_price(side, reference)
        })?
        else {
            return Ok(());
        };
        if leg.sized_to_zero() {
            self.zero_size_decisions += 1;
            return Ok(());
        }
        let id = self.next_id();
        let order = self.order_for(
            Order::market(id, SymbolId(s as u32), leg.side, leg.quantity, created_at),
            &decision,
            leg,
        );
        self.validate(s, row, &order)?;
        // The fill may close a round trip.
        make_room(self.portfolio.round_trips_buffer(), self.equity.progress());
        let mut order = order;
        let outcome = self.config.execution.execute_market_at(
            &mut order,
            &mut self.portfolio,
            &self.config.risk_limits,
            timestamp,
            reference,
        )?;
        self.record(order, outcome);
        Ok(())
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
        if leg.sized_to_zero() {
            self.zero_size_decisions += 1;
            return Ok(());
        }
        let id = self.next_id();
        let order = self.order_for(
            Order::limit(
                id,
                SymbolId(s as u32),
                leg.side,
                leg.quantity,
                limit,
                created_at,
            ),
            &decision,
            leg,
        );
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
            make_room(&mut self.orders, self.equity.progress());
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
        if outcome == OrderOutcome::Pending {
            return Ok(Some(order));
        }
        self.record(order, outcome);
        Ok(None)
    }

    /// Keeps a filled or rejected order and its fill.
    fn record(&mut self, order: Order, outcome: OrderOutcome) {
        let progress = self.equity.progress();
        if let OrderOutcome::Filled { fill, .. } = outcome {
            make_room(&mut self.fills, progress);
            self.fills.push(fill);
        }
        make_room(&mut self.orders, progress);
        self.orders.push(order);
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
                sized: false,
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
    /// fill price; a buy is capped at what the cash (after the closing part) affords.
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
        let mut cash = self.portfolio.cash();
        if closing > 0.0 {
            // Equity and cash after closing at `price`: the position revalued at, or
            // turned into cash at, the fill price, less the commission's rate part
            // (the sizing takes the fixed fee off once, and the flip pays it once).
            let rate_part = commission.rate * closing * price;
            equity += position.quantity * (price - position.current_price) - rate_part;
            cash += position.quantity * price - rate_part;
        }
        let instrument = self
            .portfolio
            .instruments()
            .instrument(SymbolId(s as u32))?;
        let mut quantity = self
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
        if side == Side::Buy && quantity > 0.0 {
            // A fraction of *equity* can exceed the cash when other positions are
            // held; size to what the cash affords rather than be refused.
            let affordable = max_affordable_quantity(cash, price, commission, instrument)
                .map_err(|error| self.invalid(s, row, error))?;
            quantity = quantity.min(affordable);
        }
        let total = if quantity > 0.0 {
            closing + quantity
        } else {
            closing
        };
        Ok(Leg {
            side,
            quantity: total,
            opens: quantity > 0.0,
            sized: true,
        })
    }

    fn order_for(&self, mut order: Order, decision: &Decision, leg: Leg) -> Order {
        if leg.opens {
            order.stop_loss = decision.stop_loss;
            order.take_profit = decision.take_profit;
        }
        order
    }

    fn validate(&self, s: usize, row: usize, order: &Order) -> Result<()> {
        validate_order(order, self.portfolio.instruments())
            .map_err(|error| self.invalid(s, row, error))
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::backtest::strategy::from_fn;
    use crate::execution::{CommissionModel, ExecutionModel};
    use crate::order::{OrderKind, OrderStatus, Sizing};
    use crate::portfolio::PositionSide;
    use crate::risk::{ExitReason, RiskLimits};

    pub(crate) const DAY: i64 = 86_400;

    fn approx(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-9, "{a} != {b}");
    }

    fn approx_all(a: &[f64], b: &[f64]) {
        assert_eq!(a.len(), b.len(), "{a:?} vs {b:?}");
        for (x, y) in a.iter().zip(b) {
            approx(*x, *y);
        }
    }

    /// Five daily bars, `(open, high, low, close)`:
    /// ```text
    /// row  day  open  high  low  close
    ///  0    1   100   101    99   100
    ///  1    2   102   104   101   103
    ///  2    3   105   107   104   106
    ///  3    4   104   105   100   101
    ///  4    5    99   100    97    98
    /// ```
    pub(crate) fn five_bars() -> BarSeries {
        BarSeries::new(
            (1..=5).map(|d| d * DAY).collect(),
            vec![100.0, 102.0, 105.0, 104.0, 99.0],
            vec![101.0, 104.0, 107.0, 105.0, 100.0],
            vec![99.0, 101.0, 104.0, 100.0, 97.0],
            vec![100.0, 103.0, 106.0, 101.0, 98.0],
            vec![1_000.0; 5],
        )
        .unwrap()
        .with_symbol("ACME")
    }

    pub(crate) fn config(timing: FillTiming, rate: f64, fee: f64, bps: f64) -> BacktestConfig {
        BacktestConfig {
            initial_capital: 10_000.0,
            execution: ExecutionModel::new(CommissionModel::new(rate, fee).unwrap(), bps).unwrap(),
            fill_timing: timing,
            ..BacktestConfig::default()
        }
    }

    /// A strategy that answers `script[row]` and holds elsewhere.
    fn script(script: Vec<(usize, Decision)>) -> impl FnMut(&Context<'_>) -> Decision {
        move |ctx: &Context<'_>| {
            script
                .iter()
                .find(|(row, _)| *row == ctx.index())
                .map_or(Decision::hold(), |(_, d)| *d)
        }
    }

    fn run(config: BacktestConfig, steps: Vec<(usize, Decision)>) -> BacktestResult {
        Backtester::new(config)
            .unwrap()
            .run(&five_bars(), &mut script(steps))
            .unwrap()
    }

    #[test]
    fn next_open_round_trip_with_commission_and_slippage() {
        // 0.1 % + 1 per fill, 10 bps slippage. Buy 10 on bar 0, close on bar 2.
        // Bar 1 open 102 -> buy at 102 * 1.001 = 102.102, notional 1_021.02,
        //   commission 1.02102 + 1 = 2.02102, cash 10_000 - 1_023.04102 = 8_976.958_98;
        //   equity at close 103: 8_976.958_98 + 1_030 = 10_006.958_98.
        // Bar 2 close 106: 10_036.958_98. Close decided, fills at bar 3's open.
        // Bar 3 open 104 -> sell at 104 * 0.999 = 103.896, notional 1_038.96,
        //   commission 2.03896, cash 8_976.958_98 + 1_036.92104 = 10_013.880_02.
        let result = run(
            config(FillTiming::NextOpen, 0.001, 1.0, 10.0),
            vec![(0, Decision::buy_quantity(10.0)), (2, Decision::close())],
        );
        approx_all(
            &result.equity,
            &[
                10_000.0,
                10_000.0,
                10_006.958_98,
                10_036.958_98,
                10_013.880_02,
                10_013.880_02,
            ],
        );
        assert_eq!(
            result.timestamps,
            vec![DAY, DAY, 2 * DAY, 3 * DAY, 4 * DAY, 5 * DAY]
        );
        assert_eq!(result.trades.len(), 1);
        let trade = result.trades[0];
        assert_eq!((trade.side, trade.quantity), (PositionSide::Long, 10.0));
        assert_eq!((trade.entry_time, trade.exit_time), (2 * DAY, 4 * DAY));
        approx(trade.entry_price, 102.102);
        approx(trade.exit_price, 103.896);
        // Gross 10 * 1.794 = 17.94, commission 2.02102 + 2.03896 = 4.05998.
        approx(trade.gross_pnl, 17.94);
        approx(trade.commission, 4.05998);
        approx(trade.pnl, 13.88002);
        // Orders: created on the decision bar, filled on the next bar.
        let o = &result.orders;
        assert_eq!(o.len(), 2);
        assert_eq!(
            (o[0].id, o[0].side, o[0].created_at, o[0].filled_at),
            (1, Side::Buy, DAY, Some(2 * DAY))
        );
        assert_eq!(
            (o[1].id, o[1].side, o[1].created_at, o[1].filled_at),
            (2, Side::Sell, 3 * DAY, Some(4 * DAY))
        );
        assert!(o.iter().all(|o| o.status == OrderStatus::Filled));
        assert_eq!(result.fills.len(), 2);
        approx(result.final_snapshot.cash, 10_013.880_02);
        approx(result.metrics.total_return, 0.001_388_002);
        assert_eq!(result.metrics.trades.n_trades, 1);
    }

    #[test]
    fn this_close_round_trip_with_commission_and_slippage() {
        // Bar 0 close 100 -> buy at 100.1, notional 1_001, commission 2.001,
        //   cash 8_996.999, equity 8_996.999 + 1_000 = 9_996.999.
        // Bar 1: 8_996.999 + 1_030 = 10_026.999.
        // Bar 2 close 106 -> sell at 105.894, notional 1_058.94, commission 2.05894,
        //   cash 8_996.999 + 1_056.88106 = 10_053.880_06.
        let result = run(
            config(FillTiming::ThisClose, 0.001, 1.0, 10.0),
            vec![(0, Decision::buy_quantity(10.0)), (2, Decision::close())],
        );
        approx_all(
            &result.equity,
            &[
                10_000.0,
                9_996.999,
                10_026.999,
                10_053.880_06,
                10_053.880_06,
                10_053.880_06,
            ],
        );
        let trade = result.trades[0];
        assert_eq!((trade.entry_time, trade.exit_time), (DAY, 3 * DAY));
        approx(trade.entry_price, 100.1);
        approx(trade.exit_price, 105.894);
        // 10 * 5.794 - (2.001 + 2.05894) = 57.94 - 4.05994.
        approx(trade.pnl, 53.880_06);
        assert_eq!(result.orders[0].filled_at, Some(DAY));
        assert_eq!(result.orders[1].filled_at, Some(3 * DAY));
        // The curve is marked at the close, not at the slipped fill price.
        approx(result.returns()[0], 9_996.999 / 10_000.0 - 1.0);
    }

    #[test]
    fn all_in_sizing_happens_at_the_fill_price() {
        // NextOpen, 0.1 % + 1, 10 bps: bar 1 fill price 102.102;
        // (10_000 - 1) / (102.102 * 1.001) = 97.83 -> 97 units, costing
        // 97 * 102.102 = 9_903.894 + 9.903894 + 1 -> cash 85.202106;
        // equity at close 103: 85.202106 + 9_991 = 10_076.202106.
        let result = run(
            config(FillTiming::NextOpen, 0.001, 1.0, 10.0),
            vec![(0, Decision::buy())],
        );
        assert_eq!(result.orders[0].quantity, 97.0);
        approx(result.equity[2], 10_076.202_106);
        approx(result.final_snapshot.cash, 85.202_106);
        // Still open at the end: marked at 98, no closed trade.
        approx(result.final_equity(), 85.202_106 + 97.0 * 98.0);
        assert!(result.trades.is_empty());
        assert_eq!(result.final_positions[0].quantity, 97.0);
    }

    #[test]
    fn limit_orders_fill_when_crossed_rest_and_are_cancelled() {
        // Bar 0: buy 10 limit 101.5 -> bar 1 (low 101) fills at min(101.5, open 102) = 101.5.
        // Bar 1: sell 10 limit 110 -> highs 107, 105 never reach it.
        // Bar 3: buy 1 limit 90 replaces (cancels) the sell; lows 97 never reach 90.
        let result = run(
            config(FillTiming::NextOpen, 0.0, 0.0, 25.0),
            vec![
                (0, Decision::buy_quantity(10.0).limit(101.5)),
                (1, Decision::sell_quantity(10.0).limit(110.0)),
                (3, Decision::buy_quantity(1.0).limit(90.0)),
            ],
        );
        let o = &result.orders;
        assert_eq!(o.len(), 3);
        assert_eq!(o[0].status, OrderStatus::Filled);
        assert_eq!(o[0].fill_price, Some(101.5)); // no slippage on limit fills
        assert_eq!(o[0].filled_at, Some(2 * DAY));
        assert_eq!(o[1].status, OrderStatus::Cancelled);
        assert_eq!(o[1].kind, OrderKind::Limit { price: 110.0 });
        assert_eq!(o[2].status, OrderStatus::New); // still resting at the end
        // Cash 10_000 - 1_015 = 8_985; marks 103, 106, 101, 98.
        approx_all(
            &result.equity,
            &[10_000.0, 10_000.0, 10_015.0, 10_045.0, 9_995.0, 9_965.0],
        );

        // A buy limit at 106 placed on bar 1: bar 2 opens at 105, through the limit,
        // and fills at the better open price.
        let result = run(
            config(FillTiming::NextOpen, 0.0, 0.0, 0.0),
            vec![(1, Decision::buy_quantity(10.0).limit(106.0))],
        );
        assert_eq!(result.orders[0].fill_price, Some(105.0));
        assert_eq!(result.orders[0].filled_at, Some(3 * DAY));

        // With ThisClose a limit is still first eligible on the next bar: the buy at
        // 100.5 placed on bar 0 (whose close, 100, is below it) waits; bars 1 and 2
        // stay above it, bar 3 (open 104, low 100) fills it at 100.5.
        let result = run(
            config(FillTiming::ThisClose, 0.0, 0.0, 0.0),
            vec![(0, Decision::buy_quantity(10.0).limit(100.5))],
        );
        assert_eq!(result.orders[0].fill_price, Some(100.5));
        assert_eq!(result.orders[0].filled_at, Some(4 * DAY));
    }

    #[test]
    fn cancel_and_hold_decide_the_fate_of_a_resting_order() {
        // Placed on bar 0 at 95 (never reached); held on bar 1; cancelled on bar 2.
        let result = run(
            config(FillTiming::NextOpen, 0.0, 0.0, 0.0),
            vec![
                (0, Decision::buy_quantity(1.0).limit(95.0)),
                (2, Decision::cancel()),
            ],
        );
        assert_eq!(result.orders.len(), 1);
        assert_eq!(result.orders[0].status, OrderStatus::Cancelled);
        assert!(result.fills.is_empty());
    }

    #[test]
    fn stop_loss_hit_intrabar_fills_at_the_stop_less_slippage() {
        // ThisClose, 10 bps, no commission. Bar 1: buy 10 at 103 * 1.001 = 103.103,
        // stop 100.5. Bar 2 low 104: nothing. Bar 3 opens 104 and trades down to 100:
        // the stop fires at 100.5, sold at 100.5 * 0.999 = 100.3995.
        // Cash: 10_000 - 1_031.03 + 1_003.995 = 9_972.965.
        let result = run(
            config(FillTiming::ThisClose, 0.0, 0.0, 10.0),
            vec![(1, Decision::buy_quantity(10.0).with_stop_loss(100.5))],
        );
        assert_eq!(result.exits.len(), 1);
        let exit = result.exits[0];
        assert_eq!(
            (exit.reason, exit.trigger_price, exit.timestamp),
            (ExitReason::StopLoss, 100.5, 4 * DAY)
        );
        let trade = result.trades[0];
        approx(trade.exit_price, 100.3995);
        approx(trade.pnl, 10.0 * (100.3995 - 103.103));
        // Bar 1: 8_968.97 + 1_030; bar 2: + 1_060; then flat.
        approx_all(
            &result.equity,
            &[
                10_000.0, 10_000.0, 9_998.97, 10_028.97, 9_972.965, 9_972.965,
            ],
        );
        let closing = result
            .orders
            .iter()
            .find(|o| o.id == exit.order_id)
            .unwrap();
        assert_eq!(
            (closing.side, closing.kind, closing.created_at),
            (Side::Sell, OrderKind::Market, 4 * DAY)
        );
    }

    #[test]
    fn gap_through_the_stop_fills_at_the_open() {
        // NextOpen, no costs. Bar 1: buy 10, stop 99.5 -> filled at bar 2's open 105.
        // Bars 2 and 3 stay above 99.5 (lows 104, 100); bar 4 opens at 99, below the
        // stop: sold at the open, 99, not at 99.5.
        let result = run(
            config(FillTiming::NextOpen, 0.0, 0.0, 0.0),
            vec![(1, Decision::buy_quantity(10.0).with_stop_loss(99.5))],
        );
        assert_eq!(result.exits[0].trigger_price, 99.0);
        assert_eq!(result.trades[0].exit_price, 99.0);
        approx(result.trades[0].pnl, -60.0);
        // Cash 8_950 after the buy; marks 106, 101; then 9_940 flat.
        approx_all(
            &result.equity,
            &[10_000.0, 10_000.0, 10_000.0, 10_010.0, 9_960.0, 9_940.0],
        );

        // A stop of 104.5 is inside bar 2 itself (low 104) after the entry at its open:
        // checked on the entry bar too, so out at 104.5 on bar 2.
        let result = run(
            config(FillTiming::NextOpen, 0.0, 0.0, 0.0),
            vec![(1, Decision::buy_quantity(10.0).with_stop_loss(104.5))],
        );
        assert_eq!(result.exits[0].timestamp, 3 * DAY);
        approx(result.trades[0].pnl, 10.0 * (104.5 - 105.0));
    }

    #[test]
    fn take_profit_and_stop_first_when_both_are_inside_a_bar() {
        // ThisClose, no costs: bought 10 at bar 0's close 100 with target 103.5; bar 1
        // (high 104) takes profit at 103.5.
        let result = run(
            config(FillTiming::ThisClose, 0.0, 0.0, 0.0),
            vec![(
                0,
                Decision::buy_quantity(10.0)
                    .with_stop_loss(95.0)
                    .with_take_profit(103.5),
            )],
        );
        assert_eq!(result.exits[0].reason, ExitReason::TakeProfit);
        approx(result.trades[0].pnl, 35.0);
        // Bought at bar 2's close 106 with stop 100.5 and target 104.9: bar 3 (open 104,
        // high 105, low 100) reaches both; the stop is assumed first.
        let result = run(
            config(FillTiming::ThisClose, 0.0, 0.0, 0.0),
            vec![(
                2,
                Decision::buy_quantity(10.0)
                    .with_stop_loss(100.5)
                    .with_take_profit(104.9),
            )],
        );
        // The open (104) is between the levels, so no gap decides; the high (105)
        // reaches the target and the low (100) the stop: the stop is assumed first.
        assert_eq!(result.exits[0].reason, ExitReason::StopLoss);
        approx(result.trades[0].exit_price, 100.5);
    }

    #[test]
    fn selling_more_than_held_is_a_rejected_order_with_reason() {
        // ThisClose, no costs: buy 5 at 100, then ask to sell 10 at 103.
        let result = run(
            config(FillTiming::ThisClose, 0.0, 0.0, 0.0),
            vec![
                (0, Decision::buy_quantity(5.0)),
                (1, Decision::sell_quantity(10.0)),
            ],
        );
        let rejected: Vec<&Order> = result.rejected_orders().collect();
        assert_eq!(rejected.len(), 1);
        assert_eq!(
            rejected[0].status,
            OrderStatus::Rejected {
                reason: "insufficient position: selling 10, 5 held, short selling not allowed"
                    .into()
            }
        );
        assert_eq!(result.final_positions[0].quantity, 5.0);
        // Cash 9_500 + 5 * 98 at the end.
        approx(result.final_equity(), 9_990.0);
    }

    #[test]
    fn too_little_equity_for_one_unit_places_no_order_and_is_counted() {
        // 50 of capital, price 100: all-in sizing gives 0 whole units, on each of the
        // three bars asked; an explicit order on bar 3 still gets id 1.
        let mut config = config(FillTiming::ThisClose, 0.0, 0.0, 0.0);
        config.initial_capital = 50.0;
        let result = run(
            config,
            vec![
                (0, Decision::buy()),
                (1, Decision::buy()),
                (2, Decision::buy().limit(60.0)),
                (3, Decision::buy_quantity(1.0)),
            ],
        );
        assert_eq!(result.zero_size_decisions, 3);
        assert_eq!(result.orders.len(), 1);
        assert_eq!(result.orders[0].id, 1);
        // 1 at 101 costs more than 50: refused by the risk check, with the reason.
        assert!(matches!(
            result.orders[0].status,
            OrderStatus::Rejected { .. }
        ));
    }

    #[test]
    fn sized_buys_are_capped_at_the_cash() {
        // ThisClose, no costs, 80 % of equity per sized buy. Bar 0: buy 50 at 100
        // (cash 5_000). Bar 1 at 103: equity 5_000 + 5_150 = 10_150; 80 % = 8_120
        // -> 78 units, but 5_000 of cash affords floor(5_000 / 103) = 48: buy 48.
        let mut config = config(FillTiming::ThisClose, 0.0, 0.0, 0.0);
        config.sizing = Sizing::FractionOfEquity(0.8);
        let result = run(
            config,
            vec![(0, Decision::buy_quantity(50.0)), (1, Decision::buy())],
        );
        assert_eq!(result.orders[1].quantity, 48.0);
        assert_eq!(result.orders[1].status, OrderStatus::Filled);
        approx(result.final_snapshot.cash, 5_000.0 - 48.0 * 103.0);
        // An explicit quantity is not capped: 60 at 103 is refused for cash.
        let result = run(
            config,
            vec![
                (0, Decision::buy_quantity(50.0)),
                (1, Decision::buy_quantity(60.0)),
            ],
        );
        assert!(matches!(
            result.orders[1].status,
            OrderStatus::Rejected { .. }
        ));
    }

    #[test]
    fn enter_flips_a_short_into_a_sized_long_in_one_order() {
        // Shorts allowed, ThisClose, no costs. Bar 0: enter short all-in at 100 ->
        // short 100, cash 20_000. Bar 1 at 103: equity 20_000 - 10_300 = 9_700; enter
        // long: close 100 and buy floor(9_700 / 103) = 94 more -> one buy of 194,
        // cash 20_000 - 19_982 = 18, equity 18 + 94 * 103 = 9_700.
        let mut config = config(FillTiming::ThisClose, 0.0, 0.0, 0.0);
        config.risk_limits = RiskLimits {
            allow_short: true,
            ..RiskLimits::default()
        };
        let result = run(
            config,
            vec![
                (0, Decision::enter_short()),
                (1, Decision::enter_long()),
                (2, Decision::enter_long()),
            ],
        );
        assert_eq!(result.orders.len(), 2); // already long on bar 2: nothing
        assert_eq!(
            (result.orders[0].side, result.orders[0].quantity),
            (Side::Sell, 100.0)
        );
        assert_eq!(
            (result.orders[1].side, result.orders[1].quantity),
            (Side::Buy, 194.0)
        );
        approx(result.equity[2], 9_700.0);
        approx(result.trades[0].pnl, -300.0);
        assert_eq!(result.trades[0].side, PositionSide::Short);
        approx(result.final_snapshot.cash, 18.0);
    }

    #[test]
    fn target_trades_the_difference() {
        // ThisClose, no costs: target 10 at 100, target 4 at 103 (sell 6), target 0 at 106.
        let result = run(
            config(FillTiming::ThisClose, 0.0, 0.0, 0.0),
            vec![
                (0, Decision::target(10.0)),
                (1, Decision::target(4.0)),
                (2, Decision::close()),
                (3, Decision::close()), // flat: nothing
            ],
        );
        let sides: Vec<(Side, f64)> = result.orders.iter().map(|o| (o.side, o.quantity)).collect();
        assert_eq!(
            sides,
            vec![(Side::Buy, 10.0), (Side::Sell, 6.0), (Side::Sell, 4.0)]
        );
        // 6 * 3 + 4 * 6 = 42.
        approx(result.final_equity(), 10_042.0);
        approx(result.trades.iter().map(|t| t.pnl).sum(), 42.0);
    }

    #[test]
    fn a_next_open_decision_on_the_last_bar_is_not_filled() {
        let result = run(
            config(FillTiming::NextOpen, 0.0, 0.0, 0.0),
            vec![(4, Decision::buy_quantity(1.0))],
        );
        assert!(result.orders.is_empty());
        assert!(result.fills.is_empty());
        approx(result.final_equity(), 10_000.0);
    }

    /// A fast path that answers a bar outside the series' remaining bars.
    struct OutOfRange(usize);

    impl Strategy for OutOfRange {
        fn on_bar(&mut self, _: &Context<'_>) -> Decision {
            Decision::hold()
        }

        fn fast_forward(&mut self, _: &Context<'_>, _: Ahead<'_>) -> FastForward {
            FastForward::DecidesAt {
                index: self.0,
                decision: Decision::buy_quantity(1.0),
            }
        }
    }

    #[test]
    fn a_fast_path_answer_outside_the_bars_ahead_is_a_typed_error() {
        let backtester = Backtester::new(BacktestConfig::default()).unwrap();
        let series = five_bars();
        // Past the end, on the first bar.
        let err = backtester.run(&series, &mut OutOfRange(5)).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidDecision { row: 0, source, .. }
                if matches!(**source, Error::InvalidParameter { name: "fast_forward", .. })),
            "{err:?}"
        );
        // Bar 2 is fine the first time; on bar 3 it is in the past.
        let err = backtester.run(&series, &mut OutOfRange(2)).unwrap_err();
        assert!(
            matches!(err, Error::InvalidDecision { row: 3, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn bad_input_is_a_typed_error() {
        let backtester = Backtester::new(BacktestConfig::default()).unwrap();
        let empty = BarSeries::new(vec![], vec![], vec![], vec![], vec![], vec![]).unwrap();
        assert_eq!(
            backtester.run(&empty, &mut from_fn(|_| Decision::hold())),
            Err(Error::EmptySeries {
                series: 0,
                symbol: DEFAULT_SYMBOL.into()
            })
        );
        // Half a unit of a whole-unit instrument, on bar 1.
        let err = backtester
            .run(
                &five_bars(),
                &mut script(vec![(1, Decision::buy_quantity(0.5))]),
            )
            .unwrap_err();
        let Error::InvalidDecision {
            row,
            symbol,
            source,
        } = &err
        else {
            panic!("{err:?}");
        };
        assert_eq!((*row, symbol.as_str()), (1, "ACME"));
        assert!(matches!(
            **source,
            Error::InvalidOrder {
                field: "quantity",
                ..
            }
        ));
        assert!(
            err.to_string()
                .starts_with("row 1: decision for `ACME` is invalid: "),
            "{err}"
        );
        // A NaN target, a NaN limit price, a confidence outside [0, 1].
        for decision in [
            Decision::target(f64::NAN),
            Decision::buy_quantity(1.0).limit(f64::NAN),
            Decision::buy().with_confidence(2.0),
        ] {
            let config = BacktestConfig {
                sizing: Sizing::Confidence { max_fraction: 0.5 },
                ..BacktestConfig::default()
            };
            let err = Backtester::new(config)
                .unwrap()
                .run(&five_bars(), &mut script(vec![(0, decision)]))
                .unwrap_err();
            assert!(
                matches!(err, Error::InvalidDecision { row: 0, .. }),
                "{err:?}"
            );
        }
        // An invalid configuration lists its fields.
        let err = Backtester::new(BacktestConfig {
            initial_capital: f64::NAN,
            ..BacktestConfig::default()
        })
        .unwrap_err();
        assert!(
            matches!(err, Error::InvalidConfig { ref problems, .. } if problems.len() == 1),
            "{err:?}"
        );
    }

    #[test]
    fn a_short_that_wipes_out_the_account_is_a_typed_error() {
        // Short 100 at 100 (all in, cash 20_000); the price goes to 250: equity
        // 20_000 - 25_000 = -5_000 at bar 2, so the metrics are undefined.
        let close = vec![100.0, 150.0, 250.0];
        let series = BarSeries::new(
            vec![1, 2, 3],
            close.clone(),
            close.clone(),
            close.clone(),
            close,
            vec![0.0; 3],
        )
        .unwrap();
        let config = BacktestConfig {
            fill_timing: FillTiming::ThisClose,
            risk_limits: RiskLimits {
                allow_short: true,
                ..RiskLimits::default()
            },
            ..BacktestConfig::default()
        };
        let err = Backtester::new(config)
            .unwrap()
            .run(&series, &mut script(vec![(0, Decision::enter_short())]))
            .unwrap_err();
        assert_eq!(
            err,
            Error::NonPositiveEquity {
                row: 3,
                value: -5_000.0
            }
        );
    }

    #[test]
    fn kill_switch_halts_new_buys_after_the_drawdown() {
        // ThisClose, no costs, max drawdown 2 %. Bar 2: buy 50 at 106 (cash 4_700).
        // Bar 3 at 101: equity 4_700 + 5_050 = 9_750, peak 10_000: -2.5 %, the switch
        // trips. Bar 3's close then bar 4's buy are refused; the close is allowed.
        let mut config = config(FillTiming::ThisClose, 0.0, 0.0, 0.0);
        config.risk_limits.max_drawdown = Some(0.02);
        let result = run(
            config,
            vec![
                (2, Decision::buy_quantity(50.0)),
                (3, Decision::buy_quantity(1.0)),
                (4, Decision::close()),
            ],
        );
        let statuses: Vec<String> = result.orders.iter().map(|o| o.status.to_string()).collect();
        assert_eq!(statuses[0], "filled");
        assert!(statuses[1].contains("kill switch"), "{statuses:?}");
        assert_eq!(statuses[2], "filled");
    }

    /// A run long enough to compute its metrics while it writes its curve gives the
    /// same result, bit for bit, as the same run computing them afterwards (inside a
    /// rayon worker, where it does not overlap): one symbol through the fast path,
    /// several symbols, and a run whose strategy fails half-way (the same error, and
    /// no thread left waiting).
    #[test]
    fn metrics_computed_while_the_curve_is_written_are_the_same_bits() {
        use crate::backtest::MomentumStrategy;
        use crate::backtest::proptests::random_series;
        use rand::{SeedableRng, rngs::StdRng};

        let n = 3 * OVERLAP_FROM + 123;
        if rayon::current_num_threads() > 1 {
            assert!(overlaps(n + 1));
        }
        let one_thread = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        one_thread.install(|| assert!(!overlaps(n + 1)));
        let mut rng = StdRng::seed_from_u64(3);
        let series = random_series(&mut rng, n);
        let other = random_series(&mut rng, n).with_symbol("B");
        let backtester = Backtester::new(config(FillTiming::NextOpen, 0.001, 0.0, 2.0)).unwrap();
        let same = |overlapped: Result<BacktestResult>, after: Result<BacktestResult>| {
            match (overlapped, after) {
                (Ok(mut overlapped), Ok(after)) => {
                    // The CVaR's sum may split at other values (see `curve.rs`).
                    let cvar = |result: &BacktestResult| {
                        result.metrics.conditional_value_at_risk_95.unwrap()
                    };
                    let relative = (cvar(&overlapped) - cvar(&after)).abs() / cvar(&after).abs();
                    assert!(relative < 1e-12, "{relative}");
                    overlapped.metrics.conditional_value_at_risk_95 =
                        after.metrics.conditional_value_at_risk_95;
                    assert!(overlapped == after);
                    assert_eq!(
                        format!("{:?}", overlapped.metrics),
                        format!("{:?}", after.metrics)
                    );
                    overlapped.orders.len()
                }
                (Err(overlapped), Err(after)) => {
                    assert_eq!(overlapped.to_string(), after.to_string());
                    0
                }
                (overlapped, after) => panic!("{overlapped:?} vs {after:?}"),
            }
        };

        let momentum = || MomentumStrategy::new(5, 20).unwrap();
        let orders = same(
            backtester.run(&series, &mut momentum()),
            one_thread.install(|| backtester.run(&series, &mut momentum())),
        );
        assert!(orders > 1_000, "{orders}");
        let pair = [series.clone(), other];
        same(
            backtester.run_multi(&pair, &mut momentum()),
            one_thread.install(|| backtester.run_multi(&pair, &mut momentum())),
        );
        let failing = || {
            from_fn(|ctx: &Context<'_>| {
                if ctx.index() == 100_000 {
                    Decision::buy_quantity(f64::NAN)
                } else {
                    Decision::hold()
                }
            })
        };
        same(
            backtester.run(&series, &mut failing()),
            one_thread.install(|| backtester.run(&series, &mut failing())),
        );
        assert!(backtester.run(&series, &mut failing()).is_err());
    }

    /// Records grow to the count projected from the run's rate: a steady record
    /// every 36 points of a million grows the buffer twice (`Vec`'s first growth to
    /// 4, then to the projected 27,777) where doubling grows it 14 times; never less
    /// than double, never past one record per point still to come.
    #[test]
    fn records_grow_to_the_projected_count() {
        let points = 1_000_000;
        let mut records: Vec<u64> = Vec::new();
        let (mut growths, mut capacity) = (0, 0);
        for written in 1..=points {
            if written % 36 == 0 {
                make_room(&mut records, (written, points));
                records.push(written as u64);
                if records.capacity() != capacity {
                    (growths, capacity) = (growths + 1, records.capacity());
                }
            }
        }
        assert_eq!(records.len(), points / 36);
        assert_eq!(growths, 2, "Vec's first growth, then the projection");
        let mut doubling: Vec<u64> = Vec::new();
        let (mut doublings, mut capacity) = (0, 0);
        for i in 0..points / 36 {
            doubling.push(i as u64);
            if doubling.capacity() != capacity {
                (doublings, capacity) = (doublings + 1, doubling.capacity());
            }
        }
        assert!(doublings >= 13, "{doublings} doublings");

        // The first growths by hand: 4 records after 100 of 10,000 points project
        // 4 * 100 * 1.25 = 500; near the end, doubling; a burst at the start is capped
        // at one record per point still to come.
        let full = |len: usize| {
            let mut v: Vec<u64> = Vec::with_capacity(len);
            v.extend(0..len as u64);
            v
        };
        let mut v = full(4);
        make_room(&mut v, (100, 10_000));
        assert_eq!(v.capacity(), 500);
        let mut v = full(400);
        make_room(&mut v, (9_900, 10_000));
        assert_eq!(v.capacity(), 800);
        let mut v = full(4_000);
        make_room(&mut v, (4_000, 10_000));
        assert_eq!(v.capacity(), 10_000);
        let mut v = full(3);
        v.reserve_exact(1);
        let capacity = v.capacity();
        make_room(&mut v, (1, 10));
        assert_eq!(v.capacity(), capacity, "room left: nothing reserved");
    }

    /// Runs that compute their metrics on the rayon pool while a strategy of theirs
    /// also uses the pool, more at once than the pool has threads: each waiting
    /// metrics pass runs the pool's pending jobs, so no run waits forever for a pool
    /// busy waiting for it. (A deadlock here would hang: the runs report through a
    /// channel, and the test fails after a generous minute instead.)
    #[test]
    fn runs_whose_strategies_use_the_pool_do_not_wait_for_each_other() {
        use crate::backtest::proptests::random_series;
        use rand::{SeedableRng, rngs::StdRng};
        use rayon::prelude::*;

        let n = OVERLAP_FROM + 1_000;
        let series = random_series(&mut StdRng::seed_from_u64(8), n);
        let runs = rayon::current_num_threads() + 1;
        let (done, reports) = std::sync::mpsc::channel();
        for _ in 0..runs {
            let (series, done) = (series.clone(), done.clone());
            std::thread::spawn(move || {
                let mut strategy = from_fn(|ctx: &Context<'_>| {
                    if ctx.index().is_multiple_of(4_096) {
                        let sum: u64 = (0..1_000u64).into_par_iter().sum();
                        assert_eq!(sum, 499_500);
                    }
                    Decision::hold()
                });
                let backtester = Backtester::new(BacktestConfig::default()).unwrap();
                let result = backtester
                    .run(&series, &mut strategy)
                    .map(|r| r.equity.len());
                done.send(result).unwrap();
            });
        }
        for _ in 0..runs {
            let report = reports.recv_timeout(std::time::Duration::from_secs(60));
            assert_eq!(report.expect("a run finished").unwrap(), n + 1);
        }
    }
}
