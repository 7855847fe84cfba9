"""pandas conversions of :class:`~quantcore.BarSeries` (pandas is optional)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, Optional, Type

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    from quantcore import BarSeries

_COLUMNS = {
    "open": "open",
    "high": "high",
    "low": "low",
    "close": "close",
    "volume": "volume",
    "adj close": "adj_close",
    "adj_close": "adj_close",
    "adjclose": "adj_close",
}
_TIME_COLUMNS = ("date", "datetime", "timestamp", "time")


def require_pandas() -> Any:
    """Imports pandas, or raises ImportError saying how to install it."""
    try:
        import pandas
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "this needs pandas: pip install 'quantcore[pandas]'"
        ) from err
    return pandas


def _unix_seconds(pd: Any, times: Any) -> "np.ndarray[Any, np.dtype[np.int64]]":
    index = pd.DatetimeIndex(times)
    if index.tz is None:
        index = index.tz_localize("UTC")
    else:
        index = index.tz_convert("UTC")
    seconds = (index - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)
    return np.asarray(seconds, dtype=np.int64)


def bars_from_frame(
    cls: "Type[BarSeries]", frame: "pd.DataFrame", symbol: Optional[str] = None
) -> "BarSeries":
    """:meth:`BarSeries.from_pandas`: a DataFrame with yfinance-style columns."""
    pd = require_pandas()
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"`frame` must be a pandas DataFrame, was {type(frame).__name__}")
    if isinstance(frame.columns, pd.MultiIndex):
        # yfinance.download: (Price, Ticker) columns; one ticker only.
        tickers = frame.columns.get_level_values(-1).unique()
        if len(tickers) != 1:
            raise ValueError(
                f"`frame` has columns for {len(tickers)} tickers; select one, e.g. frame.xs('AAPL', axis=1, level=-1)"
            )
        if symbol is None:
            symbol = str(tickers[0])
        frame = frame.droplevel(-1, axis=1)
    by_name: Dict[str, Any] = {}
    time_column = None
    for column in frame.columns:
        key = str(column).strip().lower()
        if key in _COLUMNS:
            by_name[_COLUMNS[key]] = column
        elif key in _TIME_COLUMNS and time_column is None:
            time_column = column
        elif key in ("symbol", "ticker") and symbol is None:
            values = frame[column].unique()
            if len(values) == 1:
                symbol = str(values[0])
    missing = [name for name in ("open", "high", "low", "close", "volume") if name not in by_name]
    if missing:
        raise ValueError(
            f"`frame` lacks the column(s) {missing}; it has {list(map(str, frame.columns))}"
        )
    if isinstance(frame.index, pd.DatetimeIndex):
        timestamps = _unix_seconds(pd, frame.index)
    elif time_column is not None:
        column = frame[time_column]
        if np.issubdtype(column.dtype, np.integer):
            timestamps = np.asarray(column, dtype=np.int64)
        else:
            timestamps = _unix_seconds(pd, pd.to_datetime(column, utc=True))
    else:
        raise ValueError(
            "`frame` needs a DatetimeIndex or a Date/Datetime/timestamp column"
        )

    def column_values(name: str) -> "np.ndarray[Any, np.dtype[np.float64]]":
        return np.ascontiguousarray(frame[by_name[name]].to_numpy(dtype=np.float64))

    adj = column_values("adj_close") if "adj_close" in by_name else None
    return cls.from_arrays(
        timestamps,
        column_values("open"),
        column_values("high"),
        column_values("low"),
        column_values("close"),
        column_values("volume"),
        adj_close=adj,
        symbol=symbol,
    )


def bars_to_frame(series: "BarSeries") -> "pd.DataFrame":
    """:meth:`BarSeries.to_pandas`: yfinance-style columns, a UTC DatetimeIndex."""
    pd = require_pandas()
    index = pd.DatetimeIndex(pd.to_datetime(series.timestamps, unit="s", utc=True), name="Date")
    columns: Dict[str, Any] = {
        "Open": series.open,
        "High": series.high,
        "Low": series.low,
        "Close": series.close,
        "Volume": series.volume,
    }
    adj = series.adj_close
    if adj is not None:
        columns["Adj Close"] = adj
    frame = pd.DataFrame({name: np.array(values) for name, values in columns.items()}, index=index)
    if series.symbol is not None:
        frame.attrs["symbol"] = series.symbol
    return frame
