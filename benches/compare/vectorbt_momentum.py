"""The 1M-bar momentum backtest in vectorbt, on the same bars as quantcore's, with the same
rules, for a same-data, same-period comparison:

    python benches/compare/vectorbt_momentum.py walk.csv        # writes the bars, runs vectorbt
    cargo run --release -p quantcore --example time_backtest -- walk.csv

Rules of both: SMA 10/50 crossover, long while fast > slow, decided at a bar's close and
filled at the next bar's open; 100 units per order; 0.1 % commission; 5 bps slippage;
10,000,000 capital; equity marked at each close. In vectorbt that is
``Portfolio.from_signals`` with the signals shifted one bar, ``price=open``,
``size=100`` (amount), ``fees=0.001``, ``slippage=0.0005``. The two must end on the same
final value and the same number of orders (printed by both); the vectorbt time covers the
moving averages, the signals, the simulation and total return, Sharpe and max drawdown
(quantcore's covers the same plus the rest of its metrics set), best of 5, the first
(numba compilation) run excluded.

Needs numpy, pandas and vectorbt (pip install vectorbt).
"""

import sys
import time

import numpy as np


def walk(n: int, seed: int = 42):
    """The bars of `python/bench/perf.py` (and so of its `--csv` file)."""
    rng = np.random.default_rng(seed)
    anchor = np.log(100.0)
    steps = rng.uniform(-0.017, 0.017, n)
    log_close = np.empty(n)
    level = anchor
    for i in range(n):
        level += 0.0005 * (anchor - level) + steps[i]
        log_close[i] = level
    close = np.exp(log_close)
    previous = np.concatenate([[100.0], close[:-1]])
    open_ = previous * (1 + rng.uniform(-0.002, 0.002, n))
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.01, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.01, n))
    ts = 946_684_800 + 86_400 * np.arange(n, dtype=np.int64)
    volume = rng.uniform(1e4, 1e6, n)
    return ts, open_, high, low, close, volume


def main() -> None:
    import pandas as pd
    import vectorbt as vbt

    path = sys.argv[1] if len(sys.argv) > 1 else "walk.csv"
    ts, open_, high, low, close, volume = walk(1_000_000)
    np.savetxt(
        path,
        np.column_stack([ts, open_, high, low, close, volume]),
        delimiter=",",
        header="timestamp,open,high,low,close,volume",
        comments="",
        fmt=["%d", "%.17g", "%.17g", "%.17g", "%.17g", "%.17g"],
    )
    index = pd.to_datetime(ts, unit="s")
    close_s = pd.Series(close, index=index)
    open_s = pd.Series(open_, index=index)

    def run():
        fast = vbt.MA.run(close_s, 10).ma
        slow = vbt.MA.run(close_s, 50).ma
        long = fast > slow
        # Decided at the close, filled at the next open.
        entries = long.shift(1, fill_value=False)
        exits = (~long).shift(1, fill_value=False)
        pf = vbt.Portfolio.from_signals(
            close_s,
            entries,
            exits,
            price=open_s,
            size=100.0,
            size_type="amount",
            fees=0.001,
            slippage=0.0005,
            init_cash=10_000_000.0,
            freq="1D",
        )
        stats = (pf.total_return(), pf.sharpe_ratio(), pf.max_drawdown())
        return pf, stats

    run()  # numba compiles on the first call
    times = []
    for _ in range(5):
        start = time.perf_counter()
        pf, stats = run()
        times.append(time.perf_counter() - start)
    orders = len(pf.orders.records)
    print(
        f"vectorbt {vbt.__version__}: {min(times) * 1e3:.1f} ms for 1,000,000 bars "
        f"({orders} orders, final value {pf.final_value():.6f}, total return {stats[0]:.9f}, "
        f"Sharpe {stats[1]:.6f}, max drawdown {stats[2]:.9f})"
    )


if __name__ == "__main__":
    main()
