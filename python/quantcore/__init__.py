"""quantcore: a quantitative trading research engine written in Rust, for Python.

The same engine as the Rust crate ``quantcore``: market-data normalization, streaming
features, Isolation Forest anomaly detection, risk checks, simulated execution,
portfolio accounting and performance metrics, over numpy arrays.

>>> import quantcore as qc
>>> bars = qc.sample.daily()["ACME"]
>>> fast = qc.features.sma(bars.close, 20)

Modules: :mod:`quantcore.features`, :mod:`quantcore.metrics`, :mod:`quantcore.normalize`,
:mod:`quantcore.report`, :mod:`quantcore.sample`; errors in :mod:`quantcore.exceptions`.

Conventions: timestamps are int64 Unix seconds UTC; prices and returns float64.
Arrays given to the engine are read in place (never copied) and must be C-contiguous
arrays of the documented dtype; a wrong dtype raises ``TypeError``, a wrong shape or
layout ``ValueError``. Results are numpy arrays that own the engine's buffers.
"""

from __future__ import annotations

from quantcore import _quantcore
from quantcore._quantcore import (
    BacktestResult,
    Backtester,
    BarSeries,
    Decision,
    ExecutionModel,
    IsolationForest,
    LstmPredictor,
    MeanReversionStrategy,
    MomentumStrategy,
    Order,
    Portfolio,
    RiskLimits,
    SignalGenerator,
    StrategyContext,
)
from quantcore import exceptions, features, metrics, normalize, report, sample
from quantcore.exceptions import (
    FileError,
    InvalidDataError,
    InvalidParameterError,
    ModelError,
    OrderError,
    OrderRejectedError,
    ParseError,
    QuantcoreError,
    UndefinedMetricError,
)
from quantcore._plot import plot_equity
from quantcore._tables import SweepTable


def from_signals(
    series: BarSeries, entries: object, exits: object, **config: object
) -> BacktestResult:
    """Runs boolean entry/exit signals over ``series`` (vectorbt's ``from_signals``):
    ``Backtester(**config).from_signals(series, entries, exits)``."""
    return Backtester(**config).from_signals(series, entries, exits)  # type: ignore[arg-type]

__version__: str = _quantcore.__version__

__all__ = [
    "BacktestResult",
    "Backtester",
    "BarSeries",
    "Decision",
    "MeanReversionStrategy",
    "MomentumStrategy",
    "StrategyContext",
    "SweepTable",
    "from_signals",
    "ExecutionModel",
    "IsolationForest",
    "LstmPredictor",
    "Order",
    "Portfolio",
    "RiskLimits",
    "SignalGenerator",
    "FileError",
    "InvalidDataError",
    "InvalidParameterError",
    "ModelError",
    "OrderError",
    "OrderRejectedError",
    "ParseError",
    "QuantcoreError",
    "UndefinedMetricError",
    "exceptions",
    "features",
    "metrics",
    "normalize",
    "plot_equity",
    "report",
    "sample",
    "__version__",
]
