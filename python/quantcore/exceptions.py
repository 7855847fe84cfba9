"""The exceptions raised by quantcore.

Every error of the Rust core is raised as a subclass of :class:`QuantcoreError`, mapped
in one place (``quantcore-py/src/errors.rs``). Each carries the core's message and:

- ``kind``: the core's error variant in snake case (``"non_finite"``,
  ``"unsorted_bars"``, ``"zero_variance"``, ...), what a caller branches on;
- ``row``: the 0-based row of the input the error points at, or ``None``;
- ``field``: the column, parameter or field named by the error, or ``None``;
- ``value``: the offending value, or ``None``;
- ``details``: every other field of the core error (``expected``, ``reason``, ...).

Bad input is a ``ValueError`` as well (``except ValueError`` catches it); a file that
cannot be read is an ``OSError`` as well.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Union

__all__ = [
    "QuantcoreError",
    "InvalidDataError",
    "ParseError",
    "InvalidParameterError",
    "OrderError",
    "OrderRejectedError",
    "UndefinedMetricError",
    "FileError",
    "ModelError",
]


class QuantcoreError(Exception):
    """Base class of every error raised by the quantcore engine."""

    kind: str
    row: Optional[int]
    field: Optional[str]
    value: Union[float, int, str, None]
    details: Dict[str, Any]

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.kind = "error"
        self.row = None
        self.field = None
        self.value = None
        self.details = {}


class InvalidDataError(QuantcoreError, ValueError):
    """Input data breaks a rule: a NaN price, high below close, unsorted timestamps,
    columns of different lengths, too few rows, a non-finite feature."""


class ParseError(InvalidDataError):
    """A market-data payload (Yahoo, Alpaca, CSV) is malformed, lacks a field, has an
    unreadable value, or is an error object from the source."""


class InvalidParameterError(QuantcoreError, ValueError):
    """A parameter or configuration value is out of its valid range."""


class OrderError(QuantcoreError, ValueError):
    """An order, a fill or a symbol is invalid for the operation."""


class OrderRejectedError(OrderError):
    """The risk limits refused an order; ``details["violation"]`` names the limit and
    ``details["excess"]`` says by how much it was exceeded."""


class UndefinedMetricError(QuantcoreError, ValueError):
    """A metric has no value for these returns (``kind`` says why: ``zero_variance``,
    ``too_few_periods``, ``no_downside``, ...). The engine never substitutes 0 or
    infinity for an undefined metric."""


class FileError(QuantcoreError, OSError):
    """A file could not be read or written."""


class ModelError(QuantcoreError):
    """A machine-learning model failed (fitting, loading weights)."""
