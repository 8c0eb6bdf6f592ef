"""Train the classifier on scikit-learn's bundled iris data and export it as a JSON artifact.

Run once at image build time: `python -m service.train /opt/iris/model.json`. The export is
checked against the estimator's own predict_proba before it is written, so a scikit-learn
release that changes how LogisticRegression predicts fails the build instead of the service.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from service.model import FEATURES, IrisModel

# load_iris names its columns "sepal length (cm)" etc.; this pins them to FEATURES' order.
IRIS_COLUMNS = ("sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)")
TOLERANCE = 1e-12
# The model versions this project trains: the tutorial's, and a more regularised second one
# that a canary serves (both bake into the image; MODEL_PATH picks one).
VERSIONS = {"1": {"C": 1.0}, "2": {"C": 0.5}}


def fit(version: str = "1") -> tuple[LogisticRegression, np.ndarray, tuple[str, ...]]:
    """The fitted estimator, the data it was fitted on, and its class names in its own order."""
    iris = load_iris()
    if tuple(iris.feature_names) != IRIS_COLUMNS:
        raise RuntimeError(f"load_iris columns changed: {iris.feature_names}")
    # lbfgs does not converge on unscaled iris within the default 100 iterations.
    estimator = LogisticRegression(max_iter=1000, **VERSIONS[version])
    estimator.fit(iris.data, iris.target)
    classes = tuple(str(iris.target_names[i]) for i in estimator.classes_)
    return estimator, iris.data, classes


def export(
    estimator: LogisticRegression,
    classes: tuple[str, ...],
    data: np.ndarray,
    version: str = "1",
) -> IrisModel:
    model = IrisModel.from_arrays(estimator.coef_, estimator.intercept_, classes, version)
    ours = np.array([model.probabilities(row) for row in data])
    theirs = estimator.predict_proba(data)
    if not np.allclose(ours, theirs, rtol=0, atol=TOLERANCE):
        raise RuntimeError(
            "the exported model disagrees with predict_proba by up to "
            f"{np.abs(ours - theirs).max():.3g}: does LogisticRegression still use a softmax?"
        )
    return model


def train_model(version: str = "1") -> IrisModel:
    estimator, data, classes = fit(version)
    return export(estimator, classes, data, version)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m service.train", description=__doc__)
    parser.add_argument("artifact", type=Path, help="where to write the JSON artifact")
    parser.add_argument(
        "--version", choices=sorted(VERSIONS), default="1", help="which model (default 1)"
    )
    args = parser.parse_args(argv)
    model = train_model(args.version)
    model.save(args.artifact)
    print(
        f"wrote {args.artifact}: version {model.version}, classes {', '.join(model.classes)}, "
        f"features {FEATURES}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
