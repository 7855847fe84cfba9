"""Indicators over numpy arrays (see the module docstring of ``features.py``)."""

from typing import List, Literal

import numpy.typing as npt

from quantcore import BarSeries
from quantcore.types import AnomalyFeatures, FloatArray

FEATURE_NAMES: List[str]
"""Names of the anomaly feature columns, in column order."""

def sma(values: npt.ArrayLike, period: int) -> FloatArray:
    """Simple moving average: the mean of the last ``period`` values; NaN during the
    warm-up (the first ``period - 1`` values)."""

def ema(values: npt.ArrayLike, period: int) -> FloatArray:
    """Exponential moving average, ``alpha = 2 / (period + 1)``, seeded with the SMA of
    the first ``period`` values; NaN before."""

def simple_returns(prices: npt.ArrayLike, lag: int = 1) -> FloatArray:
    """Simple returns ``prices[t] / prices[t - lag] - 1``; NaN for the first ``lag``."""

def log_returns(prices: npt.ArrayLike, lag: int = 1) -> FloatArray:
    """Log returns ``ln(prices[t] / prices[t - lag])``; NaN for the first ``lag``."""

def rolling_volatility(
    prices: npt.ArrayLike, period: int, kind: Literal["simple", "log"] = "simple"
) -> FloatArray:
    """Sample standard deviation (ddof 1) of the last ``period`` one-bar returns, per
    bar (not annualized)."""

def rolling_zscore(values: npt.ArrayLike, period: int) -> FloatArray:
    """``(x_t - mean) / std`` over the last ``period`` values (ddof 1); NaN during the
    warm-up and where the window is constant."""

def rsi(prices: npt.ArrayLike, period: int = 14) -> FloatArray:
    """Wilder's RSI in [0, 100]; NaN for the first ``period`` values and where the
    window is flat."""

def atr(
    high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike, period: int = 14
) -> FloatArray:
    """Wilder's average true range; NaN for the first ``period`` values."""

def extract_features(series: BarSeries, window: int = 20) -> AnomalyFeatures:
    """Per-bar anomaly features (log return, range, gap, volume z-score, return
    z-score), warm-up rows dropped: the Isolation Forest's input."""
