"""BarSeries, the parsers, pandas and CSV round trips, and the error mapping."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest

import quantcore as qc

from conftest import make_series


def columns(n: int = 5) -> tuple:
    ts = np.arange(n, dtype=np.int64) * 60
    close = 100.0 + np.arange(n)
    return ts, close - 0.5, close + 1.0, close - 1.5, close, np.full(n, 10.0)


def test_from_arrays_copies_once_and_exposes_columns() -> None:
    ts, o, h, l, c, v = columns()
    series = qc.BarSeries.from_arrays(ts, o, h, l, c, v, symbol="X")
    c[0] = 999.0  # the series owns its copy
    assert series.close[0] == 100.0 and series.symbol == "X" and len(series) == 5
    assert series[0] == {"timestamp": 0, "open": 99.5, "high": 101.0, "low": 98.5, "close": 100.0, "volume": 10.0}
    assert series[-1]["close"] == 104.0
    part = series[1:3]
    assert isinstance(part, qc.BarSeries) and list(part.timestamps) == [60, 120]
    with pytest.raises(IndexError):
        series[5]
    assert series == qc.BarSeries.from_arrays(*columns(), symbol="X")


@pytest.mark.parametrize(
    "column, row, value, kind, field",
    [
        (1, 2, np.nan, "non_finite", "open"),
        (4, 1, -1.0, "non_positive_price", "close"),
        (5, 0, -3.0, "negative_volume", "volume"),
        (2, 3, 50.0, "inconsistent_bar", "high"),
    ],
)
def test_each_rule_raises_invalid_data_naming_row_field_value(column: int, row: int, value: float, kind: str, field: str) -> None:
    cols = list(columns())
    cols[column] = cols[column].copy()
    cols[column][row] = value
    with pytest.raises(qc.InvalidDataError, match=f"row {row}") as info:
        qc.BarSeries.from_arrays(*cols)
    err = info.value
    assert (err.kind, err.row, err.field) == (kind, row, field)
    assert err.value == value or (np.isnan(value) and np.isnan(err.value))
    assert isinstance(err, ValueError) and isinstance(err, qc.QuantcoreError)


def test_unsorted_and_mismatched_columns() -> None:
    ts, o, h, l, c, v = columns()
    with pytest.raises(qc.InvalidDataError) as info:
        qc.BarSeries.from_arrays(np.array([0, 60, 60, 180, 240]), o, h, l, c, v)
    assert (info.value.kind, info.value.row, info.value.value) == ("duplicate_bar", 2, 60)
    with pytest.raises(qc.InvalidDataError) as info:
        qc.BarSeries.from_arrays(ts, o[:4], h, l, c, v)
    assert (info.value.kind, info.value.field, info.value.value, info.value.details["expected"]) == ("length_mismatch", "open", 4, 5)
    series, dropped = qc.BarSeries.from_arrays_lenient(np.array([0, 60, 60, 180, 240]), o, h, l, c, v)
    assert len(series) == 4 and dropped[0]["row"] == 2 and dropped[0]["kind"] == "duplicate_bar"


def test_pandas_round_trip_and_yfinance_columns(acme: qc.BarSeries) -> None:
    pd = pytest.importorskip("pandas")
    frame = acme.to_pandas()
    assert list(frame.columns) == ["Open", "High", "Low", "Close", "Volume"]
    assert str(frame.index.tz) == "UTC" and frame.index[0] == pd.Timestamp("2019-01-02", tz="UTC")
    assert qc.BarSeries.from_pandas(frame, symbol="ACME") == acme
    # yfinance.download layout: (Price, Ticker) columns, naive dates.
    yf = frame.copy()
    yf.index = yf.index.tz_localize(None)
    yf.columns = pd.MultiIndex.from_product([yf.columns, ["ACME"]], names=["Price", "Ticker"])
    assert qc.BarSeries.from_pandas(yf) == acme
    with pytest.raises(ValueError, match="lacks"):
        qc.BarSeries.from_pandas(frame.drop(columns=["Volume"]))


def test_csv_round_trip(tmp_path: pathlib.Path, acme: qc.BarSeries) -> None:
    pytest.importorskip("pandas")
    path = tmp_path / "acme.csv"
    acme.to_pandas().to_csv(path)
    assert qc.BarSeries.from_csv(path) .close.tolist() == acme.close.tolist()
    parsed = qc.normalize.read_csv(path)
    assert parsed["series"].timestamps.tolist() == acme.timestamps.tolist() and parsed["dropped"] == []
    with pytest.raises(qc.FileError) as info:
        qc.BarSeries.from_csv(tmp_path / "nope.csv")
    assert isinstance(info.value, OSError) and info.value.kind == "io"


def test_csv_parser_strict_and_lenient() -> None:
    text = b"Date,Open,High,Low,Close,Adj Close,Volume\n2024-01-02,187.15,188.44,183.89,185.64,184.29,82488700\n2024-01-03,184.22,185.88,183.43,184.25,182.91,58414500\n"
    bars = qc.normalize.csv(text)
    assert bars["series"].timestamps.tolist() == [1_704_153_600, 1_704_240_000]
    assert bars["series"].adj_close.tolist() == [184.29, 182.91]
    bad = text.replace(b"188.44", b"180.0")
    with pytest.raises(qc.InvalidDataError) as info:
        qc.normalize.csv(bad)
    assert info.value.row == 0 and info.value.field == "high"
    lenient = qc.normalize.csv(bad, lenient=True)
    assert len(lenient["series"]) == 1 and lenient["dropped"][0]["row"] == 0
    with pytest.raises(qc.ParseError) as info:
        qc.normalize.csv(b"Date,Open\n2024-01-02,1\n")
    assert info.value.kind == "missing_field"
    by_symbol = qc.normalize.csv_by_symbol(qc.sample.DAILY_CSV)
    assert sorted(by_symbol["series"]) == ["ACME", "GLOBEX", "INITECH"]


def yahoo_body(close: list) -> bytes:
    n = len(close)
    return json.dumps({"chart": {"result": [{
        "meta": {"symbol": "AAPL", "currency": "USD", "dataGranularity": "1d", "gmtoffset": -14400},
        "timestamp": [1_726_752_600 + 86_400 * i for i in range(n)],
        "indicators": {"quote": [{"open": close, "high": [c + 1 if c is not None else None for c in close],
                                   "low": [c - 1 if c is not None else None for c in close], "close": close,
                                   "volume": [1000] * n}]},
    }], "error": None}}).encode()


def test_yahoo_and_alpaca_parsers() -> None:
    chart = qc.normalize.yahoo_chart(yahoo_body([10.0, None, 11.0]), as_of=2_000_000_000)
    assert chart["series"].symbol == "AAPL" and chart["series"].close.tolist() == [10.0, 11.0]
    assert chart["skipped_null_rows"] == 1 and chart["meta"]["currency"] == "USD"
    assert chart["partial_bar"]["state"] == "complete"
    with pytest.raises(qc.ParseError) as info:
        qc.normalize.yahoo_chart(b'{"chart": {"result": [')
    assert info.value.kind == "malformed" and "line" in info.value.details["location"]
    page = qc.normalize.alpaca_bars(json.dumps({"bars": [
        {"t": "2024-01-16T14:30:00Z", "o": 1.0, "h": 2.0, "l": 0.5, "c": 1.5, "v": 10, "n": 3, "vw": 1.2}
    ], "symbol": "SPY", "next_page_token": None}).encode())
    assert page["symbol"] == "SPY" and page["series"].timestamps.tolist() == [1_705_415_400]
    assert page["trade_counts"].tolist() == [3] and page["vwap"].tolist() == [1.2]
    with pytest.raises(qc.ParseError) as info:
        qc.normalize.alpaca_bars(b'{"code": 40010001, "message": "invalid symbol"}')
    assert info.value.kind == "source_error"


def test_exception_hierarchy() -> None:
    assert issubclass(qc.ParseError, qc.InvalidDataError)
    assert issubclass(qc.OrderRejectedError, qc.OrderError)
    for cls in (qc.InvalidDataError, qc.InvalidParameterError, qc.OrderError, qc.UndefinedMetricError):
        assert issubclass(cls, ValueError) and issubclass(cls, qc.QuantcoreError)
    assert issubclass(qc.FileError, OSError)


def test_make_series_helper_is_valid() -> None:
    series = make_series(np.linspace(10, 20, 50))
    assert len(series) == 50
