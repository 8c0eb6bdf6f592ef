"""The HTTP API: `uvicorn service.app:app --host 0.0.0.0 --port 5000`."""

# No `from __future__ import annotations` here: FastAPI reads the route signatures, and the batch
# body is a class built inside create_app that a string annotation could not be resolved to.

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.access_log import AccessLogMiddleware, configure_logging
from service.middleware import BodySizeLimitMiddleware, IdentityHeadersMiddleware, identity_headers
from service.model import IrisModel, load_or_train
from service.schemas import (
    BatchResponse,
    IrisFeatures,
    Prediction,
    batch_request_model,
)
from service.settings import Settings

HEALTHY = "Iris classifier is ready!"

log = logging.getLogger(__name__)


async def require_json(request: Request) -> None:
    # async: FastAPI runs plain-def dependencies in a thread pool, a cost on every request.
    content_type = request.headers.get("content-type")
    media_type = (content_type or "").partition(";")[0].strip().lower()
    if media_type != "application/json":
        raise HTTPException(
            415, f"Content-Type must be application/json, got {content_type or 'none'!r}"
        )


async def loaded_model(request: Request) -> IrisModel:
    model: IrisModel | None = request.app.state.model
    if model is None:
        raise HTTPException(503, "the model is not loaded yet")
    return model


LoadedModel = Annotated[IrisModel, Depends(loaded_model)]


def describe_validation_error(error: dict[str, Any]) -> dict[str, Any]:
    """A validation error without the offending input.

    Echoing the input back would fail to render for NaN (JSON has no NaN, so the 422 would
    become a 500) and reflects whatever a client sent into the response.
    """
    msg = error["msg"]
    if error["type"] == "json_invalid":
        msg = f"invalid JSON: {error.get('ctx', {}).get('error', msg)}"
    elif error["type"] == "missing" and tuple(error["loc"]) == ("body",):
        msg = "a JSON request body is required"
    return {"loc": list(error["loc"]), "msg": msg, "type": error["type"]}


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
    )
    app.state.settings = settings
    app.state.model = None

    async def validation_failed(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [describe_validation_error(e) for e in exc.errors()]
        return JSONResponse({"detail": errors}, status_code=422)

    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # FastAPI answers a body json.loads cannot take (a 5000-digit number, nesting deeper
        # than the recursion limit) with a bare "error parsing the body"; the cause says which.
        if exc.status_code == 400 and exc.__cause__ is not None:
            exc = HTTPException(400, f"{exc.detail}: {exc.__cause__}")
        return await http_exception_handler(request, exc)

    headers = identity_headers(settings)

    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        # Starlette answers unhandled errors outside every user middleware, so the identity
        # headers are set here rather than by IdentityHeadersMiddleware.
        return JSONResponse({"detail": "internal server error"}, status_code=500, headers=headers)

    app.add_exception_handler(RequestValidationError, validation_failed)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, internal_error)

    # Added innermost first: the access log sees the final status, headers go on every answer.
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(IdentityHeadersMiddleware, settings=settings)
    app.add_middleware(AccessLogMiddleware, pod_name=settings.pod_name)

    @app.get("/healthcheck", summary="Liveness")
    async def healthcheck() -> str:
        return HEALTHY

    @app.get("/readyz", summary="Readiness: 200 once the model is loaded, 503 before")
    async def readyz(request: Request) -> JSONResponse:
        if request.app.state.model is None:
            return JSONResponse({"status": "loading"}, status_code=503)
        return JSONResponse({"status": "ready"})

    iris = APIRouter(prefix="/iris", tags=["iris"], dependencies=[Depends(require_json)])
    BatchRequest = batch_request_model(settings.max_batch_size)

    @iris.post("/classify_iris", response_model=Prediction)
    async def classify_iris(features: IrisFeatures, model: LoadedModel) -> dict[str, Any]:
        name, probabilities = model.classify(features.values())
        return {"class": name, "probability": round(max(probabilities), 2)}

    @iris.post("/classify_batch", response_model=BatchResponse)
    async def classify_batch(batch: BatchRequest, model: LoadedModel) -> dict[str, Any]:
        predictions = []
        for sample in batch.samples:
            name, probabilities = model.classify(sample.values())
            by_class = dict(zip(model.classes, probabilities, strict=True))
            predictions.append({"class": name, "probabilities": by_class})
        return {"predictions": predictions}

    app.include_router(iris)
    return app


app = create_app()
