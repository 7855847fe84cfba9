"""Result tables (plain Python; pandas optional)."""

from __future__ import annotations

from typing import Any, Dict, Iterator, List


class SweepTable:
    """The rows of a parameter sweep: each ``{"strategy", "params", "metrics"}``, in
    grid order or sorted by the metric the sweep was asked to sort by."""

    def __init__(self, rows: List[Dict[str, Any]]) -> None:
        self.rows: List[Dict[str, Any]] = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[Dict[str, Any]]:
        return iter(self.rows)

    def __getitem__(self, index: int) -> Dict[str, Any]:
        return self.rows[index]

    def records(self) -> List[Dict[str, Any]]:
        """One flat dict per row: the parameters, then every scalar metric (trade
        statistics prefixed ``trades_``); undefined metrics are ``None``."""
        flat: List[Dict[str, Any]] = []
        for row in self.rows:
            record: Dict[str, Any] = dict(row["params"])
            for name, value in row["metrics"].items():
                if name == "trades":
                    for trade_name, trade_value in value.items():
                        if trade_name != "undefined":
                            record[f"trades_{trade_name}"] = trade_value
                elif name not in ("config", "undefined", "max_drawdown_period"):
                    record[name] = value
            flat.append(record)
        return flat

    def to_pandas(self) -> Any:
        """:meth:`records` as a pandas DataFrame (needs pandas)."""
        from quantcore._pandas import require_pandas

        return require_pandas().DataFrame(self.records())

    def __repr__(self) -> str:
        return f"SweepTable({len(self.rows)} rows)"
