"""Microseconds per single-sample inference: the service's path against the alternatives."""

from __future__ import annotations

import time
import timeit
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from service.model import IrisModel
from service.schemas import TUTORIAL_SAMPLE

# Feature order: the schema fields are declared in the model's column order.
SAMPLE = tuple(float(value) for value in TUTORIAL_SAMPLE.values())


@dataclass(frozen=True)
class Timing:
    name: str
    microseconds: float
    calls: int


def per_call(name: str, call: Callable[[], object], budget_s: float = 0.5) -> Timing:
    """Best of five runs of the mean time per call, each run sized to about budget_s / 5."""
    timer = timeit.Timer(call)
    number, elapsed = timer.autorange()  # the smallest count that takes at least 0.2 s
    number = max(1, int(number * budget_s / 5 / max(elapsed, 1e-9)))
    best = min(timer.repeat(repeat=5, number=number)) / number
    return Timing(name, best * 1e6, number * 5)


def retrain_per_call(calls: int) -> Timing:
    """What the original tutorial did on every request: fit on the data set, then predict."""
    data, target = load_iris(return_X_y=True)
    sample = np.array([SAMPLE])
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        LogisticRegression(max_iter=1000).fit(data, target).predict_proba(sample)
        times.append(time.perf_counter() - start)
    return Timing("retrain + predict_proba per request (the tutorial)", min(times) * 1e6, calls)


def measure(
    estimator: LogisticRegression, model: IrisModel, retrain_calls: int = 10
) -> list[Timing]:
    coef, intercept = estimator.coef_, estimator.intercept_
    sample_list = list(SAMPLE)
    sample_array = np.array([SAMPLE])

    def numpy_path() -> np.ndarray:
        scores = coef @ np.asarray(sample_list) + intercept
        exps = np.exp(scores - scores.max())
        return exps / exps.sum()

    return [
        per_call("service path: plain-float dot product + softmax", lambda: model.classify(SAMPLE)),
        per_call("numpy dot product + softmax (not used: slower for one sample)", numpy_path),
        per_call("scikit-learn predict_proba", lambda: estimator.predict_proba(sample_array)),
        retrain_per_call(retrain_calls),
    ]
