"""Polling with a deadline: the one way the harness waits for the cluster to reach a state."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


class DeadlineExceeded(TimeoutError):
    """A state was not reached in time; the message carries the last thing seen."""


@dataclass(frozen=True)
class Observation:
    done: bool
    detail: str  # what was seen, for progress and for the error when time runs out
    value: object = None  # what the caller waited for, when there is one


def wait_until(
    check: Callable[[], Observation],
    *,
    what: str,
    timeout: float,
    interval: float = 0.5,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Observation:
    """Call `check` until it says done; at the deadline raise with its last detail.

    The check always runs once more at the deadline itself, so a state reached during the last
    interval counts, and a zero timeout still looks once.
    """
    if timeout < 0 or interval <= 0:
        raise ValueError(f"timeout must be >= 0 and interval > 0, not {timeout} and {interval}")
    deadline = clock() + timeout
    while True:
        seen = check()
        if seen.done:
            return seen
        remaining = deadline - clock()
        if remaining <= 0:
            raise DeadlineExceeded(
                f"{what}: not reached within {timeout:g} s; last seen: {seen.detail}"
            )
        sleep(min(interval, remaining))
