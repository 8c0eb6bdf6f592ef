"""The Deployment heals, rolls and moves off a drained node while traffic runs."""

from __future__ import annotations

import time

import pytest

from kubeverify import drain
from kubeverify.traffic import BackgroundTraffic

RECOVERY_DEADLINE = 90
ROLLOUT_DEADLINE = 240


class Resilience:
    """The Deployment heals, rolls and moves off a drained node while traffic runs: no request
    fails, and a drain keeps the PodDisruptionBudget (watched)."""

    def test_deleted_pod_is_replaced_within_the_deadline(
        self, deployment, settled_pods, endpoint, target, record
    ):
        victim = settled_pods[0]
        traffic = BackgroundTraffic(endpoint)
        with traffic.running():
            started = time.monotonic()
            deployment.delete_pod(victim)
            pods = deployment.wait_settled(target.replicas, timeout=RECOVERY_DEADLINE)
            ended = time.monotonic()
        verdict = record(traffic.verdict(started, ended, f"deleting {victim}"))
        assert victim not in pods
        assert len(pods) == target.replicas
        assert verdict.passed, verdict.explain()

    def test_node_drain_fails_no_request_and_keeps_the_budget(
        self, kube, deployment, settled_pods, endpoint, target, record, run
    ):
        # Before the rollout below, which spreads the pods over the nodes again.
        node, why_not = drain.fullest_node(kube, target.selector)
        if node is None:
            pytest.skip(why_not)
        drained, lost, budget = drain.under_traffic(
            kube,
            endpoint,
            target.selector,
            node,
            lambda: deployment.wait_settled(target.replicas, timeout=ROLLOUT_DEADLINE),
            say=run.timer.note,
        )
        record(lost)
        record(budget)
        assert lost.passed, lost.explain()
        assert budget.as_it_must, budget.explain()
        assert not drained.left_on_node, f"still on {node}: {drained.left_on_node}"

    def test_rollout_restart_fails_no_request(
        self, deployment, settled_pods, endpoint, target, record
    ):
        traffic = BackgroundTraffic(endpoint)
        with traffic.running():
            started = time.monotonic()
            deployment.rollout_restart()
            pods = deployment.wait_settled(target.replicas, timeout=ROLLOUT_DEADLINE)
            ended = time.monotonic()
        verdict = record(traffic.verdict(started, ended, "rollout restart"))
        assert not set(pods) & set(settled_pods), "some pods were not replaced"
        assert verdict.passed, verdict.explain()
