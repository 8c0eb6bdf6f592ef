"""The Deployment as applied: every replica ready, on the workers, behind the Service."""

from __future__ import annotations

from collections import Counter

import httpx
import pytest

from kubeverify.traffic import send


@pytest.mark.usefixtures("settled_pods")
class Replicas:
    """The Deployment as applied: every replica ready, on the workers, behind the Service."""

    def test_deployment_has_every_replica_ready(self, deployment, target):
        status = deployment.read().status
        counts = (status.replicas, status.ready_replicas, status.available_replicas)
        assert counts == (target.replicas,) * 3, f"replicas, ready, available: {counts}"

    def test_pods_run_only_on_workers_spread_within_one_of_each_other(self, kube, deployment):
        nodes = kube.nodes()
        workers = {name for name, control_plane in nodes.items() if not control_plane}
        placed = {pod.name: pod.node for pod in deployment.pods()}
        assert set(placed.values()) <= workers, f"pods on control-plane nodes: {placed}"
        per_worker = Counter({worker: 0 for worker in workers})
        per_worker.update(placed.values())
        assert max(per_worker.values()) - min(per_worker.values()) <= 1, (
            f"pods per worker {dict(per_worker)}: one node failing would take more than its share"
        )

    def test_service_endpoints_equal_the_ready_pods(self, kube, deployment, target):
        ready_pods = {pod.name for pod in deployment.pods() if pod.ready}
        for service in target.services:
            ready, not_ready = kube.endpoint_pods(service.name)
            assert (ready, not_ready) == (ready_pods, set()), service.name

    def test_probe_is_answered_through_the_service_by_a_pod_that_names_itself(
        self, endpoint, deployment
    ):
        with httpx.Client(base_url=endpoint.base_url, timeout=5) as client:
            outcome = send(client, endpoint)
        assert outcome.ok, outcome.error
        pods = {pod.name: pod.node for pod in deployment.pods()}
        assert outcome.pod in pods, f"{endpoint.pod_header}: {outcome.pod} is none of {pods}"
        if endpoint.node_header:
            assert outcome.node == pods[outcome.pod], f"{endpoint.node_header}: {outcome.node}"
