"""Reports of an equity curve: text and self-contained HTML."""

import os
from typing import Optional, Union

import numpy.typing as npt

def text(
    timestamps: npt.ArrayLike,
    equity: npt.ArrayLike,
    trade_pnls: Optional[npt.ArrayLike] = None,
    *,
    periods_per_year: float = 252.0,
    risk_free_rate: float = 0.0,
    sortino_target: float = 0.0,
) -> str:
    """The metrics as an aligned text table."""

def html(
    timestamps: npt.ArrayLike,
    equity: npt.ArrayLike,
    trade_pnls: Optional[npt.ArrayLike] = None,
    *,
    title: str = "quantcore report",
    path: Union[str, "os.PathLike[str]", None] = None,
    periods_per_year: float = 252.0,
    risk_free_rate: float = 0.0,
    sortino_target: float = 0.0,
) -> str:
    """A self-contained HTML report; written to ``path`` when given. Returns the page."""
