"""quantcore: a quantitative trading research engine written in Rust, for Python."""

import os
from typing import Any, Callable, Dict, List, Literal, Optional, Sequence, Tuple, Type, TypeVar, Union, overload

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
from quantcore._tables import SweepTable as SweepTable
from quantcore.exceptions import FileError as FileError
from quantcore.exceptions import InvalidDataError as InvalidDataError
from quantcore.exceptions import InvalidParameterError as InvalidParameterError
from quantcore.exceptions import ModelError as ModelError
from quantcore.exceptions import OrderError as OrderError
from quantcore.exceptions import OrderRejectedError as OrderRejectedError
from quantcore.exceptions import ParseError as ParseError
from quantcore.exceptions import QuantcoreError as QuantcoreError
from quantcore.exceptions import UndefinedMetricError as UndefinedMetricError
from quantcore.types import Bar, Detection, DroppedRow, FloatArray, IntArray, Metrics

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

class MomentumStrategy:
    """Fast/slow SMA crossover on the close: long while fast > slow (short below when
    ``allow_short``), flat otherwise."""

    def __init__(self, fast: int, slow: int, *, allow_short: bool = False) -> None:
        """Checks ``1 <= fast < slow`` (raises :class:`InvalidParameterError`)."""
    @property
    def fast(self) -> int:
        """Bars of the fast average."""
    @property
    def slow(self) -> int:
        """Bars of the slow average."""
    @property
    def allow_short(self) -> bool:
        """Whether the strategy goes short."""

class MeanReversionStrategy:
    """Rolling z-score mean reversion on the close."""

    def __init__(
        self, window: int, entry_z: float, exit_z: float, *, allow_short: bool = False
    ) -> None:
        """Checks the parameters (raises :class:`InvalidParameterError`)."""
    @property
    def window(self) -> int:
        """Bars of the rolling window."""
    @property
    def entry_z(self) -> float:
        """Entry threshold, standard deviations."""
    @property
    def exit_z(self) -> float:
        """Exit threshold, standard deviations."""
    @property
    def allow_short(self) -> bool:
        """Whether the strategy goes short."""

class Decision:
    """What a Python strategy answers for a bar."""

    @staticmethod
    def hold() -> "Decision":
        """Do nothing."""
    @staticmethod
    def cancel() -> "Decision":
        """Cancel resting limit orders."""
    @staticmethod
    def buy(
        quantity: Optional[float] = None,
        *,
        limit: Optional[float] = None,
        stop_loss: Optional[float] = None,
        take_profit: Optional[float] = None,
        confidence: Optional[float] = None,
    ) -> "Decision":
        """Buy ``quantity`` units, or the configured size."""
    @staticmethod
    def sell(
        quantity: Optional[float] = None,
        *,
        limit: Optional[float] = None,
        stop_loss: Optional[float] = None,
        take_profit: Optional[float] = None,
        confidence: Optional[float] = None,
    ) -> "Decision":
        """Sell ``quantity`` units, or the configured size."""
    @staticmethod
    def target(
        quantity: float,
        *,
        limit: Optional[float] = None,
        stop_loss: Optional[float] = None,
        take_profit: Optional[float] = None,
    ) -> "Decision":
        """Trade to a signed position of ``quantity`` units."""
    @staticmethod
    def close() -> "Decision":
        """Close the position."""
    @staticmethod
    def enter_long(
        *,
        limit: Optional[float] = None,
        stop_loss: Optional[float] = None,
        take_profit: Optional[float] = None,
        confidence: Optional[float] = None,
    ) -> "Decision":
        """Be long the configured size."""
    @staticmethod
    def enter_short(
        *,
        limit: Optional[float] = None,
        stop_loss: Optional[float] = None,
        take_profit: Optional[float] = None,
        confidence: Optional[float] = None,
    ) -> "Decision":
        """Be short the configured size."""

class StrategyContext:
    """What a Python strategy sees on a bar (reused from bar to bar)."""

    @property
    def symbol(self) -> str:
        """The bar's symbol."""
    @property
    def index(self) -> int:
        """Index of the bar in its symbol's series."""
    @property
    def timestamp(self) -> int:
        """The bar's timestamp."""
    @property
    def open(self) -> float:
        """The bar's open."""
    @property
    def high(self) -> float:
        """The bar's high."""
    @property
    def low(self) -> float:
        """The bar's low."""
    @property
    def close(self) -> float:
        """The bar's close."""
    @property
    def volume(self) -> float:
        """The bar's volume."""
    @property
    def position(self) -> float:
        """Signed position in this symbol."""
    @property
    def average_price(self) -> float:
        """The position's average price."""
    @property
    def cash(self) -> float:
        """Cash on hand."""
    @property
    def equity(self) -> float:
        """Equity at the latest marks."""
    def history(self, column: str = "close") -> FloatArray:
        """A column of the bars up to this one (read-only view)."""

StrategyAnswer = Union[Decision, str, float, None]
"""What a strategy callable may return."""
StrategyLike = Union[MomentumStrategy, MeanReversionStrategy, Callable[[StrategyContext], StrategyAnswer]]
"""A built-in strategy or a callable."""

class BacktestResult:
    """The result of a run."""

    @property
    def symbols(self) -> List[str]:
        """Symbol names."""
    @property
    def equity(self) -> FloatArray:
        """Starting capital, then equity at each close (read-only view)."""
    @property
    def timestamps(self) -> IntArray:
        """One timestamp per equity point."""
    @property
    def returns(self) -> FloatArray:
        """Simple returns of the equity curve."""
    @property
    def drawdown(self) -> FloatArray:
        """The underwater curve."""
    @property
    def metrics(self) -> Metrics:
        """Every statistic of the run."""
    @property
    def trades(self) -> List[Dict[str, Any]]:
        """Closed round trips."""
    @property
    def orders(self) -> List[Dict[str, Any]]:
        """Every order."""
    @property
    def fills(self) -> List[Dict[str, Any]]:
        """Every fill."""
    @property
    def exits(self) -> List[Dict[str, Any]]:
        """Stop-loss / take-profit exits."""
    @property
    def final_positions(self) -> List[Dict[str, Any]]:
        """Positions at the end."""
    @property
    def final_snapshot(self) -> Dict[str, Any]:
        """The portfolio at the end."""
    @property
    def zero_size_decisions(self) -> int:
        """Decisions sized to zero units."""
    @property
    def final_equity(self) -> float:
        """The last equity point."""
    def trades_frame(self) -> Any:
        """The trades as a pandas DataFrame."""
    def report_text(self) -> str:
        """The metrics as a text table."""
    def report_json(self) -> str:
        """The metrics as JSON."""
    def report_html(
        self, path: Union[str, "os.PathLike[str]", None] = None, *, title: str = "quantcore backtest"
    ) -> str:
        """A self-contained HTML report; written to ``path`` when given."""
    def plot(self, path: Union[str, "os.PathLike[str]", None] = None, *, title: Optional[str] = None) -> Any:
        """Equity and drawdown charts (matplotlib)."""

class Backtester:
    """The backtester and its checked configuration."""

    def __init__(
        self,
        *,
        initial_capital: float = 10_000.0,
        execution: Optional[ExecutionModel] = None,
        fill_timing: Literal["next_open", "this_close"] = "next_open",
        sizing: Literal["fraction_of_equity", "fixed_quantity", "confidence"] = "fraction_of_equity",
        size: float = 1.0,
        risk_limits: Optional[RiskLimits] = None,
        fractional: bool = False,
        periods_per_year: float = 252.0,
        risk_free_rate: float = 0.0,
        sortino_target: float = 0.0,
    ) -> None:
        """Checks the configuration (raises :class:`InvalidParameterError`)."""
    def run(self, series: BarSeries, strategy: StrategyLike) -> BacktestResult:
        """Runs ``strategy`` over ``series``."""
    def run_multi(self, series: Sequence[BarSeries], strategy: StrategyLike) -> BacktestResult:
        """Runs ``strategy`` over several series with one cash pool."""
    def from_signals(
        self, series: BarSeries, entries: npt.ArrayLike, exits: npt.ArrayLike
    ) -> BacktestResult:
        """Runs boolean entry and exit signals."""
    def sweep(
        self,
        series: BarSeries,
        strategy: Literal["momentum", "mean_reversion"],
        grid: Sequence[Dict[str, Any]],
        *,
        sort_by: Optional[str] = None,
        descending: bool = True,
    ) -> SweepTable:
        """One backtest per parameter set, in parallel."""

def from_signals(series: BarSeries, entries: npt.ArrayLike, exits: npt.ArrayLike, **config: Any) -> BacktestResult:
    """``Backtester(**config).from_signals(series, entries, exits)``."""

class LstmPredictor:
    """An LSTM next-close predictor (candle, CPU)."""

    @staticmethod
    def train(
        series: BarSeries,
        *,
        window: int = 30,
        features: Optional[List[str]] = None,
        hidden_size: int = 64,
        num_layers: int = 1,
        dropout: float = 0.0,
        epochs: int = 50,
        batch_size: int = 64,
        learning_rate: float = 1e-3,
        weight_decay: float = 0.01,
        validation_fraction: float = 0.2,
        patience: Optional[int] = 5,
        seed: int = 42,
        progress: Union[bool, Callable[[Dict[str, Any]], Optional[bool]], None] = None,
    ) -> "LstmPredictor":
        """Trains on ``series``; ``progress`` is called after each epoch (``False``
        stops), or ``True`` for a tqdm bar."""
    @staticmethod
    def load(path: Union[str, "os.PathLike[str]"]) -> "LstmPredictor":
        """Loads a model saved by :meth:`save`."""
    @staticmethod
    def load_pytorch(
        weights: Union[str, "os.PathLike[str]"],
        *,
        feature_mean: Sequence[float],
        feature_scale: Sequence[float],
        target_mean: float,
        target_scale: float,
        window: int = 30,
        features: Optional[List[str]] = None,
        hidden_size: int = 64,
        num_layers: int = 1,
    ) -> "LstmPredictor":
        """A predictor from a PyTorch ``state_dict`` saved as safetensors."""
    def save(self, path: Union[str, "os.PathLike[str]"]) -> None:
        """Saves the model to a directory."""
    def predict(self, series: BarSeries) -> float:
        """The predicted close of the next bar."""
    def predict_batch(self, series: BarSeries) -> FloatArray:
        """One prediction per bar from bar ``window`` on."""
    @property
    def config(self) -> Dict[str, Any]:
        """The configuration."""
    @property
    def scaler(self) -> Dict[str, Any]:
        """The scaler statistics."""
    @property
    def history(self) -> Optional[Dict[str, Any]]:
        """The training history, if trained here."""
    @property
    def window(self) -> int:
        """Bars per input window."""

class SignalGenerator:
    """BUY/SELL/HOLD signals with confidence and volatility-scaled exits."""

    def __init__(
        self,
        *,
        commission: float = 0.001,
        slippage_bps: float = 5.0,
        threshold: Optional[float] = None,
        stop_loss_multiple: Optional[float] = 2.0,
        take_profit_multiple: Optional[float] = 3.0,
        min_confidence: float = 0.0,
    ) -> None:
        """Checks the configuration."""
    def generate(
        self, symbol: str, timestamp: int, predicted_price: float, current_price: float, volatility: float
    ) -> Dict[str, Any]:
        """The signal for a predicted price."""
    @property
    def threshold(self) -> float:
        """Minimum absolute expected return for a trade."""
