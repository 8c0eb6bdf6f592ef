"""The HTTP API in process: endpoints, readiness, errors, and every kind of bad input."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import jsonschema_rs
import numpy as np
import pytest

import service.body
from service.app import HEALTHY
from service.schemas import MAX_REPORTED_ISSUES, TUTORIAL_SAMPLE, BatchResponse, Prediction
from service.settings import DEFAULT_MAX_BATCH_SIZE

pytestmark = pytest.mark.anyio

SAMPLE = TUTORIAL_SAMPLE
JSON = {"content-type": "application/json"}
CLASSIFY = "/iris/classify_iris"
BATCH = "/iris/classify_batch"


def sample(**changes: Any) -> dict[str, Any]:
    return {**SAMPLE, **changes}


def raw_sample(field: str, literal: str) -> bytes:
    """A sample with one value written verbatim, for what json.dumps would not write."""
    others = ", ".join(f'"{k}": {v}' for k, v in SAMPLE.items() if k != field)
    return f'{{"{field}": {literal}, {others}}}'.encode()


def problem(response: httpx.Response) -> str:
    """The error body as one line: "where: what" for each problem."""
    detail = response.json()["detail"]
    if isinstance(detail, str):
        return detail
    return "; ".join(".".join(map(str, e["loc"])) + ": " + e["msg"] for e in detail)


def features(row: np.ndarray) -> dict[str, float]:
    return dict(zip(SAMPLE, map(float, row), strict=True))


# --- endpoints ---------------------------------------------------------------------------------


async def test_healthcheck(client):
    response = await client.get("/healthcheck")
    assert response.status_code == 200
    assert response.json() == HEALTHY == "Iris classifier is ready!"


async def test_ready_once_the_model_is_loaded(client):
    response = await client.get("/readyz")
    assert (response.status_code, response.json()) == (200, {"status": "ready"})


async def test_not_ready_before_the_model_is_loaded(unstarted_client):
    ready = await unstarted_client.get("/readyz")
    assert ready.status_code == 503
    classify = await unstarted_client.post(CLASSIFY, json=SAMPLE)
    assert classify.status_code == 503
    assert "not loaded" in problem(classify)
    # Liveness does not depend on the model: a pod still loading must not be restarted.
    assert (await unstarted_client.get("/healthcheck")).status_code == 200


async def test_tutorial_sample_is_setosa(client):
    response = await client.post(CLASSIFY, json=SAMPLE)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"class", "probability"}
    Prediction.model_validate(body)  # what OpenAPI documents
    assert body["class"] == "setosa"
    assert body["probability"] >= 0.98


async def test_classify_agrees_with_predict_proba_on_every_sample(client, fitted):
    estimator, data, classes = fitted
    expected = estimator.predict_proba(data)
    for row, proba in zip(data, expected, strict=True):
        response = await client.post(CLASSIFY, json=features(row))
        assert response.status_code == 200
        assert response.json() == {
            "class": classes[int(np.argmax(proba))],
            "probability": round(float(proba.max()), 2),
        }


async def test_batch_gives_predict_proba_for_every_class(client, fitted, iris_names):
    estimator, data, classes = fitted
    got = []
    for start in range(0, len(data), DEFAULT_MAX_BATCH_SIZE):
        rows = data[start : start + DEFAULT_MAX_BATCH_SIZE]
        response = await client.post(BATCH, json={"samples": [features(r) for r in rows]})
        assert response.status_code == 200
        BatchResponse.model_validate(response.json())  # what OpenAPI documents
        got.extend(response.json()["predictions"])
    assert len(got) == len(data)
    assert all(set(p["probabilities"]) == set(classes) for p in got)
    ours = np.array([[p["probabilities"][c] for c in classes] for p in got])
    np.testing.assert_allclose(ours, estimator.predict_proba(data), rtol=0, atol=1e-12)
    assert [p["class"] for p in got] == [classes[i] for i in ours.argmax(axis=1)]
    accuracy = np.mean([p["class"] == t for p, t in zip(got, iris_names, strict=True)])
    assert accuracy >= 0.95


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        pytest.param(sample(sepal_length=5.1, petal_width=0.2), JSON, id="floats"),
        pytest.param(SAMPLE, {"content-type": "application/json; charset=utf-8"}, id="charset"),
        pytest.param(sample(sepal_length=100), JSON, id="upper-bound"),
    ],
)
async def test_valid_variants_are_accepted(client, body, headers):
    response = await client.post(CLASSIFY, json=body, headers=headers)
    assert response.status_code == 200, response.text


async def test_openapi_documents_both_request_bodies(client):
    paths = (await client.get("/openapi.json")).json()["paths"]

    def body_schema(path: str) -> dict:
        return paths[path]["post"]["requestBody"]["content"]["application/json"]["schema"]

    single = body_schema(CLASSIFY)
    assert single["required"] == list(SAMPLE)
    assert single["properties"]["sepal_length"]["exclusiveMinimum"] == 0
    samples = body_schema(BATCH)["properties"]["samples"]
    assert samples["maxItems"] == DEFAULT_MAX_BATCH_SIZE
    assert samples["items"] == single  # written inline: no $ref left dangling


# --- errors and logging --------------------------------------------------------------------------
# The identity headers, the access log and the body limit belong to the server:
# tests/test_hostile_clients.py checks them on the service as the image serves it.

TEXT = {"content-type": "text/plain"}


class BrokenModel:
    classes = ("setosa", "versicolor", "virginica")

    def classify(self, x):
        raise RuntimeError("boom")


async def test_internal_error_is_a_500_that_shows_no_traceback(app, client):
    app.state.model = BrokenModel()
    response = await client.post(CLASSIFY, json=SAMPLE)
    assert response.status_code == 500
    assert response.json() == {"detail": "internal server error"}


async def test_the_app_leaves_uvicorns_access_log_to_whoever_starts_uvicorn(app):
    # The service's server turns it off for lines of its own; a plain `uvicorn
    # service.app:app` keeps it, its one line per request (tests/test_readme.py counts both).
    assert not logging.getLogger("uvicorn.access").disabled


# --- bad input: always a 4xx naming what is wrong -----------------------------------------------


@pytest.mark.parametrize(
    ("field", "literal", "reason"),
    [
        pytest.param("sepal_length", '"long"', "valid number", id="string"),
        pytest.param("sepal_length", '"5.1"', "valid number", id="numeric-string"),
        pytest.param("sepal_width", "true", "valid number", id="boolean"),
        pytest.param("petal_length", "null", "valid number", id="null"),
        pytest.param("petal_width", "[1.0]", "valid number", id="list"),
        pytest.param("petal_width", '{"cm": 1.0}', "valid number", id="object"),
        pytest.param("sepal_length", "NaN", "finite number", id="nan"),
        pytest.param("sepal_width", "Infinity", "finite number", id="infinity"),
        pytest.param("petal_length", "-Infinity", "finite number", id="minus-infinity"),
        pytest.param("petal_width", "1e999", "finite number", id="overflow"),
        pytest.param("sepal_length", "-1", "greater than 0", id="negative"),
        pytest.param("sepal_length", "0", "greater than 0", id="zero"),
        pytest.param("petal_length", "100.5", "less than or equal to 100", id="too-big"),
        pytest.param("petal_length", "1e30", "less than or equal to 100", id="absurd"),
    ],
)
@pytest.mark.parametrize("batch", [False, True], ids=["single", "batch"])
async def test_bad_value_is_refused_naming_field_and_reason(client, field, literal, reason, batch):
    # Raw JSON: httpx's json= refuses to encode NaN and Infinity, which other clients do send.
    body = raw_sample(field, literal)
    if batch:
        response = await client.post(BATCH, content=b'{"samples": [%s]}' % body, headers=JSON)
        where = f"body.samples.0.{field}"
    else:
        response = await client.post(CLASSIFY, content=body, headers=JSON)
        where = f"body.{field}"
    assert response.status_code == 422
    assert f"{where}: " in problem(response)
    assert reason in problem(response)


DIGITS = "9" * 5000  # a number no JSON parser here turns into a float
DEEP = b"[" * 30_000 + b"]" * 30_000  # nesting deeper than any parser should recurse
ALL_FIELDS = ", ".join(f'"{k}": {v}' for k, v in SAMPLE.items())


@pytest.mark.parametrize(
    ("path", "content", "headers", "status", "mentions"),
    [
        pytest.param(CLASSIFY, ALL_FIELDS.replace(', "petal_width": 4', ""), JSON, 422,
                     ["body.petal_width", "Field required"], id="missing-field"),
        pytest.param(CLASSIFY, ALL_FIELDS + ', "colour": "blue"', JSON, 422,
                     ["body.colour", "Extra inputs are not permitted"], id="extra-field"),
        pytest.param(CLASSIFY, b"", JSON, 422, ["body: a JSON request body is required"],
                     id="empty-body"),
        pytest.param(CLASSIFY, b'{"sepal_length": 2,', JSON, 422,
                     ["body: Invalid JSON", "EOF while parsing"], id="invalid-json"),
        pytest.param(CLASSIFY, b"[2, 4, 2, 4]", JSON, 422, ["body: Input should be an object"],
                     id="array-body"),
        pytest.param(CLASSIFY, b'"setosa"', JSON, 422, ["body: Input should be an object"],
                     id="string-body"),
        pytest.param(CLASSIFY, raw_sample("sepal_length", DIGITS), JSON, 422,
                     ["body: Invalid JSON", "number out of range"], id="huge-number"),
        pytest.param(CLASSIFY, DEEP, JSON, 422, ["body: Invalid JSON", "recursion limit"],
                     id="deep-nesting"),
        pytest.param(CLASSIFY, b"\xff\xfe\xfa", JSON, 422, ["body: Invalid JSON"],
                     id="not-utf8"),
        pytest.param(CLASSIFY, b"{}", TEXT, 415,
                     ["Content-Type must be application/json", "text/plain"], id="text-plain"),
        pytest.param(CLASSIFY, b"{}", {}, 415,
                     ["Content-Type must be application/json", "none"], id="no-content-type"),
        pytest.param(CLASSIFY, b"sepal_length=2",
                     {"content-type": "application/x-www-form-urlencoded"}, 415,
                     ["Content-Type must be application/json", "x-www-form-urlencoded"],
                     id="form"),
        pytest.param(BATCH, {"samples": [SAMPLE] * (DEFAULT_MAX_BATCH_SIZE + 1)}, JSON, 422,
                     ["body.samples", f"at most {DEFAULT_MAX_BATCH_SIZE} items"],
                     id="batch-too-large"),
        pytest.param(BATCH, {"samples": []}, JSON, 422, ["body.samples", "at least 1 item"],
                     id="batch-empty"),
        pytest.param(BATCH, {"samples": SAMPLE}, JSON, 422,
                     ["body.samples: Input should be a valid array"], id="batch-not-a-list"),
        pytest.param(BATCH, {}, JSON, 422, ["body.samples", "Field required"],
                     id="batch-missing"),
        pytest.param(BATCH, {"samples": [SAMPLE], "all": True}, JSON, 422,
                     ["body.all", "Extra inputs are not permitted"], id="batch-extra-field"),
        pytest.param(BATCH, b"{}", TEXT, 415, ["Content-Type must be application/json"],
                     id="batch-text-plain"),
    ],
)  # fmt: skip
async def test_bad_body_is_refused_with_a_reason(client, path, content, headers, status, mentions):
    if isinstance(content, dict):
        content = json.dumps(content).encode()
    elif isinstance(content, str):
        content = ("{" + content + "}").encode()
    response = await client.post(path, content=content, headers=headers)
    assert 400 <= response.status_code < 500
    assert response.status_code == status, response.text
    for fragment in mentions:
        assert fragment in problem(response)


async def test_validation_errors_do_not_echo_the_input(client):
    response = await client.post(CLASSIFY, json=sample(sepal_length="a secret"))
    assert response.status_code == 422
    assert "a secret" not in response.text


# --- API hygiene: what OpenAPI promises, repeated keys, redirects, HEAD, the size of a 422 -----


def documented_schema(openapi: dict, method: str, path: str, status: int) -> dict | None:
    """The body schema OpenAPI gives this answer, its references resolvable; KeyError when the
    status is not documented, None when the answer has no body."""
    answer = openapi["paths"][path][method.lower()]["responses"][str(status)]
    content = answer.get("content")
    if content is None:
        return None
    return {**content["application/json"]["schema"], "components": openapi["components"]}


BAD_SAMPLES = {"samples": [sample(sepal_length=-1)] * DEFAULT_MAX_BATCH_SIZE}


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        pytest.param("GET", "/healthcheck", {}, 200, id="healthcheck"),
        pytest.param("HEAD", "/healthcheck", {}, 200, id="healthcheck-head"),
        pytest.param("GET", "/readyz", {}, 200, id="readyz"),
        pytest.param("HEAD", "/readyz", {}, 200, id="readyz-head"),
        pytest.param("POST", CLASSIFY, {"json": SAMPLE}, 200, id="classify"),
        pytest.param("POST", BATCH, {"json": {"samples": [SAMPLE]}}, 200, id="batch"),
        pytest.param("POST", "/healthcheck", {}, 405, id="405-healthcheck"),
        pytest.param("DELETE", "/readyz", {}, 405, id="405-readyz"),
        pytest.param("GET", CLASSIFY, {}, 405, id="405-classify"),
        pytest.param("POST", CLASSIFY, {"content": b"{}", "headers": TEXT}, 415, id="415"),
        pytest.param("POST", CLASSIFY, {"json": {}}, 422, id="422"),
        pytest.param("POST", BATCH, {"json": BAD_SAMPLES}, 422, id="422-capped"),
    ],
)
async def test_every_answer_is_documented_with_the_body_it_carries(
    client, method, path, kwargs, status
):
    openapi = (await client.get("/openapi.json")).json()
    response = await client.request(method, path, **kwargs)
    assert response.status_code == status, response.text
    # A method the path does not serve has no operation: the path's operations document its 405.
    served = openapi["paths"][path]
    for documented in [method] if method.lower() in served else list(served):
        schema = documented_schema(openapi, documented, path, status)
        if method != "HEAD":
            assert schema is not None
            assert response.headers["content-type"] == "application/json"
            jsonschema_rs.validate(schema, response.json())


async def test_answers_before_the_model_is_loaded_are_documented(unstarted_client):
    openapi = (await unstarted_client.get("/openapi.json")).json()
    for method, path, kwargs in [
        ("GET", "/readyz", {}),
        ("POST", CLASSIFY, {"json": SAMPLE}),
        ("POST", BATCH, {"json": {"samples": [SAMPLE]}}),
    ]:
        response = await unstarted_client.request(method, path, **kwargs)
        assert response.status_code == 503
        jsonschema_rs.validate(documented_schema(openapi, method, path, 503), response.json())


async def test_a_500_is_documented_with_its_body(app, client):
    openapi = (await client.get("/openapi.json")).json()
    app.state.model = BrokenModel()
    response = await client.post(CLASSIFY, json=SAMPLE)
    assert response.status_code == 500
    jsonschema_rs.validate(documented_schema(openapi, "POST", CLASSIFY, 500), response.json())


async def test_every_operation_documents_what_the_server_can_answer_on_any_path(client):
    openapi = (await client.get("/openapi.json")).json()
    operations = [(p, m, op) for p, ops in openapi["paths"].items() for m, op in ops.items()]
    assert len(operations) == 6  # GET and HEAD of two probes, POST of two iris endpoints
    for path, method, operation in operations:
        for status in (400, 405, 408, 413, 414, 431, 500):
            schema = documented_schema(openapi, method, path, status)
            assert schema is not None
            jsonschema_rs.validate(schema, {"detail": "what went wrong"})
        assert "Allow" in operation["responses"]["405"]["headers"]


REPEATED = '{"sepal_length": 1, ' + ALL_FIELDS + "}"


@pytest.mark.parametrize(
    ("path", "content", "where"),
    [
        pytest.param(CLASSIFY, REPEATED, "body.sepal_length", id="single"),
        pytest.param(CLASSIFY, REPEATED.replace('"sepal_length": 1', '"sepal_length": "x"'),
                     "body.sepal_length", id="first-value-invalid"),
        pytest.param(CLASSIFY, REPEATED.replace('{"sepal_length"', r'{"sepal\u005flength"'),
                     "body.sepal_length", id="escaped-key"),
        pytest.param(BATCH, '{"samples": [{' + ALL_FIELDS + "}, " + REPEATED + "]}",
                     "body.samples.1.sepal_length", id="in-a-sample"),
        pytest.param(BATCH, '{"samples": [], "samples": [{' + ALL_FIELDS + "}]}", "body.samples",
                     id="samples"),
    ],
)  # fmt: skip
async def test_a_repeated_key_is_refused_naming_it(client, path, content, where):
    # Parsers disagree on which of two values for a key they keep: a client and the service
    # must never read different requests from the same bytes.
    response = await client.post(path, content=content.encode(), headers=JSON)
    assert response.status_code == 422, response.text
    assert f"{where}: duplicate key '{where.rsplit('.', 1)[1]}'" in problem(response)


async def test_valid_bodies_are_read_once(client, monkeypatch):
    # The repeated-key check costs a count of quotes; a second reading of every valid body
    # would cost as much as parsing it.
    second_readings = []
    monkeypatch.setattr(service.body, "repeated_keys", second_readings.append)
    for path, body in [(CLASSIFY, SAMPLE), (BATCH, {"samples": [SAMPLE] * 100})]:
        assert (await client.post(path, json=body)).status_code == 200
    assert second_readings == []


@pytest.mark.parametrize("path", ["/healthcheck/", "/readyz/", CLASSIFY + "/"])
async def test_no_redirect_is_built_from_the_clients_host(client, path):
    response = await client.get(path, headers={"host": "evil.example"})
    assert response.status_code == 404
    assert "location" not in response.headers


@pytest.mark.parametrize("path", ["/healthcheck", "/readyz"])
async def test_probes_answer_head(client, path):
    get, head = await client.get(path), await client.head(path)
    assert (head.status_code, get.status_code) == (200, 200)
    assert head.headers["content-type"] == get.headers["content-type"]


async def test_head_on_readyz_says_not_ready_before_the_model_is_loaded(unstarted_client):
    assert (await unstarted_client.head("/readyz")).status_code == 503


async def test_a_422_lists_at_most_ten_problems_and_counts_the_rest(client):
    request = json.dumps(BAD_SAMPLES).encode()
    response = await client.post(BATCH, content=request, headers=JSON)
    assert response.status_code == 422
    body = response.json()
    assert len(body["detail"]) == MAX_REPORTED_ISSUES == 10
    assert body["omitted_issues"] == DEFAULT_MAX_BATCH_SIZE - 10
    assert [e["loc"] for e in body["detail"]] == [
        ["body", "samples", i, "sepal_length"] for i in range(10)
    ]
    assert len(response.content) < len(request) / 5


async def test_a_422_within_the_cap_is_fastapis_shape(client):
    response = await client.post(CLASSIFY, json=sample(sepal_length=-1))
    assert response.status_code == 422
    assert set(response.json()) == {"detail"}
