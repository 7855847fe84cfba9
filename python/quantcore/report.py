"""Reports of an equity curve: a text table and a self-contained HTML page (inline SVG
equity and drawdown charts, no scripts, works offline)."""

from quantcore._quantcore import report as _native

text = _native.text
html = _native.html

__all__ = ["html", "text"]
