"""Polling with a deadline: the one way the harness waits for the cluster to reach a state."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

# Seconds between looks. A state is seen half an interval late on average, and a run waits for
# some 160 states (pods settled, exited, answering): 0.2 s against 0.5 s took 11 s off the iris
# e2e run, for a few cheap reads a second.
INTERVAL = 0.2


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
    interval: float = INTERVAL,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    progress: Callable[[str], None] | None = None,
    progress_every: float = 10.0,
) -> Observation:
    """Call `check` until it says done; at the deadline raise with its last detail.

    The check always runs once more at the deadline itself, so a state reached during the last
    interval counts, and a zero timeout still looks once. With `progress`, a long wait says
    every `progress_every` seconds how long it has waited and what it last saw.
    """
    if timeout < 0 or interval <= 0:
        raise ValueError(f"timeout must be >= 0 and interval > 0, not {timeout} and {interval}")
    started = clock()
    deadline = started + timeout
    next_progress = started + progress_every
    while True:
        seen = check()
        if seen.done:
            return seen
        if progress and clock() >= next_progress:
            progress(f"{what}: {clock() - started:.0f} s so far; {seen.detail}")
            next_progress = clock() + progress_every
        remaining = deadline - clock()
        if remaining <= 0:
            raise DeadlineExceeded(
                f"{what}: not reached within {timeout:g} s; last seen: {seen.detail}"
            )
        sleep(min(interval, remaining))
