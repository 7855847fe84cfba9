"""Training progress display: a tqdm bar when tqdm is installed, a line per epoch
otherwise."""

from __future__ import annotations

import sys
from typing import Any, Dict, Optional


class EpochBar:
    """A progress callback for :meth:`quantcore.LstmPredictor.train` (``progress=True``)."""

    def __init__(self, epochs: int) -> None:
        self.bar: Optional[Any]
        try:
            from tqdm.auto import tqdm
        except ImportError:
            self.bar = None
        else:
            self.bar = tqdm(total=epochs, desc="LSTM", unit="epoch")

    def __call__(self, progress: Dict[str, Any]) -> None:
        val = progress["val_loss"]
        text = f"train {progress['train_loss']:.4f}" + ("" if val is None else f", val {val:.4f}")
        if self.bar is not None:
            self.bar.set_postfix_str(text)
            self.bar.update(1)
        else:
            print(f"epoch {progress['epoch']}/{progress['epochs']}: {text}", file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def epoch_bar(epochs: int) -> EpochBar:
    """A new :class:`EpochBar`."""
    return EpochBar(epochs)
