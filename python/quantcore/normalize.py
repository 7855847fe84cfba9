"""Parsers from market-data wire formats into :class:`~quantcore.BarSeries`.

Yahoo Finance v8 chart JSON, Alpaca v2 bars JSON (one or several symbols) and CSV
(pandas/yfinance ``to_csv`` layouts). Each takes the raw bytes (or a path for the
``read_*`` functions) and returns a dict with the ``series`` and what the parser
learned (``dropped`` rows in lenient mode, Yahoo's ``meta``, Alpaca's
``next_page_token``). Strict mode (the default) raises on the first invalid row,
naming it; ``lenient=True`` drops invalid rows and lists them.
"""

from quantcore._quantcore import normalize as _native

yahoo_chart = _native.yahoo_chart
alpaca_bars = _native.alpaca_bars
alpaca_multi_bars = _native.alpaca_multi_bars
csv = _native.csv
csv_by_symbol = _native.csv_by_symbol
read_csv = _native.read_csv
read_csv_by_symbol = _native.read_csv_by_symbol

__all__ = [
    "alpaca_bars",
    "alpaca_multi_bars",
    "csv",
    "csv_by_symbol",
    "read_csv",
    "read_csv_by_symbol",
    "yahoo_chart",
]
