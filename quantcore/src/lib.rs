//! # quantcore
//!
//! An engine for quantitative trading research and paper trading: market-data
//! normalization, features, ML (LSTM next-price prediction, Isolation Forest anomaly
//! detection), signals, risk, simulated execution, portfolio accounting, backtesting
//! and performance metrics. Pure and synchronous: no I/O beyond parsing bytes and
//! files. The Python bindings (`quantcore-py`) and the reference service
//! (`quantcore-service`) call this crate and hold no trading rule of their own.
//!
//! ## Modules
//! | module | owns |
//! |---|---|
//! | [`data`] | [`Bar`], [`BarSeries`] and their validation |
//! | [`normalize`] | Yahoo Finance chart JSON, Alpaca v2 bars JSON and CSV into [`BarSeries`] |
//! | [`features`] | streaming indicators: SMA, EMA, returns, volatility, z-score, RSI, ATR |
//! | [`metrics`] | return and trade statistics (empyrical's conventions) |
//! | [`report`] | text, JSON and self-contained HTML reports |
//! | [`order`] | [`Order`], [`Side`], [`OrderKind`], validation and [`Sizing`] |
//! | [`risk`] | [`RiskLimits`], `check_risk_limits`, stop-loss and take-profit triggers |
//! | [`execution`] | simulated fills (market with slippage, limit when crossed), commission |
//! | [`portfolio`] | [`Portfolio`], [`Position`], round trips, snapshots |
//! | [`backtest`] | [`Backtester`], the [`Strategy`] trait, built-in strategies, `from_signals`, sweeps, multi-symbol runs |
//! | [`ml`] | [`IsolationForest`] anomaly detection and the LSTM predictor (`LstmPredictor`) |
//! | [`signal`] | [`SignalGenerator`]: BUY/SELL/HOLD with confidence, stop-loss and take-profit |
//! | [`sample`] | the bundled synthetic sample data |
//!
//! ## Cargo features
//! - `lstm` (default): the candle-based LSTM predictor.

pub mod backtest;
pub mod data;
pub mod error;
pub mod execution;
pub mod features;
pub mod metrics;
pub mod ml;
pub mod normalize;
pub mod order;
pub mod portfolio;
pub mod report;
pub mod risk;
pub mod sample;
pub mod signal;

pub use backtest::{
    BacktestConfig, BacktestResult, Backtester, Decision, FillTiming, MeanReversionStrategy,
    MomentumStrategy, Strategy,
};
pub use data::{Bar, BarSeries, DroppedRows};
pub use error::{Error, Result};
pub use execution::{CommissionModel, ExecutionModel, Fill, OrderOutcome};
pub use metrics::{Metrics, MetricsConfig, TradeStats};
pub use ml::iforest::{Detection, IsolationForest};
pub use normalize::{ParseOptions, Validation};
pub use order::{Instrument, Instruments, Order, OrderKind, OrderStatus, Side, Sizing, SymbolId};
pub use portfolio::{Portfolio, Position, RoundTrip, Snapshot};
pub use risk::{RiskLimits, RiskViolation};
pub use signal::{Action, Prediction, Signal, SignalConfig, SignalGenerator};

#[cfg(feature = "lstm")]
pub use backtest::{MlParams, MlStrategy};
#[cfg(feature = "lstm")]
pub use ml::lstm::{EpochProgress, LstmConfig, LstmNetwork, LstmPredictor, Scaler};

/// The linfa and ndarray the estimators are built on, re-exported so callers use the
/// same versions.
pub use {linfa, ndarray};

/// The README's Rust examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
