"""Schemathesis fuzzes the service from its OpenAPI document, in process (its ASGI transport):
every operation, through its examples, coverage (boundary values, wrong methods and content
types, missing and malformed bodies) and fuzzing phases, valid and invalid data, every built-in
check on each answer: no 5xx, only documented statuses, bodies and content types as documented,
valid data accepted and invalid data refused. Bounded and seeded, so a run tries the same cases.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import replace

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings

from service.app import create_app
from service.settings import Settings

SEED = 20261201
# Fuzzing-phase cases per operation (the other phases add theirs): about 170 cases for each
# iris endpoint, 5 s in all on 2 busy cores.
MAX_EXAMPLES = 100
SETTINGS = Settings(pod_name="fuzz-pod", node_name="fuzz-node")

# The document does not depend on the model, so an app that is never started serves it; the
# cases go to `served`, the same app with the model loaded.
schema = schemathesis.openapi.from_asgi(
    "/openapi.json", create_app(SETTINGS), config=schemathesis.Config(seed=SEED)
)
# "none": no example database written into the working tree, and no case carried between runs.
schema.config.generation.update(max_examples=MAX_EXAMPLES, database="none")


@pytest.fixture(scope="module")
def served(artifact) -> FastAPI:
    """Started by schemathesis's transport on its first request (the lifespan loads the model)."""
    return create_app(replace(SETTINGS, model_path=artifact))


@pytest.fixture
def statuses(request, capsys) -> Iterator[Counter[int]]:
    """The status of every answer to one operation's cases, printed once they are all in."""
    seen: Counter[int] = Counter()
    yield seen
    fives = sum(n for status, n in seen.items() if status >= 500)
    by_status = ", ".join(f"{status}: {n}" for status, n in sorted(seen.items()))
    with capsys.disabled():
        print(
            f"\n  schemathesis {request.node.name}: {seen.total()} cases, {fives} 5xx ({by_status})"
        )


@schema.parametrize()
# One counter for all of an operation's cases, so that the figure covers them all.
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_every_operation_keeps_its_openapi_contract(case, served, statuses):
    response = case.call_and_validate(app=served)
    statuses[response.status_code] += 1
