"""The bundled **synthetic** sample data (geometric Brownian motion with GARCH
volatility; ``GLOBEX`` mean-reverts, ``INITECH`` jumps). Not real market data."""

from quantcore._quantcore import sample as _native

daily = _native.daily
minute = _native.minute
SYMBOLS = _native.SYMBOLS
DAILY_CSV = _native.DAILY_CSV

__all__ = ["DAILY_CSV", "SYMBOLS", "daily", "minute"]
