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
