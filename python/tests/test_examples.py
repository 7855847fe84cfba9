"""The research notebook's code cells run in order (the script runs in the test
command itself)."""

from __future__ import annotations

import json
import os
import pathlib

import pytest

NOTEBOOK = pathlib.Path(__file__).parents[1] / "examples" / "research.ipynb"


def test_notebook_cells_run(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("pandas")
    pytest.importorskip("matplotlib")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.chdir(tmp_path)
    notebook = json.loads(NOTEBOOK.read_text())
    namespace: dict = {}
    cells = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    assert len(cells) >= 5
    for cell in cells:
        exec(compile("".join(cell["source"]), str(NOTEBOOK), "exec"), namespace)
    assert (tmp_path / "report.html").stat().st_size > 1_000
    assert set(namespace["results"]) == {"momentum 10/50", "mean reversion", "momentum + anomaly filter", "LSTM signals"}
    assert os.environ["MPLBACKEND"] == "Agg"
