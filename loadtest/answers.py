"""What counts as a correct answer from the classifier, for Locust to mark the rest failed."""

from __future__ import annotations

from collections.abc import Callable, Collection


def answer_problem(status: int, pod: str | None, error: object = None) -> str | None:
    """None for a good answer to any request, else why it is not one. Locust reports a request
    that got no answer at all (refused, reset, timed out) as status 0, with its `error`."""
    if status == 0:
        return f"no answer: {error!r}"
    if status != 200:
        return f"HTTP {status}"
    if not pod:
        return "no X-Pod-Name header: cannot tell which pod answered"
    return None


def classify_problem(
    status: int,
    payload: Callable[[], object],
    pod: str | None,
    classes: Collection[str],
    error: object = None,
) -> str | None:
    """As answer_problem, and the body must name one of `classes`. `payload` parses the body
    lazily: a failed status says enough, and its body need not be JSON."""
    if problem := answer_problem(status, pod, error):
        return problem
    try:
        body = payload()
    except ValueError as error:
        return f"body is not JSON: {error}"
    predicted = body.get("class") if isinstance(body, dict) else None
    if predicted not in classes:
        return f"class {predicted!r} is none of {sorted(classes)}"
    return None
