"""The Deployment heals and rolls while traffic runs."""

from __future__ import annotations

import time

from kubeverify.traffic import BackgroundTraffic

RECOVERY_DEADLINE = 90
ROLLOUT_DEADLINE = 240


class Resilience:
    """The Deployment heals and rolls while traffic runs."""

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
