"""The HTTP API, built by `create_app` from the settings; `python -m service.server` serves it.

The pod's identity headers, the access log, and the limits on request heads and bodies belong
to the server (service/server.py), so that its own answers get them too.

`service.app:app` is the app as FastAPI's habits look for it (`uvicorn service.app:app`, the
tutorial's command): built on first use from the environment's settings, so that importing
this module reads no settings and builds nothing (the tests build apps of their own).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.requests import ClientDisconnect

from service.access_log import configure_logging
from service.body import RequestOnlyRoute, documented_body, parse_json_body
from service.model import IrisModel, load_or_train
from service.schemas import (
    ANY_REQUEST_ANSWERS,
    IRIS_ANSWERS,
    MAX_REPORTED_ISSUES,
    SHUTTING_DOWN,
    BatchResponse,
    ErrorMessage,
    IrisFeatures,
    Prediction,
    Readiness,
    batch_request_model,
    documented_answers,
)
from service.settings import Settings

HEALTHY = "Iris classifier is ready!"
# Names the model version that answered a classification (a canary's answers say its own).
MODEL_VERSION_HEADER = "X-Model-Version"

log = logging.getLogger(__name__)


def loaded_model(request: Request) -> IrisModel:
    model: IrisModel | None = request.app.state.model
    if model is None:
        raise HTTPException(503, "the model is not loaded yet")
    return model


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()
    configure_logging()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Loaded once, before uvicorn accepts connections; requests only read it.
        app.state.model = load_or_train(settings.model_path)
        log.info("ready: pod=%s node=%s", settings.pod_name, settings.node_name)
        yield

    app = FastAPI(
        title="Iris classifier",
        summary="Classifies iris flowers from sepal and petal measurements in centimetres.",
        lifespan=lifespan,
        responses=documented_answers(ANY_REQUEST_ANSWERS),
        # Starlette's slash redirect builds its Location from the client's Host header: an
        # open redirect for whoever can set that header. A path with a slash too many is a 404.
        redirect_slashes=False,
    )
    app.state.model = None

    async def validation_failed(request: Request, exc: RequestValidationError) -> JSONResponse:
        # Without the offending input: echoing it reflects whatever a client sent, and a NaN
        # in it would not even render as JSON (the 422 would become a 500).
        # Capped: a batch of bad samples has a problem per sample, and an answer many times the
        # size of the request would make the service an amplifier.
        errors = exc.errors()
        shown = [
            {"loc": e["loc"], "msg": e["msg"], "type": e["type"]}
            for e in errors[:MAX_REPORTED_ISSUES]
        ]
        body: dict[str, Any] = {"detail": shown}
        if len(errors) > len(shown):
            body["omitted_issues"] = len(errors) - len(shown)
        return JSONResponse(body, status_code=422)

    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": "internal server error"}, status_code=500)

    async def client_gone(request: Request, exc: ClientDisconnect) -> Response:
        # Nobody reads this answer (the server drops it); handled so that a client hanging
        # up mid-body is not a traceback in the log. The server logs it once, at INFO.
        return Response(status_code=400)

    app.add_exception_handler(RequestValidationError, validation_failed)
    app.add_exception_handler(ClientDisconnect, client_gone)
    app.add_exception_handler(Exception, internal_error)

    # HEAD too, for probes and monitors that ask for the status alone; the server sends no body.
    @app.head("/healthcheck", summary="Liveness, status only")
    @app.get("/healthcheck", summary="Liveness")
    async def healthcheck() -> str:
        return HEALTHY

    readiness = {
        "summary": "Readiness: 200 once the model is loaded, 503 before",
        "response_model": Readiness,
        "responses": {
            503: {
                "model": Readiness | ErrorMessage,
                "description": f"The model is not loaded yet ({{status: loading}}); or "
                f"{SHUTTING_DOWN[0].lower()}{SHUTTING_DOWN[1:]}",
            }
        },
    }

    @app.head("/readyz", **readiness)
    @app.get("/readyz", **readiness)
    async def readyz(request: Request) -> JSONResponse:
        if request.app.state.model is None:
            return JSONResponse({"status": "loading"}, status_code=503)
        return JSONResponse({"status": "ready"})

    # The iris endpoints read and answer the request themselves (see service/body.py);
    # response_model documents the answer without validating it again.
    iris = APIRouter(
        prefix="/iris",
        tags=["iris"],
        route_class=RequestOnlyRoute,
        responses=documented_answers(IRIS_ANSWERS),
    )

    @iris.post(
        "/classify_iris", response_model=Prediction, openapi_extra=documented_body(IrisFeatures)
    )
    async def classify_iris(request: Request) -> JSONResponse:
        model = loaded_model(request)
        features = await parse_json_body(request, IrisFeatures)
        name, probabilities = model.classify(features.values())
        return JSONResponse(
            {"class": name, "probability": round(max(probabilities), 2)},
            headers={MODEL_VERSION_HEADER: model.version},
        )

    batch_request = batch_request_model(settings.max_batch_size)

    @iris.post(
        "/classify_batch",
        response_model=BatchResponse,
        openapi_extra=documented_body(batch_request),
    )
    async def classify_batch(request: Request) -> JSONResponse:
        model = loaded_model(request)
        batch: Any = await parse_json_body(request, batch_request)
        predictions = []
        for sample in batch.samples:
            name, probabilities = model.classify(sample.values())
            by_class = dict(zip(model.classes, probabilities, strict=True))
            predictions.append({"class": name, "probabilities": by_class})
        return JSONResponse(
            {"predictions": predictions}, headers={MODEL_VERSION_HEADER: model.version}
        )

    app.include_router(iris)
    return app


def __getattr__(name: str) -> FastAPI:
    """`app`: one app, built from the environment's settings when first asked for."""
    if name != "app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    app = create_app()
    globals()["app"] = app  # built once: a second `app` is this one
    return app
