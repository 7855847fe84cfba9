"""Parsers from market-data wire formats into bar series."""

import os
from typing import Optional, Union

from quantcore.types import AlpacaMultiPage, AlpacaPage, CsvBars, CsvBarsBySymbol, YahooChart

_Path = Union[str, "os.PathLike[str]"]

def yahoo_chart(
    data: bytes,
    *,
    lenient: bool = False,
    drop_partial_bar: bool = False,
    as_of: Optional[int] = None,
) -> YahooChart:
    """Parses a Yahoo Finance v8 chart response."""

def alpaca_bars(data: bytes, *, lenient: bool = False) -> AlpacaPage:
    """Parses one page of Alpaca v2 bars for one symbol."""

def alpaca_multi_bars(data: bytes, *, lenient: bool = False) -> AlpacaMultiPage:
    """Parses one page of Alpaca v2 bars for several symbols."""

def csv(data: bytes, *, lenient: bool = False) -> CsvBars:
    """Parses CSV text holding one series."""

def csv_by_symbol(data: bytes, *, lenient: bool = False) -> CsvBarsBySymbol:
    """Parses CSV text with a ``symbol`` column into one series per symbol."""

def read_csv(path: _Path, *, lenient: bool = False) -> CsvBars:
    """Reads a CSV file holding one series."""

def read_csv_by_symbol(path: _Path, *, lenient: bool = False) -> CsvBarsBySymbol:
    """Reads a CSV file with a ``symbol`` column."""
