"""The bundled synthetic sample data."""

from typing import Dict, List

from quantcore import BarSeries

SYMBOLS: List[str]
"""``["ACME", "GLOBEX", "INITECH"]``."""
DAILY_CSV: bytes
"""The daily sample file as shipped (CSV with a ``symbol`` column)."""

def daily() -> Dict[str, BarSeries]:
    """Daily bars of the sample symbols (weekdays 2019-01-02 to 2024-12-31), by symbol."""

def minute() -> Dict[str, BarSeries]:
    """One-minute bars of the sample symbols (three sessions in March 2024), by symbol."""
