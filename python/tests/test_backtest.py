"""The backtester through Python: built-ins against Python callables and signals,
sweeps against single runs, results against the metrics functions and hand
computation."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest

import quantcore as qc

from conftest import make_series


def momentum_callable(close: np.ndarray, fast: int, slow: int):  # type: ignore[no-untyped-def]
    """The momentum rule written in Python from numpy SMAs."""
    fast_sma, slow_sma = qc.features.sma(close, fast), qc.features.sma(close, slow)

    def strategy(ctx: qc.StrategyContext) -> str:
        i = ctx.index
        if i < slow - 1:
            return "hold"
        return "long" if fast_sma[i] > slow_sma[i] else "close"

    return strategy


def test_python_callable_equals_the_builtin_momentum(acme: qc.BarSeries) -> None:
    bt = qc.Backtester(execution=qc.ExecutionModel(commission_rate=0.001, slippage_bps=5))
    builtin = bt.run(acme, qc.MomentumStrategy(10, 50))
    python = bt.run(acme, momentum_callable(acme.close, 10, 50))
    np.testing.assert_array_equal(python.equity, builtin.equity)
    assert python.trades == builtin.trades and len(builtin.trades) > 5


def test_signals_equal_the_callable(acme: qc.BarSeries) -> None:
    fast, slow = qc.features.sma(acme.close, 5), qc.features.sma(acme.close, 20)
    above = np.nan_to_num(fast - slow) > 0
    entries = above & ~np.roll(above, 1)
    exits = ~above & np.roll(above, 1)
    bt = qc.Backtester()
    signals = bt.from_signals(acme, entries, exits)

    def strategy(ctx: qc.StrategyContext) -> str:
        i = ctx.index
        if entries[i] and exits[i]:
            return "hold"
        if ctx.position == 0 and entries[i]:
            return "buy"
        if ctx.position > 0 and exits[i]:
            return "close"
        return "hold"

    np.testing.assert_array_equal(signals.equity, bt.run(acme, strategy).equity)
    assert qc.from_signals(acme, entries, exits).final_equity == signals.final_equity
    with pytest.raises(TypeError, match="bool"):
        bt.from_signals(acme, entries.astype(np.float64), exits)
    with pytest.raises(qc.InvalidDataError) as info:
        bt.from_signals(acme, entries[:-1], exits)
    assert info.value.field == "entries"


def test_from_signals_by_hand() -> None:
    # The engine's doc example: 10 units bought at 10, sold at 12, at the close.
    close = np.array([10.0, 11.0, 12.0, 13.0])
    series = qc.BarSeries.from_arrays(np.array([1, 2, 3, 4]), close, close, close, close, np.zeros(4))
    result = qc.Backtester(initial_capital=100.0, fill_timing="this_close").from_signals(
        series, np.array([True, False, False, False]), np.array([False, False, True, False])
    )
    assert len(result.trades) == 1 and result.trades[0]["pnl"] == 20.0
    np.testing.assert_array_equal(result.equity, [100.0, 100.0, 110.0, 120.0, 120.0])
    np.testing.assert_array_equal(result.timestamps, [1, 1, 2, 3, 4])


def test_result_metrics_equal_the_metric_functions(acme: qc.BarSeries) -> None:
    result = qc.Backtester().run(acme, qc.MeanReversionStrategy(20, 2.0, 0.5))
    pnls = np.array([t["pnl"] for t in result.trades])
    again = qc.metrics.compute(result.timestamps, result.equity, pnls)
    assert again == result.metrics
    np.testing.assert_allclose(result.returns, result.equity[1:] / result.equity[:-1] - 1, rtol=1e-15)
    np.testing.assert_allclose(result.drawdown, result.equity / np.maximum.accumulate(result.equity) - 1)
    assert result.metrics["sharpe_ratio"] == pytest.approx(qc.metrics.sharpe_ratio(result.returns), rel=1e-12)
    assert result.metrics["trades"]["n_trades"] == len(result.trades)


def test_sweep_rows_equal_single_runs(acme: qc.BarSeries) -> None:
    bt = qc.Backtester()
    grid = [{"fast": f, "slow": s} for f in (5, 10) for s in (30, 60)]
    table = bt.sweep(acme, "momentum", grid)
    assert len(table) == 4 and [row["params"]["fast"] for row in table] == [5, 5, 10, 10]
    for row in table:
        single = bt.run(acme, qc.MomentumStrategy(row["params"]["fast"], row["params"]["slow"]))
        assert row["metrics"] == single.metrics
    ranked = bt.sweep(acme, "momentum", grid, sort_by="sharpe_ratio")
    sharpes = [row["metrics"]["sharpe_ratio"] for row in ranked]
    assert sharpes == sorted(sharpes, reverse=True)
    records = ranked.records()
    assert records[0]["sharpe_ratio"] == sharpes[0] and "trades_n_trades" in records[0]
    with pytest.raises(ValueError, match="cannot sort"):
        bt.sweep(acme, "momentum", grid, sort_by="luck")
    with pytest.raises(qc.InvalidParameterError) as info:
        bt.sweep(acme, "momentum", [{"fast": 10, "slow": 5}])
    assert info.value.field == "slow" and "sweep_index" in info.value.details


def test_multi_symbol_and_context(daily: dict) -> None:
    seen: dict = {}

    def strategy(ctx: qc.StrategyContext) -> qc.Decision:
        seen.setdefault(ctx.symbol, 0)
        seen[ctx.symbol] += 1
        if ctx.index == 0:
            assert ctx.history().tolist() == [ctx.close]
            return qc.Decision.buy(1)
        assert ctx.history("high")[-1] == ctx.high and len(ctx.history()) == ctx.index + 1
        return qc.Decision.hold()

    result = qc.Backtester().run_multi([daily["ACME"], daily["GLOBEX"]], strategy)
    assert seen == {"ACME": 1565, "GLOBEX": 1565} and result.symbols == ["ACME", "GLOBEX"]
    assert len(result.fills) == 2 and {f["symbol"] for f in result.fills} == {"ACME", "GLOBEX"}
    builtin = qc.Backtester().run_multi([daily["ACME"], daily["GLOBEX"]], qc.MomentumStrategy(10, 50))
    assert {t["symbol"] for t in builtin.trades} == {"ACME", "GLOBEX"}


def test_strategy_errors_propagate() -> None:
    series = make_series(np.linspace(10, 20, 30))
    calls = []

    def failing(ctx: qc.StrategyContext) -> None:
        calls.append(ctx.index)
        if ctx.index == 3:
            raise KeyError("no such signal")

    with pytest.raises(KeyError, match="no such signal"):
        qc.Backtester().run(series, failing)
    assert calls == [0, 1, 2, 3]  # not asked again after raising
    with pytest.raises(TypeError, match="must return"):
        qc.Backtester().run(series, lambda ctx: True)
    with pytest.raises(ValueError, match="expected"):
        qc.Backtester().run(series, lambda ctx: "moon")
    with pytest.raises(qc.InvalidParameterError) as info:
        qc.Backtester().run(series, lambda ctx: qc.Decision.buy(-1))
    assert info.value.kind == "invalid_decision" and info.value.row == 0
    with pytest.raises(TypeError, match="strategy"):
        qc.Backtester().run(series, 42)  # type: ignore[arg-type]
    with pytest.raises(qc.InvalidParameterError) as info:
        qc.Backtester(initial_capital=-1.0)
    assert info.value.field == "initial_capital"


def test_numbers_target_positions_and_stops() -> None:
    close = np.array([100.0, 100.0, 90.0, 90.0, 90.0])
    series = make_series(close)
    result = qc.Backtester(fill_timing="this_close").run(
        series, lambda ctx: qc.Decision.target(10, stop_loss=95.0) if ctx.index == 0 else None
    )
    assert result.fills[0]["quantity"] == 10.0
    assert len(result.exits) == 1 and result.exits[0]["reason"] == "stop_loss"


def test_reports_and_plot(tmp_path: pathlib.Path, acme: qc.BarSeries) -> None:
    result = qc.Backtester().run(acme, qc.MomentumStrategy(10, 50))
    page = result.report_html(tmp_path / "r.html", title="ACME 10/50")
    assert (tmp_path / "r.html").read_text() == page and "ACME 10/50" in page
    assert "Sharpe" in result.report_text() and '"sharpe_ratio"' in result.report_json()
    pytest.importorskip("matplotlib")
    figure = result.plot(tmp_path / "r.png")
    assert (tmp_path / "r.png").stat().st_size > 10_000 and len(figure.axes) == 2
    pd = pytest.importorskip("pandas")
    frame = result.trades_frame()
    assert isinstance(frame, pd.DataFrame) and len(frame) == len(result.trades)
