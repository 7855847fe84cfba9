"""Return, risk and trade statistics (see the module docstring of ``metrics.py``)."""

from typing import Optional

import numpy.typing as npt

from quantcore.types import FloatArray, Metrics, TradeStats

TRADING_DAYS_PER_YEAR: float
"""252, the default annualization of daily returns."""

def total_return(returns: npt.ArrayLike) -> float:
    """Compounded return ``prod(1 + r) - 1`` (0 for no returns)."""

def cagr(returns: npt.ArrayLike, periods_per_year: float = 252.0) -> float:
    """Compound annual growth rate ``prod(1 + r) ** (periods_per_year / n) - 1``."""

def annualized_mean_return(returns: npt.ArrayLike, periods_per_year: float = 252.0) -> float:
    """Arithmetic annualized return ``mean(r) * periods_per_year``."""

def annual_volatility(returns: npt.ArrayLike, periods_per_year: float = 252.0) -> float:
    """Annualized volatility ``std(r, ddof=1) * sqrt(periods_per_year)``."""

def sharpe_ratio(
    returns: npt.ArrayLike, risk_free_rate: float = 0.0, periods_per_year: float = 252.0
) -> float:
    """``mean(r - risk_free_rate) / std(r, ddof=1) * sqrt(periods_per_year)``."""

def downside_deviation(
    returns: npt.ArrayLike, target: float = 0.0, periods_per_year: float = 252.0
) -> float:
    """``sqrt(mean(min(r - target, 0) ** 2)) * sqrt(periods_per_year)``."""

def sortino_ratio(
    returns: npt.ArrayLike, target: float = 0.0, periods_per_year: float = 252.0
) -> float:
    """``mean(r - target) * periods_per_year / downside_deviation`` (empyrical)."""

def max_drawdown(returns: npt.ArrayLike) -> float:
    """``min(E / cummax(E) - 1)`` of the equity compounded from 1 (<= 0)."""

def calmar_ratio(returns: npt.ArrayLike, periods_per_year: float = 252.0) -> float:
    """``cagr / abs(max_drawdown)``."""

def skewness(returns: npt.ArrayLike) -> float:
    """Population skewness (scipy's ``skew``, ``bias=True``)."""

def excess_kurtosis(returns: npt.ArrayLike) -> float:
    """Population excess kurtosis (scipy's ``kurtosis``, Fisher, ``bias=True``)."""

def tail_ratio(returns: npt.ArrayLike) -> float:
    """``abs(p95) / abs(p5)`` of the returns."""

def value_at_risk(returns: npt.ArrayLike, cutoff: float = 0.05) -> float:
    """The ``cutoff`` percentile of the returns (numpy's linear interpolation)."""

def conditional_value_at_risk(returns: npt.ArrayLike, cutoff: float = 0.05) -> float:
    """Mean of the lowest ``floor((n - 1) * cutoff) + 1`` returns (empyrical)."""

def drawdown_series(equity: npt.ArrayLike) -> FloatArray:
    """The underwater curve ``equity / cummax(equity) - 1``."""

def compute(
    timestamps: npt.ArrayLike,
    equity: npt.ArrayLike,
    trade_pnls: Optional[npt.ArrayLike] = None,
    *,
    periods_per_year: float = 252.0,
    risk_free_rate: float = 0.0,
    sortino_target: float = 0.0,
) -> Metrics:
    """Every statistic of an equity curve; undefined ones are ``None`` with their reason
    under ``"undefined"``."""

def trade_stats(trade_pnls: npt.ArrayLike) -> TradeStats:
    """Statistics of closed trades from their PnLs."""
