"""The trained classifier as plain numbers, and its inference.

A LogisticRegression on four features and three classes is twelve weights and three
intercepts. Inference is their dot product with the sample and a softmax, which is what
scikit-learn's multinomial predict_proba computes. In plain Python floats that takes less than
half the time numpy needs for one sample (`python -m bench`: about 3 µs against 7 to 14 µs),
numpy's per-call overhead being most of its cost at this size.
The artifact is an .npz of arrays loaded with allow_pickle=False: no code runs on load.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# The order the weights are stored in; the request schema's field order must match it.
FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IrisModel:
    classes: tuple[str, ...]
    weights: tuple[tuple[float, ...], ...]  # one row per class, columns in FEATURES order
    intercepts: tuple[float, ...]

    def __post_init__(self) -> None:
        n = len(self.classes)
        if n < 3 or len(self.weights) != n or len(self.intercepts) != n:
            # Two classes would be a single sigmoid row in scikit-learn, not a softmax.
            raise ValueError(f"expected one weight row and intercept per class for {n} classes")
        if any(len(row) != len(FEATURES) for row in self.weights):
            raise ValueError(f"expected {len(FEATURES)} weights per class")

    @classmethod
    def from_arrays(
        cls, coef: np.ndarray, intercept: np.ndarray, classes: Sequence[str]
    ) -> IrisModel:
        return cls(
            classes=tuple(str(c) for c in classes),
            weights=tuple(tuple(float(w) for w in row) for row in np.asarray(coef)),
            intercepts=tuple(float(b) for b in np.asarray(intercept)),
        )

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as f:  # a file object, so numpy does not append ".npz" to the name
            np.savez(
                f,
                coef=np.array(self.weights),
                intercept=np.array(self.intercepts),
                classes=np.array(self.classes),
                features=np.array(FEATURES),
            )

    @classmethod
    def load(cls, path: Path) -> IrisModel:
        with np.load(path, allow_pickle=False) as data:
            features = tuple(str(f) for f in data["features"])
            if features != FEATURES:
                raise ValueError(f"{path} was trained on features {features}, expected {FEATURES}")
            return cls.from_arrays(data["coef"], data["intercept"], data["classes"])

    def probabilities(self, x: Sequence[float]) -> list[float]:
        """Class probabilities for one sample, in the order of `classes`."""
        x0, x1, x2, x3 = x
        scores = [
            b + w0 * x0 + w1 * x1 + w2 * x2 + w3 * x3
            for (w0, w1, w2, w3), b in zip(self.weights, self.intercepts, strict=True)
        ]
        # Shifting by the maximum keeps exp() from overflowing; the softmax is unchanged.
        top = max(scores)
        exps = [math.exp(s - top) for s in scores]
        total = sum(exps)
        return [e / total for e in exps]

    def classify(self, x: Sequence[float]) -> tuple[str, list[float]]:
        """The most probable class, and every class's probability."""
        probabilities = self.probabilities(x)
        best = max(range(len(probabilities)), key=probabilities.__getitem__)
        return self.classes[best], probabilities


def load_or_train(path: Path) -> IrisModel:
    """The baked artifact when there is one; otherwise train now (needs scikit-learn)."""
    if path.exists():
        model = IrisModel.load(path)
        log.info("loaded model from %s (classes %s)", path, ", ".join(model.classes))
        return model
    log.warning("no model artifact at %s: training one at start-up", path)
    try:
        from service.train import train_model  # scikit-learn: only where training happens
    except ImportError as e:
        raise RuntimeError(
            f"no model artifact at {path}, and training one needs scikit-learn: "
            "set MODEL_PATH to an artifact, or install the train extra"
        ) from e
    return train_model()
