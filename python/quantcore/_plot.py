"""matplotlib charts (matplotlib is optional)."""

from __future__ import annotations

import os
from typing import Any, Optional, Union

import numpy as np
import numpy.typing as npt


def require_matplotlib() -> Any:
    """Imports matplotlib.pyplot (with a file backend when there is no display), or
    raises ImportError saying how to install it."""
    try:
        import matplotlib
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("plotting needs matplotlib: pip install 'quantcore[plot]'") from err
    if not os.environ.get("DISPLAY") and not os.environ.get("MPLBACKEND"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_equity(
    timestamps: npt.ArrayLike,
    equity: npt.ArrayLike,
    *,
    title: str = "Equity",
    path: Union[str, "os.PathLike[str]", None] = None,
    benchmark: Optional[npt.ArrayLike] = None,
) -> Any:
    """Plots an equity curve and its drawdown (the underwater curve, computed by the
    engine) on two stacked axes; saves the figure to ``path`` when given.

    ``timestamps`` are Unix seconds; ``benchmark`` an optional second curve of the same
    length, rescaled to start at the same value. Returns the matplotlib Figure.
    """
    from quantcore._quantcore import metrics as _metrics

    plt = require_matplotlib()
    times = np.asarray(timestamps, dtype=np.int64).astype("datetime64[s]")
    curve = np.ascontiguousarray(equity, dtype=np.float64)
    underwater = _metrics.drawdown_series(curve)
    figure, (top, bottom) = plt.subplots(
        2, 1, sharex=True, figsize=(10, 6), gridspec_kw={"height_ratios": [3, 1]}
    )
    top.plot(times, curve, color="#2563eb", linewidth=1.2, label="equity")
    if benchmark is not None:
        reference = np.asarray(benchmark, dtype=np.float64)
        top.plot(times, reference / reference[0] * curve[0], color="#9aa1b1", linewidth=1.0, label="benchmark")
        top.legend(loc="upper left")
    top.set_title(title)
    top.set_ylabel("equity")
    top.grid(alpha=0.3)
    bottom.fill_between(times, underwater * 100.0, 0.0, color="#dc2626", alpha=0.3)
    bottom.plot(times, underwater * 100.0, color="#dc2626", linewidth=0.8)
    bottom.set_ylabel("drawdown %")
    bottom.grid(alpha=0.3)
    figure.tight_layout()
    if path is not None:
        figure.savefig(os.fspath(path), dpi=100)
    return figure
