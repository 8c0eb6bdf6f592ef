"""What a good answer is, for every client the plugin drives (its own traffic and Locust's)."""

from __future__ import annotations

from kubeverify.target import DEFAULT_POD_HEADER


def answer_problem(
    status: int | None,
    pod: str | None,
    *,
    expected_status: int = 200,
    pod_header: str = DEFAULT_POD_HEADER,
    error: object = None,
) -> str | None:
    """None for a good answer: the expected status from a pod that names itself. Otherwise
    why not. No answer at all (refused, reset, timed out) has no status (Locust says 0)."""
    if not status:
        return f"no answer: {error!r}"
    if status != expected_status:
        return f"HTTP {status}, expected {expected_status}"
    if not pod:
        return f"no {pod_header} header: cannot tell which pod answered"
    return None
