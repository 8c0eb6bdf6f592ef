"""The exported model against scikit-learn's: same probabilities, good accuracy, safe loading."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import numpy as np
import pytest

from service import train
from service.model import FEATURES, IrisModel, load_or_train
from service.schemas import TUTORIAL_SAMPLE, IrisFeatures

TUTORIAL_ROW = tuple(float(TUTORIAL_SAMPLE[feature]) for feature in FEATURES)


def test_probabilities_equal_predict_proba_on_the_whole_data_set(fitted, artifact):
    estimator, data, _ = fitted
    model = IrisModel.load(artifact)
    ours = np.array([model.probabilities(row) for row in data])
    np.testing.assert_allclose(ours, estimator.predict_proba(data), rtol=0, atol=1e-12)


def test_artifact_keeps_scikit_learns_class_order(fitted, artifact):
    _, _, classes = fitted
    assert IrisModel.load(artifact).classes == classes
    assert set(classes) == {"setosa", "versicolor", "virginica"}


def test_accuracy_on_the_iris_data(fitted, artifact, iris_names):
    _, data, _ = fitted
    model = IrisModel.load(artifact)
    predicted = [model.classify(row)[0] for row in data]
    accuracy = np.mean([p == t for p, t in zip(predicted, iris_names, strict=True)])
    assert accuracy >= 0.95


def test_tutorial_sample_is_a_confident_setosa(artifact):
    name, probabilities = IrisModel.load(artifact).classify(TUTORIAL_ROW)
    assert name == "setosa"
    assert max(probabilities) >= 0.98


def test_probabilities_stay_finite_for_extreme_inputs(artifact):
    # Without the max shift, exp() of these scores would overflow to inf and give NaN.
    probabilities = IrisModel.load(artifact).probabilities((100.0, 0.001, 100.0, 100.0))
    assert all(np.isfinite(probabilities))
    assert sum(probabilities) == pytest.approx(1.0)


def test_artifact_round_trips_every_weight_exactly(artifact, tmp_path):
    model = IrisModel.load(artifact)
    copy = tmp_path / "copy.json"
    model.save(copy)
    assert IrisModel.load(copy) == model
    assert copy.read_bytes() == artifact.read_bytes()


def _edited(artifact: Path, tmp_path: Path, edit) -> Path:
    document = json.loads(artifact.read_text())
    edit(document)
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(document))
    return path


def test_artifact_with_other_features_is_refused(artifact, tmp_path):
    path = _edited(artifact, tmp_path, lambda d: d["features"].reverse())
    with pytest.raises(ValueError, match=r"edited\.json is not a usable .* trained on features"):
        IrisModel.load(path)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.pop("weights"), "missing 'weights'"),
        (lambda d: d["weights"][0].__setitem__(1, "0.5"), "must be numbers"),
        (lambda d: d["intercepts"].__setitem__(0, True), "must be numbers"),
        (lambda d: d["intercepts"].__setitem__(0, float("nan")), "not finite"),
        (lambda d: d["classes"].__setitem__(0, 0), "classes must be a list of names"),
        (lambda d: d.__setitem__("classes", "abc"), "classes must be a list of names"),
        (lambda d: d["classes"].__setitem__(1, d["classes"][0]), "class names repeat"),
        (lambda d: d.__setitem__("features", "".join(FEATURES)), "trained on features"),
        (lambda d: d["weights"][0].__setitem__(0, 10**400), "too large"),
        (lambda d: d["weights"].pop(), "one weight row and intercept per class"),
        (lambda d: d["weights"][2].pop(), "4 weights per class"),
        (lambda d: d.__setitem__("weights", 7), "not iterable"),
    ],
)
def test_malformed_artifacts_are_refused_naming_the_file(artifact, tmp_path, edit, message):
    unusable = r"edited\.json is not a usable model artifact: .*"
    with pytest.raises(ValueError, match=unusable + message):
        IrisModel.load(_edited(artifact, tmp_path, edit))


def test_an_artifact_that_is_not_json_is_refused(tmp_path):
    path = tmp_path / "edited.json"
    path.write_bytes(b"PK\x03\x04 an old .npz")
    with pytest.raises(ValueError, match=r"edited\.json is not a usable model artifact"):
        IrisModel.load(path)


@pytest.mark.parametrize(
    ("coef", "intercept", "message"),
    [
        (np.zeros((3, 3)), np.zeros(3), "4 weights per class"),
        (np.zeros((2, 4)), np.zeros(3), "one weight row and intercept per class"),
    ],
)
def test_malformed_weights_are_refused(coef, intercept, message):
    with pytest.raises(ValueError, match=message):
        IrisModel.from_arrays(coef, intercept, ["a", "b", "c"])


def test_missing_artifact_is_trained_at_start_up(tmp_path, fitted, caplog):
    estimator, data, _ = fitted
    with caplog.at_level(logging.WARNING, logger="service.model"):
        model = load_or_train(tmp_path / "absent.json")
    assert "training one at start-up" in caplog.text
    ours = np.array([model.probabilities(row) for row in data])
    np.testing.assert_allclose(ours, estimator.predict_proba(data), rtol=0, atol=1e-12)


def test_missing_artifact_without_scikit_learn_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "service.train", None)  # as in the runtime image
    with pytest.raises(RuntimeError, match="needs scikit-learn: set MODEL_PATH"):
        load_or_train(tmp_path / "absent.json")


def test_request_fields_come_in_the_order_the_weights_are_stored():
    sample = IrisFeatures(sepal_length=1, sepal_width=2, petal_length=3, petal_width=4)
    assert tuple(IrisFeatures.model_fields) == FEATURES
    assert sample.values() == (1, 2, 3, 4)


def test_train_cli_writes_exactly_the_path_given(tmp_path: Path):
    path = tmp_path / "out" / "model"  # no suffix, and none added
    assert train.main([str(path)]) == 0
    assert path.is_file()
    assert IrisModel.load(path).classes == ("setosa", "versicolor", "virginica")


def test_export_refuses_a_model_that_disagrees_with_predict_proba(fitted, monkeypatch):
    estimator, data, classes = fitted
    # An estimator whose predict_proba is not the softmax of its linear scores.
    monkeypatch.setattr(estimator, "predict_proba", lambda x: np.full((len(x), 3), 1 / 3))
    with pytest.raises(RuntimeError, match="disagrees with predict_proba"):
        train.export(estimator, classes, data)
