"""quantcore: a quantitative trading research engine written in Rust, for Python."""

import os
from typing import Any, Dict, List, Optional, Tuple, Type, TypeVar, Union, overload

import numpy as np
import numpy.typing as npt

from quantcore import exceptions as exceptions
from quantcore import features as features
from quantcore import metrics as metrics
from quantcore import normalize as normalize
from quantcore import report as report
from quantcore import sample as sample
from quantcore import types as types
from quantcore._plot import plot_equity as plot_equity
from quantcore.exceptions import FileError as FileError
from quantcore.exceptions import InvalidDataError as InvalidDataError
from quantcore.exceptions import InvalidParameterError as InvalidParameterError
from quantcore.exceptions import ModelError as ModelError
from quantcore.exceptions import OrderError as OrderError
from quantcore.exceptions import OrderRejectedError as OrderRejectedError
from quantcore.exceptions import ParseError as ParseError
from quantcore.exceptions import QuantcoreError as QuantcoreError
from quantcore.exceptions import UndefinedMetricError as UndefinedMetricError
from quantcore.types import Bar, Detection, DroppedRow, FloatArray, IntArray

__version__: str

_S = TypeVar("_S", bound="BarSeries")
_F = TypeVar("_F", bound="IsolationForest")

class BarSeries:
    """A validated, immutable series of OHLCV bars (Unix-second UTC timestamps of the
    bars' starts). Columns are read-only numpy views of the Rust buffers."""

    @classmethod
    def from_arrays(
        cls: Type[_S],
        timestamps: npt.ArrayLike,
        open: npt.ArrayLike,
        high: npt.ArrayLike,
        low: npt.ArrayLike,
        close: npt.ArrayLike,
        volume: npt.ArrayLike,
        *,
        adj_close: Optional[npt.ArrayLike] = None,
        symbol: Optional[str] = None,
    ) -> _S:
        """Builds a series from int64 timestamps and float64 columns, validating every
        row; raises :class:`InvalidDataError` naming the first bad row."""
    @classmethod
    def from_arrays_lenient(
        cls: Type[_S],
        timestamps: npt.ArrayLike,
        open: npt.ArrayLike,
        high: npt.ArrayLike,
        low: npt.ArrayLike,
        close: npt.ArrayLike,
        volume: npt.ArrayLike,
        *,
        symbol: Optional[str] = None,
    ) -> Tuple[_S, List[DroppedRow]]:
        """Like :meth:`from_arrays`, dropping invalid rows; returns the series and the
        dropped rows."""
    @classmethod
    def from_csv(cls: Type[_S], path: Union[str, "os.PathLike[str]"], *, lenient: bool = False) -> _S:
        """Reads a CSV file holding one series."""
    @classmethod
    def from_pandas(cls: Type[_S], frame: Any, *, symbol: Optional[str] = None) -> _S:
        """Builds a series from a pandas DataFrame with yfinance-style columns."""
    def to_pandas(self) -> Any:
        """The series as a pandas DataFrame with a UTC DatetimeIndex."""
    def to_numpy(self) -> Dict[str, npt.NDArray[Any]]:
        """The columns as read-only numpy views (no copy)."""
    def with_symbol(self: _S, symbol: str) -> _S:
        """A copy tagged with ``symbol``."""
    @property
    def symbol(self) -> Optional[str]:
        """The symbol, when tagged."""
    @property
    def timestamps(self) -> IntArray:
        """Bar start times, Unix seconds UTC (read-only view)."""
    @property
    def open(self) -> FloatArray:
        """Open prices (read-only view)."""
    @property
    def high(self) -> FloatArray:
        """High prices (read-only view)."""
    @property
    def low(self) -> FloatArray:
        """Low prices (read-only view)."""
    @property
    def close(self) -> FloatArray:
        """Close prices (read-only view)."""
    @property
    def volume(self) -> FloatArray:
        """Volumes (read-only view)."""
    @property
    def adj_close(self) -> Optional[FloatArray]:
        """Adjusted closes (read-only view), when present."""
    @overload
    def __getitem__(self, index: int) -> Bar: ...
    @overload
    def __getitem__(self: _S, index: slice) -> _S: ...
    def __len__(self) -> int: ...
    def __eq__(self, other: object) -> bool: ...

class IsolationForest:
    """Isolation Forest anomaly detection with scikit-learn's method names."""

    def __init__(
        self,
        *,
        n_trees: int = 100,
        max_samples: int = 256,
        max_features: Union[int, float, None] = None,
        contamination: Union[str, float, None] = None,
        score_threshold: Optional[float] = None,
        seed: int = 0,
    ) -> None:
        """Checks the parameters (raises :class:`InvalidParameterError`)."""
    def fit(self: _F, x: npt.ArrayLike, y: Any = None) -> _F:
        """Grows the trees on ``X`` (float64, ``(n_samples, n_features)``)."""
    def anomaly_score(self, x: npt.ArrayLike) -> FloatArray:
        """The paper's score in (0, 1]; higher is more anomalous."""
    def score_samples(self, x: npt.ArrayLike) -> FloatArray:
        """scikit-learn's ``score_samples``: the negated anomaly score."""
    def decision_function(self, x: npt.ArrayLike) -> FloatArray:
        """``score_samples(X) - offset_``; negative for anomalies."""
    def predict(self, x: npt.ArrayLike) -> npt.NDArray[np.int64]:
        """-1 for an anomaly, 1 otherwise."""
    def fit_predict(self, x: npt.ArrayLike, y: Any = None) -> npt.NDArray[np.int64]:
        """``fit(X).predict(X)``."""
    def detect(self, x: npt.ArrayLike) -> Detection:
        """Scores, flags, threshold and anomalous rows on the core's scale."""
    def get_params(self) -> Dict[str, Any]:
        """The parameters as a dict."""
    @property
    def threshold_(self) -> float:
        """The score above which a row is flagged."""
    @property
    def offset_(self) -> float:
        """scikit-learn's ``offset_`` (``-threshold_``)."""
    @property
    def n_features_in_(self) -> int:
        """Feature columns seen in :meth:`fit`."""
    @property
    def max_samples_(self) -> int:
        """Rows each tree was grown on."""
    @property
    def is_fitted(self) -> bool:
        """Whether :meth:`fit` has run."""

class RiskLimits:
    """Pre-trade risk limits every order must pass (defaults: position up to 100 % of
    equity, no caps, no shorts, no kill switch)."""

    def __init__(
        self,
        *,
        max_position_fraction: float = 1.0,
        max_order_notional: Optional[float] = None,
        max_open_positions: Optional[int] = None,
        allow_short: bool = False,
        max_drawdown: Optional[float] = None,
    ) -> None:
        """Checks every field (raises :class:`InvalidParameterError`)."""
    @property
    def max_position_fraction(self) -> float:
        """Largest position notional as a fraction of equity."""
    @property
    def max_order_notional(self) -> Optional[float]:
        """Largest notional of one order."""
    @property
    def max_open_positions(self) -> Optional[int]:
        """Most positions open at once."""
    @property
    def allow_short(self) -> bool:
        """Whether a sell may take a position below zero."""
    @property
    def max_drawdown(self) -> Optional[float]:
        """Drawdown fraction at which new exposure is halted."""

class ExecutionModel:
    """Commission (rate of notional plus a fixed fee per fill) and slippage of market
    orders in basis points."""

    def __init__(
        self, *, commission_rate: float = 0.0, fixed_fee: float = 0.0, slippage_bps: float = 0.0
    ) -> None:
        """Checks every field (raises :class:`InvalidParameterError`)."""
    @property
    def commission_rate(self) -> float:
        """Fraction of notional per fill."""
    @property
    def fixed_fee(self) -> float:
        """Fixed fee per fill."""
    @property
    def slippage_bps(self) -> float:
        """Slippage of market orders, basis points."""
    def commission(self, notional: float) -> float:
        """The commission on a fill of ``notional``."""
    def market_price(self, side: str, reference: float) -> float:
        """The fill price of a market order after slippage."""

class Order:
    """An order for one instrument, named by symbol."""

    @staticmethod
    def market(
        symbol: str,
        side: str,
        quantity: float,
        *,
        id: Optional[int] = None,
        created_at: int = 0,
        stop_loss: Optional[float] = None,
        take_profit: Optional[float] = None,
    ) -> "Order":
        """A market order (``side`` is ``"buy"`` or ``"sell"``)."""
    @staticmethod
    def limit(
        symbol: str,
        side: str,
        quantity: float,
        limit_price: float,
        *,
        id: Optional[int] = None,
        created_at: int = 0,
        stop_loss: Optional[float] = None,
        take_profit: Optional[float] = None,
    ) -> "Order":
        """A limit order, filled at the limit or better."""
    @property
    def id(self) -> int:
        """The order id."""
    @property
    def symbol(self) -> str:
        """The instrument's symbol."""
    @property
    def side(self) -> str:
        """``"buy"`` or ``"sell"``."""
    @property
    def kind(self) -> str:
        """``"market"`` or ``"limit"``."""
    @property
    def quantity(self) -> float:
        """Units to trade."""
    @property
    def limit_price(self) -> Optional[float]:
        """The limit price of a limit order."""
    @property
    def status(self) -> str:
        """``"new"``, ``"filled"``, ``"rejected"`` or ``"cancelled"``."""
    @property
    def reject_reason(self) -> Optional[str]:
        """Why the order was rejected."""
    @property
    def fill_price(self) -> Optional[float]:
        """The fill price once filled."""
    @property
    def filled_at(self) -> Optional[int]:
        """The fill time once filled."""
    @property
    def created_at(self) -> int:
        """Creation time."""
    @property
    def stop_loss(self) -> Optional[float]:
        """Stop-loss level."""
    @property
    def take_profit(self) -> Optional[float]:
        """Take-profit level."""
    def cancel(self) -> None:
        """Withdraws an open order."""

class Portfolio:
    """Cash, positions and closed round trips valued against an initial capital."""

    def __init__(
        self, initial_capital: float, *, allow_short: bool = False, symbols: Optional[List[str]] = None
    ) -> None:
        """An all-cash portfolio, optionally with instruments registered."""
    def register(self, symbol: str, *, fractional: bool = False) -> None:
        """Registers an instrument with a flat position."""
    def execute(
        self,
        order: Order,
        bar: Bar,
        reference_price: float,
        *,
        limits: Optional[RiskLimits] = None,
        execution: Optional[ExecutionModel] = None,
    ) -> Dict[str, Any]:
        """Validates, fills, risk-checks and books ``order`` against ``bar``."""
    def check(
        self,
        order: Order,
        price: float,
        *,
        limits: Optional[RiskLimits] = None,
        execution: Optional[ExecutionModel] = None,
    ) -> None:
        """Raises :class:`OrderRejectedError` when ``order`` at ``price`` breaks a limit."""
    def mark(self, symbol: str, price: float) -> None:
        """Marks ``symbol`` at ``price``."""
    def update_drawdown(self) -> float:
        """Updates the peak and maximum drawdown; returns the current drawdown."""
    def position(self, symbol: str) -> Dict[str, Any]:
        """The position in ``symbol``."""
    def positions(self) -> List[Dict[str, Any]]:
        """Every registered instrument's position."""
    def round_trips(self) -> List[Dict[str, Any]]:
        """The closed round trips, oldest first."""
    def snapshot(self, timestamp: int) -> Dict[str, Any]:
        """The portfolio's value now."""
    @property
    def symbols(self) -> List[str]:
        """Registered symbols."""
    @property
    def initial_capital(self) -> float:
        """Starting capital."""
    @property
    def cash(self) -> float:
        """Cash on hand."""
    @property
    def equity(self) -> float:
        """Cash plus marked positions."""
    @property
    def positions_value(self) -> float:
        """Marked value of the positions."""
    @property
    def realized_pnl(self) -> float:
        """Realized PnL before fees."""
    @property
    def unrealized_pnl(self) -> float:
        """Unrealized PnL at the marks."""
    @property
    def total_commission(self) -> float:
        """Commission paid."""
    @property
    def total_pnl(self) -> float:
        """``equity - initial_capital``."""
    @property
    def total_return(self) -> float:
        """``equity / initial_capital - 1``."""
    @property
    def max_drawdown(self) -> float:
        """Largest drawdown seen (<= 0)."""
    @property
    def open_position_count(self) -> int:
        """Open positions."""
