"""Request bodies drawn from the iris data set, plus the tutorial's own sample."""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import cache

TUTORIAL_SAMPLE = {"sepal_length": 2, "sepal_width": 4, "petal_length": 2, "petal_width": 4}


@dataclass(frozen=True)
class IrisData:
    samples: tuple[dict[str, float], ...]
    classes: frozenset[str]  # the only answers a correct classifier can give

    def draw(self, rng: random.Random) -> dict[str, float]:
        return rng.choice(self.samples)


@cache
def iris() -> IrisData:
    """The 150 flowers of the iris data set as request bodies, and the tutorial's sample."""
    # scikit-learn ships the data inside the package, so this works with no network. Imported
    # here, not at module level: it takes a second, and only Locust processes need it.
    from sklearn.datasets import load_iris

    data = load_iris()
    # "sepal length (cm)" -> "sepal_length": the request schema's field names, in centimetres.
    fields = [name.removesuffix(" (cm)").replace(" ", "_") for name in data.feature_names]
    rows = [dict(zip(fields, row, strict=True)) for row in data.data.tolist()]
    return IrisData(
        samples=(*rows, TUTORIAL_SAMPLE),
        classes=frozenset(str(name) for name in data.target_names),
    )
