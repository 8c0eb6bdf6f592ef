"""Locust support for any service whose answers name their pod.

`from kubeverify.locust import listeners` in a locustfile adds the options, the per-pod tally,
the web UI's Pods and Nodes tabs, and the verdicts that become Locust's exit code. The other
names start Locust headless and bounded, from a runner or a test, and read its figures.

The names in `__all__` are this package's public API. `listeners` loads when asked for: it
imports Locust, which patches the process for gevent, and only a locustfile wants that.
"""

from __future__ import annotations

import importlib
from typing import Any

from kubeverify.locust.cli import OVERRUN_S, aggregated, headless_command, run, started

__all__ = ["OVERRUN_S", "aggregated", "headless_command", "listeners", "run", "started"]


def __getattr__(name: str) -> Any:
    if name == "listeners":
        return importlib.import_module("kubeverify.locust.listeners")
    raise AttributeError(f"module 'kubeverify.locust' has no attribute {name!r}")
