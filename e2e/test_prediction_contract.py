"""The prediction contract through the Service: right answers, and a clear 4xx for bad input."""

import json

import httpx
import pytest
from sklearn.datasets import load_iris

from service.schemas import TUTORIAL_SAMPLE
from service.settings import DEFAULT_MAX_BATCH_SIZE as MAX_BATCH

pytestmark = pytest.mark.usefixtures("settled_pods")

CLASSIFY_PATH = "/iris/classify_iris"
BATCH_PATH = "/iris/classify_batch"
FIELDS = list(TUTORIAL_SAMPLE)
JSON = {"content-type": "application/json"}


def _with(field: str, literal: str) -> bytes:
    """The tutorial sample with one value written verbatim (NaN and friends are not JSON)."""
    others = ", ".join(f'"{k}": {v}' for k, v in TUTORIAL_SAMPLE.items() if k != field)
    return f'{{"{field}": {literal}, {others}}}'.encode()


@pytest.fixture(scope="module")
def http(endpoint):
    with httpx.Client(base_url=endpoint.base_url, timeout=10) as client:
        yield client


def test_batch_of_the_whole_iris_data_set_is_at_least_95_percent_right(http):
    iris = load_iris()
    # The batch limit is the service's business: send the data set in slices it accepts.
    samples = [dict(zip(FIELDS, map(float, row), strict=True)) for row in iris.data]
    predicted = []
    for start in range(0, len(samples), 50):
        response = http.post(BATCH_PATH, json={"samples": samples[start : start + 50]})
        assert response.status_code == 200, response.text
        predicted += [p["class"] for p in response.json()["predictions"]]
    truth = [iris.target_names[t] for t in iris.target]
    accuracy = sum(p == t for p, t in zip(predicted, truth, strict=True)) / len(truth)
    assert accuracy >= 0.95


def test_batch_gives_every_class_probability_summing_to_one(http):
    response = http.post(BATCH_PATH, json={"samples": [TUTORIAL_SAMPLE]})
    (prediction,) = response.json()["predictions"]
    assert set(prediction["probabilities"]) == {"setosa", "versicolor", "virginica"}
    assert sum(prediction["probabilities"].values()) == pytest.approx(1.0)
    assert prediction["class"] == "setosa"


# Each case: what is sent, the status, and the words the answer must contain (field and reason).
BAD_INPUT = {
    "string": (
        CLASSIFY_PATH,
        _with("sepal_length", '"5.1"'),
        JSON,
        422,
        ("sepal_length", "valid number"),
    ),
    "boolean": (
        CLASSIFY_PATH,
        _with("sepal_width", "true"),
        JSON,
        422,
        ("sepal_width", "valid number"),
    ),
    "null": (
        CLASSIFY_PATH,
        _with("petal_length", "null"),
        JSON,
        422,
        ("petal_length", "valid number"),
    ),
    "nan": (
        CLASSIFY_PATH,
        _with("petal_width", "NaN"),
        JSON,
        422,
        ("petal_width", "finite number"),
    ),
    "infinity": (
        CLASSIFY_PATH,
        _with("sepal_length", "Infinity"),
        JSON,
        422,
        ("sepal_length", "finite number"),
    ),
    "negative": (
        CLASSIFY_PATH,
        _with("sepal_length", "-1"),
        JSON,
        422,
        ("sepal_length", "greater than 0"),
    ),
    "absurd": (
        CLASSIFY_PATH,
        _with("sepal_length", "1e30"),
        JSON,
        422,
        ("sepal_length", "less than or equal to 100"),
    ),
    "missing-fields": (
        CLASSIFY_PATH,
        json.dumps({"sepal_length": 2}).encode(),
        JSON,
        422,
        ("petal_width", "Field required"),
    ),
    "extra-field": (
        CLASSIFY_PATH,
        json.dumps({**TUTORIAL_SAMPLE, "colour": 1}).encode(),
        JSON,
        422,
        ("colour", "Extra inputs are not permitted"),
    ),
    "empty": (CLASSIFY_PATH, b"", JSON, 422, ("request body is required",)),
    "invalid-json": (CLASSIFY_PATH, b'{"sepal_length": 2,', JSON, 422, ("Invalid JSON",)),
    "huge-body": (CLASSIFY_PATH, b"x" * (64 * 1024 + 1), JSON, 413, ("too large", "65536")),
    "text-plain": (
        CLASSIFY_PATH,
        json.dumps(TUTORIAL_SAMPLE).encode(),
        {"content-type": "text/plain"},
        415,
        ("application/json", "text/plain"),
    ),
    "batch-too-large": (
        BATCH_PATH,
        json.dumps({"samples": [TUTORIAL_SAMPLE] * (MAX_BATCH + 1)}).encode(),
        JSON,
        422,
        ("samples", f"at most {MAX_BATCH} items"),
    ),
}


@pytest.mark.parametrize(
    ("path", "body", "headers", "status", "mentions"), list(BAD_INPUT.values()), ids=list(BAD_INPUT)
)
def test_bad_input_is_a_4xx_naming_the_problem(http, path, body, headers, status, mentions):
    response = http.post(path, content=body, headers=headers)
    assert response.status_code == status, response.text
    for words in mentions:
        assert words in response.text
    assert response.headers["x-pod-name"].startswith("iris-classifier-")


def test_unknown_path_is_a_404_that_still_names_its_pod(http):
    response = http.get("/iris/nothing-here")
    assert response.status_code == 404
    assert response.headers["x-pod-name"].startswith("iris-classifier-")
    assert response.headers["x-node-name"]
