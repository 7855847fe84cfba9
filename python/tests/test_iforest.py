"""IsolationForest: planted anomalies, scikit-learn's conventions, determinism."""

from __future__ import annotations

import numpy as np
import pytest

import quantcore as qc


def planted(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 1.0, (1_000, 3))
    x[:10] = rng.normal(8.0, 0.5, (10, 3))  # ten far-away rows
    return x


def test_planted_anomalies_score_highest_and_are_flagged() -> None:
    x = planted()
    forest = qc.IsolationForest(contamination=0.01, seed=3).fit(x)
    scores = forest.anomaly_score(x)
    assert set(np.argsort(scores)[-10:]) == set(range(10))
    labels = forest.predict(x)
    assert labels.dtype == np.int64 and set(np.unique(labels)) == {-1, 1}
    assert (labels[:10] == -1).all() and (labels == -1).sum() <= 12
    detection = forest.detect(x)
    assert detection["threshold"] == forest.threshold_
    np.testing.assert_array_equal(detection["flags"], labels == -1)
    np.testing.assert_array_equal(detection["anomalous_rows"], np.flatnonzero(labels == -1))
    assert ((scores > 0) & (scores <= 1)).all()


def test_scikit_learn_conventions_hold() -> None:
    x = planted(1)
    forest = qc.IsolationForest(seed=5).fit(x)
    assert forest.threshold_ == 0.5 and forest.offset_ == -0.5  # contamination="auto"
    score_samples = forest.score_samples(x)
    np.testing.assert_array_equal(score_samples, -forest.anomaly_score(x))
    decision = forest.decision_function(x)
    np.testing.assert_allclose(decision, score_samples - forest.offset_, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(forest.predict(x) == -1, decision < 0)
    assert forest.n_features_in_ == 3 and forest.max_samples_ == 256
    np.testing.assert_array_equal(qc.IsolationForest(seed=5).fit_predict(x), forest.predict(x))


def test_same_seed_same_scores_other_seed_other_scores() -> None:
    x = planted(2)
    a = qc.IsolationForest(seed=11).fit(x).anomaly_score(x)
    b = qc.IsolationForest(seed=11).fit(x).anomaly_score(x)
    c = qc.IsolationForest(seed=12).fit(x).anomaly_score(x)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_errors() -> None:
    with pytest.raises(qc.InvalidParameterError) as info:
        qc.IsolationForest(contamination=0.6)
    assert info.value.field == "contamination"
    with pytest.raises(qc.InvalidParameterError, match="n_trees"):
        qc.IsolationForest(n_trees=0)
    with pytest.raises(RuntimeError, match="not fitted"):
        qc.IsolationForest().predict(np.ones((3, 2)))
    forest = qc.IsolationForest(seed=1).fit(planted())
    with pytest.raises(qc.InvalidDataError) as info:
        forest.anomaly_score(np.ones((4, 2)))
    assert info.value.kind == "feature_count_mismatch" and info.value.details["expected"] == 3
    x = np.zeros((5, 3))
    x[3, 1] = np.nan
    with pytest.raises(qc.InvalidDataError, match="row 3, column 1") as info:
        forest.anomaly_score(x)
    assert info.value.row == 3
    with pytest.raises(ValueError, match="2-dimensional"):
        forest.predict(np.ones(3))
    with pytest.raises(ValueError, match="C-contiguous"):
        forest.predict(np.ones((3, 6))[:, ::2])
    assert qc.IsolationForest(max_features=2, score_threshold=0.6).get_params()["score_threshold"] == 0.6


def test_on_bar_features_flags_the_jumps_of_the_jumpy_symbol(daily: dict) -> None:
    features = qc.features.extract_features(daily["INITECH"])
    forest = qc.IsolationForest(contamination=0.01, seed=7).fit(features["values"])
    flagged = forest.detect(features["values"])["anomalous_rows"]
    returns = np.abs(features["values"][:, 0])
    # The largest absolute log return (a planted jump) is among the flagged rows.
    assert int(np.argmax(returns)) in set(flagged.tolist())
