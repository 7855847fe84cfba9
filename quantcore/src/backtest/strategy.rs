//! What a strategy sees and what it answers: [`Strategy`], [`Context`], [`History`]
//! and [`Decision`].
//!
//! A strategy is called once per bar of each symbol, after that bar's fills and exits
//! and with the portfolio marked at that bar's close. It reads the bars **up to and
//! including** the current one through a [`History`], which holds the series and the
//! current index and hands out slices truncated at that index: there is no way to
//! reach a later bar, so no lookahead is possible by construction (and a property test
//! checks that changing later bars changes no earlier decision).

use serde::{Deserialize, Serialize};

use crate::data::{Bar, BarSeries};
use crate::error::{Error, Result};
use crate::order::{Order, Side, SymbolId};
use crate::portfolio::{Portfolio, Position};

/// A trading rule: a decision per bar.
///
/// Closures are strategies too (see [`from_fn`]); a type with state (indicators)
/// implements the trait. The backtester is generic over the strategy, so the call is
/// static and inlined into the bar loop.
///
/// ```
/// use quantcore::backtest::{Context, Decision, Strategy};
///
/// /// Buys on the first bar whose close is above the previous close, then holds.
/// struct FirstUpTick;
///
/// impl Strategy for FirstUpTick {
///     fn on_bar(&mut self, ctx: &Context<'_>) -> Decision {
///         let close = ctx.history().close();
///         let up = close.len() >= 2 && close[close.len() - 1] > close[close.len() - 2];
///         if up && !ctx.position().is_open() { Decision::buy() } else { Decision::hold() }
///     }
/// }
/// ```
pub trait Strategy {
    /// The decision for the current bar of `ctx.symbol()`.
    fn on_bar(&mut self, ctx: &Context<'_>) -> Decision;

    /// Called once at the start of every run with the number of symbols, before any
    /// bar. Stateful strategies reset their state here, so one instance can run
    /// several times; the default does nothing.
    ///
    /// # Errors
    /// A strategy that cannot follow `symbols` symbols says so (the built-ins follow
    /// one; [`PerSymbol`] needs one strategy per symbol).
    fn start(&mut self, symbols: usize) -> Result<()> {
        let _ = symbols;
        Ok(())
    }

    /// The optional fast path over quiet bars: runs the strategy from the current bar
    /// on while it holds, and says where it stops holding. The default has none
    /// ([`FastForward::Unsupported`]).
    ///
    /// [`Backtester::run`](crate::backtest::Backtester::run) calls it instead of
    /// [`on_bar`](Self::on_bar) on a bar where nothing but this strategy's own decision
    /// can change the portfolio: one symbol, no market order waiting for the next open,
    /// no resting limit order, no stop-loss or take-profit on the position, no drawdown
    /// kill switch. `ctx` is the current bar's context, and `ahead` hands out the
    /// history at the current bar, then at each later bar in turn.
    ///
    /// The answer must be what calling `on_bar` on those bars one after another would
    /// give with the position and cash as they are now: [`FastForward::DecidesAt`] the
    /// first bar whose decision is not a hold, with that decision and the strategy's
    /// state updated through that bar, or [`FastForward::HoldsToEnd`]. So a strategy
    /// implements it only when its decisions depend on the bars, its own state and the
    /// position and cash, never on the marks (equity, current price, unrealized PnL),
    /// which the engine does not update on the skipped bars. The engine then values
    /// the skipped bars at `cash + quantity * close` in one tight loop instead of
    /// building a [`Context`] per bar. The built-in strategies and
    /// [`from_signals`](crate::backtest::from_signals) implement it, each on top of one
    /// decision function shared with `on_bar`, and a test runs every one of them both
    /// ways and compares the results.
    fn fast_forward(&mut self, ctx: &Context<'_>, ahead: Ahead<'_>) -> FastForward {
        let _ = (ctx, ahead);
        FastForward::Unsupported
    }
}

/// What [`Strategy::fast_forward`] found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FastForward {
    /// No fast path: the engine calls [`Strategy::on_bar`] on the current bar.
    Unsupported,
    /// The strategy holds on every bar to the end of the series.
    HoldsToEnd,
    /// The strategy holds on the bars before `index` and decides `decision` on it.
    DecidesAt { index: usize, decision: Decision },
}

/// The bars from the current one to the end of the series, as the [`History`] at
/// each bar in turn: the view of [`Strategy::fast_forward`]. Each step reveals one
/// more bar, so the fast path cannot look ahead either.
#[derive(Debug, Clone)]
pub struct Ahead<'a> {
    series: &'a BarSeries,
    next: usize,
}

impl<'a> Ahead<'a> {
    /// The histories at bars `from..` of `series`.
    pub fn new(series: &'a BarSeries, from: usize) -> Self {
        Ahead { series, next: from }
    }

    /// Runs `decide` on each bar ahead until it answers something other than hold:
    /// the whole fast path of a strategy whose rule is a function of the history.
    #[inline]
    pub fn until_decision(self, mut decide: impl FnMut(&History<'a>) -> Decision) -> FastForward {
        for history in self {
            let decision = decide(&history);
            if !decision.is_hold() {
                return FastForward::DecidesAt {
                    index: history.index(),
                    decision,
                };
            }
        }
        FastForward::HoldsToEnd
    }
}

impl<'a> Iterator for Ahead<'a> {
    type Item = History<'a>;

    #[inline]
    fn next(&mut self) -> Option<History<'a>> {
        if self.next >= self.series.len() {
            return None;
        }
        let history = History::from_parts(self.series, self.next);
        prefetch_open(self.series, self.next + PREFETCH_BARS);
        self.next += 1;
        Some(history)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.series.len().saturating_sub(self.next);
        (left, Some(left))
    }
}

impl ExactSizeIterator for Ahead<'_> {}

/// How far ahead of the scan [`Ahead`] prefetches the opens: about 250 ns at the
/// built-in strategies' 3-5 ns per bar, more than a miss to memory takes.
pub(crate) const PREFETCH_BARS: usize = 64;

/// Asks the CPU to bring the cache line of `series.open()[index]` in (when it exists).
///
/// The fast path reads only the closes, so a next-open order's fill read its open (and
/// the engine's next bar) from memory: a miss of ~90 ns per order, about 2.5 ms of a
/// million-bar momentum run with 27,500 orders. A prefetch costs one instruction and
/// never waits; there is no portable one in `std`, so other targets do without.
#[inline(always)]
pub(crate) fn prefetch_open(series: &BarSeries, index: usize) {
    #[cfg(target_arch = "x86_64")]
    if let (Some(open), Some(time)) = (series.open().get(index), series.timestamps().get(index)) {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        // SAFETY: a prefetch is only a hint: it never faults and reads nothing the
        // program sees; the pointers are to live elements.
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>(std::ptr::from_ref(open).cast::<i8>());
            _mm_prefetch::<_MM_HINT_T0>(std::ptr::from_ref(time).cast::<i8>());
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (series, index);
}

impl<F> Strategy for F
where
    F: FnMut(&Context<'_>) -> Decision,
{
    #[inline]
    fn on_bar(&mut self, ctx: &Context<'_>) -> Decision {
        self(ctx)
    }
}

/// Turns a closure into a strategy; it only helps type inference (any
/// `FnMut(&Context) -> Decision` is a [`Strategy`]).
///
/// ```
/// use quantcore::backtest::{from_fn, Backtester, BacktestConfig, Decision};
/// use quantcore::BarSeries;
/// let series = BarSeries::new(vec![1, 2, 3], vec![10.0; 3], vec![11.0; 3], vec![9.0; 3], vec![10.0; 3], vec![0.0; 3])?;
/// // Buy 5 units on the first bar, close on the second.
/// let mut strategy = from_fn(|ctx| match ctx.index() {
///     0 => Decision::buy_quantity(5.0),
///     1 => Decision::close(),
///     _ => Decision::hold(),
/// });
/// let result = Backtester::new(BacktestConfig::default())?.run(&series, &mut strategy)?;
/// assert_eq!(result.trades.len(), 1);
/// # Ok::<(), quantcore::Error>(())
/// ```
pub fn from_fn<F>(f: F) -> F
where
    F: FnMut(&Context<'_>) -> Decision,
{
    f
}

/// One strategy per symbol for [`Backtester::run_multi`](super::Backtester::run_multi):
/// symbol `i` (the `i`-th series) is decided by `strategies[i]`.
///
/// ```
/// use quantcore::backtest::{MomentumStrategy, PerSymbol};
/// let strategies = PerSymbol::new(vec![MomentumStrategy::new(5, 20)?, MomentumStrategy::new(10, 50)?]);
/// assert_eq!(strategies.len(), 2);
/// # Ok::<(), quantcore::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct PerSymbol<S> {
    strategies: Vec<S>,
}

impl<S: Strategy> PerSymbol<S> {
    /// Strategy `i` decides for the `i`-th series.
    pub fn new(strategies: Vec<S>) -> Self {
        PerSymbol { strategies }
    }

    /// Number of strategies.
    pub fn len(&self) -> usize {
        self.strategies.len()
    }

    /// True when there is no strategy.
    pub fn is_empty(&self) -> bool {
        self.strategies.is_empty()
    }

    /// The strategies, in symbol order.
    pub fn strategies(&self) -> &[S] {
        &self.strategies
    }

    /// Gives the strategies back.
    pub fn into_inner(self) -> Vec<S> {
        self.strategies
    }
}

impl<S: Strategy> Strategy for PerSymbol<S> {
    #[inline]
    fn on_bar(&mut self, ctx: &Context<'_>) -> Decision {
        // `start` checked that there is one strategy per symbol.
        self.strategies[ctx.symbol().index()].on_bar(ctx)
    }

    fn start(&mut self, symbols: usize) -> Result<()> {
        if self.strategies.len() != symbols {
            return Err(Error::LengthMismatch {
                field: "strategies",
                expected: symbols,
                actual: self.strategies.len(),
            });
        }
        self.strategies.iter_mut().try_for_each(|s| s.start(1))
    }
}

/// The bars of one symbol up to and including the current bar.
///
/// Every slice ends at the current bar: `close().len() == index() + 1`, and
/// `close().last()` is the current close. Nothing later is reachable.
///
/// ```
/// use quantcore::backtest::History;
/// use quantcore::BarSeries;
/// let series = BarSeries::new(vec![1, 2, 3], vec![1.0, 2.0, 3.0], vec![1.0, 2.0, 3.0], vec![1.0, 2.0, 3.0], vec![1.0, 2.0, 3.0], vec![0.0; 3])?;
/// let history = History::new(&series, 1);
/// assert_eq!(history.close(), &[1.0, 2.0]);
/// assert_eq!(history.current().timestamp, 2);
/// assert_eq!(history.bar(2), None); // the future is not there
/// # Ok::<(), quantcore::Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct History<'a> {
    series: &'a BarSeries,
    end: usize,
}

impl<'a> History<'a> {
    /// The view of `series` whose current bar is `index`.
    ///
    /// # Panics
    /// When `index >= series.len()`.
    pub fn new(series: &'a BarSeries, index: usize) -> Self {
        assert!(
            index < series.len(),
            "history index {index} is past the series' {} bars",
            series.len()
        );
        History { series, end: index }
    }

    /// The backtester's constructor: `index` is in bounds by construction.
    #[inline]
    pub(crate) fn from_parts(series: &'a BarSeries, index: usize) -> Self {
        debug_assert!(index < series.len());
        History { series, end: index }
    }

    /// The whole series, the bars after the current one included: for a built-in
    /// fast path that walks the columns itself instead of through [`Ahead`], and
    /// reads only what [`Ahead`] would have shown it by each bar.
    #[inline]
    pub(crate) fn series(&self) -> &'a BarSeries {
        self.series
    }

    /// Index of the current bar in the series.
    #[inline]
    pub fn index(&self) -> usize {
        self.end
    }

    /// Number of bars visible: `index() + 1`.
    #[inline]
    pub fn len(&self) -> usize {
        self.end + 1
    }

    /// Always false: the current bar is visible.
    #[inline]
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The series' symbol, when tagged.
    pub fn symbol(&self) -> Option<&'a str> {
        self.series.symbol()
    }

    /// Bar start times up to the current bar (Unix seconds UTC).
    #[inline]
    pub fn timestamps(&self) -> &'a [i64] {
        &self.series.timestamps()[..=self.end]
    }

    /// Opens up to the current bar.
    #[inline]
    pub fn open(&self) -> &'a [f64] {
        &self.series.open()[..=self.end]
    }

    /// Highs up to the current bar.
    #[inline]
    pub fn high(&self) -> &'a [f64] {
        &self.series.high()[..=self.end]
    }

    /// Lows up to the current bar.
    #[inline]
    pub fn low(&self) -> &'a [f64] {
        &self.series.low()[..=self.end]
    }

    /// Closes up to the current bar.
    #[inline]
    pub fn close(&self) -> &'a [f64] {
        &self.series.close()[..=self.end]
    }

    /// Volumes up to the current bar.
    #[inline]
    pub fn volume(&self) -> &'a [f64] {
        &self.series.volume()[..=self.end]
    }

    /// Adjusted closes up to the current bar, when the series has them.
    pub fn adj_close(&self) -> Option<&'a [f64]> {
        self.series.adj_close().map(|a| &a[..=self.end])
    }

    /// The current bar.
    #[inline]
    pub fn current(&self) -> Bar {
        self.series.bar(self.end)
    }

    /// The current bar's close.
    #[inline]
    pub fn current_close(&self) -> f64 {
        self.series.close()[self.end]
    }

    /// The bar at `index`, if it is at or before the current bar.
    pub fn bar(&self, index: usize) -> Option<Bar> {
        (index <= self.end).then(|| self.series.bar(index))
    }
}

/// What a strategy reads on each bar: the symbol's [`History`], the (read-only)
/// portfolio and the symbol's resting limit orders.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub(crate) history: History<'a>,
    pub(crate) portfolio: &'a Portfolio,
    pub(crate) symbol: SymbolId,
    pub(crate) open_orders: &'a [Order],
}

impl<'a> Context<'a> {
    /// A context over `portfolio` for `symbol`, whose current bar is `history`'s;
    /// for calling a strategy outside the backtester (tests, live use).
    pub fn new(history: History<'a>, portfolio: &'a Portfolio, symbol: SymbolId) -> Self {
        Context {
            history,
            portfolio,
            symbol,
            open_orders: &[],
        }
    }

    /// The bars up to and including the current one.
    #[inline]
    pub fn history(&self) -> &History<'a> {
        &self.history
    }

    /// Index of the current bar in the symbol's series.
    #[inline]
    pub fn index(&self) -> usize {
        self.history.end
    }

    /// The current bar.
    #[inline]
    pub fn bar(&self) -> Bar {
        self.history.current()
    }

    /// The current bar's close: the price the portfolio is marked at.
    #[inline]
    pub fn close(&self) -> f64 {
        self.history.current_close()
    }

    /// The current bar's start time (Unix seconds UTC).
    #[inline]
    pub fn timestamp(&self) -> i64 {
        self.history.series.timestamps()[self.history.end]
    }

    /// The symbol being decided.
    #[inline]
    pub fn symbol(&self) -> SymbolId {
        self.symbol
    }

    /// The symbol's name.
    pub fn symbol_name(&self) -> &'a str {
        self.portfolio
            .instruments()
            .symbol(self.symbol)
            .unwrap_or_default()
    }

    /// The whole portfolio (every symbol, one cash pool), marked at the latest closes.
    #[inline]
    pub fn portfolio(&self) -> &'a Portfolio {
        self.portfolio
    }

    /// This symbol's position.
    ///
    /// # Panics
    /// Never inside the backtester (the symbol is registered); when a [`Context`] is
    /// built by hand with a symbol the portfolio does not hold.
    #[inline]
    pub fn position(&self) -> &'a Position {
        &self.portfolio.positions()[self.symbol.index()]
    }

    /// Cash plus every position at its latest mark.
    #[inline]
    pub fn equity(&self) -> f64 {
        self.portfolio.equity()
    }

    /// This symbol's resting limit orders (placed earlier, not yet filled).
    #[inline]
    pub fn open_orders(&self) -> &'a [Order] {
        self.open_orders
    }
}

/// What a strategy asks for on one bar.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Do nothing; a resting limit order keeps resting.
    Hold,
    /// Cancel the symbol's resting limit orders.
    Cancel,
    /// Buy `quantity` units, or the configured [`Sizing`](crate::order::Sizing)'s
    /// quantity when `None`. Buying while short covers (and may flip) the short.
    Buy { quantity: Option<f64> },
    /// Sell `quantity` units, or the sized quantity when `None`. Selling more than
    /// held without short selling is rejected by the risk check (use
    /// [`Decision::close`] to exit a long).
    Sell { quantity: Option<f64> },
    /// Trade to a signed position of `quantity` units (`0` = flat). Crossing zero is
    /// two orders: close the old side, then open the new one.
    Target { quantity: f64 },
    /// Hold a position of the configured size on `side` (buy = long, sell = short):
    /// nothing when already on that side, else close an opposite position first and
    /// open one sized from the equity after the close.
    Enter { side: Side },
}

/// A strategy's answer for one bar: an [`Action`], and for the orders it creates an
/// optional limit price, stop-loss, take-profit and sizing confidence.
///
/// - **Limit price**: the orders become limit orders, sized (when sizing applies) at
///   the limit price on the decision bar. They are first eligible on the symbol's
///   *next* bar and then on every bar until filled, or cancelled by the next decision
///   that is not [`hold`](Self::hold) (any new order or [`cancel`](Self::cancel)
///   replaces them). A bar fills a buy limit when its low reaches the limit, at
///   `min(limit, open)` (a sell mirrors); see [`ExecutionModel`](crate::execution::ExecutionModel).
/// - **Stop-loss / take-profit**: set on the position once an order opening or
///   increasing it fills, and checked on every later bar against its high and low
///   ([`exit_on_bar`](crate::risk::exit_on_bar)).
/// - **Confidence** (default 1): read by [`Sizing::Confidence`](crate::order::Sizing::Confidence).
///
/// ```
/// use quantcore::backtest::{Action, Decision};
/// use quantcore::order::Side;
/// let d = Decision::enter_long().with_stop_loss(95.0).with_take_profit(120.0);
/// assert_eq!(d.action, Action::Enter { side: Side::Buy });
/// let resting = Decision::buy_quantity(10.0).limit(99.5);
/// assert_eq!(resting.limit_price, Some(99.5));
/// assert!(Decision::hold().is_hold());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub action: Action,
    /// Place limit orders at this price instead of market orders.
    pub limit_price: Option<f64>,
    /// Stop-loss level for the position the orders open or increase.
    pub stop_loss: Option<f64>,
    /// Take-profit level for the position the orders open or increase.
    pub take_profit: Option<f64>,
    /// Confidence in `[0, 1]` for confidence sizing.
    pub confidence: f64,
}

impl Decision {
    const fn of(action: Action) -> Self {
        Decision {
            action,
            limit_price: None,
            stop_loss: None,
            take_profit: None,
            confidence: 1.0,
        }
    }

    /// Nothing to do.
    #[inline]
    pub const fn hold() -> Self {
        Self::of(Action::Hold)
    }

    /// Cancel the resting limit orders.
    pub const fn cancel() -> Self {
        Self::of(Action::Cancel)
    }

    /// Buy the configured size.
    pub const fn buy() -> Self {
        Self::of(Action::Buy { quantity: None })
    }

    /// Buy `quantity` units.
    pub const fn buy_quantity(quantity: f64) -> Self {
        Self::of(Action::Buy {
            quantity: Some(quantity),
        })
    }

    /// Sell the configured size.
    pub const fn sell() -> Self {
        Self::of(Action::Sell { quantity: None })
    }

    /// Sell `quantity` units.
    pub const fn sell_quantity(quantity: f64) -> Self {
        Self::of(Action::Sell {
            quantity: Some(quantity),
        })
    }

    /// Trade to a signed position of `quantity` units.
    pub const fn target(quantity: f64) -> Self {
        Self::of(Action::Target { quantity })
    }

    /// Close the position (target 0); nothing when flat.
    #[inline]
    pub const fn close() -> Self {
        Self::target(0.0)
    }

    /// Be long the configured size (closing a short first).
    #[inline]
    pub const fn enter_long() -> Self {
        Self::of(Action::Enter { side: Side::Buy })
    }

    /// Be short the configured size (closing a long first); needs short selling.
    #[inline]
    pub const fn enter_short() -> Self {
        Self::of(Action::Enter { side: Side::Sell })
    }

    /// Makes the orders limit orders at `price`.
    pub const fn limit(mut self, price: f64) -> Self {
        self.limit_price = Some(price);
        self
    }

    /// Sets the stop-loss of the position the orders open.
    pub const fn with_stop_loss(mut self, price: f64) -> Self {
        self.stop_loss = Some(price);
        self
    }

    /// Sets the take-profit of the position the orders open.
    pub const fn with_take_profit(mut self, price: f64) -> Self {
        self.take_profit = Some(price);
        self
    }

    /// Sets the confidence read by confidence sizing.
    pub const fn with_confidence(mut self, confidence: f64) -> Self {
        self.confidence = confidence;
        self
    }

    /// True for [`hold`](Self::hold).
    #[inline]
    pub fn is_hold(&self) -> bool {
        matches!(self.action, Action::Hold)
    }
}

impl Default for Decision {
    fn default() -> Self {
        Decision::hold()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::order::Instrument;

    fn series() -> BarSeries {
        BarSeries::new(
            vec![10, 20, 30, 40],
            vec![1.0, 2.0, 3.0, 4.0],
            vec![1.5, 2.5, 3.5, 4.5],
            vec![0.5, 1.5, 2.5, 3.5],
            vec![1.2, 2.2, 3.2, 4.2],
            vec![7.0, 8.0, 9.0, 10.0],
        )
        .unwrap()
        .with_symbol("X")
    }

    #[test]
    fn history_slices_stop_at_the_current_bar() {
        let s = series();
        for index in 0..s.len() {
            let h = History::new(&s, index);
            assert_eq!(h.len(), index + 1);
            assert_eq!(h.index(), index);
            for column in [h.open(), h.high(), h.low(), h.close(), h.volume()] {
                assert_eq!(column.len(), index + 1);
            }
            assert_eq!(h.timestamps().last(), Some(&s.timestamps()[index]));
            assert_eq!(h.current(), s.bar(index));
            assert_eq!(h.bar(index + 1), None);
            assert_eq!(h.bar(0), Some(s.bar(0)));
        }
        assert_eq!(History::new(&s, 2).close(), &[1.2, 2.2, 3.2]);
        assert_eq!(History::new(&s, 0).symbol(), Some("X"));
    }

    #[test]
    #[should_panic(expected = "past the series")]
    fn history_past_the_end_panics() {
        let s = series();
        let _ = History::new(&s, 4);
    }

    #[test]
    fn context_reads_the_current_bar_and_position() {
        let s = series();
        let mut portfolio = Portfolio::new(1_000.0).unwrap();
        let x = portfolio.register(Instrument::new("X")).unwrap();
        let ctx = Context::new(History::new(&s, 1), &portfolio, x);
        assert_eq!(ctx.close(), 2.2);
        assert_eq!(ctx.timestamp(), 20);
        assert_eq!(ctx.index(), 1);
        assert_eq!(ctx.bar().high, 2.5);
        assert_eq!(ctx.symbol_name(), "X");
        assert!(!ctx.position().is_open());
        assert_eq!(ctx.equity(), 1_000.0);
        assert!(ctx.open_orders().is_empty());
    }

    #[test]
    fn closures_are_strategies_and_per_symbol_checks_arity() {
        let s = series();
        let portfolio = {
            let mut p = Portfolio::new(1_000.0).unwrap();
            p.register(Instrument::new("X")).unwrap();
            p
        };
        let mut calls = 0;
        let mut counting = from_fn(|_ctx| {
            calls += 1;
            Decision::buy()
        });
        let ctx = Context::new(History::new(&s, 0), &portfolio, SymbolId(0));
        assert_eq!(counting.on_bar(&ctx), Decision::buy());
        assert_eq!(calls, 1);

        fn sell(_: &Context<'_>) -> Decision {
            Decision::sell()
        }
        let mut per = PerSymbol::new(vec![sell as fn(&Context<'_>) -> Decision; 2]);
        assert_eq!(
            per.start(3),
            Err(Error::LengthMismatch {
                field: "strategies",
                expected: 3,
                actual: 2
            })
        );
        per.start(2).unwrap();
        assert_eq!(per.on_bar(&ctx), Decision::sell());
    }

    #[test]
    fn decision_builders() {
        assert_eq!(Decision::close().action, Action::Target { quantity: 0.0 });
        let d = Decision::sell_quantity(3.0)
            .limit(10.0)
            .with_stop_loss(11.0)
            .with_take_profit(8.0)
            .with_confidence(0.5);
        assert_eq!(
            (d.limit_price, d.stop_loss, d.take_profit, d.confidence),
            (Some(10.0), Some(11.0), Some(8.0), 0.5)
        );
        assert_eq!(Decision::default(), Decision::hold());
        let json = serde_json::to_string(&Decision::enter_short()).unwrap();
        assert!(json.contains(r#""action":"enter""#), "{json}");
    }
}
