"""Return, risk and trade statistics with empyrical's conventions.

Free functions over a float64 array of period returns (read in place, no copy; the GIL
is released while the engine scans it), and :func:`compute` for the whole set over an
equity curve. A metric that is undefined for the input (zero variance, too few
periods, ...) raises :class:`~quantcore.UndefinedMetricError` whose ``kind`` is the
reason; in :func:`compute`'s dict it is ``None`` with the reason under ``"undefined"``.
"""

from quantcore._quantcore import metrics as _native

total_return = _native.total_return
cagr = _native.cagr
annualized_mean_return = _native.annualized_mean_return
annual_volatility = _native.annual_volatility
sharpe_ratio = _native.sharpe_ratio
downside_deviation = _native.downside_deviation
sortino_ratio = _native.sortino_ratio
max_drawdown = _native.max_drawdown
calmar_ratio = _native.calmar_ratio
skewness = _native.skewness
excess_kurtosis = _native.excess_kurtosis
tail_ratio = _native.tail_ratio
value_at_risk = _native.value_at_risk
conditional_value_at_risk = _native.conditional_value_at_risk
drawdown_series = _native.drawdown_series
compute = _native.compute
trade_stats = _native.trade_stats
TRADING_DAYS_PER_YEAR = _native.TRADING_DAYS_PER_YEAR

__all__ = [
    "TRADING_DAYS_PER_YEAR",
    "annual_volatility",
    "annualized_mean_return",
    "cagr",
    "calmar_ratio",
    "compute",
    "conditional_value_at_risk",
    "downside_deviation",
    "drawdown_series",
    "excess_kurtosis",
    "max_drawdown",
    "sharpe_ratio",
    "skewness",
    "sortino_ratio",
    "tail_ratio",
    "total_return",
    "trade_stats",
    "value_at_risk",
]
