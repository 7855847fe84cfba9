//! Backtesting (TODO).
