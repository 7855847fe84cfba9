//! Return, risk and trade statistics, with empyrical's conventions.
//!
//! Two ways in:
//! - free functions over a slice of period returns, e.g.
//!   [`sharpe_ratio`]`(&returns, risk_free_rate, periods_per_year)`, each returning a
//!   [`Metric`] (`Result<f64, Undefined>`); these are what Python calls on numpy arrays;
//! - [`Metrics::compute`]`(timestamps, equity, trade_pnls, &config)`, the whole set for
//!   an equity curve and its closed trades in a few passes, with the drawdown's dates.
//!
//! # Conventions (empyrical's)
//! | metric | formula |
//! |---|---|
//! | returns | simple period returns of the equity curve, `r_t = E_t / E_{t-1} - 1` |
//! | annualization | explicit `periods_per_year` (default 252), never guessed |
//! | total return | `E_final / E_initial - 1` |
//! | CAGR | `(E_final / E_initial)^(periods_per_year / n_periods) - 1` (empyrical's `annual_return`) |
//! | annualized mean return | `mean(r) * periods_per_year` |
//! | volatility | `std(r, ddof=1) * sqrt(periods_per_year)` |
//! | Sharpe | `mean(r - rf) / std(r, ddof=1) * sqrt(periods_per_year)`, `rf` per period |
//! | downside deviation | `sqrt(mean(min(r - target, 0)^2)) * sqrt(periods_per_year)`, mean over *all* periods |
//! | Sortino | `mean(r - target) * periods_per_year / downside deviation` |
//! | max drawdown | `min_t(E_t / max_{s<=t} E_s - 1)` <= 0, the starting capital the first peak |
//! | Calmar | `CAGR / abs(max drawdown)` |
//! | skewness, excess kurtosis | population moments (scipy's defaults, `bias=True`) |
//! | tail ratio | `abs(p95) / abs(p5)` of the returns |
//! | VaR 95% | 5th percentile return (numpy's linear interpolation) |
//! | CVaR 95% | mean of the lowest `floor((n - 1) * 0.05) + 1` returns |
//! | trades | win rate = PnL > 0 / closed trades; profit factor = gross profit / gross loss; expectancy = mean PnL |
//!
//! # Undefined values
//! A metric that cannot be computed is `Err(`[`Undefined`]`)` with the reason: too few
//! periods (2 for anything with a sample standard deviation), zero variance (up to
//! rounding: a standard deviation within a few ulps of `1 + |mean|`), no downside, no
//! drawdown (Calmar), no trades, no losing trades (profit factor), and so on. Never a
//! made-up 0 or infinity. In JSON such a field is `null`, and `"undefined"` maps its
//! name to `{"reason": ..., "message": ...}`.
//!
//! # Speed
//! [`Metrics::compute`] makes one pass over the curve (`curve.rs`): per block of 256
//! points, in the L1 cache, the returns, the checks, the drawdown episode and its
//! recovery, the centered moments merged block by block (`moments.rs`), and the tail
//! statistics (`tails.rs`: counts below brackets placed by a sample, and copies of
//! the few percent of the returns inside them to a buffer the thread reuses); then
//! O(n) selections (`select_nth_unstable`) among the copies; nothing is sorted and
//! the returns are never stored. The pass is compiled twice, for the baseline x86-64
//! and for AVX2 (chosen at run time; the same bits either way).
//!
//! A long backtest (from 65,536 points) makes the same pass on a second thread *while*
//! it writes its curve (`feed.rs`, `scan_feed` in `curve.rs`): the pass follows the
//! writer block by block, so only the tails' last selections are left when the run
//! ends. Its metrics are [`Metrics::compute`]'s, bit for bit, but for the CVaR (its
//! tail sum splits at other values: a few ulps).
//!
//! Hand-written rather than taken from a crate: no Rust crate implements empyrical's
//! exact conventions (ddof, Sortino's all-period downside, CVaR's tail count), which
//! are the contract here.

mod curve;
pub(crate) mod drawdown;
pub(crate) mod feed;
mod moments;
mod returns;
mod summary;
mod tails;
mod trades;
pub(crate) mod undefined;

pub use drawdown::{DrawdownPeriod, drawdown_series};
pub use returns::{
    annual_volatility, annualized_mean_return, cagr, calmar_ratio, conditional_value_at_risk,
    downside_deviation, excess_kurtosis, max_drawdown, sharpe_ratio, skewness, sortino_ratio,
    tail_ratio, total_return, value_at_risk,
};
pub use summary::{Metrics, MetricsConfig, TRADING_DAYS_PER_YEAR};
pub use trades::TradeStats;
pub use undefined::{Metric, Parameter, Undefined};
