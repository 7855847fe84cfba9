"""Indicators over numpy arrays: SMA, EMA, returns, volatility, z-score, RSI, ATR, and
the per-bar anomaly features.

Each indicator takes a float64 1-D array (read in place, not copied) and returns a new
float64 array of the same length, NaN where the indicator has no value yet (warm-up).
The values equal the Rust engine's streaming indicators exactly.
"""

from quantcore._quantcore import features as _native

sma = _native.sma
ema = _native.ema
simple_returns = _native.simple_returns
log_returns = _native.log_returns
rolling_volatility = _native.rolling_volatility
rolling_zscore = _native.rolling_zscore
rsi = _native.rsi
atr = _native.atr
extract_features = _native.extract_features
FEATURE_NAMES = _native.FEATURE_NAMES

__all__ = [
    "FEATURE_NAMES",
    "atr",
    "ema",
    "extract_features",
    "log_returns",
    "rolling_volatility",
    "rolling_zscore",
    "rsi",
    "simple_returns",
    "sma",
]
