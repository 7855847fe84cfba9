"""Zero-copy in and out.

Inputs: a function that borrowed by copying would need a second buffer as large as
its input. We give a 128 MB array to functions whose core code allocates nothing
(sharpe ratio, max drawdown, total return) and check that the process's peak resident
memory grows by far less than 128 MB. Arrays that would need a copy to be borrowed
(wrong dtype, strided) are refused instead of copied silently.

Outputs: columns of a BarSeries and a BacktestResult are views of the Rust buffers
(the array's base is the Python object that owns them, and two reads share memory);
computed arrays wrap the moved Rust ``Vec`` (their base is numpy's slice container).
"""

from __future__ import annotations

import resource

import numpy as np
import pytest

import quantcore as qc


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def test_metrics_on_a_large_array_do_not_copy_it() -> None:
    n = 16_000_000  # 128 MB of float64
    big = np.random.default_rng(0).normal(0.0, 0.01, n)
    big += 0.0  # touched: resident
    before = peak_rss_mb()
    sharpe = qc.metrics.sharpe_ratio(big)
    drawdown = qc.metrics.max_drawdown(big)
    total = qc.metrics.total_return(big)
    grown = peak_rss_mb() - before
    assert grown < 32.0, f"peak RSS grew by {grown:.0f} MB for a 128 MB input"
    assert np.isfinite(sharpe) and drawdown <= 0.0 and np.isfinite(total)


def test_read_only_and_memory_mapped_inputs_are_read_in_place(tmp_path: "object") -> None:
    values = np.linspace(1.0, 2.0, 1_000)
    values.setflags(write=False)
    assert np.allclose(qc.features.sma(values, 10)[9:], np.convolve(values, np.ones(10) / 10, "valid"))
    buffer = np.frombuffer(values.tobytes(), dtype=np.float64)  # read-only, foreign memory
    assert qc.metrics.total_return(np.diff(buffer) / buffer[:-1]) == pytest.approx(1.0)


def test_inputs_needing_a_copy_are_refused() -> None:
    strided = np.ones(10)[::2]
    with pytest.raises(ValueError, match="C-contiguous"):
        qc.metrics.sharpe_ratio(strided)
    with pytest.raises(TypeError, match="dtype float64, was float32"):
        qc.metrics.sharpe_ratio(np.ones(10, dtype=np.float32))
    with pytest.raises(TypeError, match="dtype float64, was int64"):
        qc.features.sma(np.arange(10), 3)
    with pytest.raises(ValueError, match="1-dimensional, was 2-dimensional"):
        qc.features.sma(np.ones((3, 3)), 2)
    with pytest.raises(TypeError, match="dtype int64, was float64"):
        qc.metrics.compute(np.ones(3), np.ones(3))


def test_lists_go_through_numpy_asarray() -> None:
    assert qc.metrics.total_return([0.1, -0.1]) == pytest.approx(-0.01)
    with pytest.raises(TypeError, match="int64"):
        qc.metrics.total_return([1, 2])


def test_series_columns_are_views_of_the_rust_buffers(acme: qc.BarSeries) -> None:
    close = acme.close
    assert close.base is acme
    assert not close.flags.writeable and not close.flags.owndata
    assert np.shares_memory(close, acme.to_numpy()["close"])
    assert np.shares_memory(acme.timestamps, acme.to_numpy()["timestamps"])
    with pytest.raises(ValueError):
        close[0] = 1.0


def test_result_curves_are_views_and_outputs_move_the_rust_vec(acme: qc.BarSeries) -> None:
    result = qc.Backtester().run(acme, qc.MomentumStrategy(10, 50))
    equity = result.equity
    assert equity.base is result and np.shares_memory(equity, result.equity)
    sma = qc.features.sma(acme.close, 5)
    assert not sma.flags.owndata and type(sma.base).__name__ == "PySliceContainer"
    assert sma.flags.writeable
