"""Shared fixtures: the bundled sample data and seeded random returns."""

from __future__ import annotations

from typing import Dict

import numpy as np
import pytest

import quantcore as qc


@pytest.fixture(scope="session")
def daily() -> Dict[str, qc.BarSeries]:
    return qc.sample.daily()


@pytest.fixture(scope="session")
def acme(daily: Dict[str, qc.BarSeries]) -> qc.BarSeries:
    return daily["ACME"]


@pytest.fixture()
def returns() -> np.ndarray:
    return np.random.default_rng(7).normal(0.0005, 0.01, 2_000)


def make_series(close: np.ndarray, start: int = 1_700_000_000, step: int = 86_400) -> qc.BarSeries:
    """A valid series around ``close`` (open = previous close, high/low 1 % out)."""
    close = np.asarray(close, dtype=np.float64)
    open_ = np.concatenate([[close[0]], close[:-1]])
    high = np.maximum(open_, close) * 1.01
    low = np.minimum(open_, close) * 0.99
    ts = start + step * np.arange(len(close), dtype=np.int64)
    return qc.BarSeries.from_arrays(ts, open_, high, low, close, np.full(len(close), 1e5))
