"""Indicators against independent numpy computations."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import quantcore as qc

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
positive = st.floats(min_value=0.01, max_value=1e4, allow_nan=False, allow_infinity=False)


def nan_prefix(values: np.ndarray, warm_up: int) -> np.ndarray:
    return np.concatenate([np.full(warm_up, np.nan), values])


@given(arrays(np.float64, st.integers(1, 200), elements=finite), st.integers(1, 30))
@settings(max_examples=60, deadline=None)
def test_sma_equals_numpy_convolution(values: np.ndarray, period: int) -> None:
    got = qc.features.sma(values, period)
    assert got.shape == values.shape
    if period > len(values):
        assert np.isnan(got).all()
        return
    expected = nan_prefix(np.convolve(values, np.ones(period) / period, "valid"), period - 1)
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-6)


def test_ema_equals_the_recursion_seeded_with_the_sma() -> None:
    values = np.random.default_rng(1).normal(100, 5, 300)
    period, alpha = 10, 2.0 / 11.0
    expected = np.full(300, np.nan)
    expected[period - 1] = values[:period].mean()
    for t in range(period, 300):
        expected[t] = alpha * values[t] + (1 - alpha) * expected[t - 1]
    np.testing.assert_allclose(qc.features.ema(values, period), expected, rtol=1e-12, equal_nan=True)


@given(arrays(np.float64, st.integers(2, 100), elements=positive), st.integers(1, 5))
@settings(max_examples=40, deadline=None)
def test_returns_equal_numpy(prices: np.ndarray, lag: int) -> None:
    simple = qc.features.simple_returns(prices, lag)
    logr = qc.features.log_returns(prices, lag)
    if lag >= len(prices):
        assert np.isnan(simple).all()
        return
    np.testing.assert_allclose(simple[lag:], prices[lag:] / prices[:-lag] - 1, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(logr[lag:], np.log(prices[lag:] / prices[:-lag]), rtol=1e-12, atol=1e-15)
    assert np.isnan(simple[:lag]).all() and np.isnan(logr[:lag]).all()


def test_rolling_volatility_and_zscore_equal_numpy_windows() -> None:
    prices = 100 * np.exp(np.cumsum(np.random.default_rng(2).normal(0, 0.01, 400)))
    period = 20
    vol = qc.features.rolling_volatility(prices, period)
    returns = prices[1:] / prices[:-1] - 1
    for t in range(period, 400):
        assert vol[t] == pytest.approx(np.std(returns[t - period : t], ddof=1), rel=1e-9)
    assert np.isnan(vol[:period]).all()
    logvol = qc.features.rolling_volatility(prices, period, kind="log")
    assert logvol[-1] == pytest.approx(np.std(np.diff(np.log(prices))[-period:], ddof=1), rel=1e-9)
    z = qc.features.rolling_zscore(prices, period)
    for t in range(period - 1, 400):
        window = prices[t - period + 1 : t + 1]
        assert z[t] == pytest.approx((prices[t] - window.mean()) / window.std(ddof=1), rel=1e-7, abs=1e-9)


def wilder(values: np.ndarray, period: int) -> np.ndarray:
    """Wilder smoothing: seed with the mean of the first ``period`` values."""
    out = np.full(len(values), np.nan)
    out[period - 1] = values[:period].mean()
    for t in range(period, len(values)):
        out[t] = (out[t - 1] * (period - 1) + values[t]) / period
    return out


def test_rsi_and_atr_equal_a_wilder_reference() -> None:
    rng = np.random.default_rng(3)
    close = 50 + np.cumsum(rng.normal(0, 1, 200))
    high, low = close + rng.uniform(0.1, 1, 200), close - rng.uniform(0.1, 1, 200)
    period = 14
    change = np.diff(close)
    gain, loss = wilder(np.maximum(change, 0), period), wilder(np.maximum(-change, 0), period)
    expected_rsi = nan_prefix(100 * gain / (gain + loss), 1)
    np.testing.assert_allclose(qc.features.rsi(close, period), expected_rsi, rtol=1e-9, equal_nan=True)
    true_range = np.maximum(high[1:], close[:-1]) - np.minimum(low[1:], close[:-1])
    expected_atr = nan_prefix(wilder(true_range, period), 1)
    np.testing.assert_allclose(qc.features.atr(high, low, close, period), expected_atr, rtol=1e-9, equal_nan=True)


def test_atr_doc_example_of_the_core() -> None:
    atr = qc.features.atr(np.array([10.0, 11.0, 10.8]), np.array([9.0, 9.8, 10.0]), np.array([9.5, 10.5, 10.2]), 2)
    assert atr[2] == pytest.approx(1.15, abs=1e-12)


def test_bad_inputs_name_the_row_and_the_parameter() -> None:
    with pytest.raises(qc.InvalidDataError, match="row 2") as info:
        qc.features.sma(np.array([1.0, 2.0, np.nan]), 2)
    assert (info.value.kind, info.value.row, info.value.field) == ("non_finite", 2, "values")
    with pytest.raises(qc.InvalidParameterError, match="period") as info:
        qc.features.sma(np.ones(5), 0)
    assert info.value.field == "period"
    with pytest.raises(qc.InvalidDataError, match="low") as info:
        qc.features.atr(np.ones(3), np.ones(2), np.ones(3))
    assert info.value.kind == "length_mismatch" and info.value.details["expected"] == 3
    with pytest.raises(ValueError, match="kind"):
        qc.features.rolling_volatility(np.ones(5), 2, kind="cubic")  # type: ignore[arg-type]


def test_anomaly_features_match_their_formulas(acme: qc.BarSeries) -> None:
    features = qc.features.extract_features(acme, window=20)
    values, first = features["values"], features["first_bar"]
    assert first == 21 and features["names"] == list(qc.features.FEATURE_NAMES)
    assert values.shape == (len(acme) - first, 5) and values.flags.c_contiguous
    close, open_, high, low = acme.close, acme.open, acme.high, acme.low
    t = first + 10
    row = values[10]
    assert row[0] == pytest.approx(np.log(close[t] / close[t - 1]), rel=1e-12)
    assert row[1] == pytest.approx((high[t] - low[t]) / close[t], rel=1e-12)
    assert row[2] == pytest.approx(open_[t] / close[t - 1] - 1, rel=1e-9, abs=1e-15)
    window = acme.volume[t - 20 : t]
    assert row[3] == pytest.approx((acme.volume[t] - window.mean()) / window.std(ddof=1), rel=1e-9)
    np.testing.assert_array_equal(features["timestamps"], acme.timestamps[first:])
