//! Features: rolling indicators in streaming form, LSTM input windows and anomaly
//! feature vectors.
//!
//! # Streaming indicators
//! | type | batch function | first value at input | definition |
//! |---|---|---|---|
//! | [`Sma`] | [`sma`] | `period` | mean of the last `period` values |
//! | [`Ema`] | [`ema`] | `period` | `alpha = 2/(period+1)`, seeded with the SMA of the first `period` values |
//! | [`SimpleReturn`] | [`simple_returns`] | `lag + 1` | `x_t / x_{t-lag} - 1` |
//! | [`LogReturn`] | [`log_returns`] | `lag + 1` | `ln(x_t / x_{t-lag})` |
//! | [`RollingVolatility`] | [`rolling_volatility`] | `period + 1` | std (ddof = 1) of the last `period` one-bar returns, per bar |
//! | [`RollingZScore`] | [`rolling_zscore`] | `period` | `(x_t - mean) / std` over the last `period` values, ddof = 1 |
//! | [`Rsi`] | [`rsi`] | `period + 1` | Wilder-smoothed `100 * avg_gain / (avg_gain + avg_loss)` |
//! | [`Atr`] | [`atr`] | `period + 1` | Wilder-smoothed true range, which uses the previous close |
//!
//! Each indicator is a struct built with `new(period) -> Result<Self>` (a period below
//! the minimum gives [`Error::InvalidParameter`](crate::Error::InvalidParameter)), fed
//! with `update(...) -> Option<f64>` (`None` during warm-up), read with `value()` and
//! cleared with `reset()`; they share the [`Indicator`] trait. Updates are O(1) and do
//! not allocate: windows live in ring buffers sized at construction. The batch functions
//! return one value per input, `NaN` where the indicator has no value, and are
//! implemented by running the streaming structs, so both forms agree exactly.
//!
//! A strategy feeds one bar at a time:
//! ```
//! use quantcore::features::{RollingZScore, Sma};
//! let mut fast = Sma::new(2)?;
//! let mut z = RollingZScore::new(3)?;
//! for close in [10.0, 11.0, 12.0, 11.5] {
//!     let (Some(average), Some(score)) = (fast.update(close), z.update(close)) else {
//!         continue; // warming up
//!     };
//!     assert!(average > 10.0 && score.is_finite());
//! }
//! # Ok::<(), quantcore::Error>(())
//! ```
//! and research code runs a whole column:
//! ```
//! let close = [10.0, 11.0, 12.0, 11.5];
//! let sma = quantcore::features::sma(&close, 2)?;
//! assert!(sma[0].is_nan());
//! assert_eq!(&sma[1..], &[10.5, 11.5, 11.75]);
//! # Ok::<(), quantcore::Error>(())
//! ```
//!
//! # Inputs
//! Streaming updates take inputs as they come and do not check them (they sit in the
//! backtester's hot loop, fed from a validated [`BarSeries`](crate::BarSeries)); a NaN
//! input makes the outputs NaN while it is in the window. The batch functions check
//! their slices first and name the first bad row.
//!
//! # Numerical stability
//! Running sums (SMA) are recomputed from the window every whole number of windows of
//! at least 256 updates (about `1e-13` of the sum at most between two recomputations),
//! running moments (volatility, z-score) every time the ring buffer wraps, i.e. every
//! `period` updates, so rounding error stays bounded over series of any length; the
//! moments use sliding Welford
//! updates in between, which do not cancel catastrophically when the mean is large
//! against the spread. Tests check a million values near 1e6 against a two-pass
//! recomputation. EMA, RSI and ATR are recursive and forget their errors geometrically.
//!
//! These are small and hot enough to hand-write: the crates of the field (`ta`,
//! `yata`) are not among the core's dependencies and differ in warm-up and seeding
//! conventions, which are pinned down above.

pub mod anomaly;
mod batch;
mod indicator;
mod moving_average;
#[cfg(test)]
mod naive;
mod returns;
mod ring;
mod rolling;
mod volatility;
mod wilder;
pub mod windows;

pub use anomaly::{AnomalyFeatures, extract_features};
pub use batch::{
    atr, ema, log_returns, rolling_volatility, rolling_volatility_of, rolling_zscore, rsi,
    simple_returns, sma,
};
pub use indicator::Indicator;
pub use moving_average::{Ema, Sma};
pub(crate) use moving_average::{resum_every, window_sum};
pub use returns::{LogReturn, ReturnKind, SimpleReturn};
pub use volatility::{RollingVolatility, RollingZScore};
pub use wilder::{Atr, Rsi};
