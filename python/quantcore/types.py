"""Typed shapes of the dicts quantcore returns (for annotations; plain dicts at run
time)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple, TypedDict

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from quantcore import BarSeries

FloatArray = npt.NDArray[np.float64]
"""A float64 numpy array."""
IntArray = npt.NDArray[np.int64]
"""An int64 numpy array."""
BoolArray = npt.NDArray[np.bool_]
"""A bool numpy array."""



class DroppedRow(TypedDict):
    """A row a lenient parse or constructor removed, and why."""

    row: int
    kind: str
    field: Optional[str]
    message: str



class UndefinedReason(TypedDict, total=False):
    """Why a metric is ``None``: ``reason`` (``"zero_variance"``, ...) and the message."""

    reason: str
    message: str
    required: int
    actual: int



class DrawdownPeriod(TypedDict):
    """The episode of the maximum drawdown."""

    depth: float
    peak_index: int
    peak_timestamp: int
    trough_index: int
    trough_timestamp: int
    recovery_index: Optional[int]
    recovery_timestamp: Optional[int]
    duration_periods: int
    duration_seconds: int



class MetricsConfig(TypedDict):
    """The parameters a metrics dict was computed with."""

    periods_per_year: float
    risk_free_rate: float
    sortino_target: float



class TradeStats(TypedDict):
    """Statistics of closed trades; ``None`` values have their reason under
    ``undefined``."""

    n_trades: int
    n_winning: int
    n_losing: int
    total_pnl: float
    gross_profit: float
    gross_loss: float
    win_rate: Optional[float]
    average_win: Optional[float]
    average_loss: Optional[float]
    profit_factor: Optional[float]
    payoff_ratio: Optional[float]
    expectancy: Optional[float]
    best_trade: Optional[float]
    worst_trade: Optional[float]
    undefined: Dict[str, UndefinedReason]



class Metrics(TypedDict):
    """Every statistic of an equity curve (:func:`quantcore.metrics.compute`);
    ``None`` values have their reason under ``undefined``."""

    config: MetricsConfig
    start_timestamp: int
    end_timestamp: int
    n_periods: int
    initial_equity: float
    final_equity: float
    total_return: float
    max_drawdown: float
    max_drawdown_period: Optional[DrawdownPeriod]
    trades: TradeStats
    cagr: Optional[float]
    annualized_mean_return: Optional[float]
    volatility: Optional[float]
    sharpe_ratio: Optional[float]
    sortino_ratio: Optional[float]
    downside_deviation: Optional[float]
    calmar_ratio: Optional[float]
    skewness: Optional[float]
    excess_kurtosis: Optional[float]
    tail_ratio: Optional[float]
    value_at_risk_95: Optional[float]
    conditional_value_at_risk_95: Optional[float]
    best_period_return: Optional[float]
    worst_period_return: Optional[float]
    undefined: Dict[str, UndefinedReason]



class AnomalyFeatures(TypedDict):
    """Per-bar anomaly features (:func:`quantcore.features.extract_features`)."""

    values: FloatArray
    timestamps: IntArray
    first_bar: int
    window: int
    names: List[str]



class Detection(TypedDict):
    """Scores and flags of :meth:`quantcore.IsolationForest.detect`."""

    scores: FloatArray
    flags: BoolArray
    threshold: float
    anomalous_rows: npt.NDArray[np.uint64]



class PartialBarState(TypedDict):
    """Whether Yahoo's last bar is still forming."""

    state: str
    timestamp: Optional[int]



class YahooMeta(TypedDict):
    """The useful ``meta`` fields of a Yahoo chart response."""

    symbol: str
    currency: Optional[str]
    exchange_name: Optional[str]
    instrument_type: Optional[str]
    exchange_timezone_name: Optional[str]
    timezone: Optional[str]
    gmt_offset: Optional[int]
    regular_market_price: Optional[float]
    regular_market_time: Optional[int]
    data_granularity: Optional[str]
    range: Optional[str]
    regular_trading_period: Optional[Tuple[int, int]]



class YahooChart(TypedDict):
    """A parsed Yahoo chart response."""

    series: "BarSeries"
    meta: YahooMeta
    skipped_null_rows: int
    partial_bar: PartialBarState
    dropped: List[DroppedRow]


class AlpacaBars(TypedDict):
    """The bars of one symbol of an Alpaca page."""

    series: "BarSeries"
    trade_counts: Optional[npt.NDArray[np.uint64]]
    vwap: Optional[FloatArray]
    dropped: List[DroppedRow]


class AlpacaPage(AlpacaBars):
    """A single-symbol Alpaca page."""

    symbol: Optional[str]
    next_page_token: Optional[str]


class AlpacaMultiPage(TypedDict):
    """A multi-symbol Alpaca page."""

    bars: Dict[str, AlpacaBars]
    next_page_token: Optional[str]


class CsvBars(TypedDict):
    """One series read from CSV."""

    series: "BarSeries"
    dropped: List[DroppedRow]


class CsvBarsBySymbol(TypedDict):
    """Series by symbol read from CSV."""

    series: "Dict[str, BarSeries]"
    dropped: List[DroppedRow]


Bar = Dict[str, Any]
"""One bar: ``timestamp``, ``open``, ``high``, ``low``, ``close``, ``volume``."""
