"""Metrics against numpy formulas, and the dict of ``compute`` against the free
functions and the engine's documented examples."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import quantcore as qc

PPY = 252.0


def test_sharpe_sortino_volatility_equal_numpy(returns: np.ndarray) -> None:
    r, rf = returns, 0.0001
    assert qc.metrics.sharpe_ratio(r, rf, PPY) == pytest.approx(
        np.mean(r - rf) / np.std(r, ddof=1) * np.sqrt(PPY), rel=1e-10
    )
    downside = np.sqrt(np.mean(np.minimum(r, 0.0) ** 2)) * np.sqrt(PPY)
    assert qc.metrics.downside_deviation(r) == pytest.approx(downside, rel=1e-10)
    assert qc.metrics.sortino_ratio(r) == pytest.approx(np.mean(r) * PPY / downside, rel=1e-10)
    assert qc.metrics.annual_volatility(r) == pytest.approx(np.std(r, ddof=1) * np.sqrt(PPY), rel=1e-10)
    assert qc.metrics.annualized_mean_return(r) == pytest.approx(np.mean(r) * PPY, rel=1e-10)
    growth = np.prod(1 + r)
    assert qc.metrics.total_return(r) == pytest.approx(growth - 1, rel=1e-10)
    assert qc.metrics.cagr(r) == pytest.approx(growth ** (PPY / len(r)) - 1, rel=1e-10)


def test_drawdown_equals_numpy_cummax(returns: np.ndarray) -> None:
    equity = np.concatenate([[1.0], np.cumprod(1 + returns)])
    underwater = equity / np.maximum.accumulate(equity) - 1
    assert qc.metrics.max_drawdown(returns) == pytest.approx(underwater.min(), rel=1e-10)
    np.testing.assert_allclose(qc.metrics.drawdown_series(equity), underwater, rtol=1e-12, atol=1e-15)
    cagr = np.prod(1 + returns) ** (PPY / len(returns)) - 1
    assert qc.metrics.calmar_ratio(returns) == pytest.approx(cagr / -underwater.min(), rel=1e-10)


def test_moments_and_tails_equal_numpy(returns: np.ndarray) -> None:
    r = returns
    d = r - r.mean()
    m2, m3, m4 = (d**2).mean(), (d**3).mean(), (d**4).mean()
    assert qc.metrics.skewness(r) == pytest.approx(m3 / m2**1.5, rel=1e-9)
    assert qc.metrics.excess_kurtosis(r) == pytest.approx(m4 / m2**2 - 3, rel=1e-9)
    assert qc.metrics.value_at_risk(r, 0.05) == pytest.approx(np.percentile(r, 5), rel=1e-12)
    assert qc.metrics.tail_ratio(r) == pytest.approx(abs(np.percentile(r, 95)) / abs(np.percentile(r, 5)), rel=1e-12)
    k = int(np.floor((len(r) - 1) * 0.05)) + 1
    assert qc.metrics.conditional_value_at_risk(r) == pytest.approx(np.sort(r)[:k].mean(), rel=1e-12)


def test_core_doc_examples() -> None:
    # The engine's own doctests, through Python.
    assert qc.metrics.sharpe_ratio(np.array([0.01, 0.03]), 0.0, 1.0) == pytest.approx(2 / np.sqrt(2), abs=1e-12)
    assert qc.metrics.max_drawdown(np.array([0.2, -0.25, 0.1])) == pytest.approx(-0.25, abs=1e-12)
    var = qc.metrics.value_at_risk(np.arange(-5, 6) / 100.0, 0.05)
    assert var == pytest.approx(-0.045, abs=1e-12)


def test_undefined_metrics_raise_with_the_reason() -> None:
    with pytest.raises(qc.UndefinedMetricError, match="zero variance") as info:
        qc.metrics.sharpe_ratio(np.full(10, 0.01))
    assert info.value.kind == "zero_variance" and isinstance(info.value, ValueError)
    with pytest.raises(qc.UndefinedMetricError) as info:
        qc.metrics.sharpe_ratio(np.array([0.01]))
    assert info.value.kind == "too_few_periods" and info.value.details["required"] == 2
    with pytest.raises(qc.UndefinedMetricError) as info:
        qc.metrics.sortino_ratio(np.array([0.01, 0.02]))
    assert info.value.kind == "no_downside"
    with pytest.raises(qc.InvalidDataError) as info:
        qc.metrics.sharpe_ratio(np.array([0.01, np.inf, 0.0]))
    assert (info.value.row, info.value.field) == (1, "returns")
    with pytest.raises(qc.InvalidParameterError) as info:
        qc.metrics.value_at_risk(np.ones(3), 1.5)
    assert (info.value.field, info.value.value) == ("cutoff", 1.5)


def test_compute_agrees_with_the_free_functions_and_numpy(acme: qc.BarSeries) -> None:
    equity, ts = acme.close, acme.timestamps
    pnls = np.array([100.0, -50.0, 30.0, -20.0])
    m = qc.metrics.compute(ts, equity, pnls, risk_free_rate=0.0)
    r = equity[1:] / equity[:-1] - 1
    assert m["n_periods"] == len(r)
    assert m["sharpe_ratio"] == pytest.approx(qc.metrics.sharpe_ratio(r), rel=1e-12)
    assert m["volatility"] == pytest.approx(np.std(r, ddof=1) * np.sqrt(PPY), rel=1e-10)
    assert m["max_drawdown"] == pytest.approx((equity / np.maximum.accumulate(equity) - 1).min(), rel=1e-12)
    period = m["max_drawdown_period"]
    underwater = equity / np.maximum.accumulate(equity) - 1
    assert period is not None and period["trough_index"] == int(np.argmin(underwater))
    assert period["peak_index"] == int(np.argmax(equity[: period["trough_index"] + 1]))
    assert m["value_at_risk_95"] == pytest.approx(np.percentile(r, 5), rel=1e-12)
    trades = m["trades"]
    assert (trades["n_trades"], trades["win_rate"], trades["expectancy"]) == (4, 0.5, 15.0)
    assert trades["profit_factor"] == pytest.approx(130 / 70)
    assert m["undefined"] == {}


def test_compute_reports_undefined_values_as_none_with_reasons() -> None:
    m = qc.metrics.compute(np.array([0, 86_400]), np.array([100.0, 101.0]))
    assert m["sharpe_ratio"] is None
    assert m["undefined"]["sharpe_ratio"]["reason"] == "too_few_periods"
    assert m["trades"]["win_rate"] is None and m["trades"]["undefined"]["win_rate"]["reason"] == "no_trades"
    with pytest.raises(qc.InvalidDataError) as info:
        qc.metrics.compute(np.array([0, 1, 2]), np.array([100.0, -1.0, 100.0]))
    assert (info.value.kind, info.value.row, info.value.value) == ("non_positive_equity", 1, -1.0)
    with pytest.raises(qc.InvalidParameterError, match="periods_per_year"):
        qc.metrics.compute(np.array([0, 1]), np.array([1.0, 2.0]), periods_per_year=0.0)


@given(arrays(np.float64, st.integers(3, 300), elements=st.floats(-0.2, 0.2)))
@settings(max_examples=60, deadline=None)
def test_sharpe_matches_numpy_or_is_undefined(r: np.ndarray) -> None:
    std = np.std(r, ddof=1)
    try:
        sharpe = qc.metrics.sharpe_ratio(r)
    except qc.UndefinedMetricError as err:
        assert err.kind == "zero_variance"
        assert std <= 1e-12 * (1 + abs(r.mean()))
        return
    assert sharpe == pytest.approx(r.mean() / std * np.sqrt(PPY), rel=1e-6)
    assert qc.metrics.max_drawdown(r) <= 0.0


def test_reports_write_html(tmp_path: "object", acme: qc.BarSeries) -> None:
    import pathlib

    path = pathlib.Path(str(tmp_path)) / "report.html"
    page = qc.report.html(acme.timestamps, acme.close, title="ACME <close>", path=path)
    assert page.startswith("<!DOCTYPE html>") and "ACME &lt;close&gt;" in page
    assert path.read_text() == page
    assert "Sharpe" in qc.report.text(acme.timestamps, acme.close)
    with pytest.raises(qc.FileError) as info:
        qc.report.html(acme.timestamps, acme.close, path=pathlib.Path(str(tmp_path)) / "missing" / "r.html")
    assert isinstance(info.value, OSError)
