"""Performance figures of the Python module (run against a release build:
``maturin develop --release``).

1. A 1,000,000-bar momentum backtest (10/50, 0.1 % commission, 5 bps slippage, 100 units
   per trade) from Python, on bars shaped like ``benches/benches/backtest.rs``'s walk,
   to compare with that criterion bench of the Rust engine.
   ``--csv PATH`` also writes the bars, for the same run from Rust:
   ``cargo run --release -p quantcore --example time_backtest -- PATH``.
2. Metrics on a 1,000,000-element numpy array: time, and that the input is not copied
   (peak resident memory does not grow by the array's 8 MB; see also
   ``tests/test_zero_copy.py`` with 128 MB).
3. The per-bar overhead of a Python callable strategy: a callable that always holds vs
   the engine with a built-in strategy on the same bars.
"""

from __future__ import annotations

import resource
import sys
import time
from typing import Callable

import numpy as np

import quantcore as qc


def walk(n: int, seed: int = 42) -> qc.BarSeries:
    rng = np.random.default_rng(seed)
    anchor = np.log(100.0)
    steps = rng.uniform(-0.017, 0.017, n)
    log_close = np.empty(n)
    level = anchor
    for i in range(n):  # mean-reverting walk, as the Rust bench
        level += 0.0005 * (anchor - level) + steps[i]
        log_close[i] = level
    close = np.exp(log_close)
    previous = np.concatenate([[100.0], close[:-1]])
    open_ = previous * (1 + rng.uniform(-0.002, 0.002, n))
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.01, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.01, n))
    ts = 946_684_800 + 86_400 * np.arange(n, dtype=np.int64)
    return qc.BarSeries.from_arrays(ts, open_, high, low, close, rng.uniform(1e4, 1e6, n), symbol="WALK")


def best_of(runs: int, f: Callable[[], object]) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    series = walk(1_000_000)
    bt = qc.Backtester(
        initial_capital=10_000_000.0,
        execution=qc.ExecutionModel(commission_rate=0.001, slippage_bps=5.0),
        sizing="fixed_quantity",
        size=100.0,
    )
    strategy = qc.MomentumStrategy(10, 50)
    t = best_of(5, lambda: bt.run(series, strategy))
    orders = len(bt.run(series, strategy).orders)
    print(
        f"1M-bar momentum backtest from Python: {t * 1e3:.1f} ms ({1e6 / t / 1e6:.1f} M bars/s, {orders} orders)"
    )
    if len(sys.argv) > 2 and sys.argv[1] == "--csv":
        # The same bars for `cargo run --release -p quantcore --example time_backtest -- PATH`.
        columns = series.to_numpy()
        np.savetxt(
            sys.argv[2],
            np.column_stack([columns[k] for k in ("timestamps", "open", "high", "low", "close", "volume")]),
            delimiter=",",
            header="timestamp,open,high,low,close,volume",
            comments="",
            fmt=["%d", "%.17g", "%.17g", "%.17g", "%.17g", "%.17g"],
        )

    returns = np.random.default_rng(1).normal(0.0003, 0.01, 1_000_000)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t_sharpe = best_of(20, lambda: qc.metrics.sharpe_ratio(returns))
    t_dd = best_of(20, lambda: qc.metrics.max_drawdown(returns))
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    t_np = best_of(20, lambda: returns.mean() / returns.std(ddof=1) * np.sqrt(252))
    t_copy = best_of(20, lambda: returns.copy())
    print(
        f"metrics on 1M float64: sharpe {t_sharpe * 1e3:.2f} ms, max drawdown {t_dd * 1e3:.2f} ms "
        f"(numpy sharpe {t_np * 1e3:.2f} ms; one 8 MB copy would cost {t_copy * 1e3:.2f} ms); "
        f"peak RSS grew by {grown:.1f} MB"
    )

    bars = series[:200_000]
    t_builtin = best_of(3, lambda: bt.run(bars, strategy))
    t_callable = best_of(3, lambda: bt.run(bars, lambda ctx: None))
    fast, slow = qc.features.sma(bars.close, 10), qc.features.sma(bars.close, 50)

    def momentum(ctx: qc.StrategyContext) -> qc.StrategyAnswer:
        i = ctx.index
        if i < 49:
            return None
        return "long" if fast[i] > slow[i] else "close"

    t_python_momentum = best_of(3, lambda: bt.run(bars, momentum))
    per_bar = (t_callable - t_builtin) / len(bars)
    print(
        f"Python callable strategy on 200k bars: {t_callable * 1e3:.0f} ms (built-in {t_builtin * 1e3:.0f} ms): "
        f"{per_bar * 1e9:.0f} ns per bar of overhead; a momentum rule in Python: "
        f"{t_python_momentum / len(bars) * 1e9:.0f} ns per bar"
    )


if __name__ == "__main__":
    main()
