"""kubeverify: a pytest plugin that proves a Kubernetes Deployment and its Service work.

Any Deployment whose responses name their pod in a header: its replicas, scaling, the spread of
traffic over every pod, and its resilience, each verdict with its error rates stated. What to
verify is a target file; the stage (a cluster from a provider, the image, the rollout) is set
by the plugin's session fixtures; the standard checks are the suite classes below; Locust
listeners are `kubeverify.locust`.

The names in `__all__` are the public API: what a test file, a runner or a locustfile may
import (`from kubeverify import Scaling`). They load when first used, so that pytest, which
loads the plugin in every run of an environment that has it, starts no slower for it.
"""

from __future__ import annotations

import importlib
from importlib.metadata import version
from typing import Any

__version__ = version("kubeverify")

# Public name -> the module that defines it (under its own name there, unless given).
_PUBLIC: dict[str, tuple[str, str | None]] = {
    # What to verify
    "Target": ("kubeverify.target", None),
    "TargetError": ("kubeverify.target", None),
    "Image": ("kubeverify.target", None),
    "Split": ("kubeverify.target", None),
    "SplitGroup": ("kubeverify.target", "Group"),
    "load_target": ("kubeverify.target", "load"),
    # The stage, and where its cluster comes from
    "Stage": ("kubeverify.stage", None),
    "Provider": ("kubeverify.providers", None),
    "Option": ("kubeverify.providers", None),
    "KindProvider": ("kubeverify.providers.kind", None),
    "ExistingClusterProvider": ("kubeverify.providers.existing", None),
    "PreflightError": ("kubeverify.preflight", None),
    "KubeTarget": ("kubeverify.kube", None),
    "Deployment": ("kubeverify.deployment", None),
    "render_manifests": ("kubeverify.deployment", "render"),
    # The standard suites
    "Replicas": ("kubeverify.suites", None),
    "Scaling": ("kubeverify.suites", None),
    "Balance": ("kubeverify.suites", None),
    "Resilience": ("kubeverify.suites", None),
    "Affinity": ("kubeverify.suites", None),
    "Splits": ("kubeverify.suites", None),
    "Shutdown": ("kubeverify.suites", None),
    # Verdicts
    "Verdict": ("kubeverify.verdict", None),
    "ErrorRates": ("kubeverify.verdict", None),
    "Shares": ("kubeverify.verdict", None),
    "health_verdict": ("kubeverify.health", "verdict"),
    "answers_by_pod": ("kubeverify.health", "by_pod"),
    "no_failures": ("kubeverify.verdict", None),
    "drain_under_traffic": ("kubeverify.drain", "under_traffic"),
    "fullest_node": ("kubeverify.drain", None),
    "drain_node": ("kubeverify.drain", "drain"),
    "EvictionRefused": ("kubeverify.drain", None),
    "schedulable_workers": ("kubeverify.drain", None),
    "verdict_from_json": ("kubeverify.verdict", "from_json"),
    "balance_verdict": ("kubeverify.sampling", None),
    "fresh_connection_draws": ("kubeverify.sampling", None),
    "keep_alive_draws": ("kubeverify.sampling", None),
    "split_verdict": ("kubeverify.sampling", None),
    "judge_split": ("kubeverify.suites.splits", "judge"),
    "objects_of": ("kubeverify.deployment", None),
    "sequential_design": ("kubeverify.sequential", "design"),
    "simulate_sequential": ("kubeverify.sequential", "simulate"),
    "worst_shares": ("kubeverify.balance", None),
    "rejection_rate": ("kubeverify.balance", None),
    "split_design": ("kubeverify.splits", "design"),
    "split_draws": ("kubeverify.splits", "required_draws"),
    "worst_splits": ("kubeverify.splits", None),
    # Traffic
    "Endpoint": ("kubeverify.traffic", None),
    "BackgroundTraffic": ("kubeverify.traffic", None),
    "fresh_connection_requests": ("kubeverify.traffic", None),
    "wait_until_every_pod_answers": ("kubeverify.traffic", None),
    # Waiting, timing, processes, what a failure shows
    "wait_until": ("kubeverify.waiting", None),
    "Observation": ("kubeverify.waiting", None),
    "DeadlineExceeded": ("kubeverify.waiting", None),
    "PhaseTimer": ("kubeverify.timing", None),
    "format_table": ("kubeverify.timing", None),
    "interrupt_on_termination": ("kubeverify.processes", None),
    "stop_process": ("kubeverify.processes", "stop"),
    "cluster_state": ("kubeverify.diagnostics", None),
    "termination_text": ("kubeverify.diagnostics", None),
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str) -> Any:
    try:
        module, attribute = _PUBLIC[name]
    except KeyError:
        raise AttributeError(f"module 'kubeverify' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attribute or name)
    globals()[name] = value  # once loaded, an attribute like any other
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
