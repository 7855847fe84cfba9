"""LstmPredictor and SignalGenerator through Python."""

from __future__ import annotations

import json
import math
import pathlib

import numpy as np
import pytest

import quantcore as qc


@pytest.fixture(scope="module")
def model(acme: qc.BarSeries) -> qc.LstmPredictor:
    return qc.LstmPredictor.train(acme[:400], window=12, hidden_size=8, epochs=4, seed=3)


def test_train_predict_and_the_batch_agree(model: qc.LstmPredictor, acme: qc.BarSeries) -> None:
    series = acme[:400]
    history = model.history
    assert history is not None and len(history["train_loss"]) == 4
    last = model.predict(series)
    batch = model.predict_batch(series)
    assert len(batch) == len(series) - model.window and batch[-1] == last
    # A next-close prediction from a log return near zero stays near the last close.
    assert abs(last / series.close[-1] - 1) < 0.1
    # The prediction for bar k uses bars up to k: the last bar of series[:200] is bar 199.
    assert model.predict(series[:200]) == pytest.approx(batch[200 - model.window - 1], rel=1e-6)


def test_same_seed_same_model(acme: qc.BarSeries, model: qc.LstmPredictor) -> None:
    again = qc.LstmPredictor.train(acme[:400], window=12, hidden_size=8, epochs=4, seed=3)
    assert again.predict(acme[:400]) == model.predict(acme[:400])


def test_progress_callback_sees_each_epoch_and_can_stop(acme: qc.BarSeries) -> None:
    seen: list = []

    def progress(p: dict) -> bool:
        seen.append(p)
        return p["epoch"] < 2

    trained = qc.LstmPredictor.train(acme[:300], window=10, hidden_size=4, epochs=10, progress=progress)
    assert [p["epoch"] for p in seen] == [1, 2] and seen[0]["epochs"] == 10
    assert trained.history is not None and trained.history["stop_reason"] == "interrupted"

    def failing(p: dict) -> None:
        raise RuntimeError("stop here")

    with pytest.raises(RuntimeError, match="stop here"):
        qc.LstmPredictor.train(acme[:300], window=10, hidden_size=4, epochs=3, progress=failing)


def test_save_load_and_pytorch_weights(tmp_path: pathlib.Path, model: qc.LstmPredictor, acme: qc.BarSeries) -> None:
    model.save(tmp_path / "m")
    loaded = qc.LstmPredictor.load(tmp_path / "m")
    assert loaded.predict(acme[:400]) == model.predict(acme[:400])
    # The weights file uses PyTorch's state_dict names: load it as PyTorch weights
    # with the scaler statistics, as a model trained in PyTorch would be.
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    scaler = meta["scaler"]
    torch_like = qc.LstmPredictor.load_pytorch(
        tmp_path / "m" / "model.safetensors",
        feature_mean=scaler["feature_mean"],
        feature_scale=scaler["feature_scale"],
        target_mean=scaler["target_mean"],
        target_scale=scaler["target_scale"],
        window=12,
        hidden_size=8,
    )
    assert torch_like.history is None
    np.testing.assert_array_equal(torch_like.predict_batch(acme[:400]), model.predict_batch(acme[:400]))
    with pytest.raises(qc.ModelError) as info:
        qc.LstmPredictor.load_pytorch(
            tmp_path / "m" / "model.safetensors", feature_mean=[0.0] * 5, feature_scale=[1.0] * 5,
            target_mean=0.0, target_scale=1.0, window=12, hidden_size=16,
        )
    assert info.value.kind == "tensor_shape"
    with pytest.raises(qc.FileError):
        qc.LstmPredictor.load(tmp_path / "missing")


def test_bad_config_and_short_series(acme: qc.BarSeries) -> None:
    with pytest.raises(qc.InvalidParameterError) as info:
        qc.LstmPredictor.train(acme, dropout=1.0)
    assert info.value.field == "dropout"
    with pytest.raises(ValueError, match="unknown LSTM feature"):
        qc.LstmPredictor.train(acme, features=["sentiment"])
    with pytest.raises(qc.InvalidDataError) as info:
        qc.LstmPredictor.train(acme[:10], window=20, epochs=1)
    assert info.value.kind == "not_enough_data"


def test_signal_generator_numbers() -> None:
    gen = qc.SignalGenerator()
    assert gen.threshold == pytest.approx(2 * (0.001 + 5 / 10_000))
    signal = gen.generate("ACME", 1_700_000_000, 102.0, 100.0, 0.01)
    r = 0.02
    assert signal["action"] == "BUY" and signal["expected_return"] == pytest.approx(r)
    assert signal["confidence"] == pytest.approx(math.erf(r / (0.01 * math.sqrt(2))), rel=1e-9)
    assert signal["stop_loss"] == pytest.approx(100 - 2 * 0.01 * 100)
    assert signal["take_profit"] == pytest.approx(100 + 3 * 0.01 * 100)
    assert signal["created_at"] == 1_700_000_000
    assert gen.generate("ACME", 0, 99.0, 100.0, 0.01)["action"] == "SELL"
    assert gen.generate("ACME", 0, 100.1, 100.0, 0.01)["action"] == "HOLD"
    assert gen.generate("ACME", 0, 110.0, 100.0, 0.0)["confidence"] == 0.0
    with pytest.raises(qc.InvalidDataError) as info:
        gen.generate("ACME", 0, 100.0, 100.0, -1.0)
    assert (info.value.field, info.value.value) == ("volatility", -1.0)
    with pytest.raises(qc.InvalidParameterError):
        qc.SignalGenerator(min_confidence=2.0)
