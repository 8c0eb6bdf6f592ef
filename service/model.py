"""The trained classifier as plain numbers, and its inference.

A LogisticRegression on four features and three classes is twelve weights and three
intercepts. Inference is their dot product with the sample and a softmax, which is what
scikit-learn's multinomial predict_proba computes. In plain Python floats that takes less than
half the time numpy needs for one sample (`python -m bench`: about 3 µs against 7 to 14 µs),
numpy's per-call overhead being most of its cost at this size.

The artifact is JSON: fifteen numbers and the names, loaded without running any code, and
exact, since Python writes every float as the shortest text that reads back to the same bits.
So the running service needs neither numpy nor scikit-learn.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The order the weights are stored in; the request schema's field order must match it.
FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IrisModel:
    classes: tuple[str, ...]
    weights: tuple[tuple[float, ...], ...]  # one row per class, columns in FEATURES order
    intercepts: tuple[float, ...]
    # Which training recipe made it (service/train.py's VERSIONS); answers name it in a header,
    # so that a canary serving another version is told apart by its answers.
    version: str = "1"

    def __post_init__(self) -> None:
        n = len(self.classes)
        if n < 3 or len(self.weights) != n or len(self.intercepts) != n:
            # Two classes would be a single sigmoid row in scikit-learn, not a softmax.
            raise ValueError(f"expected one weight row and intercept per class for {n} classes")
        if any(len(row) != len(FEATURES) for row in self.weights):
            raise ValueError(f"expected {len(FEATURES)} weights per class")

    @classmethod
    def from_arrays(
        cls,
        coef: Iterable[Iterable[Any]],
        intercept: Iterable[Any],
        classes: Iterable[Any],
        version: str = "1",
    ) -> IrisModel:
        """From scikit-learn's `coef_`, `intercept_` and class names (arrays or lists)."""
        return cls(
            classes=tuple(str(c) for c in classes),
            weights=tuple(tuple(float(w) for w in row) for row in coef),
            intercepts=tuple(float(b) for b in intercept),
            version=version,
        )

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        document = {
            "version": self.version,
            "features": FEATURES,
            "classes": self.classes,
            "weights": self.weights,
            "intercepts": self.intercepts,
        }
        path.write_text(json.dumps(document, indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> IrisModel:
        try:
            document = json.loads(path.read_text())
            features = document["features"]
            features = tuple(features) if isinstance(features, list) else features
            if features != FEATURES:
                raise ValueError(f"trained on features {features}, expected {FEATURES}")
            weights, intercepts = document["weights"], document["intercepts"]
            if not all(_is_number(v) for v in (*intercepts, *(w for row in weights for w in row))):
                raise ValueError("weights and intercepts must be numbers")
            classes = document["classes"]
            if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
                raise ValueError("classes must be a list of names")
            if len(set(classes)) != len(classes):
                raise ValueError(f"class names repeat: {classes}")
            version = document.get("version", "1")  # artifacts from before versions: the first
            if not isinstance(version, str) or not version:
                raise ValueError(f"version must be a name, not {version!r}")
            model = cls.from_arrays(weights, intercepts, classes, version)
        except (ValueError, KeyError, TypeError, OverflowError, RecursionError) as e:
            # json's own errors are ValueErrors; a missing key, a wrong type, a number too large
            # for a float or absurd nesting get the same kind of message, naming the file.
            detail = f"missing {e}" if isinstance(e, KeyError) else str(e)
            raise ValueError(f"{path} is not a usable model artifact: {detail}") from None
        if not all(math.isfinite(v) for row in (*model.weights, model.intercepts) for v in row):
            raise ValueError(f"{path} is not a usable model artifact: a weight is not finite")
        return model

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


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def load_or_train(path: Path) -> IrisModel:
    """The baked artifact when there is one; otherwise train now (needs scikit-learn)."""
    if path.exists():
        model = IrisModel.load(path)
        log.info(
            "loaded model version %s from %s (classes %s)",
            model.version,
            path,
            ", ".join(model.classes),
        )
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
