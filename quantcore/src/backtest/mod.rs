//! Backtesting: strategies, the simulation loop over one or many symbols, boolean
//! signals, parameter sweeps, and the result with its metrics.
//!
//! This module owns
//! - the [`Strategy`] trait, what it reads ([`Context`], [`History`]: bars up to and
//!   including the current one, the read-only portfolio) and what it answers
//!   ([`Decision`]: hold, buy, sell, target, enter, cancel; optional limit price,
//!   stop-loss, take-profit, confidence); closures are strategies ([`from_fn`]);
//! - the built-ins [`MomentumStrategy`] and [`MeanReversionStrategy`] on the streaming
//!   indicators of [`features`](crate::features), and [`StrategySpec`] to name one in
//!   JSON;
//! - [`Backtester`] with its [`BacktestConfig`]: [`run`](Backtester::run) over one
//!   series, [`run_multi`](Backtester::run_multi) over several aligned by timestamp
//!   with one cash pool, [`from_signals`] over boolean arrays, [`sweep`] over a
//!   parameter grid in parallel;
//! - [`BacktestResult`]: equity curve, trades, orders (rejections with their reasons),
//!   fills, exits, [`Metrics`](crate::metrics::Metrics) and the final portfolio.
//!
//! No money rule lives here: orders go through
//! [`ExecutionModel::execute`](crate::execution::ExecutionModel::execute) (fill
//! prices, slippage, commission, risk check, booking), sizes come from
//! [`Sizing`](crate::order::Sizing), exits from [`exit_on_bar`](crate::risk::exit_on_bar),
//! equity and round trips from [`Portfolio`](crate::portfolio::Portfolio), metrics from
//! [`Metrics::compute`](crate::metrics::Metrics::compute). The backtester decides only
//! *when* each of them is called.
//!
//! # Conventions
//! | topic | rule |
//! |---|---|
//! | fill timing | [`FillTiming::NextOpen`] (default): market orders fill at the symbol's next open; [`FillTiming::ThisClose`]: at the decision bar's close; a `NextOpen` decision on the last bar is not filled |
//! | prices | market fills at the reference moved by `slippage_bps` against the trader; limit fills at the limit or better, no slippage |
//! | costs | commission `rate * notional + fixed_fee` per fill |
//! | sizing | a decision without a quantity is sized by [`Sizing`](crate::order::Sizing) at the expected fill price, from the equity at the latest marks (market orders: when they fill; limit orders: at the limit, when placed); a sized buy is capped at what the cash affords |
//! | limit orders | first eligible on the next bar; rest until filled or replaced by the next non-hold decision |
//! | exits | stop-loss / take-profit checked against each bar's open, high and low after the bar's entries; stop first when both are inside a bar; a gap through a level fills at the open |
//! | rejections | recorded in [`BacktestResult::orders`] with the reason; never an error. A decision sized to zero units places no order and is counted in [`BacktestResult::zero_size_decisions`] |
//! | equity curve | the initial capital, then one point per bar at the close; the first point repeats the first bar's timestamp |
//!
//! # One bar of one symbol, in order
//! 1. the market order decided on the previous bar fills at the open (`NextOpen`);
//! 2. resting limit orders fill if the bar crosses them;
//! 3. stop-loss / take-profit exits;
//! 4. the symbol is marked at the close;
//! 5. the strategy decides; with `ThisClose` a market order fills now at the close.
//!
//! With several symbols, steps 1-4 run for every symbol with a bar at that timestamp
//! before any strategy is called; see [`Backtester::run_multi`].
//!
//! ```
//! use quantcore::backtest::{Backtester, BacktestConfig, FillTiming, MomentumStrategy};
//! use quantcore::execution::{CommissionModel, ExecutionModel};
//! use quantcore::BarSeries;
//! let close: Vec<f64> = (0..200).map(|i| 100.0 + (i as f64 / 15.0).sin() * 20.0).collect();
//! let series = BarSeries::new(
//!     (0..200).map(|i| 1_700_000_000 + i * 86_400).collect(),
//!     close.clone(),
//!     close.iter().map(|c| c * 1.01).collect(),
//!     close.iter().map(|c| c * 0.99).collect(),
//!     close,
//!     vec![1e5; 200],
//! )?
//! .with_symbol("ACME");
//! let config = BacktestConfig {
//!     initial_capital: 100_000.0,
//!     execution: ExecutionModel::new(CommissionModel::new(0.001, 0.0)?, 5.0)?,
//!     fill_timing: FillTiming::NextOpen,
//!     ..Default::default()
//! };
//! let result = Backtester::new(config)?.run(&series, &mut MomentumStrategy::new(10, 30)?)?;
//! assert_eq!(result.equity.len(), 201);
//! assert!(result.metrics.trades.n_trades > 0);
//! # Ok::<(), quantcore::Error>(())
//! ```

mod config;
mod engine;
mod multi;
mod result;
mod strategies;
mod strategy;
mod sweep;
mod vectorized;

#[cfg(test)]
mod proptests;

pub use config::{BacktestConfig, FillTiming};
pub use engine::{Backtester, DEFAULT_SYMBOL};
pub use result::{BacktestResult, ExitEvent};
pub use strategies::{
    BuiltinStrategy, MeanReversionParams, MeanReversionStrategy, MomentumParams, MomentumStrategy,
    StrategySpec,
};
#[cfg(feature = "lstm")]
pub use strategies::{MlParams, MlStrategy};
pub use strategy::{
    Action, Ahead, Context, Decision, FastForward, History, PerSymbol, Strategy, from_fn,
};
pub use sweep::{SweepRow, SweepTable, sweep};
pub use vectorized::from_signals;
