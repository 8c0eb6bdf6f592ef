"""Request and response bodies.

Requests are strict: numbers only (no numeric strings, no booleans), finite, inside
(0, MAX_CM] centimetres, and no fields beyond the four measurements. The largest iris flowers
measure around 8 cm, so 100 cm leaves room for any real flower while rejecting what is
certainly a unit or typing error; a length of zero or below is not a flower.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

MAX_CM = 100.0
# The original tutorial's request: setosa, with probability 0.99.
TUTORIAL_SAMPLE = {"sepal_length": 2, "sepal_width": 4, "petal_length": 2, "petal_width": 4}

Centimetres = Annotated[float, Field(gt=0, le=MAX_CM, description="centimetres")]


class IrisFeatures(BaseModel):
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


def batch_request_model(max_batch_size: int) -> type[BaseModel]:
    """The batch body for a given limit, so that the limit shows in the OpenAPI schema."""

    class BatchRequest(BaseModel):
        model_config = ConfigDict(strict=True, extra="forbid")

        samples: list[IrisFeatures] = Field(min_length=1, max_length=max_batch_size)

    return BatchRequest
