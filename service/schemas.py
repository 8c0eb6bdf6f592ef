"""Request and response bodies.

Requests are strict: numbers only (no numeric strings, no booleans), finite, inside
(0, MAX_CM] centimetres, and no fields beyond the four measurements. The largest iris flowers
measure around 8 cm, so 100 cm leaves room for any real flower while rejecting what is
certainly a unit or typing error; a length of zero or below is not a flower.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

MAX_CM = 100.0
MAX_REPORTED_ISSUES = 10
# The original tutorial's request: setosa, with probability 0.99.
TUTORIAL_SAMPLE = {"sepal_length": 2, "sepal_width": 4, "petal_length": 2, "petal_width": 4}

Centimetres = Annotated[float, Field(gt=0, le=MAX_CM, description="centimetres")]


class RequestBody(BaseModel):
    """A body that service.body.parse_json_body reads."""

    @abstractmethod
    def keys_read(self) -> int:
        """How many keys, at least, the JSON this was validated from holds. The check for
        repeated keys reads a body a second time only when it has more quotes than that many
        keys need: exact for a valid body keeps that second reading for the rare one."""


class IrisFeatures(RequestBody):
    # allow_inf_nan: JSON parsers (Python's, pydantic's) take NaN and Infinity: no measurement.
    model_config = ConfigDict(
        strict=True,
        extra="forbid",
        allow_inf_nan=False,
        json_schema_extra={"examples": [TUTORIAL_SAMPLE]},
    )

    sepal_length: Centimetres
    sepal_width: Centimetres
    petal_length: Centimetres
    petal_width: Centimetres

    def values(self) -> tuple[float, float, float, float]:
        """In service.model.FEATURES order, the order the weights are stored in."""
        return (self.sepal_length, self.sepal_width, self.petal_length, self.petal_width)

    def keys_read(self) -> int:
        return FEATURE_KEYS


# Every field is required and no other allowed: a valid sample has exactly these keys.
FEATURE_KEYS = len(IrisFeatures.model_fields)


# The responses are built as dicts and sent as they are: these models document them in OpenAPI
# (and the tests hold the responses to them). "class" is a Python keyword, hence the alias.
class Prediction(BaseModel):
    class_: str = Field(alias="class", examples=["setosa"])
    probability: float = Field(description="of the predicted class, rounded to 2 decimals")


class BatchPrediction(BaseModel):
    class_: str = Field(alias="class", examples=["setosa"])
    probabilities: dict[str, float] = Field(description="every class, unrounded")


class BatchResponse(BaseModel):
    predictions: list[BatchPrediction]


def batch_request_model(max_batch_size: int) -> type[RequestBody]:
    """The batch body for a given limit, so that the limit shows in the OpenAPI schema."""

    class BatchRequest(RequestBody):
        model_config = ConfigDict(strict=True, extra="forbid")

        samples: list[IrisFeatures] = Field(min_length=1, max_length=max_batch_size)

        def keys_read(self) -> int:
            return 1 + FEATURE_KEYS * len(self.samples)

    return BatchRequest


class Readiness(BaseModel):
    status: Literal["ready", "loading"]


class ErrorMessage(BaseModel):
    """FastAPI's and Starlette's error body: what went wrong, in one sentence."""

    detail: str


class ValidationIssue(BaseModel):
    loc: list[str | int] = Field(description='where: ["body", field, ...]')
    msg: str
    type: str


class ValidationErrors(BaseModel):
    """FastAPI's 422 body, without the offending input, and capped: a batch of bad samples gets
    an answer about the size of one, not of the batch."""

    detail: list[ValidationIssue] = Field(max_length=MAX_REPORTED_ISSUES)
    # Absent, not null, when nothing was left out: FastAPI's own 422 shape in the usual case.
    omitted_issues: Annotated[int, Field(ge=1)] | SkipJsonSchema[None] = Field(
        default=None,
        description=f"how many problems beyond the first {MAX_REPORTED_ISSUES} are not listed",
        json_schema_extra=lambda schema: schema.pop("default"),
    )


SHUTTING_DOWN = (
    "The server is shutting down and the request did not finish in time (from the server)"
)
# What a request can get on any path, whatever its method, documented on every operation. The
# ones "from the server" come from the HTTP server before the request reaches the app.
ANY_REQUEST_ANSWERS = {
    400: "Malformed HTTP request (from the server)",
    405: "Method not allowed on this path; the Allow header lists the methods it serves",
    408: "The request did not arrive in time (from the server)",
    413: "Request body over the size limit",
    414: "Request target too long (from the server)",
    431: "Request headers too large (from the server)",
    500: "The service failed (a bug)",
    503: SHUTTING_DOWN,
}
IRIS_ANSWERS = {
    415: "Content-Type is not application/json",
    422: (
        f"The body is not a valid request (a repeated key included): the first "
        f"{MAX_REPORTED_ISSUES} problems, each named by where it is and why"
    ),
    503: f"The model is not loaded yet; or {SHUTTING_DOWN[0].lower()}{SHUTTING_DOWN[1:]}",
}


def documented_answers(descriptions: dict[int, str]) -> dict[int | str, dict[str, Any]]:
    """FastAPI's `responses` for these statuses, each with the body it really carries."""
    documented: dict[int | str, dict[str, Any]] = {}
    for status, description in descriptions.items():
        answer: dict[str, Any] = {
            "description": description,
            "model": ValidationErrors if status == 422 else ErrorMessage,
        }
        if status == 405:
            answer["headers"] = {"Allow": {"schema": {"type": "string"}}}
        documented[status] = answer
    return documented
