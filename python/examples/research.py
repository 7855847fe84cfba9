"""A research session with quantcore: load data, detect anomalies, train an LSTM,
backtest momentum vs mean reversion vs the ML strategies, compare, plot.

Run: ``python python/examples/research.py [output-dir]`` (default: a temporary
directory). Uses the bundled synthetic sample data; needs no network. Plots are written
when matplotlib is installed.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Dict, List

import numpy as np
import numpy.typing as npt

import quantcore as qc


def anomalous_bars(series: qc.BarSeries, contamination: float = 0.02) -> npt.NDArray[np.bool_]:
    """A per-bar mask of the bars the Isolation Forest flags (warm-up bars: False)."""
    features = qc.features.extract_features(series)
    forest = qc.IsolationForest(contamination=contamination, seed=7).fit(features["values"])
    mask = np.zeros(len(series), dtype=np.bool_)
    mask[features["first_bar"] :] = forest.detect(features["values"])["flags"]
    return mask


def ml_filtered_momentum(
    series: qc.BarSeries, anomalies: npt.NDArray[np.bool_], fast: int = 10, slow: int = 50
) -> qc.StrategyLike:
    """Momentum that stays out of the market for ``slow // 5`` bars after an anomaly."""
    fast_sma = qc.features.sma(series.close, fast)
    slow_sma = qc.features.sma(series.close, slow)
    cooldown = slow // 5
    recent = np.convolve(anomalies.astype(np.float64), np.ones(cooldown), "full")[: len(series)] > 0

    def strategy(ctx: qc.StrategyContext) -> qc.StrategyAnswer:
        i = ctx.index
        if i < slow - 1:
            return None
        if recent[i]:
            return "close"
        return "long" if fast_sma[i] > slow_sma[i] else "close"

    return strategy


def lstm_strategy(
    series: qc.BarSeries, train_bars: int, epochs: int = 8
) -> qc.StrategyLike:
    """An LSTM trained on the first ``train_bars`` bars predicts every later close; the
    signal generator turns each prediction into BUY (go long) / SELL (go flat) / HOLD,
    traded only after the training period (no look-ahead)."""
    model = qc.LstmPredictor.train(
        series[:train_bars], window=20, hidden_size=16, epochs=epochs, seed=1
    )
    history = model.history
    assert history is not None
    print(f"LSTM: {len(history['train_loss'])} epochs, best {history['best_epoch']}")
    predictions = model.predict_batch(series)  # predictions[k] is for bar window + k + 1
    volatility = qc.features.rolling_volatility(series.close, 20)
    generator = qc.SignalGenerator(commission=0.0005, slippage_bps=2.0)
    close, times, window = series.close, series.timestamps, model.window

    def strategy(ctx: qc.StrategyContext) -> qc.StrategyAnswer:
        i = ctx.index
        if i < train_bars or i - window >= len(predictions) or not np.isfinite(volatility[i]):
            return None
        signal = generator.generate(
            "INITECH", int(times[i]), float(predictions[i - window]), float(close[i]), float(volatility[i])
        )
        action = signal["action"]
        return "long" if action == "BUY" else "close" if action == "SELL" else None

    return strategy


def main(out: Path) -> Dict[str, qc.BacktestResult]:
    out.mkdir(parents=True, exist_ok=True)
    data = qc.sample.daily()
    series = data["INITECH"]  # the symbol with jumps
    print(f"{series!r}")

    anomalies = anomalous_bars(series)
    dates = series.timestamps[anomalies].astype("datetime64[s]").astype("datetime64[D]")
    print(f"anomalous bars: {int(anomalies.sum())}, first: {[str(d) for d in dates[:5]]}")

    backtester = qc.Backtester(
        initial_capital=100_000.0,
        execution=qc.ExecutionModel(commission_rate=0.0005, slippage_bps=2.0),
    )
    results = {
        "momentum 10/50": backtester.run(series, qc.MomentumStrategy(10, 50)),
        "mean reversion 20, 2.0/0.5": backtester.run(series, qc.MeanReversionStrategy(20, 2.0, 0.5)),
        "momentum + anomaly filter": backtester.run(series, ml_filtered_momentum(series, anomalies)),
        "LSTM signals (after training)": backtester.run(series, lstm_strategy(series, train_bars=800)),
    }
    rows: List[str] = []
    for name, result in results.items():
        m = result.metrics
        sharpe = m["sharpe_ratio"]
        rows.append(
            f"{name:<30} return {m['total_return']:+8.2%}  sharpe {sharpe if sharpe is None else round(sharpe, 2)!s:>6}"
            f"  max dd {m['max_drawdown']:+8.2%}  trades {m['trades']['n_trades']:>3}"
        )
    print("\n".join(rows))

    grid = [{"fast": f, "slow": s} for f in (5, 10, 20) for s in (50, 100)]
    table = backtester.sweep(series, "momentum", grid, sort_by="sharpe_ratio")
    best = table[0]
    print(f"best momentum by Sharpe: {best['params']} -> {best['metrics']['sharpe_ratio']}")

    best_name = max(results, key=lambda n: results[n].metrics["total_return"])
    results[best_name].report_html(out / "report.html", title=f"INITECH {best_name}")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("matplotlib not installed: no plot")
    else:
        results[best_name].plot(out / "equity.png", title=f"INITECH {best_name}")
        print(f"plot: {out / 'equity.png'}")
    print(f"report: {out / 'report.html'}")
    return results


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="quantcore-"))
    main(target)
